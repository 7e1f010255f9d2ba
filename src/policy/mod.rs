//! The expected firewall policy: host groups, allowed and denied flows,
//! static port pins (the KB registry values), built-in profiles for the KB
//! scenarios. Pure data plus matching; verdicts (`crate::verdict`) sit on top.
//!
//! File format: see README.md ("Policy file") and [`Policy::starter_json`].

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use crate::packet::{PROTO_TCP, PROTO_UDP};
use crate::roles::{Cidr, Roles};

mod describe;
mod parse;
pub(crate) use parse::may_share_port;
pub mod profiles;
pub mod services;
mod starter;
#[cfg(test)]
mod tests;

use services::ServiceKind;

/// Schema tag of a policy file.
pub const POLICY_SCHEMA: &str = "exflow.policy/1";

/// Roles are the KB scenarios' vocabulary (`kb`); groups carry them.
pub use crate::kb::Role;

/// A named set of hosts and networks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub role: Option<Role>,
    pub members: Vec<Cidr>,
}

/// Ports a rule covers: inclusive ranges, sorted, non-overlapping.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PortSet(pub Vec<(u16, u16)>);

impl PortSet {
    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| lo <= port && port <= hi)
    }

    /// Sorts and merges overlapping and adjacent ranges.
    pub fn from_ranges(mut ranges: Vec<(u16, u16)>) -> PortSet {
        ranges.sort_unstable();
        let mut out: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match out.last_mut() {
                Some(last) if u32::from(lo) <= u32::from(last.1) + 1 => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        PortSet(out)
    }
}

/// "135", "6001-6004", "25,110,143".
impl fmt::Display for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(lo, hi)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

/// "tcp", "udp", or "tcp/udp" for a set of IP protocol numbers.
pub fn protos_str(protos: &[u8]) -> &'static str {
    match (protos.contains(&PROTO_TCP), protos.contains(&PROTO_UDP)) {
        (true, true) => "tcp/udp",
        (true, false) => "tcp",
        (false, true) => "udp",
        (false, false) => "-",
    }
}

/// The IP protocol number of "tcp" or "udp".
pub fn proto_number(name: &str) -> Option<u8> {
    match name {
        "tcp" => Some(PROTO_TCP),
        "udp" => Some(PROTO_UDP),
        _ => None,
    }
}

/// "tcp" | "udp" for one IP protocol number (the report contract's words).
pub fn proto_str(proto: u8) -> &'static str {
    match proto {
        PROTO_TCP => "tcp",
        PROTO_UDP => "udp",
        _ => "other",
    }
}

/// What traffic a rule is about: a named service (its ports follow from the
/// service table and the server's pins) or explicit protocol and ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Traffic {
    /// A service name of the report contract (`epm`, `exchange-store`,
    /// `smtp`, ...) or one of the policy-only names `rpc-dynamic`
    /// (any RPC interface on a dynamic port) and `x400-mta`.
    Service(String),
    /// `proto` None = both tcp and udp.
    Ports { proto: Option<u8>, ports: PortSet },
}

/// "epm", "tcp 6001-6004", "tcp/udp 53".
impl fmt::Display for Traffic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Traffic::Service(s) => f.write_str(s),
            Traffic::Ports { proto, ports } => {
                let p = match proto {
                    Some(p) => proto_str(*p),
                    None => "tcp/udp",
                };
                write!(f, "{p} {ports}")
            }
        }
    }
}

/// One allow or deny rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Where it came from, for messages: `allow[2]`, `deny[0]`,
    /// `profile exchange55-mapi-clients`.
    pub origin: String,
    /// Group names (validated to exist).
    pub from: String,
    pub to: String,
    pub traffic: Traffic,
    pub comment: Option<String>,
}

/// A static port pin: the registry value that fixes a service's port on a
/// server (or on every member of a group).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    /// A group name, or a single address.
    pub server: String,
    pub service: String,
    pub proto: u8,
    pub port: u16,
}

/// The policy's answer for one flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by this rule (its `origin`).
    Allowed(String),
    /// Denied by an explicit deny rule (its `origin`).
    Denied(String),
    /// No rule covers it (or no policy).
    Unspecified,
}

crate::contract::contract_enum! {
    /// What the policy says of a flow, without the rule (the report
    /// contract's `policy` of findings and verdicts).
    pub enum DecisionKind {
        Allowed => "allowed",
        Denied => "denied",
        Unspecified => "unspecified",
    }
}

impl Decision {
    pub fn kind(&self) -> DecisionKind {
        match self {
            Decision::Allowed(_) => DecisionKind::Allowed,
            Decision::Denied(_) => DecisionKind::Denied,
            Decision::Unspecified => DecisionKind::Unspecified,
        }
    }

    /// The rule that decided (its origin), if one did.
    pub fn rule(&self) -> Option<&str> {
        match self {
            Decision::Allowed(r) | Decision::Denied(r) => Some(r),
            Decision::Unspecified => None,
        }
    }
}

/// A loaded, validated policy.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Policy {
    pub groups: Vec<Group>,
    /// Built-in profiles applied (their rules are in `allow`).
    pub profiles: Vec<String>,
    /// Explicit allows and those of the profiles.
    pub allow: Vec<Rule>,
    pub deny: Vec<Rule>,
    pub pins: Vec<Pin>,
    /// The servers' dynamic RPC port range (default 1024-65535).
    pub rpc_dynamic: PortSet,
}

/// Why a policy file was rejected: the file, the JSON path of the field
/// (`allow[3].to`, `groups.clients.hosts[1]`) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    pub file: String,
    pub field: String,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.field, self.message)
        }
    }
}

impl std::error::Error for PolicyError {}

impl Policy {
    /// Reads and validates a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            file: file.clone(),
            field: String::new(),
            message: format!("cannot read the policy file: {e}"),
        })?;
        Policy::parse(&text, &file)
    }

    /// Parses and validates policy JSON; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Policy, PolicyError> {
        parse::parse(text, file)
    }

    /// The starter file `exflow policy init` writes (valid JSON that
    /// `parse` accepts), with the given profiles pre-selected.
    pub fn starter_json(profiles: &[&str]) -> String {
        starter::starter_json(profiles)
    }

    /// The first group (in file order) containing `ip`.
    pub fn group_of(&self, ip: &IpAddr) -> Option<&Group> {
        self.groups
            .iter()
            .find(|g| g.members.iter().any(|c| c.contains(ip)))
    }

    /// Roles for flow labelling (Exchange servers, DCs, client networks).
    pub fn roles(&self) -> Roles {
        let of = |role: Role| -> Vec<Cidr> {
            self.groups
                .iter()
                .filter(|g| g.role == Some(role))
                .flat_map(|g| g.members.iter().copied())
                .collect()
        };
        Roles {
            exchange: of(Role::Exchange),
            dcs: of(Role::Dc),
            clients: of(Role::Clients),
            exchange_version: self.exchange_version(),
        }
    }

    /// The Exchange version the policy's profiles speak of (one, and no
    /// other), which picks the registry values its pins stand for.
    pub fn exchange_version(&self) -> Option<crate::kb::ExchangeVersion> {
        crate::kb::profiles_version(self.profiles.iter().map(String::as_str))
    }

    /// The pinned port of `service` on `server`, if a pin covers it.
    /// A pin naming the address itself wins over one naming a group that
    /// contains it; `rfc1006` and `x400-mta` share their pins.
    pub fn pin_for(&self, server: &IpAddr, service: &str) -> Option<&Pin> {
        let service = services::pin_service(service);
        let of_service = || self.pins.iter().filter(move |p| p.service == service);
        of_service()
            .find(|p| p.server.parse::<IpAddr>().ok() == Some(*server))
            .or_else(|| of_service().find(|p| self.in_group(&p.server, server)))
    }

    /// Whether `ip` is a member of the group named `name`.
    pub fn in_group(&self, name: &str, ip: &IpAddr) -> bool {
        self.group(name)
            .is_some_and(|g| g.members.iter().any(|c| c.contains(ip)))
    }

    /// What the policy says about a flow from `client` to `server` (`proto`,
    /// `port`) whose service label is `service`. Denies win over allows.
    pub fn decide(
        &self,
        client: &IpAddr,
        server: &IpAddr,
        proto: u8,
        port: u16,
        service: &str,
    ) -> Decision {
        let hit = |r: &&Rule| self.rule_matches(r, client, server, proto, port, service);
        if let Some(r) = self.deny.iter().find(hit) {
            return Decision::Denied(r.origin.clone());
        }
        match self.allow.iter().find(hit) {
            Some(r) => Decision::Allowed(r.origin.clone()),
            None => Decision::Unspecified,
        }
    }

    /// Whether `rule` covers that flow (used for never-seen accounting).
    pub fn rule_matches(
        &self,
        rule: &Rule,
        client: &IpAddr,
        server: &IpAddr,
        proto: u8,
        port: u16,
        service: &str,
    ) -> bool {
        self.in_group(&rule.from, client)
            && self.in_group(&rule.to, server)
            && self.traffic_matches(&rule.traffic, server, proto, port, service)
    }

    /// Whether `traffic` covers a flow to `server` (`proto`, `port`) whose
    /// service label is `service` (group membership aside):
    /// explicit ports by protocol and port; a port-defined service by its
    /// protocols and ports (or its pin: `x400-mta`); `mapi-notification` by
    /// the label or UDP above 1024 (or the client's FixedUDPPort pin); an RPC
    /// interface by the label and the pinned port, else the dynamic range;
    /// `rpc-dynamic` by TCP on the dynamic range with an RPC-ish label.
    pub fn traffic_matches(
        &self,
        traffic: &Traffic,
        server: &IpAddr,
        proto: u8,
        port: u16,
        service: &str,
    ) -> bool {
        match traffic {
            Traffic::Ports { proto: p, ports } => {
                (proto == PROTO_TCP || proto == PROTO_UDP)
                    && p.is_none_or(|p| p == proto)
                    && ports.contains(port)
            }
            Traffic::Service(name) => {
                let Some(spec) = services::service_ports(name) else {
                    return false;
                };
                let pin = if spec.pinnable() {
                    self.pin_for(server, name)
                } else {
                    None
                };
                match spec.kind {
                    ServiceKind::Ports => match pin {
                        Some(pin) => proto == pin.proto && port == pin.port,
                        None => {
                            spec.protos.contains(&proto)
                                && PortSet(spec.ports.to_vec()).contains(port)
                        }
                    },
                    ServiceKind::Notification => {
                        service == "mapi-notification"
                            || (proto == PROTO_UDP
                                && match pin {
                                    Some(pin) => port == pin.port,
                                    None => port > 1024,
                                })
                    }
                    ServiceKind::RpcInterface => {
                        service == name.as_str()
                            && match pin {
                                Some(pin) => proto == pin.proto && port == pin.port,
                                None => proto == PROTO_TCP && self.rpc_dynamic.contains(port),
                            }
                    }
                    ServiceKind::RpcDynamic => {
                        proto == PROTO_TCP
                            && self.rpc_dynamic.contains(port)
                            && (services::is_rpc_interface_service(service) || service == "unknown")
                    }
                    // exflow follows TCP and UDP only: no flow is ICMP echo.
                    ServiceKind::IcmpEcho => false,
                }
            }
        }
    }

    /// The protocols and ports `service` uses toward `server` under this
    /// policy: its pin there, else the dynamic RPC range for RPC interfaces
    /// and `rpc-dynamic`, else the service's default ports. For writing
    /// firewall rules and counting never-seen flows. None for an unknown
    /// service name.
    pub fn service_ports_on(&self, server: &IpAddr, service: &str) -> Option<(Vec<u8>, PortSet)> {
        let spec = services::service_ports(service)?;
        if spec.pinnable() {
            if let Some(pin) = self.pin_for(server, service) {
                return Some((vec![pin.proto], PortSet(vec![(pin.port, pin.port)])));
            }
        }
        let ports = match spec.kind {
            ServiceKind::RpcInterface | ServiceKind::RpcDynamic => self.rpc_dynamic.clone(),
            ServiceKind::Ports | ServiceKind::Notification | ServiceKind::IcmpEcho => {
                PortSet(spec.ports.to_vec())
            }
        };
        Some((spec.protos.to_vec(), ports))
    }

    /// Warnings for `exflow policy check`: profiles (or parts of them) that
    /// add nothing because no group has the roles they speak of.
    pub fn profile_warnings(&self) -> Vec<String> {
        let has = |role: Role| self.groups.iter().any(|g| g.role == Some(role));
        let mut out = Vec::new();
        for name in &self.profiles {
            let Some(p) = profiles::lookup(name) else {
                continue;
            };
            let missing: Vec<&str> = p
                .roles()
                .into_iter()
                .filter(|r| !has(*r))
                .map(Role::as_str)
                .collect();
            if missing.is_empty() {
                continue;
            }
            let adds = p.rules.iter().any(|r| has(r.from) && has(r.to));
            let roles = missing.join(", ");
            out.push(if adds {
                format!("profile {name}: no group has role {roles}; its rules for that role add nothing")
            } else {
                format!("profile {name} adds nothing: no group has role {roles}")
            });
        }
        let versions: Vec<String> = self
            .profiles
            .iter()
            .filter_map(|n| profiles::lookup(n))
            .filter_map(|p| {
                p.exchange
                    .map(|v| format!("{} (Exchange {})", p.name, v.as_str()))
            })
            .collect();
        if self.exchange_version().is_none() && versions.len() > 1 {
            out.push(format!(
                "profiles {} speak of different Exchange versions: pins list every version's registry value (--exchange-version picks one)",
                versions.join(", ")
            ));
        }
        out
    }

    /// A human summary (`exflow policy check FILE`): groups, rules
    /// (including those the profiles expand to), pins, warnings.
    pub fn describe(&self) -> String {
        describe::describe(self, None)
    }

    /// [`Policy::describe`] for Exchange `version` (`--exchange-version`;
    /// None: what the profiles say).
    pub fn describe_for(&self, version: Option<crate::kb::ExchangeVersion>) -> String {
        describe::describe(self, version)
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }
}
