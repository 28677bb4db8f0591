#!/usr/bin/env bash
# Start (idempotently) a one-node SLURM cluster on this machine for xpr's tests:
# munged (as user munge) [+ mariadbd + slurmdbd] + slurmctld + slurmd, tuned for fast tests.
#
#   scripts/test-cluster/start-slurm.sh            # as root; exits 0 once the node is idle
#   XPR_SLURM_WAIT=120 scripts/test-cluster/start-slurm.sh
#   XPR_SLURM_ACCOUNTING=none scripts/test-cluster/start-slurm.sh   # no MariaDB/slurmdbd
#
# Needs root and the Debian packages installed by scripts/test-cluster/install.sh.
# Re-running is safe: running daemons are left alone unless a config file had to change,
# in which case the SLURM daemons are restarted with the new configuration.
#
# Partitions:
#   debug  (default)  MaxTime=01:00:00
#   short             MaxTime=00:05:00
# SLURM time limits are whole minutes (--time=0:01 is rounded up to 1 minute) and slurmctld
# checks them every 30 s, so a job over --time=1 is killed 60-90 s after it started.
#
# Accounting (XPR_SLURM_ACCOUNTING, default auto):
#   slurmdbd  when slurmdbd and mariadbd are installed (install.sh installs them): MariaDB on its
#             unix socket only (no TCP port) + slurmdbd, so `sacct -j ID` works as on a real cluster.
#   none      AccountingStorageType=accounting_storage/none: plain `sacct` prints
#             "Slurm accounting storage is disabled"; `sacct -c -j ID` reads the jobcomp file.
# In both cases JobCompType=jobcomp/filetxt writes /var/log/slurm/jobcomp.txt.
#
# Memory (XPR_SLURM_CGROUP, default auto): memory is a consumable resource (CR_Core_Memory,
# DefMemPerCPU=500, so a job without --mem takes 500 MB per CPU, not the whole node).
#   v1    when the cgroup v1 memory controller is mounted (/sys/fs/cgroup/memory): TaskPlugin=task/cgroup
#         with ConstrainRAMSpace, so a job over its --mem is OOM-killed and ends OUT_OF_MEMORY.
#   none  TaskPlugin=task/none + JobAcctGatherParams=OverMemoryKill: a job over --mem is killed by
#         polling (within ~1 s) but ends FAILED (ExitCode 0:9), not OUT_OF_MEMORY.
set -euo pipefail

say() { printf 'start-slurm: %s\n' "$*"; }
die() { printf 'start-slurm: ERROR: %s\n' "$*" >&2; exit 1; }
# shellcheck source=daemons.sh
. "$(dirname "$0")/daemons.sh"

WAIT_SECONDS="${XPR_SLURM_WAIT:-60}"
CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
DBD_CONF="$CONF_DIR/slurmdbd.conf"
STATE_DIR=/var/lib/slurm/slurmctld
SPOOL_DIR=/var/lib/slurm/slurmd
LOG_DIR=/var/log/slurm
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
DBD_PID=/run/slurmdbd.pid
MYSQL_PID=/run/mysqld/mysqld.pid
MYSQL_LOG="$LOG_DIR/mariadb.log"
MUNGE_KEY=/etc/munge/munge.key
CLUSTER=xpr-test
# Only for the local test database, reachable only through root's unix socket.
DB_PASS=xpr-test-only

[ "$(id -u)" -eq 0 ] || die "must run as root (it writes $CONF, /etc/munge and starts daemons); try: sudo $0"
export PATH="$PATH:/usr/sbin:/sbin"

# Test files start the cluster side by side; one run at a time, or two would each start a
# mariadbd on the same data directory and one would die on InnoDB's lock. Daemons are started with fd 9 closed, or they would
# hold the lock for as long as they run.
exec 9>/run/xpr-start-slurm.lock
flock -w 600 9 || die "another start-slurm.sh has held /run/xpr-start-slurm.lock for 10 minutes"

missing=()
for bin in munged munge unmunge slurmctld slurmd sinfo scontrol sbatch squeue; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
[ "${#missing[@]}" -eq 0 ] || die "missing commands: ${missing[*]} — run scripts/test-cluster/install.sh first"

HOST="$(hostname -s)"
[ -n "$HOST" ] || die "hostname -s printed nothing"
# slurmctld and slurmd look their own host name up; make sure it resolves.
if ! getent hosts "$HOST" >/dev/null 2>&1; then
  say "host name '$HOST' does not resolve; adding '127.0.0.1 $HOST' to /etc/hosts"
  printf '127.0.0.1 %s\n' "$HOST" >>/etc/hosts
fi
# The node offers more CPUs than the machine has (the partition `machine` only as many as it has,
# for the benchmark, which measures at the scheduler's own limit) (XPR_SLURM_CPUS, default 8, at least nproc): test
# jobs sleep or do trivial work, and on 2 real cores the suites' wall-time jobs (each holding a CPU
# for 60-90 s) would otherwise queue every other job behind them. config_overrides makes slurmd
# take the configured count instead of draining the node for having fewer.
NCPU="${XPR_SLURM_CPUS:-8}"
[ "$NCPU" -ge "$(nproc)" ] || NCPU="$(nproc)"

ACCOUNTING="${XPR_SLURM_ACCOUNTING:-auto}"
if [ "$ACCOUNTING" = auto ]; then
  if command -v slurmdbd >/dev/null 2>&1 && command -v mariadbd >/dev/null 2>&1 \
     && command -v sacctmgr >/dev/null 2>&1; then
    ACCOUNTING=slurmdbd
  else
    ACCOUNTING=none
  fi
fi
case "$ACCOUNTING" in
  slurmdbd)
    for bin in slurmdbd mariadbd mariadb mariadb-admin sacctmgr; do
      command -v "$bin" >/dev/null 2>&1 || die "XPR_SLURM_ACCOUNTING=slurmdbd but '$bin' is missing — run install.sh"
    done ;;
  none) ;;
  *) die "XPR_SLURM_ACCOUNTING must be auto, slurmdbd or none (got '$ACCOUNTING')" ;;
esac

CGROUP="${XPR_SLURM_CGROUP:-auto}"
if [ "$CGROUP" = auto ]; then
  if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then CGROUP=v1; else CGROUP=none; fi
fi
case "$CGROUP" in
  v1)
    [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ] \
      || die "XPR_SLURM_CGROUP=v1 but no cgroup v1 memory controller at /sys/fs/cgroup/memory"
    TASK_LINES="TaskPlugin=task/cgroup"
    ;;
  none)
    TASK_LINES="TaskPlugin=task/none
JobAcctGatherParams=OverMemoryKill"
    ;;
  *) die "XPR_SLURM_CGROUP must be auto, v1 or none (got '$CGROUP')" ;;
esac

# wait_until SECONDS PIDFILE NAME SHELL-COMMAND: retry the command (each try cut off after 10 s)
# until it succeeds. Returns 1 on timeout, and 2 at once when the daemon NAME has died (checked
# after a 3-second grace for it to start).
wait_until() {
  local secs="$1" pidfile="$2" name="$3" cmd="$4" start=$SECONDS
  while :; do
    if timeout 10 bash -c "$cmd" >/dev/null 2>&1; then return 0; fi
    if [ -n "$pidfile" ] && [ $((SECONDS - start)) -ge 3 ] && daemon_died "$pidfile" "$name"; then return 2; fi
    [ $((SECONDS - start)) -lt "$secs" ] || return 1
    sleep 0.2
  done
}
# why_failed RC DAEMON: the words for a wait_until failure.
why_failed() { if [ "$1" -eq 2 ]; then printf '%s died' "$2"; else printf 'no answer from %s after %ss' "$2" "$WAIT_SECONDS"; fi; }

# Install $2 (a temp file) as $1 with mode $3 unless identical; returns 0 when it changed.
install_if_changed() {
  local dest="$1" src="$2" mode="$3"
  if [ -f "$dest" ] && cmp -s "$src" "$dest"; then return 1; fi
  say "writing $dest"
  install -m "$mode" -o root -g root "$src" "$dest"
  return 0
}

TMP_DIR="$(mktemp -d)"
trap 'rm -rf "$TMP_DIR"' EXIT

# ---------------------------------------------------------------- munge
if [ ! -s "$MUNGE_KEY" ]; then
  say "creating munge key $MUNGE_KEY"
  install -d -o munge -g munge -m 0700 /etc/munge
  if command -v mungekey >/dev/null 2>&1; then
    mungekey --create --keyfile="$MUNGE_KEY" --force
  else
    dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
  fi
fi
chown munge:munge /etc/munge "$MUNGE_KEY"
chmod 0700 /etc/munge
chmod 0400 "$MUNGE_KEY"
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge

if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  say "munged already running"
else
  say "starting munged as user munge"
  rm -f /run/munge/munged.pid
  runuser -u munge -- munged 9>&- || die "munged failed to start; see /var/log/munge/munged.log"
  rc=0; wait_until "$WAIT_SECONDS" /run/munge/munged.pid munged 'munge -n | unmunge' || rc=$?
  [ "$rc" -eq 0 ] || die "'munge -n | unmunge' fails: $(why_failed "$rc" munged); last log lines:
$(tail -n 10 /var/log/munge/munged.log 2>/dev/null)"
fi

# ---------------------------------------------------------------- config files
install -d -m 0755 "$CONF_DIR" "$LOG_DIR" "$STATE_DIR" "$SPOOL_DIR"

if [ "$ACCOUNTING" = slurmdbd ]; then
  ACCT_LINES="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$HOST
AccountingStoragePort=6819"
else
  ACCT_LINES="AccountingStorageType=accounting_storage/none"
fi

cat >"$TMP_DIR/slurm.conf" <<EOF
# Written by xpr scripts/test-cluster/start-slurm.sh: a one-node test cluster. Edits are overwritten.
ClusterName=$CLUSTER
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
SelectType=select/cons_tres
# Memory limits ($CGROUP): see the top of start-slurm.sh.
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
$TASK_LINES
ReturnToService=2

# Fast scheduling for tests: a job starts within ~1 s of submission. sched_interval=1 comes first
# because sched/builtin takes its own 'interval=' from the first match in this string.
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1,batch_sched_delay=0,sched_min_interval=0
# Finished jobs stay visible to 'scontrol show job' / 'squeue -t all' for 30 s.
MinJobAge=30
MaxArraySize=1001
MaxJobCount=20000

# Time limits: no grace minutes; SIGTERM, then SIGKILL 2 s later.
OverTimeLimit=0
KillWait=2
InactiveLimit=0
UnkillableStepTimeout=60

# Accounting: $ACCOUNTING. Completion records also go to a text file, read by 'sacct -c'.
$ACCT_LINES
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG_DIR/jobcomp.txt
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1

StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info

SlurmdParameters=config_overrides
NodeName=$HOST CPUs=$NCPU RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=01:00:00 State=UP
PartitionName=short Nodes=$HOST Default=NO MaxTime=00:05:00 State=UP
PartitionName=machine Nodes=$HOST Default=NO MaxTime=01:00:00 MaxCPUsPerNode=$(nproc) State=UP
EOF

restart=0
if install_if_changed "$CONF" "$TMP_DIR/slurm.conf" 0644; then restart=1; fi

if [ "$CGROUP" = v1 ]; then
  cat >"$TMP_DIR/cgroup.conf" <<EOF
# Written by xpr scripts/test-cluster/start-slurm.sh: enforce --mem through the cgroup v1 memory controller.
CgroupPlugin=cgroup/v1
ConstrainRAMSpace=yes
ConstrainSwapSpace=yes
AllowedSwapSpace=0
EOF
else
  # slurmd initialises a cgroup plugin even with task/none; on a cgroup v2 host without systemd
  # (a container, a chroot) cgroup/v2 would otherwise ask systemd over D-Bus for a scope and fail.
  cat >"$TMP_DIR/cgroup.conf" <<EOF
# Written by xpr scripts/test-cluster/start-slurm.sh: no memory enforcement through cgroups.
CgroupPlugin=autodetect
IgnoreSystemd=yes
IgnoreSystemdOnFailure=yes
EOF
fi
if install_if_changed "$CONF_DIR/cgroup.conf" "$TMP_DIR/cgroup.conf" 0644; then restart=1; fi

if [ "$ACCOUNTING" = slurmdbd ]; then
  cat >"$TMP_DIR/slurmdbd.conf" <<EOF
# Written by xpr scripts/test-cluster/start-slurm.sh: accounting for the one-node test cluster.
AuthType=auth/munge
DbdHost=$HOST
DbdPort=6819
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
PidFile=$DBD_PID
LogFile=$LOG_DIR/slurmdbd.log
DebugLevel=info
EOF
  if install_if_changed "$DBD_CONF" "$TMP_DIR/slurmdbd.conf" 0600; then restart=1; fi
fi

if [ "$restart" -eq 1 ]; then
  stop_daemon "$SLURMD_PID" slurmd
  stop_daemon "$CTLD_PID" slurmctld
  stop_daemon "$DBD_PID" slurmdbd
fi

# ---------------------------------------------------------------- MariaDB + slurmdbd
if [ "$ACCOUNTING" = slurmdbd ]; then
  # Cut off: a mariadbd that is stopped or swamped accepts the connection and never answers.
  if timeout 5 mariadb-admin ping >/dev/null 2>&1; then
    say "mariadbd already running"
  else
    if [ ! -d /var/lib/mysql/mysql ]; then
      say "initialising the MariaDB data directory"
      mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    fi
    install -d -o mysql -g mysql -m 0755 /run/mysqld
    if pid_alive "$MYSQL_PID" mariadbd; then
      # Alive but not answering yet (still starting, or busy): a second one would die on InnoDB's lock.
      say "mariadbd (pid $(cat "$MYSQL_PID")) is not answering yet; waiting for it"
    else
      clear_stale_pidfile "$MYSQL_PID" mariadbd
      say "starting mariadbd (unix socket only)"
      setsid mariadbd 9>&- --user=mysql --skip-networking --pid-file="$MYSQL_PID" \
        </dev/null >>"$MYSQL_LOG" 2>&1 &
    fi
    rc=0; wait_until "$WAIT_SECONDS" "$MYSQL_PID" mariadbd 'mariadb-admin ping' || rc=$?
    [ "$rc" -eq 0 ] || die "mariadbd did not come up: $(why_failed "$rc" mariadbd); last log lines:
$(tail -n 20 "$MYSQL_LOG" 2>/dev/null)"
  fi
  timeout 30 mariadb -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';" \
    || die "could not create the MariaDB user 'slurm' for slurmdbd"

  if pid_alive "$DBD_PID" slurmdbd; then
    say "slurmdbd already running (pid $(cat "$DBD_PID"))"
  else
    say "starting slurmdbd"
    clear_stale_pidfile "$DBD_PID" slurmdbd
    slurmdbd 9>&- || die "slurmdbd failed to start; last log lines:
$(tail -n 20 "$LOG_DIR/slurmdbd.log" 2>/dev/null)"
  fi
  rc=0; wait_until "$WAIT_SECONDS" "$DBD_PID" slurmdbd 'sacctmgr -n -P list cluster format=cluster' || rc=$?
  [ "$rc" -eq 0 ] || die "slurmdbd does not answer sacctmgr: $(why_failed "$rc" slurmdbd); last log lines:
$(tail -n 20 "$LOG_DIR/slurmdbd.log" 2>/dev/null)"
  if ! timeout 30 sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
    say "registering cluster $CLUSTER with slurmdbd"
    timeout 30 sacctmgr -i add cluster "$CLUSTER" >/dev/null || die "sacctmgr add cluster $CLUSTER failed"
  fi
elif pid_alive "$DBD_PID" slurmdbd; then
  say "accounting is off; stopping slurmdbd"
  stop_daemon "$DBD_PID" slurmdbd
fi

# ---------------------------------------------------------------- slurmctld + slurmd
if pid_alive "$CTLD_PID" slurmctld; then
  say "slurmctld already running (pid $(cat "$CTLD_PID"))"
else
  say "starting slurmctld"
  clear_stale_pidfile "$CTLD_PID" slurmctld
  slurmctld 9>&- || die "slurmctld failed to start; last log lines:
$(tail -n 20 "$LOG_DIR/slurmctld.log" 2>/dev/null)"
fi

rc=0; wait_until "$WAIT_SECONDS" "$CTLD_PID" slurmctld "scontrol ping | grep -q 'is UP'" || rc=$?
[ "$rc" -eq 0 ] || die "slurmctld does not answer 'scontrol ping': $(why_failed "$rc" slurmctld); last log lines:
$(tail -n 20 "$LOG_DIR/slurmctld.log" 2>/dev/null)"

if pid_alive "$SLURMD_PID" slurmd; then
  say "slurmd already running (pid $(cat "$SLURMD_PID"))"
else
  say "starting slurmd"
  clear_stale_pidfile "$SLURMD_PID" slurmd
  slurmd 9>&- || die "slurmd failed to start; last log lines:
$(tail -n 20 "$LOG_DIR/slurmd.log" 2>/dev/null)"
fi

# ---------------------------------------------------------------- wait for the node
state=""
resumed=0
deadline=$((SECONDS + WAIT_SECONDS))
while [ "$SECONDS" -lt "$deadline" ]; do
  state="$(timeout 10 sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null | head -n 1 || true)"
  if [ $((SECONDS + WAIT_SECONDS - deadline)) -ge 3 ] && ! pid_alive "$SLURMD_PID" slurmd; then
    die "slurmd died; last log lines:
$(tail -n 15 "$LOG_DIR/slurmd.log" 2>/dev/null)"
  fi
  case "$state" in
    idle|mixed|allocated|completing) break ;;
    down*|drain*|fail*)
      if [ "$resumed" -eq 0 ]; then
        say "node $HOST is '$state'; resuming it"
        timeout 10 scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
        resumed=1
      fi
      ;;
  esac
  sleep 0.5
done
case "$state" in
  idle|mixed|allocated|completing)
    say "SLURM is up: node $HOST ($NCPU CPUs) is $state; partitions: $(timeout 10 sinfo -h -o '%P' | tr '\n' ' ')accounting: $ACCOUNTING; memory limits: $CGROUP"
    ;;
  *)
    die "node $HOST is '${state:-unknown}' after ${WAIT_SECONDS}s (wanted idle).
sinfo -N -l:
$(timeout 10 sinfo -N -l 2>&1)
scontrol show node:
$(timeout 10 scontrol show node "$HOST" 2>&1 | grep -E 'State|Reason')
last slurmd log lines:
$(tail -n 15 "$LOG_DIR/slurmd.log" 2>/dev/null)"
    ;;
esac
