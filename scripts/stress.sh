#!/usr/bin/env bash
# The Rust test suite (every unit and integration test binary `cargo test --release`
# builds) run RUNS times in a row (default 20) while `stress-ng --cpu 2` keeps both cores
# of the machine busy: a test that waits on a timing instead of a gate, a channel or a
# deadline fails here. The binaries are built once, before the load starts, and run as
# built (an edit made meanwhile changes nothing). Stops at the first failing run and
# keeps its output.
#
#   scripts/stress.sh [RUNS]
#
# Output: one line per run (seconds, passed tests); the log of each run under
# ${STRESS_LOG_DIR:-$TMPDIR/xcopyd-stress}. Exit status: 0 when every run passed.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-20}
logs=${STRESS_LOG_DIR:-${TMPDIR:-/tmp}/xcopyd-stress}
mkdir -p "$logs"

for tool in stress-ng jq; do
  if ! command -v "$tool" >/dev/null; then
    sudo_cmd=(); [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get install -y "$tool" >/dev/null
  fi
done

# Build once; the test executables, as cargo names them (the lib's, tests/it's, the bins').
mapfile -t binaries < <(cargo test --release --no-run --message-format=json 2>"$logs/build.log" |
  jq -r 'select(.reason == "compiler-artifact" and .profile.test == true) | .executable // empty')
if [ ${#binaries[@]} -eq 0 ]; then
  cat "$logs/build.log"; echo "no test binaries built" >&2; exit 1
fi

stress-ng --cpu 2 --timeout 0 --quiet &
load=$!
trap 'kill "$load" 2>/dev/null || true; wait "$load" 2>/dev/null || true' EXIT

for i in $(seq "$runs"); do
  start=$(date +%s)
  ok=1
  : >"$logs/run-$i.log"
  for b in "${binaries[@]}"; do
    # As cargo test runs them: from the package root.
    "$b" >>"$logs/run-$i.log" 2>&1 || ok=0
  done
  passed=$(grep -Eo '^test result: ok\. [0-9]+ passed' "$logs/run-$i.log" | awk '{s += $4} END {print s + 0}')
  if [ "$ok" = 1 ]; then
    echo "run $i/$runs: ok, $passed tests passed in $(( $(date +%s) - start )) s"
  else
    echo "run $i/$runs: FAILED after $(( $(date +%s) - start )) s; log: $logs/run-$i.log"
    grep -E '^test .* FAILED$|panicked at' "$logs/run-$i.log" | head -20
    exit 1
  fi
done
echo "all $runs runs passed under stress-ng --cpu 2"
