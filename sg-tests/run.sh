#!/bin/sh
# Runs every sg-tests/NN-*.sh inside the sg-tests VM (scripts/vm/run.sh boots it): each test
# gets the project's binaries on PATH, a scratch directory and its own log. Prints the RESULT
# lines of every check, a summary line "SGTESTS pass=P fail=F", and exits non-zero on any
# failure. Only meaningful as root on a kernel with scsi_debug, LIO, tcm_loop and
# target_core_user (scripts/vm/init.sh loads them).
#
# usage: sg-tests/run.sh BIN_DIR OUT_DIR [TEST...]
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$1 OUT=$2; shift 2
export PATH="$BIN:$PATH" SGT_OUT="$OUT" SGT_LIB="$HERE/lib.sh"
mkdir -p "$OUT"
tests=${*:-$(cd "$HERE" && ls [0-9]*.sh)}
for t in $tests; do
    name=$(basename "$t" .sh)
    echo "@@ $(cut -d' ' -f1 /proc/uptime) test $name"
    mkdir -p "/tmp/sgt/$name"
    (cd "/tmp/sgt/$name" && SGT_NAME=$name sh "$HERE/$name.sh") > "$OUT/$name.log" 2>&1
    rc=$?
    grep -a -E '^(RESULT|BENCH) ' "$OUT/$name.log"
    rm -rf "/tmp/sgt/$name"    # the guest's /tmp is RAM
    # Exact: a test exits 0 exactly when none of its checks failed, and runs at least one.
    if [ $rc != 0 ] && ! grep -aq "^RESULT $name\..* FAIL" "$OUT/$name.log"; then
        echo "RESULT $name.exit FAIL rc=$rc (see $OUT/$name.log)"
    fi
    if [ $rc = 0 ] && grep -aq "^RESULT $name\..* FAIL" "$OUT/$name.log"; then
        echo "RESULT $name.exit FAIL rc=0 with failed checks (see $OUT/$name.log)"
    fi
    if ! grep -aq "^RESULT $name\..* PASS" "$OUT/$name.log"; then
        echo "RESULT $name.checks FAIL no check passed (see $OUT/$name.log)"
    fi
done > "$OUT/results.txt"
cat "$OUT/results.txt"
p=$(grep -c ' PASS' "$OUT/results.txt") f=$(grep -c ' FAIL' "$OUT/results.txt")
echo "SGTESTS pass=$p fail=$f"
[ "$f" = 0 ] && [ "$p" -gt 0 ]
