#!/usr/bin/env python3
"""Golden EXTENDED COPY (LID1) parameter lists for xcopy-descriptors/.

Built byte by byte from the standard's tables (SPC-3 6.3, with the layouts of
shared/spec/xcopy-lid1.md Part B), independently of xcopyd's own encoder. For every
vector this writes NAME.bin and records, in expected-sense.json, what a copy manager
must answer: "good", or the sense key, ASC/ASCQ, field pointer (and SD bit and segment
number for COPY ABORTED) that the standard names. The Rust golden test checks both the
sense and the decoded dump (NAME.expected, re-blessed with XCOPY_BLESS=1).

usage: scripts/golden.py [OUTDIR]   (default: xcopy-descriptors)
"""
import json
import os
import struct
import sys

ILLEGAL, ABORTED = 0x5, 0xA
vectors = {}


def vec(name, data, expect="good", limits=None):
    assert name not in vectors, name
    vectors[name] = (bytes(data), expect, limits)


def ir(asc, ascq, fp=None, bit=None):
    """ILLEGAL REQUEST with a parameter-list field pointer (C/D=0)."""
    return {"sense_key": ILLEGAL, "asc": asc, "ascq": ascq, "field_pointer": fp, "bit": bit}


def ca(asc, ascq, segment, fp, sd=True):
    """COPY ABORTED for a segment, with the segment pointer."""
    return {"sense_key": ABORTED, "asc": asc, "ascq": ascq, "field_pointer": fp,
            "segment": segment, "sd": sd}


# ---- header (SPC-3 Table 33)
def header(tdll, sdll, inline=0, list_id=1, usage=0b10, prio=0, str_=0):
    b1 = (str_ << 5) | (usage << 3) | prio
    return struct.pack(">BBH4xII", list_id, b1, tdll, sdll, inline)


def plist(cscds, segs, inline=b"", **kw):
    c = b"".join(cscds)
    s = b"".join(segs)
    return header(len(c), len(s), len(inline), **kw) + c + s + inline


# ---- CSCD descriptors (SPC-3 6.3.6, Part B 2)
def dev_params(pdt, pad=0, fixed=0, block_length=512):
    if pdt == 1:
        return struct.pack(">B", (pad << 2) | fixed) + block_length.to_bytes(3, "big")
    if pdt == 3:
        return struct.pack(">B3x", pad << 2)
    return struct.pack(">B", pad << 2) + block_length.to_bytes(3, "big")


def cscd_head(code, pdt, nul=0, lu_id_type=0, ripi=0):
    return struct.pack(">BBH", code, (lu_id_type << 6) | (nul << 5) | pdt, ripi)


def e4(designator, pdt=0, code_set=1, dtype=3, assoc=0, dlen=None, nul=0, lu_id_type=0, **dp):
    if dlen is None:
        dlen = len(designator)
    body = struct.pack(">BBxB", code_set, (assoc << 4) | dtype, dlen)
    body += designator.ljust(20, b"\0")[:20]
    return cscd_head(0xE4, pdt, nul, lu_id_type) + body + dev_params(pdt, **dp)


NAA6 = bytes.fromhex("6001405aaaaaaaaa0000000000000001")
NAA6B = bytes.fromhex("6001405bbbbbbbbb0000000000000002")
NAA5 = bytes.fromhex("5001405a1b2c3d01")
NAA5T = bytes.fromhex("5001405a1b2c3d02")
DISK = e4(NAA5)
TAPE_V = e4(NAA5T, pdt=1, fixed=0, block_length=0)
TAPE_F = e4(NAA5T, pdt=1, fixed=1, block_length=512)


def lun_wwpn(code, lun, rest, pdt=0, **dp):
    assert len(rest) == 16
    return cscd_head(code, pdt) + struct.pack(">Q", lun) + rest + dev_params(pdt, **dp)


# ---- segment descriptors (SPC-3 6.3.7, Part B 1)
def seg(code, length, src, dst, body, flags=0):
    assert len(body) == length - 4, (code, len(body), length)
    return struct.pack(">BBHHH", code, flags, length, src, dst) + body


def s02(blocks, src_lba, dst_lba, src=0, dst=1, dc=0, cat=0, code=0x02):
    return seg(code, 0x18, src, dst, struct.pack(">2xHQQ", blocks, src_lba, dst_lba), (dc << 1) | cat)


def s00(stl, blocks, lba, src=0, dst=1, cat=0, code=0x00):
    return seg(code, 0x14, src, dst, struct.pack(">x", ) + stl.to_bytes(3, "big") + struct.pack(">2xHQ", blocks, lba), cat)


def s03(src_stl, dst_stl, count, src=0, dst=1, cat=0, code=0x03):
    body = b"\0" + src_stl.to_bytes(3, "big") + b"\0" + dst_stl.to_bytes(3, "big") + struct.pack(">I", count)
    return seg(code, 0x10, src, dst, body, cat)


def s04(stl, offset, count, dst=1, cat=0):
    return seg(0x04, 0x10, 0, dst, b"\0" + stl.to_bytes(3, "big") + struct.pack(">II", offset, count), cat)


def s05(stl, data, dst=1, cat=0, count=None, pad_to=4):
    count = len(data) if count is None else count
    padded = data + b"\0" * (-len(data) % pad_to)
    body = b"\0" + stl.to_bytes(3, "big") + struct.pack(">H2x", count) + padded
    return seg(0x05, 12 + len(padded), 0, dst, body, cat)


def s06(stl, count, src=1, cat=0, code=0x06):
    return seg(code, 0x0C, src, 0, b"\0" + stl.to_bytes(3, "big") + struct.pack(">I", count), cat)


def s07(src, tur):
    return seg(0x07, 0x08, src, 0, struct.pack(">B3x", tur))


def s08(code, stl, count, lba, off, src=0, dst=1, cat=0):
    body = b"\0" + stl.to_bytes(3, "big") + struct.pack(">IQ2xH", count, lba, off)
    return seg(code, 0x18, src, dst, body, cat)


def s0a(count, src_lba, dst_lba, src_off, dst_off, src=0, dst=1, cat=0):
    return seg(0x0A, 0x1C, src, dst, struct.pack(">IQQHH", count, src_lba, dst_lba, src_off, dst_off), cat)


def tape_seg(code, dst, body, src=0):
    return seg(code, 0x08, src, dst, body)


def s14(dst, key, sakey):
    return seg(0x14, 0x18, 0, dst, struct.pack(">QQ4x", key, sakey))


def s15(dst, key, sakey, unreg, aptpl, rtp, tid, tid_len=None):
    tid_len = len(tid) if tid_len is None else tid_len
    body = struct.pack(">QQxBHI", key, sakey, (unreg << 1) | aptpl, rtp, tid_len) + tid
    return seg(0x15, 28 + len(tid), 0, dst, body)


# =====================================================================================
# Valid lists, as initiators send them
vec("libiscsi-simple", plist([e4(NAA6, dlen=16)], [s02(2048, 0, 0x1f800, src=0, dst=0)], list_id=1, usage=0b10))
vec("libiscsi-paramhdr-empty", b"")
vec("sg_xcopy-block-to-block", plist([e4(NAA6), e4(NAA6B)], [s02(16384, 0, 0)], list_id=1, usage=0b00, prio=1))
vec("ddpt-xcopy-chunk", plist([e4(NAA6), e4(NAA6B)], [s02(65535, 131070, 131070)], list_id=2, usage=0b00, prio=1))
vec("vmware-vaai-clone-4mib", plist([e4(NAA6), e4(NAA6B)], [s02(8192, 2048, 1 << 20)], list_id=0, usage=0b11))
vec("vmware-vaai-multi-segment",
    plist([e4(NAA6), e4(NAA6B)], [s02(8192, i * 8192, (1 << 20) + i * 8192) for i in range(4)], list_id=7, usage=0b10))
vec("header-only-no-descriptors", header(0, 0, list_id=3, usage=0b00))
vec("serverless-backup-disk-to-tape",
    plist([DISK, TAPE_V], [s00(262144, 1024, 0), s00(262144, 1024, 1024), tape_seg(0x10, 1, struct.pack(">B", 0) + (1).to_bytes(3, "big"))]))
vec("serverless-restore-tape-to-disk", plist([TAPE_V, DISK], [s01 := seg(0x01, 0x14, 0, 1, b"\0" + (262144).to_bytes(3, "big") + struct.pack(">2xHQ", 1024, 0))]))
vec("seg00-block-to-stream-fixed", plist([DISK, TAPE_F], [s00(128, 256, 10)]))
vec("seg00-cat-chain-pad",
    plist([e4(NAA5, pad=1), e4(NAA5T, pdt=1, pad=1, fixed=0, block_length=0)], [s00(65536, 100, 0, cat=1), s00(65536, 27, 100, cat=0)]))
vec("seg02-dc1-512-to-4096", plist([DISK, e4(NAA6B, block_length=4096)], [s02(16, 0, 0, dc=1)]))
vec("seg03-stream-to-stream", plist([TAPE_V, e4(NAA5, pdt=1, fixed=0, block_length=0)], [s03(65536, 131072, 1 << 20)]))
vec("seg03-zero-byte-count", plist([TAPE_V, e4(NAA5, pdt=1, fixed=0, block_length=0)], [s03(65536, 65536, 0)]))
vec("seg04-inline-to-stream", plist([DISK, TAPE_V], [s04(512, 0, 512), s04(512, 512, 100)], inline=bytes(range(256)) * 2 + b"A" * 100))
vec("seg05-embedded-to-stream", plist([DISK, TAPE_V], [s05(5, b"HELLO")]))
vec("seg06-stream-to-discard", plist([DISK, TAPE_V], [s06(65536, 1 << 20)]))
vec("seg06-null-source-drop-leftovers", plist([DISK, TAPE_V], [s06(0, 0, src=0xC001)]))
vec("seg07-verify-cscd-tur", plist([DISK, TAPE_V], [s07(0, 1), s07(1, 0)]))
vec("seg08-block-offset-to-stream", plist([DISK, TAPE_V], [s08(0x08, 4096, 10000, 5, 100)]))
vec("seg09-stream-to-block-offset", plist([TAPE_V, DISK], [s08(0x09, 4096, 10000, 5, 100)]))
vec("seg0a-block-offset-to-block-offset", plist([DISK, e4(NAA6B)], [s0a(1 << 20, 0, 4096, 7, 300)]))
vec("seg0b-block-to-stream-hold", plist([DISK, TAPE_V], [s00(65536, 128, 0, code=0x0B)]))
vec("seg0c-stream-to-block-hold", plist([TAPE_V, DISK], [s00(65536, 128, 0, code=0x0C)]))
vec("seg0d-block-to-block-hold", plist([DISK, e4(NAA6B)], [s02(8, 0, 0, code=0x0D, dc=1)]))
vec("seg0e-stream-to-stream-hold", plist([TAPE_V, e4(NAA5, pdt=1, fixed=0, block_length=0)], [s03(512, 512, 4096, code=0x0E)]))
vec("seg0f-stream-to-discard-hold", plist([DISK, TAPE_V], [s06(512, 4096, code=0x0F)]))
vec("seg10-write-filemarks", plist([DISK, TAPE_V], [tape_seg(0x10, 1, b"\x01" + (2).to_bytes(3, "big"))]))
vec("seg11-space-back-two-filemarks", plist([DISK, TAPE_V], [tape_seg(0x11, 1, b"\x01" + (-2 & 0xFFFFFF).to_bytes(3, "big"))]))
vec("seg12-locate", plist([DISK, TAPE_V], [tape_seg(0x12, 1, struct.pack(">I", 1234))]))
vec("seg13-tape-image-copy", plist([TAPE_V, e4(NAA5, pdt=1, fixed=0, block_length=0)], [tape_seg(0x13, 1, struct.pack(">I", 2), src=0)]))
vec("seg14-register-key", plist([DISK, TAPE_V], [s14(0, 0, 0x1122334455667788)]))
vec("seg15-third-party-pr-source", plist([DISK, TAPE_V], [s15(1, 0x1122334455667788, 0x99, 0, 1, 1, b"\x05" + b"\0" * 23)]))
vec("cscd-e0-fc-n_port_name", plist([lun_wwpn(0xE0, 0, struct.pack(">Q8x", 0x21000024FF123456)), DISK], [s02(1, 0, 0)]))
vec("cscd-e1-fc-n_port_id", plist([lun_wwpn(0xE1, 1 << 48, b"\0" * 9 + bytes([1, 2, 3]) + b"\0" * 4)], [s02(1, 0, 0, src=0, dst=0)]))
vec("cscd-e2-fc-n_port_id-with-name", plist([lun_wwpn(0xE2, 0, struct.pack(">Q", 0x50060E8000C3A1B2) + bytes([0, 0x01, 0x0F, 0x00]) + b"\0" * 4)], [s02(1, 0, 0, src=0, dst=0)]))
vec("cscd-e4-eui64", plist([e4(bytes.fromhex("0123456789abcdef"), dtype=2), DISK], [s02(1, 0, 0)]))
vec("cscd-e4-t10-vendor-id", plist([e4(b"XCOPYD  disk0", code_set=2, dtype=1), DISK], [s02(1, 0, 0)]))
vec("cscd-e9-sas", plist([lun_wwpn(0xE9, 0, struct.pack(">Q8x", 0x5000C50012345678)), DISK], [s02(1, 0, 0)]))
vec("cscd-processor-pdt", plist([DISK, e4(NAA5T, pdt=3, pad=1)], [s00(4096, 8, 0)]))
vec("cscd-id-ffff-copy-manager", plist([DISK], [s02(8, 0, 100, src=0, dst=0xFFFF)]))
vec("libiscsi-descrtype-e0-accepted", plist([lun_wwpn(0xE0, 0, b"\0" * 16)], [s02(1, 0, 0, src=0, dst=0)], usage=0b00))
vec("limits-64-cscds-1024-segments", plist([e4(NAA5)] * 64, [s02(1, i, i) for i in range(1024)]))

# =====================================================================================
# ILLEGAL REQUEST before any segment runs
one = plist([e4(NAA6, dlen=16)], [s02(1, 0, 0, src=0, dst=0)])
vec("libiscsi-paramhdr-truncated-in-cscd", one[:16 + 32 - 1], ir(0x1A, 0x00))
vec("libiscsi-paramhdr-truncated-in-segment", one[:16 + 32 + 28 - 1], ir(0x1A, 0x00))
vec("header-truncated", one[:10], ir(0x1A, 0x00))
vec("trailing-byte-after-inline-data", one + b"\0", ir(0x1A, 0x00))
vec("libiscsi-descrlimits-too-many-cscds", plist([e4(NAA6)] * 65, [s02(1, 0, 0, 0, 0)]), ir(0x26, 0x06, 16))
vec("libiscsi-descrlimits-too-many-segments", plist([e4(NAA6)], [s02(1, 0, 0, 0, 0)] * 1025), ir(0x26, 0x08, 48))
vec("libiscsi-descrlimits-list-too-long", plist([e4(NAA6)] * 65, [s02(1, 0, 0, 0, 0)] * 2300), ir(0x1A, 0x00, 2))
vec("limits-small-too-many-segments", plist([DISK], [s02(1, 0, 0, 0, 0)] * 3), ir(0x26, 0x08, 48), limits="max_segment_descriptors = 2\n")
vec("inline-data-length-exceeded", plist([DISK, TAPE_V], [s04(16, 0, 16)], inline=b"x" * 20), ir(0x26, 0x0B, 12), limits="max_inline_data_length = 16\n")
vec("list-id-usage-01b-reserved", plist([DISK], [s02(1, 0, 0, 0, 0)], usage=0b01), ir(0x26, 0x00, 1, 4))
vec("list-id-usage-11b-nonzero-id", plist([DISK], [s02(1, 0, 0, 0, 0)], usage=0b11, list_id=5), ir(0x26, 0x00, 0))
vec("cscd-list-not-multiple-of-32", header(33, 0) + DISK + b"\xe4", ir(0x26, 0x00, 2))
for code in (0xE3, 0xE5, 0xE6, 0xE7, 0xE8):
    vec(f"cscd-{code:02x}-unsupported", plist([DISK, lun_wwpn(code, 0, b"\0" * 16)], [s02(1, 0, 0)]), ir(0x26, 0x07, 48))
vec("cscd-ea-ipv6-unsupported", plist([DISK, cscd_head(0xEA, 0) + b"\0" * 24 + dev_params(0) + b"\xff" + b"\0" * 31], [s02(1, 0, 0)]), ir(0x26, 0x07, 48))
vec("cscd-02-in-cscd-list", plist([DISK, b"\x02" + DISK[1:]], [s02(1, 0, 0)]), ir(0x26, 0x07, 48))
vec("cscd-ff-extension-alone", plist([b"\xff" + DISK[1:]], []), ir(0x26, 0x07, 16))
vec("libiscsi-validtgtdescr-lu-id-type-10b", plist([e4(NAA6, lu_id_type=0b10)], [s02(1, 0, 0, 0, 0)]), ir(0x26, 0x00, 17, 7))
vec("cscd-pdt-medium-changer", plist([e4(NAA6, pdt=8)], []), ir(0x26, 0x00, 17, 4))
vec("e4-code-set-0", plist([e4(NAA6, code_set=0)], []), ir(0x26, 0x00, 20, 3))
vec("e4-association-target-port", plist([e4(NAA6, assoc=1)], []), ir(0x26, 0x00, 21, 5))
vec("e4-designator-length-21", plist([e4(NAA6, dlen=21)], []), ir(0x26, 0x00, 23))
vec("stream-fixed0-with-block-length", plist([DISK, e4(NAA5T, pdt=1, fixed=0, block_length=512)], []), ir(0x26, 0x00, 48 + 29))
vec("stream-fixed1-without-block-length", plist([DISK, e4(NAA5T, pdt=1, fixed=1, block_length=0)], []), ir(0x26, 0x00, 48 + 29))
vec("seg-type-16-unsupported", plist([DISK], [seg(0x16, 0x18, 0, 0, b"\0" * 20)]), ir(0x26, 0x09, 48))
vec("seg-type-c0-vendor", plist([DISK], [seg(0xC0, 0x08, 0, 0, b"\0" * 4)]), ir(0x26, 0x09, 48))
vec("seg-type-e4-in-segment-list", plist([DISK], [seg(0xE4, 0x08, 0, 0, b"\0" * 4)]), ir(0x26, 0x09, 48))
vec("seg02-wrong-descriptor-length", plist([DISK], [seg(0x02, 0x14, 0, 0, b"\0" * 16)]), ir(0x26, 0x00, 50))
vec("sg_xcopy-00h-empty-body-quirk", plist([DISK, TAPE_V], [struct.pack(">BBHHH", 0, 0, 0, 0, 1)[:4]]), ir(0x26, 0x00, 82))
vec("seg05-count-beyond-descriptor", plist([DISK, TAPE_V], [s05(8, b"12345678", count=9)]), ir(0x26, 0x00, 80 + 12))
vec("seg05-length-not-multiple-of-4", plist([DISK, TAPE_V], [seg(0x05, 13, 0, 1, b"\0\0\0\x01\0\x01\0\0\x41")]), ir(0x26, 0x00, 82))
vec("seg15-transportid-length-mismatch", plist([DISK, TAPE_V], [s15(1, 1, 2, 0, 0, 0, b"\x05" + b"\0" * 23, tid_len=20)]), ir(0x26, 0x00, 80 + 28))
vec("seg-runs-past-segment-list", header(32, 20) + DISK + s02(1, 0, 0, 0, 0)[:20], ir(0x26, 0x00, 50))
vec("segment-list-of-3-bytes", header(32, 3) + DISK + b"\x02\x00\x00", ir(0x26, 0x00, 8))

# =====================================================================================
# Valid lists that a copy manager aborts when it reaches the segment (COPY ABORTED)
vec("libiscsi-validsegdescr-bad-destination-index", plist([e4(NAA6, dlen=16)], [s02(1, 0, 0, src=0, dst=1)]), ca(0x0D, 0x02, 0, 6))
vec("libiscsi-validtgtdescr-nul", plist([e4(NAA6, nul=1)], [s02(1, 0, 0, src=0, dst=0)]), ca(0x0D, 0x02, 0, 16, sd=False))
vec("libiscsi-descrtype-03h-on-disk", plist([e4(NAA6)], [s03(0, 0, 0, src=0, dst=0)]), ca(0x26, 0x0C, 0, 4))
vec("seg00-to-a-disk", plist([DISK, e4(NAA6B)], [s00(512, 1, 0)]), ca(0x26, 0x0C, 0, 6))
vec("seg10-filemarks-to-a-disk", plist([DISK, TAPE_V], [tape_seg(0x10, 0, b"\0\0\0\x01")]), ca(0x26, 0x0C, 0, 6))
vec("seg10-filemarks-to-a-processor", plist([DISK, e4(NAA5T, pdt=3)], [tape_seg(0x10, 1, b"\0\0\0\x01")]), ca(0x26, 0x0C, 0, 6))
vec("seg04-inline-out-of-range", plist([DISK, TAPE_V], [s04(512, 0, 512)], inline=b"z" * 100), ca(0x26, 0x0B, 0, 12))
vec("seg04-inline-offset-not-multiple-of-4", plist([DISK, TAPE_V], [s04(2, 2, 2)], inline=b"z" * 8), ca(0x26, 0x00, 0, 12))
vec("reserved-cscd-id-0800", plist([DISK], [s02(1, 0, 0, src=0x0800, dst=0)]), ca(0x26, 0x00, 0, 4))
vec("rod-cscd-id-f800-in-lid1", plist([DISK], [s02(1, 0, 0, src=0, dst=0xF800)]), ca(0x26, 0x00, 0, 6))
vec("seg00-zero-stream-transfer-length", plist([DISK, TAPE_V], [s00(0, 8, 0)]), ca(0x26, 0x00, 0, 9))
vec("seg00-stream-transfer-above-maximum", plist([DISK, TAPE_F], [s00(65536, 8, 0)]), ca(0x26, 0x00, 0, 9))
vec("second-segment-aborts", plist([DISK, TAPE_V], [s00(512, 1, 0), s02(1, 0, 0, src=0, dst=1)]), ca(0x26, 0x0C, 1, 6))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "xcopy-descriptors"
    os.makedirs(out, exist_ok=True)
    expect = {}
    for name, (data, verdict, limits) in sorted(vectors.items()):
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(data)
        if limits:
            with open(os.path.join(out, name + ".limits.toml"), "w") as f:
                f.write(limits)
        expect[name] = verdict
    with open(os.path.join(out, "expected-sense.json"), "w") as f:
        json.dump(expect, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"{len(vectors)} vectors written to {out}")


if __name__ == "__main__":
    main()
