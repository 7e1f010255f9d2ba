//! One flow table per logical shard.
//!
//! # Layout
//!
//! * `slab: Vec<Flow>` holds the flows; a flow is named by its `u32` index.
//! * `links: Vec<Link>`, beside it, each slot's last activity, timeout
//!   class and list links (kept apart so that list moves touch this compact
//!   array, not cold flows). Freed slots are chained through `Link::next`.
//! * `index: FlowIndex` (`index.rs`) maps a flow's symmetric 5-tuple hash
//!   ([`FiveTuple::symmetric_hash`]) to its slot; the key itself lives only
//!   in the slab, the index entry holds the slot and a tag from the hash.
//! * Four intrusive doubly-linked lists (by slot index, through
//!   `Link::prev/next`), one per timeout class (handshake, established,
//!   closed, UDP). A list is a *frozen* part, sorted by last activity,
//!   followed by the *current generation*: the flows linked (or moved to
//!   the tail) since the list was last frozen, in the order they joined.
//!   A packet moves its flow to the tail only when the flow is not yet in
//!   the current generation (or changes class): most packets just write
//!   the flow's activity, instead of rewriting the links of two cold
//!   neighbours (measured: ~7 % of the read phase). When a sweep or an
//!   eviction needs the oldest flows and the frozen part is empty, the
//!   list is frozen: sorted by activity (stable), and a new generation
//!   begins. Every frozen flow was last active before the freeze, every
//!   current one after it, so the frozen part's head is the class' least
//!   recently active flow and its expired flows are a prefix. Each flow
//!   takes part in at most one freeze per generation, and a list is frozen
//!   at most once per timeout of capture time by sweeps, so expiry stays
//!   O(1) amortized per flow; the flows a sweep ends are exactly those idle
//!   past their timeout, as with a list kept in activity order. The least
//!   recently active flow (for eviction) is the oldest of 4 frozen heads.
//! * Callers that know the packets ahead (the shard workers) prefetch in
//!   stages: [`FlowTable::prefetch_index`], [`FlowTable::prefetch_flow`],
//!   [`FlowTable::prefetch_app`].
//!
//! # Semantics and simplifications
//!
//! * Originator: the sender of a SYN without ACK; the receiver of a SYN-ACK
//!   seen first; otherwise (UDP, mid-stream TCP) the first sender. Roles
//!   never flip afterwards.
//! * TCP endpoint states, `history` and `conn_state` follow Zeek (see
//!   [`super::tcp`] for what is simplified there). UDP flows report
//!   [`ConnState::Udp`] and history `D`/`d` (a packet seen from that side).
//! * Timeout class: UDP; *closed* (FIN both ways or any RST); *established*
//!   (both endpoints past setup: established, partial or closed); else
//!   *handshake* — which includes one-sided mid-stream traffic, treated
//!   like an unanswered attempt.
//! * A SYN without ACK starts a new flow ([`FlowEnd::Reused`]) when its ISN
//!   differs from the sender's earlier SYN and the flow is closed or never
//!   got past setup (including one-sided mid-stream flows). A SYN with a
//!   new ISN inside an answered, open connection stays in that flow (Zeek
//!   calls it a weird, not a new connection).
//! * SYN retries: SYNs without ACK from the originator repeating its first
//!   SYN's ISN, in any state (e.g. Windows retrying after a RST, which
//!   stays REJ with `syn_retries > 0`). Gaps are between successive SYNs.
//! * Responder TTL / IP ID: from the responder's first packet, whatever
//!   its flags (normally the SYN-ACK or RST).
//! * ICMP errors: matched to the quoted tuple in either direction; for
//!   TCP, if the quoted sender's SYN was seen, the quoted sequence number
//!   must lie in `[ISN, highest sequence it sent]`, else it is unmatched.
//!   An ICMP error is not flow activity (no timestamps, counters or LRU
//!   change).
//! * Payload bytes count the transport payload announced by the headers
//!   (captured + cut by snaplen); bytes are frame `wire_len`.
//!
//! # Determinism
//!
//! Everything is decided from this table's own packet sequence:
//!
//! * The table keeps its own clock, the largest timestamp it has been
//!   given. A flow's "activity" is the clock when it last saw a packet, and
//!   it is expired once `clock - activity > timeout(class)`.
//! * [`FlowTable::advance`] clamps its `now` to that clock, so it can only
//!   remove flows that are already expired by the table's own packets: it
//!   frees memory early but never changes a record.
//! * Before every new flow is inserted, all expired flows are swept (cheap:
//!   4 head checks when nothing expired). So at every insertion the table
//!   holds exactly the live flows, whatever `advance` did earlier; cap
//!   eviction and `peak_tracked` are thus deterministic too.
//! * A packet (or ICMP error) for a flow that is expired but not yet
//!   removed treats it as gone.
//!
//! The *order* of records within `out` depends on when `advance` runs; the
//! multiset of records does not. Sort if you need a stable order.
//!
//! # Memory
//!
//! See [`FLOW_BYTES`]: `size_of::<Flow>()` is 184 bytes and its [`Link`] 24,
//! plus the index at 8 bytes/bucket at a load factor between 1/4 and 1/2
//! (16–32 bytes per flow), about 224–240 bytes per tracked flow. Rare data
//! (SYN retry gaps, ICMP evidence) lives in a lazily allocated box; the slab
//! grows by doubling and reuses freed slots, so its resident size follows
//! the peak.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::index::FlowIndex;
use super::stream::{Chunk, StreamReassembler};
use super::tcp::{letter, Endpoints, Ep, History};
use super::Rfc1006Flow;
use super::{
    AppState, ConnState, FlowConfig, FlowEnd, FlowRecord, FlowStats, FlowUp, IcmpEvidence, SECOND,
};
use crate::event::Event;
use crate::flow::rpc_conn::{ConnCtx, RpcConnection};
use crate::flow::smb_pipe::SmbFlow;
use crate::packet::tcp_flags::{ACK, FIN, RST, SYN};
use crate::packet::{FiveTuple, IcmpMeta, Packet, QuotedFlow, Transport, PROTO_TCP, PROTO_UDP};
use crate::proto::dcerpc::{looks_like_dcerpc, looks_like_dcerpc_cl};
use crate::proto::recognize::{recognize_tcp, recognize_udp};
use crate::proto::rfc1006::{looks_like_tpkt, Rfc1006Conn};
use crate::Ts;

mod parsers;

/// Bytes a tracked flow takes in the slab: its `Flow` and its `Link`
/// (asserted in tests; the index adds [`INDEX_BUCKET_BYTES`] per bucket).
pub const FLOW_BYTES: usize = std::mem::size_of::<Flow>() + std::mem::size_of::<Link>();

/// How much of a flow's parser state [`FlowTable::prefetch_app`] prefetches:
/// what a DCE/RPC connection reads for every segment (the same span of the
/// other parsers' state is at worst wasted).
const APP_PREFETCH_BYTES: usize = crate::flow::rpc_conn::HOT_BYTES;
/// How many flows ahead of the one it removes a sweep loads the next
/// flows (see [`FlowTable::sweep`]).
const SWEEP_AHEAD: usize = 4;

/// Bytes per index bucket (see `index.rs`: at most half the buckets are used).
pub const INDEX_BUCKET_BYTES: usize = std::mem::size_of::<u64>();

/// At most this many SYN gaps are kept per flow.
pub const MAX_SYN_GAPS: usize = 8;
/// At most this many ICMP errors are kept per flow.
pub const MAX_ICMP_EVIDENCE: usize = 4;

const NIL: u32 = u32::MAX;

/// Timeout classes (index into `FlowTable::lists` / `timeouts`).
const C_HANDSHAKE: u8 = 0;
const C_ESTABLISHED: u8 = 1;
const C_CLOSED: u8 = 2;
const C_UDP: u8 = 3;
const C_FREE: u8 = 0xff;
const CLASSES: usize = 4;

/// `Flow::flags` bits.
const F_V6: u8 = 1 << 0;
/// Endpoint 0/1 has sent a packet (seq range initialised; for the
/// responder: TTL / IP ID recorded).
const F_SEEN0: u8 = 1 << 1;
const F_SEEN1: u8 = 1 << 2;
/// Endpoint 0/1 has sent a SYN (its `seq_lo` is its ISN).
const F_SYN0: u8 = 1 << 3;
const F_SYN1: u8 = 1 << 4;
const F_IPID: u8 = 1 << 5;

/// `Flow::run` bits: a run of unanswered data is under way, and it comes
/// from the responder (else the originator).
const RUN_ACTIVE: u8 = 1 << 0;
const RUN_SIDE1: u8 = 1 << 1;
/// `ack_hi[0]` / `ack_hi[1]` hold an acknowledgement number.
const RUN_ACK0: u8 = 1 << 2;
const RUN_ACK1: u8 = 1 << 3;

/// Rarely needed per-flow data, allocated on first use (a SYN retry, an
/// ICMP error, or a first SYN that is not the flow's first packet).
#[derive(Debug, Default)]
struct FlowExtra {
    /// Timestamp of the latest SYN of the pending attempt (None: the flow's
    /// first packet was that SYN, so `first_ts`).
    last_syn_ts: Option<Ts>,
    syn_retries: u32,
    n_gaps: u8,
    syn_gaps_us: [u64; MAX_SYN_GAPS],
    icmp: Vec<IcmpEvidence>,
    /// All ICMP errors that quoted this flow (`icmp` keeps the first few).
    icmp_count: u32,
    /// The current unanswered run, once it has a retransmission or a reset
    /// from the peer (#25).
    stall: Option<super::Stall>,
    /// Datagrams lost in fragments (#25).
    frag: Option<super::FragLoss>,
}

/// One tracked flow. Index 0 = originator, 1 = responder throughout.
///
/// Accounting (x86_64): timestamps 16, counters 48, history order 8, the
/// extra box 8, the parser 16, seq ranges 16, addresses 32, ports 4, the
/// unanswered run's start and two gaps 8 (#25), the acknowledgements that
/// bound the largest segment that passed 12 (#25, path MTU), small fields
/// 12 (one of them the run's bits, in what was padding), padding 4 = 184
/// bytes (expiry and LRU links are in [`Link`]).
pub(crate) struct Flow {
    first_ts: Ts,
    /// Largest packet timestamp seen (reported).
    last_ts: Ts,
    packets: [u64; 2],
    bytes: [u64; 2],
    payload: [u64; 2],
    history_order: u64,
    extra: Option<Box<FlowExtra>>,
    /// The flow's application parser or label, if any (see [`AppState`]).
    app: Option<AppState>,
    /// Per endpoint: ISN (if it sent a SYN) or first seq seen, and one past
    /// the highest sequence number it used. For ICMP quote checks.
    seq_lo: [u32; 2],
    seq_hi: [u32; 2],
    /// After the handshake (#25): when the current run of data from one side
    /// that the other has not answered yet began (ms after `first_ts`,
    /// saturating; valid with `RUN_ACTIVE`), the silence before it, and the
    /// longest such silence after which the run was answered (seconds,
    /// saturating at 18 h: firewall idle timeouts are minutes to hours, and
    /// 8 bytes keep the flow at 168). Inline rather than in `extra`: every
    /// answered connection updates them, and a box per flow would cost an
    /// allocation each.
    run_ms: u32,
    run_gap_s: u16,
    answered_gap_s: u16,
    /// Path MTU (#25): per side, the highest acknowledgement number it sent
    /// (valid with `RUN_ACK0` / `RUN_ACK1`), and per side the most bytes of
    /// its data one acknowledgement of the peer newly covered (saturating):
    /// see [`FlowTable::track_ack`].
    ack_hi: [u32; 2],
    acked_max: [u16; 2],
    /// Addresses; IPv4 in the first 4 bytes, rest zero (see `F_V6`).
    addr: [[u8; 16]; 2],
    port: [u16; 2],
    history_seen: u16,
    responder_ip_id: u16,
    tcp: Endpoints,
    responder_ttl: u8,
    proto: u8,
    flags: u8,
    /// `RUN_ACTIVE`, `RUN_SIDE1`.
    run: u8,
}

/// Per-slot expiry and LRU bookkeeping, kept beside the slab rather than in
/// [`Flow`]: moving a flow to the tail of its list rewrites its neighbours'
/// links, and in this compact array (24 bytes a slot) those stay in cache,
/// whereas the neighbours' `Flow`s are cold. Free slots are chained through
/// `next`.
#[derive(Clone, Copy)]
struct Link {
    /// Table clock at the flow's last packet (drives expiry / LRU order).
    activity: Ts,
    /// `seq << 8 | class`: the table's touch count at the flow's last
    /// packet (its place in last-activity order, ties included; below its
    /// list's `frozen_below` means frozen: see the module docs) and its
    /// timeout class, in one word so that a link stays 24 bytes. 56 bits
    /// of touches last 2^56 packets.
    stamp: u64,
    prev: u32,
    next: u32,
}

impl Link {
    const FREE: Link = Link {
        activity: 0,
        stamp: C_FREE as u64,
        prev: NIL,
        next: NIL,
    };

    #[inline]
    fn class(&self) -> u8 {
        self.stamp as u8
    }

    #[inline]
    fn seq(&self) -> u64 {
        self.stamp >> 8
    }

    #[inline]
    fn set_seq(&mut self, seq: u64) {
        self.stamp = seq << 8 | (self.stamp & 0xff);
    }

    #[inline]
    fn set_class(&mut self, class: u8) {
        self.stamp = (self.stamp & !0xff) | u64::from(class);
    }
}

/// Payload segments (per flow) inspected for a DCE/RPC header before giving
/// up: enough to find the first PDU boundary of a flow picked up mid-stream
/// (counted in the two top bits of `Flow::flags`).
const MAX_APP_PROBES: u8 = 3;
const APP_PROBE_SHIFT: u8 = 6;

/// A packet's addresses / ports in the slab's representation.
#[derive(Clone, Copy)]
struct Key {
    proto: u8,
    v6: bool,
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
}

impl Key {
    fn new(proto: u8, src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> Key {
        let (src, v6) = addr_bytes(src);
        let (dst, _) = addr_bytes(dst);
        Key {
            proto,
            v6,
            src,
            dst,
            sport,
            dport,
        }
    }
}

#[inline]
fn addr_bytes(ip: IpAddr) -> ([u8; 16], bool) {
    match ip {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            (b, false)
        }
        IpAddr::V6(a) => (a.octets(), true),
    }
}

#[inline]
fn addr_ip(b: &[u8; 16], v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(*b))
    } else {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }
}

/// `a` is after `b` in sequence space.
#[inline]
fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl Flow {
    fn vacant() -> Flow {
        Flow {
            first_ts: 0,
            last_ts: 0,
            packets: [0; 2],
            bytes: [0; 2],
            payload: [0; 2],
            history_order: 0,
            extra: None,
            app: None,
            seq_lo: [0; 2],
            seq_hi: [0; 2],
            run_ms: 0,
            run_gap_s: 0,
            answered_gap_s: 0,
            ack_hi: [0; 2],
            acked_max: [0; 2],
            addr: [[0; 16]; 2],
            port: [0; 2],
            history_seen: 0,
            responder_ip_id: 0,
            tcp: Endpoints::default(),
            responder_ttl: 0,
            proto: 0,
            flags: 0,
            run: 0,
        }
    }

    /// A new flow for `key` whose originator is the sender (`orig_is_src`)
    /// or the receiver.
    fn start(key: &Key, orig_is_src: bool, ts: Ts) -> Flow {
        let mut f = Flow::vacant();
        f.first_ts = ts;
        f.last_ts = ts;
        f.proto = key.proto;
        f.flags = if key.v6 { F_V6 } else { 0 };
        if orig_is_src {
            f.addr = [key.src, key.dst];
            f.port = [key.sport, key.dport];
        } else {
            f.addr = [key.dst, key.src];
            f.port = [key.dport, key.sport];
        }
        f
    }

    /// The timeout class of a new flow.
    fn initial_class(&self) -> u8 {
        if self.proto == PROTO_UDP {
            C_UDP
        } else {
            C_HANDSHAKE
        }
    }

    /// `Some(true)` if the packet goes originator → responder, `Some(false)`
    /// for the reverse, `None` if it is another flow.
    #[inline]
    fn direction(&self, k: &Key) -> Option<bool> {
        if self.proto != k.proto || (self.flags & F_V6 != 0) != k.v6 {
            return None;
        }
        if self.port == [k.sport, k.dport] && self.addr[0] == k.src && self.addr[1] == k.dst {
            Some(true)
        } else if self.port == [k.dport, k.sport] && self.addr[0] == k.dst && self.addr[1] == k.src
        {
            Some(false)
        } else {
            None
        }
    }

    fn tuple(&self) -> FiveTuple {
        let v6 = self.flags & F_V6 != 0;
        FiveTuple {
            proto: self.proto,
            src: addr_ip(&self.addr[0], v6),
            dst: addr_ip(&self.addr[1], v6),
            sport: self.port[0],
            dport: self.port[1],
        }
    }

    fn history(&self) -> History {
        History::from_parts(self.history_seen, self.history_order)
    }

    /// The current unanswered run's start and the silence before it.
    fn run_start(&self) -> (Ts, Ts) {
        (
            self.first_ts + u64::from(self.run_ms) * 1_000_000,
            u64::from(self.run_gap_s) * SECOND,
        )
    }

    fn extra(&mut self) -> &mut FlowExtra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Timeout class from the current state.
    fn compute_class(&self) -> u8 {
        if self.proto == PROTO_UDP {
            C_UDP
        } else if self.tcp.is_closed() {
            C_CLOSED
        } else if self.tcp.is_answered() {
            C_ESTABLISHED
        } else {
            C_HANDSHAKE
        }
    }

    /// A SYN without ACK from the side `is_orig` with sequence `seq` starts
    /// a new connection on this tuple: the old one is closed (FIN both
    /// ways, or RST) or never got past setup, and the SYN is not a
    /// retransmission of that side's pending SYN (same ISN). A responder
    /// SYN while the originator's SYN is pending is a simultaneous open
    /// (Zeek establishes both sides), not a reuse.
    fn is_reused_by(&self, is_orig: bool, seq: u32) -> bool {
        let d = if is_orig { 0 } else { 1 };
        let syn_bit = if is_orig { F_SYN0 } else { F_SYN1 };
        if self.flags & syn_bit != 0 && self.seq_lo[d] == seq {
            return false;
        }
        if self.tcp.is_closed() {
            return true;
        }
        let simultaneous_open =
            !is_orig && matches!(self.tcp.state[0], Ep::SynSent | Ep::SynAckSent);
        !self.tcp.is_answered() && !simultaneous_open
    }

    /// Addresses for application parsers (originator = client).
    fn conn_ctx(&self, ts: Ts) -> ConnCtx {
        let v6 = self.flags & F_V6 != 0;
        ConnCtx {
            ts,
            client: addr_ip(&self.addr[0], v6),
            client_port: self.port[0],
            server: addr_ip(&self.addr[1], v6),
            server_port: self.port[1],
        }
    }

    /// Ends the flow's application parser (delivering what it buffered)
    /// and returns its summary.
    #[allow(clippy::type_complexity)]
    fn finish_app(
        &mut self,
        events: &mut Vec<Event>,
    ) -> (
        Option<Box<crate::flow::rpc_conn::RpcSummary>>,
        Option<Box<super::AppLabel>>,
    ) {
        let ctx = self.conn_ctx(self.last_ts);
        match self.app.take() {
            Some(AppState::Rpc(mut rpc)) => {
                rpc.finish(&ctx, events);
                (Some(Box::new(rpc.summary())), None)
            }
            Some(AppState::RpcCl(cl)) => (Some(Box::new(cl.summary())), None),
            Some(AppState::Rfc1006(r)) => (None, r.into_label()),
            Some(AppState::Label(l)) => (None, Some(l)),
            Some(AppState::RpcDone(s)) => (Some(s), None),
            Some(AppState::Smb(smb)) => {
                let done = smb.finish(&ctx, events);
                (done.rpc, Some(done.label))
            }
            Some(AppState::SmbDone(done)) => (done.rpc, Some(done.label)),
            None => (None, None),
        }
    }

    fn record(&mut self, end: FlowEnd, events: &mut Vec<Event>) -> FlowRecord {
        let (rpc, app) = self.finish_app(events);
        let v6 = self.flags & F_V6 != 0;
        let history = self.history();
        let state = if self.proto == PROTO_UDP {
            ConnState::Udp
        } else {
            self.tcp.conn_state(self.payload, &history)
        };
        let (syn_retries, syn_gaps_us, icmp, icmp_count, losses) = match self.extra.take() {
            Some(x) => {
                let x = *x;
                (
                    x.syn_retries,
                    x.syn_gaps_us[..x.n_gaps as usize].into(),
                    x.icmp.into_boxed_slice(),
                    x.icmp_count,
                    super::Losses::boxed(x.stall, x.frag),
                )
            }
            None => (0, Box::default(), Box::default(), 0, None),
        };
        let responded = self.flags & F_SEEN1 != 0;
        FlowRecord {
            proto: self.proto,
            client: addr_ip(&self.addr[0], v6),
            client_port: self.port[0],
            server: addr_ip(&self.addr[1], v6),
            server_port: self.port[1],
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            state,
            history: history.letters(),
            syn_retries,
            syn_gaps_us,
            packets: self.packets,
            bytes: self.bytes,
            payload_bytes: self.payload,
            responder_ttl: responded.then_some(self.responder_ttl),
            responder_ip_id: (self.flags & F_IPID != 0).then_some(self.responder_ip_id),
            icmp,
            icmp_count,
            rpc,
            app,
            end,
            losses,
            longest_answered_gap_s: self.answered_gap_s,
        }
    }
}

#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
    /// Flows whose `Link::seq` is at least this joined the tail since the
    /// last freeze (the current generation), in that order; the others (a
    /// prefix) are frozen, sorted by `seq`.
    frozen_below: u64,
    /// Table clock at the last freeze: every flow of the current
    /// generation was active at or after it, every frozen one before.
    since: Ts,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
        frozen_below: 0,
        since: 0,
    };
}

/// The flow table of one logical shard. See the module docs for layout,
/// determinism and memory.
pub struct FlowTable {
    config: FlowConfig,
    timeouts: [Ts; CLASSES],
    cap: usize,
    index: FlowIndex,
    slab: Vec<Flow>,
    /// Expiry and LRU links of `slab[i]`, same length.
    links: Vec<Link>,
    free: u32,
    lists: [List; CLASSES],
    live: usize,
    clock: Ts,
    stats: FlowStats,
    /// Flows with a live application parser.
    app_live: usize,
    /// The flows with a buffering parser, per kind, and what they hold
    /// (`parsers.rs`).
    pools: parsers::Pools,
    /// Events from application parsers, drained by the owner.
    events: Vec<Event>,
    /// Live capture only: record flows as their handshake completes (or a
    /// UDP conversation gets its first answer) in `ups`.
    notify_up: bool,
    ups: Vec<FlowUp>,
    /// Scratch for [`FlowTable::sweep`]: the slots of the flows it ends.
    doomed: Vec<u32>,
    /// Touches so far (insertions and packets): `Link::seq`.
    touches: u64,
}

fn pkt_sport(p: &Packet) -> u16 {
    match p.transport {
        Transport::Tcp(t) => t.sport,
        Transport::Udp(u) => u.sport,
        _ => 0,
    }
}

fn pkt_dport(p: &Packet) -> u16 {
    match p.transport {
        Transport::Tcp(t) => t.dport,
        Transport::Udp(u) => u.dport,
        _ => 0,
    }
}

fn slot_hash(slab: &[Flow], i: u32) -> u64 {
    slab[i as usize].tuple().symmetric_hash()
}

impl FlowTable {
    pub fn new(config: FlowConfig) -> Self {
        FlowTable {
            timeouts: [
                config.tcp_handshake_timeout,
                config.tcp_established_timeout,
                config.tcp_closed_timeout,
                config.udp_timeout,
            ],
            cap: config.max_flows_per_shard.max(1),
            config,
            index: FlowIndex::default(),
            slab: Vec::new(),
            links: Vec::new(),
            free: NIL,
            lists: [List::EMPTY; CLASSES],
            live: 0,
            clock: 0,
            stats: FlowStats::default(),
            app_live: 0,
            pools: parsers::Pools::default(),
            events: Vec::new(),
            notify_up: false,
            ups: Vec::new(),
            doomed: Vec::new(),
            touches: 0,
        }
    }

    /// Live capture: note every flow whose handshake completes (TCP, a SYN
    /// seen from the originator) or that gets its first answer (UDP), for
    /// [`FlowTable::drain_ups`]. Off by default; records are unchanged.
    pub fn set_notify_up(&mut self, on: bool) {
        self.notify_up = on;
    }

    /// Moves the flows noted by [`FlowTable::set_notify_up`] into `into`.
    pub fn drain_ups(&mut self, into: &mut Vec<FlowUp>) {
        into.append(&mut self.ups);
    }

    /// Moves the events application parsers produced into `into`.
    pub fn drain_events(&mut self, into: &mut Vec<Event>) {
        into.append(&mut self.events);
    }

    pub fn config(&self) -> &FlowConfig {
        &self.config
    }

    /// Flows currently held (live, plus expired ones not yet swept).
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    pub fn stats(&self) -> FlowStats {
        self.stats
    }

    /// The latest capture time this table has seen.
    pub fn clock(&self) -> Ts {
        self.clock
    }

    /// Account one packet. TCP and UDP update their flow; an ICMP error
    /// quoting a TCP/UDP packet attaches [`IcmpEvidence`] to that flow (or
    /// counts `icmp_unmatched`). Anything else is ignored.
    ///
    /// `payload` is the captured transport payload. It is not used yet:
    /// application parsers will hang off `Flow::app` from here.
    pub fn process(&mut self, pkt: &Packet, payload: &[u8], out: &mut Vec<FlowRecord>) {
        let hash = pkt.tuple().map_or(0, |t| t.symmetric_hash());
        self.process_hashed(pkt, hash, payload, out);
    }

    /// [`FlowTable::process`] for a packet whose flow hash the caller
    /// already has: `hash` must be `pkt.tuple()`'s
    /// [`FiveTuple::symmetric_hash`] (it is ignored for ICMP errors, which
    /// are looked up by the tuple they quote).
    pub fn process_hashed(
        &mut self,
        pkt: &Packet,
        hash: u64,
        payload: &[u8],
        out: &mut Vec<FlowRecord>,
    ) {
        debug_assert!(pkt.tuple().is_none_or(|t| t.symmetric_hash() == hash));
        match pkt.transport {
            Transport::Tcp(t) => {
                let len = t.payload.len as u64 + t.payload.missing as u64;
                if let Some((i, is_orig)) = self.l4(
                    pkt,
                    hash,
                    PROTO_TCP,
                    t.sport,
                    t.dport,
                    Some((t.flags, t.seq)),
                    len,
                    out,
                ) {
                    self.app_tcp(i, is_orig, pkt, &t, payload);
                }
            }
            Transport::Udp(u) => {
                let len = u.payload.len as u64 + u.payload.missing as u64;
                if let Some((i, is_orig)) =
                    self.l4(pkt, hash, PROTO_UDP, u.sport, u.dport, None, len, out)
                {
                    self.app_udp(i, is_orig, pkt, payload);
                }
            }
            Transport::Icmp(ref m) => {
                if let Some(q) = m.quoted {
                    self.icmp(pkt, m, &q);
                }
            }
            Transport::Other(_) => {}
        }
    }

    /// Expire flows idle longer than their timeout at `now` (capture time).
    /// `now` is clamped to the latest timestamp this table has seen, so
    /// this only frees memory early: records are the same as if it were
    /// never called.
    pub fn advance(&mut self, now: Ts, out: &mut Vec<FlowRecord>) {
        let now = now.min(self.clock);
        self.sweep(now, out);
    }

    /// Live capture: moves this table's clock to `now` (the wall clock while
    /// no packet arrives) and expires the flows idle longer than their
    /// timeout, so a silent link still ends its flows on time. Offline
    /// analysis never calls it (its clock is only ever packet time).
    pub fn advance_clock(&mut self, now: Ts, out: &mut Vec<FlowRecord>) {
        self.clock = self.clock.max(now);
        let now = self.clock;
        self.sweep(now, out);
    }

    /// Emit every remaining flow: `IdleTimeout` if it was already expired
    /// at the table's clock, else `EndOfCapture`.
    pub fn finish(self, out: &mut Vec<FlowRecord>) -> FlowStats {
        let mut events = Vec::new();
        self.finish_with_events(out, &mut events)
    }

    /// [`FlowTable::finish`], also moving out every event not yet drained
    /// (application parsers deliver what they buffered when a flow ends).
    pub fn finish_with_events(
        mut self,
        out: &mut Vec<FlowRecord>,
        events: &mut Vec<Event>,
    ) -> FlowStats {
        events.append(&mut self.events);
        let clock = self.clock;
        out.reserve(self.live);
        let mut order = std::mem::take(&mut self.doomed);
        for c in 0..CLASSES {
            self.list_prefix(c, |_| true, &mut order);
            for (k, &i) in order.iter().enumerate() {
                self.prefetch_ending(&order, k);
                let link = self.links[i as usize];
                let f = &mut self.slab[i as usize];
                let end = if clock.saturating_sub(link.activity) > self.timeouts[c] {
                    self.stats.flows_timed_out += 1;
                    FlowEnd::IdleTimeout
                } else {
                    FlowEnd::EndOfCapture
                };
                out.push(f.record(end, events));
            }
        }
        self.stats
    }

    // ---- per-packet path ------------------------------------------------

    /// The slot of the packet's flow and whether the packet is from its
    /// originator: the live flow of `key`, else a new one (an expired flow
    /// or one whose port pair a new SYN reuses is ended first). Always
    /// inlined: it is `l4`'s first step, on every packet.
    #[inline(always)]
    fn lookup_or_start(
        &mut self,
        key: &Key,
        hash: u64,
        tcp: Option<(u8, u32)>,
        ts: Ts,
        now: Ts,
        out: &mut Vec<FlowRecord>,
    ) -> (u32, bool) {
        let found = self.find(hash, key);

        let mut hit = None;
        if let Some(i) = found {
            let f = &self.slab[i as usize];
            // Asked again rather than captured by `find`'s closure: that
            // measured 3-4 % more CPU (the lookup's inlining suffers).
            let is_orig = f.direction(key) == Some(true);
            if self.is_expired(i, now) {
                self.remove(i, FlowEnd::IdleTimeout, out);
            } else if matches!(tcp, Some((fl, seq)) if fl & (SYN | ACK) == SYN && f.is_reused_by(is_orig, seq))
            {
                self.stats.flows_reused += 1;
                self.remove(i, FlowEnd::Reused, out);
            } else {
                hit = Some((i, is_orig));
            }
        }
        match hit {
            Some(h) => h,
            None => {
                // Originator: the SYN sender; the receiver of a SYN-ACK;
                // otherwise the first sender.
                let orig_is_src = match tcp {
                    Some((fl, _)) => fl & (SYN | ACK) != (SYN | ACK),
                    None => true,
                };
                let f = Flow::start(key, orig_is_src, ts);
                (self.insert(hash, f, out), orig_is_src)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn l4(
        &mut self,
        pkt: &Packet,
        hash: u64,
        proto: u8,
        sport: u16,
        dport: u16,
        tcp: Option<(u8, u32)>,
        len: u64,
        out: &mut Vec<FlowRecord>,
    ) -> Option<(u32, bool)> {
        self.clock = self.clock.max(pkt.ts);
        let now = self.clock;
        let key = Key::new(proto, pkt.ip.src, pkt.ip.dst, sport, dport);

        let (i, is_orig) = self.lookup_or_start(&key, hash, tcp, pkt.ts, now, out);

        let first_packet = self.slab[i as usize].packets == [0, 0];
        let f = &mut self.slab[i as usize];
        let d = if is_orig { 0 } else { 1 };
        f.packets[d] += 1;
        f.bytes[d] += pkt.wire_len as u64;
        f.payload[d] += len;
        let prev_ts = f.last_ts;
        f.last_ts = f.last_ts.max(pkt.ts);
        let seen_bit = if is_orig { F_SEEN0 } else { F_SEEN1 };
        let first_from_side = f.flags & seen_bit == 0;
        f.flags |= seen_bit;
        if first_from_side && !is_orig {
            f.responder_ttl = pkt.ip.ttl;
            if let Some(id) = pkt.ip.ip_id {
                f.responder_ip_id = id;
                f.flags |= F_IPID;
            }
        }

        match tcp {
            Some((fl, seq)) => {
                let mut h = f.history();
                h.add_tcp(is_orig, fl, len);
                (f.history_seen, f.history_order) = h.parts();
                if proto == PROTO_TCP {
                    Self::track_run(f, d, fl, seq, len, first_from_side, prev_ts, pkt);
                }
                Self::track_seq(f, d, fl, seq, len, first_from_side, first_packet, pkt.ts);
                f.tcp.update(is_orig, fl, len);
            }
            None => {
                // Zeek's UDP history: D / d for each direction seen.
                let mut h = f.history();
                h.add(letter::D + if is_orig { 0 } else { letter::RESP });
                (f.history_seen, f.history_order) = h.parts();
            }
        }

        let class = f.compute_class();
        if self.notify_up {
            let up = if proto == PROTO_UDP {
                first_from_side && !is_orig
            } else {
                self.links[i as usize].class() == C_HANDSHAKE
                    && class == C_ESTABLISHED
                    && f.flags & F_SYN0 != 0
            };
            if up {
                let v6 = f.flags & F_V6 != 0;
                let note = FlowUp {
                    proto,
                    client: addr_ip(&f.addr[0], v6),
                    client_port: f.port[0],
                    server: addr_ip(&f.addr[1], v6),
                    server_port: f.port[1],
                    first_ts: f.first_ts,
                    ts: pkt.ts,
                };
                self.ups.push(note);
            }
        }
        self.touch(i, class, now);
        Some((i, is_orig))
    }

    /// Starts RFC 1006 parsing on flow `i` with its first TPKT segment.
    fn start_rfc1006(
        &mut self,
        i: u32,
        is_orig: bool,
        ts: Ts,
        t: &crate::packet::TcpMeta,
        payload: &[u8],
    ) {
        if !self.claim_parser_slot(ts) {
            self.stats.app.rfc1006_over_cap += 1;
            self.slab[i as usize].flags |= MAX_APP_PROBES << APP_PROBE_SHIFT;
            return;
        }
        let f = &self.slab[i as usize];
        let mut streams = [
            StreamReassembler::new(crate::flow::rpc_conn::STREAM_BUFFER),
            StreamReassembler::new(crate::flow::rpc_conn::STREAM_BUFFER),
        ];
        for (d, s) in streams.iter_mut().enumerate() {
            let syn_bit = if d == 0 { F_SYN0 } else { F_SYN1 };
            if f.flags & syn_bit != 0 {
                s.on_syn(f.seq_lo[d]);
            }
        }
        let mut flow = Box::new(Rfc1006Flow {
            streams,
            conn: Rfc1006Conn::new(),
            accounted: 0,
            last_progress: ts,
        });
        self.stats.app.rfc1006_flows += 1;
        let d = if is_orig { 0 } else { 1 };
        Self::rfc1006_segment(&mut flow, d, ts, t, payload, &mut self.stats.app);
        self.slab[i as usize].app = Some(AppState::Rfc1006(flow));
        self.adopt_parser(i, parsers::ParserKind::Rfc1006);
    }

    /// Starts SMB parsing (named pipes, #24) on flow `i` with its first
    /// payload segment: an NBSS message carrying SMB, or a session request.
    /// Its parser counts with DCE/RPC's (slot, budget).
    fn start_smb(
        &mut self,
        i: u32,
        is_orig: bool,
        pkt: &Packet,
        t: &crate::packet::TcpMeta,
        payload: &[u8],
    ) {
        // The label the payload recognizers give (`smb`, or `netbios-ssn`
        // for a session request), as without the parser.
        let label = if is_orig {
            recognize_tcp(payload, &[])
        } else {
            recognize_tcp(&[], payload)
        }
        .map(super::AppLabel::recognized)
        .unwrap_or(super::AppLabel {
            service: "smb",
            detail: None,
            rfc1006: None,
            smb: None,
        });
        if !self.claim_parser_slot(pkt.ts) {
            self.stats.app.smb_over_cap += 1;
            let f = &mut self.slab[i as usize];
            f.flags |= MAX_APP_PROBES << APP_PROBE_SHIFT;
            f.app = Some(AppState::Label(Box::new(label)));
            return;
        }
        let f = &mut self.slab[i as usize];
        let mut smb = Box::new(SmbFlow::new(label));
        for d in 0..2 {
            let syn_bit = if d == 0 { F_SYN0 } else { F_SYN1 };
            if f.flags & syn_bit != 0 {
                smb.on_syn(d, f.seq_lo[d]);
            }
        }
        let ctx = f.conn_ctx(pkt.ts);
        smb.on_segment(
            if is_orig { 0 } else { 1 },
            t.seq,
            payload,
            t.payload.missing,
            t.flags & FIN != 0,
            &ctx,
            &mut self.events,
        );
        Self::count_smb(&Default::default(), &smb.counters(), &mut self.stats.app);
        f.app = Some(AppState::Smb(smb));
        self.stats.app.smb_flows += 1;
        self.adopt_parser(i, parsers::ParserKind::Rpc);
    }

    /// Adds what an SMB parser counted during one segment to the table's
    /// counters.
    fn count_smb(
        before: &crate::flow::smb_pipe::SmbSummary,
        after: &crate::flow::smb_pipe::SmbSummary,
        stats: &mut super::AppStats,
    ) {
        stats.smb_pipes += after.pipes_opened - before.pipes_opened;
        stats.smb_pipes_over_cap += after.pipes_over_cap - before.pipes_over_cap;
        stats.smb_pipe_messages_refused +=
            after.pipe_messages_refused - before.pipe_messages_refused;
        stats.smb_requests_dropped += after.requests_dropped - before.requests_dropped;
        stats.smb_encrypted_messages += after.encrypted_messages - before.encrypted_messages;
        if before.encrypted_messages == 0 && after.encrypted_messages > 0 {
            stats.smb_encrypted_flows += 1;
        }
    }

    /// Feeds one segment to an RFC 1006 parser and counts what it cut; a
    /// whole TPKT framed is progress (for [`PARSER_STALLED_AFTER`]).
    fn rfc1006_segment(
        r: &mut Rfc1006Flow,
        d: usize,
        ts: Ts,
        t: &crate::packet::TcpMeta,
        payload: &[u8],
        stats: &mut super::AppStats,
    ) {
        let before = r.conn.framing()[d];
        let Rfc1006Flow { streams, conn, .. } = r;
        streams[d].push(t.seq, payload, t.flags & FIN != 0, &mut |c| match c {
            Chunk::Data(b) => conn.on_data(d, b),
            Chunk::Gap { .. } => conn.gap(d),
        });
        let after = r.conn.framing()[d];
        stats.rfc1006_tpkts_cut += after.tpkts_cut - before.tpkts_cut;
        stats.rfc1006_bytes_passed += after.bytes_passed - before.bytes_passed;
        if after.packets != before.packets {
            r.last_progress = ts;
        }
    }

    /// Application parsing of one UDP datagram of flow `i`: probe the first
    /// datagrams for connectionless DCE/RPC, then feed the flow's parser.
    fn app_udp(&mut self, i: u32, is_orig: bool, pkt: &Packet, payload: &[u8]) {
        let f = &mut self.slab[i as usize];
        if f.app.is_none() {
            let probes = f.flags >> APP_PROBE_SHIFT;
            if payload.is_empty() || probes >= MAX_APP_PROBES {
                return;
            }
            f.flags += 1 << APP_PROBE_SHIFT;
            if !self.config.dcerpc || !looks_like_dcerpc_cl(payload) {
                let (o, r) = if is_orig {
                    (payload, &[][..])
                } else {
                    (&[][..], payload)
                };
                let (op, rp) = if is_orig {
                    (pkt_sport(pkt), pkt_dport(pkt))
                } else {
                    (pkt_dport(pkt), pkt_sport(pkt))
                };
                if let Some(r) = recognize_udp(o, r, op, rp) {
                    f.app = Some(AppState::Label(Box::new(super::AppLabel::recognized(r))));
                }
                return;
            }
            if !self.claim_parser_slot(pkt.ts) {
                self.stats.app.rpc_over_cap += 1;
                self.slab[i as usize].flags |= MAX_APP_PROBES << APP_PROBE_SHIFT;
                return;
            }
            self.slab[i as usize].app = Some(AppState::RpcCl(Box::default()));
            self.app_live += 1;
            self.stats.app.rpc_flows += 1;
        }
        let f = &mut self.slab[i as usize];
        if matches!(f.app, Some(AppState::RpcCl(_))) {
            let ctx = f.conn_ctx(pkt.ts);
            if let Some(AppState::RpcCl(cl)) = &mut f.app {
                cl.on_datagram(if is_orig { 0 } else { 1 }, payload, &ctx, &mut self.events);
            }
        }
    }

    /// Application parsing of one TCP segment of flow `i`: probe the first
    /// payload segments for DCE/RPC, then feed the flow's parser.
    fn app_tcp(
        &mut self,
        i: u32,
        is_orig: bool,
        pkt: &Packet,
        t: &crate::packet::TcpMeta,
        payload: &[u8],
    ) {
        let f = &mut self.slab[i as usize];
        if f.app.is_none() {
            let probes = f.flags >> APP_PROBE_SHIFT;
            if payload.is_empty() || probes >= MAX_APP_PROBES {
                return;
            }
            f.flags += 1 << APP_PROBE_SHIFT;
            // A first segment too short to show a whole header, at the known
            // start of the stream, that begins like one: parse speculatively
            // (the PDU framer validates as bytes arrive).
            let d = if is_orig { 0 } else { 1 };
            let syn_bit = if d == 0 { F_SYN0 } else { F_SYN1 };
            let short_start = payload.len() < 16
                && f.flags & syn_bit != 0
                && t.seq == f.seq_lo[d].wrapping_add(1)
                && payload[0] == 5
                && payload.get(1).is_none_or(|m| *m <= 1);
            // The ncacn_http banner from the server (the mapper on 593, an
            // RPC proxy's backend connection): DCE/RPC follows it (#24).
            // A first segment shorter than the banner, at the known start
            // of the server's stream, that begins it: the same.
            let banner = d == 1 && self.config.dcerpc && {
                let b = crate::proto::rpch::NCACN_HTTP_BANNER;
                payload.starts_with(b)
                    || (payload.len() < b.len()
                        && b.starts_with(payload)
                        && f.flags & syn_bit != 0
                        && t.seq == f.seq_lo[d].wrapping_add(1))
            };
            // SMB (#24) likewise: a first segment too short to show the
            // protocol id, at the known start of a stream to 445 or 139,
            // that begins like an NBSS header.
            let short_smb = payload.len() < 8
                && f.flags & syn_bit != 0
                && t.seq == f.seq_lo[d].wrapping_add(1)
                && matches!(f.port[1], 445 | 139)
                && matches!(payload[0], 0x00 | 0x81);
            if !banner && (!self.config.dcerpc || (!short_start && !looks_like_dcerpc(payload))) {
                if self.config.dcerpc && (short_smb || crate::proto::smb::looks_like_smb(payload)) {
                    self.start_smb(i, is_orig, pkt, t, payload);
                } else if looks_like_tpkt(payload) {
                    self.start_rfc1006(i, is_orig, pkt.ts, t, payload);
                } else if let Some(r) = if is_orig {
                    recognize_tcp(payload, &[])
                } else {
                    recognize_tcp(&[], payload)
                } {
                    if is_orig && r.service == "rpc-over-http" {
                        // The URL names the backend the proxy connects to:
                        // a hand-off (#24).
                        if let Some(req) = crate::proto::rpch::parse_proxy_request(payload) {
                            let ctx = self.slab[i as usize].conn_ctx(pkt.ts);
                            self.events.push(crate::event::Event::EpmAnswer(
                                crate::event::EpmAnswerEvent::rpc_proxy(
                                    pkt.ts,
                                    (ctx.client, ctx.client_port),
                                    (ctx.server, ctx.server_port),
                                    req,
                                ),
                            ));
                        }
                    }
                    self.slab[i as usize].app =
                        Some(AppState::Label(Box::new(super::AppLabel::recognized(r))));
                }
                return;
            }
            if !self.claim_parser_slot(pkt.ts) {
                self.stats.app.rpc_over_cap += 1;
                self.slab[i as usize].flags |= MAX_APP_PROBES << APP_PROBE_SHIFT;
                return;
            }
            let f = &mut self.slab[i as usize];
            let mut rpc = Box::new(if banner {
                RpcConnection::ncacn_http(t.seq)
            } else {
                RpcConnection::new()
            });
            for d in 0..2 {
                let syn_bit = if d == 0 { F_SYN0 } else { F_SYN1 };
                if f.flags & syn_bit != 0 {
                    rpc.on_syn(d, f.seq_lo[d]);
                }
            }
            f.app = Some(AppState::Rpc(rpc));
            self.stats.app.rpc_flows += 1;
            self.adopt_parser(i, parsers::ParserKind::Rpc);
        }
        let f = &mut self.slab[i as usize];
        // Labeled flows (most recognized ones) need nothing more per packet.
        if matches!(
            f.app,
            None | Some(AppState::Label(_))
                | Some(AppState::RpcDone(_))
                | Some(AppState::SmbDone(_))
        ) {
            return;
        }
        // A bare ACK means nothing to a stream parser (the reassemblers
        // ignore it too); most packets of a bulk transfer are one.
        if payload.is_empty() && t.flags & FIN == 0 && t.payload.missing == 0 {
            return;
        }
        let ctx = f.conn_ctx(pkt.ts);
        let Some(app) = &mut f.app else {
            return;
        };
        match app {
            AppState::RpcCl(_)
            | AppState::Label(_)
            | AppState::RpcDone(_)
            | AppState::SmbDone(_) => {}
            AppState::Smb(smb) => {
                let before = smb.counters();
                smb.on_segment(
                    if is_orig { 0 } else { 1 },
                    t.seq,
                    payload,
                    t.payload.missing,
                    t.flags & FIN != 0,
                    &ctx,
                    &mut self.events,
                );
                Self::count_smb(&before, &smb.counters(), &mut self.stats.app);
            }
            AppState::Rfc1006(r) => {
                let d = if is_orig { 0 } else { 1 };
                Self::rfc1006_segment(r, d, pkt.ts, t, payload, &mut self.stats.app);
            }
            AppState::Rpc(rpc) => {
                let refused = rpc.refused_pdus();
                rpc.on_segment(
                    if is_orig { 0 } else { 1 },
                    t.seq,
                    payload,
                    t.payload.missing,
                    t.flags & FIN != 0,
                    &ctx,
                    &mut self.events,
                );
                self.stats.app.rpc_pdus_refused += rpc.refused_pdus() - refused;
            }
        }
        self.settle_parser(i);
        if self.links[i as usize].class() == C_CLOSED {
            self.retire_parser(i);
        }
    }

    /// After the handshake (#25): follows runs of data (or FIN) from one
    /// side that the other side has not answered yet. Called before
    /// `track_seq` and the state update, so `seq_hi` and the endpoint states
    /// are those before this packet. `prev_ts` is the flow's last packet
    /// before this one. A run starts with a segment carrying data from a side
    /// of an answered connection; any packet from the peer ends it (an
    /// answer: its silence was survived), except a reset, which is kept as
    /// evidence with its TTL and IP ID. Sequence-space retransmissions
    /// within a run are counted in `extra` (allocated only then).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn track_run(
        f: &mut Flow,
        d: usize,
        fl: u8,
        seq: u32,
        len: u64,
        first_from_side: bool,
        prev_ts: Ts,
        pkt: &Packet,
    ) {
        let ts = pkt.ts;
        let acked = fl & (ACK | RST) == ACK && Self::track_ack(f, d, pkt);
        if f.run & RUN_ACTIVE != 0 && usize::from(f.run & RUN_SIDE1 != 0) != d {
            if fl & RST != 0 {
                let (run_ts, gap) = f.run_start();
                let x = f.extra();
                let stall = x
                    .stall
                    .get_or_insert(super::Stall::new(d == 1, gap, run_ts));
                stall.reset.get_or_insert(super::StallReset {
                    ts,
                    ttl: Some(pkt.ip.ttl),
                    ip_id: pkt.ip.ip_id,
                });
                return;
            }
            // A packet that acknowledges none of the run's data (the
            // peer's own data, a duplicate acknowledgement, its FIN after
            // giving up) is no answer: the run goes on.
            if !acked {
                return;
            }
            // Answered: the silence before the run did not kill the
            // connection.
            f.answered_gap_s = f.answered_gap_s.max(f.run_gap_s);
            f.run &= !(RUN_ACTIVE | RUN_SIDE1);
            if let Some(x) = f.extra.as_mut() {
                x.stall = None;
            }
        }
        let seg = len + u64::from(fl & FIN != 0);
        if seg == 0 || fl & (SYN | RST) != 0 || first_from_side || !f.tcp.is_answered() {
            return;
        }
        if f.run & RUN_ACTIVE == 0 {
            f.run |= RUN_ACTIVE | if d == 1 { RUN_SIDE1 } else { 0 };
            f.run_ms = u32::try_from(ts.saturating_sub(f.first_ts) / 1_000_000).unwrap_or(u32::MAX);
            f.run_gap_s = u16::try_from(ts.saturating_sub(prev_ts) / SECOND).unwrap_or(u16::MAX);
        }
        let end = seq.wrapping_add(seg as u32);
        if seq_after(end, f.seq_hi[d]) {
            return;
        }
        // Nothing new: the same bytes (or FIN) sent again, unanswered.
        let (run_ts, gap) = f.run_start();
        let passed = f.acked_max[d];
        let x = f.extra();
        let stall = x
            .stall
            .get_or_insert(super::Stall::new(d == 0, gap, run_ts));
        stall.retransmissions = stall.retransmissions.saturating_add(1);
        stall.retransmitted_bytes = stall.retransmitted_bytes.saturating_add(len);
        stall.last_ts = ts;
        stall.passed_max = passed;
        if len > 0 {
            let l = u16::try_from(len).unwrap_or(u16::MAX);
            stall.seg_min = stall.seg_min.min(l);
            stall.seg_max = stall.seg_max.max(l);
            stall.df &= pkt.ip.dont_fragment || pkt.ip.ip_id.is_none();
        }
    }

    /// How much of the peer's data each acknowledgement from `d` newly
    /// covers; true when it covers some (or is the first seen from `d`,
    /// which cannot be told: taken as news). Whether the peer's unanswered
    /// run was answered (#25), and, for path MTU: the largest such step
    /// bounds from above the largest segment of the peer known to have
    /// passed, so data the peer then sends again and again in larger
    /// segments points at a path that drops what is too big for it.
    #[inline]
    fn track_ack(f: &mut Flow, d: usize, pkt: &Packet) -> bool {
        let Transport::Tcp(t) = pkt.transport else {
            return true;
        };
        let bit = if d == 0 { RUN_ACK0 } else { RUN_ACK1 };
        if f.run & bit == 0 {
            f.run |= bit;
            f.ack_hi[d] = t.ack;
            return true;
        }
        let step = t.ack.wrapping_sub(f.ack_hi[d]);
        // Forward only (an old acknowledgement out of order is no news).
        if step != 0 && step < 1 << 30 {
            let p = 1 - d;
            f.acked_max[p] = f.acked_max[p].max(u16::try_from(step).unwrap_or(u16::MAX));
            f.ack_hi[d] = t.ack;
            return true;
        }
        false
    }

    /// Sequence ranges, ISNs and SYN retransmissions for endpoint `d`.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn track_seq(
        f: &mut Flow,
        d: usize,
        fl: u8,
        seq: u32,
        len: u64,
        first_from_side: bool,
        first_packet: bool,
        ts: Ts,
    ) {
        let syn = fl & SYN != 0;
        let seg = (len as u32)
            .wrapping_add(syn as u32)
            .wrapping_add((fl & FIN != 0) as u32);
        let end = seq.wrapping_add(seg);
        let syn_bit = if d == 0 { F_SYN0 } else { F_SYN1 };
        let had_syn = f.flags & syn_bit != 0;
        if syn && !had_syn {
            // First SYN of this side: its ISN anchors the range.
            f.flags |= syn_bit;
            f.seq_lo[d] = seq;
            f.seq_hi[d] = end;
            if !first_packet && d == 0 {
                f.extra().last_syn_ts = Some(ts);
            }
        } else if first_from_side {
            f.seq_lo[d] = seq;
            f.seq_hi[d] = end;
        } else if fl & RST == 0 && seq_after(end, f.seq_hi[d]) {
            f.seq_hi[d] = end;
        }
        if syn && fl & ACK == 0 && d == 0 && had_syn && seq == f.seq_lo[0] {
            // Same ISN as the pending attempt: a retransmitted SYN.
            let first_ts = f.first_ts;
            let x = f.extra();
            let prev = x.last_syn_ts.unwrap_or(first_ts);
            x.syn_retries = x.syn_retries.saturating_add(1);
            if (x.n_gaps as usize) < MAX_SYN_GAPS {
                x.syn_gaps_us[x.n_gaps as usize] = ts.saturating_sub(prev) / 1_000;
                x.n_gaps += 1;
            }
            x.last_syn_ts = Some(ts);
        }
    }

    /// A datagram of some flow that never completed: its fragments after
    /// the first were lost (#25). Counted in `fragments_lost_unmatched` when
    /// its flow is not tracked (any more).
    pub fn fragments_lost(&mut self, l: &crate::packet::Incomplete) {
        let key = Key::new(l.proto, l.src, l.dst, l.sport, l.dport);
        let hash = FiveTuple {
            proto: l.proto,
            src: l.src,
            dst: l.dst,
            sport: l.sport,
            dport: l.dport,
        }
        .symmetric_hash();
        let now = self.clock;
        let Some(i) = self.find(hash, &key).filter(|&i| !self.is_expired(i, now)) else {
            self.stats.fragments_lost_unmatched += 1;
            return;
        };
        let f = &mut self.slab[i as usize];
        let lost = super::FragLoss::of(l, f.direction(&key) == Some(true));
        let x = f.extra();
        match &mut x.frag {
            Some(have) if have.from_originator == lost.from_originator => have.add(&lost),
            // The responder's losses win over the originator's.
            Some(have) if have.from_originator => *have = lost,
            Some(_) => {}
            None => x.frag = Some(lost),
        }
    }

    /// ICMP error quoting a packet of some flow.
    fn icmp(&mut self, pkt: &Packet, m: &IcmpMeta, q: &QuotedFlow) {
        self.clock = self.clock.max(pkt.ts);
        let now = self.clock;
        let t = &q.tuple;
        let key = Key::new(t.proto, t.src, t.dst, t.sport, t.dport);
        let hash = t.symmetric_hash();
        let Some(i) = self.find(hash, &key).filter(|&i| !self.is_expired(i, now)) else {
            self.stats.icmp_unmatched += 1;
            return;
        };
        let f = &mut self.slab[i as usize];
        let quotes_originator = f.direction(&key) == Some(true);
        let d = if quotes_originator { 0 } else { 1 };
        let syn_bit = if d == 0 { F_SYN0 } else { F_SYN1 };
        if let (PROTO_TCP, Some(seq)) = (f.proto, q.tcp_seq) {
            // If the quoted sender's ISN is known, the quoted segment must
            // lie within [ISN, highest seq it sent]; otherwise accept.
            if f.flags & syn_bit != 0
                && seq.wrapping_sub(f.seq_lo[d]) > f.seq_hi[d].wrapping_sub(f.seq_lo[d])
            {
                self.stats.icmp_unmatched += 1;
                return;
            }
        }
        let x = f.extra();
        x.icmp_count = x.icmp_count.saturating_add(1);
        if x.icmp.len() < MAX_ICMP_EVIDENCE {
            x.icmp.push(IcmpEvidence {
                ts: pkt.ts,
                sender: pkt.ip.src,
                v6: m.v6,
                icmp_type: m.icmp_type,
                code: m.code,
                quotes_originator,
                mtu: m.mtu,
            });
        }
    }

    // ---- slab, index and lists ------------------------------------------

    /// Insert a new flow: sweep expired flows, evict the least recently
    /// active one if at the cap, then store it.
    fn insert(&mut self, hash: u64, f: Flow, out: &mut Vec<FlowRecord>) -> u32 {
        self.sweep(self.clock, out);
        if self.live >= self.cap {
            self.evict_lru(out);
        }
        let class = f.initial_class();
        let i = if self.free != NIL {
            let i = self.free;
            self.free = self.links[i as usize].next;
            self.slab[i as usize] = f;
            i
        } else {
            let i = self.slab.len() as u32;
            assert!(i != NIL, "flow slab index overflow");
            self.slab.push(f);
            self.links.push(Link::FREE);
            i
        };
        self.index.insert(hash, i);
        self.live += 1;
        self.stats.flows_created += 1;
        self.stats.peak_tracked = self.stats.peak_tracked.max(self.live as u64);
        self.touches += 1;
        self.links[i as usize].activity = self.clock;
        self.links[i as usize].set_seq(self.touches);
        self.link_tail(i, class);
        i
    }

    /// The slot of the flow `key` belongs to (either direction).
    #[inline]
    fn find(&self, hash: u64, key: &Key) -> Option<u32> {
        let slab = &self.slab;
        self.index
            .find(hash, |i| slab[i as usize].direction(key).is_some())
    }

    /// Whether flow `i` has been idle past its class' timeout at `now`.
    #[inline]
    fn is_expired(&self, i: u32, now: Ts) -> bool {
        let l = &self.links[i as usize];
        now.saturating_sub(l.activity) > self.timeouts[l.class() as usize]
    }

    /// First stage of prefetching for a packet with symmetric hash `hash`
    /// that will be processed soon: starts loading its index bucket.
    #[inline]
    pub fn prefetch_index(&self, hash: u64) {
        self.index.prefetch(hash);
    }

    /// Second stage, some packets later (once the bucket has arrived): starts
    /// loading the packet's flow and its links, if tracked. A caller that
    /// knows the packets ahead overlaps their memory latency with the
    /// current packet's work this way. Changes nothing.
    #[inline]
    pub fn prefetch_flow(&self, hash: u64) {
        let Some(i) = self.index.candidate(hash) else {
            return;
        };
        if let Some(f) = self.slab.get(i as usize) {
            crate::prefetch::bytes((f as *const Flow).cast(), std::mem::size_of::<Flow>());
        }
        if let Some(l) = self.links.get(i as usize) {
            crate::prefetch::line(l);
        }
    }

    /// Third stage, a few packets later still (once the flow has arrived):
    /// starts loading the first `APP_PREFETCH_BYTES` of the flow's parser
    /// state (DCE/RPC, RFC 1006), which every segment of such a flow reads.
    #[inline]
    pub fn prefetch_app(&self, hash: u64) {
        let Some(i) = self.index.candidate(hash) else {
            return;
        };
        // (Not the flow's list neighbours: a packet rewrites their links
        // only when its flow joins a new generation, about once a timeout.)
        let app = self.slab.get(i as usize).and_then(|f| f.app.as_ref());
        if let Some((state, true)) = app.map(AppState::state_ptr) {
            crate::prefetch::bytes(state, APP_PREFETCH_BYTES);
        }
    }

    /// Remove expired flows (their list prefixes) as of `now`.
    ///
    /// The flows a periodic sweep removes have been idle for a timeout, so
    /// nothing of them is cached, and one removal after another waited for
    /// each flow, then its index bucket (~450 ns a flow; tens of thousands
    /// per sweep). So a prefix is first collected from the links, then
    /// removed in the same order while the flows [`SWEEP_AHEAD`] ahead are
    /// loaded ([`FlowTable::prefetch_ending`]).
    fn sweep(&mut self, now: Ts, out: &mut Vec<FlowRecord>) {
        for c in 0..CLASSES {
            let timeout = self.timeouts[c];
            let stale = |l: &Link| now.saturating_sub(l.activity) > timeout;
            while let Some(head) = self.links.get(self.lists[c].head as usize) {
                if head.seq() >= self.lists[c].frozen_below {
                    // No frozen part: the whole list is the current
                    // generation, all active since `since`.
                    if now.saturating_sub(self.lists[c].since) <= timeout {
                        break;
                    }
                    self.freeze(c);
                    continue;
                }
                // Most calls (one per new flow) end nothing: the frozen
                // head, the least recently active, tells.
                if !stale(head) {
                    break;
                }
                let frozen_below = self.lists[c].frozen_below;
                let mut doomed = std::mem::take(&mut self.doomed);
                self.list_prefix(c, |l| l.seq() < frozen_below && stale(l), &mut doomed);
                for (k, &i) in doomed.iter().enumerate() {
                    self.prefetch_ending(&doomed, k);
                    self.remove(i, FlowEnd::IdleTimeout, out);
                }
                self.doomed = doomed;
                // The frozen part may be used up: then the current
                // generation is looked at (and frozen if it may hold
                // expired flows).
            }
        }
    }

    /// Sorts list `class` into last-activity order (by `seq`: the order a
    /// list moving every touched flow to its tail would have) and starts a
    /// new generation, so the whole list becomes its frozen part. Called
    /// when the frozen part is empty.
    fn freeze(&mut self, class: usize) {
        let mut order = std::mem::take(&mut self.doomed);
        self.list_prefix(class, |_| true, &mut order);
        let links = &self.links;
        // One list holds one class: the stamps order by `seq`.
        order.sort_unstable_by_key(|&i| links[i as usize].stamp);
        let mut prev = NIL;
        for &i in &order {
            let l = &mut self.links[i as usize];
            l.prev = prev;
            l.next = NIL;
            if prev != NIL {
                self.links[prev as usize].next = i;
            }
            prev = i;
        }
        let list = &mut self.lists[class];
        list.head = order.first().copied().unwrap_or(NIL);
        list.tail = prev;
        list.frozen_below = self.touches + 1;
        list.since = self.clock;
        self.doomed = order;
    }

    /// The slots of `class`'s list from its head, for as long as `take`
    /// holds of their links, into `into` (cleared first).
    fn list_prefix(&self, class: usize, take: impl Fn(&Link) -> bool, into: &mut Vec<u32>) {
        into.clear();
        let mut i = self.lists[class].head;
        while let Some(l) = self.links.get(i as usize).filter(|l| take(l)) {
            into.push(i);
            i = l.next;
        }
    }

    /// For the removal of `slots[k]` (flows about to end, in order):
    /// starts loading the flow `2 * SWEEP_AHEAD` ahead, and, its flow having
    /// arrived, the index bucket and parser state of the one `SWEEP_AHEAD`
    /// ahead. Changes nothing.
    #[inline]
    fn prefetch_ending(&self, slots: &[u32], k: usize) {
        if let Some(f) = slots
            .get(k + 2 * SWEEP_AHEAD)
            .and_then(|&j| self.slab.get(j as usize))
        {
            crate::prefetch::bytes((f as *const Flow).cast(), std::mem::size_of::<Flow>());
        }
        if let Some(f) = slots
            .get(k + SWEEP_AHEAD)
            .and_then(|&j| self.slab.get(j as usize))
        {
            self.index.prefetch(f.tuple().symmetric_hash());
            if let Some((state, _)) = f.app.as_ref().map(AppState::state_ptr) {
                crate::prefetch::line(state);
            }
        }
    }

    /// Evict the least recently active flow (oldest frozen list head; ties
    /// go to the lower class index).
    fn evict_lru(&mut self, out: &mut Vec<FlowRecord>) {
        for c in 0..CLASSES {
            let l = self.lists[c];
            if l.head != NIL && self.links[l.head as usize].seq() >= l.frozen_below {
                self.freeze(c);
            }
        }
        let mut best: Option<(Ts, u32)> = None;
        for l in &self.lists {
            if l.head != NIL {
                let a = self.links[l.head as usize].activity;
                if !matches!(best, Some((b, _)) if b <= a) {
                    best = Some((a, l.head));
                }
            }
        }
        if let Some((_, i)) = best {
            self.stats.flows_evicted += 1;
            self.remove(i, FlowEnd::Evicted, out);
        }
    }

    /// Unlink, unindex, emit and free slot `i`.
    fn remove(&mut self, i: u32, end: FlowEnd, out: &mut Vec<FlowRecord>) {
        self.unlink(i);
        let hash = slot_hash(&self.slab, i);
        self.index.remove(hash, i);
        if end == FlowEnd::IdleTimeout {
            self.stats.flows_timed_out += 1;
        }
        if self.unaccount_parser(i).is_none()
            && matches!(self.slab[i as usize].app, Some(AppState::RpcCl(_)))
        {
            self.app_live -= 1;
        }
        let f = &mut self.slab[i as usize];
        out.push(f.record(end, &mut self.events));
        f.app = None;
        self.links[i as usize] = Link {
            next: self.free,
            ..Link::FREE
        };
        self.free = i;
        self.live -= 1;
    }

    /// Mark activity, and move `i` to the tail of `class`'s list unless
    /// it is in that list's current generation already.
    #[inline]
    fn touch(&mut self, i: u32, class: u8, now: Ts) {
        self.touches += 1;
        let l = &mut self.links[i as usize];
        l.activity = now;
        let current = l.seq() >= self.lists[class as usize].frozen_below;
        l.set_seq(self.touches);
        if l.class() == class && current {
            return;
        }
        self.unlink(i);
        self.link_tail(i, class);
    }

    fn unlink(&mut self, i: u32) {
        let l = self.links[i as usize];
        let (prev, next, c) = (l.prev, l.next, l.class() as usize);
        if prev == NIL {
            self.lists[c].head = next;
        } else {
            self.links[prev as usize].next = next;
        }
        if next == NIL {
            self.lists[c].tail = prev;
        } else {
            self.links[next as usize].prev = prev;
        }
        let l = &mut self.links[i as usize];
        l.prev = NIL;
        l.next = NIL;
    }

    fn link_tail(&mut self, i: u32, class: u8) {
        let c = class as usize;
        let tail = self.lists[c].tail;
        {
            let l = &mut self.links[i as usize];
            l.prev = tail;
            l.next = NIL;
            l.set_class(class);
        }
        if tail == NIL {
            self.lists[c].head = i;
        } else {
            self.links[tail as usize].next = i;
        }
        self.lists[c].tail = i;
    }
}
