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

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::capture::{Bytes, InputInfo, Source};
use crate::correlate::{correlate, CorrelateConfig, Correlated};
use crate::event::Event;
use crate::flow::{FlowConfig, FlowRecord, FlowStats, FlowTable};
use crate::packet::{self, Decoded, Defragmenter, Packet, Transport};
use crate::Ts;

/// Flows are partitioned into this many logical shards, whatever the number
/// of worker threads; each worker owns `shard % threads == worker`. Caps and
/// eviction are per logical shard, so results never depend on `--threads`.
pub const LOGICAL_SHARDS: usize = 64;

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
}

/// Everything the analysis produced, ready for the renderers.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    pub inputs: Vec<InputInfo>,
    pub stats: Stats,
    /// All flows, sorted by [`flow_order`].
    pub flows: Vec<FlowRecord>,
    /// Hand-offs, endpoints, findings, and one label per flow.
    pub correlated: Correlated,
}

impl Analysis {
    /// Whether some input was cut short by corruption or truncation.
    pub fn is_partial(&self) -> bool {
        self.inputs.iter().any(|i| i.problem.is_some())
    }

    /// Whether there is something the admin must act on.
    pub fn has_findings(&self) -> bool {
        !self.correlated.findings.is_empty()
    }
}

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
}

/// One decoded packet on its way to a worker.
struct Item {
    shard: u8,
    /// Index into `ShardBatch::buffers` of the bytes the payload lives in.
    buf: u16,
    /// Offset of the decoded slice inside that buffer (payload offsets are
    /// relative to it).
    base: u32,
    pkt: Packet,
}

/// A worker's share of one frame batch.
struct ShardBatch {
    buffers: Vec<Bytes>,
    items: Vec<Item>,
    /// Capture clock: the latest timestamp the reader has seen.
    clock: Ts,
}

/// Runs the pipeline over `source` to the end.
pub fn run(mut source: Box<dyn Source>, opts: &Options) -> Analysis {
    let threads = opts.threads.max(1);
    let mut senders: Vec<Sender<ShardBatch>> = Vec::with_capacity(threads);
    let mut handles = Vec::with_capacity(threads);
    for worker in 0..threads {
        let (tx, rx) = bounded::<ShardBatch>(CHANNEL_DEPTH);
        senders.push(tx);
        let cfg = opts.flow;
        handles.push(
            std::thread::Builder::new()
                .name(format!("exflow-shard-{worker}"))
                .spawn(move || shard_worker(worker, threads, cfg, rx))
                .expect("spawning a shard worker thread"),
        );
    }

    let mut stats = Stats::default();
    let mut defrag = Defragmenter::default();
    let mut progress = Progress::new(opts.progress && std::io::stderr().is_terminal());
    let mut clock: Ts = 0;
    let mut pending: Vec<Vec<Item>> = (0..threads).map(|_| Vec::new()).collect();

    while let Some(batch) = source.next_batch(FRAMES_PER_BATCH) {
        let mut extra: Vec<Bytes> = Vec::new();
        for meta in &batch.frames {
            clock = clock.max(meta.ts);
            stats.packets += 1;
            stats.bytes += meta.orig_len as u64;
            if meta.caplen < meta.orig_len {
                stats.snaplen_truncated += 1;
            }
            let data = batch.data(meta);
            let decoded = packet::decode(meta.link, meta.ts, meta.orig_len, data);
            let (pkt, buf, base) = match decoded {
                Ok(Decoded::Packet(p)) => (p, meta.buf, meta.offset),
                Ok(Decoded::Fragment(frag)) => match defrag.push(&frag) {
                    Some(datagram) => match datagram.decode() {
                        Ok(p) => {
                            let idx = (batch.buffers.len() + extra.len()) as u16;
                            extra.push(std::sync::Arc::new(datagram.bytes));
                            (p, idx, 0)
                        }
                        Err(e) => {
                            *stats.decode_errors.entry(e.reason()).or_default() += 1;
                            continue;
                        }
                    },
                    None => continue,
                },
                Err(e) => {
                    *stats.decode_errors.entry(e.reason()).or_default() += 1;
                    continue;
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
            let Some(hash) = hash else { continue };
            let shard = (hash % LOGICAL_SHARDS as u64) as usize;
            pending[shard % threads].push(Item {
                shard: shard as u8,
                buf,
                base,
                pkt,
            });
        }
        defrag.expire(clock);
        let mut buffers = batch.buffers;
        buffers.extend(extra);
        for (worker, items) in pending.iter_mut().enumerate() {
            let items = std::mem::take(items);
            let sb = ShardBatch {
                buffers: buffers.clone(),
                items,
                clock,
            };
            // A worker only hangs up by panicking; its join below reports it.
            let _ = senders[worker].send(sb);
        }
        progress.update(stats.packets, stats.bytes);
    }
    drop(senders);
    progress.finish(stats.packets, stats.bytes);

    let mut flows = Vec::new();
    let mut events = Vec::new();
    for handle in handles {
        let (mut recs, mut evs, fstats) = handle.join().expect("a shard worker panicked");
        flows.append(&mut recs);
        events.append(&mut evs);
        stats.flow.add(&fstats);
    }
    stats.fragments = *defrag.stats();
    flows.sort_unstable_by(flow_order);
    let correlated = correlate(&flows, &events, &opts.correlate);
    Analysis {
        inputs: source.inputs(),
        stats,
        flows,
        correlated,
    }
}

/// Owns the flow tables of logical shards `worker, worker + threads, ...`.
fn shard_worker(
    worker: usize,
    threads: usize,
    cfg: FlowConfig,
    rx: Receiver<ShardBatch>,
) -> (Vec<FlowRecord>, Vec<Event>, FlowStats) {
    let mut tables: Vec<Option<FlowTable>> = (0..LOGICAL_SHARDS)
        .map(|s| (s % threads == worker).then(|| FlowTable::new(cfg)))
        .collect();
    let mut out = Vec::new();
    let mut events = Vec::new();
    let mut next_sweep: Ts = 0;
    for batch in rx {
        for item in &batch.items {
            let Some(table) = tables[item.shard as usize].as_mut() else {
                continue;
            };
            let payload = payload_bytes(&batch.buffers, item);
            table.process(&item.pkt, payload, &mut out);
        }
        for table in tables.iter_mut().flatten() {
            table.drain_events(&mut events);
        }
        if batch.clock >= next_sweep {
            for table in tables.iter_mut().flatten() {
                table.advance(batch.clock, &mut out);
            }
            next_sweep = batch.clock.saturating_add(SWEEP_INTERVAL);
        }
    }
    let mut stats = FlowStats::default();
    for table in tables.into_iter().flatten() {
        stats.add(&table.finish_with_events(&mut out, &mut events));
    }
    (out, events, stats)
}

fn payload_bytes<'a>(buffers: &'a [Bytes], item: &Item) -> &'a [u8] {
    let Some(p) = item.pkt.payload() else {
        return &[];
    };
    let Some(buf) = buffers.get(item.buf as usize) else {
        return &[];
    };
    let start = item.base as usize + p.offset as usize;
    buf.get(start..start + p.len as usize).unwrap_or(&[])
}

/// A progress line on stderr, redrawn at most twice a second.
struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new(enabled: bool) -> Self {
        let now = Instant::now();
        Progress {
            enabled,
            started: now,
            last: now,
        }
    }

    fn update(&mut self, packets: u64, bytes: u64) {
        if !self.enabled || self.last.elapsed() < Duration::from_millis(500) {
            return;
        }
        self.last = Instant::now();
        self.draw(packets, bytes);
    }

    fn draw(&self, packets: u64, bytes: u64) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        eprint!(
            "\r\x1b[Kexflow: {packets} packets, {:.1} MB, {:.2} Mpkt/s",
            bytes as f64 / 1e6,
            packets as f64 / secs / 1e6
        );
    }

    fn finish(&self, packets: u64, bytes: u64) {
        if self.enabled && self.started.elapsed() > Duration::from_millis(500) {
            self.draw(packets, bytes);
            eprintln!();
        }
    }
}
