//! The dynamic RPC interfaces of a baseline and how to fix their ports:
//! what `exflow rules` (its `PIN:` lines) and `exflow policy from-baseline`
//! (its `pins`) both say, from one computation, so they cannot disagree.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::Baseline;
use crate::kb::{self, ExchangeVersion};

/// One dynamic RPC interface on one server: the ports it worked on and
/// the registry values that pin it (none: no value is documented, so the
/// server's dynamic range is restricted instead, KB154596).
#[derive(Clone, Debug)]
pub struct PinPlan {
    pub server: IpAddr,
    pub service: String,
    /// Ports with at least one success, over every client group.
    pub ports: BTreeSet<u16>,
    pub values: Vec<&'static kb::Pin>,
    /// Other interfaces of the server the first value pins too, with their
    /// ports: one registry value is one port, whatever each was seen on.
    pub shares: Vec<(String, BTreeSet<u16>)>,
}

impl PinPlan {
    /// The port to pin in a policy: the single port it worked on, when a
    /// registry value can keep it there.
    pub fn policy_port(&self) -> Option<u16> {
        match (self.ports.len(), self.values.is_empty()) {
            (1, false) => self.ports.first().copied(),
            _ => None,
        }
    }

    /// How to fix it, in one paragraph: each registry value (labelled
    /// with its Exchange versions when `version` is unknown), what to
    /// restart, the port advice; or the range recipe.
    pub fn how(&self, version: Option<ExchangeVersion>) -> String {
        if self.values.is_empty() {
            return format!(
                "no registry value in the articles pins this interface: {}",
                kb::RANGE_RECIPE.text()
            );
        }
        // Values of one version (or not Exchange's) go together ("also":
        // NSPI on the Exchange server and on the global catalog; Netlogon's
        // two); the versions are alternatives ("or").
        let mut by_label: Vec<(String, Vec<String>)> = Vec::new();
        for p in &self.values {
            let label = if version.is_none() && !p.exchange.is_empty() {
                format!("[{}] ", versions_only(p))
            } else {
                String::new()
            };
            let slash = if p.value.value.contains('/') {
                format!("; {}", kb::FORWARD_SLASH)
            } else {
                String::new()
            };
            let text = format!("{}{slash}", p.line());
            match by_label.iter_mut().find(|(l, _)| *l == label) {
                Some((_, v)) => v.push(text),
                None => by_label.push((label, vec![text])),
            }
        }
        let values: Vec<String> = by_label
            .into_iter()
            .map(|(label, v)| format!("{label}{}", v.join("; also ")))
            .collect();
        let mut out = format!("pin it: {}", values.join(" or "));
        if !self.shares.is_empty() {
            let others: Vec<String> = self
                .shares
                .iter()
                .map(|(s, p)| {
                    let p: Vec<String> = p.iter().map(u16::to_string).collect();
                    format!("{s} (seen on {})", p.join(", "))
                })
                .collect();
            out.push_str(&format!(
                "; the same value pins {} on this server: set once, they share its one port",
                others.join(", ")
            ));
        }
        if self.values.iter().any(|p| p.rpc_port) {
            out.push_str("; ");
            out.push_str(kb::PORT_ADVICE_TEXT);
        }
        out.push_str("; then allow tcp to the pinned port (plus TCP 135)");
        out
    }
}

/// The plans of `b`'s dynamic RPC interfaces that worked, by (server,
/// service). The roles of the servers are not in a baseline: every value
/// that fits the version is listed.
pub fn pin_plans(b: &Baseline, version: Option<ExchangeVersion>) -> Vec<PinPlan> {
    let mut ports: BTreeMap<(IpAddr, &str), BTreeSet<u16>> = BTreeMap::new();
    for e in b.flows.iter().filter(|e| e.is_dynamic() && e.success > 0) {
        let ok = e.working_ports();
        if ok.is_empty() || crate::policy::services::service_ports(&e.service).is_none() {
            continue;
        }
        ports
            .entry((e.server, e.service.as_str()))
            .or_default()
            .extend(ok);
    }
    let cx = kb::Context {
        exchange: version,
        ..kb::Context::default()
    };
    let mut plans: Vec<PinPlan> = ports
        .into_iter()
        .map(|((server, service), ports)| PinPlan {
            server,
            service: service.to_string(),
            ports,
            values: kb::pins(service, None, &cx),
            shares: Vec::new(),
        })
        .collect();
    let first: Vec<Option<kb::RegistryValue>> = plans
        .iter()
        .map(|p| p.values.first().map(|v| v.value))
        .collect();
    for i in 0..plans.len() {
        let Some(v) = first[i] else { continue };
        let shares = plans
            .iter()
            .zip(&first)
            .enumerate()
            .filter(|(j, (o, w))| {
                *j != i
                    && o.server == plans[i].server
                    && w.is_some_and(|w| w.same_as(&v))
                    && o.ports != plans[i].ports
            })
            .map(|(_, (o, _))| (o.service.clone(), o.ports.clone()))
            .collect();
        plans[i].shares = shares;
    }
    plans
}

/// "Exchange 5.5", "Exchange 2000/2003/2007 on a global catalog".
fn versions_only(p: &kb::Pin) -> String {
    p.label()
        .replace(", global catalog", " on a global catalog")
}
