# shellcheck shell=bash disable=SC2034
# Helpers shared by brokers.sh and the per-broker files (sourced, never run).

BROKERS_SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$BROKERS_SCRIPTS/../.." && pwd)"
# Data, logs and pid files: .brokers/<name>/. Downloaded/built artifacts: .brokers/cache/.
STATE="${EVENTWIRE_BROKERS_HOME:-$REPO_ROOT/.brokers}"
CACHE="${EVENTWIRE_BROKERS_CACHE:-$STATE/cache}"
export DEBIAN_FRONTEND=noninteractive

# shellcheck source=urls.sh
. "$BROKERS_SCRIPTS/urls.sh"

log() { printf '[brokers] %s\n' "$*" >&2; }
warn() { printf '[brokers] warning: %s\n' "$*" >&2; }

# Runs a command as root (sudo when we are not root).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

# True when every named Debian package is installed.
apt_installed() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || return 1
  done
}

# Installs Debian packages non-interactively without letting their maintainer scripts start the
# default services (a policy-rc.d that says "no" is put in place for the duration if none exists).
apt_install() {
  local missing=() p
  for p in "$@"; do apt_installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
  if [ ! -e "$policy" ]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy" && made_policy=1
  fi
  log "apt-get install ${missing[*]}"
  local apt=(apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  as_root "${apt[@]}" update -qq || rc=$?
  [ $rc -eq 0 ] && { as_root "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" || rc=$?; }
  [ $made_policy -eq 1 ] && as_root rm -f "$policy"
  return $rc
}

# Prints the pid recorded in FILE if that process is alive (and its command line contains PATTERN,
# when given, so that a stale pid file never makes us signal an unrelated process).
pid_alive() {
  local file=$1 pattern=${2:-} pid
  [ -s "$file" ] || return 1
  read -r pid <"$file" || true
  [[ $pid =~ ^[0-9]+$ ]] && [ -d "/proc/$pid" ] || return 1
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1 # exited, not yet reaped
  if [ -n "$pattern" ]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern" || return 1
  fi
  echo "$pid"
}

# spawn PIDFILE LOGFILE CMD... : runs CMD detached in its own session (it outlives this script and
# Ctrl-C in the caller's terminal), appending stdout/stderr to LOGFILE; PIDFILE gets its pid.
# Descriptors 8 and 9 (brokers.sh's locks) are closed so that the server never holds a lock.
spawn() {
  local pidfile=$1 logfile=$2
  shift 2
  rm -f "$pidfile"
  mkdir -p "$(dirname "$logfile")"
  printf '\n===== %s starting: %s\n' "$(date -Is)" "$*" >>"$logfile"
  # shellcheck disable=SC2016
  setsid bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidfile" "$@" >>"$logfile" 2>&1 </dev/null 8>&- 9>&- &
  local i
  for ((i = 0; i < 100; i++)); do [ -s "$pidfile" ] && return 0; sleep 0.05; done
  warn "no pid file $pidfile"
  return 1
}

# Prints the pid of the process listening on 127.0.0.1:PORT if its command line contains PATTERN
# and its command line, environment or working folder names our $STATE (so a broker of another
# checkout on the same port is never touched).
port_owner() {
  local port=$1 pattern=$2 pid
  command -v ss >/dev/null || return 1
  pid=$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2)
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern" || return 1
  {
    tr '\0' '\n' <"/proc/$pid/cmdline"
    tr '\0' '\n' <"/proc/$pid/environ"
    readlink "/proc/$pid/cwd"
  } 2>/dev/null | grep -qF -- "$STATE/" || return 1
  echo "$pid"
}

# stop_pid PIDFILE PATTERN [TIMEOUT_S] [PORT]: SIGTERM to the process group, SIGKILL after the
# timeout. Without a live pid file, the process listening on PORT is stopped if it matches PATTERN
# (a server whose pid file was lost, e.g. when .brokers/ was deleted under it).
stop_pid() {
  local pidfile=$1 pattern=$2 timeout=${3:-60} port=${4:-} pid end
  if ! pid=$(pid_alive "$pidfile" "$pattern"); then
    rm -f "$pidfile"
    [ -n "$port" ] && pid=$(port_owner "$port" "$pattern") || return 0
    warn "stopping pid $pid ($pattern on port $port), which has no pid file"
  fi
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  end=$((SECONDS + timeout))
  while [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; do
    if ((SECONDS >= end)); then
      warn "pid $pid did not stop within ${timeout}s, sending SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  rm -f "$pidfile"
}

# True when a TCP connect to 127.0.0.1:PORT succeeds within a second.
tcp_open() {
  timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# Prints the last lines of a broker's log files, for failed starts.
show_log_tail() {
  local f
  for f in "$@"; do
    [ -s "$f" ] || continue
    printf -- '----- last lines of %s -----\n' "$f" >&2
    tail -n 40 "$f" >&2
  done
}
