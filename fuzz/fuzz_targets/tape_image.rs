//! SIMH .tap images: the scanner's index must agree with the bytes. Every object's length
//! words are where the index says, objects do not overlap and lie before end of data,
//! the report counts what the index holds and accounts for the tail, and the objects
//! copied out without gaps scan again to the same index.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xcopyd::device::tape::image::{BAD_RECORD, END_OF_MEDIUM};
use xcopyd::device::tape::{scan_bytes, Damage, Object};

fn word(image: &[u8], offset: u64) -> u32 {
    let at = usize::try_from(offset).unwrap();
    u32::from_le_bytes(image[at..at + 4].try_into().unwrap())
}

fuzz_target!(|image: &[u8]| {
    let (objects, report) = scan_bytes(image);
    let len = image.len() as u64;
    let end = report.end_of_data;
    assert!(end <= len);

    let (mut records, mut bad, mut filemarks) = (0, 0, 0);
    let mut next = 0u64;
    let mut skipped = 0u64;
    for &(offset, object) in &objects {
        assert!(offset >= next, "objects overlap at {offset}");
        skipped += offset - next;
        next = offset + object.image_len();
        assert!(next <= end, "object at {offset} runs past end of data");
        let leading = word(image, offset);
        match object {
            Object::Filemark => {
                assert_eq!(leading, 0);
                filemarks += 1;
            }
            Object::Record { len } | Object::BadRecord { len } => {
                let flag = if matches!(object, Object::BadRecord { .. }) {
                    bad += 1;
                    BAD_RECORD
                } else {
                    0
                };
                assert_eq!(leading, len | flag);
                assert_eq!(word(image, next - 4), leading, "trailing length");
                records += 1;
            }
        }
    }
    skipped += end - next;
    assert_eq!(
        (report.records, report.bad_records, report.filemarks),
        (records, bad, filemarks)
    );
    // A scan that reached the end of the file ends its data at the last object: whatever
    // follows it is gaps (a SIMH writer's, or an earlier xcopyd's O_DIRECT padding).
    let tail = len - end;
    let stopped = report.damage.is_some()
        || report.unsupported_marker.is_some()
        || report.end_of_medium_marker;
    if !stopped {
        assert_eq!(end, next, "end of data is not the end of the last object");
        skipped += tail;
    }
    // Only gaps are skipped: 4 bytes per erase gap, 2 per half gap.
    assert!(
        (2 * report.gaps..=4 * report.gaps).contains(&skipped),
        "{skipped} bytes skipped for {} gaps",
        report.gaps
    );

    // The tail after end of data: gaps only, a marker, or a half-written object.
    match (report.damage, report.unsupported_marker) {
        (Some(damage), None) => {
            assert!(!report.end_of_medium_marker);
            assert_eq!(damage.offset(), end);
            assert_eq!(report.ignored_bytes, 0);
            match damage {
                Damage::PartialLength { bytes, .. } => assert_eq!(u64::from(bytes), tail),
                Damage::RecordPastEnd { length, .. } => {
                    assert!(tail >= 4 && Object::Record { len: length }.image_len() > tail)
                }
                Damage::LengthMismatch {
                    leading, trailing, ..
                } => {
                    assert_eq!(word(image, end), leading);
                    assert_ne!(leading, trailing);
                }
            }
        }
        (None, Some((offset, marker))) => {
            assert!(!report.end_of_medium_marker);
            assert_eq!((offset, word(image, offset)), (end, marker));
            assert_eq!(marker >> 28, 0xf);
            assert_eq!(report.ignored_bytes, tail);
        }
        (None, None) if report.end_of_medium_marker => {
            assert_eq!(word(image, end), END_OF_MEDIUM);
            assert_eq!(report.ignored_bytes, tail);
        }
        (None, None) => assert!(tail == 0 || report.gaps > 0, "unexplained tail"),
        (Some(_), Some(_)) => panic!("both damage and a marker"),
    }
    let _ = report.to_string();

    // The objects alone, without gaps or tail, are a clean image with the same index.
    let mut copy = Vec::new();
    for &(offset, object) in &objects {
        let at = usize::try_from(offset).unwrap();
        let n = usize::try_from(object.image_len()).unwrap();
        copy.extend_from_slice(&image[at..at + n]);
    }
    let (again, clean) = scan_bytes(&copy);
    assert!(clean.is_clean() && clean.gaps == 0 && !clean.end_of_medium_marker);
    assert_eq!(clean.end_of_data, copy.len() as u64);
    assert!(again.iter().map(|o| o.1).eq(objects.iter().map(|o| o.1)));
});
