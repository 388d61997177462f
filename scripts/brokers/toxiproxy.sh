# shellcheck shell=bash
# Toxiproxy, the TCP proxy the fault suite (test/faults, `pnpm test:faults`) puts between eventwire
# and a broker to inject resets, blackholes, latency and slow links. Built from source with
# `go install` into the cache, like nats-server; there is no Debian package to fall back to.
# Only its HTTP API listens on 127.0.0.1:$EVENTWIRE_TOXIPROXY_PORT at start: the tests create each
# proxy they need (on 127.0.0.1, port 0) through the API and delete it afterwards.

TOXIPROXY_VERSION="${EVENTWIRE_TOXIPROXY_VERSION:-v2.12.0}"

toxiproxy_apt_packages() { :; }

toxiproxy_bin_dir() { echo "$CACHE/toxiproxy/$TOXIPROXY_VERSION"; }
toxiproxy_bin() { echo "$(toxiproxy_bin_dir)/toxiproxy-server"; }

toxiproxy_installed() { [ -x "$(toxiproxy_bin)" ] && [ -x "$(toxiproxy_bin_dir)/toxiproxy-cli" ]; }

toxiproxy_install() {
  local out go tmp
  out=$(toxiproxy_bin_dir)
  go=$(command -v go || echo /usr/local/go/bin/go)
  [ -x "$go" ] || { log "error: toxiproxy: no Go toolchain (it is built with go install)"; return 1; }
  mkdir -p "$out"
  # go install names the binaries after their folders (server, cli): build into a scratch folder
  # and rename, so that a half-done build never looks installed.
  tmp=$(mktemp -d "$out/.build.XXXXXX")
  log "toxiproxy: go install github.com/Shopify/toxiproxy/v2/cmd/{server,cli}@$TOXIPROXY_VERSION"
  [ -n "${HOME:-}" ] || export GOPATH="$CACHE/go" GOCACHE="$CACHE/go-build"
  if ! CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS=-buildvcs=false "$go" install \
    "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION" \
    "github.com/Shopify/toxiproxy/v2/cmd/cli@$TOXIPROXY_VERSION"; then
    rm -rf "$tmp"
    return 1
  fi
  mv "$tmp/cli" "$out/toxiproxy-cli" && mv "$tmp/server" "$out/toxiproxy-server"
  rm -rf "$tmp"
}

toxiproxy_home() { echo "$STATE/toxiproxy"; }
toxiproxy_logs() { echo "$STATE/toxiproxy/toxiproxy.log"; }
toxiproxy_running() { pid_alive "$STATE/toxiproxy/toxiproxy.pid" toxiproxy-server >/dev/null; }

# GET PATH from the API over bash's /dev/tcp (no curl needed); prints the response body.
toxiproxy_get() {
  timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$EVENTWIRE_TOXIPROXY_PORT"' &&
    printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" "$0" >&3 && sed "1,/^\r\{0,1\}$/d" <&3' "$1" 2>/dev/null
}

toxiproxy_ready() { toxiproxy_get /version | grep -q '"version"'; }
# A binary built by go install reports "git"; then the version we built is the one that runs.
toxiproxy_version() {
  local v
  v=$(toxiproxy_get /version | sed -n 's/.*"version" *: *"\([^"]*\)".*/\1/p')
  if [ "$v" = git ]; then echo "${TOXIPROXY_VERSION#v}"; else echo "$v"; fi
}

toxiproxy_start() {
  local home
  home=$(toxiproxy_home)
  mkdir -p "$home"
  spawn "$home/toxiproxy.pid" "$home/toxiproxy.log" "$(toxiproxy_bin)" \
    -host 127.0.0.1 -port "$EVENTWIRE_TOXIPROXY_PORT"
}

toxiproxy_stop() { stop_pid "$STATE/toxiproxy/toxiproxy.pid" toxiproxy-server 10 "$EVENTWIRE_TOXIPROXY_PORT"; }
