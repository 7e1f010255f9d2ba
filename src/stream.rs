//! The live correlator: what `exflow live` streams while it captures.
//!
//! The full correlator (`correlate.rs`) runs once at the end over every
//! flow; it makes the final report. This one runs incrementally on what the
//! shard workers send after each batch ([`StreamMsg`]): EPM answers, flows
//! that just became established ([`FlowUp`]) and flows that ended. It writes
//! one NDJSON record per line, flushed, as soon as a fact is known:
//!
//! * `handoff` — an endpoint named to a client asking for one interface,
//!   once its fate is known: the client's connection to it is up
//!   (`followed: true`, at once); a failed attempt ended (S0 after the
//!   handshake timeout, REJ, an ICMP error) and the hand-off window is over;
//!   nothing came within the window plus the handshake (or UDP) and closed timeouts
//!   (`no-attempt`); a later answer's connection came (`superseded`); or the
//!   capture stopped. Fields as in the report's `handoffs[]`.
//! * `attempt-failed` — a connection attempt that failed (TCP S0, REJ,
//!   RSTOS0, SH; anything an ICMP error quoted), when its flow ends.
//! * `finding` — an ept_map answered "not registered", at once (as in the
//!   report's `findings[]`).
//!
//! Determinism: the messages of batch `n` from every worker are gathered
//! and processed together, answers before connections, each sorted by time
//! and key; decisions use the batch's capture clock. The final report (made
//! by `correlate.rs` over the same flows) stays the reference: the stream is
//! its early, per-fact preview.
//!
//! Memory: pending hand-offs are decided within a bounded capture time, the
//! endpoints announced are forgotten after [`ANNOUNCED_TTL`], and at most
//! one batch per worker waits for the others.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::correlate::{
    correlate, interface_service, tcp_established, CorrelateConfig, Handoff, Outcome,
};
use crate::event::{EpmAnswerEvent, Event, InterfaceId};
use crate::flow::{ConnState, FlowConfig, FlowRecord, FlowUp, SECOND};
use crate::packet::{PROTO_TCP, PROTO_UDP};
use crate::pipeline::StreamMsg;
use crate::proto::epm::{Transport, EPT_S_NOT_REGISTERED};
use crate::proto::wellknown::service_for_port;
use crate::report::{finding_json, handoff_json, proto_name};
use crate::time::rfc3339_micros;
use crate::Ts;

/// How long (capture time) an endpoint named by a mapper is remembered to
/// name the service of a failed attempt.
pub const ANNOUNCED_TTL: Ts = 3600 * SECOND;

/// Counters for the status line, shared with other threads.
#[derive(Debug, Default)]
pub struct StreamCounters {
    /// Flows tracked by all workers (latest batch).
    pub tracked: AtomicU64,
    /// `attempt-failed` and `finding` records, and hand-offs not followed.
    pub problems: AtomicU64,
    /// Records written.
    pub records: AtomicU64,
}

/// A hand-off waiting for its fate.
struct Pending {
    h: Handoff,
    /// Connections starting up to here may follow it.
    window_end: Ts,
    /// Failed attempts seen so far (ended flows in the window).
    attempts: u32,
    syns: u32,
    reset: Option<Option<u8>>,
    icmp: Option<Outcome>,
    udp: bool,
    /// A later answer for the same client and endpoint came in the window.
    superseded_by: Option<Ts>,
}

type EndpointKey = (IpAddr, IpAddr, u8, u16);

fn flow_proto(t: Transport) -> u8 {
    match t {
        Transport::Tcp | Transport::Http => PROTO_TCP,
        Transport::Udp => PROTO_UDP,
    }
}

/// Consumes [`StreamMsg`]s, writes NDJSON records to `out`.
pub struct LiveCorrelator<W: Write> {
    correlate: CorrelateConfig,
    window: Ts,
    /// How long after its window a hand-off with no attempt is decided.
    grace: Ts,
    out: W,
    counters: Arc<StreamCounters>,
    /// Messages by batch, until every worker's has come.
    waiting: BTreeMap<u64, Vec<StreamMsg>>,
    tracked: Vec<u64>,
    pending: Vec<Pending>,
    /// (server, proto, port) → interfaces named there, and when (in order).
    announced: BTreeMap<(IpAddr, u8, u16), Vec<(InterfaceId, Ts)>>,
    /// not-registered findings already reported: (mapper, port, interface, client).
    not_registered: BTreeMap<(IpAddr, u16, Option<InterfaceId>, IpAddr), ()>,
    clock: Ts,
    last_prune: Ts,
    /// First write error (the stream stops; the capture goes on).
    error: Option<io::Error>,
}

impl<W: Write> LiveCorrelator<W> {
    pub fn new(flow: &FlowConfig, correlate: &CorrelateConfig, out: W) -> Self {
        LiveCorrelator {
            correlate: correlate.clone(),
            window: correlate.handoff_window,
            grace: flow
                .tcp_handshake_timeout
                .max(flow.udp_timeout)
                .saturating_add(flow.tcp_closed_timeout)
                .saturating_add(SECOND),
            out,
            counters: Arc::default(),
            waiting: BTreeMap::new(),
            tracked: Vec::new(),
            pending: Vec::new(),
            announced: BTreeMap::new(),
            not_registered: BTreeMap::new(),
            clock: 0,
            last_prune: 0,
            error: None,
        }
    }

    pub fn counters(&self) -> Arc<StreamCounters> {
        Arc::clone(&self.counters)
    }

    /// Hand-offs still waiting for their fate.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Takes one worker message; processes every batch all workers have
    /// now reported.
    pub fn push(&mut self, msg: StreamMsg) {
        let workers = msg.workers.max(1);
        if self.tracked.len() != workers {
            self.tracked = vec![0; workers];
        }
        if let Some(t) = self.tracked.get_mut(msg.worker) {
            *t = msg.tracked as u64;
        }
        self.waiting.entry(msg.seq).or_default().push(msg);
        while let Some(entry) = self.waiting.first_entry() {
            if entry.get().len() < workers {
                break;
            }
            let (seq, msgs) = entry.remove_entry();
            self.process(msgs, seq == StreamMsg::FINAL);
        }
        let tracked: u64 = self.tracked.iter().sum();
        self.counters.tracked.store(tracked, Ordering::Relaxed);
    }

    /// Processes whatever is left (workers that never sent their last
    /// message: only when a worker died) and decides every hand-off.
    pub fn finish(mut self) -> io::Result<W> {
        let rest: Vec<StreamMsg> = std::mem::take(&mut self.waiting)
            .into_values()
            .flatten()
            .collect();
        if !rest.is_empty() {
            self.process(rest, true);
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(self.out),
        }
    }

    fn process(&mut self, msgs: Vec<StreamMsg>, last: bool) {
        let mut answers: Vec<EpmAnswerEvent> = Vec::new();
        let mut ups: Vec<FlowUp> = Vec::new();
        let mut flows: Vec<FlowRecord> = Vec::new();
        for m in msgs {
            self.clock = self.clock.max(m.clock);
            for e in m.events {
                if let Event::EpmAnswer(a) = e {
                    answers.push(a);
                }
            }
            ups.extend(m.ups);
            flows.extend(m.flows);
        }
        answers.sort_by_key(|a| (a.ts, a.client, a.client_port, a.mapper, a.call_id));
        ups.sort_by_key(|u| {
            (
                u.first_ts,
                u.proto,
                u.client,
                u.client_port,
                u.server,
                u.server_port,
            )
        });
        flows.sort_by(crate::pipeline::flow_order);
        for a in &answers {
            self.answer(a);
        }
        for u in &ups {
            self.up(u);
        }
        for f in &flows {
            self.ended(f);
        }
        self.expire(last);
    }

    /// Writes a record of another kind between the correlator's own,
    /// through the same output (`exflow live`'s periodic `stats`).
    pub fn write_record(&mut self, record: &'static str, v: Value) {
        self.write(record, v);
    }

    fn write(&mut self, record: &'static str, mut v: Value) {
        if self.error.is_some() {
            return;
        }
        let mut line = json!({ "record": record });
        if let (Some(l), Some(r)) = (line.as_object_mut(), v.as_object_mut()) {
            l.append(r);
        }
        let res = serde_json::to_writer(&mut self.out, &line)
            .map_err(io::Error::from)
            .and_then(|_| self.out.write_all(b"\n"))
            .and_then(|_| self.out.flush());
        match res {
            Ok(()) => {
                self.counters.records.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.error = Some(e),
        }
    }

    fn emit_handoff(&mut self, h: &Handoff) {
        if !h.outcome.followed() {
            self.counters.problems.fetch_add(1, Ordering::Relaxed);
        }
        self.write("handoff", handoff_json(h));
    }

    fn answer(&mut self, a: &EpmAnswerEvent) {
        let single = a.is_single_interface_query();
        let mut seen = Vec::new();
        for ep in &a.endpoints {
            let server = match ep.tower_ip {
                Some(ip) if ip != IpAddr::V4(Ipv4Addr::UNSPECIFIED) => ip,
                _ => a.mapper,
            };
            let Some(interface) = ep.interface.or(a.requested) else {
                continue;
            };
            let named = self
                .announced
                .entry((server, flow_proto(ep.transport), ep.port))
                .or_default();
            if !named.contains(&(interface, a.ts)) {
                named.push((interface, a.ts));
            }
            if !single || seen.contains(&(server, ep.transport, ep.port, interface)) {
                continue;
            }
            seen.push((server, ep.transport, ep.port, interface));
            let proto = flow_proto(ep.transport);
            // A connection follows the latest answer: an earlier one for
            // the same client and endpoint has its window cut here.
            for p in &mut self.pending {
                if p.h.client == a.client
                    && p.h.server == server
                    && flow_proto(p.h.transport) == proto
                    && p.h.port == ep.port
                    && p.h.ts < a.ts
                {
                    if a.ts <= p.h.ts.saturating_add(self.window) {
                        p.superseded_by = Some(a.ts);
                    }
                    p.window_end = p.window_end.min(a.ts);
                }
            }
            self.pending.push(Pending {
                h: Handoff {
                    ts: a.ts,
                    client: a.client,
                    server,
                    mapper: a.mapper,
                    transport: ep.transport,
                    port: ep.port,
                    interface,
                    operation: a.operation,
                    outcome: Outcome::NoAttempt,
                    window_cut: false,
                },
                window_end: a.ts.saturating_add(self.window),
                attempts: 0,
                syns: 0,
                reset: None,
                icmp: None,
                udp: false,
                superseded_by: None,
            });
        }
        if single && a.first_call && a.status == EPT_S_NOT_REGISTERED && a.endpoints.is_empty() {
            let key = (a.mapper, a.mapper_port, a.requested, a.client);
            if self.not_registered.insert(key, ()).is_none() {
                // The full correlator over this one answer: the very finding
                // the final report will hold (for this client).
                let one = correlate(&[], &[Event::EpmAnswer(a.clone())], &self.correlate);
                for f in &one.findings {
                    self.counters.problems.fetch_add(1, Ordering::Relaxed);
                    self.write("finding", finding_json(f));
                }
            }
        }
    }

    /// The pending hand-off a connection from `client` to `key` starting
    /// at `first_ts` follows: the latest whose window holds it.
    fn follows(&self, key: EndpointKey, first_ts: Ts) -> Option<usize> {
        let (client, server, proto, port) = key;
        self.pending
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.h.client == client
                    && p.h.server == server
                    && flow_proto(p.h.transport) == proto
                    && p.h.port == port
                    && p.h.ts <= first_ts
                    && first_ts <= p.window_end
            })
            .max_by_key(|(_, p)| p.h.ts)
            .map(|(i, _)| i)
    }

    fn up(&mut self, u: &FlowUp) {
        let key = (u.client, u.server, u.proto, u.server_port);
        self.followed(key, u.first_ts, u.client_port);
    }

    fn followed(&mut self, key: EndpointKey, first_ts: Ts, client_port: u16) {
        let Some(i) = self.follows(key, first_ts) else {
            return;
        };
        let mut p = self.pending.swap_remove(i);
        p.h.outcome = Outcome::Followed {
            latency: first_ts - p.h.ts,
            client_port,
        };
        let h = p.h.clone();
        self.emit_handoff(&h);
        // Earlier answers to the same question that got no attempt were
        // superseded by this one.
        let (client, server, proto, port) = key;
        let mut k = 0;
        while k < self.pending.len() {
            let q = &self.pending[k];
            if q.h.client == client
                && q.h.server == server
                && flow_proto(q.h.transport) == proto
                && q.h.port == port
                && q.superseded_by == Some(h.ts)
                && q.attempts == 0
            {
                let mut q = self.pending.swap_remove(k);
                q.h.outcome = Outcome::Superseded;
                self.emit_handoff(&q.h);
            } else {
                k += 1;
            }
        }
    }

    fn ended(&mut self, f: &FlowRecord) {
        let icmp = f.icmp.iter().find(|e| e.quotes_originator);
        let established = if f.proto == PROTO_UDP {
            f.packets[1] > 0
        } else {
            tcp_established(f.state)
        };
        let key = (f.client, f.server, f.proto, f.server_port);
        if established {
            // Normally reported when it came up; a flow whose SYN was not
            // seen never is, and matches nothing then either.
            self.followed(key, f.first_ts, f.client_port);
            return;
        }
        let syn_failed = f.proto == PROTO_TCP
            && matches!(
                f.state,
                ConnState::S0 | ConnState::REJ | ConnState::RSTOS0 | ConnState::SH
            );
        if syn_failed || icmp.is_some() {
            self.attempt_failed(f);
        }
        let Some(i) = self.follows(key, f.first_ts) else {
            return;
        };
        let p = &mut self.pending[i];
        p.attempts += 1;
        if let Some(e) = icmp {
            p.icmp.get_or_insert(Outcome::IcmpUnreachable {
                sender: e.sender,
                v6: e.v6,
                icmp_type: e.icmp_type,
                code: e.code,
            });
        }
        if f.state == ConnState::REJ {
            p.reset.get_or_insert(f.responder_ttl);
        }
        if f.proto == PROTO_UDP {
            p.udp = true;
        }
        p.syns += f.syn_retries + 1;
    }

    fn attempt_failed(&mut self, f: &FlowRecord) {
        let evidence = if let Some(e) = f.icmp.iter().find(|e| e.quotes_originator) {
            json!({
                "type": "icmp-unreachable",
                "ts": rfc3339_micros(e.ts),
                "sender": e.sender.to_string(),
                "icmp_version": if e.v6 { 6 } else { 4 },
                "code": e.code,
                "icmp_type": e.icmp_type,
            })
        } else if f.state == ConnState::REJ {
            json!({ "type": "rst", "rst_ttl": f.responder_ttl })
        } else {
            json!({
                "type": "syn-unanswered",
                "syns": f.syn_retries + 1,
                "syn_gaps_ms": f.syn_gaps_us.iter().map(|g| *g as f64 / 1000.0).collect::<Vec<_>>(),
            })
        };
        // The latest interface named at this endpoint before the attempt.
        let announced = self
            .announced
            .get(&(f.server, f.proto, f.server_port))
            .and_then(|v| v.iter().rev().find(|(_, ts)| *ts <= f.first_ts));
        let (service, interface) = match announced {
            Some((i, _)) => (interface_service(i), Some(crate::report::interface_json(i))),
            _ => (
                service_for_port(f.proto, f.server_port).unwrap_or("unknown"),
                None,
            ),
        };
        self.counters.problems.fetch_add(1, Ordering::Relaxed);
        let v = json!({
            "ts": rfc3339_micros(f.first_ts),
            "last_ts": rfc3339_micros(f.last_ts),
            "proto": proto_name(f.proto),
            "client": f.client.to_string(),
            "client_port": f.client_port,
            "server": f.server.to_string(),
            "port": f.server_port,
            "service": service,
            "interface": interface,
            "epm_announced": interface.is_some(),
            "state": f.state.as_str(),
            "syn_retries": f.syn_retries,
            "packets": f.packets,
            "evidence": evidence,
        });
        self.write("attempt-failed", v);
    }

    /// Decides the hand-offs whose fate the clock (or the end) settles.
    fn expire(&mut self, last: bool) {
        let clock = self.clock;
        let (window, grace) = (self.window, self.grace);
        let mut decided = Vec::new();
        let mut k = 0;
        while k < self.pending.len() {
            let p = &self.pending[k];
            let ready = last
                || (p.attempts > 0 && clock > p.window_end)
                || clock > p.window_end.saturating_add(grace);
            if ready {
                decided.push(self.pending.swap_remove(k));
            } else {
                k += 1;
            }
        }
        decided.sort_by_key(|p| (p.h.ts, p.h.client, p.h.server, p.h.port, p.h.interface));
        for mut p in decided {
            p.h.outcome = if let Some(o) = p.icmp.take() {
                o
            } else if let Some(ttl) = p.reset {
                Outcome::Reset {
                    attempts: p.attempts,
                    ttl,
                }
            } else if p.udp {
                Outcome::UdpUnanswered
            } else if p.attempts > 0 {
                Outcome::SynUnanswered {
                    attempts: p.attempts,
                    syns: p.syns,
                }
            } else {
                Outcome::NoAttempt
            };
            p.h.window_cut = last && clock < p.h.ts.saturating_add(window);
            self.emit_handoff(&p.h);
        }
        if clock.saturating_sub(self.last_prune) > 60 * SECOND {
            self.last_prune = clock;
            let horizon = clock.saturating_sub(ANNOUNCED_TTL);
            self.announced.retain(|_, v| {
                v.retain(|(_, ts)| *ts >= horizon);
                !v.is_empty()
            });
            if self.not_registered.len() > 100_000 {
                self.not_registered.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EpmEndpoint, EpmOperation};
    use crate::flow::{FlowEnd, HistoryStr};
    use crate::proto::dcerpc::Uuid;

    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));
    const T0: Ts = 1_000 * SECOND;

    fn iface() -> InterfaceId {
        InterfaceId {
            uuid: Uuid([7; 16]),
            major: 1,
            minor: 0,
        }
    }

    fn answer(ts: Ts, port: u16) -> Event {
        Event::EpmAnswer(EpmAnswerEvent {
            ts,
            client: CLIENT,
            client_port: 50_000,
            mapper: SERVER,
            mapper_port: 135,
            mapper_proto: PROTO_TCP,
            call_id: 1,
            operation: EpmOperation::EptMap,
            inquiry_type: None,
            requested: Some(iface()),
            first_call: true,
            ndr64: false,
            status: 0,
            endpoints: vec![EpmEndpoint {
                interface: Some(iface()),
                transport: Transport::Tcp,
                port,
                tower_ip: None,
                annotation: None,
            }],
        })
    }

    fn flow(first_ts: Ts, port: u16, state: ConnState) -> FlowRecord {
        FlowRecord {
            proto: PROTO_TCP,
            client: CLIENT,
            client_port: 50_001,
            server: SERVER,
            server_port: port,
            first_ts,
            last_ts: first_ts + 3 * SECOND,
            state,
            history: HistoryStr::new("S"),
            syn_retries: 2,
            syn_gaps_us: Box::default(),
            packets: [3, 0],
            bytes: [180, 0],
            payload_bytes: [0, 0],
            responder_ttl: None,
            responder_ip_id: None,
            icmp: Box::default(),
            icmp_count: 0,
            rpc: None,
            app: None,
            end: FlowEnd::IdleTimeout,
        }
    }

    fn msg(worker: usize, seq: u64, clock: Ts) -> StreamMsg {
        StreamMsg {
            worker,
            workers: 2,
            seq,
            clock,
            ..StreamMsg::default()
        }
    }

    fn records(c: LiveCorrelator<Vec<u8>>) -> Vec<Value> {
        let out = c.finish().unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn correlator() -> LiveCorrelator<Vec<u8>> {
        LiveCorrelator::new(
            &FlowConfig::default(),
            &CorrelateConfig::default(),
            Vec::new(),
        )
    }

    /// A follow-up reported by one worker before the other reports the
    /// answer (same batch) is still matched: batches are processed whole.
    #[test]
    fn followed_whatever_the_worker_order() {
        let mut c = correlator();
        let mut m1 = msg(1, 0, T0 + SECOND);
        m1.ups.push(FlowUp {
            proto: PROTO_TCP,
            client: CLIENT,
            client_port: 50_001,
            server: SERVER,
            server_port: 55_000,
            first_ts: T0 + SECOND / 2,
            ts: T0 + SECOND / 2 + 1000,
        });
        c.push(m1);
        assert_eq!(c.pending(), 0, "nothing processed before worker 0 reports");
        let mut m0 = msg(0, 0, T0 + SECOND);
        m0.events.push(answer(T0, 55_000));
        c.push(m0);
        assert_eq!(c.pending(), 0);
        let r = records(c);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0]["record"], "handoff");
        assert_eq!(r[0]["followed"], true);
        assert_eq!(r[0]["outcome"]["kind"], "established");
        assert_eq!(r[0]["outcome"]["latency_ms"], 500.0);
        assert_eq!(r[0]["port"], 55_000);
    }

    /// An unanswered follow-up: `attempt-failed` when the flow ends, the
    /// hand-off once its window is over (not before).
    #[test]
    fn failed_follow_up_waits_for_the_window() {
        let mut c = correlator();
        let mut a = msg(0, 0, T0);
        a.events.push(answer(T0, 55_000));
        c.push(a);
        c.push(msg(1, 0, T0));
        // The S0 flow ends (handshake timeout) 10 s later: window still open.
        let mut f = msg(0, 1, T0 + 10 * SECOND);
        f.flows.push(flow(T0 + SECOND, 55_000, ConnState::S0));
        c.push(f);
        c.push(msg(1, 1, T0 + 10 * SECOND));
        assert_eq!(c.pending(), 1, "the window (30 s) is not over");
        c.push(msg(0, 2, T0 + 31 * SECOND));
        c.push(msg(1, 2, T0 + 31 * SECOND));
        assert_eq!(c.pending(), 0);
        let r = records(c);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0]["record"], "attempt-failed");
        assert_eq!(r[0]["evidence"]["type"], "syn-unanswered");
        assert_eq!(r[0]["evidence"]["syns"], 3);
        assert_eq!(r[0]["epm_announced"], true);
        assert_eq!(r[1]["record"], "handoff");
        assert_eq!(r[1]["followed"], false);
        assert_eq!(r[1]["outcome"]["kind"], "syn-unanswered");
        assert_eq!(r[1]["window_cut_by_capture_end"], false);
    }

    /// No attempt at all: decided after the window plus the longer of the
    /// handshake and UDP timeouts plus the closed timeout; at the stop, whatever is pending is decided with
    /// the window marked as cut.
    #[test]
    fn no_attempt_and_the_stop() {
        let mut c = correlator();
        let mut a = msg(0, 0, T0);
        a.events.push(answer(T0, 55_000));
        a.events.push(answer(T0 + 150 * SECOND, 55_002));
        c.push(a);
        c.push(msg(1, 0, T0));
        let late = T0 + (30 + 120 + 10 + 2) * SECOND;
        c.push(msg(0, 1, late));
        c.push(msg(1, 1, late));
        assert_eq!(c.pending(), 1, "the first is decided, the second not yet");
        c.push(msg(0, StreamMsg::FINAL, late));
        c.push(msg(1, StreamMsg::FINAL, late));
        let r = records(c);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0]["port"], 55_000);
        assert_eq!(r[0]["outcome"]["kind"], "no-attempt");
        assert_eq!(r[0]["window_cut_by_capture_end"], false);
        assert_eq!(r[1]["port"], 55_002);
        assert_eq!(r[1]["outcome"]["kind"], "no-attempt");
        assert_eq!(r[1]["window_cut_by_capture_end"], true);
    }

    /// Not registered: a finding at once, once per client.
    #[test]
    fn not_registered_is_a_finding_at_once() {
        let mut c = correlator();
        let mut a = msg(0, 0, T0);
        for ts in [T0, T0 + SECOND] {
            let Event::EpmAnswer(mut e) = answer(ts, 0) else {
                unreachable!()
            };
            e.endpoints.clear();
            e.status = EPT_S_NOT_REGISTERED;
            a.events.push(Event::EpmAnswer(e));
        }
        c.push(a);
        c.push(msg(1, 0, T0));
        let r = records(c);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0]["record"], "finding");
        assert_eq!(r[0]["kind"], "not-registered");
        assert_eq!(r[0]["port"], 135);
    }
}
