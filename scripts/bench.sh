#!/usr/bin/env bash
# Benchmarks: xcopyd's data paths against fio and dd on the same files, in one run, as
# medians of several interleaved runs, printed in MiB/s and as ratios. Never a pass/fail.
#
#   scripts/bench.sh [SECTION...]        (no section: all of them)
#
# Sections:
#   disk   sequential read and write of one image through EmulatedDisk READ(16)/WRITE(16)
#          CDBs (examples/disk_bench.rs), vs fio (io_uring, O_DIRECT, iodepth 32) and dd
#          (O_DIRECT), 1 MiB transfers.
#
# Environment: BENCH_DIR (default /work/bench-tmp: must be on a real file system, not tmpfs),
# BENCH_SIZE (default 4G), BENCH_RUNS (default 5), BENCH_THREADS (our commands in flight,
# default 32 = fio's iodepth), BENCH_KEEP=1 keeps the image.
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_DIR=${BENCH_DIR:-/work/bench-tmp}
BENCH_SIZE=${BENCH_SIZE:-4G}
BENCH_RUNS=${BENCH_RUNS:-5}
BENCH_THREADS=${BENCH_THREADS:-32}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

step() { printf '\n=== %s\n' "$*"; }

need_fio() {
    command -v fio >/dev/null && return
    step "installing fio"
    apt-get update -qq && apt-get install -y -qq fio >/dev/null
}

# median of the numbers on stdin, one per line
median() {
    sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }

# MiB/s from dd's summary line ("N bytes (...) copied, S s, ...")
dd_mibs() {
    dd "$@" 2>&1 | awk '/copied/ {printf "%.1f\n", $1 / $(NF-3) / 1048576}'
}

# MiB/s of a fio job: field 7 (read KiB/s) or 48 (write KiB/s) of terse v3 output
fio_mibs() {
    local rw=$1 file=$2 field
    [ "$rw" = read ] && field=7 || field=48
    fio --name=bench --filename="$file" --direct=1 --rw="$rw" --bs=1M --ioengine=io_uring \
        --iodepth=32 --size="$BENCH_SIZE" --output-format=terse --terse-version=3 |
        awk -F';' -v f="$field" '{printf "%.1f\n", $f / 1024}'
}

section_disk() {
    need_fio
    step "disk: building examples/disk_bench (release)"
    cargo build --release --example disk_bench
    local ours="$TARGET_DIR/release/examples/disk_bench"
    mkdir -p "$BENCH_DIR"
    local img="$BENCH_DIR/disk-bench.img"
    local fstype
    fstype=$(stat -f -c %T "$BENCH_DIR")
    rm -f "$img"
    step "disk: $BENCH_SIZE image in $BENCH_DIR ($fstype), filled once so reads hit written extents"
    fallocate -l "$BENCH_SIZE" "$img"
    local bytes mib
    bytes=$(stat -c %s "$img")
    mib=$((bytes / 1048576))
    dd if=/dev/zero of="$img" bs=1M count="$mib" oflag=direct conv=notrunc status=none
    local -a our_r fio_r dd_r our_w fio_w dd_w
        for run in $(seq "$BENCH_RUNS"); do
        ours_read() { our_r+=("$("$ours" "$img" read --threads "$BENCH_THREADS" | awk '{print $2}')"); }
        fio_read() { fio_r+=("$(fio_mibs read "$img")"); }
        dd_read() { dd_r+=("$(dd_mibs if="$img" of=/dev/null bs=1M iflag=direct)"); }
        ours_write() { our_w+=("$("$ours" "$img" write --threads "$BENCH_THREADS" | awk '{print $2}')"); }
        fio_write() { fio_w+=("$(fio_mibs write "$img")"); }
        dd_write() { dd_w+=("$(dd_mibs if=/dev/zero of="$img" bs=1M count="$mib" oflag=direct conv=notrunc)"); }
        # Alternate who goes first, so drift (other tenants, host caches) favours no one.
        if ((run % 2)); then
            ours_read; fio_read; dd_read; ours_write; fio_write; dd_write
        else
            dd_read; fio_read; ours_read; dd_write; fio_write; ours_write
        fi
        printf 'run %d: read ours %s fio %s dd %s | write ours %s fio %s dd %s MiB/s\n' "$run" \
            "${our_r[-1]}" "${fio_r[-1]}" "${dd_r[-1]}" "${our_w[-1]}" "${fio_w[-1]}" "${dd_w[-1]}"
    done
    local mr_o mr_f mr_d mw_o mw_f mw_d
    mr_o=$(printf '%s\n' "${our_r[@]}" | median)
    mr_f=$(printf '%s\n' "${fio_r[@]}" | median)
    mr_d=$(printf '%s\n' "${dd_r[@]}" | median)
    mw_o=$(printf '%s\n' "${our_w[@]}" | median)
    mw_f=$(printf '%s\n' "${fio_w[@]}" | median)
    mw_d=$(printf '%s\n' "${dd_w[@]}" | median)
    step "disk: medians of $BENCH_RUNS runs, $BENCH_SIZE, 1 MiB transfers (ours: $BENCH_THREADS threads)"
    printf '%-6s %10s %10s %10s %10s %10s\n' "" "ours" "fio" "dd" "ours/fio" "ours/dd"
    printf '%-6s %10s %10s %10s %10s %10s\n' read "$mr_o" "$mr_f" "$mr_d" "$(ratio "$mr_o" "$mr_f")" "$(ratio "$mr_o" "$mr_d")"
    printf '%-6s %10s %10s %10s %10s %10s\n' write "$mw_o" "$mw_f" "$mw_d" "$(ratio "$mw_o" "$mw_f")" "$(ratio "$mw_o" "$mw_d")"
    # Each run's own ours/fio ratio (measured back to back), then their median: steadier
    # than a ratio of medians when the shared disk's speed drifts between runs.
    local pr pw i
    pr=$(for i in "${!our_r[@]}"; do ratio "${our_r[i]}" "${fio_r[i]}"; echo; done | median)
    pw=$(for i in "${!our_w[@]}"; do ratio "${our_w[i]}" "${fio_w[i]}"; echo; done | median)
    printf 'median of per-run ours/fio ratios: read %s, write %s\n' "$pr" "$pw"
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -f "$img"
}

sections=("$@")
[ ${#sections[@]} -gt 0 ] || sections=(disk)
for s in "${sections[@]}"; do
    case "$s" in
        disk) section_disk ;;
        *) echo "unknown section: $s (known: disk)" >&2; exit 1 ;;
    esac
done
