//! `exflow analyze`: captures in, one report out.

use exflow::analysis::{self, Analysis};
use exflow::capture::{self, Source};
use exflow::pipeline::{self, Options};
use std::path::Path;

use crate::flags::{AnalyzeArgs, Reader};
use crate::output::write_report;
use crate::{Exit, Failure};

pub fn run(args: AnalyzeArgs) -> Result<Exit, Failure> {
    let policy = args.analysis.load_policy()?;
    let filter = args.filter.as_deref();
    let (source, outside) = if args.inside.is_empty() {
        let inputs: Vec<String> = args.inputs.iter().chain(&args.read).cloned().collect();
        (open_source(&inputs, filter, args.reader)?, None)
    } else {
        let inside = open_source(&args.inside, filter, args.reader)?;
        (
            inside,
            Some(open_source(&args.outside, filter, args.reader)?),
        )
    };
    let mut out = args.analysis.report_writer()?;
    // Created now: a file that cannot be written fails before the work.
    let evidence = match &args.write_failed {
        Some(path) => Some((path, create(path)?)),
        None => None,
    };

    let opts = Options {
        progress: !args.no_progress,
        ..args.analysis.options(policy)
    };
    let analysis = match outside {
        None => analysis::run(source, &opts),
        Some(outside) => {
            let inside = pipeline::collect(source, &opts);
            let outside = pipeline::collect(outside, &opts);
            let (joined, taps) = exflow::taps::join(inside, outside);
            analysis::finish(joined, &opts, Some(taps))
        }
    };
    warn_partial(&analysis);
    write_report(&analysis, &args.analysis, &mut out)?;
    if let Some((path, file)) = evidence {
        write_evidence(&analysis, &args, path, file)?;
    }
    let exit = if analysis.is_partial() {
        Exit::Partial
    } else if analysis.has_findings() {
        Exit::Findings
    } else {
        Exit::Clean
    };
    // Everything is written: skip freeing a large analysis piece by piece.
    std::mem::forget(analysis);
    Ok(exit)
}

/// `--write-failed`: reads the inputs again and writes the evidence (a
/// pcap; a pcapng naming the tap of each packet with two taps, or for
/// inputs of several link types, or a `.pcapng` file name).
fn write_evidence(
    analysis: &Analysis,
    args: &AnalyzeArgs,
    path: &Path,
    mut out: std::fs::File,
) -> Result<(), Failure> {
    use exflow::evidence_pcap::EvidenceInput;
    let plain: Vec<String> = args.inputs.iter().chain(&args.read).cloned().collect();
    let all = plain.iter().chain(&args.inside).chain(&args.outside);
    if all.clone().any(|i| i == "-") {
        return Err(Failure::error(
            "--write-failed reads the inputs a second time: standard input cannot be (save it to a file first)",
        ));
    }
    let filter = args.filter.as_deref();
    let inputs = match &analysis.taps {
        None => vec![EvidenceInput {
            source: open_source(&plain, filter, args.reader)?,
            name: None,
            offset_ns: 0,
        }],
        Some(taps) => vec![
            EvidenceInput {
                source: open_source(&args.inside, filter, args.reader)?,
                name: Some("inside"),
                offset_ns: 0,
            },
            EvidenceInput {
                source: open_source(&args.outside, filter, args.reader)?,
                name: Some("outside"),
                offset_ns: taps.offset_ns,
            },
        ],
    };
    let opts = exflow::evidence_pcap::EvidenceOptions {
        whole_payloads: args.write_failed_payloads,
        pcapng: path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("pcapng")),
    };
    let stats = exflow::evidence_pcap::write_inputs(analysis, inputs, opts, &mut out)
        .map_err(|e| Failure::error(format!("{}: {e}", path.display())))?;
    eprintln!(
        "exflow: {}: {} packets of {} flows ({} cut after their headers, {} with their authentication token zeroed)",
        path.display(),
        stats.packets,
        stats.flows,
        stats.cut,
        stats.redacted
    );
    Ok(())
}

fn create(path: &Path) -> Result<std::fs::File, Failure> {
    std::fs::File::create(path)
        .map_err(|e| Failure::error(format!("{}: cannot create: {e}", path.display())))
}

/// Names each input that was corrupt or cut short.
fn warn_partial(analysis: &Analysis) {
    for input in &analysis.inputs {
        if let Some(p) = &input.problem {
            eprintln!(
                "exflow: warning: {}: {} (the report covers the {} packets read before it)",
                input.path, p.message, input.packets
            );
        }
    }
}

/// Opens capture inputs with the chosen reader.
pub fn open_source(
    inputs: &[String],
    filter: Option<&str>,
    reader: Reader,
) -> Result<Box<dyn Source>, Failure> {
    let opened: Result<(Box<dyn Source>, Vec<String>), String> = match reader {
        Reader::Native => capture::FileSource::open(inputs, filter)
            .map(|(s, w)| (Box::new(s) as Box<dyn Source>, w))
            .map_err(|e| e.to_string()),
        Reader::Read => {
            let options = capture::ReaderOptions {
                map_window: None,
                ..capture::ReaderOptions::default()
            };
            capture::FileSource::open_with(inputs, filter, &options)
                .map(|(s, w)| (Box::new(s) as Box<dyn Source>, w))
                .map_err(|e| e.to_string())
        }
        Reader::Libpcap => capture::LibpcapSource::open(inputs, filter)
            .map(|(s, w)| (Box::new(s) as Box<dyn Source>, w))
            .map_err(|e| e.to_string()),
    };
    let (source, warnings) = opened.map_err(Failure::error)?;
    for w in warnings {
        eprintln!("exflow: warning: {w}");
    }
    Ok(source)
}
