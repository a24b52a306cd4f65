#!/bin/sh
# Runs INSIDE a Linux guest with LIO (target_core_user, tcm_loop) as root. An emulated tape as a LIO user backstore
# served by xcopyd, driven by the Linux st driver through tcm_loop: mt status, variable-block
# writes and reads on /dev/nst0, filemarks written on close, eod/bsf/fsf, tar to tape and back.
# Prints RESULT name PASS|FAIL lines; exits non-zero on any failure.
# Run by sg-tests/run.sh inside the sg-tests VM (scripts/vm/run.sh), xcopyd on PATH.
O=$PWD
REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN=${XCOPYD:-$(command -v xcopyd)}
T=/sys/kernel/config/target
W=$PWD
FAILS=0
ok() { echo "RESULT ${SGT_NAME:-37-tcmu-tape}.$1 PASS"; }
bad() { echo "RESULT ${SGT_NAME:-37-tcmu-tape}.$1 FAIL"; FAILS=$((FAILS+1)); }
chk() { n=$1; shift; if "$@"; then ok $n; else bad $n; fi; }
. "$SGT_LIB"    # wait_for
modprobe target_core_user; modprobe tcm_loop; modprobe st
[ -d $T ] || mount -t configfs none /sys/kernel/config
: > $W/tape0.tap
cat > $W/cfg.toml <<EOF
[iscsi]
listen = "127.0.0.1:3261"
[tcmu]
[[device]]
name = "tape0"
kind = "tape"
path = "tape0.tap"
block_size = 0
designator = "naa.5001405a1b2c3d03"
EOF
mkdir -p $T/core/user_2/tape
echo dev_config=xcopyd/tape0,dev_size=1048576 > $T/core/user_2/tape/control
echo 300 > $T/core/user_2/tape/attrib/cmd_time_out
echo 1 > $T/core/user_2/tape/enable
RUST_LOG=info $BIN --config $W/cfg.toml > $O/xcopyd2.log 2>&1 &
XP=$!
wait_for 10 grep -q 'tcmu: serving' $O/xcopyd2.log
chk serving_line grep -q 'tcmu: serving uio0 tcm-user/2/tape/xcopyd/tape0 as tape0' $O/xcopyd2.log
L=$T/loopback/naa.5001405000000011/tpgt_1
mkdir -p $L/lun/lun_0
echo naa.5001405000000012 > $L/nexus
ln -s $T/core/user_2/tape $L/lun/lun_0/xcopyd_tape
chk st_node wait_for 30 test -c /dev/nst0
lsscsi -g
ls -l /dev/st* /dev/nst* 2>&1
mt-st -f /dev/nst0 status; chk mt_status mt-st -f /dev/nst0 status
head -c 262144 /dev/urandom > $W/p1
head -c 100000 /dev/urandom > $W/p2
mt-st -f /dev/nst0 setblk 0
# st writes a filemark when a written device is closed: p1 FM p2 FM
dd if=$W/p1 of=/dev/nst0 bs=65536 2>&1 | tail -1
dd if=$W/p2 of=/dev/nst0 bs=100000 2>&1 | tail -1
mt-st -f /dev/nst0 status
mt-st -f /dev/nst0 rewind
dd if=/dev/nst0 of=$W/r1 bs=65536 2>&1 | tail -1
chk tape_file1 cmp $W/p1 $W/r1
mt-st -f /dev/nst0 eod; mt-st -f /dev/nst0 status
mt-st -f /dev/nst0 bsf 2; mt-st -f /dev/nst0 fsf 1; mt-st -f /dev/nst0 status
dd if=/dev/nst0 of=$W/r2 bs=100000 2>&1 | tail -1
chk tape_bsf_fsf_file2 cmp $W/p2 $W/r2
mt-st -f /dev/nst0 rewind; mt-st -f /dev/nst0 fsf 1
dd if=/dev/nst0 of=$W/r2b bs=100000 2>&1 | tail -1
chk tape_fsf cmp $W/p2 $W/r2b
mt-st -f /dev/nst0 rewind
(cd $REPO && tar cf /dev/nst0 src/frontend/tcmu); chk tar_write [ $? = 0 ]
mt-st -f /dev/nst0 rewind
mkdir -p $W/x && (cd $W/x && tar xf /dev/nst0); chk tar_read diff -r $REPO/src/frontend/tcmu $W/x/src/frontend/tcmu
mt-st -f /dev/nst0 rewind
rm $L/lun/lun_0/xcopyd_tape; rmdir $L/lun/lun_0
kill -TERM $XP; wait $XP; chk xcopyd_exit_0 [ $? = 0 ]
rmdir $T/core/user_2/tape
tail -5 $O/xcopyd2.log
dmesg | grep -i " st\|tape" | tail -10
echo "FAILS=$FAILS"
[ $FAILS = 0 ]
