//! The `exflow` command line. All the work lives in the library; the
//! binary parses arguments ([`flags`]), runs one command (a module each)
//! and maps how the command ended to an exit code, here and only here
//! ([`main`]).

mod analyze;
mod baseline;
mod docs;
mod flags;
mod live;
mod output;
mod policy;

use std::fmt;
use std::process::ExitCode;

use clap::Parser;

use flags::{Cli, Command};

/// Exit codes (also documented in README.md and `exflow --help`). Their
/// order is their severity: a command that met two ends exits with the
/// larger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Exit {
    /// Analyzed; nothing blocked or out of policy (diff: no differences).
    Clean = 0,
    /// Analyzed; findings present (diff: differences).
    Findings = 1,
    /// Could not analyze: bad arguments or unreadable input.
    Error = 2,
    /// Analyzed partially: an input was corrupt or truncated; `exflow
    /// live`: the capture stopped early or had a gap (the interface went
    /// down or disappeared), or an output (`--events`, `-w`) failed.
    Partial = 3,
    /// `exflow live` could not write its outputs within `--stop-timeout`
    /// of the stop.
    Stuck = 4,
    /// `exflow live` stopped by a second signal, without its report.
    Interrupted = 130,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// Why a command stopped short: what to say on stderr (as
/// `exflow: error: MESSAGE`) and the exit code that says it.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    /// Could not do the work asked for (exit code 2).
    pub fn error(message: impl fmt::Display) -> Failure {
        Failure {
            exit: Exit::Error,
            message: message.to_string(),
        }
    }
}

fn main() -> ExitCode {
    match try_main() {
        Ok(exit) => exit.into(),
        Err(f) => {
            eprintln!("exflow: error: {}", f.message);
            f.exit.into()
        }
    }
}

/// Parses the command line and runs the command; how it ended.
fn try_main() -> Result<Exit, Failure> {
    match Cli::parse().command {
        Command::Analyze(args) => analyze::run(*args),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Live(args) => live::run(*args),
        Command::Baseline(args) => baseline::run(*args),
        Command::Diff(args) => baseline::diff(*args),
        Command::Rules(args) => baseline::rules(args),
        Command::Completions { shell } => docs::completions(shell),
        Command::Man { dir } => docs::man(dir.as_deref()),
    }
}
