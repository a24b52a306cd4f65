#!/usr/bin/env bash
# The project's one test command (README "Run the tests"). Installs what it needs on a fresh
# Debian machine, then runs: formatting, clippy, unit + property + golden-vector tests, and a
# short fuzz smoke of every decoder.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

step "format"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml --all -- --check

step "clippy"
cargo clippy --all-targets -- -D warnings
# The fuzz crate is its own workspace (own target dir; fuzz/.cargo/config.toml sets --cfg fuzzing).
(cd fuzz && env -u CARGO_TARGET_DIR cargo clippy --all-targets -- -D warnings)

step "tests"
cargo test --release 2>&1 | tee /tmp/xcopyd-test.log

step "iSCSI conformance (libiscsi iscsi-test-cu)"
scripts/conformance.sh

step "fuzz smoke"
scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-20}"
