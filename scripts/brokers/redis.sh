# shellcheck shell=bash
# Redis from Debian's packages: redis-server with its own config on 127.0.0.1:$EVENTWIRE_REDIS_PORT,
# append-only file on, so data survives a restart.

redis_apt_packages() { echo redis-server redis-tools; }
redis_installed() { command -v redis-server >/dev/null && command -v redis-cli >/dev/null; }
redis_install() { :; } # apt only

redis_home() { echo "$STATE/redis"; }
redis_logs() { echo "$STATE/redis/redis.log"; }
redis_cli() { timeout 3 redis-cli -h 127.0.0.1 -p "$EVENTWIRE_REDIS_PORT" "$@"; }

redis_running() { pid_alive "$STATE/redis/redis.pid" redis-server >/dev/null; }
redis_ready() { [ "$(redis_cli ping 2>/dev/null)" = PONG ]; }
redis_version() { redis_cli info server 2>/dev/null | sed -n 's/^redis_version:\([^\r]*\).*/\1/p'; }

redis_start() {
  local home
  home=$(redis_home)
  mkdir -p "$home/data"
  cat >"$home/redis.conf" <<CONF
bind 127.0.0.1
port $EVENTWIRE_REDIS_PORT
protected-mode yes
daemonize no
dir $home/data
appendonly yes
appendfsync everysec
save 60 1000
CONF
  spawn "$home/redis.pid" "$home/redis.log" redis-server "$home/redis.conf"
}

redis_stop() { stop_pid "$STATE/redis/redis.pid" redis-server 30 "$EVENTWIRE_REDIS_PORT"; }
