//! Payload signatures of the well-known services of the Exchange KB tables:
//! which service a TCP connection or UDP conversation carries, from its first
//! payload bytes, whatever port it uses.
//!
//! Pure functions over `&[u8]`: no I/O, no flow state, no allocation except
//! the optional `detail` string, no panics on any input (every index is a
//! checked `get`). Inputs are the first bytes each side sent (up to ~512);
//! a signature whose distinguishing bytes are cut off returns `None` rather
//! than a guess.
//!
//! Service names are the vocabulary of `docs/report-contract.md`.
//! TLS is reported as `"tls"`; [`tls_service_for_port`] names it for the port
//! (`"https"`, `"imaps"`, ...).

/// A service recognized from payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recognized {
    /// Report service name (`"smtp"`, `"tls"`, `"kerberos"`, ...).
    pub service: &'static str,
    /// What the payload says about itself, when cheap to get: the SMTP EHLO
    /// or banner host, the HTTP Host, the TLS SNI, the Kerberos / LDAP
    /// message type, the SMB dialect family, the DNS query name.
    pub detail: Option<String>,
}

impl Recognized {
    fn new(service: &'static str, detail: Option<String>) -> Recognized {
        Recognized { service, detail }
    }
}

/// Longest detail kept (a DNS name is at most 253 characters).
const MAX_DETAIL: usize = 253;

// ---------------------------------------------------------------------------
// Entry points

/// TCP: the first payload bytes the client sent and the first the server
/// sent (either may be empty), up to ~512 bytes each.
///
/// Order: binary signatures of the client, server banners, client text
/// commands, binary signatures of the server (a capture that starts
/// mid-stream may show only the server's side clearly), HTTP responses.
pub fn recognize_tcp(client_first: &[u8], server_first: &[u8]) -> Option<Recognized> {
    if let Some(r) = tcp_binary(client_first, true) {
        return Some(r);
    }
    let (client, server) = (Text::of(client_first), Text::of(server_first));
    if let Some(r) = server_banner(client, server) {
        return Some(r);
    }
    if let Some(r) = client_text(client, server) {
        return Some(r);
    }
    if let Some(r) = tcp_binary(server_first, false) {
        return Some(r);
    }
    if client_first.is_empty() && http_response(server_first) {
        return Some(Recognized::new("http", None));
    }
    None
}

/// UDP: the first datagram payload from the originator and (if any) from the
/// responder, plus the ports.
///
/// Kerberos and (C)LDAP have strong structure and are recognized on any
/// port; NetBIOS name and datagram services only with port 137 / 138 on
/// either side (their headers alone are too weak); NTP with port 123 on
/// either side, or elsewhere only when the response echoes the request's
/// transmit timestamp.
pub fn recognize_udp(
    orig_first: &[u8],
    resp_first: &[u8],
    orig_port: u16,
    resp_port: u16,
) -> Option<Recognized> {
    let on = |p: u16| orig_port == p || resp_port == p;
    for msg in [orig_first, resp_first] {
        if let Some(kind) = kerberos_msg(msg) {
            return Some(Recognized::new("kerberos", Some(kind.to_string())));
        }
        if let Some(op) = ldap_msg(msg) {
            return Some(Recognized::new("ldap", Some(op.to_string())));
        }
    }
    if on(137) && (nbns_plausible(orig_first) || nbns_plausible(resp_first)) {
        return Some(Recognized::new("netbios-ns", None));
    }
    if on(138) && (nbdgm_plausible(orig_first) || nbdgm_plausible(resp_first)) {
        return Some(Recognized::new("netbios-dgm", None));
    }
    if on(123) && (ntp_plausible(orig_first) || ntp_plausible(resp_first)) {
        return Some(Recognized::new("ntp", None));
    }
    for msg in [orig_first, resp_first] {
        if let Some(name) = dns_plausible(msg, true) {
            // LLMNR (RFC 4795) and mDNS (RFC 6762) speak DNS's format on
            // their own ports, to multicast groups: name resolution on the
            // link, not a DNS server to reach through a firewall.
            let service = if on(5355) {
                "llmnr"
            } else if on(5353) {
                "mdns"
            } else {
                "dns"
            };
            return Some(Recognized::new(service, name));
        }
    }
    if ntp_exchange(orig_first, resp_first) {
        return Some(Recognized::new("ntp", None));
    }
    None
}

/// The report name of TLS on a port: the implicit-TLS services of the KB
/// tables, `"tls"` elsewhere.
pub fn tls_service_for_port(port: u16) -> &'static str {
    match port {
        443 => "https",
        563 => "nntps",
        636 => "ldaps",
        993 => "imaps",
        995 => "pop3s",
        3269 => "gc-ssl",
        _ => "tls",
    }
}

/// Whether the payload contradicts the port: `port_service` is what the
/// server port conventionally carries (`wellknown::service_for_port`),
/// `payload_service` what [`recognize_tcp`] / [`recognize_udp`] found.
///
/// Not a mismatch: no port service (nothing was expected); the same name;
/// TLS on a TLS port (`https`, `imaps`, `pop3s`, `ldaps`, `gc-ssl`, `nntps`);
/// LDAP on the global catalog port (`gc` speaks LDAP); RPC over HTTP on the
/// HTTP port (it is HTTP); SMB on `netbios-ssn` and a NetBIOS session request
/// on `smb` (Windows uses both framings on both ports).
///
/// A mismatch: anything else, e.g. SSH or HTTP on 25, TLS on 25 (implicit
/// TLS is not SMTP), plain LDAP on 636, plain HTTP on 443.
pub fn mismatch(port_service: Option<&str>, payload_service: &str) -> bool {
    let Some(port) = port_service else {
        return false;
    };
    if port == payload_service {
        return false;
    }
    let compatible = matches!(
        (port, payload_service),
        (
            "https" | "imaps" | "pop3s" | "ldaps" | "gc-ssl" | "nntps",
            "tls"
        ) | ("gc", "ldap")
            | ("http", "rpc-over-http")
            | ("netbios-ssn", "smb")
            | ("smb", "netbios-ssn")
    );
    !compatible
}

// ---------------------------------------------------------------------------
// Small helpers

fn be16(b: &[u8], i: usize) -> Option<usize> {
    let s = b.get(i..i.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]) as usize)
}

fn be32(b: &[u8], i: usize) -> Option<usize> {
    let s = b.get(i..i.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

fn starts_with_ci(b: &[u8], prefix: &[u8]) -> bool {
    b.len() >= prefix.len() && b[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && hay.len() >= needle.len()
        && hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// A word in ASCII upper case, for matching against command keywords,
/// without allocating: a word longer than every keyword becomes a marker
/// that is not empty and matches none.
struct Upper {
    buf: [u8; Upper::MAX],
    len: usize,
}

impl Upper {
    /// Longer than every keyword matched (`CAPABILITIES`, `OVERVIEW.FMT`: 12).
    const MAX: usize = 16;
    const TOO_LONG: &'static [u8] = &[0xff];

    fn of(word: &[u8]) -> Upper {
        let mut buf = [0u8; Upper::MAX];
        if let Some(dst) = buf.get_mut(..word.len()) {
            dst.copy_from_slice(word);
            dst.make_ascii_uppercase();
        }
        Upper {
            buf,
            len: word.len(),
        }
    }

    fn as_slice(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(Upper::TOO_LONG)
    }
}

/// The first line (without CR LF) if it is complete.
fn first_line(b: &[u8]) -> Option<&[u8]> {
    let end = memchr::memchr(b'\n', b)?;
    let line = &b[..end];
    Some(line.strip_suffix(b"\r").unwrap_or(line))
}

/// A first payload and its first line, searched for once: every text
/// check wants the line, and a payload without a newline (most binary
/// ones) is scanned to its end by the search.
#[derive(Clone, Copy)]
struct Text<'a> {
    bytes: &'a [u8],
    /// [`first_line`] of `bytes`.
    line: Option<&'a [u8]>,
}

impl<'a> Text<'a> {
    fn of(bytes: &'a [u8]) -> Self {
        Text {
            bytes,
            line: first_line(bytes),
        }
    }

    /// The first line, complete or not (banners are matched on their start).
    fn prefix(&self) -> &'a [u8] {
        self.line.unwrap_or(self.bytes)
    }
}

/// A detail string from printable ASCII (no spaces), else `None`.
fn detail(b: &[u8]) -> Option<String> {
    if b.is_empty() || b.len() > MAX_DETAIL || !b.iter().all(|c| c.is_ascii_graphic()) {
        return None;
    }
    Some(String::from_utf8_lossy(b).into_owned())
}

/// The first space-separated word of `b`.
fn first_word(b: &[u8]) -> &[u8] {
    let b = trim_start(b);
    let end = memchr::memchr(b' ', b).unwrap_or(b.len());
    &b[..end]
}

fn trim_start(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| c != b' ' && c != b'\t');
    start.map_or(&[], |s| &b[s..])
}

fn trim(b: &[u8]) -> &[u8] {
    let b = trim_start(b);
    let end = b
        .iter()
        .rposition(|&c| c != b' ' && c != b'\t')
        .map_or(0, |e| e + 1);
    &b[..end]
}

// ---------------------------------------------------------------------------
// BER / DER (Kerberos, LDAP)

/// A BER header at `pos`: (tag, content start, content length). Single-byte
/// tags only (all the protocols here use them); definite lengths only (DER
/// and LDAP forbid the indefinite form), long form up to 4 octets. The
/// content itself need not be present.
fn ber_header(b: &[u8], pos: usize) -> Option<(u8, usize, usize)> {
    let tag = *b.get(pos)?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let first = *b.get(pos.checked_add(1)?)? as usize;
    if first < 0x80 {
        return Some((tag, pos + 2, first));
    }
    let n = first & 0x7f;
    if n == 0 || n > 4 {
        return None;
    }
    let bytes = b.get(pos + 2..pos + 2 + n)?;
    let len = bytes.iter().fold(0usize, |acc, &x| (acc << 8) | x as usize);
    Some((tag, pos + 2 + n, len))
}

fn krb_name(tag: u8) -> Option<&'static str> {
    Some(match tag {
        0x6a => "AS-REQ",
        0x6b => "AS-REP",
        0x6c => "TGS-REQ",
        0x6d => "TGS-REP",
        0x6e => "AP-REQ",
        0x6f => "AP-REP",
        0x7e => "KRB-ERROR",
        _ => return None,
    })
}

/// A Kerberos message at offset 0: an application tag 10–15 or 30 holding a
/// SEQUENCE whose first two fields are `pvno = 5` and `msg-type` equal to the
/// application tag number (RFC 4120 §5.4.1, §5.5, §5.9.1). Returns the
/// message type's name and the declared total length.
fn kerberos_header(b: &[u8]) -> Option<(&'static str, usize)> {
    let (tag, start, len) = ber_header(b, 0)?;
    let name = krb_name(tag)?;
    let (seq, s2, l2) = ber_header(b, start)?;
    if seq != 0x30 || s2.checked_add(l2)? > start.checked_add(len)? {
        return None;
    }
    // KDC-REQ numbers pvno [1], msg-type [2]; the others [0] and [1].
    let ctx = *b.get(s2)?;
    if ctx != 0xa0 && ctx != 0xa1 {
        return None;
    }
    if b.get(s2 + 1..s2 + 5)? != [0x03, 0x02, 0x01, 0x05] {
        return None;
    }
    if b.get(s2 + 5..s2 + 10)? != [ctx + 1, 0x03, 0x02, 0x01, tag & 0x1f] {
        return None;
    }
    Some((name, start + len))
}

fn kerberos_msg(b: &[u8]) -> Option<&'static str> {
    kerberos_header(b).map(|(name, _)| name)
}

fn ldap_op_name(tag: u8) -> Option<&'static str> {
    Some(match tag {
        0x60 => "bindRequest",
        0x61 => "bindResponse",
        0x42 => "unbindRequest",
        0x63 => "searchRequest",
        0x64 => "searchResEntry",
        0x65 => "searchResDone",
        0x73 => "searchResRef",
        0x66 => "modifyRequest",
        0x67 => "modifyResponse",
        0x68 => "addRequest",
        0x69 => "addResponse",
        0x4a => "delRequest",
        0x6b => "delResponse",
        0x6c => "modDNRequest",
        0x6d => "modDNResponse",
        0x6e => "compareRequest",
        0x6f => "compareResponse",
        0x50 => "abandonRequest",
        0x77 => "extendedRequest",
        0x78 => "extendedResponse",
        0x79 => "intermediateResponse",
        _ => return None,
    })
}

/// An LDAPMessage (RFC 4511 §4.1.1) at offset 0: SEQUENCE { messageID
/// INTEGER (1–4 octets), protocolOp [APPLICATION n] } with every inner length
/// inside the outer one. A bindRequest must also start with version 2 or 3.
/// Returns the operation's name.
fn ldap_msg(b: &[u8]) -> Option<&'static str> {
    let (tag, start, len) = ber_header(b, 0)?;
    if tag != 0x30 || len < 5 {
        return None;
    }
    let end = start.checked_add(len)?;
    let (t2, s2, l2) = ber_header(b, start)?;
    if t2 != 0x02 || !(1..=4).contains(&l2) || s2 + l2 > end {
        return None;
    }
    let (t3, s3, l3) = ber_header(b, s2 + l2)?;
    let name = ldap_op_name(t3)?;
    if s3.checked_add(l3)? > end {
        return None;
    }
    if t3 == 0x60 {
        let v = b.get(s3..s3 + 3)?;
        if v != [0x02, 0x01, 0x03] && v != [0x02, 0x01, 0x02] {
            return None;
        }
    }
    Some(name)
}

// ---------------------------------------------------------------------------
// TCP binary signatures

fn tcp_binary(b: &[u8], client: bool) -> Option<Recognized> {
    if let Some(r) = tls(b, client) {
        return Some(r);
    }
    if let Some(dialect) = smb(b) {
        return Some(Recognized::new("smb", Some(dialect.to_string())));
    }
    if client && nbss_session_request(b) {
        return Some(Recognized::new("netbios-ssn", None));
    }
    if let Some(len) = be32(b, 0) {
        if let Some((name, total)) = kerberos_header(&b[4..]) {
            if total == len {
                return Some(Recognized::new("kerberos", Some(name.to_string())));
            }
        }
    }
    if let Some(op) = ldap_msg(b) {
        return Some(Recognized::new("ldap", Some(op.to_string())));
    }
    if let Some(len) = be16(b, 0) {
        let end = b.len().min(2 + len);
        if len >= 17 {
            if let Some(name) = dns_plausible(&b[2..end], len == end - 2) {
                return Some(Recognized::new("dns", name));
            }
        }
    }
    None
}

/// A TLS record header: content type 20–23, version 3.1–3.4 (3.0 only for a
/// handshake), a length within the 2^14 + 2048 limit.
fn tls_record(b: &[u8]) -> Option<(u8, usize)> {
    let h = b.get(..5)?;
    let (ctype, major, minor) = (h[0], h[1], h[2]);
    let len = u16::from_be_bytes([h[3], h[4]]) as usize;
    let version_ok = major == 3 && (minor <= 4) && (minor >= 1 || ctype == 0x16);
    if !(0x14..=0x17).contains(&ctype) || !version_ok || len == 0 || len > 18432 {
        return None;
    }
    Some((ctype, len))
}

/// TLS: a ClientHello (client) or ServerHello (server) record, whose SNI is
/// the detail; or, for a capture that starts mid-connection, a run of valid
/// record headers (every header the bytes reach must be valid).
fn tls(b: &[u8], client: bool) -> Option<Recognized> {
    let (ctype, len) = tls_record(b)?;
    if ctype == 0x16 {
        // Handshake: type, 3-byte length, then the hello's version 3.x.
        let want = if client { 1 } else { 2 };
        let h = b.get(5..11)?;
        let hs_len = (h[1] as usize) << 16 | (h[2] as usize) << 8 | h[3] as usize;
        if h[0] == want {
            if h[4] != 3 || h[5] > 4 || hs_len < 38 {
                return None;
            }
            let sni = if client { client_hello_sni(b) } else { None };
            return Some(Recognized::new("tls", sni));
        }
    }
    // Follow the records the bytes cover.
    let mut pos = 5 + len;
    while pos < b.len() {
        let rest = &b[pos..];
        if rest.len() < 5 {
            break;
        }
        let (_, l) = tls_record(rest)?;
        pos += 5 + l;
    }
    Some(Recognized::new("tls", None))
}

/// The host_name of the server_name extension (RFC 6066 §3) of a ClientHello
/// starting at the record header. `None` when absent or cut off.
fn client_hello_sni(b: &[u8]) -> Option<String> {
    let rec_end = b.len().min(5 + be16(b, 3)?);
    let b = &b[..rec_end];
    // record 5, handshake header 4, version 2, random 32
    let mut p = 5 + 4 + 2 + 32;
    let sid = *b.get(p)? as usize;
    if sid > 32 {
        return None;
    }
    p += 1 + sid;
    p += 2 + be16(b, p)?; // cipher suites
    p += 1 + *b.get(p)? as usize; // compression methods
    let ext_end = b.len().min(p + 2 + be16(b, p)?);
    p += 2;
    while p + 4 <= ext_end {
        let typ = be16(b, p)?;
        let len = be16(b, p + 2)?;
        p += 4;
        if typ == 0 {
            // server_name_list length, then (name_type, length, name)
            let kind = *b.get(p + 2)?;
            let n = be16(b, p + 3)?;
            if kind != 0 {
                return None;
            }
            return detail(b.get(p + 5..p + 5 + n)?);
        }
        p += len;
    }
    None
}

/// SMB over a NetBIOS session message or direct TCP (a zero byte and a
/// 24-bit length, then the protocol id). Returns the dialect family.
fn smb(b: &[u8]) -> Option<&'static str> {
    let h = b.get(..8)?;
    if h[0] != 0 {
        return None;
    }
    let len = (h[1] as usize) << 16 | (h[2] as usize) << 8 | h[3] as usize;
    let (name, min) = match &h[4..8] {
        b"\xffSMB" => ("SMB1", 32),
        b"\xfeSMB" => ("SMB2", 64),
        b"\xfdSMB" => ("SMB3-encrypted", 52),
        b"\xfcSMB" => ("SMB3-compressed", 16),
        _ => return None,
    };
    (len >= min).then_some(name)
}

/// A NetBIOS session request (RFC 1002 §4.3.2): type 0x81, flags 0, then the
/// called and calling names, each a first-level encoded name (length 32,
/// letters A–P) with an empty or short scope.
fn nbss_session_request(b: &[u8]) -> bool {
    fn encoded_name(b: &[u8], p: usize) -> Option<usize> {
        if *b.get(p)? != 0x20
            || !b
                .get(p + 1..p + 33)?
                .iter()
                .all(|c| (b'A'..=b'P').contains(c))
        {
            return None;
        }
        let mut q = p + 33;
        for _ in 0..16 {
            let l = *b.get(q)? as usize;
            if l == 0 {
                return Some(q + 1);
            }
            if l > 63 {
                return None;
            }
            q += 1 + l;
        }
        None
    }
    let Some(h) = b.get(..4) else { return false };
    if h[0] != 0x81 || h[1] & 0xfe != 0 {
        return false;
    }
    let len = (h[1] as usize & 1) << 16 | (h[2] as usize) << 8 | h[3] as usize;
    let called = encoded_name(b, 4);
    let calling = called.and_then(|p| encoded_name(b, p));
    calling == Some(4 + len)
}

// ---------------------------------------------------------------------------
// Text protocols

fn server_banner(client: Text, server: Text) -> Option<Recognized> {
    let line = server.prefix();
    if line.starts_with(b"ncacn_http/1.0") {
        return Some(Recognized::new("rpc-over-http", None));
    }
    if (line.starts_with(b"220 ") || line.starts_with(b"220-"))
        && (contains_ci(line, b"SMTP") || smtp_ehlo(client.line).is_some())
    {
        let host = smtp_ehlo(client.line)
            .filter(|h| !h.is_empty())
            .or_else(|| detail(first_word(&line[4..])));
        return Some(Recognized::new("smtp", host));
    }
    if line.starts_with(b"+OK") && server.line.is_some() {
        return Some(Recognized::new("pop3", None));
    }
    if (line.starts_with(b"* OK") || line.starts_with(b"* PREAUTH")) && contains_ci(line, b"IMAP") {
        return Some(Recognized::new("imap", None));
    }
    if (line.starts_with(b"200 ") || line.starts_with(b"201 "))
        && (contains_ci(line, b"NNTP") || contains_ci(line, b"news") || nntp_command(client.line))
    {
        return Some(Recognized::new("nntp", None));
    }
    None
}

fn client_text(client: Text, server: Text) -> Option<Recognized> {
    if let Some(r) = http_request(client) {
        return Some(r);
    }
    let server_line = server.prefix();
    let no_server = server.bytes.is_empty();
    if no_server || server_line.starts_with(b"220") {
        if let Some(host) = smtp_ehlo(client.line) {
            return Some(Recognized::new(
                "smtp",
                Some(host).filter(|h| !h.is_empty()),
            ));
        }
    }
    if (no_server || server_line.starts_with(b"+OK") || server_line.starts_with(b"-ERR"))
        && pop3_command(client.line)
    {
        return Some(Recognized::new("pop3", None));
    }
    if (no_server || server_line.starts_with(b"* ")) && imap_command(client.line) {
        return Some(Recognized::new("imap", None));
    }
    if (no_server || server_line.starts_with(b"200 ") || server_line.starts_with(b"201 "))
        && nntp_command(client.line)
    {
        return Some(Recognized::new("nntp", None));
    }
    None
}

/// `EHLO host` / `HELO host` (complete first `line`): `Some(host)`, the
/// host empty when it is not printable; `None` when the line is not EHLO /
/// HELO.
fn smtp_ehlo(line: Option<&[u8]>) -> Option<String> {
    let line = line?;
    if !(starts_with_ci(line, b"EHLO ") || starts_with_ci(line, b"HELO ")) {
        return None;
    }
    let host = trim(&line[5..]);
    Some(detail(host).unwrap_or_default())
}

fn pop3_command(line: Option<&[u8]>) -> bool {
    let Some(line) = line else {
        return false;
    };
    let word = first_word(line);
    let rest = trim(&line[line.len().min(word.len())..]);
    match Upper::of(word).as_slice() {
        b"CAPA" | b"STLS" => rest.is_empty(),
        b"AUTH" => true,
        b"USER" | b"APOP" => !rest.is_empty(),
        _ => false,
    }
}

fn imap_command(line: Option<&[u8]>) -> bool {
    let Some(line) = line else {
        return false;
    };
    let Some(sp) = memchr::memchr(b' ', line) else {
        return false;
    };
    let (tag, rest) = (&line[..sp], &line[sp + 1..]);
    let tag_ok = !tag.is_empty()
        && tag.len() <= 32
        && tag
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'));
    let cmd = Upper::of(first_word(rest));
    tag_ok
        && matches!(
            cmd.as_slice(),
            b"CAPABILITY" | b"LOGIN" | b"AUTHENTICATE" | b"STARTTLS" | b"ID" | b"NOOP"
        )
}

/// NNTP client commands. A bare `LIST` is POP3 too, so `LIST` counts only
/// with an NNTP keyword.
fn nntp_command(line: Option<&[u8]>) -> bool {
    let Some(line) = line else {
        return false;
    };
    if starts_with_ci(line, b"MODE READER") || starts_with_ci(line, b"MODE STREAM") {
        return true;
    }
    let word = first_word(line);
    let arg = Upper::of(first_word(&line[line.len().min(word.len())..]));
    let word = Upper::of(word);
    match word.as_slice() {
        b"ARTICLE" | b"CAPABILITIES" => true,
        b"GROUP" | b"LISTGROUP" => !arg.as_slice().is_empty(),
        b"LIST" => matches!(
            arg.as_slice(),
            b"ACTIVE" | b"NEWSGROUPS" | b"OVERVIEW.FMT" | b"HEADERS" | b"ACTIVE.TIMES"
        ),
        _ => false,
    }
}

const HTTP_METHODS: &[&[u8]] = &[
    b"GET",
    b"POST",
    b"PUT",
    b"HEAD",
    b"OPTIONS",
    b"DELETE",
    b"PATCH",
    b"CONNECT",
    b"TRACE",
    b"RPC_IN_DATA",
    b"RPC_OUT_DATA",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"SEARCH",
    b"SUBSCRIBE",
    b"POLL",
    b"BPROPFIND",
    b"BPROPPATCH",
    b"BCOPY",
    b"BMOVE",
    b"BDELETE",
    b"X-MS-ENUMATTS",
];

/// `METHOD target HTTP/1.x` with a complete request line. Detail: Host.
/// `/rpc/rpcproxy.dll` (any case; also in an absolute URI) and the RPC_IN_DATA
/// / RPC_OUT_DATA methods, which exist only for it, mean RPC over HTTP.
fn http_request(client: Text) -> Option<Recognized> {
    let line = client.line?;
    let sp1 = line.iter().position(|&c| c == b' ')?;
    let method = &line[..sp1];
    if !HTTP_METHODS.contains(&method) {
        return None;
    }
    let sp2 = line.iter().rposition(|&c| c == b' ')?;
    if sp2 <= sp1 + 1 {
        return None;
    }
    let target = &line[sp1 + 1..sp2];
    let version = &line[sp2 + 1..];
    if !(version.len() == 8 && version.starts_with(b"HTTP/1.") && version[7].is_ascii_digit()) {
        return None;
    }
    let path = match target.iter().position(|&c| c == b'/') {
        Some(_) if target.starts_with(b"/") => target,
        _ if starts_with_ci(target, b"http://") || starts_with_ci(target, b"https://") => {
            let after = &target[target.iter().position(|&c| c == b':').unwrap_or(0) + 3..];
            after
                .iter()
                .position(|&c| c == b'/')
                .map_or(&b"/"[..], |i| &after[i..])
        }
        _ if target == b"*" || method == b"CONNECT" => target,
        _ => return None,
    };
    let rpc = starts_with_ci(path, b"/rpc/rpcproxy.dll")
        || method == b"RPC_IN_DATA"
        || method == b"RPC_OUT_DATA";
    let host = client
        .bytes
        .split(|&c| c == b'\n')
        .skip(1)
        .find(|l| starts_with_ci(l, b"host:"))
        .and_then(|l| detail(trim(l[5..].strip_suffix(b"\r").unwrap_or(&l[5..]))));
    Some(Recognized::new(
        if rpc { "rpc-over-http" } else { "http" },
        host,
    ))
}

/// `HTTP/1.x NNN ` status line.
fn http_response(server: &[u8]) -> bool {
    let Some(s) = server.get(..13) else {
        return false;
    };
    s.starts_with(b"HTTP/1.")
        && s[7].is_ascii_digit()
        && s[8] == b' '
        && s[9..12].iter().all(u8::is_ascii_digit)
        && s[12] == b' '
}

// ---------------------------------------------------------------------------
// DNS, NetBIOS, NTP

/// Walk a domain name at `p`; returns the position after it and, for an
/// uncompressed name, its text. Labels at most 63, names at most 255 octets;
/// a compression pointer must point backwards into the message after the
/// header.
fn dns_name(b: &[u8], mut p: usize) -> Option<(usize, Option<String>)> {
    let mut text = Vec::new();
    let mut total = 0usize;
    loop {
        let l = *b.get(p)? as usize;
        if l == 0 {
            let name = if text.is_empty() { b".".to_vec() } else { text };
            return Some((p + 1, detail(&name)));
        }
        if l & 0xc0 == 0xc0 {
            let target = be16(b, p)? & 0x3fff;
            if target < 12 || target >= p {
                return None;
            }
            return Some((p + 2, None));
        }
        if l > 63 {
            return None;
        }
        total += l + 1;
        if total > 255 {
            return None;
        }
        let label = b.get(p + 1..p + 1 + l)?;
        if !text.is_empty() {
            text.push(b'.');
        }
        text.extend_from_slice(label);
        p += 1 + l;
    }
}

/// DNS header sanity: opcode ≤ 5, qdcount 1–16, other counts ≤ 512, and the
/// questions parse (all of them when `whole`, else at least the first) with
/// a known class. Returns `Some(first qname)` when plausible.
fn dns_plausible(b: &[u8], whole: bool) -> Option<Option<String>> {
    let h = b.get(..12)?;
    let opcode = (h[2] >> 3) & 0x0f;
    let qd = be16(h, 4)?;
    if opcode > 5 || !(1..=16).contains(&qd) {
        return None;
    }
    if (1..4).any(|i| be16(h, 4 + 2 * i).is_none_or(|n| n > 512)) {
        return None;
    }
    let mut p = 12;
    let mut first = None;
    for i in 0..qd {
        let (after, name) = dns_name(b, p)?;
        let class = be16(b, after + 2)? & 0x7fff;
        if !matches!(class, 1 | 3 | 4 | 254 | 255) {
            return None;
        }
        if i == 0 {
            first = name;
            if !whole {
                break;
            }
        }
        p = after + 4;
    }
    Some(first)
}

/// NetBIOS name service (RFC 1002 §4.2): opcode 0 or 5–9, at most one
/// question, and the first name (question or answer) a first-level encoded
/// NetBIOS name (length 32, letters A–P).
fn nbns_plausible(b: &[u8]) -> bool {
    let Some(h) = b.get(..12) else { return false };
    let opcode = (h[2] >> 3) & 0x0f;
    let counts: Vec<usize> = (0..4).filter_map(|i| be16(h, 4 + 2 * i)).collect();
    if !matches!(opcode, 0 | 5..=9) || counts[0] > 1 || counts.iter().all(|&c| c == 0) {
        return false;
    }
    b.get(12) == Some(&0x20)
        && b.get(13..45)
            .is_some_and(|n| n.iter().all(|c| (b'A'..=b'P').contains(c)))
}

/// NetBIOS datagram service (RFC 1002 §4.4): message type 0x10–0x16 and, for
/// the data datagrams 0x10–0x12, an encoded source name at offset 14.
fn nbdgm_plausible(b: &[u8]) -> bool {
    let Some(h) = b.get(..10) else { return false };
    match h[0] {
        0x10..=0x12 => {
            b.get(14) == Some(&0x20)
                && b.get(15..47)
                    .is_some_and(|n| n.iter().all(|c| (b'A'..=b'P').contains(c)))
        }
        0x13..=0x16 => h[1] & 0xf0 == 0,
        _ => false,
    }
}

/// An NTP header: 48 bytes or more, version 1–4, mode 1–5.
fn ntp_plausible(b: &[u8]) -> bool {
    let Some(&first) = b.first() else {
        return false;
    };
    let version = (first >> 3) & 7;
    let mode = first & 7;
    b.len() >= 48 && (1..=4).contains(&version) && (1..=5).contains(&mode)
}

/// NTP away from port 123: a request (mode 1 or 3) and a response of the
/// matching mode (1→1/2, 3→4) that echoes the request's transmit timestamp
/// in its origin timestamp.
fn ntp_exchange(req: &[u8], resp: &[u8]) -> bool {
    if !ntp_plausible(req) || !ntp_plausible(resp) {
        return false;
    }
    let (qm, rm) = (req[0] & 7, resp[0] & 7);
    let modes = matches!((qm, rm), (3, 4) | (1, 1) | (1, 2));
    modes && req[40..48] == resp[24..32] && req[40..48] != [0; 8]
}

// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::test_hex::hex;

    fn tcp(c: &[u8], s: &[u8]) -> Option<(&'static str, Option<String>)> {
        recognize_tcp(c, s).map(|r| (r.service, r.detail))
    }

    fn svc_tcp(c: &[u8], s: &[u8]) -> Option<&'static str> {
        recognize_tcp(c, s).map(|r| r.service)
    }

    fn svc_udp(o: &[u8], r: &[u8], op: u16, rp: u16) -> Option<&'static str> {
        recognize_udp(o, r, op, rp).map(|r| r.service)
    }

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    // zeek smtp.pcap stream 2 (tcp.payload of the first segment each way).
    const SMTP_BANNER: &str =
        "323230207570726973652045534d54502053756245746861534d5450206e756c6c0d0a";
    const SMTP_EHLO: &str = "45484c4f205b3139322e3136382e3133332e3130305d0d0a";
    // zeek pop3.pcap stream 2.
    const POP3_BANNER: &str = "2b4f4b20504f50207365727665722072656164792048206d696d61703420304d486f55722d315644785244335569352d3030336571320d0a";
    const POP3_CAPA: &str = "434150410d0a";
    // zeek tls/imap-starttls.pcap: "* OK [CAPABILITY IMAP4rev1 ..." (cut) and ". CAPABILITY".
    const IMAP_BANNER: &str =
        "2a204f4b205b4341504142494c49545920494d41503472657631204348494c4452454e0d0a";
    const IMAP_CAPA: &str = "2e204341504142494c4954590d0a";
    // zeek smtp.pcap stream 5: ClientHello with SNI p31-keyvalueservice.icloud.com.
    const TLS_CH: &str = "16030100c4010000c0030355b39277d4dabe7bfaaa16b2e7929dbfe16397dedc61379290f69637f7ec1ee600004a00ffc024c023c00ac009c008c028c027c014c013c012c026c025c005c004c003c02ac029c00fc00ec00d006b0067003900330016003d003c0035002f000ac007c011c002c00c000500040100004d00000023002100001e7033312d6b657976616c7565736572766963652e69636c6f75642e636f6d000a00080006001700180019000b00020100000d000c000a0501040102010403020333740000";
    const TLS_SH: &str = "1603030a240200004d030355b39277e25242dd7311a9d41dbc8ee25d09c5fcb1ed6ced17b23f61ac81514d201778e56a195412765759cff3ea695cdf095b5db7df2e5b0e04a889624a94a70c0004000005ff010001000b0009cb";
    // zeek smtp.pcap stream 4: mid-connection application data records.
    const TLS_APPDATA: &str = "17030100203e8065b5262ade1a7492ac597ed3325ca1b24695122c7a6171e2992a9d204e3617030102a043e1bd";

    #[test]
    fn smtp_banner_and_ehlo() {
        let (b, e) = (unhex(SMTP_BANNER), unhex(SMTP_EHLO));
        assert_eq!(
            tcp(&e, &b),
            Some(("smtp", Some("[192.168.133.100]".into())))
        );
        assert_eq!(tcp(&[], &b), Some(("smtp", Some("uprise".into()))));
        assert_eq!(svc_tcp(&e, &[]), Some("smtp"));
        // An FTP banner is not SMTP, and USER after it is not POP3.
        assert_eq!(
            svc_tcp(b"USER anonymous\r\n", b"220 ProFTPD ready\r\n"),
            None
        );
    }

    #[test]
    fn pop3_imap_nntp_text() {
        assert_eq!(
            svc_tcp(&unhex(POP3_CAPA), &unhex(POP3_BANNER)),
            Some("pop3")
        );
        assert_eq!(svc_tcp(&unhex(POP3_CAPA), &[]), Some("pop3"));
        assert_eq!(svc_tcp(b"AUTH\r\n", &[]), Some("pop3"));
        assert_eq!(
            svc_tcp(&unhex(IMAP_CAPA), &unhex(IMAP_BANNER)),
            Some("imap")
        );
        assert_eq!(svc_tcp(&unhex(IMAP_CAPA), &[]), Some("imap"));
        assert_eq!(svc_tcp(&[], &unhex(IMAP_BANNER)), Some("imap"));
        assert_eq!(
            svc_tcp(
                b"",
                b"200 news.example.com InterNetNews NNRP server ready\r\n"
            ),
            Some("nntp")
        );
        assert_eq!(svc_tcp(b"MODE READER\r\n", b""), Some("nntp"));
        assert_eq!(svc_tcp(b"GROUP comp.lang.rust\r\n", b""), Some("nntp"));
        assert_eq!(svc_tcp(b"LIST\r\n", b""), None);
    }

    #[test]
    fn http_and_rpc_over_http() {
        let get = b"GET /owa/ HTTP/1.1\r\nHost: mail.contoso.com\r\nUser-Agent: x\r\n\r\n";
        assert_eq!(
            tcp(get, b""),
            Some(("http", Some("mail.contoso.com".into())))
        );
        let rpc = b"RPC_IN_DATA /rpc/rpcproxy.dll?ex01.contoso.com:6001 HTTP/1.1\r\nhost: mail.contoso.com\r\n\r\n";
        assert_eq!(
            tcp(rpc, b""),
            Some(("rpc-over-http", Some("mail.contoso.com".into())))
        );
        let rpc_get = b"GET /RPC/RpcProxy.dll HTTP/1.0\r\n\r\n";
        assert_eq!(svc_tcp(rpc_get, b""), Some("rpc-over-http"));
        assert_eq!(svc_tcp(b"", b"ncacn_http/1.0"), Some("rpc-over-http"));
        assert_eq!(svc_tcp(b"", b"HTTP/1.1 200 OK\r\n"), Some("http"));
        assert_eq!(svc_tcp(b"GET / HTTP/2.0\r\n\r\n", b""), None);
        assert_eq!(svc_tcp(b"FETCH / HTTP/1.1\r\n\r\n", b""), None);
    }

    #[test]
    fn tls_hello_sni_and_records() {
        assert_eq!(
            tcp(&unhex(TLS_CH), &[]),
            Some(("tls", Some("p31-keyvalueservice.icloud.com".into())))
        );
        // Cut inside the SNI: still TLS, no detail.
        let ch = unhex(TLS_CH);
        let sni_at = ch.windows(3).position(|w| w == b"p31").unwrap();
        assert_eq!(tcp(&ch[..sni_at + 5], &[]), Some(("tls", None)));
        assert_eq!(tcp(&[], &unhex(TLS_SH)), Some(("tls", None)));
        assert_eq!(tcp(&unhex(TLS_APPDATA), &[]), Some(("tls", None)));
        // A hello with a bad version is not TLS.
        let mut bad = unhex(TLS_CH);
        bad[9] = 2;
        assert_eq!(svc_tcp(&bad, &[]), None);
        assert_eq!(tls_service_for_port(443), "https");
        assert_eq!(tls_service_for_port(3269), "gc-ssl");
        assert_eq!(tls_service_for_port(8443), "tls");
    }

    #[test]
    fn smb_and_netbios_session() {
        // zeek smb3.pcap: client negotiate (first 18 bytes).
        let smb2 = hex("00 00 00 66 fe 53 4d 42 40 00 00 00 00 00 00 00 00 00");
        assert_eq!(tcp(&smb2, &[]), Some(("smb", Some("SMB2".into()))));
        let smb1 = hex("00 00 00 54 ff 53 4d 42 72 00 00 00 00");
        assert_eq!(tcp(&smb1, &[]), Some(("smb", Some("SMB1".into()))));
        // Session request *SMBSERVER <20> from CLIENT <00>.
        let mut req = vec![0x81, 0, 0, 68, 0x20];
        req.extend_from_slice(b"CKFDENECFDEFFCFGEFFCCACACACACACA");
        req.push(0);
        req.push(0x20);
        req.extend_from_slice(b"EDEMEJEFEOFECACACACACACACACACAAA");
        req.push(0);
        assert_eq!(svc_tcp(&req, &[0x82, 0, 0, 0]), Some("netbios-ssn"));
        assert_eq!(svc_tcp(&req[..req.len() - 1], &[]), None);
    }

    // ldap/aduser1.pcap: TCP 88 AS-REQ (4-byte length + PDU, first 22 bytes).
    const KRB_TCP_ASREQ: &str = "000000b86a81b53081b2a103020105a20302010aa315";
    // krb/kinit.pcap UDP 88: AS-REQ start, KRB-ERROR start.
    const KRB_UDP_ASREQ: &str = "6a81af3081aca103020105a20302010aa30e";
    const KRB_UDP_ERR: &str = "7e8201f6308201f2a003020105a10302011ea211";

    #[test]
    fn kerberos_tcp_and_udp() {
        assert_eq!(
            tcp(&unhex(KRB_TCP_ASREQ), &[]),
            Some(("kerberos", Some("AS-REQ".into())))
        );
        // A wrong 4-byte length is not Kerberos.
        let mut bad = unhex(KRB_TCP_ASREQ);
        bad[3] = 0xb7;
        assert_eq!(svc_tcp(&bad, &[]), None);
        assert_eq!(
            svc_udp(&unhex(KRB_UDP_ASREQ), &[], 50000, 88),
            Some("kerberos")
        );
        assert_eq!(
            recognize_udp(&[], &unhex(KRB_UDP_ERR), 50000, 88).and_then(|r| r.detail),
            Some("KRB-ERROR".into())
        );
    }

    // ldap/aduser1.pcap: SASL bindRequest (first 28 bytes).
    const LDAP_BIND: &str = "30820580020455d69f616082057602010304055573657231a3820568";
    // lab client-tap.pcap: rootDSE searchRequest (first 40 bytes), the BER
    // CLDAP carries too.
    const CLDAP_SEARCH: &str =
        "3053020101634e04000a01000a0100020100020100010100a120870b6f626a656374436c617373";

    #[test]
    fn ldap_tcp_and_cldap() {
        assert_eq!(
            tcp(&unhex(LDAP_BIND), &[]),
            Some(("ldap", Some("bindRequest".into())))
        );
        assert_eq!(svc_udp(&unhex(CLDAP_SEARCH), &[], 50000, 389), Some("ldap"));
        // protocolOp longer than the message.
        let mut bad = unhex(CLDAP_SEARCH);
        bad[6] = 0x60;
        assert_eq!(svc_udp(&bad, &[], 50000, 389), None);
    }

    // smtp.pcap: the DNS query for mail.patriots.in.
    const DNS_QUERY: &str = "795601000001000000000000046d61696c0870617472696f747302696e0000010001";

    #[test]
    fn dns_udp_and_tcp() {
        let q = unhex(DNS_QUERY);
        assert_eq!(
            recognize_udp(&q, &[], 40000, 53),
            Some(Recognized::new("dns", Some("mail.patriots.in".into())))
        );
        let mut t = vec![0, q.len() as u8];
        t.extend_from_slice(&q);
        assert_eq!(svc_tcp(&t, &[]), Some("dns"));
        let mut bad = q.clone();
        bad[5] = 0; // qdcount 0
        assert_eq!(svc_udp(&bad, &[], 40000, 53), None);
    }

    #[test]
    fn netbios_and_ntp_udp() {
        // NBNS name query for WORKGROUP<1b>-like encoded name, broadcast.
        let mut nbns = hex("82 28 01 10 00 01 00 00 00 00 00 00 20");
        nbns.extend_from_slice(b"FHEPFCELEHFCEPFFFACACACACACACABL");
        nbns.extend_from_slice(&[0, 0, 0x20, 0, 1]);
        assert_eq!(svc_udp(&nbns, &[], 137, 137), Some("netbios-ns"));
        // Away from 137 the header alone is too weak to call NetBIOS (it is
        // DNS-shaped, and may be taken for DNS).
        assert_ne!(svc_udp(&nbns, &[], 5000, 6000), Some("netbios-ns"));
        // smtp.pcap: NetBIOS datagram 0x11 from 10.10.1.20:138 (first 47 bytes).
        let dgm = unhex("110280de0a0a0114008a00bb000020454e454a4645434e44444545444744464446454245424441444a4545454543410020");
        assert_eq!(svc_udp(&dgm, &[], 138, 138), Some("netbios-dgm"));
        // NTP v4 client request, 48 bytes.
        let mut ntp = vec![0u8; 48];
        ntp[0] = 0x23;
        ntp[40..48].copy_from_slice(&[0xe8, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(svc_udp(&ntp, &[], 40000, 123), Some("ntp"));
        assert_eq!(svc_udp(&ntp, &[], 40000, 4000), None);
        let mut resp = vec![0u8; 48];
        resp[0] = 0x24;
        resp[24..32].copy_from_slice(&ntp[40..48]);
        assert_eq!(svc_udp(&ntp, &resp, 40000, 4000), Some("ntp"));
        assert_eq!(svc_udp(&ntp[..47], &[], 40000, 123), None);
    }

    #[test]
    fn mismatch_semantics() {
        assert!(!mismatch(None, "smtp"));
        assert!(!mismatch(Some("smtp"), "smtp"));
        assert!(mismatch(Some("smtp"), "http"));
        assert!(mismatch(Some("smtp"), "tls"));
        assert!(!mismatch(Some("https"), "tls"));
        assert!(!mismatch(Some("gc-ssl"), "tls"));
        assert!(!mismatch(Some("gc"), "ldap"));
        assert!(mismatch(Some("ldaps"), "ldap"));
        assert!(mismatch(Some("https"), "http"));
        assert!(!mismatch(Some("http"), "rpc-over-http"));
        assert!(!mismatch(Some("netbios-ssn"), "smb"));
    }

    fn samples() -> Vec<(Vec<u8>, bool, &'static str)> {
        // (bytes, client side?, service)
        vec![
            (unhex(SMTP_BANNER), false, "smtp"),
            (unhex(SMTP_EHLO), true, "smtp"),
            (unhex(POP3_BANNER), false, "pop3"),
            (unhex(POP3_CAPA), true, "pop3"),
            (unhex(IMAP_BANNER), false, "imap"),
            (unhex(IMAP_CAPA), true, "imap"),
            (unhex(TLS_CH), true, "tls"),
            (unhex(TLS_SH), false, "tls"),
            (unhex(TLS_APPDATA), true, "tls"),
            (unhex(KRB_TCP_ASREQ), true, "kerberos"),
            (unhex(LDAP_BIND), true, "ldap"),
            (
                b"GET /rpc/rpcproxy.dll HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
                true,
                "rpc-over-http",
            ),
            (b"ncacn_http/1.0".to_vec(), false, "rpc-over-http"),
            (hex("00 00 00 66 fe 53 4d 42 40 00"), true, "smb"),
        ]
    }

    #[test]
    fn truncated_signatures_are_none_or_the_same() {
        for (bytes, client, svc) in samples() {
            for n in 0..=bytes.len() {
                let cut = &bytes[..n];
                let got = if client {
                    svc_tcp(cut, &[])
                } else {
                    svc_tcp(&[], cut)
                };
                assert!(
                    got.is_none() || got == Some(svc),
                    "{svc} cut at {n}: {got:?}"
                );
            }
        }
        for (bytes, svc) in [
            (unhex(KRB_UDP_ASREQ), "kerberos"),
            (unhex(KRB_UDP_ERR), "kerberos"),
            (unhex(CLDAP_SEARCH), "ldap"),
            (unhex(DNS_QUERY), "dns"),
        ] {
            for n in 0..=bytes.len() {
                let got = svc_udp(&bytes[..n], &[], 40000, 389);
                assert!(
                    got.is_none() || got == Some(svc),
                    "{svc} cut at {n}: {got:?}"
                );
            }
        }
    }

    #[test]
    fn random_bytes_never_panic_and_rarely_match() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut hits = 0;
        const N: usize = 20_000;
        for _ in 0..N {
            let len = (next() % 600) as usize;
            let a: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let len = (next() % 600) as usize;
            let b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            hits += recognize_tcp(&a, &b).is_some() as usize;
            hits += recognize_udp(&a, &b, 40000, 50000).is_some() as usize;
            // Port-assisted signatures may match random bytes; only no panics.
            let _ = recognize_udp(&a, &b, 137, 138);
            let _ = recognize_udp(&a, &b, 123, 138);
        }
        assert!(hits < N / 1000, "{hits} random matches");
    }
}
