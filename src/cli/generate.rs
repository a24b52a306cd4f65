//! Man pages and shell completions, generated from the same clap definitions that parse
//! the command lines (clap_mangen, clap_complete): `xcopy generate man DIR`, `xcopy
//! generate completions SHELL [--for xcopyd]`. Also the daemon's arguments, which live here
//! so that its man page can be generated with the CLI's.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, Parser, Subcommand};
use clap_complete::Shell;

/// The daemon's command line (`src/bin/xcopyd.rs`).
#[derive(Parser, Debug)]
#[command(
    name = "xcopyd",
    version,
    about = "SCSI third-party copy manager (EXTENDED COPY) over iSCSI"
)]
pub struct XcopydArgs {
    /// Daemon configuration (TOML: [iscsi], [[lun]], [[device]], [limits], [daemon]).
    /// Without it: a 64 MiB disk and a tape image in the state directory.
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// Where the default configuration keeps its images.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Listen address, overriding the configuration's [iscsi] listen.
    #[arg(short, long)]
    pub listen: Option<String>,
    /// More logging (-v debug, -vv trace); RUST_LOG, when set, wins.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Check the configuration (syntax, keys, device paths, the listen address) and exit:
    /// 0 when it would start, 1 with the reason otherwise. Nothing is opened or created.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub what: Generate,
}

#[derive(Debug, Subcommand)]
pub enum Generate {
    /// Write xcopy.1, one xcopy-SUBCOMMAND.1 per subcommand, and xcopyd.8 into DIR.
    Man { dir: PathBuf },
    /// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell).
    Completions {
        shell: Shell,
        /// The program to complete: xcopy or xcopyd.
        #[arg(long = "for", default_value = "xcopy")]
        program: String,
    },
}

pub fn generate(args: &GenerateArgs) -> Result<u8> {
    match &args.what {
        Generate::Man { dir } => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let xcopy = super::Cli::command();
            write_man(dir, &xcopy, "1")?;
            for sub in xcopy.get_subcommands().filter(|s| !s.is_hide_set()) {
                let name = format!("xcopy-{}", sub.get_name());
                let cmd = sub.clone().name(name.clone()).display_name(name);
                write_man(dir, &cmd, "1")?;
            }
            write_man(dir, &XcopydArgs::command(), "8")?;
        }
        Generate::Completions { shell, program } => {
            let mut cmd = match program.as_str() {
                "xcopy" => super::Cli::command(),
                "xcopyd" => XcopydArgs::command(),
                other => anyhow::bail!("--for {other:?}: xcopy or xcopyd"),
            };
            let name = cmd.get_name().to_string();
            // Into a buffer first: clap_complete panics when its writer fails (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cmd, name, &mut script);
            std::io::stdout().write_all(&script)?;
        }
    }
    Ok(0)
}

fn write_man(dir: &Path, cmd: &clap::Command, section: &str) -> Result<()> {
    let name = cmd.get_name().to_string();
    let man = clap_mangen::Man::new(cmd.clone()).section(section);
    let mut out = Vec::new();
    man.render(&mut out)?;
    let path = dir.join(format!("{name}.{section}"));
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_for_every_subcommand_and_the_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let args = GenerateArgs {
            what: Generate::Man {
                dir: dir.path().to_path_buf(),
            },
        };
        assert_eq!(generate(&args).unwrap(), 0);
        let page = std::fs::read_to_string(dir.path().join("xcopy-backup.1")).unwrap();
        assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{}", &page[..80]);
        assert!(page.contains(".TH xcopy-backup 1"), "the page's title");
        assert!(page.contains("\\-\\-filemark"), "an option of backup");
        let daemon = std::fs::read_to_string(dir.path().join("xcopyd.8")).unwrap();
        assert!(daemon.contains("\\-\\-check"));
        for sub in super::super::Cli::command().get_subcommands() {
            let path = dir.path().join(format!("xcopy-{}.1", sub.get_name()));
            assert_eq!(path.exists(), !sub.is_hide_set(), "{}", path.display());
        }
    }
}
