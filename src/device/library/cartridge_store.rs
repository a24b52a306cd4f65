//! Where a library's cartridges are when they are not `BARCODE.tap` files in its media
//! directory: a cartridge store, named by the scheme of the library's `media` URL
//! (`s3://…`: [`crate::objstore`]). This module says what a store must do and what its
//! settings are to the inventory; it parses none of them and names no store. A layer above
//! implements a kind of store, and the program that reads the inventory (the daemon, the
//! CLI) hands the kinds it has to the parse as [`StoreKinds`]: a new store plugs in there,
//! without the library, the drives or the inventory naming it.

use std::any::Any;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::device::tape::Backing;

/// One process's handle on a store of cartridges: which it holds, and each one's medium
/// and medium auxiliary memory.
pub trait CartridgeStore: Send + Sync + fmt::Debug {
    /// Who this process is in the store (an object-store gateway's name), for logs.
    fn name(&self) -> &str;
    /// The barcodes this process holds now, taking over what another of its processes
    /// took for it (`xcopy vault import`).
    fn reclaim(&self) -> io::Result<Vec<String>>;
    /// Cartridge `barcode` as a tape medium; writable only while this process holds it.
    fn open(&self, barcode: &str, writable: bool) -> io::Result<Box<dyn Backing>>;
    /// Cartridge `barcode`'s medium auxiliary memory as last written (empty: none yet).
    fn read_mam(&self, barcode: &str) -> io::Result<Vec<u8>>;
    /// Replaces cartridge `barcode`'s medium auxiliary memory.
    fn write_mam(&self, barcode: &str, bytes: &[u8]) -> io::Result<()>;
}

/// A library's `media` URL with its kind's settings, parsed and checked at inventory
/// parse: what opens the store when the library opens.
pub trait StoreSettings: Send + Sync + fmt::Debug + Any {
    fn open(&self) -> io::Result<Arc<dyn CartridgeStore>>;
    /// The same settings (a reload keeps a library whose configuration is unchanged).
    fn same(&self, other: &dyn StoreSettings) -> bool;
    /// For the kind's own code (`xcopy vault` reaches the store behind a library).
    fn as_any(&self) -> &dyn Any;
}

/// A kind of cartridge store: the URL scheme it serves and how its settings are read.
pub trait StoreKind: Send + Sync {
    /// The scheme of the `media` URLs it serves (`s3`).
    fn scheme(&self) -> &str;
    /// The top-level table of the configuration that holds its settings (`object_store`).
    fn table(&self) -> &str;
    /// The settings of library `library` whose `media` is `url`, from `table` (the
    /// configuration's table [`StoreKind::table`], if it has one); local state goes under
    /// `state_dir`. The error says what is wrong, for the inventory's field error.
    fn parse(
        &self,
        table: Option<&toml::Value>,
        url: &str,
        library: &str,
        state_dir: &Path,
    ) -> Result<Arc<dyn StoreSettings>, String>;
}

/// The kinds of cartridge store a program has, by scheme: what a library's `media` URL may
/// name. Empty: media are directories only.
#[derive(Clone, Default)]
pub struct StoreKinds {
    kinds: Vec<Arc<dyn StoreKind>>,
}

impl fmt::Debug for StoreKinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.kinds.iter().map(|k| k.scheme()))
            .finish()
    }
}

impl StoreKinds {
    /// These kinds and `kind` (replacing one of the same scheme).
    pub fn with(mut self, kind: Arc<dyn StoreKind>) -> Self {
        self.kinds.retain(|k| k.scheme() != kind.scheme());
        self.kinds.push(kind);
        self
    }

    /// The scheme of `media` when it is a URL (`SCHEME://…`, the scheme a letter then
    /// letters, digits, `+`, `-` or `.`, as RFC 3986 has it); None for a path.
    pub fn scheme_of(media: &str) -> Option<&str> {
        let (scheme, _) = media.split_once("://")?;
        let mut chars = scheme.chars();
        let first = chars.next()?;
        (first.is_ascii_alphabetic()
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
        .then_some(scheme)
    }

    /// The kind serving `scheme`.
    pub fn find(&self, scheme: &str) -> Option<&dyn StoreKind> {
        self.kinds
            .iter()
            .find(|k| k.scheme() == scheme)
            .map(|k| &**k)
    }

    /// The schemes served, for an error that says what `media` may be.
    pub fn schemes(&self) -> Vec<&str> {
        self.kinds.iter().map(|k| k.scheme()).collect()
    }
}

/// A library's store settings as its configuration holds them: compared by
/// [`StoreSettings::same`].
#[derive(Clone, Debug)]
pub struct StoreMedia(pub Arc<dyn StoreSettings>);

impl PartialEq for StoreMedia {
    fn eq(&self, other: &Self) -> bool {
        self.0.same(&*other.0)
    }
}

impl Eq for StoreMedia {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Settings(String);

    impl StoreSettings for Settings {
        fn open(&self) -> io::Result<Arc<dyn CartridgeStore>> {
            Err(io::Error::other("not in this test"))
        }
        fn same(&self, other: &dyn StoreSettings) -> bool {
            other.as_any().downcast_ref::<Self>() == Some(self)
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
    }

    struct Kind(&'static str);

    impl StoreKind for Kind {
        fn scheme(&self) -> &str {
            self.0
        }
        fn table(&self) -> &str {
            "t"
        }
        fn parse(
            &self,
            _: Option<&toml::Value>,
            url: &str,
            _: &str,
            _: &Path,
        ) -> Result<Arc<dyn StoreSettings>, String> {
            Ok(Arc::new(Settings(format!("{}:{url}", self.0))))
        }
    }

    #[test]
    fn a_media_url_has_a_scheme_and_a_path_has_none() {
        for (media, scheme) in [
            ("s3://bucket/prefix", Some("s3")),
            ("x+y.z-1://a", Some("x+y.z-1")),
            ("s3://", Some("s3")),
            ("/var/lib/xcopyd/media", None),
            ("media", None),
            ("://a", None),
            ("3s://a", None),
            ("dir/s3://a", None),
            ("a b://c", None),
        ] {
            assert_eq!(StoreKinds::scheme_of(media), scheme, "{media}");
        }
    }

    #[test]
    fn kinds_are_found_by_scheme_and_one_per_scheme() {
        let kinds = StoreKinds::default()
            .with(Arc::new(Kind("s3")))
            .with(Arc::new(Kind("gs")))
            .with(Arc::new(Kind("s3")));
        assert_eq!(kinds.schemes(), ["gs", "s3"]);
        assert_eq!(format!("{kinds:?}"), r#"["gs", "s3"]"#);
        assert_eq!(kinds.find("gs").map(|k| k.scheme()), Some("gs"));
        assert!(kinds.find("s4").is_none());
        let parse = |scheme, url| {
            kinds
                .find(scheme)
                .unwrap()
                .parse(None, url, "vtl0", Path::new("/"))
                .map(StoreMedia)
                .unwrap()
        };
        assert_eq!(parse("s3", "s3://a"), parse("s3", "s3://a"));
        assert_ne!(parse("s3", "s3://a"), parse("s3", "s3://b"));
        assert_ne!(parse("s3", "s3://a"), parse("gs", "s3://a"));
    }
}
