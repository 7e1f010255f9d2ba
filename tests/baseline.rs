//! Baselines, merges, diffs, rules and policies from baselines (issue #6),
//! end to end over the lab captures (real Samba, impacket, libsnap7 peers
//! across a real nftables firewall; truth.json says what was blocked).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{analyze_json, path_str, run, shared_captures, stderr, tmp_path};
use serde_json::Value;

fn lab() -> PathBuf {
    shared_captures().join("lab")
}

fn scenarios() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(lab())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|d| d.join("truth.json").is_file())
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    out.sort();
    assert!(
        out.len() >= 10,
        "expected the 10 lab scenarios, found {out:?}"
    );
    out
}

fn truth(scenario: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(lab().join(scenario).join("truth.json")).unwrap())
        .unwrap()
}

/// truth.json's blocked ports as (responder, proto, port).
fn blocked_ports(scenario: &str) -> BTreeSet<(String, String, u64)> {
    truth(scenario)["blocked_ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["responder"].as_str().unwrap().to_string(),
                b["proto"].as_str().unwrap().to_string(),
                b["port"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// `exflow baseline ARGS... -o FILE`, then the file's text.
fn baseline_file(args: &[&str], name: &str) -> (PathBuf, String) {
    let out = tmp_path(name);
    let mut all = vec!["baseline"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", path_str(&out)]);
    let o = run(&all);
    assert_eq!(o.status.code(), Some(0), "exflow {all:?}: {}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    (out, text)
}

fn tap(scenario: &str, tap: &str) -> String {
    path_str(&lab().join(scenario).join(format!("{tap}.pcap"))).to_string()
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn entry<'a>(b: &'a Value, service: &str, proto: &str) -> &'a Value {
    b["flows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["service"] == service && e["proto"] == proto)
        .unwrap_or_else(|| panic!("no {service}/{proto} entry in {b:#}"))
}

fn ports(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect()
}

#[test]
fn allow_all_baseline_shows_epm_dynamic_ports_per_interface_kerberos_ldap() {
    let (_, text) = baseline_file(&[&tap("allow-all", "client-tap")], "allow-all.json");
    let b = parse(&text);
    assert_eq!(b["schema"], "exflow.baseline/1");
    let epm = entry(&b, "epm", "tcp");
    assert_eq!(epm["port"], 135);
    assert_eq!(epm["client_group"], "192.0.2.0/24");
    assert_eq!(epm["server"], "198.51.100.10");
    assert!(epm["success"].as_u64().unwrap() > 0 && epm["failure"] == 0);
    // Dynamic RPC: one entry per interface, with its ports and range.
    for (service, port) in [
        ("netlogon", 55000),
        ("ad-replication", 55001),
        ("lsarpc", 55001),
        ("samr", 55002),
    ] {
        let e = entry(&b, service, "tcp");
        assert!(
            e["port"].is_null(),
            "{service}: dynamic entries have no port"
        );
        assert_eq!(ports(&e["ports"]), vec![port], "{service}");
        assert_eq!(ports(&e["port_range"]), vec![port, port], "{service}");
        assert_eq!(ports(&e["success_ports"]), vec![port], "{service}");
        assert!(e["success"].as_u64().unwrap() >= 1);
    }
    assert_eq!(entry(&b, "kerberos", "tcp")["port"], 88);
    assert_eq!(entry(&b, "kerberos", "udp")["port"], 88);
    assert_eq!(entry(&b, "ldap", "tcp")["port"], 389);
    // Hand-offs: every one followed (one ad-replication answer was
    // superseded by the client's next question).
    let h = b["handoffs"].as_array().unwrap();
    assert!(!h.is_empty());
    assert!(h
        .iter()
        .all(|h| h["not_followed"] == 0 && h["followed"].as_u64().unwrap() >= 1));
    // Times are RFC 3339 with microseconds.
    assert_eq!(epm["first_seen"].as_str().unwrap().len(), 27);
}

/// For every scenario and tap: connections = the report's flows, and per
/// (server, service, proto, port) the successes of TCP entries equal the
/// established flows of the report, the failures the blocked attempts.
#[test]
fn baseline_counts_match_the_report_in_every_scenario() {
    let established = ["S1", "SF", "S2", "S3", "RSTO", "RSTR"];
    for s in scenarios() {
        for t in ["client-tap", "server-tap"] {
            let capture = tap(&s, t);
            let report = analyze_json(&[&capture], &[0, 1]);
            let (_, text) = baseline_file(&[&capture], &format!("{s}-{t}.json"));
            let b = parse(&text);
            let flows = report["flows"].as_array().unwrap();
            let entries = b["flows"].as_array().unwrap();
            let connections: u64 = entries
                .iter()
                .map(|e| e["connections"].as_u64().unwrap())
                .sum();
            assert_eq!(connections, flows.len() as u64, "{s}/{t}: connections");
            let bytes: u64 = entries.iter().map(|e| e["bytes"].as_u64().unwrap()).sum();
            let report_bytes: u64 = flows
                .iter()
                .map(|f| ports(&f["bytes"]).iter().sum::<u64>())
                .sum();
            assert_eq!(bytes, report_bytes, "{s}/{t}: bytes");
            // Established TCP flows per (server, service, port).
            let mut want: BTreeMap<(String, String, u64), u64> = BTreeMap::new();
            for f in flows.iter().filter(|f| f["proto"] == "tcp") {
                if established.contains(&f["state"].as_str().unwrap()) {
                    *want
                        .entry((
                            f["server"].as_str().unwrap().into(),
                            f["service"].as_str().unwrap().into(),
                            f["server_port"].as_u64().unwrap(),
                        ))
                        .or_default() += 1;
                }
            }
            let mut got: BTreeMap<(String, String, u64), u64> = BTreeMap::new();
            for e in entries.iter().filter(|e| e["proto"] == "tcp") {
                if e["success"].as_u64().unwrap() == 0 {
                    continue;
                }
                let port = match e["port"].as_u64() {
                    Some(p) => p,
                    None => {
                        let p = ports(&e["success_ports"]);
                        assert_eq!(p.len(), 1, "{s}/{t}: one port per interface in the lab");
                        p[0]
                    }
                };
                *got.entry((
                    e["server"].as_str().unwrap().into(),
                    e["service"].as_str().unwrap().into(),
                    port,
                ))
                .or_default() += e["success"].as_u64().unwrap();
            }
            assert_eq!(got, want, "{s}/{t}: successes = established flows");
            // Failures: exactly truth's blocked ports the tap can see
            // (the client tap sees every blocked TCP attempt).
            if t == "client-tap" {
                let failing: BTreeSet<(String, String, u64)> = entries
                    .iter()
                    .filter(|e| e["failure"].as_u64().unwrap() > 0)
                    .flat_map(|e| {
                        let list = match e["port"].as_u64() {
                            Some(p) => vec![p],
                            None => ports(&e["failure_ports"]),
                        };
                        list.into_iter().map(move |p| {
                            (
                                e["server"].as_str().unwrap().to_string(),
                                e["proto"].as_str().unwrap().to_string(),
                                p,
                            )
                        })
                    })
                    .collect();
                let tcp_blocked: BTreeSet<_> = blocked_ports(&s)
                    .into_iter()
                    .filter(|b| b.1 == "tcp")
                    .collect();
                assert_eq!(
                    failing, tcp_blocked,
                    "{s}/{t}: failures = blocked TCP ports"
                );
            }
        }
    }
}

/// Baselines of all 20 lab captures merged in several orders and
/// groupings give the same bytes.
#[test]
fn merge_of_the_lab_baselines_is_order_independent() {
    let mut files = Vec::new();
    for s in scenarios() {
        for t in ["client-tap", "server-tap"] {
            let (p, _) = baseline_file(&[&tap(&s, t)], &format!("m-{s}-{t}.json"));
            files.push(path_str(&p).to_string());
        }
    }
    let merge = |list: &[String], name: &str| -> String {
        let out = tmp_path(name);
        let mut args: Vec<&str> = vec!["baseline", "merge"];
        args.extend(list.iter().map(String::as_str));
        args.extend(["-o", path_str(&out)]);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        std::fs::read_to_string(&out).unwrap()
    };
    let forward = merge(&files, "merged-forward.json");
    let mut rev = files.clone();
    rev.reverse();
    assert_eq!(forward, merge(&rev, "merged-reverse.json"));
    let mut shuffled = files.clone();
    shuffled.sort_by_key(|f| f.len() * 7919 % 13);
    assert_eq!(forward, merge(&shuffled, "merged-shuffled.json"));
    // (first half) + (second half), merged files of merged files.
    let (a, b) = files.split_at(files.len() / 2);
    let ma = tmp_path("merged-a.json");
    let mb = tmp_path("merged-b.json");
    std::fs::write(&ma, merge(a, "merged-a0.json")).unwrap();
    std::fs::write(&mb, merge(b, "merged-b0.json")).unwrap();
    assert_eq!(
        forward,
        merge(
            &[path_str(&mb).to_string(), path_str(&ma).to_string()],
            "merged-ba.json"
        )
    );
    // Merging the capture set at once gives the same as merging per capture.
    let v = parse(&forward);
    let inputs = v["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), files.len());
}

#[test]
fn merge_rejects_bad_json_and_wrong_schema_naming_the_file() {
    let (good, _) = baseline_file(&[&tap("allow-all", "client-tap")], "good.json");
    let bad_json = tmp_path("bad.json");
    std::fs::write(&bad_json, "{\"schema\": \"exflow.baseline/1\", ").unwrap();
    let wrong = tmp_path("wrong-schema.json");
    std::fs::write(&wrong, "{\"schema\": \"exflow.report/1\", \"flows\": []}").unwrap();
    let no_schema = tmp_path("no-schema.json");
    std::fs::write(&no_schema, "{\"flows\": []}").unwrap();
    for (bad, what) in [
        (&bad_json, "invalid JSON"),
        (&wrong, "'exflow.report/1' is not supported"),
        (&no_schema, "not a baseline"),
    ] {
        let o = run(&["baseline", "merge", path_str(&good), path_str(bad)]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(path_str(bad)) && e.contains(what), "{e}");
    }
}

/// allow-all → dyn-drop (client taps, given as captures): the entries whose
/// failures are new are exactly truth.json's blocked ports.
#[test]
fn diff_allow_all_to_dyn_drop_shows_exactly_the_blocked_flows() {
    let o = run(&[
        "diff",
        "--format",
        "json",
        &tap("allow-all", "client-tap"),
        &tap("dyn-drop", "client-tap"),
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "differences: exit 1; {}",
        stderr(&o)
    );
    let d: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["schema"], "exflow.baseline-diff/1");
    let mut newly: BTreeSet<(String, String, u64)> = BTreeSet::new();
    for c in d["failure_rate_changed"].as_array().unwrap() {
        assert_eq!(c["direction"], "worse", "{c}");
        assert_eq!(c["old"]["failure"], 0, "{c}");
        for p in ports(&c["newly_failing_ports"]) {
            newly.insert((
                c["server"].as_str().unwrap().into(),
                c["proto"].as_str().unwrap().into(),
                p,
            ));
        }
    }
    assert_eq!(newly, blocked_ports("dyn-drop"));
    // New failures do not appear as new flows; what the clients never tried
    // (kerberos, ldap, samr) vanished, with its successes.
    assert!(d["new_flows"].as_array().unwrap().is_empty());
    let vanished: BTreeSet<&str> = d["vanished_flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["service"].as_str().unwrap())
        .collect();
    assert!(
        vanished.contains("kerberos") && vanished.contains("ldap"),
        "{vanished:?}"
    );
    // The same baseline on both sides: no differences, exit 0; text format.
    let (b, _) = baseline_file(&[&tap("allow-all", "client-tap")], "same.json");
    let o = run(&["diff", path_str(&b), &tap("allow-all", "client-tap")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("No differences."));
}

#[test]
fn diff_reports_new_dynamic_ports() {
    // static-port's interfaces live on 6135-6138, allow-all's on 55000-55002.
    let o = run(&[
        "diff",
        "--format",
        "json",
        &tap("allow-all", "client-tap"),
        &tap("static-port", "client-tap"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let d: Value = serde_json::from_slice(&o.stdout).unwrap();
    let netlogon = d["new_dynamic_ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["service"] == "netlogon")
        .expect("netlogon moved to a new port");
    assert_eq!(ports(&netlogon["new_ports"]), vec![6136]);
    assert_eq!(ports(&netlogon["old_ports"]), vec![55000]);
}

// ---- generated rules must load -------------------------------------------

fn require_tool(tool: &str) {
    let ok = Command::new(tool)
        .arg(if tool == "ip" { "-V" } else { "--version" })
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`{tool}` is missing: the rule-loading tests need it (scripts/setup installs nftables, iptables and iproute2 with EXFLOW_SETUP_TEST_TOOLS=1)"
    );
}

/// A fresh network namespace, deleted when dropped (even on failure).
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        static N: AtomicUsize = AtomicUsize::new(0);
        require_tool("ip");
        let name = format!(
            "exflow-rules-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let o = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "ip netns add {name}: {} (the rule tests need root)",
            String::from_utf8_lossy(&o.stderr)
        );
        Netns(name)
    }

    fn check(&self, tool: &str, args: &[&str], file: &Path) {
        require_tool(tool);
        let o = Command::new("ip")
            .args(["netns", "exec", &self.0, tool])
            .args(args)
            .arg(file)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{tool} {args:?} {} failed: {}{}\n--- file:\n{}",
            file.display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            std::fs::read_to_string(file).unwrap_or_default()
        );
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .output();
    }
}

fn rules(baseline: &Path, format: &str, dynamic: &str, name: &str) -> (PathBuf, String) {
    let out = tmp_path(name);
    let o = run(&[
        "rules",
        path_str(baseline),
        "--format",
        format,
        "--dynamic",
        dynamic,
        "-o",
        path_str(&out),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    (out, text)
}

#[test]
fn generated_nftables_and_iptables_rules_load() {
    // allow-all, and every lab capture merged (more services, both directions).
    let (aa, _) = baseline_file(&[&tap("allow-all", "client-tap")], "rules-aa.json");
    let all: Vec<String> = scenarios().iter().map(|s| tap(s, "client-tap")).collect();
    let all_refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let (merged, _) = baseline_file(&all_refs, "rules-all.json");
    let ns = Netns::new();
    for (b, tag) in [(&aa, "aa"), (&merged, "all")] {
        for dynamic in ["pin", "observed"] {
            let (nft, text) = rules(b, "nftables", dynamic, &format!("{tag}-{dynamic}.nft"));
            assert!(text.contains("table inet exflow {"), "{text}");
            assert!(
                text.contains(&format!("dynamic RPC ports: {dynamic}")),
                "{text}"
            );
            ns.check("nft", &["-c", "-f"], &nft);
            let (ipt, text) = rules(b, "iptables", dynamic, &format!("{tag}-{dynamic}.ipt"));
            assert!(text.contains("*filter") && text.trim_end().ends_with("COMMIT"));
            ns.check("iptables-restore", &["--test"], &ipt);
            let (ip6, _) = rules(b, "ip6tables", dynamic, &format!("{tag}-{dynamic}.ip6t"));
            ns.check("ip6tables-restore", &["--test"], &ip6);
        }
    }
    // What the allow-all rules say.
    let (_, pin) = rules(&aa, "nftables", "pin", "aa-pin-check.nft");
    assert!(
        pin.contains("tcp dport 135 ct state new accept comment \"exflow: epm\""),
        "{pin}"
    );
    assert!(
        !pin.contains("dport 55000"),
        "pin mode writes no rule for dynamic ports:\n{pin}"
    );
    assert!(pin.contains("PIN: netlogon on 198.51.100.10") && pin.contains("DCTcpipPort"));
    let (_, observed) = rules(&aa, "nftables", "observed", "aa-observed-check.nft");
    assert!(
        observed.contains("tcp dport 55000 ct state new accept"),
        "{observed}"
    );
    assert!(
        observed
            .contains("comment \"exflow: ad-replication, lsarpc (dynamic RPC, observed ports)\""),
        "{observed}"
    );
    // #17: every lab run merged sees DRSUAPI on Samba's pinned 6135
    // (static-port) and on dynamic 55001 (the others): those two ports, never
    // the 48,866 between them nobody used.
    let (_, merged_observed) = rules(&merged, "nftables", "observed", "all-observed-check.nft");
    let drs = merged_observed
        .lines()
        .find(|l| l.contains("\"exflow: ad-replication") && l.contains("dport"))
        .unwrap_or_else(|| panic!("no ad-replication rule:\n{merged_observed}"));
    assert!(drs.contains("tcp dport { 6135, 55001 }"), "{drs}");
    assert!(!merged_observed.contains("6135-"), "{merged_observed}");
    // The other formats render too.
    let (_, asa) = rules(&aa, "cisco-asa", "observed", "aa.asa");
    assert!(asa.contains("network-object 192.0.2.0 255.255.255.0"));
    assert!(asa.contains("port-object eq 135"));
    let (_, netsh) = rules(&aa, "netsh", "pin", "aa.netsh");
    assert!(
        netsh.contains("protocol=TCP localip=198.51.100.10 localport=135 remoteip=192.0.2.0/24")
    );
}

#[test]
fn port_ranges_merge_adjacent_ports() {
    let set: BTreeSet<u16> = [135, 6001, 6002, 6003, 6005, 65535, 1].into();
    assert_eq!(
        exflow::baseline::rules::port_ranges(&set),
        vec![
            (1, 1),
            (135, 135),
            (6001, 6003),
            (6005, 6005),
            (65535, 65535)
        ]
    );
}

// ---- policy from a baseline ------------------------------------------------

/// A policy made from allow-all's baseline, applied to the firewalled
/// dyn-drop client tap: `blocked` findings with policy "allowed" for exactly
/// truth.json's blocked ports (the firewall is misconfigured against
/// yesterday's traffic).
#[test]
fn policy_from_allow_all_baseline_flags_the_dyn_drop_blocks_as_allowed() {
    let (aa, _) = baseline_file(&[&tap("allow-all", "client-tap")], "policy-aa.json");
    let policy = tmp_path("from-baseline-policy.json");
    let o = run(&[
        "policy",
        "from-baseline",
        path_str(&aa),
        "-o",
        path_str(&policy),
        "--force",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(&policy).unwrap();
    // Round trip through the parser analyze uses.
    let p = exflow::policy::Policy::parse(&text, "from-baseline").expect("a valid policy");
    assert!(p.groups.iter().any(|g| g.name == "clients-192.0.2.0-24"));
    assert!(p
        .pins
        .iter()
        .any(|pin| pin.service == "netlogon" && pin.port == 55000));
    let o = run(&["policy", "check", path_str(&policy)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // allow-all itself is entirely allowed: no blocked, no not-in-policy.
    let r = analyze_json(
        &[
            "--policy",
            path_str(&policy),
            &tap("allow-all", "client-tap"),
        ],
        &[0],
    );
    assert!(
        r["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["verdict"] == "working"),
        "{:#}",
        r["verdicts"]
    );

    let r = analyze_json(
        &[
            "--policy",
            path_str(&policy),
            &tap("dyn-drop", "client-tap"),
        ],
        &[1],
    );
    let blocked: BTreeSet<(String, String, u64)> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "blocked")
        .map(|f| {
            assert_eq!(f["policy"], "allowed", "{f:#}");
            (
                f["server"].as_str().unwrap().to_string(),
                f["proto"].as_str().unwrap().to_string(),
                f["port"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(blocked, blocked_ports("dyn-drop"));
}

#[test]
fn baseline_with_a_policy_names_client_groups() {
    let policy = tmp_path("groups-policy.json");
    std::fs::write(
        &policy,
        r#"{"schema": "exflow.policy/1",
            "groups": {"lab-clients": {"role": "clients", "hosts": ["192.0.2.0/24"]},
                       "dc": {"role": "dc", "hosts": ["198.51.100.10"]}},
            "allow": [{"from": "lab-clients", "to": "dc", "service": "epm"}]}"#,
    )
    .unwrap();
    let (_, text) = baseline_file(
        &[
            "--policy",
            path_str(&policy),
            &tap("allow-all", "client-tap"),
        ],
        "named.json",
    );
    let b = parse(&text);
    assert_eq!(entry(&b, "epm", "tcp")["client_group"], "lab-clients");
    assert_eq!(b["groups"]["lab-clients"][0], "192.0.2.0/24");
    // Rules use the group's networks.
    let (rules_file, _) = rules(&tmp_path("named.json"), "nftables", "pin", "named.nft");
    let text = std::fs::read_to_string(rules_file).unwrap();
    assert!(text.contains("ip saddr 192.0.2.0/24 ip daddr 198.51.100.10 tcp dport 135"));
}

/// The same input gives the same bytes whatever --threads is.
#[test]
fn baseline_is_deterministic_across_threads() {
    let c = tap("allow-all", "server-tap");
    let (_, one) = baseline_file(&["--threads", "1", &c], "t1.json");
    let (_, four) = baseline_file(&["--threads", "4", &c], "t4.json");
    assert_eq!(one, four);
}

// ---- #17: rules and policies an admin can follow blindly -------------------

/// `rules` and `policy from-baseline` are written from a baseline: given a
/// capture, they say to run `exflow baseline` first.
#[test]
fn rules_and_policy_from_baseline_given_a_capture_say_to_run_baseline_first() {
    let cap = tap("allow-all", "client-tap");
    for args in [
        vec!["rules", cap.as_str()],
        vec!["policy", "from-baseline", cap.as_str()],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let e = stderr(&o);
        assert!(e.contains("is a capture, not a baseline"), "{e}");
        assert!(
            e.contains(&format!("exflow baseline {cap} -o baseline.json")),
            "{e}"
        );
    }
}

/// The `PIN:` lines of `rules` and the `pins` of `policy from-baseline`
/// come from one plan: every pinned interface is a PIN line naming the same
/// port and registry value, and every PIN line with one port and a value is
/// pinned (lsarpc and samr included: KB224196's NTDS value serves them).
#[test]
fn rules_and_policy_from_baseline_agree_on_the_pins() {
    let (aa, _) = baseline_file(&[&tap("allow-all", "client-tap")], "agree-aa.json");
    let (_, nft) = rules(&aa, "nftables", "pin", "agree-aa.nft");
    let out = tmp_path("agree-policy.json");
    let o = run(&[
        "policy",
        "from-baseline",
        path_str(&aa),
        "-o",
        path_str(&out),
        "--force",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let policy = parse(&std::fs::read_to_string(&out).unwrap());
    let pins = policy["pins"].as_array().unwrap();
    let pin_lines: Vec<&str> = nft
        .lines()
        .filter_map(|l| l.strip_prefix("# PIN: "))
        .collect();
    assert!(!pin_lines.is_empty(), "{nft}");
    let mut pinned = BTreeSet::new();
    for p in pins {
        let (service, server, port) = (
            p["service"].as_str().unwrap(),
            p["server"].as_str().unwrap(),
            p["port"].as_u64().unwrap(),
        );
        let line = pin_lines
            .iter()
            .find(|l| l.starts_with(&format!("{service} on {server}:")))
            .unwrap_or_else(|| panic!("{service} is pinned but rules has no PIN line:\n{nft}"));
        assert!(
            line.contains(&format!("observed {port};")),
            "{line} vs port {port}"
        );
        // The same registry value in both.
        let comment = p["comment"].as_str().unwrap();
        let value = |t: &str| {
            let i = t.find(", value \"").expect("a value");
            t[..i].rsplit(' ').next().unwrap().to_string() + &t[i..i + 30]
        };
        assert_eq!(value(line), value(comment), "{service}");
        pinned.insert(service.to_string());
    }
    for line in &pin_lines {
        let service = line.split(' ').next().unwrap();
        let one_port = line.contains("observed ") && !line.split(';').next().unwrap().contains(',');
        let has_value = line.contains("pin it:");
        assert_eq!(pinned.contains(service), one_port && has_value, "{line}");
    }
    // KB224196: clients' LSARPC and SamRPC are AD's, on its port.
    for s in ["lsarpc", "samr", "ad-replication", "netlogon"] {
        assert!(pinned.contains(s), "{s} not pinned: {pins:?}");
    }
    assert!(!nft.contains("no registry value pins this interface alone"));
    // Key and value never joined into one path.
    assert!(!nft.contains(r"Parameters\TCP/IP"), "{nft}");
    assert!(!nft.contains(r"Parameters\DCTcpipPort"), "{nft}");
}

/// A baseline written by hand (the documented format): `entries` are its
/// flows.
fn handmade_baseline(name: &str, entries: Value) -> PathBuf {
    let path = tmp_path(name);
    let b = serde_json::json!({
        "schema": "exflow.baseline/1",
        "inputs": ["handmade"],
        "groups": {},
        "flows": entries,
        "handoffs": []
    });
    std::fs::write(&path, serde_json::to_string_pretty(&b).unwrap()).unwrap();
    path
}

fn flow(group: &str, server: &str, service: &str, proto: &str, port: u16) -> Value {
    serde_json::json!({
        "client_group": group, "server": server, "service": service, "proto": proto,
        "port": port, "clients": [group.trim_end_matches(".0/24").to_string() + ".10"],
        "connections": 2, "bytes": 100, "success": 2, "failure": 0,
        "first_seen": "2026-11-22T00:00:00.000000Z", "last_seen": "2026-11-22T00:00:01.000000Z"
    })
}

/// The endpoint mapper is TCP 135 in the articles: `epm` opens TCP 135,
/// and UDP 135 appears only where UDP 135 worked.
#[test]
fn udp_135_is_opened_only_where_it_was_seen() {
    let tcp_only = handmade_baseline(
        "epm-tcp.json",
        serde_json::json!([flow("192.0.2.0/24", "198.51.100.10", "epm", "tcp", 135)]),
    );
    let both = handmade_baseline(
        "epm-both.json",
        serde_json::json!([
            flow("192.0.2.0/24", "198.51.100.10", "epm", "tcp", 135),
            flow("192.0.2.0/24", "198.51.100.10", "epm", "udp", 135)
        ]),
    );
    for (b, udp) in [(&tcp_only, false), (&both, true)] {
        let out = tmp_path("epm-policy.json");
        let o = run(&[
            "policy",
            "from-baseline",
            path_str(b),
            "-o",
            path_str(&out),
            "--force",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let check = run(&["policy", "check", path_str(&out)]);
        let text = String::from_utf8_lossy(&check.stdout).into_owned();
        assert!(text.contains("epm (tcp 135)"), "{text}");
        assert_eq!(text.contains("udp 135"), udp, "{text}");
        assert!(!text.contains("tcp/udp 135"), "{text}");
        let (_, nft) = rules(b, "nftables", "pin", "epm.nft");
        assert_eq!(nft.contains("udp dport 135"), udp, "{nft}");
        assert!(nft.contains("tcp dport 135"), "{nft}");
    }
}

/// New-mail notifications (Q264035): the rule is UDP from the Exchange
/// server's ports above 1024 to the clients' ports above 1024, not the port
/// one client used once; it loads in nftables and iptables.
#[test]
fn notification_rules_open_the_q264035_range_not_the_port_seen() {
    let b = handmade_baseline(
        "notify.json",
        serde_json::json!([flow(
            "198.51.100.0/24",
            "192.0.2.10",
            "mapi-notification",
            "udp",
            40500
        )]),
    );
    let (nft_path, nft) = rules(&b, "nftables", "pin", "notify.nft");
    let rule = nft
        .lines()
        .find(|l| l.contains("exflow: mapi-notification"))
        .unwrap_or_else(|| panic!("{nft}"));
    assert!(
        rule.contains("udp sport 1025-65535 udp dport 1025-65535"),
        "{rule}"
    );
    assert!(!nft.contains("40500"), "{nft}");
    let (ipt_path, ipt) = rules(&b, "iptables", "pin", "notify.ipt");
    assert!(
        ipt.contains("--sport 1025:65535 --dport 1025:65535"),
        "{ipt}"
    );
    let (_, netsh) = rules(&b, "netsh", "pin", "notify.netsh");
    assert!(
        netsh.contains("localport=1025-65535 remoteip=198.51.100.0/24 remoteport=1025-65535"),
        "{netsh}"
    );
    let (_, asa) = rules(&b, "cisco-asa", "pin", "notify.asa");
    assert!(
        asa.contains("object-group EXFLOW-SRC-1 range 1025 65535"),
        "{asa}"
    );
    let ns = Netns::new();
    ns.check("nft", &["-c", "-f"], &nft_path);
    ns.check("iptables-restore", &["--test"], &ipt_path);
    // The policy: the sender's group is Exchange's, the receiver a client.
    let out = tmp_path("notify-policy.json");
    let o = run(&[
        "policy",
        "from-baseline",
        path_str(&b),
        "-o",
        path_str(&out),
        "--force",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let p = parse(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(p["groups"]["clients-198.51.100.0-24"]["role"], "exchange");
    assert!(
        p["groups"]["server-192.0.2.10"].get("role").is_none(),
        "{p:#}"
    );
}
