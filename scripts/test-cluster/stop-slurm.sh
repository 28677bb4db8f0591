#!/usr/bin/env bash
# Stop the one-node test cluster started by start-slurm.sh: slurmd, slurmctld, slurmdbd,
# mariadbd and munged, each through its pid file (nothing is killed by name).
#
#   scripts/test-cluster/stop-slurm.sh           # stop the daemons; state and logs are kept
#   scripts/test-cluster/stop-slurm.sh --purge   # also forget all jobs (job ids start again at 1)
#
# Exits 0 when nothing was running. Needs root.
set -euo pipefail

say() { printf 'stop-slurm: %s\n' "$*"; }
die() { printf 'stop-slurm: ERROR: %s\n' "$*" >&2; exit 1; }

purge=0
for arg in "$@"; do
  case "$arg" in
    --purge) purge=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) die "unknown argument '$arg' (use --purge or --help)" ;;
  esac
done
[ "$(id -u)" -eq 0 ] || die "must run as root; try: sudo $0"

# True when process $1 is a zombie: killed but not yet reaped. Where init reaps late (a container,
# a VM's own init), a killed daemon keeps its /proc entry for a while, but it is gone.
zombie() { [ "$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" = Z ]; }
# Stop the process named by pid file $1 if it is a live $2; SIGTERM, then SIGKILL after 15 s.
stop_pidfile() {
  local file="$1" name="$2" pid
  if [ ! -s "$file" ]; then say "$name: not running (no $file)"; return 0; fi
  pid="$(cat "$file" 2>/dev/null || true)"
  if [ -z "$pid" ] || [ ! -d "/proc/$pid" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$name" ] || zombie "$pid"; then
    say "$name: not running (stale $file)"
    rm -f "$file"
    return 0
  fi
  say "stopping $name (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do { [ -d "/proc/$pid" ] && ! zombie "$pid"; } || break; sleep 0.1; done
  if [ -d "/proc/$pid" ]; then
    say "$name did not stop after 15 s; sending SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

stop_pidfile /run/slurmd.pid slurmd
stop_pidfile /run/slurmctld.pid slurmctld
stop_pidfile /run/slurmdbd.pid slurmdbd

if [ "$purge" -eq 1 ]; then
  say "purging job state (/var/lib/slurm/slurmctld, /var/lib/slurm/slurmd, jobcomp.txt)"
  find /var/lib/slurm/slurmctld /var/lib/slurm/slurmd -mindepth 1 -delete 2>/dev/null || true
  rm -f /var/log/slurm/jobcomp.txt
  if command -v mariadb >/dev/null 2>&1 && mariadb-admin ping >/dev/null 2>&1; then
    say "dropping the accounting database slurm_acct_db"
    mariadb -e 'DROP DATABASE IF EXISTS slurm_acct_db'
  elif [ -d /var/lib/mysql/slurm_acct_db ]; then
    say "warning: mariadbd is not running, so slurm_acct_db was kept; sacct may list old jobs with reused ids"
  fi
fi

stop_pidfile /run/mysqld/mysqld.pid mariadbd
stop_pidfile /run/munge/munged.pid munged
say "done"
