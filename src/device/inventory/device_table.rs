//! One `[[device]]` table, key by key: the keys every kind takes, then those of disks,
//! tapes and SG_IO devices, each refused on a kind it does not apply to.

use std::path::{Path, PathBuf};

use super::{field_err, kind_name, DeviceConfig, DeviceKind, InventoryError, MAX_QUEUE_DEPTH};
use crate::device::library::lto;
use crate::scsi::designator::{parse_hex, Designator};

/// Parses one `[[device]]` table (entry `index`, for messages before the name is known).
pub(super) fn parse_device(
    index: usize,
    value: &toml::Value,
    base: &Path,
) -> Result<DeviceConfig, InventoryError> {
    let unnamed = format!("#{} (unnamed)", index + 1);
    let toml::Value::Table(t) = value else {
        return Err(InventoryError::Invalid(format!(
            "device {unnamed}: each [[device]] must be a table"
        )));
    };
    let mut c = identity(t, &unnamed, base)?;
    let who = format!("{:?}", c.name);
    let mut designator_keys = 0;
    for (key, v) in t {
        let key = Key {
            who: &who,
            name: key.as_str(),
            kind: c.kind,
        };
        match key.name {
            "name" | "kind" | "path" => {}
            "designator" | "designators" => {
                designator_keys += 1;
                designators(&mut c, &key, v)?;
            }
            _ => {
                let known = any_kind_key(&mut c, &key, v)?
                    || disk_key(&mut c, &key, v)?
                    || tape_key(&mut c, &key, v)?
                    || sg_key(&mut c, &key, v)?;
                if !known {
                    return Err(key.err("unknown field".into()));
                }
            }
        }
    }
    finish(c, &who, designator_keys)
}

/// One key of one `[[device]]`, for its error messages and the kinds it applies to.
struct Key<'a> {
    who: &'a str,
    name: &'a str,
    kind: DeviceKind,
}

impl Key<'_> {
    fn err(&self, message: String) -> InventoryError {
        field_err(self.who, self.name, &message)
    }

    /// Refuses the key on a device of a kind it does not apply to.
    fn only(&self, kinds: &[DeviceKind]) -> Result<(), InventoryError> {
        if kinds.contains(&self.kind) {
            Ok(())
        } else {
            Err(self.err(format!(
                "does not apply to kind = {:?}",
                kind_name(self.kind)
            )))
        }
    }
}

/// `name`, `kind` and `path`: the device every other key is checked against.
fn identity(t: &toml::Table, unnamed: &str, base: &Path) -> Result<DeviceConfig, InventoryError> {
    let name = match t.get("name") {
        Some(toml::Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(_) => {
            return Err(field_err(unnamed, "name", "must be a non-empty string"));
        }
        None => return Err(field_err(unnamed, "name", "missing")),
    };
    let who = format!("{name:?}");
    let err = |field: &str, message: String| field_err(&who, field, &message);
    let kind = match t.get("kind") {
        Some(toml::Value::String(s)) => match s.as_str() {
            "disk" => DeviceKind::Disk,
            "tape" => DeviceKind::Tape,
            "sg" => DeviceKind::Sg,
            other => {
                return Err(err(
                    "kind",
                    format!("{other:?} is not one of \"disk\", \"tape\", \"sg\""),
                ))
            }
        },
        Some(_) => return Err(err("kind", "must be a string".into())),
        None => return Err(err("kind", "missing".into())),
    };
    let path = match t.get("path") {
        Some(toml::Value::String(s)) if !s.is_empty() => base.join(s),
        Some(_) => return Err(err("path", "must be a non-empty string".into())),
        // A library drive: checked against the [[library]] tables.
        None if kind == DeviceKind::Tape => PathBuf::new(),
        None => return Err(err("path", "missing".into())),
    };
    let mut c = DeviceConfig::new(&name, kind, path);
    if kind == DeviceKind::Tape {
        c.block_size = 0;
    }
    Ok(c)
}

/// `designator` (one string) or `designators` (an array of strings).
fn designators(c: &mut DeviceConfig, key: &Key<'_>, v: &toml::Value) -> Result<(), InventoryError> {
    let e = |message: String| key.err(message);
    let names: Vec<&str> = match v {
        toml::Value::String(s) if key.name == "designator" => vec![s.as_str()],
        toml::Value::Array(a) if key.name == "designators" => a
            .iter()
            .map(|x| x.as_str().ok_or_else(|| e("must be strings".into())))
            .collect::<Result<_, _>>()?,
        _ if key.name == "designator" => return Err(e("must be a string".into())),
        _ => return Err(e("must be an array of strings".into())),
    };
    for n in names {
        c.designators.push(Designator::parse_name(n).map_err(e)?);
    }
    Ok(())
}

/// The keys of every kind (`block_size` of disks and tapes among them); false: not one.
fn any_kind_key(
    c: &mut DeviceConfig,
    key: &Key<'_>,
    v: &toml::Value,
) -> Result<bool, InventoryError> {
    let e = |message: String| key.err(message);
    match key.name {
        "block_size" => {
            key.only(&[DeviceKind::Disk, DeviceKind::Tape])?;
            let n = integer(v).map_err(e)?;
            c.block_size = match c.kind {
                DeviceKind::Disk if n == 512 || n == 4096 => n as u32,
                DeviceKind::Disk => return Err(e(format!("must be 512 or 4096, got {n}"))),
                _ if n <= 0xff_ffff => n as u32,
                _ => return Err(e(format!("{n} exceeds the 24-bit block length"))),
            };
        }
        "fc_port_name" => c.fc_port_name = Some(address64(v).map_err(e)?),
        "sas_address" => c.sas_address = Some(address64(v).map_err(e)?),
        "fc_port_id" => {
            let id = match v {
                toml::Value::String(s) => {
                    hex_u64(s).ok_or_else(|| e(format!("{s:?} is not hex")))?
                }
                _ => integer(v).map_err(e)?,
            };
            if id > 0xff_ffff {
                return Err(e(format!("{id:#x} is wider than 24 bits")));
            }
            c.fc_port_id = Some(id as u32);
        }
        "lun" => {
            c.lun = match v {
                toml::Value::String(s) => {
                    hex_u64(s).ok_or_else(|| e(format!("{s:?} is not hex")))?
                }
                _ => integer(v).map_err(e)?,
            }
        }
        "allow" => {
            let toml::Value::Array(a) = v else {
                return Err(e("must be an array of initiator names".into()));
            };
            c.allow = a
                .iter()
                .map(|x| match x.as_str() {
                    Some(s) if !s.is_empty() => Ok(s.to_string()),
                    _ => Err(e("must be non-empty strings".into())),
                })
                .collect::<Result<_, _>>()?;
        }
        "limit" => {
            let rate = bytes(v).map_err(e)?;
            if rate == 0 {
                return Err(e("must be at least 1 byte per second".into()));
            }
            c.limit = Some(rate);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The keys of emulated disks; false: not one.
fn disk_key(c: &mut DeviceConfig, key: &Key<'_>, v: &toml::Value) -> Result<bool, InventoryError> {
    let e = |message: String| key.err(message);
    let flag = |v: &toml::Value| v.as_bool().ok_or_else(|| e("must be true or false".into()));
    match key.name {
        "read_only" | "removable" | "size" | "serial" | "queue_depth" => {
            key.only(&[DeviceKind::Disk])?
        }
        _ => return Ok(false),
    }
    match key.name {
        "read_only" => c.read_only = flag(v)?,
        "removable" => c.removable = flag(v)?,
        "size" => c.size = Some(bytes(v).map_err(e)?),
        "serial" => match v.as_str() {
            Some(s) if !s.is_empty() && s.is_ascii() => c.serial = Some(s.to_string()),
            _ => return Err(e("must be a non-empty ASCII string".into())),
        },
        _ => {
            let depth = integer(v).map_err(e)?;
            c.queue_depth = Some(
                u16::try_from(depth)
                    .ok()
                    .filter(|d| (1..=MAX_QUEUE_DEPTH).contains(d))
                    .ok_or_else(|| e(format!("{depth} is not 1..={MAX_QUEUE_DEPTH}")))?,
            );
        }
    }
    Ok(true)
}

/// The keys of emulated tapes; false: not one.
fn tape_key(c: &mut DeviceConfig, key: &Key<'_>, v: &toml::Value) -> Result<bool, InventoryError> {
    let e = |message: String| key.err(message);
    match key.name {
        "capacity" | "early_warning" | "generation" => key.only(&[DeviceKind::Tape])?,
        _ => return Ok(false),
    }
    match key.name {
        "capacity" => c.tape.capacity = Some(bytes(v).map_err(e)?),
        "early_warning" => c.tape.early_warning = Some(bytes(v).map_err(e)?),
        _ => {
            let g = integer(v).map_err(e)?;
            c.generation = Some(
                u8::try_from(g)
                    .ok()
                    .filter(|g| lto::GENERATIONS.contains(g))
                    .ok_or_else(|| e(format!("{g} is not an LTO generation 5..=9")))?,
            );
        }
    }
    Ok(true)
}

/// The keys of SG_IO devices; false: not one.
fn sg_key(c: &mut DeviceConfig, key: &Key<'_>, v: &toml::Value) -> Result<bool, InventoryError> {
    if key.name != "timeout_ms" {
        return Ok(false);
    }
    key.only(&[DeviceKind::Sg])?;
    let ms = integer(v).map_err(|m| key.err(m))?;
    c.timeout_ms = u32::try_from(ms)
        .ok()
        .filter(|&ms| ms > 0)
        .ok_or_else(|| key.err(format!("{ms} is not 1..=4294967295")))?;
    Ok(true)
}

/// The checks across keys, once every key is read.
fn finish(
    mut c: DeviceConfig,
    who: &str,
    designator_keys: usize,
) -> Result<DeviceConfig, InventoryError> {
    let err = |field: &str, message: String| field_err(who, field, &message);
    if designator_keys > 1 {
        return Err(err(
            "designators",
            "give `designator` or `designators`, not both".into(),
        ));
    }
    if let (Some(cap), Some(ew)) = (c.tape.capacity, c.tape.early_warning) {
        if ew > cap {
            return Err(err(
                "early_warning",
                format!("{ew} is past the capacity {cap}"),
            ));
        }
    }
    if c.kind == DeviceKind::Tape {
        // A tape's block_size is the mode the drive starts in.
        c.tape.block_size = c.block_size;
    }
    Ok(c)
}

/// A non-negative TOML integer.
fn integer(v: &toml::Value) -> Result<u64, String> {
    match v {
        toml::Value::Integer(i) => u64::try_from(*i).map_err(|_| format!("{i} is negative")),
        other => Err(format!("expected an integer, got {}", other.type_str())),
    }
}

/// Hex with optional `0x` prefix and `:`/`-` separators, at most 64 bits.
fn hex_u64(s: &str) -> Option<u64> {
    let bytes = parse_hex(s)?;
    if bytes.len() > 8 {
        return None;
    }
    Some(bytes.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
}

/// A 64-bit port name or SAS address: `"0x…"` or 16 hex digits (separators allowed), or
/// an integer.
fn address64(v: &toml::Value) -> Result<u64, String> {
    match v {
        toml::Value::String(s) => {
            let digits = s
                .trim_start_matches("0x")
                .chars()
                .filter(|c| !matches!(c, ':' | '-'))
                .count();
            if digits != 16 {
                return Err(format!("{s:?}: expected 16 hex digits"));
            }
            hex_u64(s).ok_or_else(|| format!("{s:?}: expected 16 hex digits"))
        }
        other => integer(other),
    }
}

/// A byte count: an integer, or a string with a binary multiple (`"512M"`, `"4GiB"`).
fn bytes(v: &toml::Value) -> Result<u64, String> {
    match v {
        toml::Value::String(s) => crate::size::parse(s),
        _ => integer(v),
    }
}
