//! Renderers over an [`Analysis`](crate::analysis::Analysis): JSON (the
//! contract in `docs/report-contract.md`, its records in [`schema`]),
//! NDJSON (one record per line) and a human-readable text summary. They
//! compute nothing new.

mod evidence;
mod headline;
mod json;
mod layout;
mod limits;
mod records;
pub mod schema;
mod text;

pub use json::{write_json, write_ndjson, SCHEMA};
// The live stream (`crate::stream`) writes its records with the report's own fields.
pub(crate) use evidence::evidence;
pub use headline::MAX_LINES as HEADLINE_MAX_LINES;
pub(crate) use json::{finding, handoff};
pub use layout::TEXT_WIDTH;
pub use schema::{record_schema, report_schema};
pub use text::write_text;

/// `"tcp"`, `"udp"` or the protocol number.
pub fn proto_name(proto: u8) -> &'static str {
    match proto {
        crate::packet::PROTO_TCP => "tcp",
        crate::packet::PROTO_UDP => "udp",
        _ => "other",
    }
}
