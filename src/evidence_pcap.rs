//! `--write-failed FILE`: the packets behind the findings, as a pcap that
//! Wireshark opens, for change tickets (#21 point 2). After the analysis
//! the inputs are read a second time, and a frame is kept when it belongs
//! to a flow the verdicts count failed (its SYNs, resets, unanswered
//! datagrams), to an ICMP error quoting one, or to an endpoint-mapper
//! conversation whose answer named a port (the hand-off's evidence).
//!
//! These files leave the network they were taken on, so by default a
//! frame keeps its headers and drops its payload (no NTLM or Kerberos
//! material leaves); an endpoint-mapper conversation keeps its DCE/RPC
//! PDUs (the towers are the evidence), with the authentication token of a
//! PDU that carries one (`auth_length` > 0) overwritten with zeros, so the
//! file still parses as the conversation it was (a PDU that does not fit in
//! its segment is cut to the headers instead). `whole_payloads` keeps
//! everything.
//!
//! One tap of one link type makes a classic pcap. Two taps (`--inside`,
//! `--outside`), inputs of several link types, or a file name ending in
//! `.pcapng` make a pcapng instead, with one interface per (tap or input,
//! link type) named after it, so Wireshark shows on which side of the
//! firewall each packet was seen; the outside tap's timestamps are put on
//! the inside clock as the report's are (`TapReport::offset_ns`).

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;

use crate::analysis::Analysis;
use crate::capture::Source;
use crate::packet::{decode, Decoded, FiveTuple, LinkType, Packet, Transport};
use crate::Ts;

/// What to keep of each frame.
#[derive(Clone, Copy, Debug, Default)]
pub struct EvidenceOptions {
    /// Keep whole payloads (by default: headers only, and the DCE/RPC
    /// PDUs of endpoint-mapper conversations without authentication).
    pub whole_payloads: bool,
    /// Write a pcapng even for one input of one link type.
    pub pcapng: bool,
}

/// One capture to read the evidence from again.
pub struct EvidenceInput {
    pub source: Box<dyn Source>,
    /// The pcapng interface name of its frames ("inside", "outside"); None:
    /// the input's file name.
    pub name: Option<&'static str>,
    /// Subtracted from its timestamps to put them on the report's clock
    /// (the outside tap's offset; 0 otherwise).
    pub offset_ns: i64,
}

/// What was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvidenceStats {
    /// Flows whose packets were looked for.
    pub flows: usize,
    /// Frames written.
    pub packets: u64,
    /// Frames cut to their headers.
    pub cut: u64,
    /// Frames whose authentication token was zeroed.
    pub redacted: u64,
}

/// Why a flow is in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    Failed,
    Mapper,
}

/// (proto, lower endpoint, higher endpoint): both directions alike.
type Key = (u8, (IpAddr, u16), (IpAddr, u16));

fn key(t: &FiveTuple) -> Key {
    let (a, b) = ((t.src, t.sport), (t.dst, t.dport));
    if a <= b {
        (t.proto, a, b)
    } else {
        (t.proto, b, a)
    }
}

/// The flows whose packets go into the file, with their time spans.
fn selected(a: &Analysis) -> HashMap<Key, Vec<(Ts, Ts, Why)>> {
    let outcomes = a.flow_outcomes();
    let mappers: std::collections::HashSet<(IpAddr, IpAddr)> = a
        .correlated
        .handoffs
        .iter()
        .map(|h| (h.client, h.mapper))
        .collect();
    let mut out: HashMap<Key, Vec<(Ts, Ts, Why)>> = HashMap::new();
    for (f, o) in a.flows.iter().zip(outcomes.iter()) {
        // The endpoint mapper's conversation, or the DCOM activator's /
        // OXID resolver's (#22): their answers named the ports.
        let mapper = f.rpc.as_ref().is_some_and(|r| {
            r.epm_answers > 0
                || r.interfaces.iter().any(|b| {
                    crate::proto::dcom::DcomOperation::is_dcom_interface(&b.interface.uuid)
                })
        }) && mappers.contains(&(f.client, f.server));
        let why = match (o, mapper) {
            (_, true) => Why::Mapper,
            (Some(false), _) => Why::Failed,
            _ => continue,
        };
        let t = FiveTuple {
            proto: f.proto,
            src: f.client,
            dst: f.server,
            sport: f.client_port,
            dport: f.server_port,
        };
        out.entry(key(&t))
            .or_default()
            .push((f.first_ts, f.last_ts, why));
    }
    out
}

/// Why the flow of `t` at `ts` is in the file, if it is; `after`: how
/// long after the flow's last packet still counts (an ICMP error is no
/// packet of its flow, and comes after it).
fn lookup(set: &HashMap<Key, Vec<(Ts, Ts, Why)>>, t: &FiveTuple, ts: Ts, after: Ts) -> Option<Why> {
    set.get(&key(t))?
        .iter()
        .find(|(first, last, _)| (*first..=last.saturating_add(after)).contains(&ts))
        .map(|s| s.2)
}

/// How long after its flow an ICMP error quoting it is still its evidence.
pub const ICMP_AFTER: Ts = 60 * 1_000_000_000;

/// Starts a classic pcap of `link` frames (`exflow live --write-failed`).
pub fn write_pcap_header(w: &mut dyn Write, link: LinkType) -> io::Result<()> {
    w.write_all(&pcap_header(link))
}

/// Writes a frame the live ring kept (a failed attempt's, or an ICMP error
/// quoting one), cut after its headers; false when it does not decode.
pub fn write_kept(w: &mut dyn Write, k: &crate::capture::KeptFrame) -> io::Result<bool> {
    let frame = k.data();
    let Ok(Decoded::Packet(p)) = decode(k.link, k.ts, k.orig_len, frame) else {
        return Ok(false);
    };
    let mut w = w;
    match keep(frame, &p, Why::Failed, EvidenceOptions::default()) {
        Keep::Cut(n) => write_record(&mut w, k.ts, &frame[..n], k.orig_len)?,
        _ => write_record(&mut w, k.ts, frame, k.orig_len)?,
    }
    Ok(true)
}

/// What is kept of a frame: all of it, its headers (`Cut`), or all of it
/// with an authentication token zeroed at `at..at + len`.
#[derive(Debug, PartialEq, Eq)]
enum Keep {
    All,
    Cut(usize),
    Redact { at: usize, len: usize },
}

/// What to keep of `frame`.
fn keep(frame: &[u8], p: &Packet, why: Why, opts: EvidenceOptions) -> Keep {
    let Some(payload) = p.payload() else {
        return Keep::All;
    };
    let start = payload.offset as usize;
    if opts.whole_payloads || payload.len == 0 {
        return Keep::All;
    }
    let data = frame
        .get(start..start + payload.len as usize)
        .unwrap_or(&[]);
    // A DCE/RPC v5 PDU header: version 5, minor 0 or 1; its byte order in
    // the data representation (byte 4); frag_length at 8, auth_length at 10.
    let rpc = data.len() >= 16 && data[0] == 5 && data[1] <= 1;
    if why != Why::Mapper || !rpc {
        return Keep::Cut(start.min(frame.len()));
    }
    let le = data[4] & 0x10 != 0;
    let u16_at = |i: usize| {
        let b = [data[i], data[i + 1]];
        usize::from(if le {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let (frag, auth) = (u16_at(8), u16_at(10));
    match auth {
        0 => Keep::All,
        _ if frag <= data.len() && auth + 16 <= frag => Keep::Redact {
            at: start + frag - auth,
            len: auth,
        },
        _ => Keep::Cut(start.min(frame.len())),
    }
}

/// Reads `source` again and writes the evidence frames of `a` to `out` as
/// a pcap (microsecond timestamps; the inputs' one link type).
/// Reads `source` again and writes the evidence of `a` to `out` (see the
/// module documentation).
pub fn write(
    a: &Analysis,
    source: Box<dyn Source>,
    opts: EvidenceOptions,
    out: &mut dyn Write,
) -> Result<EvidenceStats, String> {
    write_inputs(
        a,
        vec![EvidenceInput {
            source,
            name: None,
            offset_ns: 0,
        }],
        opts,
        out,
    )
}

/// [`write()`] over several captures (two taps): a pcapng whose interfaces
/// name the tap each packet was seen on.
pub fn write_inputs(
    a: &Analysis,
    inputs: Vec<EvidenceInput>,
    opts: EvidenceOptions,
    out: &mut dyn Write,
) -> Result<EvidenceStats, String> {
    let links: std::collections::BTreeSet<LinkType> = a
        .inputs
        .iter()
        .flat_map(|i| i.link_types.iter().copied())
        .filter(|l| l.is_supported())
        .collect();
    let ng = opts.pcapng || inputs.len() > 1 || links.len() > 1;
    let set = selected(a);
    let mut stats = EvidenceStats {
        flows: set.values().map(Vec::len).sum(),
        ..EvidenceStats::default()
    };
    let mut w = io::BufWriter::with_capacity(1 << 18, out);
    let io_err = |e: io::Error| format!("writing the evidence: {e}");
    let mut sink = if ng {
        Sink::Pcapng(Pcapng::start(&mut w).map_err(io_err)?)
    } else {
        let link = links.iter().next().copied().unwrap_or(LinkType(1));
        w.write_all(&pcap_header(link)).map_err(io_err)?;
        Sink::Pcap
    };
    for mut input in inputs {
        let names: Vec<String> = input
            .source
            .inputs()
            .iter()
            .map(|i| match input.name {
                Some(n) => n.to_string(),
                None => i.path.clone(),
            })
            .collect();
        while let Some(batch) = input.source.next_batch(4096) {
            for f in &batch.frames {
                let frame = batch.data(f);
                let Ok(Decoded::Packet(p)) = decode(f.link, f.ts, f.orig_len, frame) else {
                    continue;
                };
                let ts = (f.ts as i128 - input.offset_ns as i128).clamp(0, Ts::MAX as i128) as Ts;
                let why = match (&p.transport, p.tuple()) {
                    (_, Some(t)) => lookup(&set, &t, ts, 0),
                    (Transport::Icmp(m), None) => m
                        .quoted
                        .and_then(|q| lookup(&set, &q.tuple, ts, ICMP_AFTER))
                        .map(|_| Why::Failed),
                    _ => None,
                };
                let Some(why) = why else { continue };
                let kept: std::borrow::Cow<[u8]> = match keep(frame, &p, why, opts) {
                    Keep::All => frame.into(),
                    Keep::Cut(n) => {
                        stats.cut += 1;
                        frame[..n].into()
                    }
                    Keep::Redact { at, len } => {
                        stats.redacted += 1;
                        let mut copy = frame.to_vec();
                        copy[at..at + len].fill(0);
                        copy.into()
                    }
                };
                let written = match &mut sink {
                    Sink::Pcap => write_record(&mut w, ts, &kept, f.orig_len),
                    Sink::Pcapng(ng) => {
                        let name = names
                            .get(usize::from(f.input))
                            .map_or("capture", String::as_str);
                        ng.packet(&mut w, name, f.link, ts, &kept, f.orig_len)
                    }
                };
                written.map_err(io_err)?;
                stats.packets += 1;
            }
        }
    }
    w.flush().map_err(io_err)?;
    Ok(stats)
}

enum Sink {
    Pcap,
    Pcapng(Pcapng),
}

/// A pcapng section being written: its interfaces so far, one per
/// (name, link type).
struct Pcapng {
    interfaces: Vec<(String, LinkType)>,
}

impl Pcapng {
    /// The section header block (little endian, version 1.0, length
    /// unknown).
    fn start(w: &mut impl Write) -> io::Result<Pcapng> {
        let mut b = Vec::with_capacity(28);
        b.extend_from_slice(&0x0A0D_0D0Au32.to_le_bytes());
        b.extend_from_slice(&28u32.to_le_bytes());
        b.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&(-1i64).to_le_bytes());
        b.extend_from_slice(&28u32.to_le_bytes());
        w.write_all(&b)?;
        Ok(Pcapng {
            interfaces: Vec::new(),
        })
    }

    /// The interface of (`name`, `link`), its description block written
    /// the first time: snaplen 262144, nanosecond timestamps, the name.
    fn interface(&mut self, w: &mut impl Write, name: &str, link: LinkType) -> io::Result<u32> {
        if let Some(i) = self
            .interfaces
            .iter()
            .position(|(n, l)| n == name && *l == link)
        {
            return Ok(i as u32);
        }
        let mut opts = Vec::new();
        // if_name (2), if_tsresol (9) = 9: nanoseconds, opt_endofopt.
        option(&mut opts, 2, name.as_bytes());
        option(&mut opts, 9, &[9]);
        opts.extend_from_slice(&[0, 0, 0, 0]);
        let len = 20 + opts.len() as u32;
        let mut b = Vec::with_capacity(len as usize);
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&link.0.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&262_144u32.to_le_bytes());
        b.extend_from_slice(&opts);
        b.extend_from_slice(&len.to_le_bytes());
        w.write_all(&b)?;
        self.interfaces.push((name.to_string(), link));
        Ok(self.interfaces.len() as u32 - 1)
    }

    /// An enhanced packet block on the interface of (`name`, `link`).
    fn packet(
        &mut self,
        w: &mut impl Write,
        name: &str,
        link: LinkType,
        ts: Ts,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let id = self.interface(w, name, link)?;
        let pad = (4 - data.len() % 4) % 4;
        let len = 32 + (data.len() + pad) as u32;
        let mut h = Vec::with_capacity(28);
        h.extend_from_slice(&6u32.to_le_bytes());
        h.extend_from_slice(&len.to_le_bytes());
        h.extend_from_slice(&id.to_le_bytes());
        h.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        h.extend_from_slice(&(ts as u32).to_le_bytes());
        h.extend_from_slice(&(data.len() as u32).to_le_bytes());
        h.extend_from_slice(&orig_len.max(data.len() as u32).to_le_bytes());
        w.write_all(&h)?;
        w.write_all(data)?;
        w.write_all(&[0u8; 3][..pad])?;
        w.write_all(&len.to_le_bytes())
    }
}

/// A pcapng option: code, length, value padded to 4 bytes.
fn option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + (4 - value.len() % 4) % 4, 0);
}

/// A classic pcap header: microsecond timestamps, little endian, snaplen
/// 262144.
fn pcap_header(link: LinkType) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xa1b2_c3d4_u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    h[16..20].copy_from_slice(&262_144u32.to_le_bytes());
    h[20..24].copy_from_slice(&u32::from(link.0).to_le_bytes());
    h
}

fn write_record(w: &mut impl Write, ts: Ts, data: &[u8], orig_len: u32) -> io::Result<()> {
    let mut r = [0u8; 16];
    r[0..4].copy_from_slice(&((ts / 1_000_000_000) as u32).to_le_bytes());
    r[4..8].copy_from_slice(&(((ts % 1_000_000_000) / 1_000) as u32).to_le_bytes());
    r[8..12].copy_from_slice(&(data.len() as u32).to_le_bytes());
    r[12..16].copy_from_slice(&orig_len.max(data.len() as u32).to_le_bytes());
    w.write_all(&r)?;
    w.write_all(data)
}
