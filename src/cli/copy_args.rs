//! The arguments of `xcopy run`, `backup`, `restore` and `devices`, shared by the local
//! copy (`copy.rs`) and the copy sent to a remote copy manager (`remote.rs`).

use std::path::PathBuf;

use clap::Args;

use super::tape_position::{Placement, Source};

/// Options every copying subcommand shares.
#[derive(Clone, Debug, Args)]
pub struct Common {
    /// The device inventory (TOML; the daemon config's [[device]] tables). Default: the
    /// embedded one in the state directory (disk0 and tape0, created on first use).
    #[arg(short = 'd', long, value_name = "INV.toml")]
    pub devices: Option<PathBuf>,
    /// Print one JSON object as the last line of standard output.
    #[arg(short = 'j', long)]
    pub json: bool,
    /// Copy-manager limits (TOML, the [limits] keys); default: xcopyd's.
    #[arg(long, value_name = "TOML")]
    pub limits: Option<PathBuf>,
    /// No progress bar, even on a terminal.
    #[arg(short, long)]
    pub quiet: bool,
    /// 1 MiB buffers in each io_uring ring (4..=1024): the copy engine's and the tape
    /// image's, the memory a local copy uses for data, whatever its size.
    #[arg(long, value_name = "N", default_value_t = crate::copy::engine::BUFFERS)]
    pub buffers: u16,
    /// Read the copy's sources at most RATE bytes per second (sizes as --buffers: 100M,
    /// 200MiB; a local copy only). The inventory's per-device `limit` applies as well.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub limit: Option<u64>,
}

/// `--limit`: a size per second, at least 1.
fn parse_rate(text: &str) -> Result<u64, String> {
    match crate::size::parse(text)? {
        0 => Err("must be at least 1 byte per second".into()),
        n => Ok(n),
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: Common,
    /// The EXTENDED COPY parameter list (binary, or hex with --inhex; - for stdin).
    pub list: PathBuf,
    /// The list is hex text (sg3_utils --inhex style).
    #[arg(long)]
    pub inhex: bool,
    /// Send the list to a remote copy manager instead: iscsi://HOST[:PORT]/IQN/LUN (the
    /// CSCDs must name devices that copy manager can resolve, e.g. by E4h designator).
    #[arg(long, value_name = "iscsi://HOST[:PORT]/IQN/LUN")]
    pub target: Option<String>,
}

#[derive(Clone, Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub common: Common,
    /// Source disk: NAME[:LBA[+BLOCKS]] (default: the whole disk).
    #[arg(long, value_name = "DISK[:LBA[+BLOCKS]]")]
    pub from: String,
    /// Destination tape (inventory name), or a library's cartridge LIBRARY:BARCODE (loaded
    /// into a free drive for the copy and put back after it).
    #[arg(long, value_name = "TAPE")]
    pub to: String,
    /// Bytes per tape record (variable mode) or per WRITE (fixed mode): sg3_utils number
    /// syntax, e.g. 256k, 1m, 0x40000.
    #[arg(short = 't', long, default_value = "256k", value_parser = parse_size)]
    pub transfer_length: u64,
    /// Write a filemark after the data.
    #[arg(long)]
    pub filemark: bool,
    /// Write from the beginning of the tape: everything on it is lost. (Default: append
    /// after the last data, as `mt eod` and a write would, as a new tape file.)
    #[arg(long, conflicts_with = "position")]
    pub overwrite: bool,
    /// Write from the start of tape file FILE (0 = the beginning): it and every later file
    /// are lost.
    #[arg(long, value_name = "FILE", value_parser = parse_u32)]
    pub position: Option<u32>,
    /// Send the list to a remote copy manager instead: iscsi://HOST[:PORT]/IQN/LUN. The
    /// disk and tape are then `lun:N` of that target (disk: `lun:N[:LBA[+BLOCKS]]`) or a
    /// designator (naa./eui./t10.): one of the target's LUNs is resolved as lun:N is;
    /// another device so named needs --block-length and LBA+BLOCKS for a disk and is taken
    /// to be in variable mode for a tape.
    #[arg(long, value_name = "iscsi://HOST[:PORT]/IQN/LUN")]
    pub target: Option<String>,
    /// The disk's logical block length, for a disk named by designator with --target.
    #[arg(long, value_parser = parse_size)]
    pub block_length: Option<u64>,
}

impl BackupArgs {
    pub(super) fn placement(&self) -> Placement {
        match (self.overwrite, self.position) {
            (true, _) => Placement::Overwrite,
            (false, Some(n)) => Placement::File(n),
            (false, None) => Placement::Append,
        }
    }
}

#[derive(Clone, Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub common: Common,
    /// Source tape (inventory name), read from its current position; or a library's
    /// cartridge LIBRARY:BARCODE (loaded into a free drive, read from its beginning).
    #[arg(long, value_name = "TAPE")]
    pub from: String,
    /// Destination disk: NAME[:LBA[+BLOCKS]] (default: the whole disk).
    #[arg(long, value_name = "DISK[:LBA[+BLOCKS]]")]
    pub to: String,
    /// Record size the backup was written with.
    #[arg(short = 't', long, default_value = "256k", value_parser = parse_size)]
    pub transfer_length: u64,
    /// Position the tape at its beginning first (LOCATE to logical object 0).
    #[arg(long, conflicts_with = "file")]
    pub rewind: bool,
    /// Read tape file FILE (the number `xcopy backup` printed): rewind, then space over
    /// FILE filemarks.
    #[arg(long, value_name = "FILE", value_parser = parse_u32)]
    pub file: Option<u32>,
    /// Send the list to a remote copy manager instead: iscsi://HOST[:PORT]/IQN/LUN. The
    /// disk and tape are then `lun:N` of that target (disk: `lun:N[:LBA[+BLOCKS]]`) or a
    /// designator (naa./eui./t10.): one of the target's LUNs is resolved as lun:N is;
    /// another device so named needs --block-length and LBA+BLOCKS for a disk and is taken
    /// to be in variable mode for a tape.
    #[arg(long, value_name = "iscsi://HOST[:PORT]/IQN/LUN")]
    pub target: Option<String>,
    /// The disk's logical block length, for a disk named by designator with --target.
    #[arg(long, value_parser = parse_size)]
    pub block_length: Option<u64>,
}

impl RestoreArgs {
    pub(super) fn source(&self) -> Source {
        match (self.rewind, self.file) {
            (true, _) => Source::File(0),
            (false, Some(n)) => Source::File(n),
            (false, None) => Source::Current,
        }
    }
}

#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// The device inventory (TOML). Default: the embedded one in the state directory.
    #[arg(short = 'd', long, value_name = "INV.toml")]
    pub devices: Option<PathBuf>,
    /// Print one JSON object as the last line of standard output.
    #[arg(short = 'j', long)]
    pub json: bool,
}

/// A tape file number: decimal or 0x hex.
fn parse_u32(text: &str) -> Result<u32, String> {
    let n = parse_size(text)?;
    u32::try_from(n).map_err(|_| format!("{text:?} is larger than 4294967295"))
}

/// A number the sg3_utils way ([`crate::size::parse`]).
pub fn parse_size(text: &str) -> Result<u64, String> {
    crate::size::parse(text)
}
