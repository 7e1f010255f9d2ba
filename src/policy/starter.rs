//! The starter file `exflow policy init` writes.

use super::{profiles, Role};

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

pub(super) fn starter_json(selected: &[&str]) -> String {
    let needs = |role: Role| {
        selected
            .iter()
            .filter_map(|n| profiles::lookup(n))
            .any(|p| p.roles().contains(&role))
    };
    let mut groups = vec![
        r#"    "exchange": { "role": "exchange", "hosts": ["198.51.100.10"], "comment": "Exchange servers" }"#.to_string(),
        r#"    "dcs": { "role": "dc", "hosts": ["198.51.100.20"], "comment": "domain controllers and global catalogs" }"#.to_string(),
        r#"    "clients": { "role": "clients", "hosts": ["192.0.2.0/24"], "comment": "client networks (Outlook, POP3, IMAP4, LDAP, NNTP clients)" }"#.to_string(),
    ];
    if needs(Role::Frontend) {
        groups.push(r#"    "frontend": { "role": "frontend", "hosts": ["203.0.113.10"], "comment": "front-end servers in the perimeter network (KB270836)" }"#.to_string());
    }
    if needs(Role::RemoteMta) {
        groups.push(r#"    "remote-mtas": { "role": "remote-mta", "hosts": ["203.0.113.20"], "comment": "Exchange servers / MTAs of other sites" }"#.to_string());
    }
    let profiles_json: Vec<String> = selected.iter().map(|p| q(p)).collect();
    let available: Vec<&str> = profiles::names().collect();
    format!(
        r#"{{
  "schema": "exflow.policy/1",
  "comment": [
    "What the firewall between these groups should let through; exflow compares it with the traffic it sees.",
    "Replace the documentation addresses (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) with yours; hosts take addresses and CIDR networks.",
    "profiles: built-in KB scenarios ({available}).",
    "allow / deny: your own rules, from group to group, with a service name or proto + ports; a deny wins over every allow.",
    "pins: once a registry value fixes a service's port (KB270836, Q155831), add e.g. {{ \"server\": \"exchange\", \"service\": \"exchange-store\", \"port\": 6001 }}."
  ],
  "groups": {{
{groups}
  }},
  "profiles": [{profiles}],
  "allow": [
    {{ "from": "clients", "to": "exchange", "service": "epm", "comment": "RPC endpoint mapper, TCP 135 (Q176466)" }},
    {{ "from": "clients", "to": "exchange", "proto": "tcp", "ports": [443], "comment": "explicit ports: HTTPS to Outlook Web Access" }}
  ],
  "deny": [],
  "pins": [],
  "rpc_dynamic_ports": "1024-65535"
}}
"#,
        available = available.join(", "),
        groups = groups.join(",\n"),
        profiles = profiles_json.join(", "),
    )
}
