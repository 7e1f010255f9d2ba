//! The report's bulk records, `flows[]` (one per flow) and `verdicts[]`
//! (with every client address), written by hand into a byte buffer rather
//! than through serde's per-field machinery or `Value` maps. The bytes are
//! exactly serde_json's compact output (strings escaped by serde_json
//! itself whenever they hold a byte it escapes, floats formatted by it,
//! `Value` objects' keys in sorted order).

use std::io;
use std::net::IpAddr;

use super::proto_name;
use crate::correlate::{FlowLabel, HandoffRef};
use crate::event::InterfaceId;
use crate::flow::{FlowEnd, FlowRecord, IcmpEvidence};
use crate::proto::rpc_conn::{BoundInterface, RpcSummary};
use crate::time::Rfc3339;
use crate::verdict::Verdict;

/// Compact JSON appended to a byte buffer. Commas are placed by looking at
/// the previous byte: none right after an opening `{` or `[`.
pub(super) struct JsonBuf<'a>(pub &'a mut Vec<u8>);

impl JsonBuf<'_> {
    #[inline(always)]
    fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }

    /// A comma, unless this is the first member of an object or array.
    #[inline(always)]
    fn separate(&mut self) {
        if !matches!(self.0.last(), Some(b'{' | b'[')) {
            self.0.push(b',');
        }
    }

    /// `"name":` (names are plain ASCII literals). Inlined so each copy
    /// has a constant length.
    #[inline(always)]
    fn key(&mut self, name: &str) {
        self.separate();
        self.0.reserve(name.len() + 3);
        self.0.push(b'"');
        self.raw(name.as_bytes());
        self.raw(b"\":");
    }

    /// `,"name":` for a member that is known to follow another (no look at
    /// the previous byte).
    #[inline(always)]
    fn more(&mut self, name: &str) {
        debug_assert!(!matches!(self.0.last(), Some(b'{' | b'[') | None));
        self.0.reserve(name.len() + 4);
        self.raw(b",\"");
        self.raw(name.as_bytes());
        self.raw(b"\":");
    }

    /// One of this module's own fixed names (protocol, state, end reason):
    /// plain ASCII that never needs escaping.
    #[inline(always)]
    fn name(&mut self, s: &'static str) {
        debug_assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        self.0.push(b'"');
        self.raw(s.as_bytes());
        self.0.push(b'"');
    }

    #[inline]
    fn open(&mut self, b: u8) {
        self.0.push(b);
    }

    #[inline]
    fn close(&mut self, b: u8) {
        self.0.push(b);
    }

    /// `[...]` of `items`, each written by `element`.
    fn array<T>(
        &mut self,
        items: impl IntoIterator<Item = T>,
        mut element: impl FnMut(&mut Self, T) -> io::Result<()>,
    ) -> io::Result<()> {
        self.open(b'[');
        for item in items {
            self.separate();
            element(self, item)?;
        }
        self.close(b']');
        Ok(())
    }

    #[inline]
    fn null(&mut self) {
        self.raw(b"null");
    }

    #[inline]
    fn bool(&mut self, v: bool) {
        self.raw(if v { b"true" } else { b"false" });
    }

    #[inline]
    fn uint(&mut self, v: impl Into<u64>) {
        self.raw(itoa::Buffer::new().format(v.into()).as_bytes());
    }

    #[inline]
    fn opt_uint(&mut self, v: Option<impl Into<u64>>) {
        match v {
            Some(v) => self.uint(v),
            None => self.null(),
        }
    }

    #[inline]
    fn pair(&mut self, v: [u64; 2]) {
        self.open(b'[');
        self.uint(v[0]);
        self.0.push(b',');
        self.uint(v[1]);
        self.close(b']');
    }

    #[inline]
    fn opt_pair(&mut self, v: Option<[u64; 2]>) {
        match v {
            Some(v) => self.pair(v),
            None => self.null(),
        }
    }

    #[inline]
    fn f64(&mut self, v: f64) -> io::Result<()> {
        Ok(serde_json::to_writer(&mut *self.0, &v)?)
    }

    /// A string as serde_json writes it: bytes it would escape go through
    /// serde_json; the rest (nearly always) are copied between quotes.
    #[inline]
    fn str(&mut self, s: &str) -> io::Result<()> {
        if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
            self.0.push(b'"');
            self.raw(s.as_bytes());
            self.0.push(b'"');
            Ok(())
        } else {
            Ok(serde_json::to_writer(&mut *self.0, s)?)
        }
    }

    #[inline]
    fn opt_str(&mut self, s: Option<&str>) -> io::Result<()> {
        match s {
            Some(s) => self.str(s),
            None => {
                self.null();
                Ok(())
            }
        }
    }

    /// An address as its `Display` (digits, hex, `.` and `:` only).
    #[inline]
    fn ip(&mut self, ip: &IpAddr) -> io::Result<()> {
        self.0.push(b'"');
        match ip {
            IpAddr::V4(a) => {
                for (k, o) in a.octets().into_iter().enumerate() {
                    if k > 0 {
                        self.0.push(b'.');
                    }
                    self.uint(o);
                }
            }
            IpAddr::V6(a) => io::Write::write_fmt(&mut *self.0, format_args!("{a}"))?,
        }
        self.0.push(b'"');
        Ok(())
    }

    #[inline]
    fn ts(&mut self, ts: crate::Ts) {
        self.0.push(b'"');
        self.raw(&Rfc3339(ts).bytes_cached());
        self.0.push(b'"');
    }

    /// A timestamp, or null for 0 (never).
    #[inline]
    fn ts_if_set(&mut self, ts: crate::Ts) {
        if ts > 0 {
            self.ts(ts);
        } else {
            self.null();
        }
    }
}

/// The extras of a flow line beyond the flow and its label.
#[derive(Clone, Copy, Default)]
pub(super) struct LineExtras<'a> {
    /// `"flow"` in NDJSON, absent in the JSON report.
    pub record: Option<&'static str>,
    /// Two-tap analyses: packets [orig, resp] seen on each tap.
    pub taps: Option<&'a [Option<[u64; 2]>; 2]>,
}

/// Appends the flow's JSON object (no separator after it).
pub(super) fn write_flow(
    out: &mut Vec<u8>,
    f: &FlowRecord,
    label: &FlowLabel,
    extras: LineExtras<'_>,
) -> io::Result<()> {
    let mut j = JsonBuf(out);
    j.open(b'{');
    if let Some(r) = extras.record {
        j.key("record");
        j.str(r)?;
    }
    j.key("proto");
    j.name(proto_name(f.proto));
    j.more("client");
    j.ip(&f.client)?;
    j.more("client_port");
    j.uint(f.client_port);
    j.more("server");
    j.ip(&f.server)?;
    j.more("server_port");
    j.uint(f.server_port);
    j.more("first_ts");
    j.ts(f.first_ts);
    j.more("last_ts");
    j.ts(f.last_ts);
    write_label(&mut j, label)?;
    if let Some(app) = f.app.as_deref() {
        j.more("app");
        j.open(b'{');
        j.key("detail");
        j.opt_str(app.detail.as_deref())?;
        j.more("rfc1006");
        match &app.rfc1006 {
            Some(r) => serde_json::to_writer(&mut *j.0, &serde_json::to_value(r)?)?,
            None => j.null(),
        }
        j.more("service");
        j.str(app.service)?;
        j.close(b'}');
    }
    j.more("state");
    j.name(f.state.as_str());
    j.more("history");
    j.str(f.history.as_str())?;
    j.more("syn_retries");
    j.uint(f.syn_retries);
    j.more("syn_gaps_ms");
    j.array(f.syn_gaps_us.iter(), |j, g| j.f64(*g as f64 / 1000.0))?;
    j.more("packets");
    j.pair(f.packets);
    j.more("bytes");
    j.pair(f.bytes);
    j.more("payload_bytes");
    j.pair(f.payload_bytes);
    j.more("responder_ttl");
    j.opt_uint(f.responder_ttl);
    j.more("responder_ip_id");
    j.opt_uint(f.responder_ip_id);
    j.more("icmp_errors");
    j.array(f.icmp.iter(), write_icmp)?;
    j.more("icmp_error_count");
    j.uint(f.icmp_count);
    j.more("rpc");
    match f.rpc.as_deref() {
        Some(r) => write_rpc(&mut j, r)?,
        None => j.null(),
    }
    j.more("end");
    j.name(end_name(f.end));
    if let Some(seen) = extras.taps {
        j.more("taps");
        j.open(b'{');
        j.key("inside");
        j.opt_pair(seen[0]);
        j.more("outside");
        j.opt_pair(seen[1]);
        j.close(b'}');
    }
    j.close(b'}');
    Ok(())
}

/// A verdict row (keys sorted, as a `Value` object had them; `record`,
/// for NDJSON, in its sorted place).
pub(super) fn write_verdict(
    out: &mut Vec<u8>,
    v: &Verdict,
    record: Option<&'static str>,
) -> io::Result<()> {
    let mut j = JsonBuf(out);
    j.open(b'{');
    j.key("client_group");
    j.str(&v.client_group)?;
    j.key("clients");
    j.array(&v.clients, |j, c| j.ip(c))?;
    j.key("failed");
    j.uint(v.failed);
    j.key("first_ts");
    j.ts_if_set(v.first_ts);
    j.key("last_ts");
    j.ts_if_set(v.last_ts);
    j.key("policy");
    j.str(v.policy)?;
    j.key("port");
    j.uint(v.port);
    j.key("proto");
    j.str(proto_name(v.proto))?;
    if let Some(r) = record {
        j.key("record");
        j.str(r)?;
    }
    j.key("server");
    j.ip(&v.server)?;
    j.key("service");
    j.str(v.service)?;
    j.key("status");
    j.str(v.status)?;
    j.key("verdict");
    j.str(v.verdict)?;
    j.key("working");
    j.uint(v.working);
    j.close(b'}');
    Ok(())
}

/// `service` through `handoff`.
fn write_label(j: &mut JsonBuf<'_>, label: &FlowLabel) -> io::Result<()> {
    j.more("service");
    j.str(label.service)?;
    j.more("identified_by");
    j.str(label.identified_by)?;
    if let Some(p) = label.port_mismatch {
        j.more("port_service_mismatch");
        j.str(p)?;
    }
    j.more("interface");
    match &label.interface {
        Some(i) => {
            j.open(b'{');
            write_interface_members(j, i)?;
            j.close(b'}');
        }
        None => j.null(),
    }
    j.more("handoff");
    match &label.handoff {
        Some(h) => write_handoff(j, h)?,
        None => j.null(),
    }
    Ok(())
}

/// `"name", "uuid", "version"` of an interface (keys in sorted order).
fn write_interface_members(j: &mut JsonBuf<'_>, i: &InterfaceId) -> io::Result<()> {
    j.key("name");
    j.opt_str(super::json::interface_name(i))?;
    write_uuid_version(j, i)
}

/// `"uuid", "version": "major.minor"` of an interface.
fn write_uuid_version(j: &mut JsonBuf<'_>, i: &InterfaceId) -> io::Result<()> {
    j.key("uuid");
    j.0.push(b'"');
    io::Write::write_fmt(&mut *j.0, format_args!("{}", i.uuid))?;
    j.0.push(b'"');
    j.key("version");
    j.0.push(b'"');
    j.uint(i.major);
    j.0.push(b'.');
    j.uint(i.minor);
    j.0.push(b'"');
    Ok(())
}

fn write_handoff(j: &mut JsonBuf<'_>, h: &HandoffRef) -> io::Result<()> {
    j.open(b'{');
    j.key("client");
    j.ip(&h.client)?;
    j.key("latency_ms");
    j.f64(super::json::ms(h.latency))?;
    j.key("other_client");
    j.bool(h.other_client);
    j.key("ts");
    j.ts(h.ts);
    j.close(b'}');
    Ok(())
}

fn write_icmp(j: &mut JsonBuf<'_>, e: &IcmpEvidence) -> io::Result<()> {
    j.open(b'{');
    j.key("ts");
    j.ts(e.ts);
    j.key("sender");
    j.ip(&e.sender)?;
    j.key("icmp_version");
    j.uint(if e.v6 { 6u8 } else { 4 });
    j.key("type");
    j.uint(e.icmp_type);
    j.key("code");
    j.uint(e.code);
    j.key("quotes_originator");
    j.bool(e.quotes_originator);
    j.close(b'}');
    Ok(())
}

/// A flow's `rpc` (keys in sorted order).
fn write_rpc(j: &mut JsonBuf<'_>, r: &RpcSummary) -> io::Result<()> {
    j.open(b'{');
    j.key("auth_level");
    j.opt_uint(r.auth_level);
    j.key("auth_type");
    j.opt_uint(r.auth_type);
    j.key("binds_rejected");
    j.uint(r.binds_rejected);
    j.key("bytes_skipped");
    j.uint(r.bytes_skipped);
    j.key("encrypted");
    j.bool(r.encrypted);
    j.key("epm_answers");
    j.uint(r.epm_answers);
    j.key("faults");
    j.uint(r.faults);
    j.key("interfaces");
    j.array(&r.interfaces, write_bound)?;
    j.key("malformed_pdus");
    j.uint(r.malformed);
    j.key("pdus");
    j.uint(r.pdus);
    j.key("registrations");
    j.uint(r.registrations);
    j.key("requests");
    j.uint(r.requests);
    j.key("resyncs");
    j.uint(r.resyncs);
    j.key("stream_gaps");
    j.uint(r.stream_gaps);
    j.close(b'}');
    Ok(())
}

/// An interface bound on a flow (`rpc.interfaces[]`, keys in sorted order).
fn write_bound(j: &mut JsonBuf<'_>, b: &BoundInterface) -> io::Result<()> {
    j.open(b'{');
    j.key("accepted");
    j.bool(b.accepted);
    // `name` sorts before `transfer_syntax`, `uuid` and `version` after it.
    j.key("name");
    j.opt_str(super::json::interface_name(&b.interface))?;
    j.key("transfer_syntax");
    j.name(if b.ndr64 { "ndr64" } else { "ndr" });
    write_uuid_version(j, &b.interface)?;
    j.close(b'}');
    Ok(())
}

fn end_name(e: FlowEnd) -> &'static str {
    match e {
        FlowEnd::EndOfCapture => "end-of-capture",
        FlowEnd::IdleTimeout => "idle-timeout",
        FlowEnd::Evicted => "evicted",
        FlowEnd::Reused => "reused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::rfc3339_micros;
    use serde_json::json;

    fn written(f: impl FnOnce(&mut JsonBuf<'_>) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        f(&mut JsonBuf(&mut out)).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_serde_json_does() {
        for s in [
            "plain.example.com",
            "quote\"back\\slash",
            "ctl\u{1}\u{1f}\n\t\r\u{8}\u{c}",
            "del\u{7f} é 日本",
            "",
        ] {
            assert_eq!(
                written(|j| j.str(s)),
                serde_json::to_string(s).unwrap(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn addresses_and_numbers_match_serde_json() {
        for ip in [
            "0.0.0.0",
            "192.0.2.255",
            "2001:db8::1",
            "::ffff:192.0.2.1",
            "::",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(written(|j| j.ip(&ip)), serde_json::to_string(&ip).unwrap());
        }
        for v in [0.0, 0.001, 1.5, 3.0, 1e21, 123456.789] {
            assert_eq!(written(|j| j.f64(v)), serde_json::to_string(&v).unwrap());
        }
        assert_eq!(
            written(|j| {
                j.uint(u64::MAX);
                Ok(())
            }),
            u64::MAX.to_string()
        );
    }

    /// The verdict row as the report built it before (a `Value` object).
    fn verdict_value(v: &Verdict) -> serde_json::Value {
        json!({
            "client_group": v.client_group,
            "server": v.server.to_string(),
            "service": v.service,
            "proto": proto_name(v.proto),
            "port": v.port,
            "status": v.status,
            "policy": v.policy,
            "verdict": v.verdict,
            "clients": v.clients.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "working": v.working,
            "failed": v.failed,
            "first_ts": (v.first_ts > 0).then(|| rfc3339_micros(v.first_ts)),
            "last_ts": (v.last_ts > 0).then(|| rfc3339_micros(v.last_ts)),
        })
    }

    #[test]
    fn verdict_rows_match_the_value_objects() {
        let seen = Verdict {
            client_group: "clients \"east\"\\\u{1}".into(),
            server: "2001:db8::5".parse().unwrap(),
            service: "exchange-store",
            proto: crate::packet::PROTO_TCP,
            port: 6001,
            status: "working",
            policy: "allowed",
            verdict: "working",
            clients: vec!["192.0.2.1".parse().unwrap(), "::1".parse().unwrap()],
            working: 3,
            failed: 1,
            first_ts: 1_795_304_467_123_456_789,
            last_ts: 1_795_304_468_000_000_000,
        };
        let never = Verdict {
            clients: Vec::new(),
            first_ts: 0,
            last_ts: 0,
            proto: crate::packet::PROTO_UDP,
            ..seen.clone()
        };
        for v in [seen, never] {
            let mut out = Vec::new();
            write_verdict(&mut out, &v, None).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                verdict_value(&v).to_string()
            );
            let mut out = Vec::new();
            write_verdict(&mut out, &v, Some("verdict")).unwrap();
            let mut value = verdict_value(&v);
            value["record"] = "verdict".into();
            assert_eq!(String::from_utf8(out).unwrap(), value.to_string());
        }
    }
}
