#!/usr/bin/env bash
# libiscsi's iscsi-test-cu against xcopyd: starts the release daemon on a temp state dir and
# a free port (two 128 MiB emulated disks, LUN 0 and 1), runs the suites below, prints each
# test's result line and the counts, and exits non-zero on any unexpected failure or skip
# of a whole test. The daemon is always stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITES=(iSCSI SCSI.ExtendedCopy SCSI.ReceiveCopyResults SCSI.Inquiry SCSI.ReadCapacity10
        SCSI.ReadCapacity16 SCSI.Read10 SCSI.Read16 SCSI.Write10 SCSI.Write16
        SCSI.WriteVerify10 SCSI.WriteVerify12 SCSI.WriteVerify16
        SCSI.TestUnitReady SCSI.ReportSupportedOpcodes)

# Expectations that contradict a documented choice (not bugs):
declare -A ALLOWED=(
  # libiscsi expects E0h CSCDs and 03h segments to be refused; xcopyd implements both
  # (DESIGN.md: FC-addressed CSCDs E0h-E2h; segment 03h is in SUPPORTED_SEGMENT_TYPES).
  [DescrType]="E0h CSCD and 03h segment are supported by design"
)
# Known bugs, reported as XFAIL so the rest stays guarded; each must be fixed, not grown.
declare -A KNOWN_BUGS=(
)

if ! command -v iscsi-test-cu >/dev/null; then
  apt-get install -y libiscsi-bin >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y libiscsi-bin >/dev/null; }
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
TOML
"$BIN" --config "$STATE/xcopyd.toml" 2>"$STATE/xcopyd.log" &
DAEMON=$!
trap 'kill "$DAEMON" 2>/dev/null; wait "$DAEMON" 2>/dev/null; rm -rf "$STATE"' EXIT
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

URL="iscsi://127.0.0.1:$PORT/iqn.2026-11.org.xcopyd:mover/0"
pass=0 fail=0 skip=0 unexpected=0
for suite in "${SUITES[@]}"; do
  out="$STATE/$suite.out"
  timeout 40 iscsi-test-cu --dataloss -V -t "$suite.*" "$URL" >"$out" 2>&1 || true
  # One line per test: "Test: NAME ..." followed (eventually) by passed/FAILED.
  awk '/^  Test: /{ if (t) print t, r; t=$2; r="HUNG"; s=0
         if ($0 ~ /\.\.\.passed/) r="passed"; if ($0 ~ /\.\.\.FAILED/) r="FAILED" }
       /\[SKIPPED\]/{ s=1 }
       /passed/ && !/^  Test: /{ r = s ? "passed(with skipped steps)" : "passed" }
       /^FAILED|[.]FAILED$/{ r="FAILED" }
       END{ if (t) print t, r }' "$out" | while read -r name result; do
    echo "$suite.$name $result"
  done > "$STATE/$suite.res"
  while read -r name result; do
    short=${name##*.}
    case $result in
      passed) pass=$((pass+1)); echo "PASS  $name" ;;
      passed*) skip=$((skip+1)); echo "SKIP  $name (steps skipped: not implemented)" ;;
      *)
        fail=$((fail+1))
        if [[ -n "${ALLOWED[$short]:-}" ]]; then echo "ALLOW $name $result: ${ALLOWED[$short]}"
        elif [[ -n "${KNOWN_BUGS[$short]:-}" ]]; then echo "XFAIL $name $result: ${KNOWN_BUGS[$short]}"
        else echo "FAIL  $name $result"; unexpected=$((unexpected+1)); fi ;;
    esac
  done < "$STATE/$suite.res"
done
echo "iscsi-test-cu: $pass passed, $fail failed ($unexpected unexpected), $skip passed with skipped steps"
exit $((unexpected > 0))
