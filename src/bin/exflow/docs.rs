//! `exflow completions SHELL` and `exflow man`: the command line described
//! for shells and for man(1), generated from the same clap definitions as
//! `--help` (clap_complete, clap_mangen), so they never drift from it.

use std::io::{self, Write};
use std::path::Path;

use clap::CommandFactory;

use crate::flags::Cli;
use crate::{Exit, Failure};

/// Prints the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Result<Exit, Failure> {
    let mut cmd = Cli::command();
    let mut out = io::stdout().lock();
    clap_complete::generate(shell, &mut cmd, "exflow", &mut out);
    flush(out.flush())
}

/// Prints exflow(1), or writes it and one page per command into `dir`.
pub fn man(dir: Option<&Path>) -> Result<Exit, Failure> {
    let cmd = Cli::command();
    let Some(dir) = dir else {
        let mut out = io::stdout().lock();
        let rendered = clap_mangen::Man::new(cmd).render(&mut out);
        return flush(rendered.and_then(|()| out.flush()));
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::error(format!("{}: cannot create: {e}", dir.display())))?;
    let mut pages = vec![("exflow".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands() {
        // Each page names its command as the reader types it (clap takes
        // a command's name as a 'static str; a few bytes, once, at exit).
        let name: &'static str = Box::leak(format!("exflow-{}", sub.get_name()).into_boxed_str());
        pages.push((name.to_string(), sub.clone().name(name)));
    }
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut buf = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut buf)
            .and_then(|()| std::fs::write(&path, &buf))
            .map_err(|e| Failure::error(format!("{}: cannot write: {e}", path.display())))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(Exit::Clean)
}

/// A reader that went away (`exflow man | head`) is not an error.
fn flush(r: io::Result<()>) -> Result<Exit, Failure> {
    match r {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Failure::error(format!("writing standard output: {e}")))
        }
        _ => Ok(Exit::Clean),
    }
}
