//! Renderers over an [`Analysis`](crate::analysis::Analysis): JSON (the contract in
//! `../shared/spec/report-contract.md`), NDJSON (one record per line) and a
//! human-readable text summary. They compute nothing new.

mod headline;
mod json;
mod layout;
mod limits;
mod records;
mod text;

pub use json::{write_json, write_ndjson, SCHEMA};
// The live stream (`crate::stream`) writes its records with the report's own fields.
pub use headline::MAX_LINES as HEADLINE_MAX_LINES;
pub(crate) use json::{evidence_json, finding_json, handoff_json, interface_json};
pub use layout::TEXT_WIDTH;
pub use text::write_text;

/// `"tcp"`, `"udp"` or the protocol number.
pub fn proto_name(proto: u8) -> &'static str {
    match proto {
        crate::packet::PROTO_TCP => "tcp",
        crate::packet::PROTO_UDP => "udp",
        _ => "other",
    }
}
