#!/bin/sh
# Turns a Debian 12 lab host into the lab's stand-in for an RPM host, for the dnf path tests
# (Tests/RunbookTests/DnfPathTests.swift, lab host11). Run as root on the host; safe to run again.
#
# Why a stand-in: the lab's hosts share one Debian root filesystem, and only Debian's archive is
# reachable, so there is no CentOS/Fedora userland. Debian ships a real dnf 4 and rpm 4.18, which
# is enough to run ccrun's yum/dnf path for real. What makes the host "look like" an RPM host to
# ccrun's fact probe (so the engine picks dnf by probing, not by a flag):
#   - dnf and rpm are installed from the lab's apt repository (with the absolute path of
#     apt-get, which step 2 hides);
#   - /etc/environment sets PATH (pam_env, read by sshd for every new SSH connection) to
#     /usr/local/sbin:/usr/local/bin and a directory of symlinks to every program in /usr/sbin and
#     /usr/bin EXCEPT apt* and dpkg*: `command -v apt-get` and `command -v dpkg-query` fail, so the
#     probe sees dnf and rpm only. Nothing is removed; /usr/bin/apt-get still works by full path;
#   - /etc/os-release names the stand-in (ID=ccrun-rpm-standin, ID_LIKE="rhel fedora");
#   - a dnf repository of the stand-in rpms (Fixtures/rpm/ccrun-lab-standins.spec), copied to
#     /var/lib/ccrun-lab-standin-repo by the test, is configured as a file:// repo.
# Debian's rpm keeps its database in ~/.rpmdb (/root/.rpmdb for root), for rpm and dnf alike.
#
# With the argument `restore` it also makes the rpm side bare again: every rpm erased, dnf's
# history and cache removed (host11 runs nothing but these tests).
set -eu
# Our own PATH: the session's may be the symlink directory this script rebuilds (or a broken one).
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH

BIN=/usr/local/lib/ccrun-lab-rpm-host/bin
REPO=/var/lib/ccrun-lab-standin-repo

# 1. a real dnf and rpm
if [ ! -x /usr/bin/dnf ] || [ ! -x /usr/bin/rpm ]; then
  /usr/bin/apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive /usr/bin/apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends dnf rpm >/dev/null
fi

# 2. a PATH without apt and dpkg, for every new SSH session
rm -rf "$BIN.new"
mkdir -p "$BIN.new"
for dir in /usr/sbin /usr/bin; do
  for f in "$dir"/*; do
    name=${f##*/}
    case "$name" in apt|apt-*|dpkg|dpkg-*) continue ;; esac
    if [ -f "$f" ] && [ -x "$f" ] && [ ! -e "$BIN.new/$name" ]; then ln -s "$f" "$BIN.new/$name"; fi
  done
done
rm -rf "$BIN"
mv "$BIN.new" "$BIN"
printf 'PATH=/usr/local/sbin:/usr/local/bin:%s\n' "$BIN" > /etc/environment

# 3. the stand-in's os-release (a file replacing Debian's symlink)
cat > /etc/os-release.ccrun-new <<'EOF'
NAME="ccrun lab RPM host stand-in"
PRETTY_NAME="ccrun lab RPM host stand-in (Debian 12 userland with dnf 4 and rpm; apt hidden from PATH)"
ID=ccrun-rpm-standin
ID_LIKE="rhel fedora"
VERSION_ID="8"
EOF
mv -f /etc/os-release.ccrun-new /etc/os-release

# 4. the stand-in rpm repository (its files are copied to $REPO by the test)
mkdir -p /etc/yum.repos.d "$REPO"
cat > /etc/yum.repos.d/ccrun-lab-standins.repo <<EOF
[ccrun-lab-standins]
name=ccrun lab stand-in rpms (test packages, not the real software)
baseurl=file://$REPO
gpgcheck=0
metadata_expire=0
EOF

# 5. restore: no rpm installed, no dnf history
if [ "${1:-}" = restore ]; then
  installed=$(/usr/bin/rpm -qa 2>/dev/null | grep -v '^gpg-pubkey' || true)
  if [ -n "$installed" ]; then
    # shellcheck disable=SC2086
    /usr/bin/rpm -e --nodeps $installed 2>/dev/null
  fi
  rm -rf /var/lib/dnf /var/cache/dnf /var/lib/ccrun   # ccrun journals of earlier test runs too
fi
echo "rpm host stand-in ready"
