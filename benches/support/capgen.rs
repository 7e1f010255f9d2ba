//! Deterministic synthetic capture generator for the benchmarks.
//!
//! Frames are built byte by byte (Ethernet II + IPv4 + TCP/UDP/ICMP) into a
//! reused buffer and written as classic pcap (microsecond timestamps) through
//! a large `BufWriter`: no packet library, no allocation per packet. IPv4
//! header checksums are valid; TCP/UDP checksums are zero (exflow, like
//! tshark by default, does not check them).
//!
//! Every flow is an event source in one time-ordered heap, so conversations
//! interleave the way they do on a real link and timestamps never go
//! backwards. A fixed-seed xorshift PRNG makes every file byte-identical
//! from run to run; the benches rely on that to reuse a file whose size
//! matches a dry run of the same profile.
//!
//! Addresses are documentation ranges only: clients in 192.0.2.0/24 and
//! 198.51.100.0/24, servers in 203.0.113.0/24.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::binary_heap::PeekMut;
use std::collections::BinaryHeap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Fingerprint of this file's source, part of every generated file's name:
/// editing the generator can change bytes without changing the size, so a
/// file is reused only if it came from this exact source *and* has the size
/// a dry run predicts (which catches truncated or damaged files).
pub fn source_tag() -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a
    for &b in include_str!("capgen.rs").as_bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
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
}

impl Profile {
    /// `mixed-10000000-` or `concurrent-1000000-`: files of the same
    /// profile and size from other generator versions share this prefix.
    pub fn file_prefix(&self) -> String {
        match self {
            Profile::Mixed { packets } => format!("mixed-{packets}-"),
            Profile::ConcurrentFlows { flows } => format!("concurrent-{flows}-"),
        }
    }

    pub fn file_name(&self) -> String {
        format!("{}{}.pcap", self.file_prefix(), source_tag())
    }

    pub fn describe(&self) -> String {
        match self {
            Profile::Mixed { packets } => format!("mixed (target {packets} packets)"),
            Profile::ConcurrentFlows { flows } => format!("concurrent-flows {flows}"),
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
    let file = out.w.into_inner().map_err(|e| e.into_error())?;
    file.sync_data()?;
    drop(file);
    let secs = t.elapsed().as_secs_f64();
    fs::rename(&tmp, path)?;
    Ok((summary, secs))
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

// ---------------------------------------------------------------- pcap writer

const ETH_LEN: usize = 14;
const IP_LEN: usize = 20;
const TCP_LEN: usize = 20;
const UDP_LEN: usize = 8;
const MIN_FRAME: usize = 60;
const MAX_FRAME: usize = 1514;

const MAC_CLIENT_SIDE: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];
const MAC_SERVER_SIDE: [u8; 6] = [0x02, 0x00, 0x5e, 0x20, 0x00, 0x01];

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;

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

/// A pcap writer that builds each frame in one reused buffer.
pub struct PcapOut<W: Write> {
    w: W,
    buf: Box<[u8; 2048]>,
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

impl<W: Write> PcapOut<W> {
    pub fn new(mut w: W) -> io::Result<PcapOut<W>> {
        let mut gh = [0u8; 24];
        gh[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // µs timestamps
        gh[4..6].copy_from_slice(&2u16.to_le_bytes());
        gh[6..8].copy_from_slice(&4u16.to_le_bytes());
        gh[16..20].copy_from_slice(&65535u32.to_le_bytes()); // snaplen
        gh[20..24].copy_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        w.write_all(&gh)?;
        Ok(PcapOut {
            w,
            buf: Box::new([0u8; 2048]),
            summary: GenSummary {
                file_bytes: PCAP_GLOBAL_HEADER_LEN,
                ..GenSummary::default()
            },
        })
    }

    /// Ethernet + IPv4 headers; returns the offset of the L4 header.
    #[inline]
    fn l2l3(&mut self, h: &Hdr, proto: u8, ip_total: usize) -> usize {
        let b = &mut self.buf[..];
        let (dst_mac, src_mac) = if h.outbound {
            (MAC_SERVER_SIDE, MAC_CLIENT_SIDE)
        } else {
            (MAC_CLIENT_SIDE, MAC_SERVER_SIDE)
        };
        b[0..6].copy_from_slice(&dst_mac);
        b[6..12].copy_from_slice(&src_mac);
        b[12] = 0x08;
        b[13] = 0x00;
        write_ipv4(
            &mut b[ETH_LEN..ETH_LEN + IP_LEN],
            h.src,
            h.dst,
            proto,
            ip_total as u16,
            h.ip_id,
            h.ttl,
        );
        ETH_LEN + IP_LEN
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
        let opts = if flags & TCP_SYN != 0 { 20 } else { 0 };
        let ip_total = IP_LEN + TCP_LEN + opts + payload;
        let l4 = self.l2l3(h, 6, ip_total);
        let b = &mut self.buf[..];
        b[l4..l4 + 2].copy_from_slice(&h.sport.to_be_bytes());
        b[l4 + 2..l4 + 4].copy_from_slice(&h.dport.to_be_bytes());
        b[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
        let ack = if flags & TCP_ACK != 0 { ack } else { 0 };
        b[l4 + 8..l4 + 12].copy_from_slice(&ack.to_be_bytes());
        b[l4 + 12] = (((TCP_LEN + opts) / 4) as u8) << 4;
        b[l4 + 13] = flags;
        b[l4 + 14..l4 + 16].copy_from_slice(&(if opts > 0 { 64240u16 } else { 502 }).to_be_bytes());
        b[l4 + 16..l4 + 20].fill(0); // checksum (unchecked), urgent pointer
        if opts > 0 {
            let o = l4 + TCP_LEN;
            // MSS 1460, SACK permitted, timestamps, NOP, window scale 7.
            b[o..o + 4].copy_from_slice(&[2, 4, 0x05, 0xb4]);
            b[o + 4..o + 6].copy_from_slice(&[4, 2]);
            b[o + 6] = 8;
            b[o + 7] = 10;
            b[o + 8..o + 12].copy_from_slice(&(ts_us as u32).to_be_bytes());
            b[o + 12..o + 16]
                .copy_from_slice(&(if flags & TCP_ACK != 0 { seq ^ ack } else { 0 }).to_be_bytes());
            b[o + 16..o + 20].copy_from_slice(&[1, 3, 3, 7]);
        }
        let p = l4 + TCP_LEN + opts;
        self.buf[p..p + payload].copy_from_slice(&FILLER[..payload]);
        self.emit(ts_us, ETH_LEN + ip_total)
    }

    /// A UDP datagram with `payload` bytes of filler.
    #[inline]
    fn udp(&mut self, ts_us: u64, h: &Hdr, payload: usize) -> io::Result<()> {
        let p = self.udp_header(h, payload) + UDP_LEN;
        self.buf[p..p + payload].copy_from_slice(&FILLER[..payload]);
        self.emit(ts_us, p + payload)
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
        let qname = 1 + label_len + 13;
        let payload = 12 + qname + 4 + 16 * answers;
        let d = self.udp_header(h, payload) + UDP_LEN;
        let b = &mut self.buf[..];
        b[d..d + 2].copy_from_slice(&id.to_be_bytes());
        let flags: u16 = if answers > 0 { 0x8180 } else { 0x0100 };
        b[d + 2..d + 4].copy_from_slice(&flags.to_be_bytes());
        b[d + 4..d + 12].copy_from_slice(&[0, 1, 0, answers as u8, 0, 0, 0, 0]);
        let mut o = d + 12;
        b[o] = label_len as u8;
        for (i, c) in b[o + 1..o + 1 + label_len].iter_mut().enumerate() {
            *c = b'a' + ((id as usize + i) % 26) as u8;
        }
        o += 1 + label_len;
        b[o..o + 13].copy_from_slice(b"\x07example\x03com\x00");
        o += 13;
        b[o..o + 4].copy_from_slice(&[0, 1, 0, 1]); // A, IN
        o += 4;
        for a in 0..answers {
            // Name pointer to the question, A, IN, TTL 300, 4 bytes.
            b[o..o + 12].copy_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4]);
            b[o + 12..o + 16].copy_from_slice(&[203, 0, 113, 1 + ((id as usize + a) % 250) as u8]);
            o += 16;
        }
        self.emit(ts_us, o)
    }

    /// Ethernet + IPv4 + UDP headers; returns the UDP header's offset.
    #[inline]
    fn udp_header(&mut self, h: &Hdr, payload: usize) -> usize {
        let l4 = self.l2l3(h, 17, IP_LEN + UDP_LEN + payload);
        let b = &mut self.buf[..];
        b[l4..l4 + 2].copy_from_slice(&h.sport.to_be_bytes());
        b[l4 + 2..l4 + 4].copy_from_slice(&h.dport.to_be_bytes());
        b[l4 + 4..l4 + 6].copy_from_slice(&((UDP_LEN + payload) as u16).to_be_bytes());
        b[l4 + 6..l4 + 8].fill(0);
        l4
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
        let quoted = IP_LEN + 8;
        let ip_total = IP_LEN + 8 + quoted;
        let h = Hdr {
            src: sender,
            dst: syn.src,
            sport: 0,
            dport: 0,
            ttl: 254,
            ip_id: syn.ip_id ^ 0x5a5a,
            outbound: false,
        };
        let l4 = self.l2l3(&h, 1, ip_total);
        let b = &mut self.buf[..];
        b[l4] = 3;
        b[l4 + 1] = code;
        b[l4 + 2..l4 + 8].fill(0);
        let q = l4 + 8;
        // The quoted SYN: its total length as sent (40 bytes of TCP + options).
        write_ipv4(
            &mut b[q..q + IP_LEN],
            syn.src,
            syn.dst,
            6,
            (IP_LEN + TCP_LEN + 20) as u16,
            syn.ip_id,
            syn.ttl - 1,
        );
        let t = q + IP_LEN;
        b[t..t + 2].copy_from_slice(&syn.sport.to_be_bytes());
        b[t + 2..t + 4].copy_from_slice(&syn.dport.to_be_bytes());
        b[t + 4..t + 8].copy_from_slice(&seq.to_be_bytes());
        let csum = inet_checksum(&b[l4..l4 + 8 + quoted]);
        b[l4 + 2..l4 + 4].copy_from_slice(&csum.to_be_bytes());
        self.emit(ts_us, ETH_LEN + ip_total)
    }

    /// Pads to the Ethernet minimum and writes one pcap record.
    #[inline]
    fn emit(&mut self, ts_us: u64, len: usize) -> io::Result<()> {
        let len = if len < MIN_FRAME {
            self.buf[len..MIN_FRAME].fill(0);
            MIN_FRAME
        } else {
            len
        };
        debug_assert!(len <= MAX_FRAME);
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&((ts_us / SEC) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((ts_us % SEC) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&(len as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&(len as u32).to_le_bytes());
        self.w.write_all(&rec)?;
        self.w.write_all(&self.buf[..len])?;
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

fn write_ipv4(b: &mut [u8], src: u32, dst: u32, proto: u8, total: u16, id: u16, ttl: u8) {
    b[0] = 0x45;
    b[1] = 0;
    b[2..4].copy_from_slice(&total.to_be_bytes());
    b[4..6].copy_from_slice(&id.to_be_bytes());
    b[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF
    b[8] = ttl;
    b[9] = proto;
    b[10..12].fill(0);
    b[12..16].copy_from_slice(&src.to_be_bytes());
    b[16..20].copy_from_slice(&dst.to_be_bytes());
    let c = inet_checksum(&b[..IP_LEN]);
    b[10..12].copy_from_slice(&c.to_be_bytes());
}

/// RFC 1071 checksum of an even-length slice.
#[inline]
fn inet_checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for w in b.chunks_exact(2) {
        sum += u16::from_be_bytes([w[0], w[1]]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
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
            next_port: vec![EPHEMERAL_LO; 508],
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
            Profile::ConcurrentFlows { .. } => {
                self.heap.push(Reverse((BASE_US, SPAWNER)));
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
            // A held flow stays open in the capture; only its events end.
            if self.flows[slot as usize].kind != Kind::TcpHold {
                self.active -= 1;
            }
            if let Profile::Mixed { packets } = self.profile {
                if out.summary.packets >= packets {
                    self.spawning = false;
                }
                if self.spawning {
                    // The next conversation starts shortly after.
                    let t2 = t + self.rng.below(2 * MS);
                    self.open_mixed(t2);
                }
            }
        }
        Ok(())
    }

    /// ConcurrentFlows: opens flow `next_flow` at `t` and reschedules.
    fn spawner(&mut self, t: u64) {
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
        }
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
            let mut w = r.below(1000);
            let mut sport = 443;
            for &(p, pw) in &TCP_PORTS {
                if w < pw {
                    sport = p;
                    break;
                }
                w -= pw;
            }
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
            f.stage = Stage::Request;
            f.req_left = if f.kind == Kind::TcpHold {
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
                f.bulk = r.chance(15);
                f.resp_left = if f.bulk {
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
                    f.req_left = r.range(1, 2) as u16;
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
    };
    Ok(next)
}
