//! RFC 1006 (ISO transport over TCP, port 102), protocols.md §5: TPKT
//! framing, ISO 8073 / X.224 COTP TPDUs, and telling X.400 MTA traffic from
//! S7comm and MMS by the user data of the first DT TPDUs (§5.3).
//!
//! The parsers are pure functions over `&[u8]`: slices returned borrow from
//! the input, nothing panics on any input, and every length is checked
//! against the bytes present before it is used. [`Rfc1006Conn`] is the one
//! stateful piece (no I/O): it frames TPKT packets out of in-order stream
//! bytes per direction with a bounded buffer and tracks the connection's
//! outcome, TSAPs and application.

use std::fmt;

use serde::Serialize;

/// TPKT version (RFC 1006 §6).
pub const TPKT_VERSION: u8 = 3;
/// TPKT header: version, reserved, u16 BE length.
pub const TPKT_HEADER_LEN: usize = 4;
/// Smallest TPKT packet: header + a 3-byte TPDU (a class-0 DT: `02 f0 80`).
pub const TPKT_MIN_LEN: usize = 7;
/// Largest TPKT packet (the length field is a u16).
pub const TPKT_MAX_LEN: usize = 65535;
/// Bytes [`looks_like_tpkt`] inspects: the TPKT header plus COTP LI and code.
pub const TPKT_PROBE_LEN: usize = TPKT_HEADER_LEN + 2;
/// User data bytes of one TSDU kept for classification.
pub const CLASSIFY_MAX: usize = 4096;
/// Most bytes of one TPKT packet a framer holds (#23): the TPKT header, the
/// longest COTP header (LI 254) and [`CLASSIFY_MAX`] bytes of user data,
/// which is everything the tracker reads. A packet claiming more is handed
/// on cut to this head and the rest passed over unbuffered (counted in
/// [`FramerStats::tpkts_cut`] and [`FramerStats::bytes_passed`]), so a TPKT
/// length that lies (65,535 and a trickle) costs no more than a real one.
pub const MAX_TPKT_HELD: usize = TPKT_HEADER_LEN + 255 + CLASSIFY_MAX;
/// Upper bound of a framer's buffer per direction.
pub const MAX_FRAMER_BUFFER: usize = MAX_TPKT_HELD;
/// TSDUs per direction examined for classification before giving up.
pub const CLASSIFY_TSDUS: u8 = 3;

/// Why a TPKT packet or COTP TPDU was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rfc1006Error {
    /// Fewer bytes than the header or a declared length needs.
    Truncated { need: usize, have: usize },
    /// TPKT version is not 3.
    BadVersion(u8),
    /// TPKT reserved byte is not 0.
    BadReserved(u8),
    /// TPKT length below 7 (header + minimal TPDU).
    BadLength(u16),
    /// COTP LI 255 (reserved by ISO 8073) or too small for the TPDU type.
    BadLi { code: u8, li: u8 },
    /// TPDU code (high nibble of byte 1) not defined by ISO 8073.
    UnknownTpdu(u8),
    /// A variable-part parameter runs past the header (offset in the TPDU).
    BadParameter { code: u8, offset: usize },
}

impl fmt::Display for Rfc1006Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rfc1006Error::Truncated { need, have } => {
                write!(f, "truncated: need {need} bytes, have {have}")
            }
            Rfc1006Error::BadVersion(v) => write!(f, "TPKT version {v} (want 3)"),
            Rfc1006Error::BadReserved(r) => write!(f, "TPKT reserved byte {r:#04x} (want 0)"),
            Rfc1006Error::BadLength(l) => write!(f, "TPKT length {l} below 7"),
            Rfc1006Error::BadLi { code, li } => {
                write!(f, "COTP LI {li} invalid for TPDU code {code:#04x}")
            }
            Rfc1006Error::UnknownTpdu(c) => write!(f, "unknown COTP TPDU code {c:#04x}"),
            Rfc1006Error::BadParameter { code, offset } => {
                write!(
                    f,
                    "COTP parameter {code:#04x} at offset {offset} overruns the header"
                )
            }
        }
    }
}

impl std::error::Error for Rfc1006Error {}

// ---------------------------------------------------------------------------
// TPKT (§5.1)

fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

/// Header check shared by [`parse_tpkt`] and the framer: the packet length.
fn tpkt_header(buf: &[u8]) -> Result<usize, Rfc1006Error> {
    if buf.len() < TPKT_HEADER_LEN {
        return Err(Rfc1006Error::Truncated {
            need: TPKT_HEADER_LEN,
            have: buf.len(),
        });
    }
    if buf[0] != TPKT_VERSION {
        return Err(Rfc1006Error::BadVersion(buf[0]));
    }
    if buf[1] != 0 {
        return Err(Rfc1006Error::BadReserved(buf[1]));
    }
    let len = be16(buf, 2);
    if (len as usize) < TPKT_MIN_LEN {
        return Err(Rfc1006Error::BadLength(len));
    }
    Ok(len as usize)
}

/// Whether `buf` starts with a plausible TPKT packet: version 3, reserved 0,
/// length 7..=65535, and behind it a COTP LI that fits the packet and a
/// defined TPDU code whose minimum LI the LI meets. Needs
/// [`TPKT_PROBE_LEN`] bytes; false on fewer.
pub fn looks_like_tpkt(buf: &[u8]) -> bool {
    if buf.len() < TPKT_PROBE_LEN {
        return false;
    }
    let Ok(len) = tpkt_header(buf) else {
        return false;
    };
    let li = buf[4];
    if li == 255 || usize::from(li) + 1 > len - TPKT_HEADER_LEN {
        return false;
    }
    match TpduCode::from_byte(buf[5]) {
        Some(code) => li >= code.min_li(),
        None => false,
    }
}

/// Parse one TPKT packet at the start of `buf`: the packet length (header
/// included) and the TPDU. Bytes after the packet are left alone.
pub fn parse_tpkt(buf: &[u8]) -> Result<(usize, &[u8]), Rfc1006Error> {
    let len = tpkt_header(buf)?;
    if buf.len() < len {
        return Err(Rfc1006Error::Truncated {
            need: len,
            have: buf.len(),
        });
    }
    Ok((len, &buf[TPKT_HEADER_LEN..len]))
}

// ---------------------------------------------------------------------------
// COTP (§5.2)

/// COTP TPDU types (high nibble of byte 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TpduCode {
    /// Connection request, 0xE0.
    Cr,
    /// Connection confirm, 0xD0.
    Cc,
    /// Disconnect request, 0x80.
    Dr,
    /// Disconnect confirm, 0xC0.
    Dc,
    /// Data, 0xF0.
    Dt,
    /// Expedited data, 0x10.
    Ed,
    /// Data acknowledgement, 0x60.
    Ak,
    /// Expedited data acknowledgement, 0x20.
    Ea,
    /// Reject, 0x50.
    Rj,
    /// TPDU error, 0x70.
    Er,
}

impl TpduCode {
    /// All codes, in counter order.
    pub const ALL: [TpduCode; 10] = [
        TpduCode::Cr,
        TpduCode::Cc,
        TpduCode::Dr,
        TpduCode::Dc,
        TpduCode::Dt,
        TpduCode::Ed,
        TpduCode::Ak,
        TpduCode::Ea,
        TpduCode::Rj,
        TpduCode::Er,
    ];

    /// From byte 1 of a TPDU (the low nibble — CDT — is ignored).
    pub fn from_byte(b: u8) -> Option<TpduCode> {
        Some(match b & 0xf0 {
            0xe0 => TpduCode::Cr,
            0xd0 => TpduCode::Cc,
            0x80 => TpduCode::Dr,
            0xc0 => TpduCode::Dc,
            0xf0 => TpduCode::Dt,
            0x10 => TpduCode::Ed,
            0x60 => TpduCode::Ak,
            0x20 => TpduCode::Ea,
            0x50 => TpduCode::Rj,
            0x70 => TpduCode::Er,
            _ => return None,
        })
    }

    /// The code's byte (high nibble).
    pub fn byte(self) -> u8 {
        match self {
            TpduCode::Cr => 0xe0,
            TpduCode::Cc => 0xd0,
            TpduCode::Dr => 0x80,
            TpduCode::Dc => 0xc0,
            TpduCode::Dt => 0xf0,
            TpduCode::Ed => 0x10,
            TpduCode::Ak => 0x60,
            TpduCode::Ea => 0x20,
            TpduCode::Rj => 0x50,
            TpduCode::Er => 0x70,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TpduCode::Cr => "CR",
            TpduCode::Cc => "CC",
            TpduCode::Dr => "DR",
            TpduCode::Dc => "DC",
            TpduCode::Dt => "DT",
            TpduCode::Ed => "ED",
            TpduCode::Ak => "AK",
            TpduCode::Ea => "EA",
            TpduCode::Rj => "RJ",
            TpduCode::Er => "ER",
        }
    }

    /// Smallest LI: the code byte plus the fixed part.
    pub fn min_li(self) -> u8 {
        match self {
            // code + DST-REF + SRC-REF + class/option (CR, CC) or reason (DR)
            TpduCode::Cr | TpduCode::Cc | TpduCode::Dr => 6,
            // code + DST-REF + SRC-REF
            TpduCode::Dc => 5,
            // code + EOT/NR (class 0/1 normal format)
            TpduCode::Dt => 2,
            // code + DST-REF + NR/cause
            TpduCode::Ed | TpduCode::Ak | TpduCode::Ea | TpduCode::Rj | TpduCode::Er => 4,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Name of a DR reason code (protocols.md §5.2, WS `cotp_cause_vals`).
pub fn dr_reason_name(reason: u8) -> &'static str {
    match reason {
        0 => "not specified",
        1 => "congestion at TSAP",
        2 => "session entity not attached to TSAP",
        3 => "address unknown",
        128 => "normal disconnect",
        129 => "remote congestion",
        130 => "connection negotiation failed",
        131 => "duplicate source reference",
        132 => "mismatched references",
        133 => "protocol error",
        135 => "reference overflow",
        136 => "connection request refused",
        138 => "header or parameter length invalid",
        _ => "unknown",
    }
}

/// Name of an ER reject cause (§5.2).
pub fn er_cause_name(cause: u8) -> &'static str {
    match cause {
        0 => "reason not specified",
        1 => "invalid parameter code",
        2 => "invalid TPDU type",
        3 => "invalid parameter value",
        _ => "unknown",
    }
}

/// A transport selector: raw bytes as they appear in the 0xC1/0xC2 parameter.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tsap<'a>(pub &'a [u8]);

impl Tsap<'_> {
    pub fn bytes(&self) -> &[u8] {
        self.0
    }

    /// ASCII when every byte is printable (and there is at least one), else
    /// `0x` and lowercase hex — e.g. `0x0100` for S7's rack/slot TSAPs.
    pub fn display(&self) -> String {
        tsap_display(self.0)
    }
}

impl fmt::Display for Tsap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

impl fmt::Debug for Tsap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tsap({})", self.display())
    }
}

fn tsap_display(b: &[u8]) -> String {
    if !b.is_empty() && b.iter().all(|c| (0x20..=0x7e).contains(c)) {
        b.iter().map(|&c| char::from(c)).collect()
    } else {
        let mut s = String::with_capacity(2 + 2 * b.len());
        s.push_str("0x");
        for c in b {
            s.push_str(&format!("{c:02x}"));
        }
        s
    }
}

/// Variable-part parameters of interest (§5.2); the others are skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VarParams<'a> {
    /// 0xC0 TPDU size in bytes (value 7..=13 = 128..=8192; others ignored).
    pub tpdu_size: Option<u32>,
    /// 0xC1 calling (source) TSAP; in an ER this code carries the offending
    /// TPDU instead, see [`ErTpdu::invalid_tpdu`].
    pub calling_tsap: Option<Tsap<'a>>,
    /// 0xC2 called (destination) TSAP.
    pub called_tsap: Option<Tsap<'a>>,
    /// 0xE0 additional information (DR).
    pub additional_info: Option<&'a [u8]>,
    /// How many parameters were present, recognised or not.
    pub count: usize,
}

/// Walk the variable part `var` (which starts at TPDU offset `base`).
fn parse_var(var: &[u8], base: usize) -> Result<VarParams<'_>, Rfc1006Error> {
    let mut p = VarParams::default();
    let mut off = 0;
    while off < var.len() {
        let code = var[off];
        if off + 2 > var.len() || off + 2 + usize::from(var[off + 1]) > var.len() {
            return Err(Rfc1006Error::BadParameter {
                code,
                offset: base + off,
            });
        }
        let val = &var[off + 2..off + 2 + usize::from(var[off + 1])];
        match code {
            0xc0 => {
                if let [v @ 7..=13] = val {
                    p.tpdu_size = Some(1u32 << v);
                }
            }
            0xc1 => p.calling_tsap = Some(Tsap(val)),
            0xc2 => p.called_tsap = Some(Tsap(val)),
            0xe0 => p.additional_info = Some(val),
            _ => {}
        }
        p.count += 1;
        off += 2 + val.len();
    }
    Ok(p)
}

/// CR or CC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectTpdu<'a> {
    /// Initial credit (low nibble of byte 1; 0 in class 0).
    pub cdt: u8,
    pub dst_ref: u16,
    pub src_ref: u16,
    /// Protocol class 0–4 (high nibble of the class/option byte).
    pub class: u8,
    /// Low nibble: 0x02 extended formats, 0x01 no explicit flow control.
    pub options: u8,
    pub params: VarParams<'a>,
    pub user_data: &'a [u8],
}

/// DR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrTpdu<'a> {
    pub dst_ref: u16,
    pub src_ref: u16,
    pub reason: u8,
    pub params: VarParams<'a>,
    pub user_data: &'a [u8],
}

impl DrTpdu<'_> {
    pub fn reason_name(&self) -> &'static str {
        dr_reason_name(self.reason)
    }
}

/// DT or ED. Only the normal formats are decoded: class 0/1 DT (LI 2, no
/// DST-REF) and, from LI 4 up, DST-REF then one EOT/NR byte. Extended
/// formats (negotiated in classes 2–4 only, never on TCP 102) read as normal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataTpdu<'a> {
    pub dst_ref: Option<u16>,
    /// End of TSDU (bit 0x80).
    pub eot: bool,
    /// TPDU-NR (low 7 bits).
    pub tpdu_nr: u8,
    pub user_data: &'a [u8],
}

/// AK, EA or RJ: DST-REF and a sequence number (YR-TU-NR / NR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckTpdu {
    /// Low nibble of byte 1 (CDT for AK and RJ).
    pub cdt: u8,
    pub dst_ref: u16,
    pub nr: u8,
}

/// ER.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErTpdu<'a> {
    pub dst_ref: u16,
    pub cause: u8,
    /// Parameter 0xC1: the bit pattern of the rejected TPDU.
    pub invalid_tpdu: Option<&'a [u8]>,
}

impl ErTpdu<'_> {
    pub fn cause_name(&self) -> &'static str {
        er_cause_name(self.cause)
    }
}

/// One decoded COTP TPDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cotp<'a> {
    Cr(ConnectTpdu<'a>),
    Cc(ConnectTpdu<'a>),
    Dr(DrTpdu<'a>),
    Dc { dst_ref: u16, src_ref: u16 },
    Dt(DataTpdu<'a>),
    Ed(DataTpdu<'a>),
    Ak(AckTpdu),
    Ea(AckTpdu),
    Rj(AckTpdu),
    Er(ErTpdu<'a>),
}

impl Cotp<'_> {
    pub fn code(&self) -> TpduCode {
        match self {
            Cotp::Cr(_) => TpduCode::Cr,
            Cotp::Cc(_) => TpduCode::Cc,
            Cotp::Dr(_) => TpduCode::Dr,
            Cotp::Dc { .. } => TpduCode::Dc,
            Cotp::Dt(_) => TpduCode::Dt,
            Cotp::Ed(_) => TpduCode::Ed,
            Cotp::Ak(_) => TpduCode::Ak,
            Cotp::Ea(_) => TpduCode::Ea,
            Cotp::Rj(_) => TpduCode::Rj,
            Cotp::Er(_) => TpduCode::Er,
        }
    }
}

/// Parse one COTP TPDU (the bytes of one TPKT packet after its header).
/// Only the first TPDU is decoded; user data is everything after the header
/// (class 0 does not concatenate TPDUs).
pub fn parse_cotp(tpdu: &[u8]) -> Result<Cotp<'_>, Rfc1006Error> {
    if tpdu.len() < 2 {
        // LI and code; with one byte, say what the LI asks for when it can.
        let need = match tpdu.first() {
            Some(&li) if li != 255 => 2.max(usize::from(li) + 1),
            _ => 2,
        };
        return Err(Rfc1006Error::Truncated {
            need,
            have: tpdu.len(),
        });
    }
    let li = tpdu[0];
    let code = TpduCode::from_byte(tpdu[1]).ok_or(Rfc1006Error::UnknownTpdu(tpdu[1] & 0xf0))?;
    if li == 255 || li < code.min_li() {
        return Err(Rfc1006Error::BadLi {
            code: code.byte(),
            li,
        });
    }
    let hdr_end = usize::from(li) + 1;
    if tpdu.len() < hdr_end {
        return Err(Rfc1006Error::Truncated {
            need: hdr_end,
            have: tpdu.len(),
        });
    }
    let h = &tpdu[..hdr_end];
    let user_data = &tpdu[hdr_end..];
    let low = tpdu[1] & 0x0f;
    Ok(match code {
        TpduCode::Cr | TpduCode::Cc => {
            let c = ConnectTpdu {
                cdt: low,
                dst_ref: be16(h, 2),
                src_ref: be16(h, 4),
                class: h[6] >> 4,
                options: h[6] & 0x0f,
                params: parse_var(&h[7..], 7)?,
                user_data,
            };
            if code == TpduCode::Cr {
                Cotp::Cr(c)
            } else {
                Cotp::Cc(c)
            }
        }
        TpduCode::Dr => Cotp::Dr(DrTpdu {
            dst_ref: be16(h, 2),
            src_ref: be16(h, 4),
            reason: h[6],
            params: parse_var(&h[7..], 7)?,
            user_data,
        }),
        TpduCode::Dc => Cotp::Dc {
            dst_ref: be16(h, 2),
            src_ref: be16(h, 4),
        },
        TpduCode::Dt | TpduCode::Ed => {
            let (dst_ref, nr) = if h.len() >= 5 {
                (Some(be16(h, 2)), h[4])
            } else {
                (None, h[2])
            };
            let d = DataTpdu {
                dst_ref,
                eot: nr & 0x80 != 0,
                tpdu_nr: nr & 0x7f,
                user_data,
            };
            if code == TpduCode::Dt {
                Cotp::Dt(d)
            } else {
                Cotp::Ed(d)
            }
        }
        TpduCode::Ak | TpduCode::Ea | TpduCode::Rj => {
            let a = AckTpdu {
                cdt: low,
                dst_ref: be16(h, 2),
                nr: h[4],
            };
            match code {
                TpduCode::Ak => Cotp::Ak(a),
                TpduCode::Ea => Cotp::Ea(a),
                _ => Cotp::Rj(a),
            }
        }
        TpduCode::Er => {
            let p = parse_var(&h[5..], 5)?;
            Cotp::Er(ErTpdu {
                dst_ref: be16(h, 2),
                cause: h[4],
                invalid_tpdu: p.calling_tsap.map(|t| t.0),
            })
        }
    })
}

// ---------------------------------------------------------------------------
// Application classification (§5.3)

/// Which RFC 1006 user the DT user data belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Application {
    /// Siemens S7comm (protocol id 0x32, ROSCTR 1..=7).
    S7comm,
    /// X.400 MTA (P1): X.410-1984 mode presentation or a P1 OID.
    X400Mta,
    /// MMS (ISO 9506 / IEC 61850).
    Mms,
    /// An ISO 8327 session SPDU without a known OID.
    OtherOsi,
    /// Nothing recognised (or no user data).
    #[default]
    Unknown,
}

impl Application {
    /// The report vocabulary.
    pub fn service_name(self) -> &'static str {
        match self {
            Application::S7comm => "s7comm",
            Application::X400Mta => "x400-mta",
            Application::Mms => "mms",
            Application::OtherOsi | Application::Unknown => "rfc1006",
        }
    }

    /// Specific labels beat OtherOsi, which beats Unknown.
    fn rank(self) -> u8 {
        match self {
            Application::S7comm | Application::X400Mta | Application::Mms => 2,
            Application::OtherOsi => 1,
            Application::Unknown => 0,
        }
    }
}

/// ISO 8327 SPDU SI values (WS packet-ses.h). 0x32 (MINOR SYNC ACK) is left
/// out: that byte is S7comm's protocol id, checked first anyway.
const SPDU_TYPES: &[u8] = &[
    0x01, 0x02, 0x05, 0x07, 0x08, 0x09, 0x0a, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x15, 0x16, 0x19, 0x1a,
    0x1d, 0x21, 0x22, 0x29, 0x2a, 0x2d, 0x30, 0x31, 0x35, 0x39, 0x3a, 0x3d,
];

/// Session SPDU CONNECT.
pub const SPDU_CONNECT: u8 = 0x0d;
/// Session SPDU ACCEPT.
pub const SPDU_ACCEPT: u8 = 0x0e;

/// Presentation CP mode-selector, X.410-1984 mode: `[0] { [0] 0 }`.
const X410_MODE: &[u8] = &[0xa0, 0x03, 0x80, 0x01, 0x00];
/// id-ac-mts-transfer 2.6.0.1.6.
const OID_AC_MTS_TRANSFER: &[u8] = &[0x06, 0x04, 0x56, 0x00, 0x01, 0x06];
/// id-as-mta-rtse 2.6.0.2.12.
const OID_AS_MTA_RTSE: &[u8] = &[0x06, 0x04, 0x56, 0x00, 0x02, 0x0c];
/// id-as-mtse 2.6.0.2.7.
const OID_AS_MTSE: &[u8] = &[0x06, 0x04, 0x56, 0x00, 0x02, 0x07];
/// MMS application context 1.0.9506.2.3.
const OID_MMS_AC: &[u8] = &[0x06, 0x05, 0x28, 0xca, 0x22, 0x02, 0x03];
/// MMS abstract syntax 1.0.9506.2.1.
const OID_MMS_AS: &[u8] = &[0x06, 0x05, 0x28, 0xca, 0x22, 0x02, 0x01];

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// An ISO 8327 SPDU header: SI, and the parameter bytes its LI covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spdu<'a> {
    pub si: u8,
    pub params: &'a [u8],
}

/// Parse the SPDU at the start of `ud`: a known SI, LI (0xFF = u16 BE
/// follows) within the bytes present, and parameters (PI, LI, value; same
/// length rule) that exactly fill the LI.
pub fn parse_spdu(ud: &[u8]) -> Option<Spdu<'_>> {
    let (&si, rest) = ud.split_first()?;
    if !SPDU_TYPES.contains(&si) {
        return None;
    }
    let (len, rest) = ber_len(rest)?;
    let params = rest.get(..len)?;
    let mut p = params;
    while !p.is_empty() {
        let (l, r) = ber_len(&p[1..])?;
        p = r.get(l..)?;
    }
    Some(Spdu { si, params })
}

/// Session length: one byte, or 0xFF then u16 BE.
fn ber_len(b: &[u8]) -> Option<(usize, &[u8])> {
    match b {
        [0xff, hi, lo, rest @ ..] => Some((usize::from(u16::from_be_bytes([*hi, *lo])), rest)),
        [0xff, ..] => None,
        [l, rest @ ..] => Some((usize::from(*l), rest)),
        [] => None,
    }
}

/// Classify the user data of one TSDU (§5.3).
pub fn classify_user_data(ud: &[u8]) -> Application {
    if let [0x32, rosctr, ..] = ud {
        if (1..=7).contains(rosctr) {
            return Application::S7comm;
        }
    }
    let Some(spdu) = parse_spdu(ud) else {
        return Application::Unknown;
    };
    if spdu.si == SPDU_CONNECT || spdu.si == SPDU_ACCEPT {
        if [X410_MODE, OID_AC_MTS_TRANSFER, OID_AS_MTA_RTSE, OID_AS_MTSE]
            .iter()
            .any(|n| contains(spdu.params, n))
        {
            return Application::X400Mta;
        }
        if contains(spdu.params, OID_MMS_AC) || contains(spdu.params, OID_MMS_AS) {
            return Application::Mms;
        }
    }
    Application::OtherOsi
}

// ---------------------------------------------------------------------------
// Framing

/// Framer counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FramerStats {
    /// TPKT packets framed.
    pub packets: u64,
    /// Bytes skipped while looking for a TPKT header.
    pub bytes_skipped: u64,
    /// Times sync was lost (bad header or a gap) after having been held.
    pub resyncs: u64,
    /// Packets longer than [`MAX_TPKT_HELD`]: handed on cut to their head.
    #[serde(skip_serializing_if = "is_zero")]
    pub tpkts_cut: u64,
    /// Bytes of those packets beyond their head, passed over unbuffered.
    #[serde(skip_serializing_if = "is_zero")]
    pub bytes_passed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Stream → whole TPKT packets, one direction. Starts unsynchronised: the
/// first packet must pass [`looks_like_tpkt`]; once synced, each header needs
/// version 3, reserved 0 and length ≥ 7, else it scans again. The buffer
/// never exceeds [`MAX_FRAMER_BUFFER`]: a packet longer than
/// [`MAX_TPKT_HELD`] is emitted cut to its head.
#[derive(Clone, Debug, Default)]
struct Framer {
    buf: Vec<u8>,
    in_sync: bool,
    /// Bytes of a cut packet still to pass over.
    pass: usize,
    stats: FramerStats,
}

impl Framer {
    fn push(&mut self, mut data: &[u8], emit: &mut impl FnMut(&[u8])) {
        while !data.is_empty() {
            if self.buf.is_empty() {
                // Zero-copy path: whole packets straight out of `data`.
                data = self.frame(data, emit);
                let keep = data;
                data = &[];
                self.buf.extend_from_slice(keep);
            } else {
                // Enough for any head: the buffer holds less than one.
                let room = MAX_FRAMER_BUFFER - self.buf.len();
                let n = room.min(data.len());
                self.buf.extend_from_slice(&data[..n]);
                data = &data[n..];
                let buf = std::mem::take(&mut self.buf);
                let rest = self.frame(&buf, emit);
                let used = buf.len() - rest.len();
                self.buf = buf;
                self.buf.drain(..used);
                // A connection between packets holds nothing (its memory is
                // counted against the table's budget).
                if self.buf.is_empty() {
                    self.buf = Vec::new();
                }
            }
        }
    }

    /// Emit every whole packet of `b`; return the unconsumed tail, which is
    /// shorter than one packet when synced, or than the probe when not.
    fn frame<'b>(&mut self, mut b: &'b [u8], emit: &mut impl FnMut(&[u8])) -> &'b [u8] {
        loop {
            if self.pass > 0 {
                let n = self.pass.min(b.len());
                self.pass -= n;
                self.stats.bytes_passed += n as u64;
                b = &b[n..];
                if self.pass > 0 {
                    return b;
                }
            }
            if self.in_sync {
                let len = match tpkt_header(b) {
                    Ok(len) => len,
                    Err(Rfc1006Error::Truncated { .. }) => return b,
                    Err(_) => {
                        self.lose_sync();
                        continue;
                    }
                };
                let held = len.min(MAX_TPKT_HELD);
                if b.len() < held {
                    return b;
                }
                self.stats.packets += 1;
                emit(&b[..held]);
                b = &b[held..];
                if held < len {
                    self.stats.tpkts_cut += 1;
                    self.pass = len - held;
                }
            } else {
                match (0..b.len().saturating_sub(TPKT_PROBE_LEN - 1))
                    .find(|&i| looks_like_tpkt(&b[i..]))
                {
                    Some(i) => {
                        self.stats.bytes_skipped += i as u64;
                        b = &b[i..];
                        self.in_sync = true;
                    }
                    None => {
                        let skip = b.len().saturating_sub(TPKT_PROBE_LEN - 1);
                        self.stats.bytes_skipped += skip as u64;
                        return &b[skip..];
                    }
                }
            }
        }
    }

    fn lose_sync(&mut self) {
        if self.in_sync {
            self.stats.resyncs += 1;
        }
        self.in_sync = false;
    }

    fn gap(&mut self) {
        self.stats.bytes_skipped += self.buf.len() as u64;
        self.buf.clear();
        self.pass = 0;
        self.lose_sync();
    }
}

// ---------------------------------------------------------------------------
// Connection state

/// How the transport connection request was answered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Outcome {
    /// CC answered the CR.
    Accepted,
    /// DR answered the CR.
    Refused { reason: u8, name: &'static str },
    /// ER answered the CR.
    Error { cause: u8, name: &'static str },
    /// CR seen, no answer yet.
    Pending,
    /// No CR seen (capture started mid-stream, or no RFC 1006 at all).
    #[default]
    Unknown,
}

/// A TSAP for the report: bytes and display form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TsapInfo {
    /// Lowercase hex of the bytes.
    pub hex: String,
    /// ASCII when printable, else `0x` + hex.
    pub display: String,
}

impl TsapInfo {
    fn from_tsap(t: Tsap<'_>) -> TsapInfo {
        let mut hex = String::with_capacity(2 * t.0.len());
        for c in t.0 {
            hex.push_str(&format!("{c:02x}"));
        }
        TsapInfo {
            hex,
            display: t.display(),
        }
    }
}

/// What a CR or CC said, owned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ConnectInfo {
    pub src_ref: u16,
    pub dst_ref: u16,
    pub class: u8,
    pub calling_tsap: Option<TsapInfo>,
    pub called_tsap: Option<TsapInfo>,
    pub tpdu_size: Option<u32>,
}

impl ConnectInfo {
    fn from_tpdu(c: &ConnectTpdu<'_>) -> ConnectInfo {
        ConnectInfo {
            src_ref: c.src_ref,
            dst_ref: c.dst_ref,
            class: c.class,
            calling_tsap: c.params.calling_tsap.map(TsapInfo::from_tsap),
            called_tsap: c.params.called_tsap.map(TsapInfo::from_tsap),
            tpdu_size: c.params.tpdu_size,
        }
    }
}

/// TPDUs seen, per type, both directions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TpduCounts {
    pub cr: u64,
    pub cc: u64,
    pub dr: u64,
    pub dc: u64,
    pub dt: u64,
    pub ed: u64,
    pub ak: u64,
    pub ea: u64,
    pub rj: u64,
    pub er: u64,
    /// TPKT packets whose TPDU did not parse.
    pub malformed: u64,
}

impl TpduCounts {
    /// Count for one type.
    pub fn get(&self, code: TpduCode) -> u64 {
        self.as_array()[code.index()]
    }

    fn as_array(&self) -> [u64; 10] {
        [
            self.cr, self.cc, self.dr, self.dc, self.dt, self.ed, self.ak, self.ea, self.rj,
            self.er,
        ]
    }

    fn bump(&mut self, code: TpduCode) {
        let c = match code {
            TpduCode::Cr => &mut self.cr,
            TpduCode::Cc => &mut self.cc,
            TpduCode::Dr => &mut self.dr,
            TpduCode::Dc => &mut self.dc,
            TpduCode::Dt => &mut self.dt,
            TpduCode::Ed => &mut self.ed,
            TpduCode::Ak => &mut self.ak,
            TpduCode::Ea => &mut self.ea,
            TpduCode::Rj => &mut self.rj,
            TpduCode::Er => &mut self.er,
        };
        *c += 1;
    }

    /// All TPDUs that parsed.
    pub fn total(&self) -> u64 {
        self.as_array().iter().sum()
    }
}

/// Plain summary of one connection, for the JSON report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Rfc1006Summary {
    pub outcome: Outcome,
    /// `service_name()` of the classification.
    pub service: &'static str,
    pub application: Application,
    /// Per direction (0 = originator).
    pub application_by_dir: [Application; 2],
    /// Calling / called TSAP: the CR's, else the CC's.
    pub calling_tsap: Option<TsapInfo>,
    pub called_tsap: Option<TsapInfo>,
    /// TPDU size proposed in the CR, and the one the CC confirmed.
    pub tpdu_size_requested: Option<u32>,
    pub tpdu_size_confirmed: Option<u32>,
    pub cr: Option<ConnectInfo>,
    pub cc: Option<ConnectInfo>,
    /// Reason of a DR after the connection was accepted.
    pub disconnect_reason: Option<u8>,
    pub tpdus: TpduCounts,
    pub framing: [FramerStats; 2],
}

/// Per-direction TSDU collection for classification.
#[derive(Clone, Debug, Default)]
struct Classifier {
    tsdu: Vec<u8>,
    /// A gap hit the middle of a TSDU: ignore DTs up to its EOT.
    skip_to_eot: bool,
    tried: u8,
    result: Application,
}

impl Classifier {
    fn done(&self) -> bool {
        self.result != Application::Unknown || self.tried >= CLASSIFY_TSDUS
    }

    fn on_dt(&mut self, d: &DataTpdu<'_>) {
        if self.done() {
            return;
        }
        if self.skip_to_eot {
            self.skip_to_eot = !d.eot;
            return;
        }
        // A TSDU longer than the cap keeps its head, which is what counts.
        let n = (CLASSIFY_MAX - self.tsdu.len()).min(d.user_data.len());
        self.tsdu.extend_from_slice(&d.user_data[..n]);
        if d.eot {
            if !self.tsdu.is_empty() {
                self.tried += 1;
                self.result = classify_user_data(&self.tsdu);
            }
            self.tsdu = Vec::new();
        }
    }

    fn gap(&mut self) {
        if !self.tsdu.is_empty() {
            self.tsdu = Vec::new();
            self.skip_to_eot = true;
        }
    }
}

/// Tracker side of [`Rfc1006Conn`] (split from the framers for borrowing).
#[derive(Clone, Debug, Default)]
struct Tracker {
    outcome: Outcome,
    cr: Option<ConnectInfo>,
    cr_dir: usize,
    cc: Option<ConnectInfo>,
    disconnect_reason: Option<u8>,
    counts: TpduCounts,
    class: [Classifier; 2],
}

impl Tracker {
    /// A whole packet, or the head of one longer than [`MAX_TPKT_HELD`]
    /// (everything read lies in it).
    fn on_packet(&mut self, dir: usize, pkt: &[u8]) {
        let tpdu = tpkt_header(pkt).map(|len| &pkt[TPKT_HEADER_LEN..len.min(pkt.len())]);
        let tpdu = match tpdu.and_then(parse_cotp) {
            Ok(t) => t,
            Err(_) => {
                self.counts.malformed += 1;
                return;
            }
        };
        self.counts.bump(tpdu.code());
        let answer = self.outcome == Outcome::Pending && dir != self.cr_dir;
        match tpdu {
            // Only the first CR counts; the outcome leaves Unknown only here.
            Cotp::Cr(c) if self.cr.is_none() => {
                self.cr = Some(ConnectInfo::from_tpdu(&c));
                self.cr_dir = dir;
                self.outcome = Outcome::Pending;
            }
            Cotp::Cc(c) => {
                if self.cc.is_none() {
                    self.cc = Some(ConnectInfo::from_tpdu(&c));
                }
                if answer {
                    self.outcome = Outcome::Accepted;
                }
            }
            Cotp::Dr(d) => {
                if answer {
                    self.outcome = Outcome::Refused {
                        reason: d.reason,
                        name: d.reason_name(),
                    };
                } else if self.disconnect_reason.is_none() {
                    self.disconnect_reason = Some(d.reason);
                }
            }
            // An ER later on is counted, not an outcome.
            Cotp::Er(e) if answer => {
                self.outcome = Outcome::Error {
                    cause: e.cause,
                    name: e.cause_name(),
                };
            }
            Cotp::Dt(d) => self.class[dir].on_dt(&d),
            _ => {}
        }
    }

    fn application(&self) -> Application {
        let [a, b] = [self.class[0].result, self.class[1].result];
        if b.rank() > a.rank() {
            b
        } else {
            a
        }
    }
}

/// One RFC 1006 connection: feed in-order stream bytes per direction.
#[derive(Clone, Debug, Default)]
pub struct Rfc1006Conn {
    framers: [Framer; 2],
    tracker: Tracker,
}

impl Rfc1006Conn {
    pub fn new() -> Self {
        Self::default()
    }

    /// In-order bytes of direction `dir` (0 = connection originator, any
    /// other value = responder). Segmentation does not matter.
    pub fn on_data(&mut self, dir: usize, data: &[u8]) {
        let dir = usize::from(dir != 0);
        let Rfc1006Conn { framers, tracker } = self;
        framers[dir].push(data, &mut |pkt| tracker.on_packet(dir, pkt));
    }

    /// Bytes of direction `dir` were lost: drop what is buffered and resync
    /// at the next plausible TPKT header.
    pub fn gap(&mut self, dir: usize) {
        let dir = usize::from(dir != 0);
        self.framers[dir].gap();
        self.tracker.class[dir].gap();
    }

    pub fn outcome(&self) -> &Outcome {
        &self.tracker.outcome
    }

    /// The application: the most specific of the two directions' results,
    /// the originator's on a tie.
    pub fn classification(&self) -> Application {
        self.tracker.application()
    }

    /// `classification().service_name()`.
    pub fn service_name(&self) -> &'static str {
        self.classification().service_name()
    }

    /// The framers' counters, per direction.
    pub fn framing(&self) -> [FramerStats; 2] {
        [self.framers[0].stats, self.framers[1].stats]
    }

    pub fn counts(&self) -> &TpduCounts {
        &self.tracker.counts
    }

    /// Heap bytes held (framer buffers and the TSDU heads kept for
    /// classification, by capacity), for memory budgets.
    pub fn heap_bytes(&self) -> usize {
        let framers: usize = self.framers.iter().map(|f| f.buf.capacity()).sum();
        let tsdus: usize = self.tracker.class.iter().map(|c| c.tsdu.capacity()).sum();
        framers + tsdus
    }

    /// Bytes buffered for direction `dir` (bounded by [`MAX_FRAMER_BUFFER`]).
    pub fn buffered(&self, dir: usize) -> usize {
        self.framers[usize::from(dir != 0)].buf.len()
    }

    pub fn summary(&self) -> Rfc1006Summary {
        let t = &self.tracker;
        let pick = |f: fn(&ConnectInfo) -> &Option<TsapInfo>| {
            t.cr.as_ref()
                .and_then(|c| f(c).clone())
                .or_else(|| t.cc.as_ref().and_then(|c| f(c).clone()))
        };
        let application = t.application();
        Rfc1006Summary {
            outcome: t.outcome.clone(),
            service: application.service_name(),
            application,
            application_by_dir: [t.class[0].result, t.class[1].result],
            calling_tsap: pick(|c| &c.calling_tsap),
            called_tsap: pick(|c| &c.called_tsap),
            tpdu_size_requested: t.cr.as_ref().and_then(|c| c.tpdu_size),
            tpdu_size_confirmed: t.cc.as_ref().and_then(|c| c.tpdu_size),
            cr: t.cr.clone(),
            cc: t.cc.clone(),
            disconnect_reason: t.disconnect_reason,
            tpdus: t.counts,
            framing: [self.framers[0].stats, self.framers[1].stats],
        }
    }
}

#[cfg(test)]
mod tests;
