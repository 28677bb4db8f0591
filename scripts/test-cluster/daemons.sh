# Sourced by the test-cluster scripts: telling whether a daemon runs, from its pid file or its name,
# and stopping one. The caller defines `say`.
#
# A daemon killed with its session leaves its pid file behind, and where init reaps late (a
# container, a VM's own init) its zombie keeps a /proc entry for a while; neither is a running daemon.

# True when process $1 is a zombie: killed, not yet reaped.
zombie() { [ "$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" = Z ]; }

# True when a process named $1 runs (zombies do not count).
running_named() {
  local pid
  for pid in $(pgrep -x "$1"); do zombie "$pid" || return 0; done
  return 1
}

# True when pid file $1 names a live process whose command name is $2.
pid_alive() {
  local file="$1" name="$2" pid
  [ -s "$file" ] || return 1
  pid="$(cat "$file" 2>/dev/null)" || return 1
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] && ! zombie "$pid"
}

# True when the daemon $2 has died: its pid file $1 names a dead process, or there is no pid file
# yet and no process of that name either. Some daemons (mariadbd) write their pid file only once
# they are ready, so a missing pid file alone means nothing.
daemon_died() {
  if [ -s "$1" ]; then ! pid_alive "$1" "$2"; else ! running_named "$2"; fi
}

# Remove pid file $1 unless it names a live $2, before $2 is started: a stale one would stand for
# the new daemon until it writes its own.
clear_stale_pidfile() {
  if [ -e "$1" ] && ! pid_alive "$1" "$2"; then rm -f "$1"; fi
}

# Stop the live $2 that pid file $1 names: SIGTERM, then SIGKILL after $3 seconds (default 10).
# The pid file is removed.
stop_daemon() {
  local file="$1" name="$2" secs="${3:-10}" pid
  if pid_alive "$file" "$name"; then
    pid="$(cat "$file")"
    say "stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((secs * 10))); do { [ -d "/proc/$pid" ] && ! zombie "$pid"; } || break; sleep 0.1; done
    if [ -d "/proc/$pid" ] && ! zombie "$pid"; then
      say "$name did not stop after $secs s; sending SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$file"
}
