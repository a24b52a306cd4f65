#!/bin/sh
# The sg-tests suite in a qemu VM, from nothing: installs the host packages it needs (Debian),
# downloads a stock trixie-backports kernel (not installed), builds a busybox initramfs, boots
# it under software emulation, runs sg-tests/run.sh inside against the project's release
# binaries, reports every check and exits non-zero on any failure.
#
# usage: scripts/vm/run.sh [TEST...]      (TEST: sg-tests/NN-name.sh file names)
# env:   VMT work dir (default ${TMPDIR:-/tmp}/xcopyd-vm; downloads are cached there)
#        XCOPYD_BIN directory holding xcopy and xcopyd (default: cargo's release dir)
set -eu
cd "$(dirname "$0")/../.."
REPO=$PWD
export VMT=${VMT:-${TMPDIR:-/tmp}/xcopyd-vm}
mkdir -p "$VMT"
t() { echo "== $(date +%T) $*"; }

t "host packages"
need=""
for c in qemu-system-x86_64:qemu-system-x86 busybox:busybox-static cpio:cpio depmod:kmod \
         xz:xz-utils zstd:zstd perl:perl python3:python3 sg_raw:sg3-utils mt-st:mt-st \
         tgtd:tgt iscsid:open-iscsi ddpt:ddpt lsscsi:lsscsi mtx:mtx btape:bacula-sd; do
    command -v "${c%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${c%%:*}" ] || need="$need ${c#*:}"
done
if [ -n "$need" ]; then
    export DEBIAN_FRONTEND=noninteractive
    backports=$(scripts/vm/apt-backports.sh)
    case "$need" in *qemu-system-x86*)
        if [ "$backports" = backports ]; then
            apt-get install -y -q --no-install-recommends -t bookworm-backports qemu-system-x86
        else
            apt-get install -y -q --no-install-recommends qemu-system-x86
        fi ;;
    esac
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $(echo "$need" | tr ' ' '\n' | grep -v qemu-system-x86)
fi

t "kernel"
KVER=$(scripts/vm/kernel.sh | sed -n 's/^KVER=//p')
t "initramfs for $KVER"
scripts/vm/initramfs.sh "$KVER"

BIN=${XCOPYD_BIN:-$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release}
[ -x "$BIN/xcopy" ] && [ -x "$BIN/xcopyd" ] || { echo "no xcopy/xcopyd in $BIN: cargo build --release first" >&2; exit 1; }
OUT=$VMT/out
rm -rf "$OUT"; mkdir -p "$OUT"
ARGS="$BIN,$OUT/results"
for test in "$@"; do ARGS="$ARGS,$test"; done
t "boot (software emulation) and run sg-tests"
OUTDIR=$OUT scripts/vm/boot.sh "$KVER" "$REPO/sg-tests/run.sh" "$ARGS" | tee "$OUT/console.log" |
    grep -aE '^ *[0-9.]+ (RESULT|SGTESTS|@@)' || true
t "done"
if grep -aq 'SGTESTS pass=[1-9][0-9]* fail=0' "$OUT/console.log" && grep -aq '@@ .* exit 0' "$OUT/console.log"; then
    echo "sg-tests: all passed ($(grep -ao 'SGTESTS.*' "$OUT/console.log"))"
else
    echo "sg-tests FAILED; logs: $OUT/results/*.log, console: $OUT/console.log" >&2
    for f in "$OUT"/results/*.log; do
        grep -aq ' FAIL' "$f" 2>/dev/null && { echo "---- $f (last 40 lines)"; tail -n 40 "$f"; }
    done
    exit 1
fi
