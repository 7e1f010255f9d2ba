//! `Baseline::merge` is associative and commutative, byte for byte, on
//! generated baselines (small key domains so that entries collide), and a
//! merged baseline survives a write/parse round trip unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use exflow::baseline::{Baseline, Entry, HandoffEntry, SCHEMA};
use proptest::prelude::*;

const TIMES: &[&str] = &[
    "2026-11-21T23:59:59.999999Z",
    "2026-11-22T00:01:21.114570Z",
    "2026-11-22T00:01:25.762297Z",
    "2026-11-23T08:00:00.000001Z",
];

fn time() -> impl Strategy<Value = String> {
    prop::sample::select(TIMES).prop_map(str::to_string)
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop::sample::select(vec![
        "198.51.100.10",
        "198.51.100.20",
        "192.0.2.10",
        "2001:db8::10",
    ])
    .prop_map(|s| s.parse().unwrap())
}

fn group() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "192.0.2.0/24",
        "10.1.2.0/24",
        "clients",
        "2001:db8::/64",
    ])
    .prop_map(str::to_string)
}

fn ports() -> impl Strategy<Value = BTreeSet<u16>> {
    prop::collection::btree_set(
        prop::sample::select(vec![55000u16, 55001, 55002, 6001]),
        0..3,
    )
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        (
            group(),
            ip(),
            prop::sample::select(vec!["epm", "ldap", "netlogon", "exchange-store"]),
        ),
        (
            prop::sample::select(vec!["tcp", "udp"]),
            prop::option::of(prop::sample::select(vec![135u16, 389, 88])),
        ),
        (ports(), ports(), ports()),
        prop::collection::btree_set(ip(), 1..3),
        (0u64..1000, 0u64..1_000_000, 0u64..50, 0u64..50),
        (time(), time()),
    )
        .prop_map(
            |((g, server, service), (proto, port), (mut all, ok, bad), clients, n, (t1, t2))| {
                let dynamic = port.is_none();
                if dynamic && all.is_empty() {
                    all.insert(55000);
                }
                let (first, last) = if t1 <= t2 { (t1, t2) } else { (t2, t1) };
                Entry {
                    client_group: g,
                    server,
                    service: service.to_string(),
                    proto: proto.to_string(),
                    port,
                    port_range: None,
                    ports: dynamic.then_some(all),
                    success_ports: dynamic.then_some(ok),
                    failure_ports: dynamic.then_some(bad),
                    clients,
                    connections: n.0,
                    bytes: n.1,
                    success: n.2,
                    failure: n.3,
                    first_seen: first,
                    last_seen: last,
                }
            },
        )
}

fn handoff() -> impl Strategy<Value = HandoffEntry> {
    (
        group(),
        ip(),
        prop::sample::select(vec!["netlogon", "exchange-store"]),
        prop::collection::btree_set(prop::sample::select(vec![55000u16, 55001]), 1..3),
        (0u64..9, 0u64..9, 0u64..9, 0u64..3),
        (time(), time()),
    )
        .prop_map(|(g, server, service, ports, n, (t1, t2))| {
            let (first, last) = if t1 <= t2 { (t1, t2) } else { (t2, t1) };
            HandoffEntry {
                client_group: g,
                server,
                service: service.to_string(),
                proto: "tcp".into(),
                ports,
                followed: n.0,
                not_followed: n.1,
                superseded: n.2,
                not_captured: n.3,
                first_seen: first,
                last_seen: last,
            }
        })
}

fn baseline() -> impl Strategy<Value = Baseline> {
    (
        prop::collection::btree_set(
            prop::sample::select(vec!["a.pcap", "b.pcap", "c.pcap"]),
            0..3,
        ),
        prop::collection::vec(entry(), 0..8),
        prop::collection::vec(handoff(), 0..4),
        prop::option::of(prop::collection::btree_set(
            prop::sample::select(vec!["192.0.2.0/24", "192.0.2.128/25"]),
            1..3,
        )),
    )
        .prop_map(|(inputs, flows, handoffs, clients)| {
            let mut groups = BTreeMap::new();
            if let Some(nets) = clients {
                groups.insert(
                    "clients".to_string(),
                    nets.into_iter().map(str::to_string).collect(),
                );
            }
            // A named client group is defined in `groups` (the reader
            // refuses one that is neither there nor a network).
            let named = flows.iter().any(|e| e.client_group == "clients")
                || handoffs.iter().any(|h| h.client_group == "clients");
            if named {
                groups
                    .entry("clients".to_string())
                    .or_insert_with(|| ["192.0.2.0/24".to_string()].into());
            }
            Baseline {
                schema: SCHEMA.to_string(),
                inputs: inputs.into_iter().map(str::to_string).collect(),
                groups,
                flows,
                handoffs,
            }
            .normalized()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn merge_is_commutative(a in baseline(), b in baseline()) {
        prop_assert_eq!(a.merge(&b).to_json(), b.merge(&a).to_json());
    }

    #[test]
    fn merge_is_associative(a in baseline(), b in baseline(), c in baseline()) {
        let left = a.merge(&b).merge(&c).to_json();
        let right = a.merge(&b.merge(&c)).to_json();
        prop_assert_eq!(&left, &right);
        // And any order of the three.
        prop_assert_eq!(&left, &c.merge(&a).merge(&b).to_json());
    }

    #[test]
    fn merged_baselines_round_trip_through_the_file_format(a in baseline(), b in baseline()) {
        let m = a.merge(&b);
        let text = m.to_json();
        let back = Baseline::parse(&text, "m.json").map_err(TestCaseError::fail)?;
        prop_assert_eq!(back.to_json(), text);
    }

    #[test]
    fn merging_with_itself_doubles_the_counts(a in baseline()) {
        let m = a.merge(&a);
        prop_assert_eq!(m.flows.len(), a.flows.len());
        for (x, y) in a.flows.iter().zip(&m.flows) {
            prop_assert_eq!(x.connections * 2, y.connections);
            prop_assert_eq!(&x.first_seen, &y.first_seen);
        }
    }
}
