# shellcheck shell=bash
# RabbitMQ from Debian's packages, run directly (not through systemd or the package's su wrapper)
# with its own node name, data folder, Erlang cookie and ports, all on 127.0.0.1.

rabbitmq_apt_packages() { echo rabbitmq-server; }
rabbitmq_installed() { [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; }
rabbitmq_install() { :; } # apt only

rabbitmq_home() { echo "$STATE/rabbitmq"; }
rabbitmq_logs() { echo "$STATE/rabbitmq/rabbitmq.log" "$STATE/rabbitmq/log/eventwire.log"; }

# The environment that points rabbitmq-server (and rabbitmqctl, if you use it) at our node.
rabbitmq_env() {
  local home
  home=$(rabbitmq_home)
  export HOME="$home/home" # holds the node's .erlang.cookie
  export RABBITMQ_NODENAME=eventwire@localhost
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT=$EVENTWIRE_RABBITMQ_PORT
  export RABBITMQ_DIST_PORT=$EVENTWIRE_RABBITMQ_DIST_PORT
  export ERL_EPMD_ADDRESS=127.0.0.1
  export ERL_EPMD_PORT=$EVENTWIRE_RABBITMQ_EPMD_PORT
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_CONF_ENV_FILE="$home/rabbitmq-env.conf"
  export RABBITMQ_CONFIG_FILE="$home/rabbitmq.conf"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$home/enabled_plugins"
  export RABBITMQ_MNESIA_BASE="$home/mnesia"
  export RABBITMQ_LOG_BASE="$home/log"
  export RABBITMQ_LOGS="$home/log/eventwire.log"
  export RABBITMQ_PID_FILE="$home/beam.pid"
}

rabbitmq_running() { pid_alive "$STATE/rabbitmq/rabbitmq.pid" rabbitmq-server >/dev/null; }

# An AMQP 0-9-1 handshake: send the protocol header, expect a Connection.Start method frame
# (frame type 1, channel 0, class 10, method 10). Prints the frame as hex.
# shellcheck disable=SC2016
rabbitmq_probe() {
  timeout 3 bash -c '
    exec 3<>/dev/tcp/127.0.0.1/'"$EVENTWIRE_RABBITMQ_PORT"' || exit 1
    printf "AMQP\x00\x00\x09\x01" >&3
    hex() { od -An -v -tx1 | tr -d " \n"; }
    header=$(head -c 7 <&3 | hex)
    [ ${#header} -eq 14 ] || exit 1
    printf %s "$header"
    head -c $((16#${header:6:8} + 1)) <&3 | hex' 2>/dev/null
}

rabbitmq_ready() { [[ $(rabbitmq_probe) =~ ^010000[0-9a-f]{8}000a000a ]]; }

# The server's own version string from the Connection.Start server-properties (hex of "version" + "S").
rabbitmq_version() {
  local hex rest len
  hex=$(rabbitmq_probe) || return 0
  rest=${hex#*76657273696f6e53} # "versionS"
  [ "$rest" != "$hex" ] || return 0
  len=$((16#${rest:0:8}))
  printf '%b' "$(printf %s "${rest:8:len*2}" | sed 's/../\\x&/g')"
}

rabbitmq_start() {
  local home
  home=$(rabbitmq_home)
  mkdir -p "$home/home" "$home/mnesia" "$home/log"
  : >"$home/rabbitmq-env.conf"
  echo '[].' >"$home/enabled_plugins" # no management plugin
  cat >"$home/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$EVENTWIRE_RABBITMQ_PORT
loopback_users.guest = true
disk_free_limit.absolute = 50MB
log.console = false
CONF
  (rabbitmq_env && cd "$home" && spawn "$home/rabbitmq.pid" "$home/rabbitmq.log" /usr/lib/rabbitmq/bin/rabbitmq-server)
}

rabbitmq_stop() {
  local home
  home=$(rabbitmq_home)
  # SIGTERM to rabbitmq-server's process group: the Erlang VM shuts down cleanly on it.
  stop_pid "$home/rabbitmq.pid" rabbitmq-server 60
  local beam
  if beam=$(pid_alive "$home/beam.pid" beam) || beam=$(port_owner "$EVENTWIRE_RABBITMQ_PORT" beam); then
    kill -TERM "$beam" 2>/dev/null || true
    local end=$((SECONDS + 30))
    while [ -d "/proc/$beam" ] && ((SECONDS < end)); do sleep 0.1; done
    [ -d "/proc/$beam" ] && kill -KILL "$beam" 2>/dev/null
  fi
  rm -f "$home/beam.pid"
}

# Our own epmd (on its own loopback port) outlives the node; `down` ends it.
rabbitmq_down_extra() {
  if command -v epmd >/dev/null && tcp_open "$EVENTWIRE_RABBITMQ_EPMD_PORT"; then
    ERL_EPMD_PORT=$EVENTWIRE_RABBITMQ_EPMD_PORT epmd -kill >/dev/null 2>&1 || true
  fi
}
