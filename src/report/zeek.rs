//! A Zeek `conn.log` (TSV with Zeek's header lines), so Zeek tooling
//! (`zeek-cut`, log shippers that parse Zeek logs) reads exflow's flows.
//! The fields are Zeek's own, in its order; `conn_state` and `history`
//! follow Zeek's definitions (see `flow::tcp`). What exflow does not know as
//! Zeek does is written unset (`-`): the IP-level byte counts, missed bytes
//! and the local/remote flags. `uid` is derived from the flow (not random),
//! so the log is the same on every run; `#open`/`#close` carry the
//! capture's first and last packet times, not the wall clock, for the same
//! reason.

use std::io::{self, Write};

use super::proto_name;
use crate::analysis::Analysis;
use crate::flow::FlowRecord;
use crate::Ts;

const FIELDS: [(&str, &str); 21] = [
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
    ("proto", "enum"),
    ("service", "string"),
    ("duration", "interval"),
    ("orig_bytes", "count"),
    ("resp_bytes", "count"),
    ("conn_state", "string"),
    ("local_orig", "bool"),
    ("local_resp", "bool"),
    ("missed_bytes", "count"),
    ("history", "string"),
    ("orig_pkts", "count"),
    ("orig_ip_bytes", "count"),
    ("resp_pkts", "count"),
    ("resp_ip_bytes", "count"),
    ("tunnel_parents", "set[string]"),
];

/// Zeek's time format: seconds since the epoch, six decimals.
fn secs(ts: Ts) -> String {
    format!("{}.{:06}", ts / 1_000_000_000, (ts % 1_000_000_000) / 1_000)
}

/// Zeek's `#open`/`#close` format, UTC.
fn stamp(ts: Ts) -> String {
    let t = crate::time::rfc3339_micros(ts);
    // 2026-11-22T00:01:37.871670Z -> 2026-11-22-00-01-37
    t.get(..19).unwrap_or("").replace(['T', ':'], "-")
}

/// A stable connection id in Zeek's shape ("C" and 17 base-62 characters)
/// from the flow's identity.
fn uid(f: &FlowRecord) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    // FNV-1a over the 5-tuple and first timestamp.
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    let key = format!(
        "{}|{}|{}|{}|{}|{}",
        f.proto, f.client, f.client_port, f.server, f.server_port, f.first_ts
    );
    for b in key.bytes() {
        h = (h ^ u128::from(b)).wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    let mut s = String::from("C");
    for _ in 0..17 {
        s.push(DIGITS[(h % 62) as usize] as char);
        h /= 62;
    }
    s
}

/// Writes the flows of `a` as a Zeek conn.log.
pub fn write_zeek(a: &Analysis, w: &mut dyn Write) -> io::Result<()> {
    let mut w = io::BufWriter::with_capacity(1 << 18, w);
    let first = a.flows.iter().map(|f| f.first_ts).min().unwrap_or(0);
    let last = a.flows.iter().map(|f| f.last_ts).max().unwrap_or(0);
    writeln!(w, "#separator \\x09")?;
    writeln!(w, "#set_separator\t,")?;
    writeln!(w, "#empty_field\t(empty)")?;
    writeln!(w, "#unset_field\t-")?;
    writeln!(w, "#path\tconn")?;
    writeln!(w, "#open\t{}", stamp(first))?;
    let names: Vec<&str> = FIELDS.iter().map(|f| f.0).collect();
    let types: Vec<&str> = FIELDS.iter().map(|f| f.1).collect();
    writeln!(w, "#fields\t{}", names.join("\t"))?;
    writeln!(w, "#types\t{}", types.join("\t"))?;
    for f in &a.flows {
        let service = a.correlated.label(f).service;
        let fields = [
            secs(f.first_ts),
            uid(f),
            f.client.to_string(),
            f.client_port.to_string(),
            f.server.to_string(),
            f.server_port.to_string(),
            proto_name(f.proto).to_string(),
            if service == "unknown" {
                "-".into()
            } else {
                service.to_string()
            },
            secs(f.last_ts.saturating_sub(f.first_ts)),
            f.payload_bytes[0].to_string(),
            f.payload_bytes[1].to_string(),
            f.state.as_str().to_string(),
            "-".into(),
            "-".into(),
            "-".into(),
            f.history.as_str().to_string(),
            f.packets[0].to_string(),
            "-".into(),
            f.packets[1].to_string(),
            "-".into(),
            "(empty)".into(),
        ];
        writeln!(w, "{}", fields.join("\t"))?;
    }
    writeln!(w, "#close\t{}", stamp(last))?;
    w.flush()
}
