# Shared helpers for sg-tests (sourced; POSIX sh). Every check prints one line:
#   RESULT <test>.<check> PASS|FAIL <detail>
# and a failed check makes the test file exit non-zero at the end (see finish).
: "${SGT_OUT:?run through sg-tests/run.sh}"
SGT_FAILS=0
SGT_NAME=${SGT_NAME:-$(basename "$0" .sh)}

pass() { echo "RESULT $SGT_NAME.$1 PASS${2:+ $2}"; }
fail() { echo "RESULT $SGT_NAME.$1 FAIL${2:+ $2}"; SGT_FAILS=$((SGT_FAILS + 1)); }
# check NAME CMD...: CMD's exit status decides; its output goes to the test log.
check() {
    _check=$1; shift
    if "$@"; then pass "$_check"; else fail "$_check" "rc=$? cmd: $*"; fi
}
# expect NAME WANT GOT
expect() {
    if [ "$2" = "$3" ]; then pass "$1" "= $3"; else fail "$1" "want [$2] got [$3]"; fi
}
finish() { exit "$SGT_FAILS"; }

# The sg node and block/tape node of a SCSI device, found by vendor and model (sysfs).
sg_of() { # VENDOR MODEL-prefix
    for d in /sys/class/scsi_generic/sg*; do
        v=$(tr -d ' ' < "$d/device/vendor" 2>/dev/null)
        m=$(tr -d ' ' < "$d/device/model" 2>/dev/null)
        case "$m" in "$2"*) [ "$v" = "$1" ] && { echo "/dev/${d##*/}"; return 0; } ;; esac
    done
    return 1
}
block_of() { ls "/sys/class/scsi_generic/${1##*/}/device/block/" 2>/dev/null | head -n1; }
tape_of() { ls "/sys/class/scsi_generic/${1##*/}/device/scsi_tape/" 2>/dev/null | grep '^nst' | head -n1; }
# wait_for SECONDS CMD...: poll CMD every 0.2 s
wait_for() {
    _wait=$(($1 * 5)); shift
    while [ $_wait -gt 0 ]; do "$@" 2>/dev/null && return 0; sleep 0.2; _wait=$((_wait - 1)); done
    return 1
}
# Clear the unit attentions a new LUN or a reset raises (power on, reported LUNs changed).
settle() { for _ in 1 2 3 4 5; do sg_turs "$1" >/dev/null 2>&1 && return 0; done; return 1; }
# The value of KEY in the JSON object on the last line of FILE (integers, null, strings).
json() { tail -n1 "$2" | python3 -c 'import json,sys; v=json.load(sys.stdin).get(sys.argv[1]); print("null" if v is None else v)' "$1"; }
# An independent SIMH .tap reader: prints "R <len>" per record, "M" per tape mark, "E" at
# end of medium; with a second argument, writes the concatenated record data there.
simh() {
    python3 - "$@" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
out = open(sys.argv[2], 'wb') if len(sys.argv) > 2 else None
i = 0
while i + 4 <= len(data):
    (n,) = struct.unpack_from('<I', data, i)
    if n == 0: print('M'); i += 4; continue
    if n == 0xFFFFFFFF: print('E'); break
    length = n & 0x7FFFFFFF
    rec = data[i + 4:i + 4 + length]
    (tail,) = struct.unpack_from('<I', data, i + 4 + length + (length & 1))
    assert tail == n, f'record at {i}: trailer {tail:#x} != header {n:#x}'
    print('R', length)
    if out: out.write(rec)
    i += 8 + length + (length & 1)
PY
}
