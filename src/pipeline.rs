//! The pipeline: one reader thread decodes frames and dispatches packets by
//! symmetric flow hash to N shard workers; each worker owns the flow tables
//! of its logical shards; the caller collects and orders the results.
//!
//! ```text
//!  Source ──FrameBatch──► reader (decode, defragment, hash) ──ShardBatch──► worker 0..N
//!                                                                          (FlowTable per logical shard)
//!                                                         ◄──FlowRecords── (on finish)
//! ```
//!
//! Determinism: packets are partitioned into [`LOGICAL_SHARDS`] tables by
//! flow hash whatever the thread count, each table sees its packets in
//! source order, and the final flow list is sorted by a total order. So the
//! report is byte-identical for every `--threads` value.

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::capture::{Bytes, FrameMeta, InputInfo, Source};
use crate::correlate::CorrelateConfig;
use crate::event::Event;
use crate::flow::{FlowConfig, FlowRecord, FlowStats, FlowTable, FlowUp};
use crate::packet::{self, Decoded, Defragmenter, Packet, Transport};
use crate::Ts;

pub use crate::flow::{flow_order, LOGICAL_SHARDS};

/// Frames asked from the source per batch.
const FRAMES_PER_BATCH: usize = 4096;
/// Batches in flight per worker channel (bounds memory between stages).
const CHANNEL_DEPTH: usize = 8;
/// How often (in capture time) workers sweep idle flows out of memory.
const SWEEP_INTERVAL: Ts = crate::flow::SECOND;

/// Pipeline settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// Shard worker threads (>= 1).
    pub threads: usize,
    pub flow: FlowConfig,
    pub correlate: CorrelateConfig,
    /// Print a progress line on stderr (only used when stderr is a terminal).
    pub progress: bool,
    /// The expected firewall policy, if any (verdicts work without one).
    pub policy: Option<std::sync::Arc<crate::policy::Policy>>,
    /// Live capture: after every batch each worker sends what it learned
    /// ([`StreamMsg`]) here, and idle flows are expired by the source's
    /// clock even when no packet arrives. `None` (offline analysis): nothing
    /// is sent and the results depend on packet timestamps only.
    pub stream: Option<Sender<StreamMsg>>,
    /// Live capture over days: most ended flows kept for the final report
    /// (None: all, as offline). Beyond it, workers keep every failed
    /// attempt and flow with a parsed protocol, and one working flow per
    /// (client, server, proto, port) — enough for the same findings and
    /// verdicts — and count what they let go (`stats.flows_not_retained`).
    pub retain_flows: Option<usize>,
    /// `exflow live --write-failed`: the reader keeps the headers of every
    /// frame here, for the stream to write those of the failed attempts
    /// (#21).
    pub evidence: Option<std::sync::Arc<crate::capture::EvidenceRing>>,
}

/// What one shard worker learned from one batch, for the live correlator
/// (`crate::stream`). Every worker sends one per batch, so a receiver can
/// wait for all `workers` messages of batch `seq` and process them in a
/// total order whatever the thread timing.
#[derive(Debug, Default)]
pub struct StreamMsg {
    pub worker: usize,
    pub workers: usize,
    /// Batch sequence number; [`StreamMsg::FINAL`] for the worker's last
    /// message (flows still open when the capture stopped).
    pub seq: u64,
    /// Capture clock of the batch.
    pub clock: Ts,
    /// Flows that ended (copies; the originals stay for the final report).
    pub flows: Vec<FlowRecord>,
    /// Events produced (copies).
    pub events: Vec<Event>,
    /// Flows that became established (TCP) or got an answer (UDP).
    pub ups: Vec<FlowUp>,
    /// Flows this worker tracks right now.
    pub tracked: usize,
}

impl StreamMsg {
    pub const FINAL: u64 = u64::MAX;
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            flow: FlowConfig::default(),
            correlate: CorrelateConfig::default(),
            progress: false,
            policy: None,
            stream: None,
            retain_flows: None,
            evidence: None,
        }
    }
}

/// Packet and flow counters for `stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames that entered decoding (after any BPF filter).
    pub packets: u64,
    /// Their bytes on the wire.
    pub bytes: u64,
    /// Frames that could not be decoded, by reason.
    pub decode_errors: BTreeMap<&'static str, u64>,
    pub tcp_packets: u64,
    pub udp_packets: u64,
    pub icmp_packets: u64,
    /// IP packets of other protocols (GRE, ESP, ...).
    pub other_ip_packets: u64,
    /// Frames whose capture was cut by the snaplen.
    pub snaplen_truncated: u64,
    pub fragments: packet::DefragStats,
    pub flow: FlowStats,
    /// Live capture: ended flows let go to bound memory (`retain_flows`).
    pub flows_not_retained: u64,
    /// Scan probes the full scan tables could not count (judged as
    /// ordinary attempts).
    pub scan_probes_untracked: u64,
}

/// The report order of flows: [`flow_order`], with a cheap integer prefix
/// (first timestamp, client address and port) compared first.
fn report_order(a: &FlowRecord, b: &FlowRecord) -> std::cmp::Ordering {
    fn prefix(f: &FlowRecord) -> (u64, u128, u16) {
        let ip = match f.client {
            std::net::IpAddr::V4(a) => u32::from(a) as u128,
            std::net::IpAddr::V6(a) => u128::from(a) | (1u128 << 127),
        };
        (f.first_ts, ip, f.client_port)
    }
    prefix(a).cmp(&prefix(b)).then_with(|| flow_order(a, b))
}

/// Merges the workers' flow lists, each already sorted by [`report_order`]
/// in *descending* order (every worker sorts its own, in parallel), into one
/// in ascending order, without holding two copies of them: the smallest
/// remaining record is popped off the back of the parts (which are shrunk
/// as they empty) onto the result. (Sorting ascending and reversing the
/// result at the end took a full extra pass over every record.)
fn merge_flows(mut parts: Vec<Vec<FlowRecord>>) -> Vec<FlowRecord> {
    const SHRINK_EVERY: usize = 1 << 16;
    debug_assert!(parts
        .iter()
        .all(|p| p.is_sorted_by(|a, b| report_order(a, b).is_ge())));
    parts.retain(|p| !p.is_empty());
    let total = parts.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(total);
    while !parts.is_empty() {
        let mut best = 0;
        for k in 1..parts.len() {
            if let (Some(a), Some(b)) = (parts[k].last(), parts[best].last()) {
                if report_order(a, b).is_lt() {
                    best = k;
                }
            }
        }
        if let Some(f) = parts[best].pop() {
            out.push(f);
        }
        if parts[best].is_empty() {
            parts.swap_remove(best);
        } else if out.len() % SHRINK_EVERY == 0 {
            for p in &mut parts {
                if p.capacity() - p.len() >= SHRINK_EVERY {
                    p.shrink_to_fit();
                }
            }
        }
    }
    out
}

/// A packet on its way to a worker.
enum Work {
    /// Decoded by the reader (fragments, ICMP errors, anything unusual).
    /// Payload offsets are relative to `base` inside buffer `buf`.
    Packet {
        shard: u8,
        buf: u16,
        base: u32,
        pkt: Box<Packet>,
    },
    /// A plain TCP/UDP frame the reader only hashed; the worker decodes it
    /// (spreading decoding over the workers). `hash` is the flow's
    /// symmetric hash ([`packet::fast_flow_hash`]).
    Frame {
        shard: u8,
        hash: u64,
        meta: FrameMeta,
    },
    /// A datagram of the shard's flow whose fragments never all came (#25).
    Lost {
        shard: u8,
        lost: Box<packet::Incomplete>,
    },
}

/// How many work items ahead a worker prefetches the flow and the frame
/// bytes of (and twice as far ahead, the flow's index bucket): far enough
/// for the loads to arrive, near enough that they are still cached when the
/// item comes.
const PREFETCH_AHEAD: usize = 6;

/// A worker's share of one frame batch.
struct ShardBatch {
    buffers: Vec<Bytes>,
    items: Vec<Work>,
    /// Capture clock: the latest timestamp the reader has seen (live: or
    /// the source's clock while no packet arrives).
    clock: Ts,
    /// Batch sequence number (for [`StreamMsg`]).
    seq: u64,
}

/// What a worker counted while decoding the frames given to it.
#[derive(Default)]
struct WorkerCounts {
    tcp: u64,
    udp: u64,
    not_retained: u64,
    decode_errors: BTreeMap<&'static str, u64>,
}

struct WorkerResult {
    flows: Vec<FlowRecord>,
    events: Vec<Event>,
    stats: FlowStats,
    counts: WorkerCounts,
}

/// What the workers produced, before correlation.
#[derive(Debug, Default)]
pub struct Collected {
    pub inputs: Vec<InputInfo>,
    pub stats: Stats,
    /// All flows, sorted by [`flow_order`].
    pub flows: Vec<FlowRecord>,
    pub events: Vec<Event>,
}

/// Runs the reader and the shard workers over `source` to the end.
pub fn collect(mut source: Box<dyn Source>, opts: &Options) -> Collected {
    let threads = opts.threads.max(1);
    let workers = Workers::spawn(opts, threads);
    let mut reader = Reader {
        stats: Stats::default(),
        defrag: Defragmenter::default(),
        threads,
        pending: (0..threads).map(|_| Vec::new()).collect(),
        keep: opts.evidence.is_some(),
        kept: Vec::new(),
    };
    let mut progress = Progress::new(opts.progress && std::io::stderr().is_terminal());
    let mut clock: Ts = 0;
    let mut seq: u64 = 0;

    while let Some(batch) = source.next_batch(FRAMES_PER_BATCH) {
        let mut extra: Vec<Bytes> = Vec::new();
        for meta in &batch.frames {
            clock = clock.max(meta.ts);
            reader.stats.packets += 1;
            reader.stats.bytes += meta.orig_len as u64;
            if meta.caplen < meta.orig_len {
                reader.stats.snaplen_truncated += 1;
            }
            let data = batch.data(meta);
            // The common case (plain TCP/UDP): the 5-tuple is read in place
            // and the frame goes to its worker undecoded.
            if let Some(hash) = packet::fast_flow_hash(meta.link, data) {
                reader.keep_frame(hash, meta, data);
                let shard = (hash % LOGICAL_SHARDS as u64) as usize;
                reader.pending[shard % threads].push(Work::Frame {
                    shard: shard as u8,
                    hash,
                    meta: *meta,
                });
                continue;
            }
            let extra_at = (batch.buffers.len() + extra.len()) as u16;
            if let Some(datagram) = reader.decode_unusual(meta, data, extra_at) {
                extra.push(datagram);
            }
        }
        if opts.stream.is_some() {
            if let Some(now) = source.clock_hint() {
                clock = clock.max(now);
            }
        }
        reader.defrag.expire(clock);
        reader.route_incomplete();
        if let Some(ring) = &opts.evidence {
            ring.push(&mut reader.kept);
        }
        let mut buffers = batch.buffers;
        buffers.extend(extra);
        workers.send(&mut reader.pending, &buffers, clock, seq);
        seq += 1;
        progress.update(reader.stats.packets, reader.stats.bytes, &*source);
    }
    // Datagrams still waiting for fragments: lost, unless the capture may
    // have cut them.
    reader.defrag.flush(clock);
    reader.route_incomplete();
    if reader.pending.iter().any(|p| !p.is_empty()) {
        workers.send(&mut reader.pending, &[], clock, seq);
    }
    let mut stats = reader.stats;
    progress.finish(stats.packets, stats.bytes, source.progress());
    let t_read = progress.started.elapsed();
    crate::time::stage_done("read", t_read);
    let (parts, events) = workers.join(&mut stats);
    let t_join = progress.started.elapsed();
    crate::time::stage_done("workers", t_join - t_read);
    stats.fragments = *reader.defrag.stats();
    let flows = merge_flows(parts);
    crate::time::stage_done("merge", progress.started.elapsed() - t_join);
    Collected {
        inputs: source.inputs(),
        stats,
        flows,
        events,
    }
}

/// The shard worker threads, their channels, and the channel on which they
/// hand emptied work vectors back.
struct Workers {
    senders: Vec<Sender<ShardBatch>>,
    handles: Vec<std::thread::JoinHandle<WorkerResult>>,
    recycle: Receiver<Vec<Work>>,
}

impl Workers {
    fn spawn(opts: &Options, threads: usize) -> Workers {
        // Emptied work vectors come back from the workers for reuse, so the
        // reader does not allocate (and fault in) fresh ones for every batch.
        let (recycle_tx, recycle_rx) = crossbeam_channel::unbounded::<Vec<Work>>();
        let mut senders: Vec<Sender<ShardBatch>> = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        for worker in 0..threads {
            let (tx, rx) = bounded::<ShardBatch>(CHANNEL_DEPTH);
            senders.push(tx);
            let cfg = opts.flow;
            let recycle = recycle_tx.clone();
            let stream = opts.stream.clone();
            let retain = opts.retain_flows.map(|n| (n / threads).max(1));
            handles.push(
                std::thread::Builder::new()
                    .name(format!("exflow-shard-{worker}"))
                    .spawn(move || shard_worker(worker, threads, cfg, rx, recycle, stream, retain))
                    .expect("spawning a shard worker thread"),
            );
        }
        Workers {
            senders,
            handles,
            recycle: recycle_rx,
        }
    }

    /// Hands each worker its part of one batch (`pending` is left with
    /// recycled empty vectors).
    fn send(&self, pending: &mut [Vec<Work>], buffers: &[Bytes], clock: Ts, seq: u64) {
        let threads = self.senders.len();
        for (worker, items) in pending.iter_mut().enumerate() {
            let spare = self
                .recycle
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(2 * FRAMES_PER_BATCH / threads));
            let items = std::mem::replace(items, spare);
            let sb = ShardBatch {
                buffers: buffers.to_vec(),
                items,
                clock,
                seq,
            };
            // A worker only hangs up by panicking; its join below reports it.
            let _ = self.senders[worker].send(sb);
        }
    }

    /// Waits for the workers to drain; their flow lists (each sorted) and
    /// events, their counters added to `stats`.
    fn join(self, stats: &mut Stats) -> (Vec<Vec<FlowRecord>>, Vec<Event>) {
        drop(self.senders);
        let mut parts = Vec::with_capacity(self.handles.len());
        let mut events = Vec::new();
        for handle in self.handles {
            let mut r = handle.join().expect("a shard worker panicked");
            parts.push(std::mem::take(&mut r.flows));
            events.append(&mut r.events);
            stats.flow.add(&r.stats);
            stats.tcp_packets += r.counts.tcp;
            stats.udp_packets += r.counts.udp;
            stats.flows_not_retained += r.counts.not_retained;
            for (k, v) in r.counts.decode_errors {
                *stats.decode_errors.entry(k).or_default() += v;
            }
        }
        (parts, events)
    }
}

/// The reader thread's state between batches.
struct Reader {
    stats: Stats,
    defrag: Defragmenter,
    threads: usize,
    /// Per worker, the work of the batch being read.
    pending: Vec<Vec<Work>>,
    /// `--write-failed` in live: the batch's frames to keep (see
    /// [`Options::evidence`]).
    keep: bool,
    kept: Vec<crate::capture::KeptFrame>,
}

impl Reader {
    /// `live --write-failed`: keeps the frame's headers for the stream.
    #[inline]
    fn keep_frame(&mut self, hash: u64, meta: &FrameMeta, data: &[u8]) {
        if self.keep {
            self.kept.push(crate::capture::KeptFrame::new(
                hash,
                meta.ts,
                meta.link,
                meta.orig_len,
                data,
            ));
        }
    }

    /// Datagrams the defragmenter gave up on, to the workers of their flows.
    fn route_incomplete(&mut self) {
        for lost in self.defrag.take_incomplete() {
            let hash = packet::FiveTuple {
                proto: lost.proto,
                src: lost.src,
                dst: lost.dst,
                sport: lost.sport,
                dport: lost.dport,
            }
            .symmetric_hash();
            let shard = (hash % LOGICAL_SHARDS as u64) as usize;
            self.pending[shard % self.threads].push(Work::Lost {
                shard: shard as u8,
                lost: Box::new(lost),
            });
        }
    }

    /// A frame the fast path could not hash (fragments, ICMP errors, IPv6
    /// extension headers, other protocols): decoded here, defragmented, and
    /// queued for the worker of the flow it belongs to (an ICMP error: the
    /// flow it quotes). A datagram completed from fragments is returned, to
    /// be kept beside the batch's buffers at index `extra_at`.
    fn decode_unusual(&mut self, meta: &FrameMeta, data: &[u8], extra_at: u16) -> Option<Bytes> {
        let stats = &mut self.stats;
        let mut datagram_bytes = None;
        let decoded = packet::decode(meta.link, meta.ts, meta.orig_len, data);
        let (pkt, buf, base) = match decoded {
            Ok(Decoded::Packet(p)) => (p, meta.buf, meta.offset),
            Ok(Decoded::Fragment(frag)) => match self.defrag.push(&frag) {
                Some(datagram) => match datagram.decode() {
                    Ok(p) => {
                        datagram_bytes = Some(std::sync::Arc::new(datagram.bytes.into()));
                        (p, extra_at, 0)
                    }
                    Err(e) => {
                        *stats.decode_errors.entry(e.reason()).or_default() += 1;
                        return None;
                    }
                },
                None => return None,
            },
            Err(e) => {
                *stats.decode_errors.entry(e.reason()).or_default() += 1;
                return None;
            }
        };
        let hash = match pkt.transport {
            Transport::Tcp(_) => {
                stats.tcp_packets += 1;
                pkt.tuple().map(|t| t.symmetric_hash())
            }
            Transport::Udp(_) => {
                stats.udp_packets += 1;
                pkt.tuple().map(|t| t.symmetric_hash())
            }
            Transport::Icmp(icmp) => {
                stats.icmp_packets += 1;
                icmp.quoted.map(|q| q.tuple.symmetric_hash())
            }
            Transport::Other(_) => {
                stats.other_ip_packets += 1;
                None
            }
        };
        // A datagram whose packet has no flow is not kept either.
        let hash = hash?;
        self.keep_frame(hash, meta, data);
        let shard = (hash % LOGICAL_SHARDS as u64) as usize;
        self.pending[shard % self.threads].push(Work::Packet {
            shard: shard as u8,
            buf,
            base,
            pkt: Box::new(pkt),
        });
        datagram_bytes
    }
}

/// Owns the flow tables of logical shards `worker, worker + threads, ...`.
fn shard_worker(
    worker: usize,
    threads: usize,
    cfg: FlowConfig,
    rx: Receiver<ShardBatch>,
    recycle: Sender<Vec<Work>>,
    stream: Option<Sender<StreamMsg>>,
    retain: Option<usize>,
) -> WorkerResult {
    let mut w = Shards {
        worker,
        threads,
        tables: (0..LOGICAL_SHARDS)
            .map(|s| (s % threads == worker).then(|| FlowTable::new(cfg)))
            .collect(),
        out: Vec::new(),
        events: Vec::new(),
        counts: WorkerCounts::default(),
        stream,
        retain,
        sent: (0, 0),
        represented: HashSet::new(),
    };
    if w.stream.is_some() {
        for table in w.tables.iter_mut().flatten() {
            table.set_notify_up(true);
        }
    }
    let mut next_sweep: Ts = 0;
    for mut batch in rx {
        w.process(&batch);
        for table in w.tables.iter_mut().flatten() {
            table.drain_events(&mut w.events);
        }
        let mut items = std::mem::take(&mut batch.items);
        items.clear();
        // The reader may be gone at the end; then the vector is just dropped.
        let _ = recycle.send(items);
        if batch.clock >= next_sweep {
            w.sweep(batch.clock);
            next_sweep = batch.clock.saturating_add(SWEEP_INTERVAL);
        }
        w.stream_batch(batch.seq, batch.clock);
    }
    w.finish()
}

/// One worker's logical shards and what they produced so far.
struct Shards {
    worker: usize,
    threads: usize,
    /// Indexed by logical shard; `Some` for the shards this worker owns.
    tables: Vec<Option<FlowTable>>,
    out: Vec<FlowRecord>,
    events: Vec<Event>,
    counts: WorkerCounts,
    stream: Option<Sender<StreamMsg>>,
    retain: Option<usize>,
    /// Flows and events already sent to the stream.
    sent: (usize, usize),
    /// (client, server, proto, port) with a working flow kept (`retain`).
    represented: HashSet<(IpAddr, IpAddr, u8, u16)>,
}

impl Shards {
    /// Every packet of one batch through its flow table.
    fn process(&mut self, batch: &ShardBatch) {
        for (k, item) in batch.items.iter().enumerate() {
            prefetch_ahead(&self.tables, batch, k);
            match item {
                Work::Packet {
                    shard,
                    buf,
                    base,
                    pkt,
                } => {
                    let Some(table) = self.tables[*shard as usize].as_mut() else {
                        continue;
                    };
                    let payload = payload_bytes(&batch.buffers, *buf, *base, pkt);
                    table.process(pkt, payload, &mut self.out);
                }
                Work::Frame { shard, hash, meta } => {
                    let Some(table) = self.tables[*shard as usize].as_mut() else {
                        continue;
                    };
                    let Some(data) = batch.buffers.get(meta.buf as usize).and_then(|b| {
                        b.get(meta.offset as usize..(meta.offset + meta.caplen) as usize)
                    }) else {
                        continue;
                    };
                    match packet::decode(meta.link, meta.ts, meta.orig_len, data) {
                        Ok(Decoded::Packet(pkt)) => {
                            match pkt.transport {
                                Transport::Tcp(_) => self.counts.tcp += 1,
                                Transport::Udp(_) => self.counts.udp += 1,
                                _ => {}
                            }
                            let payload = pkt
                                .payload()
                                .and_then(|p| {
                                    data.get(p.offset as usize..(p.offset + p.len) as usize)
                                })
                                .unwrap_or(&[]);
                            table.process_hashed(&pkt, *hash, payload, &mut self.out);
                        }
                        // The fast path only passes unfragmented datagrams.
                        Ok(Decoded::Fragment(_)) => {}
                        Err(e) => *self.counts.decode_errors.entry(e.reason()).or_default() += 1,
                    }
                }
                Work::Lost { shard, lost } => {
                    if let Some(table) = self.tables[*shard as usize].as_mut() {
                        table.fragments_lost(lost);
                    }
                }
            }
        }
    }

    /// Expires idle flows by the batch's clock (live: the source's clock,
    /// even when no packet arrives).
    fn sweep(&mut self, clock: Ts) {
        for table in self.tables.iter_mut().flatten() {
            if self.stream.is_some() {
                table.advance_clock(clock, &mut self.out);
            } else {
                table.advance(clock, &mut self.out);
            }
        }
    }

    /// Live capture: what this batch taught, to the live correlator; then
    /// ended flows beyond `retain` let go.
    fn stream_batch(&mut self, seq: u64, clock: Ts) {
        let Some(tx) = &self.stream else { return };
        let (sent_flows, sent_events) = self.sent;
        let mut msg = StreamMsg {
            worker: self.worker,
            workers: self.threads,
            seq,
            clock,
            flows: self.out[sent_flows..].to_vec(),
            events: self.events[sent_events..].to_vec(),
            ups: Vec::new(),
            tracked: self.tables.iter().flatten().map(FlowTable::len).sum(),
        };
        for table in self.tables.iter_mut().flatten() {
            table.drain_ups(&mut msg.ups);
        }
        self.sent = (self.out.len(), self.events.len());
        // The receiver only hangs up when the program is exiting.
        let _ = tx.send(msg);
        if let Some(cap) = self.retain.filter(|&cap| self.out.len() > cap) {
            self.counts.not_retained += thin_out(&mut self.out, &mut self.represented, cap);
            self.sent.0 = self.out.len();
        }
    }

    /// The flows still open at the end, the final stream message, and the
    /// worker's flows sorted for `merge_flows`.
    fn finish(mut self) -> WorkerResult {
        let mut stats = FlowStats::default();
        let mut clock = 0;
        for table in self.tables.into_iter().flatten() {
            clock = clock.max(table.clock());
            stats.add(&table.finish_with_events(&mut self.out, &mut self.events));
        }
        if let Some(tx) = &self.stream {
            let _ = tx.send(StreamMsg {
                worker: self.worker,
                workers: self.threads,
                seq: StreamMsg::FINAL,
                clock,
                flows: self.out[self.sent.0..].to_vec(),
                events: self.events[self.sent.1..].to_vec(),
                ups: Vec::new(),
                tracked: 0,
            });
        }
        // Sorted here, in parallel with the other workers, for `merge_flows`
        // (descending: it pops the smallest off the back). The order is total,
        // so this is exactly the ascending order reversed.
        let mut out = self.out;
        out.sort_unstable_by(|a, b| report_order(b, a));
        WorkerResult {
            flows: out,
            events: self.events,
            stats,
            counts: self.counts,
        }
    }
}

/// Lets go of ended flows the final report can do without: working flows
/// whose (client, server, proto, port) already has one kept, without a
/// parsed protocol. Then, if still above `cap`, the oldest of the rest
/// beyond the first `cap`. Returns how many were let go.
fn thin_out(
    out: &mut Vec<FlowRecord>,
    represented: &mut HashSet<(IpAddr, IpAddr, u8, u16)>,
    cap: usize,
) -> u64 {
    let before = out.len();
    out.retain(|f| {
        let working = if f.proto == packet::PROTO_TCP {
            crate::flow::tcp_established(f.state)
        } else {
            f.packets[1] > 0
        };
        // A connection killed after the handshake (#25) is kept: it is
        // the evidence of a finding, though its handshake worked.
        if !working || f.rpc.is_some() || f.app.is_some() || f.losses.is_some() {
            return true;
        }
        represented.insert((f.client, f.server, f.proto, f.server_port))
    });
    if out.len() > cap {
        let excess = out.len() - cap;
        out.drain(..excess);
    }
    out.shrink_to(cap.max(out.len()) * 2);
    (before - out.len()) as u64
}

/// Software-pipelined prefetch for work item `k` of `batch`: the index
/// bucket of item `k + 2 * PREFETCH_AHEAD`, then (its bucket having arrived
/// meanwhile) the flow and the header bytes of item `k + PREFETCH_AHEAD`,
/// then (the flow having arrived) the parser state of item
/// `k + PREFETCH_AHEAD / 2`.
/// The flow lookups and header reads of a worker miss the cache (tens of
/// thousands of open flows; frames last touched on the reader's core), and a
/// packet's own work is too long for the CPU to overlap those misses with
/// the next packet's by itself.
#[inline(always)]
fn prefetch_ahead(tables: &[Option<FlowTable>], batch: &ShardBatch, k: usize) {
    if let Some(Work::Frame { shard, hash, .. }) = batch.items.get(k + 2 * PREFETCH_AHEAD) {
        if let Some(table) = &tables[*shard as usize] {
            table.prefetch_index(*hash);
        }
    }
    if let Some(Work::Frame { shard, hash, .. }) = batch.items.get(k + PREFETCH_AHEAD / 2) {
        if let Some(table) = &tables[*shard as usize] {
            table.prefetch_app(*hash);
        }
    }
    if let Some(Work::Frame { shard, hash, meta }) = batch.items.get(k + PREFETCH_AHEAD) {
        if let Some(table) = &tables[*shard as usize] {
            table.prefetch_flow(*hash);
        }
        if let Some(b) = batch.buffers.get(meta.buf as usize) {
            let at = b.as_ptr().wrapping_add(meta.offset as usize);
            crate::prefetch::bytes(at, (meta.caplen as usize).min(128));
        }
    }
}

fn payload_bytes<'a>(buffers: &'a [Bytes], buf: u16, base: u32, pkt: &Packet) -> &'a [u8] {
    let Some(p) = pkt.payload() else {
        return &[];
    };
    let Some(b) = buffers.get(buf as usize) else {
        return &[];
    };
    let start = base as usize + p.offset as usize;
    b.get(start..start + p.len as usize).unwrap_or(&[])
}

/// The progress line of an offline analysis on a terminal: packets, bytes
/// and rate, and when the inputs are files of known size how far through
/// them the reader is and when it will be done (the reading; the report
/// follows), redrawn at most twice a second (indicatif draws it).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    last: Instant,
}

/// `exflow: 42% of 2.8 GB, 4200000 packets, 410.2 MB, 3.10 Mpkt/s, 6 s
/// left` (without the share and time left when the size is unknown).
fn progress_line(packets: u64, bytes: u64, secs: f64, read: Option<(u64, u64)>) -> String {
    let rate = format!(
        "{packets} packets, {:.1} MB, {:.2} Mpkt/s",
        bytes as f64 / 1e6,
        packets as f64 / secs / 1e6
    );
    match read {
        Some((done, total)) if total > 0 => {
            let share = done as f64 / total as f64;
            let left = if done > 0 && done < total {
                format!(", {:.0} s left", secs * (total - done) as f64 / done as f64)
            } else {
                String::new()
            };
            format!(
                "exflow: {:.0}% of {:.1} GB, {rate}{left}",
                share * 100.0,
                total as f64 / 1e9
            )
        }
        _ => format!("exflow: {rate}"),
    }
}

impl Progress {
    fn new(enabled: bool) -> Self {
        let now = Instant::now();
        let bar = enabled.then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                None,
                indicatif::ProgressDrawTarget::stderr(),
            );
            bar.set_style(
                indicatif::ProgressStyle::with_template("{msg}").expect("a valid template"),
            );
            bar
        });
        Progress {
            bar,
            started: now,
            last: now,
        }
    }

    fn update(&mut self, packets: u64, bytes: u64, source: &dyn Source) {
        if self.bar.is_none() || self.last.elapsed() < Duration::from_millis(500) {
            return;
        }
        self.last = Instant::now();
        self.draw(packets, bytes, source.progress());
    }

    fn draw(&self, packets: u64, bytes: u64, read: Option<(u64, u64)>) {
        let Some(bar) = &self.bar else { return };
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(progress_line(packets, bytes, secs, read));
    }

    /// The last figures stay on screen (short runs draw nothing).
    fn finish(&self, packets: u64, bytes: u64, read: Option<(u64, u64)>) {
        let Some(bar) = &self.bar else { return };
        if self.started.elapsed() > Duration::from_millis(500) {
            self.draw(packets, bytes, read);
            bar.abandon();
            eprintln!();
        } else {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod progress_tests {
    use super::progress_line;

    #[test]
    fn the_progress_line_gives_share_and_time_left_when_the_size_is_known() {
        let line = progress_line(4_200_000, 410_200_000, 2.0, Some((1_000, 4_000)));
        assert_eq!(
            line,
            "exflow: 25% of 0.0 GB, 4200000 packets, 410.2 MB, 2.10 Mpkt/s, 6 s left"
        );
        let done = progress_line(10, 1_000_000, 1.0, Some((4_000, 4_000)));
        assert_eq!(
            done,
            "exflow: 100% of 0.0 GB, 10 packets, 1.0 MB, 0.00 Mpkt/s"
        );
        let stream = progress_line(10, 1_000_000, 1.0, None);
        assert_eq!(stream, "exflow: 10 packets, 1.0 MB, 0.00 Mpkt/s");
    }
}
