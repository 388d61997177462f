#!/usr/bin/env bash
# Every test against every real broker (what CI runs): typecheck, lint, start the brokers, then
# the unit/integration/smoke tests, then each adapter's conformance suite on its own, so that a
# suite restarting its broker never disturbs another test file using that broker.
# An unreachable broker fails the run. Ends with one line: N passed, N failed, N skipped.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$SECONDS
export EW_SUMMARY_FILE
EW_SUMMARY_FILE=$(mktemp)
status=0
step() { echo; echo "== $1 ($((SECONDS - start))s)"; }

step typecheck; pnpm exec tsc -b || status=1
# Tests, benchmarks and examples are not built; typecheck them against the built declarations.
step "typecheck tests, benchmarks, examples"; pnpm exec tsc -p tsconfig.check.json || status=1
step lint; pnpm exec biome check . || status=1
step brokers; bash scripts/brokers/brokers.sh up || exit 1
export EVENTWIRE_REQUIRE_BROKERS=all

step "unit, integration and smoke tests"
node scripts/run-vitest.ts tests --exclude 'test/conformance/**' || status=1
# sns-sqs runs against moto, whose O(queue depth) SQS calls scripts/brokers/moto_server.py patches.
for adapter in memory pglite postgres redis rabbitmq nats kafka sns-sqs; do
  step "conformance $adapter"
  node scripts/run-vitest.ts "conformance $adapter" "test/conformance/$adapter.conformance.test.ts" || status=1
done
# The npm path: packed tarballs installed with npm, README blocks typechecked and run (Node 24 and 22).
step "package (npm install of the tarballs)"
if pnpm test:package; then
  echo '{"label":"package","passed":1,"failed":0,"skipped":0}' >>"$EW_SUMMARY_FILE"
else
  echo '{"label":"package","passed":0,"failed":1,"skipped":0}' >>"$EW_SUMMARY_FILE"
  status=1
fi
# Network faults through Toxiproxy and kill -9 of consumer/publisher processes (docs/reliability.md).
step "fault suite"; pnpm test:faults || status=1

step "summary"
node -e '
  const lines = require("fs").readFileSync(process.env.EW_SUMMARY_FILE, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  for (const l of lines) console.log(`${l.label.padEnd(24)} ${l.passed} passed, ${l.failed} failed, ${l.skipped} skipped`);
  const t = lines.reduce((a, l) => ({ passed: a.passed + l.passed, failed: a.failed + l.failed, skipped: a.skipped + l.skipped }), { passed: 0, failed: 0, skipped: 0 });
  console.log(`${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`);
'
echo "(${SECONDS}s)"
exit $status
