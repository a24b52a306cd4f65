//! xcopyd, the daemon: serves the inventory's devices as iSCSI LUNs, each a copy manager.
//! See `xcopyd::daemon` for the configuration; this file only parses arguments, sets up
//! logging and handles signals (SIGTERM/SIGINT: graceful stop; SIGHUP: reload).

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use nix::sys::signal::{SigSet, Signal};
use xcopyd::daemon::{Daemon, DaemonConfig};

#[derive(Parser, Debug)]
#[command(
    name = "xcopyd",
    version,
    about = "SCSI third-party copy manager (EXTENDED COPY) over iSCSI"
)]
struct Args {
    /// Daemon configuration (TOML: [iscsi], [[lun]], [[device]], [limits], [daemon]).
    /// Without it: a 64 MiB disk and a tape image in the state directory.
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// Where the default configuration keeps its images.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Listen address, overriding the configuration's [iscsi] listen.
    #[arg(short, long)]
    listen: Option<String>,
    /// More logging (-v debug, -vv trace); RUST_LOG, when set, wins.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

fn load(args: &Args) -> anyhow::Result<DaemonConfig> {
    let mut config = match &args.config {
        Some(path) => DaemonConfig::load(path)?,
        None => {
            let dir = args
                .state_dir
                .clone()
                .unwrap_or_else(xcopyd::state::state_dir);
            DaemonConfig::embedded(&dir)?
        }
    };
    if let Some(listen) = &args.listen {
        config.listen = listen.clone();
        config.check_exposure()?;
    }
    Ok(config)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // A few malloc arenas, not 8 per core: each reserves 64 MiB of address space.
    xcopyd::sys::malloc::limit_arenas(4);
    let level = match args.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();

    // Block the signals before any thread starts (threads inherit the mask); this thread
    // then takes them synchronously with sigwait.
    let mut signals = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        signals.add(s);
    }
    signals.thread_block().context("blocking signals")?;

    let config = load(&args)?;
    let mut daemon = Daemon::start(config)?;
    loop {
        match signals.wait().context("waiting for signals")? {
            Signal::SIGHUP => {
                tracing::info!("SIGHUP: reloading the configuration");
                match load(&args).and_then(|c| daemon.reload(c).map_err(Into::into)) {
                    Ok(()) => {}
                    Err(e) => {
                        tracing::error!("reload failed, keeping the old configuration: {e:#}")
                    }
                }
            }
            s => {
                tracing::info!(signal = %s, "stopping");
                let grace = daemon.config().shutdown_grace;
                daemon.shutdown(grace);
                return Ok(());
            }
        }
    }
}
