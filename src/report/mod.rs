//! Renderers over an [`Analysis`]: JSON (the contract in
//! `../shared/spec/report-contract.md`), NDJSON (one record per line) and a
//! human-readable text summary. They compute nothing new.

mod json;
mod text;

pub use json::{write_json, write_ndjson, SCHEMA};
pub use text::write_text;

use crate::flow::FlowRecord;
use crate::proto::wellknown::service_for_port;

/// The service label of a flow and how it was identified.
pub fn flow_service(f: &FlowRecord) -> (&'static str, &'static str) {
    match service_for_port(f.proto, f.server_port) {
        Some(s) => (s, "port"),
        None => ("unknown", "none"),
    }
}

/// `"tcp"`, `"udp"` or the protocol number.
pub fn proto_name(proto: u8) -> &'static str {
    match proto {
        crate::packet::PROTO_TCP => "tcp",
        crate::packet::PROTO_UDP => "udp",
        _ => "other",
    }
}
