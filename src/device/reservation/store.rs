//! APTPL persistence: the registrations and the persistent reservation of a logical unit in
//! a small TOML file of the daemon's state directory, written atomically (a temporary file
//! in the same directory, fsync, rename over the old one, fsync of the directory), so a
//! crash leaves the old state or the new one, never a mix.
//!
//! ```toml
//! generation = 7
//! [[registration]]
//! initiator = "iqn.1993-08.org.debian:01:host1"
//! isid = "23d000000001"          # absent: every port of that initiator name
//! key = "0x00000000000000ab"     # 64-bit keys as hex strings (TOML integers are signed)
//! all_tg_pt = false
//! [reservation]
//! initiator = "iqn.1993-08.org.debian:01:host1"
//! isid = "23d000000001"
//! type = "write-exclusive-registrants-only"
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::state::{Held, InitiatorPort, Registration, State};
use crate::scsi::persistent_reservation::ReservationType;

/// The largest state file read back (256 registrations fit in a fraction of it).
const MAX_FILE: u64 = 1 << 20;

/// Why saved reservations could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("not a reservations file: {0}")]
    Format(String),
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Saved {
    generation: u32,
    #[serde(default, rename = "registration")]
    registrations: Vec<SavedRegistration>,
    reservation: Option<SavedReservation>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct SavedRegistration {
    initiator: String,
    isid: Option<String>,
    key: String,
    #[serde(default)]
    all_tg_pt: bool,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct SavedReservation {
    initiator: String,
    isid: Option<String>,
    #[serde(rename = "type")]
    kind: ReservationType,
}

fn isid_text(isid: Option<[u8; 6]>) -> Option<String> {
    isid.map(|b| b.iter().map(|x| format!("{x:02x}")).collect())
}

fn isid_value(text: Option<&str>) -> Result<Option<[u8; 6]>, StoreError> {
    let Some(t) = text else {
        return Ok(None);
    };
    let bad = || StoreError::Format(format!("isid {t:?}"));
    if t.len() != 12 {
        return Err(bad());
    }
    let mut out = [0u8; 6];
    for (i, b) in out.iter_mut().enumerate() {
        *b = t
            .get(2 * i..2 * i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or_else(bad)?;
    }
    Ok(Some(out))
}

fn port(initiator: &str, isid: Option<&str>) -> Result<InitiatorPort, StoreError> {
    if initiator.is_empty() {
        return Err(StoreError::Format("empty initiator".into()));
    }
    Ok(InitiatorPort {
        name: initiator.to_string(),
        isid: isid_value(isid)?,
    })
}

/// The saved state at `path`: `None` when there is no file.
pub fn load(path: &Path) -> Result<Option<State>, StoreError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if file.metadata()?.len() > MAX_FILE {
        return Err(StoreError::Format("larger than 1 MiB".into()));
    }
    let text = io::read_to_string(file)?;
    let saved: Saved = toml::from_str(&text).map_err(|e| StoreError::Format(e.to_string()))?;
    let mut state = State {
        generation: saved.generation,
        aptpl: true,
        ..State::default()
    };
    for r in &saved.registrations {
        let key = r
            .key
            .strip_prefix("0x")
            .and_then(|k| u64::from_str_radix(k, 16).ok())
            .filter(|&k| k != 0)
            .ok_or_else(|| StoreError::Format(format!("key {:?}", r.key)))?;
        if state.registrations.len() == super::state::MAX_REGISTRATIONS {
            return Err(StoreError::Format("too many registrations".into()));
        }
        state.registrations.push(Registration {
            port: port(&r.initiator, r.isid.as_deref())?,
            key,
            all_tg_pt: r.all_tg_pt,
        });
    }
    if let Some(h) = &saved.reservation {
        let holder = port(&h.initiator, h.isid.as_deref())?;
        if state.registration(&holder).is_none() {
            return Err(StoreError::Format(
                "the reservation holder is not registered".into(),
            ));
        }
        state.reservation = Some(Held {
            holder,
            kind: h.kind,
        });
    }
    Ok(Some(state))
}

/// Saves `state` at `path`, atomically.
pub fn save(path: &Path, state: &State) -> Result<(), StoreError> {
    let saved = Saved {
        generation: state.generation,
        registrations: state
            .registrations
            .iter()
            .map(|r| SavedRegistration {
                initiator: r.port.name.clone(),
                isid: isid_text(r.port.isid),
                key: format!("0x{:016x}", r.key),
                all_tg_pt: r.all_tg_pt,
            })
            .collect(),
        reservation: state.reservation.as_ref().map(|h| SavedReservation {
            initiator: h.holder.name.clone(),
            isid: isid_text(h.holder.isid),
            kind: h.kind,
        }),
    };
    let text = toml::to_string(&saved).map_err(|e| StoreError::Format(e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("pr");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    Ok(written?)
}

/// Removes the saved state (APTPL cleared), durably.
pub fn remove(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        let a = InitiatorPort {
            name: "iqn.2026-01.org.example:a".into(),
            isid: Some([0x23, 0xd0, 0, 0, 0, 1]),
        };
        let b = InitiatorPort {
            name: "iqn.2026-01.org.example:b".into(),
            isid: None,
        };
        State {
            generation: 7,
            registrations: vec![
                Registration {
                    port: a.clone(),
                    key: 0xfeed_0000_0000_00ab,
                    all_tg_pt: false,
                },
                Registration {
                    port: b,
                    key: 2,
                    all_tg_pt: true,
                },
            ],
            reservation: Some(Held {
                holder: a,
                kind: ReservationType::WriteExclusiveRegistrantsOnly,
            }),
            aptpl: true,
            ..State::default()
        }
    }

    #[test]
    fn round_trip_and_exact_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pr").join("disk0.toml");
        assert!(load(&path).unwrap().is_none());
        save(&path, &sample()).unwrap();
        assert_eq!(load(&path).unwrap(), Some(sample()));
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "generation = 7\n\n\
             [[registration]]\n\
             initiator = \"iqn.2026-01.org.example:a\"\n\
             isid = \"23d000000001\"\n\
             key = \"0xfeed0000000000ab\"\n\
             all_tg_pt = false\n\n\
             [[registration]]\n\
             initiator = \"iqn.2026-01.org.example:b\"\n\
             key = \"0x0000000000000002\"\n\
             all_tg_pt = true\n\n\
             [reservation]\n\
             initiator = \"iqn.2026-01.org.example:a\"\n\
             isid = \"23d000000001\"\n\
             type = \"write-exclusive-registrants-only\"\n"
        );
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
        remove(&path).unwrap();
        assert!(load(&path).unwrap().is_none());
        remove(&path).unwrap();
    }

    #[test]
    fn refuses_what_it_did_not_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        for bad in [
            "generation = 1\nextra = 2\n",
            "generation = 1\n[[registration]]\ninitiator = \"a\"\nkey = \"0x0\"\n",
            "generation = 1\n[[registration]]\ninitiator = \"a\"\nkey = \"12\"\n",
            "generation = 1\n[[registration]]\ninitiator = \"a\"\nisid = \"12\"\nkey = \"0x1\"\n",
            "generation = 1\n[reservation]\ninitiator = \"a\"\ntype = \"write-exclusive\"\n",
            "generation = 1\n[[registration]]\ninitiator = \"\"\nkey = \"0x1\"\n",
            "not toml",
        ] {
            fs::write(&path, bad).unwrap();
            assert!(load(&path).is_err(), "{bad}");
        }
    }
}
