# The tape library through TCMU: its changer and a drive as LIO user backstores served by
# xcopyd behind tcm_loop, driven by mtx and the st driver (status, load, mt status, tar,
# offline, unload).
. "$SGT_LIB"
export XCOPYD_STATE_DIR="$PWD/state"
T=/sys/kernel/config/target
cat > xcopyd.toml <<EOT
[iscsi]
listen = "127.0.0.1:3262"
[tcmu]
[[device]]
name = "drive0"
kind = "tape"
designator = "naa.5001405a1b2c3d30"
[[library]]
name = "vtl1"
designator = "naa.5001405a1b2c3d31"
drives = ["drive0"]
slots = 4
media = "$PWD/media"
EOT
check create_cartridges xcopy library -d xcopyd.toml create TC0001 TC0002
for b in vtl:vtl1 drive:drive0; do
    mkdir -p "$T/core/user_3/${b%%:*}"
    echo "dev_config=xcopyd/${b#*:},dev_size=1048576" > "$T/core/user_3/${b%%:*}/control"
    echo 300 > "$T/core/user_3/${b%%:*}/attrib/cmd_time_out"
    echo 1 > "$T/core/user_3/${b%%:*}/enable"
done
xcopyd --config xcopyd.toml > xcopyd.log 2>&1 &
XPID=$!
check serving_changer wait_for 20 grep -q 'tcmu: serving .* as vtl1' xcopyd.log
check serving_drive wait_for 20 grep -q 'tcmu: serving .* as drive0' xcopyd.log
L=$T/loopback/naa.5001405000000021/tpgt_1
mkdir -p "$L/lun/lun_0" "$L/lun/lun_1"
echo naa.5001405000000022 > "$L/nexus"
ln -s "$T/core/user_3/vtl" "$L/lun/lun_0/xcopyd_vtl"
ln -s "$T/core/user_3/drive" "$L/lun/lun_1/xcopyd_drive"
check changer_present wait_for 30 sg_of XCOPYD VIRTUALLIBRARY
check drive_present wait_for 30 sg_of IBM ULT3580-TD9
lsscsi -g | tee lsscsi.txt
check lsscsi_mediumx grep -q 'mediumx *XCOPYD *VIRTUAL LIBRARY' lsscsi.txt
CH=$(sg_of XCOPYD VIRTUALLIBRARY) DR=$(sg_of IBM ULT3580-TD9)
NST=/dev/$(tape_of "$DR")
settle "$CH"; settle "$DR"
mtx -f "$CH" status | tee st.txt
check mtx_status grep -q 'Storage Element 2:Full :VolumeTag=TC0002L9' st.txt
check mtx_load mtx -f "$CH" load 2 0
mtx -f "$CH" status | tee st.txt
check drive_loaded grep -q 'Data Transfer Element 0:Full (Storage Element 2 Loaded):VolumeTag = TC0002L9' st.txt
mt-st -f "$NST" status | tee mt.txt
check mt_online grep -q ONLINE mt.txt
mkdir -p data x
head -c 500000 /dev/urandom > data/f
check tar_write tar cf "$NST" data
mt-st -f "$NST" rewind
check tar_read tar xf "$NST" -C x
check tar_equal cmp data/f x/data/f
check mt_offline mt-st -f "$NST" offline
check mtx_unload mtx -f "$CH" unload
simh media/TC0002L9.tap > simh.txt
check cartridge_holds_the_archive grep -q '^M' simh.txt
# The LUNs go before xcopyd stops serving them (sg-tests/35-tcmu.sh's order).
rm -f "$L/lun/lun_0/xcopyd_vtl" "$L/lun/lun_1/xcopyd_drive"
rmdir "$L/lun/lun_0" "$L/lun/lun_1"
kill $XPID; wait $XPID
for b in vtl drive; do rmdir "$T/core/user_3/$b"; done
tail -n 20 xcopyd.log
finish
