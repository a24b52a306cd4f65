//! The image's own tests: the scan, both writers writing the same bytes, the end padding,
//! a failed append.

use super::direct::*;
use super::format::*;
use super::*;
use crate::device::FileSpan;
use std::sync::Arc;

#[test]
fn an_image_in_tmpfs_is_written_through_the_page_cache_without_a_ring() {
    let dir = tempfile::tempdir_in("/dev/shm").expect("/dev/shm (tmpfs)");
    let path = dir.path().join("t.tap");
    std::fs::write(&path, b"").unwrap();
    assert!(Direct::open(&path).is_none(), "tmpfs: no O_DIRECT writer");
    let (mut image, _) = TapeImage::open(&path, true).unwrap();
    image.append_records(&[&[7u8; 1024][..]], 512).unwrap();
    image.settle().unwrap();
    drop(image);
    let mut expected = rec(&[7u8; 512]);
    expected.extend(rec(&[7u8; 512]));
    assert_eq!(std::fs::read(&path).unwrap(), expected);
}

fn rec(data: &[u8]) -> Vec<u8> {
    let n = (data.len() as u32).to_le_bytes();
    let mut v = n.to_vec();
    v.extend_from_slice(data);
    if data.len() % 2 == 1 {
        v.push(0);
    }
    v.extend_from_slice(&n);
    v
}

#[test]
fn scans_records_filemarks_gaps_and_markers() {
    // DESIGN.md tape image format: records, tape marks, FFFFFFFFh end of medium.
    let mut img = rec(b"abc");
    img.extend_from_slice(&0u32.to_le_bytes());
    img.extend_from_slice(&ERASE_GAP.to_le_bytes());
    let mut bad = rec(b"xy");
    bad[3] |= 0x80;
    bad[9] |= 0x80;
    img.extend_from_slice(&bad);
    img.extend_from_slice(&END_OF_MEDIUM.to_le_bytes());
    img.extend_from_slice(b"junk");
    let (objects, report) = scan_bytes(&img);
    assert_eq!(
        objects,
        vec![
            (0, Object::Record { len: 3 }),
            (12, Object::Filemark),
            (20, Object::BadRecord { len: 2 }),
        ]
    );
    assert_eq!(report.records, 2);
    assert_eq!(report.bad_records, 1);
    assert_eq!(report.filemarks, 1);
    assert_eq!(report.gaps, 1);
    assert_eq!(report.end_of_data, 30);
    assert!(report.end_of_medium_marker);
    assert_eq!(report.ignored_bytes, 8);
    assert!(report.damage.is_none());
}

#[test]
fn detects_every_kind_of_half_written_tail() {
    let good = rec(b"hello!");
    let mut img = good.clone();
    img.extend_from_slice(&[5, 0]);
    assert_eq!(
        scan_bytes(&img).1.damage,
        Some(Damage::PartialLength {
            offset: 14,
            bytes: 2
        })
    );
    let mut img = good.clone();
    img.extend_from_slice(&rec(b"world")[..9]);
    assert_eq!(
        scan_bytes(&img).1.damage,
        Some(Damage::RecordPastEnd {
            offset: 14,
            length: 5
        })
    );
    let mut img = good.clone();
    let mut torn = rec(b"worlds");
    let n = torn.len();
    torn[n - 4..].copy_from_slice(&[0, 0, 0, 0]);
    img.extend_from_slice(&torn);
    let (objects, report) = scan_bytes(&img);
    assert_eq!(objects.len(), 1);
    assert_eq!(
        report.damage,
        Some(Damage::LengthMismatch {
            offset: 14,
            leading: 6,
            trailing: 0
        })
    );
    assert_eq!(report.end_of_data, 14);
}

/// Appends through O_DIRECT (in [`direct_tempdir`]) and through the page cache, mixed with filemarks and mid-tape truncation,
/// must leave the same bytes as the format written out by hand, reopen to the same index,
/// and read back the same records.
#[test]
fn direct_and_buffered_appends_write_the_same_image() {
    let dir = direct_tempdir();
    let data = |len: usize, seed: usize| -> Vec<u8> {
        (0..len)
            .map(|i| (i * 31 + seed * 7 + i / 251) as u8)
            .collect()
    };
    // (record length, records); 0 = one filemark; usize::MAX = truncate to object 3.
    let steps: &[(usize, usize)] = &[
        (50, 3),
        (511, 2),
        (0, 1),
        (4093, 5),
        (usize::MAX, 0),
        (65536, 70),
        (1, 9),
        (0, 2),
        (262_144, 3),
        (4_194_305, 1),
        (1_048_576, 6),
        (7, 1),
    ];
    let mut images = Vec::new();
    for direct in [true, false] {
        let path = dir.path().join(format!("t{direct}.tap"));
        let (mut img, _) = TapeImage::open(&path, true).unwrap();
        if !direct {
            img.direct = None;
        }
        let fs_direct = img.direct.is_some();
        let mut expected: Vec<Vec<u8>> = Vec::new();
        for (k, &(len, n)) in steps.iter().enumerate() {
            match len {
                0 => {
                    img.append_filemarks(n as u64).unwrap();
                    expected.extend((0..n).map(|_| vec![0u8; 4]));
                }
                usize::MAX => {
                    img.truncate(3).unwrap();
                    expected.truncate(3);
                }
                _ => {
                    let bytes: Vec<u8> = (0..n).flat_map(|i| data(len, k * 100 + i)).collect();
                    img.append_records(&[&bytes], len).unwrap();
                    expected.extend(bytes.chunks(len).map(rec));
                }
            }
        }
        // Open, an O_DIRECT image runs on to its block boundary: an end-of-medium marker,
        // then zeros, also where the file was grown ahead of the appends (as a crash
        // would leave it); closed, it ends at end of data.
        let expected = expected.concat();
        let open_image = std::fs::read(&path).unwrap();
        let mut padded = expected.clone();
        if let (true, Some(d)) = (fs_direct, img.direct.as_ref()) {
            padded.extend_from_slice(&end_padding(expected.len() as u64, d.block));
            assert!(padded.len() > expected.len());
            // The last appends went all at once, into a file grown ahead of them.
            assert!(img.grown >= padded.len() as u64 + 4 * PIECE as u64);
            assert_eq!(open_image.len() as u64, img.grown);
        }
        assert!(open_image.len() >= padded.len());
        assert!(
            open_image[..padded.len()] == padded[..]
                && open_image[padded.len()..].iter().all(|&b| b == 0),
            "direct={direct} (fs allows it: {fs_direct})"
        );
        let (objects_open, report) = scan_bytes(&open_image);
        assert_eq!(report.end_of_data, expected.len() as u64);
        assert_eq!(
            (
                report.damage,
                report.ignored_bytes,
                report.end_of_medium_marker
            ),
            (None, (open_image.len() - expected.len()) as u64, fs_direct),
            "{report}"
        );
        let mut back = vec![0u8; 65536];
        img.read_data(3, &mut back).unwrap();
        assert_eq!(back, data(65536, 500));
        let objects = img.objects();
        assert_eq!(objects_open.len() as u64, objects);
        drop(img);
        let image = std::fs::read(&path).unwrap();
        assert_eq!(image, expected, "direct={direct}, closed");
        let (img, report) = TapeImage::open(&path, true).unwrap();
        assert_eq!((img.objects(), report.damage), (objects, None));
        images.push(image);
    }
    assert_eq!(images[0], images[1]);
}

/// The scan jumps over large records' data and reads ahead over runs of small objects;
/// either way it finds every object, at its offset.
#[test]
fn scan_finds_every_object_across_jumps_and_windows() {
    let mut img = Vec::new();
    let mut want = Vec::new();
    let mut push = |img: &mut Vec<u8>, len: usize| {
        let at = img.len() as u64;
        if len == 0 {
            img.extend_from_slice(&[0; 4]);
            want.push((at, Object::Filemark));
        } else {
            img.extend_from_slice(&rec(&vec![(len % 251) as u8; len]));
            want.push((at, Object::Record { len: len as u32 }));
        }
    };
    for round in 0..3 {
        for len in [300 * 1024 + round, 0, 5, 4090, 4097, 65 * 1024, 1] {
            push(&mut img, len);
        }
        for i in 0..2000 {
            push(&mut img, i % 17);
        }
    }
    let (objects, report) = scan_bytes(&img);
    assert_eq!(objects, want);
    assert_eq!(report.end_of_data, img.len() as u64);
    assert!(report.is_clean());
}

/// Found by the tape_image fuzz target: gaps, then a record whose trailing length does
/// not match. The damage is reported where it is and end of data is there too (the gap
/// before it stays); only gaps running to the end of the file fall outside the data.
#[test]
fn gaps_before_damage_stay_in_the_data() {
    let input = [
        254, 255, 255, 255, 4, 0, 0, 0, 100, 97, 116, 97, 4, 97, 116, 97, 4, 0, 0, 0, 255, 255, 0,
        0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 0, 0,
    ];
    let (objects, report) = scan_bytes(&input);
    assert!(objects.is_empty());
    assert_eq!(report.end_of_data, 4);
    assert_eq!(report.damage.map(|d| d.offset()), Some(4));
    let mut trailing = rec(b"data");
    trailing.extend_from_slice(&ERASE_GAP.to_le_bytes());
    assert_eq!(scan_bytes(&trailing).1.end_of_data, 12);
}

/// The end padding starts with an end-of-medium marker at every even end and runs to a
/// block boundary; an image left with it, and whatever an append in flight had written
/// past it (a crash), reopens to the objects before the marker, takes the next append
/// over it, and closes exact.
#[test]
fn end_padding_hides_what_follows_and_is_written_over() {
    for block in [512u64, 4096] {
        for end in (0..block + 16)
            .step_by(2)
            .chain([block * 3 - 2, block * 3 - 4])
        {
            let pad = end_padding(end, block);
            assert_eq!((end + pad.len() as u64) % block, 0, "end {end}");
            assert!(
                pad.len() >= 4 && pad.len() < block as usize + 4,
                "end {end}"
            );
            let (mut img, objects_before) = match end {
                0 => (Vec::new(), 0),
                4 | 8 => (vec![0u8; end as usize], end as usize / 4),
                2 | 6 => continue,
                _ => (rec(&vec![7u8; end as usize - 8]), 1),
            };
            img.extend_from_slice(&pad);
            // Pieces of the next append that landed before its head did.
            img.extend_from_slice(&rec(&[9u8; 700]));
            img.extend_from_slice(&[0u8; 64]);
            let (objects, report) = scan_bytes(&img);
            assert_eq!(objects.len(), objects_before, "end {end}");
            assert_eq!(report.end_of_data, end, "end {end}");
            assert!(report.end_of_medium_marker && report.damage.is_none());
            assert_eq!(report.ignored_bytes, img.len() as u64 - end, "end {end}");
        }
    }
    let dir = direct_tempdir();
    let path = dir.path().join("crashed.tap");
    let mut bytes = rec(b"hello");
    bytes.extend_from_slice(&end_padding(bytes.len() as u64, 4096));
    bytes.extend_from_slice(&rec(&[5u8; 10_000]));
    std::fs::write(&path, &bytes).unwrap();
    let (mut img, report) = TapeImage::open(&path, true).unwrap();
    assert_eq!(
        (img.objects(), report.end_of_data, report.damage),
        (1, 14, None)
    );
    assert!(report.end_of_medium_marker);
    img.append_records(&[b"world!"], 6).unwrap();
    img.append_records(&[&[3u8; 9000]], 4500).unwrap();
    drop(img);
    let mut expected = rec(b"hello");
    expected.extend_from_slice(&rec(b"world!"));
    expected.extend_from_slice(&rec(&[3u8; 4500]));
    expected.extend_from_slice(&rec(&[3u8; 4500]));
    assert_eq!(std::fs::read(&path).unwrap(), expected);
    let (img, report) = TapeImage::open(&path, true).unwrap();
    assert_eq!((img.objects(), report.is_clean()), (4, true));
}

/// A piece that fails: in order (the first append after a cut), the records wholly
/// below it count; all at once, none of the append counts, and until the file is cut
/// the marker the last append left at end of data hides whatever pieces did land.
/// `append_records` then cuts the file to end of data, and the image closes exact.
#[test]
fn a_failed_append_keeps_what_reached_the_file_and_nothing_else() {
    let dir = direct_tempdir();
    let path = dir.path().join("fail.tap");
    let (mut img, _) = TapeImage::open(&path, true).unwrap();
    if img.direct.is_none() {
        eprintln!("no O_DIRECT on this file system: nothing to test");
        return;
    }
    let len = 100_000;
    let data: Vec<u8> = (0..len * 30).map(|i| (i % 251) as u8).collect();
    let fail_at = |k| FAIL_PIECE.with(|f| f.set(k));
    // In order: piece 0 (the image's first MiB) lands, holding 10 whole records.
    fail_at(Some(1));
    assert!(img.append_records(&[&data], len).is_err());
    fail_at(None);
    assert_eq!((img.objects(), img.end_of_data()), (10, 10 * 100_008));
    img.append_records(&[&data[..2 * len]], len).unwrap();
    assert_eq!(img.objects(), 12);
    // All at once (the last append left its marker): piece 2 fails; pieces 0 and 1
    // land (the marker's block with the marker kept in place), and the file, read as
    // a crash would leave it, still ends at the marker.
    let mut direct = img.direct.take().unwrap();
    let mut ring = direct.ring.take().unwrap();
    fail_at(Some(2));
    let word = len as u32;
    assert!(img
        .append_direct(&direct, &mut ring, &[&data], len, word)
        .is_err());
    fail_at(None);
    direct.ring = Some(ring);
    img.direct = Some(direct);
    assert_eq!((img.objects(), img.end_of_data()), (12, 12 * 100_008));
    let (objects, report) = scan_bytes(&std::fs::read(&path).unwrap());
    assert_eq!((objects.len(), report.end_of_data), (12, 12 * 100_008));
    assert!(report.end_of_medium_marker && report.damage.is_none());
    assert!(report.ignored_bytes > 2 << 20, "{report}");
    // Through append_records, a failure also cuts the file to end of data.
    img.append_records(&[&data[..len]], len).unwrap();
    fail_at(Some(1));
    assert!(img.append_records(&[&data], len).is_err());
    fail_at(None);
    assert_eq!(img.objects(), 13);
    let (objects, report) = scan_bytes(&std::fs::read(&path).unwrap());
    assert_eq!((objects.len() as u64, report.is_clean()), (13, true));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 13 * 100_008);
    img.append_records(&[&data[len..2 * len]], len).unwrap();
    drop(img);
    let expected: Vec<u8> = (0..10)
        .chain([0, 1, 0, 1])
        .flat_map(|i| rec(&data[i * len..(i + 1) * len]))
        .collect();
    assert!(std::fs::read(&path).unwrap() == expected);
}

proptest::proptest! {
    #[test]
    fn any_bytes_scan_to_a_consistent_prefix(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
        let (objects, report) = scan_bytes(&bytes);
        let mut p = 0u64;
        for (offset, object) in &objects {
            proptest::prop_assert!(*offset >= p);
            p = offset + object.image_len();
        }
        proptest::prop_assert!(p <= report.end_of_data);
        if report.is_clean() && !report.end_of_medium_marker {
            proptest::prop_assert_eq!(p, report.end_of_data);
        }
        proptest::prop_assert!(report.end_of_data <= bytes.len() as u64);
    }
}

/// Records copied in by the kernel from another file make the same image, byte for byte,
/// as the same records written from memory (an odd length included: its pad byte), and
/// the same index.
#[test]
fn records_from_a_file_make_the_same_image_as_records_from_memory() {
    let dir = tempfile::tempdir_in("/dev/shm").expect("/dev/shm (tmpfs)");
    let len = 70_001usize;
    let data: Vec<u8> = (0..3 * len + 100)
        .map(|i| (i * 7 + i / 251) as u8)
        .collect();
    let src = dir.path().join("src");
    std::fs::write(&src, &data).unwrap();
    let src = File::open(&src).unwrap();
    let (a, b) = (dir.path().join("a.tap"), dir.path().join("b.tap"));
    {
        let (mut from_memory, _) = TapeImage::open(&a, true).unwrap();
        let (mut from_file, _) = TapeImage::open(&b, true).unwrap();
        for image in [&mut from_memory, &mut from_file] {
            image.append_records(&[&data[..len]], len).unwrap();
        }
        from_memory
            .append_records(&[&data[100..100 + 2 * len]], len)
            .unwrap();
        assert!(from_file.takes_files());
        let span = FileSpan {
            file: &src,
            offset: 100,
            len: 2 * len as u64,
        };
        from_file.append_from_file(span, len).unwrap();
        for image in [&mut from_memory, &mut from_file] {
            image.append_filemarks(1).unwrap();
        }
        assert_eq!(from_file.objects(), 4);
        assert_eq!(from_file.offset_of(2), from_memory.offset_of(2));
        assert_eq!(from_file.end_of_data(), from_memory.end_of_data());
        let mut back = vec![0u8; len];
        from_file.read_data(2, &mut back).unwrap();
        assert!(back == data[100 + len..100 + 2 * len]);
    }
    let (a, b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(a.len(), 4 + 3 * (len + 9));
    assert!(a == b, "the two images differ");
}

/// A source file that ends inside the span: the records copied before stay (indexed, the
/// file cut after the last whole one) and the append fails with UnexpectedEof.
#[test]
fn a_source_file_that_ends_early_leaves_the_whole_records_before_it() {
    let dir = tempfile::tempdir_in("/dev/shm").expect("/dev/shm (tmpfs)");
    let len = 65_536usize;
    let src = dir.path().join("src");
    std::fs::write(&src, vec![5u8; len + len / 2]).unwrap();
    let src = File::open(&src).unwrap();
    let path = dir.path().join("t.tap");
    let (mut image, _) = TapeImage::open(&path, true).unwrap();
    let span = FileSpan {
        file: &src,
        offset: 0,
        len: 3 * len as u64,
    };
    let e = image.append_from_file(span, len).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(image.objects(), 1);
    assert_eq!(image.end_of_data(), len as u64 + 8);
    drop(image);
    assert_eq!(std::fs::read(&path).unwrap(), rec(&vec![5u8; len]));
}

/// An image written with O_DIRECT does not take records from files (their data would go
/// through the page cache), and says so without writing anything.
#[test]
fn an_image_written_with_o_direct_takes_no_records_from_files() {
    let dir = direct_tempdir();
    let src = dir.path().join("src");
    std::fs::write(&src, vec![1u8; 65_536]).unwrap();
    let src = File::open(&src).unwrap();
    let path = dir.path().join("t.tap");
    let (mut image, _) = TapeImage::open(&path, true).unwrap();
    assert!(!image.takes_files());
    let span = FileSpan {
        file: &src,
        offset: 0,
        len: 65_536,
    };
    let e = image.append_from_file(span, 65_536).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::Unsupported);
    assert_eq!(image.objects(), 0);
    drop(image);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
}

#[test]
fn a_run_of_appends_borrows_one_ring_and_gives_it_back_when_it_ends() {
    let dir = direct_tempdir();
    let path = dir.path().join("t.tap");
    let rings = Arc::new(Rings::new(4).unwrap());
    rings.give(rings.take().expect("io_uring"));
    assert_eq!(rings.idle_count(), 1);
    let (mut image, _) = TapeImage::open_in(&path, true, Arc::clone(&rings)).unwrap();
    assert_eq!(rings.idle_count(), 1, "an image not written holds none");
    image.append_records(&[&[1u8; 4096][..]], 4096).unwrap();
    assert_eq!(rings.idle_count(), 0, "the appends hold the idle ring");
    image.append_records(&[&[2u8; 4096][..]], 4096).unwrap();
    assert_eq!(rings.idle_count(), 0, "and keep it for the next append");
    image.append_filemarks(1).unwrap();
    assert_eq!(rings.idle_count(), 1, "a filemark ends the run");
    image.append_records(&[&[3u8; 512][..]], 512).unwrap();
    assert_eq!(rings.idle_count(), 0);
    image.settle().unwrap();
    assert_eq!(rings.idle_count(), 1, "so does settling the image");
    image.append_records(&[&[4u8; 512][..]], 512).unwrap();
    drop(image);
    assert_eq!(rings.idle_count(), 1, "and closing it");
    let mut expected = rec(&[1u8; 4096]);
    expected.extend(rec(&[2u8; 4096]));
    expected.extend(0u32.to_le_bytes());
    expected.extend(rec(&[3u8; 512]));
    expected.extend(rec(&[4u8; 512]));
    assert_eq!(std::fs::read(&path).unwrap(), expected);
}

#[test]
fn appends_have_one_piece_in_flight_in_order_and_at_most_pieces_all_at_once() {
    let dir = direct_tempdir();
    let path = dir.path().join("t.tap");
    let rings = Arc::new(Rings::new(32).unwrap());
    let (mut image, _) = TapeImage::open_in(&path, true, rings).unwrap();
    let data: Vec<u8> = (0..20 << 20).map(|i: u32| (i % 253) as u8).collect();
    let most = || MOST_IN_FLIGHT.with(|m| m.replace(0));
    most();
    // The first append after open goes in order (no marker at end of data to guard it).
    image.append_records(&[&data], 1 << 20).unwrap();
    assert_eq!(most(), 1, "in order: one at a time");
    // The next is guarded by the marker the first left: 21 pieces, 32 buffers, 8 at once.
    image.append_records(&[&data], 1 << 20).unwrap();
    assert_eq!(
        most(),
        usize::from(PIECES),
        "all at once, but at most PIECES"
    );
    drop(image);
    let one: Vec<u8> = data.chunks(1 << 20).flat_map(rec).collect();
    let read = std::fs::read(&path).unwrap();
    assert_eq!(read.len(), 2 * one.len());
    assert!(read[..one.len()] == one[..] && read[one.len()..] == one[..]);
}
