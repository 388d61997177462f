#!/usr/bin/env bash
# Every test against every real broker: typecheck, lint, start brokers, then unit, integration,
# smoke and conformance tests in one vitest run. An unreachable broker fails the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$SECONDS
echo "== typecheck"; pnpm exec tsc -b
echo "== lint"; pnpm exec biome check .
echo "== brokers"; bash scripts/brokers/brokers.sh up
export EVENTWIRE_REQUIRE_BROKERS=all
echo "== tests"
node scripts/run-vitest.ts all
echo "== done in $((SECONDS - start))s"
