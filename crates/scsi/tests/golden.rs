//! Walks xcopy-descriptors/: every NAME.bin is decoded and evaluated as a copy manager
//! would, and checked against
//! - expected-sense.json, written by scripts/golden.py from the standard independently of
//!   our encoder: "good", or the sense key, ASC/ASCQ, field pointer (bit, SD, segment);
//! - NAME.expected, the full decoded dump (`XCOPY_BLESS=1 cargo test --test golden`
//!   rewrites these; review the diff).
//!
//! An optional NAME.limits.toml gives the copy-manager limits to validate against.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use xcopyd_scsi::dump::render_verdict;
use xcopyd_scsi::parameter_list::{evaluate, Verdict};
use xcopyd_scsi::{Limits, SenseKeySpecific, Supported};

#[test]
fn golden_vectors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../xcopy-descriptors");
    let bless = std::env::var_os("XCOPY_BLESS").is_some();
    let expected: BTreeMap<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected-sense.json")).unwrap())
            .unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .into_string()
                .ok()?
                .strip_suffix(".bin")
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 60, "only {} golden vectors", names.len());
    assert_eq!(
        names,
        expected.keys().cloned().collect::<Vec<_>>(),
        ".bin files and expected-sense.json disagree"
    );

    let mut failures = Vec::new();
    for name in &names {
        let bytes = std::fs::read(dir.join(format!("{name}.bin"))).unwrap();
        let limits: Limits = match std::fs::read_to_string(dir.join(format!("{name}.limits.toml")))
        {
            Ok(text) => toml::from_str(&text).unwrap(),
            Err(_) => Limits::default(),
        };
        let verdict = evaluate(&bytes, &limits, Supported::default());

        // 1. The sense the standard names.
        let want = &expected[name];
        let sense = match &verdict {
            Verdict::Rejected(s) | Verdict::WouldAbort { sense: s, .. } => Some(s),
            _ => None,
        };
        match (want.as_str(), sense) {
            (Some("good"), None) => {}
            (Some("good"), Some(s)) => failures.push(format!("{name}: expected GOOD, got {s}")),
            (_, None) => failures.push(format!("{name}: expected {want}, got GOOD")),
            (_, Some(s)) => {
                let (pointer, bit, sd) = match s.sense_key_specific {
                    Some(SenseKeySpecific::Field {
                        command: false,
                        bit,
                        pointer,
                    }) => (Some(pointer), bit, None),
                    Some(SenseKeySpecific::Segment {
                        in_segment,
                        bit,
                        pointer,
                    }) => (Some(pointer), bit, Some(in_segment)),
                    None => (None, None, None),
                    Some(other) => {
                        failures.push(format!("{name}: unexpected sense-key-specific {other:?}"));
                        continue;
                    }
                };
                let segment = match &verdict {
                    Verdict::WouldAbort { segment, .. } => Some(*segment as u64),
                    _ => None,
                };
                let got = [
                    ("sense_key", Some(u64::from(s.key.0))),
                    ("asc", Some(u64::from(s.asc.asc()))),
                    ("ascq", Some(u64::from(s.asc.ascq()))),
                    ("field_pointer", pointer.map(u64::from)),
                    ("bit", bit.map(u64::from)),
                    ("segment", segment),
                ];
                for (key, value) in got {
                    let w = want.get(key).and_then(Value::as_u64);
                    if w != value
                        && !(key == "segment" && want.get(key).is_none() && value.is_none())
                    {
                        failures.push(format!("{name}: {key} expected {w:?}, got {value:?} ({s})"));
                    }
                }
                if let Some(sd) = sd {
                    if want.get("sd").and_then(Value::as_bool) != Some(sd) {
                        failures.push(format!(
                            "{name}: SD expected {:?}, got {sd}",
                            want.get("sd")
                        ));
                    }
                }
            }
        }

        // 2. Our encoder writes back exactly the bytes the independent generator wrote.
        if let Verdict::Accepted(list) | Verdict::WouldAbort { list, .. } = &verdict {
            if list.encode() != bytes {
                failures.push(format!("{name}: re-encoding differs from the vector"));
            }
        }

        // 3. The decoded dump.
        let text = render_verdict(&verdict);
        let path = dir.join(format!("{name}.expected"));
        if bless {
            std::fs::write(&path, &text).unwrap();
        } else {
            match std::fs::read_to_string(&path) {
                Ok(old) if old == text => {}
                Ok(old) => failures.push(format!(
                    "{name}: dump differs\n--- expected\n{old}--- got\n{text}"
                )),
                Err(_) => failures.push(format!(
                    "{name}: no {name}.expected (run with XCOPY_BLESS=1)"
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}
