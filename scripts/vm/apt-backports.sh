#!/bin/sh
# Makes bookworm-backports available to apt on a Debian 12 host (the VM's qemu comes from
# there: Debian 12 images here carry qemu-utils from backports, which bookworm's own
# qemu-system-x86 would remove). Nothing this script adds may leave apt broken: a source it
# adds (or one an earlier version of it wrote) that `apt-get update` cannot use is removed
# again, saying what was tried, and apt is updated without it. Exits 0 either way; prints
# "backports" on stdout when the release is usable, nothing otherwise.
#
# usage: scripts/vm/apt-backports.sh        env: MIRROR (default: scripts/vm/mirror.sh)
#        SOURCES_D=/etc/apt/sources.list.d  (for tests)
set -eu
here=$(dirname "$0")
D=${SOURCES_D:-/etc/apt/sources.list.d}
grep -qs bookworm /etc/os-release || exit 0
MIRROR=$("$here/mirror.sh")
added=""
legacy=$D/bookworm-backports.list
if [ -f "$legacy" ] && [ "$(wc -l <"$legacy")" = 1 ] &&
   grep -qx 'deb https\?://[^ ]* bookworm-backports main' "$legacy"; then
    # Written by an earlier version of this script (whose mirror could come from a comment
    # line): checked like a new one, and removed if apt cannot use it.
    added=$legacy
elif ! grep -rqs '^[^#]*bookworm-backports' /etc/apt/sources.list "$D"; then
    added=$D/xcopyd-bookworm-backports.list
    echo "deb $MIRROR bookworm-backports main" > "$added"
    echo "added $added: deb $MIRROR bookworm-backports main" >&2
fi
log=$(mktemp)
ok=true
apt-get update -q >"$log" 2>&1 || ok=false
cat "$log" >&2
usable() { apt-cache policy 2>/dev/null | grep -q 'bookworm-backports'; }
if [ -n "$added" ] && { ! $ok || grep -q '^\(Err\|W\|E\):.*bookworm-backports' "$log" || ! usable; }; then
    echo "apt cannot use $added ($(cat "$added"); mirror from scripts/vm/mirror.sh, or MIRROR=): removed it again" >&2
    rm -f "$added"
    apt-get update -q >&2 || echo "apt-get update still fails without $added: see above" >&2
elif ! $ok; then
    echo "apt-get update failed (see above), not because of a source this script added" >&2
fi
rm -f "$log"
if usable; then echo backports; fi
