//! Port scans, sweeps and floods: probes, not a service's need.
//!
//! A *probe* is a TCP connection attempt of one SYN and nothing else from
//! its originator, answered by nothing, a reset or an ICMP error (what
//! `nmap -sS` sends, and what SYN floods and their backscatter look like).
//! A real client retransmits an unanswered SYN (Windows and Linux after
//! 1 s), so a failure with retransmissions is never a probe, and neither
//! is a connection to an endpoint an endpoint mapper named to that very
//! client.
//!
//! Probes are grouped three ways; a group that reaches its threshold is a
//! scan, and every probe in it leaves the blocked/refused findings:
//! * port scan: one source, one target host, ≥ [`PORT_SCAN_MIN_PORTS`]
//!   distinct ports;
//! * sweep: one source, one port, ≥ [`SWEEP_MIN_HOSTS`] distinct hosts;
//! * flood (or backscatter): one target endpoint, ≥ [`FLOOD_MIN_SOURCES`]
//!   distinct sources each sending single probes.
//!
//! Each scan becomes one finding of its own kind with what was seen (the
//! source or sources, the ports or targets, counts, time span) and no fix:
//! there is nothing to open. State: three tables of small sets, each set
//! stopping at its threshold and each table at [`MAX_KEYS`] keys (keys past
//! it are counted, not tracked). Offline, a first pass over the probes
//! keeps out of the tables the keys too few probes share to be a scan.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hashbrown::HashMap;

use super::{Confidence, DecisionKind, Evidence, Finding, FindingKind};
use crate::correlate::Correlated;
use crate::flow::{ConnState, FlowRecord};
use crate::packet::PROTO_TCP;
use crate::Ts;

/// Distinct ports one source probes on one host to make a port scan.
pub const PORT_SCAN_MIN_PORTS: usize = 16;
/// Distinct hosts one source probes on one port to make a sweep.
pub const SWEEP_MIN_HOSTS: usize = 16;
/// Distinct sources probing one endpoint to make a flood.
pub const FLOOD_MIN_SOURCES: usize = 32;
/// Keys per table at most.
pub const MAX_KEYS: usize = 1 << 20;
/// Ports, targets and sources listed in a scan's evidence at most (the
/// totals are always given).
const LISTED: usize = 64;

/// What kind of scan a probe belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScanKind {
    PortScan,
    Sweep,
    Flood,
}

impl ScanKind {
    /// What identifies one scan of this kind among a probe's fields:
    /// (source, target, proto, port), the unused parts zeroed.
    pub fn identity(self, f: &FlowRecord) -> (IpAddr, IpAddr, u8, u16) {
        let zero = IpAddr::from([0, 0, 0, 0]);
        match self {
            ScanKind::PortScan => (f.client, f.server, f.proto, 0),
            ScanKind::Sweep => (f.client, zero, f.proto, f.server_port),
            ScanKind::Flood => (zero, f.server, f.proto, f.server_port),
        }
    }

    pub fn finding_kind(self) -> FindingKind {
        match self {
            ScanKind::PortScan => FindingKind::PortScan,
            ScanKind::Sweep => FindingKind::Sweep,
            ScanKind::Flood => FindingKind::Flood,
        }
    }
}

/// Whether `f` has the shape of a probe: one SYN and nothing else from its
/// originator, unanswered, reset, or quoted by an ICMP error.
pub fn probe_shaped(f: &FlowRecord) -> bool {
    f.proto == PROTO_TCP
        && f.syn_retries == 0
        && f.packets[0] == 1
        && matches!(f.state, ConnState::S0 | ConnState::REJ)
        && f.history.starts_with('S')
}

/// A probe, unless the endpoint was named to this very client by an
/// endpoint mapper (then it is a real client's follow-up).
pub fn is_probe(f: &FlowRecord, c: &Correlated) -> bool {
    probe_shaped(f)
        && !c
            .label(f)
            .handoff
            .is_some_and(|h| !h.other_client && h.ts <= f.first_ts)
}

/// A set that stops growing at `cap` (then it is "full"). Its first item
/// is kept inline: most keys are one ordinary failure and never grow, so
/// they cost no heap allocation.
#[derive(Clone, Debug)]
enum Upto<T> {
    One(T),
    Many(Vec<T>),
    Full,
}

impl<T: PartialEq> Upto<T> {
    fn new(x: T, cap: usize) -> Self {
        if cap <= 1 {
            Upto::Full
        } else {
            Upto::One(x)
        }
    }

    fn add(&mut self, x: T, cap: usize) {
        match self {
            Upto::Full => {}
            Upto::One(first) if *first == x => {}
            Upto::One(_) => {
                let Upto::One(first) = std::mem::replace(self, Upto::Full) else {
                    unreachable!()
                };
                if cap > 2 {
                    *self = Upto::Many(vec![first, x]);
                }
            }
            Upto::Many(items) => {
                if items.contains(&x) {
                    return;
                }
                items.push(x);
                if items.len() >= cap {
                    *self = Upto::Full;
                }
            }
        }
    }

    fn is_full(&self) -> bool {
        matches!(self, Upto::Full)
    }
}

/// A table of [`Upto`] sets with a bounded number of keys.
struct Table<K, T> {
    sets: HashMap<K, Upto<T>>,
    cap: usize,
}

impl<K: std::hash::Hash + Eq, T: PartialEq> Table<K, T> {
    fn new(cap: usize) -> Self {
        Table {
            sets: HashMap::new(),
            cap,
        }
    }

    /// Adds `x` under `k`; false when `k` is new and the table is full.
    fn add(&mut self, k: K, x: T) -> bool {
        let at_cap = self.sets.len() >= MAX_KEYS;
        match self.sets.entry(k) {
            hashbrown::hash_map::Entry::Occupied(mut e) => e.get_mut().add(x, self.cap),
            hashbrown::hash_map::Entry::Vacant(_) if at_cap => return false,
            hashbrown::hash_map::Entry::Vacant(e) => {
                e.insert(Upto::new(x, self.cap));
            }
        }
        true
    }

    fn full(&self, k: &K) -> bool {
        self.sets.get(k).is_some_and(Upto::is_full)
    }
}

/// Which probes are scans (built over every flow of a capture).
pub struct Scans {
    port_scans: Table<(IpAddr, IpAddr), (u8, u16)>,
    sweeps: Table<(IpAddr, u8, u16), IpAddr>,
    floods: Table<(IpAddr, u8, u16), IpAddr>,
    /// Probes whose key a full table could not take.
    pub untracked: u64,
    /// The scans, one finding each.
    pub findings: Vec<Finding>,
}

impl Default for Scans {
    fn default() -> Self {
        Scans {
            port_scans: Table::new(PORT_SCAN_MIN_PORTS),
            sweeps: Table::new(SWEEP_MIN_HOSTS),
            floods: Table::new(FLOOD_MIN_SOURCES),
            untracked: 0,
            findings: Vec::new(),
        }
    }
}

impl Scans {
    /// Counts probe `f` (see [`is_probe`]) in the tables; live capture
    /// feeds them probe by probe.
    pub fn add(&mut self, f: &FlowRecord) {
        let tracked = self
            .port_scans
            .add((f.client, f.server), (f.proto, f.server_port))
            & self
                .sweeps
                .add((f.client, f.proto, f.server_port), f.server)
            & self
                .floods
                .add((f.server, f.proto, f.server_port), f.client);
        if !tracked {
            self.untracked += 1;
        }
    }

    /// Finds the scans among `flows` (in report order).
    pub fn detect(flows: &[FlowRecord], c: &Correlated) -> Scans {
        // Cheap shape test first: the label is looked up for few flows.
        let probes: Vec<&FlowRecord> = flows
            .iter()
            .filter(|f| probe_shaped(f) && is_probe(f, c))
            .collect();
        Scans::of_probes(&probes)
    }

    /// Finds the scans among `probes` (the flows [`is_probe`] says are
    /// probes, in report order).
    ///
    /// A first pass counts each probe under its three keys in arrays of
    /// saturating counters indexed by the key's hash (`KeyCounts`): a
    /// key's counter is at least its number of probes, and a scan needs at
    /// least its threshold of probes, so a key whose counter stays under it
    /// cannot be a scan and is not put in the exact tables. Under a flood
    /// of single SYNs from millions of sources the tables then hold the
    /// keys that may be scans instead of a million each (#20: on 3,000,000
    /// single SYNs, peak RSS 972 → 740 MiB, the findings the same and no
    /// probe left untracked).
    pub fn of_probes(probes: &[&FlowRecord]) -> Scans {
        let mut s = Scans::default();
        let counts = KeyCounts::of(probes);
        for f in probes {
            let [port_scan, sweep, flood] = counts.may_be_scans(f);
            let mut tracked = true;
            if port_scan {
                tracked &= s
                    .port_scans
                    .add((f.client, f.server), (f.proto, f.server_port));
            }
            if sweep {
                tracked &= s.sweeps.add((f.client, f.proto, f.server_port), f.server);
            }
            if flood {
                tracked &= s.floods.add((f.server, f.proto, f.server_port), f.client);
            }
            if !tracked {
                s.untracked += 1;
            }
        }
        let mut groups: BTreeMap<(ScanKind, IpAddr, IpAddr, u8, u16), Group> = BTreeMap::new();
        for f in probes {
            let Some(kind) = s.kind_of(f) else { continue };
            let (source, target, proto, port) = kind.identity(f);
            groups
                .entry((kind, source, target, proto, port))
                .or_default()
                .add(f);
        }
        for ((kind, _, _, proto, _), g) in groups {
            s.findings.push(g.finding(kind, proto));
        }
        s
    }

    /// The scan `f` is a probe of, if any (the flow must be a probe).
    pub fn kind_of(&self, f: &FlowRecord) -> Option<ScanKind> {
        self.kind_at(f.client, f.server, f.proto, f.server_port)
    }

    /// The scan a probe from `client` to `server` `proto`/`port` belongs
    /// to, if any.
    pub fn kind_at(
        &self,
        client: IpAddr,
        server: IpAddr,
        proto: u8,
        port: u16,
    ) -> Option<ScanKind> {
        if self.port_scans.full(&(client, server)) {
            Some(ScanKind::PortScan)
        } else if self.sweeps.full(&(client, proto, port)) {
            Some(ScanKind::Sweep)
        } else if self.floods.full(&(server, proto, port)) {
            Some(ScanKind::Flood)
        } else {
            None
        }
    }

    /// Whether `f` is a probe of a scan (then its failure is the scan's,
    /// not a service's).
    pub fn is_scan_probe(&self, f: &FlowRecord, c: &Correlated) -> bool {
        probe_shaped(f) && self.kind_of(f).is_some() && is_probe(f, c)
    }
}

/// Probes per port-scan, sweep and flood key, over-counted: saturating
/// 8-bit counters indexed by the key's hash, so keys that share a slot add
/// up. Never under a key's true count, which is all [`Scans::of_probes`]
/// needs.
struct KeyCounts {
    counts: [Vec<u8>; 3],
    mask: u64,
    hasher: hashbrown::DefaultHashBuilder,
}

impl KeyCounts {
    fn of(probes: &[&FlowRecord]) -> KeyCounts {
        // One slot per probe or more (at most 16 M: 48 MiB for all three).
        let slots = probes.len().clamp(1 << 10, 1 << 24).next_power_of_two();
        let mut k = KeyCounts {
            counts: [vec![0; slots], vec![0; slots], vec![0; slots]],
            mask: slots as u64 - 1,
            hasher: hashbrown::DefaultHashBuilder::default(),
        };
        for f in probes {
            for (table, slot) in k.slots(f).into_iter().enumerate() {
                let c = &mut k.counts[table][slot];
                *c = c.saturating_add(1);
            }
        }
        k
    }

    fn slots(&self, f: &FlowRecord) -> [usize; 3] {
        use std::hash::BuildHasher;
        let h = &self.hasher;
        [
            h.hash_one((f.client, f.server)),
            h.hash_one((f.client, f.proto, f.server_port)),
            h.hash_one((f.server, f.proto, f.server_port)),
        ]
        .map(|x| (x & self.mask) as usize)
    }

    /// Whether `f`'s port-scan, sweep and flood keys have had their
    /// threshold of probes (or more, or share a slot with keys that did).
    fn may_be_scans(&self, f: &FlowRecord) -> [bool; 3] {
        let slots = self.slots(f);
        let need = [PORT_SCAN_MIN_PORTS, SWEEP_MIN_HOSTS, FLOOD_MIN_SOURCES];
        [0, 1, 2].map(|t| usize::from(self.counts[t][slots[t]]) >= need[t])
    }
}

/// What one scan's probes showed.
#[derive(Default)]
struct Group {
    first_ts: Ts,
    last_ts: Ts,
    probes: u64,
    unanswered: u64,
    reset: u64,
    icmp: u64,
    sources: Distinct<IpAddr>,
    targets: Distinct<IpAddr>,
    ports: Distinct<u16>,
}

/// Distinct values, exactly up to [`MAX_KEYS`] (then "at least").
struct Distinct<T> {
    set: hashbrown::HashSet<T>,
}

impl<T> Default for Distinct<T> {
    fn default() -> Self {
        Distinct {
            set: hashbrown::HashSet::new(),
        }
    }
}

impl<T: std::hash::Hash + Eq + Ord + Copy> Distinct<T> {
    fn add(&mut self, x: T) {
        if self.set.len() < MAX_KEYS {
            self.set.insert(x);
        }
    }

    fn total(&self) -> u64 {
        self.set.len() as u64
    }

    /// The [`LISTED`] smallest, in order.
    fn listed(&self) -> Vec<T> {
        let mut v: Vec<T> = self.set.iter().copied().collect();
        v.sort_unstable();
        v.truncate(LISTED);
        v
    }
}

impl Group {
    fn add(&mut self, f: &FlowRecord) {
        if self.probes == 0 {
            self.first_ts = f.first_ts;
        }
        self.first_ts = self.first_ts.min(f.first_ts);
        self.last_ts = self.last_ts.max(f.last_ts);
        self.probes += 1;
        if f.icmp.iter().any(|e| e.quotes_originator) {
            self.icmp += 1;
        } else if f.state == ConnState::REJ {
            self.reset += 1;
        } else {
            self.unanswered += 1;
        }
        self.sources.add(f.client);
        self.targets.add(f.server);
        self.ports.add(f.server_port);
    }

    fn finding(self, kind: ScanKind, proto: u8) -> Finding {
        let span = self.last_ts.saturating_sub(self.first_ts) as f64 / 1e9;
        let sources = self.sources.listed();
        let targets = self.targets.listed();
        let ports = self.ports.listed();
        let answers = format!(
            "{} unanswered, {} reset, {} ICMP error{}",
            self.unanswered,
            self.reset,
            self.icmp,
            if self.icmp == 1 { "" } else { "s" }
        );
        let (server, port, verdict) =
            match kind {
                ScanKind::PortScan => (
                    targets[0],
                    0,
                    format!(
                    "a port scan: {} probed {} ports of {} with {} single-SYN probes ({answers}) \
                     over {span:.1} s; not a service's need: there is no port to open",
                    sources[0], self.ports.total(), targets[0], self.probes
                ),
                ),
                ScanKind::Sweep => (
                    targets[0],
                    ports[0],
                    format!(
                    "a sweep: {} probed port {} on {} hosts with {} single-SYN probes ({answers}) \
                     over {span:.1} s; not a service's need: there is no port to open",
                    sources[0], ports[0], self.targets.total(), self.probes
                ),
                ),
                ScanKind::Flood => {
                    (
                        targets[0],
                        ports[0],
                        format!(
                    "a flood (or its backscatter): {} sources sent {} single SYNs to port {} \
                     of {} ({answers}) over {span:.1} s; not clients of a service: nothing to \
                     open",
                    self.sources.total(), self.probes, ports[0], targets[0]
                ),
                    )
                }
            };
        Finding {
            kind: kind.finding_kind(),
            proto,
            server,
            port,
            service: "unknown",
            services: vec!["unknown"],
            interface: None,
            clients: sources.clone(),
            first_ts: self.first_ts,
            evidence: vec![Evidence::Probes {
                ts: self.first_ts,
                last_ts: self.last_ts,
                client: sources[0],
                sources,
                sources_total: self.sources.total(),
                targets,
                targets_total: self.targets.total(),
                ports,
                ports_total: self.ports.total(),
                probes: self.probes,
                unanswered: self.unanswered,
                reset: self.reset,
                icmp: self.icmp,
            }],
            confidence: Confidence::High,
            policy: DecisionKind::Unspecified,
            policy_rule: None,
            verdict,
            consequence: None,
            idle_timeout: None,
            fix: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::flow::SECOND;

    const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));
    const T0: Ts = 1_700_000_000 * SECOND;

    /// A single unanswered SYN from `client` to `server`:`port`.
    fn probe(client: IpAddr, server: IpAddr, port: u16, k: u64) -> FlowRecord {
        FlowRecord::test_syn(client, 40_000, server, port, T0 + k)
    }

    fn host(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0xc000_0200 + n))
    }

    fn kinds(flows: &[FlowRecord]) -> Vec<FindingKind> {
        Scans::detect(flows, &Correlated::default())
            .findings
            .iter()
            .map(|f| f.kind)
            .collect()
    }

    #[test]
    fn each_scan_shows_at_its_threshold_and_not_below() {
        let scanner = host(1);
        let ports = |n: u16| -> Vec<FlowRecord> {
            (0..n)
                .map(|p| probe(scanner, SERVER, 1000 + p, u64::from(p)))
                .collect()
        };
        assert!(kinds(&ports(PORT_SCAN_MIN_PORTS as u16 - 1)).is_empty());
        assert_eq!(
            kinds(&ports(PORT_SCAN_MIN_PORTS as u16)),
            [FindingKind::PortScan]
        );

        let hosts = |n: u32| -> Vec<FlowRecord> {
            (0..n)
                .map(|h| probe(scanner, host(100 + h), 445, u64::from(h)))
                .collect()
        };
        assert!(kinds(&hosts(SWEEP_MIN_HOSTS as u32 - 1)).is_empty());
        assert_eq!(kinds(&hosts(SWEEP_MIN_HOSTS as u32)), [FindingKind::Sweep]);

        let sources = |n: u32| -> Vec<FlowRecord> {
            (0..n)
                .map(|s| probe(host(1000 + s), SERVER, 445, u64::from(s)))
                .collect()
        };
        assert!(kinds(&sources(FLOOD_MIN_SOURCES as u32 - 1)).is_empty());
        let flood = Scans::detect(&sources(FLOOD_MIN_SOURCES as u32), &Correlated::default());
        assert_eq!(flood.findings.len(), 1);
        let f = &flood.findings[0];
        assert_eq!(
            (f.kind, f.port, f.fix.is_none()),
            (FindingKind::Flood, 445, true)
        );
        let Some(Evidence::Probes {
            sources_total,
            probes,
            unanswered,
            ..
        }) = f.evidence.first()
        else {
            panic!("{:?}", f.evidence)
        };
        assert_eq!((*sources_total, *probes, *unanswered), (32, 32, 32));
    }

    #[test]
    fn a_set_is_full_at_its_cap_counting_distinct_items_only() {
        for cap in 1..=5usize {
            let mut u = Upto::new(0u16, cap);
            assert_eq!(u.is_full(), cap == 1, "cap {cap}");
            if cap > 1 {
                assert!(matches!(u, Upto::One(0)), "one item stays inline");
            }
            for x in 1..cap as u16 {
                assert!(!u.is_full(), "cap {cap}: full before {x}");
                u.add(x, cap);
                u.add(x, cap);
                u.add(0, cap);
            }
            assert!(u.is_full(), "cap {cap}");
            u.add(99, cap);
            assert!(u.is_full());
        }
    }

    /// Offline, the tables take only keys that have had their threshold of
    /// probes: a flood of MAX_KEYS + 5 single probes from distinct sources
    /// leaves nothing untracked, and a port scan among them is still found.
    #[test]
    fn of_probes_tracks_only_keys_that_may_be_scans() {
        let flood: Vec<FlowRecord> = (0..MAX_KEYS as u32 + 5)
            .map(|n| probe(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)), SERVER, 445, 0))
            .collect();
        let scan: Vec<FlowRecord> = (0..PORT_SCAN_MIN_PORTS as u16)
            .map(|p| probe(host(7), host(8), 1000 + p, u64::from(p)))
            .collect();
        let probes: Vec<&FlowRecord> = flood.iter().chain(&scan).collect();
        let s = Scans::of_probes(&probes);
        assert_eq!(s.untracked, 0);
        assert!(s.port_scans.sets.len() < 64, "{}", s.port_scans.sets.len());
        assert!(s.sweeps.sets.len() < 64, "{}", s.sweeps.sets.len());
        assert_eq!(s.kind_of(&flood[3]), Some(ScanKind::Flood));
        assert_eq!(s.kind_of(&scan[0]), Some(ScanKind::PortScan));
        let kinds: Vec<FindingKind> = s.findings.iter().map(|f| f.kind).collect();
        assert_eq!(kinds.len(), 2, "{kinds:?}");
        // One probe short of a port scan stays none.
        let short: Vec<&FlowRecord> = scan[1..].iter().collect();
        let s = Scans::of_probes(&short);
        assert_eq!(s.kind_of(&scan[1]), None);
        assert!(s.findings.is_empty());
    }

    #[test]
    fn a_full_table_counts_the_probes_it_cannot_take() {
        // One probe from each of MAX_KEYS + 5 sources to one port of one
        // host: the flood table holds one key, but the port-scan and sweep
        // tables need one per source and stop at MAX_KEYS.
        let mut s = Scans::default();
        let extra = 5;
        for n in 0..(MAX_KEYS as u32 + extra) {
            s.add(&probe(
                IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)),
                SERVER,
                445,
                0,
            ));
        }
        assert_eq!(s.untracked, u64::from(extra));
        // What the tables hold still shows: the flood.
        let f = probe(host(7), SERVER, 445, 0);
        assert_eq!(s.kind_of(&f), Some(ScanKind::Flood));
    }
}
