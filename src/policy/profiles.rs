//! Built-in profiles: the flows each KB scenario needs, between roles.
//!
//! A profile rule applies to every pair of groups with its roles; a profile
//! whose roles have no group in the policy adds nothing (see
//! [`super::Policy::profile_warnings`]).

use super::Role;
use Role::*;

/// One flow a profile allows: from every group with role `from` to every
/// group with role `to`, the named service (see [`super::services`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileRule {
    pub from: Role,
    pub to: Role,
    pub service: &'static str,
}

/// A built-in profile.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    pub name: &'static str,
    /// One line: the KB scenario and article.
    pub description: &'static str,
    /// The flows it allows, between roles.
    pub rules: &'static [ProfileRule],
}

const fn r(from: Role, to: Role, service: &'static str) -> ProfileRule {
    ProfileRule { from, to, service }
}

/// Every built-in profile.
pub static PROFILES: &[Profile] = &[
    Profile {
        name: "exchange55-mapi-clients",
        description: "Exchange 5.5 MAPI clients through a firewall: endpoint mapper, store and directory (Q176466, Q155831), new-mail notification to the clients (Q264035)",
        rules: &[
            r(Clients, Exchange, "epm"),
            r(Clients, Exchange, "exchange-store"),
            r(Clients, Exchange, "exchange-directory"),
            r(Exchange, Clients, "mapi-notification"),
        ],
    },
    Profile {
        name: "exchange-intrasite",
        description: "Exchange servers in one site: endpoint mapper, directory replication and MTA over RPC (Q176466)",
        rules: &[
            r(Exchange, Exchange, "epm"),
            r(Exchange, Exchange, "exchange-directory"),
            r(Exchange, Exchange, "exchange-mta"),
        ],
    },
    Profile {
        name: "exchange-intersite-rpc",
        description: "site connector over RPC between Exchange servers and remote-site MTAs, both ways (Q176466)",
        rules: &[
            r(Exchange, RemoteMta, "epm"),
            r(Exchange, RemoteMta, "exchange-mta"),
            r(RemoteMta, Exchange, "epm"),
            r(RemoteMta, Exchange, "exchange-mta"),
        ],
    },
    Profile {
        name: "x400-connector",
        description: "X.400 connector over TCP/IP (RFC 1006, port 102 or the \"RFC1006 Port Number\") between Exchange servers and remote MTAs, both ways (Q176466)",
        rules: &[
            r(Exchange, RemoteMta, "x400-mta"),
            r(RemoteMta, Exchange, "x400-mta"),
        ],
    },
    Profile {
        name: "pop3-clients",
        description: "POP3 clients: POP3, POP3 over SSL, SMTP to send (Q176466)",
        rules: &[
            r(Clients, Exchange, "pop3"),
            r(Clients, Exchange, "pop3s"),
            r(Clients, Exchange, "smtp"),
        ],
    },
    Profile {
        name: "imap4-clients",
        description: "IMAP4 clients: IMAP4, IMAP4 over SSL, SMTP to send (Q176466)",
        rules: &[
            r(Clients, Exchange, "imap"),
            r(Clients, Exchange, "imaps"),
            r(Clients, Exchange, "smtp"),
        ],
    },
    Profile {
        name: "ldap-clients",
        description: "LDAP clients of the Exchange directory: LDAP, LDAP over SSL (Q176466)",
        rules: &[r(Clients, Exchange, "ldap"), r(Clients, Exchange, "ldaps")],
    },
    Profile {
        name: "nntp-clients",
        description: "NNTP clients: NNTP, NNTP over SSL (Q176466)",
        rules: &[r(Clients, Exchange, "nntp"), r(Clients, Exchange, "nntps")],
    },
    Profile {
        name: "exchange2000-mapi-clients",
        description: "Exchange 2000/2003 MAPI clients with static ports: store, NSPI, RFR, notification, and the domain controllers (KB270836)",
        rules: &[
            r(Clients, Exchange, "epm"),
            r(Clients, Exchange, "exchange-store"),
            r(Clients, Exchange, "exchange-directory"),
            r(Clients, Exchange, "exchange-referral"),
            r(Exchange, Clients, "mapi-notification"),
            r(Clients, Dc, "epm"),
            r(Clients, Dc, "gc"),
            r(Clients, Dc, "ldap"),
            r(Clients, Dc, "kerberos"),
            r(Clients, Dc, "dns"),
        ],
    },
    Profile {
        name: "frontend-perimeter",
        description: "Exchange 2000/2003 front-end server in a perimeter network: domain logon to the DCs and the back-end protocols (KB270836)",
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
            r(Frontend, Exchange, "http"),
            r(Frontend, Exchange, "imap"),
            r(Frontend, Exchange, "pop3"),
            r(Frontend, Exchange, "smtp"),
        ],
    },
];

pub fn lookup(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name == name)
}

/// Every built-in profile name, in documentation order.
pub fn names() -> impl Iterator<Item = &'static str> {
    PROFILES.iter().map(|p| p.name)
}

impl Profile {
    /// The roles its rules speak of, sorted, without repeats.
    pub fn roles(&self) -> Vec<Role> {
        let mut roles: Vec<Role> = self.rules.iter().flat_map(|r| [r.from, r.to]).collect();
        roles.sort();
        roles.dedup();
        roles
    }
}
