#!/usr/bin/env bash
# Create the test cluster's user accounts, as a real cluster has them: users other than the one who
# runs the driver, each with its own home and login shell. The SSH end-to-end tests log in as these
# users, so their jobs run under another uid and nothing is shared with the driver but SSH.
#
#   xpr-bash   login shell /bin/bash
#   xpr-tcsh   login shell tcsh (as on many older clusters)
#
# Idempotent; run as root. Prints the users' names and shells.
set -euo pipefail

die() { printf 'create-users: ERROR: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (it calls useradd)"

tcsh_path="$(command -v tcsh || true)"
[ -n "$tcsh_path" ] || die "tcsh is not installed (apt-get install tcsh, or run scripts/test-cluster/install.sh)"
grep -qx "$tcsh_path" /etc/shells || printf '%s\n' "$tcsh_path" >>/etc/shells

make_user() {
  local name="$1" shell="$2"
  if id -u "$name" >/dev/null 2>&1; then
    [ "$(getent passwd "$name" | cut -d: -f7)" = "$shell" ] || usermod -s "$shell" "$name"
  else
    useradd --create-home --shell "$shell" --user-group "$name"
  fi
  # No password, but not locked ('!'): without PAM, sshd refuses every login to a locked account.
  usermod -p '*' "$name"
  local home
  home="$(getent passwd "$name" | cut -d: -f6)"
  # A home only its owner can read, as on a cluster: the driver's files never reach it but over SSH.
  mkdir -p "$home"
  chown "$name:" "$home"
  chmod 0700 "$home"
  printf 'create-users: %s (shell %s, home %s)\n' "$name" "$shell" "$home"
}

make_user xpr-bash /bin/bash
make_user xpr-tcsh "$tcsh_path"
