//! Writes the man pages and shell completions of `dataservice-sync` from its
//! clap definition, so that they cannot drift from the binary's options:
//!
//! ```text
//! cargo run --example gen-docs --no-default-features -- OUT_DIR
//! ```
//!
//! OUT_DIR gets `man/dataservice-sync.1` (and one page per subcommand) and
//! `completions/{dataservice-sync.bash,_dataservice-sync,dataservice-sync.fish}`.
//! Built without the `demo` feature, as the packages are, the pages leave
//! out the demo, which a gateway build does not have.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;
use dataservice_sync::cli::Cli;

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: gen-docs OUT_DIR");
        return ExitCode::from(2);
    };
    match generate(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-docs: {}: {e}", out.display());
            ExitCode::from(1)
        }
    }
}

fn generate(out: &std::path::Path) -> std::io::Result<()> {
    // The package's version alone: the binary's own `--version` adds the
    // commit and the build host's target, which a page should not carry.
    let command = || Cli::command().version(env!("CARGO_PKG_VERSION"));
    let man = out.join("man");
    std::fs::create_dir_all(&man)?;
    clap_mangen::generate_to(command(), &man)?;
    let completions = out.join("completions");
    std::fs::create_dir_all(&completions)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut command(), "dataservice-sync", &completions)?;
    }
    Ok(())
}
