//! The correlator: the one place where flows meet each other.
//!
//! It takes every flow record and every event (sorted, so the result never
//! depends on thread timing) and joins them:
//! * each endpoint named in an answer to a client that asked for ONE
//!   interface becomes a [`Handoff`], followed or not, with what happened;
//! * every tower of every EPM answer becomes an [`Endpoint`] (what each
//!   mapper advertises);
//! * flows get their interface and service label ([`FlowLabel`]);
//! * an ept_map (or a lookup by interface) answered "not registered" is a
//!   [`Finding`] of kind `not-registered`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use hashbrown::{HashMap, HashSet};

use crate::capture::{AppliedFilter, CaptureFilter};
use crate::event::{Carrier, EpmAnswerEvent, EpmOperation, Event, InterfaceId, RegistrationEvent};
use crate::finding::{Confidence, Evidence, Finding, FindingKind, Fix};
use crate::flow::{FlowRecord, FlowUp, SECOND};
use crate::kb;
use crate::packet::PROTO_UDP;
use crate::policy::DecisionKind;
use crate::proto::dcerpc::UUID_EPM;
use crate::proto::epm::{Transport, EPT_S_NOT_REGISTERED};
use crate::proto::wellknown::service_for_port;
use crate::roles::Roles;
use crate::Ts;

mod handoffs;

pub use handoffs::{HandoffTracker, SEALED_FOLLOW_WINDOW};

/// A hand-off with no follow-up is evidence once the capture went on this
/// long after the answer: clients connect to the announced port at once
/// (1–5 ms in the lab captures; Windows and Samba alike), so a second of
/// silence is telling, and the 30-s correlation window need not elapse.
/// Closer to the end, the outcome is [`Outcome::CaptureEnded`].
pub const HANDOFF_GRACE: Ts = SECOND;

/// Servers counted in [`Correlated::one_way`]: past this many, flows to new
/// servers are not counted (the bound of the verdicts' scan tables, so a
/// sweep over a million hosts cannot grow this map further than those).
pub const MAX_ONE_WAY_SERVERS: usize = 1 << 20;

/// Correlation settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorrelateConfig {
    /// How long after an EPM answer the follow-up connection may start (ns).
    pub handoff_window: Ts,
    /// Who is who (Exchange servers, DCs, client networks).
    pub roles: Roles,
    /// The filters the capture was read or captured through
    /// ([`crate::capture::applied_filters`]): a hand-off whose follow-up
    /// they would have dropped, and none was seen, is `not-captured`.
    /// Empty: nothing was filtered (`pipeline::finish` then takes the
    /// inputs' own).
    pub filters: Vec<AppliedFilter>,
}

impl Default for CorrelateConfig {
    fn default() -> Self {
        CorrelateConfig {
            handoff_window: 30 * SECOND,
            roles: Roles::default(),
            filters: Vec::new(),
        }
    }
}

/// What became of a hand-off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A connection from the client to the endpoint was established.
    Followed { latency: Ts, client_port: u16 },
    /// No connection attempt from the client within the window.
    NoAttempt,
    /// No connection attempt, and the capture ended less than
    /// [`HANDOFF_GRACE`] after the answer: too close to the end to judge.
    CaptureEnded,
    /// The client's SYNs were never answered.
    SynUnanswered { attempts: u32, syns: u32 },
    /// The client's SYN was answered by a reset.
    Reset { attempts: u32, ttl: Option<u8> },
    /// An ICMP error quoted the client's attempt.
    IcmpUnreachable {
        sender: IpAddr,
        v6: bool,
        icmp_type: u8,
        code: u8,
    },
    /// A UDP endpoint got datagrams from the client but no answer.
    UdpUnanswered,
    /// No new connection, but the client already had an established one to
    /// that endpoint, open when the answer came (an association reused).
    ExistingConnection { client_port: u16 },
    /// The client asked again before connecting; the connection (or the
    /// attempt) that followed is credited to the later answer.
    Superseded,
    /// No connection attempt seen, but the capture's filters would have
    /// dropped it: whether the client tried cannot be told (not a failure).
    NotCaptured,
    /// DCOM: the answer was sealed (packet privacy), so the port it named
    /// cannot be seen, and no connection from the client to the server's
    /// dynamic range came right after it (not a failure: #22).
    Sealed,
}

impl Outcome {
    pub fn followed(&self) -> bool {
        matches!(self, Outcome::Followed { .. })
    }

    /// A connection attempt was seen, whatever became of it.
    pub fn attempted(&self) -> bool {
        matches!(
            self,
            Outcome::Followed { .. }
                | Outcome::SynUnanswered { .. }
                | Outcome::Reset { .. }
                | Outcome::IcmpUnreachable { .. }
                | Outcome::UdpUnanswered
        )
    }

    /// Not followed, as far as the capture can tell: anything but
    /// established, not captured (the filter would have dropped it) or
    /// capture-ended (too close to the end to tell).
    pub fn not_followed(&self) -> bool {
        !matches!(
            self,
            Outcome::Followed { .. }
                | Outcome::NotCaptured
                | Outcome::CaptureEnded
                | Outcome::Sealed
        )
    }

    /// Stable short name for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Followed { .. } => "established",
            Outcome::NoAttempt => "no-attempt",
            Outcome::CaptureEnded => "capture-ended",
            Outcome::SynUnanswered { .. } => "syn-unanswered",
            Outcome::Reset { .. } => "reset",
            Outcome::IcmpUnreachable { .. } => "icmp-unreachable",
            Outcome::UdpUnanswered => "udp-unanswered",
            Outcome::ExistingConnection { .. } => "existing-connection",
            Outcome::Superseded => "superseded",
            Outcome::NotCaptured => "not-captured",
            Outcome::Sealed => "sealed",
        }
    }
}

/// One endpoint named to a client that asked for one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handoff {
    pub ts: Ts,
    pub client: IpAddr,
    /// The host the tower names (the mapper when the tower says 0.0.0.0).
    pub server: IpAddr,
    pub mapper: IpAddr,
    /// What the answer came over (#24): the mapper's own transport.
    pub carrier: Carrier,
    pub transport: Transport,
    pub port: u16,
    pub interface: InterfaceId,
    pub operation: EpmOperation,
    pub outcome: Outcome,
    /// The capture ended before the window did (a missing follow-up may
    /// simply not have been captured).
    pub window_cut: bool,
    /// The address of the client's connection the outcome is about (the
    /// follow-up, the failed attempt, the connection already open): the
    /// tower's (`server`) or, when it differs, the one the client reached
    /// the mapper on (`mapper`), where clients really connect over IPv6,
    /// NAT or a virtual IP (#22). `None` when no connection was seen.
    pub follow_up_at: Option<IpAddr>,
    /// A DCOM hand-off (string bindings, not a tower): what else it says.
    pub dcom: Option<Box<DcomHandoff>>,
    /// An RPC proxy's hand-off (#24): `client` is the proxy, which is to
    /// connect to the backend the URL named.
    pub proxy: Option<Box<ProxyHandoff>>,
}

/// What an RPC proxy hand-off says beside the port (#24).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyHandoff {
    /// The RPC over HTTP client whose request named the backend.
    pub requested_by: IpAddr,
    /// The backend as the URL wrote it (`ex01.contoso.com:6001`).
    pub backend: String,
    /// The URL named the backend by name: `server` is unspecified until a
    /// connection from the proxy to that port (at any address) is seen,
    /// then it is that connection's address.
    pub by_name: bool,
}

/// What a DCOM hand-off says beside the port (#22).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DcomHandoff {
    /// The string bindings that named the port, as written
    /// (`HOST[49670]`, `10.0.0.5[49670]`).
    pub bindings: Vec<String>,
    /// They named the host only by a NetBIOS or DNS name: `server` is the
    /// answering host's address (what the name stands for is not on the
    /// wire), and only a follow-up there is matched.
    pub by_name: bool,
    /// The call was sealed (packet privacy): no binding could be read.
    pub sealed: bool,
    /// Sealed, and a connection from the client to the server's dynamic
    /// range right after it was taken as its likely follow-up: `port` is
    /// that connection's, not one read in the answer.
    pub inferred: bool,
}

impl Handoff {
    /// Whether the hand-off was sealed (its port not seen).
    pub fn sealed(&self) -> bool {
        self.dcom.as_ref().is_some_and(|d| d.sealed)
    }

    /// Whether its port was inferred from the connection that followed
    /// (a sealed DCOM answer).
    pub fn inferred(&self) -> bool {
        self.dcom.as_ref().is_some_and(|d| d.inferred)
    }

    /// Whether the bindings named the host only by name.
    pub fn by_name(&self) -> bool {
        self.dcom.as_ref().is_some_and(|d| d.by_name)
    }

    /// Whether an RPC proxy's URL named the backend only by name: its
    /// follow-up is looked for at any address (#24).
    pub fn any_address(&self) -> bool {
        self.proxy.as_ref().is_some_and(|p| p.by_name)
    }

    /// The service the hand-off is for: its interface's, or, for an RPC
    /// proxy's (whose URL names no interface), `rpc-proxy-backend`.
    pub fn service(&self) -> &'static str {
        if self.proxy.is_some() {
            "rpc-proxy-backend"
        } else {
            interface_service(&self.interface)
        }
    }

    /// Whether the connection the outcome is about went to the address the
    /// client reached the mapper on rather than the tower's.
    pub fn matched_mapper_address(&self) -> bool {
        self.follow_up_at.is_some_and(|a| a != self.server)
    }
}

/// What a mapper advertised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub server: IpAddr,
    pub transport: Transport,
    pub port: u16,
    pub interface: Option<InterfaceId>,
    pub annotation: Option<String>,
    pub first_ts: Ts,
}

/// How a flow's service was identified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowLabel {
    pub service: &'static str,
    pub identified_by: &'static str,
    /// Set when the payload shows a service other than the one the server
    /// port conventionally carries: that conventional service.
    pub port_mismatch: Option<&'static str>,
    pub interface: Option<InterfaceId>,
    /// For `epm-handoff`: the answer's time, and whether it was given to
    /// another client than this flow's.
    pub handoff: Option<HandoffRef>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandoffRef {
    pub ts: Ts,
    pub client: IpAddr,
    pub latency: Ts,
    pub other_client: bool,
}

/// A server endpoint: (server, IP protocol, port).
type EndpointKey = (IpAddr, u8, u16);

/// A hand-off as labels need it: when, to whom, for what.
#[derive(Clone, Copy, Debug)]
struct Named {
    ts: Ts,
    client: IpAddr,
    interface: InterfaceId,
    by: NamedBy,
}

/// What kind of answer named an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NamedBy {
    /// An endpoint-mapper tower.
    Epm,
    /// A DCOM string binding.
    Dcom,
    /// A sealed DCOM answer, followed (as inferred) by a connection there.
    DcomInferred,
    /// An RPC proxy's URL (#24).
    Proxy,
}

impl NamedBy {
    fn of(h: &Handoff) -> NamedBy {
        if h.proxy.is_some() {
            return NamedBy::Proxy;
        }
        match &h.dcom {
            None => NamedBy::Epm,
            Some(d) if d.inferred => NamedBy::DcomInferred,
            Some(_) => NamedBy::Dcom,
        }
    }
}

/// What the endpoint-mapper answers said about one server endpoint.
#[derive(Clone, Debug, Default)]
struct NamedEndpoint {
    /// Hand-offs naming it, in answer order.
    handoffs: Vec<Named>,
    /// The same, grouped by the client they answered (indices into
    /// `handoffs`, each in order): a flow's label is a hand-off to its own
    /// client whenever there is one, and a busy endpoint is named in
    /// hundreds of answers.
    by_client: HashMap<IpAddr, Vec<u32>>,
    /// Interfaces advertised at it.
    advertised: Vec<InterfaceId>,
}

/// A filter the capture went through, and the conclusions it limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterLimit {
    pub filter: AppliedFilter,
    /// Whether it could be evaluated (an expression libpcap compiles for
    /// its link types); if not, every hand-off with no attempt seen is
    /// `not-captured`.
    pub evaluated: bool,
    /// Hand-offs `not-captured` whose follow-up this filter would drop.
    pub handoffs_not_captured: u64,
}

/// Everything the correlator produced.
#[derive(Clone, Debug, Default)]
pub struct Correlated {
    pub handoffs: Vec<Handoff>,
    pub endpoints: Vec<Endpoint>,
    pub findings: Vec<Finding>,
    /// The capture's filters and what they limit (empty: none applied).
    pub limits: Vec<FilterLimit>,
    /// One-way capture: servers whose answers the capture misses although
    /// their clients' own packets show answers arrived (a connection
    /// acknowledged from the client's side alone), with how many such
    /// connections. Unanswered single SYNs and UDP queries to them cannot
    /// be judged.
    pub one_way: BTreeMap<IpAddr, u64>,
    /// Hand-offs and advertised interfaces by (server, proto, port), for
    /// [`Correlated::label`] (looked up once per flow: hashed, not ordered).
    named_at: HashMap<EndpointKey, NamedEndpoint>,
    /// Some hand-off is named at an unspecified address (an RPC proxy's
    /// backend by name, #24): labels look there too.
    any_address_named: bool,
    /// EMSMDB push registrations by callback (address, UDP port).
    registrations: HashMap<(IpAddr, u16), Vec<RegistrationEvent>>,
    /// Hosts known to be Exchange servers: from the roles, or seen serving
    /// EMSMDB or advertising it in an endpoint-mapper answer.
    exchange_servers: HashSet<IpAddr>,
    roles: Roles,
}

impl Correlated {
    /// Who is who as the roles (`--exchange`, `--dc`, `--clients`, the
    /// policy's groups) said it, with the Exchange version: what the
    /// verdicts' registry advice may rely on (what a host was only seen
    /// serving is not enough to rule a value out).
    pub fn roles(&self) -> &Roles {
        &self.roles
    }

    /// Whether `ip` is an Exchange server (by role or by what it served).
    pub fn is_exchange_server(&self, ip: &IpAddr) -> bool {
        self.exchange_servers.contains(ip) || self.roles.is_exchange(ip)
    }

    /// MAPI new-mail notifications (Q264035): UDP from the server to the
    /// port a client registered; else, heuristically, UDP from an Exchange
    /// server's port > 1024 to a client port > 1024 that nothing else
    /// claims (a well-known port, a recognized payload) .
    fn notification_label(&self, f: &FlowRecord) -> Option<FlowLabel> {
        if f.proto != PROTO_UDP {
            return None;
        }
        let registered = (!self.registrations.is_empty())
            .then(|| self.registrations.get(&(f.server, f.server_port)))
            .flatten()
            .is_some_and(|regs| regs.iter().any(|r| r.ts <= f.last_ts));
        if registered {
            return Some(FlowLabel {
                service: "mapi-notification",
                identified_by: "registration",
                port_mismatch: None,
                interface: None,
                handoff: None,
            });
        }
        let heuristic = f.client_port > 1024
            && f.server_port > 1024
            && f.rpc.is_none()
            && f.app.is_none()
            && self.is_exchange_server(&f.client)
            && (self.roles.clients.is_empty() || self.roles.is_client(&f.server))
            && service_for_port(f.proto, f.server_port).is_none()
            && service_for_port(f.proto, f.client_port).is_none();
        heuristic.then_some(FlowLabel {
            service: "mapi-notification",
            identified_by: "heuristic",
            port_mismatch: None,
            interface: None,
            handoff: None,
        })
    }

    /// The hand-off that labels `f` among the first `len` of `at(k)` (the
    /// hand-offs naming `f`'s endpoint to one side, in answer order, so by
    /// time), all of whose hand-offs that came before `f` answered the
    /// same side (`f`'s own client, or only others): the latest one for an
    /// interface `f` bound, else the latest; the first in answer order
    /// among those of the same time. Searched from the end, since the
    /// latest is wanted: a busy endpoint is named in thousands of answers
    /// to other clients.
    fn latest_handoff<'a>(
        at: impl Fn(usize) -> Option<&'a Named>,
        len: usize,
        f: &FlowRecord,
    ) -> Option<&'a Named> {
        let (mut lo, mut hi) = (0, len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if at(mid).is_some_and(|h| h.ts <= f.first_ts) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let before = lo;
        let latest = at(before.checked_sub(1)?)?.ts;
        let bound = bound_interfaces(f);
        if bound.clone().next().is_some() {
            let mut best: Option<&Named> = None;
            for k in (0..before).rev() {
                let Some(h) = at(k) else { continue };
                if best.is_some_and(|b| h.ts < b.ts) {
                    break;
                }
                if bound.clone().any(|b| b.uuid == h.interface.uuid) {
                    best = Some(h);
                }
            }
            if best.is_some() {
                return best;
            }
        }
        // None for a bound interface: the first of the latest.
        let (mut lo, mut hi) = (0, before);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if at(mid).is_some_and(|h| h.ts < latest) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        at(lo)
    }

    /// The service label of `f` (computed on demand, so a million flows do
    /// not carry a million labels in memory).
    pub fn label(&self, f: &FlowRecord) -> FlowLabel {
        if let Some(l) = self.notification_label(f) {
            return l;
        }
        let named = (!self.named_at.is_empty())
            .then(|| self.named_at.get(&(f.server, f.proto, f.server_port)))
            .flatten();
        if named.is_none() && self.any_address_named {
            // An RPC proxy's URL named the backend by name (#24): the
            // proxy's own connections to that port, at any address.
            let any = unspecified(f.server);
            if let Some(n) = self.named_at.get(&(any, f.proto, f.server_port)) {
                if let Some(mine) = n.by_client.get(&f.client) {
                    let at = |k: usize| mine.get(k).and_then(|&i| n.handoffs.get(i as usize));
                    if let Some(best) = Self::latest_handoff(at, mine.len(), f) {
                        return label_flow(f, Some(best), &[]);
                    }
                }
            }
        }
        match named {
            Some(n) => {
                // A hand-off to the flow's own client is preferred: when
                // one came before the flow, the best is among those; else
                // every earlier one answered another client.
                let mine = n.by_client.get(&f.client).and_then(|mine| {
                    let at = |k: usize| mine.get(k).and_then(|&i| n.handoffs.get(i as usize));
                    Self::latest_handoff(at, mine.len(), f)
                });
                let best = mine
                    .or_else(|| Self::latest_handoff(|k| n.handoffs.get(k), n.handoffs.len(), f));
                label_flow(f, best, &n.advertised)
            }
            None => label_flow(f, None, &[]),
        }
    }

    /// Records a hand-off for the labels of the flows at the endpoint it
    /// names, at each address its follow-up may go to (the tower's, and the
    /// one the client reached the mapper on: #22).
    fn name(&mut self, h: &Handoff) {
        self.any_address_named |= h.any_address();
        for (server, proto, port, _) in handoffs::follow_keys(h).into_iter().flatten() {
            let named = self.named_at.entry((server, proto, port)).or_default();
            let i = named.handoffs.len() as u32;
            named.handoffs.push(Named {
                ts: h.ts,
                client: h.client,
                interface: h.interface,
                by: NamedBy::of(h),
            });
            named.by_client.entry(h.client).or_default().push(i);
        }
    }

    /// Forgets the hand-offs answered and the registrations made before
    /// `horizon` (live capture over days: the labels of later flows need
    /// the recent ones only).
    pub fn forget_before(&mut self, horizon: Ts) {
        self.named_at.retain(|_, n| {
            let old = n.handoffs.partition_point(|h| h.ts < horizon);
            if old > 0 {
                n.handoffs.drain(..old);
                n.by_client.clear();
                for (i, h) in n.handoffs.iter().enumerate() {
                    n.by_client.entry(h.client).or_default().push(i as u32);
                }
            }
            !n.handoffs.is_empty() || !n.advertised.is_empty()
        });
        self.registrations.retain(|_, regs| {
            regs.retain(|r| r.ts >= horizon);
            !regs.is_empty()
        });
    }
}

/// A TCP connection the client acknowledged (or sent data on) after its
/// SYN while no packet of the server's was captured: the answers arrived,
/// the capture did not see them (one-way SPAN, asymmetric routing).
pub fn answered_unseen(f: &FlowRecord) -> bool {
    f.proto == crate::packet::PROTO_TCP
        && f.packets[1] == 0
        && f.history.starts_with('S')
        && f.history.contains(['A', 'D'])
}

pub use crate::flow::tcp_established;

/// The interface a DCOM answer came over (the activator's or the
/// resolver's, as bound).
fn dcom_interface(a: &EpmAnswerEvent) -> InterfaceId {
    let uuid = match a.operation {
        EpmOperation::Dcom(op) => op.interface(),
        _ => crate::proto::dcerpc::Uuid::NIL,
    };
    a.requested.unwrap_or(InterfaceId {
        uuid,
        major: 0,
        minor: 0,
    })
}

/// The unspecified address of `like`'s family: where a hand-off to a
/// backend known only by name is keyed (#24).
pub(crate) fn unspecified(like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    }
}

fn tower_server(e: &EpmAnswerEvent, tower_ip: Option<IpAddr>) -> IpAddr {
    match tower_ip {
        Some(ip) if ip != IpAddr::V4(Ipv4Addr::UNSPECIFIED) => ip,
        _ => e.mapper,
    }
}

/// The service label of an RPC interface.
pub fn interface_service(i: &InterfaceId) -> &'static str {
    if i.uuid == UUID_EPM {
        "epm"
    } else {
        kb::service_of(&i.uuid)
    }
}

/// The `not-registered` finding of one answer: an ept_map (or a lookup by
/// interface) answered "not registered" with no endpoint, the first call
/// of its connection. `None` for any other answer.
pub fn not_registered_finding(a: &EpmAnswerEvent) -> Option<Finding> {
    // Asked over another protocol sequence (an ept_map for an ncacn_http
    // tower, #24): "not registered" says the interface is not offered over
    // that one, not that it is not running.
    if !(a.is_single_interface_query()
        && a.first_call
        && a.status == EPT_S_NOT_REGISTERED
        && a.endpoints.is_empty())
        || a.requested_transport == Some(Transport::Http)
    {
        return None;
    }
    let service = a.requested.as_ref().map_or("rpc-other", interface_service);
    let name = a
        .requested
        .as_ref()
        .and_then(|i| kb::interface(&i.uuid))
        .map(|c| c.name.to_string())
        .or_else(|| a.requested.map(|i| i.uuid.to_string()))
        .unwrap_or_else(|| "the requested interface".into());
    Some(Finding {
        kind: FindingKind::NotRegistered,
        proto: a.carrier.ip_proto(),
        server: a.mapper,
        port: a.mapper_port,
        service,
        services: vec![service],
        interface: a.requested,
        clients: vec![a.client],
        first_ts: a.ts,
        evidence: vec![Evidence::EpmNotRegistered {
            ts: a.ts,
            client: a.client,
            operation: a.operation,
            status: a.status,
        }],
        confidence: Confidence::High,
        policy: DecisionKind::Unspecified,
        policy_rule: None,
        verdict: format!(
            "the endpoint mapper on {} does not know {}: the service is not running there",
            a.mapper, name
        ),
        consequence: None,
        idle_timeout: None,
        fix: Some(Fix {
            summary: format!(
                "{} is not registered with the endpoint mapper on {}: start the service that provides it there, or point the clients at a server that runs it",
                name, a.mapper
            ),
            ..Fix::default()
        }),
    })
}

/// The correlator: fed events and flows in capture-time order (a whole
/// capture at once, or batch by batch while capturing), it builds the
/// [`Correlated`] state; hand-offs are decided by its [`HandoffTracker`].
pub struct Correlator {
    out: Correlated,
    tracker: HandoffTracker,
    /// The capture's filters, compiled (`None`: nothing was filtered).
    filter: Option<CaptureFilter>,
    endpoints: BTreeMap<(IpAddr, Transport, u16, Option<InterfaceId>), Endpoint>,
    not_registered: BTreeMap<(IpAddr, u16, Option<InterfaceId>), Finding>,
}

impl Correlator {
    pub fn new(cfg: &CorrelateConfig, tracker: HandoffTracker) -> Correlator {
        Correlator {
            out: Correlated {
                roles: cfg.roles.clone(),
                ..Correlated::default()
            },
            tracker,
            filter: CaptureFilter::new(&cfg.filters),
            endpoints: BTreeMap::new(),
            not_registered: BTreeMap::new(),
        }
    }

    /// The capture's filters and, so far, the hand-offs each made
    /// `not-captured`.
    pub fn limits(&self) -> Vec<FilterLimit> {
        let Some(f) = &self.filter else {
            return Vec::new();
        };
        let counts = self.tracker.not_captured_by();
        f.filters()
            .iter()
            .enumerate()
            .map(|(i, filter)| FilterLimit {
                filter: filter.clone(),
                evaluated: f.evaluated(i),
                handoffs_not_captured: counts.get(i).copied().unwrap_or(0),
            })
            .collect()
    }

    /// What is known so far (labels of flows).
    pub fn state(&self) -> &Correlated {
        &self.out
    }

    pub fn tracker(&self) -> &HandoffTracker {
        &self.tracker
    }

    /// An endpoint-mapper answer (answers come in time order). Returns
    /// whether it made a `not-registered` finding, or added a client to
    /// one.
    pub fn answer(&mut self, a: &EpmAnswerEvent) -> bool {
        let mut seen = BTreeSet::new();
        let dcom = a.operation.is_dcom();
        let proxy = match a.operation {
            EpmOperation::RpcProxy(_) => Some(a.client),
            _ => None,
        };
        if dcom && a.sealed {
            // Sealed: no port to see. The hand-off is told; a connection
            // right after it may be taken as its follow-up (`handoffs`).
            let h = Handoff {
                ts: a.ts,
                client: a.client,
                server: a.mapper,
                mapper: a.mapper,
                carrier: a.carrier,
                transport: Transport::Tcp,
                port: 0,
                interface: dcom_interface(a),
                operation: a.operation,
                window_cut: false,
                outcome: Outcome::Sealed,
                follow_up_at: None,
                dcom: Some(Box::new(DcomHandoff {
                    sealed: true,
                    ..DcomHandoff::default()
                })),
                proxy: None,
            };
            self.tracker.handoff(h);
        }
        for ep in &a.endpoints {
            let server = match proxy {
                // The backend the URL named, or (by name) any address.
                Some(_) => ep.tower_ip.unwrap_or(unspecified(a.mapper)),
                None => tower_server(a, ep.tower_ip),
            };
            let key = (server, ep.transport, ep.port, ep.interface);
            // A DCOM binding names an object exporter's port, not where an
            // interface is registered: not an advertised endpoint; nor
            // does a proxy's URL.
            if dcom || proxy.is_some() {
            } else if let std::collections::btree_map::Entry::Vacant(v) = self.endpoints.entry(key)
            {
                v.insert(Endpoint {
                    server,
                    transport: ep.transport,
                    port: ep.port,
                    interface: ep.interface,
                    annotation: ep.annotation.clone(),
                    first_ts: a.ts,
                });
                if let Some(i) = ep.interface {
                    if interface_service(&i) == "exchange-store" {
                        self.out.exchange_servers.insert(server);
                    }
                    self.out
                        .named_at
                        .entry((server, ep.transport.ip_proto(), ep.port))
                        .or_default()
                        .advertised
                        .push(i);
                }
            }
            if !a.is_single_interface_query() {
                continue;
            }
            // A proxy's URL names no interface: the nil UUID stands in.
            let Some(interface) = ep.interface.or(a.requested).or(proxy.map(|_| InterfaceId {
                uuid: crate::proto::dcerpc::Uuid([0; 16]),
                major: 0,
                minor: 0,
            })) else {
                continue;
            };
            if !seen.insert((server, ep.transport, ep.port, interface)) {
                continue;
            }
            let h = Handoff {
                ts: a.ts,
                // A proxy's hand-off is the proxy's to follow.
                client: proxy.map_or(a.client, |_| a.mapper),
                server,
                mapper: a.mapper,
                carrier: a.carrier,
                transport: ep.transport,
                port: ep.port,
                interface,
                operation: a.operation,
                window_cut: false,
                outcome: Outcome::NoAttempt,
                follow_up_at: None,
                dcom: dcom.then(|| {
                    Box::new(DcomHandoff {
                        bindings: ep.bindings.clone(),
                        by_name: ep.tower_ip.is_none(),
                        sealed: false,
                        inferred: false,
                    })
                }),
                proxy: proxy.map(|requested_by| {
                    Box::new(ProxyHandoff {
                        requested_by,
                        backend: ep.bindings.first().cloned().unwrap_or_default(),
                        by_name: ep.tower_ip.is_none(),
                    })
                }),
            };
            self.out.name(&h);
            // The follow-up would come from the client's side of this
            // answer's connection: its port says its ephemeral range. It
            // may go to either address (`handoffs::follow_keys`): a filter
            // that would drop it at one of them leaves the capture unable
            // to tell that nothing was tried.
            let dropped_by = self.filter.as_ref().map_or_else(Vec::new, |f| {
                let mut d: Vec<u16> = handoffs::follow_keys(&h)
                    .into_iter()
                    .flatten()
                    .filter(|k| !k.0.is_unspecified())
                    .flat_map(|(addr, proto, port, _)| {
                        f.dropping(proto, h.client, a.client_port, addr, port)
                    })
                    .collect();
                d.sort_unstable();
                d.dedup();
                d
            });
            self.tracker.handoff_filtered(h, dropped_by);
        }
        let Some(one) = not_registered_finding(a) else {
            return false;
        };
        match self
            .not_registered
            .entry((a.mapper, a.mapper_port, a.requested))
        {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(one);
                true
            }
            std::collections::btree_map::Entry::Occupied(mut o) => {
                let f = o.get_mut();
                f.evidence.extend(one.evidence);
                let new = !f.clients.contains(&a.client);
                if new {
                    f.clients.push(a.client);
                    f.clients.sort();
                }
                new
            }
        }
    }

    /// An EMSMDB push registration.
    pub fn registration(&mut self, r: &RegistrationEvent) {
        // A callback to 0.0.0.0 means the registering client itself.
        let ip = if r.callback.ip().is_unspecified() {
            r.client
        } else {
            r.callback.ip()
        };
        self.out.exchange_servers.insert(r.server);
        self.out
            .registrations
            .entry((ip, r.callback.port()))
            .or_default()
            .push(r.clone());
    }

    /// A connection came up (live).
    pub fn up(&mut self, u: &FlowUp) {
        self.tracker.up(u);
    }

    /// A flow ended (over a whole capture: every flow, in report order).
    pub fn flow(&mut self, f: &FlowRecord) {
        if answered_unseen(f) && self.out.one_way.len() < MAX_ONE_WAY_SERVERS {
            *self.out.one_way.entry(f.server).or_default() += 1;
        }
        if self
            .tracker
            .wants(&(f.server, f.proto, f.server_port, f.client))
        {
            self.tracker.ended(f);
        }
        let store = |i: &InterfaceId| interface_service(i) == "exchange-store";
        let served = f.rpc.as_ref().is_some_and(|r| {
            r.interfaces
                .iter()
                .any(|b| b.accepted && store(&b.interface))
        });
        if served {
            self.out.exchange_servers.insert(f.server);
        }
    }

    /// The hand-offs whose fate capture time `clock` settles (live).
    pub fn decide(&mut self, clock: Ts) -> Vec<Handoff> {
        let decided = self.tracker.decide(clock);
        self.name_inferred(&decided);
        decided
    }

    /// A sealed DCOM hand-off whose follow-up was inferred names that
    /// connection's endpoint once decided (its port was not known before).
    fn name_inferred(&mut self, decided: &[Handoff]) {
        for h in decided.iter().filter(|h| h.inferred()) {
            self.out.name(h);
        }
    }

    /// Forgets what is older than `horizon` (live capture over days).
    pub fn forget_before(&mut self, horizon: Ts) {
        self.out.forget_before(horizon);
        self.endpoints.retain(|_, e| e.first_ts >= horizon);
        self.not_registered.retain(|_, f| f.first_ts >= horizon);
    }

    /// Every hand-off still pending decided as the capture ended at
    /// `capture_end` (the latest packet).
    pub fn finish_handoffs(&mut self, capture_end: Ts) -> Vec<Handoff> {
        let decided = self.tracker.finish(capture_end);
        self.name_inferred(&decided);
        decided
    }

    /// The whole result (over a whole capture).
    pub fn finish(mut self, capture_end: Ts) -> Correlated {
        let handoffs = self.finish_handoffs(capture_end);
        let mut out = std::mem::take(&mut self.out);
        out.handoffs = handoffs;
        out.limits = self.limits();
        out.endpoints = self.endpoints.into_values().collect();
        out.endpoints.sort_by(|a, b| {
            (a.first_ts, a.server, a.transport, a.port, a.interface).cmp(&(
                b.first_ts,
                b.server,
                b.transport,
                b.port,
                b.interface,
            ))
        });
        out.findings = self.not_registered.into_values().collect();
        out.findings.sort_by_key(|a| (a.first_ts, a.server, a.port));
        for regs in out.registrations.values_mut() {
            regs.sort_by_key(|r| (r.ts, r.client, r.server));
        }
        out
    }
}

/// Joins `events` (any order) with `flows` (sorted by the report order).
pub fn correlate(flows: &[FlowRecord], events: &[Event], cfg: &CorrelateConfig) -> Correlated {
    let mut answers: Vec<&EpmAnswerEvent> = Vec::new();
    let mut c = Correlator::new(cfg, HandoffTracker::batch(cfg.handoff_window));
    for e in events {
        match e {
            Event::EpmAnswer(a) => answers.push(a),
            Event::Registration(r) => c.registration(r),
        }
    }
    answers.sort_by_key(|a| (a.ts, a.client, a.client_port, a.mapper, a.call_id));
    for a in answers {
        c.answer(a);
    }
    for f in flows {
        c.flow(f);
    }
    let capture_end = flows.iter().map(|f| f.last_ts).max().unwrap_or(0);
    c.finish(capture_end)
}

/// The interfaces the server accepted on `f` (none without DCE/RPC).
fn bound_interfaces(f: &FlowRecord) -> impl Iterator<Item = &InterfaceId> + Clone {
    f.rpc
        .iter()
        .flat_map(|r| r.interfaces.iter())
        .filter(|b| b.accepted)
        .map(|b| &b.interface)
}

/// `best` is the hand-off naming this flow's server endpoint that labels
/// it (see [`Correlated::latest_handoff`]); `advertised`, the interfaces
/// advertised there.
fn label_flow(f: &FlowRecord, best: Option<&Named>, advertised: &[InterfaceId]) -> FlowLabel {
    let bound = bound_interfaces(f);
    if let Some(h) = best {
        // A DCOM follow-up binds the object's interface (IRemUnknown2,
        // IWbemLevel1Login, ...), not the activator's: that is its label.
        let interface = match h.by {
            NamedBy::Epm => h.interface,
            NamedBy::Dcom | NamedBy::DcomInferred | NamedBy::Proxy => bound
                .clone()
                .find(|i| !kb::is_dcom_infrastructure(&i.uuid))
                .or(bound.clone().next())
                .copied()
                .unwrap_or(h.interface),
        };
        // A proxy's follow-up that bound nothing seen is the proxy's
        // backend connection, with no interface to name.
        let proxied = h.by == NamedBy::Proxy && interface == h.interface;
        let service = if proxied {
            "rpc-proxy-backend"
        } else {
            interface_service(&interface)
        };
        return FlowLabel {
            service,
            identified_by: match h.by {
                NamedBy::Epm => "epm-handoff",
                NamedBy::Dcom => "dcom-handoff",
                NamedBy::DcomInferred => "dcom-inferred",
                NamedBy::Proxy => "rpc-proxy-handoff",
            },
            port_mismatch: None,
            interface: (!proxied).then_some(interface),
            handoff: Some(HandoffRef {
                ts: h.ts,
                client: h.client,
                latency: f.first_ts - h.ts,
                other_client: h.client != f.client,
            }),
        };
    }
    // The bind itself names the interface (any port), unless the
    // DCE/RPC was carried in SMB named pipes (#24): the flow is SMB.
    let carried = f.app.as_ref().is_some_and(|a| a.smb.is_some());
    if let Some(i) = bound
        .clone()
        .find(|i| i.uuid != UUID_EPM)
        .or(bound.clone().next())
        .filter(|_| !carried)
    {
        return FlowLabel {
            service: interface_service(i),
            identified_by: "payload",
            port_mismatch: None,
            interface: Some(*i),
            handoff: None,
        };
    }
    // DCE/RPC after the ncacn_http banner with no interface bound seen
    // (an RPC proxy's OUT channel, the mapper on 593 before a bind): RPC
    // over HTTP (#24).
    if f.rpc.as_ref().is_some_and(|r| r.carrier == Carrier::Http) {
        return FlowLabel {
            service: "rpc-over-http",
            identified_by: "payload",
            port_mismatch: None,
            interface: None,
            handoff: None,
        };
    }
    // Another protocol recognized from the payload (any port).
    if let Some(app) = &f.app {
        let service = if app.service == "tls" {
            crate::proto::recognize::tls_service_for_port(f.server_port)
        } else {
            app.service
        };
        let port_service = service_for_port(f.proto, f.server_port);
        return FlowLabel {
            service,
            identified_by: "payload",
            // Every RFC 1006 user (X.400 MTAs, S7comm, MMS) belongs on 102.
            port_mismatch: port_service.filter(|p| {
                !(*p == "rfc1006" && app.rfc1006.is_some())
                    && crate::proto::recognize::mismatch(Some(p), service)
            }),
            interface: None,
            handoff: None,
        };
    }
    // A mapper advertised this endpoint (e.g. in an enumeration).
    let advertised = advertised
        .iter()
        .min_by_key(|i| (kb::interface(&i.uuid).is_none(), **i));
    if let Some(&i) = advertised {
        return FlowLabel {
            service: interface_service(&i),
            identified_by: "epm-endpoint",
            port_mismatch: None,
            interface: Some(i),
            handoff: None,
        };
    }
    match service_for_port(f.proto, f.server_port) {
        Some(s) => FlowLabel {
            service: s,
            identified_by: "port",
            port_mismatch: None,
            interface: None,
            handoff: None,
        },
        None => FlowLabel {
            service: "unknown",
            identified_by: "none",
            port_mismatch: None,
            interface: None,
            handoff: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::rpc_conn::{BoundInterface, RpcSummary};
    use crate::flow::{ConnState, FlowEnd, HistoryStr};
    use crate::packet::PROTO_TCP;

    fn interface(k: u8) -> InterfaceId {
        InterfaceId {
            uuid: crate::proto::dcerpc::Uuid([k; 16]),
            major: 1,
            minor: 0,
        }
    }

    fn flow(client: IpAddr, server: IpAddr, port: u16, first_ts: Ts, bound: &[u8]) -> FlowRecord {
        let rpc = (!bound.is_empty()).then(|| {
            Box::new(RpcSummary {
                interfaces: bound
                    .iter()
                    .map(|&k| BoundInterface {
                        interface: interface(k),
                        accepted: k % 3 != 0,
                        ndr64: false,
                    })
                    .collect(),
                ..RpcSummary::default()
            })
        });
        FlowRecord {
            proto: PROTO_TCP,
            client,
            client_port: 50000,
            server,
            server_port: port,
            first_ts,
            last_ts: first_ts,
            state: ConnState::SF,
            history: HistoryStr::new("ShADadFf"),
            syn_retries: 0,
            syn_gaps_us: Box::new([]),
            packets: [4, 4],
            bytes: [300, 300],
            payload_bytes: [60, 60],
            responder_ttl: None,
            responder_ip_id: None,
            icmp: Box::new([]),
            icmp_count: 0,
            rpc,
            app: None,
            end: FlowEnd::EndOfCapture,
            losses: None,
            longest_answered_gap_s: 0,
        }
    }

    /// The rule `label` had before it searched from the latest hand-off:
    /// over the hand-offs naming the endpoint that came before the flow,
    /// the first in answer order with the least (another client's, not for
    /// a bound interface, earlier).
    fn reference(c: &Correlated, f: &FlowRecord) -> Option<HandoffRef> {
        let n = c.named_at.get(&(f.server, f.proto, f.server_port))?;
        let all: Vec<&Named> = n.handoffs.iter().collect();
        let mine: Vec<&Named> = all
            .iter()
            .copied()
            .filter(|h| h.client == f.client)
            .collect();
        let ids = if mine.iter().any(|h| h.ts <= f.first_ts) {
            mine
        } else {
            all
        };
        let h = ids
            .into_iter()
            .filter(|h| h.ts <= f.first_ts)
            .min_by_key(|h| {
                (
                    h.client != f.client,
                    !bound_interfaces(f).any(|b| b.uuid == h.interface.uuid),
                    std::cmp::Reverse(h.ts),
                )
            })?;
        Some(HandoffRef {
            ts: h.ts,
            client: h.client,
            latency: f.first_ts - h.ts,
            other_client: h.client != f.client,
        })
    }

    #[test]
    fn the_latest_handoff_search_picks_what_a_scan_of_every_handoff_picks() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut rand = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let server = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
        let client = |k: u64| IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + k as u8));
        let mut compared = 0;
        for _ in 0..300 {
            // Answers in time order (several at one time), naming two
            // ports, to three clients, for three interfaces.
            let mut ts = 0;
            let handoffs: Vec<Handoff> = (0..rand(40))
                .map(|_| {
                    ts += rand(3);
                    Handoff {
                        ts,
                        client: client(rand(3)),
                        server,
                        mapper: server,
                        carrier: Carrier::Tcp,
                        transport: Transport::Tcp,
                        port: 49152 + rand(2) as u16,
                        interface: interface(1 + rand(3) as u8),
                        operation: EpmOperation::EptMap,
                        outcome: Outcome::NoAttempt,
                        window_cut: false,
                        follow_up_at: None,
                        dcom: None,
                        proxy: None,
                    }
                })
                .collect();
            let mut c = Correlated::default();
            for h in &handoffs {
                c.name(h);
            }
            c.handoffs = handoffs;
            for _ in 0..20 {
                let bound: Vec<u8> = (0..rand(3)).map(|_| 1 + rand(4) as u8).collect();
                let f = flow(
                    client(rand(4)),
                    server,
                    49152 + rand(2) as u16,
                    rand(ts + 2),
                    &bound,
                );
                let want = reference(&c, &f);
                let got = c.label(&f);
                assert_eq!(got.handoff, want, "flow {f:?} among {:?}", c.handoffs);
                if want.is_some() {
                    assert_eq!(got.identified_by, "epm-handoff");
                    compared += 1;
                }
            }
        }
        // Most cases found a hand-off, so the comparison says something.
        assert!(compared > 3000, "only {compared} labelled by a hand-off");
    }
}
