//! `exflow diff OLD NEW`: what changed between two baselines.
//!
//! Entries are matched by their key (client group, server, service, proto,
//! port — dynamic RPC interfaces by (client group, server, service)):
//! * `new_flows`: keys only in NEW;
//! * `vanished_flows`: keys only in OLD;
//! * `failure_rate_changed`: keys in both whose failure rate
//!   (failure / (success + failure)) moved by at least
//!   [`FAILURE_RATE_THRESHOLD`] (absolute), or that went from no failure to
//!   some, or from some to none;
//! * `new_dynamic_ports`: dynamic RPC entries in both with ports in NEW never
//!   seen in OLD.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use super::{Baseline, Entry, EntryKey};

/// The absolute change in failure rate reported (0.2 = 20 percentage
/// points). Any change from zero failures to some (or back) is reported
/// whatever its size.
pub const FAILURE_RATE_THRESHOLD: f64 = 0.2;

/// The schema name of `exflow diff --format json`.
pub const SCHEMA: &str = "exflow.baseline-diff/1";

/// Success and failure counts on one side of a change.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Side {
    pub success: u64,
    pub failure: u64,
    /// Rounded to 4 decimals.
    pub failure_rate: f64,
    pub failing_ports: BTreeSet<u16>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RateChange {
    pub client_group: String,
    pub server: std::net::IpAddr,
    pub service: String,
    pub proto: String,
    pub port: Option<u16>,
    pub old: Side,
    pub new: Side,
    /// "worse" (more failures) or "better".
    pub direction: &'static str,
    /// The ports failing in NEW that did not fail in OLD.
    pub newly_failing_ports: BTreeSet<u16>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewPorts {
    pub client_group: String,
    pub server: std::net::IpAddr,
    pub service: String,
    pub proto: String,
    pub old_ports: BTreeSet<u16>,
    pub new_ports: BTreeSet<u16>,
}

/// The difference between two baselines.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diff {
    pub schema: &'static str,
    pub old: Vec<String>,
    pub new: Vec<String>,
    pub failure_rate_threshold: f64,
    pub new_flows: Vec<Entry>,
    pub vanished_flows: Vec<Entry>,
    pub failure_rate_changed: Vec<RateChange>,
    pub new_dynamic_ports: Vec<NewPorts>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.new_flows.is_empty()
            && self.vanished_flows.is_empty()
            && self.failure_rate_changed.is_empty()
            && self.new_dynamic_ports.is_empty()
    }
}

fn side(e: &Entry) -> Side {
    Side {
        success: e.success,
        failure: e.failure,
        failure_rate: (e.failure_rate() * 10_000.0).round() / 10_000.0,
        failing_ports: e.failing_ports(),
    }
}

/// Compares `old` with `new`; `old_name`/`new_name` label the sides.
pub fn diff(old: &Baseline, new: &Baseline, old_name: &str, new_name: &str) -> Diff {
    let o: BTreeMap<EntryKey, &Entry> = old.flows.iter().map(|e| (e.key(), e)).collect();
    let n: BTreeMap<EntryKey, &Entry> = new.flows.iter().map(|e| (e.key(), e)).collect();
    let mut d = Diff {
        schema: SCHEMA,
        old: vec![old_name.to_string()],
        new: vec![new_name.to_string()],
        failure_rate_threshold: FAILURE_RATE_THRESHOLD,
        new_flows: Vec::new(),
        vanished_flows: Vec::new(),
        failure_rate_changed: Vec::new(),
        new_dynamic_ports: Vec::new(),
    };
    for (k, e) in &n {
        let Some(oe) = o.get(k) else {
            d.new_flows.push((*e).clone());
            continue;
        };
        let (ro, rn) = (oe.failure_rate(), e.failure_rate());
        let newly: BTreeSet<u16> = e
            .failing_ports()
            .difference(&oe.failing_ports())
            .copied()
            .collect();
        if (rn - ro).abs() >= FAILURE_RATE_THRESHOLD - 1e-9
            || (oe.failure == 0) != (e.failure == 0)
            || !newly.is_empty()
        {
            d.failure_rate_changed.push(RateChange {
                client_group: e.client_group.clone(),
                server: e.server,
                service: e.service.clone(),
                proto: e.proto.clone(),
                port: e.port,
                old: side(oe),
                new: side(e),
                direction: if rn > ro || (rn == ro && !newly.is_empty()) {
                    "worse"
                } else {
                    "better"
                },
                newly_failing_ports: newly,
            });
        }
        if e.is_dynamic() {
            let (op, np) = (oe.all_ports(), e.all_ports());
            if !np.is_subset(&op) {
                d.new_dynamic_ports.push(NewPorts {
                    client_group: e.client_group.clone(),
                    server: e.server,
                    service: e.service.clone(),
                    proto: e.proto.clone(),
                    new_ports: np.difference(&op).copied().collect(),
                    old_ports: op,
                });
            }
        }
    }
    for (k, e) in &o {
        if !n.contains_key(k) {
            d.vanished_flows.push((*e).clone());
        }
    }
    d
}

fn counts(e: &Entry) -> String {
    format!(
        "{} conn, {} ok, {} failed, {} bytes, {} .. {}",
        e.connections, e.success, e.failure, e.bytes, e.first_seen, e.last_seen
    )
}

/// The readable diff.
pub fn to_text(d: &Diff) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "exflow diff: {} → {}",
        d.old.join(", "),
        d.new.join(", ")
    );
    let _ = writeln!(
        s,
        "(failure rate changes of at least {:.0} percentage points, or from none to some, are reported)",
        d.failure_rate_threshold * 100.0
    );
    let line = |e: &Entry| {
        format!(
            "  {} → {} {} {}: {}",
            e.client_group,
            e.server,
            e.port_label(),
            e.service,
            counts(e)
        )
    };
    let _ = writeln!(s, "\nNew flows ({}):", d.new_flows.len());
    for e in &d.new_flows {
        let _ = writeln!(s, "{}", line(e));
    }
    let _ = writeln!(s, "\nVanished flows ({}):", d.vanished_flows.len());
    for e in &d.vanished_flows {
        let _ = writeln!(s, "{}", line(e));
    }
    let _ = writeln!(
        s,
        "\nFailure rate changed ({}):",
        d.failure_rate_changed.len()
    );
    for c in &d.failure_rate_changed {
        let port = match c.port {
            Some(p) => format!("{}/{p}", c.proto),
            None => format!("{}/dynamic", c.proto),
        };
        let newly = if c.newly_failing_ports.is_empty() {
            String::new()
        } else {
            format!(
                "; newly failing port(s) {}",
                c.newly_failing_ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let _ = writeln!(
            s,
            "  {} {} → {} {port} {}: {:.0}% → {:.0}% failed ({}/{} → {}/{}){newly}",
            c.direction,
            c.client_group,
            c.server,
            c.service,
            c.old.failure_rate * 100.0,
            c.new.failure_rate * 100.0,
            c.old.failure,
            c.old.success + c.old.failure,
            c.new.failure,
            c.new.success + c.new.failure,
        );
    }
    let _ = writeln!(s, "\nNew dynamic ports ({}):", d.new_dynamic_ports.len());
    for p in &d.new_dynamic_ports {
        let list = |v: &BTreeSet<u16>| v.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
        let _ = writeln!(
            s,
            "  {} → {} {} {}: new {} (before: {})",
            p.client_group,
            p.server,
            p.proto,
            p.service,
            list(&p.new_ports),
            list(&p.old_ports)
        );
    }
    if d.is_empty() {
        let _ = writeln!(s, "\nNo differences.");
    }
    s
}

/// The JSON diff (pretty, deterministic, ending in a newline).
pub fn to_json(d: &Diff) -> String {
    let mut s = serde_json::to_string_pretty(d).expect("a diff serializes");
    s.push('\n');
    s
}
