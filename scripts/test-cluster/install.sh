#!/usr/bin/env bash
# Install, from Debian's packages, the real components xpr's tests run against:
#   OpenSSH server + client, munge, SLURM (slurmctld, slurmd, client), procps;
#   SLURM accounting: slurmdbd + mariadb-server (so `sacct -j ID` works; skip with --no-accounting);
#   optional, in a separate step that may fail without failing the script: Grid Engine
#   (gridengine-master, gridengine-exec, gridengine-client; skip with --no-sge);
#   tcsh and fish (login shells a cluster account may have), redis-server (the executor's queues)
#   and chromium (its dashboard test); Debian's
#   slurm-wlm-torque (Torque-style qsub/qstat/qdel over SLURM), unpacked to /opt/slurm-wlm-torque
#   rather than installed (see TORQUE_DIR below).
#
#   scripts/test-cluster/install.sh [--no-accounting] [--no-sge]
#
# Idempotent: exits 0 at once, saying so, when everything is installed. Run as root (it calls
# apt-get update once, then apt-get install). Without root it prints what is missing and how to
# install it, and exits 1 (0 if nothing is missing). Installing starts no daemon: a temporary
# /usr/sbin/policy-rc.d stops the packages' own service starts (no sshd on port 22); the tests
# start their own sshd, and start-slurm.sh / start-sge.sh the schedulers.
set -euo pipefail

say() { printf 'install: %s\n' "$*"; }
warn() { printf 'install: WARNING: %s\n' "$*" >&2; }
die() { printf 'install: ERROR: %s\n' "$*" >&2; exit 1; }

with_accounting=1
with_sge=1
for arg in "$@"; do
  case "$arg" in
    --no-accounting) with_accounting=0 ;;
    --no-sge) with_sge=0 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) die "unknown argument '$arg' (use --no-accounting, --no-sge or --help)" ;;
  esac
done

# libslurm-perl, libslurmdb-perl, libswitch-perl: what slurm-wlm-torque's wrappers run on.
REQUIRED=(openssh-server openssh-client munge slurmctld slurmd slurm-client procps tcsh fish redis-server chromium
  libslurm-perl libslurmdb-perl libswitch-perl)
ACCOUNTING=(slurmdbd mariadb-server)
SGE=(gridengine-master gridengine-exec gridengine-client)
# slurm-wlm-torque declares Conflicts: gridengine-client (both own /usr/bin/qsub, qstat, qdel), so
# installing either removes the other. Its files are unpacked to TORQUE_DIR instead, next to links
# to sbatch/salloc/srun (its qsub runs them from its own dir); the Torque tests put
# $TORQUE_DIR/usr/bin first on PATH.
TORQUE_PKG=slurm-wlm-torque
TORQUE_DIR=/opt/slurm-wlm-torque

[ -r /etc/debian_version ] || die "this script installs Debian packages; /etc/debian_version not found"
command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found; not a Debian system?"

installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]; }
missing_of() { local p; for p in "$@"; do installed "$p" || printf '%s\n' "$p"; done; }

mapfile -t miss_req < <(missing_of "${REQUIRED[@]}")
miss_acct=()
if [ "$with_accounting" -eq 1 ]; then mapfile -t miss_acct < <(missing_of "${ACCOUNTING[@]}"); fi
miss_sge=()
if [ "$with_sge" -eq 1 ]; then mapfile -t miss_sge < <(missing_of "${SGE[@]}"); fi
miss_torque=()
if [ ! -x "$TORQUE_DIR/usr/bin/qsub" ] || [ ! -e "$TORQUE_DIR/usr/bin/sbatch" ]; then miss_torque=("$TORQUE_PKG"); fi

if [ "${#miss_req[@]}" -eq 0 ] && [ "${#miss_acct[@]}" -eq 0 ] && [ "${#miss_sge[@]}" -eq 0 ] && [ "${#miss_torque[@]}" -eq 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then bash "$(dirname "$0")/create-users.sh" || die "creating the test cluster's users failed"; fi
  say "everything is already installed: ${REQUIRED[*]}$([ "$with_accounting" -eq 1 ] && printf ' %s' "${ACCOUNTING[@]}")$([ "$with_sge" -eq 1 ] && printf ' %s' "${SGE[@]}") $TORQUE_PKG (in $TORQUE_DIR)"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  all=("${miss_req[@]}" "${miss_acct[@]}" "${miss_sge[@]}")
  printf 'install: not root, so nothing was installed. Missing packages: %s\n' "${all[*]}" >&2
  printf 'install: run this script as root (sudo %s), or:\n' "$0" >&2
  printf '  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends %s\n' "${all[*]}" >&2
  if [ "${#miss_torque[@]}" -gt 0 ]; then
    printf '  (%s is unpacked to %s, not installed; see the Torque step in %s)\n' "$TORQUE_PKG" "$TORQUE_DIR" "$0" >&2
  fi
  if [ "${#miss_sge[@]}" -gt 0 ]; then
    printf '  (gridengine needs debconf answers first; see the SGE step in %s)\n' "$0" >&2
  fi
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
APT_INSTALL=(apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

# Keep the packages' maintainer scripts from starting daemons (sshd on :22, munge, slurm, exim, ...).
POLICY=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# temporary, from xpr scripts/test-cluster/install.sh\nexit 101\n' >"$POLICY"
  chmod 0755 "$POLICY"
  made_policy=1
fi
cleanup() { if [ "$made_policy" -eq 1 ]; then rm -f "$POLICY"; fi; }
trap cleanup EXIT

say "apt-get update"
apt-get update -qq || die "apt-get update failed"

if [ "${#miss_req[@]}" -gt 0 ] || [ "${#miss_acct[@]}" -gt 0 ]; then
  say "installing: ${miss_req[*]} ${miss_acct[*]}"
  "${APT_INSTALL[@]}" "${miss_req[@]}" "${miss_acct[@]}" || die "apt-get install failed"
fi

for bin in /usr/sbin/sshd /usr/bin/ssh /usr/bin/ssh-keygen /usr/sbin/munged /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sbatch; do
  [ -x "$bin" ] || die "$bin is missing after the install"
done
say "SSH, munge and SLURM are installed (slurm $(dpkg-query -W -f='${Version}' slurmctld))"
if [ "$with_accounting" -eq 1 ]; then
  for bin in /usr/sbin/slurmdbd /usr/sbin/mariadbd /usr/bin/sacctmgr; do
    [ -x "$bin" ] || die "$bin is missing after the install"
  done
  say "SLURM accounting (slurmdbd + MariaDB) is installed"
fi

# ---------------------------------------------------------------- optional: Grid Engine
# Debian's gridengine-master configures a cell at install time from three debconf answers; the
# master host must be this host's short name, which must resolve. A failure here only warns.
install_sge() {
  local host
  host="$(hostname -s)"
  if ! getent hosts "$host" >/dev/null 2>&1; then
    say "host name '$host' does not resolve; adding '127.0.0.1 $host' to /etc/hosts (SGE needs it)"
    printf '127.0.0.1 %s\n' "$host" >>/etc/hosts
  fi
  debconf-set-selections <<EOF || return 1
gridengine-common shared/gridengineconfig boolean true
gridengine-common shared/gridenginecell string default
gridengine-common shared/gridenginemaster string $host
gridengine-master shared/gridengineconfig boolean true
gridengine-master shared/gridenginecell string default
gridengine-master shared/gridenginemaster string $host
gridengine-client shared/gridengineconfig boolean true
gridengine-client shared/gridenginecell string default
gridengine-client shared/gridenginemaster string $host
gridengine-exec shared/gridengineconfig boolean true
gridengine-exec shared/gridenginecell string default
gridengine-exec shared/gridenginemaster string $host
EOF
  "${APT_INSTALL[@]}" "${SGE[@]}" || return 1
  [ -x /usr/lib/gridengine/sge_qmaster ] && [ -x /usr/lib/gridengine/sge_execd ] || return 1
  [ -f /var/lib/gridengine/default/common/bootstrap ] || return 1
}

if [ "$with_sge" -eq 1 ]; then
  if [ "${#miss_sge[@]}" -eq 0 ]; then
    say "Grid Engine is already installed"
  elif (install_sge); then
    say "Grid Engine is installed (start it with scripts/test-cluster/start-sge.sh)"
  else
    warn "Grid Engine could not be installed; the SGE tests will use the command shim instead."
    # Do not leave half-configured packages behind: they would make every later apt-get fail.
    apt-get purge -y gridengine-master gridengine-exec gridengine-client gridengine-common >/dev/null 2>&1 \
      || dpkg --configure -a >/dev/null 2>&1 || true
  fi
fi
# ---------------------------------------------------------------- Torque wrappers, unpacked
install_torque() {
  local tmp new="$TORQUE_DIR.new" deb b
  tmp="$(mktemp -d)"
  # As root into a private dir: apt's _apt sandbox user could not write there.
  (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$TORQUE_PKG") || { rm -rf "$tmp"; return 1; }
  deb="$(ls "$tmp"/"$TORQUE_PKG"_*.deb)" || { rm -rf "$tmp"; return 1; }
  rm -rf "$new"
  if ! dpkg-deb -x "$deb" "$new" || ! dpkg-deb -f "$deb" Version >"$new/VERSION"; then
    rm -rf "$tmp" "$new"
    return 1
  fi
  rm -rf "$tmp"
  for b in sbatch salloc srun; do ln -s "/usr/bin/$b" "$new/usr/bin/$b"; done
  rm -rf "$TORQUE_DIR" && mv "$new" "$TORQUE_DIR"
}
if [ "${#miss_torque[@]}" -gt 0 ]; then
  install_torque || die "could not unpack $TORQUE_PKG into $TORQUE_DIR"
  say "$TORQUE_PKG $(cat "$TORQUE_DIR/VERSION") is unpacked in $TORQUE_DIR (qsub, qstat, qdel in $TORQUE_DIR/usr/bin)"
fi
# The cluster's own accounts (another uid and home, bash and tcsh login shells) for the SSH tests.
bash "$(dirname "$0")/create-users.sh" || die "creating the test cluster's users failed"
say "done"
