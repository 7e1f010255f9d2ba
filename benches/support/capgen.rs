//! Deterministic synthetic capture generator for the benchmarks.
//!
//! Frames (Ethernet II + IPv4 + TCP/UDP/ICMP) are built by the test kit's
//! `Frame` (testkit/) into a reused buffer and written by its `PcapWriter`
//! as classic pcap (microsecond timestamps) through a large `BufWriter`. IPv4
//! header checksums are valid; TCP/UDP checksums are zero (exflow, like
//! tshark by default, does not check them).
//!
//! Every flow is an event source in one time-ordered heap, so conversations
//! interleave the way they do on a real link and timestamps never go
//! backwards. A fixed-seed xorshift PRNG makes every file byte-identical
//! from run to run; the benches rely on that to reuse a file whose size
//! matches a dry run of the same profile.
//!
//! Addresses are documentation ranges (clients in 192.0.2.0/24 and
//! 198.51.100.0/24, servers in 203.0.113.0/24), except for the flow-heavy
//! profile, whose tens of thousands of clients and thousands of servers do
//! not fit there: clients in 10.0.0.0/8, servers in 172.16.0.0/12.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::binary_heap::PeekMut;
use std::collections::BinaryHeap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use exflow_testkit::tcp_flags::{
    ACK as TCP_ACK, FIN as TCP_FIN, PSH as TCP_PSH, RST as TCP_RST, SYN as TCP_SYN,
};
use exflow_testkit::{Frame, Link, PcapWriter};

/// Fingerprint of the generator's source (this file and the test kit's
/// frame builder and pcap writer), part of every generated file's name:
/// editing the generator can change bytes without changing the size, so a
/// file is reused only if it came from this exact source *and* has the size
/// a dry run predicts (which catches truncated or damaged files).
pub fn source_tag() -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a
    for source in [
        include_str!("capgen.rs"),
        include_str!("../../testkit/src/frame.rs"),
        include_str!("../../testkit/src/pcap.rs"),
    ] {
        for &b in source.as_bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{:08x}", h as u32 ^ (h >> 32) as u32)
}

/// 2024-01-01T00:00:00Z, in microseconds.
const BASE_US: u64 = 1_704_067_200 * 1_000_000;
const MS: u64 = 1_000;
const SEC: u64 = 1_000_000;

const PCAP_GLOBAL_HEADER_LEN: u64 = 24;
const PCAP_RECORD_HEADER_LEN: u64 = 16;
const WRITE_BUFFER: usize = 8 << 20;

// ---------------------------------------------------------------- profiles

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Realistic mixed traffic; stops opening new flows once `packets`
    /// frames were written and lets the open ones finish, so the file holds
    /// slightly more than `packets` frames.
    Mixed { packets: u64 },
    /// `flows` TCP connections that all open (SYN, SYN-ACK, ACK, one small
    /// request) within ~25 s and never close.
    ConcurrentFlows { flows: u64 },
    /// DCE/RPC-heavy traffic: endpoint-mapper conversations on TCP 135,
    /// each followed by a connection to the dynamic port it handed out
    /// (bind, then request/response calls, large responses fragmented), plus
    /// one conversation in three from the mixed profile. Stops opening
    /// sessions once `packets` frames were written, like `Mixed`.
    Dcerpc { packets: u64 },
    /// Many short flows (#20): about 9 packets per flow, so ≥ 1 M flows in
    /// 10 M packets; 40,000 clients and 4,000 servers; ≥ 15 % failed
    /// attempts (unanswered SYNs with their retries, resets, ICMP
    /// unreachables, unanswered DNS); one session in ten an endpoint-mapper
    /// conversation followed by the connection to the port it handed out.
    /// Stops opening sessions once `packets` frames were written.
    FlowHeavy { packets: u64 },
    /// `flows` single SYNs, never answered, each from its own source
    /// address (10.0.0.0/8) to one of 16 servers' TCP 445, spread evenly
    /// over 30 s: a flood or a spoofed scan, every SYN a flow (#20).
    SynFlood { flows: u64 },
}

impl Profile {
    /// `mixed-10000000-` or `concurrent-1000000-`: files of the same
    /// profile and size from other generator versions share this prefix.
    pub fn file_prefix(&self) -> String {
        match self {
            Profile::Mixed { packets } => format!("mixed-{packets}-"),
            Profile::ConcurrentFlows { flows } => format!("concurrent-{flows}-"),
            Profile::Dcerpc { packets } => format!("dcerpc-{packets}-"),
            Profile::FlowHeavy { packets } => format!("flowheavy-{packets}-"),
            Profile::SynFlood { flows } => format!("synflood-{flows}-"),
        }
    }

    pub fn file_name(&self) -> String {
        format!("{}{}.pcap", self.file_prefix(), source_tag())
    }

    pub fn describe(&self) -> String {
        match self {
            Profile::Mixed { packets } => format!("mixed (target {packets} packets)"),
            Profile::ConcurrentFlows { flows } => format!("concurrent-flows {flows}"),
            Profile::Dcerpc { packets } => format!("dcerpc (target {packets} packets)"),
            Profile::FlowHeavy { packets } => format!("flow-heavy (target {packets} packets)"),
            Profile::SynFlood { flows } => format!("syn-flood {flows}"),
        }
    }
}

/// What a generator run wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenSummary {
    pub packets: u64,
    /// Whole file, pcap headers included.
    pub file_bytes: u64,
    /// Sum of frame lengths (what was "on the wire").
    pub frame_bytes: u64,
    pub flows: u64,
    pub peak_active: u64,
    pub first_ts_us: u64,
    pub last_ts_us: u64,
    pub small: u64,
    pub medium: u64,
    pub large: u64,
}

impl GenSummary {
    pub fn print_mix(&self) {
        let p = self.packets.max(1) as f64 / 100.0;
        let other = self.packets - self.small - self.medium - self.large;
        eprintln!(
            "  {} packets, {:.2} GB, {} flows (at most {} open at once), {:.1} s of capture time; \
             sizes: {:.0}% 60-120 B, {:.0}% 121-600 B, {:.0}% 1514 B, {:.0}% other; avg {:.0} B/frame",
            self.packets,
            self.file_bytes as f64 / 1e9,
            self.flows,
            self.peak_active,
            (self.last_ts_us - self.first_ts_us) as f64 / 1e6,
            self.small as f64 / p,
            self.medium as f64 / p,
            self.large as f64 / p,
            other as f64 / p,
            self.frame_bytes as f64 / self.packets.max(1) as f64,
        );
    }
}

/// Runs the profile without writing anything: the exact packet and byte
/// counts the file would have (the generator is deterministic).
pub fn dry_run(profile: Profile) -> GenSummary {
    let mut out = PcapOut::new(io::sink()).expect("sink cannot fail");
    run(profile, &mut out).expect("sink cannot fail");
    out.summary
}

/// Returns the path of the profile's file under `dir`, generating it unless
/// a file of exactly the expected size is already there.
pub fn ensure(dir: &Path, profile: Profile) -> io::Result<(PathBuf, GenSummary)> {
    fs::create_dir_all(dir)?;
    let path = dir.join(profile.file_name());
    let t = Instant::now();
    let expected = dry_run(profile);
    let dry = t.elapsed();
    if fs::metadata(&path).map(|m| m.len()).ok() == Some(expected.file_bytes) {
        eprintln!(
            "reusing {} ({} packets, {:.2} GB; size matches a {:.1} s dry run)",
            path.display(),
            expected.packets,
            expected.file_bytes as f64 / 1e9,
            dry.as_secs_f64()
        );
        return Ok((path, expected));
    }
    // Files of this profile left by other generator versions are stale.
    let prefix = profile.file_prefix();
    for e in fs::read_dir(dir)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".pcap") && e.path() != path {
            eprintln!("removing stale {}", e.path().display());
            fs::remove_file(e.path())?;
        }
    }
    eprintln!("generating {} -> {}", profile.describe(), path.display());
    let (summary, secs) = generate(&path, profile)?;
    assert_eq!(summary, expected, "generator is not deterministic");
    eprintln!(
        "  wrote in {:.2} s ({:.0} MB/s, {:.1} M packets/s)",
        secs,
        summary.file_bytes as f64 / 1e6 / secs,
        summary.packets as f64 / 1e6 / secs
    );
    summary.print_mix();
    Ok((path, summary))
}

/// Writes the profile to `path` (via a temporary file and a rename, so an
/// interrupted run never leaves a plausible-looking partial file).
pub fn generate(path: &Path, profile: Profile) -> io::Result<(GenSummary, f64)> {
    let tmp = path.with_extension("pcap.tmp");
    let t = Instant::now();
    let file = File::create(&tmp)?;
    let mut out = PcapOut::new(BufWriter::with_capacity(WRITE_BUFFER, file))?;
    run(profile, &mut out)?;
    let summary = out.summary;
    let file = out
        .w
        .into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?;
    file.sync_data()?;
    drop(file);
    let secs = t.elapsed().as_secs_f64();
    fs::rename(&tmp, path)?;
    Ok((summary, secs))
}

/// The whole pcap file in memory (for self-checks on small captures).
pub fn generate_to_vec(profile: Profile) -> (Vec<u8>, GenSummary) {
    let mut out = PcapOut::new(Vec::new()).expect("a Vec cannot fail");
    run(profile, &mut out).expect("a Vec cannot fail");
    (out.w.into_inner().expect("a Vec cannot fail"), out.summary)
}

fn run<W: Write>(profile: Profile, out: &mut PcapOut<W>) -> io::Result<()> {
    let mut sim = Sim::new(profile);
    sim.run(out)?;
    out.summary.flows = sim.flows_started;
    out.summary.peak_active = sim.peak_active;
    Ok(())
}

// ---------------------------------------------------------------- PRNG

/// xorshift64* with a fixed seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() >> 32) * n) >> 32
    }

    /// Uniform in `lo..=hi`.
    #[inline]
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `per_mille / 1000`.
    #[inline]
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

// ---------------------------------------------------------------- frames

const ETH_LEN: usize = 14;
const IP_LEN: usize = 20;
const TCP_LEN: usize = 20;
const UDP_LEN: usize = 8;
const MAX_FRAME: usize = 1514;

const MAC_CLIENT_SIDE: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];
const MAC_SERVER_SIDE: [u8; 6] = [0x02, 0x00, 0x5e, 0x20, 0x00, 0x01];

/// Payload bytes: the same text for every packet, so payloads look alike
/// and no dissector mistakes leftovers of another packet for its protocol.
static FILLER: [u8; MAX_FRAME] = {
    let text = b"exflow synthetic benchmark payload; ";
    let mut f = [0u8; MAX_FRAME];
    let mut i = 0;
    while i < MAX_FRAME {
        f[i] = text[i % text.len()];
        i += 1;
    }
    f
};

/// The capture being written: each frame built by the test kit's
/// [`Frame`] into one reused buffer, written by its [`PcapWriter`].
pub struct PcapOut<W: Write> {
    w: PcapWriter<W>,
    frame: Vec<u8>,
    /// The payload of the frame being built.
    payload: Vec<u8>,
    pub summary: GenSummary,
}

/// One direction of a TCP/UDP conversation, as far as headers go.
#[derive(Clone, Copy)]
struct Hdr {
    src: u32,
    dst: u32,
    sport: u16,
    dport: u16,
    ttl: u8,
    ip_id: u16,
    /// Packet goes from the client side to the server side (picks MACs).
    outbound: bool,
}

impl Hdr {
    /// Ethernet (padded to its 60-byte minimum) and IPv4 (DF) headers of
    /// this direction. TCP/UDP checksums stay zero (exflow, like tshark
    /// by default, does not check them); the IPv4 and ICMP ones are valid.
    fn frame<'a>(&self) -> Frame<'a> {
        let (src_mac, dst_mac) = if self.outbound {
            (MAC_CLIENT_SIDE, MAC_SERVER_SIDE)
        } else {
            (MAC_SERVER_SIDE, MAC_CLIENT_SIDE)
        };
        Frame::ethernet()
            .macs(src_mac, dst_mac)
            .eth_pad(true)
            .ipv4(self.src.into(), self.dst.into())
            .df(true)
            .ip_id(self.ip_id)
            .ttl(self.ttl)
            .transport_checksum(false)
    }
}

impl<W: Write> PcapOut<W> {
    pub fn new(w: W) -> io::Result<PcapOut<W>> {
        Ok(PcapOut {
            w: PcapWriter::new(w, Link::Ethernet, 65535, false)?, // µs timestamps
            frame: Vec::with_capacity(2048),
            payload: Vec::with_capacity(2048),
            summary: GenSummary {
                file_bytes: PCAP_GLOBAL_HEADER_LEN,
                ..GenSummary::default()
            },
        })
    }

    /// A TCP segment with `payload` bytes (SYNs get the usual 20 bytes of
    /// options: MSS, SACK-permitted, timestamps, window scale).
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &mut self,
        ts_us: u64,
        h: &Hdr,
        flags: u8,
        seq: u32,
        ack: u32,
        payload: usize,
    ) -> io::Result<()> {
        self.tcp_with(ts_us, h, flags, seq, ack, payload, |p| {
            p.copy_from_slice(&FILLER[..p.len()])
        })
    }

    /// A TCP segment whose `payload` bytes `fill` writes.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn tcp_with(
        &mut self,
        ts_us: u64,
        h: &Hdr,
        flags: u8,
        seq: u32,
        ack: u32,
        payload: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> io::Result<()> {
        self.payload.resize(payload, 0);
        fill(&mut self.payload);
        let ack = if flags & TCP_ACK != 0 { ack } else { 0 };
        let mut opts = [0u8; 20];
        let syn = flags & TCP_SYN != 0;
        if syn {
            // MSS 1460, SACK permitted, timestamps, NOP, window scale 7.
            opts[..4].copy_from_slice(&[2, 4, 0x05, 0xb4]);
            opts[4..6].copy_from_slice(&[4, 2]);
            opts[6..8].copy_from_slice(&[8, 10]);
            opts[8..12].copy_from_slice(&(ts_us as u32).to_be_bytes());
            let echo = if flags & TCP_ACK != 0 { seq ^ ack } else { 0 };
            opts[12..16].copy_from_slice(&echo.to_be_bytes());
            opts[16..20].copy_from_slice(&[1, 3, 3, 7]);
        }
        self.frame.clear();
        h.frame()
            .tcp(h.sport, h.dport)
            .flags(flags)
            .seq(seq)
            .ack(ack)
            .window(if syn { 64240 } else { 502 })
            .tcp_options(if syn { &opts } else { &[] })
            .payload(&self.payload)
            .build_into(&mut self.frame);
        self.emit(ts_us)
    }

    /// A UDP datagram with `payload` bytes of filler.
    #[inline]
    fn udp(&mut self, ts_us: u64, h: &Hdr, payload: usize) -> io::Result<()> {
        self.frame.clear();
        h.frame()
            .udp(h.sport, h.dport)
            .payload(&FILLER[..payload])
            .build_into(&mut self.frame);
        self.emit(ts_us)
    }

    /// A well-formed DNS A query for `<label_len letters>.example.com`, or
    /// its response with `answers` A records (0 = the query itself).
    fn dns(
        &mut self,
        ts_us: u64,
        h: &Hdr,
        id: u16,
        label_len: usize,
        answers: usize,
    ) -> io::Result<()> {
        let b = &mut self.payload;
        b.clear();
        b.extend_from_slice(&id.to_be_bytes());
        let flags: u16 = if answers > 0 { 0x8180 } else { 0x0100 };
        b.extend_from_slice(&flags.to_be_bytes());
        b.extend_from_slice(&[0, 1, 0, answers as u8, 0, 0, 0, 0]);
        b.push(label_len as u8);
        b.extend((0..label_len).map(|i| b'a' + ((id as usize + i) % 26) as u8));
        b.extend_from_slice(b"\x07example\x03com\x00");
        b.extend_from_slice(&[0, 1, 0, 1]); // A, IN
        for a in 0..answers {
            // Name pointer to the question, A, IN, TTL 300, 4 bytes.
            b.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4]);
            b.extend_from_slice(&[203, 0, 113, 1 + ((id as usize + a) % 250) as u8]);
        }
        self.frame.clear();
        h.frame()
            .udp(h.sport, h.dport)
            .payload(&self.payload)
            .build_into(&mut self.frame);
        self.emit(ts_us)
    }

    /// ICMP destination unreachable (type 3, `code`) from `sender` to the
    /// client, quoting the IP header and first 8 bytes of the client's SYN.
    fn icmp_unreach(
        &mut self,
        ts_us: u64,
        sender: u32,
        syn: &Hdr,
        seq: u32,
        code: u8,
    ) -> io::Result<()> {
        let h = Hdr {
            src: sender,
            dst: syn.src,
            sport: 0,
            dport: 0,
            ttl: 254,
            ip_id: syn.ip_id ^ 0x5a5a,
            outbound: false,
        };
        // The quoted SYN as it left the client's side of the firewall (its
        // total length with the 20 bytes of options), one hop on.
        let sent = Frame::raw()
            .ipv4(syn.src.into(), syn.dst.into())
            .df(true)
            .ip_id(syn.ip_id)
            .ttl(syn.ttl - 1)
            .tcp(syn.sport, syn.dport)
            .flags(TCP_SYN)
            .seq(seq)
            .tcp_options(&[1; 20])
            .build_ip();
        self.frame.clear();
        h.frame()
            .icmp_unreachable(code, &sent[..IP_LEN + 8])
            .build_into(&mut self.frame);
        self.emit(ts_us)
    }

    /// Writes the frame built as one pcap record.
    #[inline]
    fn emit(&mut self, ts_us: u64) -> io::Result<()> {
        let len = self.frame.len();
        debug_assert!(len <= MAX_FRAME);
        self.w.write_packet(ts_us * 1_000, &self.frame)?;
        let s = &mut self.summary;
        if s.packets == 0 {
            s.first_ts_us = ts_us;
        }
        debug_assert!(ts_us >= s.last_ts_us, "timestamps must not go backwards");
        s.last_ts_us = ts_us;
        s.packets += 1;
        s.file_bytes += PCAP_RECORD_HEADER_LEN + len as u64;
        s.frame_bytes += len as u64;
        match len {
            60..=120 => s.small += 1,
            121..=600 => s.medium += 1,
            MAX_FRAME => s.large += 1,
            _ => {}
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- simulation

const fn ip(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

/// 508 client addresses: 192.0.2.1-254 and 198.51.100.1-254.
fn client_addr(i: u64) -> u32 {
    let i = i % 508;
    if i < 254 {
        ip(192, 0, 2, 1 + i as u8)
    } else {
        ip(198, 51, 100, 1 + (i - 254) as u8)
    }
}

/// FlowHeavy's clients (10.0.0.0/8) and servers (172.16.0.0/12, the
/// resolvers after them).
const HEAVY_CLIENTS: u64 = 40_000;
const HEAVY_SERVERS: u64 = 4_000;

fn heavy_client_addr(i: u64) -> u32 {
    ip(10, (i >> 16) as u8, (i >> 8) as u8, i as u8)
}

fn heavy_server_addr(i: u64) -> u32 {
    let (hi, lo) = (i / 254, i % 254);
    ip(172, 16 + (hi >> 8) as u8, hi as u8, 1 + lo as u8)
}

const FIREWALL: u32 = ip(203, 0, 113, 254);
const DNS_SERVERS: [u32; 2] = [ip(203, 0, 113, 53), ip(203, 0, 113, 54)];
/// Exchange / AD flavoured service ports, most popular first (weights below).
const TCP_PORTS: [(u16, u64); 10] = [
    (443, 400),
    (445, 120),
    (389, 90),
    (88, 80),
    (80, 70),
    (135, 60),
    (3268, 40),
    (25, 40),
    (993, 30),
    (5985, 30),
];
const EPHEMERAL_LO: u16 = 49152;

/// A service port drawn by the weights of [`TCP_PORTS`] (one draw).
fn weighted_port(r: &mut Rng) -> u16 {
    let mut w = r.below(1000);
    for &(p, pw) in &TCP_PORTS {
        if w < pw {
            return p;
        }
        w -= pw;
    }
    443
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Full conversation: handshake, request/response exchanges, FIN or RST.
    Tcp,
    /// SYN never answered: the original plus 2-4 retransmissions.
    TcpSynLost,
    /// SYN answered by RST-ACK.
    TcpRst,
    /// SYN (and maybe one retransmission) each answered by an ICMP
    /// destination unreachable (admin prohibited) from the firewall.
    TcpIcmp,
    /// Handshake plus one small request, then nothing until capture end.
    TcpHold,
    /// DNS query and (usually) response.
    Dns,
    /// One-way UDP stream between two ports > 1024.
    UdpStream,
    /// Endpoint-mapper conversation on TCP 135: bind, 1-2 ept_map calls.
    Epm,
    /// The connection to the port an `Epm` flow was handed: bind, calls.
    RpcApp,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    Syn,
    SynAck,
    HsAck,
    Request,
    Response,
    ClientAck,
    Fin1,
    Fin2,
    LastAck,
    Rst,
    Icmp,
    DnsQuery,
    DnsResponse,
    Stream,
    /// Next TCP segment of the DCE/RPC message in `Flow::msg`.
    RpcMsg,
    /// The receiver of the current DCE/RPC message acknowledges it.
    RpcAck,
}

#[derive(Clone, Copy)]
struct Flow {
    kind: Kind,
    stage: Stage,
    c: Hdr,
    s: Hdr,
    c_seq: u32,
    s_seq: u32,
    rtt_us: u32,
    /// Request/response rounds still to do (Tcp), retransmissions left
    /// (TcpSynLost/TcpIcmp), packets left (UdpStream).
    left: u32,
    /// Client segments left in the current request.
    req_left: u16,
    /// Server segments left in the current response.
    resp_left: u16,
    /// Server segments since the client last acknowledged.
    unacked: u8,
    /// Bulk response: full-size segments.
    bulk: bool,
    /// Frame size for UDP streams.
    size: u16,
    /// Gap between retransmissions / stream packets.
    gap_us: u32,
    /// Who closes: client FIN first, server FIN first, or client RST.
    close: u8,
    isn: u32,
    // DCE/RPC (Epm, RpcApp):
    /// Client index (for the follow-up connection's port).
    ci: u16,
    /// Index into RPC_IFACES.
    iface: u8,
    /// ept_map calls left (Epm).
    maps: u8,
    /// Tower address floor 0.0.0.0 (else the server's address).
    addr_zero: bool,
    /// Current message (M_*), bytes of it already sent.
    msg: u8,
    msg_off: u32,
    /// Stub length of the current request or response.
    stub: u32,
    call_id: u32,
    opnum: u16,
    /// Dynamic port handed out (Epm) / connected to (RpcApp).
    port: u16,
    /// FlowHeavy's short exchanges: one request segment, one response
    /// segment per round (the other profiles never set it, so their random
    /// draws, and bytes, stay as they were).
    short: bool,
}

struct Sim {
    profile: Profile,
    rng: Rng,
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    flows: Vec<Flow>,
    free: Vec<u32>,
    next_port: Vec<u16>,
    active: u64,
    peak_active: u64,
    flows_started: u64,
    spawning: bool,
    /// ConcurrentFlows: next flow index to open.
    next_flow: u64,
}

/// Heap key of the spawner event (opens the next flow on a fixed schedule).
const SPAWNER: u32 = u32::MAX;

impl Sim {
    fn new(profile: Profile) -> Sim {
        Sim {
            profile,
            rng: Rng::new(0x00e8_f10e_5eed_2024),
            heap: BinaryHeap::new(),
            flows: Vec::new(),
            free: Vec::new(),
            next_port: vec![
                EPHEMERAL_LO;
                match profile {
                    Profile::FlowHeavy { .. } => HEAVY_CLIENTS as usize,
                    _ => 508,
                }
            ],
            active: 0,
            peak_active: 0,
            flows_started: 0,
            spawning: true,
            next_flow: 0,
        }
    }

    fn run<W: Write>(&mut self, out: &mut PcapOut<W>) -> io::Result<()> {
        match self.profile {
            Profile::Mixed { packets } => {
                // Tens of thousands of conversations open at any time (fewer
                // for scaled-down quick runs, so the drain stays small).
                let concurrency = (packets / 300).clamp(500, 30_000);
                for _ in 0..concurrency {
                    let t = BASE_US + self.rng.below(2 * SEC);
                    self.open_mixed(t);
                }
            }
            Profile::ConcurrentFlows { .. } | Profile::SynFlood { .. } => {
                self.heap.push(Reverse((BASE_US, SPAWNER)));
            }
            Profile::FlowHeavy { packets } => {
                let concurrency = (packets / 300).clamp(500, 30_000);
                for _ in 0..concurrency {
                    let t = BASE_US + self.rng.below(2 * SEC);
                    self.open_heavy(t);
                }
            }
            Profile::Dcerpc { packets } => {
                // An RPC session (EPM then the application connection)
                // lasts ~0.5 s of capture time.
                let concurrency = (packets / 1000).clamp(100, 3000);
                for _ in 0..concurrency {
                    let t = BASE_US + self.rng.below(2 * SEC);
                    self.open_dcerpc(t);
                }
            }
        }
        loop {
            // The PeekMut must be gone before `self` is borrowed again.
            let (t, finished) = {
                let Some(mut top) = self.heap.peek_mut() else {
                    break;
                };
                let Reverse((t, slot)) = *top;
                if slot == SPAWNER {
                    PeekMut::pop(top);
                    (t, None)
                } else {
                    match step(&mut self.flows[slot as usize], &mut self.rng, t, out)? {
                        Some(nt) => {
                            *top = Reverse((nt, slot));
                            continue;
                        }
                        None => {
                            PeekMut::pop(top);
                            (t, Some(slot))
                        }
                    }
                }
            };
            let Some(slot) = finished else {
                self.spawner(t);
                continue;
            };
            self.free.push(slot);
            let done = self.flows[slot as usize];
            // A held flow stays open in the capture; only its events end.
            if done.kind != Kind::TcpHold {
                self.active -= 1;
            }
            match self.profile {
                Profile::Mixed { packets } => {
                    if out.summary.packets >= packets {
                        self.spawning = false;
                    }
                    if self.spawning {
                        // The next conversation starts shortly after.
                        let t2 = t + self.rng.below(2 * MS);
                        self.open_mixed(t2);
                    }
                }
                Profile::Dcerpc { .. } if done.kind == Kind::Epm => {
                    // The client connects to the port it was handed (even
                    // after the packet target: every hand-off is followed).
                    let t2 = t + self.rng.range(200, 3 * MS);
                    self.open_rpc_app(t2, &done, (5, 50));
                }
                Profile::FlowHeavy { .. } if done.kind == Kind::Epm => {
                    let t2 = t + self.rng.range(200, 3 * MS);
                    self.open_rpc_app(t2, &done, (1, 3));
                }
                Profile::FlowHeavy { packets } => {
                    if out.summary.packets >= packets {
                        self.spawning = false;
                    }
                    if self.spawning {
                        let t2 = t + self.rng.below(2 * MS);
                        self.open_heavy(t2);
                    }
                }
                Profile::Dcerpc { packets } => {
                    if out.summary.packets >= packets {
                        self.spawning = false;
                    }
                    if self.spawning {
                        let t2 = t + self.rng.below(2 * MS);
                        self.open_dcerpc(t2);
                    }
                }
                Profile::ConcurrentFlows { .. } | Profile::SynFlood { .. } => {}
            }
        }
        Ok(())
    }

    /// ConcurrentFlows, SynFlood: opens flow `next_flow` at `t` and
    /// reschedules.
    fn spawner(&mut self, t: u64) {
        if let Profile::SynFlood { flows } = self.profile {
            let i = self.next_flow;
            self.next_flow += 1;
            let rtt = self.rng.range(200, 20 * MS) as u32;
            let s = heavy_server_addr(i % 16);
            let mut f = self.new_tcp(Kind::TcpSynLost, heavy_client_addr(i), 40000, s, 445, rtt);
            f.left = 0;
            self.add(t, f);
            if self.next_flow < flows {
                let next =
                    BASE_US + (self.next_flow as u128 * 30 * SEC as u128 / flows as u128) as u64;
                self.heap.push(Reverse((next.max(t), SPAWNER)));
            }
            return;
        }
        let Profile::ConcurrentFlows { flows } = self.profile else {
            unreachable!()
        };
        let i = self.next_flow;
        self.next_flow += 1;
        // Client i % 508 with port 32768 + i / 508: unique 5-tuples for up to
        // 16 M flows, so no flow ever reuses another's tuple.
        let c = client_addr(i);
        let cport = 32768 + ((i / 508) % 32768) as u16;
        let s = ip(203, 0, 113, 1 + ((i / 508) % 200) as u8);
        let sport = TCP_PORTS[(i % 4) as usize].0;
        let rtt = self.rng.range(200, 20 * MS) as u32;
        let flow = self.new_tcp(Kind::TcpHold, c, cport, s, sport, rtt);
        self.add(t, flow);
        if self.next_flow < flows {
            // All flows open within 25 s: far below every idle timeout.
            let next = BASE_US + (self.next_flow as u128 * 25 * SEC as u128 / flows as u128) as u64;
            self.heap.push(Reverse((next.max(t), SPAWNER)));
        }
    }

    fn add(&mut self, t: u64, flow: Flow) {
        let slot = match self.free.pop() {
            Some(s) => {
                self.flows[s as usize] = flow;
                s
            }
            None => {
                self.flows.push(flow);
                (self.flows.len() - 1) as u32
            }
        };
        self.heap.push(Reverse((t, slot)));
        self.active += 1;
        self.flows_started += 1;
        self.peak_active = self.peak_active.max(self.active);
    }

    fn alloc_port(&mut self, client: u64) -> u16 {
        let p = &mut self.next_port[client as usize];
        let port = *p;
        *p = if *p == u16::MAX { EPHEMERAL_LO } else { *p + 1 };
        port
    }

    fn new_tcp(&mut self, kind: Kind, c: u32, cport: u16, s: u32, sport: u16, rtt: u32) -> Flow {
        let r = &mut self.rng;
        let c_ttl = if r.chance(500) { 128 } else { 64 };
        let s_ttl = [128u8, 64, 255][r.below(3) as usize] - r.below(8) as u8;
        let c_seq = r.next_u64() as u32;
        let s_seq = r.next_u64() as u32;
        let c_id = r.next_u64() as u16;
        let s_id = r.next_u64() as u16;
        Flow {
            kind,
            stage: Stage::Syn,
            c: Hdr {
                src: c,
                dst: s,
                sport: cport,
                dport: sport,
                ttl: c_ttl,
                ip_id: c_id,
                outbound: true,
            },
            s: Hdr {
                src: s,
                dst: c,
                sport,
                dport: cport,
                ttl: s_ttl,
                ip_id: s_id,
                outbound: false,
            },
            c_seq,
            s_seq,
            rtt_us: rtt,
            left: 0,
            req_left: 0,
            resp_left: 0,
            unacked: 0,
            bulk: false,
            size: 0,
            gap_us: 0,
            close: 0,
            isn: c_seq,
            ci: 0,
            iface: 0,
            maps: 0,
            addr_zero: false,
            msg: 0,
            msg_off: 0,
            stub: 0,
            call_id: 1,
            opnum: 0,
            port: 0,
            short: false,
        }
    }

    /// Dcerpc: opens one session at `t`: an endpoint-mapper conversation
    /// (whose end opens the application connection), or one time in three
    /// a conversation of the mixed profile.
    fn open_dcerpc(&mut self, t: u64) {
        if self.rng.below(3) == 0 {
            self.open_mixed(t);
            return;
        }
        let r = &mut self.rng;
        let ci = r.below(508);
        let c = client_addr(ci);
        let rtt = match r.below(10) {
            0..=6 => r.range(150, 2 * MS),
            _ => r.range(2 * MS, 30 * MS),
        } as u32;
        let srv = 10 + r.below(20) as u8;
        let iface = r.below(RPC_IFACES.len() as u64) as u8;
        let maps = if r.chance(300) { 2 } else { 1 };
        let addr_zero = r.chance(500);
        let cport = self.alloc_port(ci);
        let mut f = self.new_tcp(Kind::Epm, c, cport, ip(203, 0, 113, srv), 135, rtt);
        f.ci = ci as u16;
        f.iface = iface;
        f.maps = maps;
        f.addr_zero = addr_zero;
        // A server registers each interface on one dynamic port.
        f.port = 49152 + ((srv as u32 * 7919 + iface as u32 * 104_729) % 16384) as u16;
        self.add(t, f);
    }

    /// Dcerpc: the connection from `epm`'s client to the port it was handed.
    /// `calls`: the range of request/response rounds.
    fn open_rpc_app(&mut self, t: u64, epm: &Flow, calls: (u64, u64)) {
        let cport = self.alloc_port(epm.ci as u64);
        let mut f = self.new_tcp(
            Kind::RpcApp,
            epm.c.src,
            cport,
            epm.c.dst,
            epm.port,
            epm.rtt_us,
        );
        f.ci = epm.ci;
        f.iface = epm.iface;
        f.port = epm.port;
        f.left = self.rng.range(calls.0, calls.1) as u32;
        f.close = self.rng.below(2) as u8;
        self.add(t, f);
    }

    /// FlowHeavy: opens one session at `t` (see [`Profile::FlowHeavy`]).
    fn open_heavy(&mut self, t: u64) {
        let r = &mut self.rng;
        let ci = r.below(HEAVY_CLIENTS);
        let c = heavy_client_addr(ci);
        let rtt = match r.below(10) {
            0..=5 => r.range(150, 2 * MS),
            6..=8 => r.range(2 * MS, 30 * MS),
            _ => r.range(30 * MS, 150 * MS),
        } as u32;
        let srv = r.below(HEAVY_SERVERS);
        let s = heavy_server_addr(srv);
        let roll = r.below(1000);
        let flow = if roll < 100 {
            // An endpoint-mapper conversation; its end opens the follow-up.
            let iface = r.below(RPC_IFACES.len() as u64) as u8;
            let addr_zero = r.chance(500);
            let cport = self.alloc_port(ci);
            let mut f = self.new_tcp(Kind::Epm, c, cport, s, 135, rtt);
            f.ci = ci as u16;
            f.iface = iface;
            f.maps = 1;
            f.addr_zero = addr_zero;
            f.port = 49152 + ((srv as u32 * 7919 + iface as u32 * 104_729) % 16384) as u16;
            f
        } else if roll < 880 {
            // TCP: 17 % of these fail (unanswered, reset, ICMP), the rest
            // one to three request/response rounds.
            let sport = weighted_port(r);
            let kind = match r.below(1000) {
                0..=99 => Kind::TcpSynLost,
                100..=139 => Kind::TcpRst,
                140..=169 => Kind::TcpIcmp,
                _ => Kind::Tcp,
            };
            let cport = self.alloc_port(ci);
            let mut f = self.new_tcp(kind, c, cport, s, sport, rtt);
            let r = &mut self.rng;
            match kind {
                Kind::TcpSynLost => {
                    f.left = r.range(1, 2) as u32;
                    f.gap_us = SEC as u32;
                }
                Kind::TcpIcmp => f.left = r.below(2) as u32,
                Kind::Tcp => {
                    f.short = true;
                    f.left = if r.chance(800) { 1 } else { r.range(2, 3) } as u32;
                    f.close = match r.below(100) {
                        0..=59 => 0,
                        60..=91 => 1,
                        _ => 2,
                    };
                }
                _ => {}
            }
            f
        } else {
            // DNS to one of 16 resolvers; 3 % unanswered.
            let d = heavy_server_addr(HEAVY_SERVERS + r.below(16));
            let cport = self.alloc_port(ci);
            let mut f = self.new_tcp(Kind::Dns, c, cport, d, 53, rtt.min(5 * MS as u32));
            f.stage = Stage::DnsQuery;
            f.left = self.rng.range(0, 999) as u32;
            if self.rng.chance(30) {
                f.left = 0;
            }
            f
        };
        self.add(t, flow);
    }

    /// Opens one conversation of the mixed profile at `t`.
    fn open_mixed(&mut self, t: u64) {
        let r = &mut self.rng;
        let ci = r.below(508);
        let c = client_addr(ci);
        let roll = r.below(1000);
        // RTT: mostly LAN/metro, some WAN.
        let rtt = match r.below(10) {
            0..=4 => r.range(150, 2 * MS),
            5..=8 => r.range(2 * MS, 30 * MS),
            _ => r.range(30 * MS, 150 * MS),
        } as u32;
        let flow = if roll < 700 {
            // TCP: ~5% SYN unanswered, ~2% RST, ~1% ICMP, rest complete.
            let sport = weighted_port(r);
            let s = ip(
                203,
                0,
                113,
                1 + r.below(40) as u8 + if r.chance(300) { 40 } else { 0 },
            );
            let sub = r.below(1000);
            let kind = match sub {
                0..=49 => Kind::TcpSynLost,
                50..=69 => Kind::TcpRst,
                70..=79 => Kind::TcpIcmp,
                _ => Kind::Tcp,
            };
            let cport = self.alloc_port(ci);
            let mut f = self.new_tcp(kind, c, cport, s, sport, rtt);
            let r = &mut self.rng;
            match kind {
                Kind::TcpSynLost => {
                    f.left = r.range(2, 4) as u32;
                    f.gap_us = SEC as u32;
                }
                Kind::TcpIcmp => f.left = r.below(2) as u32,
                Kind::Tcp => {
                    f.left = match r.below(10) {
                        0..=5 => 1,
                        6..=8 => r.range(2, 4),
                        _ => r.range(5, 12),
                    } as u32;
                    f.close = match r.below(100) {
                        0..=59 => 0,  // client FIN first
                        60..=91 => 1, // server FIN first
                        _ => 2,       // client RST
                    };
                }
                _ => {}
            }
            f
        } else if roll < 995 {
            let s = DNS_SERVERS[r.below(2) as usize];
            let cport = self.alloc_port(ci);
            let mut f = self.new_tcp(Kind::Dns, c, cport, s, 53, rtt.min(5 * MS as u32));
            f.stage = Stage::DnsQuery;
            f.left = self.rng.below(1000) as u32; // < 20 => unanswered
            f
        } else {
            let s = ip(203, 0, 113, 100 + r.below(20) as u8);
            // Ports no dissector claims, both > 1024.
            let cport = 30000 + r.below(10000) as u16;
            let sport = 40000 + r.below(1000) as u16;
            let size = r.range(172, 400) as u16;
            let mut f = self.new_tcp(Kind::UdpStream, c, cport, s, sport, rtt);
            f.stage = Stage::Stream;
            f.left = self.rng.range(50, 300) as u32;
            f.size = size;
            f.gap_us = 20 * MS as u32;
            f
        };
        self.add(t, flow);
    }
}

/// Frame size for a data segment of a normal TCP conversation.
fn data_frame_size(r: &mut Rng, bulk: bool, from_server: bool) -> usize {
    if bulk {
        return MAX_FRAME;
    }
    match r.below(100) {
        0..=59 => r.range(66, 120) as usize,
        60..=88 => r.range(200, 600) as usize,
        89..=92 if from_server => MAX_FRAME,
        _ => r.range(601, 1400) as usize,
    }
}

const HDRS: usize = ETH_LEN + IP_LEN + TCP_LEN;

/// Emits the flow's next packet at `t` and returns when the one after is
/// due, or `None` when the flow is finished.
fn step<W: Write>(
    f: &mut Flow,
    r: &mut Rng,
    t: u64,
    out: &mut PcapOut<W>,
) -> io::Result<Option<u64>> {
    let rtt = f.rtt_us as u64;
    let small = || 20 + (t % 60); // client processing delay, µs
    f.c.ip_id = f.c.ip_id.wrapping_add(1);
    f.s.ip_id = f.s.ip_id.wrapping_add(1);
    let next = match f.stage {
        Stage::Syn => {
            let c = f.c;
            out.tcp(t, &c, TCP_SYN, f.isn, 0, 0)?;
            match f.kind {
                Kind::TcpSynLost => {
                    if f.left == 0 {
                        return Ok(None);
                    }
                    f.left -= 1;
                    let gap = f.gap_us as u64;
                    f.gap_us *= 2; // 1 s, 2 s, 4 s, 8 s
                    Some(t + gap)
                }
                Kind::TcpRst => {
                    f.stage = Stage::Rst;
                    Some(t + rtt)
                }
                Kind::TcpIcmp => {
                    f.stage = Stage::Icmp;
                    Some(t + rtt / 2)
                }
                _ => {
                    f.c_seq = f.isn.wrapping_add(1);
                    f.stage = Stage::SynAck;
                    Some(t + rtt)
                }
            }
        }
        Stage::SynAck => {
            let s = f.s;
            out.tcp(t, &s, TCP_SYN | TCP_ACK, f.s_seq, f.c_seq, 0)?;
            f.s_seq = f.s_seq.wrapping_add(1);
            f.stage = Stage::HsAck;
            Some(t + small())
        }
        Stage::HsAck => {
            let c = f.c;
            out.tcp(t, &c, TCP_ACK, f.c_seq, f.s_seq, 0)?;
            if matches!(f.kind, Kind::Epm | Kind::RpcApp) {
                f.stage = Stage::RpcMsg;
                f.msg = M_BIND;
                f.msg_off = 0;
                f.unacked = 0;
                return Ok(Some(t + small()));
            }
            f.stage = Stage::Request;
            f.req_left = if f.kind == Kind::TcpHold || f.short {
                1
            } else {
                r.range(1, 2) as u16
            };
            Some(t + small())
        }
        Stage::Request => {
            let size = if f.kind == Kind::TcpHold {
                100
            } else {
                data_frame_size(r, false, false).min(600)
            };
            let c = f.c;
            out.tcp(t, &c, TCP_ACK | TCP_PSH, f.c_seq, f.s_seq, size - HDRS)?;
            f.c_seq = f.c_seq.wrapping_add((size - HDRS) as u32);
            f.req_left -= 1;
            if f.kind == Kind::TcpHold {
                // Held open: nothing more until the capture ends.
                return Ok(None);
            }
            if f.req_left > 0 {
                Some(t + small())
            } else {
                f.stage = Stage::Response;
                f.bulk = !f.short && r.chance(15);
                f.resp_left = if f.short {
                    1
                } else if f.bulk {
                    r.range(8, 40) as u16
                } else {
                    r.range(1, 6) as u16
                };
                f.unacked = 0;
                // Server think time plus one RTT.
                Some(t + rtt + r.range(50, 3 * MS))
            }
        }
        Stage::Response => {
            let size = data_frame_size(r, f.bulk, true);
            let s = f.s;
            out.tcp(t, &s, TCP_ACK | TCP_PSH, f.s_seq, f.c_seq, size - HDRS)?;
            f.s_seq = f.s_seq.wrapping_add((size - HDRS) as u32);
            f.resp_left -= 1;
            f.unacked += 1;
            if f.unacked == 2 || f.resp_left == 0 {
                f.stage = Stage::ClientAck;
                Some(t + small())
            } else {
                // Back-to-back segments (serialization at ~1 Gbit/s or so).
                Some(t + (size as u64 / 100).max(2))
            }
        }
        Stage::ClientAck => {
            let c = f.c;
            out.tcp(t, &c, TCP_ACK, f.c_seq, f.s_seq, 0)?;
            f.unacked = 0;
            if f.resp_left > 0 {
                f.stage = Stage::Response;
                Some(t + 5)
            } else {
                f.left -= 1;
                if f.left > 0 {
                    f.stage = Stage::Request;
                    f.req_left = if f.short { 1 } else { r.range(1, 2) as u16 };
                    // Think time between requests.
                    Some(t + r.range(5 * MS, 400 * MS))
                } else {
                    f.stage = if f.close == 2 {
                        Stage::Rst
                    } else {
                        Stage::Fin1
                    };
                    Some(t + r.range(MS, 200 * MS))
                }
            }
        }
        Stage::Fin1 => {
            // close 0: client FIN first; 1: server FIN first.
            if f.close == 0 {
                let c = f.c;
                out.tcp(t, &c, TCP_FIN | TCP_ACK, f.c_seq, f.s_seq, 0)?;
                f.c_seq = f.c_seq.wrapping_add(1);
            } else {
                let s = f.s;
                out.tcp(t, &s, TCP_FIN | TCP_ACK, f.s_seq, f.c_seq, 0)?;
                f.s_seq = f.s_seq.wrapping_add(1);
            }
            f.stage = Stage::Fin2;
            Some(t + rtt)
        }
        Stage::Fin2 => {
            if f.close == 0 {
                let s = f.s;
                out.tcp(t, &s, TCP_FIN | TCP_ACK, f.s_seq, f.c_seq, 0)?;
                f.s_seq = f.s_seq.wrapping_add(1);
            } else {
                let c = f.c;
                out.tcp(t, &c, TCP_FIN | TCP_ACK, f.c_seq, f.s_seq, 0)?;
                f.c_seq = f.c_seq.wrapping_add(1);
            }
            f.stage = Stage::LastAck;
            Some(t + if f.close == 0 { small() } else { rtt })
        }
        Stage::LastAck => {
            if f.close == 0 {
                let c = f.c;
                out.tcp(t, &c, TCP_ACK, f.c_seq, f.s_seq, 0)?;
            } else {
                let s = f.s;
                out.tcp(t, &s, TCP_ACK, f.s_seq, f.c_seq, 0)?;
            }
            None
        }
        Stage::Rst => {
            if f.kind == Kind::TcpRst {
                // Refused: RST-ACK from the server.
                let s = f.s;
                out.tcp(t, &s, TCP_RST | TCP_ACK, 0, f.isn.wrapping_add(1), 0)?;
            } else {
                // Client aborts an established connection.
                let c = f.c;
                out.tcp(t, &c, TCP_RST | TCP_ACK, f.c_seq, f.s_seq, 0)?;
            }
            None
        }
        Stage::Icmp => {
            let c = f.c;
            out.icmp_unreach(t, FIREWALL, &c, f.isn, 13)?;
            if f.left == 0 {
                return Ok(None);
            }
            f.left -= 1;
            f.stage = Stage::Syn;
            Some(t + SEC - rtt / 2)
        }
        Stage::DnsQuery => {
            let c = f.c;
            // Label length in `size`, so the response repeats the question.
            f.size = r.range(3, 40) as u16;
            out.dns(t, &c, f.isn as u16, f.size as usize, 0)?;
            if f.left < 20 {
                return Ok(None); // unanswered
            }
            f.stage = Stage::DnsResponse;
            Some(t + rtt)
        }
        Stage::DnsResponse => {
            let s = f.s;
            out.dns(t, &s, f.isn as u16, f.size as usize, r.range(1, 8) as usize)?;
            None
        }
        Stage::Stream => {
            let c = f.c;
            out.udp(t, &c, f.size as usize - (ETH_LEN + IP_LEN + UDP_LEN))?;
            f.left -= 1;
            if f.left == 0 {
                return Ok(None);
            }
            Some(t + f.gap_us as u64 + (t % 500))
        }
        Stage::RpcMsg => {
            let len = rpc_msg_len(f);
            let off = f.msg_off;
            let seg = (len - off).min(MSS);
            let last = off + seg == len;
            let flags = TCP_ACK | if last { TCP_PSH } else { 0 };
            let snap = *f;
            let fill = |p: &mut [u8]| rpc_msg_write(&snap, off as usize, p);
            if msg_from_client(f.msg) {
                let c = f.c;
                out.tcp_with(t, &c, flags, f.c_seq, f.s_seq, seg as usize, fill)?;
                f.c_seq = f.c_seq.wrapping_add(seg);
            } else {
                let s = f.s;
                out.tcp_with(t, &s, flags, f.s_seq, f.c_seq, seg as usize, fill)?;
                f.s_seq = f.s_seq.wrapping_add(seg);
            }
            f.msg_off += seg;
            f.unacked += 1;
            if last {
                if f.msg == M_RESP {
                    // Delayed ACK of the response's tail.
                    f.stage = Stage::RpcAck;
                    Some(t + small())
                } else {
                    Some(rpc_next(f, r, t))
                }
            } else if f.unacked == 2 {
                f.stage = Stage::RpcAck;
                Some(t + small())
            } else {
                // Back-to-back segments.
                Some(t + (seg as u64 / 100).max(2))
            }
        }
        Stage::RpcAck => {
            // The receiver of the current message acknowledges it.
            if msg_from_client(f.msg) {
                let s = f.s;
                out.tcp(t, &s, TCP_ACK, f.s_seq, f.c_seq, 0)?;
            } else {
                let c = f.c;
                out.tcp(t, &c, TCP_ACK, f.c_seq, f.s_seq, 0)?;
            }
            f.unacked = 0;
            if f.msg_off == rpc_msg_len(f) {
                Some(rpc_next(f, r, t))
            } else {
                f.stage = Stage::RpcMsg;
                Some(t + 5)
            }
        }
    };
    Ok(next)
}

// ---------------------------------------------------------------- DCE/RPC

/// TCP payload per segment (1514-byte frames).
const MSS: u32 = (MAX_FRAME - HDRS) as u32;

// The DCE/RPC messages of the dcerpc profile (one call's request or
// response may be several PDUs: fragments).
const M_BIND: u8 = 0;
const M_BIND_ACK: u8 = 1;
const M_MAP_REQ: u8 = 2;
const M_MAP_RESP: u8 = 3;
const M_REQ: u8 = 4;
const M_RESP: u8 = 5;

/// Largest PDU on application connections (max_xmit_frag = max_recv_frag
/// in bind and bind_ack, as Windows negotiates): larger responses are sent
/// as several fragments.
const RPC_MAX_FRAG: u16 = 4280;
/// Size of every fragment but the last: header, 4224 stub bytes (a
/// multiple of 16, so no pad), auth trailer.
const RPC_FRAG: u32 = 4272;
const RPC_FRAG_STUB: u32 = RPC_FRAG - 24 - TRAILER_LEN as u32;
/// Max PDU size the endpoint-mapper bind offers (protocols.md Example 1).
const EPM_FRAG: u16 = 5840;

/// A UUID in little-endian wire order (Data1-3 LE, Data4 verbatim).
const fn uuid_le(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> [u8; 16] {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5],
        d4[6], d4[7],
    ]
}

struct RpcIface {
    uuid: [u8; 16],
    major: u16,
    minor: u16,
    opnums: &'static [u16],
}

/// Exchange / AD interfaces the clients map and then call.
const RPC_IFACES: [RpcIface; 4] = [
    // NSPI (Exchange address book) v56.0: NspiBind, NspiQueryRows,
    // NspiGetMatches, NspiDNToMId.
    RpcIface {
        uuid: uuid_le(
            0xf5cc5a18,
            0x4264,
            0x101a,
            [0x8c, 0x59, 0x08, 0x00, 0x2b, 0x2f, 0x84, 0x26],
        ),
        major: 56,
        minor: 0,
        opnums: &[0, 3, 5, 7],
    },
    // EMSMDB v0.81: EcDoConnectEx, EcDoRpcExt2, EcDoDisconnect.
    RpcIface {
        uuid: uuid_le(
            0xa4f1db00,
            0xca47,
            0x1067,
            [0xb3, 0x1f, 0x00, 0xdd, 0x01, 0x06, 0x62, 0xda],
        ),
        major: 0,
        minor: 81,
        opnums: &[10, 11, 11, 11, 1],
    },
    // DRSUAPI v4.0: IDL_DRSBind, IDL_DRSGetNCChanges, IDL_DRSCrackNames.
    RpcIface {
        uuid: uuid_le(
            0xe3514235,
            0x4b06,
            0x11d1,
            [0xab, 0x04, 0x00, 0xc0, 0x4f, 0xc2, 0xdc, 0xd2],
        ),
        major: 4,
        minor: 0,
        opnums: &[0, 3, 12],
    },
    // NETLOGON v1.0: NetrServerReqChallenge, NetrServerAuthenticate3,
    // NetrLogonGetDomainInfo.
    RpcIface {
        uuid: uuid_le(
            0x12345678,
            0x1234,
            0xabcd,
            [0xef, 0x00, 0x01, 0x23, 0x45, 0x67, 0xcf, 0xfb],
        ),
        major: 1,
        minor: 0,
        opnums: &[4, 26, 29],
    },
];

const NDR20: [u8; 20] = [
    0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, 0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60,
    2, 0, 0, 0,
];
const EPM_UUID: [u8; 16] = uuid_le(
    0xe1af8308,
    0x5d1f,
    0x11c9,
    [0x91, 0xa4, 0x08, 0x00, 0x2b, 0x14, 0xa0, 0xfa],
);

/// protocols.md Example 5 (ept_map request for NSPI, 156 bytes); the
/// interface floor and call_id are patched per call.
const EPT_MAP_REQ: [u8; 156] = [
    0x05, 0x00, 0x00, 0x03, 0x10, 0x00, 0x00, 0x00, 0x9c, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x84, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
    0x4b, 0x00, 0x00, 0x00, 0x4b, 0x00, 0x00, 0x00, 0x05, 0x00, 0x13, 0x00, 0x0d, 0x18, 0x5a, 0xcc,
    0xf5, 0x64, 0x42, 0x1a, 0x10, 0x8c, 0x59, 0x08, 0x00, 0x2b, 0x2f, 0x84, 0x26, 0x38, 0x00, 0x02,
    0x00, 0x00, 0x00, 0x13, 0x00, 0x0d, 0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, 0x9f, 0xe8,
    0x08, 0x00, 0x2b, 0x10, 0x48, 0x60, 0x02, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x0b, 0x02,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x07, 0x02, 0x00, 0x00, 0x87, 0x01, 0x00, 0x09, 0x04, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
];

/// protocols.md Example 6 (ept_map response, one TCP tower, 152 bytes);
/// interface floor, port, address and call_id are patched per call.
const EPT_MAP_RESP: [u8; 152] = [
    0x05, 0x00, 0x02, 0x03, 0x10, 0x00, 0x00, 0x00, 0x98, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
    0x4b, 0x00, 0x00, 0x00, 0x4b, 0x00, 0x00, 0x00, 0x05, 0x00, 0x13, 0x00, 0x0d, 0x18, 0x5a, 0xcc,
    0xf5, 0x64, 0x42, 0x1a, 0x10, 0x8c, 0x59, 0x08, 0x00, 0x2b, 0x2f, 0x84, 0x26, 0x38, 0x00, 0x02,
    0x00, 0x00, 0x00, 0x13, 0x00, 0x0d, 0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, 0x9f, 0xe8,
    0x08, 0x00, 0x2b, 0x10, 0x48, 0x60, 0x02, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x0b, 0x02,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x07, 0x02, 0x00, 0x13, 0x85, 0x01, 0x00, 0x09, 0x04, 0x00, 0xc0,
    0xa8, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// Stub content: 8 KiB from the PRNG (a stub slice starts anywhere in the
/// first 4 KiB, and no slice is longer than a segment).
static STUB_BYTES: [u8; 8192] = {
    let mut b = [0u8; 8192];
    let mut x: u64 = 0x0005_eedd_ce4c_0de5;
    let mut i = 0;
    while i < 8192 {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        b[i] = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8;
        i += 1;
    }
    b
};

fn msg_from_client(msg: u8) -> bool {
    matches!(msg, M_BIND | M_MAP_REQ | M_REQ)
}

/// ASCII decimal of `port` (bind_ack's sec_addr), without the NUL.
fn port_digits(port: u16, out: &mut [u8; 5]) -> usize {
    let s = port.to_string();
    out[..s.len()].copy_from_slice(s.as_bytes());
    s.len()
}

/// Offset of bind_ack's n_results: sec_addr (length + string + NUL) padded
/// to 4 from the start of the PDU.
fn bind_ack_results_at(f: &Flow) -> usize {
    let digits = if f.kind == Kind::Epm {
        3
    } else {
        port_digits(f.port, &mut [0; 5])
    };
    (26 + digits + 1).next_multiple_of(4)
}

fn resp_frags(stub: u32) -> u32 {
    stub.div_ceil(RPC_FRAG_STUB).max(1)
}

/// Bytes of the flow's current message (all fragments).
fn rpc_msg_len(f: &Flow) -> u32 {
    match f.msg {
        M_BIND => 72,
        M_BIND_ACK => bind_ack_results_at(f) as u32 + 28,
        M_MAP_REQ => EPT_MAP_REQ.len() as u32,
        M_MAP_RESP => EPT_MAP_RESP.len() as u32,
        _ => frags_len(f.stub),
    }
}

/// The 16-byte common header: v5.0, little-endian drep.
fn co_header(b: &mut [u8], ptype: u8, flags: u8, frag_len: u32, call_id: u32) {
    b[..8].copy_from_slice(&[5, 0, ptype, flags, 0x10, 0, 0, 0]);
    b[8..10].copy_from_slice(&(frag_len as u16).to_le_bytes());
    b[10..12].fill(0);
    b[12..16].copy_from_slice(&call_id.to_le_bytes());
}

/// Writes bytes `off..off + dst.len()` of the flow's current message.
fn rpc_msg_write(f: &Flow, off: usize, dst: &mut [u8]) {
    let ifc = &RPC_IFACES[f.iface as usize];
    let mut small = [0u8; 160];
    let len = match f.msg {
        M_BIND => {
            let b = &mut small;
            co_header(b, 11, 3, 72, f.call_id);
            let frag = if f.kind == Kind::Epm {
                EPM_FRAG
            } else {
                RPC_MAX_FRAG
            };
            b[16..18].copy_from_slice(&frag.to_le_bytes());
            b[18..20].copy_from_slice(&frag.to_le_bytes());
            b[20..24].fill(0); // new association
            b[24..28].copy_from_slice(&[1, 0, 0, 0]); // one context
            b[28..32].copy_from_slice(&[0, 0, 1, 0]); // id 0, one syntax
            let (uuid, major, minor) = if f.kind == Kind::Epm {
                (EPM_UUID, 3, 0)
            } else {
                (ifc.uuid, ifc.major, ifc.minor)
            };
            b[32..48].copy_from_slice(&uuid);
            b[48..50].copy_from_slice(&major.to_le_bytes());
            b[50..52].copy_from_slice(&minor.to_le_bytes());
            b[52..72].copy_from_slice(&NDR20);
            72
        }
        M_BIND_ACK => {
            let b = &mut small;
            let a = bind_ack_results_at(f);
            let len = a + 28;
            co_header(b, 12, 3, len as u32, f.call_id);
            let frag = if f.kind == Kind::Epm {
                EPM_FRAG
            } else {
                RPC_MAX_FRAG
            };
            b[16..18].copy_from_slice(&frag.to_le_bytes());
            b[18..20].copy_from_slice(&frag.to_le_bytes());
            b[20..24].copy_from_slice(&(0x1000 | (f.isn & 0xffff)).to_le_bytes());
            let mut digits = [0u8; 5];
            let n = if f.kind == Kind::Epm {
                digits[..3].copy_from_slice(b"135");
                3
            } else {
                port_digits(f.port, &mut digits)
            };
            b[24..26].copy_from_slice(&((n + 1) as u16).to_le_bytes());
            b[26..26 + n].copy_from_slice(&digits[..n]);
            b[26 + n..a].fill(0); // NUL and pad
            b[a..a + 4].copy_from_slice(&[1, 0, 0, 0]); // one result
            b[a + 4..a + 8].fill(0); // acceptance, reason 0
            b[a + 8..a + 28].copy_from_slice(&NDR20);
            len
        }
        M_MAP_REQ => {
            let b = &mut small;
            b[..156].copy_from_slice(&EPT_MAP_REQ);
            b[12..16].copy_from_slice(&f.call_id.to_le_bytes());
            b[0x3d..0x4d].copy_from_slice(&ifc.uuid);
            b[0x4d..0x4f].copy_from_slice(&ifc.major.to_le_bytes());
            b[0x51..0x53].copy_from_slice(&ifc.minor.to_le_bytes());
            156
        }
        M_MAP_RESP => {
            let b = &mut small;
            b[..152].copy_from_slice(&EPT_MAP_RESP);
            b[12..16].copy_from_slice(&f.call_id.to_le_bytes());
            b[0x4d..0x5d].copy_from_slice(&ifc.uuid);
            b[0x5d..0x5f].copy_from_slice(&ifc.major.to_le_bytes());
            b[0x61..0x63].copy_from_slice(&ifc.minor.to_le_bytes());
            b[0x88..0x8a].copy_from_slice(&f.port.to_be_bytes());
            let addr = if f.addr_zero { 0 } else { f.c.dst };
            b[0x8f..0x93].copy_from_slice(&addr.to_be_bytes());
            152
        }
        _ => {
            rpc_frags_write(f, off, dst);
            return;
        }
    };
    dst.copy_from_slice(&small[off..off + dst.len()]);
    debug_assert!(off + dst.len() <= len);
}

/// Auth trailer of every request/response fragment: NTLMSSP (type 10) at
/// packet privacy (level 6), a 16-byte verifier, 8-byte sec_trailer.
const AUTH_LEN: usize = 16;
const TRAILER_LEN: usize = 8 + AUTH_LEN;

/// Stub padding before the sec_trailer (16-byte aligned from the stub).
fn auth_pad(stub: usize) -> usize {
    (16 - stub % 16) % 16
}

/// Bytes of a request (one fragment: stubs stay below RPC_FRAG_STUB) or a
/// response (fragments of RPC_FRAG_STUB stub bytes, the last one shorter).
fn frags_len(stub: u32) -> u32 {
    let n = resp_frags(stub);
    let last = stub - (n - 1) * RPC_FRAG_STUB;
    (n - 1) * RPC_FRAG + (24 + last as usize + auth_pad(last as usize) + TRAILER_LEN) as u32
}

/// Writes bytes `off..off + dst.len()` of a request or response: per
/// fragment the 24-byte header, the stub slice, its pad, the auth trailer.
/// The stub is sealed (privacy), so random bytes are what the wire shows.
fn rpc_frags_write(f: &Flow, off: usize, dst: &mut [u8]) {
    let req = f.msg == M_REQ;
    let n = resp_frags(f.stub) as usize;
    let (fsize, fstub) = (RPC_FRAG as usize, RPC_FRAG_STUB as usize);
    let seed = (f.call_id as usize).wrapping_mul(977) ^ f.isn as usize;
    let total_stub = f.stub as usize;
    let mut pos = off;
    let mut d = 0;
    while d < dst.len() {
        let k = pos / fsize;
        let within = pos % fsize;
        let stub_before = k * fstub;
        let this_stub = (total_stub - stub_before).min(fstub);
        let pad = auth_pad(this_stub);
        let trailer_at = 24 + this_stub + pad;
        let take;
        if within < 24 {
            let mut h = [0u8; 24];
            let flags = (if k == 0 { 1 } else { 0 }) | (if k == n - 1 { 2 } else { 0 });
            co_header(
                &mut h,
                if req { 0 } else { 2 },
                flags,
                (trailer_at + TRAILER_LEN) as u32,
                f.call_id,
            );
            h[10..12].copy_from_slice(&(AUTH_LEN as u16).to_le_bytes());
            // alloc_hint: stub bytes still to come, this fragment's included.
            h[16..20].copy_from_slice(&((total_stub - stub_before) as u32).to_le_bytes());
            h[20..22].fill(0); // context 0
            if req {
                h[22..24].copy_from_slice(&f.opnum.to_le_bytes());
            } else {
                h[22..24].fill(0); // cancel count, reserved
            }
            take = (24 - within).min(dst.len() - d);
            dst[d..d + take].copy_from_slice(&h[within..within + take]);
        } else if within < 24 + this_stub {
            let s = stub_before + within - 24;
            take = (24 + this_stub - within).min(dst.len() - d);
            let at = (seed + s) % 4096;
            dst[d..d + take].copy_from_slice(&STUB_BYTES[at..at + take]);
        } else {
            // Pad, sec_trailer, NTLMSSP verifier (version 1, 8-byte
            // checksum, sequence number).
            let mut tail = [0u8; 15 + TRAILER_LEN];
            let t = &mut tail[pad..];
            t[..8].copy_from_slice(&[10, 6, pad as u8, 0, 0, 0, 0, 0]);
            t[8..12].copy_from_slice(&1u32.to_le_bytes());
            let at = (seed + k * 8) % 4096;
            t[12..20].copy_from_slice(&STUB_BYTES[at..at + 8]);
            t[20..24].copy_from_slice(&(f.call_id * 2 + !req as u32).to_le_bytes());
            let w = within - 24 - this_stub;
            take = (pad + TRAILER_LEN - w).min(dst.len() - d);
            dst[d..d + take].copy_from_slice(&tail[w..w + take]);
        }
        d += take;
        pos += take;
    }
}

/// The current message is complete (and acknowledged if need be): the
/// next one, or the close. Returns when the next packet is due.
fn rpc_next(f: &mut Flow, r: &mut Rng, t: u64) -> u64 {
    let rtt = f.rtt_us as u64;
    f.msg_off = 0;
    f.unacked = 0;
    f.stage = Stage::RpcMsg;
    match f.msg {
        M_BIND => {
            f.msg = M_BIND_ACK;
            t + rtt + r.range(100, 500)
        }
        M_BIND_ACK if f.kind == Kind::Epm => {
            f.msg = M_MAP_REQ;
            t + 20 + r.below(60)
        }
        M_BIND_ACK => {
            rpc_new_call(f, r);
            t + 20 + r.below(60)
        }
        M_MAP_REQ => {
            f.msg = M_MAP_RESP;
            t + rtt + r.range(100, 400)
        }
        M_MAP_RESP => {
            f.maps -= 1;
            if f.maps > 0 {
                f.call_id += 1;
                f.msg = M_MAP_REQ;
                t + r.range(200, 2 * MS)
            } else {
                f.stage = Stage::Fin1;
                f.close = 0;
                t + r.range(200, 5 * MS)
            }
        }
        M_REQ => {
            f.msg = M_RESP;
            // Most answers fit one fragment; 40% need 2-5.
            f.stub = if r.chance(600) {
                r.range(100, 4000)
            } else {
                r.range(4001, 20000)
            } as u32;
            t + rtt + r.range(100, 5 * MS)
        }
        _ => {
            f.left -= 1;
            if f.left > 0 {
                f.call_id += 1;
                rpc_new_call(f, r);
                t + r.range(MS, 30 * MS)
            } else {
                f.stage = Stage::Fin1;
                t + r.range(MS, 100 * MS)
            }
        }
    }
}

fn rpc_new_call(f: &mut Flow, r: &mut Rng) {
    let ops = RPC_IFACES[f.iface as usize].opnums;
    f.msg = M_REQ;
    f.opnum = ops[r.below(ops.len() as u64) as usize];
    f.stub = r.range(100, 4000) as u32;
}
