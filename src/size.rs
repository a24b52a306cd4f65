//! The one number parser for sizes and counts, in the CLI's options and the config files
//! alike, the sg3_utils way: decimal; `0x` or a trailing `h` for hex; and the suffixes c (1),
//! w (2), b (512), k/K/KiB (1024), KB/kB (1000), m/M/MiB, MB, g/G/GiB, GB, t/T/TiB, TB (the
//! `iB` forms in any case: `16MiB`, `16mib`).

/// `text` as a number of bytes (or blocks, or records: the caller's unit).
pub fn parse(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let bad = || format!("{text:?} is not a number (e.g. 262144, 256k, 1m, 16MiB, 0x40000)");
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).map_err(|_| bad());
    }
    if let Some(hex) = t.strip_suffix('h').or_else(|| t.strip_suffix('H')) {
        if !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return u64::from_str_radix(hex, 16).map_err(|_| bad());
        }
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let binary = |c: char| match c.to_ascii_lowercase() {
        'k' => Some(1u64 << 10),
        'm' => Some(1 << 20),
        'g' => Some(1 << 30),
        't' => Some(1 << 40),
        _ => None,
    };
    let multiplier: u64 = match suffix.trim() {
        "" | "c" => 1,
        "w" => 2,
        "b" => 512,
        "k" | "K" | "m" | "M" | "g" | "G" | "t" | "T" => {
            binary(suffix.trim().chars().next().unwrap_or('x')).ok_or_else(bad)?
        }
        "KB" | "kB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        s if s.len() == 3 && s[1..].eq_ignore_ascii_case("ib") => {
            s.chars().next().and_then(binary).ok_or_else(bad)?
        }
        _ => return Err(bad()),
    };
    n.checked_mul(multiplier).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn sg3_utils_numbers_and_binary_multiples() {
        assert_eq!(parse("262144"), Ok(262144));
        assert_eq!(parse("256k"), Ok(262144));
        assert_eq!(parse("1m"), Ok(1 << 20));
        assert_eq!(parse("0x40000"), Ok(0x40000));
        assert_eq!(parse("40000h"), Ok(0x40000));
        assert_eq!(parse("2KB"), Ok(2000));
        assert_eq!(parse("3b"), Ok(1536));
        assert_eq!(parse("2w"), Ok(4));
        assert_eq!(parse("16MiB"), Ok(16 << 20));
        assert_eq!(parse("16mib"), Ok(16 << 20));
        assert_eq!(parse("4GiB"), Ok(4 << 30));
        assert_eq!(parse("512M"), Ok(512 << 20));
        assert_eq!(parse("1T"), Ok(1 << 40));
        assert_eq!(parse(" 7 "), Ok(7));
        for bad in [
            "12q",
            "",
            "k",
            "0x",
            "1.5G",
            "16XiB",
            "99999999999999999999",
            "20000000T",
        ] {
            assert!(parse(bad).unwrap_err().contains("not a number"), "{bad}");
        }
    }
}
