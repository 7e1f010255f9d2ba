//! Two taps, one firewall: captures taken on both sides of it (`--inside`,
//! `--outside`) are joined flow by flow, so what the firewall dropped is
//! measured (seen on one side, missing on the other), not inferred.
//!
//! Clocks are not assumed in sync: the outside clock is aligned to the
//! inside one by the packets both taps saw — the first packet of every
//! connection seen once on each side gives one offset sample; the median
//! is applied to everything from the outside tap (flows, ICMP evidence,
//! events), so the report speaks the inside clock.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::event::Event;
use crate::finding::Tap;
use crate::flow::flow_order;
use crate::flow::{FlowRecord, SECOND};
use crate::pipeline::{Collected, Stats};
use crate::Ts;

/// Two records of one connection (one per tap) start within this of each
/// other once aligned.
const MATCH_SLACK: Ts = 2 * SECOND;

/// A two-tap view of the flows, from the tap join.
#[derive(Clone, Debug, Default)]
pub struct TapView {
    /// Per flow (same index as `flows`): packets [orig, resp] seen on the
    /// inside and on the outside tap (None: not seen there).
    pub per_flow: Vec<[Option<[u64; 2]>; 2]>,
    /// First packet time of each tap (aligned to the inside clock).
    pub tap_start: [Option<Ts>; 2],
    /// Hosts that sent ICMP errors (usually the firewall itself): flows to
    /// or from them are not traffic crossing the firewall.
    pub icmp_senders: BTreeSet<IpAddr>,
}

/// What crossed the firewall at one server port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortCrossing {
    pub server: IpAddr,
    pub proto: u8,
    pub port: u16,
    /// Connections seen on both taps / only inside / only outside.
    pub both: u64,
    pub only_inside: u64,
    pub only_outside: u64,
    /// Packets [originator → responder, back] seen on each tap.
    pub inside_packets: [u64; 2],
    pub outside_packets: [u64; 2],
}

/// The join of two taps.
#[derive(Clone, Debug, Default)]
pub struct TapReport {
    pub view: TapView,
    /// Outside clock minus inside clock (ns), applied to the outside tap.
    pub offset_ns: i64,
    /// Connections seen once on each tap that gave the offset.
    pub aligned_by: usize,
    pub inside_inputs: Vec<String>,
    pub outside_inputs: Vec<String>,
    pub ports: Vec<PortCrossing>,
}

type Key = (u8, IpAddr, u16, IpAddr, u16);
/// Packets [orig, resp] seen on the inside and on the outside tap.
type Seen = [Option<[u64; 2]>; 2];

fn key(f: &FlowRecord) -> Key {
    (f.proto, f.client, f.client_port, f.server, f.server_port)
}

fn shift(ts: Ts, offset: i64) -> Ts {
    (ts as i128 - offset as i128).clamp(0, u64::MAX as i128) as Ts
}

/// Median of `outside − inside` first-packet times of connections seen
/// exactly once on each tap.
fn estimate_offset(inside: &[FlowRecord], outside: &[FlowRecord]) -> (i64, usize) {
    let mut ins: BTreeMap<Key, Vec<Ts>> = BTreeMap::new();
    for f in inside {
        ins.entry(key(f)).or_default().push(f.first_ts);
    }
    let mut outs: BTreeMap<Key, Vec<Ts>> = BTreeMap::new();
    for f in outside {
        outs.entry(key(f)).or_default().push(f.first_ts);
    }
    let mut diffs: Vec<i128> = Vec::new();
    for (k, a) in &ins {
        if let Some(b) = outs.get(k) {
            if a.len() == 1 && b.len() == 1 {
                diffs.push(b[0] as i128 - a[0] as i128);
            }
        }
    }
    if diffs.is_empty() {
        return (0, 0);
    }
    diffs.sort_unstable();
    let m = diffs[diffs.len() / 2];
    (
        m.clamp(i64::MIN as i128, i64::MAX as i128) as i64,
        diffs.len(),
    )
}

fn shift_flow(f: &mut FlowRecord, offset: i64) {
    f.first_ts = shift(f.first_ts, offset);
    f.last_ts = shift(f.last_ts, offset);
    let mut icmp = f.icmp.to_vec();
    for e in &mut icmp {
        e.ts = shift(e.ts, offset);
    }
    f.icmp = icmp.into_boxed_slice();
}

fn shift_event(e: &mut Event, offset: i64) {
    match e {
        Event::EpmAnswer(a) => a.ts = shift(a.ts, offset),
        Event::Registration(r) => r.ts = shift(r.ts, offset),
    }
}

/// What makes two events from different taps the same event.
fn event_key(e: &Event) -> String {
    match e {
        Event::EpmAnswer(a) => format!(
            "epm {} {} {} {} {} {:?} {:x} {}",
            a.client,
            a.client_port,
            a.mapper,
            a.mapper_port,
            a.call_id,
            a.operation,
            a.status,
            a.endpoints.len()
        ),
        Event::Registration(r) => format!(
            "reg {} {} {} {:?}",
            r.client, r.server, r.callback, r.cookie
        ),
    }
}

/// Joins the inside and outside captures into one view.
pub fn join(inside: Collected, mut outside: Collected) -> (Collected, TapReport) {
    let (offset, aligned_by) = estimate_offset(&inside.flows, &outside.flows);
    for f in &mut outside.flows {
        shift_flow(f, offset);
    }
    for e in &mut outside.events {
        shift_event(e, offset);
    }

    let mut icmp_senders = BTreeSet::new();
    for f in inside.flows.iter().chain(outside.flows.iter()) {
        // "Fragment reassembly time exceeded" comes from the end host that
        // waited for the rest of a datagram (#25), not from a firewall.
        icmp_senders.extend(
            f.icmp
                .iter()
                .filter(|e| !matches!((e.v6, e.icmp_type, e.code), (false, 11, 1) | (true, 3, 1)))
                .map(|e| e.sender),
        );
    }
    let merged = pair_flows(inside.flows, outside.flows);
    let ports = crossings(&merged);
    let events = merge_events(inside.events, outside.events);

    let first =
        |inputs: &[crate::capture::InputInfo]| inputs.iter().filter_map(|i| i.first_ts).min();
    let tap_start = [
        first(&inside.inputs),
        first(&outside.inputs).map(|t| shift(t, offset)),
    ];
    let inside_inputs = inside.inputs.iter().map(|i| i.path.clone()).collect();
    let outside_inputs = outside.inputs.iter().map(|i| i.path.clone()).collect();

    let mut stats = inside.stats;
    add_stats(&mut stats, outside.stats);
    let mut inputs = inside.inputs;
    inputs.extend(outside.inputs);
    let (flows, per_flow): (Vec<FlowRecord>, Vec<Seen>) = merged.into_iter().unzip();
    let report = TapReport {
        view: TapView {
            per_flow,
            tap_start,
            icmp_senders,
        },
        offset_ns: offset,
        aligned_by,
        inside_inputs,
        outside_inputs,
        ports,
    };
    (
        Collected {
            inputs,
            stats,
            flows,
            events,
        },
        report,
    )
}

/// Pairs the records of one connection seen on both taps, keeping the
/// fuller view of each, in flow order, with the packets each tap saw.
fn pair_flows(inside: Vec<FlowRecord>, outside: Vec<FlowRecord>) -> Vec<(FlowRecord, Seen)> {
    let mut outs: BTreeMap<Key, Vec<(usize, bool)>> = BTreeMap::new();
    for (i, f) in outside.iter().enumerate() {
        outs.entry(key(f)).or_default().push((i, false));
    }
    let mut out_flows: Vec<Option<FlowRecord>> = outside.into_iter().map(Some).collect();
    let mut merged: Vec<(FlowRecord, Seen)> = Vec::new();
    for f in inside {
        let partner = outs.get_mut(&key(&f)).and_then(|list| {
            list.iter_mut()
                .find(|(j, used)| {
                    !*used
                        && out_flows[*j].as_ref().is_some_and(|o| {
                            o.first_ts <= f.last_ts + MATCH_SLACK
                                && f.first_ts <= o.last_ts + MATCH_SLACK
                        })
                })
                .map(|(j, used)| {
                    *used = true;
                    *j
                })
        });
        match partner.and_then(|j| out_flows[j].take()) {
            Some(o) => {
                let seen = [Some(f.packets), Some(o.packets)];
                // Keep the fuller view (the initiator's side sees the
                // firewall's answers too); ties go to the inside.
                let (mut pick, other) = if o.packets[0] + o.packets[1] > f.packets[0] + f.packets[1]
                {
                    (o, f)
                } else {
                    (f, o)
                };
                carry_losses(&mut pick, other);
                merged.push((pick, seen));
            }
            None => {
                let seen = [Some(f.packets), None];
                merged.push((f, seen));
            }
        }
    }
    for o in out_flows.into_iter().flatten() {
        let seen = [None, Some(o.packets)];
        merged.push((o, seen));
    }
    merged.sort_by(|a, b| flow_order(&a.0, &b.0));

    merged
}

/// What only the other tap's record of a connection shows about packets
/// lost after the handshake (#25), kept on the record the join keeps: the
/// datagrams that came there as first fragments only, and the "fragmentation
/// needed" / "packet too big" errors that reached only that tap.
fn carry_losses(pick: &mut FlowRecord, other: FlowRecord) {
    if let (None, Some(frag)) = (pick.frag_loss(), other.frag_loss().copied()) {
        let stall = pick.stall().copied();
        pick.losses = crate::flow::Losses::boxed(stall, Some(frag));
    }
    let too_big = |e: &crate::flow::IcmpEvidence| {
        matches!((e.v6, e.icmp_type, e.code), (false, 3, 4) | (true, 2, _))
    };
    if !pick.icmp.iter().any(too_big) {
        let extra: Vec<_> = other.icmp.iter().filter(|e| too_big(e)).copied().collect();
        if !extra.is_empty() {
            let mut icmp = pick.icmp.to_vec();
            icmp.extend(extra);
            pick.icmp = icmp.into_boxed_slice();
        }
    }
}

/// The per-port crossing table.
fn crossings(merged: &[(FlowRecord, Seen)]) -> Vec<PortCrossing> {
    let mut ports: BTreeMap<(IpAddr, u8, u16), PortCrossing> = BTreeMap::new();
    for (f, seen) in merged {
        let p = ports
            .entry((f.server, f.proto, f.server_port))
            .or_insert_with(|| PortCrossing {
                server: f.server,
                proto: f.proto,
                port: f.server_port,
                both: 0,
                only_inside: 0,
                only_outside: 0,
                inside_packets: [0; 2],
                outside_packets: [0; 2],
            });
        match seen {
            [Some(_), Some(_)] => p.both += 1,
            [Some(_), None] => p.only_inside += 1,
            [None, Some(_)] => p.only_outside += 1,
            [None, None] => {}
        }
        if let Some(a) = seen[Tap::Inside as usize] {
            p.inside_packets[0] += a[0];
            p.inside_packets[1] += a[1];
        }
        if let Some(b) = seen[Tap::Outside as usize] {
            p.outside_packets[0] += b[0];
            p.outside_packets[1] += b[1];
        }
    }

    ports.into_values().collect()
}

/// The inside tap's events and those of the outside tap it did not see
/// too: the same EPM answer is usually seen on both taps.
fn merge_events(inside: Vec<Event>, outside: Vec<Event>) -> Vec<Event> {
    let mut events = inside;
    let mut known: BTreeMap<String, Vec<Ts>> = BTreeMap::new();
    for e in &events {
        known.entry(event_key(e)).or_default().push(e.ts());
    }
    for e in outside {
        let dup = known
            .get(&event_key(&e))
            .is_some_and(|ts| ts.iter().any(|t| t.abs_diff(e.ts()) <= MATCH_SLACK));
        if !dup {
            events.push(e);
        }
    }

    events
}

/// Adds the outside tap's packet counters to the inside's.
fn add_stats(stats: &mut Stats, o: Stats) {
    stats.packets += o.packets;
    stats.bytes += o.bytes;
    for (k, v) in o.decode_errors {
        *stats.decode_errors.entry(k).or_default() += v;
    }
    stats.tcp_packets += o.tcp_packets;
    stats.udp_packets += o.udp_packets;
    stats.icmp_packets += o.icmp_packets;
    stats.other_ip_packets += o.other_ip_packets;
    stats.snaplen_truncated += o.snaplen_truncated;
    stats.flow.add(&o.flow);
}
