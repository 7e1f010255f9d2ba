//! The judgement: the one rule that says whether an attempt to reach a
//! server's port worked, failed (how, with what evidence, whose doing), or
//! cannot be told from this capture (and why).
//!
//! Everything that needs the answer reads it from here: the verdicts and
//! findings ([`super::evaluate`]), the text report's failed attempts and
//! the baselines ([`flow_outcomes`]), and the live stream's
//! `attempt-failed` records ([`flow_attempt`]). [`Context`] adds to the one
//! flow what only the whole capture shows: how each server answers
//! elsewhere (forged resets), the capture's end, its scans, the unicast
//! replies to group queries, and the second tap.

use std::net::IpAddr;

use hashbrown::{HashMap, HashSet};

use super::{on_parts, scans, FindingKind, Scans};
use crate::contract::contract_enum;
use crate::correlate::{tcp_established, Correlated, Handoff, Outcome};
use crate::event::InterfaceId;
use crate::finding::{Confidence, Direction, Evidence, IcmpMeaning, Tap};
use crate::flow::{ConnState, FlowRecord, Stall, SECOND};
use crate::packet::{PROTO_TCP, PROTO_UDP};
use crate::taps::TapView;
use crate::Ts;

/// A TCP attempt whose only SYN was sent less than this before the capture
/// ended is not called unanswered: the answer may simply not be captured.
const SYN_GRACE: Ts = 3 * SECOND;

/// Services that answer every request: a request with no answer at all is
/// evidence (weaker than an unanswered SYN: a server may ignore a query).
const REQUEST_RESPONSE_UDP: &[&str] = &["dns", "kerberos", "ntp", "ldap", "epm", "netbios-ns"];

/// What one flow (or hand-off) says about reaching server:port.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub client: IpAddr,
    pub server: IpAddr,
    pub proto: u8,
    pub port: u16,
    pub service: &'static str,
    pub interface: Option<InterfaceId>,
    pub ts: Ts,
    pub last_ts: Ts,
    pub result: AttemptResult,
    /// A second piece of evidence about an attempt already counted (two
    /// taps: a drop measured beside a failure the tap already showed).
    pub extra: bool,
}

/// (client, server, proto, port): what an attempt tried to reach, and from where.
pub type AttemptKey = (IpAddr, IpAddr, u8, u16);

impl Attempt {
    pub fn key(&self) -> AttemptKey {
        (self.client, self.server, self.proto, self.port)
    }
}

/// Whose doing a failure was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Failure {
    /// Something on the way stopped it (no answer, a forged reset, a
    /// filter's ICMP error, a drop between two taps).
    Blocked,
    /// The host itself said no (its own reset or port unreachable, an
    /// RFC 1006 refusal).
    RefusedByHost,
    /// The answer (or the request) came in fragments of which only the
    /// first arrived (#25).
    FragmentsDropped,
}

impl Failure {
    /// The finding a failure of this kind makes.
    pub fn finding_kind(self) -> FindingKind {
        match self {
            Failure::Blocked => FindingKind::Blocked,
            Failure::RefusedByHost => FindingKind::RefusedByHost,
            Failure::FragmentsDropped => FindingKind::FragmentsDropped,
        }
    }
}

contract_enum! {
    /// Why the capture cannot tell whether an attempt worked.
    pub enum NoVerdict {
        /// A lone SYN or query sent too close to the capture's end for its
        /// answer to be in it.
        CaptureEnded => "capture-ended",
        /// Not an attempt the packets settle: picked up mid-stream, or
        /// neither a handshake nor a clean failure.
        MidStream => "mid-stream",
        /// Neither TCP nor UDP.
        NotTcpUdp => "not-tcp-udp",
        /// A lone SYN to a server whose answers this capture misses (a
        /// one-way tap): it may well have been answered.
        OneWay => "one-way",
        /// A probe of a port scan, sweep or flood (see [`super::scans`]):
        /// its failure says nothing about a service.
        ScanProbe => "scan-probe",
    }
}

/// The judgement of one attempt.
#[derive(Clone, Debug)]
pub enum AttemptResult {
    Working,
    /// One-way UDP: it left this tap, its delivery is unknown.
    Unconfirmed,
    Failed {
        failure: Failure,
        /// Boxed: most attempts work, and a million of them must stay small.
        evidence: Box<Evidence>,
    },
    /// Nothing can be concluded, and why.
    Inconclusive(NoVerdict),
}

impl AttemptResult {
    /// `Some(true)` worked, `Some(false)` failed, `None`: cannot be told
    /// (including one-way UDP).
    pub fn worked(&self) -> Option<bool> {
        match self {
            AttemptResult::Working => Some(true),
            AttemptResult::Failed { .. } => Some(false),
            AttemptResult::Unconfirmed | AttemptResult::Inconclusive(_) => None,
        }
    }

    fn failed(failure: Failure, evidence: Evidence) -> AttemptResult {
        AttemptResult::Failed {
            failure,
            evidence: Box::new(evidence),
        }
    }
}

/// A set of TTL values (one bit each), iterated in ascending order.
#[derive(Default)]
struct TtlSet([u64; 4]);

impl TtlSet {
    fn insert(&mut self, ttl: u8) {
        self.0[usize::from(ttl >> 6)] |= 1 << (ttl & 63);
    }

    fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        (0..=u8::MAX).filter(|&t| self.0[usize::from(t >> 6)] & (1 << (t & 63)) != 0)
    }
}

/// The normal look of a host's own answers.
#[derive(Default)]
struct HostProfile {
    ttls: TtlSet,
    ip_id_zero: u32,
    ip_id_nonzero: u32,
}

/// Profiles of the servers that answered, looked up by address.
#[derive(Default)]
pub struct HostProfiles(HashMap<IpAddr, HostProfile>);

impl HostProfiles {
    /// Learns from `f` how its server answers (flows it answered only).
    pub fn add(&mut self, f: &FlowRecord) {
        let answered = if f.proto == PROTO_TCP {
            tcp_established(f.state)
        } else {
            f.packets[1] > 0
        };
        let Some(ttl) = f.responder_ttl.filter(|_| answered) else {
            return;
        };
        let h = self.0.entry(f.server).or_default();
        h.ttls.insert(ttl);
        match f.responder_ip_id {
            Some(0) => h.ip_id_zero += 1,
            Some(_) => h.ip_id_nonzero += 1,
            None => {}
        }
    }

    fn get(&self, ip: &IpAddr) -> Option<&HostProfile> {
        self.0.get(ip)
    }

    fn merge(&mut self, later: HostProfiles) {
        if self.0.is_empty() {
            *self = later;
            return;
        }
        for (ip, h) in later.0 {
            let into = self.0.entry(ip).or_default();
            for (a, b) in into.ttls.0.iter_mut().zip(h.ttls.0) {
                *a |= b;
            }
            into.ip_id_zero += h.ip_id_zero;
            into.ip_id_nonzero += h.ip_id_nonzero;
        }
    }
}

/// A UDP query to a group or broadcast address: (querier, its port, the
/// queried port).
type GroupQuery = (IpAddr, u16, u16);

/// What the judgement needs of the whole capture, gathered in one pass
/// over the flows on all cores (one pass, not one per need: on 626,320
/// flows three serial passes cost ~35 ms, more than the judging).
#[derive(Default)]
struct Survey {
    /// How each answering host answers.
    hosts: HostProfiles,
    /// The latest flow timestamp.
    end: Ts,
    /// The flows that are probes ([`scans::is_probe`]), by index.
    probes: Vec<usize>,
    /// Group queries and when they were asked, in flow order.
    queries: Vec<(GroupQuery, Ts)>,
}

impl Survey {
    fn of(flows: &[FlowRecord], c: &Correlated) -> Survey {
        let parts = on_parts(flows, |offset, part| {
            let mut s = Survey::default();
            for (k, f) in part.iter().enumerate() {
                s.end = s.end.max(f.last_ts);
                s.hosts.add(f);
                // The shape test first: the label is looked up for few flows.
                if scans::probe_shaped(f) && scans::is_probe(f, c) {
                    s.probes.push(offset + k);
                }
                if f.proto == PROTO_UDP && is_group_address(&f.server) {
                    s.queries
                        .push(((f.client, f.client_port, f.server_port), f.first_ts));
                }
            }
            s
        });
        let mut all = Survey::default();
        for s in parts {
            all.end = all.end.max(s.end);
            all.hosts.merge(s.hosts);
            all.probes.extend(s.probes);
            all.queries.extend(s.queries);
        }
        all
    }
}

/// Was a reset answering a SYN forged by something on the way?
fn judge_rst(f: &FlowRecord, host: Option<&HostProfile>) -> Evidence {
    rst_evidence(f.first_ts, f, f.responder_ttl, f.responder_ip_id, host)
}

/// A reset from `f`'s server address at `ts` with this TTL and IP ID,
/// compared with how the host answers elsewhere: forged on the way, or the
/// host's own. The one rule for resets answering a SYN and for those
/// answering data after the handshake (#25).
fn rst_evidence(
    ts: Ts,
    f: &FlowRecord,
    ttl: Option<u8>,
    ip_id: Option<u16>,
    host: Option<&HostProfile>,
) -> Evidence {
    let host_ttls: Vec<u8> = host.map(|h| h.ttls.iter().collect()).unwrap_or_default();
    let host_zero = host.and_then(|h| match (h.ip_id_zero, h.ip_id_nonzero) {
        (0, 0) => None,
        (z, n) => Some(z >= n),
    });
    let ttl_differs = match (ttl, host_ttls.is_empty()) {
        (Some(t), false) => Some(!host_ttls.contains(&t)),
        _ => None,
    };
    let id_differs = match (ip_id, host_zero) {
        (Some(id), Some(zero)) => Some((id == 0) != zero),
        _ => None,
    };
    let describe_ttl = || {
        format!(
            "its TTL {} differs from the {} of the host's own answers ({})",
            ttl.map_or("?".into(), |t| t.to_string()),
            if host_ttls.len() == 1 { "TTL" } else { "TTLs" },
            host_ttls
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let (forged, confidence, reason) = match (ttl_differs, id_differs) {
        (Some(true), Some(true)) => (
            Some(true),
            Confidence::High,
            format!("{}, and so does its IP ID pattern: sent by a device on the way (a firewall), not by the host", describe_ttl()),
        ),
        (Some(true), _) => (
            Some(true),
            Confidence::High,
            format!("{}: sent by a device on the way (a firewall), not by the host", describe_ttl()),
        ),
        (Some(false), Some(true)) => (
            Some(true),
            Confidence::Medium,
            "its TTL matches the host's answers but its IP ID pattern does not: probably forged by a firewall at the same distance".into(),
        ),
        (Some(false), _) => (
            Some(false),
            Confidence::High,
            "its TTL (and IP ID pattern) match the host's own answers: the host itself says the port is closed".into(),
        ),
        (None, Some(true)) => (
            Some(true),
            Confidence::Medium,
            "its IP ID pattern differs from the host's own answers: probably forged by a firewall".into(),
        ),
        (None, Some(false)) => (
            Some(false),
            Confidence::Low,
            "no TTL to compare; its IP ID pattern matches the host's answers".into(),
        ),
        (None, None) => (
            None,
            Confidence::Low,
            "the host was never seen answering another connection, so nothing to compare the reset with: taken as the host's own".into(),
        ),
    };
    Evidence::Rst {
        ts,
        client: f.client,
        client_port: f.client_port,
        ttl,
        ip_id,
        host_ttls,
        host_ip_id_zero: host_zero,
        forged,
        confidence,
        reason,
    }
}

/// Silence on a connection at least this long before data that is never
/// answered makes it a connection the firewall forgot (`killed-after-idle`)
/// rather than a black hole: stateful firewalls time out idle connections
/// after minutes (the lab's after 15 s), while the gaps inside a working
/// exchange are far below this.
pub const IDLE_KILL_MIN_GAP: Ts = 10 * crate::flow::SECOND;
/// Unanswered data counts only when sent at least this many times again
/// over at least this long: fewer could be a loss the capture ended on.
pub const STALL_MIN_RETRANSMISSIONS: u32 = 2;
pub const STALL_MIN_SPAN: Ts = crate::flow::SECOND;

/// After the handshake (#25): the data of an answered connection that the
/// peer never answered, as a `killed-after-idle` (after a silence of at
/// least `IDLE_KILL_MIN_GAP`) or `black-hole` finding's evidence. Only
/// what a firewall is to blame for: retransmitted again and again with no
/// answer at all, or (after the silence) answered by a reset the host did
/// not send (by TTL / IP ID, as for resets to a SYN). A reset the host
/// itself sent is its own decision, and data answered in the end is no
/// failure: neither is flagged.
pub fn stall_finding(f: &FlowRecord, hosts: &HostProfiles) -> Option<(FindingKind, Evidence)> {
    let s = f.stall()?;
    if f.proto != PROTO_TCP {
        return None;
    }
    let idle = s.idle_gap >= IDLE_KILL_MIN_GAP;
    if let Some(e) = path_mtu_evidence(f, s) {
        // After a long silence a firewall that forgot the connection
        // explains the loss as well, unless the ICMP was seen.
        if !idle
            || matches!(
                e,
                Evidence::PathMtu {
                    icmp_sender: Some(_),
                    ..
                }
            )
        {
            return Some((FindingKind::PmtuBlackHole, e));
        }
    }
    let reset = match s.reset {
        Some(r) => {
            let e = rst_evidence(r.ts, f, r.ttl, r.ip_id, hosts.get(&f.server));
            let forged = matches!(
                e,
                Evidence::Rst {
                    forged: Some(true),
                    ..
                }
            );
            if !(forged && idle) {
                return None;
            }
            Some(Box::new(e))
        }
        None => None,
    };
    let retried = s.retransmissions >= STALL_MIN_RETRANSMISSIONS
        && s.last_ts.saturating_sub(s.start_ts) >= STALL_MIN_SPAN;
    if reset.is_none() && !retried {
        return None;
    }
    let kind = if idle {
        FindingKind::KilledAfterIdle
    } else {
        FindingKind::BlackHole
    };
    Some((
        kind,
        Evidence::DataUnanswered {
            ts: s.start_ts,
            client: f.client,
            client_port: f.client_port,
            direction: Direction::from_originator(s.from_originator),
            idle_gap_ms: s.idle_gap / 1_000_000,
            retransmissions: s.retransmissions,
            retransmitted_bytes: s.retransmitted_bytes,
            span_us: s.last_ts.saturating_sub(s.start_ts) / 1_000,
            reset,
        },
    ))
}

/// The largest TCP payload any IPv4 path carries whole (576-byte datagrams,
/// RFC 791, less 40 bytes of headers) and any IPv6 path (1280, RFC 8200):
/// segments no larger cannot be too big for a link.
const PMTU_SAFE_PAYLOAD_V4: u16 = 536;
const PMTU_SAFE_PAYLOAD_V6: u16 = 1220;

/// Path MTU (#25): the unanswered data of `s` as a `path-mtu` evidence when
/// it looks too big for the path rather than dropped for any reason: sent
/// again and again (as for any stall), every retransmission with
/// don't-fragment and larger than both what every path carries and the most
/// of that side's data one acknowledgement ever covered (so smaller
/// segments passed, none as big is known to have). An ICMP "fragmentation
/// needed" / "packet too big" quoting that side's data, seen here, is named:
/// it came this far but the sender kept sending big segments.
fn path_mtu_evidence(f: &FlowRecord, s: &Stall) -> Option<Evidence> {
    let safe = if f.server.is_ipv6() {
        PMTU_SAFE_PAYLOAD_V6
    } else {
        PMTU_SAFE_PAYLOAD_V4
    };
    let retried = s.retransmissions >= STALL_MIN_RETRANSMISSIONS
        && s.last_ts.saturating_sub(s.start_ts) >= STALL_MIN_SPAN;
    if !retried
        || s.reset.is_some()
        || !s.df
        || s.seg_max == 0
        || s.seg_min <= safe
        || s.passed_max == 0
        || s.seg_min <= s.passed_max
    {
        return None;
    }
    let icmp = f.icmp.iter().find(|e| {
        e.quotes_originator == s.from_originator
            && matches!((e.v6, e.icmp_type, e.code), (false, 3, 4) | (true, 2, _))
    });
    Some(Evidence::PathMtu {
        ts: s.start_ts,
        client: f.client,
        client_port: f.client_port,
        direction: Direction::from_originator(s.from_originator),
        retransmissions: s.retransmissions,
        segment_bytes: s.seg_min,
        largest_segment_bytes: s.seg_max,
        passed_bytes: s.passed_max,
        span_us: s.last_ts.saturating_sub(s.start_ts) / 1_000,
        icmp_sender: icmp.map(|e| e.sender),
        icmp_mtu: icmp.and_then(|e| e.mtu),
    })
}

/// IP fragments (#25): a flow none of whose answers came whole, with
/// datagrams whose first fragment came and whose later ones did not.
fn fragments_evidence(f: &FlowRecord) -> Option<Evidence> {
    let l = f.frag_loss()?;
    Some(Evidence::FragmentsMissing {
        ts: l.first_ts,
        client: f.client,
        client_port: f.client_port,
        direction: Direction::from_originator(l.from_originator),
        datagrams: l.datagrams,
        fragments: l.fragments,
        received_bytes: l.received,
        datagram_bytes: l.len,
        whole_on: None,
    })
}

/// The ICMP error quoting the attempt, if one came: a filter's, or the
/// host's own "port unreachable" (a closed port).
fn icmp_evidence(f: &FlowRecord) -> Option<(Failure, Evidence)> {
    let e = f.icmp.iter().find(|e| e.quotes_originator)?;
    let meaning = IcmpMeaning::of(e.v6, e.icmp_type, e.code);
    // The host's own "port unreachable" is a closed port; from anyone else
    // (iptables' default REJECT) it is a filter.
    let kind = if meaning == IcmpMeaning::PortUnreachable && e.sender == f.server {
        Failure::RefusedByHost
    } else {
        Failure::Blocked
    };
    Some((
        kind,
        Evidence::IcmpUnreachable {
            ts: e.ts,
            client: f.client,
            client_port: f.client_port,
            sender: e.sender,
            v6: e.v6,
            icmp_type: e.icmp_type,
            code: e.code,
            meaning,
        },
    ))
}

/// A multicast address, the limited broadcast, or (a heuristic, since the
/// netmask is not in the packets) an IPv4 address ending in .255, where
/// NetBIOS and others broadcast on a /24: nothing there answers as itself.
pub fn is_group_address(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_multicast() || v4.is_broadcast() || v4.octets()[3] == 255,
        IpAddr::V6(v6) => v6.is_multicast(),
    }
}

/// Of the group `queries` (in report order), those a unicast reply
/// answered: a flow from the queried port back to the querier's address and
/// port, starting no earlier than the query (the latest one asked).
fn multicast_answered(flows: &[FlowRecord], queries: &[(GroupQuery, Ts)]) -> HashSet<GroupQuery> {
    if queries.is_empty() {
        return HashSet::new();
    }
    let queries: HashMap<GroupQuery, Ts> = queries.iter().copied().collect();
    on_parts(flows, |_, part| {
        part.iter()
            .filter(|r| r.proto == PROTO_UDP && !is_group_address(&r.server))
            .filter_map(|r| {
                let key = (r.server, r.server_port, r.client_port);
                queries
                    .get(&key)
                    .filter(|&&asked| r.first_ts >= asked)
                    .map(|_| key)
            })
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Nothing but SYNs (and the client's own resets) and no answer.
fn only_syns(f: &FlowRecord) -> bool {
    f.packets[1] == 0 && f.history.chars().all(|c| c == 'S' || c == 'R')
}

/// The judgement of one flow as an attempt to reach its server's port,
/// from the flow alone and how the servers answer elsewhere (`hosts`):
/// worked, failed (how, with what evidence), or cannot be told (why).
/// `capture_end`: the latest packet seen (the live stream's clock).
/// `Context::judge` adds what only the whole capture shows.
pub fn flow_attempt(
    f: &FlowRecord,
    c: &Correlated,
    hosts: &HostProfiles,
    capture_end: Ts,
) -> Attempt {
    let label = c.label(f);
    Attempt {
        client: f.client,
        server: f.server,
        proto: f.proto,
        port: f.server_port,
        service: label.service,
        interface: label.interface,
        ts: f.first_ts,
        last_ts: f.last_ts,
        result: match f.proto {
            PROTO_TCP => judge_tcp(f, c, hosts, capture_end),
            PROTO_UDP => judge_udp(f, c, label.service, capture_end),
            _ => AttemptResult::Inconclusive(NoVerdict::NotTcpUdp),
        },
        extra: false,
    }
}

fn judge_tcp(
    f: &FlowRecord,
    c: &Correlated,
    hosts: &HostProfiles,
    capture_end: Ts,
) -> AttemptResult {
    if tcp_established(f.state) {
        // Connected; RFC 1006 can still refuse the transport connection.
        let refused = |reason: String| {
            AttemptResult::failed(
                Failure::RefusedByHost,
                Evidence::CotpRefused {
                    ts: f.first_ts,
                    client: f.client,
                    client_port: f.client_port,
                    reason,
                },
            )
        };
        use crate::proto::rfc1006::Outcome as Cotp;
        return match f
            .app
            .as_ref()
            .and_then(|app| app.rfc1006.as_ref())
            .map(|r| &r.outcome)
        {
            Some(Cotp::Refused { reason, name }) => refused(format!("DR reason {reason} ({name})")),
            Some(Cotp::Error { cause, name }) => refused(format!("ER cause {cause} ({name})")),
            _ => AttemptResult::Working,
        };
    }
    if let Some((failure, ev)) = icmp_evidence(f).filter(|_| f.packets[1] == 0) {
        return AttemptResult::failed(failure, ev);
    }
    if f.state == ConnState::REJ {
        let ev = judge_rst(f, hosts.get(&f.server));
        let failure = match &ev {
            Evidence::Rst {
                forged: Some(true), ..
            } => Failure::Blocked,
            _ => Failure::RefusedByHost,
        };
        return AttemptResult::failed(failure, ev);
    }
    if !(matches!(f.state, ConnState::S0 | ConnState::RSTOS0 | ConnState::SH)
        && only_syns(f)
        && f.history.contains('S'))
    {
        return AttemptResult::Inconclusive(NoVerdict::MidStream);
    }
    let syns = f.syn_retries + 1;
    // A lone SYN to a server whose answers this capture misses may well
    // have been answered (by a reset the client obeyed); a retransmitted
    // one was not: the client itself says so.
    if syns < 2 {
        if c.one_way.contains_key(&f.server) {
            return AttemptResult::Inconclusive(NoVerdict::OneWay);
        }
        if capture_end.saturating_sub(f.last_ts) < SYN_GRACE {
            return AttemptResult::Inconclusive(NoVerdict::CaptureEnded);
        }
    }
    AttemptResult::failed(
        Failure::Blocked,
        Evidence::SynUnanswered {
            ts: f.first_ts,
            client: f.client,
            client_port: f.client_port,
            syns,
            gaps_us: f.syn_gaps_us.to_vec(),
        },
    )
}

fn judge_udp(f: &FlowRecord, c: &Correlated, service: &str, capture_end: Ts) -> AttemptResult {
    if f.packets[1] > 0 {
        return AttemptResult::Working;
    }
    // No answer came whole: if one (or the request) came as a first
    // fragment only, the path drops fragments.
    if let Some(ev) = fragments_evidence(f) {
        return AttemptResult::failed(Failure::FragmentsDropped, ev);
    }
    if is_group_address(&f.server) {
        // A group or broadcast address never answers as itself: the
        // answers come from hosts' own addresses, as flows of their own
        // (see `multicast_answered`).
        return AttemptResult::Unconfirmed;
    }
    if let Some((failure, ev)) = icmp_evidence(f) {
        return AttemptResult::failed(failure, ev);
    }
    if REQUEST_RESPONSE_UDP.contains(&service)
        && !c.one_way.contains_key(&f.server)
        && capture_end.saturating_sub(f.last_ts) >= SYN_GRACE
    {
        return AttemptResult::failed(
            Failure::Blocked,
            Evidence::UdpUnanswered {
                ts: f.first_ts,
                client: f.client,
                client_port: f.client_port,
                datagrams: f.packets[0],
            },
        );
    }
    AttemptResult::Unconfirmed
}

/// What judging a flow looks at besides the flow, built once over all of a
/// capture's flows (sorted, as the report lists them).
pub struct Context<'a> {
    c: &'a Correlated,
    taps: Option<&'a TapView>,
    hosts: HostProfiles,
    capture_end: Ts,
    pub scans: Scans,
    /// Queries to group addresses answered by a unicast reply.
    multicast_answered: HashSet<GroupQuery>,
}

impl<'a> Context<'a> {
    pub fn new(flows: &[FlowRecord], c: &'a Correlated, taps: Option<&'a TapView>) -> Self {
        let survey = Survey::of(flows, c);
        let probes: Vec<&FlowRecord> = survey.probes.iter().map(|&i| &flows[i]).collect();
        Context {
            c,
            taps,
            scans: Scans::of_probes(&probes),
            multicast_answered: multicast_answered(flows, &survey.queries),
            hosts: survey.hosts,
            capture_end: survey.end,
        }
    }

    /// How each answering host answers (for resets after the handshake).
    pub fn hosts(&self) -> &HostProfiles {
        &self.hosts
    }

    /// The judgement of flow `i` (`f`): its attempt, and with two taps a
    /// drop measured beside a failure the tap already showed.
    pub fn judge(&self, i: usize, f: &FlowRecord) -> (Attempt, Option<Attempt>) {
        let mut a = flow_attempt(f, self.c, &self.hosts, self.capture_end);
        if matches!(a.result, AttemptResult::Unconfirmed)
            && self
                .multicast_answered
                .contains(&(f.client, f.client_port, f.server_port))
        {
            a.result = AttemptResult::Working;
        }
        let mut extra = self.taps.and_then(|taps| crossed(taps, i, f, &mut a));
        // A scan's probe fails as the scan's, not a service's: on a tap,
        // and between two taps alike.
        if matches!(a.result, AttemptResult::Failed { .. }) && self.scans.is_scan_probe(f, self.c) {
            a.result = AttemptResult::Inconclusive(NoVerdict::ScanProbe);
            extra = None;
        }
        (a, extra)
    }
}

/// What each flow says about its connection, exactly as the verdicts
/// count it (one tap): `Some(true)` worked, `Some(false)` failed (blocked
/// or refused by the host), `None` cannot be told or one-way UDP that one
/// tap cannot confirm. Same index as `flows`.
pub fn flow_outcomes(flows: &[FlowRecord], c: &Correlated) -> Vec<Option<bool>> {
    let cx = Context::new(flows, c, None);
    on_parts(flows, |offset, part| {
        part.iter()
            .enumerate()
            .map(|(k, f)| cx.judge(offset + k, f).0.result.worked())
            .collect::<Vec<_>>()
    })
    .concat()
}

/// A hand-off the client never followed, as a failed attempt: the server
/// side's view of a block (there the blocked SYN is invisible). `None` for
/// any other outcome.
///
/// An RPC proxy's hand-off (#24) never followed is not one: the proxy's
/// backend side is often on another network than the one its clients
/// reach it from (a perimeter network), so a capture of the client side
/// cannot tell. Its attempts, when seen, are judged as flows.
pub fn handoff_attempt(h: &Handoff) -> Option<Attempt> {
    (h.outcome == Outcome::NoAttempt && h.proxy.is_none()).then(|| Attempt {
        client: h.client,
        server: h.server,
        proto: h.transport.ip_proto(),
        port: h.port,
        service: h.service(),
        interface: Some(h.interface),
        ts: h.ts,
        last_ts: h.ts,
        extra: false,
        result: AttemptResult::failed(
            Failure::Blocked,
            Evidence::HandoffUnfulfilled {
                ts: h.ts,
                client: h.client,
                mapper: h.mapper,
                interface: h.interface,
                operation: h.operation,
            },
        ),
    })
}

/// Two taps: what flow `i` did between them. A drop the taps measured
/// becomes the attempt's result, or, when the packets on the tap already
/// showed a failure (an unanswered SYN, a forged reset), is returned as a
/// second attempt beside it; one-way UDP seen on both taps crossed.
fn crossed(t: &TapView, i: usize, f: &FlowRecord, a: &mut Attempt) -> Option<Attempt> {
    let seen = t.per_flow.get(i)?;
    if t.icmp_senders.contains(&f.client) || t.icmp_senders.contains(&f.server) {
        return None;
    }
    let drop = match (seen[0], seen[1]) {
        (Some(p), None) | (None, Some(p)) => {
            let on = if seen[0].is_some() {
                Tap::Inside
            } else {
                Tap::Outside
            };
            let other_started = t.tap_start[on.other() as usize].is_some_and(|s| s <= f.first_ts);
            (p[0] > 0 && other_started).then_some((on, Direction::Request, p[0]))
        }
        (Some(a), Some(b)) => {
            // The reply crossed one way but not the other.
            if a[1] > 0 && b[1] == 0 && b[0] > 0 {
                Some((Tap::Inside, Direction::Reply, a[1]))
            } else if b[1] > 0 && a[1] == 0 && a[0] > 0 {
                Some((Tap::Outside, Direction::Reply, b[1]))
            } else {
                None
            }
        }
        (None, None) => None,
    };
    let Some((on, direction, packets)) = drop else {
        if seen[0].is_some() && seen[1].is_some() {
            if let AttemptResult::Unconfirmed = a.result {
                // Seen on both sides: it crossed the firewall.
                a.result = AttemptResult::Working;
            }
        }
        return None;
    };
    // Datagrams whole on one tap that reached the other as first
    // fragments only: the firewall drops fragments (#25).
    if let Some(Evidence::FragmentsMissing {
        ts,
        client,
        client_port,
        direction: lost,
        datagrams,
        fragments,
        received_bytes,
        datagram_bytes,
        ..
    }) = fragments_evidence(f)
    {
        if lost == direction && f.proto == PROTO_UDP {
            a.result = AttemptResult::failed(
                Failure::FragmentsDropped,
                Evidence::FragmentsMissing {
                    ts,
                    client,
                    client_port,
                    direction,
                    datagrams,
                    fragments,
                    received_bytes,
                    datagram_bytes,
                    whole_on: Some(on),
                },
            );
            return None;
        }
    }
    let result = AttemptResult::failed(
        Failure::Blocked,
        Evidence::DroppedBetweenTaps {
            ts: f.first_ts,
            client: f.client,
            client_port: f.client_port,
            direction,
            seen_on: on,
            missing_on: on.other(),
            packets,
        },
    );
    match a.result {
        AttemptResult::Failed { .. } => Some(Attempt {
            result,
            extra: true,
            ..a.clone()
        }),
        _ => {
            a.result = result;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::flow::{AppLabel, HistoryStr, IcmpEvidence};
    use crate::proto::rfc1006::{Outcome as Cotp, Rfc1006Summary};

    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));
    const FIREWALL: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));
    const T0: Ts = 1_700_000_000 * SECOND;
    /// Far from the capture's end.
    const END: Ts = T0 + 600 * SECOND;

    /// A TCP flow: `state`, `history`, packets [orig, resp].
    fn tcp(state: ConnState, history: &str, packets: [u64; 2]) -> FlowRecord {
        FlowRecord {
            last_ts: T0 + SECOND,
            state,
            history: HistoryStr::new(history),
            packets,
            bytes: [60 * packets[0], 60 * packets[1]],
            ..FlowRecord::test_syn(CLIENT, 50_000, SERVER, 445, T0)
        }
    }

    fn lone_syn() -> FlowRecord {
        tcp(ConnState::S0, "S", [1, 0])
    }

    fn udp(server: IpAddr, port: u16, packets: [u64; 2]) -> FlowRecord {
        FlowRecord {
            proto: PROTO_UDP,
            server,
            server_port: port,
            state: ConnState::Udp,
            history: HistoryStr::new("D"),
            ..tcp(ConnState::Udp, "D", packets)
        }
    }

    fn icmp(sender: IpAddr, icmp_type: u8, code: u8) -> Box<[IcmpEvidence]> {
        Box::new([IcmpEvidence {
            ts: T0 + 1000,
            sender,
            v6: false,
            icmp_type,
            code,
            quotes_originator: true,
            mtu: None,
        }])
    }

    fn judge(f: &FlowRecord) -> AttemptResult {
        judge_with(f, &Correlated::default(), &HostProfiles::default(), END)
    }

    fn judge_with(f: &FlowRecord, c: &Correlated, hosts: &HostProfiles, end: Ts) -> AttemptResult {
        flow_attempt(f, c, hosts, end).result
    }

    /// The failure and the evidence's contract type, or the panic message.
    fn failed(r: &AttemptResult) -> (Failure, &'static str) {
        match r {
            AttemptResult::Failed { failure, evidence } => (*failure, evidence.type_name()),
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    fn no_verdict(r: &AttemptResult) -> NoVerdict {
        match r {
            AttemptResult::Inconclusive(why) => *why,
            other => panic!("expected no verdict, got {other:?}"),
        }
    }

    #[test]
    fn a_completed_handshake_worked() {
        for state in [
            ConnState::SF,
            ConnState::S1,
            ConnState::RSTO,
            ConnState::RSTR,
        ] {
            let r = judge(&tcp(state, "ShAD", [3, 2]));
            assert!(matches!(r, AttemptResult::Working), "{state:?}: {r:?}");
            assert_eq!(r.worked(), Some(true));
        }
    }

    #[test]
    fn an_rfc1006_refusal_is_the_hosts() {
        for (outcome, says) in [
            (
                Cotp::Refused {
                    reason: 3,
                    name: "x",
                },
                "DR reason 3",
            ),
            (
                Cotp::Error {
                    cause: 1,
                    name: "y",
                },
                "ER cause 1",
            ),
        ] {
            let mut f = tcp(ConnState::SF, "ShADadFf", [4, 4]);
            f.app = Some(Box::new(AppLabel {
                service: "rfc1006",
                detail: None,
                rfc1006: Some(Box::new(Rfc1006Summary {
                    outcome,
                    ..Rfc1006Summary::default()
                })),
                smb: None,
            }));
            let r = judge(&f);
            assert_eq!(failed(&r), (Failure::RefusedByHost, "cotp-refused"));
            let AttemptResult::Failed { evidence, .. } = r else {
                unreachable!()
            };
            let Evidence::CotpRefused { reason, .. } = *evidence else {
                unreachable!()
            };
            assert!(reason.starts_with(says), "{reason}");
        }
        // Accepted: worked.
        let mut f = tcp(ConnState::SF, "ShADadFf", [4, 4]);
        f.app = Some(Box::new(AppLabel {
            service: "rfc1006",
            detail: None,
            rfc1006: Some(Box::new(Rfc1006Summary {
                outcome: Cotp::Accepted,
                ..Rfc1006Summary::default()
            })),
            smb: None,
        }));
        assert!(matches!(judge(&f), AttemptResult::Working));
    }

    #[test]
    fn icmp_errors_say_who_stopped_it() {
        // A filter's "administratively prohibited".
        let mut f = lone_syn();
        f.icmp = icmp(FIREWALL, 3, 13);
        assert_eq!(failed(&judge(&f)), (Failure::Blocked, "icmp-unreachable"));
        // "Port unreachable" from the host itself: a closed port.
        f.icmp = icmp(SERVER, 3, 3);
        assert_eq!(
            failed(&judge(&f)),
            (Failure::RefusedByHost, "icmp-unreachable")
        );
        // ... from anyone else: iptables' default REJECT.
        f.icmp = icmp(FIREWALL, 3, 3);
        assert_eq!(failed(&judge(&f)), (Failure::Blocked, "icmp-unreachable"));
        // An answer beside the ICMP error: not judged by the error.
        let mut answered = tcp(ConnState::SF, "ShAD", [3, 2]);
        answered.icmp = icmp(FIREWALL, 3, 13);
        assert!(matches!(judge(&answered), AttemptResult::Working));
        // UDP alike.
        let mut q = udp(SERVER, 53, [1, 0]);
        q.icmp = icmp(SERVER, 3, 3);
        assert_eq!(
            failed(&judge(&q)),
            (Failure::RefusedByHost, "icmp-unreachable")
        );
    }

    #[test]
    fn a_reset_is_the_hosts_unless_it_does_not_look_like_the_host() {
        let mut rej = tcp(ConnState::REJ, "Sr", [1, 1]);
        rej.responder_ttl = Some(64);
        rej.responder_ip_id = Some(0);
        // Never seen answering: taken as the host's own, low confidence.
        let r = judge(&rej);
        assert_eq!(failed(&r), (Failure::RefusedByHost, "rst"));
        let AttemptResult::Failed { evidence, .. } = &r else {
            unreachable!()
        };
        assert_eq!(evidence.confidence(), Confidence::Low);

        // The host answers elsewhere with TTL 128 and counting IP IDs: a
        // reset with TTL 64 and ID 0 was forged on the way.
        let mut hosts = HostProfiles::default();
        let mut own = tcp(ConnState::SF, "ShAD", [3, 2]);
        own.server_port = 135;
        own.responder_ttl = Some(128);
        own.responder_ip_id = Some(4711);
        hosts.add(&own);
        let r = judge_with(&rej, &Correlated::default(), &hosts, END);
        assert_eq!(failed(&r), (Failure::Blocked, "rst"));
        let AttemptResult::Failed { evidence, .. } = &r else {
            unreachable!()
        };
        assert_eq!(evidence.confidence(), Confidence::High);

        // The same TTL as the host's answers: the host's own.
        rej.responder_ttl = Some(128);
        rej.responder_ip_id = Some(4712);
        let r = judge_with(&rej, &Correlated::default(), &hosts, END);
        assert_eq!(failed(&r), (Failure::RefusedByHost, "rst"));
    }

    #[test]
    fn unanswered_syns_are_blocked_unless_the_capture_cannot_tell() {
        // A lone SYN, long before the end: blocked (medium).
        let r = judge(&lone_syn());
        assert_eq!(failed(&r), (Failure::Blocked, "syn-unanswered"));
        let AttemptResult::Failed { evidence, .. } = &r else {
            unreachable!()
        };
        assert_eq!(evidence.confidence(), Confidence::Medium);

        // Too close to the end: its answer may not be captured.
        let near = lone_syn().last_ts + SYN_GRACE - 1;
        let c = Correlated::default();
        let r = judge_with(&lone_syn(), &c, &HostProfiles::default(), near);
        assert_eq!(no_verdict(&r), NoVerdict::CaptureEnded);
        assert_eq!(r.worked(), None);

        // To a server this capture sees only one way: maybe answered.
        let mut one_way = Correlated::default();
        one_way.one_way.insert(SERVER, 3);
        let r = judge_with(&lone_syn(), &one_way, &HostProfiles::default(), END);
        assert_eq!(no_verdict(&r), NoVerdict::OneWay);

        // Retransmitted: the client itself says no answer came, wherever.
        let mut retried = lone_syn();
        retried.syn_retries = 2;
        retried.syn_gaps_us = Box::new([1_000_000, 2_000_000]);
        for (c, end) in [(&one_way, END), (&c, near)] {
            let r = judge_with(&retried, c, &HostProfiles::default(), end);
            assert_eq!(failed(&r), (Failure::Blocked, "syn-unanswered"));
            let AttemptResult::Failed { evidence, .. } = &r else {
                unreachable!()
            };
            assert_eq!(evidence.confidence(), Confidence::High);
        }
        // The client gave up with a reset, or closed: still unanswered.
        for state in [ConnState::RSTOS0, ConnState::SH] {
            let f = tcp(state, "SR", [2, 0]);
            assert_eq!(
                failed(&judge(&f)),
                (Failure::Blocked, "syn-unanswered"),
                "{state:?}"
            );
        }
    }

    #[test]
    fn what_is_not_a_clean_attempt_is_not_judged() {
        // Picked up mid-stream.
        let r = judge(&tcp(ConnState::OTH, "DdA", [5, 5]));
        assert_eq!(no_verdict(&r), NoVerdict::MidStream);
        // Data without a handshake, never answered.
        let r = judge(&tcp(ConnState::S0, "SD", [3, 0]));
        assert_eq!(no_verdict(&r), NoVerdict::MidStream);
        // Neither TCP nor UDP.
        let mut sctp = lone_syn();
        sctp.proto = 132;
        assert_eq!(no_verdict(&judge(&sctp)), NoVerdict::NotTcpUdp);
    }

    #[test]
    fn udp_is_answered_unconfirmed_or_unanswered_by_its_service() {
        assert!(matches!(
            judge(&udp(SERVER, 53, [1, 1])),
            AttemptResult::Working
        ));
        // A request/response service that never answered: blocked (low).
        let r = judge(&udp(SERVER, 53, [2, 0]));
        assert_eq!(failed(&r), (Failure::Blocked, "udp-unanswered"));
        let AttemptResult::Failed { evidence, .. } = &r else {
            unreachable!()
        };
        assert_eq!(evidence.confidence(), Confidence::Low);
        // ... unless the capture ends too soon after, or sees the server
        // one way only.
        let q = udp(SERVER, 53, [2, 0]);
        let c = Correlated::default();
        let r = judge_with(&q, &c, &HostProfiles::default(), q.last_ts + SECOND);
        assert!(matches!(r, AttemptResult::Unconfirmed), "{r:?}");
        let mut one_way = Correlated::default();
        one_way.one_way.insert(SERVER, 1);
        let r = judge_with(&q, &one_way, &HostProfiles::default(), END);
        assert!(matches!(r, AttemptResult::Unconfirmed), "{r:?}");
        // A one-way service (a notification): left this tap, that is all.
        let r = judge(&udp(SERVER, 40_000, [1, 0]));
        assert!(matches!(r, AttemptResult::Unconfirmed), "{r:?}");
        assert_eq!(r.worked(), None);
    }

    #[test]
    fn group_queries_are_never_blocked_and_answered_by_unicast_replies() {
        let llmnr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 252));
        let bcast = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 255));
        for group in [llmnr, bcast, "ff02::1:3".parse().unwrap()] {
            assert!(is_group_address(&group));
            let r = judge(&udp(group, 5355, [3, 0]));
            assert!(matches!(r, AttemptResult::Unconfirmed), "{group}: {r:?}");
        }
        assert!(!is_group_address(&SERVER));

        // A unicast reply from the queried port back to the querier.
        let query = udp(llmnr, 5355, [1, 0]);
        let mut reply = udp(CLIENT, 50_000, [1, 0]);
        reply.client = SERVER;
        reply.client_port = 5355;
        reply.first_ts = query.first_ts + 1000;
        let flows = [query.clone(), reply.clone()];
        let c = Correlated::default();
        let cx = Context::new(&flows, &c, None);
        assert!(matches!(
            cx.judge(0, &query).0.result,
            AttemptResult::Working
        ));
        // A "reply" before the query answers nothing.
        reply.first_ts = query.first_ts - 1000;
        let flows = [reply, query.clone()];
        let cx = Context::new(&flows, &c, None);
        assert!(matches!(
            cx.judge(1, &query).0.result,
            AttemptResult::Unconfirmed
        ));
    }

    #[test]
    fn a_scans_probes_fail_as_the_scans_not_as_services() {
        // One source, single SYNs to 20 ports of one host, long before the end.
        let mut flows: Vec<FlowRecord> = (0..20u16)
            .map(|k| {
                let mut f = lone_syn();
                f.server_port = 1000 + k;
                f.client_port = 40_000 + k;
                f.first_ts = T0 + u64::from(k) * 1000;
                f.last_ts = f.first_ts;
                f
            })
            .collect();
        // A real client's retried SYN beside it stays a failure.
        let mut retried = lone_syn();
        retried.client = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99));
        retried.syn_retries = 1;
        flows.push(retried);
        let mut last = tcp(ConnState::SF, "ShAD", [3, 2]);
        last.client = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 98));
        last.first_ts = END;
        last.last_ts = END;
        flows.push(last);
        let c = Correlated::default();
        let cx = Context::new(&flows, &c, None);
        for (i, f) in flows.iter().enumerate().take(20) {
            assert_eq!(
                no_verdict(&cx.judge(i, f).0.result),
                NoVerdict::ScanProbe,
                "{i}"
            );
        }
        assert_eq!(
            failed(&cx.judge(20, &flows[20]).0.result).0,
            Failure::Blocked
        );
        let outcomes = flow_outcomes(&flows, &c);
        assert_eq!(outcomes[..20], [None; 20]);
        assert_eq!(outcomes[20..], [Some(false), Some(true)]);
    }

    #[test]
    fn two_taps_measure_drops_between_them() {
        let both_started = [Some(T0 - SECOND), Some(T0 - SECOND)];
        let view = |seen: [Option<[u64; 2]>; 2]| TapView {
            per_flow: vec![seen],
            tap_start: both_started,
            icmp_senders: Default::default(),
        };
        // The request seen inside only: dropped on the way.
        let f = tcp(ConnState::OTH, "D", [3, 0]);
        let mut a = flow_attempt(&f, &Correlated::default(), &HostProfiles::default(), END);
        let extra = crossed(&view([Some([3, 0]), None]), 0, &f, &mut a);
        assert!(extra.is_none());
        let AttemptResult::Failed { failure, evidence } = &a.result else {
            panic!("{a:?}")
        };
        assert_eq!(*failure, Failure::Blocked);
        assert!(matches!(
            **evidence,
            Evidence::DroppedBetweenTaps {
                direction: Direction::Request,
                seen_on: Tap::Inside,
                missing_on: Tap::Outside,
                packets: 3,
                ..
            }
        ));

        // Beside an unanswered SYN the tap already showed: a second attempt.
        let syn = lone_syn();
        let mut a = flow_attempt(&syn, &Correlated::default(), &HostProfiles::default(), END);
        let extra = crossed(&view([Some([1, 0]), None]), 0, &syn, &mut a).expect("extra");
        assert!(extra.extra);
        assert_eq!(failed(&a.result).1, "syn-unanswered");
        assert_eq!(failed(&extra.result).1, "dropped-between-taps");

        // The reply crossed outside but never reached the inside.
        let f = tcp(ConnState::OTH, "Dd", [2, 0]);
        let mut a = flow_attempt(&f, &Correlated::default(), &HostProfiles::default(), END);
        crossed(&view([Some([2, 0]), Some([2, 2])]), 0, &f, &mut a);
        let AttemptResult::Failed { evidence, .. } = &a.result else {
            panic!("{a:?}")
        };
        assert!(matches!(
            **evidence,
            Evidence::DroppedBetweenTaps {
                direction: Direction::Reply,
                seen_on: Tap::Outside,
                ..
            }
        ));

        // One-way UDP seen on both taps crossed the firewall.
        let n = udp(SERVER, 40_000, [1, 0]);
        let mut a = flow_attempt(&n, &Correlated::default(), &HostProfiles::default(), END);
        crossed(&view([Some([1, 0]), Some([1, 0])]), 0, &n, &mut a);
        assert!(matches!(a.result, AttemptResult::Working));

        // The other tap started later: its absence there proves nothing.
        let late = TapView {
            tap_start: [Some(T0 - SECOND), Some(T0 + SECOND)],
            ..view([Some([3, 0]), None])
        };
        let f = tcp(ConnState::OTH, "D", [3, 0]);
        let mut a = flow_attempt(&f, &Correlated::default(), &HostProfiles::default(), END);
        crossed(&late, 0, &f, &mut a);
        assert_eq!(no_verdict(&a.result), NoVerdict::MidStream);
    }

    #[test]
    fn a_handoff_never_followed_is_a_failed_attempt_and_only_that() {
        use crate::event::EpmOperation;
        use crate::proto::epm::Transport;
        let mut h = Handoff {
            ts: T0,
            client: CLIENT,
            server: SERVER,
            mapper: SERVER,
            carrier: crate::event::Carrier::Tcp,
            transport: Transport::Tcp,
            port: 49_700,
            interface: InterfaceId {
                uuid: crate::proto::dcerpc::Uuid([7; 16]),
                major: 1,
                minor: 0,
            },
            operation: EpmOperation::EptMap,
            outcome: Outcome::NoAttempt,
            window_cut: false,
            follow_up_at: None,
            dcom: None,
            proxy: None,
        };
        let a = handoff_attempt(&h).expect("an attempt");
        assert_eq!((a.server, a.proto, a.port), (SERVER, PROTO_TCP, 49_700));
        assert_eq!(failed(&a.result), (Failure::Blocked, "handoff-unfulfilled"));
        for outcome in [
            Outcome::CaptureEnded,
            Outcome::NotCaptured,
            Outcome::Superseded,
        ] {
            h.outcome = outcome;
            assert!(handoff_attempt(&h).is_none(), "{:?}", h.outcome);
        }
    }

    #[test]
    fn contract_names_sort_as_their_strings() {
        use crate::contract::check_order;
        check_order(NoVerdict::ALL, NoVerdict::as_str);
        check_order(Direction::ALL, Direction::as_str);
        check_order(FindingKind::ALL, FindingKind::as_str);
        check_order(super::super::Status::ALL, super::super::Status::as_str);
        check_order(
            super::super::VerdictLabel::ALL,
            super::super::VerdictLabel::as_str,
        );
        check_order(
            crate::policy::DecisionKind::ALL,
            crate::policy::DecisionKind::as_str,
        );
        assert_eq!(format!("[{:<9}]", FindingKind::Flood), "[flood    ]");
        assert_eq!(
            serde_json::to_string(&FindingKind::RefusedByHost).unwrap(),
            "\"refused-by-host\""
        );
    }
}
