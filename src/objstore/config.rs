//! The `[object_store]` table (DESIGN.md "Object store") and a library's
//! `media = "s3://BUCKET/PREFIX"`:
//!
//! | key | meaning |
//! |---|---|
//! | `endpoint` | the S3 API, `http://` or `https://` |
//! | `region` | default `us-east-1` |
//! | `access_key_id`, `secret_access_key` | default: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` |
//! | `gateway` | this daemon's name in leases (required) |
//! | `lease_secs` | lease time (default 30; renewed every third of it) |
//! | `piece_mib` | piece size (default 64) |
//! | `cache_mib` | write-back cache bound (default 1024) |
//! | `timeout_secs`, `tries` | per request (default 30, 4) |

use std::path::Path;
use std::time::Duration;

use super::{Endpoint, GatewayConfig, Params};

fn text(t: &toml::Table, key: &str) -> Result<Option<String>, String> {
    match t.get(key) {
        None => Ok(None),
        Some(toml::Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(format!("object_store.{key}: must be a non-empty string")),
    }
}

fn number(
    t: &toml::Table,
    key: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, String> {
    match t.get(key) {
        None => Ok(default),
        Some(v) => v
            .as_integer()
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| range.contains(n))
            .ok_or_else(|| format!("object_store.{key}: must be an integer in {range:?}")),
    }
}

/// The gateway settings for library `library` whose media is `url` (`s3://BUCKET/PREFIX`),
/// from the config's `[object_store]` table; its cache goes under `state_dir`.
pub fn parse(
    table: Option<&toml::Value>,
    url: &str,
    library: &str,
    state_dir: &Path,
) -> Result<GatewayConfig, String> {
    let rest = url.strip_prefix("s3://").ok_or("must start with s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err("s3:// needs a bucket".into());
    }
    let prefix = match prefix.trim_matches('/') {
        "" => String::new(),
        p => format!("{p}/"),
    };
    let t = match table {
        Some(toml::Value::Table(t)) => t,
        Some(_) => return Err("[object_store] must be a table".into()),
        None => return Err("s3:// media need an [object_store] table".into()),
    };
    for key in t.keys() {
        if ![
            "endpoint",
            "region",
            "access_key_id",
            "secret_access_key",
            "gateway",
            "lease_secs",
            "piece_mib",
            "cache_mib",
            "timeout_secs",
            "tries",
        ]
        .contains(&key.as_str())
        {
            return Err(format!("object_store.{key}: unknown field"));
        }
    }
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let access_key_id = text(t, "access_key_id")?
        .or_else(|| env("AWS_ACCESS_KEY_ID"))
        .ok_or("object_store.access_key_id: missing (or AWS_ACCESS_KEY_ID)")?;
    let secret_access_key = text(t, "secret_access_key")?
        .or_else(|| env("AWS_SECRET_ACCESS_KEY"))
        .ok_or("object_store.secret_access_key: missing (or AWS_SECRET_ACCESS_KEY)")?;
    let piece = number(t, "piece_mib", 64, 5..=4096)? << 20;
    Ok(GatewayConfig {
        endpoint: Endpoint {
            url: text(t, "endpoint")?.ok_or("object_store.endpoint: missing")?,
            region: text(t, "region")?.unwrap_or_else(|| "us-east-1".into()),
            bucket: bucket.to_string(),
            access_key_id,
            secret_access_key,
            timeout: Duration::from_secs(number(t, "timeout_secs", 30, 1..=3600)?),
            tries: number(t, "tries", 4, 1..=20)? as u32,
        },
        prefix,
        gateway: text(t, "gateway")?.ok_or("object_store.gateway: missing")?,
        lease: Duration::from_secs(number(t, "lease_secs", 30, 3..=3600)?),
        params: Params {
            piece_size: piece,
            cache_bytes: (number(t, "cache_mib", 1024, 64..=1 << 20)? << 20).max(2 * piece),
            ..Params::default()
        },
        cache_dir: state_dir.join(format!("{library}.cache")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_url_and_table() {
        let t: toml::Table = toml::from_str(
            "[object_store]\nendpoint = \"http://127.0.0.1:8333\"\naccess_key_id = \"k\"\n\
             secret_access_key = \"s\"\ngateway = \"gw-a\"\nlease_secs = 10\npiece_mib = 8\n",
        )
        .unwrap();
        let c = parse(
            t.get("object_store"),
            "s3://tapes/vtl0/",
            "vtl0",
            Path::new("/st"),
        )
        .unwrap();
        assert_eq!(c.endpoint.bucket, "tapes");
        assert_eq!(c.prefix, "vtl0/");
        assert_eq!(c.gateway, "gw-a");
        assert_eq!(c.lease, Duration::from_secs(10));
        assert_eq!(c.params.piece_size, 8 << 20);
        assert_eq!(c.cache_dir, Path::new("/st/vtl0.cache"));
        let bare = parse(t.get("object_store"), "s3://tapes", "v", Path::new("/st")).unwrap();
        assert_eq!(bare.prefix, "");
        assert_eq!(
            parse(None, "s3://tapes", "v", Path::new("/")).unwrap_err(),
            "s3:// media need an [object_store] table"
        );
        assert_eq!(
            parse(t.get("object_store"), "s3:///x", "v", Path::new("/")).unwrap_err(),
            "s3:// needs a bucket"
        );
        let mut bad = t.clone();
        bad.get_mut("object_store")
            .and_then(|v| v.as_table_mut())
            .unwrap()
            .insert("colour".into(), toml::Value::from("red"));
        assert_eq!(
            parse(bad.get("object_store"), "s3://b", "v", Path::new("/")).unwrap_err(),
            "object_store.colour: unknown field"
        );
    }
}
