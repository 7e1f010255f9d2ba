//! Named services of policy rules: their protocols and default ports, which
//! of them can be pinned to a static port, and the registry values that pin
//! them (per the KB articles).

use crate::packet::{PROTO_TCP, PROTO_UDP};
use crate::proto::catalog;

/// How a service's ports are determined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    /// Fixed, well-known ports (`smtp`, `epm`, `x400-mta`, ...).
    Ports,
    /// One RPC interface (by the flow's service label), on the server's
    /// dynamic RPC range unless a pin fixes its port.
    RpcInterface,
    /// `rpc-dynamic`: any RPC interface on the dynamic RPC range.
    RpcDynamic,
    /// `mapi-notification`: UDP from the Exchange server to the client on a
    /// port above 1024 chosen by the client (Q264035).
    Notification,
}

/// One named service of policy rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    pub name: &'static str,
    /// `PROTO_TCP` and/or `PROTO_UDP`.
    pub protos: &'static [u8],
    /// Default ports (inclusive ranges). For RPC interfaces and
    /// `rpc-dynamic` this is the default dynamic range 1024-65535; the
    /// policy's `rpc_dynamic_ports` and pins override it.
    pub ports: &'static [(u16, u16)],
    pub kind: ServiceKind,
    /// Whether a policy `pins` entry may fix its port.
    pub pinnable: bool,
    /// One line for `describe` and the docs.
    pub description: &'static str,
}

const TCP: &[u8] = &[PROTO_TCP];
const UDP: &[u8] = &[PROTO_UDP];
const BOTH: &[u8] = &[PROTO_TCP, PROTO_UDP];
const DYNAMIC: &[(u16, u16)] = &[(1024, 65535)];

const fn fixed(
    name: &'static str,
    protos: &'static [u8],
    ports: &'static [(u16, u16)],
    description: &'static str,
) -> ServiceSpec {
    ServiceSpec {
        name,
        protos,
        ports,
        kind: ServiceKind::Ports,
        pinnable: false,
        description,
    }
}

const fn rpc(name: &'static str, description: &'static str) -> ServiceSpec {
    ServiceSpec {
        name,
        protos: TCP,
        ports: DYNAMIC,
        kind: ServiceKind::RpcInterface,
        pinnable: true,
        description,
    }
}

/// Every service name a policy rule may use, in documentation order.
pub static SERVICES: &[ServiceSpec] = &[
    fixed("epm", BOTH, &[(135, 135)], "RPC endpoint mapper"),
    rpc("exchange-store", "Exchange information store (EMSMDB)"),
    rpc(
        "exchange-directory",
        "Exchange directory / NSPI address book",
    ),
    rpc("exchange-referral", "Exchange directory referral (RFR)"),
    rpc("exchange-sa", "Exchange system attendant"),
    rpc("exchange-mta", "Exchange MTA RPC"),
    rpc("exchange-store-admin", "Exchange store administration"),
    rpc("ad-replication", "Active Directory replication (DRSUAPI)"),
    rpc("netlogon", "Netlogon (AD logon)"),
    rpc("lsarpc", "LSA RPC"),
    rpc("samr", "SAM RPC"),
    rpc("dnsserver", "DNS server management RPC"),
    rpc("frs", "File Replication Service"),
    rpc("dfsr", "DFS Replication"),
    rpc("rpc-other", "an RPC interface not in the catalogue"),
    ServiceSpec {
        name: "rpc-dynamic",
        protos: TCP,
        ports: DYNAMIC,
        kind: ServiceKind::RpcDynamic,
        pinnable: false,
        description: "any RPC interface on the dynamic RPC range",
    },
    ServiceSpec {
        name: "mapi-notification",
        protos: UDP,
        ports: &[(1025, 65535)],
        kind: ServiceKind::Notification,
        pinnable: true,
        description: "MAPI new-mail notification, Exchange server -> client (Q264035)",
    },
    ServiceSpec {
        pinnable: true,
        ..fixed("x400-mta", TCP, &[(102, 102)], "X.400 MTA over RFC 1006")
    },
    ServiceSpec {
        pinnable: true,
        ..fixed(
            "rfc1006",
            TCP,
            &[(102, 102)],
            "ISO transport over TCP (RFC 1006)",
        )
    },
    fixed("smtp", TCP, &[(25, 25)], "SMTP"),
    fixed("pop3", TCP, &[(110, 110)], "POP3"),
    fixed("pop3s", TCP, &[(995, 995)], "POP3 over SSL"),
    fixed("imap", TCP, &[(143, 143)], "IMAP4"),
    fixed("imaps", TCP, &[(993, 993)], "IMAP4 over SSL"),
    fixed("ldap", BOTH, &[(389, 389)], "LDAP"),
    fixed("ldaps", TCP, &[(636, 636)], "LDAP over SSL"),
    fixed("gc", TCP, &[(3268, 3268)], "LDAP to a global catalog"),
    fixed(
        "gc-ssl",
        TCP,
        &[(3269, 3269)],
        "LDAP to a global catalog over SSL",
    ),
    fixed("nntp", TCP, &[(119, 119)], "NNTP"),
    fixed("nntps", TCP, &[(563, 563)], "NNTP over SSL"),
    fixed("dns", BOTH, &[(53, 53)], "DNS"),
    fixed("kerberos", BOTH, &[(88, 88)], "Kerberos"),
    fixed("ntp", UDP, &[(123, 123)], "Windows time (NTP)"),
    fixed("smb", TCP, &[(445, 445)], "SMB"),
    fixed("netbios-ns", UDP, &[(137, 137)], "NetBIOS name service"),
    fixed(
        "netbios-dgm",
        UDP,
        &[(138, 138)],
        "NetBIOS datagram service",
    ),
    fixed("netbios-ssn", TCP, &[(139, 139)], "NetBIOS session service"),
    fixed("http", TCP, &[(80, 80)], "HTTP (Outlook Web Access)"),
    fixed("https", TCP, &[(443, 443)], "HTTPS"),
    fixed(
        "rpc-over-http",
        TCP,
        &[(593, 593)],
        "RPC over HTTP endpoint mapper",
    ),
];

/// The spec of a rule service name, if it is one.
pub fn service_ports(name: &str) -> Option<ServiceSpec> {
    SERVICES.iter().find(|s| s.name == name).copied()
}

/// Every rule service name, in documentation order.
pub fn service_names() -> impl Iterator<Item = &'static str> {
    SERVICES.iter().map(|s| s.name)
}

/// Whether `name` is an RPC interface service of the report contract
/// (`exchange-store`, `netlogon`, ..., `rpc-other`) — not `epm`, not
/// `rpc-dynamic`.
pub fn is_rpc_interface_service(name: &str) -> bool {
    service_ports(name).is_some_and(|s| s.kind == ServiceKind::RpcInterface)
}

/// Whether a policy pin may fix the port of `name`: the RPC interface
/// services, `x400-mta` (and its alias `rfc1006`) and `mapi-notification`.
pub fn is_pinnable(name: &str) -> bool {
    service_ports(name).is_some_and(|s| s.pinnable)
}

/// The service a pin of `name` is stored under: `rfc1006` and `x400-mta`
/// share the MTA's "RFC1006 Port Number".
pub fn pin_service(name: &str) -> &str {
    if name == "rfc1006" {
        "x400-mta"
    } else {
        name
    }
}

/// The protocol a pinned port of `service` is on.
pub fn pin_proto(service: &str) -> u8 {
    if service == "mapi-notification" {
        PROTO_UDP
    } else {
        PROTO_TCP
    }
}

/// A registry value that pins a service's port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistryValue {
    /// Full key, e.g. `HKLM\SYSTEM\CurrentControlSet\Services\MSExchangeIS\ParametersSystem`.
    pub key: &'static str,
    /// Value name, e.g. `TCP/IP Port`.
    pub value: &'static str,
    /// Always `REG_DWORD` (decimal port number).
    pub kind: &'static str,
    /// The KB article that documents it.
    pub article: &'static str,
    /// Where to set it and what it applies to.
    pub note: &'static str,
}

const MTA_KEY: &str = r"HKLM\SYSTEM\CurrentControlSet\Services\MSExchangeMTA\Parameters";
const OUTLOOK_RPC_KEY: &str = r"HKCU\Software\Microsoft\Office\11.0\Outlook\RPC";

fn article_and_note(pin: &catalog::RegistryPin) -> (&'static str, &'static str) {
    let key = pin.key;
    if key.ends_with(r"MSExchangeIS\ParametersSystem") {
        (
            "KB270836",
            "on the Exchange server: information store (Exchange 5.5: Q155831)",
        )
    } else if key.ends_with(r"MSExchangeSA\Parameters") && pin.value == "TCP/IP NSPI Port" {
        (
            "KB270836",
            "on the Exchange 2000/2003 server: NSPI (directory) proxy",
        )
    } else if key.ends_with(r"MSExchangeSA\Parameters") {
        (
            "KB270836",
            "on the Exchange server: system attendant and directory referral (RFR)",
        )
    } else if key.ends_with(r"MSExchangeDS\Parameters") {
        ("Q155831", "on the Exchange 5.5 server: directory service")
    } else if key.ends_with(r"NTDS\Parameters") {
        (
            "KB270836",
            "on every domain controller / global catalog reached through the firewall: AD logon, replication and NSPI",
        )
    } else if key.ends_with(r"MSExchangeMTA\Parameters") {
        (
            "Q161931",
            "on the Exchange server: MTA RPC listens (Q176466)",
        )
    } else if key.ends_with(r"Netlogon\Parameters") {
        ("KB224196", "on the domain controller: Netlogon")
    } else if key.ends_with(r"NTFRS\Parameters") {
        (
            "KB319553",
            "on the domain controller: File Replication Service",
        )
    } else {
        ("KB270836", "")
    }
}

/// The registry values that pin `service`'s port (empty when the service
/// cannot be pinned, or no registry value is known for it). The first is
/// the one to suggest first.
pub fn pin_registry(service: &str) -> Vec<RegistryValue> {
    let mut out: Vec<RegistryValue> = Vec::new();
    match pin_service(service) {
        "x400-mta" => out.push(RegistryValue {
            key: MTA_KEY,
            value: "RFC1006 Port Number",
            kind: "REG_DWORD",
            article: "Q161931",
            note: "on every Exchange server whose MTAs talk X.400 over RFC 1006: all must use the same port (Q176466)",
        }),
        "mapi-notification" => out.push(RegistryValue {
            key: OUTLOOK_RPC_KEY,
            value: "FixedUDPPort",
            kind: "REG_DWORD",
            article: "Q264035",
            note: "on the client, per user (Outlook 2003 and later; 12.0 for Outlook 2007): the UDP port new-mail notifications are sent to",
        }),
        name if is_rpc_interface_service(name) => {
            for iface in catalog::INTERFACES.iter().filter(|i| i.service == name) {
                for pin in iface.pins {
                    let (article, note) = article_and_note(pin);
                    let v = RegistryValue {
                        key: pin.key,
                        value: pin.value,
                        kind: "REG_DWORD",
                        article,
                        note,
                    };
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
            }
            if name == "netlogon" {
                // KB270836 (front-end in a perimeter network): the NTDS port
                // also carries the AD logon interface.
                let (article, note) = article_and_note(&NTDS_PIN);
                out.push(RegistryValue {
                    key: NTDS_PIN.key,
                    value: NTDS_PIN.value,
                    kind: "REG_DWORD",
                    article,
                    note,
                });
            }
        }
        _ => {}
    }
    out
}

const NTDS_PIN: catalog::RegistryPin = catalog::RegistryPin {
    key: r"HKLM\SYSTEM\CurrentControlSet\Services\NTDS\Parameters",
    value: "TCP/IP Port",
};
