//! What the capture's filters limit (`Correlated::limits`): the report's
//! `limits` (JSON: at the top; NDJSON: `limit` records after the inputs;
//! text: lines under the header). Absent when nothing was filtered, so an
//! unfiltered capture's report is unchanged.

use std::io::{self, Write};

use serde_json::{json, Value};

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
pub(crate) fn limit_json(l: &FilterLimit) -> Value {
    let mut v = json!({
        "kind": "filter",
        "filter": l.filter.expression,
        "applied_by": l.filter.applied_by(),
        "link_types": l.filter.links.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "evaluated": l.evaluated,
        "handoffs_not_captured": l.handoffs_not_captured,
        "note": notes(l).join("; "),
    });
    if let FilterOrigin::Interface { input, interface } = &l.filter.origin {
        v["input"] = input.as_str().into();
        v["interface"] = (*interface).into();
    }
    v
}

/// The `limits` array.
pub(crate) fn limits_json(limits: &[FilterLimit]) -> Value {
    Value::Array(limits.iter().map(limit_json).collect())
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
