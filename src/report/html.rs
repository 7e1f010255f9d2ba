//! `--format html` (#21): one self-contained page for a change ticket — no
//! network access, no CDN: the style, the script and the data are inline.
//!
//! What it shows, in order: what is blocked (the text headline, then one
//! card per actionable finding with its fix); a diagram of client groups →
//! firewall → servers whose edges are the verdict rows (working, blocked,
//! refused by the host, not in the policy) and whose dashed edges are the
//! endpoint mapper's hand-offs (135 → dynamic port); a timeline of the
//! failed attempts; and tables of findings, hand-offs and verdicts that sort
//! and filter in the browser.
//!
//! The picture and the cards are drawn here (deterministic SVG and HTML);
//! the tables are built by the inline script from a JSON island. Everything
//! is capped so a capture of a million flows still makes a page of a few
//! megabytes that a browser loads at once: at most [`MAX_TABLE_ROWS`] rows
//! per table, [`MAX_GROUPS`] client groups and [`MAX_SERVERS`] servers in
//! the diagram, [`MAX_TIMELINE_ROWS`] timeline rows of at most
//! [`MAX_TIMELINE_POINTS`] points; what was left out is counted on the
//! page, and the JSON report has it all.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::IpAddr;

use serde_json::{json, Value};

use super::{headline, proto_name};
use crate::analysis::Analysis;
use crate::correlate::Outcome;
use crate::finding::{Evidence, Finding, FindingKind};
use crate::time::rfc3339_micros;
use crate::verdict::{Status, Verdict};
use crate::Ts;

/// Rows per table in the page (findings, hand-offs, verdicts).
pub const MAX_TABLE_ROWS: usize = 2_000;
/// Finding cards under the headline.
pub const MAX_CARDS: usize = 40;
/// Client groups and servers drawn in the diagram (the most attempts).
pub const MAX_GROUPS: usize = 12;
pub const MAX_SERVERS: usize = 24;
/// Timeline rows (finding ports) and points per row.
pub const MAX_TIMELINE_ROWS: usize = 30;
pub const MAX_TIMELINE_POINTS: usize = 200;
/// Clients listed per table row.
const MAX_CLIENTS: usize = 5;

/// Writes the HTML report of `a`.
pub fn write_html(a: &Analysis, w: &mut dyn Write) -> io::Result<()> {
    let mut w = io::BufWriter::with_capacity(1 << 18, w);
    let title = format!(
        "exflow report: {}",
        a.inputs
            .iter()
            .map(|i| i.path.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    write!(
        w,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"exflow {}\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n\
         <body data-ready=\"0\">\n",
        env!("CARGO_PKG_VERSION"),
        esc(&title)
    )?;
    header(a, &mut w)?;
    blocked(a, &mut w)?;
    diagram(a, &mut w)?;
    timeline(a, &mut w)?;
    tables(a, &mut w)?;
    w.write_all(b"<footer>Written by exflow. Self-contained: no network access. The JSON report (<code>--format json</code>) has every record; this page caps what it draws and says what it left out.</footer>\n")?;
    w.write_all(b"<script type=\"application/json\" id=\"exflow-data\">")?;
    w.write_all(island(&data(a)).as_bytes())?;
    w.write_all(b"</script>\n<script>")?;
    w.write_all(SCRIPT.as_bytes())?;
    w.write_all(b"</script>\n</body>\n</html>\n")?;
    w.flush()
}

/// Text for HTML content or a quoted attribute.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// JSON safe inside a `<script>` element: no `<`, `>` or `&` left to end
/// it or open a comment (they only occur inside strings, as escapes).
fn island(v: &Value) -> String {
    serde_json::to_string(v)
        .unwrap_or_else(|_| "{}".into())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn header(a: &Analysis, w: &mut impl Write) -> io::Result<()> {
    let first = a.inputs.iter().filter_map(|i| i.first_ts).min();
    let last = a.inputs.iter().filter_map(|i| i.last_ts).max();
    writeln!(w, "<header><h1>exflow report</h1><p class=\"meta\">")?;
    for i in &a.inputs {
        writeln!(w, "<span class=\"input\">{}</span>", esc(&i.path))?;
    }
    writeln!(
        w,
        "<br>{} packets, {} flows, {} findings, {} hand-offs{}</p></header>",
        a.stats.packets,
        a.flows.len(),
        a.correlated.findings.len(),
        a.correlated.handoffs.len(),
        match (first, last) {
            (Some(f), Some(l)) => format!(
                ", {} .. {}",
                esc(&rfc3339_micros(f)),
                esc(&rfc3339_micros(l))
            ),
            _ => String::new(),
        }
    )
}

/// The kind's class: the colour of its badge and of its edges.
fn kind_class(k: FindingKind) -> &'static str {
    match k {
        FindingKind::Blocked => "blocked",
        FindingKind::RefusedByHost => "refused",
        FindingKind::NotInPolicy => "notpolicy",
        FindingKind::NeverSeen
        | FindingKind::PortScan
        | FindingKind::Sweep
        | FindingKind::Flood => "info",
        _ => "later",
    }
}

/// What is blocked: the text headline, then a card per actionable finding.
fn blocked(a: &Analysis, w: &mut impl Write) -> io::Result<()> {
    let findings = &a.correlated.findings;
    writeln!(w, "<section id=\"blocked\"><h2>What is blocked</h2>")?;
    writeln!(w, "<pre class=\"headline\">")?;
    for l in headline::lines(findings, 110) {
        writeln!(w, "{}", esc(&l))?;
    }
    writeln!(w, "</pre>")?;
    let actionable: Vec<&Finding> = findings.iter().filter(|f| f.is_actionable()).collect();
    writeln!(w, "<div class=\"cards\">")?;
    for f in actionable.iter().take(MAX_CARDS) {
        card(f, w)?;
    }
    writeln!(w, "</div>")?;
    if actionable.len() > MAX_CARDS {
        writeln!(
            w,
            "<p class=\"left-out\">{} more findings to act on: see the findings table below (all of them are in <code>--format json</code>).</p>",
            actionable.len() - MAX_CARDS
        )?;
    }
    writeln!(w, "</section>")
}

fn card(f: &Finding, w: &mut impl Write) -> io::Result<()> {
    writeln!(
        w,
        "<article class=\"card {}\"><h3><span class=\"badge {}\">{}</span> {}/{} {} on {}</h3>",
        kind_class(f.kind),
        kind_class(f.kind),
        esc(f.kind.as_str()),
        proto_name(f.proto),
        f.port,
        esc(f.service),
        esc(&f.server.to_string())
    )?;
    writeln!(
        w,
        "<p class=\"clients\">from {}</p><p class=\"verdict\">{}</p>",
        esc(&clients_text(&f.clients)),
        esc(&f.verdict)
    )?;
    if let Some(fix) = &f.fix {
        writeln!(w, "<p class=\"fix\"><b>Fix:</b> {}</p>", esc(&fix.summary))?;
        for r in fix.nftables.iter().take(2) {
            writeln!(w, "<pre class=\"rule\">{}</pre>", esc(r))?;
        }
        if let Some(p) = fix.pin.first() {
            writeln!(
                w,
                "<p class=\"pin\">or pin it: <code>{}</code> value <code>{}</code> ({})</p>",
                esc(&p.key),
                esc(&p.value),
                esc(p.article)
            )?;
        }
        if let Some(h) = &fix.host_setting {
            writeln!(
                w,
                "<p class=\"pin\">on {}: <code>{}</code> value <code>{}</code> = {} ({})</p>",
                esc(&h.on),
                esc(&h.key),
                esc(h.value),
                esc(h.set_to),
                esc(h.article)
            )?;
        }
    }
    writeln!(w, "</article>")
}

fn clients_text(c: &[IpAddr]) -> String {
    let mut s: Vec<String> = c.iter().take(MAX_CLIENTS).map(IpAddr::to_string).collect();
    if c.len() > MAX_CLIENTS {
        s.push(format!("and {} more", c.len() - MAX_CLIENTS));
    }
    s.join(", ")
}

/// A verdict row's class: the colour of its edge.
fn status_class(v: &Verdict) -> &'static str {
    match v.status {
        Status::Working if v.verdict.as_str() == "working-not-in-policy" => "notpolicy",
        Status::Working => "working",
        Status::Blocked => "blocked",
        Status::RefusedByHost => "refused",
        _ => "unconfirmed",
    }
}

/// Worst first: what an edge between two nodes shows when its rows differ.
fn class_rank(c: &str) -> u8 {
    match c {
        "blocked" => 0,
        "refused" => 1,
        "notpolicy" => 2,
        "working" => 3,
        _ => 4,
    }
}

/// The `max` keys with the most load (ties by key), and how many were left.
fn top<K: Ord + Copy>(load: &BTreeMap<K, u64>, max: usize) -> (Vec<K>, usize) {
    let mut v: Vec<(K, u64)> = load.iter().map(|(k, n)| (*k, *n)).collect();
    v.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    let kept = v.iter().take(max).map(|(k, _)| *k).collect();
    (kept, v.len().saturating_sub(max))
}

/// What the diagram draws between a client group and a server.
#[derive(Default)]
struct Link {
    /// Per class (worst first), the ports and the attempts.
    classes: BTreeMap<(u8, &'static str), (Vec<String>, u64)>,
    /// Hand-offs from clients of the group to the server: (class, port).
    handoffs: Vec<(&'static str, u16)>,
}

/// Client groups → firewall → servers, from the verdict rows (the groups
/// and servers with the most attempts): one edge per (group, server, what
/// happened), labelled with its ports; the hand-offs as dashed edges
/// labelled `135→PORT`, coloured by their outcome.
fn diagram(a: &Analysis, w: &mut impl Write) -> io::Result<()> {
    let mut group_load: BTreeMap<&str, u64> = BTreeMap::new();
    let mut server_load: BTreeMap<IpAddr, u64> = BTreeMap::new();
    let mut group_of: BTreeMap<IpAddr, &str> = BTreeMap::new();
    for v in &a.verdicts {
        let n = (v.working + v.failed).max(1);
        *group_load.entry(&v.client_group).or_default() += n;
        *server_load.entry(v.server).or_default() += n;
        for c in &v.clients {
            group_of.entry(*c).or_insert(&v.client_group);
        }
    }
    let (mut groups, groups_left) = top(&group_load, MAX_GROUPS);
    let (mut servers, servers_left) = top(&server_load, MAX_SERVERS);
    groups.sort();
    servers.sort();
    let mut links: BTreeMap<(usize, usize), Link> = BTreeMap::new();
    let mut rows_left = 0usize;
    for v in &a.verdicts {
        let (Ok(g), Ok(s)) = (
            groups.binary_search(&&*v.client_group),
            servers.binary_search(&v.server),
        ) else {
            rows_left += 1;
            continue;
        };
        let class = status_class(v);
        let e = links
            .entry((g, s))
            .or_default()
            .classes
            .entry((class_rank(class), class))
            .or_default();
        let p = format!("{}/{} {}", proto_name(v.proto), v.port, v.service);
        if !e.0.contains(&p) {
            e.0.push(p);
        }
        e.1 += v.working + v.failed;
    }
    for h in &a.correlated.handoffs {
        let g = group_of
            .get(&h.client)
            .and_then(|g| groups.binary_search(g).ok());
        if let (Some(g), Ok(s)) = (g, servers.binary_search(&h.server)) {
            let l = links.entry((g, s)).or_default();
            // A sealed DCOM answer names no port that could be read (#22).
            let hk = (handoff_class(&h.outcome), h.port);
            if !l.handoffs.contains(&hk) {
                l.handoffs.push(hk);
            }
        }
    }

    const ROW: usize = 64;
    const TOP: usize = 36;
    let height = TOP + ROW * groups.len().max(servers.len()).max(1) + 12;
    let (gx, gw, fx, sx, sw) = (10usize, 220usize, 470usize, 900usize, 280usize);
    let width = sx + sw + 10;
    writeln!(
        w,
        "<section id=\"diagram\"><h2>Who talks to whom across the firewall</h2>\n<svg id=\"diagram-svg\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"client groups, firewall, servers\">"
    )?;
    writeln!(
        w,
        "<text x=\"{gx}\" y=\"20\" class=\"col\">client groups</text><text x=\"{fx}\" y=\"20\" class=\"col\" text-anchor=\"middle\">firewall</text><text x=\"{sx}\" y=\"20\" class=\"col\">servers</text>"
    )?;
    writeln!(
        w,
        "<rect x=\"{}\" y=\"{TOP}\" width=\"12\" height=\"{}\" class=\"firewall\"/>",
        fx - 6,
        height - TOP - 8
    )?;
    let mid = |i: usize| TOP + i * ROW + ROW / 2;
    // Labels stacked left of each server, in the order drawn.
    let mut labels: BTreeMap<usize, Vec<(String, &'static str)>> = BTreeMap::new();
    for ((g, s), l) in &links {
        let n = l.classes.len() + l.handoffs.len();
        let mut k = 0usize;
        let off = |k: usize| (k as f64 - (n as f64 - 1.0) / 2.0) * 5.0;
        for ((_, class), (ports, attempts)) in &l.classes {
            let (y1, y2) = (mid(*g) as f64 + off(k), mid(*s) as f64 + off(k));
            k += 1;
            writeln!(
                w,
                "<path class=\"edge {class}\" d=\"M{} {y1:.1} C{fx} {y1:.1} {fx} {y2:.1} {sx} {y2:.1}\"><title>{} → {}: {} ({} attempts)</title></path>",
                gx + gw,
                esc(groups[*g]),
                esc(&servers[*s].to_string()),
                esc(&ports.join(", ")),
                attempts
            )?;
            if *class == "blocked" {
                let ym = (y1 + y2) / 2.0;
                writeln!(
                    w,
                    "<text x=\"{fx}\" y=\"{:.1}\" class=\"cross\" text-anchor=\"middle\">✕</text>",
                    ym + 6.0
                )?;
            }
            let mut label = ports.iter().take(2).cloned().collect::<Vec<_>>().join(", ");
            if ports.len() > 2 {
                let _ = write!(label, " +{}", ports.len() - 2);
            }
            labels.entry(*s).or_default().push((label, class));
        }
        for (class, port) in &l.handoffs {
            let (y1, y2) = (mid(*g) as f64 + off(k), mid(*s) as f64 + off(k));
            k += 1;
            writeln!(
                w,
                "<path class=\"handoff {class}\" d=\"M{} {y1:.1} C{fx} {:.1} {fx} {:.1} {sx} {y2:.1}\"><title>{} → {}: endpoint mapper 135 → {port}</title></path>",
                gx + gw,
                y1 - 16.0,
                y2 - 16.0,
                esc(groups[*g]),
                esc(&servers[*s].to_string())
            )?;
            let to = if *port == 0 {
                "sealed".to_string()
            } else {
                port.to_string()
            };
            labels
                .entry(*s)
                .or_default()
                .push((format!("135→{to}"), class));
        }
    }
    for (s, ls) in &labels {
        const SHOWN: usize = 4;
        let y0 = mid(*s) as f64 - (ls.len().min(SHOWN) as f64 - 1.0) * 6.5;
        for (k, (text, class)) in ls.iter().take(SHOWN).enumerate() {
            writeln!(
                w,
                "<text x=\"{}\" y=\"{:.1}\" class=\"elabel {class}\" text-anchor=\"end\">{}</text>",
                sx - 6,
                y0 + k as f64 * 13.0 + 4.0,
                esc(text)
            )?;
        }
        if ls.len() > SHOWN {
            writeln!(
                w,
                "<text x=\"{}\" y=\"{}\" class=\"elabel\" text-anchor=\"end\">+{} more</text>",
                sx - 6,
                mid(*s) + ROW / 2 - 2,
                ls.len() - SHOWN
            )?;
        }
    }
    for (i, g) in groups.iter().enumerate() {
        let y = mid(i);
        writeln!(
            w,
            "<g class=\"node group\"><rect x=\"{gx}\" y=\"{}\" width=\"{gw}\" height=\"{}\" rx=\"6\"/><text x=\"{}\" y=\"{}\">{}</text></g>",
            y - ROW / 2 + 8,
            ROW - 16,
            gx + 8,
            y + 5,
            esc(g)
        )?;
    }
    for (i, s) in servers.iter().enumerate() {
        let y = mid(i);
        writeln!(
            w,
            "<g class=\"node server\"><rect x=\"{sx}\" y=\"{}\" width=\"{sw}\" height=\"{}\" rx=\"6\"/><text x=\"{}\" y=\"{}\">{}</text></g>",
            y - ROW / 2 + 8,
            ROW - 16,
            sx + 8,
            y + 5,
            esc(&s.to_string())
        )?;
    }
    writeln!(w, "</svg>")?;
    writeln!(
        w,
        "<p class=\"legend\"><span class=\"key working\">working</span> <span class=\"key blocked\">blocked</span> <span class=\"key refused\">refused by the host</span> <span class=\"key notpolicy\">working, not in the policy</span> <span class=\"key unconfirmed\">cannot tell</span> <span class=\"key handoff\">endpoint-mapper hand-off (135 → port), coloured by what followed</span></p>"
    )?;
    if groups_left + servers_left > 0 {
        writeln!(
            w,
            "<p class=\"left-out\">Left out of the picture: {groups_left} client groups, {servers_left} servers ({rows_left} verdict rows); the verdicts table and <code>--format json</code> have them.</p>"
        )?;
    }
    writeln!(w, "</section>")
}

fn handoff_class(o: &Outcome) -> &'static str {
    match o {
        Outcome::Followed { .. } | Outcome::ExistingConnection { .. } => "working",
        Outcome::NoAttempt
        | Outcome::SynUnanswered { .. }
        | Outcome::IcmpUnreachable { .. }
        | Outcome::UdpUnanswered => "blocked",
        Outcome::Reset { .. } => "refused",
        _ => "unconfirmed",
    }
}

fn outcome_text(o: &Outcome) -> &'static str {
    o.kind()
}

/// The failed attempts over time: one row per finding port, a point per
/// piece of evidence.
fn timeline(a: &Analysis, w: &mut impl Write) -> io::Result<()> {
    let rows: Vec<&Finding> = a
        .correlated
        .findings
        .iter()
        .filter(|f| f.is_actionable() && !f.evidence.is_empty())
        .collect();
    writeln!(
        w,
        "<section id=\"timeline\"><h2>Failed attempts over time</h2>"
    )?;
    let first = a.inputs.iter().filter_map(|i| i.first_ts).min();
    let last = a.inputs.iter().filter_map(|i| i.last_ts).max();
    let (Some(t0), Some(t1)) = (first, last) else {
        writeln!(w, "<p>No packets.</p></section>")?;
        return Ok(());
    };
    if rows.is_empty() {
        writeln!(w, "<p class=\"none\">No failed attempts.</p></section>")?;
        return Ok(());
    }
    let span = t1.saturating_sub(t0).max(1);
    const ROW: usize = 22;
    let (lx, plot) = (300usize, 860usize);
    let shown = rows.len().min(MAX_TIMELINE_ROWS);
    let height = 30 + ROW * shown + 20;
    writeln!(
        w,
        "<svg id=\"timeline-svg\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {height}\" width=\"{}\" height=\"{height}\">",
        lx + plot + 20,
        lx + plot + 20
    )?;
    let x = |ts: Ts| lx + ((ts.saturating_sub(t0) as f64 / span as f64) * plot as f64) as usize;
    writeln!(
        w,
        "<text x=\"{lx}\" y=\"16\" class=\"axis\">{}</text><text x=\"{}\" y=\"16\" class=\"axis\" text-anchor=\"end\">{}</text>",
        esc(&rfc3339_micros(t0)),
        lx + plot,
        esc(&rfc3339_micros(t1))
    )?;
    let mut points_left = 0usize;
    for (i, f) in rows.iter().take(shown).enumerate() {
        let y = 30 + i * ROW + ROW / 2;
        writeln!(
            w,
            "<text x=\"4\" y=\"{}\" class=\"tlabel\">{} {}/{} {} {}</text><line x1=\"{lx}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" class=\"track\"/>",
            y + 4,
            esc(f.kind.as_str()),
            proto_name(f.proto),
            f.port,
            esc(f.service),
            esc(&f.server.to_string()),
            lx + plot
        )?;
        let mut ts: Vec<Ts> = f.evidence.iter().map(Evidence::ts).collect();
        ts.sort_unstable();
        points_left += ts.len().saturating_sub(MAX_TIMELINE_POINTS);
        // Evenly over the list, so a long run of attempts keeps its shape.
        let step = ts.len().div_ceil(MAX_TIMELINE_POINTS).max(1);
        for t in ts.iter().step_by(step) {
            writeln!(
                w,
                "<circle cx=\"{}\" cy=\"{y}\" r=\"4\" class=\"point {}\"><title>{}</title></circle>",
                x(*t),
                kind_class(f.kind),
                esc(&rfc3339_micros(*t))
            )?;
        }
    }
    writeln!(w, "</svg>")?;
    if rows.len() > shown || points_left > 0 {
        writeln!(
            w,
            "<p class=\"left-out\">Left out: {} finding rows, {points_left} attempts (thinned evenly); the findings table and <code>--format json</code> have them.</p>",
            rows.len() - shown
        )?;
    }
    writeln!(w, "</section>")
}

fn tables(a: &Analysis, w: &mut impl Write) -> io::Result<()> {
    writeln!(
        w,
        "<section id=\"tables\"><h2>Findings, hand-offs, verdicts</h2>"
    )?;
    for (id, title, total) in [
        ("findings", "Findings", a.correlated.findings.len()),
        (
            "handoffs",
            "Endpoint-mapper hand-offs",
            a.correlated.handoffs.len(),
        ),
        ("verdicts", "Verdicts", a.verdicts.len()),
    ] {
        writeln!(
            w,
            "<div class=\"table-box\" id=\"{id}\"><h3>{title} <span class=\"count\">({total})</span></h3><input type=\"search\" class=\"filter\" placeholder=\"filter…\" aria-label=\"filter {id}\"><p class=\"shown\"></p><table id=\"{id}-table\"><thead></thead><tbody></tbody></table></div>"
        )?;
    }
    writeln!(w, "</section>")
}

/// A table for the script: its columns in order, its rows (at most
/// [`MAX_TABLE_ROWS`]) and how many the report has.
fn table(cols: &[&str], rows: Vec<Value>, total: usize) -> Value {
    json!({"cols": cols, "rows": rows, "total": total})
}

/// The tables' data: trimmed rows, at most [`MAX_TABLE_ROWS`] each (the
/// failed verdict rows first), with the totals.
fn data(a: &Analysis) -> Value {
    let findings: Vec<Value> = a
        .correlated
        .findings
        .iter()
        .take(MAX_TABLE_ROWS)
        .map(|f| {
            json!([
                f.kind.as_str(),
                f.server.to_string(),
                format!("{}/{}", proto_name(f.proto), f.port),
                f.service,
                clients_text(&f.clients),
                f.evidence.len(),
                f.confidence.as_str(),
                rfc3339_micros(f.first_ts),
                f.verdict,
                f.fix.as_ref().map_or("", |x| x.summary.as_str()),
            ])
        })
        .collect();
    let handoffs: Vec<Value> = a
        .correlated
        .handoffs
        .iter()
        .take(MAX_TABLE_ROWS)
        .map(|h| {
            json!([
                rfc3339_micros(h.ts),
                h.client.to_string(),
                h.mapper.to_string(),
                h.operation.as_str(),
                // A proxy's URL names a backend, not an interface (#24).
                match &h.proxy {
                    Some(p) => format!("backend {}", p.backend),
                    None => super::text::interface_name(&h.interface.uuid),
                },
                h.server.to_string(),
                format!("{}/{}", h.transport.as_str(), h.port),
                outcome_text(&h.outcome),
            ])
        })
        .collect();
    let mut order: Vec<&Verdict> = a.verdicts.iter().collect();
    // Failed rows first (stable: the report's order otherwise).
    order.sort_by_key(|v| class_rank(status_class(v)));
    let verdicts: Vec<Value> = order
        .into_iter()
        .take(MAX_TABLE_ROWS)
        .map(|v| {
            json!([
                &*v.client_group,
                v.server.to_string(),
                format!("{}/{}", proto_name(v.proto), v.port),
                v.service,
                v.verdict.as_str(),
                v.policy.as_str(),
                v.working,
                v.failed,
                clients_text(&v.clients),
            ])
        })
        .collect();
    json!({
        "findings": table(
            &["kind", "server", "port", "service", "clients", "evidence", "confidence", "first seen", "verdict", "fix"],
            findings,
            a.correlated.findings.len(),
        ),
        "handoffs": table(
            &["time", "client", "mapper", "operation", "interface", "server", "port", "outcome"],
            handoffs,
            a.correlated.handoffs.len(),
        ),
        "verdicts": table(
            &["client group", "server", "port", "service", "verdict", "policy", "working", "failed", "clients"],
            verdicts,
            a.verdicts.len(),
        ),
    })
}

const STYLE: &str = r#"
:root{--working:#2e7d32;--blocked:#c62828;--refused:#ef6c00;--notpolicy:#6a1b9a;--unconfirmed:#757575;--later:#ad1457;--info:#1565c0;--ink:#1b1f24;--muted:#5f6b7a;--line:#d7dde4;--bg:#f6f8fa}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:#fff}
header,section,footer{padding:14px 28px}header{background:var(--bg);border-bottom:1px solid var(--line)}h1{margin:0 0 4px;font-size:22px}h2{font-size:18px;margin:8px 0 10px}h3{font-size:15px;margin:0 0 6px}
.meta{color:var(--muted);margin:0}.input{font-family:ui-monospace,monospace;margin-right:10px}
pre{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;white-space:pre-wrap;margin:6px 0}.headline{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:10px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:12px}.card{border:1px solid var(--line);border-left:6px solid var(--unconfirmed);border-radius:6px;padding:10px 12px}
.card.blocked{border-left-color:var(--blocked)}.card.refused{border-left-color:var(--refused)}.card.notpolicy{border-left-color:var(--notpolicy)}.card.later{border-left-color:var(--later)}.card p{margin:4px 0}.card .clients{color:var(--muted)}
.rule{background:#0d1117;color:#e6edf3;padding:6px 8px;border-radius:4px;overflow-x:auto;white-space:pre}
.badge{display:inline-block;padding:1px 7px;border-radius:10px;color:#fff;font-size:12px;background:var(--unconfirmed);text-transform:uppercase}.badge.blocked{background:var(--blocked)}.badge.refused{background:var(--refused)}.badge.notpolicy{background:var(--notpolicy)}.badge.later{background:var(--later)}.badge.info{background:var(--info)}
svg{max-width:100%;height:auto;font-size:12px}.col{font-weight:600;fill:var(--muted)}.firewall{fill:#455a64}
.node rect{fill:#fff;stroke:#90a4ae;stroke-width:1.2}.node text{fill:var(--ink)}.node .sub{fill:var(--muted);font-size:11px}
.edge{fill:none;stroke-width:2.2;opacity:.85}.edge.working{stroke:var(--working)}.edge.blocked{stroke:var(--blocked);stroke-width:3}.edge.refused{stroke:var(--refused)}.edge.notpolicy{stroke:var(--notpolicy)}.edge.unconfirmed{stroke:var(--unconfirmed);stroke-dasharray:2 3}
.handoff{fill:none;stroke-width:1.6;stroke-dasharray:6 4}.handoff.working{stroke:var(--working)}.handoff.blocked{stroke:var(--blocked)}.handoff.refused{stroke:var(--refused)}.handoff.unconfirmed{stroke:var(--unconfirmed)}
.elabel{font-size:11px;paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}.elabel.blocked{fill:var(--blocked)}.elabel.working{fill:var(--working)}.elabel.refused{fill:var(--refused)}.elabel.notpolicy{fill:var(--notpolicy)}.elabel.unconfirmed{fill:var(--unconfirmed)}.cross{fill:var(--blocked);font-size:18px;font-weight:700}
.legend .key{display:inline-block;margin-right:12px;padding-left:18px;position:relative}.legend .key:before{content:"";position:absolute;left:0;top:8px;width:14px;height:3px;background:var(--unconfirmed)}
.key.working:before{background:var(--working)}.key.blocked:before{background:var(--blocked)}.key.refused:before{background:var(--refused)}.key.notpolicy:before{background:var(--notpolicy)}.key.handoff:before{background:repeating-linear-gradient(90deg,var(--ink) 0 4px,transparent 4px 7px)}
.track{stroke:var(--line)}.tlabel,.axis{font-size:11px;fill:var(--muted)}.point{fill:var(--unconfirmed)}.point.blocked{fill:var(--blocked)}.point.refused{fill:var(--refused)}.point.later{fill:var(--later)}.point.notpolicy{fill:var(--notpolicy)}
.left-out{color:var(--muted);font-style:italic}.table-box{margin:14px 0 22px}.count{color:var(--muted);font-weight:400}.filter{padding:5px 8px;width:320px;border:1px solid var(--line);border-radius:4px}.shown{color:var(--muted);margin:4px 0}
table{border-collapse:collapse;width:100%;font-size:12.5px}th,td{border-bottom:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}th{background:var(--bg);cursor:pointer;user-select:none;position:sticky;top:0}th.asc:after{content:" ▲"}th.desc:after{content:" ▼"}
td.s-blocked,td.s-blocked-policy-allows,td.s-blocked-policy-denies{color:var(--blocked);font-weight:600}td.s-working{color:var(--working)}td.s-refused-by-host{color:var(--refused)}td.s-working-not-in-policy{color:var(--notpolicy)}
footer{color:var(--muted);border-top:1px solid var(--line);font-size:12px}
"#;

/// Builds the tables from the JSON island: a header per column (click to
/// sort), a filter box (substring over the row's text), the shown and left
/// out counts. `data-ready` says it ran; `data-errors` counts script errors.
const SCRIPT: &str = r#"
(function(){
"use strict";
var errors=0;
window.addEventListener("error",function(){errors++;document.body.setAttribute("data-errors",String(errors));});
var data=JSON.parse(document.getElementById("exflow-data").textContent);
function cls(v){return "s-"+String(v).replace(/[^a-z0-9-]/gi,"");}
function build(id){
  var d=data[id],box=document.getElementById(id),table=document.getElementById(id+"-table");
  var rows=d.rows,cols=d.cols;
  var head=table.tHead,body=table.tBodies[0],shown=box.querySelector(".shown"),filter=box.querySelector(".filter");
  var sortCol=-1,asc=true,text=rows.map(function(r){return r.join(" ").toLowerCase();});
  var tr=document.createElement("tr");
  cols.forEach(function(c,i){var th=document.createElement("th");th.textContent=c;th.addEventListener("click",function(){asc=(sortCol===i)?!asc:true;sortCol=i;render();});tr.appendChild(th);});
  head.appendChild(tr);
  function render(){
    var q=filter.value.toLowerCase(),idx=[];
    for(var i=0;i<rows.length;i++){if(!q||text[i].indexOf(q)>=0)idx.push(i);}
    if(sortCol>=0){var c=sortCol;idx.sort(function(a,b){var x=rows[a][c],y=rows[b][c];var r=(typeof x==="number"&&typeof y==="number")?x-y:String(x).localeCompare(String(y));return (asc?r:-r)||a-b;});}
    Array.prototype.forEach.call(head.rows[0].cells,function(th,i){th.className=(i===sortCol)?(asc?"asc":"desc"):"";});
    var frag=document.createDocumentFragment();
    idx.forEach(function(i){var r=rows[i],tr=document.createElement("tr");cols.forEach(function(c,j){var td=document.createElement("td");td.textContent=r[j];if(c==="verdict"&&id==="verdicts"||c==="kind")td.className=cls(r[j]);tr.appendChild(td);});frag.appendChild(tr);});
    body.textContent="";body.appendChild(frag);
    var left=d.total-rows.length;
    shown.textContent="showing "+idx.length+" of "+rows.length+(left>0?" ("+left+" more left out of this page: see --format json)":"");
  }
  filter.addEventListener("input",render);
  render();
}
["findings","handoffs","verdicts"].forEach(build);
document.body.setAttribute("data-ready","1");
})();
"#;
