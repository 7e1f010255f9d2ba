//! Real captures vs tshark: the EPM parsers alone (framer, reassembler,
//! bind/ack context tracking, EPM decoding) — no other part of exflow — must
//! find the same towers in ept_map / ept_lookup responses as tshark does.
//!
//! Expected data: tests/data/epm_tshark.jsonl, written by
//! tests/support/epm_expected.sh (tshark 4.0 via ../shared/tools/epm_oracle.py).
//! Compared per capture: the set of (server, proto, port, interface UUID,
//! interface major version).
//!
//! Comparison is strict equality for every capture, including those whose
//! EPM answers span several fragments (the lab enumerations and impacket's
//! rpcdump): tshark reassembles DCE/RPC fragments there, and so do we. What
//! is not comparable is not compared: NDR64 EPM traffic and EPM over UDP do
//! not occur in these captures (lab README: "EPM is NDR (not NDR64) in all of
//! these"), so the NDR64 path and the tower-scan fallback are covered by unit
//! tests only; the per-capture line printed with `--nocapture` shows how many
//! responses were fragmented and how many needed the scan fallback.
//!
//! TCP payload is concatenated per direction in capture order, using the
//! sequence number only to drop retransmitted bytes and to report holes to
//! the framer (`PduFramer::gap`); these small captures need no reordering.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

mod common;

use common::ips;
use etherparse::{SlicedPacket, TransportSlice};
use exflow::proto::dcerpc::{
    parse_pdu, CallReassembler, CoBody, PduFramer, SyntaxId, TransferSyntaxKind, Uuid, UUID_EPM,
};
use exflow::proto::epm::{parse_epm_response, OPNUM_EPT_LOOKUP, OPNUM_EPT_MAP};
use exflow::proto::ndr::NdrSyntax;

type Key = (String, String, u16, String, u16);
type Endpoint = (IpAddr, u16);

#[derive(Default)]
struct Dir {
    framer: PduFramer,
    reasm: CallReassembler,
    next_seq: Option<u32>,
}

#[derive(Default)]
struct Conn {
    /// p_cont_id → (abstract syntax, accepted transfer syntax).
    contexts: HashMap<u16, (Uuid, Option<NdrSyntax>)>,
    /// Context ids of the last bind / alter_context, for the positional ack.
    offered: Vec<u16>,
    /// call_id → (p_cont_id, opnum) of requests.
    calls: HashMap<u32, (u16, u16)>,
}

#[derive(Default)]
struct Outcome {
    towers: BTreeSet<Key>,
    epm_responses: usize,
    fragmented_epm_responses: usize,
    scan_fallbacks: usize,
    gaps: usize,
    resyncs: u64,
}

fn ndr_of(ts: &SyntaxId) -> Option<NdrSyntax> {
    match ts.kind() {
        TransferSyntaxKind::Ndr20 => Some(NdrSyntax::Ndr20),
        TransferSyntaxKind::Ndr64 => Some(NdrSyntax::Ndr64),
        _ => None,
    }
}

fn analyze(path: &Path) -> Outcome {
    let mut cap = pcap::Capture::from_file(path).expect("open capture");
    let mut dirs: HashMap<(IpAddr, u16, IpAddr, u16), Dir> = HashMap::new();
    let mut conns: HashMap<(Endpoint, Endpoint), Conn> = HashMap::new();
    let mut out = Outcome::default();
    while let Ok(pkt) = cap.next_packet() {
        let Ok(sliced) = SlicedPacket::from_ethernet(pkt.data) else {
            continue;
        };
        let (Some(net), Some(TransportSlice::Tcp(tcp))) = (&sliced.net, &sliced.transport) else {
            continue;
        };
        let Some((src, dst)) = ips(net) else { continue };
        let (sport, dport) = (tcp.source_port(), tcp.destination_port());
        let dir = dirs.entry((src, sport, dst, dport)).or_default();
        let seq = tcp.sequence_number();
        if tcp.syn() {
            dir.next_seq = Some(seq.wrapping_add(1));
            continue;
        }
        let mut payload = tcp.payload();
        if payload.is_empty() {
            continue;
        }
        match dir.next_seq {
            None => {}
            Some(next) if seq == next => {}
            Some(next) => {
                let behind = next.wrapping_sub(seq);
                if behind < 1 << 31 {
                    // Retransmission / overlap: keep only the new bytes.
                    if behind as usize >= payload.len() {
                        continue;
                    }
                    payload = &payload[behind as usize..];
                } else {
                    out.gaps += 1;
                    dir.framer.gap();
                }
            }
        }
        dir.next_seq = Some(seq.wrapping_add(tcp.payload().len() as u32));
        dir.framer.push(payload);

        let ckey = if (src, sport) <= (dst, dport) {
            ((src, sport), (dst, dport))
        } else {
            ((dst, dport), (src, sport))
        };
        let conn = conns.entry(ckey).or_default();
        while let Some(bytes) = dir.framer.next_pdu() {
            let Ok(pdu) = parse_pdu(bytes) else { continue };
            match &pdu.body {
                CoBody::Bind(b) | CoBody::AlterContext(b) => {
                    conn.offered.clear();
                    for c in &b.contexts {
                        conn.offered.push(c.context_id);
                        conn.contexts
                            .insert(c.context_id, (c.abstract_syntax.uuid, None));
                    }
                }
                CoBody::BindAck(a) | CoBody::AlterContextResp(a) => {
                    for (id, r) in conn.offered.iter().zip(&a.results) {
                        if let Some(ctx) = conn.contexts.get_mut(id) {
                            if r.accepted() {
                                ctx.1 = ndr_of(&r.transfer_syntax);
                            }
                        }
                    }
                }
                _ => {}
            }
            let Some(call) = dir.reasm.push(&pdu) else {
                continue;
            };
            if let Some(opnum) = call.opnum {
                conn.calls.insert(call.call_id, (call.context_id, opnum));
                continue;
            }
            let Some(&(ctx, opnum)) = conn.calls.get(&call.call_id) else {
                continue;
            };
            let Some(&(abs, syntax)) = conn.contexts.get(&ctx) else {
                continue;
            };
            if abs != UUID_EPM
                || !(opnum == OPNUM_EPT_MAP || opnum == OPNUM_EPT_LOOKUP)
                || call.encrypted
            {
                continue;
            }
            out.epm_responses += 1;
            if call.fragments > 1 {
                out.fragmented_epm_responses += 1;
            }
            let syntax = syntax.unwrap_or(NdrSyntax::Ndr20);
            let ans = parse_epm_response(opnum, &call.stub, syntax, call.little_endian)
                .unwrap_or_else(|e| {
                    panic!(
                        "{}: EPM response call {}: {e}",
                        path.display(),
                        call.call_id
                    )
                });
            if ans.decoding != exflow::proto::epm::Decoding::Structured {
                out.scan_fallbacks += 1;
            }
            for (t, _) in &ans.towers {
                let (Some((proto, port, ip)), Some(iface)) = (t.endpoint(), t.interface) else {
                    continue;
                };
                let server = match ip {
                    Some(a) if !a.is_unspecified() => IpAddr::V4(a),
                    _ => src,
                };
                out.towers.insert((
                    server.to_string(),
                    proto.as_str().to_string(),
                    port,
                    iface.uuid.to_string(),
                    iface.major(),
                ));
            }
        }
        out.resyncs = out.resyncs.max(dir.framer.stats().resyncs);
    }
    out
}

fn expected() -> HashMap<String, BTreeSet<Key>> {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string(format!("{root}/tests/data/epm_tshark.jsonl"))
        .expect("tests/data/epm_tshark.jsonl (run tests/support/epm_expected.sh)");
    let mut m: HashMap<String, BTreeSet<Key>> = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("json line");
        let s = |k: &str| v[k].as_str().expect(k).to_string();
        m.entry(s("file")).or_default().insert((
            s("server"),
            s("proto"),
            v["port"].as_u64().expect("port") as u16,
            s("uuid"),
            v["version"].as_u64().expect("version") as u16,
        ));
    }
    m
}

fn captures() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for base in ["../shared/captures/lab", "../shared/captures/public"] {
        let Ok(dirs) = std::fs::read_dir(root.join(base)) else {
            continue;
        };
        for d in dirs.flatten().filter(|d| d.path().is_dir()) {
            for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if name.ends_with(".pcap") || name.ends_with(".pcapng") {
                    let dir = d.file_name().to_string_lossy().into_owned();
                    out.push(format!("{base}/{dir}/{name}"));
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn epm_towers_match_tshark_on_every_capture() {
    let caps = captures();
    if caps.is_empty() {
        eprintln!("SKIP: ../shared/captures not present");
        return;
    }
    let exp = expected();
    // Every capture tshark found towers in must be one we look at.
    for f in exp.keys() {
        assert!(caps.contains(f), "oracle names {f}, which is not on disk");
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let empty = BTreeSet::new();
    let (mut total_ours, mut total_theirs, mut fragmented, mut scans) = (0, 0, 0, 0);
    for f in &caps {
        let o = analyze(&root.join(f));
        let theirs = exp.get(f).unwrap_or(&empty);
        total_ours += o.towers.len();
        total_theirs += theirs.len();
        eprintln!(
            "{f}: ours {} tshark {} (EPM responses {}, fragmented {}, scan fallbacks {}, tcp gaps {}, resyncs {})",
            o.towers.len(),
            theirs.len(),
            o.epm_responses,
            o.fragmented_epm_responses,
            o.scan_fallbacks,
            o.gaps,
            o.resyncs
        );
        let missing: Vec<_> = theirs.difference(&o.towers).collect();
        let extra: Vec<_> = o.towers.difference(theirs).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{f}: missing {missing:?} extra {extra:?}"
        );
        fragmented += o.fragmented_epm_responses;
        scans += o.scan_fallbacks;
    }
    eprintln!(
        "{} captures, towers: ours {total_ours}, tshark {total_theirs}; \
         fragmented EPM responses {fragmented}, scan fallbacks {scans}",
        caps.len()
    );
    assert!(total_theirs > 0, "the oracle found no towers at all");
    // The comparison must exercise reassembly, not only single fragments.
    assert!(
        fragmented > 0,
        "no multi-fragment EPM response was compared"
    );
}
