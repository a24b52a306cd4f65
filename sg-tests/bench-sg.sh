# Not a test (run.sh runs only NN-*.sh by default): `scripts/vm/run.sh bench-sg.sh` measures
# the copy engine's SG path against sg_dd on the same two scsi_debug disks, 64 MiB block to
# block, 1 MiB per command, median of 5 each, and prints the ratio. Under software emulation
# absolute numbers mean little; the ratio compares the two on the same emulated devices.
. "$SGT_LIB"
# two hosts with a store each (targets of one host would share one RAM store)
modprobe scsi_debug dev_size_mb=160 add_host=2 per_host_store=1 num_tgts=1 max_luns=1
wait_for 10 sh -c '[ "$(ls /sys/class/scsi_generic | wc -l)" -ge 2 ]'
set -- $(for d in /sys/class/scsi_generic/sg*; do [ "$(tr -d ' ' < $d/device/model)" = scsi_debug ] && echo /dev/${d##*/}; done)
A=$1 B=$2
settle "$A"; settle "$B"
dd if=/dev/urandom of=/dev/$(block_of "$A") bs=1M count=64 oflag=direct status=none
cat > inv.toml <<EOT
[[device]]
name = "a"
kind = "sg"
path = "$A"
[[device]]
name = "b"
kind = "sg"
path = "$B"
EOT
naa() { sg_vpd -p di "$1" | sed -n '/Addressed logical unit/,/Target port/p' | grep -oiE '0x[0-9a-f]{16,32}' | head -n1 | tr 'A-F' 'a-f'; }
cat > list.toml <<EOT
list_identifier = 1
list_id_usage = "discard"
[[cscd]]
peripheral_device_type = 0
identifier = { type = "identification", designator = "naa.$(naa "$A" | cut -c3-)" }
parameters = { class = "block", pad = false, block_length = 512 }
[[cscd]]
peripheral_device_type = 0
identifier = { type = "identification", designator = "naa.$(naa "$B" | cut -c3-)" }
parameters = { class = "block", pad = false, block_length = 512 }
[[segment]]
type = "block_to_block"
source = 0
destination = 1
blocks = 65535
source_lba = 0
destination_lba = 0
[[segment]]
type = "block_to_block"
source = 0
destination = 1
blocks = 65535
source_lba = 65535
destination_lba = 65535
[[segment]]
type = "block_to_block"
source = 0
destination = 1
blocks = 2
source_lba = 131070
destination_lba = 131070
EOT
check encode xcopy encode list.toml -o list.bin
check xcopy_run xcopy run -d inv.toml list.bin -q
dd if=/dev/$(block_of "$A") bs=1M count=64 iflag=direct status=none of=a.bin
dd if=/dev/$(block_of "$B") bs=1M count=64 iflag=direct status=none of=b.bin
check xcopy_copies_equal cmp a.bin b.bin
now() { date +%s.%N; }
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
for i in 1 2 3 4 5; do
    t0=$(now); xcopy run -d inv.toml list.bin -q > /dev/null; t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}' >> xcopy.times
    t0=$(now); sg_dd if="$A" of="$B" bs=512 bpt=2048 count=131072 > /dev/null 2>&1; t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}' >> sgdd.times
done
x=$(median < xcopy.times) s=$(median < sgdd.times)
echo "xcopy run (SG_IO, 02h, 64 MiB): median $x s; sg_dd bpt=2048: median $s s"
echo "BENCH sg_copy_64MiB xcopy_s=$x sg_dd_s=$s ratio_throughput=$(awk -v s="$s" -v x="$x" 'BEGIN{printf "%.2f", s/x}')"
dd if=/dev/$(block_of "$A") bs=1M count=64 iflag=direct status=none of=a.bin
dd if=/dev/$(block_of "$B") bs=1M count=64 iflag=direct status=none of=b.bin
check sg_dd_copies_equal cmp a.bin b.bin
# How to drive SG devices: one thread with SG_IO, or SG_IO on QD worker threads
# (examples/sg_queue_bench.rs).
QB=$(dirname "$(command -v xcopy)")/examples/sg_queue_bench
for qd in 1 4 8; do "$QB" "$A" 64 1024 $qd; done
rmmod scsi_debug
# Again with 4 ms of device latency per command (delay=1 jiffy), as a real disk has.
modprobe scsi_debug dev_size_mb=80 delay=1 num_tgts=1 max_luns=1
wait_for 10 sg_of Linux scsi_debug
A=$(sg_of Linux scsi_debug); settle "$A"
for qd in 1 4 8; do "$QB" "$A" 32 256 $qd | sed 's/mode=/latency=4ms mode=/'; done
rmmod scsi_debug
finish
