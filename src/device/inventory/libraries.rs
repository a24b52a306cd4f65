//! The inventory's libraries: reading the `[[library]]` tables (their drives are inventory
//! tape devices; [`crate::device::library::config`] says what each key means) and opening
//! them, keeping the open ones across a reload. The inventory's concern, not the library's:
//! a library is given its [`LibraryConfig`] and drives and knows nothing of the inventory.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::{
    derived_designator, emulated_designators, DeviceConfig, DeviceKind, Inventory, InventoryConfig,
    InventoryError,
};
use crate::device::library::cartridge_store::{StoreKinds, StoreMedia};
use crate::device::library::drive::{DriveConfig, LibraryDrive};
use crate::device::library::elements::{MAX_DRIVES, MAX_IMPORT_EXPORT, MAX_SLOTS};
use crate::device::library::{lto, Library, LibraryConfig};
use crate::scsi::Designator;

fn field(who: &str, key: &str, message: impl Into<String>) -> InventoryError {
    InventoryError::Field {
        device: who.to_string(),
        field: key.to_string(),
        message: message.into(),
    }
}

/// A TOML integer in `range`.
fn count(v: &toml::Value, range: std::ops::RangeInclusive<u16>) -> Result<u16, String> {
    let n = v
        .as_integer()
        .ok_or_else(|| format!("expected an integer, got {}", v.type_str()))?;
    u16::try_from(n)
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| format!("{n} is not {}..={}", range.start(), range.end()))
}

/// Parses every `[[library]]` of `table` against the parsed `devices` (each drive must be
/// a tape without `path`, in one library only). Relative `media` paths resolve against
/// `base`; element maps go to `state_dir`; a `media` URL must name one of `kinds`.
pub fn parse_libraries(
    table: &toml::Table,
    base: &Path,
    state_dir: &Path,
    devices: &[DeviceConfig],
    kinds: &StoreKinds,
) -> Result<Vec<LibraryConfig>, InventoryError> {
    let entries = match table.get("library") {
        None => return Ok(Vec::new()),
        Some(toml::Value::Array(a)) => a,
        Some(_) => {
            return Err(InventoryError::Invalid(
                "`library` must be an array of tables ([[library]])".into(),
            ))
        }
    };
    let mut out: Vec<LibraryConfig> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let c = parse_one(i, entry, base, state_dir, devices, (table, kinds))?;
        let who = format!("{:?}", c.name);
        if out.iter().any(|o| o.name == c.name) || devices.iter().any(|d| d.name == c.name) {
            return Err(field(
                &who,
                "name",
                "another device or library has the same name",
            ));
        }
        for d in &c.drives {
            if let Some(other) = out.iter().find(|o| o.drives.contains(d)) {
                return Err(field(
                    &who,
                    "drives",
                    format!("{d:?} is already a drive of library {:?}", other.name),
                ));
            }
        }
        out.push(c);
    }
    Ok(out)
}

/// The cartridge store `url` (of `scheme`) names, its settings read by its kind from `doc`.
fn store_media(
    url: &str,
    scheme: &str,
    library: &str,
    state_dir: &Path,
    doc: &toml::Table,
    kinds: &StoreKinds,
) -> Result<StoreMedia, String> {
    let Some(kind) = kinds.find(scheme) else {
        return Err(match kinds.schemes().as_slice() {
            [] => {
                format!("{scheme}:// media: this program has no cartridge store (a directory only)")
            }
            known => format!(
                "{scheme}:// media: no such cartridge store here (known: {})",
                known.join(", ")
            ),
        });
    };
    kind.parse(doc.get(kind.table()), url, library, state_dir)
        .map(StoreMedia)
}

fn parse_one(
    index: usize,
    value: &toml::Value,
    base: &Path,
    state_dir: &Path,
    devices: &[DeviceConfig],
    (doc, kinds): (&toml::Table, &StoreKinds),
) -> Result<LibraryConfig, InventoryError> {
    let unnamed = format!("library #{} (unnamed)", index + 1);
    let toml::Value::Table(t) = value else {
        return Err(InventoryError::Invalid(format!(
            "{unnamed}: each [[library]] must be a table"
        )));
    };
    let name = match t.get("name") {
        Some(toml::Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(_) => return Err(field(&unnamed, "name", "must be a non-empty string")),
        None => return Err(field(&unnamed, "name", "missing")),
    };
    let who = format!("{name:?}");
    let mut c = LibraryConfig::new(&name, &[], 0, Path::new(""), state_dir);
    let (mut slots, mut media, mut designator_keys) = (None, None, 0);
    for (key, v) in t {
        let e = |message: String| field(&who, key, message);
        match key.as_str() {
            "name" => {}
            "designator" | "designators" => {
                designator_keys += 1;
                let names: Vec<&str> = match v {
                    toml::Value::String(s) if key == "designator" => vec![s.as_str()],
                    toml::Value::Array(a) if key == "designators" => a
                        .iter()
                        .map(|x| x.as_str().ok_or_else(|| e("must be strings".into())))
                        .collect::<Result<_, _>>()?,
                    _ => return Err(e("must be a string (designators: an array)".into())),
                };
                for n in names {
                    c.designators.push(Designator::parse_name(n).map_err(e)?);
                }
            }
            "drives" => {
                let toml::Value::Array(a) = v else {
                    return Err(e("must be an array of [[device]] names".into()));
                };
                for d in a {
                    let d = d
                        .as_str()
                        .filter(|d| !d.is_empty())
                        .ok_or_else(|| e("must be non-empty strings".into()))?;
                    check_drive(&who, d, devices)?;
                    if c.drives.iter().any(|x| x == d) {
                        return Err(e(format!("{d:?} is listed twice")));
                    }
                    c.drives.push(d.to_string());
                }
            }
            "slots" => slots = Some(count(v, 1..=MAX_SLOTS).map_err(e)?),
            "import_export" => c.import_export = count(v, 0..=MAX_IMPORT_EXPORT).map_err(e)?,
            "media" => match v.as_str().map(|s| (s, StoreKinds::scheme_of(s))) {
                Some((s, Some(scheme))) => {
                    let store = store_media(s, scheme, &name, state_dir, doc, kinds);
                    c.object = Some(store.map_err(e)?);
                    media = Some(state_dir.join(format!("{name}.media")));
                }
                Some((s, None)) if !s.is_empty() => media = Some(base.join(s)),
                _ => return Err(e("must be a non-empty path".into())),
            },
            "serial" => match v.as_str() {
                Some(s) if !s.is_empty() && s.is_ascii() => c.serial = Some(s.into()),
                _ => return Err(e("must be a non-empty ASCII string".into())),
            },
            other => return Err(field(&who, other, "unknown field")),
        }
    }
    if designator_keys > 1 {
        return Err(field(
            &who,
            "designators",
            "give `designator` or `designators`, not both",
        ));
    }
    if c.drives.is_empty() || c.drives.len() > usize::from(MAX_DRIVES) {
        return Err(field(
            &who,
            "drives",
            format!("must name 1..={MAX_DRIVES} drives"),
        ));
    }
    c.slots = slots.ok_or_else(|| field(&who, "slots", "missing"))?;
    c.media = media.ok_or_else(|| field(&who, "media", "missing"))?;
    Ok(c)
}

/// A drive of a library: a `[[device]] kind = "tape"` without `path`.
fn check_drive(who: &str, name: &str, devices: &[DeviceConfig]) -> Result<(), InventoryError> {
    match devices.iter().find(|d| d.name == name) {
        None => Err(field(
            who,
            "drives",
            format!("{name:?} is not a [[device]]"),
        )),
        Some(d) if d.kind != DeviceKind::Tape => Err(field(
            who,
            "drives",
            format!("{name:?} is not a kind = \"tape\" device"),
        )),
        Some(d) if !d.path.as_os_str().is_empty() => Err(field(
            &format!("{name:?}"),
            "path",
            "a library drive has no path (the library loads its cartridges)",
        )),
        Some(_) => Ok(()),
    }
}

/// The drive settings of a `[[device]]` entry that a library lists.
fn drive_config(c: &DeviceConfig) -> DriveConfig {
    DriveConfig {
        name: c.name.clone(),
        generation: c.generation.unwrap_or(lto::DEFAULT_GENERATION),
        block_size: c.tape.block_size,
        designators: emulated_designators(c),
        serial: c.serial.clone().unwrap_or_default(),
    }
}

/// The library config as opened: a derived designator when none is configured.
fn with_designator(c: &LibraryConfig) -> LibraryConfig {
    let mut c = c.clone();
    if c.designators.is_empty() {
        c.designators = vec![derived_designator(None, &c.name)];
    }
    c
}

/// Opened libraries, and their drives by inventory name.
pub type OpenedLibraries = (Vec<Arc<Library>>, HashMap<String, Arc<LibraryDrive>>);

/// Opens the libraries of `config` with their drives (by drive name), keeping those of
/// `previous` whose library and drive settings are unchanged (a reload). A library whose
/// settings changed is refused: its cartridges are open in its drives, and it changes at
/// the next start.
pub fn open_libraries(
    config: &InventoryConfig,
    previous: &Inventory,
) -> Result<OpenedLibraries, InventoryError> {
    let mut libraries = Vec::new();
    let mut drives = HashMap::new();
    for lc in &config.libraries {
        let lc = with_designator(lc);
        let drive_configs: Vec<DriveConfig> = lc
            .drives
            .iter()
            .filter_map(|n| config.devices.iter().find(|d| &d.name == n))
            .map(drive_config)
            .collect();
        let library = match previous.library(&lc.name) {
            Some(old)
                if *old.config() == lc
                    && old
                        .drives()
                        .iter()
                        .map(|d| d.config())
                        .eq(drive_configs.iter()) =>
            {
                old.clone()
            }
            Some(_) => {
                return Err(InventoryError::Invalid(format!(
                    "library {:?} changed: its cartridges are loaded; restart to apply",
                    lc.name
                )))
            }
            None => {
                let ds = drive_configs
                    .into_iter()
                    .map(|c| Arc::new(LibraryDrive::new(c)))
                    .collect();
                let name = lc.name.clone();
                let (library, warnings) = Library::open_in(lc, ds, Arc::clone(&previous.rings))
                    .map_err(|e| InventoryError::Open {
                        device: name.clone(),
                        source: Box::new(e),
                    })?;
                for w in warnings {
                    tracing::warn!(library = %name, "{w}");
                }
                Arc::new(library)
            }
        };
        for d in library.drives() {
            drives.insert(d.config().name.clone(), d.clone());
        }
        libraries.push(library);
    }
    Ok((libraries, drives))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::DataDirection;

    const CONFIG: &str = r#"
[[device]]
name = "drive0"
kind = "tape"
designator = "naa.5001405a1b2c3d20"
[[device]]
name = "drive1"
kind = "tape"
generation = 8
[[library]]
name = "vtl0"
designator = "naa.5001405a1b2c3d10"
drives = ["drive0", "drive1"]
slots = 24
import_export = 2
media = "vtl0"
"#;

    #[test]
    fn a_config_with_a_state_dir_keeps_its_element_maps_there() {
        let dir = tempfile::tempdir().unwrap();
        let with = format!("[daemon]\nstate_dir = \"st\"\n{CONFIG}");
        let c = InventoryConfig::parse(&with, dir.path()).unwrap();
        assert_eq!(c.libraries[0].state_dir, dir.path().join("st"));
        let c = InventoryConfig::parse(CONFIG, dir.path()).unwrap();
        assert_eq!(c.libraries[0].state_dir, crate::state::state_dir());
    }

    #[test]
    fn the_design_contract_parses_and_opens() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = InventoryConfig::parse(CONFIG, dir.path()).unwrap();
        let l = &c.libraries[0];
        assert_eq!(
            (l.name.as_str(), l.slots, l.import_export, l.drives.len()),
            ("vtl0", 24, 2, 2)
        );
        assert_eq!(l.media, dir.path().join("vtl0"));
        assert_eq!(l.designators[0].to_string(), "naa.5001405a1b2c3d10");
        assert_eq!(c.devices[1].generation, Some(8));
        assert!(c.devices[0].path.as_os_str().is_empty());
        c.libraries[0].state_dir = dir.path().join("state");
        std::fs::create_dir_all(dir.path().join("vtl0")).unwrap();
        std::fs::write(dir.path().join("vtl0/XC0001L8.tap"), b"").unwrap();
        let inv = Inventory::open(&c).unwrap();
        let changer = inv.by_name("vtl0").unwrap();
        assert_eq!(changer.config.kind, DeviceKind::Changer);
        let mut inq = [0u8; 36];
        changer
            .device
            .execute(&[0x12, 0, 0, 0, 36, 0], DataDirection::FromDevice(&mut inq))
            .unwrap();
        assert_eq!(inq[0], 0x08);
        let drive1 = inv.by_name("drive1").unwrap();
        drive1
            .device
            .execute(&[0x12, 0, 0, 0, 36, 0], DataDirection::FromDevice(&mut inq))
            .unwrap();
        assert_eq!(&inq[16..27], b"ULT3580-TD8");
        let lib = inv.library("vtl0").unwrap();
        assert_eq!(lib.locate("XC0001L8"), Some(0x1000));
        lib.move_medium(0, 0x1000, 0x101).unwrap();
        let tur = drive1.device.execute(&[0; 6], DataDirection::None).unwrap();
        assert!(tur.is_good());
        // A reload with the library unchanged keeps it (and its loaded drive).
        let again = Inventory::reopen(&c, &inv).unwrap();
        assert!(Arc::ptr_eq(again.library("vtl0").unwrap(), lib));
        let mut changed = c.clone();
        changed.libraries[0].slots = 30;
        let e = Inventory::reopen(&changed, &inv).unwrap_err();
        assert!(e.to_string().contains("restart"), "{e}");
    }

    #[test]
    fn errors_name_the_library_or_device_and_the_key() {
        let cases: &[(&str, &str)] = &[
            ("slots = 24", "device \"vtl0\": field slots: missing"),
            ("slots = 0", "field slots: 0 is not 1..="),
            (
                "import_export = 241",
                "field import_export: 241 is not 0..=240",
            ),
            ("media = \"\"", "field media: must be a non-empty path"),
            (
                "media = \"s3://b/p\"",
                "field media: s3:// media: this program has no cartridge store (a directory only)",
            ),
            (
                "drives = [\"disk0\"]",
                "field drives: \"disk0\" is not a kind = \"tape\"",
            ),
            (
                "drives = [\"nope\"]",
                "field drives: \"nope\" is not a [[device]]",
            ),
            (
                "drives = [\"t\"]",
                "device \"t\": field path: a library drive has no path",
            ),
            ("drives = []", "field drives: must name 1..="),
            (
                "drives = [\"drive0\", \"drive0\"]",
                "\"drive0\" is listed twice",
            ),
            ("colour = 1", "device \"vtl0\": field colour: unknown field"),
        ];
        let base = "[[device]]\nname = \"drive0\"\nkind = \"tape\"\n\
                    [[device]]\nname = \"t\"\nkind = \"tape\"\npath = \"t.tap\"\n\
                    [[device]]\nname = \"disk0\"\nkind = \"disk\"\npath = \"d.img\"\n";
        for (change, want) in cases {
            let mut lib = String::from(
                "[[library]]\nname = \"vtl0\"\nslots = 24\nmedia = \"m\"\ndrives = [\"drive0\"]\n",
            );
            let key = change.split(' ').next().unwrap();
            lib = lib
                .lines()
                .filter(|l| !l.starts_with(&format!("{key} ")))
                .collect::<Vec<_>>()
                .join("\n");
            if *change != "slots = 24" {
                lib.push('\n');
                lib.push_str(change);
            }
            lib.push('\n');
            let e = InventoryConfig::parse(&format!("{base}{lib}"), Path::new("/")).unwrap_err();
            assert!(e.to_string().contains(want), "{change}: {e}");
        }
        // A tape without path outside any library; two libraries sharing a drive.
        let e = InventoryConfig::parse(base, Path::new("/")).unwrap_err();
        assert!(
            e.to_string()
                .contains("device \"drive0\": field path: missing (a tape without path"),
            "{e}"
        );
        let two = format!(
            "{base}[[library]]\nname = \"a\"\nslots = 1\nmedia = \"m\"\ndrives = [\"drive0\"]\n\
             [[library]]\nname = \"b\"\nslots = 1\nmedia = \"m\"\ndrives = [\"drive0\"]\n"
        );
        let e = InventoryConfig::parse(&two, Path::new("/")).unwrap_err();
        assert!(
            e.to_string().contains("already a drive of library \"a\""),
            "{e}"
        );
        let clash = format!(
            "{base}[[library]]\nname = \"t\"\nslots = 1\nmedia = \"m\"\ndrives = [\"drive0\"]\n"
        );
        let e = InventoryConfig::parse(&clash, Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("same name"), "{e}");
    }
}
