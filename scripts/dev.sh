#!/usr/bin/env bash
# Entry point for a fresh machine: provides Node 24 + pnpm (scripts/bootstrap.sh), installs
# dependencies, then runs the root package script named by the arguments.
#   bash scripts/dev.sh demo        # the signup fan-out demo on embedded Postgres
#   bash scripts/dev.sh test:all    # every broker, every test (what CI runs)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/bootstrap.sh
if [ ! -f node_modules/.modules.yaml ] || [ pnpm-lock.yaml -nt node_modules/.modules.yaml ]; then
  pnpm install --frozen-lockfile --reporter=silent
fi
exec pnpm "$@"
