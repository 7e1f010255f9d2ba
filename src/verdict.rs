//! Verdicts: what the packets say about each connection attempt, joined
//! per port into findings (blocked, refused by the host, out of policy,
//! never seen), each with its evidence and a fix.
//!
//! Input: the sorted flows, the correlator's output (labels, hand-offs) and
//! optionally the policy and a two-tap comparison. Output: findings (the
//! report contract's `findings`) and one verdict per (client group, server,
//! service, proto, port). Deterministic whatever the number of cores: the
//! flows are judged and counted in contiguous parts on all cores, merged in
//! flow order, and everything is sorted before it leaves. Only failed
//! attempts are kept one by one; working flows are counted straight into
//! their rows, so judging costs no memory per flow.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use hashbrown::{HashMap, HashSet};

use crate::correlate::Correlated;
use crate::event::InterfaceId;
use crate::flow::FlowRecord;
use crate::kb;
use crate::packet::{PROTO_TCP, PROTO_UDP};
use crate::policy::{Decision, Policy};
use crate::taps::TapView;
use crate::Ts;

mod judge;
pub mod scans;

pub use crate::correlate::HANDOFF_GRACE;
pub use crate::finding::{
    fix_sources, Confidence, Direction, Evidence, Finding, FindingKind, Fix, FixSources,
    HostSettingAdvice, IcmpMeaning, IdleEstimate, KeepAliveAdvice, PinAdvice, SourceChoice, Tap,
    MAX_FIX_SOURCES,
};
pub use crate::policy::DecisionKind;
pub use judge::{
    flow_attempt, flow_outcomes, is_group_address, stall_finding, Attempt, AttemptKey,
    AttemptResult, Failure, HostProfiles, NoVerdict,
};
pub use scans::Scans;

crate::contract::contract_enum! {
    /// What the attempts of a verdict row show, policy aside.
    pub enum Status {
        Blocked => "blocked",
        NeverSeen => "never-seen",
        RefusedByHost => "refused-by-host",
        /// One-way UDP: it left, its delivery is unknown.
        Unconfirmed => "unconfirmed",
        Working => "working",
    }
}

crate::contract::contract_enum! {
    /// A verdict row's status read against the policy.
    pub enum VerdictLabel {
        Blocked => "blocked",
        BlockedPolicyAllows => "blocked-policy-allows",
        BlockedPolicyDenies => "blocked-policy-denies",
        NeverSeen => "never-seen",
        RefusedByHost => "refused-by-host",
        Unconfirmed => "unconfirmed",
        Working => "working",
        WorkingNotInPolicy => "working-not-in-policy",
    }
}

impl VerdictLabel {
    /// The verdict of a row with `status` whose policy decision is
    /// `decision` (`with_policy`: a policy was given at all).
    pub fn of(status: Status, decision: DecisionKind, with_policy: bool) -> VerdictLabel {
        match (status, decision, with_policy) {
            (Status::Working, DecisionKind::Allowed, _) | (Status::Working, _, false) => {
                VerdictLabel::Working
            }
            (Status::Working, _, true) => VerdictLabel::WorkingNotInPolicy,
            (Status::Blocked, DecisionKind::Allowed, _) => VerdictLabel::BlockedPolicyAllows,
            (Status::Blocked, DecisionKind::Denied, _) => VerdictLabel::BlockedPolicyDenies,
            (Status::Blocked, _, _) => VerdictLabel::Blocked,
            (Status::RefusedByHost, _, _) => VerdictLabel::RefusedByHost,
            (Status::Unconfirmed, _, _) => VerdictLabel::Unconfirmed,
            (Status::NeverSeen, _, _) => VerdictLabel::NeverSeen,
        }
    }
}

/// One row of the verdict table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The policy group of the clients, or their /24 (/64) network (one
    /// string shared by every row of the group).
    pub client_group: std::sync::Arc<str>,
    pub server: IpAddr,
    pub service: &'static str,
    pub proto: u8,
    pub port: u16,
    pub status: Status,
    pub policy: DecisionKind,
    pub verdict: VerdictLabel,
    pub clients: Vec<IpAddr>,
    pub working: u64,
    pub failed: u64,
    pub first_ts: Ts,
    pub last_ts: Ts,
}

/// Everything the verdict stage produced.
#[derive(Clone, Debug, Default)]
pub struct Verdicts {
    pub findings: Vec<Finding>,
    pub verdicts: Vec<Verdict>,
    /// Probes the scan tables, full, could not count (see
    /// [`scans::MAX_KEYS`]): judged as ordinary attempts.
    pub scan_probes_untracked: u64,
    /// [`flow_outcomes`] of the flows, as the judge found them on its way
    /// (one tap only: with two, the judge reads the taps, and the one-tap
    /// outcomes are not what it computed). The text report and the
    /// baseline need them; computing them again took as long as the judge.
    pub outcomes: Option<Vec<Option<bool>>>,
}

/// A client group while counting: a policy group (index) or a network.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum GroupKey {
    Named(usize),
    Net(IpAddr),
}

/// The /24 (IPv6: /64) network address of `ip`.
fn subnet_addr(ip: &IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            IpAddr::V4(std::net::Ipv4Addr::new(o[0], o[1], o[2], 0))
        }
        IpAddr::V6(a) => IpAddr::V6(std::net::Ipv6Addr::from(
            u128::from(*a) & !((1u128 << 64) - 1),
        )),
    }
}

/// The client network of an address when no policy group names it.
pub fn subnet_of(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// What breaks when a service is blocked, in the KB articles' terms
/// (the knowledge table's).
pub use crate::kb::consequence;

/// Working traffic the policy does not allow, at one port: services,
/// clients, first seen, connections, the deny rule (if one matched).
type OpenPort = (Vec<&'static str>, BTreeSet<IpAddr>, Ts, u64, Option<String>);

/// Working ports the policy does not allow, by (server, proto, port).
type OpenPorts = BTreeMap<(IpAddr, u8, u16), OpenPort>;

/// Registry values that pin `service`'s port on `server` (the knowledge
/// table's): those of the interface the hand-off named, else those of the
/// service, for the Exchange version and roles `cx` knows (every version's,
/// each labelled, when the version is unknown).
pub fn pin_advice(
    service: &str,
    interface: Option<&InterfaceId>,
    server: IpAddr,
    cx: &kb::Context,
) -> Vec<PinAdvice> {
    let entry = interface.and_then(|i| kb::interface(&i.uuid));
    let name = crate::policy::services::service_ports(service).map_or("unknown", |s| s.name);
    kb::pins(service, entry, cx)
        .into_iter()
        .map(|p| pin_advice_of(p, name, entry, server, cx))
        .collect()
}

fn pin_advice_of(
    p: &kb::Pin,
    service: &'static str,
    entry: Option<&kb::Interface>,
    server: IpAddr,
    cx: &kb::Context,
) -> PinAdvice {
    let mut notes: Vec<String> = p.note.iter().map(|n| n.to_string()).collect();
    if p.value.value.contains('/') {
        notes.push(kb::FORWARD_SLASH.to_string());
    }
    PinAdvice {
        service,
        component: entry.map_or_else(|| p.component.to_string(), |e| e.name.to_string()),
        key: p.value.full_key(),
        value: p.value.value.to_string(),
        kind: p.value.kind.as_str(),
        data: p.value.data,
        // Labelled when the version is not known, so each alternative says
        // whose it is; a known version needs no label.
        exchange: (!p.exchange.is_empty() && cx.exchange.is_none()).then(|| p.label()),
        on: format!("{server}: {}", p.host.as_str()),
        restart: p.restart.as_str(),
        notes,
        article: p.article().id(),
    }
}

/// Firewall rules that let `sources` reach `server` `proto`/`port`.
fn allow_rules(
    sources: &[String],
    server: IpAddr,
    proto: u8,
    port: u16,
    comment: &str,
    verdict: &str,
) -> (Vec<String>, Vec<String>) {
    let v6 = server.is_ipv6();
    let fam = if v6 { "ip6" } else { "ip" };
    let set = if sources.len() == 1 {
        sources[0].clone()
    } else {
        format!("{{ {} }}", sources.join(", "))
    };
    let p = crate::policy::proto_str(proto);
    let nft = vec![format!(
        "nft insert rule inet filter forward {fam} saddr {set} {fam} daddr {server} {p} dport {port} ct state new {verdict} comment \"exflow: {comment}\""
    )];
    let ipt = if v6 { "ip6tables" } else { "iptables" };
    let target = if verdict == "accept" {
        "ACCEPT"
    } else {
        "DROP"
    };
    let iptables = sources
        .iter()
        .map(|s| {
            format!(
                "{ipt} -I FORWARD -p {p} -s {s} -d {server} --dport {port} -m conntrack --ctstate NEW -m comment --comment \"exflow: {comment}\" -j {target}"
            )
        })
        .collect();
    (nft, iptables)
}

fn service_label(service: &str, interface: Option<&InterfaceId>) -> String {
    match interface.and_then(|i| kb::interface(&i.uuid)) {
        Some(e) if !e.name.eq_ignore_ascii_case(service) => format!("{service} ({})", e.name),
        _ => service.to_string(),
    }
}

/// Firewall rules for new-mail notifications (Q264035): UDP from the
/// Exchange server's ports above 1024 to the client's ports above 1024 —
/// never only the port seen, which the client picks anew at every start.
fn notification_rules(
    sources: &[String],
    clients: &[String],
    v6: bool,
    comment: &str,
) -> (Vec<String>, Vec<String>) {
    let fam = if v6 { "ip6" } else { "ip" };
    let set = |v: &[String]| {
        if v.len() == 1 {
            v[0].clone()
        } else {
            format!("{{ {} }}", v.join(", "))
        }
    };
    let nft = vec![format!(
        "nft insert rule inet filter forward {fam} saddr {} {fam} daddr {} udp sport 1025-65535 udp dport 1025-65535 ct state new accept comment \"exflow: {comment}\"",
        set(sources),
        set(clients)
    )];
    let ipt = if v6 { "ip6tables" } else { "iptables" };
    let iptables = sources
        .iter()
        .flat_map(|s| clients.iter().map(move |c| (s, c)))
        .map(|(s, c)| {
            format!(
                "{ipt} -I FORWARD -p udp -s {s} -d {c} --sport 1025:65535 --dport 1025:65535 -m conntrack --ctstate NEW -m comment --comment \"exflow: {comment}\" -j ACCEPT"
            )
        })
        .collect();
    (nft, iptables)
}

/// The client a notification goes to, as the rule should name it: its
/// policy group's networks (of the same address family) when it has one,
/// else the client itself.
fn notification_targets(client: IpAddr, policy: Option<&Policy>) -> Vec<String> {
    let group: Vec<String> = policy
        .and_then(|p| p.group_of(&client))
        .map(|g| {
            g.members
                .iter()
                .filter(|c| c.addr.is_ipv6() == client.is_ipv6())
                .map(|c| {
                    let max = if c.addr.is_ipv4() { 32 } else { 128 };
                    if c.prefix == max {
                        c.addr.to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if group.is_empty() {
        vec![client.to_string()]
    } else {
        group
    }
}

/// The endpoint mapper the clients reached to learn `f`'s port, as the
/// hand-offs naming it say (#24): TCP 135 (the KB articles' mapper), or
/// what they came over instead: an SMB named pipe (445/139), ncacn_http
/// (593). TCP 135 when no hand-off names it.
fn mapper_ports(f: &Finding, c: &Correlated) -> String {
    use crate::event::Carrier;
    let mut via: Vec<Carrier> = c
        .handoffs
        .iter()
        .filter(|h| {
            h.port == f.port
                && h.transport.ip_proto() == f.proto
                && (h.server == f.server || h.follow_up_at == Some(f.server))
        })
        .map(|h| h.carrier)
        .collect();
    via.sort();
    via.dedup();
    let say = |c: &Carrier| match c {
        Carrier::Tcp => "TCP 135",
        Carrier::Udp => "UDP 135",
        Carrier::NamedPipe => {
            "TCP 445 or 139: the clients asked the endpoint mapper over an SMB named pipe"
        }
        Carrier::Http => "TCP 593: the clients asked the RPC over HTTP endpoint mapper",
    };
    if via.is_empty() {
        return "TCP 135".into();
    }
    via.iter().map(say).collect::<Vec<_>>().join(" and ")
}

fn blocked_fix(f: &Finding, policy: Option<&Policy>, c: &Correlated) -> Fix {
    let sources = fix_sources(&f.clients, policy);
    let what = service_label(f.service, f.interface.as_ref());
    let roles = c.roles();
    let cx = kb::Context {
        exchange: roles.exchange_version,
        is_exchange: roles.is_exchange(&f.server),
        is_dc: roles.is_dc(&f.server),
    };
    // A port the policy already pins is not dynamic: no pinning advice.
    let pinned = policy.is_some_and(|p| pinned_service(p, &f.server, f.proto, f.port).is_some());
    let dynamic_rpc = f.proto == PROTO_TCP
        && crate::policy::services::is_rpc_interface_service(f.service)
        && f.port > 1024
        && !pinned;
    let notification = f.service == "mapi-notification" && f.proto == PROTO_UDP;
    let (nftables, iptables) = if notification && !pinned {
        let to = notification_targets(f.server, policy);
        notification_rules(&sources.blocks, &to, f.server.is_ipv6(), &what)
    } else {
        allow_rules(&sources.blocks, f.server, f.proto, f.port, &what, "accept")
    };
    let pin = if dynamic_rpc || (notification && !pinned) {
        pin_advice(f.service, f.interface.as_ref(), f.server, &cx)
    } else {
        Vec::new()
    };
    let mut range = None;
    let note = if dynamic_rpc && f.service == "dcom" {
        range = Some(kb::RANGE_RECIPE.text());
        Some(format!(
            "{} is a dynamic RPC port that DCOM handed out (the activator or OXID resolver on TCP 135 named it in its string bindings): RPC dynamic port allocation takes it from the server's dynamic range (KB154596), so it is not fixed. No registry value documented in the articles pins it: restrict the server's dynamic RPC range (below), then allow that range plus TCP 135. KB154596: \"DCOM stores raw IP addresses in the interface marshaling packets. If the client can't connect to the address specified in the packet, it won't work\": the client must reach the server at its actual address, not through address translation.",
            f.port
        ))
    } else if dynamic_rpc {
        let mapper = mapper_ports(f, c);
        let versions = pin.iter().filter(|p| p.exchange.is_some()).count() > 1;
        if pin.is_empty() {
            range = Some(kb::RANGE_RECIPE.text());
        }
        Some(format!(
            "{} is a dynamic RPC port: the endpoint mapper hands out another one when the service restarts. {}",
            f.port,
            if pin.is_empty() {
                format!("No registry value documented in the articles pins this interface: restrict the server's dynamic RPC range (below), then allow that range plus {mapper}.")
            } else if versions {
                format!("Prefer pinning it with its registry value (the pin above) and allowing the pinned port (plus {mapper}) instead of this one. The value depends on the Exchange version: each is labelled (--exchange-version, or a policy profile, picks one).")
            } else {
                format!("Prefer pinning it with its registry value (the pin above) and allowing the pinned port (plus {mapper}) instead of this one.")
            }
        ))
    } else if notification && !pinned {
        Some(format!(
            "Q264035: the client picks its notification port at startup and the server sends from a dynamic port, so the rule allows UDP from the Exchange server's ports > 1024 to the client's ports > 1024, not only port {} seen here; or fix the client's port with FixedUDPPort (the pin above) and allow just that port.",
            f.port
        ))
    } else if matches!(f.service, "x400-mta" | "rfc1006") && f.port == 102 {
        Some(kb::RFC1006_NOT_A_FIX.to_string())
    } else {
        None
    };
    let port_advice = pin
        .iter()
        .any(|p| p.service != "mapi-notification")
        .then_some(kb::PORT_ADVICE_TEXT);
    let mut summary = if notification && !pinned {
        format!(
            "allow udp {} → {} ports > 1024 from ports > 1024 ({what}, Q264035)",
            sources.short(),
            f.server
        )
    } else {
        format!(
            "allow {} {} → {} port {} ({})",
            crate::policy::proto_str(f.proto),
            sources.short(),
            f.server,
            f.port,
            what
        )
    };
    if let Some(w) = sources.widening() {
        summary.push_str("; ");
        summary.push_str(&w);
    }
    Fix {
        summary,
        nftables,
        iptables,
        pin,
        note,
        port_advice,
        range,
        sources: Some(sources),
        keepalive: None,
        host_setting: None,
    }
}

/// Below this many flows (or attempts) one thread does the work faster
/// than several.
const PARALLEL_FLOWS: usize = 8192;

/// The size of each thread's contiguous part of `len` items, or `None`
/// when one thread should do it all.
fn thread_part(len: usize) -> Option<usize> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    (threads > 1 && len >= PARALLEL_FLOWS).then(|| len.div_ceil(threads))
}

/// A verdict row's key while counting: (client group, server, service,
/// proto, port).
type RowKey = (GroupKey, IpAddr, &'static str, u8, u16);

/// A verdict row's place in the report: group rank (and IPv6 bit), server
/// address, service rank, proto, port.
type RowOrder = (u32, u128, u32, u8, u16);

/// A verdict row while counting.
struct Row {
    /// Sorted at the end.
    clients: Clients,
    working: u64,
    failed: u64,
    unconfirmed: u64,
    refused: u64,
    first_ts: Ts,
    last_ts: Ts,
    /// The first of the strongest decisions (allowed > denied >
    /// unspecified) over the row's attempts, with a policy.
    decision: Option<Decision>,
}

impl Row {
    fn new(a: &Attempt) -> Row {
        Row {
            clients: Clients::default(),
            working: 0,
            failed: 0,
            unconfirmed: 0,
            refused: 0,
            first_ts: a.ts,
            last_ts: a.last_ts,
            decision: None,
        }
    }

    fn add(&mut self, a: &Attempt, decision: Option<Decision>) {
        self.clients.insert(a.client);
        self.first_ts = self.first_ts.min(a.ts);
        self.last_ts = self.last_ts.max(a.last_ts);
        match &a.result {
            AttemptResult::Working => self.working += 1,
            AttemptResult::Unconfirmed => self.unconfirmed += 1,
            AttemptResult::Failed {
                failure: Failure::RefusedByHost,
                ..
            } => self.refused += 1,
            AttemptResult::Failed { .. } => self.failed += 1,
            AttemptResult::Inconclusive(_) => {}
        }
        if let Some(d) = decision {
            self.offer(d);
        }
    }

    /// Keeps `d` if it is stronger than the decision so far.
    fn offer(&mut self, d: Decision) {
        let better = matches!(
            (&self.decision, &d),
            (None, _)
                | (
                    Some(Decision::Unspecified),
                    Decision::Allowed(_) | Decision::Denied(_)
                )
                | (Some(Decision::Denied(_)), Decision::Allowed(_))
        );
        if better {
            self.decision = Some(d);
        }
    }

    /// Adds the row counted over later attempts (the same as counting them
    /// here one by one: the first strongest decision stays first).
    fn merge(&mut self, later: Row) {
        self.clients.merge(later.clients);
        self.working += later.working;
        self.failed += later.failed;
        self.unconfirmed += later.unconfirmed;
        self.refused += later.refused;
        self.first_ts = self.first_ts.min(later.first_ts);
        self.last_ts = self.last_ts.max(later.last_ts);
        if let Some(d) = later.decision {
            self.offer(d);
        }
    }
}

/// A verdict row's clients while counting. Most rows have one or two (a
/// flow-heavy capture's 832,827 rows hold 1.3 on average), kept inline; more
/// go to a hash set. A hash set per row was half of the judge's memory.
enum Clients {
    Inline(u8, [IpAddr; 2]),
    Set(HashSet<IpAddr>),
}

impl Default for Clients {
    fn default() -> Self {
        Clients::Inline(0, [IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED); 2])
    }
}

impl Clients {
    fn insert(&mut self, ip: IpAddr) {
        match self {
            Clients::Inline(n, a) => {
                let held = &a[..usize::from(*n)];
                if held.contains(&ip) {
                    return;
                }
                if usize::from(*n) < a.len() {
                    a[usize::from(*n)] = ip;
                    *n += 1;
                } else {
                    let mut set: HashSet<IpAddr> = a.iter().copied().collect();
                    set.insert(ip);
                    *self = Clients::Set(set);
                }
            }
            Clients::Set(set) => {
                set.insert(ip);
            }
        }
    }

    fn merge(&mut self, later: Clients) {
        match later {
            Clients::Inline(n, a) => a[..usize::from(n)].iter().for_each(|&ip| self.insert(ip)),
            Clients::Set(set) => set.into_iter().for_each(|ip| self.insert(ip)),
        }
    }

    fn sorted(&self) -> Vec<IpAddr> {
        let mut v = match self {
            Clients::Inline(n, a) => a[..usize::from(*n)].to_vec(),
            Clients::Set(set) => set.iter().copied().collect(),
        };
        v.sort_unstable();
        v
    }
}

/// Adds the rows counted over later attempts to `rows` (the same as
/// counting those attempts into `rows` one by one).
fn merge_rows(rows: &mut HashMap<RowKey, Row>, later: HashMap<RowKey, Row>) {
    // The first part's rows are taken whole, and room is made once for the
    // next part's: re-inserting 416,000 rows into a growing map was a third
    // of the judge's time on the flow-heavy capture.
    if rows.is_empty() {
        *rows = later;
        return;
    }
    rows.reserve(later.len());
    for (key, row) in later {
        match rows.entry(key) {
            hashbrown::hash_map::Entry::Occupied(mut e) => e.get_mut().merge(row),
            hashbrown::hash_map::Entry::Vacant(e) => {
                e.insert(row);
            }
        }
    }
}

/// `work(offset, part)` over contiguous parts of `flows` (each a multiple
/// of 64 flows long but the last; `offset` is the index of the part's first
/// flow), on all cores; the results in flow order.
fn on_parts<T: Send>(
    flows: &[FlowRecord],
    work: impl Fn(usize, &[FlowRecord]) -> T + Sync,
) -> Vec<T> {
    let Some(part) = thread_part(flows.len()) else {
        return vec![work(0, flows)];
    };
    let part = part.next_multiple_of(64);
    let work = &work;
    std::thread::scope(|sc| {
        let handles: Vec<_> = flows
            .chunks(part)
            .enumerate()
            .map(|(k, p)| sc.spawn(move || work(k * part, p)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// What the verdicts need of a run of attempts, counted as they are
/// judged. Only failures stay attempts (findings list them one by one); a
/// working flow leaves a count in its verdict row and one bit, so judging a
/// million working flows allocates next to nothing.
struct Tally {
    /// Verdict rows over the conclusive attempts.
    rows: HashMap<RowKey, Row>,
    /// Failed flow attempts, in flow order.
    failed: Vec<Attempt>,
    /// Two taps: a measured drop beside a failure the packets already
    /// showed on the tap, in flow order.
    extra: Vec<Attempt>,
    /// Bit `k % 64` of word `k / 64`: the run's flow `k` worked.
    working: Vec<u64>,
    /// Per allow rule of the policy: some conclusive attempt matches it.
    rules_seen: Vec<bool>,
    /// What each flow of the run says ([`flow_outcomes`]), in flow order.
    outcomes: Vec<Option<bool>>,
}

impl Tally {
    /// Appends the tally of the attempts that follow this one's (a run of
    /// flows must be a multiple of 64 long to be followed).
    fn merge(&mut self, later: Tally) {
        merge_rows(&mut self.rows, later.rows);
        self.failed.extend(later.failed);
        self.extra.extend(later.extra);
        self.working.extend(later.working);
        self.outcomes.extend(later.outcomes);
        for (seen, later) in self.rules_seen.iter_mut().zip(later.rules_seen) {
            *seen |= later;
        }
    }

    fn worked(&self, k: usize) -> bool {
        self.working[k / 64] & (1 << (k % 64)) != 0
    }
}

/// What counting the attempts into findings and verdicts looks at.
struct Judge<'a> {
    /// The judgement of each flow.
    cx: judge::Context<'a>,
    policy: Option<&'a Policy>,
}

impl Judge<'_> {
    fn tally(&self, flows: usize) -> Tally {
        Tally {
            rows: HashMap::new(),
            failed: Vec::new(),
            extra: Vec::new(),
            working: vec![0; flows.div_ceil(64)],
            rules_seen: vec![false; self.policy.map_or(0, |p| p.allow.len())],
            outcomes: Vec::with_capacity(flows),
        }
    }

    /// Judges `flows` (the first being flow `offset`) and counts them.
    fn judge_flows(&self, offset: usize, flows: &[FlowRecord]) -> Tally {
        let mut t = self.tally(flows.len());
        for (k, f) in flows.iter().enumerate() {
            let (mut a, mut extra) = self.cx.judge(offset + k, f);
            t.outcomes.push(a.result.worked());
            self.pin(&mut a);
            if let Some(e) = &mut extra {
                self.pin(e);
            }
            self.count(&a, &mut t);
            if let Some(e) = extra {
                self.count(&e, &mut t);
                t.extra.push(e);
            }
            match a.result {
                AttemptResult::Working => t.working[k / 64] |= 1 << (k % 64),
                AttemptResult::Failed { .. } => t.failed.push(a),
                AttemptResult::Unconfirmed | AttemptResult::Inconclusive(_) => {}
            }
        }
        t
    }

    /// A flow to a port the policy pins, with no label of its own (a
    /// blocked SYN never carries a bind): the pin says what it is. Without
    /// this, a dropped pinned store port was "not mentioned by the policy"
    /// (and its allow rule never seen) although the policy allows exactly
    /// that port.
    fn pin(&self, a: &mut Attempt) {
        if let Some(p) = self.policy.filter(|_| a.service == "unknown") {
            if let Some(s) = pinned_service(p, &a.server, a.proto, a.port) {
                a.service = s;
            }
        }
    }

    /// Hand-offs never followed (the server side's view of a block),
    /// counted into `tally`.
    fn unfollowed_handoffs(&self, c: &Correlated, tally: &mut Tally) -> Vec<Attempt> {
        let handoffs: Vec<Attempt> = c
            .handoffs
            .iter()
            .filter_map(judge::handoff_attempt)
            .map(|mut a| {
                self.pin(&mut a);
                a
            })
            .collect();
        for a in &handoffs {
            self.count(a, tally);
        }
        handoffs
    }

    fn decide(&self, a: &Attempt) -> Decision {
        match self.policy {
            Some(p) => p.decide(&a.client, &a.server, a.proto, a.port, a.service),
            None => Decision::Unspecified,
        }
    }

    /// A client group while counting: cheap keys, names only for the rows
    /// at the end.
    fn group_key(&self, ip: &IpAddr) -> GroupKey {
        self.policy
            .and_then(|p| {
                p.groups
                    .iter()
                    .position(|g| g.members.iter().any(|c| c.contains(ip)))
            })
            .map_or_else(|| GroupKey::Net(subnet_addr(ip)), GroupKey::Named)
    }

    /// Counts a conclusive attempt into its verdict row (unless it is a
    /// second piece of evidence) and the allow rules it matches.
    fn count(&self, a: &Attempt, t: &mut Tally) {
        if matches!(a.result, AttemptResult::Inconclusive(_)) {
            return;
        }
        if let Some(p) = self.policy {
            for (seen, rule) in t.rules_seen.iter_mut().zip(&p.allow) {
                *seen =
                    *seen || p.rule_matches(rule, &a.client, &a.server, a.proto, a.port, a.service);
            }
        }
        if a.extra {
            return;
        }
        let key = (
            self.group_key(&a.client),
            a.server,
            a.service,
            a.proto,
            a.port,
        );
        let decision = self.policy.is_some().then(|| self.decide(a));
        t.rows
            .entry(key)
            .or_insert_with(|| Row::new(a))
            .add(a, decision);
    }
}

/// Joins flows, hand-offs, policy and taps into findings and verdicts.
pub fn evaluate(
    flows: &[FlowRecord],
    c: &Correlated,
    policy: Option<&Policy>,
    taps: Option<&TapView>,
) -> Verdicts {
    let judge = Judge {
        cx: judge::Context::new(flows, c, taps),
        policy,
    };
    let mut tally = judge.tally(0);
    for part in on_parts(flows, |offset, part| judge.judge_flows(offset, part)) {
        tally.merge(part);
    }
    let handoffs = judge.unfollowed_handoffs(c, &mut tally);
    let failed: Vec<&Attempt> = tally
        .failed
        .iter()
        .chain(&tally.extra)
        .chain(&handoffs)
        .collect();
    let worked = worked_keys(flows, &tally, &failed);
    let mut findings = failure_findings(&judge, c, &failed, &worked);
    after_handshake_findings(flows, &judge, c, &mut findings);
    let (mut verdicts, open) = verdict_rows(std::mem::take(&mut tally.rows), policy);
    findings.extend(not_in_policy_findings(open, policy));
    if let Some(p) = policy {
        never_seen(p, &tally.rules_seen, &mut findings, &mut verdicts);
    }
    // Scans, sweeps and floods: their own findings, no fix.
    findings.extend(judge.cx.scans.findings.iter().cloned());
    findings.sort_by(|a, b| {
        (a.first_ts, a.kind, a.server, a.proto, a.port)
            .cmp(&(b.first_ts, b.kind, b.server, b.proto, b.port))
    });
    Verdicts {
        findings,
        verdicts,
        scan_probes_untracked: judge.cx.scans.untracked,
        outcomes: taps.is_none().then_some(tally.outcomes),
    }
}

/// Which (client, server, proto, port) with a failure ever worked (only
/// those: a set of every working key would cost memory per flow).
fn worked_keys(flows: &[FlowRecord], tally: &Tally, failed: &[&Attempt]) -> HashSet<AttemptKey> {
    let failed_keys: HashSet<AttemptKey> = failed.iter().map(|a| a.key()).collect();
    if failed_keys.is_empty() {
        return HashSet::new();
    }
    on_parts(flows, |offset, part| {
        part.iter()
            .enumerate()
            .filter(|&(k, _)| tally.worked(offset + k))
            .map(|(_, f)| (f.client, f.server, f.proto, f.server_port))
            .filter(|k| failed_keys.contains(k))
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Findings of the failed attempts, per (kind, server, proto, port), but
/// for the (client, server, proto, port) that also worked.
fn failure_findings(
    judge: &Judge,
    c: &Correlated,
    failed: &[&Attempt],
    worked: &HashSet<AttemptKey>,
) -> Vec<Finding> {
    let mut failures: BTreeMap<FindingKey, Vec<&Attempt>> = BTreeMap::new();
    for &a in failed {
        if let AttemptResult::Failed { failure, .. } = &a.result {
            // Small answers pass where big ones lose their fragments: a
            // working exchange beside them is the pattern, not a doubt.
            if worked.contains(&a.key()) && *failure != Failure::FragmentsDropped {
                continue;
            }
            failures
                .entry((failure.finding_kind(), a.server, a.proto, a.port))
                .or_default()
                .push(a);
        }
    }
    failures
        .into_iter()
        .filter_map(|(key, list)| failure_finding(judge, c, key, &list))
        .collect()
}

/// The finding of one port's failed attempts (None: unanswered UDP that
/// proves too little).
fn failure_finding(
    judge: &Judge,
    c: &Correlated,
    (kind, server, proto, port): FindingKey,
    list: &[&Attempt],
) -> Option<Finding> {
    let policy = judge.policy;
    let evidence: Vec<Evidence> = list
        .iter()
        .filter_map(|a| match &a.result {
            AttemptResult::Failed { evidence, .. } => Some((**evidence).clone()),
            _ => None,
        })
        .collect();
    // Unanswered UDP queries alone prove little: ask for a retry.
    if evidence
        .iter()
        .all(|e| matches!(e, Evidence::UdpUnanswered { .. }))
    {
        let datagrams: u64 = evidence
            .iter()
            .map(|e| match e {
                Evidence::UdpUnanswered { datagrams, .. } => *datagrams,
                _ => 0,
            })
            .sum();
        if datagrams < 2 {
            return None;
        }
    }
    let mut finding = finding_at(
        (kind, server, proto, port),
        list.iter().map(|a| (a.service, a.interface, a.client)),
        evidence,
    );
    let decisions: Vec<Decision> = list.iter().map(|a| judge.decide(a)).collect();
    let decision = decisions
        .iter()
        .find(|d| matches!(d, Decision::Allowed(_)))
        .or_else(|| decisions.iter().find(|d| matches!(d, Decision::Denied(_))))
        .cloned()
        .unwrap_or(Decision::Unspecified);
    let service = finding.service;
    let verdict = match (kind, &decision, policy.is_some()) {
        (FindingKind::FragmentsDropped, _, _) => fragments_verdict(&finding.evidence),
        (FindingKind::RefusedByHost, _, _) => "the host itself refused the connection: nothing listens on the port (the service is down or on another port); the firewall let it through".to_string(),
        (_, Decision::Allowed(rule), _) => format!("misconfigured firewall: the policy allows this ({rule}) but the firewall blocks it"),
        (_, Decision::Denied(rule), _) => format!("blocked as the policy says ({rule}), but it is needed: {}", consequence(service).unwrap_or("the clients use this port")),
        (_, Decision::Unspecified, true) => "blocked; the policy does not mention it".to_string(),
        (_, Decision::Unspecified, false) => "blocked by the network (a firewall)".to_string(),
    };
    finding.policy = decision.kind();
    finding.policy_rule = decision.rule().map(str::to_string);
    finding.verdict = verdict;
    finding.consequence = consequence(service);
    finding.fix = Some(if kind == FindingKind::FragmentsDropped {
        fragments_fix(&finding)
    } else if kind == FindingKind::RefusedByHost {
        Fix {
            summary: format!(
                "start {} on {} (or point the clients at the port it really listens on); the firewall is not the problem",
                service_label(service, finding.interface.as_ref()),
                server
            ),
            ..Fix::default()
        }
    } else {
        blocked_fix(&finding, policy, c)
    });
    Some(finding)
}

/// Verdict rows per (client group, server, service, proto, port), as
/// counted while judging; and the working ports the policy does not allow.
fn verdict_rows(
    counted: HashMap<RowKey, Row>,
    policy: Option<&Policy>,
) -> (Vec<Verdict>, OpenPorts) {
    // Verdict rows per (client group, server, service, proto, port), as
    // counted while judging, sorted by the group's name: each group named
    // once, ranked by name, its rows sorted by rank (not by comparing
    // names row by row).
    let mut names: Vec<(std::sync::Arc<str>, GroupKey)> = counted
        .keys()
        .map(|k| k.0)
        .collect::<HashSet<GroupKey>>()
        .into_iter()
        .map(|g| {
            let name = match g {
                GroupKey::Named(i) => policy.map_or_else(String::new, |p| p.groups[i].name.clone()),
                GroupKey::Net(ip) => subnet_of(&ip),
            };
            (name.into(), g)
        })
        .collect();
    names.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut rank: HashMap<GroupKey, usize> = HashMap::with_capacity(names.len());
    for (k, (name, g)) in names.iter().enumerate() {
        // Two keys with one name (a policy group named like a network)
        // share the rank of the first, as sorting by name did.
        let first = names[..k].partition_point(|(n, _)| n < name);
        rank.insert(*g, first);
    }
    // Services ranked by name the same way (a handful), and the rows
    // sorted as small integer keys beside their index: sorting the rows
    // themselves moved 150 bytes per swap.
    let mut services: Vec<&'static str> = counted
        .keys()
        .map(|k| k.2)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    services.sort_unstable();
    let service_rank = |s: &str| services.partition_point(|x| *x < s) as u32;
    let mut order: Vec<(RowOrder, &RowKey, &Row)> = counted
        .iter()
        .map(|(key, r)| {
            let (g, server, service, proto, port) = key;
            let addr = match server {
                IpAddr::V4(a) => u128::from(u32::from(*a)),
                IpAddr::V6(a) => u128::from(*a),
            };
            // IpAddr's order: every IPv4 address before every IPv6 one.
            let rank = (rank[g] as u32) << 1 | u32::from(server.is_ipv6());
            ((rank, addr, service_rank(service), *proto, *port), key, r)
        })
        .collect();
    order.sort_unstable_by_key(|o| o.0);
    let mut verdicts = Vec::with_capacity(order.len());
    let mut not_in_policy = OpenPorts::new();
    for ((ranked, ..), &(_, server, service, proto, port), r) in order {
        let client_group = names[(ranked >> 1) as usize].0.clone();
        let clients = r.clients.sorted();
        let decision = r.decision.clone().unwrap_or(Decision::Unspecified);
        let status = if r.working > 0 {
            Status::Working
        } else if r.failed > 0 {
            Status::Blocked
        } else if r.refused > 0 {
            Status::RefusedByHost
        } else {
            Status::Unconfirmed
        };
        let verdict = VerdictLabel::of(status, decision.kind(), policy.is_some());
        if verdict == VerdictLabel::WorkingNotInPolicy {
            let p = policy.expect("policy present");
            // Only traffic the policy speaks about: one end in a group.
            if p.group_of(&server).is_some() || clients.iter().any(|c| p.group_of(c).is_some()) {
                let e = not_in_policy
                    .entry((server, proto, port))
                    .or_insert_with(|| {
                        (
                            Vec::new(),
                            BTreeSet::new(),
                            r.first_ts,
                            0,
                            match &decision {
                                Decision::Denied(rule) => Some(rule.clone()),
                                _ => None,
                            },
                        )
                    });
                if !e.0.contains(&service) {
                    e.0.push(service);
                }
                e.1.extend(clients.iter().copied());
                e.2 = e.2.min(r.first_ts);
                e.3 += r.working;
            }
        }
        verdicts.push(Verdict {
            client_group,
            server,
            service,
            proto,
            port,
            status,
            policy: decision.kind(),
            verdict,
            clients,
            working: r.working,
            failed: r.failed + r.refused,
            first_ts: r.first_ts,
            last_ts: r.last_ts,
        });
    }
    (verdicts, not_in_policy)
}

/// `not-in-policy` findings: working ports no allow rule covers.
fn not_in_policy_findings(open: OpenPorts, policy: Option<&Policy>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for ((server, proto, port), (services, clients, first_ts, connections, denied_by)) in open {
        let clients: Vec<IpAddr> = clients.into_iter().collect();
        let sources = fix_sources(&clients, policy);
        let what = service_label(services[0], None);
        let (nftables, iptables) = allow_rules(
            &sources.blocks,
            server,
            proto,
            port,
            &format!("close {what}"),
            "drop",
        );
        findings.push(Finding {
            kind: FindingKind::NotInPolicy,
            proto,
            server,
            port,
            service: services[0],
            services,
            interface: None,
            evidence: vec![Evidence::Established {
                ts: first_ts,
                client: clients[0],
                connections,
            }],
            clients,
            first_ts,
            confidence: Confidence::High,
            policy: if denied_by.is_some() {
                DecisionKind::Denied
            } else {
                DecisionKind::Unspecified
            },
            verdict: match &denied_by {
                Some(rule) => format!("the firewall lets through what the policy denies ({rule})"),
                None => "the firewall is more open than the policy: this works but no rule allows it".into(),
            },
            policy_rule: denied_by,
            consequence: None,
            idle_timeout: None,
            fix: Some(Fix {
                summary: format!("either add an allow rule for it to the policy, or close it on the firewall ({what})"),
                nftables,
                iptables,
                pin: Vec::new(),
                note: None,
                port_advice: None,
                range: None,
                sources: Some(sources),
                keepalive: None,
                host_setting: None,
            }),
        });
    }
    findings
}

/// A finding's grouping: (kind, server, proto, port).
type FindingKey = (FindingKind, IpAddr, u8, u16);

/// After the handshake (#25): connections a firewall forgot after an idle
/// gap, and black holes mid-stream, per (kind, server, proto, port). They
/// are findings beside the attempts, not failed attempts: the handshake
/// worked, so the verdict rows still count the connection as working.
fn after_handshake_findings(
    flows: &[FlowRecord],
    judge: &Judge,
    c: &Correlated,
    findings: &mut Vec<Finding>,
) {
    let stalls: Vec<(usize, FindingKind, Evidence)> = on_parts(flows, |offset, part| {
        part.iter()
            .enumerate()
            .filter(|(_, f)| f.stall().is_some())
            .filter_map(|(k, f)| {
                judge::stall_finding(f, judge.cx.hosts()).map(|(kind, e)| (offset + k, kind, e))
            })
            .collect::<Vec<_>>()
    })
    .concat();
    if stalls.is_empty() {
        return;
    }
    let mut groups: BTreeMap<FindingKey, Vec<(usize, Evidence)>> = BTreeMap::new();
    for (i, kind, e) in stalls {
        let f = &flows[i];
        groups
            .entry((kind, f.server, f.proto, f.server_port))
            .or_default()
            .push((i, e));
    }
    // The longest silence survived per server port, for the idle groups.
    let mut survived: HashMap<(IpAddr, u8, u16), u16> = groups
        .keys()
        .filter(|k| k.0 == FindingKind::KilledAfterIdle)
        .map(|k| ((k.1, k.2, k.3), 0))
        .collect();
    if !survived.is_empty() {
        for f in flows {
            if let Some(s) = survived.get_mut(&(f.server, f.proto, f.server_port)) {
                *s = (*s).max(f.longest_answered_gap_s);
            }
        }
    }
    for (key @ (kind, server, proto, port), list) in groups {
        let seen: Vec<_> = list
            .iter()
            .map(|(i, _)| {
                let label = c.label(&flows[*i]);
                (label.service, label.interface, flows[*i].client)
            })
            .collect();
        let evidence = list.into_iter().map(|(_, e)| e).collect();
        let mut finding = finding_at(key, seen.into_iter(), evidence);
        let idle_timeout = (kind == FindingKind::KilledAfterIdle).then(|| {
            let longest = survived.get(&(server, proto, port)).copied().unwrap_or(0);
            idle_estimate(&finding.evidence, longest)
        });
        if kind == FindingKind::PmtuBlackHole {
            finding.verdict = pmtu_verdict(&finding);
            finding.fix = Some(pmtu_fix(&finding));
        } else {
            finding.verdict = after_handshake_verdict(idle_timeout, &finding.evidence);
            finding.fix = Some(after_handshake_fix(
                kind,
                idle_timeout,
                finding.service,
                server,
                port,
            ));
        }
        finding.idle_timeout = idle_timeout;
        findings.push(finding);
    }
}

/// A finding of `kind` at (server, proto, port) from what its attempts
/// show (`seen`: service, interface, client of each): every service (a known
/// one first, as the headline), the first interface named, the distinct
/// clients; first seen and confidence from the evidence. Policy, verdict,
/// consequence and fix are the caller's to fill in.
fn finding_at(
    (kind, server, proto, port): FindingKey,
    seen: impl Iterator<Item = (&'static str, Option<InterfaceId>, IpAddr)>,
    evidence: Vec<Evidence>,
) -> Finding {
    let mut services: Vec<&'static str> = Vec::new();
    let mut interface = None;
    let mut clients = BTreeSet::new();
    for (service, named, client) in seen {
        if !services.contains(&service) {
            services.push(service);
        }
        interface = interface.or(named);
        clients.insert(client);
    }
    services.sort_by_key(|s| *s == "unknown");
    Finding {
        kind,
        proto,
        server,
        port,
        service: services[0],
        services,
        interface,
        clients: clients.into_iter().collect(),
        first_ts: evidence.iter().map(Evidence::ts).min().unwrap_or(0),
        confidence: evidence
            .iter()
            .map(Evidence::confidence)
            .max()
            .unwrap_or(Confidence::Low),
        evidence,
        policy: DecisionKind::Unspecified,
        policy_rule: None,
        verdict: String::new(),
        consequence: None,
        fix: None,
        idle_timeout: None,
    }
}

/// The firewall's idle timeout as the evidence of one port's killed
/// connections brackets it; `longest` is the longest silence a connection
/// to that port survived (0: none seen).
fn idle_estimate(evidence: &[Evidence], longest: u16) -> IdleEstimate {
    let killed_after_s = evidence
        .iter()
        .map(|e| match e {
            Evidence::DataUnanswered { idle_gap_ms, .. } => idle_gap_ms / 1000,
            _ => u64::MAX,
        })
        .min()
        .unwrap_or(0);
    IdleEstimate {
        killed_after_s,
        longest_survived_s: (longest > 0).then_some(u64::from(longest)),
    }
}

/// The verdict line of an after-the-handshake finding.
fn after_handshake_verdict(idle_timeout: Option<IdleEstimate>, evidence: &[Evidence]) -> String {
    match idle_timeout {
        Some(est) => format!(
            "a firewall forgets idle connections: connections idle ≥ ~{} are dropped{}; the data sent after the silence was {}",
            duration_text(est.killed_after_s),
            match est.longest_survived_s {
                Some(s) => format!("; the longest surviving idle gap was {}", duration_text(s)),
                None => "; no connection to this port was seen surviving an idle gap".into(),
            },
            if evidence.iter().any(|e| matches!(e, Evidence::DataUnanswered { reset: Some(_), .. })) {
                "answered by a reset the host did not send, or never answered"
            } else {
                "never answered (dropped: no state for it)"
            }
        ),
        None => "a black hole mid-stream: after a working exchange, data was sent again and again and never answered (something on the path drops it)".into(),
    }
}

/// A duration in whole seconds as "25 s", "12 min", "1 h 5 min".
pub fn duration_text(s: u64) -> String {
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ if s % 3600 < 60 => format!("{} h", s / 3600),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// The established-connection idle timeout the fix proposes (seconds): two
/// hours, or twice the silence the capture saw killed if that is longer.
fn proposed_idle_timeout(est: Option<IdleEstimate>) -> u64 {
    est.map_or(0, |e| e.killed_after_s.saturating_mul(2))
        .max(7200)
}

/// What to do about a connection killed after an idle gap (a longer idle
/// timeout on the firewall for that service) or a black hole (find the
/// device that drops). Linux and ASA settings only: the Windows keep-alive
/// values belong in `kb` with their article, which is not there yet.
fn after_handshake_fix(
    kind: FindingKind,
    est: Option<IdleEstimate>,
    service: &str,
    server: IpAddr,
    port: u16,
) -> Fix {
    if kind == FindingKind::BlackHole {
        return Fix {
            summary: format!(
                "find what on the path to {server} port {port} ({service}) drops the data of established connections: a firewall or IPS dropping after inspection, a route change, an overloaded or asymmetric path; a second tap on the far side of the firewall tells whether the firewall drops it"
            ),
            ..Fix::default()
        };
    }
    let secs = proposed_idle_timeout(est);
    let k = &kb::KEEPALIVE;
    let keepalive = est.map(|e| KeepAliveAdvice {
        key: k.value.full_key(),
        value: k.value.value,
        kind: k.value.kind.as_str(),
        data: k.value.data,
        set_to_ms: match e.longest_survived_s {
            Some(s) => s * 1000,
            None => (e.killed_after_s * 1000 / 2).max(1000),
        },
        default: k.default,
        advice: k.advice,
        article: kb::Article::CC782936.id(),
    });
    let ip = if server.is_ipv6() { "ip6" } else { "ip" };
    let name = format!("exflow-idle-{port}");
    Fix {
        summary: format!(
            "let established connections to {server} port {port} ({service}) stay idle longer than its clients stay silent: raise the firewall's idle timeout for them (here to {}), or have the hosts send TCP keep-alives more often than the firewall's timeout",
            duration_text(secs)
        ),
        nftables: vec![
            format!("nft add ct timeout inet filter {name} '{{ protocol tcp; l3proto {ip}; policy = {{ established: {secs} }}; }}'"),
            format!("nft add rule inet filter prerouting {ip} daddr {server} tcp dport {port} ct timeout set \"{name}\""),
        ],
        iptables: vec![
            format!("nfct add timeout {name} inet tcp established {secs}"),
            format!(
                "{} -t raw -A PREROUTING -p tcp -d {server} --dport {port} -j CT --timeout {name}",
                if server.is_ipv6() { "ip6tables" } else { "iptables" }
            ),
        ],
        note: Some(format!(
            "for every established connection at once: sysctl net.netfilter.nf_conntrack_tcp_timeout_established={secs}; on a Cisco ASA: timeout conn {}:{:02}:00 (or `set connection timeout idle` in a policy-map for this traffic only)",
            secs / 3600,
            secs % 3600 / 60
        )),
        keepalive,
        ..Fix::default()
    }
}

/// Who sent a finding's evidence in `direction`: the server (reply) or its
/// clients (request), as one address or an nftables set.
fn senders(f: &Finding, direction: Direction) -> (String, Vec<IpAddr>) {
    match direction {
        Direction::Reply => (f.server.to_string(), vec![f.server]),
        Direction::Request => (nft_set(&f.clients), f.clients.clone()),
    }
}

/// Addresses as one nftables operand: the address, or `{ a, b }`.
fn nft_set(addrs: &[IpAddr]) -> String {
    match addrs {
        [one] => one.to_string(),
        _ => format!(
            "{{ {} }}",
            addrs
                .iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The direction of a finding's first `path-mtu` / `fragments-missing`
/// evidence (they are alike per port in practice).
fn evidence_direction(evidence: &[Evidence]) -> Direction {
    evidence
        .iter()
        .find_map(|e| match e {
            Evidence::PathMtu { direction, .. } | Evidence::FragmentsMissing { direction, .. } => {
                Some(*direction)
            }
            _ => None,
        })
        .unwrap_or(Direction::Reply)
}

/// The verdict line of a `pmtu-black-hole` finding.
fn pmtu_verdict(f: &Finding) -> String {
    let direction = evidence_direction(&f.evidence);
    let (who, _) = senders(f, direction);
    let (seg, passed) = f
        .evidence
        .iter()
        .find_map(|e| match e {
            Evidence::PathMtu {
                segment_bytes,
                passed_bytes,
                ..
            } => Some((*segment_bytes, *passed_bytes)),
            _ => None,
        })
        .unwrap_or((0, 0));
    let icmp = f.evidence.iter().find_map(|e| match e {
        Evidence::PathMtu {
            icmp_sender: Some(s),
            icmp_mtu,
            ..
        } => Some((*s, *icmp_mtu)),
        _ => None,
    });
    format!(
        "a path MTU black hole: {who}'s {seg}-byte segments with don't-fragment set are lost on the way while segments of up to {passed} bytes pass; {}",
        match icmp {
            Some((s, Some(mtu))) => format!("{s} answered \"fragmentation needed\" (MTU {mtu}), which this tap saw but the sender never acted on: something between drops it"),
            Some((s, None)) => format!("{s} answered \"fragmentation needed\", which this tap saw but the sender never acted on: something between drops it"),
            None => "no \"fragmentation needed\" came back: a router sends none or a firewall drops it (KB314825)".into(),
        }
    )
}

/// What to do about a path MTU black hole (#25): let the ICMP that lowers
/// the segment size reach the sender (KB314825), check with ping, and on
/// Windows senders turn black-hole detection on (cc958871).
fn pmtu_fix(f: &Finding) -> Fix {
    let direction = evidence_direction(&f.evidence);
    let (who, hosts) = senders(f, direction);
    let peer = match direction {
        Direction::Reply => nft_set(&f.clients),
        Direction::Request => f.server.to_string(),
    };
    let largest = f
        .evidence
        .iter()
        .filter_map(|e| match e {
            Evidence::PathMtu {
                largest_segment_bytes,
                ..
            } => Some(*largest_segment_bytes),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let v6 = f.server.is_ipv6();
    let (nftables, iptables): (Vec<String>, Vec<String>) = if v6 {
        (
            vec![format!("nft insert rule inet filter forward ip6 daddr {who} icmpv6 type packet-too-big accept")],
            hosts
                .iter()
                .map(|h| format!("ip6tables -I FORWARD -d {h} -p icmpv6 --icmpv6-type packet-too-big -j ACCEPT"))
                .collect(),
        )
    } else {
        (
            vec![format!("nft insert rule inet filter forward ip daddr {who} icmp type destination-unreachable icmp code frag-needed accept")],
            hosts
                .iter()
                .map(|h| format!("iptables -I FORWARD -d {h} -p icmp --icmp-type fragmentation-needed -j ACCEPT"))
                .collect(),
        )
    };
    // ping's data size for a datagram as big as the lost segments: their
    // payload plus 40 bytes of TCP/IP headers, less 28 of ICMP/IP.
    let size = (u32::from(largest) + 12).to_string();
    let target = match direction {
        Direction::Reply => f.clients.first().map_or(String::new(), IpAddr::to_string),
        Direction::Request => f.server.to_string(),
    };
    Fix {
        summary: format!(
            "let {} reach {who}: its segments are too big for a link between it and {peer}, and the message that would tell it to send smaller ones is lost on the way (KB314825: a router sends none, or a firewall on the path drops it); let it through every firewall between them",
            if v6 {
                "ICMPv6 \"packet too big\" (type 2)"
            } else {
                "ICMP \"fragmentation needed\" (type 3, code 4)"
            }
        ),
        nftables,
        iptables,
        note: Some(format!(
            "to check from {who}: {}",
            kb::PMTU_PING
                .replace("{size}", &size)
                .replace("{host}", &target)
        )),
        host_setting: Some(HostSettingAdvice::of(
            &kb::PMTU_BLACK_HOLE_DETECT,
            format!("{who} (Windows)"),
        )),
        ..Fix::default()
    }
}

/// The verdict line of a `fragments-dropped` finding.
fn fragments_verdict(evidence: &[Evidence]) -> String {
    let direction = evidence_direction(evidence);
    let received = evidence
        .iter()
        .filter_map(|e| match e {
            Evidence::FragmentsMissing { received_bytes, .. } => Some(*received_bytes),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let between = evidence.iter().find_map(|e| match e {
        Evidence::FragmentsMissing {
            whole_on: Some(t), ..
        } => Some(*t),
        _ => None,
    });
    format!(
        "IP fragments are dropped on the way: {} datagrams too big for one packet arrive without their later fragments (at most {received} bytes of one came), so no {} ever completes{}",
        direction,
        if direction == Direction::Reply { "answer" } else { "request" },
        match between {
            Some(t) => format!("; whole on the {} tap, first fragment only on the {}: the firewall between the taps drops the later fragments", t.as_str(), t.other().as_str()),
            None => String::new(),
        }
    )
}

/// Kerberos (KB244474): TCP 88 and 464 as well as UDP.
const KERBEROS_PORTS: [u16; 2] = [88, 464];

/// What to do about datagrams that lose their later fragments (#25): let
/// the fragments through; for Kerberos, clients on TCP (KB244474).
fn fragments_fix(f: &Finding) -> Fix {
    let direction = evidence_direction(&f.evidence);
    let (from, to, from_hosts, to_hosts) = match direction {
        Direction::Reply => (
            f.server.to_string(),
            nft_set(&f.clients),
            vec![f.server],
            f.clients.clone(),
        ),
        Direction::Request => (
            nft_set(&f.clients),
            f.server.to_string(),
            f.clients.clone(),
            vec![f.server],
        ),
    };
    let v6 = f.server.is_ipv6();
    let nftables = vec![if v6 {
        format!("nft insert rule inet filter forward ip6 saddr {from} ip6 daddr {to} exthdr frag exists accept")
    } else {
        format!("nft insert rule inet filter forward ip saddr {from} ip daddr {to} ip frag-off & 0x1fff != 0 accept")
    }];
    let iptables = from_hosts
        .iter()
        .flat_map(|s| to_hosts.iter().map(move |d| (s, d)))
        .map(|(s, d)| {
            if v6 {
                format!("ip6tables -I FORWARD -s {s} -d {d} -m frag -j ACCEPT")
            } else {
                format!("iptables -I FORWARD -f -s {s} -d {d} -j ACCEPT")
            }
        })
        .collect();
    let kerberos = f.proto == PROTO_UDP && KERBEROS_PORTS.contains(&f.port);
    Fix {
        summary: format!(
            "let the IP fragments of these datagrams from {from} to {to} through: the first fragment carries the ports and passes, the later ones carry none and are dropped{}",
            if kerberos {
                "; or make the clients send Kerberos over TCP, which is not fragmented (KB244474)"
            } else {
                ""
            }
        ),
        nftables,
        iptables,
        note: Some("a firewall that tracks connections reassembles fragments before its rules see them (Linux conntrack does); a stateless filter or a router list that denies fragments drops the later ones".into()),
        host_setting: kerberos.then(|| {
            HostSettingAdvice::of(&kb::KERBEROS_MAX_PACKET_SIZE, "the clients (Windows)".into())
        }),
        ..Fix::default()
    }
}

/// The service the policy pins to `server` `proto`/`port`, if any.
fn pinned_service(p: &Policy, server: &IpAddr, proto: u8, port: u16) -> Option<&'static str> {
    p.pins
        .iter()
        .filter(|pin| pin.proto == proto && pin.port == port)
        .find(|pin| {
            pin.server.parse::<IpAddr>().ok() == Some(*server) || p.in_group(&pin.server, server)
        })
        .and_then(|pin| crate::policy::services::service_ports(&pin.service))
        .map(|spec| spec.name)
}

/// Allow rules no observed attempt matched (`seen[i]` false for
/// `p.allow[i]`), per server host of the rule's destination group.
fn never_seen(p: &Policy, seen: &[bool], findings: &mut Vec<Finding>, verdicts: &mut Vec<Verdict>) {
    for (rule, _) in p.allow.iter().zip(seen).filter(|(_, &seen)| !seen) {
        let Some(to) = p.group(&rule.to) else {
            continue;
        };
        // What exflow does not follow (ICMP echo) cannot be "never seen".
        if matches!(&rule.traffic, crate::policy::Traffic::Service(name)
            if crate::kb::service(name).is_some_and(|s| s.kind == crate::kb::Kind::IcmpEcho))
        {
            continue;
        }
        for m in &to.members {
            let max = if m.addr.is_ipv4() { 32 } else { 128 };
            if m.prefix != max {
                continue;
            }
            let (service, proto, port) = rule_headline(p, rule, &m.addr);
            findings.push(Finding {
                kind: FindingKind::NeverSeen,
                proto,
                server: m.addr,
                port,
                service,
                services: vec![service],
                interface: None,
                clients: Vec::new(),
                first_ts: 0,
                evidence: Vec::new(),
                confidence: Confidence::Medium,
                policy: DecisionKind::Allowed,
                policy_rule: Some(rule.origin.clone()),
                verdict: format!(
                    "the policy allows {} from {} to {} ({}), but no such traffic was seen",
                    service, rule.from, rule.to, rule.origin
                ),
                consequence: None,
                idle_timeout: None,
                fix: Some(Fix {
                    summary: "nothing to fix if unused; if the service is needed, check that clients use it, or drop the rule to keep the firewall tight".into(),
                    ..Fix::default()
                }),
            });
            verdicts.push(Verdict {
                client_group: rule.from.as_str().into(),
                server: m.addr,
                service,
                proto,
                port,
                status: Status::NeverSeen,
                policy: DecisionKind::Allowed,
                verdict: VerdictLabel::NeverSeen,
                clients: Vec::new(),
                working: 0,
                failed: 0,
                first_ts: 0,
                last_ts: 0,
            });
        }
    }
}

/// The service name, protocol and a representative port of a rule on
/// `server` (its pin if pinned; port 0: any port of a dynamic range).
fn rule_headline(
    p: &Policy,
    rule: &crate::policy::Rule,
    server: &IpAddr,
) -> (&'static str, u8, u16) {
    use crate::policy::Traffic;
    match &rule.traffic {
        Traffic::Ports { proto, ports } => (
            "unknown",
            proto.unwrap_or(PROTO_TCP),
            ports.0.first().map_or(0, |r| r.0),
        ),
        Traffic::Service(name) => {
            let Some(spec) = crate::policy::services::service_ports(name) else {
                return ("unknown", PROTO_TCP, 0);
            };
            let (protos, ports) = p.service_ports_on(server, name).unwrap_or_else(|| {
                (
                    spec.protos.to_vec(),
                    crate::policy::PortSet(spec.ports.to_vec()),
                )
            });
            let proto = protos.first().copied().unwrap_or(PROTO_TCP);
            let port = match ports.0.first() {
                Some(&(lo, hi)) if lo == hi => lo,
                _ => 0,
            };
            (spec.name, proto, port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Verdict rows come out sorted as (group name, server, service, proto,
    /// port) whatever order they were counted in: network names whose
    /// string order is not their numeric one, IPv4 before IPv6 servers,
    /// services by name.
    #[test]
    fn verdict_rows_are_sorted_by_group_name_then_server_service_proto_port() {
        let v4 = |a: u8, b: u8| IpAddr::V4(std::net::Ipv4Addr::new(10, 0, a, b));
        let v6: IpAddr = "2001:db8::5".parse().unwrap();
        let mut counted: HashMap<RowKey, Row> = HashMap::new();
        let mut add = |client: IpAddr, server: IpAddr, service: &'static str, port: u16| {
            let a = Attempt {
                client,
                server,
                proto: PROTO_TCP,
                port,
                service,
                interface: None,
                ts: 1,
                last_ts: 1,
                extra: false,
                result: AttemptResult::Working,
            };
            counted
                .entry((
                    GroupKey::Net(subnet_addr(&client)),
                    server,
                    service,
                    PROTO_TCP,
                    port,
                ))
                .or_insert_with(|| Row::new(&a))
                .add(&a, None);
        };
        for (c, server, service, port) in [
            (v4(2, 9), v6, "ldap", 389),
            (v4(10, 9), v4(1, 1), "smb", 445),
            (v4(2, 9), v4(1, 1), "smb", 445),
            (v4(2, 9), v4(1, 1), "https", 443),
            (v4(2, 8), v4(1, 1), "https", 443),
            (v4(2, 9), v4(0, 200), "smb", 445),
        ] {
            add(c, server, service, port);
        }
        let (rows, _) = verdict_rows(counted, None);
        let got: Vec<(String, String, &str, usize)> = rows
            .iter()
            .map(|v| {
                let g = v.client_group.to_string();
                (g, v.server.to_string(), v.service, v.clients.len())
            })
            .collect();
        let want = [
            ("10.0.10.0/24", "10.0.1.1", "smb", 1),
            ("10.0.2.0/24", "10.0.0.200", "smb", 1),
            ("10.0.2.0/24", "10.0.1.1", "https", 2),
            ("10.0.2.0/24", "10.0.1.1", "smb", 1),
            ("10.0.2.0/24", "2001:db8::5", "ldap", 1),
        ];
        let want: Vec<(String, String, &str, usize)> = want
            .iter()
            .map(|(g, s, svc, n)| (g.to_string(), s.to_string(), *svc, *n))
            .collect();
        assert_eq!(got, want);
    }

    /// A row's clients: inline up to two, a set past them, the same sorted
    /// distinct clients whichever way they were counted and merged.
    #[test]
    fn row_clients_stay_distinct_inline_or_spilled() {
        let ip = |k: u8| IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, k));
        let mut one = Clients::default();
        for k in [3, 1, 3, 1] {
            one.insert(ip(k));
        }
        assert!(matches!(one, Clients::Inline(2, _)));
        let mut many = Clients::default();
        for k in [9, 3, 7, 3, 5] {
            many.insert(ip(k));
        }
        assert!(matches!(many, Clients::Set(_)));
        many.merge(one);
        assert_eq!(many.sorted(), [1, 3, 5, 7, 9].map(ip));
        let mut a = Clients::default();
        a.insert(ip(2));
        let mut b = Clients::default();
        b.insert(ip(2));
        b.insert(ip(4));
        a.merge(b);
        assert_eq!(a.sorted(), [2, 4].map(ip));
    }

    #[test]
    fn a_rows_verdict_reads_its_status_against_the_policy() {
        use DecisionKind::{Allowed, Denied, Unspecified};
        let cases = [
            (Status::Working, Allowed, true, VerdictLabel::Working),
            (Status::Working, Unspecified, false, VerdictLabel::Working),
            (
                Status::Working,
                Unspecified,
                true,
                VerdictLabel::WorkingNotInPolicy,
            ),
            (
                Status::Working,
                Denied,
                true,
                VerdictLabel::WorkingNotInPolicy,
            ),
            (
                Status::Blocked,
                Allowed,
                true,
                VerdictLabel::BlockedPolicyAllows,
            ),
            (
                Status::Blocked,
                Denied,
                true,
                VerdictLabel::BlockedPolicyDenies,
            ),
            (Status::Blocked, Unspecified, true, VerdictLabel::Blocked),
            (Status::Blocked, Unspecified, false, VerdictLabel::Blocked),
            (
                Status::RefusedByHost,
                Allowed,
                true,
                VerdictLabel::RefusedByHost,
            ),
            (Status::Unconfirmed, Denied, true, VerdictLabel::Unconfirmed),
            (Status::NeverSeen, Allowed, true, VerdictLabel::NeverSeen),
        ];
        for (status, decision, with_policy, want) in cases {
            assert_eq!(
                VerdictLabel::of(status, decision, with_policy),
                want,
                "{status} {decision} {with_policy}"
            );
        }
    }

    #[test]
    fn only_what_an_admin_must_act_on_is_actionable() {
        let actionable: Vec<&str> = FindingKind::ALL
            .iter()
            .filter(|k| k.is_actionable())
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            actionable,
            [
                "black-hole",
                "blocked",
                "fragments-dropped",
                "killed-after-idle",
                "not-in-policy",
                "not-registered",
                "pmtu-black-hole",
                "refused-by-host"
            ]
        );
    }
}
