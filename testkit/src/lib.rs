//! exflow's test kit: synthetic frames and captures for its tests and
//! benchmarks, kept out of the library (exflow has this crate only as a
//! dev-dependency).
//!
//! * [`PcapWriter`] (classic pcap, µs or ns) and [`PcapngWriter`] (SHB, IDBs,
//!   EPBs) stream records straight to any `Write`; wrap files in a
//!   `BufWriter` (the `create` constructors do).
//! * [`Frame`] is a fluent builder for whole frames:
//!   `Frame::ethernet().vlan(10).ipv4(a, b).ttl(64).tcp(1234, 135).flags(SYN).seq(1).payload(b"..").build()`.
//!   Checksums (IPv4 header, TCP, UDP, ICMPv4, ICMPv6) are always correct
//!   unless [`Frame::transport_checksum`] turns the TCP/UDP ones off.
//!   `build_into` appends to a reusable buffer (no allocation beyond it).
//! * [`TcpConversation`] scripts a TCP exchange and tracks sequence numbers.
//!
//! The kit produces bytes and depends on nothing: not on exflow (whose own
//! unit tests use it, and would otherwise see two copies of exflow's
//! types). Link layers are the kit's own [`Link`] (its LINKTYPE number is
//! [`Link::link_type`]); TCP flags and timestamps are plain numbers
//! ([`tcp_flags`], nanoseconds since the Unix epoch).
//!
//! Builders are test tools: they panic on programmer errors (an IPv4 source
//! with an IPv6 destination); nothing else here does.

mod frame;
mod pcap;
mod tcp;
#[cfg(test)]
mod tests;

pub use frame::{ipv4_fragment, ipv6_fragment, samples, Frame, Link, TPID_8021AD, TPID_8021Q};
pub use pcap::{PcapWriter, PcapngWriter};
pub use tcp::{tcp_flags, TcpConversation};

/// Timestamps: nanoseconds since the Unix epoch (UTC), as in exflow.
pub type Ts = u64;
