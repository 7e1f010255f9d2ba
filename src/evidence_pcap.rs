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
        let mapper = f.rpc.as_ref().is_some_and(|r| r.epm_answers > 0)
            && mappers.contains(&(f.client, f.server));
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
const ICMP_AFTER: Ts = 60 * 1_000_000_000;

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
pub fn write(
    a: &Analysis,
    mut source: Box<dyn Source>,
    opts: EvidenceOptions,
    out: &mut dyn Write,
) -> Result<EvidenceStats, String> {
    let links: std::collections::BTreeSet<LinkType> = a
        .inputs
        .iter()
        .flat_map(|i| i.link_types.iter().copied())
        .filter(|l| l.is_supported())
        .collect();
    let link = match links.len() {
        0 => LinkType(1),
        1 => *links.iter().next().expect("one link type"),
        _ => {
            return Err(format!(
                "the inputs carry {} link types; a pcap holds one: write the evidence of each input separately",
                links.len()
            ))
        }
    };
    let set = selected(a);
    let mut stats = EvidenceStats {
        flows: set.values().map(Vec::len).sum(),
        ..EvidenceStats::default()
    };
    let mut w = io::BufWriter::with_capacity(1 << 18, out);
    let io_err = |e: io::Error| format!("writing the evidence: {e}");
    w.write_all(&pcap_header(link)).map_err(io_err)?;
    while let Some(batch) = source.next_batch(4096) {
        for f in &batch.frames {
            let frame = batch.data(f);
            let Ok(Decoded::Packet(p)) = decode(f.link, f.ts, f.orig_len, frame) else {
                continue;
            };
            let why = match (&p.transport, p.tuple()) {
                (_, Some(t)) => lookup(&set, &t, f.ts, 0),
                (Transport::Icmp(m), None) => m
                    .quoted
                    .and_then(|q| lookup(&set, &q.tuple, f.ts, ICMP_AFTER))
                    .map(|_| Why::Failed),
                _ => None,
            };
            let Some(why) = why else { continue };
            let written = match keep(frame, &p, why, opts) {
                Keep::All => write_record(&mut w, f.ts, frame, f.orig_len),
                Keep::Cut(n) => {
                    stats.cut += 1;
                    write_record(&mut w, f.ts, &frame[..n], f.orig_len)
                }
                Keep::Redact { at, len } => {
                    stats.redacted += 1;
                    let mut copy = frame.to_vec();
                    copy[at..at + len].fill(0);
                    write_record(&mut w, f.ts, &copy, f.orig_len)
                }
            };
            written.map_err(io_err)?;
            stats.packets += 1;
        }
    }
    w.flush().map_err(io_err)?;
    Ok(stats)
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
