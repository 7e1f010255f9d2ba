//! The knowledge table (`src/kb.rs`) against the articles it cites (#17):
//! every phrase it quotes from an article of `../shared/seeds` is in that
//! article, every registry value and port the seeds state is stated there
//! with the key, value name and type the table gives, consequences cite
//! only articles that back them, and the corrections of #17 hold.

use std::collections::BTreeMap;

use exflow::kb::{
    self, Article, Authority, Cite, Context, ExchangeVersion, Kind, Pin, Source, INTERFACES,
    PROFILES, SERVICES,
};

mod common;

/// Lowercase, whitespace runs as one space, Markdown emphasis and escapes
/// dropped: how the seeds and the quotes are compared.
fn norm(s: &str) -> String {
    let s = s.replace("\\_", "_").replace(['*', '`'], "");
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The seed texts of each article, normalized (read from ../shared/seeds,
/// as the other tests read ../shared).
fn seeds() -> BTreeMap<Article, String> {
    let dir = common::crate_root().join("../shared/seeds");
    assert!(dir.is_dir(), "{} is missing", dir.display());
    let mut out = BTreeMap::new();
    for a in Article::ALL {
        if let Source::Seeds(files) = a.source() {
            let mut text = String::new();
            for f in files {
                let bytes = std::fs::read(dir.join(f))
                    .unwrap_or_else(|e| panic!("{}: {e}", dir.join(f).display()));
                text.push_str(&String::from_utf8_lossy(&bytes));
                text.push('\n');
            }
            out.insert(*a, norm(&text));
        }
    }
    out
}

/// Every citation of the table, with where it sits.
fn all_cites() -> Vec<(String, &'static Cite)> {
    let mut out: Vec<(String, &'static Cite)> = Vec::new();
    let pin_cites = |out: &mut Vec<(String, &'static Cite)>, at: String, pins: &'static [Pin]| {
        for p in pins {
            for c in p.cites {
                out.push((format!("{at} pin {}", p.value.value), c));
            }
        }
    };
    for s in SERVICES {
        for c in s.cites {
            out.push((format!("service {}", s.name), c));
        }
        pin_cites(&mut out, format!("service {}", s.name), s.pins);
    }
    for i in INTERFACES {
        pin_cites(&mut out, format!("interface {}", i.name), i.pins);
    }
    for p in PROFILES {
        for c in p.cites {
            out.push((format!("profile {}", p.name), c));
        }
    }
    for c in kb::PORT_ADVICE {
        out.push(("port advice".into(), c));
    }
    for c in kb::RANGE_RECIPE.cites {
        out.push(("range recipe".into(), c));
    }
    for c in kb::KEEPALIVE.cites {
        out.push(("keep-alive".into(), c));
    }
    out
}

fn seed_text<'a>(seeds: &'a BTreeMap<Article, String>, c: &Cite) -> Option<&'a String> {
    match c.by {
        Authority::Kb(a) => seeds.get(&a),
        _ => None,
    }
}

#[test]
fn every_quote_from_a_seed_article_is_in_that_article() {
    let seeds = seeds();
    let mut checked = 0;
    for (at, c) in all_cites() {
        if let Some(text) = seed_text(&seeds, c) {
            assert!(
                text.contains(&norm(c.says)),
                "{at}: {:?} does not say {:?}",
                c.by,
                c.says
            );
            checked += 1;
        }
    }
    // The table leans on the seeds: most of what it says is checked here.
    assert!(checked >= 60, "only {checked} quotes checked");
}

#[test]
fn articles_outside_the_seeds_say_where_they_were_read() {
    let seeds = seeds();
    for a in Article::ALL {
        match a.source() {
            Source::Seeds(files) => {
                assert!(seeds.contains_key(a), "{}", a.id());
                assert!(files.iter().all(|f| f.starts_with(a.id())), "{}", a.id());
            }
            Source::Read(at) => assert!(at.contains('/'), "{}: {at}", a.id()),
        }
        assert_eq!(Article::parse(a.id()), Some(*a));
    }
    // The three the issue names are cited like the seeds, by id.
    for id in ["KB154596", "KB224196", "KB929851"] {
        let a = Article::parse(id).unwrap();
        assert!(matches!(a.source(), Source::Read(_)), "{id}");
    }
}

/// The last two components of a key ("MSExchangeIS\ParametersSystem").
fn key_tail(key: &str) -> String {
    let parts: Vec<&str> = key.rsplitn(3, '\\').collect();
    format!("{}\\{}", parts[1], parts[0]).to_lowercase()
}

#[test]
fn every_registry_value_is_the_one_its_seed_article_states() {
    let seeds = seeds();
    let mut rows: Vec<(String, &Pin)> = Vec::new();
    for s in SERVICES {
        rows.extend(s.pins.iter().map(|p| (format!("service {}", s.name), p)));
    }
    for i in INTERFACES {
        rows.extend(i.pins.iter().map(|p| (format!("interface {}", i.name), p)));
    }
    rows.push(("RFC1006 Port Number".into(), &kb::PIN_RFC1006));
    let mut from_seeds = 0;
    for (at, p) in rows {
        assert!(
            p.cites.iter().any(|c| matches!(c.by, Authority::Kb(_))),
            "{at}: cites no article"
        );
        // What the seed articles of this row say, together.
        let said: String = p
            .cites
            .iter()
            .filter(|c| seed_text(&seeds, c).is_some())
            .map(|c| norm(c.says))
            .collect::<Vec<_>>()
            .join(" | ");
        let value = p.value.value.to_lowercase();
        let tail = key_tail(p.value.key);
        if said.contains(&tail) {
            // The seeds give the key: the value name and type must be the
            // ones they give with it.
            assert!(said.contains(&value), "{at}: {value:?} not in {said:?}");
            assert!(
                said.contains(&p.value.kind.as_str().to_lowercase())
                    || said.contains(&p.value.kind.as_str().to_lowercase()[4..]),
                "{at}: {} not in {said:?}",
                p.value.kind.as_str()
            );
            from_seeds += 1;
        } else if said.contains(&format!("\"{value}\"")) || said.contains(&value) {
            // The seeds name the value (Q176466's MTA values); the key is
            // from an article read elsewhere.
            assert!(
                p.cites.iter().any(
                    |c| matches!(c.by, Authority::Kb(a) if matches!(a.source(), Source::Read(_)))
                ),
                "{at}: where does the key {} come from?",
                p.value.key
            );
        } else {
            // No seed states it: every article cited is one read elsewhere.
            for c in p.cites {
                if let Authority::Kb(a) = c.by {
                    assert!(
                        !seeds.contains_key(&a) || seeds[&a].contains(&norm(c.says)),
                        "{at}"
                    );
                }
            }
            assert!(
                p.cites.iter().any(
                    |c| matches!(c.by, Authority::Kb(a) if matches!(a.source(), Source::Read(_)))
                ),
                "{at}: {} {:?} is stated by no seed and by no article read",
                p.value.key,
                p.value.value
            );
        }
    }
    assert!(
        from_seeds >= 10,
        "only {from_seeds} values checked against the seeds"
    );
}

#[test]
fn every_port_from_the_articles_is_in_the_article() {
    let seeds = seeds();
    for s in SERVICES.iter().filter(|s| s.kind == Kind::Ports) {
        let said: String = s
            .cites
            .iter()
            .filter(|c| seed_text(&seeds, c).is_some())
            .map(|c| norm(c.says))
            .collect::<Vec<_>>()
            .join(" | ");
        if said.is_empty() {
            // Not in the KB articles: its source is IANA or a spec, and its
            // consequence names no article.
            assert!(
                s.cites
                    .iter()
                    .all(|c| matches!(c.by, Authority::Iana | Authority::Spec(_))),
                "{}: cites an article the seeds do not back",
                s.name
            );
            assert!(
                kb::cited_ids(s.consequence.unwrap_or("")).is_empty(),
                "{}",
                s.name
            );
            continue;
        }
        for &(lo, hi) in s.ports {
            for port in [lo, hi] {
                let words: Vec<&str> = said
                    .split(|c: char| !c.is_ascii_digit())
                    .filter(|w| !w.is_empty())
                    .collect();
                assert!(
                    words.contains(&port.to_string().as_str()),
                    "{}: port {port} not in {said:?}",
                    s.name
                );
            }
        }
        if s.protos.contains(&exflow::packet::PROTO_UDP) {
            assert!(said.contains("udp"), "{}: UDP not in {said:?}", s.name);
        }
    }
}

#[test]
fn consequences_cite_only_articles_that_back_them() {
    let seeds = seeds();
    for s in SERVICES {
        let Some(text) = s.consequence else { continue };
        for a in kb::cited_ids(text) {
            let backing: Vec<&Cite> = s
                .cites
                .iter()
                .chain(s.pins.iter().flat_map(|p| p.cites))
                .filter(|c| c.by == Authority::Kb(a))
                .collect();
            assert!(
                !backing.is_empty(),
                "{}: the consequence cites {} but the row has no quote of it",
                s.name,
                a.id()
            );
            if let Some(t) = seeds.get(&a) {
                assert!(backing.iter().all(|c| t.contains(&norm(c.says))));
            }
        }
    }
}

#[test]
fn citations_say_only_what_the_article_says() {
    let c = |name: &str| kb::consequence(name).unwrap();
    // Q180795 is Exchange 5.5 directory replication, not Active Directory.
    for s in SERVICES {
        let cites_it = kb::cited_ids(s.consequence.unwrap_or("")).contains(&Article::Q180795);
        assert!(!cites_it, "{}: Q180795 is no consequence", s.name);
    }
    assert!(!c("ad-replication").contains("Q180795"));
    let q180795: Vec<&Pin> = INTERFACES
        .iter()
        .flat_map(|i| i.pins)
        .filter(|p| {
            p.cites
                .iter()
                .any(|c| c.by == Authority::Kb(Article::Q180795))
        })
        .collect();
    assert!(!q180795.is_empty());
    for p in q180795 {
        assert_eq!(p.exchange, &[ExchangeVersion::V55], "{:?}", p.value);
        assert!(p.value.key.ends_with(r"MSExchangeDS\Parameters"));
    }
    // KB270836: port 123 is not needed for logon.
    assert!(c("ntp").contains("not required for Windows 2000 logon"));
    assert!(!c("ntp").contains("Kerberos breaks"));
    // Q264035: clients "may not receive" notifications.
    assert!(c("mapi-notification").contains("may not receive new mail notification"));
    assert!(!c("mapi-notification").contains("next poll"));
    // ismserv is not Active Directory's process: NTDS "TCP/IP Port" does
    // not pin it, and it is not labelled ad-replication.
    let ism = INTERFACES
        .iter()
        .find(|i| i.name == "Intersite Messaging")
        .unwrap();
    assert_eq!(ism.service, "ismserv");
    assert!(ism.pins.is_empty());
    assert!(kb::pins("ismserv", Some(ism), &Context::default()).is_empty());
    assert!(kb::pins("ismserv", None, &Context::default()).is_empty());
    // TCP 102: X.400 only when the payload says so.
    assert!(c("x400-mta").contains("X.400"));
    for other in ["rfc1006", "s7comm", "mms"] {
        assert_ne!(c(other), c("x400-mta"), "{other}");
    }
    assert!(c("s7comm").contains("not Exchange") && c("mms").contains("not Exchange"));
    assert!(c("rfc1006").contains("did not show which application"));
}

#[test]
fn the_nspi_value_follows_the_exchange_version() {
    let nspi = INTERFACES.iter().find(|i| i.name == "NSPI").unwrap();
    let values = |cx: Context| -> Vec<(String, &'static str)> {
        kb::pins("exchange-directory", Some(nspi), &cx)
            .iter()
            .map(|p| (p.value.short_key(), p.value.value))
            .collect()
    };
    let ds = (r"MSExchangeDS\Parameters".to_string(), "TCP/IP port");
    let sa = (r"MSExchangeSA\Parameters".to_string(), "TCP/IP NSPI Port");
    let gc = (r"NTDS\Parameters".to_string(), "TCP/IP Port");
    let v = |e| Context {
        exchange: Some(e),
        ..Context::default()
    };
    assert_eq!(values(v(ExchangeVersion::V55)), vec![ds.clone()]);
    assert_eq!(
        values(v(ExchangeVersion::V2000)),
        vec![sa.clone(), gc.clone()]
    );
    assert_eq!(
        values(v(ExchangeVersion::V2007)),
        vec![sa.clone(), gc.clone()]
    );
    // Unknown: every version's, each labelled with its versions.
    assert_eq!(
        values(Context::default()),
        vec![ds.clone(), sa.clone(), gc.clone()]
    );
    let labels: Vec<String> = kb::pins("exchange-directory", Some(nspi), &Context::default())
        .iter()
        .map(|p| p.label())
        .collect();
    assert_eq!(
        labels,
        [
            "Exchange 5.5",
            "Exchange 2000/2003/2007",
            "Exchange 2000/2003/2007, global catalog"
        ]
    );
    // A known domain controller gets the global catalog's value only.
    let dc = Context {
        exchange: Some(ExchangeVersion::V2000),
        is_dc: true,
        ..Context::default()
    };
    assert_eq!(values(dc), vec![gc]);
    // Later versions are named as not covered.
    for later in ["2010", "2013", "2016", "2019"] {
        let e = ExchangeVersion::parse(later).unwrap_err();
        assert!(e.contains("not covered"), "{e}");
    }
    assert_eq!(ExchangeVersion::parse("2003"), Ok(ExchangeVersion::V2000));
    assert_eq!(ExchangeVersion::parse("5.0"), Ok(ExchangeVersion::V55));
    assert!(ExchangeVersion::parse("xp").is_err());
}

#[test]
fn every_pin_says_what_to_restart_and_the_srs_value_is_there() {
    for p in SERVICES
        .iter()
        .flat_map(|s| s.pins)
        .chain(INTERFACES.iter().flat_map(|i| i.pins))
    {
        assert!(!p.restart.as_str().is_empty());
        assert!(!p.component.is_empty());
        // Exchange's values restart the computer; the global catalog's NSPI
        // value the global catalog (KB270836); Netlogon's the service
        // (KB224196).
        match (p.value.short_key().as_str(), p.value.value) {
            (r"NTDS\Parameters", _) if p.host == kb::Host::GlobalCatalog => {
                assert_eq!(p.restart, kb::Restart::GlobalCatalog)
            }
            (r"Netlogon\Parameters", "DCTcpipPort") => {
                assert_eq!(p.restart, kb::Restart::NetlogonService)
            }
            (k, _)
                if k.starts_with("MSExchangeIS")
                    || k.starts_with("MSExchangeSA")
                    || k.starts_with("MSExchangeDS")
                    || k.starts_with("MSExchangeSRS") =>
            {
                assert_eq!(p.restart, kb::Restart::Computer, "{k}")
            }
            _ => {}
        }
    }
    let srs = kb::pins("exchange-srs", None, &Context::default());
    assert_eq!(srs.len(), 1);
    assert_eq!(
        srs[0].value.full_key(),
        r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\MSExchangeSRS\Parameters"
    );
    assert_eq!(
        (srs[0].value.value, srs[0].value.kind.as_str()),
        ("TCP/IP", "REG_DWORD")
    );
    // The advice around every pin, from KB270836.
    for needle in [
        "unused port",
        "netstat -an",
        "5000-65535",
        "different port",
        "RPCDump",
    ] {
        assert!(kb::PORT_ADVICE_TEXT.contains(needle), "{needle}");
    }
    assert!(kb::FORWARD_SLASH.contains("forward slash"));
}

#[test]
fn the_dynamic_range_recipe_is_whole() {
    let r = &kb::RANGE_RECIPE;
    let names: Vec<(&str, &str, &str)> = r
        .settings
        .iter()
        .map(|s| (s.value.value, s.value.kind.as_str(), s.set_to))
        .collect();
    assert_eq!(names[0].0, "Ports");
    assert_eq!(names[0].1, "REG_MULTI_SZ");
    assert_eq!(names[1], ("PortsInternetAvailable", "REG_SZ", "Y"));
    assert_eq!(names[2], ("UseInternetPorts", "REG_SZ", "Y"));
    assert!(r
        .settings
        .iter()
        .all(|s| s.value.full_key() == r"HKEY_LOCAL_MACHINE\Software\Microsoft\Rpc\Internet"));
    let text = r.text();
    for needle in [
        "restart the server",
        "KB154596",
        "netsh int ipv4 set dynamicport tcp",
        "Windows Server 2008",
        "KB929851",
    ] {
        assert!(text.contains(needle), "{needle} missing: {text}");
    }
}

#[test]
fn the_endpoint_mapper_is_tcp_135() {
    let epm = kb::service("epm").unwrap();
    assert_eq!(epm.protos, &[exflow::packet::PROTO_TCP]);
    assert_eq!(epm.ports, &[(135, 135)]);
}

#[test]
fn profiles_read_the_table() {
    for p in PROFILES {
        for r in p.rules {
            assert!(
                kb::service(r.service).is_some(),
                "{}: {}",
                p.name,
                r.service
            );
        }
        for id in kb::cited_ids(p.description) {
            assert!(
                p.cites.iter().any(|c| c.by == Authority::Kb(id))
                    || SERVICES
                        .iter()
                        .any(|s| p.rules.iter().any(|r| r.service == s.name
                            && s.cites.iter().any(|c| c.by == Authority::Kb(id)))),
                "{}: cites {} without a quote",
                p.name,
                id.id()
            );
        }
    }
    let has = |name: &str, from, to, service: &str| {
        kb::profile(name)
            .unwrap()
            .rules
            .iter()
            .any(|r| r.from == from && r.to == to && r.service == service)
    };
    use exflow::policy::Role;
    // KB270836: DSAccess pings the domain controllers.
    assert!(has(
        "frontend-perimeter",
        Role::Frontend,
        Role::Dc,
        "icmp-echo"
    ));
    // Clients referred to a global catalog reach its NSPI.
    assert!(has(
        "exchange2000-mapi-clients",
        Role::Clients,
        Role::Dc,
        "exchange-directory"
    ));
    assert_eq!(
        kb::profile("exchange2000-mapi-clients").unwrap().exchange,
        Some(ExchangeVersion::V2000)
    );
    assert_eq!(
        kb::profiles_version(["exchange55-mapi-clients", "pop3-clients"]),
        Some(ExchangeVersion::V55)
    );
    assert_eq!(
        kb::profiles_version(["exchange55-mapi-clients", "exchange2000-mapi-clients"]),
        None
    );
}

#[test]
fn the_kb_ports_label_flows_as_the_table_names_them() {
    use exflow::packet::{PROTO_TCP, PROTO_UDP};
    use exflow::proto::wellknown::service_for_port;
    // An RPC proxy's backend has no port of its own: its clients' URLs name
    // it (#24). Every other has one.
    let portless: Vec<&str> = SERVICES
        .iter()
        .filter(|s| s.kind == Kind::Ports && s.ports.is_empty())
        .map(|s| s.name)
        .collect();
    assert_eq!(portless, ["rpc-proxy-backend"]);
    for s in SERVICES
        .iter()
        .filter(|s| s.kind == Kind::Ports && !s.ports.is_empty())
    {
        for &proto in s.protos {
            let (port, _) = s.ports[0];
            let label = service_for_port(proto, port);
            // TCP 102 is labelled rfc1006 until the payload says more.
            let want = if port == 102 { "rfc1006" } else { s.name };
            assert_eq!(label, Some(want), "{} {proto}/{port}", s.name);
        }
    }
    // UDP 135 is still recognized as the endpoint mapper where it is seen.
    assert_eq!(service_for_port(PROTO_UDP, 135), Some("epm"));
    assert_eq!(service_for_port(PROTO_TCP, 135), Some("epm"));
}

#[test]
fn the_uuids_the_seeds_print_are_catalogued_with_their_role() {
    let seeds = seeds();
    let kb270836 = &seeds[&Article::KB270836];
    for (uuid, service) in [
        ("f5cc5a18-4264-101a-8c59-08002b2f8426", "exchange-directory"),
        ("a4f1db00-ca47-1067-b31f-00dd010662da", "exchange-store"),
        ("469d6ec0-0d87-11ce-b13f-00aa003bac6c", "exchange-sa"),
        ("12345678-1234-abcd-ef00-01234567cffb", "netlogon"),
    ] {
        assert!(kb270836.contains(uuid), "{uuid}");
        let u: exflow::proto::dcerpc::Uuid = uuid.parse().unwrap();
        assert_eq!(kb::interface(&u).unwrap().service, service, "{uuid}");
    }
}

/// #25: the keep-alive value is the one its article names, at the key and
/// with the type and default it states, and it cites nothing else.
#[test]
fn the_keepalive_value_is_its_articles() {
    let k = &kb::KEEPALIVE;
    let says = |p: &str| k.cites.iter().any(|c| c.says.contains(p));
    assert!(k
        .cites
        .iter()
        .all(|c| c.by == Authority::Kb(Article::CC782936)));
    assert!(says(k.value.value), "{}", k.value.value);
    assert!(says(&format!("HKLM\\{}", k.value.key)), "{}", k.value.key);
    assert!(says(k.value.kind.as_str()));
    assert!(says(k.default));
    assert!(matches!(Article::CC782936.source(), Source::Read(_)));
    assert!(k.advice.contains("by default none are sent"));
}
