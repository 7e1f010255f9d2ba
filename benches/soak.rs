//! Soak: does `exflow live` stay bounded over a long run?
//!
//! `cargo bench --bench soak`; knobs and method in BENCHMARKS.md.
//! Synthetic traffic (the test kit's builders, testkit/: complete TCP
//! conversations, one attempt in ten a SYN never answered, plus UDP
//! exchanges) is fed
//! through the live code path in this process: `pipeline::run` with a
//! stream ([`pipeline::Options::stream`]), the quiet-link clock of a live
//! source, and the live correlator writing its NDJSON records (to a sink).
//! Only libpcap is left out. Capture time runs much faster than the wall
//! clock (hours of traffic in seconds), so every timeout and sweep fires as
//! it would over those hours. RSS (VmRSS) is sampled every
//! EXFLOW_SOAK_SAMPLE packets with the flows tracked and the flow records
//! kept for the final report, then the final report is rendered.

#[path = "support/measure.rs"]
mod measure;

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use exflow::analysis;
use exflow::capture::{FrameBatch, FrameMeta, InputInfo, LinkType, Source};
use exflow::flow::SECOND;
use exflow::pipeline::{Options, StreamMsg};
use exflow::stream::LiveCorrelator;
use exflow::Ts;
use exflow_testkit::{Frame, TcpConversation};

use measure::env_u64;

/// An endless synthetic link, `pps` packets per second of capture time.
struct SynthLink {
    packets: u64,
    limit: u64,
    ts: Ts,
    gap: Ts,
    conv: u64,
    /// (packets, conversations started) for the sampler.
    stats: Arc<std::sync::Mutex<(u64, u64)>>,
}

impl SynthLink {
    fn conversation(&mut self, out: &mut Vec<Vec<u8>>) {
        let n = self.conv;
        self.conv += 1;
        // 192.0.2.1-200 → 198.51.100.1-20; client ports cycle, so 5-tuples
        // are reused only long after their flow ended.
        let client = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + (n % 200) as u8));
        let server = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1 + (n % 20) as u8));
        let cport = 1024 + ((n / 200) % 64_000) as u16;
        if n % 10 == 9 {
            // A SYN never answered (and retransmitted once, later).
            let mut c = TcpConversation::new(client, cport, server, 49_152 + (n % 16) as u16);
            out.push(c.syn());
            return;
        }
        if n % 10 == 5 {
            let f = Frame::ethernet()
                .ipv4(
                    Ipv4Addr::new(192, 0, 2, 1 + (n % 200) as u8),
                    Ipv4Addr::new(203, 0, 113, 53),
                )
                .udp(cport, 53)
                .payload(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00")
                .build();
            out.push(f);
            let r = Frame::ethernet()
                .ipv4(
                    Ipv4Addr::new(203, 0, 113, 53),
                    Ipv4Addr::new(192, 0, 2, 1 + (n % 200) as u8),
                )
                .udp(53, cport)
                .payload(b"\x12\x34\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00")
                .build();
            out.push(r);
            return;
        }
        let mut c = TcpConversation::new(client, cport, server, 443);
        out.push(c.syn());
        out.push(c.syn_ack());
        out.push(c.ack());
        out.push(c.data_c2s(&[0x17; 200]));
        out.push(c.data_s2c(&[0x17; 1200]));
        out.push(c.fin_c());
        out.push(c.fin_s());
        out.push(c.ack());
    }
}

impl Source for SynthLink {
    fn next_batch(&mut self, max_frames: usize) -> Option<FrameBatch> {
        if self.packets >= self.limit {
            return None;
        }
        let mut bytes = Vec::new();
        let mut frames = Vec::new();
        let mut conv = Vec::new();
        while frames.len() < max_frames && self.packets < self.limit {
            conv.clear();
            self.conversation(&mut conv);
            for f in &conv {
                self.ts += self.gap;
                frames.push(FrameMeta {
                    ts: self.ts,
                    buf: 0,
                    input: 0,
                    link: LinkType::ETHERNET,
                    offset: bytes.len() as u32,
                    caplen: f.len() as u32,
                    orig_len: f.len() as u32,
                });
                bytes.extend_from_slice(f);
                self.packets += 1;
            }
        }
        if let Ok(mut s) = self.stats.lock() {
            *s = (self.packets, self.conv);
        }
        Some(FrameBatch {
            buffers: vec![Arc::new(bytes.into())],
            frames,
        })
    }

    fn inputs(&self) -> Vec<InputInfo> {
        vec![InputInfo {
            path: "synthetic".into(),
            format: "live".into(),
            ..InputInfo::default()
        }]
    }

    fn clock_hint(&self) -> Option<Ts> {
        Some(self.ts)
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    measure::exit_unless_benching();
    let total = env_u64("EXFLOW_SOAK_PACKETS", 40_000_000);
    let pps = env_u64("EXFLOW_SOAK_PPS", 5_000).max(1);
    let sample = env_u64("EXFLOW_SOAK_SAMPLE", 2_000_000).max(1);
    let threads = env_u64("EXFLOW_SOAK_THREADS", 2).max(1) as usize;

    let stats = Arc::new(std::sync::Mutex::new((0u64, 0u64)));
    let source = SynthLink {
        packets: 0,
        limit: total,
        ts: 1_795_000_000 * SECOND,
        gap: SECOND / pps,
        conv: 0,
        stats: Arc::clone(&stats),
    };
    let (tx, rx) = crossbeam_channel::bounded::<StreamMsg>(1024);
    // As `exflow live` (its --retain-flows default): ended flows kept for
    // the final report are capped, so memory stays flat.
    let retain = std::env::var("EXFLOW_SOAK_RETAIN")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1_000_000);
    let mut opts = Options {
        threads,
        stream: Some(tx),
        retain_flows: (retain > 0).then_some(retain),
        ..Options::default()
    };
    let correlator = LiveCorrelator::new(&opts.flow, &opts.correlate, io::sink());
    let counters = correlator.counters();
    let stream = std::thread::spawn(move || {
        let mut c = correlator;
        for m in rx {
            c.push(m);
        }
        c.finish().map(|_| ())
    });

    println!(
        "soak: {total} packets at {pps} packets/s of capture time ({:.1} h), --threads {threads}, default timeouts and caps",
        total as f64 / pps as f64 / 3600.0
    );
    println!(
        "{:>10} {:>12} {:>10} {:>14} {:>12} {:>10} {:>10}",
        "wall s", "packets", "capture h", "flows tracked", "flows ended", "records", "RSS MiB"
    );
    let started = Instant::now();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (stats, counters, done) =
            (Arc::clone(&stats), Arc::clone(&counters), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut next = sample;
            let mut rows = Vec::new();
            loop {
                let finished = done.load(Ordering::Relaxed);
                let (packets, convs) = stats.lock().map(|s| *s).unwrap_or_default();
                if packets >= next || finished {
                    next = packets + sample;
                    let tracked = counters.tracked.load(Ordering::Relaxed);
                    // Conversations are one flow each.
                    let ended = convs.saturating_sub(tracked);
                    let row = (
                        started.elapsed().as_secs_f64(),
                        packets,
                        packets as f64 / pps as f64 / 3600.0,
                        tracked,
                        ended,
                        counters.records.load(Ordering::Relaxed),
                        rss_kib() as f64 / 1024.0,
                    );
                    println!(
                        "{:>10.1} {:>12} {:>10.2} {:>14} {:>12} {:>10} {:>10.1}",
                        row.0, row.1, row.2, row.3, row.4, row.5, row.6
                    );
                    let _ = io::stdout().flush();
                    rows.push(row);
                }
                if finished {
                    return rows;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
    };
    let analysis = analysis::run(Box::new(source), &opts);
    opts.stream = None;
    done.store(true, Ordering::Relaxed);
    let rows = sampler.join().unwrap_or_default();
    stream.join().expect("stream thread").expect("stream");
    let mut sink = io::sink();
    exflow::report::write_json(&analysis, &mut sink).expect("report");

    // RSS growth per flow record kept for the final report, over the
    // second half (past warm-up).
    if rows.len() >= 4 {
        let a = rows[rows.len() / 2];
        let b = rows[rows.len() - 2];
        let per = (b.6 - a.6) * 1024.0 * 1024.0 / (b.4 as f64 - a.4 as f64).max(1.0);
        let peak_tracked = rows.iter().map(|r| r.3).max().unwrap_or(0);
        println!(
            "flows tracked at most {peak_tracked} (peak_flows_tracked {}); RSS grew {:.1} MiB over the second half while {} more flow records were kept for the final report: {per:.0} bytes per kept record",
            analysis.stats.flow.peak_tracked,
            b.6 - a.6,
            b.4 - a.4
        );
    }
    println!(
        "final report: {} flows, {} packets; records streamed: {}",
        analysis.flows.len(),
        analysis.stats.packets,
        counters.records.load(Ordering::Relaxed)
    );
}
