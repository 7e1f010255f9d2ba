//! What exflow knows about Exchange and Windows services through a
//! firewall, in one table: per service its transport and ports, its RPC
//! interfaces (UUID, version), the registry values that pin its port (key,
//! value name, type and format, Exchange version, where, what to restart),
//! what breaks when it is blocked, and the article that says each of these.
//!
//! Everything that gives advice reads this file: the verdicts'
//! consequences and fixes (`verdict`), the policy language and its
//! profiles (`policy`), `exflow rules` and `exflow policy from-baseline`
//! (`baseline`), the text headline (`report`). Nothing else names a
//! registry value, a port of the KB articles or an article.
//!
//! Every row cites its article with the words the article uses
//! ([`Cite::says`]). The articles in `../shared/seeds` are checked word for
//! word by `tests/kb_table.rs`; the others (KB154596, KB224196, KB929851,
//! Q148732, Q161931, Q180795, KB319553) are not in the seeds: where each was
//! read is in [`Article::source`]. What no article states (IANA ports of
//! services the KB articles do not list) cites its real source, never a KB.
//!
//! Why one table rather than match arms in each module: two commands that
//! read two copies of the same knowledge drift apart (`policy
//! from-baseline` pinned lsarpc while `rules` said no value pins it).

use crate::packet::{PROTO_TCP, PROTO_UDP};
use crate::proto::dcerpc::Uuid;

// ---------------------------------------------------------------------------
// Articles

/// The Microsoft articles exflow's advice comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Article {
    /// XADM: Setting TCP/IP Port Numbers for Internet Firewalls (Exchange
    /// 4.0-5.5: directory, store, System Attendant).
    Q148732,
    /// XADM: Setting TCP/IP Ports for Exchange and Outlook Client
    /// Connections Through a Firewall (Exchange 4.0-5.5).
    Q155831,
    /// XCON: Configuring MTA TCP/IP Port # for X.400 and RPC Listens.
    Q161931,
    /// XGEN: TCP Ports and Microsoft Exchange: In-depth Discussion.
    Q176466,
    /// XADM: Intrasite Directory Replication Fails with Error 1720
    /// (Exchange 4.0-5.5 directory replication, not Active Directory).
    Q180795,
    /// No way to configure port for UDP new mail notification packets.
    Q264035,
    /// How to configure RPC dynamic port allocation to work with firewalls.
    KB154596,
    /// Restricting Active Directory RPC traffic to a specific port.
    KB224196,
    /// Exchange Server static port mappings (2000, 2003, 2007).
    KB270836,
    /// How to restrict FRS replication traffic to a specific static port.
    KB319553,
    /// The default dynamic port range for TCP/IP has changed in Windows
    /// Vista and in Windows Server 2008.
    KB929851,
    /// KeepAliveTime (Windows Server 2003 TCP/IP registry reference): the
    /// host's TCP keep-alive timer (#25). A TechNet page, not a KB
    /// article: cited by its page id.
    CC782936,
    /// How to force Kerberos to use TCP instead of UDP in Windows (#25:
    /// Kerberos answers lost in fragments).
    KB244474,
    /// How to troubleshoot black hole router issues (#25: path MTU).
    KB314825,
    /// Troubleshooting PMTU Black Hole Routers (Windows 2000 TCP/IP
    /// reference: `EnablePMTUBHDetect`). A TechNet page: cited by its id.
    CC958871,
}

/// Where an article's text was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The files of `../shared/seeds` (checked by the tests).
    Seeds(&'static [&'static str]),
    /// Not in the seeds: the copy that was read.
    Read(&'static str),
}

impl Article {
    pub const ALL: &'static [Article] = &[
        Article::Q148732,
        Article::Q155831,
        Article::Q161931,
        Article::Q176466,
        Article::Q180795,
        Article::Q264035,
        Article::KB154596,
        Article::KB224196,
        Article::KB270836,
        Article::KB319553,
        Article::KB929851,
        Article::CC782936,
        Article::KB244474,
        Article::KB314825,
        Article::CC958871,
    ];

    /// How findings, fixes and docs cite it: "Q155831", "KB270836".
    pub fn id(self) -> &'static str {
        match self {
            Article::Q148732 => "Q148732",
            Article::Q155831 => "Q155831",
            Article::Q161931 => "Q161931",
            Article::Q176466 => "Q176466",
            Article::Q180795 => "Q180795",
            Article::Q264035 => "Q264035",
            Article::KB154596 => "KB154596",
            Article::KB224196 => "KB224196",
            Article::KB270836 => "KB270836",
            Article::KB319553 => "KB319553",
            Article::KB929851 => "KB929851",
            Article::CC782936 => "cc782936",
            Article::KB244474 => "KB244474",
            Article::KB314825 => "KB314825",
            Article::CC958871 => "cc958871",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Article::Q148732 => "XADM: Setting TCP/IP Port Numbers for Internet Firewalls",
            Article::Q155831 => "XADM: Setting TCP/IP Ports for Exchange and Outlook Client Connections Through a Firewall",
            Article::Q161931 => "XCON: Configuring MTA TCP/IP Port # for X.400 and RPC Listens",
            Article::Q176466 => "XGEN: TCP Ports and Microsoft Exchange: In-depth Discussion",
            Article::Q180795 => "XADM: Intrasite Directory Replication Fails with Error 1720",
            Article::Q264035 => "No way to configure port for UDP new mail notification packets",
            Article::KB154596 => "How to configure RPC dynamic port allocation to work with firewalls",
            Article::KB224196 => "Restricting Active Directory RPC traffic to a specific port",
            Article::KB270836 => "Exchange Server static port mappings",
            Article::KB319553 => "How to restrict FRS replication traffic to a specific static port",
            Article::KB929851 => "The default dynamic port range for TCP/IP has changed in Windows Vista and in Windows Server 2008",
            Article::CC782936 => "KeepAliveTime",
            Article::KB244474 => "How to force Kerberos to use TCP instead of UDP in Windows",
            Article::KB314825 => "How to troubleshoot black hole router issues",
            Article::CC958871 => "Troubleshooting PMTU Black Hole Routers",
        }
    }

    pub fn source(self) -> Source {
        match self {
            Article::Q155831 => Source::Seeds(&["Q155831-static-ports-client-connections.txt"]),
            Article::Q176466 => Source::Seeds(&["Q176466-tcp-ports-in-depth.txt"]),
            Article::Q264035 => Source::Seeds(&[
                "Q264035-udp-new-mail-notification.txt",
                "Q264035-udp-new-mail-notification-rev2007.txt",
            ]),
            Article::KB270836 => {
                Source::Seeds(&["KB270836-static-port-mappings-2000-2003-2007.txt"])
            }
            Article::Q148732 => Source::Read("github.com/jeffpar/kbarchive kb/148/Q148732/README.md"),
            Article::Q161931 => Source::Read("mskb.pkisolutions.com/kb/161931 (the copies read stop before the key of \"TCP/IP port for RPC listens\")"),
            Article::Q180795 => Source::Read("github.com/jeffpar/kbarchive kb/180/Q180795/README.md"),
            Article::KB154596 => Source::Read("github.com/MicrosoftDocs/SupportArticles-docs support/windows-server/networking/configure-rpc-dynamic-port-allocation-with-firewalls.md"),
            Article::KB224196 => Source::Read("github.com/MicrosoftDocs/SupportArticles-docs support/windows-server/active-directory/restrict-ad-rpc-traffic-to-specific-port.md"),
            Article::KB319553 => Source::Read("mskb.pkisolutions.com/kb/319553 (the copies read stop before the registry value; the value name is the one scripts citing KB319553 set)"),
            Article::KB929851 => Source::Read("github.com/MicrosoftDocs/SupportArticles-docs support/windows-server/networking/default-dynamic-port-range-tcpip-chang.md"),
            Article::CC782936 => Source::Read("learn.microsoft.com/previous-versions/windows/it-pro/windows-server-2003/cc782936(v=ws.10) (the Windows 2000 page cc957549 says the same)"),
            Article::KB244474 => Source::Read("github.com/MicrosoftDocs/SupportArticles-docs support/windows-server/windows-security/force-kerberos-use-tcp-instead-udp.md"),
            Article::KB314825 => Source::Read("smutz.us/techtips/mtu-blackhole.html and betaarchive.com Microsoft_KB_Archive/314825 (copies of the article; its Windows 2000 version is KB159211, mskb.pkisolutions.com/kb/159211)"),
            Article::CC958871 => Source::Read("technet.microsoft.com/en-us/library/cc958871.aspx (the registry entry's own page, cc960465, says the same)"),
        }
    }

    /// The article named `id` ("KB270836", "Q155831").
    pub fn parse(id: &str) -> Option<Article> {
        Article::ALL.iter().copied().find(|a| a.id() == id)
    }
}

/// What a row's fact rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authority {
    /// A Microsoft article.
    Kb(Article),
    /// The IANA service name and port number registry (ports the KB
    /// articles do not list).
    Iana,
    /// A protocol specification ("MS-RPCE", "RFC 1006").
    Spec(&'static str),
}

/// One citation: who says it, in their words (a phrase of the text; for
/// the seeds it is checked against the file, whitespace and case aside).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cite {
    pub by: Authority,
    pub says: &'static str,
}

const fn kb(a: Article, says: &'static str) -> Cite {
    Cite {
        by: Authority::Kb(a),
        says,
    }
}

const fn iana(says: &'static str) -> Cite {
    Cite {
        by: Authority::Iana,
        says,
    }
}

const fn spec(name: &'static str, says: &'static str) -> Cite {
    Cite {
        by: Authority::Spec(name),
        says,
    }
}

use Article::*;

// ---------------------------------------------------------------------------
// Exchange versions

/// The Exchange versions the articles cover (the seeds stop at 2007).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExchangeVersion {
    /// Exchange Server 4.0, 5.0 and 5.5 (Q155831, Q176466).
    V55,
    /// Exchange 2000 Server and Exchange Server 2003 (KB270836).
    V2000,
    /// Exchange Server 2007: "the process for static port mapping for
    /// Exchange Server 2003 and Exchange 2000 Server still works in
    /// Exchange 2007" (KB270836).
    V2007,
}

impl ExchangeVersion {
    pub const ALL: &'static [ExchangeVersion] = &[
        ExchangeVersion::V55,
        ExchangeVersion::V2000,
        ExchangeVersion::V2007,
    ];

    /// "5.5", "2000/2003", "2007".
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeVersion::V55 => "5.5",
            ExchangeVersion::V2000 => "2000/2003",
            ExchangeVersion::V2007 => "2007",
        }
    }

    /// The version named on the command line (`--exchange-version`):
    /// 4.0, 5.0, 5.5, 2000, 2003, 2007. A later version is named as not
    /// covered, so nobody follows 2003 advice on a 2010 server.
    pub fn parse(s: &str) -> Result<ExchangeVersion, String> {
        match s.trim() {
            "4.0" | "5.0" | "5.5" | "4" | "5" => Ok(ExchangeVersion::V55),
            "2000" | "2003" => Ok(ExchangeVersion::V2000),
            "2007" => Ok(ExchangeVersion::V2007),
            "2010" | "2013" | "2016" | "2019" | "se" | "SE" => Err(format!(
                "Exchange {s} is not covered: the articles exflow's advice follows (Q155831, Q176466, KB270836, Q264035) stop at Exchange 2007; leave --exchange-version out to see every covered version's registry values, each labelled"
            )),
            _ => Err(format!(
                "'{s}' is not an Exchange version (5.5, 2000, 2003 or 2007; 4.0 and 5.0 count as 5.5)"
            )),
        }
    }
}

/// "Exchange 5.5", "Exchange 2000/2003/2007".
pub fn versions_label(v: &[ExchangeVersion]) -> String {
    let names: Vec<&str> = v.iter().map(|v| v.as_str()).collect();
    format!("Exchange {}", names.join("/"))
}

// ---------------------------------------------------------------------------
// Registry values

/// The registry hive of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hive {
    LocalMachine,
    CurrentUser,
}

impl Hive {
    pub fn as_str(self) -> &'static str {
        match self {
            Hive::LocalMachine => "HKEY_LOCAL_MACHINE",
            Hive::CurrentUser => "HKEY_CURRENT_USER",
        }
    }
}

/// A registry value's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RegType {
    Dword,
    Sz,
    MultiSz,
}

impl RegType {
    pub fn as_str(self) -> &'static str {
        match self {
            RegType::Dword => "REG_DWORD",
            RegType::Sz => "REG_SZ",
            RegType::MultiSz => "REG_MULTI_SZ",
        }
    }
}

/// A registry value: hive, key below it, value name, type and how its data
/// is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RegistryValue {
    pub hive: Hive,
    /// Below the hive, e.g. `SYSTEM\CurrentControlSet\Services\NTDS\Parameters`.
    pub key: &'static str,
    /// e.g. `TCP/IP Port` (the slash is a forward slash: KB270836).
    pub value: &'static str,
    pub kind: RegType,
    /// How the data is written: "port number, decimal".
    pub data: &'static str,
}

impl RegistryValue {
    /// The full key, e.g. `HKEY_LOCAL_MACHINE\SYSTEM\...\NTDS\Parameters`.
    /// Key and value are never printed joined by a backslash: "TCP/IP
    /// Port" is a value name, not two more keys.
    pub fn full_key(&self) -> String {
        format!("{}\\{}", self.hive.as_str(), self.key)
    }

    /// The key below `HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services`
    /// when it is there ("NTDS\Parameters"), else the full key.
    pub fn short_key(&self) -> String {
        match self.key.strip_prefix(SERVICES_KEY) {
            Some(rest) if self.hive == Hive::LocalMachine => rest.to_string(),
            _ => self.full_key(),
        }
    }

    /// The same value (names compare without case, as Windows does).
    pub fn same_as(&self, other: &RegistryValue) -> bool {
        self.hive == other.hive
            && self.key.eq_ignore_ascii_case(other.key)
            && self.value.eq_ignore_ascii_case(other.value)
    }
}

/// Where most values live, below HKEY_LOCAL_MACHINE.
pub const SERVICES_KEY: &str = r"SYSTEM\CurrentControlSet\Services\";

const fn port_value(key: &'static str, value: &'static str) -> RegistryValue {
    RegistryValue {
        hive: Hive::LocalMachine,
        key,
        value,
        kind: RegType::Dword,
        data: "port number, decimal",
    }
}

/// The computer a value is set on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Host {
    /// The Exchange server the port belongs to.
    ExchangeServer,
    /// Every Exchange server whose MTA talks X.400 over RFC 1006.
    EveryMta,
    /// A global catalog server (NSPI served by Active Directory).
    GlobalCatalog,
    /// Every domain controller reached through the firewall.
    DomainController,
    /// The client computer, per user (Outlook).
    ClientUser,
    /// The server whose dynamic RPC ports are restricted.
    Server,
}

impl Host {
    pub fn as_str(self) -> &'static str {
        match self {
            Host::ExchangeServer => "on the Exchange server",
            Host::EveryMta => "on every Exchange server whose MTA talks X.400 over RFC 1006",
            Host::GlobalCatalog => "on the global catalog server",
            Host::DomainController => "on every domain controller reached through the firewall",
            Host::ClientUser => "on the client, for each user",
            Host::Server => "on the server",
        }
    }

    /// Whether a value set on this kind of host can apply to a server with
    /// these roles (`None`: roles unknown, anything may apply).
    pub fn fits(self, exchange: bool, dc: bool) -> bool {
        match self {
            Host::ExchangeServer | Host::EveryMta => exchange || !dc,
            Host::GlobalCatalog | Host::DomainController => dc || !exchange,
            Host::ClientUser | Host::Server => true,
        }
    }
}

/// What must restart before a new value takes effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Restart {
    /// "Restart the computer." (Q155831, KB270836, KB224196)
    Computer,
    /// "Restart the global catalog server so that the static mapping is
    /// read when the Name Service Provider Interface (NSPI) is
    /// initialized." (KB270836)
    GlobalCatalog,
    /// "Restart the Netlogon service" (KB224196).
    NetlogonService,
    /// "Restart the server." (KB154596)
    Server,
    /// The article read does not say.
    NotStated,
}

impl Restart {
    pub fn as_str(self) -> &'static str {
        match self {
            Restart::Computer => "restart the computer",
            Restart::GlobalCatalog => {
                "restart the global catalog server (NSPI reads the static mapping when it starts)"
            }
            Restart::NetlogonService => "restart the Netlogon service",
            Restart::Server => "restart the server",
            Restart::NotStated => "the article read does not say what to restart",
        }
    }
}

/// One row of pinning knowledge: this registry value fixes this port, for
/// these Exchange versions, set on this host, effective after this restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pin {
    pub value: RegistryValue,
    /// What it pins, in the article's words ("Microsoft Exchange Directory
    /// NSPI Proxy Interface").
    pub component: &'static str,
    /// The Exchange versions it applies to; empty: not an Exchange value
    /// (Windows, Outlook).
    pub exchange: &'static [ExchangeVersion],
    pub host: Host,
    pub restart: Restart,
    /// What else the article says that an admin must know (or None).
    pub note: Option<&'static str>,
    /// The first is the article to cite.
    pub cites: &'static [Cite],
    /// Whether exflow's own port advice applies (an unused port,
    /// 5000-65535, one port per value, netstat -an and RPCDump: KB270836):
    /// false for values that are not server RPC ports (FixedUDPPort,
    /// "RFC1006 Port Number").
    pub rpc_port: bool,
}

impl Pin {
    /// The article to cite.
    pub fn article(&self) -> Article {
        self.cites
            .iter()
            .find_map(|c| match c.by {
                Authority::Kb(a) => Some(a),
                _ => None,
            })
            .unwrap_or(KB270836)
    }

    /// Whether it applies to `version` (None: unknown, every row applies).
    pub fn applies_to(&self, version: Option<ExchangeVersion>) -> bool {
        match version {
            None => true,
            Some(v) => self.exchange.is_empty() || self.exchange.contains(&v),
        }
    }

    /// One line: where, key, value, type, what to restart, the article.
    pub fn line(&self) -> String {
        format!(
            "{}, value \"{}\" ({}, {}), {}; {} ({})",
            self.value.full_key(),
            self.value.value,
            self.value.kind.as_str(),
            self.value.data,
            self.host.as_str(),
            self.restart.as_str(),
            self.article().id()
        )
    }

    /// "Exchange 5.5", "Exchange 2000/2003/2007, global catalog", or "" for
    /// a value that is not Exchange's.
    pub fn label(&self) -> String {
        if self.exchange.is_empty() {
            return String::new();
        }
        let v = versions_label(self.exchange);
        if self.host == Host::GlobalCatalog {
            format!("{v}, global catalog")
        } else {
            v
        }
    }
}

/// Port advice every RPC-port pin comes with (KB270836, Q155831).
pub const PORT_ADVICE: &[Cite] = &[
    kb(KB270836, "You must use an unused port for the static mappings"),
    kb(KB270836, "If you run the netstat -an command at a command prompt, you can view all TCP/IP connections and listening ports in numeric format"),
    kb(KB270836, "We recommend that you assign ports in the 5000 - 65535 (decimal) range"),
    kb(KB270836, "Make sure that you assign different port settings to each registry key"),
    kb(KB270836, "You can verify this by running RPCDump on the server for the TCP/IP protocol"),
    kb(Q155831, "DO NOT assign ports immediately above the 1023 range"),
];

/// The same advice in one sentence, for fixes and `policy check`.
pub const PORT_ADVICE_TEXT: &str = "use an unused port (netstat -an lists those in use), 5000-65535 recommended (not just above 1023), a different port for each registry value; after the restart, RPCDump on the server shows whether the service registered it (KB270836, Q155831)";

/// KB270836: "Make sure that the slash in "TCP/IP" is a forward slash."
pub const FORWARD_SLASH: &str = "the slash in \"TCP/IP\" is a forward slash (KB270836)";

const IS_PORT: RegistryValue = port_value(
    r"SYSTEM\CurrentControlSet\Services\MSExchangeIS\ParametersSystem",
    "TCP/IP Port",
);
const SA_PORT: RegistryValue = port_value(
    r"SYSTEM\CurrentControlSet\Services\MSExchangeSA\Parameters",
    "TCP/IP Port",
);
const SA_NSPI_PORT: RegistryValue = port_value(
    r"SYSTEM\CurrentControlSet\Services\MSExchangeSA\Parameters",
    "TCP/IP NSPI Port",
);
const DS_PORT: RegistryValue = port_value(
    r"SYSTEM\CurrentControlSet\Services\MSExchangeDS\Parameters",
    "TCP/IP port",
);
const SRS_PORT: RegistryValue = port_value(
    r"SYSTEM\CurrentControlSet\Services\MSExchangeSRS\Parameters",
    "TCP/IP",
);
const NTDS_PORT: RegistryValue = port_value(
    r"SYSTEM\CurrentControlSet\Services\NTDS\Parameters",
    "TCP/IP Port",
);
const NETLOGON_PORT: RegistryValue = port_value(
    r"SYSTEM\CurrentControlSet\Services\Netlogon\Parameters",
    "DCTcpipPort",
);
const MTA_RPC_PORT: RegistryValue = port_value(
    r"SYSTEM\CurrentControlSet\Services\MSExchangeMTA\Parameters",
    "TCP/IP port for RPC listens",
);
const MTA_RFC1006_PORT: RegistryValue = port_value(
    r"SYSTEM\CurrentControlSet\Services\MSExchangeMTA\Parameters",
    "RFC1006 Port Number",
);
const FRS_PORT: RegistryValue = port_value(
    r"SYSTEM\CurrentControlSet\Services\NTFRS\Parameters",
    "RPC TCP/IP Port Assignment",
);
const OUTLOOK_2003_UDP: RegistryValue = RegistryValue {
    hive: Hive::CurrentUser,
    key: r"Software\Microsoft\Office\11.0\Outlook\RPC",
    value: "FixedUDPPort",
    kind: RegType::Dword,
    data: "UDP port number",
};

const ALL_EXCHANGE: &[ExchangeVersion] = &[
    ExchangeVersion::V55,
    ExchangeVersion::V2000,
    ExchangeVersion::V2007,
];
const EX55: &[ExchangeVersion] = &[ExchangeVersion::V55];
const EX2000_2007: &[ExchangeVersion] = &[ExchangeVersion::V2000, ExchangeVersion::V2007];
const EX2000: &[ExchangeVersion] = &[ExchangeVersion::V2000];
/// Q161931: Exchange 4.0 SP4 to 5.5, and Exchange 2000 in mixed mode.
const MTA_VERSIONS: &[ExchangeVersion] = &[ExchangeVersion::V55, ExchangeVersion::V2000];

const PIN_STORE: Pin = Pin {
    value: IS_PORT,
    component: "Microsoft Exchange Information Store",
    exchange: ALL_EXCHANGE,
    host: Host::ExchangeServer,
    restart: Restart::Computer,
    note: None,
    cites: &[
        kb(
            KB270836,
            r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\MSExchangeIS\ParametersSystem - Add the following registry value for the Microsoft Exchange Information Store Interface: Value name: TCP/IP Port Value type: REG_DWORD",
        ),
        kb(
            Q155831,
            r"System\CurrentControlSet\Services\MSExchangeIS\ParametersSystem 5. Add the following entry for the Information Store: TCP/IP port REG_DWORD",
        ),
        kb(KB270836, "Restart the computer."),
        kb(
            Q155831,
            "You must restart the computer for these changes to take effect.",
        ),
    ],
    rpc_port: true,
};

const PIN_NSPI_55: Pin = Pin {
    value: DS_PORT,
    component: "Microsoft Exchange Directory (NSPI)",
    exchange: EX55,
    host: Host::ExchangeServer,
    restart: Restart::Computer,
    note: Some("a directory port already in use keeps the directory from registering it: intrasite directory replication then fails with error 1720 (Q180795)"),
    cites: &[
        kb(Q155831, r"System\CurrentControlSet\Services\MSExchangeDS\Parameters 3. Add the following entry for the Microsoft Exchange Directory service: TCP/IP port REG_DWORD"),
        kb(KB270836, r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\MSExchangeDS\Parameters - Add the following registry value: Value name: TCP/IP Port Value type: REG_DWORD Base: Decimal"),
        kb(Q155831, "You must restart the computer for these changes to take effect."),
        kb(Q180795, "The directory service has had a registry setting applied to force the use of a specific TCP port for directory service communication"),
    ],
    rpc_port: true,
};

const PIN_NSPI_PROXY: Pin = Pin {
    value: SA_NSPI_PORT,
    component: "Microsoft Exchange Directory NSPI Proxy Interface",
    exchange: EX2000_2007,
    host: Host::ExchangeServer,
    restart: Restart::Computer,
    note: None,
    cites: &[
        kb(KB270836, r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\MSExchangeSA\Parameters - Add the following registry value for the Microsoft Exchange Directory NSPI Proxy Interface: Value name: TCP/IP NSPI Port Value type: REG_DWORD"),
        kb(KB270836, "Restart the computer."),
        kb(KB270836, "In this article, the process for static port mapping for Exchange Server 2003 and Exchange 2000 Server still works in Exchange 2007"),
    ],
    rpc_port: true,
};

const PIN_NSPI_GC: Pin = Pin {
    value: NTDS_PORT,
    component: "NSPI on a global catalog",
    exchange: EX2000_2007,
    host: Host::GlobalCatalog,
    restart: Restart::GlobalCatalog,
    note: Some("if the port conflicts with other programs, NSPI does not start (KB270836)"),
    cites: &[
        kb(KB270836, r"installed on a global catalog server, follow these steps: - Start Registry Editor. - Locate and then click to select the following key: HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\NTDS\Parameters - Add the following registry value: Value name: TCP/IP Port Value type: REG_DWORD Base: Decimal"),
        kb(KB270836, "Restart the global catalog server so that the static mapping is read when the Name Service Provider Interface (NSPI) is initialized"),
        kb(KB270836, "If the port number conflicts with other programs, the NSPI will not start"),
    ],
    rpc_port: true,
};

const PIN_RFR: Pin = Pin {
    value: SA_PORT,
    component: "Microsoft Exchange SA RFR Interface",
    exchange: EX2000_2007,
    host: Host::ExchangeServer,
    restart: Restart::Computer,
    note: None,
    cites: &[
        kb(
            KB270836,
            r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\MSExchangeSA\Parameters - Add the following entry for the Microsoft Exchange SA RFR Interface: Value name: TCP/IP Port Value type: REG_DWORD",
        ),
        kb(KB270836, "Restart the computer."),
    ],
    rpc_port: true,
};

const PIN_SA: Pin = Pin {
    value: SA_PORT,
    component: "Microsoft Exchange System Attendant",
    exchange: ALL_EXCHANGE,
    host: Host::ExchangeServer,
    restart: Restart::Computer,
    note: Some("Exchange 2000 and later: KB270836 names this value for the System Attendant's RFR interface"),
    cites: &[
        kb(KB270836, r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\MSExchangeSA\Parameters - Add the following registry value: Value name: TCP/IP Port Value type: REG_DWORD Base: Decimal"),
        kb(KB270836, "Restart the computer."),
        kb(Q148732, "In order to administer an Exchange Server across a firewall, the Microsoft Exchange System Attendant should be configured to use a specific RPC port as well"),
    ],
    rpc_port: true,
};

const PIN_SRS: Pin = Pin {
    value: SRS_PORT,
    component: "Microsoft Exchange Site Replication Service (SRS)",
    exchange: EX2000,
    host: Host::ExchangeServer,
    restart: Restart::Computer,
    note: None,
    cites: &[
        kb(
            KB270836,
            r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\MSExchangeSRS\Parameters - Add the following registry value for the Microsoft Exchange Site Replication Service (SRS): Value name: TCP/IP Value type: REG_DWORD",
        ),
        kb(KB270836, "Restart the computer."),
    ],
    rpc_port: true,
};

const PIN_MTA_RPC: Pin = Pin {
    value: MTA_RPC_PORT,
    component: "Exchange MTA RPC listens",
    exchange: MTA_VERSIONS,
    host: Host::ExchangeServer,
    restart: Restart::NotStated,
    note: Some("Exchange 2000: mixed mode only (Q161931); the MTAs need not all use the same RPC port (Q161931)"),
    cites: &[
        kb(Q176466, "This explains the use of the registry value \"TCP/IP port for RPC listens\""),
        kb(Q161931, "An additional registry setting allows you to configure the MTA to listen to RPCs on a specific port number"),
    ],
    rpc_port: true,
};

/// "RFC1006 Port Number": moves X.400 off TCP 102 — on every MTA at once.
/// Never the fix for a blocked 102 (see [`RFC1006_NOT_A_FIX`]).
pub const PIN_RFC1006: Pin = Pin {
    value: MTA_RFC1006_PORT,
    component: "Exchange MTA X.400 over RFC 1006",
    exchange: MTA_VERSIONS,
    host: Host::EveryMta,
    restart: Restart::NotStated,
    note: Some("all MTAs that talk X.400 to each other must use the same port (Q176466, Q161931); the value name is case-sensitive (Q161931)"),
    cites: &[
        kb(Q176466, "Article Q161931, referred to above, discusses the use of the registry value \"RFC1006 Port Number\""),
        kb(Q176466, "All MTAs must use the same port number."),
        kb(Q161931, r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\MSExchangeMTA\Parameters"),
    ],
    rpc_port: false,
};

/// Why changing "RFC1006 Port Number" does not unblock TCP 102.
pub const RFC1006_NOT_A_FIX: &str = "changing \"RFC1006 Port Number\" is no fix for a blocked TCP 102: every MTA that talks X.400 to this one must change with it, and the firewall must still open the new port (Q176466, Q161931); open TCP 102 instead";

const PIN_NTDS_AD: Pin = Pin {
    value: NTDS_PORT,
    component: "Active Directory RPC (replication, and the client RPC interfaces AD serves)",
    exchange: &[],
    host: Host::DomainController,
    restart: Restart::Computer,
    note: Some("KB270836 (front-end in a perimeter network) asks for a value above 1024 and opens it for TCP and UDP"),
    cites: &[
        kb(KB224196, r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\NTDS\Parameters Registry value: TCP/IP Port Value type: REG_DWORD"),
        kb(KB224196, "Restart the computer for the new setting to become effective."),
        kb(KB224196, "all RPC interfaces supported by Active Directory are running on all ports on which it's listening"),
        kb(KB270836, r"HKEY_LOCAL_MACHINE\System\CurrentControlSet\Services\NTDS\Parameters - Add the following registry value: Value name: TCP/IP Port Value type: REG_DWORD Base: Decimal Value: A value that is more than 1024"),
        kb(KB270836, "One port for the Active Directory logon and directory replication interface (universally unique identifiers [UUIDs] 12345678-1234-abcd-ef00-01234567cffb and 3514235-4b06-11d1-ab04-00c04fc2dcd2)"),
        kb(KB270836, "This number is the additional port that you must open (TCP, UDP) on the firewall"),
    ],
    rpc_port: true,
};

const PIN_NTDS_CLIENT_RPC: Pin = Pin {
    note: Some("on a domain controller: KB224196 says clients also use SamRPC and LSARPC, and all interfaces AD serves run on the port it listens on; configure DCTcpipPort too, on another port"),
    cites: &[
        kb(KB224196, "Clients are also using other RPC services such as SamRPC, LSARPC, and also the Directory Replication Services (DRS) interface"),
        kb(KB224196, r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\NTDS\Parameters Registry value: TCP/IP Port Value type: REG_DWORD"),
        kb(KB224196, "Restart the computer for the new setting to become effective."),
    ],
    ..PIN_NTDS_AD
};

const PIN_NETLOGON: Pin = Pin {
    value: NETLOGON_PORT,
    component: "Netlogon",
    exchange: &[],
    host: Host::DomainController,
    restart: Restart::NetlogonService,
    note: Some("a different port from NTDS \"TCP/IP Port\" (the same port makes Netlogon log event 5809); configure both values and open both ports (KB224196)"),
    cites: &[
        kb(KB224196, r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\Netlogon\Parameters Registry value: DCTcpipPort Value type: REG_DWORD"),
        kb(KB224196, "Restart the Netlogon service for the new setting to become effective."),
        kb(KB224196, "You should always configure both registry settings and open both ports on the firewall."),
    ],
    rpc_port: true,
};

/// KB270836 (front-end in a perimeter network): the NTDS port carries the
/// AD logon interface (Netlogon's UUID) too.
const PIN_NETLOGON_NTDS: Pin = Pin {
    component: "the Active Directory logon interface (KB270836: one port for logon and replication)",
    note: Some("KB270836 (front-end in a perimeter network) names Netlogon's UUID among the interfaces on this port; KB224196 asks for DCTcpipPort as well, on a different port"),
    ..PIN_NTDS_AD
};

const PIN_FRS: Pin = Pin {
    value: FRS_PORT,
    component: "File Replication Service",
    exchange: &[],
    host: Host::DomainController,
    restart: Restart::NotStated,
    note: Some("a different port from the Active Directory one (KB224196)"),
    cites: &[
        kb(KB319553, "You can override this default functionality and specify the port that all FRS replication traffic passes through"),
        kb(KB224196, "The FRS RPC port should use a different port."),
    ],
    rpc_port: true,
};

/// Outlook 2003's FixedUDPPort (the only key the articles read give).
const PIN_FIXED_UDP_2003: Pin = Pin {
    value: OUTLOOK_2003_UDP,
    component: "Outlook 2003 new-mail notification port",
    exchange: &[],
    host: Host::ClientUser,
    restart: Restart::NotStated,
    note: Some(OUTLOOK_VERSIONS),
    cites: &[
        kb(Q264035, r"HKEY_CURRENT_USER\Software\Microsoft\Office\11.0\Outlook\RPC Registry Entry: FixedUDPPort Value: DWORD"),
        kb(Q264035, "This registry key is available only in Outlook 2003 or later"),
        kb(KB270836, "For more information about how to fix the UDP port for Outlook 2003 and for Outlook 2007"),
    ],
    rpc_port: false,
};

/// FixedUDPPort per Outlook version, as far as the articles read go.
pub const OUTLOOK_VERSIONS: &str = "the key above is Outlook 2003's (Office 11.0); Outlook 2002 and earlier have no such value (Q264035: Outlook 2003 or later); for Outlook 2007 KB270836 refers to KB839226, which is not among the articles exflow draws on, so no key is given here";

// ---------------------------------------------------------------------------
// Host TCP keep-alives (#25: connections a firewall forgets when idle)

/// Windows' TCP keep-alive timer, for connections a firewall forgets after
/// an idle gap: keep-alives sent more often than the firewall's idle
/// timeout keep its state alive. Only for connections whose program turned
/// keep-alives on: the article says none are sent by default, so this is
/// advice beside the firewall's timeout, never instead of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepAlive {
    pub value: RegistryValue,
    /// The default, in the article's words.
    pub default: &'static str,
    /// What the value does and does not do, for the fix's note.
    pub advice: &'static str,
    pub cites: &'static [Cite],
}

pub static KEEPALIVE: KeepAlive = KeepAlive {
    value: RegistryValue {
        hive: Hive::LocalMachine,
        key: r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters",
        value: "KeepAliveTime",
        kind: RegType::Dword,
        data: "milliseconds, 0x1-0xFFFFFFFF",
    },
    default: "7,200,000 milliseconds = 2 hours",
    advice: "how often TCP sends keep-alive transmissions to verify that an idle connection is still active; by default none are sent: a program must enable them, so it keeps alive only the connections of programs that do",
    cites: &[
        kb(CC782936, "KeepAliveTime"),
        kb(CC782936, r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters"),
        kb(CC782936, "REG_DWORD"),
        kb(CC782936, "0x1–0xFFFFFFFF (milliseconds)"),
        kb(CC782936, "0x6DDD00 (7,200,000 milliseconds = 2 hours)"),
        kb(CC782936, "Specifies how often TCP sends keep-alive transmissions. TCP sends keep-alive transmissions to verify that an idle connection is still active."),
        kb(CC782936, "By default, keep-alive transmissions are not sent. The TCP keep-alive feature must be enabled by a program"),
    ],
};

/// A registry value to set on the hosts for a problem after the handshake
/// (#25), in its article's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostSetting {
    pub value: RegistryValue,
    /// What to set it to.
    pub set_to: &'static str,
    /// The default, in the article's words.
    pub default: &'static str,
    /// What it does and does not do, for the fix.
    pub advice: &'static str,
    /// What to restart afterwards.
    pub restart: &'static str,
    pub article: Article,
    pub cites: &'static [Cite],
}

/// Kerberos over TCP where its UDP answers die in fragments: KB244474's
/// `MaxPacketSize` = 1 on the clients.
pub static KERBEROS_MAX_PACKET_SIZE: HostSetting = HostSetting {
    value: RegistryValue {
        hive: Hive::LocalMachine,
        key: r"SYSTEM\CurrentControlSet\Control\Lsa\Kerberos\Parameters",
        value: "MaxPacketSize",
        kind: RegType::Dword,
        data: "decimal",
    },
    set_to: "1",
    default: "Windows Vista and Windows Server 2008 and later: 0 (TCP first); Windows Server 2003: UDP up to 1,465 bytes; Windows XP and 2000: up to 2,000 bytes",
    advice: "on the clients: with MaxPacketSize 1 they send Kerberos over TCP, where a lost segment is sent again, instead of UDP, whose fragments are dropped here; if the Parameters key does not exist, create it",
    restart: "restart the computer",
    article: KB244474,
    cites: &[
        kb(KB244474, "Depending on the virtual private network (VPN) hardware configuration, these larger packets have to be fragmented when going through a VPN. The problem is caused by fragmentation of these large UDP Kerberos packets."),
        kb(KB244474, "If you change MaxPacketSize to a value of 1, you force the client to use TCP to send Kerberos traffic through the VPN tunnel."),
        kb(KB244474, r"HKEY_LOCAL_MACHINE\System\CurrentControlSet\Control\Lsa\Kerberos\Parameters"),
        kb(KB244474, "If the Parameters key does not exist, create it now."),
        kb(KB244474, "DWORD Value"),
        kb(KB244474, "type *1* in the **Value data** box, click to select the **Decimal** option"),
        kb(KB244474, "Restart your computer."),
        kb(KB244474, "By default, the maximum size of datagram packets for which Windows Server 2003 uses UDP is 1,465 bytes. For Windows XP and for Windows 2000, this maximum is 2,000 bytes."),
        kb(KB244474, "By default, Windows Server 2008 and Windows Vista will try TCP first for Kerberos because the MaxPacketSize default is now 0."),
    ],
};

/// Path MTU black holes: the hosts' own black-hole detection
/// (`EnablePMTUBHDetect` = 1, cc958871), beside letting the ICMP through.
pub static PMTU_BLACK_HOLE_DETECT: HostSetting = HostSetting {
    value: RegistryValue {
        hive: Hive::LocalMachine,
        key: r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters",
        value: "EnablePMTUBHDetect",
        kind: RegType::Dword,
        data: "0 or 1",
    },
    set_to: "1",
    default: "disabled (the entry is absent)",
    advice: "on the host that sends the segments too big for the path: after repeated unacknowledged transmissions TCP turns the don't-fragment bit off, and once a segment gets through it uses a smaller maximum segment size; a workaround beside letting the ICMP through, not instead of it",
    restart: "",
    article: CC958871,
    cites: &[
        kb(CC958871, "Routers that ignore these datagrams and send no message are called PMTU black hole routers."),
        kb(CC958871, "Path MTUBH Detect recognizes repeated unacknowledged transmissions and responds by turning off the Don't Fragment bit. After a datagram is transmitted successfully, it reduces the maximum segment size and turns the Don't Fragment bit on again."),
        kb(CC958871, "The Path MTUBH Detect feature is disabled by default, but you can enable it by adding the EnablePMTUBHDetect entry to the registry and setting its value to 1 ."),
        kb(CC958871, r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\Tcpip \Parameters."),
        kb(KB314825, "if a firewall on the path drops such a response"),
        kb(KB314825, "the router is expected to send an ICMP \"destination unreachable\" message back to the sending host"),
    ],
};

/// How KB314825 (for Windows 2000, KB159211) finds a black hole router:
/// `ping -f -l SIZE host`, and what the two answers mean.
pub const PMTU_PING: &str = "ping -f -l {size} {host} sends {size} bytes of ICMP echo data with don't-fragment set: \"Packet needs to be fragmented but DF set\" means a router answered with the ICMP (PMTU discovery works from that host), \"Request timed out\" means the packet was lost silently; lower the size until the echo is answered: the largest that passes, plus 28, is the path's MTU (KB314825)";

// ---------------------------------------------------------------------------
// Restricting the dynamic RPC range (when no value pins an interface)

/// A registry value with the data to set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    pub value: RegistryValue,
    pub set_to: &'static str,
}

/// KB154596's recipe, and KB929851's netsh for Windows Server 2008 and
/// later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeRecipe {
    pub settings: &'static [Setting],
    pub restart: Restart,
    /// What the range should be.
    pub range_advice: &'static str,
    /// Windows Server 2008 and later.
    pub netsh: &'static str,
    pub netsh_advice: &'static str,
    pub cites: &'static [Cite],
}

const RPC_INTERNET: &str = r"Software\Microsoft\Rpc\Internet";

pub static RANGE_RECIPE: RangeRecipe = RangeRecipe {
    settings: &[
        Setting {
            value: RegistryValue {
                hive: Hive::LocalMachine,
                key: RPC_INTERNET,
                value: "Ports",
                kind: RegType::MultiSz,
                data: "port ranges, one per string",
            },
            set_to: "the range, e.g. 5000-6000",
        },
        Setting {
            value: RegistryValue {
                hive: Hive::LocalMachine,
                key: RPC_INTERNET,
                value: "PortsInternetAvailable",
                kind: RegType::Sz,
                data: "Y or N",
            },
            set_to: "Y",
        },
        Setting {
            value: RegistryValue {
                hive: Hive::LocalMachine,
                key: RPC_INTERNET,
                value: "UseInternetPorts",
                kind: RegType::Sz,
                data: "Y or N",
            },
            set_to: "Y",
        },
    ],
    restart: Restart::Server,
    range_advice: "a range above 5000 of at least 100 ports; it applies to every program that uses dynamic RPC ports on that server",
    netsh: "netsh int ipv4 set dynamicport tcp start=N num=R",
    netsh_advice: "Windows Server 2008 and later (default 49152-65535): the range is set with netsh, per transport and IP version; at least 255 ports, starting at 1025 or above (KB929851)",
    cites: &[
        kb(KB154596, r"HKEY_LOCAL_MACHINE\Software\Microsoft\Rpc\Internet"),
        kb(KB154596, "Ports REG_MULTI_SZ"),
        kb(KB154596, "PortsInternetAvailable REG_SZ Y or N"),
        kb(KB154596, "UseInternetPorts REG_SZ Y or N"),
        kb(KB154596, "Restart the server."),
        kb(KB154596, "You should open up a range of ports above port 5000"),
        kb(KB154596, "a minimum of 100 ports should be opened"),
        kb(KB929851, "netsh int ipv4 set dynamicport tcp start=10000 num=1000"),
        kb(KB929851, "The new default start port is 49152, and the new default end port is 65535"),
        kb(KB929851, "The minimum range of ports that can be set is 255. The minimum start port that can be set is 1025."),
    ],
};

impl RangeRecipe {
    /// The recipe in one paragraph.
    pub fn text(&self) -> String {
        let values: Vec<String> = self
            .settings
            .iter()
            .map(|s| {
                format!(
                    "\"{}\" ({}) = {}",
                    s.value.value,
                    s.value.kind.as_str(),
                    s.set_to
                )
            })
            .collect();
        format!(
            "restrict the server's dynamic RPC ports instead: under {} add {}, then {}, and allow that range: {} (KB154596). {}: {}",
            self.settings[0].value.full_key(),
            values.join(", "),
            self.restart.as_str(),
            self.range_advice,
            self.netsh_advice,
            self.netsh
        )
    }
}

// ---------------------------------------------------------------------------
// Services

/// How a service's ports are determined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Fixed, well-known ports (`smtp`, `epm`, `x400-mta`, ...).
    Ports,
    /// One RPC role (by the flow's service label), on the server's dynamic
    /// RPC range unless a pin fixes its port.
    RpcInterface,
    /// `rpc-dynamic`: any RPC interface on the dynamic RPC range.
    RpcDynamic,
    /// `mapi-notification`: UDP from the Exchange server to the client on a
    /// port above 1024 the client chose (Q264035).
    Notification,
    /// ICMP echo (request and reply): exflow does not follow ICMP echo, so
    /// a policy rule for it is never judged (never seen, never blocked).
    IcmpEcho,
}

/// One service: a row of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Service {
    /// The report contract's service name.
    pub name: &'static str,
    /// One line for `policy check` and the docs.
    pub description: &'static str,
    /// `PROTO_TCP` and/or `PROTO_UDP` (none for ICMP echo).
    pub protos: &'static [u8],
    /// Default ports (inclusive ranges). For RPC interfaces and
    /// `rpc-dynamic` the default dynamic range 1024-65535: the policy's
    /// `rpc_dynamic_ports` and pins override it.
    pub ports: &'static [(u16, u16)],
    pub kind: Kind,
    /// What breaks when it is blocked, saying only what its articles say
    /// (they are named in it, and cited below).
    pub consequence: Option<&'static str>,
    /// The registry values that pin the service's port when the interface
    /// is not known (a hand-off names it, else the service); an interface
    /// of [`INTERFACES`] has its own.
    pub pins: &'static [Pin],
    /// Where its ports and consequence come from.
    pub cites: &'static [Cite],
}

impl Service {
    /// Whether a policy `pins` entry may fix its port: the RPC roles (the
    /// policy states what was configured, documented value or not),
    /// notifications and X.400.
    pub fn pinnable(&self) -> bool {
        matches!(self.kind, Kind::RpcInterface | Kind::Notification) || !self.pins.is_empty()
    }
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
    consequence: Option<&'static str>,
    cites: &'static [Cite],
) -> Service {
    Service {
        name,
        description,
        protos,
        ports,
        kind: Kind::Ports,
        consequence,
        pins: &[],
        cites,
    }
}

const fn rpc(
    name: &'static str,
    description: &'static str,
    consequence: Option<&'static str>,
    pins: &'static [Pin],
    cites: &'static [Cite],
) -> Service {
    Service {
        name,
        description,
        protos: TCP,
        ports: DYNAMIC,
        kind: Kind::RpcInterface,
        consequence,
        pins,
        cites,
    }
}

const STORE_CITES: &[Cite] = &[
    kb(Q176466, "the Exchange Server computer allocates the client two random ports to use to communicate with the directory and the information store"),
    kb(Q155831, "This makes it impossible to allow these through the firewall without forcing them to be statically assigned"),
];

/// Every service name a policy rule may use, in documentation order.
pub static SERVICES: &[Service] = &[
    fixed(
        "epm",
        TCP,
        &[(135, 135)],
        "RPC endpoint mapper",
        Some("RPC clients cannot ask the endpoint mapper (TCP 135) for the port of a service: MAPI clients and other Exchange servers reach none of the dynamic RPC services (Q176466), nor a front-end server the domain controllers (KB270836)"),
        &[
            kb(Q176466, "uses TCP port 135, also referred to as the location service that helps RPC applications to query for the port number of a service"),
            kb(KB270836, "135 (TCP) - EndPointMapper"),
            kb(Q155831, "a well-known static port (port 135) to listen for client connects to the RPC Endpoint Mapper Service"),
            kb(Q176466, "the firewall needs to be configured to allow TCP connections to port 135 and all statically allocated ports"),
        ],
    ),
    rpc(
        "exchange-store",
        "Exchange information store (EMSMDB)",
        Some("MAPI clients cannot communicate with the information store through the firewall (Q176466, Q155831)"),
        &[PIN_STORE],
        STORE_CITES,
    ),
    rpc(
        "exchange-directory",
        "Exchange directory / NSPI address book",
        Some("MAPI clients cannot communicate with the directory (NSPI) through the firewall (Q176466, Q155831); between Exchange 5.5 servers of one site the directories cannot talk (Q176466)"),
        &[PIN_NSPI_55, PIN_NSPI_PROXY, PIN_NSPI_GC],
        &[
            kb(Q176466, "the Exchange Server computer allocates the client two random ports to use to communicate with the directory and the information store"),
            kb(Q155831, "This makes it impossible to allow these through the firewall without forcing them to be statically assigned"),
            kb(Q176466, "Communication between two Exchange Server computers within a site is between the two message transfer agents (MTAs) and the two directory services"),
        ],
    ),
    rpc(
        "exchange-referral",
        "Exchange directory referral (RFR)",
        Some("MAPI clients cannot reach the System Attendant's RFR interface through the firewall (KB270836)"),
        &[PIN_RFR],
        &[kb(KB270836, "Add the following entry for the Microsoft Exchange SA RFR Interface")],
    ),
    rpc(
        "exchange-sa",
        "Exchange system attendant",
        Some("the System Attendant's RPC port is unreachable: an Exchange server cannot be administered across the firewall (Q148732)"),
        &[PIN_SA],
        &[kb(Q148732, "In order to administer an Exchange Server across a firewall, the Microsoft Exchange System Attendant should be configured to use a specific RPC port as well")],
    ),
    rpc(
        "exchange-srs",
        "Exchange Site Replication Service (Exchange 2000/2003 with 5.5)",
        Some("the Site Replication Service's RPC port is unreachable through the firewall (KB270836)"),
        &[PIN_SRS],
        &[kb(KB270836, "Add the following registry value for the Microsoft Exchange Site Replication Service (SRS)")],
    ),
    rpc(
        "exchange-mta",
        "Exchange MTA RPC",
        Some("the MTAs of two Exchange servers cannot communicate over RPC (within a site, or a site connector) (Q176466)"),
        &[PIN_MTA_RPC],
        &[
            kb(Q176466, "Communication between two Exchange Server computers within a site is between the two message transfer agents (MTAs) and the two directory services"),
            kb(Q176466, "communication between Exchange Server computers installed in two different sites is only via the corresponding message transfer agents (MTAs)"),
        ],
    ),
    rpc(
        "exchange-store-admin",
        "Exchange store administration",
        Some("store administration over RPC fails"),
        &[],
        &[spec("protocols.md §3", "Store admin interfaces")],
    ),
    rpc(
        "ad-replication",
        "Active Directory replication (DRSUAPI)",
        Some("Active Directory replication over RPC fails through the firewall (KB224196), and with it a front-end server's domain logon through the AD logon and replication interface (KB270836)"),
        &[PIN_NTDS_AD],
        &[
            kb(KB224196, "By default, Active Directory replication remote procedure calls (RPC) occur dynamically over an available port through the RPC Endpoint Mapper (RPCSS) by using port 135"),
            kb(KB270836, "you must map the port in the registry on any domain controllers that the Exchange server must contact through the firewall to process logons"),
        ],
    ),
    rpc(
        "ismserv",
        "Intersite Messaging (ismserv)",
        Some("intersite messaging RPC fails"),
        &[],
        &[spec("protocols.md §3", "Intersite messaging (ismserv)")],
    ),
    rpc(
        "netlogon",
        "Netlogon (AD logon)",
        Some("domain logon through the firewall fails: the Active Directory logon interface is unreachable (KB270836, KB224196)"),
        &[PIN_NETLOGON, PIN_NETLOGON_NTDS],
        &[
            kb(KB270836, "One port for the Active Directory logon and directory replication interface (universally unique identifiers [UUIDs] 12345678-1234-abcd-ef00-01234567cffb and 3514235-4b06-11d1-ab04-00c04fc2dcd2)"),
            kb(KB224196, "If you configure Active Directory and Netlogon to run at port x"),
        ],
    ),
    rpc(
        "lsarpc",
        "LSA RPC",
        Some("clients' LSARPC calls to the domain controller fail (KB224196)"),
        &[PIN_NTDS_CLIENT_RPC],
        &[kb(KB224196, "Clients are also using other RPC services such as SamRPC, LSARPC, and also the Directory Replication Services (DRS) interface")],
    ),
    rpc(
        "samr",
        "SAM RPC",
        Some("clients' SamRPC calls to the domain controller fail (KB224196)"),
        &[PIN_NTDS_CLIENT_RPC],
        &[kb(KB224196, "Clients are also using other RPC services such as SamRPC, LSARPC, and also the Directory Replication Services (DRS) interface")],
    ),
    rpc(
        "dnsserver",
        "DNS server management RPC",
        Some("DNS server management over RPC fails"),
        &[],
        &[spec("MS-DNSP", "DNS Server Management Protocol")],
    ),
    rpc(
        "frs",
        "File Replication Service",
        Some("FRS replication (system policy and logon scripts) fails through the firewall (KB319553)"),
        &[PIN_FRS],
        &[kb(KB319553, "Windows 2000-based domain controllers and servers use FRS to replicate system policy and logon scripts")],
    ),
    rpc(
        "dfsr",
        "DFS Replication",
        Some("DFS Replication fails"),
        &[],
        &[spec("MS-FRS2", "Distributed File System Replication Protocol")],
    ),
    rpc(
        "dcom",
        "DCOM: the activator and OXID resolver (TCP 135) and the object exporters' dynamic ports they hand out (WMI, MMC snap-ins, remote administration)",
        Some("the DCOM client cannot reach the object it activated: \"If the client can't connect to the address specified in the packet, it won't work\" (KB154596)"),
        &[],
        &[
            kb(KB154596, "DCOM stores raw IP addresses in the interface marshaling packets. If the client can't connect to the address specified in the packet, it won't work."),
            kb(KB154596, "You can't use DCOM through firewalls that do address translation."),
            kb(KB154596, "Port numbers below 5000 may already be in use by other applications and could cause conflicts with your DCOM application(s)."),
            spec("MS-DCOM", "string bindings"),
        ],
    ),
    rpc(
        "rpc-other",
        "an RPC interface not in the catalogue",
        None,
        &[],
        &[spec("MS-RPCE", "dynamic endpoints")],
    ),
    Service {
        name: "rpc-dynamic",
        description: "any RPC interface on the dynamic RPC range",
        protos: TCP,
        ports: DYNAMIC,
        kind: Kind::RpcDynamic,
        consequence: None,
        pins: &[],
        cites: &[kb(KB154596, "RPC dynamic port allocation is used by server applications and remote administration applications")],
    },
    Service {
        name: "mapi-notification",
        description: "MAPI new-mail notification, Exchange server -> client (Q264035)",
        protos: UDP,
        ports: &[(1025, 65535)],
        kind: Kind::Notification,
        consequence: Some("clients may not receive new mail notification (Q264035)"),
        pins: &[PIN_FIXED_UDP_2003],
        cites: &[
            kb(Q264035, "In a situation where UDP traffic from the server to the client is blocked, clients may not receive new mail notification"),
            kb(Q264035, "Protocol ID UDP Direction Exchange Server --> Client Local Port >1024 Remote Port >1024"),
            kb(Q264035, "Because the client picks a port at startup and the server does not always use the same port when sending the notification, there is no way to predict either the source or destination ports that this traffic will use"),
        ],
    },
    Service {
        name: "x400-mta",
        description: "X.400 MTA over RFC 1006",
        protos: TCP,
        ports: &[(102, 102)],
        kind: Kind::Ports,
        consequence: Some("the MTAs of an X.400 connector cannot communicate (RFC 1006 on TCP 102, or the port both set) (Q176466)"),
        pins: &[PIN_RFC1006],
        cites: &[
            kb(Q176466, "Exchange Server computers, by default, use TCP port 102 for all such communication between the MTAs"),
            kb(Q176466, "the firewall must be configured to allow TCP connections to TCP port 102 or the manually assigned replacement port"),
        ],
    },
    Service {
        name: "rfc1006",
        description: "ISO transport over TCP (RFC 1006), application not identified",
        protos: TCP,
        ports: &[(102, 102)],
        kind: Kind::Ports,
        consequence: Some("an ISO transport connection (RFC 1006, TCP 102) fails, and its payload did not show which application it carries: between Exchange MTAs it is the X.400 connector (Q176466); industrial protocols (S7comm, MMS) use TCP 102 too"),
        pins: &[PIN_RFC1006],
        cites: &[
            kb(Q176466, "Communication between the MTAs follows the RFC1006: ISO over TCP/IP"),
            kb(Q176466, "Exchange Server computers, by default, use TCP port 102 for all such communication between the MTAs"),
        ],
    },
    fixed(
        "s7comm",
        TCP,
        &[(102, 102)],
        "Siemens S7 communication over RFC 1006",
        Some("S7comm (Siemens S7 PLC communication over RFC 1006) fails: industrial control traffic, not Exchange"),
        &[spec("RFC 1006", "ISO Transport Service on top of the TCP")],
    ),
    fixed(
        "mms",
        TCP,
        &[(102, 102)],
        "MMS (ISO 9506) over RFC 1006",
        Some("MMS (ISO 9506, e.g. IEC 61850 substation automation) fails: industrial control traffic, not Exchange"),
        &[spec("RFC 1006", "ISO Transport Service on top of the TCP")],
    ),
    fixed(
        "smtp",
        TCP,
        &[(25, 25)],
        "SMTP",
        Some("SMTP fails: POP3 and IMAP4 clients cannot send messages, and inbound SMTP messages do not reach the Internet Mail Service (Q176466)"),
        &[
            kb(Q176466, "This requires access to TCP port 25"),
            kb(Q176466, "The Internet Mail Connector and the Internet Mail Service use TCP port 25 for inbound SMTP messages"),
        ],
    ),
    fixed(
        "pop3",
        TCP,
        &[(110, 110)],
        "POP3",
        Some("POP3 clients cannot download and retrieve messages (Q176466)"),
        &[kb(Q176466, "requires access to TCP port 110")],
    ),
    fixed(
        "pop3s",
        TCP,
        &[(995, 995)],
        "POP3 over SSL",
        Some("POP3 clients using SSL cannot download and retrieve messages (Q176466)"),
        &[kb(Q176466, "the Exchange Server computer listens on port 995")],
    ),
    fixed(
        "imap",
        TCP,
        &[(143, 143)],
        "IMAP4",
        Some("IMAP4 clients cannot download and retrieve messages (Q176466)"),
        &[
            kb(Q176466, "the IMAP4 server listens on TCP port 143"),
            kb(KB270836, "Web client front-end and back-end connectivity requires port 80 [TCP] open, IMAP 143 [TCP], and so on"),
        ],
    ),
    fixed(
        "imaps",
        TCP,
        &[(993, 993)],
        "IMAP4 over SSL",
        Some("IMAP4 clients using SSL cannot download and retrieve messages (Q176466)"),
        &[kb(Q176466, "the port on which the Exchange Server computer listens is TCP port 993")],
    ),
    fixed(
        "ldap",
        BOTH,
        &[(389, 389)],
        "LDAP",
        Some("LDAP clients cannot reach the directory (Q176466), nor a front-end server the domain controllers to log on (KB270836)"),
        &[
            kb(Q176466, "With Basic authentication, the Exchange Server computer listens on port 389"),
            kb(KB270836, "389 (TCP, UDP) - Lightweight Directory Access Protocol (LDAP)"),
        ],
    ),
    fixed(
        "ldaps",
        TCP,
        &[(636, 636)],
        "LDAP over SSL",
        Some("LDAP clients using SSL cannot reach the directory (Q176466)"),
        &[kb(Q176466, "For SSL authentication, the port that the Exchange Server computer listens on is 636")],
    ),
    fixed(
        "gc",
        TCP,
        &[(3268, 3268)],
        "LDAP to a global catalog",
        Some("LDAP to the global catalog servers fails: a front-end server cannot log on to the domain (KB270836)"),
        &[kb(KB270836, "3268 (TCP) - LDAP to global catalog servers")],
    ),
    fixed(
        "gc-ssl",
        TCP,
        &[(3269, 3269)],
        "LDAP to a global catalog over SSL",
        Some("LDAP over SSL to the global catalog fails"),
        &[iana("msft-gc-ssl 3269/tcp")],
    ),
    fixed(
        "nntp",
        TCP,
        &[(119, 119)],
        "NNTP",
        Some("NNTP clients cannot read newsgroups (Exchange public folders) (Q176466)"),
        &[
            kb(Q176466, "NNTP clients need to connect to the Exchange Server computer via port 119"),
            kb(Q176466, "Clients can access these newsgroups as Exchange public folders"),
        ],
    ),
    fixed(
        "nntps",
        TCP,
        &[(563, 563)],
        "NNTP over SSL",
        Some("NNTP clients using SSL cannot read newsgroups"),
        &[iana("nntps 563/tcp")],
    ),
    fixed(
        "dns",
        BOTH,
        &[(53, 53)],
        "DNS",
        Some("name resolution fails: a front-end server cannot log on to the domain (KB270836)"),
        &[kb(KB270836, "53 (Transmission Control Protocol [TCP], User Datagram Protocol [UDP]) - Domain Name System (DNS)")],
    ),
    fixed(
        "kerberos",
        BOTH,
        &[(88, 88)],
        "Kerberos",
        Some("Kerberos authentication fails: a front-end server cannot log on to the domain (KB270836)"),
        &[kb(KB270836, "88 (Transmission Control Protocol [TCP], UDP) - Kerberos authentication")],
    ),
    fixed(
        "ntp",
        UDP,
        &[(123, 123)],
        "Windows time (NTP)",
        Some("Windows time synchronization fails; KB270836: not required for Windows 2000 logon, though the network administrator may configure or require it"),
        &[kb(KB270836, "123 (UDP) - Windows Time Synchronization Protocol (NTP). This is not required for Windows 2000 logon capability. However, it may be configured or required by the network administrator.")],
    ),
    fixed(
        "smb",
        TCP,
        &[(445, 445)],
        "SMB",
        Some("SMB fails: Netlogon, LDAP conversion and DFS discovery of a front-end server break (KB270836)"),
        &[kb(KB270836, "445 (TCP) - Server message block (SMB) for Netlogon, LDAP conversion, and Microsoft Distributed File System (DFS) discovery")],
    ),
    fixed(
        "netbios-ns",
        UDP,
        &[(137, 137)],
        "NetBIOS name service",
        None,
        &[iana("netbios-ns 137/udp")],
    ),
    fixed(
        "netbios-dgm",
        UDP,
        &[(138, 138)],
        "NetBIOS datagram service",
        None,
        &[iana("netbios-dgm 138/udp")],
    ),
    fixed(
        "netbios-ssn",
        TCP,
        &[(139, 139)],
        "NetBIOS session service",
        None,
        &[iana("netbios-ssn 139/tcp")],
    ),
    fixed(
        "http",
        TCP,
        &[(80, 80)],
        "HTTP (Outlook Web Access)",
        Some("Outlook Web Access between front-end and back-end servers fails (KB270836)"),
        &[kb(KB270836, "80 (TCP) - Required for Outlook Web Access access for communication between front-end and back-end Exchange servers")],
    ),
    fixed(
        "https",
        TCP,
        &[(443, 443)],
        "HTTPS",
        Some("HTTPS fails (Outlook Web Access over SSL, RPC over HTTP)"),
        &[iana("https 443/tcp")],
    ),
    // The ports an RPC proxy's clients name in their URLs (#24): whatever
    // the backend listens on for ncacn_http; none is fixed here.
    fixed(
        "rpc-proxy-backend",
        TCP,
        &[],
        "an RPC proxy's connection to the backend its clients' RPC over HTTP URL names (ncacn_http)",
        None,
        &[spec("MS-RPCH", "RPC over HTTP proxy")],
    ),
    fixed(
        "rpc-over-http",
        TCP,
        &[(593, 593)],
        "RPC over HTTP endpoint mapper",
        Some("the RPC over HTTP endpoint mapper (TCP 593) is unreachable"),
        &[iana("http-rpc-epmap 593/tcp")],
    ),
    Service {
        name: "icmp-echo",
        description: "ICMP echo request and reply (not followed by exflow)",
        protos: &[],
        ports: &[],
        kind: Kind::IcmpEcho,
        consequence: Some("DSAccess pings each domain controller with ICMP: without ICMP it responds as if every domain controller were unavailable (KB270836)"),
        pins: &[],
        cites: &[kb(KB270836, "By default, Directory Access (DSAccess) uses ICMP to ping each server to which it connects to determine whether the server is available. When there is no ICMP connectivity, Directory Access responds as if every domain controller were unavailable.")],
    },
];

/// The row of service `name`, if it is one.
pub fn service(name: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.name == name)
}

/// What breaks when `service` is blocked, in its articles' words.
pub fn consequence(service_name: &str) -> Option<&'static str> {
    service(service_name).and_then(|s| s.consequence)
}

// ---------------------------------------------------------------------------
// RPC interfaces

/// One RPC interface of the catalogue (protocols.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interface {
    pub uuid: Uuid,
    /// (major, minor) as listed in §3; informational — matching is by UUID.
    /// `None` where §3 marks the version as not verified (AsyncEMSMDB).
    pub version: Option<(u16, u16)>,
    pub name: &'static str,
    /// Its service (a row of [`SERVICES`]).
    pub service: &'static str,
    /// The registry values that pin this interface's port (empty: none is
    /// documented; the dynamic range can be restricted, [`RANGE_RECIPE`]).
    pub pins: &'static [Pin],
}

const fn u(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Uuid {
    Uuid::from_fields(d1, d2, d3, d4)
}

const fn iface(
    uuid: Uuid,
    version: Option<(u16, u16)>,
    name: &'static str,
    service: &'static str,
    pins: &'static [Pin],
) -> Interface {
    Interface {
        uuid,
        version,
        name,
        service,
        pins,
    }
}

/// The catalogue, in §3 order.
pub static INTERFACES: &[Interface] = &[
    iface(
        u(
            0xa4f1db00,
            0xca47,
            0x1067,
            [0xb3, 0x1f, 0x00, 0xdd, 0x01, 0x06, 0x62, 0xda],
        ),
        Some((0, 81)),
        "EMSMDB",
        "exchange-store",
        &[PIN_STORE],
    ),
    iface(
        u(
            0x5261574a,
            0x4572,
            0x206e,
            [0xb2, 0x68, 0x6b, 0x19, 0x92, 0x13, 0xb4, 0xe4],
        ),
        None,
        "AsyncEMSMDB",
        "exchange-store",
        &[PIN_STORE],
    ),
    iface(
        u(
            0xf5cc5a18,
            0x4264,
            0x101a,
            [0x8c, 0x59, 0x08, 0x00, 0x2b, 0x2f, 0x84, 0x26],
        ),
        Some((56, 0)),
        "NSPI",
        "exchange-directory",
        &[PIN_NSPI_55, PIN_NSPI_PROXY, PIN_NSPI_GC],
    ),
    iface(
        u(
            0x1544f5e0,
            0x613c,
            0x11d1,
            [0x93, 0xdf, 0x00, 0xc0, 0x4f, 0xd7, 0xbd, 0x09],
        ),
        Some((1, 0)),
        "RFR",
        "exchange-referral",
        &[PIN_RFR],
    ),
    iface(
        u(
            0x469d6ec0,
            0x0d87,
            0x11ce,
            [0xb1, 0x3f, 0x00, 0xaa, 0x00, 0x3b, 0xac, 0x6c],
        ),
        Some((16, 0)),
        "Exchange System Attendant",
        "exchange-sa",
        &[PIN_SA],
    ),
    iface(
        u(
            0x83d72bf0,
            0x0d89,
            0x11ce,
            [0xb1, 0x3f, 0x00, 0xaa, 0x00, 0x3b, 0xac, 0x6c],
        ),
        Some((6, 0)),
        "Exchange System Attendant Private",
        "exchange-sa",
        &[PIN_SA],
    ),
    iface(
        u(
            0xf930c514,
            0x1215,
            0x11d3,
            [0x99, 0xa5, 0x00, 0xa0, 0xc9, 0xb6, 0x1b, 0x04],
        ),
        Some((1, 0)),
        "Exchange System Attendant Cluster",
        "exchange-sa",
        &[PIN_SA],
    ),
    iface(
        u(
            0x9e8ee830,
            0x4459,
            0x11ce,
            [0x97, 0x9b, 0x00, 0xaa, 0x00, 0x5f, 0xfe, 0xbe],
        ),
        Some((2, 0)),
        "Exchange MTA",
        "exchange-mta",
        &[PIN_MTA_RPC],
    ),
    iface(
        u(
            0x38a94e72,
            0xa9bc,
            0x11d2,
            [0x8f, 0xaf, 0x00, 0xc0, 0x4f, 0xa3, 0x78, 0xff],
        ),
        Some((1, 0)),
        "Exchange MTA QAdmin",
        "exchange-mta",
        &[PIN_MTA_RPC],
    ),
    iface(
        u(
            0x99e64010,
            0xb032,
            0x11d0,
            [0x97, 0xa4, 0x00, 0xc0, 0x4f, 0xd6, 0x55, 0x1d],
        ),
        Some((3, 0)),
        "Exchange Store Admin",
        "exchange-store-admin",
        &[],
    ),
    iface(
        u(
            0x89742ace,
            0xa9ed,
            0x11cf,
            [0x9c, 0x0c, 0x08, 0x00, 0x2b, 0xe7, 0xae, 0x86],
        ),
        Some((2, 0)),
        "Exchange Store Admin",
        "exchange-store-admin",
        &[],
    ),
    iface(
        u(
            0xa4f1db00,
            0xca47,
            0x1067,
            [0xb3, 0x1e, 0x00, 0xdd, 0x01, 0x06, 0x62, 0xda],
        ),
        Some((1, 0)),
        "Exchange Store Admin",
        "exchange-store-admin",
        &[],
    ),
    iface(
        u(
            0xf5cc5a7c,
            0x4264,
            0x101a,
            [0x8c, 0x59, 0x08, 0x00, 0x2b, 0x2f, 0x84, 0x26],
        ),
        Some((21, 0)),
        "Exchange Directory XDS",
        "exchange-directory",
        &[],
    ),
    iface(
        u(
            0xe3514235,
            0x4b06,
            0x11d1,
            [0xab, 0x04, 0x00, 0xc0, 0x4f, 0xc2, 0xdc, 0xd2],
        ),
        Some((4, 0)),
        "DRSUAPI",
        "ad-replication",
        &[PIN_NTDS_AD],
    ),
    iface(
        u(
            0x7c44d7d4,
            0x31d5,
            0x424c,
            [0xbd, 0x5e, 0x2b, 0x3e, 0x1f, 0x32, 0x3d, 0x22],
        ),
        Some((1, 0)),
        "dsaop",
        "ad-replication",
        &[PIN_NTDS_AD],
    ),
    iface(
        u(
            0x12345678,
            0x1234,
            0xabcd,
            [0xef, 0x00, 0x01, 0x23, 0x45, 0x67, 0xcf, 0xfb],
        ),
        Some((1, 0)),
        "NETLOGON",
        "netlogon",
        &[PIN_NETLOGON, PIN_NETLOGON_NTDS],
    ),
    iface(
        u(
            0x12345778,
            0x1234,
            0xabcd,
            [0xef, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab],
        ),
        Some((0, 0)),
        "LSARPC",
        "lsarpc",
        &[PIN_NTDS_CLIENT_RPC],
    ),
    iface(
        u(
            0x12345778,
            0x1234,
            0xabcd,
            [0xef, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0xac],
        ),
        Some((1, 0)),
        "SAMR",
        "samr",
        &[PIN_NTDS_CLIENT_RPC],
    ),
    iface(
        u(
            0x50abc2a4,
            0x574d,
            0x40b3,
            [0x9d, 0x66, 0xee, 0x4f, 0xd5, 0xfb, 0xa0, 0x76],
        ),
        Some((5, 0)),
        "DNS Server",
        "dnsserver",
        &[],
    ),
    iface(
        u(
            0xf5cc59b4,
            0x4264,
            0x101a,
            [0x8c, 0x59, 0x08, 0x00, 0x2b, 0x2f, 0x84, 0x26],
        ),
        Some((1, 1)),
        "FRS",
        "frs",
        &[PIN_FRS],
    ),
    iface(
        u(
            0x897e2e5f,
            0x93f3,
            0x4376,
            [0x9c, 0x9c, 0xfd, 0x22, 0x77, 0x49, 0x5c, 0x27],
        ),
        Some((1, 0)),
        "DFSR",
        "dfsr",
        &[],
    ),
    // Intersite Messaging runs in its own service (ismserv.exe), not in
    // Active Directory: the NTDS "TCP/IP Port" does not pin it, and no
    // article read documents a value that does.
    iface(
        u(
            0x68dcd486,
            0x669e,
            0x11d1,
            [0xab, 0x0c, 0x00, 0xc0, 0x4f, 0xc2, 0xdc, 0xd2],
        ),
        Some((1, 0)),
        "Intersite Messaging",
        "ismserv",
        &[],
    ),
    iface(
        crate::proto::dcerpc::UUID_EPM,
        Some((3, 0)),
        "EPM",
        "epm",
        &[],
    ),
    // DCOM ([MS-DCOM] §1.9; [MS-WMI] §1.9 for IWbemLevel1Login and
    // IWbemServices): no registry value documented in the articles read
    // pins an object exporter's port; KB154596 restricts the range.
    iface(
        crate::proto::dcom::UUID_ISYSTEM_ACTIVATOR,
        Some((0, 0)),
        "ISystemActivator",
        "dcom",
        &[],
    ),
    iface(
        crate::proto::dcom::UUID_IREMOTE_ACTIVATION,
        Some((0, 0)),
        "IRemoteActivation",
        "dcom",
        &[],
    ),
    iface(
        crate::proto::dcom::UUID_IOBJECT_EXPORTER,
        Some((0, 0)),
        "IObjectExporter",
        "dcom",
        &[],
    ),
    iface(
        u(0x00000131, 0, 0, [0xc0, 0, 0, 0, 0, 0, 0, 0x46]),
        Some((0, 0)),
        "IRemUnknown",
        "dcom",
        &[],
    ),
    iface(
        u(0x00000143, 0, 0, [0xc0, 0, 0, 0, 0, 0, 0, 0x46]),
        Some((0, 0)),
        "IRemUnknown2",
        "dcom",
        &[],
    ),
    iface(
        u(
            0xf309ad18,
            0xd86a,
            0x11d0,
            [0xa0, 0x75, 0x00, 0xc0, 0x4f, 0xb6, 0x88, 0x20],
        ),
        Some((0, 0)),
        "IWbemLevel1Login",
        "dcom",
        &[],
    ),
    iface(
        u(
            0x9556dc99,
            0x828c,
            0x11cf,
            [0xa3, 0x7e, 0x00, 0xaa, 0x00, 0x32, 0x40, 0xc7],
        ),
        Some((0, 0)),
        "IWbemServices",
        "dcom",
        &[],
    ),
];

/// DCOM's own machinery (activation, OXID resolution, reference
/// counting), as opposed to the interface of the object a client works
/// with: the label of a DCOM follow-up prefers the latter.
pub fn is_dcom_infrastructure(uuid: &Uuid) -> bool {
    crate::proto::dcom::DcomOperation::is_dcom_interface(uuid)
        || ["IRemUnknown", "IRemUnknown2"]
            .iter()
            .any(|n| interface(uuid).is_some_and(|i| i.name == *n))
}

/// The catalogue entry of `uuid`, if any (versions are not compared).
pub fn interface(uuid: &Uuid) -> Option<&'static Interface> {
    INTERFACES.iter().find(|i| i.uuid == *uuid)
}

/// Service label for an RPC interface that is not in the catalogue.
pub const SERVICE_RPC_OTHER: &str = "rpc-other";

/// Service label for `uuid`: the catalogue's, or [`SERVICE_RPC_OTHER`].
pub fn service_of(uuid: &Uuid) -> &'static str {
    interface(uuid).map_or(SERVICE_RPC_OTHER, |i| i.service)
}

// ---------------------------------------------------------------------------
// Pins: the values for a service or interface, in a context

/// What is known of the server a pin is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// The Exchange version (`--exchange-version`, or the policy's
    /// profiles); None: every version's values, each labelled.
    pub exchange: Option<ExchangeVersion>,
    /// The server is known as an Exchange server.
    pub is_exchange: bool,
    /// The server is known as a domain controller / global catalog.
    pub is_dc: bool,
}

/// The registry values that pin the port of `service` (or of `interface`
/// when it is known: its own values; ismserv has none although its service
/// once shared AD's), in the order to suggest them, filtered by what the
/// context knows.
pub fn pins(service_name: &str, interface: Option<&Interface>, cx: &Context) -> Vec<&'static Pin> {
    let rows: &'static [Pin] = match (interface, service(pin_service(service_name))) {
        (Some(i), _) if i.service == service_name || service_name == "unknown" => i.pins,
        (_, Some(s)) => s.pins,
        _ => &[],
    };
    rows.iter()
        .filter(|p| p.applies_to(cx.exchange))
        .filter(|p| p.host.fits(cx.is_exchange, cx.is_dc))
        .collect()
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

/// Every registry value that could pin `service` on some server, any
/// version (for checking two pins on one port).
pub fn possible_values(service_name: &str) -> Vec<RegistryValue> {
    let mut out: Vec<RegistryValue> = Vec::new();
    let mut add = |p: &Pin| {
        if !out.iter().any(|v| v.same_as(&p.value)) {
            out.push(p.value);
        }
    };
    let name = pin_service(service_name);
    if let Some(s) = service(name) {
        s.pins.iter().for_each(&mut add);
    }
    INTERFACES
        .iter()
        .filter(|i| i.service == name)
        .flat_map(|i| i.pins)
        .for_each(&mut add);
    out
}

// ---------------------------------------------------------------------------
// Profiles: the KB scenarios, between roles

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

    /// The role named `s` in a policy file.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One flow a profile allows: from every group with role `from` to every
/// group with role `to`, the named service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileRule {
    pub from: Role,
    pub to: Role,
    pub service: &'static str,
}

/// A built-in profile: one scenario of the articles.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    pub name: &'static str,
    /// One line: the scenario and its articles.
    pub description: &'static str,
    /// The Exchange version the scenario is about (its pins' values
    /// follow it), if one.
    pub exchange: Option<ExchangeVersion>,
    pub rules: &'static [ProfileRule],
    pub cites: &'static [Cite],
}

const fn r(from: Role, to: Role, service: &'static str) -> ProfileRule {
    ProfileRule { from, to, service }
}

use Role::{Clients, Dc, Exchange, Frontend, RemoteMta};

/// Every built-in profile.
pub static PROFILES: &[Profile] = &[
    Profile {
        name: "exchange55-mapi-clients",
        description: "Exchange 5.5 MAPI clients through a firewall: endpoint mapper, store and directory (Q176466, Q155831), new-mail notification to the clients (Q264035)",
        exchange: Some(ExchangeVersion::V55),
        rules: &[
            r(Clients, Exchange, "epm"),
            r(Clients, Exchange, "exchange-store"),
            r(Clients, Exchange, "exchange-directory"),
            r(Exchange, Clients, "mapi-notification"),
        ],
        cites: &[
            kb(Q176466, "the firewall needs to be configured to allow TCP connections to port 135 and all statically allocated ports"),
            kb(Q264035, "Protocol ID UDP Direction Exchange Server --> Client Local Port >1024 Remote Port >1024"),
        ],
    },
    Profile {
        name: "exchange-intrasite",
        description: "Exchange servers in one site: endpoint mapper, directory replication and MTA over RPC (Q176466)",
        exchange: None,
        rules: &[
            r(Exchange, Exchange, "epm"),
            r(Exchange, Exchange, "exchange-directory"),
            r(Exchange, Exchange, "exchange-mta"),
        ],
        cites: &[kb(Q176466, "Communication between two Exchange Server computers within a site is between the two message transfer agents (MTAs) and the two directory services")],
    },
    Profile {
        name: "exchange-intersite-rpc",
        description: "site connector over RPC between Exchange servers and remote-site MTAs, both ways (Q176466)",
        exchange: None,
        rules: &[
            r(Exchange, RemoteMta, "epm"),
            r(Exchange, RemoteMta, "exchange-mta"),
            r(RemoteMta, Exchange, "epm"),
            r(RemoteMta, Exchange, "exchange-mta"),
        ],
        cites: &[kb(Q176466, "communication between Exchange Server computers installed in two different sites is only via the corresponding message transfer agents (MTAs)")],
    },
    Profile {
        name: "x400-connector",
        description: "X.400 connector over TCP/IP (RFC 1006, port 102 or the \"RFC1006 Port Number\") between Exchange servers and remote MTAs, both ways; no TCP 135 (Q176466)",
        exchange: None,
        rules: &[
            r(Exchange, RemoteMta, "x400-mta"),
            r(RemoteMta, Exchange, "x400-mta"),
        ],
        cites: &[
            kb(Q176466, "the firewall must be configured to allow TCP connections to TCP port 102 or the manually assigned replacement port"),
            kb(Q176466, "There is no need for TCP port 135 as far the Exchange communication is concerned, because no RPC traffic is involved"),
        ],
    },
    Profile {
        name: "pop3-clients",
        description: "POP3 clients: POP3, POP3 over SSL, SMTP to send (Q176466)",
        exchange: None,
        rules: &[
            r(Clients, Exchange, "pop3"),
            r(Clients, Exchange, "pop3s"),
            r(Clients, Exchange, "smtp"),
        ],
        cites: &[kb(Q176466, "keep in mind the access to either TCP port 110 or TCP port 995 if POP3 is a supported protocol")],
    },
    Profile {
        name: "imap4-clients",
        description: "IMAP4 clients: IMAP4, IMAP4 over SSL, SMTP to send (Q176466)",
        exchange: None,
        rules: &[
            r(Clients, Exchange, "imap"),
            r(Clients, Exchange, "imaps"),
            r(Clients, Exchange, "smtp"),
        ],
        cites: &[kb(Q176466, "Router and firewall setups should therefore take into consideration the access to TCP port 143 or TCP port 993")],
    },
    Profile {
        name: "ldap-clients",
        description: "LDAP clients of the Exchange directory: LDAP, LDAP over SSL (Q176466)",
        exchange: None,
        rules: &[r(Clients, Exchange, "ldap"), r(Clients, Exchange, "ldaps")],
        cites: &[kb(Q176466, "For the LDAP client to connect to the Exchange Server computer, the ports that need to be configured on the firewall are based purely on the authentication method in use")],
    },
    Profile {
        name: "nntp-clients",
        description: "NNTP clients: NNTP, NNTP over SSL (Q176466)",
        exchange: None,
        rules: &[r(Clients, Exchange, "nntp"), r(Clients, Exchange, "nntps")],
        cites: &[kb(Q176466, "NNTP clients need to connect to the Exchange Server computer via port 119")],
    },
    Profile {
        name: "exchange2000-mapi-clients",
        description: "Exchange 2000/2003 MAPI clients with static ports (KB270836): endpoint mapper, store, NSPI and RFR on the Exchange server, NSPI on the global catalogs, new-mail notification to the clients (Q264035), and the domain controllers",
        exchange: Some(ExchangeVersion::V2000),
        rules: &[
            r(Clients, Exchange, "epm"),
            r(Clients, Exchange, "exchange-store"),
            r(Clients, Exchange, "exchange-directory"),
            r(Clients, Exchange, "exchange-referral"),
            r(Exchange, Clients, "mapi-notification"),
            r(Clients, Dc, "epm"),
            r(Clients, Dc, "exchange-directory"),
            r(Clients, Dc, "gc"),
            r(Clients, Dc, "ldap"),
            r(Clients, Dc, "kerberos"),
            r(Clients, Dc, "dns"),
        ],
        cites: &[
            kb(KB270836, "configure the packet filter or firewall to enable TCP connections to be made to port 135 for the Microsoft Exchange System Attendant service and the ports that you assigned in steps 3, 5, 7, and 9"),
            kb(KB270836, "Restart the global catalog server so that the static mapping is read when the Name Service Provider Interface (NSPI) is initialized"),
        ],
    },
    Profile {
        name: "frontend-perimeter",
        description: "Exchange 2000/2003 front-end server in a perimeter network: domain logon to the DCs (with ICMP echo for DSAccess) and the back-end protocols (KB270836)",
        exchange: Some(ExchangeVersion::V2000),
        rules: &[
            r(Frontend, Dc, "dns"),
            r(Frontend, Dc, "kerberos"),
            r(Frontend, Dc, "ntp"),
            r(Frontend, Dc, "epm"),
            r(Frontend, Dc, "ldap"),
            r(Frontend, Dc, "smb"),
            r(Frontend, Dc, "gc"),
            r(Frontend, Dc, "netlogon"),
            r(Frontend, Dc, "ad-replication"),
            r(Frontend, Dc, "icmp-echo"),
            r(Frontend, Exchange, "http"),
            r(Frontend, Exchange, "imap"),
            r(Frontend, Exchange, "pop3"),
            r(Frontend, Exchange, "smtp"),
        ],
        cites: &[
            kb(KB270836, "To enable Windows Server 2003-based computers or Windows 2000-based computers to log on to the domain through the firewall, open the following ports for incoming traffic"),
            kb(KB270836, "By default, Directory Access (DSAccess) uses ICMP to ping each server to which it connects to determine whether the server is available"),
            kb(KB270836, "Web client front-end and back-end connectivity requires port 80 [TCP] open, IMAP 143 [TCP], and so on"),
        ],
    },
];

/// The profile named `name`.
pub fn profile(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name == name)
}

/// The Exchange version a set of profiles speaks of: Some when they name
/// one (and no other), None when none or several do.
pub fn profiles_version<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<ExchangeVersion> {
    let mut found: Option<ExchangeVersion> = None;
    for v in names.into_iter().filter_map(|n| profile(n)?.exchange) {
        match found {
            Some(f) if f != v => return None,
            _ => found = Some(v),
        }
    }
    found
}

/// The article ids a text cites ("(KB270836, Q155831)" → both).
pub fn cited_ids(text: &str) -> Vec<Article> {
    Article::ALL
        .iter()
        .copied()
        .filter(|a| {
            text.match_indices(a.id()).any(|(i, _)| {
                // Not part of a longer number: "KB2708361" is another one.
                !text[i + a.id().len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit())
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_unique_and_services_in_vocabulary() {
        for (i, a) in INTERFACES.iter().enumerate() {
            // Every interface's service is a row of the service table.
            assert!(service(a.service).is_some(), "{}", a.service);
            for b in &INTERFACES[i + 1..] {
                assert_ne!(a.uuid, b.uuid, "{} duplicated", a.uuid);
            }
            for p in a.pins {
                assert!(p.value.key.starts_with(SERVICES_KEY));
            }
        }
    }

    #[test]
    fn lookups() {
        let nspi: Uuid = "f5cc5a18-4264-101a-8c59-08002b2f8426".parse().unwrap();
        let i = interface(&nspi).unwrap();
        assert_eq!(i.name, "NSPI");
        assert_eq!(i.service, "exchange-directory");
        assert_eq!(i.version, Some((56, 0)));
        let emsmdb: Uuid = "a4f1db00-ca47-1067-b31f-00dd010662da".parse().unwrap();
        assert_eq!(service_of(&emsmdb), "exchange-store");
        assert_eq!(
            interface(&emsmdb).unwrap().pins[0].value.full_key(),
            r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\MSExchangeIS\ParametersSystem"
        );
        assert_eq!(
            interface(&emsmdb).unwrap().pins[0].value.value,
            "TCP/IP Port"
        );
        // The store-admin twin differs from EMSMDB in one nibble only.
        let admin: Uuid = "a4f1db00-ca47-1067-b31e-00dd010662da".parse().unwrap();
        assert_eq!(service_of(&admin), "exchange-store-admin");
        // AsyncEMSMDB ends in …b4e4 (not …b4e5).
        let wrong: Uuid = "5261574a-4572-206e-b268-6b199213b4e5".parse().unwrap();
        assert_eq!(service_of(&wrong), SERVICE_RPC_OTHER);
        let drs: Uuid = "e3514235-4b06-11d1-ab04-00c04fc2dcd2".parse().unwrap();
        assert_eq!(interface(&drs).unwrap().pins[0].value.value, "TCP/IP Port");
        assert_eq!(service_of(&crate::proto::dcerpc::UUID_EPM), "epm");
    }
}
