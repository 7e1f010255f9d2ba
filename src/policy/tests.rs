use std::net::IpAddr;

use serde_json::{json, Value};

use super::services::{self, ServiceKind};
use super::*;
use crate::packet::{PROTO_TCP, PROTO_UDP};

const EXAMPLE: &str = r#"{
  "schema": "exflow.policy/1",
  "groups": {
    "exchange": { "role": "exchange", "hosts": ["198.51.100.10"] },
    "dcs":      { "role": "dc",       "hosts": ["198.51.100.20", "198.51.100.21"] },
    "clients":  { "role": "clients",  "hosts": ["192.0.2.0/24", "2001:db8::/64"] }
  },
  "profiles": ["exchange55-mapi-clients"],
  "allow": [
    { "from": "clients", "to": "exchange", "service": "epm" },
    { "from": "clients", "to": "exchange", "proto": "tcp", "ports": [6001, "6002-6004"], "comment": "pinned store and directory" }
  ],
  "deny": [
    { "from": "exchange", "to": "clients", "service": "mapi-notification", "comment": "no UDP to clients" }
  ],
  "pins": [
    { "server": "exchange", "service": "exchange-store", "port": 6001 },
    { "server": "198.51.100.10", "service": "exchange-directory", "port": 6002 }
  ],
  "rpc_dynamic_ports": "1024-65535"
}"#;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn example() -> Value {
    serde_json::from_str(EXAMPLE).unwrap()
}

fn parse_value(v: &Value) -> Result<Policy, PolicyError> {
    Policy::parse(&serde_json::to_string_pretty(v).unwrap(), "policy.json")
}

/// Parses the example after `edit`, expecting an error at `field` whose
/// message contains `needle`.
fn rejects(edit: impl FnOnce(&mut Value), field: &str, needle: &str) -> PolicyError {
    let mut v = example();
    edit(&mut v);
    let e = parse_value(&v).expect_err("should be rejected");
    assert_eq!(e.field, field, "{e}");
    assert!(e.message.contains(needle), "{e}");
    assert_eq!(e.file, "policy.json");
    e
}

/// A minimal policy with the three usual groups plus `extra` top-level
/// fields.
fn minimal(extra: Value) -> Value {
    let mut v = json!({
        "schema": "exflow.policy/1",
        "groups": {
            "exchange": { "role": "exchange", "hosts": ["198.51.100.10"] },
            "dcs": { "role": "dc", "hosts": ["198.51.100.20"] },
            "clients": { "role": "clients", "hosts": ["192.0.2.0/24"] },
            "frontend": { "role": "frontend", "hosts": ["203.0.113.10"] },
            "remote": { "role": "remote-mta", "hosts": ["203.0.113.20"] }
        }
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

#[test]
fn the_example_parses() {
    let p = Policy::parse(EXAMPLE, "policy.json").unwrap();
    let names: Vec<&str> = p.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["exchange", "dcs", "clients"], "file order kept");
    assert_eq!(p.group("dcs").unwrap().role, Some(Role::Dc));
    assert_eq!(p.group("clients").unwrap().members.len(), 2);
    assert_eq!(p.profiles, ["exchange55-mapi-clients"]);
    assert_eq!(p.allow[0].origin, "allow[0]");
    assert_eq!(p.allow[0].traffic, Traffic::Service("epm".into()));
    assert_eq!(
        p.allow[1].traffic,
        Traffic::Ports {
            proto: Some(PROTO_TCP),
            ports: PortSet(vec![(6001, 6004)])
        }
    );
    assert_eq!(
        p.allow[1].comment.as_deref(),
        Some("pinned store and directory")
    );
    // 2 explicit + 4 from the profile.
    assert_eq!(p.allow.len(), 6);
    assert!(p.allow[2..]
        .iter()
        .all(|r| r.origin == "profile exchange55-mapi-clients"));
    assert_eq!(p.deny.len(), 1);
    assert_eq!(p.pins.len(), 2);
    assert_eq!(p.pins[1].server, "198.51.100.10");
    assert_eq!(p.pins[1].proto, PROTO_TCP);
    assert_eq!(p.rpc_dynamic, PortSet(vec![(1024, 65535)]));
    let roles = p.roles();
    assert!(roles.is_exchange(&ip("198.51.100.10")));
    assert!(roles.is_dc(&ip("198.51.100.21")));
    assert!(roles.is_client(&ip("2001:db8::5")));
    assert_eq!(p.group_of(&ip("192.0.2.9")).unwrap().name, "clients");
    assert!(p.profile_warnings().is_empty());
}

#[test]
fn error_display_names_file_and_field() {
    let e = rejects(
        |v| v["allow"][1]["to"] = json!("exchnage"),
        "allow[1].to",
        "unknown group 'exchnage'",
    );
    assert_eq!(
        e.to_string(),
        "policy.json: allow[1].to: unknown group 'exchnage' (groups: clients, dcs, exchange)"
    );
}

#[test]
fn invalid_json_and_schema() {
    for text in ["", "   ", "{", "{\"schema\": }"] {
        let e = Policy::parse(text, "p.json").unwrap_err();
        assert_eq!(e.field, "");
        assert!(e.message.starts_with("invalid JSON"), "{e}");
        assert!(e.message.contains("line"), "{e}");
        assert!(e.message.contains("column"), "{e}");
    }
    let e = Policy::parse("[1]", "p.json").unwrap_err();
    assert!(e.message.contains("JSON object"), "{e}");
    rejects(
        |v| v["schema"] = json!("exflow.policy/2"),
        "schema",
        "not supported",
    );
    rejects(|v| v["schema"] = json!(1), "schema", "must be the string");
    rejects(
        |v| {
            v.as_object_mut().unwrap().remove("schema");
        },
        "schema",
        "missing",
    );
    rejects(
        |v| {
            v.as_object_mut().unwrap().remove("groups");
        },
        "groups",
        "missing",
    );
}

#[test]
fn unknown_keys_are_typos() {
    rejects(|v| v["alow"] = json!([]), "alow", "did you mean 'allow'?");
    rejects(
        |v| v["allow"][0]["serivce"] = json!("epm"),
        "allow[0].serivce",
        "did you mean 'service'?",
    );
    rejects(
        |v| v["deny"][0]["too"] = json!("x"),
        "deny[0].too",
        "unknown field",
    );
    rejects(
        |v| v["groups"]["dcs"]["host"] = json!([]),
        "groups.dcs.host",
        "did you mean 'hosts'?",
    );
    rejects(
        |v| v["pins"][0]["prot"] = json!(1),
        "pins[0].prot",
        "unknown field",
    );
}

#[test]
fn group_errors() {
    rejects(
        |v| v["groups"]["clients"]["hosts"][1] = json!("192.0.2.0/33"),
        "groups.clients.hosts[1]",
        "prefix length",
    );
    rejects(
        |v| v["groups"]["clients"]["hosts"][0] = json!("clients.example"),
        "groups.clients.hosts[0]",
        "not an IP address",
    );
    rejects(
        |v| v["groups"]["clients"]["hosts"][0] = json!(192),
        "groups.clients.hosts[0]",
        "must be a string",
    );
    rejects(
        |v| v["groups"]["dcs"]["role"] = json!("domain-controller"),
        "groups.dcs.role",
        "unknown role 'domain-controller' (roles: exchange, dc, clients, frontend, remote-mta, perimeter)",
    );
    rejects(
        |v| v["groups"]["dcs"]["hosts"] = json!([]),
        "groups.dcs.hosts",
        "at least one",
    );
    rejects(
        |v| {
            v["groups"]["dcs"].as_object_mut().unwrap().remove("hosts");
        },
        "groups.dcs.hosts",
        "missing",
    );
    rejects(
        |v| v["groups"]["10.0.0.1"] = json!({ "hosts": ["10.0.0.1"] }),
        "groups.10.0.0.1",
        "must not be an address",
    );
    rejects(|v| v["groups"] = json!([]), "groups", "must be an object");
    // A group without a role is fine.
    let mut v = example();
    v["groups"]["dmz"] = json!({ "hosts": ["203.0.113.0/24"] });
    assert_eq!(parse_value(&v).unwrap().group("dmz").unwrap().role, None);
}

#[test]
fn duplicate_group_names_are_caught_despite_the_json_map() {
    let text = EXAMPLE.replace(
        r#""clients":  { "role": "clients""#,
        r#""dcs": { "hosts": ["10.0.0.1"] }, "clients":  { "role": "clients""#,
    );
    let e = Policy::parse(&text, "policy.json").unwrap_err();
    assert_eq!(e.field, "groups.dcs");
    assert!(e.message.contains("defined twice"), "{e}");
}

#[test]
fn rule_errors() {
    rejects(
        |v| v["allow"][0]["from"] = json!("192.0.2.7"),
        "allow[0].from",
        "from and to name a group, not an address",
    );
    rejects(
        |v| {
            v["allow"][0].as_object_mut().unwrap().remove("to");
        },
        "allow[0].to",
        "missing",
    );
    rejects(
        |v| v["allow"][0]["service"] = json!("epn"),
        "allow[0].service",
        "unknown service 'epn' (did you mean 'epm'?",
    );
    rejects(
        |v| v["allow"][0]["ports"] = json!([135]),
        "allow[0]",
        "both service and ports",
    );
    rejects(
        |v| {
            v["allow"][0].as_object_mut().unwrap().remove("service");
        },
        "allow[0]",
        "needs a service",
    );
    rejects(
        |v| v["allow"][0]["proto"] = json!("tcp"),
        "allow[0].proto",
        "proto goes with ports",
    );
    rejects(
        |v| v["allow"][1]["proto"] = json!("icmp"),
        "allow[1].proto",
        "unknown protocol 'icmp'",
    );
    rejects(
        |v| v["allow"][1]["ports"][0] = json!(0),
        "allow[1].ports[0]",
        "port 0 is out of range 1..=65535",
    );
    rejects(
        |v| v["allow"][1]["ports"][0] = json!(70000),
        "allow[1].ports[0]",
        "port 70000 is out of range 1..=65535",
    );
    rejects(
        |v| v["allow"][1]["ports"][1] = json!("6004-6002"),
        "allow[1].ports[1]",
        "low end is above the high end",
    );
    rejects(
        |v| v["allow"][1]["ports"][1] = json!("6002-70000"),
        "allow[1].ports[1]",
        "port 70000 is out of range",
    );
    rejects(
        |v| v["allow"][1]["ports"][1] = json!("many"),
        "allow[1].ports[1]",
        "'many' is not a port number",
    );
    rejects(
        |v| v["allow"][1]["ports"][1] = json!(-5),
        "allow[1].ports[1]",
        "out of range",
    );
    rejects(
        |v| v["allow"][1]["ports"] = json!([]),
        "allow[1].ports",
        "at least one port",
    );
    rejects(
        |v| v["allow"][1]["ports"] = json!(6001),
        "allow[1].ports",
        "must be an array",
    );
    rejects(
        |v| v["allow"][1] = json!("epm"),
        "allow[1]",
        "must be an object",
    );
    rejects(|v| v["deny"] = json!({}), "deny", "must be an array");
    rejects(
        |v| v["deny"][0]["comment"] = json!(5),
        "deny[0].comment",
        "string",
    );
}

#[test]
fn profile_and_dynamic_range_errors() {
    let e = rejects(
        |v| v["profiles"][0] = json!("exchange55"),
        "profiles[0]",
        "unknown profile 'exchange55'",
    );
    for p in profiles::PROFILES {
        assert!(e.message.contains(p.name), "{e}");
    }
    rejects(
        |v| v["rpc_dynamic_ports"] = json!("5000-70000"),
        "rpc_dynamic_ports",
        "70000",
    );
    rejects(
        |v| v["rpc_dynamic_ports"] = json!(["5000-5100", 0]),
        "rpc_dynamic_ports[1]",
        "port 0",
    );
    let mut v = example();
    v["rpc_dynamic_ports"] = json!(["5000-5100", 5101]);
    assert_eq!(
        parse_value(&v).unwrap().rpc_dynamic,
        PortSet(vec![(5000, 5101)])
    );
}

#[test]
fn pin_errors() {
    rejects(
        |v| v["pins"][0]["service"] = json!("smtp"),
        "pins[0].service",
        "service 'smtp' cannot be pinned (pinnable: exchange-store",
    );
    rejects(
        |v| v["pins"][0]["service"] = json!("epm"),
        "pins[0].service",
        "cannot be pinned",
    );
    rejects(
        |v| v["pins"][0]["service"] = json!("exchange-stor"),
        "pins[0].service",
        "unknown service",
    );
    rejects(
        |v| v["pins"][0]["server"] = json!("exchnage"),
        "pins[0].server",
        "unknown group 'exchnage'",
    );
    rejects(
        |v| v["pins"][0]["server"] = json!("198.51.100.0/24"),
        "pins[0].server",
        "single address",
    );
    rejects(
        |v| v["pins"][0]["port"] = json!(70000),
        "pins[0].port",
        "port 70000 is out of range",
    );
    rejects(
        |v| v["pins"][0]["port"] = json!("6001"),
        "pins[0].port",
        "must be a port number",
    );
    rejects(
        |v| {
            v["pins"][0].as_object_mut().unwrap().remove("port");
        },
        "pins[0].port",
        "missing",
    );
    rejects(
        |v| {
            v["pins"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "server": "exchange", "service": "exchange-store", "port": 6009 }))
        },
        "pins[2].port",
        "conflicts with pins[0]: exchange exchange-store is pinned to port 6001",
    );
    // The same pin twice is harmless; x400-mta, rfc1006 and
    // mapi-notification can be pinned.
    let mut v = example();
    let pins = v["pins"].as_array_mut().unwrap();
    pins.push(json!({ "server": "exchange", "service": "exchange-store", "port": 6001 }));
    pins.push(json!({ "server": "exchange", "service": "rfc1006", "port": 1102 }));
    pins.push(json!({ "server": "clients", "service": "mapi-notification", "port": 2900 }));
    let p = parse_value(&v).unwrap();
    assert_eq!(p.pins.len(), 4);
    assert_eq!(p.pins[2].service, "x400-mta");
    assert_eq!(p.pins[3].proto, PROTO_UDP);
}

#[test]
fn contradictory_rules() {
    let e = rejects(
        |v| v["deny"][0] = json!({ "from": "clients", "to": "exchange", "service": "epm" }),
        "deny[0]",
        "contradicts allow[0]: both cover clients → exchange epm",
    );
    assert_eq!(
        e.to_string(),
        "policy.json: deny[0]: contradicts allow[0]: both cover clients → exchange epm"
    );
    // Same ports written differently are the same traffic.
    rejects(
        |v| v["deny"][0] = json!({ "from": "clients", "to": "exchange", "proto": "tcp", "ports": ["6001-6002", "6003-6004"] }),
        "deny[0]",
        "contradicts allow[1]: both cover clients → exchange tcp 6001-6004",
    );
    // A narrower deny carves out of an allow: not a contradiction. Nor is
    // a deny against a profile's rule (the example denies the profile's
    // mapi-notification).
    let mut v = example();
    v["deny"][0] = json!({ "from": "clients", "to": "exchange", "proto": "tcp", "ports": [6004] });
    parse_value(&v).unwrap();
}

#[test]
fn every_profile_parses_and_expands_to_its_rules() {
    for profile in profiles::PROFILES {
        assert!(!profile.rules.is_empty(), "{}", profile.name);
        assert!(
            ["Q176466", "Q155831", "Q264035", "KB270836"]
                .iter()
                .any(|kb| profile.description.contains(kb)),
            "{} names its KB article",
            profile.name
        );
        for r in profile.rules {
            assert!(
                services::service_ports(r.service).is_some(),
                "{}: {}",
                profile.name,
                r.service
            );
        }
        let p = parse_value(&minimal(json!({ "profiles": [profile.name] }))).unwrap();
        let got: Vec<(String, String, String)> = p
            .allow
            .iter()
            .map(|r| {
                assert_eq!(r.origin, format!("profile {}", profile.name));
                (r.from.clone(), r.to.clone(), r.traffic.to_string())
            })
            .collect();
        let group = |role: Role| match role {
            Role::Exchange => "exchange",
            Role::Dc => "dcs",
            Role::Clients => "clients",
            Role::Frontend => "frontend",
            Role::RemoteMta => "remote",
            Role::Perimeter => unreachable!(),
        };
        let want: Vec<(String, String, String)> = profile
            .rules
            .iter()
            .map(|r| {
                (
                    group(r.from).to_string(),
                    group(r.to).to_string(),
                    r.service.to_string(),
                )
            })
            .collect();
        assert_eq!(got, want, "{}", profile.name);
        assert!(p.profile_warnings().is_empty(), "{}", profile.name);
        assert!(p.describe().contains(profile.name));
    }
}

#[test]
fn profile_contents() {
    let rules = |name: &str| -> Vec<(Role, Role, &str)> {
        profiles::lookup(name)
            .unwrap()
            .rules
            .iter()
            .map(|r| (r.from, r.to, r.service))
            .collect()
    };
    use Role::*;
    assert_eq!(
        rules("exchange55-mapi-clients"),
        [
            (Clients, Exchange, "epm"),
            (Clients, Exchange, "exchange-store"),
            (Clients, Exchange, "exchange-directory"),
            (Exchange, Clients, "mapi-notification"),
        ]
    );
    let e2k = rules("exchange2000-mapi-clients");
    assert!(e2k.contains(&(Clients, Exchange, "exchange-referral")));
    assert!(e2k.contains(&(Clients, Dc, "gc")));
    assert!(e2k.contains(&(Exchange, Clients, "mapi-notification")));
    let fe = rules("frontend-perimeter");
    for s in [
        "dns",
        "kerberos",
        "ntp",
        "epm",
        "ldap",
        "smb",
        "gc",
        "netlogon",
        "ad-replication",
    ] {
        assert!(fe.contains(&(Frontend, Dc, s)), "{s}");
    }
    for s in ["http", "imap", "pop3", "smtp"] {
        assert!(fe.contains(&(Frontend, Exchange, s)), "{s}");
    }
    assert!(rules("x400-connector").contains(&(RemoteMta, Exchange, "x400-mta")));
    assert!(rules("exchange-intersite-rpc").contains(&(Exchange, RemoteMta, "exchange-mta")));
    assert_eq!(profiles::PROFILES.len(), 10);
}

#[test]
fn a_profile_without_its_roles_adds_nothing_but_is_recorded() {
    let v = json!({
        "schema": "exflow.policy/1",
        "groups": {
            "exchange": { "role": "exchange", "hosts": ["198.51.100.10"] },
            "clients": { "role": "clients", "hosts": ["192.0.2.0/24"] }
        },
        "profiles": ["x400-connector", "exchange2000-mapi-clients", "pop3-clients", "imap4-clients"]
    });
    let p = parse_value(&v).unwrap();
    assert_eq!(p.profiles.len(), 4);
    assert!(p.allow.iter().all(|r| r.origin != "profile x400-connector"));
    // smtp from both pop3 and imap4 profiles appears once.
    let smtp = p
        .allow
        .iter()
        .filter(|r| r.traffic == Traffic::Service("smtp".into()))
        .count();
    assert_eq!(smtp, 1);
    let w = p.profile_warnings();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].contains("x400-connector adds nothing") && w[0].contains("remote-mta"));
    assert!(w[1].contains("exchange2000-mapi-clients") && w[1].contains("role dc"));
    assert!(p.describe().contains("Warnings"));
}

#[test]
fn decide_on_representative_flows() {
    let p = Policy::parse(EXAMPLE, "policy.json").unwrap();
    let client = ip("192.0.2.50");
    let exch = ip("198.51.100.10");
    let dc = ip("198.51.100.20");
    // Allowed by a service (explicit rule first), TCP and UDP.
    assert_eq!(
        p.decide(&client, &exch, PROTO_TCP, 135, "epm"),
        Decision::Allowed("allow[0]".into())
    );
    // The articles name the endpoint mapper on TCP 135 only: `epm` does
    // not open UDP 135 (a rule with proto udp and port 135 does).
    assert_eq!(
        p.decide(&client, &exch, PROTO_UDP, 135, "epm"),
        Decision::Unspecified
    );
    // Allowed by a port range, whatever the label.
    assert_eq!(
        p.decide(&client, &exch, PROTO_TCP, 6003, "unknown"),
        Decision::Allowed("allow[1]".into())
    );
    assert_eq!(
        p.decide(&client, &exch, PROTO_UDP, 6003, "unknown"),
        Decision::Unspecified
    );
    // Unspecified: wrong direction, a host outside every group, a port no
    // rule names.
    assert_eq!(
        p.decide(&exch, &client, PROTO_TCP, 135, "epm"),
        Decision::Unspecified
    );
    assert_eq!(
        p.decide(&ip("203.0.113.5"), &exch, PROTO_TCP, 135, "epm"),
        Decision::Unspecified
    );
    assert_eq!(
        p.decide(&client, &exch, PROTO_TCP, 25, "smtp"),
        Decision::Unspecified
    );
    assert_eq!(
        p.decide(&client, &dc, PROTO_TCP, 135, "epm"),
        Decision::Unspecified
    );
    // Pinned store: the profile allows it on 6001 (allow[1] too: first wins).
    assert_eq!(
        p.decide(&client, &exch, PROTO_TCP, 6001, "exchange-store"),
        Decision::Allowed("allow[1]".into())
    );
    let store = p
        .allow
        .iter()
        .find(|r| r.traffic == Traffic::Service("exchange-store".into()))
        .unwrap();
    assert!(p.rule_matches(store, &client, &exch, PROTO_TCP, 6001, "exchange-store"));
    // ... and not on a dynamic port, since the store is pinned there.
    assert!(!p.rule_matches(store, &client, &exch, PROTO_TCP, 1026, "exchange-store"));
    assert_eq!(
        p.decide(&client, &exch, PROTO_TCP, 1026, "exchange-store"),
        Decision::Unspecified
    );
    // The label must match: 6001 labelled as something else is not the store.
    assert!(!p.rule_matches(store, &client, &exch, PROTO_TCP, 6001, "exchange-directory"));
    // Directory pinned by address.
    let dir = p
        .allow
        .iter()
        .find(|r| r.traffic == Traffic::Service("exchange-directory".into()))
        .unwrap();
    assert!(p.rule_matches(dir, &client, &exch, PROTO_TCP, 6002, "exchange-directory"));
    assert!(!p.rule_matches(dir, &client, &exch, PROTO_TCP, 1027, "exchange-directory"));
    // Denied wins over the profile's allow: mapi-notification, server → client.
    assert_eq!(
        p.decide(&exch, &client, PROTO_UDP, 3000, "unknown"),
        Decision::Denied("deny[0]".into())
    );
    assert_eq!(
        p.decide(&exch, &client, PROTO_UDP, 3000, "mapi-notification"),
        Decision::Denied("deny[0]".into())
    );
    assert_eq!(Decision::Denied("x".into()).kind().as_str(), "denied");
    assert_eq!(Decision::Denied("x".into()).rule(), Some("x"));
    assert_eq!(Decision::Unspecified.rule(), None);
    // UDP to the Exchange server is not a notification (direction).
    assert_eq!(
        p.decide(&client, &exch, PROTO_UDP, 3000, "unknown"),
        Decision::Unspecified
    );
}

#[test]
fn mapi_notification_and_pins_without_deny() {
    let v = minimal(json!({ "profiles": ["exchange55-mapi-clients"] }));
    let p = parse_value(&v).unwrap();
    let client = ip("192.0.2.50");
    let exch = ip("198.51.100.10");
    let allowed = Decision::Allowed("profile exchange55-mapi-clients".into());
    // Server → client UDP above 1024, by port or by label.
    assert_eq!(
        p.decide(&exch, &client, PROTO_UDP, 1025, "unknown"),
        allowed
    );
    assert_eq!(
        p.decide(&exch, &client, PROTO_UDP, 1024, "unknown"),
        Decision::Unspecified
    );
    assert_eq!(
        p.decide(&exch, &client, PROTO_TCP, 3000, "unknown"),
        Decision::Unspecified
    );
    assert_eq!(
        p.decide(&client, &exch, PROTO_UDP, 3000, "unknown"),
        Decision::Unspecified
    );
    // Unpinned RPC interfaces on the dynamic range, by label.
    assert_eq!(
        p.decide(&client, &exch, PROTO_TCP, 1026, "exchange-store"),
        allowed
    );
    assert_eq!(
        p.decide(&client, &exch, PROTO_TCP, 1026, "unknown"),
        Decision::Unspecified
    );
    assert_eq!(
        p.decide(&client, &exch, PROTO_TCP, 1000, "exchange-store"),
        Decision::Unspecified
    );

    // With the client's FixedUDPPort pinned, only that port counts by port.
    let mut v2 = v.clone();
    v2["pins"] = json!([{ "server": "clients", "service": "mapi-notification", "port": 2900 }]);
    let p2 = parse_value(&v2).unwrap();
    assert_eq!(
        p2.decide(&exch, &client, PROTO_UDP, 2900, "unknown"),
        allowed
    );
    assert_eq!(
        p2.decide(&exch, &client, PROTO_UDP, 3000, "unknown"),
        Decision::Unspecified
    );
    assert_eq!(p2.pin_for(&client, "mapi-notification").unwrap().port, 2900);
}

#[test]
fn rpc_dynamic_x400_and_frontend() {
    let v = minimal(json!({
        "profiles": ["x400-connector", "frontend-perimeter"],
        "allow": [ { "from": "clients", "to": "exchange", "service": "rpc-dynamic" } ],
        "pins": [
            { "server": "198.51.100.20", "service": "netlogon", "port": 5001 },
            { "server": "exchange", "service": "x400-mta", "port": 1102 }
        ],
        "rpc_dynamic_ports": "5000-5100"
    }));
    let p = parse_value(&v).unwrap();
    let client = ip("192.0.2.50");
    let exch = ip("198.51.100.10");
    let remote = ip("203.0.113.20");
    let fe = ip("203.0.113.10");
    let dc = ip("198.51.100.20");
    let rpc = Decision::Allowed("allow[0]".into());
    assert_eq!(p.decide(&client, &exch, PROTO_TCP, 5050, "unknown"), rpc);
    assert_eq!(p.decide(&client, &exch, PROTO_TCP, 5050, "rpc-other"), rpc);
    assert_eq!(
        p.decide(&client, &exch, PROTO_TCP, 5050, "exchange-sa"),
        rpc
    );
    assert_eq!(
        p.decide(&client, &exch, PROTO_TCP, 5050, "smtp"),
        Decision::Unspecified
    );
    assert_eq!(
        p.decide(&client, &exch, PROTO_TCP, 1026, "unknown"),
        Decision::Unspecified
    );
    assert_eq!(
        p.decide(&client, &exch, PROTO_UDP, 5050, "unknown"),
        Decision::Unspecified
    );
    // X.400: 102 toward the remote MTA, the pinned 1102 toward Exchange.
    let x400 = Decision::Allowed("profile x400-connector".into());
    assert_eq!(p.decide(&exch, &remote, PROTO_TCP, 102, "x400-mta"), x400);
    assert_eq!(p.decide(&remote, &exch, PROTO_TCP, 1102, "unknown"), x400);
    assert_eq!(
        p.decide(&remote, &exch, PROTO_TCP, 102, "x400-mta"),
        Decision::Unspecified
    );
    assert_eq!(p.pin_for(&exch, "rfc1006").unwrap().port, 1102);
    // Front end: DNS both protocols, netlogon on its pinned port only.
    let fp = Decision::Allowed("profile frontend-perimeter".into());
    assert_eq!(p.decide(&fe, &dc, PROTO_UDP, 53, "dns"), fp);
    assert_eq!(p.decide(&fe, &dc, PROTO_TCP, 53, "dns"), fp);
    assert_eq!(p.decide(&fe, &dc, PROTO_UDP, 123, "ntp"), fp);
    assert_eq!(p.decide(&fe, &dc, PROTO_TCP, 5001, "netlogon"), fp);
    assert_eq!(
        p.decide(&fe, &dc, PROTO_TCP, 5002, "netlogon"),
        Decision::Unspecified
    );
    assert_eq!(p.decide(&fe, &dc, PROTO_TCP, 5002, "ad-replication"), fp);
    assert_eq!(p.decide(&fe, &exch, PROTO_TCP, 80, "http"), fp);
    assert_eq!(
        p.decide(&fe, &exch, PROTO_TCP, 443, "https"),
        Decision::Unspecified
    );
    // Ports to open for fixes.
    assert_eq!(
        p.service_ports_on(&dc, "netlogon"),
        Some((vec![PROTO_TCP], PortSet(vec![(5001, 5001)])))
    );
    assert_eq!(
        p.service_ports_on(&ip("198.51.100.21"), "netlogon"),
        Some((vec![PROTO_TCP], PortSet(vec![(5000, 5100)])))
    );
    assert_eq!(
        p.service_ports_on(&dc, "dns"),
        Some((vec![PROTO_TCP, PROTO_UDP], PortSet(vec![(53, 53)])))
    );
    assert_eq!(p.service_ports_on(&dc, "nope"), None);
}

#[test]
fn address_pins_win_over_group_pins() {
    let v = json!({
        "schema": "exflow.policy/1",
        "groups": { "exchange": { "role": "exchange", "hosts": ["198.51.100.0/28"] } },
        "pins": [
            { "server": "exchange", "service": "exchange-store", "port": 6001 },
            { "server": "198.51.100.3", "service": "exchange-store", "port": 7001 }
        ]
    });
    let p = parse_value(&v).unwrap();
    assert_eq!(
        p.pin_for(&ip("198.51.100.3"), "exchange-store")
            .unwrap()
            .port,
        7001
    );
    assert_eq!(
        p.pin_for(&ip("198.51.100.4"), "exchange-store")
            .unwrap()
            .port,
        6001
    );
    assert!(p.pin_for(&ip("198.51.100.99"), "exchange-store").is_none());
    assert!(p
        .pin_for(&ip("198.51.100.4"), "exchange-directory")
        .is_none());
}

#[test]
fn no_policy_decides_nothing() {
    let p = Policy::default();
    assert_eq!(
        p.decide(
            &ip("192.0.2.1"),
            &ip("198.51.100.10"),
            PROTO_TCP,
            135,
            "epm"
        ),
        Decision::Unspecified
    );
}

#[test]
fn starter_json_round_trips() {
    let all: Vec<&str> = profiles::names().collect();
    for selected in [vec![], vec!["exchange55-mapi-clients"], all] {
        let text = Policy::starter_json(&selected);
        let p = Policy::parse(&text, "starter.json").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(p.profiles, selected);
        // Every profile at once speaks of Exchange 5.5 and of 2000/2003:
        // the one warning is that the pins' values cannot follow one.
        let w = p.profile_warnings();
        if selected.len() > 1 {
            assert_eq!(w.len(), 1, "{w:?}");
            assert!(w[0].contains("different Exchange versions"), "{w:?}");
        } else {
            assert!(w.is_empty(), "{w:?}");
        }
        assert!(text.contains("192.0.2.0/24") && text.contains("198.51.100.10"));
        assert!(text.contains("\"comment\""));
    }
}

#[test]
fn describe_summarises() {
    let p = Policy::parse(EXAMPLE, "policy.json").unwrap();
    let d = p.describe();
    for needle in [
        "3 groups",
        "clients",
        "192.0.2.0/24, 2001:db8::/64",
        "allow[1]",
        "tcp 6001-6004",
        "profile exchange55-mapi-clients",
        "exchange-store (tcp 6001 pinned)",
        "exchange-directory (tcp 6002 pinned on 198.51.100.10; elsewhere tcp 1024-65535 dynamic)",
        "deny[0]",
        "# no UDP to clients",
        "Exchange 5.5",
        r#"MSExchangeIS\ParametersSystem, value "TCP/IP Port" (REG_DWORD, port number, decimal), on the Exchange server; restart the computer (KB270836)"#,
        // The profile says Exchange 5.5: the directory's 5.5 value, alone.
        r#"MSExchangeDS\Parameters, value "TCP/IP port""#,
        "netstat -an",
        "RPCDump",
        "forward slash",
    ] {
        assert!(d.contains(needle), "{needle:?} missing in\n{d}");
    }
}

#[test]
fn service_table() {
    // The endpoint mapper is TCP 135 in Q176466, Q155831 and KB270836.
    let s = services::service_ports("epm").unwrap();
    assert_eq!((s.protos, s.ports), (&[PROTO_TCP][..], &[(135, 135)][..]));
    assert_eq!(
        services::service_ports("x400-mta").unwrap().ports,
        &[(102, 102)]
    );
    assert_eq!(
        services::service_ports("mapi-notification").unwrap().protos,
        &[PROTO_UDP]
    );
    assert_eq!(services::service_ports("ntp").unwrap().protos, &[PROTO_UDP]);
    assert!(services::service_ports("bogus").is_none());
    for name in [
        "exchange-store",
        "exchange-directory",
        "exchange-referral",
        "exchange-sa",
        "exchange-srs",
        "exchange-mta",
        "exchange-store-admin",
        "ad-replication",
        "ismserv",
        "netlogon",
        "lsarpc",
        "samr",
        "dnsserver",
        "frs",
        "dfsr",
        "rpc-other",
    ] {
        assert!(services::is_rpc_interface_service(name), "{name}");
        assert!(services::is_pinnable(name), "{name}");
    }
    for name in ["epm", "rpc-dynamic", "smtp", "unknown", "icmp-echo"] {
        assert!(!services::is_rpc_interface_service(name), "{name}");
        assert!(!services::is_pinnable(name), "{name}");
    }
    assert!(services::is_pinnable("x400-mta") && services::is_pinnable("mapi-notification"));
    // Every catalogue service is in the table.
    for i in crate::kb::INTERFACES {
        assert!(
            services::service_ports(i.service).is_some(),
            "{}",
            i.service
        );
    }
    let names: Vec<&str> = services::service_names().collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "no duplicate names");
    assert!(services::SERVICES
        .iter()
        .filter(|s| s.kind == ServiceKind::RpcInterface)
        .all(|s| s.pinnable()));
}

/// The registry values of a service, any version and role.
fn values(service: &str) -> Vec<&'static crate::kb::Pin> {
    crate::kb::pins(service, None, &crate::kb::Context::default())
}

#[test]
fn registry_values_per_pinnable_service() {
    let store = values("exchange-store");
    assert_eq!(store.len(), 1);
    assert!(store[0]
        .value
        .key
        .ends_with(r"MSExchangeIS\ParametersSystem"));
    assert_eq!(
        (
            store[0].value.value,
            store[0].value.kind.as_str(),
            store[0].article().id()
        ),
        ("TCP/IP Port", "REG_DWORD", "KB270836")
    );
    let dir = values("exchange-directory");
    assert!(dir.iter().any(|r| r.value.value == "TCP/IP NSPI Port"));
    assert!(dir
        .iter()
        .any(|r| r.value.key.ends_with(r"NTDS\Parameters")));
    let mta = values("exchange-mta");
    assert_eq!(mta[0].value.value, "TCP/IP port for RPC listens");
    let x400 = values("x400-mta");
    assert_eq!(x400.len(), 1);
    assert_eq!(x400[0].value.value, "RFC1006 Port Number");
    assert!(x400[0].value.key.ends_with(r"MSExchangeMTA\Parameters"));
    assert_eq!(values("rfc1006"), x400);
    let notif = values("mapi-notification");
    assert_eq!(
        notif[0].value.full_key(),
        r"HKEY_CURRENT_USER\Software\Microsoft\Office\11.0\Outlook\RPC"
    );
    assert_eq!(
        (notif[0].value.value, notif[0].article().id()),
        ("FixedUDPPort", "Q264035")
    );
    let netlogon = values("netlogon");
    assert_eq!(netlogon[0].value.value, "DCTcpipPort");
    assert!(netlogon
        .iter()
        .any(|r| r.value.key.ends_with(r"NTDS\Parameters")));
    assert_eq!(values("ad-replication")[0].value.value, "TCP/IP Port");
    assert_eq!(
        values("exchange-referral")[0].value,
        values("exchange-sa")[0].value
    );
    let srs = values("exchange-srs");
    assert_eq!(
        (srs[0].value.short_key(), srs[0].value.value),
        (r"MSExchangeSRS\Parameters".to_string(), "TCP/IP")
    );
    assert!(values("smtp").is_empty());
    assert!(values("epm").is_empty());
    for s in services::SERVICES {
        for r in values(s.name) {
            assert!(s.pinnable(), "{}", s.name);
            assert!(!r.cites.is_empty() && !r.component.is_empty(), "{}", s.name);
        }
    }
}

#[test]
fn port_sets_merge_and_print() {
    let p = PortSet::from_ranges(vec![
        (6002, 6004),
        (6001, 6001),
        (25, 25),
        (100, 200),
        (150, 300),
    ]);
    assert_eq!(p, PortSet(vec![(25, 25), (100, 300), (6001, 6004)]));
    assert_eq!(p.to_string(), "25,100-300,6001-6004");
    assert_eq!(
        PortSet::from_ranges(vec![(65535, 65535), (1, 65534)]),
        PortSet(vec![(1, 65535)])
    );
    assert_eq!(
        Traffic::Ports {
            proto: None,
            ports: PortSet(vec![(53, 53)])
        }
        .to_string(),
        "tcp/udp 53"
    );
    assert_eq!(Role::parse("remote-mta"), Some(Role::RemoteMta));
    assert_eq!(Role::parse("mta"), None);
}

#[test]
fn load_reads_files_and_names_them() {
    let dir = std::env::temp_dir().join(format!("exflow-policy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("policy.json");
    std::fs::write(&path, EXAMPLE).unwrap();
    assert!(Policy::load(&path).is_ok());
    std::fs::write(&path, EXAMPLE.replace("6001, \"6002-6004\"", "6001, 70000")).unwrap();
    let e = Policy::load(&path).unwrap_err();
    assert_eq!(e.file, path.display().to_string());
    assert_eq!(e.field, "allow[1].ports[1]");
    let missing = Policy::load(&dir.join("absent.json")).unwrap_err();
    assert!(missing.message.contains("cannot read"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}
