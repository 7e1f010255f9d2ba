//! What the capture's filters limit (`Correlated::limits`): the report's
//! `limits` (JSON: at the top; NDJSON: `limit` records after the inputs;
//! text: lines under the header). Absent when nothing was filtered, so an
//! unfiltered capture's report is unchanged.

use std::io::{self, Write};

use super::schema;
use crate::capture::FilterOrigin;
use crate::correlate::FilterLimit;

/// Where the filter was applied, in words.
fn origin_text(l: &FilterLimit) -> String {
    match &l.filter.origin {
        FilterOrigin::Reader => "--filter".into(),
        FilterOrigin::Interface { input, interface } => {
            format!("if_filter of interface {interface} in {input}")
        }
    }
}

fn filter_text(l: &FilterLimit) -> String {
    match &l.filter.expression {
        Some(e) => format!("'{e}'"),
        None => "<BPF byte code>".into(),
    }
}

/// The conclusions `l` limits: what is missing, then what that does to
/// the hand-offs.
fn notes(l: &FilterLimit) -> [String; 2] {
    let handoffs = match (l.evaluated, l.handoffs_not_captured) {
        (false, _) => {
            "it could not be evaluated, so every hand-off with no connection attempt seen \
             is not-captured"
                .to_string()
        }
        (true, 0) => {
            "it would keep every hand-off's follow-up connection (judged as without it)".to_string()
        }
        (true, n) => format!(
            "{n} hand-off{} not-captured: it would drop the follow-up connection, so no block is \
             concluded from {}",
            if n == 1 { "" } else { "s" },
            if n == 1 { "it" } else { "them" }
        ),
    };
    [
        "connections it dropped are in no flow, verdict or finding".to_string(),
        handoffs,
    ]
}

/// One `limits[]` entry.
pub(crate) fn limit<'a>(l: &'a FilterLimit, record: Option<&'static str>) -> schema::Limit<'a> {
    let (input, interface) = match &l.filter.origin {
        FilterOrigin::Interface { input, interface } => (Some(input.as_str()), Some(*interface)),
        FilterOrigin::Reader => (None, None),
    };
    schema::Limit {
        applied_by: l.filter.applied_by(),
        evaluated: l.evaluated,
        filter: l.filter.expression.as_deref(),
        handoffs_not_captured: l.handoffs_not_captured,
        input,
        interface,
        kind: "filter",
        link_types: l.filter.links.iter().map(|k| k.name()).collect(),
        note: notes(l).join("; "),
        record,
    }
}

/// The `limits` array.
pub(crate) fn limits(limits: &[FilterLimit]) -> Vec<schema::Limit<'_>> {
    limits.iter().map(|l| limit(l, None)).collect()
}

/// The report's `one_way` (present only when the capture is one-way for
/// some server): which servers, how many connections show it, what it
/// limits.
pub(crate) fn one_way(
    one_way: &std::collections::BTreeMap<std::net::IpAddr, u64>,
) -> schema::OneWay {
    schema::OneWay {
        connections: one_way.values().sum::<u64>(),
        note: ONE_WAY_NOTE,
        servers: one_way.keys().take(64).copied().collect(),
        servers_total: one_way.len(),
    }
}

const ONE_WAY_NOTE: &str = "the capture misses these servers' answers although their clients \
acknowledged them (one-way SPAN or asymmetric routing): unanswered single SYNs and UDP queries \
to them are not judged; retransmitted SYNs still are";

pub(crate) fn write_one_way_text(
    one_way: &std::collections::BTreeMap<std::net::IpAddr, u64>,
    w: &mut dyn Write,
) -> io::Result<()> {
    if one_way.is_empty() {
        return Ok(());
    }
    let servers: Vec<String> = one_way.keys().take(4).map(|s| s.to_string()).collect();
    writeln!(
        w,
        "One-way capture for {} server{} ({}{}; {} connections completed from the client's side \
         alone):",
        one_way.len(),
        if one_way.len() == 1 { "" } else { "s" },
        servers.join(", "),
        if one_way.len() > 4 { ", ..." } else { "" },
        one_way.values().sum::<u64>()
    )?;
    writeln!(
        w,
        "  their unanswered single SYNs and UDP queries are not judged; retransmitted SYNs are"
    )
}

/// Text: three lines per filter, under the header.
pub(crate) fn write_limits_text(limits: &[FilterLimit], w: &mut dyn Write) -> io::Result<()> {
    for l in limits {
        writeln!(
            w,
            "Filtered: {} ({}) limits this report:",
            filter_text(l),
            origin_text(l)
        )?;
        for n in notes(l) {
            writeln!(w, "  {n}")?;
        }
    }
    Ok(())
}
