# shellcheck shell=bash disable=SC2034
# Single source of truth for the local brokers' ports and the test URLs.
#
# - scripts/brokers/*.sh source this file (ports to bind, URLs shown by `brokers.sh status`).
# - test/support/brokers.ts parses the `EVENTWIRE_TEST_*_URL` defaults out of this file, so keep each
#   of those lines in the exact form  export NAME="${NAME:-default}"  (one per line).
#
# Every broker binds 127.0.0.1 only. An exported EVENTWIRE_TEST_<BROKER>_URL overrides the default
# for tests (e.g. to point them at brokers running elsewhere); it does not move the local broker.

EVENTWIRE_POSTGRES_PORT=55432
EVENTWIRE_REDIS_PORT=56379
EVENTWIRE_RABBITMQ_PORT=55672
EVENTWIRE_RABBITMQ_DIST_PORT=55673 # Erlang distribution (rabbitmqctl), loopback only
EVENTWIRE_RABBITMQ_EPMD_PORT=54369 # Erlang port mapper for our node, loopback only
EVENTWIRE_NATS_PORT=54222
EVENTWIRE_KAFKA_PORT=59092
EVENTWIRE_KAFKA_CONTROLLER_PORT=59093
EVENTWIRE_MOTO_PORT=54566
EVENTWIRE_TOXIPROXY_PORT=58474 # Toxiproxy's HTTP API (test/faults creates its proxies through it)

export EVENTWIRE_TEST_POSTGRES_URL="${EVENTWIRE_TEST_POSTGRES_URL:-postgres://eventwire:eventwire@127.0.0.1:55432/eventwire}"
export EVENTWIRE_TEST_REDIS_URL="${EVENTWIRE_TEST_REDIS_URL:-redis://127.0.0.1:56379}"
export EVENTWIRE_TEST_RABBITMQ_URL="${EVENTWIRE_TEST_RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:55672}"
export EVENTWIRE_TEST_NATS_URL="${EVENTWIRE_TEST_NATS_URL:-nats://127.0.0.1:54222}"
export EVENTWIRE_TEST_KAFKA_URL="${EVENTWIRE_TEST_KAFKA_URL:-kafka://127.0.0.1:59092}"
export EVENTWIRE_TEST_SNS_SQS_URL="${EVENTWIRE_TEST_SNS_SQS_URL:-sns-sqs://us-east-1?endpoint=http://127.0.0.1:54566}"
export EVENTWIRE_TEST_TOXIPROXY_URL="${EVENTWIRE_TEST_TOXIPROXY_URL:-http://127.0.0.1:58474}"
