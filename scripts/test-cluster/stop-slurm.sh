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
# shellcheck source=daemons.sh
. "$(dirname "$0")/daemons.sh"

purge=0
for arg in "$@"; do
  case "$arg" in
    --purge) purge=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) die "unknown argument '$arg' (use --purge or --help)" ;;
  esac
done
[ "$(id -u)" -eq 0 ] || die "must run as root; try: sudo $0"

# Stop the daemon pid file $1 names if it is a live $2 (SIGKILL after 15 s); say so when it is not.
stop_pidfile() {
  if [ ! -s "$1" ]; then say "$2: not running (no $1)"; return 0; fi
  if ! pid_alive "$1" "$2"; then
    say "$2: not running (stale $1)"
    rm -f "$1"
    return 0
  fi
  stop_daemon "$1" "$2" 15
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
