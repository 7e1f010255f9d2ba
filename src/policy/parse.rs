//! Reading a policy file: JSON into `serde_json::Value`, then validated by
//! hand so that every error names the exact field and what is wrong.

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::profiles;
use super::services;
use super::{Group, Pin, Policy, PolicyError, PortSet, Role, Rule, Traffic, POLICY_SCHEMA};
use crate::packet::{PROTO_TCP, PROTO_UDP};
use crate::roles::Cidr;

const TOP_KEYS: &[&str] = &[
    "schema",
    "comment",
    "groups",
    "profiles",
    "allow",
    "deny",
    "pins",
    "rpc_dynamic_ports",
];
const GROUP_KEYS: &[&str] = &["role", "hosts", "comment"];
const RULE_KEYS: &[&str] = &["from", "to", "service", "proto", "ports", "comment"];
const PIN_KEYS: &[&str] = &["server", "service", "port", "comment"];

struct Cx<'a> {
    file: &'a str,
}

impl Cx<'_> {
    fn err(&self, field: impl Into<String>, message: impl Into<String>) -> PolicyError {
        PolicyError {
            file: self.file.to_string(),
            field: field.into(),
            message: message.into(),
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Edit distance, for "did you mean" on typos.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        .filter(|&(d, c)| d <= 2 && d < c.len())
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

fn check_keys(
    cx: &Cx,
    path: &str,
    obj: &Map<String, Value>,
    allowed: &[&str],
) -> Result<(), PolicyError> {
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) {
            let hint = suggest(key, allowed.iter().copied())
                .map(|s| format!("did you mean '{s}'? "))
                .unwrap_or_default();
            return Err(cx.err(
                join(path, key),
                format!("unknown field ({hint}allowed: {})", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

fn object<'v>(
    cx: &Cx,
    path: &str,
    v: &'v Value,
    what: &str,
) -> Result<&'v Map<String, Value>, PolicyError> {
    v.as_object().ok_or_else(|| {
        cx.err(
            path,
            format!("must be an object ({what}), found {}", kind_of(v)),
        )
    })
}

fn array<'v>(cx: &Cx, path: &str, v: &'v Value, what: &str) -> Result<&'v Vec<Value>, PolicyError> {
    v.as_array().ok_or_else(|| {
        cx.err(
            path,
            format!("must be an array ({what}), found {}", kind_of(v)),
        )
    })
}

fn string<'v>(cx: &Cx, path: &str, v: &'v Value, what: &str) -> Result<&'v str, PolicyError> {
    v.as_str().ok_or_else(|| {
        cx.err(
            path,
            format!("must be a string ({what}), found {}", kind_of(v)),
        )
    })
}

/// `comment` fields: a string or an array of strings.
fn check_comment(
    cx: &Cx,
    path: &str,
    obj: &Map<String, Value>,
) -> Result<Option<String>, PolicyError> {
    let path = join(path, "comment");
    match obj.get("comment") {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Array(lines)) => {
            let mut out = Vec::new();
            for (i, l) in lines.iter().enumerate() {
                out.push(string(cx, &format!("{path}[{i}]"), l, "a line of comment")?);
            }
            Ok(Some(out.join(" ")))
        }
        Some(v) => Err(cx.err(
            path,
            format!(
                "must be a string or an array of strings, found {}",
                kind_of(v)
            ),
        )),
    }
}

/// The keys of the top-level `groups` object in file order (serde_json's
/// map is sorted), and whether one is repeated.
struct KeyOrder(Vec<String>);

impl<'de> Deserialize<'de> for KeyOrder {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Vec<String>, A::Error> {
                let mut keys = Vec::new();
                while let Some(k) = m.next_key::<String>()? {
                    m.next_value::<IgnoredAny>()?;
                    keys.push(k);
                }
                Ok(keys)
            }
        }
        d.deserialize_map(V).map(KeyOrder)
    }
}

#[derive(serde::Deserialize)]
struct TopOrder {
    #[serde(default)]
    groups: Option<KeyOrder>,
}

fn parse_port(cx: &Cx, path: &str, v: &Value) -> Result<(u16, u16), PolicyError> {
    let num = |s: &str| -> Result<u16, PolicyError> {
        let n: u64 = s
            .trim()
            .parse()
            .map_err(|_| cx.err(path, format!("'{s}' is not a port number")))?;
        check_port(cx, path, n)
    };
    match v {
        Value::Number(n) => {
            let n = n
                .as_u64()
                .ok_or_else(|| cx.err(path, format!("port {n} is out of range 1..=65535")))?;
            let p = check_port(cx, path, n)?;
            Ok((p, p))
        }
        Value::String(s) => {
            let (lo, hi) = match s.split_once('-') {
                Some((lo, hi)) => (num(lo)?, num(hi)?),
                None => {
                    let p = num(s)?;
                    (p, p)
                }
            };
            if lo > hi {
                return Err(cx.err(
                    path,
                    format!("range '{s}': the low end is above the high end"),
                ));
            }
            Ok((lo, hi))
        }
        other => Err(cx.err(
            path,
            format!(
                "must be a port number or a \"lo-hi\" range string, found {}",
                kind_of(other)
            ),
        )),
    }
}

fn check_port(cx: &Cx, path: &str, n: u64) -> Result<u16, PolicyError> {
    if (1..=65535).contains(&n) {
        Ok(n as u16)
    } else {
        Err(cx.err(path, format!("port {n} is out of range 1..=65535")))
    }
}

/// A port list: an array of numbers and "lo-hi" strings (or, where
/// `single_ok`, one number or string).
fn parse_ports(cx: &Cx, path: &str, v: &Value, single_ok: bool) -> Result<PortSet, PolicyError> {
    let items: Vec<(String, &Value)> = match v {
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, x)| (format!("{path}[{i}]"), x))
            .collect(),
        Value::Number(_) | Value::String(_) if single_ok => vec![(path.to_string(), v)],
        other => {
            return Err(cx.err(
                path,
                format!(
                    "must be an array of port numbers and \"lo-hi\" ranges, found {}",
                    kind_of(other)
                ),
            ))
        }
    };
    if items.is_empty() {
        return Err(cx.err(path, "must list at least one port"));
    }
    let mut ranges = Vec::new();
    for (p, x) in items {
        ranges.push(parse_port(cx, &p, x)?);
    }
    Ok(PortSet::from_ranges(ranges))
}

fn parse_proto(cx: &Cx, path: &str, v: &Value) -> Result<u8, PolicyError> {
    match v.as_str() {
        Some("tcp") => Ok(PROTO_TCP),
        Some("udp") => Ok(PROTO_UDP),
        Some(s) => Err(cx.err(path, format!("unknown protocol '{s}' (\"tcp\" or \"udp\")"))),
        None => Err(cx.err(
            path,
            format!("must be \"tcp\" or \"udp\", found {}", kind_of(v)),
        )),
    }
}

fn group_list(groups: &[Group]) -> String {
    let mut names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    names.sort_unstable();
    if names.is_empty() {
        "none defined".to_string()
    } else {
        names.join(", ")
    }
}

fn group_ref(cx: &Cx, path: &str, v: &Value, groups: &[Group]) -> Result<String, PolicyError> {
    let name = string(cx, path, v, "a group name")?;
    if groups.iter().any(|g| g.name == name) {
        return Ok(name.to_string());
    }
    let why = if name.parse::<Cidr>().is_ok() {
        format!(
            "'{name}' is an address; from and to name a group, not an address (groups: {})",
            group_list(groups)
        )
    } else {
        format!("unknown group '{name}' (groups: {})", group_list(groups))
    };
    Err(cx.err(path, why))
}

fn service_name<'v>(cx: &Cx, path: &str, v: &'v Value) -> Result<&'v str, PolicyError> {
    let name = string(cx, path, v, "a service name")?;
    if services::service_ports(name).is_some() {
        return Ok(name);
    }
    let hint = suggest(name, services::service_names())
        .map(|s| format!("did you mean '{s}'? "))
        .unwrap_or_default();
    Err(cx.err(
        path,
        format!(
            "unknown service '{name}' ({hint}services: {})",
            services::service_names().collect::<Vec<_>>().join(", ")
        ),
    ))
}

fn parse_groups(cx: &Cx, v: &Value, order: Vec<String>) -> Result<Vec<Group>, PolicyError> {
    let obj = object(cx, "groups", v, "group name -> { role, hosts }")?;
    let mut groups = Vec::new();
    for (i, name) in order.iter().enumerate() {
        let path = format!("groups.{name}");
        if order[..i].contains(name) {
            return Err(cx.err(path, "group defined twice"));
        }
        if name.trim().is_empty() {
            return Err(cx.err(path, "a group needs a non-empty name"));
        }
        if name.parse::<Cidr>().is_ok() {
            return Err(cx.err(
                path,
                "a group name must not be an address (pins name a group or an address)",
            ));
        }
        let g = object(cx, &path, &obj[name.as_str()], "role, hosts")?;
        check_keys(cx, &path, g, GROUP_KEYS)?;
        check_comment(cx, &path, g)?;
        let role = match g.get("role") {
            None | Some(Value::Null) => None,
            Some(r) => {
                let rpath = join(&path, "role");
                let s = string(cx, &rpath, r, "a role")?;
                let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                Some(Role::parse(s).ok_or_else(|| {
                    cx.err(
                        &rpath,
                        format!("unknown role '{s}' (roles: {})", roles.join(", ")),
                    )
                })?)
            }
        };
        let hpath = join(&path, "hosts");
        let hosts = g
            .get("hosts")
            .ok_or_else(|| cx.err(&hpath, "missing (the group's addresses and CIDR networks)"))?;
        let hosts = array(cx, &hpath, hosts, "addresses and CIDR networks")?;
        if hosts.is_empty() {
            return Err(cx.err(&hpath, "a group needs at least one address or network"));
        }
        let mut members = Vec::new();
        for (j, h) in hosts.iter().enumerate() {
            let p = format!("{hpath}[{j}]");
            let s = string(cx, &p, h, "an address or CIDR network")?;
            members.push(s.parse::<Cidr>().map_err(|e| cx.err(&p, e))?);
        }
        groups.push(Group {
            name: name.clone(),
            role,
            members,
        });
    }
    Ok(groups)
}

fn parse_rule(cx: &Cx, path: &str, v: &Value, groups: &[Group]) -> Result<Rule, PolicyError> {
    let obj = object(cx, path, v, "from, to, service or ports")?;
    check_keys(cx, path, obj, RULE_KEYS)?;
    let comment = check_comment(cx, path, obj)?;
    let field = |k: &str| -> Result<&Value, PolicyError> {
        obj.get(k)
            .ok_or_else(|| cx.err(join(path, k), "missing (a group name)"))
    };
    let from = group_ref(cx, &join(path, "from"), field("from")?, groups)?;
    let to = group_ref(cx, &join(path, "to"), field("to")?, groups)?;
    let traffic = match (obj.get("service"), obj.get("ports")) {
        (Some(_), Some(_)) => {
            return Err(cx.err(
                path,
                "has both service and ports; a rule gives one or the other",
            ))
        }
        (None, None) => {
            return Err(cx.err(
                path,
                "needs a service (e.g. \"epm\") or ports (with an optional proto)",
            ))
        }
        (Some(s), None) => {
            let name = service_name(cx, &join(path, "service"), s)?;
            if obj.contains_key("proto") {
                return Err(cx.err(
                    join(path, "proto"),
                    format!("proto goes with ports; service '{name}' sets its own protocols"),
                ));
            }
            Traffic::Service(name.to_string())
        }
        (None, Some(p)) => {
            let proto = match obj.get("proto") {
                None | Some(Value::Null) => None,
                Some(x) => Some(parse_proto(cx, &join(path, "proto"), x)?),
            };
            let ports = parse_ports(cx, &join(path, "ports"), p, false)?;
            Traffic::Ports { proto, ports }
        }
    };
    Ok(Rule {
        origin: path.to_string(),
        from,
        to,
        traffic,
        comment,
    })
}

fn parse_rules(
    cx: &Cx,
    key: &str,
    v: Option<&Value>,
    groups: &[Group],
) -> Result<Vec<Rule>, PolicyError> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    let items = array(cx, key, v, "rules")?;
    items
        .iter()
        .enumerate()
        .map(|(i, r)| parse_rule(cx, &format!("{key}[{i}]"), r, groups))
        .collect()
}

fn parse_pins(cx: &Cx, v: Option<&Value>, groups: &[Group]) -> Result<Vec<Pin>, PolicyError> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    let items = array(cx, "pins", v, "static port pins")?;
    let mut pins: Vec<Pin> = Vec::new();
    // The entry of the file each pin came from (repeats are dropped).
    let mut origin: Vec<usize> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("pins[{i}]");
        let obj = object(cx, &path, item, "server, service, port")?;
        check_keys(cx, &path, obj, PIN_KEYS)?;
        check_comment(cx, &path, obj)?;
        let get = |k: &str, what: &str| -> Result<&Value, PolicyError> {
            obj.get(k)
                .ok_or_else(|| cx.err(join(&path, k), format!("missing ({what})")))
        };
        let spath = join(&path, "server");
        let server = string(
            cx,
            &spath,
            get("server", "a group name or an address")?,
            "a group name or an address",
        )?;
        let server = pin_server(cx, &spath, server, groups)?;
        let svpath = join(&path, "service");
        let service = service_name(
            cx,
            &svpath,
            get("service", "the service whose port is pinned")?,
        )?;
        let service = pinnable_service(cx, &svpath, service)?;
        let ppath = join(&path, "port");
        let port = pin_port(cx, &ppath, get("port", "the pinned port number")?)?;
        let proto = services::pin_proto(&service);
        let pin = Pin {
            proto,
            server,
            service,
            port,
        };
        check_pin_conflicts(cx, &ppath, &pin, &pins, &origin, groups)?;
        if !pins
            .iter()
            .any(|p| p.server == pin.server && p.service == pin.service)
        {
            pins.push(pin);
            origin.push(i);
        }
    }
    Ok(pins)
}

/// A pin's server: a group name, or a single address (written canonically).
fn pin_server(cx: &Cx, spath: &str, server: &str, groups: &[Group]) -> Result<String, PolicyError> {
    Ok(if groups.iter().any(|g| g.name == server) {
        server.to_string()
    } else {
        match server.parse::<Cidr>() {
            Ok(c) if c.prefix == if c.addr.is_ipv4() { 32 } else { 128 } => c.addr.to_string(),
            Ok(_) => {
                return Err(cx.err(
                    spath.to_string(),
                    format!(
                    "'{server}' is a network; a pin's server is a group name or a single address"
                ),
                ))
            }
            Err(_) => {
                return Err(cx.err(
                    spath.to_string(),
                    format!(
                        "unknown group '{server}' (a group name or an address; groups: {})",
                        group_list(groups)
                    ),
                ))
            }
        }
    })
}

/// The pinned service, if a registry value pins it (its canonical name).
fn pinnable_service(cx: &Cx, svpath: &str, service: &str) -> Result<String, PolicyError> {
    if !services::is_pinnable(service) {
        let pinnable: Vec<&str> = services::SERVICES
            .iter()
            .filter(|s| s.pinnable())
            .map(|s| s.name)
            .collect();
        return Err(cx.err(
            svpath.to_string(),
            format!(
                "service '{service}' cannot be pinned (pinnable: {})",
                pinnable.join(", ")
            ),
        ));
    }
    Ok(services::pin_service(service).to_string())
}

/// The pinned port number.
fn pin_port(cx: &Cx, ppath: &str, port: &Value) -> Result<u16, PolicyError> {
    Ok(match port {
        Value::Number(n) => match n.as_u64() {
            Some(n) => check_port(cx, ppath, n)?,
            None => {
                return Err(cx.err(
                    ppath.to_string(),
                    format!("port {n} is out of range 1..=65535"),
                ))
            }
        },
        other => {
            return Err(cx.err(
                ppath,
                format!("must be a port number, found {}", kind_of(other)),
            ))
        }
    })
}

/// A pin that contradicts one before it: the same server and service on
/// another port, or one port for two registry values of one computer.
fn check_pin_conflicts(
    cx: &Cx,
    ppath: &str,
    pin: &Pin,
    pins: &[Pin],
    origin: &[usize],
    groups: &[Group],
) -> Result<(), PolicyError> {
    let Pin {
        proto,
        server,
        service,
        port,
    } = pin;
    let (proto, port) = (*proto, *port);
    if let Some((j, prev)) = pins
        .iter()
        .zip(origin)
        .find(|(p, _)| p.server == *server && p.service == *service && p.port != port)
        .map(|(p, j)| (j, p))
    {
        return Err(cx.err(
            ppath,
            format!(
                "conflicts with pins[{j}]: {server} {service} is pinned to port {} there",
                prev.port
            ),
        ));
    }
    // One port, one registry value: two values that cannot be the same
    // one (the store's and the directory's) never share a port of one
    // computer.
    if let Some((j, prev)) = pins
        .iter()
        .zip(origin)
        .find(|(p, _)| {
            p.proto == proto
                && p.port == port
                && p.service != *service
                && same_host(groups, &p.server, server)
                && !may_share_port(&p.service, service)
        })
        .map(|(p, j)| (j, p))
    {
        return Err(cx.err(
            ppath,
            format!(
                "port {port} is pinned for {} on {} too (pins[{j}]): {service} is set by {} and {} by {}, two registry values that cannot share a port; give each value its own unused port (KB270836: \"assign different port settings to each registry key\"; KB224196: DCTcpipPort on the NTDS port makes Netlogon log event 5809)",
                prev.service,
                prev.server,
                values_text(service),
                prev.service,
                values_text(&prev.service),
            ),
        ));
    }
    Ok(())
}

/// Whether two pins' servers (group names or addresses) can be one
/// computer: the same name, an address in the group, or two groups that
/// overlap.
fn same_host(groups: &[Group], a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let members = |name: &str| -> Vec<Cidr> {
        match groups.iter().find(|g| g.name == name) {
            Some(g) => g.members.clone(),
            None => name.parse::<Cidr>().into_iter().collect(),
        }
    };
    let (ma, mb) = (members(a), members(b));
    ma.iter().any(|x| {
        mb.iter()
            .any(|y| x.contains(&y.addr) || y.contains(&x.addr))
    })
}

/// Whether one registry value can put both services on one port (NSPI on
/// a global catalog shares the NTDS port with replication; the store and
/// the directory never share one). Unknown when a service has no
/// documented value: then it is not refused.
pub(crate) fn may_share_port(a: &str, b: &str) -> bool {
    let (va, vb) = (crate::kb::possible_values(a), crate::kb::possible_values(b));
    va.is_empty() || vb.is_empty() || va.iter().any(|x| vb.iter().any(|y| x.same_as(y)))
}

/// "MSExchangeIS\\ParametersSystem \"TCP/IP Port\"" (or the several values).
fn values_text(service: &str) -> String {
    crate::kb::possible_values(service)
        .iter()
        .map(|v| format!("{} \"{}\"", v.short_key(), v.value))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn expand_profiles(names: &[String], groups: &[Group]) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    for name in names {
        let Some(profile) = profiles::lookup(name) else {
            continue;
        };
        for pr in profile.rules {
            for from in groups.iter().filter(|g| g.role == Some(pr.from)) {
                for to in groups.iter().filter(|g| g.role == Some(pr.to)) {
                    let traffic = Traffic::Service(pr.service.to_string());
                    if out
                        .iter()
                        .any(|r| r.from == from.name && r.to == to.name && r.traffic == traffic)
                    {
                        continue;
                    }
                    out.push(Rule {
                        origin: format!("profile {name}"),
                        from: from.name.clone(),
                        to: to.name.clone(),
                        traffic,
                        comment: None,
                    });
                }
            }
        }
    }
    out
}

/// The file's `schema` tag: present and the one this version reads.
fn check_schema(cx: &Cx, obj: &Map<String, Value>) -> Result<(), PolicyError> {
    match obj.get("schema") {
        None => {
            return Err(cx.err(
                "schema",
                format!("missing (\"schema\": \"{POLICY_SCHEMA}\")"),
            ))
        }
        Some(Value::String(s)) if s == POLICY_SCHEMA => {}
        Some(Value::String(s)) => {
            return Err(cx.err(
                "schema",
                format!("'{s}' is not supported; expected \"{POLICY_SCHEMA}\""),
            ))
        }
        Some(other) => {
            return Err(cx.err(
                "schema",
                format!(
                    "must be the string \"{POLICY_SCHEMA}\", found {}",
                    kind_of(other)
                ),
            ))
        }
    }
    Ok(())
}

/// The built-in profiles the file names (each once, in file order).
fn parse_profile_names(cx: &Cx, p: Option<&Value>) -> Result<Vec<String>, PolicyError> {
    let mut profile_names: Vec<String> = Vec::new();
    if let Some(p) = p {
        for (i, item) in array(cx, "profiles", p, "built-in profile names")?
            .iter()
            .enumerate()
        {
            let path = format!("profiles[{i}]");
            let name = string(cx, &path, item, "a profile name")?;
            if profiles::lookup(name).is_none() {
                let hint = suggest(name, profiles::names())
                    .map(|s| format!("did you mean '{s}'? "))
                    .unwrap_or_default();
                return Err(cx.err(
                    path,
                    format!(
                        "unknown profile '{name}' ({hint}built-in: {})",
                        profiles::names().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            if !profile_names.iter().any(|n| n == name) {
                profile_names.push(name.to_string());
            }
        }
    }
    Ok(profile_names)
}

pub(super) fn parse(text: &str, file: &str) -> Result<Policy, PolicyError> {
    let cx = Cx { file };
    let v: Value =
        serde_json::from_str(text).map_err(|e| cx.err("", format!("invalid JSON: {e}")))?;
    let obj = v.as_object().ok_or_else(|| {
        cx.err(
            "",
            format!("a policy file is a JSON object, found {}", kind_of(&v)),
        )
    })?;
    check_keys(&cx, "", obj, TOP_KEYS)?;
    check_schema(&cx, obj)?;
    check_comment(&cx, "", obj)?;

    let groups = match obj.get("groups") {
        None => return Err(cx.err("groups", "missing (group name -> { role, hosts })")),
        Some(g) => {
            object(&cx, "groups", g, "group name -> { role, hosts }")?;
            let order = serde_json::from_str::<TopOrder>(text)
                .ok()
                .and_then(|t| t.groups)
                .map(|k| k.0)
                .unwrap_or_else(|| {
                    g.as_object()
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default()
                });
            parse_groups(&cx, g, order)?
        }
    };

    let profile_names = parse_profile_names(&cx, obj.get("profiles"))?;

    let rpc_dynamic = match obj.get("rpc_dynamic_ports") {
        None => PortSet(vec![(1024, 65535)]),
        Some(v) => parse_ports(&cx, "rpc_dynamic_ports", v, true)?,
    };

    let mut allow = parse_rules(&cx, "allow", obj.get("allow"), &groups)?;
    let deny = parse_rules(&cx, "deny", obj.get("deny"), &groups)?;
    for d in &deny {
        if let Some(a) = allow
            .iter()
            .find(|a| a.from == d.from && a.to == d.to && a.traffic == d.traffic)
        {
            return Err(cx.err(
                &d.origin,
                format!(
                    "contradicts {}: both cover {} → {} {}",
                    a.origin, d.from, d.to, d.traffic
                ),
            ));
        }
    }
    let pins = parse_pins(&cx, obj.get("pins"), &groups)?;
    allow.extend(expand_profiles(&profile_names, &groups));

    Ok(Policy {
        groups,
        profiles: profile_names,
        allow,
        deny,
        pins,
        rpc_dynamic,
    })
}
