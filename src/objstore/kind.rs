//! The object store as a kind of cartridge store ([`crate::device::library::cartridge_store`]):
//! `media = "s3://BUCKET/PREFIX"` with its settings in `[object_store]` ([`super::config`]),
//! and a [`Gateway`] as the store a library opens.

use std::any::Any;
use std::io;
use std::path::Path;
use std::sync::Arc;

use super::{Gateway, GatewayConfig};
use crate::device::library::cartridge_store::{
    CartridgeStore, StoreKind, StoreKinds, StoreSettings,
};
use crate::device::tape::Backing;

/// The kinds of cartridge store this program has (what the daemon and the CLI hand the
/// inventory's parse): the object store's.
pub fn store_kinds() -> StoreKinds {
    StoreKinds::default().with(Arc::new(S3))
}

/// `s3://` media.
#[derive(Debug)]
pub struct S3;

impl StoreKind for S3 {
    fn scheme(&self) -> &str {
        "s3"
    }

    fn table(&self) -> &str {
        "object_store"
    }

    fn parse(
        &self,
        table: Option<&toml::Value>,
        url: &str,
        library: &str,
        state_dir: &Path,
    ) -> Result<Arc<dyn StoreSettings>, String> {
        let config = super::config::parse(table, url, library, state_dir)?;
        Ok(Arc::new(config))
    }
}

impl StoreSettings for GatewayConfig {
    fn open(&self) -> io::Result<Arc<dyn CartridgeStore>> {
        Ok(Arc::new(Gateway::new(self)?))
    }

    fn same(&self, other: &dyn StoreSettings) -> bool {
        other.as_any().downcast_ref::<Self>() == Some(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl CartridgeStore for Gateway {
    fn name(&self) -> &str {
        Gateway::name(self)
    }

    fn reclaim(&self) -> io::Result<Vec<String>> {
        Gateway::reclaim(self)
    }

    fn open(&self, barcode: &str, writable: bool) -> io::Result<Box<dyn Backing>> {
        Ok(Box::new(Gateway::open(self, barcode, writable)?))
    }

    fn read_mam(&self, barcode: &str) -> io::Result<Vec<u8>> {
        Gateway::read_mam(self, barcode)
    }

    fn write_mam(&self, barcode: &str, bytes: &[u8]) -> io::Result<()> {
        Gateway::write_mam(self, barcode, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::inventory::InventoryConfig;

    const CONFIG: &str = "[[device]]\nname = \"drive0\"\nkind = \"tape\"\n\
        [[library]]\nname = \"vtl0\"\ndrives = [\"drive0\"]\nslots = 4\n";

    fn settings(c: &InventoryConfig) -> &GatewayConfig {
        let media = c.libraries[0].object.as_ref().expect("store media");
        media.0.as_any().downcast_ref().expect("a GatewayConfig")
    }

    #[test]
    fn s3_media_are_parsed_by_the_object_store_s_kind() {
        let dir = tempfile::tempdir().unwrap();
        let table = "[object_store]\nendpoint = \"http://127.0.0.1:1\"\n\
            access_key_id = \"k\"\nsecret_access_key = \"SECRET-KEY\"\ngateway = \"gw-a\"\n";
        let text = format!("{CONFIG}media = \"s3://tapes/vtl0\"\n{table}");
        let kinds = store_kinds();
        let c = InventoryConfig::parse_with(&text, dir.path(), &kinds).unwrap();
        let g = settings(&c);
        assert_eq!(
            (g.endpoint.bucket.as_str(), g.prefix.as_str()),
            ("tapes", "vtl0/")
        );
        assert_eq!(g.gateway, "gw-a");
        assert_eq!(g.endpoint.secret_access_key, "SECRET-KEY");
        assert!(
            !format!("{c:?}").contains("SECRET-KEY"),
            "no secret in Debug"
        );
        // Equal settings are the same media (a reload keeps the library); others are not.
        let again = InventoryConfig::parse_with(&text, dir.path(), &kinds).unwrap();
        assert_eq!(c, again);
        let other = text.replace("gw-a", "gw-b");
        assert_ne!(
            c,
            InventoryConfig::parse_with(&other, dir.path(), &kinds).unwrap()
        );
        // The kind's own errors reach the inventory's field error.
        let bare = format!("{CONFIG}media = \"s3://tapes/vtl0\"\n");
        let e = InventoryConfig::parse_with(&bare, dir.path(), &kinds).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("field media: s3:// media need an [object_store] table"),
            "{e}"
        );
        let gs = format!("{CONFIG}media = \"gs://tapes/vtl0\"\n{table}");
        let e = InventoryConfig::parse_with(&gs, dir.path(), &kinds).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("field media: gs:// media: no such cartridge store here (known: s3)"),
            "{e}"
        );
    }
}
