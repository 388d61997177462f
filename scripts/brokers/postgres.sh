# shellcheck shell=bash
# PostgreSQL from Debian's packages, run with pg_ctl as the `postgres` user (postgres refuses root)
# on 127.0.0.1:$EVENTWIRE_POSTGRES_PORT. Role/password/database eventwire, scram-sha-256 over TCP.

postgres_apt_packages() { echo postgresql postgresql-client; }

pg_bindir() { find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1; }

postgres_installed() { local b; b=$(pg_bindir) && [ -x "$b/initdb" ] && command -v psql >/dev/null; }

postgres_install() { :; } # apt only

# The server runs as `postgres` when we are root, so its folder must be reachable by that user; a
# checkout under a private folder (e.g. /root, or a `mktemp -d` folder, mode 700) is not, and
# then the data lives in /var/tmp instead with .brokers/postgres as a symlink to it. The path
# returned is the symlink's target: `postgres` cannot follow a link inside a folder it cannot enter.
postgres_home() {
  local home="$STATE/postgres"
  if [ "$(id -u)" -eq 0 ] && [ ! -L "$home" ] && [ ! -d "$home/data" ]; then
    mkdir -p "$STATE"
    if ! runuser -u postgres -- test -x "$STATE"; then
      local alt
      alt="/var/tmp/eventwire-brokers-$(printf %s "$STATE" | cksum | cut -d' ' -f1)/postgres"
      mkdir -p "$alt" && chown postgres: "$alt" "$(dirname "$alt")" && ln -sfn "$alt" "$home"
    fi
  fi
  if [ -L "$home" ]; then readlink -f "$home"; else echo "$home"; fi
}

# From /, so that the server and its tools never start in a folder their user cannot enter.
pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

pg_sockdir() {
  local d
  d="$(postgres_home)/run"
  # A unix socket path is limited to 107 bytes; fall back to a short folder for deep checkouts.
  if [ ${#d} -gt 80 ]; then d="/tmp/eventwire-pg-$(printf %s "$STATE" | cksum | cut -d' ' -f1)"; fi
  echo "$d"
}

postgres_logs() { echo "$(postgres_home)/postgres.log"; }

postgres_running() { pid_alive "$(postgres_home)/data/postmaster.pid" postgres >/dev/null; }

postgres_ready() {
  pg_isready -q -h 127.0.0.1 -p "$EVENTWIRE_POSTGRES_PORT" -t 2 &&
    PGPASSWORD=eventwire PGCONNECT_TIMEOUT=2 psql -X -q -At -h 127.0.0.1 -p "$EVENTWIRE_POSTGRES_PORT" \
      -U eventwire -d eventwire -c 'select 1' 2>/dev/null | grep -qx 1
}

postgres_version() {
  PGPASSWORD=eventwire PGCONNECT_TIMEOUT=2 psql -X -At -h 127.0.0.1 -p "$EVENTWIRE_POSTGRES_PORT" \
    -U eventwire -d eventwire -c 'show server_version' 2>/dev/null | cut -d' ' -f1
}

postgres_start() {
  local home bin sock
  home=$(postgres_home)
  bin=$(pg_bindir)
  sock=$(pg_sockdir)
  mkdir -p "$home" "$sock"
  touch "$home/postgres.log"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$home" "$sock" "$home/postgres.log"; fi
  if [ ! -s "$home/data/PG_VERSION" ]; then
    log "postgres: initdb $home/data"
    pg_as_owner "$bin/initdb" -D "$home/data" -U postgres -E UTF8 --locale=C \
      --auth-local=trust --auth-host=scram-sha-256 >>"$home/postgres.log" 2>&1 || return 1
  fi
  # Settings are (re)written on every start so a changed port or socket folder applies.
  pg_as_owner tee "$home/data/eventwire.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $EVENTWIRE_POSTGRES_PORT
unix_socket_directories = '$sock'
password_encryption = 'scram-sha-256'
max_connections = 200
wal_level = logical
EOF
  grep -q "^include_if_exists = 'eventwire.conf'" "$home/data/postgresql.conf" ||
    echo "include_if_exists = 'eventwire.conf'" | pg_as_owner tee -a "$home/data/postgresql.conf" >/dev/null
  # A postmaster.pid left by a killed server whose pid is gone (or a zombie) would block the start.
  if [ -f "$home/data/postmaster.pid" ] && ! postgres_running; then rm -f "$home/data/postmaster.pid"; fi
  # setsid: the postmaster must not share the caller's session (Ctrl-C, CI job control).
  pg_as_owner setsid "$bin/pg_ctl" -D "$home/data" -l "$home/postgres.log" -w -t 120 start >/dev/null 8>&- 9>&- || return 1
  # The eventwire role and database are created once (idempotent), over the local socket.
  local psql=(psql -X -q -At -h "$sock" -p "$EVENTWIRE_POSTGRES_PORT" -U postgres -d postgres)
  if [ "$("${psql[@]}" -c "select 1 from pg_roles where rolname = 'eventwire'")" != 1 ]; then
    "${psql[@]}" -c "create role eventwire login createdb password 'eventwire'" || return 1
  fi
  if [ "$("${psql[@]}" -c "select 1 from pg_database where datname = 'eventwire'")" != 1 ]; then
    "${psql[@]}" -c "create database eventwire owner eventwire" || return 1
  fi
}

postgres_stop() {
  local home
  home=$(postgres_home)
  [ -s "$home/data/PG_VERSION" ] || return 0
  postgres_running || return 0
  pg_as_owner "$(pg_bindir)/pg_ctl" -D "$home/data" -m fast -w -t 60 stop >/dev/null
}
