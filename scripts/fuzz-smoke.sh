#!/usr/bin/env bash
# Fuzz smoke: runs every cargo-fuzz target in fuzz/ (whatever `cargo fuzz list` names, so new
# targets are picked up) for SECONDS each, default 20, starting from seeds that
# `examples/fuzz_corpus.rs` writes into fuzz/corpus. Exits non-zero if a target fails to
# build or finds a crash (the input is kept in fuzz/artifacts/TARGET/).
#
# Toolchain: nightly if rustup has one; otherwise the stable toolchain with RUSTC_BOOTSTRAP=1
# (cargo fuzz needs unstable rustc flags), always without a sanitizer (`-s none`): the codec
# has no unsafe code, and ASan would only slow the run down.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-20}
case $seconds in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS]" >&2
    exit 2
    ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

toolchain=()
if command -v rustup >/dev/null && rustup toolchain list | grep -q '^nightly'; then
    toolchain=(+nightly)
    echo "toolchain: nightly"
else
    export RUSTC_BOOTSTRAP=1
    echo "toolchain: stable with RUSTC_BOOTSTRAP=1"
fi

# Seeds come from the main crate, built in release to reuse what `cargo test --release` built.
cargo run --quiet --release --example fuzz_corpus -- fuzz/corpus

# The fuzz crate is its own workspace with its own target dir (fuzz/target).
fuzz() { env -u CARGO_TARGET_DIR cargo "${toolchain[@]}" fuzz "$@"; }

mapfile -t targets < <(fuzz list)
if [ ${#targets[@]} -eq 0 ]; then
    echo "no fuzz targets found" >&2
    exit 1
fi
fuzz build -s none

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed=()
for target in "${targets[@]}"; do
    log=$logs/$target.log
    if fuzz run -s none "$target" -- -max_total_time="$seconds" >"$log" 2>&1; then
        runs=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 || true)
        corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
        printf '%-24s ok: %s(s), corpus %s inputs\n' "$target" "${runs#Done }" "$corpus"
    else
        printf '%-24s FAILED; last lines of its log:\n' "$target"
        tail -n 40 "$log"
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz smoke: ${#failed[@]} of ${#targets[@]} targets failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz smoke: ${#targets[@]} targets, ${seconds}s each, no crashes"
