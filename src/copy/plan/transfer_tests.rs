//! The transfer planner with no device, file or thread: what each segment type reads and
//! writes, how much it processes (leftovers carried in), the range checks SPC-3 makes before
//! any I/O and the byte their COPY ABORTED points at, the PAD/CAT rules each type applies,
//! and how a byte-range segment is cut into pieces.

use super::*;
use crate::scsi::segment_descriptor::CscdId;

const S: CscdId = CscdId(0);
const D: CscdId = CscdId(1);

/// A disk of `blocks` blocks of `block_length` bytes.
fn disk(block_length: u32, blocks: u64) -> Cscd {
    Cscd {
        block_length,
        blocks,
        residue_unit: block_length,
        ..Cscd::default()
    }
}

/// A tape as its CSCD descriptor says: fixed with `block_length`, or variable (0).
fn tape(fixed: bool, block_length: u32) -> Cscd {
    Cscd {
        fixed,
        stream_block_length: block_length,
        residue_unit: if fixed { block_length } else { 1 },
        ..Cscd::default()
    }
}

/// The PAD/CAT bits as `prepare` reads them from the list: every one set, so a planner that
/// clears one shows it.
const ALL: Residue = Residue {
    cat: true,
    source_pad: true,
    destination_pad: true,
    last: true,
    exact_destination: true,
};

fn unit(fixed: bool, block_length: u32, transfer_length: u32) -> StreamUnit {
    StreamUnit {
        fixed,
        block_length,
        transfer_length,
    }
}

fn plan(segment: &Segment, s: Option<Cscd>, d: Option<Cscd>, carried: Carried) -> Transfer {
    transfer(segment, s.as_ref(), d.as_ref(), carried, ALL)
        .expect("plans")
        .expect("a transfer segment")
}

fn refused(segment: &Segment, s: Option<Cscd>, d: Option<Cscd>, carried: Carried) -> Failure {
    transfer(segment, s.as_ref(), d.as_ref(), carried, ALL).expect_err("refused")
}

fn carried(source: u64, destination: u64) -> Carried {
    Carried {
        source,
        destination,
    }
}

fn block_to_stream(blocks: u16, lba: u64) -> Segment {
    Segment::BlockToStream {
        hold: false,
        source: S,
        destination: D,
        stream_transfer_length: 3,
        blocks,
        lba,
    }
}

/// 00h: NUMBER OF BLOCKS counts source blocks; the tape's unit is STL blocks of the
/// descriptor's block length when fixed. The last block of the disk is the last one read.
#[test]
fn block_to_stream_reads_source_blocks_into_stream_transfers() {
    let t = plan(
        &block_to_stream(4, 96),
        Some(disk(512, 100)),
        Some(tape(true, 1024)),
        carried(7, 9),
    );
    assert_eq!(
        t,
        Transfer {
            from: From::Blocks { lba: 96 },
            to: To::Stream(unit(true, 1024, 3)),
            process: 2048,
            residue: ALL,
            hold: false,
        }
    );
    assert_eq!(t.residue.end(false, false), ALL.end(false, false));
}

/// 00h past the disk's end (by one block, and by an LBA that wraps) is COPY ABORTED 00/00
/// with the pointer at the LBA, byte 16.
#[test]
fn block_to_stream_past_the_disk_points_at_its_lba() {
    for segment in [block_to_stream(5, 96), block_to_stream(1, u64::MAX)] {
        assert_eq!(
            refused(
                &segment,
                Some(disk(512, 100)),
                Some(tape(false, 0)),
                Carried::default()
            ),
            Failure::at_field(Asc::NO_ADDITIONAL_SENSE, 16)
        );
    }
}

/// A side the segment needs that is not resolved is 0D/02, checked before the range.
#[test]
fn an_unresolved_side_is_not_reachable() {
    let unreachable = Failure::new(Asc::COPY_TARGET_DEVICE_NOT_REACHABLE);
    let past = block_to_stream(200, 0);
    assert_eq!(
        refused(&past, None, Some(tape(false, 0)), Carried::default()),
        unreachable
    );
    assert_eq!(
        refused(&past, Some(disk(512, 1)), None, Carried::default()),
        unreachable
    );
}

/// 01h: NUMBER OF BLOCKS counts destination blocks, so destination data carried in fills
/// part of them; the range is checked on the destination.
#[test]
fn stream_to_block_processes_what_the_carried_data_leaves_of_its_blocks() {
    let segment = Segment::StreamToBlock {
        hold: true,
        source: S,
        destination: D,
        stream_transfer_length: 100,
        blocks: 2,
        lba: 8,
    };
    let t = plan(
        &segment,
        Some(tape(false, 0)),
        Some(disk(4096, 10)),
        carried(5, 96),
    );
    assert_eq!(t.from, From::Stream(unit(false, 0, 100)));
    assert_eq!(t.to, To::Blocks { lba: 8 });
    assert_eq!(t.process, 8192 - 96);
    assert!(t.hold, "0Ch holds its data");
    // More carried in than the blocks take: nothing more is processed.
    let t = plan(
        &segment,
        Some(tape(false, 0)),
        Some(disk(512, 10)),
        carried(0, 2000),
    );
    assert_eq!(t.process, 0);
    assert_eq!(
        refused(
            &segment,
            Some(tape(false, 0)),
            Some(disk(512, 9)),
            Carried::default()
        ),
        Failure::at_field(Asc::NO_ADDITIONAL_SENSE, 16)
    );
}

fn block_to_block(dc: bool, blocks: u16) -> Segment {
    Segment::BlockToBlock {
        hold: false,
        dc,
        source: S,
        destination: D,
        blocks,
        source_lba: 10,
        destination_lba: 20,
    }
}

/// 02h: DC=0 counts source blocks, DC=1 destination blocks less what was carried in. Each
/// range is checked in its own disk's blocks, the destination's with the carried data.
#[test]
fn block_to_block_counts_by_dc_and_checks_each_disk_in_its_own_blocks() {
    let (s, d) = (disk(512, 12), disk(4096, 22));
    let t = plan(&block_to_block(false, 2), Some(s), Some(d), carried(0, 0));
    assert_eq!(
        (t.from, t.to, t.process),
        (From::Blocks { lba: 10 }, To::Blocks { lba: 20 }, 1024)
    );
    let t = plan(
        &block_to_block(true, 1),
        Some(disk(512, 20)),
        Some(d),
        carried(0, 512),
    );
    assert_eq!(t.process, 4096 - 512);
    // DC=1, 2 destination blocks: 8192 source bytes are 16 source blocks from LBA 10.
    assert_eq!(
        refused(
            &block_to_block(true, 2),
            Some(disk(512, 25)),
            Some(d),
            Carried::default()
        ),
        Failure::at_field(Asc::NO_ADDITIONAL_SENSE, 12)
    );
    // 1025 bytes carried in and 2 more source blocks (1024 bytes): 3 destination blocks of
    // 1024 from LBA 20, one more than a 22-block disk has.
    assert_eq!(
        refused(
            &block_to_block(false, 2),
            Some(s),
            Some(disk(1024, 22)),
            carried(0, 1025)
        ),
        Failure::at_field(Asc::NO_ADDITIONAL_SENSE, 20)
    );
    plan(
        &block_to_block(false, 2),
        Some(s),
        Some(disk(1024, 23)),
        carried(0, 1025),
    );
}

/// 03h: BYTE COUNT bytes, each side in its own stream unit.
#[test]
fn stream_to_stream_moves_its_byte_count_in_each_sides_units() {
    let segment = Segment::StreamToStream {
        hold: true,
        source: S,
        destination: D,
        source_transfer_length: 2,
        destination_transfer_length: 4096,
        byte_count: 10_000,
    };
    let t = plan(
        &segment,
        Some(tape(true, 512)),
        Some(tape(false, 0)),
        carried(3, 3),
    );
    assert_eq!(t.from, From::Stream(unit(true, 512, 2)));
    assert_eq!(t.to, To::Stream(unit(false, 0, 4096)));
    assert_eq!((t.process, t.hold), (10_000, true));
}

/// 04h and 05h have no source device: they act as if source PAD were 0 (Table 117), and
/// keep the other bits.
#[test]
fn inline_and_embedded_data_act_as_if_source_pad_were_zero() {
    let inline = Segment::InlineToStream {
        destination: D,
        stream_transfer_length: 8,
        inline_offset: 12,
        bytes: 20,
    };
    let embedded = Segment::EmbeddedToStream {
        destination: D,
        stream_transfer_length: 8,
        data: vec![1; 28],
    };
    let cleared = Residue {
        source_pad: false,
        ..ALL
    };
    let t = plan(&inline, None, Some(tape(false, 0)), Carried::default());
    assert_eq!(
        t,
        Transfer {
            from: From::Inline {
                offset: 12,
                bytes: 20
            },
            to: To::Stream(unit(false, 0, 8)),
            process: 20,
            residue: cleared,
            hold: false,
        }
    );
    let t = plan(&embedded, None, Some(tape(false, 0)), Carried::default());
    assert_eq!(
        (t.from, t.process, t.residue),
        (From::Embedded, 28, cleared)
    );
    assert_eq!(
        refused(&embedded, None, None, Carried::default()),
        Failure::new(Asc::COPY_TARGET_DEVICE_NOT_REACHABLE)
    );
}

/// 06h writes nothing, so it has no destination PAD; a null LU source (not resolved) has
/// nothing to read and only settles what was carried in.
#[test]
fn discard_has_no_destination_pad_and_a_null_source_reads_nothing() {
    let segment = Segment::StreamToDiscard {
        hold: true,
        source: S,
        stream_transfer_length: 64,
        bytes: 640,
    };
    let cleared = Residue {
        destination_pad: false,
        ..ALL
    };
    let t = plan(&segment, Some(tape(false, 0)), None, Carried::default());
    assert_eq!(
        t,
        Transfer {
            from: From::Stream(unit(false, 0, 64)),
            to: To::Discard,
            process: 640,
            residue: cleared,
            hold: true,
        }
    );
    let t = plan(&segment, None, None, carried(10, 0));
    assert_eq!((t.from, t.process, t.residue), (From::Nothing, 0, cleared));
}

/// 08h: the range starts BYTE OFFSET bytes into block LBA and must end on the disk (byte
/// 16 when it does not).
#[test]
fn block_offset_to_stream_checks_the_blocks_its_bytes_span() {
    let segment = Segment::BlockOffsetToStream {
        source: S,
        destination: D,
        stream_transfer_length: 100,
        bytes: 1000,
        lba: 8,
        byte_offset: 100,
    };
    // 100 + 1000 bytes span 3 blocks of 512: LBAs 8, 9 and 10.
    let t = plan(
        &segment,
        Some(disk(512, 11)),
        Some(tape(false, 0)),
        Carried::default(),
    );
    assert_eq!(
        t.from,
        From::Range {
            lba: 8,
            offset: 100
        }
    );
    assert_eq!(t.to, To::Stream(unit(false, 0, 100)));
    assert_eq!((t.process, t.residue), (1000, ALL));
    assert_eq!(
        refused(
            &segment,
            Some(disk(512, 10)),
            Some(tape(false, 0)),
            Carried::default()
        ),
        Failure::at_field(Asc::NO_ADDITIONAL_SENSE, 16)
    );
}

/// 09h: the range is checked on the destination disk.
#[test]
fn stream_to_block_offset_checks_the_destination_range() {
    let segment = Segment::StreamToBlockOffset {
        source: S,
        destination: D,
        stream_transfer_length: 10,
        bytes: 512,
        lba: 3,
        byte_offset: 1,
    };
    let t = plan(
        &segment,
        Some(tape(false, 0)),
        Some(disk(512, 5)),
        Carried::default(),
    );
    assert_eq!(t.from, From::Stream(unit(false, 0, 10)));
    assert_eq!(t.to, To::Range { lba: 3, offset: 1 });
    assert_eq!(
        refused(
            &segment,
            Some(tape(false, 0)),
            Some(disk(512, 4)),
            Carried::default()
        ),
        Failure::at_field(Asc::NO_ADDITIONAL_SENSE, 16)
    );
}

/// 0Ah: each range on its own disk, the source's pointing at byte 12, the destination's at
/// byte 20.
#[test]
fn block_offset_to_block_offset_checks_both_ranges() {
    let segment = Segment::BlockOffsetToBlockOffset {
        source: S,
        destination: D,
        bytes: 600,
        source_lba: 0,
        destination_lba: 1,
        source_byte_offset: 0,
        destination_byte_offset: 500,
    };
    // Source: 600 bytes = 2 blocks; destination: 500 + 600 = 3 blocks from LBA 1.
    let t = plan(
        &segment,
        Some(disk(512, 2)),
        Some(disk(512, 4)),
        Carried::default(),
    );
    assert_eq!(t.from, From::Range { lba: 0, offset: 0 });
    assert_eq!(
        t.to,
        To::Range {
            lba: 1,
            offset: 500
        }
    );
    assert_eq!(
        refused(
            &segment,
            Some(disk(512, 1)),
            Some(disk(512, 4)),
            Carried::default()
        ),
        Failure::at_field(Asc::NO_ADDITIONAL_SENSE, 12)
    );
    assert_eq!(
        refused(
            &segment,
            Some(disk(512, 2)),
            Some(disk(512, 3)),
            Carried::default()
        ),
        Failure::at_field(Asc::NO_ADDITIONAL_SENSE, 20)
    );
}

/// The segments that are not transfers are not planned here.
#[test]
fn other_segments_are_not_transfers() {
    let filemarks = Segment::WriteFilemarks {
        destination: D,
        immed: false,
        count: 1,
    };
    let verify = Segment::VerifyCscd {
        source: S,
        tur: true,
    };
    for segment in [filemarks, verify] {
        assert_eq!(
            transfer(&segment, None, None, Carried::default(), ALL),
            Ok(None)
        );
    }
}

/// A range of 2.5 pieces: two whole pieces that carry their leftovers on as CAT=1 without
/// the source PAD, and a last one with the segment's own rules.
#[test]
fn a_byte_range_moves_in_pieces_and_only_the_last_ends_the_segment() {
    let t = Transfer {
        from: From::Range { lba: 0, offset: 0 },
        to: To::Stream(unit(false, 0, 1)),
        process: 2 * RANGE_CHUNK + RANGE_CHUNK / 2,
        residue: Residue { cat: false, ..ALL },
        hold: false,
    };
    let carry = Residue {
        cat: true,
        source_pad: false,
        last: false,
        destination_pad: true,
        exact_destination: true,
    };
    let pieces: Vec<Chunk> = t.chunks().collect();
    assert_eq!(
        pieces,
        [
            Chunk {
                at: 0,
                bytes: RANGE_CHUNK,
                residue: carry,
                last: false
            },
            Chunk {
                at: RANGE_CHUNK,
                bytes: RANGE_CHUNK,
                residue: carry,
                last: false
            },
            Chunk {
                at: 2 * RANGE_CHUNK,
                bytes: RANGE_CHUNK / 2,
                residue: t.residue,
                last: true
            },
        ]
    );
    // Exactly one piece's worth is one piece; nothing is one empty last piece.
    let one = Transfer {
        process: RANGE_CHUNK,
        ..t
    };
    assert_eq!(
        one.chunks()
            .map(|c| (c.at, c.bytes, c.last))
            .collect::<Vec<_>>(),
        [(0, RANGE_CHUNK, true)]
    );
    let none = Transfer { process: 0, ..t };
    assert_eq!(
        none.chunks()
            .map(|c| (c.at, c.bytes, c.last))
            .collect::<Vec<_>>(),
        [(0, 0, true)]
    );
}

/// What a byte range to a stream should write: carried-in destination data and the range,
/// in whole transfers only.
#[test]
fn a_range_to_a_stream_expects_whole_transfers_of_carried_and_processed_bytes() {
    let t = Transfer {
        from: From::Range { lba: 0, offset: 0 },
        to: To::Stream(unit(false, 0, 100)),
        process: 1000,
        residue: ALL,
        hold: false,
    };
    assert_eq!(t.expected(carried(0, 50), 100), 1000);
    assert_eq!(t.expected(carried(7, 99), 100), 1000);
    assert_eq!(t.expected(carried(0, 100), 100), 1100);
    assert_eq!(
        t.expected(carried(0, 3), 0),
        1003,
        "a zero unit counts bytes"
    );
}

/// A stream CSCD's transfer for a segment's STL, as its descriptor says.
#[test]
fn a_cscd_streams_in_the_mode_its_descriptor_gives() {
    assert_eq!(tape(true, 512).stream(4), unit(true, 512, 4));
    assert_eq!(tape(true, 512).stream(4).bytes(), 2048);
    assert_eq!(disk(512, 1).stream(4), unit(false, 0, 4));
}
