//! Reports that stay usable at scale (issue #16, points 3 and 8): a blocked
//! service with thousands of clients gets a fix of a few dozen CIDR blocks
//! at most (and one that nft and iptables load), and the text report's
//! headline groups hundreds of blocked ports into a few dozen lines, every
//! line of every report within 120 columns.
//!
//! Only documentation addresses: 192.0.2.0/24, 198.51.100.0/24,
//! 203.0.113.0/24, 2001:db8::/32.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use common::*;
use exflow::report::{HEADLINE_MAX_LINES, TEXT_WIDTH};
use exflow::verdict::MAX_FIX_SOURCES;
use exflow_testkit::TcpConversation;
use serde_json::{json, Value};

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;
const T0: u64 = 1_795_305_697_000_000_000;

/// Frames at absolute times, written sorted.
#[derive(Default)]
struct Cap {
    frames: Vec<(u64, Vec<u8>)>,
    next_port: u16,
}

impl Cap {
    /// A client's SYN to `server`:`port` at `t` (ns after T0), sent again
    /// 1 s later, never answered: a real client's failure, not a probe.
    fn failed_connect(&mut self, t: u64, client: IpAddr, server: IpAddr, port: u16) {
        let cport = 40000 + self.next_port % 20000;
        self.next_port = self.next_port.wrapping_add(1);
        let syn = TcpConversation::new(client, cport, server, port).syn();
        self.frames.push((T0 + t, syn.clone()));
        self.frames.push((T0 + t + SEC, syn));
    }

    /// A working connection at `t`, so that the capture goes on well past
    /// the last retransmission.
    fn handshake(&mut self, t: u64, client: IpAddr, server: IpAddr, port: u16) {
        let mut c = TcpConversation::new(client, 39999, server, port);
        for (i, f) in [c.syn(), c.syn_ack(), c.ack()].into_iter().enumerate() {
            self.frames.push((T0 + t + i as u64 * MS, f));
        }
    }

    fn write(&mut self, name: &str) -> String {
        write_pcap(name, &self.frames)
    }
}

fn v4(a: &str, i: u32) -> IpAddr {
    let base: Ipv4Addr = a.parse().unwrap();
    IpAddr::V4((u32::from(base) + i).into())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn finding<'a>(r: &'a Value, server: &str, port: u64) -> &'a Value {
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "blocked" && f["server"] == server && f["port"] == port)
        .unwrap_or_else(|| {
            panic!(
                "no blocked finding for {server} port {port}: {:#}",
                r["findings"]
            )
        })
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

/// The text report of `args` (exit code 0, 1 or 3) and its lines.
fn text_report(args: &[&str]) -> String {
    let mut all = vec!["analyze"];
    all.extend_from_slice(args);
    let out = run(&all);
    let code = out.status.code().unwrap_or(-1);
    assert!(
        [0, 1, 3].contains(&code),
        "exflow {all:?} exited {code}: {}",
        stderr(&out)
    );
    String::from_utf8(out.stdout).expect("the text report is UTF-8")
}

fn assert_within_width(text: &str, what: &str) {
    assert!(!text.is_empty(), "{what}: empty report");
    for (i, l) in text.lines().enumerate() {
        assert!(
            l.chars().count() <= TEXT_WIDTH,
            "{what}: line {} is {} columns wide (at most {TEXT_WIDTH}):\n{l}",
            i + 1,
            l.chars().count()
        );
    }
}

/// The headline block: from "BLOCKED:" to the first blank line.
fn headline(text: &str) -> Vec<&str> {
    text.lines()
        .skip_while(|l| !l.starts_with("BLOCKED:"))
        .take_while(|l| !l.is_empty())
        .collect()
}

// ---------------------------------------------------------------------------
// Firewall rule checks (as tests/verdicts.rs loads them)
// ---------------------------------------------------------------------------

fn tool(name: &str) -> PathBuf {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: the generated rules cannot be checked (install nftables and iptables)")
        })
}

fn check_nft(rules: &[&str], name: &str) {
    let mut text = String::from(
        "table inet filter {\n  chain forward { type filter hook forward priority 0; }\n}\n",
    );
    for r in rules {
        text.push_str(r.strip_prefix("nft ").expect("an nft command"));
        text.push('\n');
    }
    let p = tmp_path(name);
    std::fs::write(&p, &text).unwrap();
    let o = std::process::Command::new(tool("nft"))
        .args(["-c", "-f", path_str(&p)])
        .output()
        .expect("running nft");
    assert!(
        o.status.success(),
        "nft -c rejected the generated rules:\n{text}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// iptables commands as an iptables-restore file (the comment is the only
/// quoted word), loaded with --test.
fn check_iptables(rules: &[&str], name: &str) {
    for (cmd, restore) in [
        ("iptables", "iptables-restore"),
        ("ip6tables", "ip6tables-restore"),
    ] {
        let mine: Vec<&&str> = rules
            .iter()
            .filter(|r| r.starts_with(&format!("{cmd} -I FORWARD ")))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let mut text = String::from("*filter\n:FORWARD ACCEPT [0:0]\n");
        for r in mine {
            text.push_str("-A FORWARD ");
            text.push_str(&r[format!("{cmd} -I FORWARD ").len()..]);
            text.push('\n');
        }
        text.push_str("COMMIT\n");
        let p = tmp_path(&format!("{name}.{cmd}"));
        std::fs::write(&p, &text).unwrap();
        let o = std::process::Command::new(tool(restore))
            .args(["--test", path_str(&p)])
            .output()
            .expect("running iptables-restore");
        assert!(
            o.status.success(),
            "{restore} --test rejected the generated rules:\n{text}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

// ---------------------------------------------------------------------------
// Point 3: fixes that scale
// ---------------------------------------------------------------------------

const V4_SERVER: &str = "192.0.2.10";
const V6_SERVER: &str = "2001:db8::10";

/// - tcp/445 on 192.0.2.10 from every other address of 198.51.100.0/24 and
///   203.0.113.0/24 (256 clients, no two adjacent: 256 exact blocks);
/// - tcp/445 on 2001:db8::10 from 5,000 clients 2001:db8:0:N::1 (5,000
///   exact blocks);
/// - tcp/389 on 192.0.2.10 from all of 198.51.100.0/25 and 203.0.113.0/25
///   (256 clients, exactly 2 blocks).
///
/// Each client retransmits its SYN once; none is answered.
fn many_clients_capture() -> String {
    let mut cap = Cap::default();
    let (s4, s6) = (ip(V4_SERVER), ip(V6_SERVER));
    let mut t = 0;
    for i in 0..128 {
        for net in ["198.51.100.0", "203.0.113.0"] {
            cap.failed_connect(t, v4(net, 2 * i), s4, 445);
            cap.failed_connect(t + 50_000, v4(net, i), s4, 389);
            t += 100_000;
        }
    }
    let base = u128::from("2001:db8::1".parse::<Ipv6Addr>().unwrap());
    for n in 1..=5000u128 {
        cap.failed_connect(t, IpAddr::V6((base + (n << 64)).into()), s6, 445);
        t += 100_000;
    }
    cap.handshake(t + 10 * SEC, ip("192.0.2.20"), s4, 135);
    cap.write("many-clients.pcap")
}

/// Every fix of the report: one nft line of bounded length, at most
/// MAX_FIX_SOURCES iptables lines, and both load.
fn check_fixes(r: &Value, name: &str) {
    let mut nft = Vec::new();
    let mut ipt = Vec::new();
    for f in r["findings"].as_array().unwrap() {
        let fix = &f["fix"];
        let rules = strs(&fix["nftables"]);
        assert_eq!(rules.len(), 1, "{fix:#}");
        // The longest IPv6 CIDR is 43 characters; 32 of them plus the rule.
        assert!(
            rules[0].len() <= 2048 && !rules[0].contains('\n'),
            "{}",
            rules[0]
        );
        let lines = strs(&fix["iptables"]);
        assert!(
            (1..=MAX_FIX_SOURCES).contains(&lines.len()),
            "{} iptables lines",
            lines.len()
        );
        assert_eq!(
            lines.len(),
            fix["sources"]["blocks"].as_array().unwrap().len()
        );
        nft.extend(rules);
        ipt.extend(lines);
    }
    check_nft(&nft, &format!("{name}.nft"));
    check_iptables(&ipt, name);
}

#[test]
fn thousands_of_clients_get_a_fix_of_a_few_cidr_blocks() {
    let p = many_clients_capture();
    let r = analyze_json(&[&p], &[1]);
    assert_eq!(
        r["findings"].as_array().unwrap().len(),
        3,
        "{:#}",
        r["findings"]
    );

    // 256 scattered clients: more blocks than one fix lists, no policy:
    // the smallest covering prefix, saying what it adds.
    let f = finding(&r, V4_SERVER, 445);
    assert_eq!(f["clients"].as_array().unwrap().len(), 256);
    let fix = &f["fix"];
    assert_eq!(
        fix["sources"],
        json!({
            "blocks": ["192.0.0.0/4"],
            "by": "covering-prefix",
            "group": null,
            "clients": 256,
            "exact_blocks": 256,
            "added_addresses": (1u64 << 28) - 256,
        })
    );
    assert!(
        strs(&fix["nftables"])[0]
            .contains("ip saddr 192.0.0.0/4 ip daddr 192.0.2.10 tcp dport 445 "),
        "{fix:#}"
    );
    assert_eq!(
        strs(&fix["iptables"]),
        ["iptables -I FORWARD -p tcp -s 192.0.0.0/4 -d 192.0.2.10 --dport 445 -m conntrack --ctstate NEW -m comment --comment \"exflow: smb\" -j ACCEPT"]
    );
    let summary = fix["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("allow tcp 192.0.0.0/4 → 192.0.2.10 port 445 (smb)"),
        "{summary}"
    );
    assert!(summary.contains("the 256 clients seen"), "{summary}");
    assert!(
        summary.contains(&format!("adds {} addresses", (1u64 << 28) - 256)),
        "{summary}"
    );

    // 5,000 IPv6 clients: one prefix, 2001:db8:0:1::1 .. 2001:db8:0:1388::1.
    let f = finding(&r, V6_SERVER, 445);
    assert_eq!(f["clients"].as_array().unwrap().len(), 5000);
    let s = &f["fix"]["sources"];
    assert_eq!(s["blocks"], json!(["2001:db8::/51"]));
    assert_eq!(
        (s["clients"].as_u64(), s["exact_blocks"].as_u64()),
        (Some(5000), Some(5000))
    );
    assert!(
        strs(&f["fix"]["nftables"])[0].contains("ip6 saddr 2001:db8::/51 ip6 daddr 2001:db8::10 ")
    );

    // Two whole /25s: exactly two blocks, nothing added.
    let f = finding(&r, V4_SERVER, 389);
    assert_eq!(f["clients"].as_array().unwrap().len(), 256);
    let fix = &f["fix"];
    assert_eq!(fix["sources"]["by"], "exact");
    assert_eq!(fix["sources"]["added_addresses"], 0);
    assert!(
        strs(&fix["nftables"])[0]
            .contains("ip saddr { 198.51.100.0/25, 203.0.113.0/25 } ip daddr 192.0.2.10"),
        "{fix:#}"
    );
    let ipt = strs(&fix["iptables"]);
    assert_eq!(ipt.len(), 2);
    assert!(ipt[0].contains(" -s 198.51.100.0/25 ") && ipt[1].contains(" -s 203.0.113.0/25 "));

    check_fixes(&r, "many-clients");

    // The text report of it stays within the width, fixes included.
    let text = text_report(&[&p]);
    assert_within_width(&text, "many clients");
    // Both servers' smb in one group.
    assert!(
        text.contains("tcp/445 smb: 2 servers, 5256 clients, 5256 attempts;"),
        "{}",
        headline(&text).join("\n")
    );
}

#[test]
fn past_the_cap_the_policy_group_holding_every_client_is_the_source() {
    let p = many_clients_capture();
    // "campus" lists both /24s host by host (as an inventory export does):
    // each client is its own network, 256 blocks for tcp/445, but the group
    // itself collapses to two /24s.
    let hosts: Vec<String> = (0..256)
        .flat_map(|i| [v4("198.51.100.0", i), v4("203.0.113.0", i)])
        .map(|h| h.to_string())
        .collect();
    let pol = json!({
        "schema": "exflow.policy/1",
        "groups": {
            "servers": { "hosts": [V4_SERVER, V6_SERVER] },
            "campus": { "role": "clients", "hosts": hosts }
        }
    });
    let pol_path = tmp_path("campus-policy.json");
    std::fs::write(&pol_path, pol.to_string()).unwrap();
    let r = analyze_json(&["--policy", path_str(&pol_path), &p], &[1]);

    let s = &finding(&r, V4_SERVER, 445)["fix"]["sources"];
    assert_eq!(s["by"], "policy-group");
    assert_eq!(s["group"], "campus");
    assert_eq!(s["blocks"], json!(["198.51.100.0/24", "203.0.113.0/24"]));
    assert_eq!(s["added_addresses"], 256);
    let summary = finding(&r, V4_SERVER, 445)["fix"]["summary"]
        .as_str()
        .unwrap();
    assert!(
        summary.starts_with(
            "allow tcp policy group campus (198.51.100.0/24, 203.0.113.0/24) → 192.0.2.10 port 445"
        ),
        "{summary}"
    );
    // No IPv6 network in the group: the IPv6 clients get their prefix.
    let s = &finding(&r, V6_SERVER, 445)["fix"]["sources"];
    assert_eq!(s["by"], "covering-prefix");
    assert_eq!(s["blocks"], json!(["2001:db8::/51"]));
    // The /25s stay exact: the clients' own (host) networks, collapsed.
    let s = &finding(&r, V4_SERVER, 389)["fix"]["sources"];
    assert_eq!(s["by"], "exact");
    assert_eq!(s["blocks"], json!(["198.51.100.0/25", "203.0.113.0/25"]));

    check_fixes(&r, "many-clients-policy");
}

// ---------------------------------------------------------------------------
// Point 8: the text headline at scale
// ---------------------------------------------------------------------------

/// - tcp/445 blocked on 200 servers 198.51.100.1-200, each from 3 of the
///   same 30 clients;
/// - ports 1-300 blocked on 100 servers 203.0.113.100-199 (port p on
///   .100 + p % 100), from 50 clients (port p from 192.0.2.150 + p % 50:
///   six ports each, every SYN retransmitted: no scan);
/// - tcp/389 blocked on 203.0.113.5 from 10 clients.
fn many_ports_capture() -> String {
    let mut cap = Cap::default();
    let mut t = 0;
    for s in 0..200 {
        for k in 0..3 {
            let client = v4("192.0.2.100", (s + k) % 30);
            cap.failed_connect(t, client, v4("198.51.100.1", s), 445);
            t += MS;
        }
    }
    for port in 1..=300u16 {
        let (client, server) = (
            v4("192.0.2.150", u32::from(port % 50)),
            v4("203.0.113.100", u32::from(port % 100)),
        );
        cap.failed_connect(t, client, server, port);
        t += MS;
    }
    for k in 0..10 {
        cap.failed_connect(t, v4("192.0.2.10", k), ip("203.0.113.5"), 389);
        t += MS;
    }
    cap.handshake(t + 10 * SEC, ip("192.0.2.20"), ip("203.0.113.5"), 135);
    cap.write("many-ports.pcap")
}

#[test]
fn hundreds_of_blocked_ports_make_a_headline_of_a_few_dozen_lines() {
    let p = many_ports_capture();
    let r = analyze_json(&[&p], &[1]);
    let text = text_report(&[&p]);
    assert_within_width(&text, "many ports");
    let head = headline(&text);
    assert!(
        head.len() <= HEADLINE_MAX_LINES && HEADLINE_MAX_LINES <= 40,
        "{} lines:\n{}",
        head.len(),
        head.join("\n")
    );

    // What the headline must count, from the JSON's findings.
    let blocked: Vec<&Value> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "blocked")
        .collect();
    assert!(blocked.len() >= 500, "{} blocked findings", blocked.len());
    let mut groups: BTreeMap<(String, String, u64), usize> = BTreeMap::new();
    for f in &blocked {
        let key = (
            f["service"].as_str().unwrap().to_string(),
            f["proto"].as_str().unwrap().to_string(),
            f["port"].as_u64().unwrap(),
        );
        *groups.entry(key).or_default() += 1;
    }
    let servers: BTreeSet<&str> = blocked
        .iter()
        .map(|f| f["server"].as_str().unwrap())
        .collect();
    let clients: BTreeSet<&str> = blocked
        .iter()
        .flat_map(|f| f["clients"].as_array().unwrap())
        .map(|c| c.as_str().unwrap())
        .collect();
    let attempts: usize = blocked
        .iter()
        .map(|f| f["evidence"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        head[0],
        format!(
            "BLOCKED: {} ports the network (a firewall) stops ({} service ports on {} servers; {} clients, {} attempts)",
            blocked.len(),
            groups.len(),
            servers.len(),
            clients.len(),
            attempts
        )
    );
    // The most clients first: smb across its 200 servers, then ldap.
    assert!(
        head[1]
            .starts_with("  tcp/445 smb: 200 servers, 30 clients, 600 attempts; high confidence"),
        "{}",
        head.join("\n")
    );
    assert_eq!(
        head[2],
        "    198.51.100.1 +199 more from 192.0.2.100 +29 more: SYN unanswered (2 SYNs, gaps 1.0 s) ×600"
    );
    assert_eq!(
        head.iter()
            .position(|l| l.starts_with("  tcp/389 ldap: 1 server, 10 clients, 10 attempts;")),
        Some(4),
        "{}",
        head.join("\n")
    );
    // One row per group shown; the rest counted, and where they are said.
    let rows = head.iter().filter(|l| l.starts_with("  tcp/")).count();
    let rest = groups.len() - rows;
    assert!(rest > 0 && rows >= 10, "{rows} rows of {}", groups.len());
    let rest_ports: usize = blocked.len() - 200 - 1 - (rows - 2);
    assert_eq!(
        *head.last().unwrap(),
        format!(
            "  ... and {rest} more groups ({rest_ports} blocked ports): see the findings below, or --format json"
        )
    );
    // The JSON still has one finding per (kind, server, proto, port).
    let keys: BTreeSet<(&str, &str, &str, u64)> = blocked
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap(),
                f["server"].as_str().unwrap(),
                f["proto"].as_str().unwrap(),
                f["port"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(keys.len(), blocked.len());
    assert_eq!(
        blocked.iter().filter(|f| f["port"] == 445).count(),
        200,
        "one smb finding per server"
    );
}

#[test]
fn every_text_report_of_the_shared_captures_fits_120_columns() {
    let root = shared_captures();
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(
        files.len() >= 40,
        "only {} captures under {}",
        files.len(),
        root.display()
    );
    let mut reports = 0;
    for f in &files {
        let text = text_report(&[path_str(f)]);
        assert_within_width(&text, path_str(f));
        reports += 1;
        // Both taps of a lab scenario: the two-tap sections too.
        if f.file_name().is_some_and(|n| n == "client-tap.pcap") {
            let server = f.with_file_name("server-tap.pcap");
            if server.exists() {
                let text = text_report(&["--inside", path_str(f), "--outside", path_str(&server)]);
                assert_within_width(&text, &format!("{} (both taps)", f.display()));
                reports += 1;
            }
        }
    }
    assert!(reports > files.len(), "no two-tap report was checked");
}
