//! `exflow baseline`, `exflow diff` and `exflow rules` (issue #6): what
//! talks to what over time, how it changed, and the firewall rules for it.
//! Kept apart from `analyze` on purpose.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use exflow::analysis::{self, Analysis};
use exflow::baseline::{self, diff as bdiff, rules as brules, Baseline};
use exflow::capture;
use exflow::pipeline::Options;
use exflow::policy::Policy;

use crate::analyze::open_source;
use crate::flags::{
    BaselineArgs, BaselineCommand, CaptureArgs, DiffArgs, DiffFormat, DynamicMode, Reader,
    RulesArgs, RulesFormat,
};
use crate::output::write_out;
use crate::{Exit, Failure};

/// `exflow baseline` (and `exflow baseline merge`).
pub fn run(args: BaselineArgs) -> Result<Exit, Failure> {
    if let Some(BaselineCommand::Merge { files, output }) = args.command {
        let parts = files
            .iter()
            .map(|f| Baseline::load(f).map_err(Failure::error))
            .collect::<Result<Vec<_>, _>>()?;
        let merged = Baseline::merge_all(parts);
        write_out(output.as_deref(), &merged.to_json())?;
        return Ok(Exit::Clean);
    }
    let (analysis, policy) = analyze_for_baseline(&args.inputs, &args.capture)?;
    let b = baseline::from_analysis(&analysis, policy.as_deref());
    write_out(args.output.as_deref(), &b.to_json())?;
    Ok(if analysis.is_partial() {
        Exit::Partial
    } else {
        Exit::Clean
    })
}

/// `exflow diff`: 0 without differences, 1 with.
pub fn diff(args: DiffArgs) -> Result<Exit, Failure> {
    let old = baseline_of(&args.old, &args.capture)?;
    let new = baseline_of(&args.new, &args.capture)?;
    let d = bdiff::diff(&old, &new, &args.old, &args.new);
    let text = match args.format {
        DiffFormat::Text => bdiff::to_text(&d),
        DiffFormat::Json => bdiff::to_json(&d),
    };
    write_out(args.output.as_deref(), &text)?;
    Ok(if d.is_empty() {
        Exit::Clean
    } else {
        Exit::Findings
    })
}

/// `exflow rules`: the firewall rules for what worked in a baseline.
pub fn rules(args: RulesArgs) -> Result<Exit, Failure> {
    let b = load_baseline(&args.baseline, "rules")?;
    let dynamic = match args.dynamic {
        DynamicMode::Observed => brules::Dynamic::Observed,
        DynamicMode::Pin => brules::Dynamic::Pin,
    };
    let plan = brules::plan(&b, dynamic, args.version.exchange_version);
    let format = match args.format {
        RulesFormat::Nftables => brules::Format::Nftables,
        RulesFormat::Iptables => brules::Format::Iptables,
        RulesFormat::Ip6tables => brules::Format::Ip6tables,
        RulesFormat::Netsh => brules::Format::Netsh,
        RulesFormat::CiscoAsa => brules::Format::CiscoAsa,
    };
    let text = brules::render(&plan, format, &args.baseline.display().to_string());
    write_out(args.output.as_deref(), &text)?;
    Ok(Exit::Clean)
}

/// Runs the pipeline over captures for a baseline (same reading as analyze).
fn analyze_for_baseline(
    inputs: &[String],
    cap: &CaptureArgs,
) -> Result<(Analysis, Option<Arc<Policy>>), Failure> {
    let policy = match &cap.policy {
        Some(p) => Some(Arc::new(Policy::load(p).map_err(Failure::error)?)),
        None => None,
    };
    let source = open_source(inputs, cap.filter.as_deref(), Reader::Native)?;
    let mut opts = Options {
        policy: policy.clone(),
        ..Options::default()
    };
    if let Some(t) = cap.threads {
        opts.threads = usize::from(t);
    }
    if let Some(p) = &policy {
        opts.correlate.roles = p.roles();
    }
    let analysis = analysis::run(source, &opts);
    for input in &analysis.inputs {
        if let Some(p) = &input.problem {
            eprintln!(
                "exflow: warning: {}: {} (the baseline covers the {} packets read before it)",
                input.path, p.message, input.packets
            );
        }
    }
    Ok((analysis, policy))
}

/// Whether a file starts like a pcap or pcapng capture (as the capture
/// readers judge it).
fn looks_like_capture(path: &str) -> Result<bool, Failure> {
    let mut head = Vec::with_capacity(4);
    File::open(path)
        .map_err(|e| Failure::error(format!("{path}: cannot open: {e}")))?
        .take(4)
        .read_to_end(&mut head)
        .map_err(|e| Failure::error(format!("{path}: cannot read: {e}")))?;
    Ok(capture::is_capture(&head))
}

/// A baseline from a baseline file or a capture, detected by content.
fn baseline_of(path: &str, cap: &CaptureArgs) -> Result<Baseline, Failure> {
    if Path::new(path).is_file() && !looks_like_capture(path)? {
        return Baseline::load(Path::new(path)).map_err(Failure::error);
    }
    let (analysis, policy) = analyze_for_baseline(&[path.to_string()], cap)?;
    Ok(baseline::from_analysis(&analysis, policy.as_deref()))
}

/// A baseline file, or why not: a capture is named as one, with the
/// command that makes a baseline of it (rules and policies are written from
/// what worked over time, not from one capture read in passing).
pub fn load_baseline(path: &Path, command: &str) -> Result<Baseline, Failure> {
    let name = path.display().to_string();
    if path.is_file() && looks_like_capture(&name)? {
        return Err(Failure::error(format!(
            "{name} is a capture, not a baseline: run `exflow baseline {name} -o baseline.json` first (add more captures, or merge baselines of several days), then `exflow {command} baseline.json`"
        )));
    }
    Baseline::load(path).map_err(Failure::error)
}
