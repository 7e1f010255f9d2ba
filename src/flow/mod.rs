//! Flow state: one table per logical shard, owned by exactly one worker
//! thread (no locks on the per-packet path).

use std::net::IpAddr;

use crate::Ts;

/// Timeouts and caps. All times are capture time (packet timestamps), never
/// wall-clock, so results do not depend on how fast the machine is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowConfig {
    /// Idle timeout for TCP flows that never completed a handshake (ns).
    pub tcp_handshake_timeout: Ts,
    /// Idle timeout for established TCP flows (ns).
    pub tcp_established_timeout: Ts,
    /// Idle time after which a TCP flow that was closed (FIN both ways or
    /// RST) is finalized (ns).
    pub tcp_closed_timeout: Ts,
    /// Idle timeout for UDP conversations (ns).
    pub udp_timeout: Ts,
    /// Most flows per table whose DCE/RPC is parsed at once (each holds
    /// bounded stream and PDU buffers).
    pub max_rpc_flows_per_shard: usize,
    /// Most bytes the table's DCE/RPC parsers may hold at once (their
    /// structs and their heap buffers, as counted by
    /// `RpcConnection::heap_bytes`); past it the parser holding most is
    /// dropped (#23). The default is `RPC_BYTES_BUDGET` over the 64 logical shards.
    pub max_rpc_bytes_per_shard: usize,
    /// Most bytes the table's RFC 1006 parsers may hold at once (their
    /// structs, out-of-order stream bytes and framer buffers, as counted by
    /// `Rfc1006Flow::heap_bytes`); past it the one holding most gives up
    /// waiting for its holes, else loses its parser (#23). The default is
    /// `RFC1006_BYTES_BUDGET` over the 64 logical shards.
    pub max_rfc1006_bytes_per_shard: usize,
    /// Parse DCE/RPC (endpoint-mapper hand-offs, interface labels). Other
    /// payload recognizers run either way.
    pub dcerpc: bool,
    /// Most flows one logical shard may track at once; the least recently
    /// active flow is evicted (and counted) to make room.
    pub max_flows_per_shard: usize,
}

pub const SECOND: Ts = 1_000_000_000;

/// What DCE/RPC parsing may hold in the whole process, as it counts it,
/// split evenly over the logical shards (`FlowConfig::max_rpc_bytes_per_shard`).
/// 48 MiB, not the 64 MB of #23's bound: with the budget at 64 MiB,
/// 100,000 trickling connections (`benches/hostile_rpc.rs`) peaked at
/// +74.6 MiB RSS over `--no-dcerpc` (allocator overhead and what the count
/// leaves out), so the count keeps a quarter in reserve.
pub const RPC_BYTES_BUDGET: usize = 48 << 20;

/// What RFC 1006 parsing may hold in the whole process, as it counts it,
/// split evenly over the logical shards
/// (`FlowConfig::max_rfc1006_bytes_per_shard`). A connection between
/// packets holds nothing; one waiting for a packet at most
/// `rfc1006::MAX_TPKT_HELD` per direction; out-of-order bytes are what
/// can grow (64 KiB per direction), and what is shed first.
pub const RFC1006_BYTES_BUDGET: usize = 16 << 20;
/// A DCE/RPC or RFC 1006 connection that has delivered no whole PDU or TPKT
/// for this long (or that claimed a DCE/RPC PDU larger than
/// `rpc_conn::MAX_BUFFERED_PDU`) may lose its parser to a new connection
/// when all parser slots are taken: slots go to connections that behave,
/// not to the first comers (#23). An ept_map exchange takes milliseconds.
pub const PARSER_STALLED_AFTER: Ts = 10 * SECOND;

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            tcp_handshake_timeout: 75 * SECOND,
            tcp_established_timeout: 3600 * SECOND,
            tcp_closed_timeout: 10 * SECOND,
            udp_timeout: 120 * SECOND,
            max_rpc_flows_per_shard: 256,
            max_rpc_bytes_per_shard: RPC_BYTES_BUDGET / LOGICAL_SHARDS,
            max_rfc1006_bytes_per_shard: RFC1006_BYTES_BUDGET / LOGICAL_SHARDS,
            dcerpc: true,
            max_flows_per_shard: 1_000_000 / LOGICAL_SHARDS,
        }
    }
}

/// A TCP state in which the handshake completed.
pub fn tcp_established(s: ConnState) -> bool {
    matches!(
        s,
        ConnState::S1
            | ConnState::SF
            | ConnState::S2
            | ConnState::S3
            | ConnState::RSTO
            | ConnState::RSTR
    )
}

/// Zeek's conn_state vocabulary (TCP), plus `Udp` for UDP conversations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnState {
    S0,
    S1,
    SF,
    REJ,
    S2,
    S3,
    RSTO,
    RSTR,
    RSTOS0,
    RSTRH,
    SH,
    SHR,
    OTH,
    Udp,
}

impl ConnState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnState::S0 => "S0",
            ConnState::S1 => "S1",
            ConnState::SF => "SF",
            ConnState::REJ => "REJ",
            ConnState::S2 => "S2",
            ConnState::S3 => "S3",
            ConnState::RSTO => "RSTO",
            ConnState::RSTR => "RSTR",
            ConnState::RSTOS0 => "RSTOS0",
            ConnState::RSTRH => "RSTRH",
            ConnState::SH => "SH",
            ConnState::SHR => "SHR",
            ConnState::OTH => "OTH",
            ConnState::Udp => "udp",
        }
    }
}

/// A flow's history letters, stored inline (at most 16, each letter once):
/// no heap allocation per record.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct HistoryStr {
    buf: [u8; 16],
    len: u8,
}

impl HistoryStr {
    /// Keeps the first 16 ASCII bytes of `s`.
    pub fn new(s: &str) -> HistoryStr {
        let mut h = HistoryStr::default();
        for &b in s.as_bytes().iter().filter(|b| b.is_ascii()).take(16) {
            h.buf[h.len as usize] = b;
            h.len += 1;
        }
        h
    }

    /// The letters as bytes (ASCII only).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored.
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }
}

impl std::ops::Deref for HistoryStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for HistoryStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for HistoryStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for HistoryStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Why a flow record was emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlowEnd {
    /// Still open when the capture ended.
    EndOfCapture,
    /// Idle longer than its timeout.
    IdleTimeout,
    /// Evicted to respect the flow cap.
    Evicted,
    /// The 5-tuple was reused by a new connection (new SYN after a close).
    Reused,
}

/// An ICMP error that quoted a packet of this flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpEvidence {
    pub ts: Ts,
    /// Who sent the ICMP error (often the firewall).
    pub sender: IpAddr,
    pub v6: bool,
    pub icmp_type: u8,
    pub code: u8,
    /// The quoted packet was sent by the flow's originator.
    pub quotes_originator: bool,
    /// The MTU a "fragmentation needed" / "packet too big" names (#25).
    pub mtu: Option<u32>,
}

/// A finished (or still open at the end) flow, as reported in `flows[]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowRecord {
    pub proto: u8,
    /// The originator (SYN sender, or first sender for UDP / mid-stream TCP).
    pub client: IpAddr,
    pub client_port: u16,
    pub server: IpAddr,
    pub server_port: u16,
    pub first_ts: Ts,
    pub last_ts: Ts,
    pub state: ConnState,
    /// Zeek-style history letters (S h A D F R ... upper = originator).
    pub history: HistoryStr,
    /// Retransmitted SYNs (same ISN) beyond the first.
    pub syn_retries: u32,
    /// Gaps between successive SYNs of the attempt, in microseconds (capped
    /// to the first few).
    pub syn_gaps_us: Box<[u64]>,
    /// [client→server, server→client]
    pub packets: [u64; 2],
    /// Frame bytes on the wire, [client→server, server→client]
    pub bytes: [u64; 2],
    /// Transport payload bytes, [client→server, server→client]
    pub payload_bytes: [u64; 2],
    /// TTL of the responder's first packet (SYN-ACK or RST), for evidence.
    pub responder_ttl: Option<u8>,
    /// IP ID of the responder's first packet.
    pub responder_ip_id: Option<u16>,
    /// ICMP errors that quoted this flow (first few).
    pub icmp: Box<[IcmpEvidence]>,
    /// How many ICMP errors quoted this flow in all.
    pub icmp_count: u32,
    /// What the DCE/RPC parser saw, for flows that carried DCE/RPC.
    pub rpc: Option<Box<crate::flow::rpc_conn::RpcSummary>>,
    /// What the payload showed, for flows recognized as another protocol.
    pub app: Option<Box<AppLabel>>,
    pub end: FlowEnd,
    /// What was lost after the handshake (#25): unanswered data, datagrams
    /// missing fragments. One box for both: rare, and the record stays at
    /// 200 bytes (see [`FlowRecord::stall`], [`FlowRecord::frag_loss`]).
    pub losses: Option<Box<Losses>>,
    /// The longest idle gap (seconds, saturating at 18 h) after which the
    /// flow's next data was answered: what a firewall's idle timeout let
    /// live (#25).
    pub longest_answered_gap_s: u16,
}

/// A flow's losses after the handshake (#25).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Losses {
    /// Data one side sent that the other never answered until the flow
    /// ended (only when it was retransmitted or answered by the peer's
    /// reset).
    pub stall: Option<Stall>,
    /// Datagrams of this flow whose fragments did not all arrive.
    pub frag: Option<FragLoss>,
}

impl Losses {
    /// The box a record keeps: none when nothing was lost.
    pub fn boxed(stall: Option<Stall>, frag: Option<FragLoss>) -> Option<Box<Losses>> {
        (stall.is_some() || frag.is_some()).then(|| Box::new(Losses { stall, frag }))
    }
}

impl FlowRecord {
    /// Data one side sent that the other never answered (#25).
    pub fn stall(&self) -> Option<&Stall> {
        self.losses.as_ref()?.stall.as_ref()
    }

    /// Datagrams of this flow that lost their later fragments (#25).
    pub fn frag_loss(&self) -> Option<&FragLoss> {
        self.losses.as_ref()?.frag.as_ref()
    }
}

/// Datagrams of one flow that never completed because fragments after
/// their first never arrived (#25): a path that drops IP fragments. Kept
/// for one direction, the responder's when both lost some (a reply too big
/// for one packet is the common case: Kerberos, CLDAP, DNS with EDNS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragLoss {
    /// The datagrams were the originator's (client's).
    pub from_originator: bool,
    /// Datagrams that never completed.
    pub datagrams: u32,
    /// Fragments of them that came (each had its first).
    pub fragments: u32,
    /// The most bytes (IP payload) that came of one of them.
    pub received: u32,
    /// The largest length (IP payload) known of one of them: only a
    /// datagram whose last fragment came tells it.
    pub len: Option<u32>,
    /// First fragment of the first and of the last of them.
    pub first_ts: Ts,
    pub last_ts: Ts,
}

impl FragLoss {
    /// One lost datagram.
    pub fn of(l: &crate::packet::Incomplete, from_originator: bool) -> FragLoss {
        FragLoss {
            from_originator,
            datagrams: 1,
            fragments: l.fragments,
            received: l.bytes,
            len: l.len,
            first_ts: l.ts,
            last_ts: l.ts,
        }
    }

    /// Adds another lost datagram of the same direction.
    pub fn add(&mut self, o: &FragLoss) {
        self.datagrams = self.datagrams.saturating_add(o.datagrams);
        self.fragments = self.fragments.saturating_add(o.fragments);
        self.received = self.received.max(o.received);
        self.len = self.len.max(o.len);
        self.first_ts = self.first_ts.min(o.first_ts);
        self.last_ts = self.last_ts.max(o.last_ts);
    }
}

/// Data sent after the handshake that the peer never acknowledged: the
/// evidence of a connection a firewall forgot (after an idle gap) or of a
/// black hole mid-stream (#25). Only the last unanswered run of a flow is
/// kept; an answer from the peer clears it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stall {
    /// The unanswered data came from the originator (client).
    pub from_originator: bool,
    /// Silence on the connection (both directions) before that data (ns).
    pub idle_gap: Ts,
    /// First transmission of the unanswered data.
    pub start_ts: Ts,
    /// Its last retransmission (`start_ts` if none).
    pub last_ts: Ts,
    /// Segments (data or FIN) sent again without an answer in between.
    pub retransmissions: u32,
    /// Payload bytes of those retransmissions.
    pub retransmitted_bytes: u64,
    /// The peer's address answered with a reset (its TTL and IP ID tell
    /// whether the host sent it).
    pub reset: Option<StallReset>,
    /// Path MTU (#25): the smallest and largest payload of the segments
    /// sent again (`u16::MAX` / 0: none carried data), saturating.
    pub seg_min: u16,
    pub seg_max: u16,
    /// Every segment sent again had the don't-fragment bit set (IPv6:
    /// always, routers never fragment).
    pub df: bool,
    /// The most bytes of this side's data one acknowledgement of the peer
    /// ever newly covered: no segment larger than this is known to have
    /// passed (an upper bound of the largest that did; 0: none).
    pub passed_max: u16,
}

impl Stall {
    /// A run of unanswered data that starts at `start_ts` after a silence
    /// of `idle_gap`, nothing sent again yet.
    pub fn new(from_originator: bool, idle_gap: Ts, start_ts: Ts) -> Stall {
        Stall {
            from_originator,
            idle_gap,
            start_ts,
            last_ts: start_ts,
            retransmissions: 0,
            retransmitted_bytes: 0,
            reset: None,
            seg_min: u16::MAX,
            seg_max: 0,
            df: true,
            passed_max: 0,
        }
    }
}

/// A reset that came from the peer's address while data was unanswered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StallReset {
    pub ts: Ts,
    pub ttl: Option<u8>,
    pub ip_id: Option<u16>,
}

#[cfg(test)]
impl FlowRecord {
    /// For unit tests: one unanswered SYN from `client`:`client_port` to
    /// `server`:`port` at `ts`, still open at the end of the capture;
    /// change what a test needs with `FlowRecord { .., ..test_syn() }`.
    pub(crate) fn test_syn(
        client: IpAddr,
        client_port: u16,
        server: IpAddr,
        port: u16,
        ts: Ts,
    ) -> FlowRecord {
        FlowRecord {
            proto: crate::packet::PROTO_TCP,
            client,
            client_port,
            server,
            server_port: port,
            first_ts: ts,
            last_ts: ts,
            state: ConnState::S0,
            history: HistoryStr::new("S"),
            syn_retries: 0,
            syn_gaps_us: Box::default(),
            packets: [1, 0],
            bytes: [60, 0],
            payload_bytes: [0, 0],
            responder_ttl: None,
            responder_ip_id: None,
            icmp: Box::default(),
            icmp_count: 0,
            rpc: None,
            app: None,
            end: FlowEnd::EndOfCapture,
            losses: None,
            longest_answered_gap_s: 0,
        }
    }
}

/// Counters a flow table keeps; summed over shards into `stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub flows_created: u64,
    pub flows_timed_out: u64,
    pub flows_evicted: u64,
    pub flows_reused: u64,
    /// Most flows tracked at once in this table.
    pub peak_tracked: u64,
    /// ICMP errors that matched no tracked flow.
    pub icmp_unmatched: u64,
    /// Datagrams lost in fragments (#25) whose flow was not tracked.
    pub fragments_lost_unmatched: u64,
    pub app: AppStats,
}

impl FlowStats {
    /// Sums counters of several tables (peaks add up: the tables are
    /// disjoint, so the sum bounds the flows tracked at once).
    pub fn add(&mut self, o: &FlowStats) {
        self.flows_created += o.flows_created;
        self.flows_timed_out += o.flows_timed_out;
        self.flows_evicted += o.flows_evicted;
        self.flows_reused += o.flows_reused;
        self.peak_tracked += o.peak_tracked;
        self.icmp_unmatched += o.icmp_unmatched;
        self.fragments_lost_unmatched += o.fragments_lost_unmatched;
        self.app.add(&o.app);
    }
}

/// Flows are partitioned into this many logical shards, whatever the number
/// of worker threads; each worker owns `shard % threads == worker`. Caps and
/// eviction are per logical shard, so results never depend on `--threads`.
pub const LOGICAL_SHARDS: usize = 64;

/// The total order of `flows[]`: by first timestamp, then the natural key.
pub fn flow_order(a: &FlowRecord, b: &FlowRecord) -> std::cmp::Ordering {
    (
        a.first_ts,
        a.proto,
        a.client,
        a.client_port,
        a.server,
        a.server_port,
    )
        .cmp(&(
            b.first_ts,
            b.proto,
            b.client,
            b.client_port,
            b.server,
            b.server_port,
        ))
        .then(a.last_ts.cmp(&b.last_ts))
        .then(a.packets.cmp(&b.packets))
        .then(a.bytes.cmp(&b.bytes))
        .then(a.payload_bytes.cmp(&b.payload_bytes))
        .then(a.state.cmp(&b.state))
        .then(a.syn_retries.cmp(&b.syn_retries))
        .then(a.end.cmp(&b.end))
        .then_with(|| a.history.as_str().cmp(b.history.as_str()))
}

mod index;
pub mod rpc_cl;
pub mod rpc_conn;
pub mod smb_pipe;
pub mod stream;
mod table;
mod tcp;
#[cfg(test)]
mod tests;

pub use table::{FlowTable, FLOW_BYTES, INDEX_BUCKET_BYTES, MAX_ICMP_EVIDENCE, MAX_SYN_GAPS};

/// Per-flow state of an application-layer parser, held in the flow as an
/// `Option<AppState>` (16 bytes: which parser, and its boxed state), so
/// that telling a flow with a parser from one without, or from one that is
/// only labeled, reads nothing but the flow itself. Allocated only for flows
/// whose payload looks like a protocol exflow parses or recognizes; each
/// variant's box is its own size (a label is ~50 bytes, a DCE/RPC
/// connection ~1 KB).
#[derive(Debug)]
pub enum AppState {
    /// Connection-oriented DCE/RPC (any port).
    Rpc(Box<crate::flow::rpc_conn::RpcConnection>),
    /// Connectionless DCE/RPC over UDP (any port).
    RpcCl(Box<crate::flow::rpc_cl::RpcClFlow>),
    /// TPKT/COTP (RFC 1006: X.400 MTAs, S7comm, MMS), any port.
    Rfc1006(Box<Rfc1006Flow>),
    /// A service recognized from the payload; nothing more to parse.
    Label(Box<AppLabel>),
    /// A DCE/RPC parser that ended before its flow did (its connection
    /// closed): what it read.
    RpcDone(Box<crate::flow::rpc_conn::RpcSummary>),
    /// SMB (445, or 139 behind NetBIOS) with the DCE/RPC of its named
    /// pipes (#24).
    Smb(Box<crate::flow::smb_pipe::SmbFlow>),
    /// An SMB parser that ended before its flow did: what it read.
    SmbDone(Box<crate::flow::smb_pipe::SmbDone>),
}

impl AppState {
    /// Where the boxed state lives, and whether it is a parser's (a label
    /// is not parsed further), for prefetching.
    pub(crate) fn state_ptr(&self) -> (*const u8, bool) {
        match self {
            AppState::Rpc(rpc) => (
                (&**rpc as *const crate::flow::rpc_conn::RpcConnection).cast(),
                true,
            ),
            AppState::RpcCl(cl) => (
                (&**cl as *const crate::flow::rpc_cl::RpcClFlow).cast(),
                true,
            ),
            AppState::Rfc1006(r) => ((&**r as *const Rfc1006Flow).cast(), true),
            AppState::Label(l) => ((&**l as *const AppLabel).cast(), false),
            AppState::RpcDone(s) => (
                (&**s as *const crate::flow::rpc_conn::RpcSummary).cast(),
                false,
            ),
            AppState::Smb(s) => ((&**s as *const crate::flow::smb_pipe::SmbFlow).cast(), true),
            AppState::SmbDone(s) => (
                (&**s as *const crate::flow::smb_pipe::SmbDone).cast(),
                false,
            ),
        }
    }
}

impl AppLabel {
    /// A label from a payload recognizer's answer.
    pub fn recognized(r: crate::proto::recognize::Recognized) -> AppLabel {
        AppLabel {
            service: r.service,
            detail: r.detail,
            rfc1006: None,
            smb: None,
        }
    }
}

/// An RFC 1006 connection: its two byte streams and the COTP tracker.
#[derive(Debug)]
pub struct Rfc1006Flow {
    pub streams: [stream::StreamReassembler; 2],
    pub conn: crate::proto::rfc1006::Rfc1006Conn,
    /// `heap_bytes()` as last counted into the table's budget.
    pub accounted: usize,
    /// Capture time of the last whole TPKT framed (or of the first
    /// segment), for `PARSER_STALLED_AFTER`.
    pub last_progress: crate::Ts,
}

impl Rfc1006Flow {
    /// Whether a stream holds bytes beyond a hole (out of order).
    pub fn waiting_for_holes(&self) -> bool {
        self.streams.iter().any(|s| s.buffered() > 0)
    }

    /// Delivers what the streams hold beyond their holes (declaring them):
    /// as at the end of the flow, or when the budget gives up waiting.
    pub fn flush(&mut self) {
        let Rfc1006Flow { streams, conn, .. } = self;
        for (d, s) in streams.iter_mut().enumerate() {
            s.flush(&mut |c| match c {
                stream::Chunk::Data(b) => conn.on_data(d, b),
                stream::Chunk::Gap { .. } => conn.gap(d),
            });
        }
    }

    /// The parser ends (the flow ends, or loses its parser slot): what it
    /// learnt, as the flow's label, if it saw a TPDU.
    pub fn into_label(mut self: Box<Self>) -> Option<Box<AppLabel>> {
        self.flush();
        let summary = self.conn.summary();
        (summary.tpdus.total() > 0).then(|| {
            Box::new(AppLabel {
                service: self.conn.service_name(),
                detail: None,
                rfc1006: Some(Box::new(summary)),
                smb: None,
            })
        })
    }

    /// Heap bytes held: out-of-order stream bytes (with their per-segment
    /// overhead) and the connection's buffers.
    pub fn heap_bytes(&self) -> usize {
        self.streams.iter().map(|s| s.heap_bytes()).sum::<usize>() + self.conn.heap_bytes()
    }
}

/// What the payload said a flow is (for everything but DCE/RPC, which has
/// its own summary).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppLabel {
    /// Report-contract service name, e.g. "smtp", "tls", "s7comm".
    pub service: &'static str,
    /// E.g. the TLS SNI, the SMTP EHLO host, the HTTP Host.
    pub detail: Option<String>,
    /// The COTP connection's outcome, TSAPs and classification.
    pub rfc1006: Option<Box<crate::proto::rfc1006::Rfc1006Summary>>,
    /// SMB connections whose messages were parsed (#24): what the parser
    /// saw (pipes, encrypted messages, what it passed over).
    pub smb: Option<Box<crate::flow::smb_pipe::SmbSummary>>,
}

/// Application-parser counters of a flow table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppStats {
    /// Flows recognized as DCE/RPC and parsed.
    pub rpc_flows: u64,
    /// DCE/RPC flows left unparsed because the table's parser cap was
    /// reached (slots are shared with RFC 1006 parsers).
    pub rpc_over_cap: u64,
    /// DCE/RPC parsers dropped to give their slot to a new connection
    /// (they claimed an oversized PDU, or made no progress for
    /// `PARSER_STALLED_AFTER`).
    pub rpc_evicted_stalled: u64,
    /// DCE/RPC parsers dropped because the table's parsers held more than
    /// `max_rpc_bytes_per_shard` (the one holding most goes).
    pub rpc_evicted_over_budget: u64,
    /// PDUs passed over unread because they claimed more than
    /// `rpc_conn::MAX_BUFFERED_PDU` and would have been buffered.
    pub rpc_pdus_refused: u64,
    /// Peak bytes held by DCE/RPC parsers (structs + heap), per table;
    /// summed over tables it is an upper bound for the process.
    pub rpc_bytes_peak: u64,
    /// Flows whose RFC 1006 (TPKT/COTP) was parsed.
    pub rfc1006_flows: u64,
    /// TPKT packets longer than `rfc1006::MAX_TPKT_HELD`, read from their
    /// head, and the bytes beyond it passed over unbuffered.
    pub rfc1006_tpkts_cut: u64,
    pub rfc1006_bytes_passed: u64,
    /// Times the table's RFC 1006 parsers held more than
    /// `max_rfc1006_bytes_per_shard` and the one holding most gave up
    /// waiting for its holes (its out-of-order bytes delivered, the holes
    /// declared).
    pub rfc1006_holes_given_up: u64,
    /// RFC 1006 parsers dropped because the budget was still exceeded.
    pub rfc1006_evicted_over_budget: u64,
    /// RFC 1006 connections left unparsed because the table's parser cap
    /// was reached.
    pub rfc1006_over_cap: u64,
    /// RFC 1006 parsers dropped to give their slot to a new connection
    /// (no TPKT framed for `PARSER_STALLED_AFTER`).
    pub rfc1006_evicted_stalled: u64,
    /// Peak bytes held by RFC 1006 parsers, per table (summed like
    /// `rpc_bytes_peak`).
    pub rfc1006_bytes_peak: u64,
    /// SMB connections parsed for named pipes (#24; their parsers count
    /// with DCE/RPC's: slots, budget, evictions), and those left unparsed
    /// because every parser slot was taken.
    pub smb_flows: u64,
    pub smb_over_cap: u64,
    /// Named pipes that carried DCE/RPC, and pipes refused because a
    /// connection had `smb_pipe::MAX_PIPES` open.
    pub smb_pipes: u64,
    pub smb_pipes_over_cap: u64,
    /// Pipe messages larger than `smb_pipe::MAX_HELD`, passed over.
    pub smb_pipe_messages_refused: u64,
    /// Requests forgotten unanswered (`smb_pipe::MAX_PENDING` waiting).
    pub smb_requests_dropped: u64,
    /// SMB connections that sent encrypted (SMB3 transform) messages, and
    /// those messages: their pipes cannot be seen.
    pub smb_encrypted_flows: u64,
    pub smb_encrypted_messages: u64,
}

impl AppStats {
    pub fn add(&mut self, o: &AppStats) {
        self.rpc_flows += o.rpc_flows;
        self.rpc_over_cap += o.rpc_over_cap;
        self.rpc_evicted_stalled += o.rpc_evicted_stalled;
        self.rpc_evicted_over_budget += o.rpc_evicted_over_budget;
        self.rpc_pdus_refused += o.rpc_pdus_refused;
        self.rpc_bytes_peak += o.rpc_bytes_peak;
        self.rfc1006_flows += o.rfc1006_flows;
        self.rfc1006_tpkts_cut += o.rfc1006_tpkts_cut;
        self.rfc1006_bytes_passed += o.rfc1006_bytes_passed;
        self.rfc1006_holes_given_up += o.rfc1006_holes_given_up;
        self.rfc1006_evicted_over_budget += o.rfc1006_evicted_over_budget;
        self.rfc1006_over_cap += o.rfc1006_over_cap;
        self.rfc1006_evicted_stalled += o.rfc1006_evicted_stalled;
        self.rfc1006_bytes_peak += o.rfc1006_bytes_peak;
        self.smb_flows += o.smb_flows;
        self.smb_over_cap += o.smb_over_cap;
        self.smb_pipes += o.smb_pipes;
        self.smb_pipes_over_cap += o.smb_pipes_over_cap;
        self.smb_pipe_messages_refused += o.smb_pipe_messages_refused;
        self.smb_requests_dropped += o.smb_requests_dropped;
        self.smb_encrypted_flows += o.smb_encrypted_flows;
        self.smb_encrypted_messages += o.smb_encrypted_messages;
    }
}

/// A flow that just became established (TCP: handshake completed after the
/// originator's SYN) or got its first answer (UDP). Only produced for live
/// capture (see `FlowTable::set_notify_up`), where hand-offs are reported as
/// soon as their follow-up connection is up, long before the flow ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowUp {
    pub proto: u8,
    pub client: IpAddr,
    pub client_port: u16,
    pub server: IpAddr,
    pub server_port: u16,
    pub first_ts: Ts,
    /// When the answer that made it established was seen.
    pub ts: Ts,
}
