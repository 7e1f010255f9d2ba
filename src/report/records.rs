//! The report's bulk records, `flows[]` (one per flow) and `verdicts[]`
//! (with every client address), written by hand into a byte buffer rather
//! than through serde's per-field machinery or `Value` maps. The bytes are
//! exactly serde_json's compact output (strings escaped by serde_json
//! itself whenever they hold a byte it escapes, floats formatted by it,
//! `Value` objects' keys in sorted order): the bytes serde_json writes of
//! the contract's records [`FlowLine`](super::schema::FlowLine) and
//! [`VerdictRow`](super::schema::VerdictRow), as the property test in
//! `records/byte_equal.rs` checks.
//!
//! Why by hand: `flows[]` is most of the report (626 k records on the
//! `mixed` bench capture). Writing them and the verdict rows by hand, with
//! hashed label lookups and the verdicts on both cores, took the time after
//! the sort on `mixed` from 1.42 to 0.72 s (BENCHMARKS.md, Session 5,
//! "post-read phase"; −21 % instructions on a 1 M-packet slice).

use std::io;
use std::net::IpAddr;

use super::proto_name;
use crate::correlate::{FlowLabel, HandoffRef};
use crate::event::InterfaceId;
use crate::flow::rpc_conn::{BoundInterface, RpcSummary};
use crate::flow::{FlowEnd, FlowRecord, IcmpEvidence};
use crate::time::Rfc3339;
use crate::verdict::Verdict;

/// `"name":`, with a comma before it unless it opens its object: one
/// constant-length copy (the name is a literal).
macro_rules! key {
    ($j:expr, $name:literal) => {
        $j.key_literal(concat!("\"", $name, "\":").as_bytes())
    };
}

/// `,"name":` for a member that follows another.
macro_rules! more {
    ($j:expr, $name:literal) => {
        $j.more_literal(concat!(",\"", $name, "\":").as_bytes())
    };
}

/// "00" to "99", two bytes each.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Digits in the decimal form of `v`.
#[inline(always)]
fn decimal_len(v: u64) -> usize {
    v.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// Writes the `n` = [`decimal_len`]`(v)` digits of `v` at `dst[at..at + n]`.
#[inline(always)]
fn write_decimal<const N: usize>(dst: &mut [u8; N], at: usize, n: usize, mut v: u64) {
    let mut end = at + n;
    while v >= 100 {
        let r = (v % 100) as usize * 2;
        v /= 100;
        end -= 2;
        dst[end] = DIGIT_PAIRS[r];
        dst[end + 1] = DIGIT_PAIRS[r + 1];
    }
    if v >= 10 {
        let r = v as usize * 2;
        dst[end - 2] = DIGIT_PAIRS[r];
        dst[end - 1] = DIGIT_PAIRS[r + 1];
    } else {
        dst[end - 1] = b'0' + v as u8;
    }
}

/// Appends the first `n` bytes of `buf`, copying all `N` of them (one
/// fixed-size move instead of a `memmove` call for a variable length;
/// measured) into spare capacity and keeping `n`.
#[inline(always)]
fn push_prefix<const N: usize>(out: &mut Vec<u8>, buf: &[u8; N], n: usize) {
    assert!(n <= N);
    out.reserve(N);
    let len = out.len();
    // SAFETY: `reserve(N)` leaves at least `N` bytes of spare capacity
    // after `len`, which the copy fills (from a `[u8; N]` that cannot
    // overlap the vector); the new length `len + n <= len + N` only
    // covers written bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(buf.as_ptr(), out.as_mut_ptr().add(len), N);
        out.set_len(len + n);
    }
}

/// Appends `v` in decimal, as itoa and serde_json write it.
#[inline(always)]
fn push_decimal(out: &mut Vec<u8>, v: u64) {
    let n = decimal_len(v);
    let mut buf = [0u8; 20];
    write_decimal(&mut buf, 0, n, v);
    push_prefix(out, &buf, n);
}

/// Each octet's decimal digits (padded to 4 bytes) and their count.
const OCTET_DIGITS: [([u8; 4], u8); 256] = {
    let mut t = [([0u8; 4], 0u8); 256];
    let mut o = 0;
    while o < 256 {
        t[o] = if o >= 100 {
            (
                [
                    b'0' + (o / 100) as u8,
                    b'0' + (o / 10 % 10) as u8,
                    b'0' + (o % 10) as u8,
                    0,
                ],
                3,
            )
        } else if o >= 10 {
            ([b'0' + (o / 10) as u8, b'0' + (o % 10) as u8, 0, 0], 2)
        } else {
            ([b'0' + o as u8, 0, 0, 0], 1)
        };
        o += 1;
    }
    t
};

/// Appends the dotted quad `a.b.c.d` (as `Ipv4Addr`'s `Display`): each
/// octet is a 4-byte copy from [`OCTET_DIGITS`], advanced by its length.
#[inline]
fn push_ipv4(out: &mut Vec<u8>, octets: [u8; 4]) {
    // 4 octets of up to 3 digits, 3 dots, and room for the last 4-byte copy.
    let mut buf = [0u8; 20];
    let mut at = 0;
    for (k, o) in octets.into_iter().enumerate() {
        if k > 0 {
            buf[at] = b'.';
            at += 1;
        }
        let (digits, n) = OCTET_DIGITS[o as usize];
        buf[at..at + 4].copy_from_slice(&digits);
        at += n as usize;
    }
    push_prefix(out, &buf, at);
}

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

    /// `"name":` after a separating comma if one is due: `quoted` is
    /// `"name":` itself, built by [`key!`] at compile time.
    #[inline(always)]
    fn key_literal(&mut self, quoted: &'static [u8]) {
        self.separate();
        self.raw(quoted);
    }

    /// `,"name":` for a member that is known to follow another (no look at
    /// the previous byte), built by [`more!`] at compile time.
    #[inline(always)]
    fn more_literal(&mut self, comma_quoted: &'static [u8]) {
        debug_assert!(!matches!(self.0.last(), Some(b'{' | b'[') | None));
        self.raw(comma_quoted);
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

    /// ASCII bytes as a string (a flow's history letters): copied between
    /// quotes unless a byte needs escaping, with no UTF-8 check.
    #[inline]
    fn ascii(&mut self, s: &[u8]) -> io::Result<()> {
        if s.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\') {
            self.0.push(b'"');
            self.raw(s);
            self.0.push(b'"');
            Ok(())
        } else {
            self.str(std::str::from_utf8(s).map_err(io::Error::other)?)
        }
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
        push_decimal(self.0, v.into());
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
            IpAddr::V4(a) => push_ipv4(self.0, a.octets()),
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
        key!(j, "record");
        j.str(r)?;
    }
    key!(j, "proto");
    j.name(proto_name(f.proto));
    more!(j, "client");
    j.ip(&f.client)?;
    more!(j, "client_port");
    j.uint(f.client_port);
    more!(j, "server");
    j.ip(&f.server)?;
    more!(j, "server_port");
    j.uint(f.server_port);
    more!(j, "first_ts");
    j.ts(f.first_ts);
    more!(j, "last_ts");
    j.ts(f.last_ts);
    write_label(&mut j, label)?;
    if let Some(app) = f.app.as_deref() {
        more!(j, "app");
        j.open(b'{');
        key!(j, "detail");
        j.opt_str(app.detail.as_deref())?;
        more!(j, "rfc1006");
        match &app.rfc1006 {
            Some(r) => serde_json::to_writer(&mut *j.0, &serde_json::to_value(r)?)?,
            None => j.null(),
        }
        more!(j, "service");
        j.str(app.service)?;
        if let Some(smb) = &app.smb {
            more!(j, "smb");
            serde_json::to_writer(&mut *j.0, &serde_json::to_value(smb)?)?;
        }
        j.close(b'}');
    }
    more!(j, "state");
    j.name(f.state.as_str());
    more!(j, "history");
    j.ascii(f.history.as_bytes())?;
    more!(j, "syn_retries");
    j.uint(f.syn_retries);
    more!(j, "syn_gaps_ms");
    j.array(f.syn_gaps_us.iter(), |j, g| j.f64(*g as f64 / 1000.0))?;
    more!(j, "packets");
    j.pair(f.packets);
    more!(j, "bytes");
    j.pair(f.bytes);
    more!(j, "payload_bytes");
    j.pair(f.payload_bytes);
    more!(j, "responder_ttl");
    j.opt_uint(f.responder_ttl);
    more!(j, "responder_ip_id");
    j.opt_uint(f.responder_ip_id);
    more!(j, "icmp_errors");
    j.array(f.icmp.iter(), write_icmp)?;
    more!(j, "icmp_error_count");
    j.uint(f.icmp_count);
    more!(j, "rpc");
    match f.rpc.as_deref() {
        Some(r) => write_rpc(&mut j, r)?,
        None => j.null(),
    }
    more!(j, "end");
    j.name(end_name(f.end));
    if let Some(seen) = extras.taps {
        more!(j, "taps");
        j.open(b'{');
        key!(j, "inside");
        j.opt_pair(seen[0]);
        more!(j, "outside");
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
    key!(j, "client_group");
    j.str(&v.client_group)?;
    key!(j, "clients");
    j.array(&v.clients, |j, c| j.ip(c))?;
    key!(j, "failed");
    j.uint(v.failed);
    key!(j, "first_ts");
    j.ts_if_set(v.first_ts);
    key!(j, "last_ts");
    j.ts_if_set(v.last_ts);
    key!(j, "policy");
    j.str(v.policy.as_str())?;
    key!(j, "port");
    j.uint(v.port);
    key!(j, "proto");
    j.str(proto_name(v.proto))?;
    if let Some(r) = record {
        key!(j, "record");
        j.str(r)?;
    }
    key!(j, "server");
    j.ip(&v.server)?;
    key!(j, "service");
    j.str(v.service)?;
    key!(j, "status");
    j.str(v.status.as_str())?;
    key!(j, "verdict");
    j.str(v.verdict.as_str())?;
    key!(j, "working");
    j.uint(v.working);
    j.close(b'}');
    Ok(())
}

/// `service` through `handoff`.
fn write_label(j: &mut JsonBuf<'_>, label: &FlowLabel) -> io::Result<()> {
    more!(j, "service");
    j.str(label.service)?;
    more!(j, "identified_by");
    j.str(label.identified_by)?;
    if let Some(p) = label.port_mismatch {
        more!(j, "port_service_mismatch");
        j.str(p)?;
    }
    more!(j, "interface");
    match &label.interface {
        Some(i) => {
            j.open(b'{');
            write_interface_members(j, i)?;
            j.close(b'}');
        }
        None => j.null(),
    }
    more!(j, "handoff");
    match &label.handoff {
        Some(h) => write_handoff(j, h)?,
        None => j.null(),
    }
    Ok(())
}

/// `"name", "uuid", "version"` of an interface (keys in sorted order).
fn write_interface_members(j: &mut JsonBuf<'_>, i: &InterfaceId) -> io::Result<()> {
    key!(j, "name");
    j.opt_str(super::json::interface_name(i))?;
    write_uuid_version(j, i)
}

/// `"uuid", "version": "major.minor"` of an interface.
fn write_uuid_version(j: &mut JsonBuf<'_>, i: &InterfaceId) -> io::Result<()> {
    key!(j, "uuid");
    j.0.push(b'"');
    io::Write::write_fmt(&mut *j.0, format_args!("{}", i.uuid))?;
    j.0.push(b'"');
    key!(j, "version");
    j.0.push(b'"');
    j.uint(i.major);
    j.0.push(b'.');
    j.uint(i.minor);
    j.0.push(b'"');
    Ok(())
}

fn write_handoff(j: &mut JsonBuf<'_>, h: &HandoffRef) -> io::Result<()> {
    j.open(b'{');
    key!(j, "client");
    j.ip(&h.client)?;
    key!(j, "latency_ms");
    j.f64(super::json::ms(h.latency))?;
    key!(j, "other_client");
    j.bool(h.other_client);
    key!(j, "ts");
    j.ts(h.ts);
    j.close(b'}');
    Ok(())
}

fn write_icmp(j: &mut JsonBuf<'_>, e: &IcmpEvidence) -> io::Result<()> {
    j.open(b'{');
    key!(j, "ts");
    j.ts(e.ts);
    key!(j, "sender");
    j.ip(&e.sender)?;
    key!(j, "icmp_version");
    j.uint(if e.v6 { 6u8 } else { 4 });
    key!(j, "type");
    j.uint(e.icmp_type);
    key!(j, "code");
    j.uint(e.code);
    key!(j, "quotes_originator");
    j.bool(e.quotes_originator);
    j.close(b'}');
    Ok(())
}

/// A flow's `rpc` (keys in sorted order).
fn write_rpc(j: &mut JsonBuf<'_>, r: &RpcSummary) -> io::Result<()> {
    j.open(b'{');
    key!(j, "auth_level");
    j.opt_uint(r.auth_level);
    key!(j, "auth_type");
    j.opt_uint(r.auth_type);
    key!(j, "binds_rejected");
    j.uint(r.binds_rejected);
    key!(j, "bytes_skipped");
    j.uint(r.bytes_skipped);
    key!(j, "encrypted");
    j.bool(r.encrypted);
    key!(j, "epm_answers");
    j.uint(r.epm_answers);
    key!(j, "faults");
    j.uint(r.faults);
    key!(j, "interfaces");
    j.array(&r.interfaces, write_bound)?;
    key!(j, "malformed_pdus");
    j.uint(r.malformed);
    key!(j, "pdus");
    j.uint(r.pdus);
    if !r.pipes.is_empty() {
        key!(j, "pipes");
        j.array(&r.pipes, |j, p| j.str(p))?;
    }
    key!(j, "registrations");
    j.uint(r.registrations);
    key!(j, "requests");
    j.uint(r.requests);
    key!(j, "resyncs");
    j.uint(r.resyncs);
    key!(j, "stream_gaps");
    j.uint(r.stream_gaps);
    j.close(b'}');
    Ok(())
}

/// An interface bound on a flow (`rpc.interfaces[]`, keys in sorted order).
fn write_bound(j: &mut JsonBuf<'_>, b: &BoundInterface) -> io::Result<()> {
    j.open(b'{');
    key!(j, "accepted");
    j.bool(b.accepted);
    // `name` sorts before `transfer_syntax`, `uuid` and `version` after it.
    key!(j, "name");
    j.opt_str(super::json::interface_name(&b.interface))?;
    key!(j, "transfer_syntax");
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
mod byte_equal;

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
        let mut numbers = vec![0, 9, 10, 99, 100, 101, 999, 1000, 65535, u64::MAX];
        numbers.extend((0..20).map(|k| 10u64.pow(k)));
        numbers.extend((1..20).map(|k| 10u64.pow(k) - 1));
        numbers.extend((0..64).map(|k| 1u64 << k));
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            numbers.push(x >> (x % 64));
        }
        for v in numbers {
            let out = written(|j| {
                j.uint(v);
                Ok(())
            });
            assert_eq!(out, v.to_string());
        }
        for a in [0u8, 1, 9, 10, 99, 100, 199, 255] {
            for b in [0u8, 7, 42, 250] {
                let ip = IpAddr::V4(std::net::Ipv4Addr::new(a, b, 255 - a, b / 3));
                assert_eq!(written(|j| j.ip(&ip)), serde_json::to_string(&ip).unwrap());
            }
        }
    }

    /// The verdict row as the report built it before (a `Value` object).
    fn verdict_value(v: &Verdict) -> serde_json::Value {
        json!({
            "client_group": &*v.client_group,
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
            status: crate::verdict::Status::Working,
            policy: crate::verdict::DecisionKind::Allowed,
            verdict: crate::verdict::VerdictLabel::Working,
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
