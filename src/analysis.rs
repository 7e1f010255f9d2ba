//! One analysis: collect (reader and shard workers, `pipeline`) → two-tap
//! join (`taps`, when there are two captures) → correlate (`correlate`) →
//! judge (`verdict`); the renderers (`report`, `baseline`) read the
//! [`Analysis`] it returns. The small piece that composes the stages: each
//! stage is its own module and knows nothing of the ones after it.

use std::time::Instant;

use crate::capture::{InputInfo, Source};
use crate::correlate::{correlate, Correlated};
use crate::flow::FlowRecord;
use crate::pipeline::{collect, Collected, Options, Stats};
use crate::taps::TapReport;
use crate::verdict::Verdict;

/// Everything the analysis produced, ready for the renderers.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    pub inputs: Vec<InputInfo>,
    pub stats: Stats,
    /// All flows, sorted by [`flow_order`](crate::flow::flow_order).
    pub flows: Vec<FlowRecord>,
    /// Hand-offs, endpoints, findings (all kinds, sorted), and one label
    /// per flow.
    pub correlated: Correlated,
    /// One verdict per (client group, server, service, proto, port).
    pub verdicts: Vec<Verdict>,
    /// Two-tap analyses: what crossed the firewall and what vanished.
    pub taps: Option<TapReport>,
    /// What each flow says about its connection, as the judge found it
    /// (one tap; see [`Analysis::flow_outcomes`]).
    pub outcomes: Option<Vec<Option<bool>>>,
}

impl Analysis {
    /// Whether some input was cut short by corruption or truncation.
    pub fn is_partial(&self) -> bool {
        self.inputs.iter().any(|i| i.problem.is_some())
    }

    /// [`crate::verdict::flow_outcomes`] of the flows: the judge's, or
    /// computed now when it kept none (two taps, or an `Analysis` built by
    /// hand).
    pub fn flow_outcomes(&self) -> std::borrow::Cow<'_, [Option<bool>]> {
        match &self.outcomes {
            Some(o) if o.len() == self.flows.len() => std::borrow::Cow::Borrowed(o),
            _ => std::borrow::Cow::Owned(crate::verdict::flow_outcomes(
                &self.flows,
                &self.correlated,
            )),
        }
    }

    /// Whether there is something the admin must act on (never-seen
    /// findings are informational).
    pub fn has_findings(&self) -> bool {
        self.correlated.findings.iter().any(|f| f.is_actionable())
    }
}

/// Runs the pipeline over `source` to the end, then correlates and judges.
pub fn run(source: Box<dyn Source>, opts: &Options) -> Analysis {
    finish(collect(source, opts), opts, None)
}

/// Correlates collected flows and events and computes the verdicts.
pub fn finish(c: Collected, opts: &Options, taps: Option<TapReport>) -> Analysis {
    let t0 = Instant::now();
    // What the inputs were filtered through limits what their absence says.
    let applied = if opts.correlate.filters.is_empty() {
        crate::capture::applied_filters(&c.inputs)
    } else {
        Vec::new()
    };
    let filtered;
    let cfg = if applied.is_empty() {
        &opts.correlate
    } else {
        filtered = crate::correlate::CorrelateConfig {
            filters: applied,
            ..opts.correlate.clone()
        };
        &filtered
    };
    let mut correlated = correlate(&c.flows, &c.events, cfg);
    let t_corr = t0.elapsed();
    crate::time::stage_done("correlate", t_corr);
    let v = crate::verdict::evaluate(
        &c.flows,
        &correlated,
        opts.policy.as_deref(),
        taps.as_ref().map(|t| &t.view),
    );
    correlated.findings.extend(v.findings);
    correlated.findings.sort_by(|a, b| {
        (a.first_ts, a.kind, a.server, a.proto, a.port)
            .cmp(&(b.first_ts, b.kind, b.server, b.proto, b.port))
    });
    crate::time::stage_done("judge", t0.elapsed() - t_corr);
    let mut stats = c.stats;
    stats.scan_probes_untracked = v.scan_probes_untracked;
    Analysis {
        inputs: c.inputs,
        stats,
        flows: c.flows,
        correlated,
        verdicts: v.verdicts,
        taps,
        outcomes: v.outcomes,
    }
}
