//! The expected firewall policy: host groups, allowed and denied flows,
//! static port pins (the KB registry values), built-in profiles for the KB
//! scenarios. Pure data plus matching; verdicts (`crate::verdict`) sit on top.
//!
//! File format: see README.md ("Policy file") and [`Policy::starter_json`].

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use crate::roles::{Cidr, Roles};

pub mod profiles;
pub mod services;

/// Schema tag of a policy file.
pub const POLICY_SCHEMA: &str = "exflow.policy/1";

/// What a group is, for the built-in profiles (which speak of roles).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Exchange servers (back-end / mailbox).
    Exchange,
    /// Domain controllers and global catalogs.
    Dc,
    /// Client networks (MAPI, POP3, IMAP4, LDAP, NNTP clients).
    Clients,
    /// Front-end servers (in a perimeter network).
    Frontend,
    /// Remote-site MTAs (X.400 / site connector peers).
    RemoteMta,
    /// The perimeter network (DMZ) as a whole.
    Perimeter,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Exchange,
        Role::Dc,
        Role::Clients,
        Role::Frontend,
        Role::RemoteMta,
        Role::Perimeter,
    ];
    /// The name used in policy files: "exchange", "dc", "clients",
    /// "frontend", "remote-mta", "perimeter".
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Exchange => "exchange",
            Role::Dc => "dc",
            Role::Clients => "clients",
            Role::Frontend => "frontend",
            Role::RemoteMta => "remote-mta",
            Role::Perimeter => "perimeter",
        }
    }
}

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

/// One allow or deny rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Where it came from, for messages: "allow[2]", "deny[0]",
    /// "profile exchange55-mapi-clients".
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

impl Decision {
    /// "allowed" | "denied" | "unspecified" (report contract).
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Allowed(_) => "allowed",
            Decision::Denied(_) => "denied",
            Decision::Unspecified => "unspecified",
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
/// ("allow[3].to", "groups.clients.hosts[1]") and what is wrong.
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
        let _ = path;
        todo!("policy helper")
    }

    /// Parses and validates policy JSON; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Policy, PolicyError> {
        let _ = (text, file);
        todo!("policy helper")
    }

    /// The starter file `exflow policy init` writes (valid JSON that
    /// `parse` accepts), with the given profiles pre-selected.
    pub fn starter_json(profiles: &[&str]) -> String {
        let _ = profiles;
        todo!("policy helper")
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
        }
    }

    /// The pinned port of `service` on `server`, if a pin covers it.
    pub fn pin_for(&self, server: &IpAddr, service: &str) -> Option<&Pin> {
        let _ = (server, service);
        todo!("policy helper")
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
        let _ = (client, server, proto, port, service);
        todo!("policy helper")
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
        let _ = (rule, client, server, proto, port, service);
        todo!("policy helper")
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }
}
