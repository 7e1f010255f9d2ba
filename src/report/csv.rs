//! CSV (RFC 4180): one table of the report — findings, verdicts or flows
//! (`--csv`) — for spreadsheets and change tickets. A header row, then one
//! row per record in the report's order; several values in one cell (the
//! clients) are separated by spaces; times are RFC 3339 UTC.

use std::io::{self, Write};

use super::proto_name;
use crate::analysis::Analysis;
use crate::time::rfc3339_micros;

/// Which table a CSV report holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CsvTable {
    /// One row per finding (what to act on, with the fix's summary).
    #[default]
    Findings,
    /// One row per verdict (client group, server, service, port).
    Verdicts,
    /// One row per flow.
    Flows,
}

/// One CSV cell: quoted when it holds a comma, a quote or a line break
/// (quotes doubled), as RFC 4180 says.
fn cell(w: &mut impl Write, s: &str) -> io::Result<()> {
    if s.contains([',', '"', '\n', '\r']) {
        write!(w, "\"{}\"", s.replace('"', "\"\""))
    } else {
        w.write_all(s.as_bytes())
    }
}

/// One row of cells, CRLF-terminated as RFC 4180 asks.
fn row(w: &mut impl Write, cells: &[&str]) -> io::Result<()> {
    for (k, c) in cells.iter().enumerate() {
        if k > 0 {
            w.write_all(b",")?;
        }
        cell(w, c)?;
    }
    w.write_all(b"\r\n")
}

fn joined(ips: &[std::net::IpAddr]) -> String {
    ips.iter()
        .map(|ip| ip.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes `table` of `a` as CSV.
pub fn write_csv(a: &Analysis, table: CsvTable, w: &mut dyn Write) -> io::Result<()> {
    let mut w = io::BufWriter::with_capacity(1 << 18, w);
    match table {
        CsvTable::Findings => findings(a, &mut w)?,
        CsvTable::Verdicts => verdicts(a, &mut w)?,
        CsvTable::Flows => flows(a, &mut w)?,
    }
    w.flush()
}

fn findings(a: &Analysis, w: &mut impl Write) -> io::Result<()> {
    row(
        w,
        &[
            "first_ts",
            "kind",
            "proto",
            "server",
            "port",
            "service",
            "clients",
            "attempts",
            "confidence",
            "policy",
            "verdict",
            "fix",
        ],
    )?;
    for f in &a.correlated.findings {
        row(
            w,
            &[
                &rfc3339_micros(f.first_ts),
                f.kind.as_str(),
                proto_name(f.proto),
                &f.server.to_string(),
                &f.port.to_string(),
                f.service,
                &joined(&f.clients),
                &f.evidence.len().to_string(),
                f.confidence.as_str(),
                f.policy.as_str(),
                &f.verdict,
                f.fix.as_ref().map_or("", |x| x.summary.as_str()),
            ],
        )?;
    }
    Ok(())
}

fn verdicts(a: &Analysis, w: &mut impl Write) -> io::Result<()> {
    row(
        w,
        &[
            "client_group",
            "server",
            "service",
            "proto",
            "port",
            "verdict",
            "status",
            "policy",
            "clients",
            "working",
            "failed",
            "first_ts",
            "last_ts",
        ],
    )?;
    for v in &a.verdicts {
        row(
            w,
            &[
                &v.client_group,
                &v.server.to_string(),
                v.service,
                proto_name(v.proto),
                &v.port.to_string(),
                v.verdict.as_str(),
                v.status.as_str(),
                v.policy.as_str(),
                &joined(&v.clients),
                &v.working.to_string(),
                &v.failed.to_string(),
                &rfc3339_micros(v.first_ts),
                &rfc3339_micros(v.last_ts),
            ],
        )?;
    }
    Ok(())
}

fn flows(a: &Analysis, w: &mut impl Write) -> io::Result<()> {
    row(
        w,
        &[
            "first_ts",
            "last_ts",
            "proto",
            "client",
            "client_port",
            "server",
            "server_port",
            "service",
            "state",
            "history",
            "packets_client",
            "packets_server",
            "bytes_client",
            "bytes_server",
            "outcome",
        ],
    )?;
    let outcomes = a.flow_outcomes();
    for (f, o) in a.flows.iter().zip(outcomes.iter()) {
        let outcome = match o {
            Some(true) => "worked",
            Some(false) => "failed",
            None => "",
        };
        row(
            w,
            &[
                &rfc3339_micros(f.first_ts),
                &rfc3339_micros(f.last_ts),
                proto_name(f.proto),
                &f.client.to_string(),
                &f.client_port.to_string(),
                &f.server.to_string(),
                &f.server_port.to_string(),
                a.correlated.label(f).service,
                f.state.as_str(),
                f.history.as_str(),
                &f.packets[0].to_string(),
                &f.packets[1].to_string(),
                &f.bytes[0].to_string(),
                &f.bytes[1].to_string(),
                outcome,
            ],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_only_when_they_must_be() {
        let mut out = Vec::new();
        row(&mut out, &["plain", "a, b", "say \"hi\"", "two\nlines", ""]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "plain,\"a, b\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n"
        );
    }
}
