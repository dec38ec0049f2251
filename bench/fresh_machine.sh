#!/usr/bin/env bash
# Times the README's first command on a fresh Debian 12: a minimal
# debootstrap of bookworm in a chroot (nothing of this machine's packages,
# Python or build in it), a clone of this checkout, then `bash
# scripts/demo.sh` inside it, timed by /usr/bin/time. Needs root and
# debootstrap (apt-get install debootstrap); takes about as long as the demo.
#
#   sudo bash bench/fresh_machine.sh [ROOT_DIR]     (default /tmp/lowbit-fresh)
#
# Only the network setup is carried in: DNS, the apt sources, and the CA
# bundle, because this workplace reaches PyPI through a proxy with its own
# CA (a fresh machine here has it too). The log is ROOT_DIR.log.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
R="${1:-/tmp/lowbit-fresh}"
LOG="$R.log"
cleanup() { umount -R "$R/proc" "$R/dev" "$R/sys" 2>/dev/null || umount -l "$R/proc" "$R/dev" "$R/sys" 2>/dev/null || true; }
trap cleanup EXIT
rm -rf "$R"
t0=$(date +%s)
debootstrap --variant=minbase bookworm "$R" http://deb.debian.org/debian > "$LOG" 2>&1
echo "debootstrap: $(( $(date +%s) - t0 )) s"
cp /etc/resolv.conf "$R/etc/resolv.conf"
cp /etc/apt/sources.list.d/* "$R/etc/apt/sources.list.d/" 2>/dev/null || true
cp /etc/ssl/certs/ca-certificates.crt "$R/root/workplace-ca.crt"
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount --rbind /sys "$R/sys"
git clone -q "$REPO" "$R/root/lowbit"
t1=$(date +%s)
rc=0
/usr/bin/time -v chroot "$R" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  LANG=C.UTF-8 PIP_CERT=/root/workplace-ca.crt PIP_DEFAULT_TIMEOUT=180 \
  bash -c "cd /root/lowbit && bash scripts/demo.sh" >> "$LOG" 2>&1 || rc=$?
echo "scripts/demo.sh on the fresh system: exit $rc, $(( $(date +%s) - t1 )) s (log: $LOG)"
exit $rc
