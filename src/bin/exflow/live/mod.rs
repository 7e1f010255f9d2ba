//! `exflow live`: capture on an interface through the offline pipeline,
//! streaming records meanwhile; on a stop, the same report as `analyze`.
//!
//! [`run`] reads as the steps: open the capture (then give up root), open
//! the outputs, start the stream thread, run the pipeline until the stop,
//! then write the last records, the report and the baseline, each under
//! the stop deadline.

mod privileges;
mod status;
mod stop;
mod stream;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use exflow::analysis::{self, Analysis};
use exflow::capture::{self, LiveCounters, LiveSource, Source};
use exflow::live_out::{EventsOutput, Notice, ReportFile};
use exflow::pipeline::{self, Options};
use exflow::stream::EvidenceSink;

use crate::flags::LiveArgs;
use crate::output::{output_file, write_report};
use crate::{Exit, Failure};
use status::StatusLine;
use stop::{stop_deadline, Phase, Signals, StopPhase};
use stream::Streaming;

pub fn run(args: LiveArgs) -> Result<Exit, Failure> {
    if args.list_interfaces {
        return list_interfaces();
    }
    let Some(interface) = args.interface.clone() else {
        return Err(Failure::error(
            "--interface is required (see exflow live --list-interfaces)",
        ));
    };
    let policy = args.analysis.load_policy()?;
    let signals = Signals::install()?;
    let notice: Notice = Arc::new(|m: &str| eprintln!("exflow: {m}"));
    let source = open_capture(&args, &interface, &signals.stop, &notice)?;
    let (events, report_file) = open_outputs(&args, &signals.hup, &notice)?;

    let (tx, rx) = crossbeam_channel::bounded::<pipeline::StreamMsg>(1024);
    let ring = args.write_failed.as_ref().map(|_| {
        Arc::new(capture::EvidenceRing::new(
            usize::try_from(args.write_failed_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
        ))
    });
    let evidence = match (&args.write_failed, &ring) {
        (Some(path), Some(ring)) => {
            let file = std::fs::File::create(path)
                .map_err(|e| Failure::error(format!("{}: cannot create: {e}", path.display())))?;
            let out: Box<dyn io::Write + Send> = Box::new(io::BufWriter::new(file));
            Some(
                EvidenceSink::start(Arc::clone(ring), out, source.link())
                    .map_err(|e| Failure::error(format!("{}: {e}", path.display())))?,
            )
        }
        _ => None,
    };
    let mut opts = Options {
        stream: Some(tx),
        retain_flows: (args.retain_flows > 0).then_some(args.retain_flows),
        evidence: ring.clone(),
        ..args.analysis.options(policy)
    };
    // The streamed hand-offs know what --filter drops, as the report does.
    opts.correlate.filters = capture::applied_filters(&source.inputs());
    let counters = source.counters();
    let every = args.stats_interval;
    let streaming = Streaming::start(&opts, rx, &interface, &counters, &events, every, evidence)?;
    let status = (!args.no_status)
        .then(|| StatusLine::start(&interface, &counters, &streaming.counters))
        .flatten();
    eprintln!(
        "exflow: capturing on {interface} ({}); Ctrl-C or SIGTERM writes the report",
        source.link()
    );

    let phase = Phase::new();
    stop_deadline(Arc::clone(&signals.stop), phase.clone(), args.stop_timeout);
    let analysis = analysis::run(Box::new(source), &opts);
    // The workers are done: closing the stream lets the correlator decide
    // what is still pending and finish.
    opts.stream = None;
    if let Some(s) = status {
        s.stop();
    }
    phase.set(StopPhase::Records);
    let evidence_packets = Arc::clone(&streaming.counters);
    let mut exit = streaming.finish();
    if let (Some(path), Some(ring)) = (&args.write_failed, &ring) {
        eprintln!(
            "exflow: {}: {} packets of failed attempts (headers only); {} older packets were let go before their flow was decided (--write-failed-mb)",
            path.display(),
            evidence_packets.evidence_packets.load(Ordering::Relaxed),
            ring.evicted()
        );
    }
    // Failed outputs were named on stderr when they failed.
    if events.incomplete() || counters.write_failed.load(Ordering::Relaxed) {
        exit = exit.max(Exit::Partial);
    }
    exit = exit.max(summarize(&interface, &counters, &analysis));

    phase.set(StopPhase::Report);
    write_final_report(&args, report_file, &notice, &analysis)?;
    phase.set(StopPhase::Baseline);
    write_baseline(&args, &opts, &analysis)?;
    Ok(exit)
}

/// Opens the interface, gives up root if asked (`--user`), and starts
/// keeping the packets if asked (`-w`).
fn open_capture(
    args: &LiveArgs,
    interface: &str,
    stop: &Arc<AtomicBool>,
    notice: &Notice,
) -> Result<LiveSource, Failure> {
    let config = capture::LiveConfig {
        interface: interface.to_string(),
        filter: args.filter.clone(),
        snaplen: args.snaplen,
        promisc: !args.no_promisc,
        buffer_bytes: Some(args.buffer_size.saturating_mul(1 << 20)),
        count: args.count,
        duration: args.duration,
    };
    let mut source = LiveSource::open(config, Arc::clone(stop)).map_err(Failure::error)?;
    source.on_notice(Arc::clone(notice));
    if let Some(user) = &args.user {
        privileges::drop_privileges(user)
            .map_err(|e| Failure::error(format!("--user {user}: {e}")))?;
    }
    if let Some(path) = &args.write {
        source
            .write_to(path, args.rotate_size.saturating_mul(1 << 20))
            .map_err(|e| Failure::error(format!("-w {e}")))?;
    }
    Ok(source)
}

/// Opens `--events` (else the records go to standard output) and creates
/// `-o FILE`, so a path that cannot be written fails before the capture.
/// Standard output is taken for the report only once the streaming
/// records are all written: they go there too by default, and the report
/// holding it from the start stalled them, then the workers, then the stop.
fn open_outputs(
    args: &LiveArgs,
    hup: &Arc<AtomicBool>,
    notice: &Notice,
) -> Result<(EventsOutput, Option<ReportFile>), Failure> {
    let cannot_create = |p: &std::path::Path, e: io::Error| {
        Failure::error(format!("{}: cannot create: {e}", p.display()))
    };
    let events = match output_file(args.events.as_deref()) {
        Some(p) => EventsOutput::open(p, Arc::clone(hup), Arc::clone(notice))
            .map_err(|e| cannot_create(p, e))?,
        None => EventsOutput::stdout(Arc::clone(hup), Arc::clone(notice)),
    };
    let report_file = match output_file(args.analysis.output.as_deref()) {
        Some(p) => Some(ReportFile::create(p).map_err(|e| cannot_create(p, e))?),
        None => None,
    };
    Ok((events, report_file))
}

/// Says on stderr what was captured and what went wrong with the capture
/// (partial if anything did).
fn summarize(interface: &str, counters: &LiveCounters, analysis: &Analysis) -> Exit {
    eprintln!(
        "exflow: {} packets captured on {interface}; dropped by the kernel: {}, by the interface: {}",
        counters.packets.load(Ordering::Relaxed),
        counters.kernel_drops.load(Ordering::Relaxed),
        counters.if_drops.load(Ordering::Relaxed),
    );
    let mut exit = Exit::Clean;
    for input in &analysis.inputs {
        if let Some(p) = &input.problem {
            eprintln!(
                "exflow: error: {}: {}; the report covers the {} packets captured",
                input.path, p.message, input.packets
            );
            exit = Exit::Partial;
        }
    }
    exit
}

/// The report, to `-o FILE` (created anew if it was moved meanwhile) or
/// standard output.
fn write_final_report(
    args: &LiveArgs,
    report_file: Option<ReportFile>,
    notice: &Notice,
    analysis: &Analysis,
) -> Result<(), Failure> {
    let mut out: Box<dyn Write> = match report_file {
        Some(r) => {
            let (file, note) = r.reopen_at_stop();
            if let Some(n) = note {
                notice(&n);
            }
            Box::new(BufWriter::with_capacity(1 << 20, file))
        }
        None => Box::new(BufWriter::with_capacity(1 << 20, io::stdout().lock())),
    };
    write_report(analysis, &args.analysis, &mut out)
}

/// `--baseline FILE`: the baseline of what was captured.
fn write_baseline(args: &LiveArgs, opts: &Options, analysis: &Analysis) -> Result<(), Failure> {
    let Some(path) = &args.baseline else {
        return Ok(());
    };
    let b = exflow::baseline::from_analysis(analysis, opts.policy.as_deref());
    let written = File::create(path).and_then(|f| {
        let mut w = BufWriter::new(f);
        b.write_json(&mut w)?;
        w.flush()
    });
    written.map_err(|e| {
        Failure::error(format!(
            "{}: cannot write the baseline: {e}",
            path.display()
        ))
    })
}

/// `exflow live --list-interfaces`.
fn list_interfaces() -> Result<Exit, Failure> {
    let list = capture::list_interfaces()
        .map_err(|e| Failure::error(format!("listing interfaces: {e}")))?;
    for i in list {
        let addrs: Vec<String> = i.addresses.iter().map(|a| a.to_string()).collect();
        println!(
            "{}\t{}{}\t{}\t{}",
            i.name,
            if i.up { "up" } else { "down" },
            if i.loopback { ",loopback" } else { "" },
            if addrs.is_empty() {
                "-".into()
            } else {
                addrs.join(",")
            },
            i.description.unwrap_or_default()
        );
    }
    Ok(Exit::Clean)
}
