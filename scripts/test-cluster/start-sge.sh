#!/usr/bin/env bash
# Start (idempotently) a one-host Grid Engine (Debian's gridengine 8.1.9) for xpr's tests:
# sge_qmaster + sge_execd, a submit host, queue all.q (slots = CPUs), a parallel environment
# 'smp' ($pe_slots), root allowed to run jobs, and a 1-second scheduler interval.
#
#   scripts/test-cluster/start-sge.sh          # as root; exits 0 once a test job can run
#   scripts/test-cluster/start-sge.sh --stop   # stop sge_execd and sge_qmaster
#
# Clients need SGE_ROOT=/var/lib/gridengine SGE_CELL=default (Debian's defaults; the script prints them).
# Install with scripts/test-cluster/install.sh first.
#
# What it takes on a host whose name resolves to 127.0.0.1 (as here): SGE compares the name a
# client's IP resolves to ('localhost') with the name the client gives ('<host>') and refuses
# ("access denied (client IP resolved to host name "localhost". This is not identical to clients
# host name ...)"); $SGE_ROOT/$SGE_CELL/common/host_aliases makes them the same host.
set -euo pipefail

say() { printf 'start-sge: %s\n' "$*"; }
die() { printf 'start-sge: ERROR: %s\n' "$*" >&2; exit 1; }
# shellcheck source=daemons.sh
. "$(dirname "$0")/daemons.sh"

export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
export PATH="$PATH:/usr/sbin:/sbin"
COMMON="$SGE_ROOT/$SGE_CELL/common"
SPOOL=/var/spool/gridengine
QMASTER_PID="$SPOOL/qmaster/qmaster.pid"
WAIT_SECONDS="${XPR_SGE_WAIT:-60}"

[ "$(id -u)" -eq 0 ] || die "must run as root; try: sudo $0"

# Test files start Grid Engine side by side; one run of this script at a time. Daemons are
# started with fd 9 closed, or they would hold the lock for as long as they run.
exec 9>/run/xpr-start-sge.lock
flock -w 600 9 || die "another start-sge.sh has held /run/xpr-start-sge.lock for 10 minutes"

execd_pidfile() {
  local f
  for f in "$SPOOL"/execd/*/execd.pid; do
    if pid_alive "$f" sge_execd; then printf '%s\n' "$f"; return 0; fi
  done
  return 1
}
# qconf prints its "added"/"modified" notes on stderr; keep them quiet unless it fails.
qconf_quiet() {
  local out
  out="$(timeout 30 qconf "$@" 2>&1)" || die "qconf $* failed: $out"
}

if [ "${1:-}" = --stop ]; then
  if f="$(execd_pidfile)"; then stop_daemon "$f" sge_execd; else say "sge_execd not running"; fi
  if pid_alive "$QMASTER_PID" sge_qmaster; then stop_daemon "$QMASTER_PID" sge_qmaster; else say "sge_qmaster not running"; fi
  exit 0
fi
[ -z "${1:-}" ] || die "unknown argument '$1' (use --stop)"

for bin in sge_qmaster sge_execd qconf qsub qstat qacct; do
  command -v "$bin" >/dev/null 2>&1 || die "'$bin' not found — run scripts/test-cluster/install.sh (without --no-sge)"
done
[ -f "$COMMON/bootstrap" ] || die "$COMMON/bootstrap missing: the gridengine cell was not initialised at install time (debconf shared/gridengineconfig)"

HOST="$(hostname -s)"
NCPU="$(nproc)"
getent hosts "$HOST" >/dev/null 2>&1 || die "host name '$HOST' does not resolve (add it to /etc/hosts)"
ACT="$(cat "$COMMON/act_qmaster" 2>/dev/null || true)"
[ "$ACT" = "$HOST" ] || die "$COMMON/act_qmaster names '$ACT', not this host '$HOST'; reinstall gridengine with the right debconf answer"

# host_aliases: the host's name first, then every name its addresses resolve back to.
aliases="$HOST"
for ip in $(getent ahostsv4 "$HOST" | awk '{print $1}' | sort -u); do
  for name in $(getent hosts "$ip" | awk '{for (i = 2; i <= NF; i++) print $i}'); do
    case " $aliases " in *" $name "*) ;; *) aliases="$aliases $name" ;; esac
  done
done
if [ "$aliases" != "$HOST" ]; then
  if [ "$(cat "$COMMON/host_aliases" 2>/dev/null || true)" != "$aliases" ]; then
    say "writing $COMMON/host_aliases: $aliases"
    printf '%s\n' "$aliases" >"$COMMON/host_aliases"
    chown sgeadmin:sgeadmin "$COMMON/host_aliases" 2>/dev/null || true
    if pid_alive "$QMASTER_PID" sge_qmaster; then
      say "restarting the daemons for the new host_aliases"
      if f="$(execd_pidfile)"; then stop_daemon "$f" sge_execd; fi
      stop_daemon "$QMASTER_PID" sge_qmaster
    fi
  fi
fi

# ---------------------------------------------------------------- qmaster
if pid_alive "$QMASTER_PID" sge_qmaster; then
  say "sge_qmaster already running (pid $(cat "$QMASTER_PID"))"
else
  say "starting sge_qmaster"
  clear_stale_pidfile "$QMASTER_PID" sge_qmaster
  sge_qmaster 9>&- || die "sge_qmaster failed to start; see $SPOOL/qmaster/messages"
fi
ok=0
start=$SECONDS
while [ $((SECONDS - start)) -lt "$WAIT_SECONDS" ]; do
  if timeout 10 qconf -sh >/dev/null 2>&1; then ok=1; break; fi
  if [ $((SECONDS - start)) -ge 3 ] && daemon_died "$QMASTER_PID" sge_qmaster; then break; fi
  sleep 0.2
done
[ "$ok" -eq 1 ] || die "qmaster does not answer 'qconf -sh' ($(daemon_died "$QMASTER_PID" sge_qmaster && echo "sge_qmaster died" || echo "after ${WAIT_SECONDS}s")):
$(timeout 10 qconf -sh 2>&1 | head -n 3)
$(tail -n 5 "$SPOOL/qmaster/messages" 2>/dev/null)"

# ---------------------------------------------------------------- configuration
restart_execd=0
timeout 30 qconf -ss 2>/dev/null | grep -qx "$HOST" || { say "adding submit host $HOST"; qconf_quiet -as "$HOST"; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Global configuration: let root (uid/gid 0) run jobs; report load every 5 s; write the accounting
# file (read by qacct) every second instead of every 15 s.
timeout 30 qconf -sconf global >"$tmp/global.old"
sed -e 's/^min_uid .*/min_uid                      0/' \
    -e 's/^min_gid .*/min_gid                      0/' \
    -e 's/^load_report_time .*/load_report_time             00:00:05/' \
    -e 's/flush_time=[0-9:]*/flush_time=00:00:01/' \
    "$tmp/global.old" >"$tmp/global"
if ! cmp -s "$tmp/global.old" "$tmp/global"; then
  say "global configuration: min_uid 0, min_gid 0, load_report_time 5 s, accounting flush_time 1 s"
  qconf_quiet -Mconf "$tmp/global"
  restart_execd=1
fi
# Scheduler: run every second and right after submissions / job ends.
timeout 30 qconf -ssconf >"$tmp/sconf.old"
sed -e 's/^schedule_interval .*/schedule_interval                 0:0:1/' \
    -e 's/^flush_submit_sec .*/flush_submit_sec                  1/' \
    -e 's/^flush_finish_sec .*/flush_finish_sec                  1/' \
    "$tmp/sconf.old" >"$tmp/sconf"
if ! cmp -s "$tmp/sconf.old" "$tmp/sconf"; then
  say "scheduler configuration: schedule_interval 1 s, flush_submit_sec 1, flush_finish_sec 1"
  qconf_quiet -Msconf "$tmp/sconf"
fi
# Parallel environment 'smp': all slots of a job on one host (qsub -pe smp N).
if ! timeout 30 qconf -spl 2>/dev/null | grep -qx smp; then
  say "adding parallel environment smp"
  cat >"$tmp/smp" <<EOF
pe_name            smp
slots              9999
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    \$pe_slots
control_slaves     FALSE
job_is_first_task  TRUE
urgency_slots      min
accounting_summary FALSE
qsort_args         NONE
EOF
  qconf_quiet -Ap "$tmp/smp"
fi
# Queue all.q on this host.
if ! timeout 30 qconf -sql 2>/dev/null | grep -qx all.q; then
  say "adding queue all.q ($NCPU slots on $HOST)"
  {
    printf 'qname all.q\nhostlist %s\nseq_no 0\nload_thresholds NONE\nsuspend_thresholds NONE\n' "$HOST"
    printf 'nsuspend 1\nsuspend_interval 00:05:00\npriority 0\nmin_cpu_interval 00:05:00\nprocessors UNDEFINED\n'
    printf 'qtype BATCH INTERACTIVE\nckpt_list NONE\npe_list smp\nrerun FALSE\nslots %s\ntmpdir /tmp\nshell /bin/sh\n' "$NCPU"
    printf 'prolog NONE\nepilog NONE\nshell_start_mode unix_behavior\nstarter_method NONE\nsuspend_method NONE\n'
    printf 'resume_method NONE\nterminate_method NONE\nnotify 00:00:60\nowner_list NONE\nuser_lists NONE\n'
    printf 'xuser_lists NONE\nsubordinate_list NONE\ncomplex_values NONE\nprojects NONE\nxprojects NONE\n'
    printf 'calendar NONE\ninitial_state default\n'
    for l in s_rt h_rt s_cpu h_cpu s_fsize h_fsize s_data h_data s_stack h_stack s_core h_core s_rss h_rss s_vmem h_vmem; do
      printf '%s INFINITY\n' "$l"
    done
  } >"$tmp/all.q"
  qconf_quiet -Aq "$tmp/all.q"
fi
if ! timeout 30 qconf -sq all.q | grep -E '^pe_list' | grep -qw smp; then
  say "adding smp to the pe_list of all.q"
  qconf_quiet -aattr queue pe_list smp all.q
fi

# ---------------------------------------------------------------- execd
if f="$(execd_pidfile)"; then
  if [ "$restart_execd" -eq 1 ]; then
    stop_daemon "$f" sge_execd
  else
    say "sge_execd already running (pid $(cat "$f"))"
  fi
fi
if ! execd_pidfile >/dev/null; then
  say "starting sge_execd"
  rm -f "$SPOOL"/execd/*/execd.pid # stale: none names a live sge_execd
  sge_execd 9>&- || die "sge_execd failed to start; see $SPOOL/execd/*/messages"
fi

# The queue instance is usable once the execd has reported ('u' state gone). An error state (E,
# left by a job that died with a previous execd) or a disabled queue (d) is cleared.
state="?"
line=""
cleared=0
start=$SECONDS
while [ $((SECONDS - start)) -lt "$WAIT_SECONDS" ]; do
  line="$(timeout 10 qstat -f -q "all.q@$HOST" 2>/dev/null | grep "^all.q@" || true)"
  if [ -n "$line" ]; then
    state="$(awk '{print $6}' <<<"$line")"
    [ -z "$state" ] && break
    if [ "$cleared" -eq 0 ] && [[ "$state" == *[EdD]* ]]; then
      say "queue all.q@$HOST is in state '$state'; clearing and enabling it"
      timeout 10 qmod -c "all.q@$HOST" >/dev/null 2>&1 || true
      timeout 10 qmod -e "all.q@$HOST" >/dev/null 2>&1 || true
      cleared=1
    fi
  fi
  if [ $((SECONDS - start)) -ge 5 ] && ! execd_pidfile >/dev/null && ! running_named sge_execd; then die "sge_execd died; see $SPOOL/execd/*/messages"; fi
  sleep 0.5
done
[ -n "$line" ] && [ -z "$state" ] || die "queue all.q@$HOST is not ready after ${WAIT_SECONDS}s (state '${state}'):
$(timeout 10 qstat -f 2>&1 | head -n 10)"
say "SGE is up: all.q@$HOST with $NCPU slots; use SGE_ROOT=$SGE_ROOT SGE_CELL=$SGE_CELL"
