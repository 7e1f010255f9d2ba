//! Findings: what the admin must act on, with its evidence and its fix.
//!
//! The types every stage that makes or renders findings shares: the
//! correlator (`not-registered`), the verdicts (blocked, refused, out of
//! policy, after the handshake), the two-tap join (the tap a packet was
//! lost behind), the renderers. They sit below all of them so that
//! dependencies run one way (ARCHITECTURE.md, "Layers").

use std::net::IpAddr;

use crate::event::InterfaceId;
use crate::policy::DecisionKind;
use crate::Ts;

mod evidence;
mod sources;

pub use evidence::{Confidence, Direction, Evidence, IcmpMeaning, Tap};
pub use sources::{fix_sources, FixSources, SourceChoice, MAX_FIX_SOURCES};

crate::contract::contract_enum! {
    /// Finding kinds of the report contract.
    pub enum FindingKind {
        /// Data mid-stream retransmitted again and again, never answered,
        /// without a long silence before it (#25).
        BlackHole => "black-hole",
        /// The network (a firewall) stops it.
        Blocked => "blocked",
        /// Many sources, one SYN each, to one endpoint (a flood or its
        /// backscatter; see `verdict::scans`).
        Flood => "flood",
        /// Datagrams that never completed: their first fragment came, the
        /// ones after it did not (a path that drops IP fragments, #25).
        FragmentsDropped => "fragments-dropped",
        /// An answered connection whose data after a long silence was
        /// dropped or answered by a forged reset: a firewall forgot it (#25).
        KilledAfterIdle => "killed-after-idle",
        /// An allow rule of the policy no traffic matched.
        NeverSeen => "never-seen",
        /// Working traffic the policy does not allow.
        NotInPolicy => "not-in-policy",
        /// The endpoint mapper said the interface is not registered.
        NotRegistered => "not-registered",
        /// Segments larger than any that passed, sent again and again with
        /// don't-fragment set and never answered: too big for a link on the
        /// path, whose "fragmentation needed" never reached the sender
        /// (#25).
        PmtuBlackHole => "pmtu-black-hole",
        /// One source probing many ports of one host.
        PortScan => "port-scan",
        /// The host itself refused (nothing listens there).
        RefusedByHost => "refused-by-host",
        /// One source probing one port on many hosts.
        Sweep => "sweep",
    }
}

impl FindingKind {
    /// What an admin must act on (exit code 1): not what the capture only
    /// shows (scans) or cannot confirm (an allow rule never used).
    pub fn is_actionable(self) -> bool {
        !matches!(
            self,
            FindingKind::NeverSeen
                | FindingKind::PortScan
                | FindingKind::Sweep
                | FindingKind::Flood
        )
    }
}

/// A registry value that pins a port (the KB articles' static ports), with
/// what the articles say around it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinAdvice {
    pub service: &'static str,
    /// The RPC interface (or component) it pins.
    pub component: String,
    /// The full key (`HKEY_LOCAL_MACHINE\...`); the value is a name in it,
    /// never one more path component ("TCP/IP Port" has a forward slash).
    pub key: String,
    pub value: String,
    pub kind: &'static str,
    /// How the data is written ("port number, decimal").
    pub data: &'static str,
    /// The Exchange versions it is for ("Exchange 5.5"), when the value
    /// depends on the version; None for Windows and Outlook values.
    pub exchange: Option<String>,
    /// Where to set it.
    pub on: String,
    /// What to restart afterwards.
    pub restart: &'static str,
    /// What else the article says (other ports, same port on every MTA,
    /// the forward slash).
    pub notes: Vec<String>,
    pub article: &'static str,
}

/// What to do about a finding.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Fix {
    pub summary: String,
    pub nftables: Vec<String>,
    pub iptables: Vec<String>,
    /// For a dynamic RPC port (or the UDP notification port): the
    /// registry values that pin it.
    pub pin: Vec<PinAdvice>,
    pub note: Option<String>,
    /// How to choose and check a pinned port (KB270836), when `pin` has a
    /// server RPC port.
    pub port_advice: Option<&'static str>,
    /// No registry value pins the interface: KB154596's recipe to restrict
    /// the server's dynamic RPC range (and KB929851's netsh).
    pub range: Option<String>,
    /// Whom the rules let through (or shut out), and what they stand for.
    pub sources: Option<FixSources>,
    /// `killed-after-idle`: the hosts' TCP keep-alive timer (#25).
    pub keepalive: Option<KeepAliveAdvice>,
    /// `pmtu-black-hole`, `fragments-dropped` (Kerberos): a registry value
    /// to set on hosts, from its article (#25).
    pub host_setting: Option<HostSettingAdvice>,
}

/// A registry value to set on hosts (`kb::HostSetting`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSettingAdvice {
    pub key: String,
    pub value: &'static str,
    pub kind: &'static str,
    pub data: &'static str,
    pub set_to: &'static str,
    /// Which hosts (the clients, the server, by address).
    pub on: String,
    pub default: &'static str,
    pub advice: &'static str,
    pub restart: &'static str,
    pub article: &'static str,
}

impl HostSettingAdvice {
    /// `s` to set on `on`.
    pub fn of(s: &crate::kb::HostSetting, on: String) -> HostSettingAdvice {
        HostSettingAdvice {
            key: s.value.full_key(),
            value: s.value.value,
            kind: s.value.kind.as_str(),
            data: s.value.data,
            set_to: s.set_to,
            on,
            default: s.default,
            advice: s.advice,
            restart: s.restart,
            article: s.article.id(),
        }
    }
}

/// The Windows keep-alive value to set on the hosts (`kb::KEEPALIVE`),
/// with a time below the firewall's idle timeout as the capture brackets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeepAliveAdvice {
    pub key: String,
    pub value: &'static str,
    pub kind: &'static str,
    pub data: &'static str,
    /// Milliseconds: the longest silence a connection survived, or half the
    /// shortest one that killed it when none survived.
    pub set_to_ms: u64,
    pub default: &'static str,
    pub advice: &'static str,
    pub article: &'static str,
}

/// Something the admin must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    pub proto: u8,
    pub server: IpAddr,
    pub port: u16,
    pub service: &'static str,
    /// Every service seen at this port (first = `service`).
    pub services: Vec<&'static str>,
    pub interface: Option<InterfaceId>,
    pub clients: Vec<IpAddr>,
    pub first_ts: Ts,
    pub evidence: Vec<Evidence>,
    pub confidence: Confidence,
    pub policy: DecisionKind,
    /// The rule that decided it (its origin), if any.
    pub policy_rule: Option<String>,
    /// One line: what this means (misconfigured firewall, denied but
    /// needed, ...).
    pub verdict: String,
    /// What breaks, in the KB's terms.
    pub consequence: Option<&'static str>,
    pub fix: Option<Fix>,
    /// `killed-after-idle`: what the gaps say about the firewall's idle
    /// timeout (#25).
    pub idle_timeout: Option<IdleEstimate>,
}

/// The firewall's idle timeout as the capture brackets it: connections
/// silent this long were killed, the longest silence one survived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdleEstimate {
    /// The shortest silence (whole seconds) before a killed connection's
    /// unanswered data: the timeout is at most this.
    pub killed_after_s: u64,
    /// The longest silence after which a connection to the same server
    /// port was still answered: the timeout is above this.
    pub longest_survived_s: Option<u64>,
}

impl Finding {
    /// Informational findings do not make the exit code 1.
    pub fn is_actionable(&self) -> bool {
        self.kind.is_actionable()
    }
}
