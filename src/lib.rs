//! exflow: a passive analyzer for Exchange and Active Directory traffic.
//!
//! Data flows one way (see ARCHITECTURE.md):
//! `capture` (sources hand out batches of frames) → `packet` (decode) →
//! `pipeline` (dispatch by symmetric flow hash to shard workers) → `flow`
//! (per-shard flow tables, TCP state) → `report` (JSON, NDJSON, text).

pub mod analysis;
pub mod baseline;
pub mod capture;
pub mod contract;
pub mod correlate;
pub mod event;
pub mod evidence_pcap;
pub mod finding;
pub mod flow;
pub mod kb;
pub mod live_out;
pub mod packet;
pub mod pipeline;
pub mod policy;
pub mod prefetch;
pub mod proto;
pub mod report;
pub mod roles;
pub mod stream;
pub mod taps;
pub mod time;
pub mod verdict;

/// Timestamps everywhere are nanoseconds since the Unix epoch (UTC).
pub type Ts = u64;
