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

/// Renders the report of `a` to `out` and flushes it (a reader that went
/// away is not an error).
pub fn write_report(a: &Analysis, args: &AnalysisArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let opts = report::ReportOptions {
        flows: args.flows.into(),
        color: args.color.wanted(args.output.as_deref()),
    };
    match render(a, args.format, &opts, out).and_then(|_| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Failure::error(format!("writing the report: {e}")))
        }
        _ => Ok(()),
    }
}

fn render(
    a: &Analysis,
    format: Format,
    opts: &report::ReportOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let started = Instant::now();
    let rendered = match format {
        Format::Text => report::write_text_with(a, opts, out),
        Format::Json => report::write_json_with(a, opts, out),
        Format::Ndjson => report::write_ndjson_with(a, opts, out),
    };
    exflow::time::stage_done("render", started.elapsed());
    rendered
}
