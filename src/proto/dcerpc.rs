//! DCE/RPC: connection-oriented PDUs (ncacn_*, protocols.md §1.1–1.9, §1.11)
//! and the connectionless header (ncadg_ip_udp, §1.10).
//!
//! Pure functions over `&[u8]`: no I/O, no flow state, no panics on any
//! input. Slices returned borrow from the input. Two small stateful helpers
//! that still do no I/O live here too: [`PduFramer`] (stream → whole PDUs)
//! and [`CallReassembler`] (fragments → whole call stubs).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

// ---------------------------------------------------------------------------
// UUID

/// A UUID, stored in canonical (text / RFC 4122) byte order so that equality
/// and display do not depend on the drep of the PDU it came from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    pub const NIL: Uuid = Uuid([0; 16]);

    /// Build from the text-form fields, e.g.
    /// `Uuid::from_fields(0xe1af8308, 0x5d1f, 0x11c9, [0x91, 0xa4, 0x08, 0x00, 0x2b, 0x14, 0xa0, 0xfa])`.
    pub const fn from_fields(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Uuid {
        let a = d1.to_be_bytes();
        let b = d2.to_be_bytes();
        let c = d3.to_be_bytes();
        Uuid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
            d4[5], d4[6], d4[7],
        ])
    }

    /// Decode 16 wire bytes: Data1–3 in the PDU's integer order, Data4 verbatim.
    pub const fn from_wire(b: &[u8; 16], little_endian: bool) -> Uuid {
        if little_endian {
            Uuid([
                b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12],
                b[13], b[14], b[15],
            ])
        } else {
            Uuid(*b)
        }
    }

    /// Encode as little-endian wire bytes (what Windows sends).
    pub const fn to_wire_le(&self) -> [u8; 16] {
        let b = self.0;
        [
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
            b[14], b[15],
        ]
    }

    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }

    /// Data4 (the last 8 bytes, never byte-swapped).
    pub fn data4(&self) -> [u8; 8] {
        let mut d = [0u8; 8];
        d.copy_from_slice(&self.0[8..]);
        d
    }
}

impl fmt::Display for Uuid {
    /// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lower case. Built in a stack
    /// buffer: reports print one per interface, hand-off and endpoint, and
    /// sixteen `{:02x}` arguments cost ten times as much.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = [b'-'; 36];
        let mut at = 0;
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                at += 1;
            }
            s[at] = HEX[usize::from(b >> 4)];
            s[at + 1] = HEX[usize::from(b & 15)];
            at += 2;
        }
        // Only ASCII hex digits and dashes were written.
        f.write_str(std::str::from_utf8(&s).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({self})")
    }
}

/// Error from [`Uuid::from_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseUuidError;

impl fmt::Display for ParseUuidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid UUID text (want xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
    }
}

impl std::error::Error for ParseUuidError {}

impl FromStr for Uuid {
    type Err = ParseUuidError;

    /// Accepts the dashed 36-character form, either case, optionally in braces.
    fn from_str(s: &str) -> Result<Uuid, ParseUuidError> {
        let s = s
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(s);
        let b = s.as_bytes();
        if b.len() != 36 {
            return Err(ParseUuidError);
        }
        let mut out = [0u8; 16];
        let mut n = 0;
        let mut i = 0;
        while i < 36 {
            if matches!(i, 8 | 13 | 18 | 23) {
                if b[i] != b'-' {
                    return Err(ParseUuidError);
                }
                i += 1;
                continue;
            }
            let hi = hex_val(b[i]).ok_or(ParseUuidError)?;
            let lo = hex_val(b[i + 1]).ok_or(ParseUuidError)?;
            out[n] = (hi << 4) | lo;
            n += 1;
            i += 2;
        }
        Ok(Uuid(out))
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// NDR 2.0 transfer syntax 8a885d04-1ceb-11c9-9fe8-08002b104860 v2.
pub const UUID_NDR20: Uuid = Uuid::from_fields(
    0x8a88_5d04,
    0x1ceb,
    0x11c9,
    [0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60],
);
/// NDR64 transfer syntax 71710533-beba-4937-8319-b5dbef9ccc36 v1.
pub const UUID_NDR64: Uuid = Uuid::from_fields(
    0x7171_0533,
    0xbeba,
    0x4937,
    [0x83, 0x19, 0xb5, 0xdb, 0xef, 0x9c, 0xcc, 0x36],
);
/// Endpoint mapper e1af8308-5d1f-11c9-91a4-08002b14a0fa v3.
pub const UUID_EPM: Uuid = Uuid::from_fields(
    0xe1af_8308,
    0x5d1f,
    0x11c9,
    [0x91, 0xa4, 0x08, 0x00, 0x2b, 0x14, 0xa0, 0xfa],
);
/// Data1–3 of the bind-time feature negotiation pseudo-syntax
/// 6cb71c2c-9812-4540-XXXX-XXXXXXXXXXXX (Data4 is the bitmask).
const BTFN_PREFIX: [u8; 8] = [0x6c, 0xb7, 0x1c, 0x2c, 0x98, 0x12, 0x45, 0x40];

// ---------------------------------------------------------------------------
// Errors

/// Why a DCE/RPC header or PDU was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DceError {
    /// Fewer bytes than the structure needs.
    Truncated { need: usize, have: usize },
    /// rpc_vers / rpc_vers_minor not 5.0/5.1 (CO) or 4 (CL).
    BadVersion { major: u8, minor: u8 },
    /// PTYPE out of range (or a CL-only type in a CO context and vice versa).
    BadPtype(u8),
    /// drep fails the sanity test (`drep[0] & 0xee == 0`, `drep[1] <= 3`).
    BadDrep([u8; 4]),
    /// frag_length below the 16-byte header.
    BadFragLength(u16),
    /// auth_length + 8 does not fit after the header.
    BadAuthLength { auth_length: u16, frag_length: u16 },
    /// `parse_pdu` was given a slice whose length is not frag_length.
    LengthMismatch { frag_length: u16, have: usize },
    /// A body field is inconsistent with the PDU (the text says which).
    Malformed(&'static str),
}

impl fmt::Display for DceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DceError::Truncated { need, have } => {
                write!(f, "truncated: need {need} bytes, have {have}")
            }
            DceError::BadVersion { major, minor } => write!(f, "bad rpc version {major}.{minor}"),
            DceError::BadPtype(p) => write!(f, "bad packet type {p}"),
            DceError::BadDrep(d) => write!(f, "bad data representation {d:02x?}"),
            DceError::BadFragLength(l) => write!(f, "bad frag_length {l}"),
            DceError::BadAuthLength {
                auth_length,
                frag_length,
            } => write!(
                f,
                "auth_length {auth_length} does not fit frag_length {frag_length}"
            ),
            DceError::LengthMismatch { frag_length, have } => {
                write!(f, "frag_length {frag_length} but {have} bytes given")
            }
            DceError::Malformed(what) => write!(f, "malformed PDU: {what}"),
        }
    }
}

impl std::error::Error for DceError {}

fn need(buf: &[u8], n: usize) -> Result<(), DceError> {
    if buf.len() < n {
        Err(DceError::Truncated {
            need: n,
            have: buf.len(),
        })
    } else {
        Ok(())
    }
}

/// Integer reads in the PDU's byte order at absolute offsets (caller checks bounds).
#[derive(Clone, Copy)]
struct Endian(bool);

impl Endian {
    fn u16(self, b: &[u8], off: usize) -> u16 {
        let a = [b[off], b[off + 1]];
        if self.0 {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        }
    }
    fn u32(self, b: &[u8], off: usize) -> u32 {
        let a = [b[off], b[off + 1], b[off + 2], b[off + 3]];
        if self.0 {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    }
    fn uuid(self, b: &[u8], off: usize) -> Uuid {
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[off..off + 16]);
        Uuid::from_wire(&a, self.0)
    }
}

fn drep_sane(drep: &[u8]) -> bool {
    drep[0] & 0xee == 0 && drep[1] <= 3
}

// ---------------------------------------------------------------------------
// Connection-oriented header

/// PTYPE values (protocols.md §1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum PacketType {
    Request = 0,
    Ping = 1,
    Response = 2,
    Fault = 3,
    Working = 4,
    Nocall = 5,
    Reject = 6,
    Ack = 7,
    ClCancel = 8,
    Fack = 9,
    CancelAck = 10,
    Bind = 11,
    BindAck = 12,
    BindNak = 13,
    AlterContext = 14,
    AlterContextResp = 15,
    Auth3 = 16,
    Shutdown = 17,
    CoCancel = 18,
    Orphaned = 19,
    Rts = 20,
}

impl PacketType {
    pub fn from_u8(v: u8) -> Option<PacketType> {
        use PacketType::*;
        Some(match v {
            0 => Request,
            1 => Ping,
            2 => Response,
            3 => Fault,
            4 => Working,
            5 => Nocall,
            6 => Reject,
            7 => Ack,
            8 => ClCancel,
            9 => Fack,
            10 => CancelAck,
            11 => Bind,
            12 => BindAck,
            13 => BindNak,
            14 => AlterContext,
            15 => AlterContextResp,
            16 => Auth3,
            17 => Shutdown,
            18 => CoCancel,
            19 => Orphaned,
            20 => Rts,
            _ => return None,
        })
    }

    /// True for the types that occur on connection-oriented transports.
    pub fn is_connection_oriented(self) -> bool {
        matches!(self as u8, 0 | 2 | 3 | 11..=20)
    }
}

/// pfc_flags bits (protocols.md §1.3).
pub mod pfc {
    pub const FIRST_FRAG: u8 = 0x01;
    pub const LAST_FRAG: u8 = 0x02;
    /// PENDING_CANCEL on requests, SUPPORT_HEADER_SIGN on bind/alter.
    pub const PENDING_CANCEL: u8 = 0x04;
    pub const CONC_MPX: u8 = 0x10;
    pub const DID_NOT_EXECUTE: u8 = 0x20;
    pub const MAYBE: u8 = 0x40;
    pub const OBJECT_UUID: u8 = 0x80;
}

/// Length of the connection-oriented common header.
pub const CO_HEADER_LEN: usize = 16;

/// The 16-byte common header of every connection-oriented PDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoHeader {
    pub rpc_vers: u8,
    pub rpc_vers_minor: u8,
    pub ptype: PacketType,
    pub pfc_flags: u8,
    pub drep: [u8; 4],
    pub frag_length: u16,
    pub auth_length: u16,
    pub call_id: u32,
}

impl CoHeader {
    /// Integers in this PDU are little-endian (`drep[0] & 0x10`).
    pub fn little_endian(&self) -> bool {
        self.drep[0] & 0x10 != 0
    }
    pub fn first_frag(&self) -> bool {
        self.pfc_flags & pfc::FIRST_FRAG != 0
    }
    pub fn last_frag(&self) -> bool {
        self.pfc_flags & pfc::LAST_FRAG != 0
    }
    pub fn has_object_uuid(&self) -> bool {
        self.pfc_flags & pfc::OBJECT_UUID != 0
    }
}

/// Parse and validate the common header (protocols.md §1.1, §1.11): version
/// 5.0/5.1, PTYPE ≤ 20, drep sanity, frag_length ≥ 16 and, when auth_length
/// is non-zero, auth_length + 8 ≤ frag_length − 16. Only the first 16 bytes
/// of `buf` are read; the rest of the fragment need not be present.
pub fn parse_header(buf: &[u8]) -> Result<CoHeader, DceError> {
    need(buf, CO_HEADER_LEN)?;
    let (major, minor) = (buf[0], buf[1]);
    if major != 5 || minor > 1 {
        return Err(DceError::BadVersion { major, minor });
    }
    let ptype = PacketType::from_u8(buf[2]).ok_or(DceError::BadPtype(buf[2]))?;
    let drep = [buf[4], buf[5], buf[6], buf[7]];
    if !drep_sane(&drep) {
        return Err(DceError::BadDrep(drep));
    }
    let e = Endian(drep[0] & 0x10 != 0);
    let frag_length = e.u16(buf, 8);
    let auth_length = e.u16(buf, 10);
    if (frag_length as usize) < CO_HEADER_LEN {
        return Err(DceError::BadFragLength(frag_length));
    }
    if auth_length != 0 && auth_length as usize + 8 > frag_length as usize - CO_HEADER_LEN {
        return Err(DceError::BadAuthLength {
            auth_length,
            frag_length,
        });
    }
    Ok(CoHeader {
        rpc_vers: major,
        rpc_vers_minor: minor,
        ptype,
        pfc_flags: buf[3],
        drep,
        frag_length,
        auth_length,
        call_id: e.u32(buf, 12),
    })
}

/// Does `buf` start with a plausible connection-oriented DCE/RPC PDU?
/// [`parse_header`] succeeds and the type is one used on CO transports.
/// Meant for recognising DCE/RPC on any port from the first payload bytes.
pub fn looks_like_dcerpc(buf: &[u8]) -> bool {
    matches!(parse_header(buf), Ok(h) if h.ptype.is_connection_oriented())
}

// ---------------------------------------------------------------------------
// PDU bodies

/// An abstract or transfer syntax identifier: UUID + u32 version
/// (major in the low 16 bits, minor in the high 16 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SyntaxId {
    pub uuid: Uuid,
    pub version: u32,
}

impl SyntaxId {
    pub fn major(&self) -> u16 {
        self.version as u16
    }
    pub fn minor(&self) -> u16 {
        (self.version >> 16) as u16
    }
    /// What kind of transfer syntax this is.
    pub fn kind(&self) -> TransferSyntaxKind {
        if self.uuid == UUID_NDR20 {
            TransferSyntaxKind::Ndr20
        } else if self.uuid == UUID_NDR64 {
            TransferSyntaxKind::Ndr64
        } else if self.uuid.0[..8] == BTFN_PREFIX {
            TransferSyntaxKind::BindTimeFeatures(u64::from_le_bytes(self.uuid.data4()))
        } else if self.uuid.is_nil() {
            TransferSyntaxKind::None
        } else {
            TransferSyntaxKind::Other
        }
    }
}

/// Classification of a transfer syntax (protocols.md §1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferSyntaxKind {
    Ndr20,
    Ndr64,
    /// Bind-time feature negotiation; the value is the BindTimeFeatureNegotiationBitmask
    /// (0x01 security-context multiplexing, 0x02 keep connection on orphan).
    BindTimeFeatures(u64),
    /// All-zero syntax (a rejected slot in a bind_ack).
    None,
    Other,
}

/// One `p_cont_elem` of a bind / alter_context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentationContext {
    pub context_id: u16,
    pub abstract_syntax: SyntaxId,
    pub transfer_syntaxes: Vec<SyntaxId>,
}

/// bind (11) / alter_context (14) body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    pub max_xmit_frag: u16,
    pub max_recv_frag: u16,
    pub assoc_group_id: u32,
    pub contexts: Vec<PresentationContext>,
}

/// bind_ack / alter_context_resp `result` values.
pub mod ack_result {
    pub const ACCEPTANCE: u16 = 0;
    pub const USER_REJECTION: u16 = 1;
    pub const PROVIDER_REJECTION: u16 = 2;
    /// Bind-time feature negotiation answer; `reason` holds the accepted bits.
    pub const NEGOTIATE_ACK: u16 = 3;
}

/// One positional result of a bind_ack: answers `contexts[i]` of the bind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextResult {
    pub result: u16,
    pub reason: u16,
    pub transfer_syntax: SyntaxId,
}

impl ContextResult {
    pub fn accepted(&self) -> bool {
        self.result == ack_result::ACCEPTANCE
    }
}

/// bind_ack (12) / alter_context_resp (15) body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindAck<'a> {
    pub max_xmit_frag: u16,
    pub max_recv_frag: u16,
    pub assoc_group_id: u32,
    /// `sec_addr.port_spec` as sent (may include the NUL, may lack it).
    pub sec_addr: &'a [u8],
    pub results: Vec<ContextResult>,
}

impl BindAck<'_> {
    /// `sec_addr` up to its first NUL, if it is valid UTF-8 (ASCII in practice).
    pub fn sec_addr_str(&self) -> Option<&str> {
        let end = self
            .sec_addr
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(self.sec_addr.len());
        std::str::from_utf8(&self.sec_addr[..end]).ok()
    }
}

/// request (0) body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub alloc_hint: u32,
    pub context_id: u16,
    pub opnum: u16,
    pub object: Option<Uuid>,
    /// Stub bytes, without auth padding and trailer.
    pub stub: &'a [u8],
}

/// response (2) body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response<'a> {
    pub alloc_hint: u32,
    pub context_id: u16,
    pub cancel_count: u8,
    /// Stub bytes, without auth padding and trailer.
    pub stub: &'a [u8],
}

/// fault (3) body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub alloc_hint: u32,
    pub context_id: u16,
    pub cancel_count: u8,
    pub flags: u8,
    pub status: u32,
}

/// The typed body of a connection-oriented PDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoBody<'a> {
    Bind(Bind),
    AlterContext(Bind),
    BindAck(BindAck<'a>),
    AlterContextResp(BindAck<'a>),
    BindNak {
        reason: u16,
    },
    Request(Request<'a>),
    Response(Response<'a>),
    Fault(Fault),
    Auth3,
    Shutdown,
    CoCancel,
    Orphaned,
    /// RTS (ncacn_http) and anything else: the body bytes before any auth trailer.
    Other(&'a [u8]),
}

/// auth_level values (protocols.md §1.9).
pub mod auth_level {
    pub const NONE: u8 = 1;
    pub const CONNECT: u8 = 2;
    pub const CALL: u8 = 3;
    pub const PACKET: u8 = 4;
    pub const INTEGRITY: u8 = 5;
    pub const PRIVACY: u8 = 6;
}

/// The sec_trailer plus auth_value, located from the end of the PDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthVerifier<'a> {
    pub auth_type: u8,
    pub auth_level: u8,
    pub pad_length: u8,
    pub context_id: u32,
    pub value: &'a [u8],
}

/// One parsed connection-oriented PDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoPdu<'a> {
    pub header: CoHeader,
    pub body: CoBody<'a>,
    pub auth: Option<AuthVerifier<'a>>,
}

impl CoPdu<'_> {
    /// True when the stub is sealed (auth level 6, packet privacy): stub
    /// parameters cannot be parsed, only their length is meaningful.
    pub fn stub_encrypted(&self) -> bool {
        matches!(self.auth, Some(a) if a.auth_level == auth_level::PRIVACY)
    }

    /// The stub of a request or response.
    pub fn stub(&self) -> Option<&[u8]> {
        match &self.body {
            CoBody::Request(r) => Some(r.stub),
            CoBody::Response(r) => Some(r.stub),
            _ => None,
        }
    }
}

/// Parse one whole fragment: `pdu.len()` must equal frag_length.
pub fn parse_pdu(pdu: &[u8]) -> Result<CoPdu<'_>, DceError> {
    let header = parse_header(pdu)?;
    if pdu.len() != header.frag_length as usize {
        return Err(DceError::LengthMismatch {
            frag_length: header.frag_length,
            have: pdu.len(),
        });
    }
    if !header.ptype.is_connection_oriented() {
        return Err(DceError::BadPtype(header.ptype as u8));
    }
    let e = Endian(header.little_endian());
    let flen = pdu.len();

    // Auth verifier from the end (§1.9); parse_header guaranteed it fits.
    let (auth, body_end, pad) = if header.auth_length != 0 {
        let t = flen - header.auth_length as usize - 8;
        let a = AuthVerifier {
            auth_type: pdu[t],
            auth_level: pdu[t + 1],
            pad_length: pdu[t + 2],
            context_id: e.u32(pdu, t + 4),
            value: &pdu[t + 8..],
        };
        (Some(a), t, a.pad_length as usize)
    } else {
        (None, flen, 0)
    };

    let body = match header.ptype {
        PacketType::Bind | PacketType::AlterContext => {
            let b = parse_bind(pdu, body_end, e)?;
            if header.ptype == PacketType::Bind {
                CoBody::Bind(b)
            } else {
                CoBody::AlterContext(b)
            }
        }
        PacketType::BindAck | PacketType::AlterContextResp => {
            let b = parse_bind_ack(pdu, body_end, e)?;
            if header.ptype == PacketType::BindAck {
                CoBody::BindAck(b)
            } else {
                CoBody::AlterContextResp(b)
            }
        }
        PacketType::BindNak => {
            need(&pdu[..body_end], 18)?;
            CoBody::BindNak {
                reason: e.u16(pdu, 16),
            }
        }
        PacketType::Request => {
            let hdr_len = if header.has_object_uuid() { 40 } else { 24 };
            let stub = stub_slice(pdu, hdr_len, body_end, pad)?;
            CoBody::Request(Request {
                alloc_hint: e.u32(pdu, 16),
                context_id: e.u16(pdu, 20),
                opnum: e.u16(pdu, 22),
                object: header.has_object_uuid().then(|| e.uuid(pdu, 24)),
                stub,
            })
        }
        PacketType::Response => {
            let stub = stub_slice(pdu, 24, body_end, pad)?;
            CoBody::Response(Response {
                alloc_hint: e.u32(pdu, 16),
                context_id: e.u16(pdu, 20),
                cancel_count: pdu[22],
                stub,
            })
        }
        PacketType::Fault => {
            need(&pdu[..body_end], 28)?;
            CoBody::Fault(Fault {
                alloc_hint: e.u32(pdu, 16),
                context_id: e.u16(pdu, 20),
                cancel_count: pdu[22],
                flags: pdu[23],
                status: e.u32(pdu, 24),
            })
        }
        PacketType::Auth3 => CoBody::Auth3,
        PacketType::Shutdown => CoBody::Shutdown,
        PacketType::CoCancel => CoBody::CoCancel,
        PacketType::Orphaned => CoBody::Orphaned,
        _ => CoBody::Other(&pdu[CO_HEADER_LEN..body_end]),
    };
    Ok(CoPdu { header, body, auth })
}

fn stub_slice(pdu: &[u8], hdr_len: usize, body_end: usize, pad: usize) -> Result<&[u8], DceError> {
    if body_end < hdr_len {
        return Err(DceError::Truncated {
            need: hdr_len,
            have: body_end,
        });
    }
    // auth_pad_length is untrusted: it may exceed the whole body.
    match body_end.checked_sub(pad) {
        Some(end) if end >= hdr_len => pdu
            .get(hdr_len..end)
            .ok_or(DceError::Malformed("stub beyond the PDU")),
        _ => Err(DceError::Malformed("auth_pad_length exceeds the stub")),
    }
}

fn parse_syntax(pdu: &[u8], off: usize, e: Endian) -> SyntaxId {
    SyntaxId {
        uuid: e.uuid(pdu, off),
        version: e.u32(pdu, off + 16),
    }
}

fn parse_bind(pdu: &[u8], end: usize, e: Endian) -> Result<Bind, DceError> {
    let body = &pdu[..end];
    need(body, 28)?;
    let n = body[24] as usize;
    let mut contexts = Vec::new();
    let mut off = 28;
    for _ in 0..n {
        need(body, off + 24)?;
        let context_id = e.u16(body, off);
        let n_syn = body[off + 2] as usize;
        let abstract_syntax = parse_syntax(body, off + 4, e);
        off += 24;
        need(body, off + 20 * n_syn)?;
        let transfer_syntaxes = (0..n_syn)
            .map(|i| parse_syntax(body, off + 20 * i, e))
            .collect();
        off += 20 * n_syn;
        contexts.push(PresentationContext {
            context_id,
            abstract_syntax,
            transfer_syntaxes,
        });
    }
    Ok(Bind {
        max_xmit_frag: e.u16(body, 16),
        max_recv_frag: e.u16(body, 18),
        assoc_group_id: e.u32(body, 20),
        contexts,
    })
}

fn parse_bind_ack(pdu: &[u8], end: usize, e: Endian) -> Result<BindAck<'_>, DceError> {
    let body = &pdu[..end];
    need(body, 26)?;
    let sec_len = e.u16(body, 24) as usize;
    need(body, 26 + sec_len)?;
    let sec_addr = &body[26..26 + sec_len];
    // Pad to 4 measured from the start of the PDU (§1.5).
    let a = (26 + sec_len).div_ceil(4) * 4;
    need(body, a + 4)?;
    let n = body[a] as usize;
    need(body, a + 4 + 24 * n)?;
    let results = (0..n)
        .map(|i| {
            let o = a + 4 + 24 * i;
            ContextResult {
                result: e.u16(body, o),
                reason: e.u16(body, o + 2),
                transfer_syntax: parse_syntax(body, o + 4, e),
            }
        })
        .collect();
    Ok(BindAck {
        max_xmit_frag: e.u16(body, 16),
        max_recv_frag: e.u16(body, 18),
        assoc_group_id: e.u32(body, 20),
        sec_addr,
        results,
    })
}

// ---------------------------------------------------------------------------
// Stream framing

/// Counters kept by [`PduFramer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FramerStats {
    /// Whole PDUs handed out.
    pub pdus: u64,
    /// Times the framer lost sync (garbage, gap, overflow) and had to search for a header.
    pub resyncs: u64,
    /// Bytes discarded while searching or on overflow.
    pub bytes_skipped: u64,
}

enum Search {
    Found(usize),
    WaitAt(usize),
    NeedMore { keep_from: usize, resume: usize },
}

/// Default bound on the framer's buffer: a few maximum-size fragments.
pub const DEFAULT_FRAMER_BUFFER: usize = 4 * 65536;

/// Splits one direction of an in-order TCP byte stream into whole
/// connection-oriented PDUs by `frag_length`, whatever the segmentation.
///
/// **In sync** (stream start, or after a PDU) the bytes at the cursor must
/// be a valid header ([`parse_header`] and a CO packet type); the PDU is
/// handed out once `frag_length` bytes are buffered, even if its body does
/// not parse — the caller's [`parse_pdu`] reports that.
///
/// **Resync heuristic.** When the bytes at the cursor are not a valid header
/// (garbage, or after [`PduFramer::gap`]/overflow), the framer scans forward
/// one byte at a time for an offset where (1) [`parse_header`] succeeds with
/// a CO packet type and (2) once its whole fragment is buffered, [`parse_pdu`]
/// accepts it (length, body structure, auth trailer all consistent). A
/// candidate whose fragment is not yet complete makes the framer wait for
/// more bytes (they are kept, so nothing is lost if it turns out false).
/// Every decision depends only on the bytes, never on how they were
/// segmented, so any split of the same stream yields the same PDUs.
#[derive(Debug)]
pub struct PduFramer {
    buf: Vec<u8>,
    start: usize,
    max_buffer: usize,
    in_sync: bool,
    /// Next offset (relative to `start`) to test while resyncing.
    scan: usize,
    /// Largest frag_length a resync candidate may claim.
    max_candidate: usize,
    stats: FramerStats,
}

impl Default for PduFramer {
    fn default() -> Self {
        Self::new(DEFAULT_FRAMER_BUFFER)
    }
}

impl PduFramer {
    /// `max_buffer` is raised to at least 65535 + 16 so one PDU always fits.
    pub fn new(max_buffer: usize) -> Self {
        PduFramer {
            buf: Vec::new(),
            start: 0,
            max_buffer: max_buffer.max(65535 + CO_HEADER_LEN),
            in_sync: true,
            scan: 0,
            max_candidate: usize::MAX,
            stats: FramerStats::default(),
        }
    }

    pub fn stats(&self) -> FramerStats {
        self.stats
    }

    /// Bytes currently buffered.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Heap bytes the buffer holds (its capacity), for memory budgets.
    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// Gives back buffer capacity beyond `keep` bytes once what is buffered
    /// fits in `keep` (the capacity a large segment once made it grow to
    /// would otherwise stay with the connection for its whole life: #23).
    pub fn release(&mut self, keep: usize) {
        if self.buf.capacity() <= keep || self.buffered() > keep {
            return;
        }
        self.buf.drain(..self.start);
        self.start = 0;
        self.buf.shrink_to(keep.max(self.buf.len()));
    }

    /// Resync candidates claiming more than `max` bytes are not waited for
    /// (the caller will not buffer such a PDU anyway; #23).
    pub fn set_max_candidate(&mut self, max: usize) {
        self.max_candidate = max;
    }

    /// In sync with nothing buffered: the next byte pushed starts a PDU, so
    /// a caller may frame whole PDUs straight from its own slice.
    pub fn is_idle(&self) -> bool {
        self.in_sync && self.buffered() == 0
    }

    /// In sync, with the start of a PDU buffered (its header at least) but
    /// not all of it: those bytes.
    pub fn partial(&self) -> Option<&[u8]> {
        let avail = &self.buf[self.start..];
        (self.in_sync && avail.len() >= CO_HEADER_LEN).then_some(avail)
    }

    /// Forgets the [`PduFramer::partial`] PDU: the caller passes over the
    /// rest of it. The framer is idle again (not counted as skipped: no
    /// sync was lost).
    pub fn pass_partial(&mut self) {
        self.buf.clear();
        self.start = 0;
    }

    /// Append stream bytes. Drain with [`PduFramer::next_pdu`] after each
    /// push; if the buffer would exceed its bound, the oldest bytes are
    /// dropped (counted in `bytes_skipped`) and the framer resyncs.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && (self.start >= self.buf.len() / 2 || self.buf.len() > self.max_buffer)
        {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
        let over = self.buffered().saturating_sub(self.max_buffer);
        if over > 0 {
            self.start += over;
            self.stats.bytes_skipped += over as u64;
            self.lose_sync();
        }
    }

    /// The stream has a hole (lost segment): drop what is buffered and resync.
    pub fn gap(&mut self) {
        self.stats.bytes_skipped += self.buffered() as u64;
        self.buf.clear();
        self.start = 0;
        self.lose_sync();
    }

    fn lose_sync(&mut self) {
        if self.in_sync {
            self.stats.resyncs += 1;
        }
        self.in_sync = false;
        self.scan = 0;
    }

    /// The next whole PDU (exactly frag_length bytes), if buffered.
    pub fn next_pdu(&mut self) -> Option<&[u8]> {
        loop {
            let avail = &self.buf[self.start..];
            if self.in_sync {
                if avail.len() < CO_HEADER_LEN {
                    return None;
                }
                match parse_header(avail) {
                    Ok(h) if h.ptype.is_connection_oriented() => {
                        let len = h.frag_length as usize;
                        if avail.len() < len {
                            return None;
                        }
                        return Some(self.take(len));
                    }
                    _ => self.lose_sync(),
                }
            } else {
                match Self::search(avail, self.scan, self.max_candidate) {
                    Search::Found(i) => {
                        self.skip(i);
                        self.in_sync = true;
                        self.scan = 0;
                    }
                    Search::WaitAt(i) => {
                        // Candidate header at i; wait for its whole fragment.
                        self.skip(i);
                        self.scan = 0;
                        return None;
                    }
                    Search::NeedMore { keep_from, resume } => {
                        self.skip(keep_from);
                        self.scan = resume;
                        return None;
                    }
                }
            }
        }
    }

    /// Resync search over `avail` from offset `from` (see the type docs).
    fn search(avail: &[u8], from: usize, max_candidate: usize) -> Search {
        let mut i = from;
        while i + CO_HEADER_LEN <= avail.len() {
            if let Ok(h) = parse_header(&avail[i..]) {
                if h.ptype.is_connection_oriented() && h.frag_length as usize <= max_candidate {
                    let len = h.frag_length as usize;
                    if avail.len() - i < len {
                        return Search::WaitAt(i);
                    }
                    if parse_pdu(&avail[i..i + len]).is_ok() {
                        return Search::Found(i);
                    }
                }
            }
            i += 1;
        }
        // Keep the last 15 bytes: a header may straddle the next push.
        let keep_from = avail.len().saturating_sub(CO_HEADER_LEN - 1).min(i);
        Search::NeedMore {
            keep_from,
            resume: i - keep_from,
        }
    }

    fn skip(&mut self, n: usize) {
        self.start += n;
        self.stats.bytes_skipped += n as u64;
    }

    fn take(&mut self, len: usize) -> &[u8] {
        let s = self.start;
        self.start += len;
        self.stats.pdus += 1;
        &self.buf[s..s + len]
    }
}

// ---------------------------------------------------------------------------
// Fragment reassembly

/// Counters kept by [`CallReassembler`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Calls completed (single- or multi-fragment).
    pub calls: u64,
    /// Calls built from more than one fragment.
    pub multi_fragment_calls: u64,
    /// Middle/last fragments with no call in progress.
    pub orphan_fragments: u64,
    /// Calls dropped because they grew beyond `max_bytes_per_call`.
    pub oversize: u64,
    /// First fragments refused because `max_calls` were already in progress.
    pub too_many_calls: u64,
    /// Calls in progress replaced by a new FIRST_FRAG with the same call_id.
    pub restarted: u64,
}

/// A whole call: the concatenated stub of a request or response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompleteCall<'a> {
    pub call_id: u32,
    pub ptype: PacketType,
    pub context_id: u16,
    /// Request opnum (None for responses).
    pub opnum: Option<u16>,
    pub little_endian: bool,
    /// Any fragment was sealed (auth level 6): the stub is ciphertext.
    pub encrypted: bool,
    pub fragments: u32,
    /// Borrowed for single-fragment calls, owned when concatenated.
    pub stub: Cow<'a, [u8]>,
}

#[derive(Debug)]
struct Partial {
    ptype: PacketType,
    context_id: u16,
    opnum: Option<u16>,
    little_endian: bool,
    encrypted: bool,
    fragments: u32,
    stub: Vec<u8>,
}

/// Reassembles multi-fragment requests and responses of ONE direction of a
/// connection, keyed by call_id (§1.8): stubs are concatenated from
/// FIRST_FRAG to LAST_FRAG in arrival order. Bounded in bytes per call and
/// in concurrent calls; refusals are counted in [`ReassemblyStats`].
#[derive(Debug)]
pub struct CallReassembler {
    calls: HashMap<u32, Partial>,
    max_bytes_per_call: usize,
    max_calls: usize,
    stats: ReassemblyStats,
}

impl Default for CallReassembler {
    fn default() -> Self {
        Self::new(4 << 20, 64)
    }
}

impl CallReassembler {
    pub fn new(max_bytes_per_call: usize, max_calls: usize) -> Self {
        CallReassembler {
            calls: HashMap::new(),
            max_bytes_per_call,
            max_calls,
            stats: ReassemblyStats::default(),
        }
    }

    pub fn stats(&self) -> ReassemblyStats {
        self.stats
    }

    /// Calls currently in progress.
    pub fn in_progress(&self) -> usize {
        self.calls.len()
    }

    /// Stub bytes held by calls in progress (their capacity), for memory
    /// budgets.
    pub fn heap_bytes(&self) -> usize {
        self.calls.values().map(|p| p.stub.capacity()).sum()
    }

    /// Feed one parsed PDU. Returns the whole call when `pdu` completes one.
    /// PDUs other than request/response are ignored (None).
    pub fn push<'a>(&mut self, pdu: &CoPdu<'a>) -> Option<CompleteCall<'a>> {
        let (context_id, opnum, stub) = match &pdu.body {
            CoBody::Request(r) => (r.context_id, Some(r.opnum), r.stub),
            CoBody::Response(r) => (r.context_id, None, r.stub),
            _ => return None,
        };
        let h = &pdu.header;
        let encrypted = pdu.stub_encrypted();
        if h.first_frag() {
            if self.calls.remove(&h.call_id).is_some() {
                self.stats.restarted += 1;
            }
            if h.last_frag() {
                self.stats.calls += 1;
                return Some(CompleteCall {
                    call_id: h.call_id,
                    ptype: h.ptype,
                    context_id,
                    opnum,
                    little_endian: h.little_endian(),
                    encrypted,
                    fragments: 1,
                    stub: Cow::Borrowed(stub),
                });
            }
            if self.calls.len() >= self.max_calls {
                self.stats.too_many_calls += 1;
                return None;
            }
            if stub.len() > self.max_bytes_per_call {
                self.stats.oversize += 1;
                return None;
            }
            self.calls.insert(
                h.call_id,
                Partial {
                    ptype: h.ptype,
                    context_id,
                    opnum,
                    little_endian: h.little_endian(),
                    encrypted,
                    fragments: 1,
                    stub: stub.to_vec(),
                },
            );
            return None;
        }
        let Some(p) = self.calls.get_mut(&h.call_id) else {
            self.stats.orphan_fragments += 1;
            return None;
        };
        if p.ptype != h.ptype {
            // A response fragment cannot continue a request: not this call.
            self.stats.orphan_fragments += 1;
            return None;
        }
        if p.stub.len() + stub.len() > self.max_bytes_per_call {
            self.calls.remove(&h.call_id);
            self.stats.oversize += 1;
            return None;
        }
        p.stub.extend_from_slice(stub);
        p.fragments += 1;
        p.encrypted |= encrypted;
        if !h.last_frag() {
            return None;
        }
        let p = self.calls.remove(&h.call_id)?;
        self.stats.calls += 1;
        self.stats.multi_fragment_calls += 1;
        Some(CompleteCall {
            call_id: h.call_id,
            ptype: p.ptype,
            context_id: p.context_id,
            opnum: p.opnum,
            little_endian: p.little_endian,
            encrypted: p.encrypted,
            fragments: p.fragments,
            stub: Cow::Owned(p.stub),
        })
    }
}

// ---------------------------------------------------------------------------
// Connectionless (ncadg_ip_udp)

/// Length of the connectionless header.
pub const CL_HEADER_LEN: usize = 80;

/// flags1 bits of the CL header.
pub mod cl_flags1 {
    pub const LAST_FRAG: u8 = 0x02;
    pub const FRAG: u8 = 0x04;
    pub const NO_FACK: u8 = 0x08;
    pub const MAYBE: u8 = 0x10;
    pub const IDEMPOTENT: u8 = 0x20;
    pub const BROADCAST: u8 = 0x40;
}

/// A connectionless datagram: the 80-byte header and its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClPdu<'a> {
    pub rpc_vers: u8,
    pub ptype: PacketType,
    pub flags1: u8,
    pub flags2: u8,
    pub drep: [u8; 3],
    pub serial: u16,
    pub object: Uuid,
    pub interface: Uuid,
    pub activity: Uuid,
    pub server_boot: u32,
    /// Interface version (major low 16 bits, minor high 16 bits).
    pub if_vers: u32,
    pub seqnum: u32,
    pub opnum: u16,
    pub ihint: u16,
    pub ahint: u16,
    pub fragnum: u16,
    pub auth_proto: u8,
    /// `len` bytes after the header.
    pub body: &'a [u8],
}

/// Parse a connectionless datagram (§1.10) with the §1.11 sanity tests:
/// version 4, PTYPE ≤ 10, drep sane, `flags2 & 0xfc == 0`, datagram ≥ 80 + len.
pub fn parse_cl_header(buf: &[u8]) -> Result<ClPdu<'_>, DceError> {
    need(buf, CL_HEADER_LEN)?;
    if buf[0] != 4 {
        return Err(DceError::BadVersion {
            major: buf[0],
            minor: 0,
        });
    }
    let ptype = PacketType::from_u8(buf[1])
        .filter(|p| (*p as u8) <= 10)
        .ok_or(DceError::BadPtype(buf[1]))?;
    if buf[3] & 0xfc != 0 {
        return Err(DceError::Malformed("CL flags2 reserved bits set"));
    }
    if !drep_sane(&[buf[4], buf[5], 0, 0]) {
        return Err(DceError::BadDrep([buf[4], buf[5], buf[6], 0]));
    }
    let e = Endian(buf[4] & 0x10 != 0);
    let len = e.u16(buf, 74) as usize;
    need(buf, CL_HEADER_LEN + len)?;
    Ok(ClPdu {
        rpc_vers: 4,
        ptype,
        flags1: buf[2],
        flags2: buf[3],
        drep: [buf[4], buf[5], buf[6]],
        serial: (u16::from(buf[7]) << 8) | u16::from(buf[79]),
        object: e.uuid(buf, 8),
        interface: e.uuid(buf, 24),
        activity: e.uuid(buf, 40),
        server_boot: e.u32(buf, 56),
        if_vers: e.u32(buf, 60),
        seqnum: e.u32(buf, 64),
        opnum: e.u16(buf, 68),
        ihint: e.u16(buf, 70),
        ahint: e.u16(buf, 72),
        fragnum: e.u16(buf, 76),
        auth_proto: buf[78],
        body: &buf[CL_HEADER_LEN..CL_HEADER_LEN + len],
    })
}

/// Connectionless recognition (Suricata's probe plus fragnum 0).
pub fn looks_like_dcerpc_cl(buf: &[u8]) -> bool {
    matches!(parse_cl_header(buf), Ok(p) if p.fragnum == 0)
}

#[cfg(test)]
pub(crate) mod tests;
