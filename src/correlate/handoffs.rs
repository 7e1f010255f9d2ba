//! What became of each hand-off: the one implementation of the hand-off
//! window, used over a whole capture (`correlate`) and batch by batch while
//! capturing (`crate::stream`).
//!
//! It is fed, in capture-time order batch by batch, the hand-offs the
//! endpoint-mapper answers create ([`HandoffTracker::handoff`]), the
//! connections that came up ([`HandoffTracker::up`], live only) and the
//! connections that ended ([`HandoffTracker::ended`]; over a whole capture,
//! every flow). [`HandoffTracker::decide`] settles each hand-off whose fate
//! the clock has made certain; at the end every hand-off is settled, with
//! the same rule.
//!
//! The rule, for a hand-off answered at `ts` to `client` naming an endpoint:
//! the client's connections there starting in `[ts, end]` are its attempts,
//! "there" being the endpoint's port at either address the follow-up may go
//! to ([`follow_keys`]: the tower's, and the one the client reached the
//! mapper on — over ncacn_ip_tcp a client keeps that address and takes only
//! the port from the answer, #22),
//! where `end` is `ts + window`, cut at the next answer naming the same
//! endpoint to the same client (a connection follows the latest answer).
//! The first attempt (in report order) that came up follows it; else an ICMP
//! error quoting an attempt, a reset, unanswered UDP, unanswered SYNs; else a
//! connection already open when the answer came; else nothing was tried —
//! unless the next answer's own connection came, which supersedes this one,
//! or the capture's filters would have dropped the attempt (given with the
//! hand-off, [`HandoffTracker::handoff_filtered`]): then it is not captured.

use std::net::IpAddr;

use hashbrown::HashMap;

use super::{tcp_established, Handoff, Outcome};
use crate::flow::{FlowRecord, FlowUp, SECOND};
use crate::packet::{PROTO_TCP, PROTO_UDP};
use crate::proto::epm::Transport;
use crate::proto::wellknown::service_for_port;
use crate::Ts;

/// How long after a sealed DCOM answer a connection from its client to the
/// answering server's dynamic range is taken as its likely follow-up
/// (#22). Clients connect to the port an activation names within
/// milliseconds (the lab's EPM hand-offs: 1–5 ms); a few seconds leave room
/// for a slow client without reaching into what it does next.
pub const SEALED_FOLLOW_WINDOW: Ts = 5 * SECOND;

/// Whether a connection to `port` may be the follow-up of a sealed DCOM
/// answer: the dynamic range (1024 and up), not a port a well-known
/// service has (3268 is the global catalog, not an object exporter).
fn sealed_candidate(proto: u8, port: u16) -> bool {
    proto == PROTO_TCP && port >= 1024 && service_for_port(proto, port).is_none()
}

/// A sealed hand-off's server and client.
type PairKey = (IpAddr, IpAddr);

/// A hand-off's endpoint and client: only that client's flows there can
/// follow it up.
pub(crate) type FollowKey = (IpAddr, u8, u16, IpAddr);

/// Where a hand-off's follow-up may go: the host the tower names (the
/// hand-off's `server`) and, when it is another address, the one the
/// client reached the mapper on. A client keeps the network address it
/// used for the mapper and takes only the port from the answer (MS-RPCE:
/// ncacn_ip_tcp's address is not transmitted), and Windows writes its own
/// IPv4 address into its towers: a client that reached the mapper over
/// IPv6, through NAT or at a virtual IP connects to the mapper's address
/// (#22). The tower's address stays a candidate, for a tower that names
/// another host. Tower first: on a tie between the two, the tower's
/// address wins (what exflow matched before).
///
/// An RPC proxy's hand-off (#24) has one: the backend the URL named (the
/// unspecified address when it named it by name: any address matches,
/// see [`HandoffTracker::ended`]); the proxy is the one connecting.
pub(crate) fn follow_keys(h: &Handoff) -> [Option<FollowKey>; 2] {
    let tower = (h.server, h.transport.ip_proto(), h.port, h.client);
    let mapper = (h.mapper != h.server && h.proxy.is_none())
        .then_some((h.mapper, tower.1, tower.2, tower.3));
    [Some(tower), mapper]
}

/// Where a connection is also recorded while a hand-off to a backend known
/// only by name is pending (#24): its server's address made unspecified.
fn any_address_key(key: &FollowKey) -> FollowKey {
    (super::unspecified(key.0), key.1, key.2, key.3)
}

/// What the tracker knows of one of a client's connections to an endpoint.
#[derive(Clone, Debug)]
struct Seen {
    /// The connection's server (the follow key's address, unless that is
    /// unspecified: a backend named by name, #24).
    server: IpAddr,
    first_ts: Ts,
    client_port: u16,
    /// `None` while the connection is open (live).
    last_ts: Option<Ts>,
    /// Established (TCP) or answered (UDP): final once true.
    up: bool,
    udp: bool,
    /// The first ICMP error quoting the client's packets.
    icmp: Option<Outcome>,
    /// Answered by a reset (REJ), with the reset's TTL.
    reset: Option<Option<u8>>,
    syns: u32,
}

impl Seen {
    fn of(f: &FlowRecord) -> Seen {
        let udp = f.proto == PROTO_UDP;
        Seen {
            server: f.server,
            first_ts: f.first_ts,
            client_port: f.client_port,
            last_ts: Some(f.last_ts),
            up: if udp {
                f.packets[1] > 0
            } else {
                tcp_established(f.state)
            },
            udp,
            icmp: f
                .icmp
                .iter()
                .find(|e| e.quotes_originator)
                .map(|e| Outcome::IcmpUnreachable {
                    sender: e.sender,
                    v6: e.v6,
                    icmp_type: e.icmp_type,
                    code: e.code,
                }),
            reset: (f.state == crate::flow::ConnState::REJ).then_some(f.responder_ttl),
            syns: f.syn_retries + 1,
        }
    }

    /// Report order among one client's flows at one endpoint.
    fn order(&self) -> (Ts, u16) {
        (self.first_ts, self.client_port)
    }
}

/// A hand-off waiting for its fate.
#[derive(Debug)]
struct Pending {
    /// Creation order (the answers' order): the order of `handoffs[]`.
    seq: u64,
    h: Handoff,
    /// When the next hand-off naming the same endpoint to the same client
    /// was answered.
    next: Option<Ts>,
    /// The capture filters (indices) that would have dropped its follow-up.
    dropped_by: Box<[u16]>,
}

/// The same endpoint named to the same client (the transport counts:
/// ncacn_http and ncacn_ip_tcp on one port are two questions).
type SameKey = (IpAddr, IpAddr, Transport, u16);

fn same_key(h: &Handoff) -> SameKey {
    (h.client, h.server, h.transport, h.port)
}

/// Incremental hand-off correlation (see the module docs).
#[derive(Debug)]
pub struct HandoffTracker {
    window: Ts,
    /// How long after a connection starts it has surely come up or ended
    /// (the handshake or UDP timeout plus the closed timeout): a connection
    /// the workers have not reported by then never started.
    grace: Ts,
    /// Keep connections that came up at endpoints with no hand-off yet: a
    /// later answer may find them open (live; over a whole capture every
    /// hand-off is known before any flow).
    keep_open: bool,
    /// Most connections kept that way; past it they are counted.
    max_open: usize,
    pending: Vec<Pending>,
    /// Pending hand-offs per follow key.
    pending_at: HashMap<FollowKey, u32>,
    /// The latest hand-off per same-key: (seq, ts), to set its `next`.
    latest: HashMap<SameKey, u64>,
    /// Connections at follow keys, in report order.
    seen: HashMap<FollowKey, Vec<Seen>>,
    open: usize,
    /// Connections that came up but were not kept (`max_open`).
    pub open_not_kept: u64,
    next_seq: u64,
    /// Hand-offs decided `not-captured`, per capture filter that would have
    /// dropped the follow-up.
    not_captured_by: Vec<u64>,
    /// Hand-offs pending whose follow-up may go to any address (an RPC
    /// proxy's backend named by name, #24).
    any_address: usize,
    /// Sealed DCOM hand-offs pending per (server, client).
    sealed_at: HashMap<PairKey, u32>,
    /// Those clients' TCP connections to those servers' dynamic range, in
    /// report order, with their port.
    sealed_seen: HashMap<PairKey, Vec<(u16, Seen)>>,
}

impl HandoffTracker {
    /// Over a whole capture: every hand-off is given before any flow.
    pub fn batch(window: Ts) -> HandoffTracker {
        HandoffTracker::new(window, 0, false, 0)
    }

    /// While capturing: flows come as they come up and end.
    pub fn live(window: Ts, grace: Ts, max_open: usize) -> HandoffTracker {
        HandoffTracker::new(window, grace, true, max_open)
    }

    fn new(window: Ts, grace: Ts, keep_open: bool, max_open: usize) -> HandoffTracker {
        HandoffTracker {
            window,
            grace,
            keep_open,
            max_open,
            pending: Vec::new(),
            pending_at: HashMap::new(),
            latest: HashMap::new(),
            seen: HashMap::new(),
            open: 0,
            open_not_kept: 0,
            next_seq: 0,
            not_captured_by: Vec::new(),
            sealed_at: HashMap::new(),
            sealed_seen: HashMap::new(),
            any_address: 0,
        }
    }

    /// Hand-offs not decided yet.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Whether a flow at this endpoint, from this client, may matter.
    pub fn wants(&self, key: &FollowKey) -> bool {
        // Most captures name few endpoints: no hashing of every flow then.
        (!self.seen.is_empty()
            && (self.seen.contains_key(key)
                || (self.any_address > 0 && self.seen.contains_key(&any_address_key(key)))))
            || self.wants_sealed(key)
    }

    /// Whether a connection at `key` may follow a pending sealed hand-off.
    fn wants_sealed(&self, key: &FollowKey) -> bool {
        !self.sealed_seen.is_empty()
            && sealed_candidate(key.1, key.2)
            && self.sealed_seen.contains_key(&(key.0, key.3))
    }

    /// Records (or, live, replaces the open record of) a connection that
    /// may follow a sealed hand-off.
    fn sealed_connection(&mut self, key: &FollowKey, s: Seen) {
        if !self.wants_sealed(key) {
            return;
        }
        let Some(list) = self.sealed_seen.get_mut(&(key.0, key.3)) else {
            return;
        };
        let port = key.2;
        if let Some(x) = list
            .iter_mut()
            .find(|(p, x)| *p == port && x.last_ts.is_none() && x.order() == s.order())
        {
            x.1 = s;
            return;
        }
        let at = list.partition_point(|(_, x)| x.order() <= s.order());
        list.insert(at, (port, s));
    }

    /// Hand-offs decided `not-captured` so far, per capture filter (by its
    /// index in `CorrelateConfig::filters`) that would have dropped the
    /// follow-up.
    pub fn not_captured_by(&self) -> &[u64] {
        &self.not_captured_by
    }

    /// A new hand-off (its outcome is decided here). Hand-offs come in
    /// answer order.
    pub fn handoff(&mut self, h: Handoff) {
        self.handoff_filtered(h, Vec::new());
    }

    /// A new hand-off whose follow-up the capture filters `dropped_by`
    /// (their indices; empty: none) would have dropped: if no attempt is
    /// seen, it is [`Outcome::NotCaptured`] rather than
    /// [`Outcome::NoAttempt`]. An attempt seen is seen, whatever the
    /// filters.
    pub fn handoff_filtered(&mut self, h: Handoff, dropped_by: Vec<u16>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(prev) = self.latest.insert(same_key(&h), seq) {
            if let Some(p) = self.pending.iter_mut().rev().find(|p| p.seq == prev) {
                p.next = Some(h.ts);
            }
        }
        self.any_address += usize::from(h.any_address());
        if h.sealed() {
            let pair = (h.server, h.client);
            *self.sealed_at.entry(pair).or_default() += 1;
            self.sealed_seen.entry(pair).or_default();
        } else {
            for key in follow_keys(&h).into_iter().flatten() {
                *self.pending_at.entry(key).or_default() += 1;
                self.seen.entry(key).or_default();
            }
        }
        self.pending.push(Pending {
            seq,
            h,
            next: None,
            dropped_by: dropped_by.into_boxed_slice(),
        });
    }

    /// A connection came up (live): known established before it ends.
    pub fn up(&mut self, u: &FlowUp) {
        if !self.keep_open {
            return;
        }
        let key = (u.server, u.proto, u.server_port, u.client);
        let s = Seen {
            server: u.server,
            first_ts: u.first_ts,
            client_port: u.client_port,
            last_ts: None,
            up: true,
            udp: u.proto == PROTO_UDP,
            icmp: None,
            reset: None,
            syns: 1,
        };
        self.sealed_connection(&key, s.clone());
        if self.any_address > 0 && self.seen.contains_key(&any_address_key(&key)) {
            self.up_at(any_address_key(&key), s.clone());
        }
        if !self.seen.contains_key(&key) && self.open >= self.max_open {
            self.open_not_kept += 1;
            return;
        }
        self.up_at(key, s);
    }

    fn up_at(&mut self, key: FollowKey, s: Seen) {
        let list = self.seen.entry(key).or_default();
        let at = list.partition_point(|x| x.order() <= s.order());
        list.insert(at, s);
        self.open += 1;
    }

    /// A connection ended (over a whole capture: every flow, in report
    /// order, so each is appended).
    pub fn ended(&mut self, f: &FlowRecord) {
        let key = (f.server, f.proto, f.server_port, f.client);
        self.sealed_connection(&key, Seen::of(f));
        if self.any_address > 0 {
            self.ended_at(any_address_key(&key), f);
        }
        self.ended_at(key, f);
    }

    fn ended_at(&mut self, key: FollowKey, f: &FlowRecord) {
        let Some(list) = self.seen.get_mut(&key) else {
            return;
        };
        let s = Seen::of(f);
        // Came up before (live): now it has ended.
        let was_open = if self.open > 0 {
            list.iter()
                .position(|x| x.last_ts.is_none() && x.order() == s.order())
        } else {
            None
        };
        match was_open {
            Some(i) => {
                list[i] = s;
                self.open -= 1;
            }
            None => {
                let at = list.partition_point(|x| x.order() <= s.order());
                list.insert(at, s);
            }
        }
        if !self.pending_at.contains_key(&key) && list.iter().all(|x| x.last_ts.is_some()) {
            self.seen.remove(&key);
        }
    }

    /// Decides what capture time `clock` has settled (the capture goes
    /// on). Decided hand-offs are returned in answer order.
    pub fn decide(&mut self, clock: Ts) -> Vec<Handoff> {
        self.settle(clock, false, Ts::MAX)
    }

    /// Decides every hand-off: the capture ended at `capture_end` (the
    /// latest packet), which tells which windows it cut.
    pub fn finish(&mut self, capture_end: Ts) -> Vec<Handoff> {
        self.settle(capture_end, true, capture_end)
    }

    fn settle(&mut self, clock: Ts, complete: bool, capture_end: Ts) -> Vec<Handoff> {
        let mut decided = Vec::new();
        let mut waiting = Vec::new();
        let mut inferred = Vec::new();
        let mut located = Vec::new();
        for mut p in std::mem::take(&mut self.pending) {
            let fate = if p.h.sealed() {
                self.sealed_fate(&p, clock, complete)
            } else {
                self.fate(&p, clock, complete).map(|(o, at)| (o, at, None))
            };
            match fate {
                Some((mut outcome, mut at, port)) => {
                    if outcome == Outcome::NoAttempt && !p.dropped_by.is_empty() {
                        outcome = Outcome::NotCaptured;
                        at = None;
                        for &i in p.dropped_by.iter() {
                            let i = usize::from(i);
                            if self.not_captured_by.len() <= i {
                                self.not_captured_by.resize(i + 1, 0);
                            }
                            self.not_captured_by[i] += 1;
                        }
                    } else if outcome == Outcome::NoAttempt
                        && complete
                        && capture_end.saturating_sub(p.h.ts) < super::HANDOFF_GRACE
                    {
                        // Too close to the end to tell: one outcome of its own.
                        outcome = Outcome::CaptureEnded;
                    }
                    let window = if p.h.sealed() {
                        SEALED_FOLLOW_WINDOW
                    } else {
                        self.window
                    };
                    p.h.window_cut =
                        !outcome.followed() && capture_end < p.h.ts.saturating_add(window);
                    p.h.outcome = outcome;
                    p.h.follow_up_at = at;
                    if p.h.any_address() {
                        self.any_address -= 1;
                        if let Some(a) = at {
                            located.push((decided.len(), a));
                        }
                    }
                    if let Some(port) = port {
                        inferred.push((decided.len(), port));
                    }
                    decided.push(p);
                }
                None => waiting.push(p),
            }
        }
        self.pending = waiting;
        for p in &decided {
            if p.h.sealed() {
                let pair = (p.h.server, p.h.client);
                if let Some(n) = self.sealed_at.get_mut(&pair) {
                    *n -= 1;
                    if *n == 0 {
                        self.sealed_at.remove(&pair);
                        if let Some(list) = self.sealed_seen.get_mut(&pair) {
                            list.retain(|(_, x)| x.last_ts.is_none());
                            if list.is_empty() {
                                self.sealed_seen.remove(&pair);
                            }
                        }
                    }
                }
            }
            for key in follow_keys(&p.h)
                .into_iter()
                .flatten()
                .filter(|_| !p.h.sealed())
            {
                let Some(n) = self.pending_at.get_mut(&key) else {
                    continue;
                };
                *n -= 1;
                if *n == 0 {
                    self.pending_at.remove(&key);
                    // Only connections still open stay (a later answer may
                    // find them); none over a whole capture.
                    if let Some(list) = self.seen.get_mut(&key) {
                        list.retain(|x| x.last_ts.is_none());
                        if list.is_empty() {
                            self.seen.remove(&key);
                        }
                    }
                }
            }
            if self.latest.get(&same_key(&p.h)) == Some(&p.seq) {
                self.latest.remove(&same_key(&p.h));
            }
        }
        // A backend named by name is where the proxy was seen connecting
        // (after the bookkeeping above, which keys it by the unspecified
        // address).
        for (i, at) in located {
            decided[i].h.server = at;
        }
        // The port a sealed answer's follow-up was inferred at (after the
        // bookkeeping above, which keys it by port 0).
        for (i, port) in inferred {
            let h = &mut decided[i].h;
            h.port = port;
            if let Some(d) = h.dcom.as_mut() {
                d.inferred = true;
            }
        }
        decided.into_iter().map(|p| p.h).collect()
    }

    /// A sealed DCOM hand-off's fate, once every connection that may follow
    /// it is known: the first (in report order) connection from its client
    /// to the server's dynamic range ([`sealed_candidate`]) that started in
    /// `[ts, ts + SEALED_FOLLOW_WINDOW)`, cut at the client's next sealed
    /// answer from that server, is its likely follow-up: its outcome, its
    /// address, its port. None: [`Outcome::Sealed`].
    fn sealed_fate(
        &self,
        p: &Pending,
        clock: Ts,
        complete: bool,
    ) -> Option<(Outcome, Option<IpAddr>, Option<u16>)> {
        let h = &p.h;
        let window_end = h.ts.saturating_add(SEALED_FOLLOW_WINDOW);
        if !complete && clock <= window_end.saturating_add(self.grace) {
            return None;
        }
        let end = p
            .next
            .filter(|&n| n > h.ts)
            .map_or(window_end, |n| n.min(window_end));
        let list = self
            .sealed_seen
            .get(&(h.server, h.client))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let Some((port, s)) = list
            .iter()
            .find(|(_, s)| s.first_ts >= h.ts && s.first_ts < end)
        else {
            return Some((Outcome::Sealed, None, None));
        };
        let (outcome, _) = follow_up(h.ts, end, &[(h.server, std::slice::from_ref(s))]);
        Some((outcome, Some(h.server), Some(*port)))
    }

    /// The outcome of `p` if it is settled, with the address of the
    /// connection it is about (`None`: no connection).
    fn fate(&self, p: &Pending, clock: Ts, complete: bool) -> Option<(Outcome, Option<IpAddr>)> {
        let h = &p.h;
        let seen = |key: Option<FollowKey>| -> (IpAddr, &[Seen]) {
            match key {
                Some(k) => (k.0, self.seen.get(&k).map(Vec::as_slice).unwrap_or(&[])),
                None => (h.server, &[]),
            }
        };
        let [tower, mapper] = follow_keys(h);
        let seen = [seen(tower), seen(mapper)];
        let window_end = h.ts.saturating_add(self.window);
        let next = p.next.filter(|&n| n > h.ts);
        let end = next.map_or(window_end, |n| n.min(window_end));
        let outcome = follow_up(h.ts, end, &seen);
        // A connection that came up settles it at once (the first up among
        // the attempts known; an earlier attempt that comes up later is
        // the one race this leaves: its SYN answered only after a later
        // connection's).
        if outcome.0.followed() || complete {
            return self.superseded(outcome, h.ts, next, &seen);
        }
        // Otherwise, once no attempt can start in the window any more (its
        // end is final once the next answer is known or the window is
        // over) and every attempt in it has come up or ended.
        let end_final = p.next.is_some() || clock > window_end;
        if !end_final || clock <= end.saturating_add(self.grace) {
            return None;
        }
        if outcome.0 == Outcome::NoAttempt {
            if let Some(n) = next.filter(|&n| n <= window_end) {
                // Superseded only if the later answer's connection came:
                // wait for its window too, unless it already did.
                let later = follow_up(n, n.saturating_add(self.window), &seen);
                if !later.0.followed() && clock <= n.saturating_add(self.window + self.grace) {
                    return None;
                }
            }
        }
        self.superseded(outcome, h.ts, next, &seen)
    }

    fn superseded(
        &self,
        outcome: (Outcome, Option<IpAddr>),
        ts: Ts,
        next: Option<Ts>,
        seen: &[(IpAddr, &[Seen])],
    ) -> Option<(Outcome, Option<IpAddr>)> {
        if outcome.0 == Outcome::NoAttempt {
            // Asked again within the window: did the client try to connect
            // after the later answer (whether it came up or not: a failed
            // attempt is the later hand-off's to report, #24: Samba names
            // one port for drsuapi and lsarpc, asked one after the other)?
            // Then this one was superseded, not ignored.
            if let Some(n) = next.filter(|&n| n <= ts.saturating_add(self.window)) {
                if follow_up(n, n.saturating_add(self.window), seen)
                    .0
                    .attempted()
                {
                    return Some((Outcome::Superseded, None));
                }
            }
        }
        Some(outcome)
    }
}

/// What the client did about a hand-off answered at `ts`, with its
/// connections at each address the follow-up may go to (`seen`: the
/// address and its connections in report order, the tower's first)
/// starting up to `end`; and the address of the connection that says so.
/// The connections at both addresses count as one list in report order
/// (the tower's first on a tie), without merging them: this runs for
/// every pending hand-off at every batch while capturing.
fn follow_up(ts: Ts, end: Ts, seen: &[(IpAddr, &[Seen])]) -> (Outcome, Option<IpAddr>) {
    let attempts = |list: &[Seen]| -> std::ops::Range<usize> {
        let from = list.partition_point(|s| s.first_ts < ts);
        let to = list.partition_point(|s| s.first_ts <= end);
        from..to.max(from)
    };
    // The first connection in report order, over both addresses, among
    // `range(list)` that `pick` accepts.
    let first = |range: &dyn Fn(&[Seen]) -> std::ops::Range<usize>,
                 pick: &dyn Fn(&Seen) -> bool|
     -> Option<(&Seen, IpAddr)> {
        let mut best: Option<(&Seen, IpAddr)> = None;
        for &(addr, list) in seen {
            if let Some(s) = list[range(list)].iter().find(|s| pick(s)) {
                if best.is_none_or(|(b, _)| s.order() < b.order()) {
                    // At an unspecified address (a backend named by
                    // name), the connection's own.
                    best = Some((
                        s,
                        if addr.is_unspecified() {
                            s.server
                        } else {
                            addr
                        },
                    ));
                }
            }
        }
        best
    };
    if let Some((s, at)) = first(&attempts, &|s| s.up) {
        return (
            Outcome::Followed {
                latency: s.first_ts - ts,
                client_port: s.client_port,
            },
            Some(at),
        );
    }
    if let Some((s, at)) = first(&attempts, &|s| s.icmp.is_some()) {
        if let Some(o) = s.icmp.clone() {
            return (o, Some(at));
        }
    }
    let n: u32 = seen
        .iter()
        .map(|(_, list)| attempts(list).len() as u32)
        .sum();
    if let Some((s, at)) = first(&attempts, &|s| s.reset.is_some()) {
        let ttl = s.reset.flatten();
        return (Outcome::Reset { attempts: n, ttl }, Some(at));
    }
    if let Some((_, at)) = first(&attempts, &|s| s.udp) {
        return (Outcome::UdpUnanswered, Some(at));
    }
    if let Some((_, at)) = first(&attempts, &|_| true) {
        let syns = seen
            .iter()
            .flat_map(|(_, list)| list[attempts(list)].iter())
            .map(|s| s.syns)
            .sum();
        return (Outcome::SynUnanswered { attempts: n, syns }, Some(at));
    }
    let before = |list: &[Seen]| 0..list.partition_point(|s| s.first_ts < ts);
    let open = first(&before, &|s| {
        s.last_ts.is_none_or(|l| l >= ts) && (s.udp || s.up)
    });
    if let Some((s, at)) = open {
        return (
            Outcome::ExistingConnection {
                client_port: s.client_port,
            },
            Some(at),
        );
    }
    (Outcome::NoAttempt, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EpmOperation, InterfaceId};
    use crate::flow::{ConnState, SECOND};
    use std::net::Ipv4Addr;

    const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));
    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    /// The address the client reached the mapper on when it is not the
    /// tower's (a NAT or virtual address in front of SERVER).
    const FRONT: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 80));
    const WINDOW: Ts = 30 * SECOND;
    const GRACE: Ts = 20 * SECOND;

    fn handoff(ts: Ts, port: u16) -> Handoff {
        handoff_via(ts, port, SERVER)
    }

    /// A hand-off answered by the mapper the client reached at `mapper`,
    /// whose tower names SERVER.
    fn handoff_via(ts: Ts, port: u16, mapper: IpAddr) -> Handoff {
        Handoff {
            ts,
            client: CLIENT,
            server: SERVER,
            mapper,
            carrier: crate::event::Carrier::Tcp,
            transport: Transport::Tcp,
            port,
            interface: InterfaceId {
                uuid: crate::proto::dcerpc::Uuid([9; 16]),
                major: 1,
                minor: 0,
            },
            operation: EpmOperation::EptMap,
            outcome: Outcome::NoAttempt,
            window_cut: false,
            follow_up_at: None,
            dcom: None,
            proxy: None,
        }
    }

    fn flow(
        first_ts: Ts,
        last_ts: Ts,
        port: u16,
        client_port: u16,
        state: ConnState,
    ) -> FlowRecord {
        flow_to(SERVER, first_ts, last_ts, port, client_port, state)
    }

    fn flow_to(
        server: IpAddr,
        first_ts: Ts,
        last_ts: Ts,
        port: u16,
        client_port: u16,
        state: ConnState,
    ) -> FlowRecord {
        FlowRecord {
            last_ts,
            state,
            packets: [1, u64::from(state != ConnState::S0)],
            responder_ttl: Some(64),
            ..FlowRecord::test_syn(CLIENT, client_port, server, port, first_ts)
        }
    }

    /// The live feeding (answers, connections up, connections ended, batch
    /// by batch, decided by the clock) settles every hand-off as the whole
    /// capture does, on random answers and connections at two endpoints,
    /// including answers repeated within the window (superseded, cut
    /// windows) and connections open before an answer (existing).
    #[test]
    fn live_feeding_decides_what_the_whole_capture_decides() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut rand = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut early = 0;
        let mut kinds = std::collections::BTreeMap::new();
        for round in 0..400 {
            // Some answers went to a client that reached the mapper at
            // another address than the tower's (#22): their follow-ups may
            // go to either.
            let mut handoffs: Vec<Handoff> = (0..1 + rand(4))
                .map(|_| {
                    let mapper = if rand(3) == 0 { FRONT } else { SERVER };
                    handoff_via(rand(90) * SECOND, 55_000 + rand(2) as u16, mapper)
                })
                .collect();
            handoffs.sort_by_key(|h| h.ts);
            // A capture filter would drop the follow-ups of some.
            let drops: Vec<Vec<u16>> = handoffs
                .iter()
                .map(|_| if rand(3) == 0 { vec![0] } else { Vec::new() })
                .collect();
            let states = [ConnState::SF, ConnState::S0, ConnState::REJ, ConnState::S1];
            let mut flows: Vec<FlowRecord> = (0..rand(6))
                .map(|k| {
                    let first = rand(120) * SECOND + 1;
                    let state = states[rand(4) as usize];
                    // A failed attempt ends within the grace; one that came
                    // up may last.
                    let len = match state {
                        ConnState::SF | ConnState::S1 => rand(200) * SECOND,
                        _ => rand(GRACE / SECOND) * SECOND,
                    };
                    let server = if rand(4) == 0 { FRONT } else { SERVER };
                    flow_to(
                        server,
                        first,
                        first + len,
                        55_000 + rand(2) as u16,
                        50_000 + k as u16,
                        state,
                    )
                })
                .collect();
            flows.sort_by(crate::flow::flow_order);
            let end = flows
                .iter()
                .map(|f| f.last_ts)
                .chain(handoffs.iter().map(|h| h.ts))
                .max()
                .unwrap_or(0);

            let mut whole = HandoffTracker::batch(WINDOW);
            for (h, d) in handoffs.iter().zip(&drops) {
                whole.handoff_filtered(h.clone(), d.clone());
            }
            for f in &flows {
                whole.ended(f);
            }
            let want = whole.finish(end);

            // Live: a connection is reported up 1 ns after it starts (if it
            // came up) and ended at its last packet; batches of 5 s.
            let mut live = HandoffTracker::live(WINDOW, GRACE, 1 << 20);
            let mut got: Vec<Handoff> = Vec::new();
            let mut clock = 0;
            while clock <= end {
                let next = clock + 5 * SECOND;
                for (h, d) in handoffs
                    .iter()
                    .zip(&drops)
                    .filter(|(h, _)| h.ts >= clock && h.ts < next)
                {
                    live.handoff_filtered(h.clone(), d.clone());
                }
                for f in flows
                    .iter()
                    .filter(|f| f.first_ts + 1 >= clock && f.first_ts + 1 < next)
                {
                    if tcp_established(f.state) {
                        live.up(&FlowUp {
                            proto: f.proto,
                            client: f.client,
                            client_port: f.client_port,
                            server: f.server,
                            server_port: f.server_port,
                            first_ts: f.first_ts,
                            ts: f.first_ts + 1,
                        });
                    }
                }
                for f in flows
                    .iter()
                    .filter(|f| f.last_ts >= clock && f.last_ts < next && f.last_ts < end)
                {
                    live.ended(f);
                }
                clock = next;
                let decided = live.decide(clock.min(end));
                early += decided.len();
                got.extend(decided);
            }
            // The stop: flows still open end with the capture.
            for f in flows.iter().filter(|f| f.last_ts >= end) {
                live.ended(f);
            }
            got.extend(live.finish(end));
            got.sort_by_key(|h| (h.ts, h.port, h.mapper));
            let mut want = want;
            want.sort_by_key(|h| (h.ts, h.port, h.mapper));
            assert_eq!(got, want, "round {round}: {handoffs:?}\n{flows:?}");
            assert_eq!(live.not_captured_by(), whole.not_captured_by());
            for h in &want {
                *kinds.entry(h.outcome.kind()).or_insert(0) += 1;
                if h.follow_up_at == Some(FRONT) {
                    *kinds.entry("at the mapper's address").or_insert(0) += 1;
                }
            }
            assert_eq!(live.pending(), 0);
        }
        // Most were settled while capturing, not at the stop; every outcome
        // the rule has came up.
        assert!(early > 300, "only {early} settled before the stop");
        for kind in [
            "established",
            "no-attempt",
            "syn-unanswered",
            "reset",
            "existing-connection",
            "superseded",
            "not-captured",
            "at the mapper's address",
        ] {
            assert!(kinds.get(kind).is_some_and(|&n| n > 5), "{kind}: {kinds:?}");
        }
    }

    /// A filter that would drop the follow-up turns only "nothing tried"
    /// into "not captured": an attempt seen, a connection that came, an
    /// answer superseded stay what they are; each dropping filter counts it.
    #[test]
    fn a_filtered_follow_up_is_not_captured_only_when_nothing_was_seen() {
        let decide = |flows: &[FlowRecord], handoffs: &[(Ts, Vec<u16>)]| {
            let mut t = HandoffTracker::batch(WINDOW);
            for (ts, d) in handoffs {
                t.handoff_filtered(handoff(*ts, 55_000), d.clone());
            }
            for f in flows {
                t.ended(f);
            }
            let kinds: Vec<&str> = t
                .finish(100 * SECOND)
                .iter()
                .map(|h| h.outcome.kind())
                .collect();
            (kinds, t.not_captured_by().to_vec())
        };
        let at = SECOND;
        assert_eq!(
            decide(&[], &[(at, vec![0, 2])]),
            (vec!["not-captured"], vec![1, 0, 1])
        );
        assert_eq!(decide(&[], &[(at, vec![])]), (vec!["no-attempt"], vec![]));
        let syn = flow(at + 1, at + 3 * SECOND, 55_000, 50_000, ConnState::S0);
        assert_eq!(
            decide(&[syn], &[(at, vec![0])]),
            (vec!["syn-unanswered"], vec![])
        );
        let up = flow(at + 1, at + 3 * SECOND, 55_000, 50_000, ConnState::SF);
        assert_eq!(
            decide(std::slice::from_ref(&up), &[(at, vec![0])]),
            (vec!["established"], vec![])
        );
        // Asked again, connected after the second answer.
        let later = flow(
            at + 2 * SECOND,
            at + 3 * SECOND,
            55_000,
            50_000,
            ConnState::SF,
        );
        assert_eq!(
            decide(&[later], &[(at, vec![0]), (at + SECOND, vec![0])]),
            (vec!["superseded", "established"], vec![])
        );
    }

    /// A follow-up counts at the tower's address and, when the client
    /// reached the mapper at another one, at that one too; the hand-off
    /// says where (#22). Nothing at either stays "nothing tried".
    #[test]
    fn a_follow_up_counts_at_the_mapper_address_and_at_the_tower_address() {
        let at = SECOND;
        let decide = |mapper: IpAddr, flows: &[FlowRecord]| {
            let mut t = HandoffTracker::batch(WINDOW);
            t.handoff(handoff_via(at, 55_000, mapper));
            let mut flows = flows.to_vec();
            flows.sort_by(crate::flow::flow_order);
            for f in &flows {
                t.ended(f);
            }
            let h = t.finish(100 * SECOND).remove(0);
            (h.outcome.kind(), h.follow_up_at)
        };
        let up = |server, first, cport| {
            flow_to(server, first, first + SECOND, 55_000, cport, ConnState::SF)
        };
        let syn = |server, first, cport| {
            flow_to(server, first, first + SECOND, 55_000, cport, ConnState::S0)
        };
        // At the address the client reached the mapper on.
        assert_eq!(
            decide(FRONT, &[up(FRONT, at + 5, 50_000)]),
            ("established", Some(FRONT))
        );
        // At the tower's address.
        assert_eq!(
            decide(FRONT, &[up(SERVER, at + 5, 50_000)]),
            ("established", Some(SERVER))
        );
        // Both: the first that came up, in report order.
        assert_eq!(
            decide(
                FRONT,
                &[up(SERVER, at + 9, 50_001), up(FRONT, at + 5, 50_000)]
            ),
            ("established", Some(FRONT))
        );
        assert_eq!(
            decide(
                FRONT,
                &[syn(FRONT, at + 5, 50_000), up(SERVER, at + 9, 50_001)]
            ),
            ("established", Some(SERVER))
        );
        // A failed attempt at the mapper's address is that failure, there.
        assert_eq!(
            decide(FRONT, &[syn(FRONT, at + 5, 50_000)]),
            ("syn-unanswered", Some(FRONT))
        );
        // Nothing at either address; elsewhere or another port is not it.
        assert_eq!(decide(FRONT, &[]), ("no-attempt", None));
        let elsewhere = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 99));
        let mut other_port = up(FRONT, at + 5, 50_000);
        other_port.server_port = 55_001;
        assert_eq!(
            decide(FRONT, &[up(elsewhere, at + 5, 50_000), other_port]),
            ("no-attempt", None)
        );
        // A mapper reached at the tower's own address: only that counts.
        assert_eq!(
            decide(SERVER, &[up(FRONT, at + 5, 50_000)]),
            ("no-attempt", None)
        );
    }
}
