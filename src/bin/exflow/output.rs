//! Where the commands' outputs go: `-o FILE` or standard output, and the
//! report in the format asked for.

use std::io::{self, Write};
use std::path::Path;
use std::time::Instant;

use exflow::analysis::Analysis;
use exflow::report;

use crate::flags::{AnalysisArgs, Format};
use crate::Failure;

/// The file an `-o` option names, or `None` for standard output: no `-o`,
/// or `-o -` (as `-` means standard input for the captures).
pub fn output_file(output: Option<&Path>) -> Option<&Path> {
    output.filter(|p| p.as_os_str() != "-")
}

/// Writes `text` to `output` or standard output (a reader that went away
/// is not an error).
pub fn write_out(output: Option<&Path>, text: &str) -> Result<(), Failure> {
    match output_file(output) {
        Some(p) => std::fs::write(p, text)
            .map_err(|e| Failure::error(format!("{}: cannot write: {e}", p.display()))),
        None => {
            let mut o = io::stdout().lock();
            match o.write_all(text.as_bytes()).and_then(|_| o.flush()) {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                    Err(Failure::error(format!("writing standard output: {e}")))
                }
                _ => Ok(()),
            }
        }
    }
}

/// Whether a report written to `output` (None or "-": standard output)
/// goes to a terminal.
pub fn to_terminal(output: Option<&Path>) -> bool {
    use std::io::IsTerminal;
    output.is_none_or(|p| p.as_os_str() == "-") && io::stdout().is_terminal()
}

/// The columns of the terminal on standard output, if it is one.
fn terminal_width() -> Option<usize> {
    // SAFETY: TIOCGWINSZ fills the winsize it is given and nothing else;
    // on failure (not a terminal) it leaves it as it was.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: fd 1 and a valid pointer to a winsize, as the ioctl expects.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}

/// Renders the report of `a` to `out` and flushes it (a reader that went
/// away is not an error).
pub fn write_report(a: &Analysis, args: &AnalysisArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let opts = report::ReportOptions {
        flows: args.flows.into(),
        color: args.color.wanted(args.output.as_deref()),
        width: to_terminal(args.output.as_deref())
            .then(terminal_width)
            .flatten(),
    };
    match render(a, args, &opts, out).and_then(|_| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Failure::error(format!("writing the report: {e}")))
        }
        _ => Ok(()),
    }
}

fn render(
    a: &Analysis,
    args: &AnalysisArgs,
    opts: &report::ReportOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let started = Instant::now();
    let rendered = match args.format {
        Format::Csv => report::write_csv(a, args.csv.into(), out),
        Format::Zeek => report::write_zeek(a, out),
        Format::Ecs => report::write_ecs(a, out),
        Format::Html => report::write_html(a, out),
        Format::Text => report::write_text_with(a, opts, out),
        Format::Json => report::write_json_with(a, opts, out),
        Format::Ndjson => report::write_ndjson_with(a, opts, out),
    };
    exflow::time::stage_done("render", started.elapsed());
    rendered
}
