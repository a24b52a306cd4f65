//! The CONFIG interface: what this server is and what it serves, from the inventory as the
//! NDMP user may see it (a device outside the user's `allow` lists is never listed).

use super::message::{Error, Pval, ADDR_LOCAL, ADDR_TCP, AUTH_MD5, AUTH_TEXT};
use super::reply::{self, DeviceInfo, FsInfo};
use super::services::Services;
use crate::device::inventory::DeviceKind;
use crate::device::tape;
use crate::ndmp::xdr::Put;

fn proc_text(path: &str, default: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| default.to_string())
}

pub fn host_info() -> Vec<u8> {
    let hostname = proc_text("/proc/sys/kernel/hostname", "localhost");
    let mut b = reply::error_only(Error::NO_ERR);
    b.put_string(&hostname);
    b.put_string("Linux");
    b.put_string(&proc_text("/proc/sys/kernel/osrelease", ""));
    // A stable host id: the machine id where there is one, else the host name.
    b.put_string(&proc_text("/etc/machine-id", &hostname));
    b
}

/// The authentication types offered: MD5 always, TEXT only when the config allows it.
pub fn auth_types(services: &Services) -> Vec<u32> {
    let mut v = vec![AUTH_MD5];
    if services.config.allow_text_auth {
        v.push(AUTH_TEXT);
    }
    v
}

pub fn server_info(services: &Services) -> Vec<u8> {
    let mut b = reply::error_only(Error::NO_ERR);
    b.put_string("xcopyd");
    b.put_string("xcopyd NDMP data mover");
    b.put_string(env!("CARGO_PKG_VERSION"));
    let types = auth_types(services);
    b.put_count(types.len());
    types.iter().for_each(|t| b.put_u32(*t));
    b
}

pub fn connection_types() -> Vec<u8> {
    let mut b = reply::error_only(Error::NO_ERR);
    b.put_count(2);
    b.put_u32(ADDR_LOCAL);
    b.put_u32(ADDR_TCP);
    b
}

/// The one backup type: `image`, the raw blocks of an inventory disk.
pub fn butype_info() -> Vec<u8> {
    let mut b = reply::error_only(Error::NO_ERR);
    b.put_count(1);
    b.put_string("image");
    super::message::encode_env(&[Pval::new("FILESYSTEM", "")], &mut b);
    b.put_u32(0);
    b
}

/// The disks, each a "file system" of type `image` whose size is the disk's.
pub fn fs_info(services: &Services) -> Vec<u8> {
    let infos: Vec<FsInfo> = services
        .visible(&[DeviceKind::Disk])
        .into_iter()
        .map(|(c, d)| {
            let size = d
                .block_backend()
                .map_or(0, |b| b.blocks * u64::from(b.block_size));
            FsInfo {
                fs_type: "image".into(),
                logical_device: c.name.clone(),
                physical_device: c.path.display().to_string(),
                total_size: size,
                used_size: size,
                avail_size: 0,
                env: vec![Pval::new("FILESYSTEM", c.name.clone())],
                status: "online".into(),
            }
        })
        .collect();
    reply::fs_info_reply(&infos)
}

/// Tape drives (lone ones and library drives, by inventory name).
pub fn tape_info(services: &Services) -> Vec<u8> {
    let model = format!("{} {}", tape::VENDOR, tape::PRODUCT);
    let infos: Vec<DeviceInfo> = services
        .visible(&[DeviceKind::Tape])
        .into_iter()
        .map(|(c, _)| DeviceInfo {
            model: model.clone(),
            devices: vec![(c.name, 0, Vec::new())],
        })
        .collect();
    reply::device_info_reply(&infos)
}

/// Medium changers and SG devices, for SCSI_OPEN.
pub fn scsi_info(services: &Services) -> Vec<u8> {
    let infos: Vec<DeviceInfo> = services
        .visible(&[DeviceKind::Changer, DeviceKind::Sg])
        .into_iter()
        .map(|(c, _)| DeviceInfo {
            model: match c.kind {
                DeviceKind::Changer => "XCOPYD MEDIUM CHANGER".into(),
                _ => "SCSI GENERIC".into(),
            },
            devices: vec![(c.name, 0, Vec::new())],
        })
        .collect();
    reply::device_info_reply(&infos)
}

/// No extensions: an empty class list, and SET_EXT_LIST accepts only the empty list.
pub fn ext_list() -> Vec<u8> {
    let mut b = reply::error_only(Error::NO_ERR);
    b.put_count(0);
    b
}
