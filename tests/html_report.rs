//! `--format html` (#21 point 1): one self-contained page — what is
//! blocked with the fix, the diagram, the timeline, the tables — checked on
//! its bytes and in a real browser: headless Chromium (Debian's `chromium`,
//! which scripts/setup installs for the tests) loads it, its script builds
//! the tables without error, and a screenshot is taken.

mod common;

use std::net::{IpAddr, Ipv6Addr};
use std::process::Command;

use common::*;
use exflow_testkit::{Link, PcapWriter, TcpConversation};
use serde_json::Value;

fn html(args: &[&str], code: i32) -> String {
    let mut all = vec!["analyze", "--format", "html"];
    all.extend_from_slice(args);
    let out = run(&all);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The JSON island the page's script reads.
fn island(page: &str) -> Value {
    let start = page.find("id=\"exflow-data\">").expect("the data island") + 17;
    let end = start + page[start..].find("</script>").unwrap();
    serde_json::from_str(&page[start..end]).unwrap()
}

/// Headless Chromium's DOM of `file` once loaded and its script run.
fn chromium_dom(file: &std::path::Path) -> String {
    let out = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", file.display()))
        .output()
        .expect("chromium is needed for this test: scripts/setup installs it (apt-get install chromium)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The page on a real-peer lab capture (the firewall drops the ports the
/// endpoint mapper announced): no resource from the network, the headline
/// and a card per blocked port with its fix, the diagram's blocked edges
/// and hand-offs, the timeline, and the tables' data equal to the JSON
/// report's.
#[test]
fn the_page_is_self_contained_and_holds_what_the_report_says() {
    let cap = shared_captures().join("lab/dyn-drop/client-tap.pcap");
    let path = path_str(&cap);
    let page = html(&[path], 1);
    let report = analyze_json(&[path], &[1]);
    assert!(page.starts_with("<!DOCTYPE html>"), "{}", &page[..60]);
    // Nothing fetched: no links, scripts or images by URL, no imports. The
    // only URL is SVG's namespace name, which is never fetched.
    for banned in ["<link", " src=", "@import", "url(", "https://"] {
        assert!(!page.contains(banned), "{banned} in the page");
    }
    assert_eq!(
        page.matches("http://").count(),
        page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    // What is blocked: the text headline, then one card per finding.
    let findings = report["findings"].as_array().unwrap();
    assert!(page.contains("BLOCKED: 2 ports the network (a firewall) stops"));
    assert_eq!(
        page.matches("<article class=\"card blocked\">").count(),
        findings.len()
    );
    for f in findings {
        let rule = f["fix"]["nftables"][0].as_str().unwrap();
        assert!(page.contains(&rule.replace('"', "&quot;")), "{rule}");
    }
    // The diagram: blocked edges crossed at the firewall, the hand-offs as
    // 135 → port in red (not followed).
    assert!(page.contains("<svg id=\"diagram-svg\""));
    assert!(page.contains("<path class=\"edge blocked\""));
    assert!(
        page.contains("<path class=\"edge working\""),
        "135 itself worked"
    );
    for h in report["handoffs"].as_array().unwrap() {
        let label = format!("135→{}", h["port"]);
        assert!(page.contains(&label), "{label}");
    }
    assert!(page.contains("<path class=\"handoff blocked\""));
    // The timeline: a point per failed attempt.
    let attempts: usize = findings
        .iter()
        .map(|f| f["evidence"].as_array().unwrap().len())
        .sum();
    let timeline = &page[page.find("id=\"timeline-svg\"").unwrap()..];
    let timeline = &timeline[..timeline.find("</svg>").unwrap()];
    assert_eq!(timeline.matches("<circle").count(), attempts);
    // The tables' data: the report's findings, hand-offs and verdicts.
    let data = island(&page);
    for key in ["findings", "handoffs", "verdicts"] {
        let n = report[key].as_array().unwrap().len();
        assert_eq!(data[key]["total"], n, "{key}");
        assert_eq!(data[key]["rows"].as_array().unwrap().len(), n, "{key}");
    }
    let kinds: Vec<&str> = findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    let rows: Vec<&str> = data["findings"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    assert_eq!(rows, kinds);
}

/// In Chromium: the script ran (`data-ready`) without an error
/// (`data-errors` absent), every table has its rows, the diagram and the
/// timeline are in the DOM; a screenshot of it is written
/// (target/html-report.png; docs/html-report.png is one).
#[test]
fn chromium_loads_the_page_and_its_script_builds_the_tables() {
    let cap = shared_captures().join("lab/dyn-drop/client-tap.pcap");
    let file = tmp_path("report.html");
    std::fs::write(&file, html(&[path_str(&cap)], 1)).unwrap();
    let report = analyze_json(&[path_str(&cap)], &[1]);
    let dom = chromium_dom(&file);
    assert!(
        dom.contains("data-ready=\"1\""),
        "the script did not finish"
    );
    assert!(!dom.contains("data-errors="), "script errors");
    for key in ["findings", "handoffs", "verdicts"] {
        let at = dom.find(&format!("id=\"{key}-table\"")).unwrap();
        let table = &dom[at..at + dom[at..].find("</table>").unwrap()];
        let body = &table[table.find("<tbody>").unwrap()..];
        let n = report[key].as_array().unwrap().len();
        assert_eq!(body.matches("<tr>").count(), n, "{key} rows in the DOM");
        assert!(table.contains("<th"), "{key} header");
    }
    assert!(dom.contains("showing 2 of 2"), "findings count line");
    assert!(dom.contains("id=\"diagram-svg\"") && dom.contains("id=\"timeline-svg\""));
    let png = common::crate_root().join("target/html-report.png");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1300,1500",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", file.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 20_000,
        "{}",
        bytes.len()
    );
}

/// A capture with far more than a page can hold — 30,000 working ports on
/// 60 servers from 40 client networks — stays small: tables capped at
/// their limit with the totals beside them, the diagram says what it left
/// out, and Chromium still builds the tables.
#[test]
fn a_capture_with_many_rows_makes_a_page_that_caps_and_says_so() {
    let p = tmp_path("html-many.pcap");
    let mut w = PcapWriter::create(&p, Link::Ethernet, 65535, false).unwrap();
    let t0 = 1_795_305_697_000_000_000u64;
    let mut t = t0;
    for k in 0..30_000u32 {
        // 40 client networks (/64s: documentation space has no 40 /24s)
        // and 60 servers.
        let client = IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            (k % 40) as u16,
            0,
            0,
            0,
            0,
            (k % 200) as u16 + 1,
        ));
        let server = IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0xff,
            0,
            0,
            0,
            0,
            (k % 60) as u16 + 1,
        ));
        let mut c = TcpConversation::new(
            client,
            40_000 + (k % 20_000) as u16,
            server,
            1024 + (k % 30_000) as u16,
        );
        for f in [c.syn(), c.syn_ack(), c.ack()] {
            t += 1_000;
            w.write_packet(t, &f).unwrap();
        }
    }
    w.flush().unwrap();
    drop(w);
    let page = html(&[path_str(&p)], 0);
    assert!(page.len() <= 5_000_000, "{} bytes", page.len());
    let data = island(&page);
    let verdicts = data["verdicts"]["total"].as_u64().unwrap();
    assert!(verdicts > 2_000, "{verdicts} verdict rows");
    assert_eq!(data["verdicts"]["rows"].as_array().unwrap().len(), 2_000);
    assert!(
        page.contains("Left out of the picture:"),
        "the diagram's cap"
    );
    let file = tmp_path("html-many.html");
    std::fs::write(&file, &page).unwrap();
    let dom = chromium_dom(&file);
    assert!(dom.contains("data-ready=\"1\"") && !dom.contains("data-errors="));
    assert!(
        dom.contains(&format!(
            "showing 2000 of 2000 ({} more left out of this page",
            verdicts - 2_000
        )),
        "the verdicts table says what it left out"
    );
}
