//! `xcopy`: the command line. Everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    xcopyd::cli::main()
}
