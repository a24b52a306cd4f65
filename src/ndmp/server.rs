//! The NDMP listener: one thread accepting connections, one thread per session.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::services::Services;
use super::session::Session;

/// A running NDMP server.
pub struct NdmpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl NdmpServer {
    pub fn start(services: Arc<Services>) -> io::Result<Self> {
        let listener = TcpListener::bind(&services.config.listen)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ndmp-listen".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    let stream = match stream {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!(error = %e, "ndmp: accept failed");
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let peer = stream.peer_addr().ok();
                    tracing::info!(?peer, "ndmp: connection");
                    match Session::new(services.clone(), &stream) {
                        Ok(session) => {
                            let spawned = std::thread::Builder::new()
                                .name("ndmp-session".into())
                                .spawn(move || session.run(stream));
                            if let Err(e) = spawned {
                                tracing::warn!(error = %e, "ndmp: no thread for a session");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "ndmp: session not started"),
                    }
                }
            })?;
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for NdmpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
