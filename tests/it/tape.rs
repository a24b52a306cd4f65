//! The emulated SSC-3 tape drive driven through its CDB interface only, with every sense
//! field checked byte by byte and every image it writes parsed by an independent SIMH
//! reader (below), not by the drive's own image module.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use tempfile::TempDir;
use xcopyd::device::tape::{Damage, EmulatedTape, LoadReport, TapeConfig};
use xcopyd::device::{Completion, DataDirection, ScsiDevice};
use xcopyd::scsi::{Designator, Status};

// ---------------------------------------------------------------- independent SIMH reader

#[derive(Clone, Debug, PartialEq, Eq)]
enum Rec {
    Data(Vec<u8>),
    Mark,
}

/// Parses a SIMH .tap image strictly: every record complete, pad byte zero, trailing
/// length equal to the leading one, nothing after the last object.
fn parse_simh(bytes: &[u8]) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut p = 0usize;
    while p < bytes.len() {
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let len = word(p);
        assert_ne!(len, 0xffff_ffff, "unexpected end-of-medium marker at {p}");
        assert_eq!(len & 0x8000_0000, 0, "unexpected bad record at {p}");
        if len == 0 {
            out.push(Rec::Mark);
            p += 4;
            continue;
        }
        let n = len as usize;
        let data = bytes[p + 4..p + 4 + n].to_vec();
        let mut q = p + 4 + n;
        if n % 2 == 1 {
            assert_eq!(bytes[q], 0, "pad byte at {q}");
            q += 1;
        }
        assert_eq!(word(q), len, "trailing length at {q}");
        out.push(Rec::Data(data));
        p = q + 4;
    }
    assert_eq!(p, bytes.len());
    out
}

/// Builds one SIMH record the way the format says, for hand-made images.
fn simh_record(data: &[u8]) -> Vec<u8> {
    let n = (data.len() as u32).to_le_bytes();
    let mut v = n.to_vec();
    v.extend_from_slice(data);
    if data.len() % 2 == 1 {
        v.push(0);
    }
    v.extend_from_slice(&n);
    v
}

// ---------------------------------------------------------------- sense, parsed by hand

/// Fixed-format sense fields, read straight from the bytes (SPC-3 fixed format sense).
#[derive(Debug, PartialEq, Eq)]
struct S {
    key: u8,
    asc: u8,
    ascq: u8,
    filemark: bool,
    eom: bool,
    ili: bool,
    /// INFORMATION when VALID=1.
    info: Option<u32>,
}

fn s(key: u8, asc: u8, ascq: u8) -> S {
    S {
        key,
        asc,
        ascq,
        filemark: false,
        eom: false,
        ili: false,
        info: None,
    }
}

impl S {
    fn fm(self) -> Self {
        Self {
            filemark: true,
            ..self
        }
    }
    fn eom(self) -> Self {
        Self { eom: true, ..self }
    }
    fn ili(self) -> Self {
        Self { ili: true, ..self }
    }
    fn info(self, info: u32) -> Self {
        Self {
            info: Some(info),
            ..self
        }
    }
}

fn sense(c: &Completion) -> S {
    assert_eq!(
        c.status,
        Status::CHECK_CONDITION,
        "expected CHECK CONDITION"
    );
    let b = &c.sense;
    assert!(b.len() >= 18, "fixed sense is at least 18 bytes: {b:02x?}");
    assert_eq!(b[0] & 0x7f, 0x70, "current, fixed format");
    assert_eq!(usize::from(b[7]) + 8, b.len(), "ADDITIONAL SENSE LENGTH");
    S {
        key: b[2] & 0x0f,
        asc: b[12],
        ascq: b[13],
        filemark: b[2] & 0x80 != 0,
        eom: b[2] & 0x40 != 0,
        ili: b[2] & 0x20 != 0,
        info: (b[0] & 0x80 != 0).then(|| u32::from_be_bytes(b[3..7].try_into().unwrap())),
    }
}

/// The sense-key-specific bytes 15-17 (field pointer).
fn sks(c: &Completion) -> [u8; 3] {
    c.sense[15..18].try_into().unwrap()
}

fn good(c: &Completion, residual: usize) {
    assert_eq!(
        (c.status, c.residual),
        (Status::GOOD, residual),
        "sense {:02x?}",
        c.sense
    );
    assert!(c.sense.is_empty());
}

// ---------------------------------------------------------------- driving the drive

struct Tape {
    dev: EmulatedTape,
    path: PathBuf,
    _dir: TempDir,
}

fn open_with(config: TapeConfig) -> (Tape, LoadReport) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tape0.tap");
    let (dev, report) = EmulatedTape::open("tape0", &path, config).unwrap();
    (
        Tape {
            dev,
            path,
            _dir: dir,
        },
        report,
    )
}

fn open() -> Tape {
    open_with(TapeConfig::default()).0
}

impl Tape {
    fn none(&self, cdb: &[u8]) -> Completion {
        self.dev.execute(cdb, DataDirection::None).unwrap()
    }
    fn data_in(&self, cdb: &[u8], len: usize) -> (Completion, Vec<u8>) {
        let mut buf = vec![0xeeu8; len];
        let c = self
            .dev
            .execute(cdb, DataDirection::FromDevice(&mut buf))
            .unwrap();
        (c, buf)
    }
    fn data_out(&self, cdb: &[u8], data: &[u8]) -> Completion {
        self.dev
            .execute(cdb, DataDirection::ToDevice(data))
            .unwrap()
    }
    fn write_var(&self, data: &[u8]) -> Completion {
        self.data_out(&write6(false, data.len() as u32), data)
    }
    fn read_var(&self, len: u32, sili: bool) -> (Completion, Vec<u8>) {
        self.data_in(&read6(false, sili, len), len as usize)
    }
    fn weof(&self, n: u32) -> Completion {
        self.none(&[0x10, 0, (n >> 16) as u8, (n >> 8) as u8, n as u8, 0])
    }
    fn space(&self, code: u8, count: i32) -> Completion {
        let c = count.to_be_bytes();
        self.none(&[0x11, code, c[1], c[2], c[3], 0])
    }
    fn rewind(&self) {
        good(&self.none(&[0x01, 0, 0, 0, 0, 0]), 0);
    }
    fn locate(&self, id: u32) -> Completion {
        let a = id.to_be_bytes();
        self.none(&[0x2b, 0, 0, a[0], a[1], a[2], a[3], 0, 0, 0])
    }
    /// READ POSITION short form: (BOP, EOP, first location, last location).
    fn position(&self) -> (bool, bool, u32, u32) {
        let (c, d) = self.data_in(&[0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0], 20);
        good(&c, 0);
        (
            d[0] & 0x80 != 0,
            d[0] & 0x40 != 0,
            u32::from_be_bytes(d[4..8].try_into().unwrap()),
            u32::from_be_bytes(d[8..12].try_into().unwrap()),
        )
    }
    fn at(&self) -> u32 {
        self.position().2
    }
    /// MODE SELECT(6) with a block descriptor: block length 0 = variable.
    fn set_block_length(&self, len: u32) {
        let l = len.to_be_bytes();
        let params = [0, 0, 0x10, 8, 0, 0, 0, 0, 0, l[1], l[2], l[3]];
        good(&self.data_out(&[0x15, 0x10, 0, 0, 12, 0], &params), 0);
    }
    fn image(&self) -> Vec<u8> {
        fs::read(&self.path).unwrap()
    }
}

fn read6(fixed: bool, sili: bool, len: u32) -> [u8; 6] {
    let l = len.to_be_bytes();
    [
        0x08,
        u8::from(fixed) | (u8::from(sili) << 1),
        l[1],
        l[2],
        l[3],
        0,
    ]
}

fn write6(fixed: bool, len: u32) -> [u8; 6] {
    let l = len.to_be_bytes();
    [0x0a, u8::from(fixed), l[1], l[2], l[3], 0]
}

fn pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| (j as u8).wrapping_mul(31).wrapping_add(seed as u8))
        .collect()
}

// ---------------------------------------------------------------- tests

/// SSC-3 READ(6)/WRITE(6) in variable and fixed mode, WRITE FILEMARKS(6), MODE SELECT
/// block descriptor: everything written comes back exactly, the image is standard SIMH,
/// and every FILEMARK / BLANK CHECK sense is exact.
#[test]
fn round_trip_mixed_records_filemarks_fixed_and_variable() {
    let t = open();
    let sizes = [1usize, 2, 511, 4096, 65537];
    let records: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| pattern(i, n))
        .collect();
    for r in &records {
        good(&t.write_var(r), 0);
    }
    good(&t.weof(1), 0);
    t.set_block_length(512);
    let blocks = pattern(9, 4 * 512);
    good(&t.data_out(&write6(true, 4), &blocks), 0);
    good(&t.weof(2), 0);
    assert_eq!(t.at(), 12);

    // The image, parsed independently.
    let mut want: Vec<Rec> = records.iter().cloned().map(Rec::Data).collect();
    want.push(Rec::Mark);
    want.extend(blocks.chunks(512).map(|b| Rec::Data(b.to_vec())));
    want.extend([Rec::Mark, Rec::Mark]);
    assert_eq!(parse_simh(&t.image()), want);

    // Read back in variable mode, exact lengths: GOOD, no residual.
    t.rewind();
    assert_eq!(t.position(), (true, false, 0, 0));
    t.set_block_length(0);
    for r in &records {
        let (c, d) = t.read_var(r.len() as u32, false);
        good(&c, 0);
        assert_eq!(&d, r);
    }
    // SSC-3 READ(6): a filemark is NO SENSE 00/01, FILEMARK=1, VALID=1, INFORMATION = the
    // requested length (bytes in variable mode), positioned after the filemark.
    let (c, d) = t.read_var(1000, false);
    assert_eq!(sense(&c), s(0, 0x00, 0x01).fm().info(1000));
    assert_eq!(c.residual, 1000);
    assert!(d.iter().all(|&b| b == 0xee), "nothing transferred");
    assert_eq!(t.at(), 6);

    // Fixed mode: 5 blocks requested, 4 before the filemark: INFORMATION = 1 block.
    t.set_block_length(512);
    let (c, d) = t.data_in(&read6(true, false, 5), 5 * 512);
    assert_eq!(sense(&c), s(0, 0x00, 0x01).fm().info(1));
    assert_eq!(c.residual, 512);
    assert_eq!(d[..2048], blocks[..]);
    assert_eq!(t.at(), 11);
    let (c, _) = t.data_in(&read6(true, false, 3), 3 * 512);
    assert_eq!(sense(&c), s(0, 0x00, 0x01).fm().info(3));
    // SSC-3 READ(6): end of data is BLANK CHECK 08/00/05, EOM=0 away from early warning,
    // INFORMATION = blocks not read.
    let (c, _) = t.data_in(&read6(true, false, 2), 1024);
    assert_eq!(sense(&c), s(8, 0x00, 0x05).info(2));
    assert_eq!(c.residual, 1024);
    assert_eq!(t.at(), 12);

    // SSC-3 LOCATE(10) to a logical object identifier, then READ: the very record.
    t.set_block_length(0);
    good(&t.locate(3), 0);
    let (c, d) = t.read_var(4096, false);
    good(&c, 0);
    assert_eq!(d, records[3]);
    // LOCATE beyond end of data: BLANK CHECK 08/00/05, positioned at end of data.
    assert_eq!(sense(&t.locate(13)), s(8, 0x00, 0x05));
    assert_eq!(t.at(), 12);
    // LOCATE(16) DEST_TYPE 001b to logical file 1: just after the first filemark.
    let mut l16 = [0u8; 16];
    l16[0] = 0x92;
    l16[1] = 0x08;
    l16[11] = 1;
    good(&t.none(&l16), 0);
    assert_eq!(t.at(), 6);
    // READ POSITION long form: logical object number 6, logical file identifier 1.
    let (c, d) = t.data_in(&[0x34, 0x06, 0, 0, 0, 0, 0, 0, 0, 0], 32);
    good(&c, 0);
    assert_eq!(d[8..16], 6u64.to_be_bytes());
    assert_eq!(d[16..24], 1u64.to_be_bytes());
    // The st driver's READ POSITION (service action 01h, the old BT=1) reports the same.
    let (c, d) = t.data_in(&[0x34, 0x01, 0, 0, 0, 0, 0, 0, 0, 0], 20);
    good(&c, 0);
    assert_eq!(d[4..8], 6u32.to_be_bytes());
}

/// SSC-3 SPACE(6): blocks and filemarks both ways, end of data, with the residues.
#[test]
fn space_over_blocks_filemarks_and_to_end_of_data() {
    let t = open();
    // Objects: 0-4 records, 5 filemark, 6-9 records, 10 and 11 filemarks; EOD = 12.
    for i in 0..5 {
        good(&t.write_var(&pattern(i, 10)), 0);
    }
    good(&t.weof(1), 0);
    for i in 0..4 {
        good(&t.write_var(&pattern(i, 20)), 0);
    }
    good(&t.weof(2), 0);
    t.rewind();

    good(&t.space(0, 3), 0);
    assert_eq!(t.at(), 3);
    // Crossing a filemark while spacing blocks: stop after it, FILEMARK, INFORMATION = the
    // count not spaced (2 blocks spaced of 10).
    assert_eq!(sense(&t.space(0, 10)), s(0, 0x00, 0x01).fm().info(8));
    assert_eq!(t.at(), 6);
    // Backwards onto the filemark: stop on its BOP side, 0 blocks spaced of 1.
    assert_eq!(sense(&t.space(0, -1)), s(0, 0x00, 0x01).fm().info(1));
    assert_eq!(t.at(), 5);
    good(&t.space(1, 1), 0);
    assert_eq!(t.at(), 6);
    good(&t.space(0, 2), 0);
    assert_eq!(t.at(), 8);
    good(&t.space(0, -2), 0);
    assert_eq!(t.at(), 6);
    good(&t.space(1, 2), 0);
    assert_eq!(t.at(), 12);
    // Filemarks forward at end of data: BLANK CHECK 08/00/05, INFORMATION 1 not spaced.
    assert_eq!(sense(&t.space(1, 1)), s(8, 0x00, 0x05).info(1));
    assert_eq!(t.at(), 12);
    assert_eq!(sense(&t.space(0, 1)), s(8, 0x00, 0x05).info(1));
    // Two filemarks back: BOP side of the filemark at 10.
    good(&t.space(1, -2), 0);
    assert_eq!(t.at(), 10);
    // Five back with one before: BOP, NO SENSE 00/04, EOM=1, 4 not spaced.
    assert_eq!(sense(&t.space(1, -5)), s(0, 0x00, 0x04).eom().info(4));
    assert_eq!(t.position(), (true, false, 0, 0));
    assert_eq!(sense(&t.space(0, -1)), s(0, 0x00, 0x04).eom().info(1));
    // Blocks back to BOP exactly is not an error; one more than there are is.
    good(&t.space(0, 4), 0);
    good(&t.space(0, -4), 0);
    good(&t.space(0, 2), 0);
    assert_eq!(sense(&t.space(0, -3)), s(0, 0x00, 0x04).eom().info(1));
    good(&t.space(3, 0), 0);
    assert_eq!(t.at(), 12);
    good(&t.space(0, 0), 0);
    assert_eq!(t.at(), 12);
    // Sequential filemarks (0010b) are not supported: 05/24/00, C/D=1, field byte 1 bit 3.
    let c = t.space(2, 1);
    assert_eq!(sense(&c), s(5, 0x24, 0x00));
    assert_eq!(sks(&c), [0xcb, 0, 1]);
}

/// SSC-3 READ(6) incorrect length: ILI with signed INFORMATION, SILI, and the fixed-mode
/// rules.
#[test]
fn incorrect_length_and_sili() {
    let t = open();
    let short = pattern(1, 100);
    let long = pattern(2, 200);
    good(&t.write_var(&short), 0);
    good(&t.write_var(&long), 0);
    t.rewind();
    // Underlength record, SILI=0: NO SENSE 00/00, ILI=1, INFORMATION 150-100 = 50.
    let (c, d) = t.read_var(150, false);
    assert_eq!(sense(&c), s(0, 0, 0).ili().info(50));
    assert_eq!(c.residual, 50);
    assert_eq!(d[..100], short[..]);
    // Overlength record: data cut to 150 bytes, INFORMATION 150-200 = -50.
    let (c, d) = t.read_var(150, false);
    assert_eq!(sense(&c), s(0, 0, 0).ili().info((-50i32) as u32));
    assert_eq!(c.residual, 0);
    assert_eq!(d[..], long[..150]);
    assert_eq!(t.at(), 2, "positioned after the overlength record");
    t.rewind();
    // SILI=1 with an underlength record: GOOD with the residual.
    let (c, d) = t.read_var(150, true);
    good(&c, 50);
    assert_eq!(d[..100], short[..]);
    // SILI=1 with an overlength record is still ILI.
    let (c, _) = t.read_var(150, true);
    assert_eq!(sense(&c), s(0, 0, 0).ili().info((-50i32) as u32));
    // Transfer length 0 reads nothing and does not move.
    t.rewind();
    let (c, _) = t.data_in(&read6(false, false, 0), 0);
    good(&c, 0);
    assert_eq!(t.at(), 0);
    // FIXED=1 in variable mode: 05/24/00 at byte 1 bit 0.
    let (c, _) = t.data_in(&read6(true, false, 1), 512);
    assert_eq!(sense(&c), s(5, 0x24, 0));
    assert_eq!(sks(&c), [0xc8, 0, 1]);
    // SILI=1 with FIXED=1: 05/24/00 at byte 1 bit 1.
    t.set_block_length(100);
    let (c, _) = t.data_in(&read6(true, true, 1), 100);
    assert_eq!(sense(&c), s(5, 0x24, 0));
    assert_eq!(sks(&c), [0xc9, 0, 1]);
    // Fixed mode, blocks of 100: the first record fits, the second (200 bytes) is ILI with
    // INFORMATION = blocks not transferred, positioned after it.
    let (c, d) = t.data_in(&read6(true, false, 3), 300);
    assert_eq!(sense(&c), s(0, 0, 0).ili().info(2));
    assert_eq!(c.residual, 200);
    assert_eq!(d[..100], short[..]);
    assert_eq!(t.at(), 2);
    // A buffer smaller than the transfer length: 05/24/00 at the TRANSFER LENGTH.
    t.rewind();
    let (c, _) = t.data_in(&read6(true, false, 2), 100);
    assert_eq!(sense(&c), s(5, 0x24, 0));
    assert_eq!(sks(&c), [0xcf, 0, 2]);
    assert_eq!(t.at(), 0);
}

/// SSC-3 early warning and end of partition on WRITE(6) and WRITE FILEMARKS(6): the write
/// that reaches early warning completes with NO SENSE, EOM=1, 00/02, INFORMATION 0; one that
/// would pass the physical end is not written: VOLUME OVERFLOW, EOM=1, 00/02, residue.
#[test]
fn early_warning_then_volume_overflow_variable() {
    // Records of 100 bytes take 108 image bytes; early warning from 800, end at 1000.
    let (t, _) = open_with(TapeConfig {
        capacity: 1000,
        early_warning: 200,
        ..TapeConfig::default()
    });
    for i in 0..7 {
        good(&t.write_var(&pattern(i, 100)), 0); // ends at 756
    }
    assert!(!t.position().1, "EOP clear before early warning");
    let c = t.write_var(&pattern(7, 100)); // ends at 864
    assert_eq!(sense(&c), s(0, 0x00, 0x02).eom().info(0));
    assert_eq!(c.residual, 0);
    assert!(t.position().1, "EOP set past early warning");
    let c = t.write_var(&pattern(8, 100)); // ends at 972: still in the zone
    assert_eq!(sense(&c), s(0, 0x00, 0x02).eom().info(0));
    // 1080 > 1000: not written.
    let c = t.write_var(&pattern(9, 100));
    assert_eq!(sense(&c), s(0x0d, 0x00, 0x02).eom().info(100));
    assert_eq!(c.residual, 100);
    // A filemark still fits (976), reported with early warning.
    assert_eq!(sense(&t.weof(1)), s(0, 0x00, 0x02).eom().info(0));
    // Six more filemarks: 6 fit (1000), the seventh does not.
    assert_eq!(sense(&t.weof(7)), s(0x0d, 0x00, 0x02).eom().info(1));
    let image = t.image();
    assert_eq!(image.len(), 1000);
    let parsed = parse_simh(&image);
    let mut want: Vec<Rec> = (0..9).map(|i| Rec::Data(pattern(i, 100))).collect();
    want.extend(std::iter::repeat_n(Rec::Mark, 7));
    assert_eq!(parsed, want);
    // Reading to end of data beyond early warning: BLANK CHECK with EOM=1.
    good(&t.space(3, 0), 0);
    let (c, _) = t.read_var(10, false);
    assert_eq!(sense(&c), s(8, 0x00, 0x05).eom().info(10));
}

/// The same capacity rules in fixed mode: residues count blocks.
#[test]
fn volume_overflow_fixed_counts_blocks() {
    let (t, _) = open_with(TapeConfig {
        block_size: 100,
        capacity: 1000,
        early_warning: 0,
        ..TapeConfig::default()
    });
    let data = pattern(3, 1000);
    // 9 records of 108 bytes fit (972), the tenth does not.
    let c = t.data_out(&write6(true, 10), &data);
    assert_eq!(sense(&c), s(0x0d, 0x00, 0x02).eom().info(1));
    assert_eq!(c.residual, 100);
    let parsed = parse_simh(&t.image());
    assert_eq!(parsed.len(), 9);
    for (i, r) in parsed.iter().enumerate() {
        assert_eq!(r, &Rec::Data(data[i * 100..(i + 1) * 100].to_vec()));
    }
    assert_eq!(t.at(), 9);
}

/// Many odd-sized fixed blocks in one WRITE(6): batched pwritev with pad bytes.
#[test]
fn many_odd_fixed_blocks_round_trip() {
    let (t, _) = open_with(TapeConfig {
        block_size: 3,
        ..TapeConfig::default()
    });
    let data = pattern(5, 3 * 700);
    good(&t.data_out(&write6(true, 700), &data), 0);
    let parsed = parse_simh(&t.image());
    assert_eq!(parsed.len(), 700);
    assert!(parsed
        .iter()
        .zip(data.chunks(3))
        .all(|(r, b)| r == &Rec::Data(b.to_vec())));
    t.rewind();
    let (c, d) = t.data_in(&read6(true, false, 700), 3 * 700);
    good(&c, 0);
    assert_eq!(d, data);
}

/// SSC-3 sequential-access model: writing in the middle of the tape makes the new data the
/// end of data; what followed is gone, from the image too. ERASE does the same.
#[test]
fn mid_tape_write_truncates() {
    let t = open();
    for i in 0..4 {
        good(&t.write_var(&pattern(i, 50 + i)), 0);
    }
    good(&t.weof(1), 0);
    good(&t.locate(2), 0);
    good(&t.write_var(b"XYZ"), 0);
    assert_eq!(
        parse_simh(&t.image()),
        vec![
            Rec::Data(pattern(0, 50)),
            Rec::Data(pattern(1, 51)),
            Rec::Data(b"XYZ".to_vec()),
        ]
    );
    assert_eq!(t.at(), 3);
    let (c, _) = t.read_var(10, false);
    assert_eq!(sense(&c), s(8, 0x00, 0x05).info(10));
    // WRITE FILEMARKS in the middle truncates too.
    good(&t.locate(1), 0);
    good(&t.weof(1), 0);
    assert_eq!(
        parse_simh(&t.image()),
        vec![Rec::Data(pattern(0, 50)), Rec::Mark]
    );
    // ERASE (long) from BOP side of object 1.
    good(&t.locate(1), 0);
    good(&t.none(&[0x19, 0x01, 0, 0, 0, 0]), 0);
    assert_eq!(parse_simh(&t.image()), vec![Rec::Data(pattern(0, 50))]);
    assert_eq!(t.image().len(), 58);
}

/// Crash safety: a record half-written when the writer died is cut off at the next open and
/// reported; everything before it reads back, and writing continues after it.
#[test]
fn half_written_record_is_cut_off_at_open() {
    let (t, report) = open_with(TapeConfig::default());
    assert!(report.created);
    assert!(report.is_clean());
    good(&t.write_var(&pattern(1, 300)), 0);
    good(&t.weof(1), 0);
    good(&t.write_var(&pattern(2, 41)), 0);
    let path = t.path.clone();
    let clean = t.image();
    drop(t.dev);

    let damaged = |tail: &[u8]| {
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(tail).unwrap();
    };
    let reopen = |path: &Path, wp: bool| {
        EmulatedTape::open(
            "tape0",
            path,
            TapeConfig {
                write_protect: wp,
                ..TapeConfig::default()
            },
        )
        .unwrap()
    };

    // The file ends inside a record's data.
    damaged(&simh_record(&pattern(3, 1000))[..500]);
    let (dev, report) = reopen(&path, false);
    assert_eq!(
        report.damage,
        Some(Damage::RecordPastEnd {
            offset: clean.len() as u64,
            length: 1000
        })
    );
    assert_eq!(report.truncated_bytes, 500);
    assert_eq!((report.records, report.filemarks), (2, 1));
    assert_eq!(fs::read(&path).unwrap(), clean);
    drop(dev);

    // Trailing length differs from the leading one (a torn trailer).
    let mut torn = simh_record(&pattern(4, 20));
    let n = torn.len();
    torn[n - 2] = 0x55;
    damaged(&torn);
    // Write protected: the damage is reported and ignored, the file untouched.
    let (dev, report) = reopen(&path, true);
    assert!(matches!(report.damage, Some(Damage::LengthMismatch { .. })));
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(fs::read(&path).unwrap().len(), clean.len() + n);
    drop(dev);
    let (dev, report) = reopen(&path, false);
    assert_eq!(
        report.damage,
        Some(Damage::LengthMismatch {
            offset: clean.len() as u64,
            leading: 20,
            trailing: 0x0055_0014,
        })
    );
    assert_eq!(fs::read(&path).unwrap(), clean);
    drop(dev);

    // A partial length word.
    damaged(&[7, 0]);
    let (dev, report) = reopen(&path, false);
    assert_eq!(
        report.damage,
        Some(Damage::PartialLength {
            offset: clean.len() as u64,
            bytes: 2
        })
    );
    assert!(report.to_string().contains("2 bytes truncated"));

    // What was complete reads back; nothing of the damage does; writing appends.
    let read = |len: u32| {
        let mut buf = vec![0u8; len as usize];
        let c = dev
            .execute(
                &read6(false, false, len),
                DataDirection::FromDevice(&mut buf),
            )
            .unwrap();
        (c, buf)
    };
    let (c, d) = read(300);
    good(&c, 0);
    assert_eq!(d, pattern(1, 300));
    assert_eq!(sense(&read(300).0), s(0, 0, 1).fm().info(300));
    let (c, d) = read(41);
    good(&c, 0);
    assert_eq!(d, pattern(2, 41));
    assert_eq!(sense(&read(64).0), s(8, 0, 5).info(64));
    let w = dev
        .execute(&write6(false, 5), DataDirection::ToDevice(b"after"))
        .unwrap();
    good(&w, 0);
    let mut want = parse_simh(&clean);
    want.push(Rec::Data(b"after".to_vec()));
    assert_eq!(parse_simh(&fs::read(&path).unwrap()), want);
}

/// A hand-made image with an end-of-medium marker, a bad record and an erase gap.
#[test]
fn foreign_image_markers_and_bad_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign.tap");
    let mut img = simh_record(b"first");
    let mut bad = simh_record(b"bad!");
    bad[3] |= 0x80;
    let n = bad.len();
    bad[n - 1] |= 0x80;
    img.extend_from_slice(&bad);
    img.extend_from_slice(&0xffff_fffeu32.to_le_bytes());
    img.extend_from_slice(&simh_record(b"third"));
    img.extend_from_slice(&0xffff_ffffu32.to_le_bytes());
    fs::write(&path, &img).unwrap();
    let (dev, report) = EmulatedTape::open("t", &path, TapeConfig::default()).unwrap();
    assert_eq!((report.records, report.bad_records, report.gaps), (3, 1, 1));
    assert!(report.end_of_medium_marker);
    let read = |len: u32| {
        let mut buf = vec![0u8; len as usize];
        let c = dev
            .execute(
                &read6(false, true, len),
                DataDirection::FromDevice(&mut buf),
            )
            .unwrap();
        (c, buf)
    };
    let (c, d) = read(64);
    good(&c, 59);
    assert_eq!(&d[..5], b"first");
    // A bad record: MEDIUM ERROR 03/11/00, positioned after it.
    assert_eq!(sense(&read(64).0), s(3, 0x11, 0).info(64));
    let (c, d) = read(64);
    good(&c, 59);
    assert_eq!(&d[..5], b"third");
    // End of data at the end-of-medium marker: BLANK CHECK with EOM=1.
    assert_eq!(sense(&read(64).0), s(8, 0, 5).eom().info(64));
}

/// SSC-3 write protection: WRITE, WRITE FILEMARKS and ERASE are DATA PROTECT 07/27/00; the
/// mode parameter header reports WP; reads work.
#[test]
fn write_protect() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wp.tap");
    let missing = EmulatedTape::open(
        "t",
        &path,
        TapeConfig {
            write_protect: true,
            ..TapeConfig::default()
        },
    );
    assert_eq!(
        missing.unwrap_err().kind(),
        std::io::ErrorKind::NotFound,
        "a write-protected image is not created"
    );
    fs::write(&path, simh_record(b"data")).unwrap();
    let (dev, _) = EmulatedTape::open(
        "t",
        &path,
        TapeConfig {
            write_protect: true,
            ..TapeConfig::default()
        },
    )
    .unwrap();
    let t = Tape {
        dev,
        path: path.clone(),
        _dir: dir,
    };
    assert_eq!(sense(&t.write_var(b"nope")), s(7, 0x27, 0));
    assert_eq!(sense(&t.weof(1)), s(7, 0x27, 0));
    assert_eq!(sense(&t.none(&[0x19, 1, 0, 0, 0, 0])), s(7, 0x27, 0));
    good(&t.weof(0), 0);
    let (c, d) = t.data_in(&[0x1a, 0, 0x10, 0, 255, 0], 255);
    good(&c, 255 - 28);
    assert_eq!(d[2], 0x90, "WP=1, BUFFERED MODE 1");
    let (c, d) = t.read_var(4, false);
    good(&c, 0);
    assert_eq!(&d, b"data");
    assert_eq!(t.image(), simh_record(b"data"));
}

/// SSC-3 LOAD UNLOAD and SPC-3 TEST UNIT READY: unloaded is NOT READY 02/3A/00 until loaded.
#[test]
fn unload_makes_not_ready_until_load() {
    let t = open();
    good(&t.write_var(b"abc"), 0);
    good(&t.none(&[0x00, 0, 0, 0, 0, 0]), 0);
    good(&t.none(&[0x1b, 0, 0, 0, 0x00, 0]), 0);
    assert_eq!(sense(&t.none(&[0x00, 0, 0, 0, 0, 0])), s(2, 0x3a, 0));
    let (c, _) = t.read_var(3, false);
    assert_eq!(sense(&c), s(2, 0x3a, 0));
    assert_eq!(c.residual, 3);
    assert_eq!(sense(&t.none(&[0x01, 0, 0, 0, 0, 0])), s(2, 0x3a, 0));
    // REQUEST SENSE reports the not-ready condition with GOOD status.
    let (c, d) = t.data_in(&[0x03, 0, 0, 0, 18, 0], 18);
    good(&c, 0);
    assert_eq!((d[2], d[12], d[13]), (0x02, 0x3a, 0x00));
    good(&t.none(&[0x1b, 0, 0, 0, 0x01, 0]), 0);
    good(&t.none(&[0x00, 0, 0, 0, 0, 0]), 0);
    assert_eq!(t.position(), (true, false, 0, 0));
    // PREVENT MEDIUM REMOVAL blocks UNLOAD: 05/53/02.
    good(&t.none(&[0x1e, 0, 0, 0, 1, 0]), 0);
    assert_eq!(sense(&t.none(&[0x1b, 0, 0, 0, 0, 0])), s(5, 0x53, 0x02));
    good(&t.none(&[0x1e, 0, 0, 0, 0, 0]), 0);
    good(&t.none(&[0x1b, 1, 0, 0, 0, 0]), 0);
    // LOAD with EOT=1 is invalid: 05/24/00 at byte 4 bit 2.
    let c = t.none(&[0x1b, 0, 0, 0, 0x05, 0]);
    assert_eq!(sense(&c), s(5, 0x24, 0));
    assert_eq!(sks(&c), [0xca, 0, 4]);
}

/// SPC-3 INQUIRY: PDT 01h, RMB=1, VERSION 05h, 3PC=1; VPD 00h, 80h, 83h.
#[test]
fn inquiry_and_vpd_pages() {
    let naa = Designator::parse_name("naa.5001405a1b2c3d02").unwrap();
    let (t, _) = open_with(TapeConfig {
        designators: vec![naa],
        serial: "SN0001".into(),
        ..TapeConfig::default()
    });
    let (c, d) = t.data_in(&[0x12, 0, 0, 0, 96, 0], 96);
    good(&c, 0);
    assert_eq!(d[..8], [0x01, 0x80, 0x05, 0x12, 91, 0x08, 0x00, 0x02]);
    assert_eq!(&d[8..16], b"XCOPYD  ");
    assert_eq!(&d[16..32], b"EMULATED TAPE   ");
    // VERSION DESCRIPTORs: SAM-3, SPC-3, SSC-3.
    assert_eq!(d[58..66], [0x00, 0x60, 0x03, 0x00, 0x04, 0x00, 0, 0]);
    let (c, d) = t.data_in(&[0x12, 1, 0x00, 0, 64, 0], 64);
    good(&c, 64 - 7);
    assert_eq!(d[..7], [0x01, 0x00, 0, 3, 0x00, 0x80, 0x83]);
    let (c, d) = t.data_in(&[0x12, 1, 0x80, 0, 64, 0], 64);
    good(&c, 64 - 10);
    assert_eq!(&d[..10], b"\x01\x80\x00\x06SN0001");
    let (c, d) = t.data_in(&[0x12, 1, 0x83, 0, 64, 0], 64);
    good(&c, 64 - 16);
    assert_eq!(
        d[..16],
        [0x01, 0x83, 0, 12, 0x01, 0x03, 0, 8, 0x50, 0x01, 0x40, 0x5a, 0x1b, 0x2c, 0x3d, 0x02]
    );
    // Allocation length shorter than the data truncates it.
    let (c, _) = t.data_in(&[0x12, 0, 0, 0, 5, 0], 96);
    good(&c, 91);
    // An unsupported page: 05/24/00 at byte 2.
    let (c, _) = t.data_in(&[0x12, 1, 0xb0, 0, 64, 0], 64);
    assert_eq!(sense(&c), s(5, 0x24, 0));
    assert_eq!(sks(&c), [0xc0, 0, 2]);
}

/// SPC-3 MODE SENSE / MODE SELECT with the SSC-3 block descriptor and pages 0Fh, 10h; SSC-3
/// READ BLOCK LIMITS; unknown opcodes.
#[test]
fn mode_parameters_block_limits_and_unknown_opcodes() {
    let t = open();
    // MODE SENSE(6), all pages: header, block descriptor (variable), 0Fh, 10h.
    let (c, d) = t.data_in(&[0x1a, 0, 0x3f, 0, 255, 0], 255);
    good(&c, 255 - 44);
    assert_eq!(d[..4], [43, 0, 0x10, 8]);
    assert_eq!(d[4..12], [0; 8]);
    assert_eq!(
        d[12..16],
        [0x0f, 0x0e, 0x00, 0x00],
        "DCE=0, DCC=0: no compression"
    );
    assert_eq!(d[28..30], [0x10, 0x0e]);
    // Page 00h with 12 bytes, as the Linux st driver reads the block descriptor.
    let (c, d) = t.data_in(&[0x1a, 0, 0x00, 0, 12, 0], 12);
    good(&c, 0);
    assert_eq!(d, [11, 0, 0x10, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
    // MODE SELECT(10) to fixed 1024-byte blocks, seen by MODE SENSE(10).
    let params = [0, 0, 0, 0x10, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x04, 0x00];
    good(
        &t.data_out(&[0x55, 0x10, 0, 0, 0, 0, 0, 0, 16, 0], &params),
        0,
    );
    let (c, d) = t.data_in(&[0x5a, 0, 0x10, 0, 0, 0, 0, 0, 255, 0], 255);
    good(&c, 255 - 32);
    assert_eq!(d[..8], [0, 30, 0, 0x10, 0, 0, 0, 8]);
    assert_eq!(d[8..16], [0, 0, 0, 0, 0, 0, 0x04, 0x00]);
    // Default values still show the starting (variable) mode.
    let (_, d) = t.data_in(&[0x1a, 0, 0x90, 0, 255, 0], 255);
    assert_eq!(d[9..12], [0, 0, 0]);
    // Saved values: 05/39/00.
    let (c, _) = t.data_in(&[0x1a, 0, 0xd0, 0, 255, 0], 255);
    assert_eq!(sense(&c), s(5, 0x39, 0));
    // An unsupported page: 05/24/00 at byte 2.
    let (c, _) = t.data_in(&[0x1a, 0, 0x01, 0, 255, 0], 255);
    assert_eq!(sense(&c), s(5, 0x24, 0));
    assert_eq!(sks(&c), [0xcd, 0, 2]);
    // Enabling compression on a drive with DCC=0: 05/26/00, parameter byte 6 bit 7 (C/D=0).
    let mut params = vec![0, 0, 0x10, 0];
    params.extend_from_slice(&[0x0f, 0x0e, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let c = t.data_out(&[0x15, 0x10, 0, 0, 20, 0], &params);
    assert_eq!(sense(&c), s(5, 0x26, 0));
    assert_eq!(sks(&c), [0x8f, 0, 6]);
    // Block length above the limit: 05/26/00.
    let params = [0, 0, 0x10, 8, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff];
    let (t2, _) = open_with(TapeConfig {
        max_block_length: 65536,
        ..TapeConfig::default()
    });
    let c = t2.data_out(&[0x15, 0x10, 0, 0, 12, 0], &params);
    assert_eq!(sense(&c), s(5, 0x26, 0));
    // READ BLOCK LIMITS: granularity 0, max 65536, min 1.
    let (c, d) = t2.data_in(&[0x05, 0, 0, 0, 0, 0], 6);
    good(&c, 0);
    assert_eq!(d, [0, 0x01, 0x00, 0x00, 0, 1]);
    // A variable record longer than the limit: 05/24/00.
    let big = vec![0u8; 65537];
    assert_eq!(sense(&t2.write_var(&big)), s(5, 0x24, 0));
    // Unknown opcode: 05/20/00; READ POSITION service action 08h: 05/24/00 at byte 1.
    assert_eq!(sense(&t.none(&[0xc0, 0, 0, 0, 0, 0])), s(5, 0x20, 0));
    let (c, _) = t.data_in(&[0x34, 0x08, 0, 0, 0, 0, 0, 0, 0, 0], 32);
    assert_eq!(sense(&c), s(5, 0x24, 0));
    assert_eq!(sks(&c), [0xcc, 0, 1]);
}

// ---------------------------------------------------------------- model test

#[derive(Clone, Debug)]
enum Op {
    Write(usize, u8),
    Weof(u32),
    Read(u32, bool),
    SpaceBlocks(i32),
    SpaceFilemarks(i32),
    Locate(u32),
    Rewind,
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (1usize..300, any::<u8>()).prop_map(|(n, seed)| Op::Write(n, seed)),
        2 => (0u32..3).prop_map(Op::Weof),
        4 => (0u32..320, any::<bool>()).prop_map(|(n, sili)| Op::Read(n, sili)),
        2 => (-6i32..7).prop_map(Op::SpaceBlocks),
        2 => (-3i32..4).prop_map(Op::SpaceFilemarks),
        1 => (0u32..30).prop_map(Op::Locate),
        1 => Just(Op::Rewind),
    ]
}

/// What the model expects of one command: GOOD with a residual, or this sense.
type Expect = Result<usize, S>;

/// A naive tape: a vector of objects and a position, stepping one object at a time, as
/// SSC-3 describes motion (no index, no binary search).
#[derive(Default)]
struct Model {
    objects: Vec<Rec>,
    pos: usize,
}

impl Model {
    fn apply(&mut self, op: &Op) -> (Expect, Option<Vec<u8>>) {
        let eod = |info| Err(s(8, 0, 5).info(info));
        match *op {
            Op::Write(n, seed) => {
                self.objects.truncate(self.pos);
                self.objects.push(Rec::Data(pattern(seed as usize, n)));
                self.pos = self.objects.len();
                (Ok(0), None)
            }
            Op::Weof(n) => {
                if n > 0 {
                    self.objects.truncate(self.pos);
                    self.objects.extend((0..n).map(|_| Rec::Mark));
                    self.pos = self.objects.len();
                }
                (Ok(0), None)
            }
            Op::Read(0, _) => (Ok(0), None),
            Op::Read(want, sili) => match self.objects.get(self.pos).cloned() {
                None => (eod(want), None),
                Some(Rec::Mark) => {
                    self.pos += 1;
                    (Err(s(0, 0, 1).fm().info(want)), None)
                }
                Some(Rec::Data(d)) => {
                    self.pos += 1;
                    let n = d.len().min(want as usize);
                    let residual = want as usize - n;
                    let got = Some(d[..n].to_vec());
                    if d.len() == want as usize || (sili && d.len() < want as usize) {
                        (Ok(residual), got)
                    } else {
                        let info = (i64::from(want) - d.len() as i64) as i32 as u32;
                        (Err(s(0, 0, 0).ili().info(info)), got)
                    }
                }
            },
            Op::SpaceBlocks(c) if c >= 0 => {
                for i in 0..c as u32 {
                    match self.objects.get(self.pos) {
                        None => return (eod(c as u32 - i), None),
                        Some(Rec::Mark) => {
                            self.pos += 1;
                            return (Err(s(0, 0, 1).fm().info(c as u32 - i)), None);
                        }
                        Some(_) => self.pos += 1,
                    }
                }
                (Ok(0), None)
            }
            Op::SpaceBlocks(c) => {
                let m = c.unsigned_abs();
                for i in 0..m {
                    if self.pos == 0 {
                        return (Err(s(0, 0, 4).eom().info(m - i)), None);
                    }
                    self.pos -= 1;
                    if self.objects[self.pos] == Rec::Mark {
                        return (Err(s(0, 0, 1).fm().info(m - i)), None);
                    }
                }
                (Ok(0), None)
            }
            Op::SpaceFilemarks(c) if c >= 0 => {
                for i in 0..c as u32 {
                    loop {
                        match self.objects.get(self.pos) {
                            None => return (eod(c as u32 - i), None),
                            Some(r) => {
                                self.pos += 1;
                                if *r == Rec::Mark {
                                    break;
                                }
                            }
                        }
                    }
                }
                (Ok(0), None)
            }
            Op::SpaceFilemarks(c) => {
                let m = c.unsigned_abs();
                for i in 0..m {
                    match self.objects[..self.pos]
                        .iter()
                        .rposition(|r| *r == Rec::Mark)
                    {
                        Some(f) => self.pos = f,
                        None => {
                            self.pos = 0;
                            return (Err(s(0, 0, 4).eom().info(m - i)), None);
                        }
                    }
                }
                (Ok(0), None)
            }
            Op::Locate(id) => {
                if id as usize > self.objects.len() {
                    self.pos = self.objects.len();
                    (Err(s(8, 0, 5)), None)
                } else {
                    self.pos = id as usize;
                    (Ok(0), None)
                }
            }
            Op::Rewind => {
                self.pos = 0;
                (Ok(0), None)
            }
        }
    }
}

fn drive(t: &Tape, op: &Op) -> (Completion, Option<Vec<u8>>) {
    match *op {
        Op::Write(n, seed) => (t.write_var(&pattern(seed as usize, n)), None),
        // IMMED=1: no fsync per filemark, keeping the model test fast.
        Op::Weof(n) => (
            t.none(&[0x10, 1, (n >> 16) as u8, (n >> 8) as u8, n as u8, 0]),
            None,
        ),
        Op::Read(n, sili) => {
            let (c, d) = t.read_var(n, sili);
            let got = n as usize - c.residual;
            (c, Some(d[..got].to_vec()))
        }
        Op::SpaceBlocks(c) => (t.space(0, c), None),
        Op::SpaceFilemarks(c) => (t.space(1, c), None),
        Op::Locate(id) => (t.locate(id), None),
        Op::Rewind => (t.none(&[0x01, 0, 0, 0, 0, 0]), None),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Random command sequences give the sense, data and position of the naive model, and
    /// the image always parses (independently) to the model's objects.
    #[test]
    fn drive_matches_a_naive_model(ops in proptest::collection::vec(op(), 1..40)) {
        let t = open();
        let mut model = Model::default();
        for op in &ops {
            let (want, want_data) = model.apply(op);
            let (c, data) = drive(&t, op);
            match want {
                Ok(residual) => good(&c, residual),
                Err(expected) => proptest::prop_assert_eq!(sense(&c), expected, "{:?}", op),
            }
            if let (Some(want_data), Some(data)) = (want_data, data) {
                proptest::prop_assert_eq!(want_data, data, "{:?}", op);
            }
            proptest::prop_assert_eq!(t.at() as usize, model.pos, "{:?}", op);
        }
        proptest::prop_assert_eq!(parse_simh(&t.image()), model.objects);
    }
}

/// Many WRITE(6) commands sent together (`write_transfers`, what the copy engine uses) must
/// end exactly as the same commands one by one: the same count of GOOD commands, the same
/// stopping completion (early warning, then VOLUME OVERFLOW), the same image — in variable
/// and fixed mode, with the batch crossing early warning and the capacity.
#[test]
fn write_transfers_match_commands_one_by_one() {
    for (fixed, transfer) in [(false, 1000usize), (true, 4 * 512)] {
        let config = TapeConfig {
            capacity: 40_000,
            early_warning: 12_000,
            block_size: if fixed { 512 } else { 0 },
            ..TapeConfig::default()
        };
        let data: Vec<u8> = (0..60 * transfer)
            .map(|i| (i * 13 + i / 509) as u8)
            .collect();
        let cdb = write6(fixed, if fixed { 4 } else { transfer as u32 });
        let (batched, _) = open_with(config.clone());
        let (single, _) = open_with(config);
        // A few records first, so batches start at an unaligned end of data.
        for t in [&batched, &single] {
            good(&t.write_var(&[7u8; 333]), 0);
        }
        let mut outcomes = Vec::new();
        for t in [&batched, &single] {
            let mut rest = &data[..];
            let mut rounds = Vec::new();
            while !rest.is_empty() {
                let (done, stopped) = if std::ptr::eq(t, &batched) {
                    t.dev.write_transfers(&cdb, &[rest], transfer)
                } else {
                    let send = |p: &[u8]| t.dev.execute(&cdb, DataDirection::ToDevice(p));
                    xcopyd::device::write_one_by_one(send, &[rest], transfer)
                };
                let stopped = stopped.map(|c| c.unwrap());
                let stop = stopped.is_some();
                rounds.push((done, stopped.map(|c| (c.status, c.sense, c.residual))));
                rest = &rest[((done + usize::from(stop)) * transfer).min(rest.len())..];
            }
            // The batches may leave an end-of-medium marker and zeros up to a block boundary
            // past end of data (the O_DIRECT appends' padding, on a file system that takes
            // O_DIRECT) until the copy manager settles the device; then the image is exact.
            let open = t.image();
            t.dev.settle().unwrap();
            let image = t.image();
            assert!(open.starts_with(&image), "fixed={fixed}");
            let pad = &open[image.len()..];
            assert!(
                pad.is_empty()
                    || (pad.len() >= 4
                        && pad[..4] == [0xff; 4]
                        && pad[4..].iter().all(|&b| b == 0)),
                "fixed={fixed}: {pad:x?}"
            );
            outcomes.push((rounds, image));
        }
        assert_eq!(outcomes[0].0, outcomes[1].0, "fixed={fixed}");
        // It did stop at early warning and at the capacity.
        assert!(
            outcomes[0].0.len() >= 3,
            "fixed={fixed}: {:?}",
            outcomes[0].0
        );
        assert_eq!(outcomes[0].1, outcomes[1].1, "fixed={fixed}");
        let records = parse_simh(&outcomes[0].1);
        assert!(records.len() > 10);
    }
}

/// `xcopy backup` killed with SIGKILL in the middle of a copy (no settle, no close): the
/// image, read strictly, is the copy's first records byte for byte, then nothing, an
/// end-of-medium marker (the padding of the last whole append, the appends in flight past
/// it hidden) or one half-written record; the loader finds exactly those records and puts
/// end of data right after them, and the next backup (from the beginning of the tape)
/// leaves an exact image.
#[test]
fn a_backup_killed_midway_leaves_a_prefix_of_its_records() {
    const REC: usize = 256 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk0.img");
    let tape = dir.path().join("tape0.tap");
    // 512 MiB, sparse but for a stamp at the head of every record's worth of data.
    let size = 512u64 << 20;
    {
        let f = fs::File::create(&disk).unwrap();
        f.set_len(size).unwrap();
        use std::os::unix::fs::FileExt as _;
        for k in 0..size / REC as u64 {
            f.write_all_at(&pattern(k as usize, 64), k * REC as u64)
                .unwrap();
        }
    }
    let expected = |k: usize| {
        let mut r = vec![0u8; REC];
        r[..64].copy_from_slice(&pattern(k, 64));
        r
    };
    let inventory = dir.path().join("inventory.toml");
    fs::write(
        &inventory,
        format!(
            "[[device]]\nname = \"disk0\"\nkind = \"disk\"\npath = \"{}\"\n\
             designator = \"naa.5001405a1b2c3d01\"\n[[device]]\nname = \"tape0\"\n\
             kind = \"tape\"\npath = \"{}\"\ndesignator = \"naa.5001405a1b2c3d02\"\n",
            disk.display(),
            tape.display()
        ),
    )
    .unwrap();
    let backup = |from: &str| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_xcopy"));
        c.args(["backup", "-q", "-d", inventory.to_str().unwrap()])
            .args(["--from", from, "--to", "tape0", "-t", "256k"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    };
    let all = (size as usize) / REC;
    let mut midway = 0;
    // How many records the image shows read strictly from the start (as below and as the
    // loader reads it: whole records up to the first marker or half-written record),
    // continued from `(records, offset)` so a poll reads only the length words.
    let shown = |(mut records, mut p): (usize, u64)| {
        use std::os::unix::fs::FileExt as _;
        let Ok(f) = fs::File::open(&tape) else {
            return (records, p);
        };
        let word = |at: u64| {
            let mut w = [0u8; 4];
            f.read_exact_at(&mut w, at)
                .ok()
                .map(|()| u32::from_le_bytes(w))
        };
        while word(p) == Some(REC as u32) && word(p + 4 + REC as u64) == Some(REC as u32) {
            records += 1;
            p += REC as u64 + 8;
        }
        (records, p)
    };
    for seen in [1, 16, 256] {
        let _ = fs::remove_file(&tape);
        // Capped at 128 MiB/s (4 s for the 512 MiB): uncapped, the whole copy took less
        // than the poll below needs on a loaded machine, and the kills landed after it.
        let mut child = backup("disk0").args(["--limit", "128MiB"]).spawn().unwrap();
        // Killed once the image shows `seen` records (polled with a deadline).
        let t0 = std::time::Instant::now();
        let mut at = (0, 0);
        while {
            at = shown(at);
            at.0 < seen
        } {
            assert!(
                t0.elapsed().as_secs() < 120,
                "{seen} records never reached the tape"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "the backup ended early"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let _ = child.kill();
        child.wait().unwrap();
        // The strict reading: whole records from the start, each the disk's bytes.
        let bytes = fs::read(&tape).unwrap();
        let mut p = 0;
        let mut records = 0;
        while p + 4 <= bytes.len() {
            let word = u32::from_le_bytes(bytes[p..p + 4].try_into().unwrap());
            if word == 0xffff_ffff {
                break;
            }
            assert_eq!(word as usize, REC, "killed at {seen}: length word at {p}");
            if p + 8 + REC > bytes.len() {
                break; // the half-written record
            }
            let trailer = u32::from_le_bytes(bytes[p + 4 + REC..p + 8 + REC].try_into().unwrap());
            if trailer != word {
                break; // the half-written record
            }
            assert!(
                bytes[p + 4..p + 4 + REC] == expected(records)[..],
                "killed at {seen}: record {records}"
            );
            records += 1;
            p += REC + 8;
        }
        assert!(
            records >= seen,
            "{records} records, {seen} were seen before the kill"
        );
        if records < all {
            midway += 1;
        }
        // The loader agrees, and the next backup goes right after those records.
        let (t, report) = EmulatedTape::open("tape0", &tape, TapeConfig::default()).unwrap();
        assert_eq!(report.records, records as u64, "killed at {seen}: {report}");
        assert_eq!(report.end_of_data, (records * (REC + 8)) as u64);
        drop(t);
        eprintln!("killed once {seen} were seen: {records} of {all} records, {report}");
        let status = backup("disk0:0+32768").arg("--overwrite").status().unwrap();
        assert!(status.success());
        let image = parse_simh(&fs::read(&tape).unwrap());
        assert_eq!(image.len(), 64, "killed at {seen}");
        for (k, r) in image.iter().enumerate() {
            assert!(*r == Rec::Data(expected(k)), "killed at {seen}: record {k}");
        }
    }
    // At least one kill landed in the middle of the copy (2048 records; the last kill comes
    // once 256 are written).
    assert!(midway > 0);
}
