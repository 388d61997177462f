# shellcheck shell=bash
# NATS with JetStream: nats-server built from source with `go install` into the cache (a current
# release); Debian's older nats-server package is the fallback when Go or the build is unavailable.

NATS_SERVER_VERSION="${EVENTWIRE_NATS_SERVER_VERSION:-v2.15.2}"

nats_apt_packages() { :; } # only for the fallback, see nats_install

nats_built_bin() { echo "$CACHE/nats-server/$NATS_SERVER_VERSION/nats-server"; }

# The built binary; Debian's only once a build failed here (marker file), so that a machine that
# happens to have the package still gets the current release.
nats_bin() {
  local b
  b=$(nats_built_bin)
  [ -x "$b" ] && { echo "$b"; return 0; }
  [ -f "$(dirname "$b")/.use-debian-package" ] || return 1
  for b in /usr/sbin/nats-server /usr/bin/nats-server; do
    [ -x "$b" ] && { echo "$b"; return 0; }
  done
  return 1
}

nats_installed() { nats_bin >/dev/null; }

nats_install() {
  local out go
  out=$(dirname "$(nats_built_bin)")
  mkdir -p "$out"
  go=$(command -v go || echo /usr/local/go/bin/go)
  if [ -x "$go" ]; then
    log "nats: go install github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
    # Go's module and build caches default to $HOME; keep them in our cache when there is no HOME.
    [ -n "${HOME:-}" ] || export GOPATH="$CACHE/go" GOCACHE="$CACHE/go-build"
    if CGO_ENABLED=0 GOBIN="$out" GOFLAGS=-buildvcs=false \
      "$go" install "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"; then
      return 0
    fi
    warn "nats: building nats-server failed, falling back to Debian's nats-server package"
  else
    warn "nats: no Go toolchain, falling back to Debian's nats-server package"
  fi
  apt_install nats-server && touch "$out/.use-debian-package"
}

nats_home() { echo "$STATE/nats"; }
nats_logs() { echo "$STATE/nats/nats.log"; }
nats_running() { pid_alive "$STATE/nats/nats.pid" nats-server >/dev/null; }

# The INFO line a NATS server sends to every new client connection.
nats_info() {
  timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$EVENTWIRE_NATS_PORT"' && head -n 1 <&3' 2>/dev/null
}

# JetStream is enabled (and its streams recovered) before the client listener accepts connections,
# so an INFO line that says "jetstream":true means the server is ready.
nats_ready() { nats_info | grep -q '^INFO .*"jetstream":true'; }
nats_version() { nats_info | sed -n 's/.*"version":"\([^"]*\)".*/\1/p'; }

nats_start() {
  local home bin
  home=$(nats_home)
  bin=$(nats_bin) || return 1
  mkdir -p "$home/jetstream"
  cat >"$home/nats.conf" <<CONF
server_name: eventwire
listen: 127.0.0.1:$EVENTWIRE_NATS_PORT
jetstream {
  store_dir: "$home/jetstream"
  max_memory_store: 256MB
  max_file_store: 4GB
}
CONF
  spawn "$home/nats.pid" "$home/nats.log" "$bin" -c "$home/nats.conf"
}

nats_stop() { stop_pid "$STATE/nats/nats.pid" nats-server 30 "$EVENTWIRE_NATS_PORT"; }
