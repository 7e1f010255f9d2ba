//! The live stream: what `exflow live` writes while it captures.
//!
//! The shard workers send, after each batch, what it taught them
//! ([`StreamMsg`]): events (EPM answers, push registrations), flows that just
//! came up ([`FlowUp`]) and flows that ended. [`LiveCorrelator`] feeds them,
//! batch by batch, to the very correlator `exflow analyze` runs over a whole
//! capture ([`Correlator`], its hand-offs decided by the one
//! [`crate::correlate::HandoffTracker`]), and judges each ended flow by the
//! verdicts' own rule ([`crate::verdict::flow_attempt`]). It writes one
//! NDJSON record per line, flushed, as soon as a fact is known:
//!
//! * `handoff` — an endpoint named to a client asking for one interface,
//!   once its fate is settled: at once when its follow-up connection comes
//!   up; otherwise once no attempt can start in its window any more and
//!   every attempt in it has come up or ended (the window plus the
//!   handshake or UDP timeout plus the closed timeout); everything pending
//!   at the stop. Fields as in the report's `handoffs[]`.
//! * `attempt-failed` — a connection attempt the verdicts judge failed
//!   (blocked or refused, with the report's evidence), when its flow ends.
//! * `finding` — an ept_map answered "not registered", at once, once per
//!   client (as in the report's `findings[]`).
//! * `connection-failed` — a connection whose handshake worked and which
//!   died later (#25: `kind` `killed-after-idle`, `black-hole` or
//!   `pmtu-black-hole`, with its `data-unanswered` or `path-mtu` evidence),
//!   when its flow ends; the fields of `attempt-failed`. (A UDP exchange
//!   whose answers lost their fragments is an `attempt-failed` of kind
//!   `fragments-dropped`.)
//!
//! Determinism: the messages of batch `n` from every worker are gathered
//! and processed together — answers, then registrations, connections up and
//! connections ended, each sorted by time and key — and decisions use the
//! batch's capture clock. The final report (made by `correlate` over the
//! same flows) stays the reference; the stream is its early preview.
//!
//! Memory: hand-offs are decided within a bounded capture time; what the
//! answers named is forgotten after [`ANNOUNCED_TTL`]; connections that came
//! up are kept (for an answer that finds them open) up to
//! [`MAX_OPEN_KEPT`]; at most one batch per worker waits for the others.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::capture::{EvidenceRing, Wanted};
use crate::correlate::{
    not_registered_finding, CorrelateConfig, Correlator, Handoff, HandoffTracker,
};
use crate::event::{EpmAnswerEvent, Event, RegistrationEvent};
use crate::flow::{FlowConfig, FlowRecord, FlowUp, SECOND};
use crate::pipeline::StreamMsg;
use crate::report::schema::{self, Interface};
use crate::report::{evidence, finding, handoff, proto_name};
use crate::time::Rfc3339;
use crate::verdict::scans::{self, ScanKind};
use crate::verdict::{
    flow_attempt, stall_finding, AttemptResult, Evidence, FindingKind, HostProfiles, Scans,
};
use crate::Ts;

/// How long (capture time) what an endpoint mapper named is remembered to
/// label later flows.
pub const ANNOUNCED_TTL: Ts = 3600 * SECOND;

/// Connections that came up kept for answers that may find them open.
pub const MAX_OPEN_KEPT: usize = 1 << 20;

/// Counters for the status line, shared with other threads.
#[derive(Debug, Default)]
pub struct StreamCounters {
    /// Flows tracked by all workers (latest batch).
    pub tracked: AtomicU64,
    /// `attempt-failed` and `finding` records, and hand-offs not followed.
    pub problems: AtomicU64,
    /// Records written.
    pub records: AtomicU64,
    /// Scan probes the full scan tables could not count.
    pub scan_probes_untracked: AtomicU64,
    /// Failed probes written at once because the hold queue was full
    /// ([`MAX_HELD`]): maybe a scan's, shown as failed attempts.
    pub probes_not_held: AtomicU64,
    /// `--write-failed`: frames written to the evidence file.
    pub evidence_packets: AtomicU64,
}

/// `exflow live --write-failed`: the failed attempts' frames, taken from
/// the reader's ring ([`EvidenceRing`]) as each attempt is decided, written
/// to a pcap (headers only: the ring keeps no more).
pub struct EvidenceSink {
    ring: Arc<EvidenceRing>,
    out: Box<dyn Write + Send>,
    /// Flows decided failed in the batch being processed.
    wanted: Vec<Wanted>,
}

impl EvidenceSink {
    /// Starts the pcap (`link`: the capture's).
    pub fn start(
        ring: Arc<EvidenceRing>,
        mut out: Box<dyn Write + Send>,
        link: crate::packet::LinkType,
    ) -> io::Result<EvidenceSink> {
        crate::evidence_pcap::write_pcap_header(&mut out, link)?;
        out.flush()?;
        Ok(EvidenceSink {
            ring,
            out,
            wanted: Vec::new(),
        })
    }
}

/// The frames of a failed flow, as the ring knows it.
fn wanted(f: &FlowRecord) -> Wanted {
    Wanted {
        hash: crate::packet::FiveTuple {
            proto: f.proto,
            src: f.client,
            dst: f.server,
            sport: f.client_port,
            dport: f.server_port,
        }
        .symmetric_hash(),
        first_ts: f.first_ts,
        last_ts: f.last_ts,
    }
}

/// Consumes [`StreamMsg`]s, writes NDJSON records to `out`.
pub struct LiveCorrelator<W: Write> {
    correlator: Correlator,
    /// The look of each host's own answers so far (forged resets).
    hosts: HostProfiles,
    out: W,
    counters: Arc<StreamCounters>,
    /// Messages by batch, until every worker's has come.
    waiting: BTreeMap<u64, Vec<StreamMsg>>,
    tracked: Vec<u64>,
    clock: Ts,
    last_prune: Ts,
    /// First write error (the stream stops; the capture goes on).
    error: Option<io::Error>,
    /// Scans, sweeps and floods seen so far (the verdicts' own tables).
    scans: Scans,
    /// Failed probes waiting for their scan, in time order.
    held: VecDeque<Held>,
    /// Scans a `scan` record was written for.
    scans_announced: HashSet<(ScanKind, (IpAddr, IpAddr, u8, u16))>,
    /// `--write-failed`.
    evidence: Option<EvidenceSink>,
}

impl<W: Write> LiveCorrelator<W> {
    pub fn new(flow: &FlowConfig, correlate: &CorrelateConfig, out: W) -> Self {
        // A connection starting in a hand-off's window has come up or ended
        // this long after the window: the longer of the handshake and UDP
        // timeouts, plus the closed timeout (a reset is kept that long).
        let grace = flow
            .tcp_handshake_timeout
            .max(flow.udp_timeout)
            .saturating_add(flow.tcp_closed_timeout)
            .saturating_add(SECOND);
        let tracker = HandoffTracker::live(correlate.handoff_window, grace, MAX_OPEN_KEPT);
        LiveCorrelator {
            correlator: Correlator::new(correlate, tracker),
            hosts: HostProfiles::default(),
            out,
            counters: Arc::default(),
            waiting: BTreeMap::new(),
            tracked: Vec::new(),
            clock: 0,
            last_prune: 0,
            error: None,
            scans: Scans::default(),
            held: VecDeque::new(),
            scans_announced: HashSet::new(),
            evidence: None,
        }
    }

    /// Writes the frames of every failed attempt from now on to `sink`.
    pub fn set_evidence(&mut self, sink: EvidenceSink) {
        self.evidence = Some(sink);
    }

    /// The failed flow `f`'s frames are wanted in the evidence file.
    fn want(&mut self, f: &FlowRecord) {
        if let Some(e) = &mut self.evidence {
            e.wanted.push(wanted(f));
        }
    }

    /// The endpoint-mapper conversation whose answer named ports: the
    /// hand-offs' evidence, and the host's own answers that tell its resets
    /// from a firewall's (headers only, as the ring keeps them).
    fn want_mapper(&mut self, a: &EpmAnswerEvent) {
        if let Some(e) = &mut self.evidence {
            e.wanted.push(Wanted {
                hash: crate::packet::FiveTuple {
                    proto: a.carrier.ip_proto(),
                    src: a.client,
                    dst: a.mapper,
                    sport: a.client_port,
                    dport: a.mapper_port,
                }
                .symmetric_hash(),
                first_ts: 0,
                last_ts: a.ts,
            });
        }
    }

    /// Writes the frames of the flows decided failed in this batch.
    fn write_evidence(&mut self) {
        let Some(e) = &mut self.evidence else { return };
        if e.wanted.is_empty() {
            return;
        }
        let frames = e.ring.take(&e.wanted, crate::evidence_pcap::ICMP_AFTER);
        e.wanted.clear();
        let mut n = 0u64;
        let written = frames
            .iter()
            .try_for_each(|k| {
                crate::evidence_pcap::write_kept(&mut e.out, k).map(|w| n += u64::from(w))
            })
            .and_then(|_| e.out.flush());
        self.counters
            .evidence_packets
            .fetch_add(n, Ordering::Relaxed);
        if let Err(err) = written {
            // The evidence file failed; the records and the capture go on.
            self.evidence = None;
            self.error.get_or_insert(err);
        }
    }

    pub fn counters(&self) -> Arc<StreamCounters> {
        Arc::clone(&self.counters)
    }

    /// Hand-offs still waiting for their fate.
    pub fn pending(&self) -> usize {
        self.correlator.tracker().pending()
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
        self.process(rest, true);
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(self.out),
        }
    }

    fn process(&mut self, msgs: Vec<StreamMsg>, last: bool) {
        let mut answers: Vec<EpmAnswerEvent> = Vec::new();
        let mut registrations: Vec<RegistrationEvent> = Vec::new();
        let mut ups: Vec<FlowUp> = Vec::new();
        let mut flows: Vec<FlowRecord> = Vec::new();
        for m in msgs {
            self.clock = self.clock.max(m.clock);
            for e in m.events {
                match e {
                    Event::EpmAnswer(a) => answers.push(a),
                    Event::Registration(r) => registrations.push(r),
                }
            }
            ups.extend(m.ups);
            flows.extend(m.flows);
        }
        answers.sort_by_key(|a| (a.ts, a.client, a.client_port, a.mapper, a.call_id));
        registrations.sort_by_key(|r| (r.ts, r.client, r.server, r.callback));
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
        flows.sort_by(crate::flow::flow_order);
        for a in &answers {
            if !a.endpoints.is_empty() {
                self.want_mapper(a);
            }
            if self.correlator.answer(a) {
                if let Some(f) = not_registered_finding(a) {
                    self.counters.problems.fetch_add(1, Ordering::Relaxed);
                    self.write(&finding(&f, Some("finding")));
                }
            }
        }
        for r in &registrations {
            self.correlator.registration(r);
        }
        for u in &ups {
            self.correlator.up(u);
        }
        for f in &flows {
            self.hosts.add(f);
            self.correlator.flow(f);
            self.judge(f);
        }
        self.release_probes(last);
        let decided = if last {
            self.correlator.finish_handoffs(self.clock)
        } else {
            self.correlator.decide(self.clock)
        };
        for h in &decided {
            self.emit_handoff(h);
        }
        self.write_evidence();
        if self.clock.saturating_sub(self.last_prune) > 60 * SECOND {
            self.last_prune = self.clock;
            self.correlator
                .forget_before(self.clock.saturating_sub(ANNOUNCED_TTL));
        }
    }

    /// Writes a record of another kind between the correlator's own,
    /// through the same output (`exflow live`'s periodic `stats`).
    pub fn write_record(&mut self, record: &'static str, mut v: Value) {
        let mut line = serde_json::Map::new();
        line.insert("record".into(), record.into());
        if let Some(r) = v.as_object_mut() {
            line.append(r);
        }
        self.write(&line);
    }

    /// Writes `v`, a contract record, as one line.
    fn write(&mut self, v: &impl Serialize) {
        match serde_json::to_vec(v) {
            Ok(line) => self.write_line(&line),
            Err(e) => self.error = Some(e.into()),
        }
    }

    /// Writes one serialized record and a newline, flushed.
    fn write_line(&mut self, line: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let res = self
            .out
            .write_all(line)
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
        if h.outcome.not_followed() {
            self.counters.problems.fetch_add(1, Ordering::Relaxed);
        }
        self.write(&handoff(h, Some("handoff")));
    }

    /// An ended flow the verdicts judge a failed attempt (with what is
    /// known now: the capture so far) becomes an `attempt-failed` record —
    /// unless it is a scan's probe: a probe is held [`SCAN_HOLD`] (capture
    /// time) in case its scan shows, then written if none did.
    fn judge(&mut self, f: &FlowRecord) {
        // Every probe counts towards its scan, as over a whole capture.
        let probe = scans::probe_shaped(f) && scans::is_probe(f, self.correlator.state());
        if probe {
            self.scans.add(f);
            self.counters
                .scan_probes_untracked
                .store(self.scans.untracked, Ordering::Relaxed);
            if let Some(kind) = self.scans.kind_of(f) {
                self.announce_scan(kind, f);
            }
        }
        let a = flow_attempt(f, self.correlator.state(), &self.hosts, self.clock);
        let AttemptResult::Failed { failure, evidence } = &a.result else {
            // The attempt worked; the connection may have died later (#25).
            if let Some((kind, evidence)) = stall_finding(f, &self.hosts) {
                self.counters.problems.fetch_add(1, Ordering::Relaxed);
                let v = self.attempt_failed(f, kind, &evidence, "connection-failed");
                self.write(&v);
                self.want(f);
            }
            return;
        };
        let v = self.attempt_failed(f, failure.finding_kind(), evidence, "attempt-failed");
        if probe {
            if self.held.len() < MAX_HELD {
                match serde_json::to_vec(&v) {
                    Ok(record) => self.held.push_back(Held {
                        until: self.clock.saturating_add(SCAN_HOLD),
                        flow: ProbeKey::of(f),
                        frames: wanted(f),
                        record,
                    }),
                    Err(e) => self.error = Some(e.into()),
                }
                return;
            }
            self.counters
                .probes_not_held
                .fetch_add(1, Ordering::Relaxed);
        }
        self.counters.problems.fetch_add(1, Ordering::Relaxed);
        self.write(&v);
        self.want(f);
    }

    /// Writes the held probes whose time is up (all of them at the stop):
    /// a probe of a scan that showed meanwhile is the scan's, any other is
    /// an `attempt-failed` after all.
    fn release_probes(&mut self, last: bool) {
        while let Some(h) = self.held.front() {
            if !last && h.until >= self.clock {
                break;
            }
            let Some(h) = self.held.pop_front() else {
                break;
            };
            let k = h.flow;
            match self.scans.kind_at(k.client, k.server, k.proto, k.port) {
                // The scan's record was written when it showed.
                Some(_) => {}
                None => {
                    self.counters.problems.fetch_add(1, Ordering::Relaxed);
                    self.write_line(&h.record);
                    if let Some(e) = &mut self.evidence {
                        e.wanted.push(h.frames);
                    }
                }
            }
        }
    }

    /// One `scan` record per scan, when it shows (its probe count reaches
    /// the threshold).
    fn announce_scan(&mut self, kind: ScanKind, f: &FlowRecord) {
        let id = kind.identity(f);
        if self.scans_announced.len() >= scans::MAX_KEYS || !self.scans_announced.insert((kind, id))
        {
            return;
        }
        let (source, target, proto, port) = id;
        let zero = IpAddr::from([0, 0, 0, 0]);
        let show = |ip: IpAddr| (ip != zero).then_some(ip);
        self.write(&schema::Scan {
            kind: kind.finding_kind(),
            port: (port != 0).then_some(port),
            proto: proto_name(proto),
            record: "scan",
            source: show(source),
            target: show(target),
            ts: Rfc3339(f.first_ts),
        });
    }

    /// An `attempt-failed` or `connection-failed` record.
    fn attempt_failed<'a>(
        &self,
        f: &'a FlowRecord,
        kind: FindingKind,
        e: &'a Evidence,
        record: &'static str,
    ) -> schema::AttemptFailed<'a> {
        let label = self.correlator.state().label(f);
        schema::AttemptFailed {
            client: f.client,
            client_port: f.client_port,
            epm_announced: matches!(
                label.identified_by,
                "epm-handoff" | "epm-endpoint" | "dcom-handoff"
            ),
            evidence: evidence(e),
            identified_by: label.identified_by,
            interface: label.interface.as_ref().map(Interface::new),
            kind,
            last_ts: Rfc3339(f.last_ts),
            packets: f.packets,
            port: f.server_port,
            proto: proto_name(f.proto),
            record,
            server: f.server,
            service: label.service,
            state: f.state.as_str(),
            syn_retries: f.syn_retries,
            ts: Rfc3339(f.first_ts),
        }
    }
}

/// How long (capture time) a failed probe waits for its scan to show
/// before it is written as a failed attempt.
pub const SCAN_HOLD: Ts = 60 * SECOND;
/// Probes held at most; past it they are written at once (and counted).
pub const MAX_HELD: usize = 1 << 16;

/// What a held probe's scan is looked up by.
#[derive(Clone, Copy, Debug)]
struct ProbeKey {
    client: IpAddr,
    server: IpAddr,
    proto: u8,
    port: u16,
}

impl ProbeKey {
    fn of(f: &FlowRecord) -> ProbeKey {
        ProbeKey {
            client: f.client,
            server: f.server,
            proto: f.proto,
            port: f.server_port,
        }
    }
}

/// A failed probe waiting for its scan.
struct Held {
    until: Ts,
    flow: ProbeKey,
    /// Its frames, for `--write-failed`.
    frames: Wanted,
    /// Its `attempt-failed` record, serialized.
    record: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EpmEndpoint, EpmOperation, InterfaceId};
    use crate::flow::ConnState;
    use crate::flow::FlowEnd;
    use crate::packet::PROTO_TCP;
    use crate::proto::dcerpc::Uuid;
    use crate::proto::epm::{Transport, EPT_S_NOT_REGISTERED};
    use std::net::{IpAddr, Ipv4Addr};

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
            carrier: crate::event::Carrier::Tcp,
            call_id: 1,
            operation: EpmOperation::EptMap,
            inquiry_type: None,
            requested: Some(iface()),
            first_call: true,
            requested_transport: None,
            ndr64: false,
            status: 0,
            endpoints: vec![EpmEndpoint {
                interface: Some(iface()),
                transport: Transport::Tcp,
                port,
                tower_ip: None,
                annotation: None,
                bindings: Vec::new(),
            }],
            sealed: false,
        })
    }

    fn flow(first_ts: Ts, port: u16, state: ConnState) -> FlowRecord {
        FlowRecord {
            last_ts: first_ts + 3 * SECOND,
            state,
            syn_retries: 2,
            packets: [3, 0],
            bytes: [180, 0],
            end: FlowEnd::IdleTimeout,
            ..FlowRecord::test_syn(CLIENT, 50_001, SERVER, port, first_ts)
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
    /// hand-off once every attempt in its window has surely ended.
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
        // Past the window, another attempt that started in it may still
        // end (S0 after the 75 s handshake timeout, REJ after the 10 s
        // closed one, UDP after 120 s): its count and fate are not known.
        c.push(msg(0, 2, T0 + 31 * SECOND));
        c.push(msg(1, 2, T0 + 31 * SECOND));
        assert_eq!(c.pending(), 1, "attempts in the window may still end");
        let settled = T0 + (30 + 120 + 10 + 2) * SECOND;
        c.push(msg(0, 3, settled));
        c.push(msg(1, 3, settled));
        assert_eq!(c.pending(), 0);
        let r = records(c);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0]["record"], "attempt-failed");
        assert_eq!(r[0]["evidence"]["type"], "syn-unanswered");
        assert_eq!(r[0]["evidence"]["syns"], 3);
        assert_eq!(r[0]["kind"], "blocked");
        assert_eq!(r[0]["epm_announced"], true);
        assert_eq!(r[0]["identified_by"], "epm-handoff");
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
