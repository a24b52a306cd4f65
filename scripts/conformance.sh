#!/usr/bin/env bash
# libiscsi's iscsi-test-cu against xcopyd: starts the release daemon on a temp state dir and
# a free port (four 128 MiB emulated disks: LUN 0 and 1 plain, 2 removable, 3 read-only),
# runs the passes below, and compares
# every test's outcome, line by line, with scripts/conformance-expected.txt.
#
# It fails (exit 1) when
# - the daemon does not come up (process alive, port accepting) or dies during the run;
# - iscsi-test-cu's exit status disagrees with its results: anything but 0 (no failure) or
#   1 (failures, each of them listed as an allowed failure) fails, so does a timeout, and so
#   does a login iscsi-test-cu cannot make (it exits 255 before any test);
# - a test of the expected list is missing (vanished, never reached, hung), or ends with
#   another outcome than listed;
# - a test not in the list appears (a libiscsi update: list it, with its outcome);
# - a test has a skipped step ([SKIPPED]) and is not listed as `skip` with its reason.
# The daemon is always stopped.
#
# Outcomes in the list: pass, skip (passed, with skipped steps), fail (an allowed failure:
# a documented choice the test disagrees with). skip and fail need a reason after `#`.
#
# For tests of this script: CONFORMANCE_PORT_OFFSET adds to the port iscsi-test-cu is
# pointed at (a wrong port must fail), CONFORMANCE_EXPECTED names another expected list.
set -euo pipefail
cd "$(dirname "$0")/.."

# The runs: libiscsi's whole suite (-t ALL: every SCSI and iSCSI test once, 230 in libiscsi
# 1.19) against a plain disk LUN, then the tests that need what a plain LUN is not, each on a
# LUN that is: LABEL|LUN(s)|TESTS|FLAGS. A test's name in the list is LABEL/ALL.Suite.Test
# (just ALL.Suite.Test for the first run). Two LUN numbers: two paths (two sessions) to one LU.
PASSES=(
  "|0|ALL.*|"
  "sanitize|1|ALL.Sanitize.*|--allow-sanitize"
  "removable|2|ALL.PreventAllow.*,ALL.StartStopUnit.*,ALL.NoMedia.*|"
  "readonly|3|ALL.ReadOnly.*|"
  "multipath|0 0|ALL.MultipathIO.*|"
)
EXPECTED=${CONFORMANCE_EXPECTED:-scripts/conformance-expected.txt}

die() { echo "conformance: $*" >&2; exit 1; }

[ -f "$EXPECTED" ] || die "no expected list $EXPECTED"
# The list itself: NAME OUTCOME [# reason]; skip and fail need a reason; no duplicates.
awk '
  /^[[:space:]]*(#|$)/ { next }
  { name=$1; outcome=$2; reason=$0; sub(/^[^#]*#?[[:space:]]*/, "", reason)
    if (outcome != "pass" && outcome != "skip" && outcome != "fail") { print "bad outcome: " $0; bad=1 }
    if (outcome != "pass" && index($0, "#") == 0) { print "no reason: " $0; bad=1 }
    if (seen[name]++) { print "listed twice: " name; bad=1 } }
  END { exit bad }' "$EXPECTED" >&2 || die "malformed $EXPECTED"

if ! command -v iscsi-test-cu >/dev/null; then
  apt-get install -y libiscsi-bin >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y libiscsi-bin >/dev/null; }
fi
cargo build --release --bin xcopyd
BIN="${CARGO_TARGET_DIR:-target}/release/xcopyd"

STATE=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$STATE/xcopyd.toml" <<TOML
[iscsi]
listen = "127.0.0.1:$PORT"
target = "iqn.2026-11.org.xcopyd:mover"
[[device]]
name = "disk0"
kind = "disk"
path = "disk0.img"
size = "128MiB"
designator = "naa.5001405a1b2c3d01"
[[device]]
name = "disk1"
kind = "disk"
path = "disk1.img"
size = "128MiB"
designator = "naa.5001405a1b2c3d03"
[[lun]]
device = "disk0"
[[lun]]
device = "disk1"
[[device]]
name = "disk2"
kind = "disk"
path = "disk2.img"
size = "128MiB"
removable = true
designator = "naa.5001405a1b2c3d05"
[[lun]]
device = "disk2"
[[device]]
name = "disk3"
kind = "disk"
path = "disk3.img"
read_only = true
designator = "naa.5001405a1b2c3d07"
[[lun]]
device = "disk3"
TOML
truncate -s 128M "$STATE/disk3.img"
"$BIN" --config "$STATE/xcopyd.toml" 2>"$STATE/xcopyd.log" &
DAEMON=$!
trap 'kill "$DAEMON" 2>/dev/null; wait "$DAEMON" 2>/dev/null; rm -rf "$STATE"' EXIT

alive() {
  kill -0 "$DAEMON" 2>/dev/null || { cat "$STATE/xcopyd.log" >&2; die "xcopyd is not running ($1)"; }
}
# Up: the process lives and accepts connections (polled for at most 20 s).
up=0
for _ in $(seq 200); do
  alive "at start"
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then up=1; break; fi
  sleep 0.1
done
[ "$up" = 1 ] || { cat "$STATE/xcopyd.log" >&2; die "xcopyd never accepted connections on $PORT"; }
# The "serving" line follows the listener by a moment (a loaded machine shows the gap).
for _ in $(seq 50); do grep -q "xcopyd serving" "$STATE/xcopyd.log" && break; sleep 0.1; done
grep -q "xcopyd serving" "$STATE/xcopyd.log" || die "xcopyd did not log that it serves"

BASE="iscsi://127.0.0.1:$((PORT + ${CONFORMANCE_PORT_OFFSET:-0}))/iqn.2026-11.org.xcopyd:mover"
: > "$STATE/actual.txt"
bad=0
for pass in "${PASSES[@]}"; do
  IFS='|' read -r label luns tests flags <<<"$pass"
  suite=${label:-ALL}
  prefix=${label:+$label/}
  urls=()
  for lun in $luns; do urls+=("$BASE/$lun"); done
  out="$STATE/$suite.out"
  rc=0
  # shellcheck disable=SC2086 # flags: zero or more options
  timeout 1200 iscsi-test-cu --dataloss $flags -V -t "$tests" "${urls[@]}" >"$out" 2>&1 || rc=$?
  alive "after $suite"
  # CUnit's verbose output, read line by line: "Suite: S", then per test "  Test: T ..."
  # and its verdict, "passed" or "FAILED", right after the dots or at the start of a later
  # line (after the test's own log lines, which are indented; the suite's clean-up log may
  # follow the verdict on its line). "[SKIPPED]" before the verdict marks a skipped step.
  # A test with no verdict hung or was cut off.
  awk -v family="${prefix}ALL" '
    function close_test() { if (t != "") print family "." s "." t, (r == "" ? "hung" : r); t = ""; r = "" }
    function verdict(text) {
      if (text ~ /^passed/) r = (k ? "skip" : "pass"); else if (text ~ /^FAILED/) r = "fail"
      else if (text ~ /\[SKIPPED\]/) k = 1 }
    /^Suite: / { close_test(); s = substr($0, 8); next }
    /^  Test: / { close_test(); t = $2; k = 0; rest = $0; sub(/^  Test: [^ ]+ \.\.\./, "", rest)
                  verdict(rest); next }
    t != "" && r == "" { verdict($0) }
    END { close_test() }' "$out" > "$STATE/$suite.res"
  failed=$(grep -c ' fail$' "$STATE/$suite.res" || true)
  tests=$(wc -l < "$STATE/$suite.res")
  # The exit status must agree with the results.
  case $rc in
    0) [ "$failed" = 0 ] || { echo "$suite: exit 0 but $failed failed"; bad=1; } ;;
    1) [ "$failed" -gt 0 ] || { echo "$suite: exit 1 but no test failed"; bad=1; } ;;
    124) echo "$suite: timed out"; bad=1 ;;
    *) echo "$suite: iscsi-test-cu exited $rc ($tests tests read)"; tail -5 "$out"; bad=1 ;;
  esac
  # CUnit's own count of tests run must match the verdicts read.
  ran=$(awk '$1 == "tests" && NF >= 5 { print $3 }' "$out")
  if [ -n "$ran" ] && [ "$ran" != "$tests" ]; then
    echo "$suite: CUnit ran $ran tests, $tests verdicts read"; bad=1
  fi
  cat "$STATE/$suite.res" >> "$STATE/actual.txt"
done

# Line by line against the expected list.
sed -e 's/[[:space:]]*#.*//' -e '/^[[:space:]]*$/d' "$EXPECTED" | awk '{print $1, $2}' | sort > "$STATE/want.txt"
sort "$STATE/actual.txt" > "$STATE/got.txt"
while read -r name outcome; do
  reason=$(grep -E "^$name[[:space:]]" "$EXPECTED" | sed -n 's/^[^#]*#[[:space:]]*//p')
  case $outcome in
    pass) echo "PASS  $name" ;;
    skip) echo "SKIP  $name (listed: $reason)" ;;
    fail) echo "ALLOW $name (listed: $reason)" ;;
    *) echo "FAIL  $name $outcome" ;;
  esac
done < <(join "$STATE/got.txt" "$STATE/want.txt" | awk '$2 == $3 {print $1, $2}')
mismatch=$(join -a1 -a2 -e MISSING -o 0,1.2,2.2 "$STATE/got.txt" "$STATE/want.txt" | awk '$2 != $3')
if [ -n "$mismatch" ]; then
  echo "--- results that differ from $EXPECTED (test, got, expected):"
  echo "$mismatch" | sed 's/^/DIFF  /'
  bad=1
fi
p=$(grep -c ' pass$' "$STATE/got.txt" || true)
s=$(grep -c ' skip$' "$STATE/got.txt" || true)
f=$(grep -c -v -E ' (pass|skip)$' "$STATE/got.txt" || true)
echo "iscsi-test-cu: $((p + s)) passed, $f failed, $s skipped"
[ "$((p + s + f))" -gt 0 ] || die "no test ran"
[ "$bad" = 0 ] || die "conformance differs from $EXPECTED"
echo "conformance: every expected test ran with its expected outcome"
