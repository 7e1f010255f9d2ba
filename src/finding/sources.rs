//! Whom a fix lets through (or shuts out): the clients of a finding as the
//! fewest CIDR blocks that cover exactly them, and, when that is still too
//! many for one rule, the policy's client group or one covering prefix.
//!
//! A flood of 2.7 M SYNs from distinct sources once became an nft set of
//! 2.7 M addresses (a 37 MB line) and as many iptables lines; a blocked
//! service with thousands of real clients must still get a fix an admin can
//! read and a firewall loads at once.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::policy::{Group, Policy};

/// The most source blocks one fix lists: the elements of its nft set, and
/// its iptables lines (one per block). A few dozen rules are still read
/// and reviewed; beyond that nobody checks them one by one, and a set of a
/// thousand ranges is an unreviewable line. Past it a fix names the
/// policy's client group or one covering prefix, and says what that adds.
pub const MAX_FIX_SOURCES: usize = 32;

/// How a fix chose its sources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceChoice {
    /// The fewest CIDR blocks covering exactly the clients (with a policy:
    /// the networks of the clients' groups that hold them).
    Exact,
    /// The exact blocks were more than [`MAX_FIX_SOURCES`]: the networks of
    /// this policy group, which holds every client.
    PolicyGroup(String),
    /// The exact blocks were more than [`MAX_FIX_SOURCES`] and no policy
    /// group holds every client: the smallest prefix covering them (one per
    /// address family).
    CoveringPrefix,
}

impl SourceChoice {
    /// The report's word for it: "exact", "policy-group", "covering-prefix".
    pub fn as_str(&self) -> &'static str {
        match self {
            SourceChoice::Exact => "exact",
            SourceChoice::PolicyGroup(_) => "policy-group",
            SourceChoice::CoveringPrefix => "covering-prefix",
        }
    }
}

/// The sources of a fix and what they stand for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixSources {
    /// The rule's sources, at most [`MAX_FIX_SOURCES`] of them, IPv4 before
    /// IPv6, ascending; a single host as its bare address.
    pub blocks: Vec<String>,
    pub choice: SourceChoice,
    /// The distinct client addresses the fix stands for.
    pub clients: usize,
    /// How many blocks the exact cover needs.
    pub exact_blocks: usize,
    /// Addresses the blocks cover that the exact cover does not (0 when
    /// `choice` is `Exact`); saturates at `u128::MAX` (an IPv6 /0).
    pub added_addresses: u128,
}

impl FixSources {
    /// The sources in a few words, for a fix's summary: the blocks (up to
    /// four), else how many clients in how many blocks, else the policy
    /// group or the covering prefix.
    pub fn short(&self) -> String {
        let listed = || self.blocks.join(", ");
        match &self.choice {
            SourceChoice::Exact if self.blocks.len() <= 4 => listed(),
            SourceChoice::Exact => {
                format!("{} clients ({} blocks)", self.clients, self.blocks.len())
            }
            SourceChoice::PolicyGroup(g) if self.blocks.len() <= 4 => {
                format!("policy group {g} ({})", listed())
            }
            SourceChoice::PolicyGroup(g) => {
                format!("policy group {g} ({} networks)", self.blocks.len())
            }
            SourceChoice::CoveringPrefix => listed(),
        }
    }

    /// Why the sources are wider than the clients, and by how much: None
    /// when they are the exact cover.
    pub fn widening(&self) -> Option<String> {
        let what = match &self.choice {
            SourceChoice::Exact => return None,
            SourceChoice::PolicyGroup(_) => "the policy group holding them all",
            SourceChoice::CoveringPrefix => "the smallest prefix covering them",
        };
        Some(format!(
            "it stands for the {} clients seen, whose exact cover ({} blocks) is more than one fix lists ({}): {} adds {} addresses beyond them",
            self.clients,
            self.exact_blocks,
            MAX_FIX_SOURCES,
            what,
            count(self.added_addresses)
        ))
    }
}

/// A count of addresses for people: exact up to a trillion, then rounded
/// ("about 1.5e23": an IPv6 prefix's count has no useful last digits).
fn count(n: u128) -> String {
    if n < 1_000_000_000_000 {
        n.to_string()
    } else {
        format!("about {:.1e}", n as f64)
    }
}

/// The sources a fix should name for `clients` (distinct addresses): each
/// client's policy group networks that hold it (else the client itself),
/// collapsed to the fewest CIDR blocks; more than [`MAX_FIX_SOURCES`] of
/// them become the policy group holding every client (when its networks
/// fit) or else the smallest covering prefix.
pub fn fix_sources(clients: &[IpAddr], policy: Option<&Policy>) -> FixSources {
    let mut nets: Vec<IpNet> = Vec::with_capacity(clients.len());
    for c in clients {
        match policy.and_then(|p| p.group_of(c)) {
            Some(g) => nets.extend(
                g.members
                    .iter()
                    .filter(|m| m.contains(c))
                    .filter_map(|m| IpNet::new(m.addr, m.prefix).ok()),
            ),
            None => nets.push(IpNet::from(*c)),
        }
    }
    let exact = IpNet::aggregate(&nets);
    let mut out = FixSources {
        blocks: Vec::new(),
        choice: SourceChoice::Exact,
        clients: clients.len(),
        exact_blocks: exact.len(),
        added_addresses: 0,
    };
    let chosen = if exact.len() <= MAX_FIX_SOURCES {
        exact.clone()
    } else if let Some((g, nets)) = policy.and_then(|p| covering_group(p, clients)) {
        out.choice = SourceChoice::PolicyGroup(g.name.clone());
        nets
    } else {
        out.choice = SourceChoice::CoveringPrefix;
        covering_prefixes(&exact)
    };
    out.added_addresses = size(&chosen).saturating_sub(overlap(&chosen, &exact));
    out.blocks = chosen.iter().map(block_text).collect();
    out
}

/// The first policy group (file order) holding every client, with its
/// networks of the clients' families collapsed, if they fit in one fix.
fn covering_group<'p>(p: &'p Policy, clients: &[IpAddr]) -> Option<(&'p Group, Vec<IpNet>)> {
    let (v4, v6) = (
        clients.iter().any(IpAddr::is_ipv4),
        clients.iter().any(IpAddr::is_ipv6),
    );
    p.groups
        .iter()
        .filter(|g| !g.members.is_empty())
        .find(|g| {
            clients
                .iter()
                .all(|c| g.members.iter().any(|m| m.contains(c)))
        })
        .and_then(|g| {
            let nets: Vec<IpNet> = g
                .members
                .iter()
                .filter(|m| if m.addr.is_ipv4() { v4 } else { v6 })
                .filter_map(|m| IpNet::new(m.addr, m.prefix).ok())
                .collect();
            let nets = IpNet::aggregate(&nets);
            (nets.len() <= MAX_FIX_SOURCES).then_some((g, nets))
        })
}

/// The smallest prefix covering `blocks`, one per address family present.
fn covering_prefixes(blocks: &[IpNet]) -> Vec<IpNet> {
    let mut out = Vec::new();
    for v6 in [false, true] {
        let mut family = blocks
            .iter()
            .filter(|n| matches!(n, IpNet::V6(_)) == v6)
            .map(range);
        let Some(first) = family.next() else {
            continue;
        };
        let (lo, hi) = family.fold(first, |(lo, hi), (a, b)| (lo.min(a), hi.max(b)));
        let bits: u32 = if v6 { 128 } else { 32 };
        // Within the family's width, the bits where lo and hi agree.
        let common = ((lo ^ hi).leading_zeros() - (128 - bits)) as u8;
        let addr = if v6 {
            IpAddr::from(lo.to_be_bytes())
        } else {
            IpAddr::from((lo as u32).to_be_bytes())
        };
        out.push(
            IpNet::new(addr, common)
                .expect("a prefix length within the family")
                .trunc(),
        );
    }
    out
}

/// First and last address of a block, as integers (IPv4 in the low bits).
fn range(n: &IpNet) -> (u128, u128) {
    let int = |a: IpAddr| match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    (int(n.network()), int(n.broadcast()))
}

/// Addresses in a block: 2^(width − prefix), saturating for an IPv6 /0.
fn block_size(n: &IpNet) -> u128 {
    let (lo, hi) = range(n);
    (hi - lo).saturating_add(1)
}

/// Addresses in disjoint blocks.
fn size(blocks: &[IpNet]) -> u128 {
    blocks.iter().map(block_size).fold(0, u128::saturating_add)
}

/// Addresses of `a` that `b` covers too (each list disjoint).
fn overlap(a: &[IpNet], b: &[IpNet]) -> u128 {
    let mut sum: u128 = 0;
    for x in a {
        for y in b {
            if matches!(x, IpNet::V6(_)) != matches!(y, IpNet::V6(_)) {
                continue;
            }
            let ((xl, xh), (yl, yh)) = (range(x), range(y));
            let (lo, hi) = (xl.max(yl), xh.min(yh));
            if lo <= hi {
                sum = sum.saturating_add((hi - lo).saturating_add(1));
            }
        }
    }
    sum
}

/// "192.0.2.0/24"; a single host as its bare address (as the rules always
/// wrote it).
fn block_text(n: &IpNet) -> String {
    if n.prefix_len() == n.max_prefix_len() {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    /// `n` consecutive addresses from `first` (IPv4).
    fn run_v4(first: &str, n: u32) -> Vec<IpAddr> {
        let a: std::net::Ipv4Addr = first.parse().unwrap();
        (0..n)
            .map(|i| IpAddr::V4((u32::from(a) + i).into()))
            .collect()
    }

    fn policy(groups: &str) -> Policy {
        let text = format!(r#"{{ "schema": "exflow.policy/1", "groups": {groups} }}"#);
        Policy::parse(&text, "test.json").unwrap()
    }

    #[test]
    fn adjacent_hosts_merge_and_a_gap_stays() {
        // .10 and .11 are one /31; .12-.15 a /30; .17 stands alone (.16 missing).
        let s = fix_sources(
            &ips(&[
                "192.0.2.10",
                "192.0.2.11",
                "192.0.2.12",
                "192.0.2.13",
                "192.0.2.14",
                "192.0.2.15",
                "192.0.2.17",
            ]),
            None,
        );
        assert_eq!(s.blocks, ["192.0.2.10/31", "192.0.2.12/30", "192.0.2.17"]);
        assert_eq!(s.choice, SourceChoice::Exact);
        assert_eq!((s.clients, s.exact_blocks, s.added_addresses), (7, 3, 0));

        // A whole /24 of clients is one block; one missing host splits it
        // into exactly the blocks that leave it out (8 of them).
        let full = run_v4("198.51.100.0", 256);
        assert_eq!(fix_sources(&full, None).blocks, ["198.51.100.0/24"]);
        let mut holed = full.clone();
        holed.remove(77);
        let s = fix_sources(&holed, None);
        assert_eq!(s.blocks.len(), 8, "{:?}", s.blocks);
        assert!(!s.blocks.contains(&"198.51.100.0/24".to_string()));
        assert!(
            s.blocks.contains(&"198.51.100.76".to_string()),
            "{:?}",
            s.blocks
        );
        assert_eq!(s.added_addresses, 0);

        // Two halves of different /24s do not merge across the boundary
        // into a wrong prefix.
        let mut two = run_v4("192.0.2.128", 128);
        two.extend(run_v4("198.51.100.0", 128));
        assert_eq!(
            fix_sources(&two, None).blocks,
            ["192.0.2.128/25", "198.51.100.0/25"]
        );
    }

    #[test]
    fn ipv6_is_collapsed_on_its_own() {
        let s = fix_sources(
            &ips(&[
                "192.0.2.10",
                "2001:db8::",
                "2001:db8::1",
                "2001:db8::2",
                "2001:db8::3",
                "2001:db8::5",
                "192.0.2.11",
            ]),
            None,
        );
        assert_eq!(
            s.blocks,
            ["192.0.2.10/31", "2001:db8::/126", "2001:db8::5"],
            "IPv4 first, each family merged separately"
        );
        // An IPv4 address and an IPv6 one never share a block, even where
        // their integers would be adjacent.
        let s = fix_sources(&ips(&["0.0.0.1", "::", "::1", "0.0.0.0"]), None);
        assert_eq!(s.blocks, ["0.0.0.0/31", "::/127"]);
    }

    #[test]
    fn overlapping_group_networks_become_one_block() {
        // A group listing a network and a host inside it: the host's
        // network and the host were two overlapping set elements (which
        // nft rejects); collapsed, only the network is left.
        let p = policy(r#"{ "clients": { "hosts": ["192.0.2.0/25", "192.0.2.100"] } }"#);
        let s = fix_sources(&ips(&["192.0.2.100", "192.0.2.5"]), Some(&p));
        assert_eq!(s.blocks, ["192.0.2.0/25"]);
        assert_eq!(s.choice, SourceChoice::Exact);
        // Clients outside every group stay themselves.
        let s = fix_sources(&ips(&["192.0.2.5", "203.0.113.9"]), Some(&p));
        assert_eq!(s.blocks, ["192.0.2.0/25", "203.0.113.9"]);
    }

    #[test]
    fn at_the_cap_the_blocks_are_kept_past_it_a_covering_prefix() {
        // Every other address of 198.51.100.0/24: no two merge.
        let every_other = |n: usize| -> Vec<IpAddr> {
            run_v4("198.51.100.0", 256)
                .into_iter()
                .step_by(2)
                .take(n)
                .collect()
        };
        let s = fix_sources(&every_other(MAX_FIX_SOURCES), None);
        assert_eq!(s.choice, SourceChoice::Exact);
        assert_eq!(s.blocks.len(), MAX_FIX_SOURCES);

        let clients = every_other(MAX_FIX_SOURCES + 1);
        let s = fix_sources(&clients, None);
        assert_eq!(s.choice, SourceChoice::CoveringPrefix);
        // .0 .. .64: the smallest prefix holding both is the /25.
        assert_eq!(s.blocks, ["198.51.100.0/25"]);
        assert_eq!(s.clients, MAX_FIX_SOURCES + 1);
        assert_eq!(s.exact_blocks, MAX_FIX_SOURCES + 1);
        assert_eq!(s.added_addresses, 128 - (MAX_FIX_SOURCES as u128 + 1));

        // Two ranges far apart: the prefix is as wide as it must be.
        let mut far = every_other(MAX_FIX_SOURCES);
        far.push("203.0.113.1".parse().unwrap());
        let s = fix_sources(&far, None);
        assert_eq!(s.blocks, ["192.0.0.0/4"]);
        assert_eq!(
            s.added_addresses,
            (1u128 << 28) - (MAX_FIX_SOURCES as u128 + 1)
        );
    }

    #[test]
    fn past_the_cap_ipv6_gets_its_own_covering_prefix() {
        let mut clients: Vec<IpAddr> = (0..40u128)
            .map(|i| {
                IpAddr::V6(
                    (u128::from("2001:db8::".parse::<std::net::Ipv6Addr>().unwrap()) + 2 * i)
                        .into(),
                )
            })
            .collect();
        clients.extend(run_v4("192.0.2.0", 256).into_iter().step_by(4).take(3));
        let s = fix_sources(&clients, None);
        assert_eq!(s.choice, SourceChoice::CoveringPrefix);
        assert_eq!(s.blocks, ["192.0.2.0/28", "2001:db8::/121"]);
        assert_eq!(s.exact_blocks, 43);
        assert_eq!(s.added_addresses, (16 - 3) + (128 - 40));
    }

    #[test]
    fn past_the_cap_the_policy_group_holding_every_client_is_named() {
        // Every other address of two /24s: 256 blocks that do not merge.
        let both = || {
            run_v4("198.51.100.0", 256)
                .into_iter()
                .chain(run_v4("203.0.113.0", 256))
        };
        let clients: Vec<IpAddr> = both().step_by(2).collect();
        let listed = |hosts: &mut dyn Iterator<Item = IpAddr>| -> String {
            hosts
                .map(|h| format!("\"{h}\""))
                .collect::<Vec<_>>()
                .join(",")
        };
        // A group listing its hosts one by one (as an inventory export
        // does): each client stands for itself, 256 blocks. The first group
        // holds only two of them; "campus" holds them all.
        let p = policy(&format!(
            r#"{{ "lab": {{ "hosts": ["198.51.100.0", "198.51.100.2"] }},
                  "campus": {{ "hosts": [{}, "2001:db8::/32"] }} }}"#,
            listed(&mut both())
        ));
        let s = fix_sources(&clients, Some(&p));
        assert_eq!(s.choice, SourceChoice::PolicyGroup("campus".into()));
        // The group's IPv4 networks, collapsed (no IPv6: no IPv6 client).
        assert_eq!(s.blocks, ["198.51.100.0/24", "203.0.113.0/24"]);
        assert_eq!((s.clients, s.exact_blocks), (256, 256));
        assert_eq!(s.added_addresses, 512 - 256);

        // No group holds them all (the 203.0.113.0/24 clients are in none):
        // the covering prefix.
        let p = policy(&format!(
            r#"{{ "half": {{ "hosts": [{}] }} }}"#,
            listed(&mut run_v4("198.51.100.0", 256).into_iter())
        ));
        let s = fix_sources(&clients, Some(&p));
        assert_eq!(s.choice, SourceChoice::CoveringPrefix);
        assert_eq!(s.exact_blocks, 256);
        assert_eq!(s.blocks, ["192.0.0.0/4"]);
        assert_eq!(s.added_addresses, (1u128 << 28) - 256);

        // A group holding them all whose own networks are more than one
        // fix takes: the covering prefix too.
        let p = policy(&format!(
            r#"{{ "many": {{ "hosts": [{}] }} }}"#,
            listed(&mut clients.iter().copied())
        ));
        let s = fix_sources(&clients, Some(&p));
        assert_eq!(s.choice, SourceChoice::CoveringPrefix);
        assert_eq!(s.blocks, ["192.0.0.0/4"]);
    }

    #[test]
    fn the_summary_words_say_what_the_sources_stand_for() {
        let s = fix_sources(&ips(&["192.0.2.10", "192.0.2.11", "192.0.2.20"]), None);
        assert_eq!(s.short(), "192.0.2.10/31, 192.0.2.20");
        assert_eq!(s.widening(), None);

        let spread: Vec<IpAddr> = run_v4("198.51.100.0", 20).into_iter().step_by(2).collect();
        let s = fix_sources(&spread, None);
        assert_eq!(s.short(), "10 clients (10 blocks)");

        let sparse: Vec<IpAddr> = run_v4("198.51.100.0", 256).into_iter().step_by(2).collect();
        let s = fix_sources(&sparse, None);
        assert_eq!(s.short(), "198.51.100.0/24");
        let w = s.widening().unwrap();
        assert!(w.contains("the 128 clients seen"), "{w}");
        assert!(w.contains("(128 blocks)"), "{w}");
        assert!(
            w.contains("smallest prefix covering them adds 128 addresses"),
            "{w}"
        );

        let hosts: Vec<String> = run_v4("198.51.100.0", 256)
            .iter()
            .map(|h| format!("\"{h}\""))
            .collect();
        let p = policy(&format!(
            r#"{{ "clients": {{ "hosts": [{}] }} }}"#,
            hosts.join(",")
        ));
        let s = fix_sources(&sparse, Some(&p));
        assert_eq!(s.short(), "policy group clients (198.51.100.0/24)");
        assert!(s
            .widening()
            .unwrap()
            .contains("the policy group holding them all adds 128"));

        // IPv6 counts are rounded.
        let v6: Vec<IpAddr> = (0..40u128)
            .map(|i| IpAddr::V6(((0x2001_0db8u128 << 96) + (i << 64)).into()))
            .collect();
        let w = fix_sources(&v6, None).widening().unwrap();
        assert!(w.contains("adds about 1.2e21 addresses"), "{w}");
    }

    #[test]
    fn added_addresses_saturate_for_the_whole_ipv6_space() {
        // 40 hosts at both ends of the IPv6 space: the covering prefix is ::/0.
        let clients: Vec<IpAddr> = (0..20u128)
            .map(|i| 2 * i)
            .chain((0..20u128).map(|i| u128::MAX - 2 * i))
            .map(|a| IpAddr::V6(a.into()))
            .collect();
        let s = fix_sources(&clients, None);
        assert_eq!(s.blocks, ["::/0"]);
        assert_eq!(s.added_addresses, u128::MAX - 40);
    }
}
