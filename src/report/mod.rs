//! Renderers over an [`Analysis`](crate::analysis::Analysis): JSON (the
//! contract in `docs/report-contract.md`, its records in [`schema`]),
//! NDJSON (one record per line) and a human-readable text summary. They
//! compute nothing new.

mod csv;
mod ecs;
mod evidence;
mod headline;
mod html;
mod json;
mod layout;
mod limits;
mod records;
pub mod schema;
mod text;
mod zeek;

pub use json::{write_json, write_json_with, write_ndjson, write_ndjson_with, SCHEMA};
// The live stream (`crate::stream`) writes its records with the report's own fields.
pub use csv::{write_csv, CsvTable};
pub use ecs::{write_ecs, ECS_VERSION};
pub(crate) use evidence::evidence;
pub use headline::MAX_LINES as HEADLINE_MAX_LINES;
pub use html::write_html;
pub(crate) use json::{finding, handoff};
pub use layout::TEXT_WIDTH;
pub use schema::{record_schema, report_schema};
pub use text::{write_text, write_text_with};
pub use zeek::write_zeek;

/// Which flow records a JSON or NDJSON report carries (`--flows`). The
/// judgement, the findings, the verdicts and `stats.flows` are the same
/// whichever; the text report lists failed attempts and sums up all flows
/// either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlowSelection {
    /// Every flow.
    #[default]
    All,
    /// The flows the verdicts count as failed attempts (blocked or refused
    /// by the host).
    Failed,
    /// None: findings and verdicts without the flows under them.
    None,
}

/// How a report is written, beyond its format.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReportOptions {
    pub flows: FlowSelection,
    /// The text report in ANSI colour (for a terminal).
    pub color: bool,
    /// The text report's width (a terminal's; at least 80); `None`:
    /// [`TEXT_WIDTH`].
    pub width: Option<usize>,
}

/// `"tcp"`, `"udp"` or the protocol number.
pub fn proto_name(proto: u8) -> &'static str {
    match proto {
        crate::packet::PROTO_TCP => "tcp",
        crate::packet::PROTO_UDP => "udp",
        _ => "other",
    }
}
