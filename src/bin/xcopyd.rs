//! xcopyd, the daemon: serves the inventory's devices as iSCSI LUNs, each a copy manager.
//! See `xcopyd::daemon` for the configuration; this file only parses arguments, sets up
//! logging and handles signals (SIGTERM/SIGINT: graceful stop; SIGHUP: reload).

use anyhow::Context;
use clap::Parser;
use nix::sys::signal::{SigSet, Signal};
use sd_notify::NotifyState;
use xcopyd::daemon::{Daemon, DaemonConfig};

use xcopyd::cli::XcopydArgs as Args;

/// The configuration; the embedded default's images are created unless `create` is false
/// (`--check` creates nothing).
fn load(args: &Args, create: bool) -> anyhow::Result<DaemonConfig> {
    let mut config = match &args.config {
        Some(path) => DaemonConfig::load(path)?,
        None => {
            let dir = args
                .state_dir
                .clone()
                .unwrap_or_else(xcopyd::state::state_dir);
            if create {
                DaemonConfig::embedded(&dir)?
            } else {
                DaemonConfig::parse(xcopyd::daemon::EMBEDDED_DEFAULT, &dir)?
            }
        }
    };
    if let Some(listen) = &args.listen {
        config.listen = listen.clone();
        config.check_exposure()?;
    }
    if config.admin_socket.is_none() {
        // The default: the configured state directory, else the one given or the
        // installation's. Best effort: a daemon run from a config elsewhere still serves
        // its LUNs when that directory cannot be made or another xcopyd answers there.
        let dir = config
            .state_dir
            .clone()
            .or_else(|| args.state_dir.clone())
            .unwrap_or_else(xcopyd::state::state_dir);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), "state directory: {e}");
        }
        config.admin_socket = Some(dir.join("xcopyd.sock"));
        config.admin_socket_implicit = true;
    }
    Ok(config)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xcopyd: {}", xcopyd::cli::error_text(&e));
            std::process::ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    // A few malloc arenas, not 8 per core: each reserves 64 MiB of address space.
    xcopyd::sys::malloc::limit_arenas(4);
    logging(args.verbose);
    if args.check {
        return check(args);
    }

    // Block the signals before any thread starts (threads inherit the mask); this thread
    // then takes them synchronously with sigwait.
    let mut signals = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
    ] {
        signals.add(s);
    }
    signals.thread_block().context("blocking signals")?;

    let config = load(args, true)?;
    let mut daemon = Daemon::start(config)?;
    notify(&[NotifyState::Ready]);
    if let Some(every) = sd_notify::watchdog_enabled() {
        watchdog(daemon.local_addr(), every);
    }
    loop {
        match signals.wait().context("waiting for signals")? {
            Signal::SIGHUP => {
                tracing::info!("SIGHUP: reloading the configuration");
                notify(&[NotifyState::Reloading]);
                if let Ok(now) = NotifyState::monotonic_usec_now() {
                    notify(&[now]);
                }
                match load(args, true).and_then(|c| daemon.reload(c).map_err(Into::into)) {
                    Ok(()) => {}
                    Err(e) => {
                        tracing::error!("reload failed, keeping the old configuration: {e:#}")
                    }
                }
                notify(&[NotifyState::Ready]);
            }
            Signal::SIGUSR1 => progress(&daemon),
            s => {
                tracing::info!(signal = %s, "stopping");
                notify(&[NotifyState::Stopping]);
                let grace = daemon.config().shutdown_grace;
                daemon.shutdown(grace);
                return Ok(());
            }
        }
    }
}

/// Logs to stderr, one plain line per event; under systemd's journal (JOURNAL_STREAM names
/// our stderr) straight to journald instead, with each event's priority and no timestamp
/// of our own (the journal keeps one).
fn logging(verbose: u8) {
    let level = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level))
    };
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        if let Ok(journald) = tracing_journald::layer() {
            use tracing_subscriber::prelude::*;
            tracing_subscriber::registry()
                .with(filter())
                .with(journald.with_syslog_identifier("xcopyd".into()))
                .init();
            return;
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

/// `xcopyd --check`: the configuration parses, every key is known, device images exist or
/// will be created, the listen address parses and is allowed; nothing is opened.
fn check(args: &Args) -> anyhow::Result<()> {
    let config = load(args, false)?;
    for d in &config.inventory.devices {
        let missing = !d.path.exists();
        let created = d.size.is_some() || d.kind == xcopyd::device::inventory::DeviceKind::Tape;
        if missing && !created {
            anyhow::bail!("device {:?}: {} does not exist", d.name, d.path.display());
        }
    }
    let _: std::net::SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(&config.listen)
        .ok()
        .and_then(|mut a| a.next())
        .with_context(|| format!("[iscsi] listen = {:?} is not an address", config.listen))?;
    println!(
        "configuration OK: {} devices, {} LUNs, iSCSI on {} as {}, {}",
        config.inventory.devices.len(),
        config.luns.len(),
        config.listen,
        config.target,
        if config.initiators.is_anonymous() {
            "any initiator (no [[initiator]] table)".to_string()
        } else {
            "only the [[initiator]] table's names, with CHAP".to_string()
        }
    );
    Ok(())
}

/// Tells systemd (Type=notify) where we are; nothing when not started by it.
fn notify(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

/// Pings systemd's watchdog at half its interval while the iSCSI listener accepts a
/// connection (a daemon whose accept loop is stuck stops pinging and is restarted).
fn watchdog(addr: std::net::SocketAddr, every: std::time::Duration) {
    let _ = std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || loop {
            std::thread::sleep(every / 2);
            let probe = std::net::TcpStream::connect_timeout(&addr, every / 4);
            if probe.is_ok() {
                notify(&[NotifyState::Watchdog]);
            } else {
                tracing::error!(%addr, "watchdog: the iSCSI listener does not accept");
            }
        });
}

/// SIGUSR1: every running copy's progress, one line each (as ddpt prints on SIGUSR1).
fn progress(daemon: &Daemon) {
    let copies = daemon.registry().list();
    let running: Vec<_> = copies.iter().filter(|c| c.state == "running").collect();
    if running.is_empty() {
        tracing::info!("SIGUSR1: no copy running");
    }
    for c in running {
        tracing::info!(
            copy = c.id,
            initiator = %c.request.initiator,
            list_id = c.request.list_id,
            segments = format!("{}/{}", c.segments_processed, c.request.segments),
            bytes = c.bytes,
            total = c.request.total_bytes,
            rate = %format!("{:.1} MB/s", c.rate / 1e6),
            eta = %c.eta.map_or("-".into(), |e| format!("{e:.0} s")),
            "SIGUSR1: copy in progress"
        );
    }
}
