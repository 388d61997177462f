# shellcheck shell=bash
# SNS + SQS: moto's server mode (moto from PyPI in a virtualenv in the cache) on
# 127.0.0.1:$EVENTWIRE_MOTO_PORT. Any access keys and region work.
# moto keeps its state in memory; moto_server.py (a thin wrapper) saves the SNS and SQS state to
# .brokers/sns-sqs/state.pickle on SIGTERM and loads it on start, so a restart keeps data. It also
# patches moto's SQS (moto_sqs_speedups.py) so that requests do not slow down with queue depth.

# moto's server mode needs flask + flask-cors (its `server` extra); the rest of that extra (cfn-lint,
# docker, openapi validators, ...) serves other AWS services, so only the SNS and SQS extras are
# installed: half the size and time of `moto[server]`.
MOTO_PACKAGES="${EVENTWIRE_MOTO_PACKAGES:-moto[sns,sqs]==5.2.5 flask flask-cors}"

sns_sqs_apt_packages() {
  command -v curl >/dev/null || echo curl
  command -v python3 >/dev/null || echo python3
  # Debian's own python3 needs python3-venv for `python3 -m venv`.
  if [ "$(command -v python3 2>/dev/null)" = /usr/bin/python3 ]; then echo python3-venv; fi
}

# One venv per package list, so changing it never pulls files from under a running server.
sns_sqs_venv() { echo "$CACHE/moto/$(printf %s "$MOTO_PACKAGES" | cksum | cut -d' ' -f1)/venv"; }
sns_sqs_installed() { [ -f "$(sns_sqs_venv)/.complete" ] && [ -x "$(sns_sqs_venv)/bin/moto_server" ]; }

sns_sqs_install() {
  local venv
  venv=$(sns_sqs_venv)
  rm -rf "$venv"
  log "sns-sqs: python3 -m venv + pip install $MOTO_PACKAGES"
  python3 -m venv "$venv" || return 1
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q --disable-pip-version-check $MOTO_PACKAGES || return 1
  touch "$venv/.complete"
}

sns_sqs_home() { echo "$STATE/sns-sqs"; }
sns_sqs_logs() { echo "$STATE/sns-sqs/moto.log"; }
sns_sqs_running() { pid_alive "$STATE/sns-sqs/moto.pid" moto_server >/dev/null; }

# A real SQS ListQueues call (query protocol; moto does not check signatures). The prefix keeps the
# answer small; the generous deadline is for a moto busy with thousands of in-flight messages.
sns_sqs_ready() {
  curl -sf -m 10 -X POST "http://127.0.0.1:$EVENTWIRE_MOTO_PORT/" \
    -H 'Content-Type: application/x-www-form-urlencoded' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0' \
    --data 'Action=ListQueues&QueueNamePrefix=eventwire-probe-&Version=2012-11-05' 2>/dev/null | grep -q ListQueues
}

sns_sqs_version() {
  local m
  m=$(find "$(sns_sqs_venv)"/lib/python3*/site-packages -maxdepth 1 -name 'moto-*.dist-info' 2>/dev/null | head -n 1)
  [ -n "$m" ] && basename "$m" .dist-info | sed 's/^moto-/moto /'
}

# True when called by `brokers.sh restart` (restart_one in brokers.sh), the only start that must
# keep moto's state.
sns_sqs_restarting() { [[ " ${FUNCNAME[*]} " == *" restart_one "* ]]; }

sns_sqs_start() {
  local home
  home=$(sns_sqs_home)
  mkdir -p "$home"
  # Any other start begins empty: moto holds every topic, queue and message of earlier runs in
  # memory and pickles them all on each stop, so kept state only grows (and slows restarts).
  if ! sns_sqs_restarting && [ -e "$home/state.pickle" ]; then
    log "sns-sqs: starting empty (state is kept only across brokers.sh restart)"
    rm -f "$home/state.pickle"
  fi
  EVENTWIRE_MOTO_STATE="$home/state.pickle" spawn "$home/moto.pid" "$home/moto.log" \
    "$(sns_sqs_venv)/bin/python" "$BROKERS_SCRIPTS/moto_server.py" -H 127.0.0.1 -p "$EVENTWIRE_MOTO_PORT"
}

sns_sqs_stop() { stop_pid "$STATE/sns-sqs/moto.pid" moto_server 20 "$EVENTWIRE_MOTO_PORT"; }
