//! The `xcopy` command line (sg3_utils conventions: short and long options, `-v`, `--json`
//! whose last stdout line is one JSON object, exit status = sense key, 1 for usage or
//! environment errors).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use generate::XcopydArgs;

pub(crate) mod copy;
mod copy_args;
mod decode;
mod devices;
mod discover;
mod generate;
pub mod input;
mod library;
mod ndmp;
mod progress;
mod remote;
mod report;
mod results_page;
mod status;
mod tape_position;
mod vault;

/// xcopy: drive and inspect an EXTENDED COPY (LID1) third-party copy manager.
#[derive(Debug, Parser)]
#[command(name = "xcopy", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// More detail on stderr, for every subcommand (repeatable, as sg3_utils' -v): -v the
    /// CDBs sent and the status and sense that came back, with what the copy manager and
    /// the devices log; -vv everything. RUST_LOG, when set, decides instead.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode an EXTENDED COPY parameter list; an invalid list prints the sense a copy
    /// manager would return, with the field pointer, and exits with the sense key.
    Decode(decode::DecodeArgs),
    /// Build a parameter list from a TOML description and write it (binary, or hex with -H).
    Encode(decode::EncodeArgs),
    /// Execute a parameter list through the local copy manager over an inventory's devices.
    Run(copy::RunArgs),
    /// Copy a disk range to a tape (EXTENDED COPY 00h segments, then an optional filemark).
    Backup(copy::BackupArgs),
    /// Copy a tape's records back to a disk range (EXTENDED COPY 01h segments).
    Restore(copy::RestoreArgs),
    /// Ask a remote copy manager (iSCSI) for one RECEIVE COPY RESULTS page, decoded.
    Results(remote::ResultsArgs),
    /// List the inventory's devices with their designators (like lsscsi + sg_vpd -p di).
    Devices(copy::DevicesArgs),
    /// Administer a tape library, locally or through a running xcopyd (like mtx).
    Library(library::LibraryArgs),
    /// Cartridges in an object store: the vault and every gateway's (s3:// media).
    Vault(vault::VaultArgs),
    /// The running daemon's copies (running, then the last finished), or follow one.
    Status(status::StatusArgs),
    /// Stop one of the running daemon's copies.
    Abort(status::AbortArgs),
    /// A small NDMP v4 DMA: query a server, or image backup/restore of a disk to a tape
    /// (local, or three-way with --tape-server).
    Ndmp(ndmp::NdmpArgs),
    /// Find the SCSI devices behind /dev/sg* (INQUIRY, VPD 80h/83h, capacity) and merge
    /// them into an inventory (like NetBackup's bptpcinfo).
    Discover(discover::DiscoverArgs),
    /// Man pages and shell completions, generated from these definitions.
    #[command(hide = true)]
    Generate(generate::GenerateArgs),
}

/// Runs the CLI; returns the process exit status.
pub fn main() -> ExitCode {
    progress::block_sigusr1();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    logging(cli.verbose);
    let verbose = cli.verbose;
    let result = match cli.command {
        Command::Decode(args) => decode::decode(&args, verbose),
        Command::Encode(args) => decode::encode(&args),
        Command::Run(args) => copy::run(&args),
        Command::Discover(args) => discover::discover(&args, verbose),
        Command::Generate(args) => generate::generate(&args),
        Command::Backup(args) => copy::backup(&args),
        Command::Restore(args) => copy::restore(&args),
        Command::Results(args) => remote::results(&args),
        Command::Devices(args) => devices::devices(&args),
        Command::Library(args) => library::library(&args),
        Command::Vault(args) => vault::vault(&args),
        Command::Status(args) => status::status(&args),
        Command::Abort(args) => status::abort(&args),
        Command::Ndmp(args) => ndmp::ndmp(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("xcopy: {}", error_text(&e));
            ExitCode::from(1)
        }
    }
}

/// What the library logs reaches stderr: warnings and errors by default (a refused device,
/// a lock held elsewhere), with `-v` debug (every CDB, status and sense), `-vv` all.
fn logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .try_init();
}

/// An error and its causes, `: `-separated, leaving out a cause whose text the message
/// before it already carries (error types that print their source in their own message).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}
