#!/usr/bin/env bash
# Real message brokers for development and CI, without Docker. See docs/brokers.md.
#
#   brokers.sh up [NAME...]        install what is missing, start what is down, wait until each serves
#   brokers.sh down [NAME...]      stop (data is kept in .brokers/)
#   brokers.sh status [NAME...]    up/down, version and test URL of each broker (exit 1 if one is down)
#   brokers.sh restart [NAME...]   stop and start (keeping data); returns once each serves again
#
# NAME: postgres redis rabbitmq nats kafka sns-sqs toxiproxy (default: all).
#
# Each broker lives in its own file here (scripts/brokers/NAME.sh) defining NAME_{apt_packages,
# installed,install,start,stop,running,ready,version,logs}; this file only dispatches.
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL_BROKERS=(postgres redis rabbitmq nats kafka sns-sqs toxiproxy)
for b in "${ALL_BROKERS[@]}"; do
  # shellcheck source=/dev/null
  . "$BROKERS_SCRIPTS/$b.sh"
done

fn() { echo "${1//-/_}_$2"; } # fn sns-sqs ready -> sns_sqs_ready

# Seconds a start may take before it counts as failed.
ready_timeout() {
  case $1 in
  kafka) echo 180 ;;
  rabbitmq) echo 120 ;;
  *) echo 60 ;;
  esac
}

test_url() {
  local var
  var="EVENTWIRE_TEST_$(echo "${1//-/_}" | tr '[:lower:]' '[:upper:]')_URL"
  echo "${!var}"
}

# Locks: one for installing (apt, builds) and one per broker for start/stop, so that concurrent calls
# (e.g. two conformance suites restarting their brokers) queue up per broker but not across brokers.
# Spawned servers must not inherit these descriptors (8, 9), or they would hold a lock forever.
install_lock() {
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  if ! flock -n 9; then
    log "waiting for another brokers.sh to finish installing"
    flock -w 1200 9 || { log "error: timed out waiting for $STATE/.lock"; exit 1; }
  fi
}
install_unlock() { exec 9>&-; }

# with_broker_lock NAME CMD...: runs CMD (in a subshell) while holding NAME's lock.
with_broker_lock() {
  local name=$1
  shift
  (
    exec 8>"$STATE/.lock-$name"
    if ! flock -n 8; then
      log "$name: waiting for another brokers.sh to finish with it"
      flock -w 1200 8 || { log "error: timed out waiting for $STATE/.lock-$name"; exit 1; }
    fi
    "$@"
  )
}

# Runs "CMD NAME" for each name in parallel; CMD's output is printed as each one finishes. Fails if any did.
for_each_parallel() {
  local cmd=$1 name pid failed=0
  shift
  mkdir -p "$STATE"
  if [ $# -eq 1 ]; then "$cmd" "$1" || return 1; return 0; fi
  declare -A by_pid=()
  local out
  out=$(mktemp -d "$STATE/.out.XXXXXX")
  for name in "$@"; do
    "$cmd" "$name" >"$out/$name" 2>&1 &
    by_pid[$!]=$name
  done
  while [ ${#by_pid[@]} -gt 0 ]; do
    local rc=0
    wait -n -p pid "${!by_pid[@]}" || rc=$?
    name=${by_pid[$pid]}
    unset "by_pid[$pid]"
    cat "$out/$name" >&2
    [ $rc -eq 0 ] || failed=1
  done
  rm -rf "$out"
  return $failed
}

install_one() {
  local name=$1 t0=$SECONDS
  "$(fn "$name" install)" || { log "error: installing $name failed"; return 1; }
  "$(fn "$name" installed)" || { log "error: $name is still not installed"; return 1; }
  log "$name: installed in $((SECONDS - t0))s"
}

missing_brokers() {
  local name
  for name in "$@"; do
    "$(fn "$name" installed)" || echo "$name"
  done
}

install_missing() {
  local name missing=() pkgs=()
  [ -n "$(missing_brokers "$@")" ] || return 0
  install_lock
  mapfile -t missing < <(missing_brokers "$@") # again: another brokers.sh may have installed them
  [ ${#missing[@]} -gt 0 ] || { install_unlock; return 0; }
  for name in "${missing[@]}"; do
    # shellcheck disable=SC2207
    pkgs+=($("$(fn "$name" apt_packages)"))
  done
  if [ ${#pkgs[@]} -gt 0 ]; then apt_install "${pkgs[@]}" || { log "error: apt-get install failed"; return 1; }; fi
  log "installing: ${missing[*]}"
  for_each_parallel install_one "${missing[@]}" || return 1
  install_unlock
}

start_one() {
  local name=$1 t0=$SECONDS deadline
  if "$(fn "$name" ready)"; then
    log "$name: already up"
    return 0
  fi
  if ! "$(fn "$name" running)"; then
    log "$name: starting"
    if ! "$(fn "$name" start)"; then
      log "error: $name failed to start"
      # shellcheck disable=SC2046
      show_log_tail $("$(fn "$name" logs)")
      return 1
    fi
  fi
  deadline=$((SECONDS + $(ready_timeout "$name")))
  until "$(fn "$name" ready)"; do
    if ! "$(fn "$name" running)"; then
      log "error: $name exited during startup"
      # shellcheck disable=SC2046
      show_log_tail $("$(fn "$name" logs)")
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "error: $name did not become ready within $(ready_timeout "$name")s; stopping it"
      # shellcheck disable=SC2046
      show_log_tail $("$(fn "$name" logs)")
      "$(fn "$name" stop)" || true
      return 1
    fi
    sleep 0.25
  done
  log "$name: up after $((SECONDS - t0))s ($(test_url "$name"))"
}

stop_one() {
  local name=$1
  if "$(fn "$name" running)"; then
    log "$name: stopping"
    "$(fn "$name" stop)"
    log "$name: stopped"
  else
    "$(fn "$name" stop)" # still stops a matching server that lost its pid file
    log "$name: not running"
  fi
}

restart_one() {
  local name=$1
  "$(fn "$name" stop)" || true
  start_one "$name"
}

locked_start() { with_broker_lock "$1" start_one "$1"; }
locked_stop() { with_broker_lock "$1" stop_one "$1"; }
locked_restart() { with_broker_lock "$1" restart_one "$1"; }

# Our ports lie inside Linux's ephemeral range (32768-60999). While a broker is down, clients
# reconnecting to it in a tight loop can be handed that very port as their source port and
# connect to themselves (TCP simultaneous open); the broker then fails to bind on restart
# ("Address already in use"), which is how Kafka once died during the broker-restart test.
# Reserving the ports keeps the kernel from handing them out. Needs root; otherwise a warning.
reserve_ports() {
  local file=/proc/sys/net/ipv4/ip_local_reserved_ports ours current
  ours="$EVENTWIRE_POSTGRES_PORT,$EVENTWIRE_REDIS_PORT,$EVENTWIRE_RABBITMQ_PORT,$EVENTWIRE_RABBITMQ_DIST_PORT,$EVENTWIRE_RABBITMQ_EPMD_PORT,$EVENTWIRE_NATS_PORT,$EVENTWIRE_KAFKA_PORT,$EVENTWIRE_KAFKA_CONTROLLER_PORT,$EVENTWIRE_MOTO_PORT,$EVENTWIRE_TOXIPROXY_PORT"
  [ -r "$file" ] || return 0
  current=$(cat "$file")
  if ! { [ -w "$file" ] && echo "${current:+$current,}$ours" >"$file"; } 2>/dev/null; then
    log "warning: could not reserve ports $ours in $file (not root?); a broker restart may rarely fail to bind"
  fi
}

cmd_up() {
  local t0=$SECONDS
  install_missing "$@" || exit 1
  reserve_ports
  for_each_parallel locked_start "$@" || { log "error: some brokers failed to start (see above)"; exit 1; }
  log "up: $* ready in $((SECONDS - t0))s"
}

cmd_down() {
  for_each_parallel locked_stop "$@"
  if [ $# -eq ${#ALL_BROKERS[@]} ]; then rabbitmq_down_extra; fi
}

cmd_restart() {
  install_missing "$@" || exit 1
  reserve_ports
  log "restarting: $*"
  for_each_parallel locked_restart "$@" || exit 1
}

cmd_status() {
  local name state version any_down=0
  printf '%-9s %-8s %-22s %s\n' BROKER STATE VERSION URL
  for name in "$@"; do
    version=""
    if "$(fn "$name" ready)"; then
      state=up
      version=$("$(fn "$name" version)" 2>/dev/null || true)
    elif "$(fn "$name" running)"; then
      state=starting
      any_down=1
    elif ! "$(fn "$name" installed)"; then
      state="down"
      version="(not installed)"
      any_down=1
    else
      state=down
      any_down=1
    fi
    printf '%-9s %-8s %-22s %s\n' "$name" "$state" "${version:--}" "$(test_url "$name")"
  done
  printf '\ndata and logs: %s\n' "$STATE"
  return $any_down
}

usage() {
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 2
}

main() {
  [ $# -ge 1 ] || usage
  local cmd=$1 name
  shift
  local names=("$@")
  [ ${#names[@]} -gt 0 ] || names=("${ALL_BROKERS[@]}")
  for name in "${names[@]}"; do
    [[ " ${ALL_BROKERS[*]} " == *" $name "* ]] || { log "unknown broker '$name' (known: ${ALL_BROKERS[*]})"; exit 2; }
  done
  case $cmd in
  up) cmd_up "${names[@]}" ;;
  down) cmd_down "${names[@]}" ;;
  status) cmd_status "${names[@]}" ;;
  restart) cmd_restart "${names[@]}" ;;
  *) usage ;;
  esac
}

main "$@"
