//! LTO generations: what a cartridge's barcode suffix says about it (`L5` to `L9`), what a
//! drive of a generation reads and writes, and how the drive identifies itself (IBM
//! ULT3580-TD*, the identity LTFS and backup applications look for).
//!
//! Densities as LTO drives report them in REPORT DENSITY SUPPORT (the values mhvtl's
//! ULT3580 personality carries: density code, bits per mm, 12.7 mm width, tracks, native
//! capacity, "LTO-CVE" names). Compatibility (LTO Program): up to LTO-7 a drive writes
//! its own and the previous generation and reads one more back; LTO-8 and LTO-9 write
//! their own and the previous generation only.

/// The generations a drive can be.
pub const GENERATIONS: std::ops::RangeInclusive<u8> = 5..=9;

/// The generation a drive is when its entry names none.
pub const DEFAULT_GENERATION: u8 = 9;

/// One LTO density (a REPORT DENSITY SUPPORT descriptor's fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Density {
    pub generation: u8,
    pub code: u8,
    pub bits_per_mm: u32,
    pub tracks: u16,
    /// Native capacity in megabytes (10^6 bytes).
    pub capacity_mb: u32,
    pub name: &'static str,
    pub description: &'static str,
}

const DENSITIES: [Density; 5] = [
    Density {
        generation: 5,
        code: 0x58,
        bits_per_mm: 15142,
        tracks: 1280,
        capacity_mb: 1_500_000,
        name: "U-516",
        description: "Ultrium 5/16T",
    },
    Density {
        generation: 6,
        code: 0x5a,
        bits_per_mm: 15142,
        tracks: 2176,
        capacity_mb: 2_500_000,
        name: "U-616",
        description: "Ultrium 6/16T",
    },
    Density {
        generation: 7,
        code: 0x5c,
        bits_per_mm: 19107,
        tracks: 3584,
        capacity_mb: 6_000_000,
        name: "U-732",
        description: "Ultrium 7/32T",
    },
    Density {
        generation: 8,
        code: 0x5e,
        bits_per_mm: 20669,
        tracks: 6656,
        capacity_mb: 12_000_000,
        name: "U-832",
        description: "Ultrium 8/32T",
    },
    Density {
        generation: 9,
        code: 0x60,
        bits_per_mm: 21456,
        tracks: 8960,
        capacity_mb: 18_000_000,
        name: "U-932",
        description: "Ultrium 9/48T",
    },
];

/// The density of LTO generation `generation` (5-9; anything else gets LTO-9's).
pub fn density(generation: u8) -> Density {
    DENSITIES
        .iter()
        .copied()
        .find(|d| d.generation == generation)
        .unwrap_or(DENSITIES[4])
}

/// The generation a barcode's two-character suffix names (`XC0001L9` is LTO-9); None for
/// a barcode without an `L5`-`L9` suffix.
pub fn media_generation(barcode: &str) -> Option<u8> {
    let suffix = barcode.get(barcode.len().checked_sub(2)?..)?;
    match suffix.as_bytes() {
        [b'L', g @ b'5'..=b'9'] => Some(g - b'0'),
        _ => None,
    }
}

/// Native capacity in bytes of a cartridge of `generation`.
pub fn capacity(generation: u8) -> u64 {
    u64::from(density(generation).capacity_mb) * 1_000_000
}

/// What a drive may do with a cartridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    ReadOnly,
    /// The drive cannot use the cartridge (INCOMPATIBLE MEDIUM INSTALLED).
    None,
}

/// What a drive of `drive` generation does with a cartridge of `media` generation.
pub fn access(drive: u8, media: u8) -> Access {
    if media == drive || media + 1 == drive {
        Access::ReadWrite
    } else if drive <= 7 && media + 2 == drive {
        Access::ReadOnly
    } else {
        Access::None
    }
}

/// The generations a drive writes, its own (the default density) first.
pub fn writable(drive: u8) -> [u8; 2] {
    [drive, drive.saturating_sub(1)]
}

/// INQUIRY vendor, product and revision of a drive of `generation`: an IBM LTO drive.
pub fn identity(generation: u8) -> (&'static str, String, &'static str) {
    ("IBM", format!("ULT3580-TD{generation}"), "XC01")
}

/// Where early warning starts on a cartridge of `capacity` bytes: 1/64 of the medium
/// before its end, at most 4 GiB (an LTO drive's early warning zone is a few wraps).
pub fn early_warning_zone(capacity: u64) -> u64 {
    (capacity / 64).min(4 << 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barcode_suffixes_and_densities() {
        assert_eq!(media_generation("XC0001L9"), Some(9));
        assert_eq!(media_generation("XC0001L5"), Some(5));
        for none in [
            "XC0001L4", "XC0001", "L", "", "XC0001l9", "CLN001CU", "ABC123M8",
        ] {
            assert_eq!(media_generation(none), None, "{none}");
        }
        assert_eq!(capacity(8), 12_000_000_000_000);
        assert_eq!((density(9).code, density(9).name), (0x60, "U-932"));
        assert_eq!(density(6).code, 0x5a);
        assert_eq!(density(42).generation, 9);
    }

    #[test]
    fn drive_generations_read_and_write_as_lto_does() {
        assert_eq!(access(9, 9), Access::ReadWrite);
        assert_eq!(access(9, 8), Access::ReadWrite);
        assert_eq!(access(9, 7), Access::None);
        assert_eq!(access(7, 5), Access::ReadOnly);
        assert_eq!(access(8, 6), Access::None);
        assert_eq!(access(6, 7), Access::None);
        assert_eq!(writable(8), [8, 7]);
        assert_eq!(identity(9).1, "ULT3580-TD9");
        assert_eq!(early_warning_zone(64 << 20), 1 << 20);
        assert_eq!(early_warning_zone(u64::MAX), 4 << 30);
    }
}
