//! Endpoint mapper (e1af8308-5d1f-11c9-91a4-08002b14a0fa v3), protocols.md §2:
//! towers, ept_map (opnum 3) and ept_lookup (opnum 2) requests and responses
//! in NDR 2.0 and NDR64, and the tower-scan fallback of §2.5.
//!
//! Pure functions over stub bytes (as delivered by
//! [`super::dcerpc::CallReassembler`]); nothing panics, every wire count is
//! checked against the bytes present before anything is allocated for it.

use std::fmt;
use std::net::Ipv4Addr;

use super::dcerpc::{SyntaxId, Uuid};
use super::ndr::{NdrError, NdrReader, NdrSyntax};

/// ept_lookup.
pub const OPNUM_EPT_LOOKUP: u16 = 2;
/// ept_map.
pub const OPNUM_EPT_MAP: u16 = 3;
/// ept_s_not_registered (also "no more entries" at the end of an enumeration).
pub const EPT_S_NOT_REGISTERED: u32 = 0x16c9_a0d6;

/// Why an EPM structure was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpmError {
    /// The tower ends before its floors do.
    TowerTruncated { need: usize, have: usize },
    /// floor_count cannot fit in the bytes present (each floor is ≥ 5 bytes).
    TooManyFloors { count: u16, have: usize },
    /// A floor with an empty left-hand side (no protocol id).
    EmptyLhs { floor: usize },
    /// Stub-level NDR failure.
    Ndr(NdrError),
    /// Inconsistent stub (the text says which).
    Malformed(&'static str),
}

impl fmt::Display for EpmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EpmError::TowerTruncated { need, have } => {
                write!(f, "tower truncated: need {need} bytes, have {have}")
            }
            EpmError::TooManyFloors { count, have } => {
                write!(f, "tower floor_count {count} cannot fit in {have} bytes")
            }
            EpmError::EmptyLhs { floor } => write!(f, "tower floor {floor} has an empty lhs"),
            EpmError::Ndr(e) => write!(f, "{e}"),
            EpmError::Malformed(w) => write!(f, "malformed EPM stub: {w}"),
        }
    }
}

impl std::error::Error for EpmError {}

impl From<NdrError> for EpmError {
    fn from(e: NdrError) -> Self {
        EpmError::Ndr(e)
    }
}

// ---------------------------------------------------------------------------
// Towers (§2.4)

/// Floor protocol identifiers.
pub mod floor {
    pub const UUID: u8 = 0x0d;
    pub const NCADG: u8 = 0x0a;
    pub const NCACN: u8 = 0x0b;
    /// ncalrpc at floor 3, SPX at floor 4.
    pub const NCALRPC: u8 = 0x0c;
    pub const TCP: u8 = 0x07;
    pub const UDP: u8 = 0x08;
    pub const IPV4: u8 = 0x09;
    pub const NAMED_PIPE: u8 = 0x0f;
    pub const PIPE_OR_LRPC: u8 = 0x10;
    pub const NETBIOS: u8 = 0x11;
    pub const HTTP: u8 = 0x1f;
    /// Unix domain socket in C706; carries an IPv4 address in observed ncacn_http towers.
    pub const HTTP_IPV4: u8 = 0x20;
}

/// RPC protocol of floor 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RpcProtocol {
    /// Connection-oriented (0x0b).
    Ncacn,
    /// Connectionless (0x0a).
    Ncadg,
    /// Local RPC (0x0c at floor 3).
    Ncalrpc,
}

/// Transport of a network endpoint named by a tower.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Tcp,
    Udp,
    Http,
}

impl Transport {
    /// The report contract's `proto` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Http => "http",
        }
    }

    /// The IP protocol a connection to such an endpoint uses (ncacn_http
    /// runs over TCP).
    pub fn ip_proto(self) -> u8 {
        match self {
            Transport::Tcp | Transport::Http => crate::packet::PROTO_TCP,
            Transport::Udp => crate::packet::PROTO_UDP,
        }
    }
}

/// A decoded protocol tower. Floors are walked generically; the typed
/// fields hold what was recognised, `protocols` lists every floor's id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tower {
    /// Floor 1: interface UUID and version.
    pub interface: Option<SyntaxId>,
    /// Floor 2: transfer syntax.
    pub transfer_syntax: Option<SyntaxId>,
    pub protocol: Option<RpcProtocol>,
    pub transport: Option<(Transport, u16)>,
    pub ipv4: Option<Ipv4Addr>,
    pub named_pipe: Option<String>,
    pub netbios_host: Option<String>,
    pub lrpc_endpoint: Option<String>,
    /// Protocol id of each floor, in order.
    pub protocols: Vec<u8>,
    /// Bytes the floors occupied (2 + Σ floor sizes).
    pub len: usize,
}

impl Tower {
    /// The network endpoint: transport, port and the tower's IPv4 address
    /// (None when absent; 0.0.0.0 is returned as is — the caller substitutes
    /// the EPM server's address).
    pub fn endpoint(&self) -> Option<(Transport, u16, Option<Ipv4Addr>)> {
        self.transport.map(|(t, p)| (t, p, self.ipv4))
    }
}

fn le16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn ascii_z(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn uuid_floor(lhs: &[u8], rhs: &[u8]) -> Option<SyntaxId> {
    // lhs data: UUID 16 (LE) + major u16 LE; rhs: minor u16 LE.
    if lhs.len() < 18 {
        return None;
    }
    let mut u = [0u8; 16];
    u.copy_from_slice(&lhs[..16]);
    let major = le16(lhs, 16);
    let minor = if rhs.len() >= 2 { le16(rhs, 0) } else { 0 };
    Some(SyntaxId {
        uuid: Uuid::from_wire(&u, true),
        version: u32::from(major) | (u32::from(minor) << 16),
    })
}

/// Parse tower octets (§2.4). Counts are little-endian whatever the drep.
/// Trailing bytes after the last floor are allowed (see [`Tower::len`]).
pub fn parse_tower(buf: &[u8]) -> Result<Tower, EpmError> {
    let trunc = |need: usize| EpmError::TowerTruncated {
        need,
        have: buf.len(),
    };
    if buf.len() < 2 {
        return Err(trunc(2));
    }
    let count = le16(buf, 0);
    // Each floor is at least lhs_len(2) + protocol(1) + rhs_len(2) bytes.
    if count as usize * 5 > buf.len() - 2 {
        return Err(EpmError::TooManyFloors {
            count,
            have: buf.len(),
        });
    }
    let mut t = Tower {
        protocols: Vec::with_capacity(count as usize),
        ..Tower::default()
    };
    let mut off = 2;
    for i in 0..count as usize {
        if off + 2 > buf.len() {
            return Err(trunc(off + 2));
        }
        let lhs_len = le16(buf, off) as usize;
        off += 2;
        if lhs_len == 0 {
            return Err(EpmError::EmptyLhs { floor: i + 1 });
        }
        if off + lhs_len + 2 > buf.len() {
            return Err(trunc(off + lhs_len + 2));
        }
        let proto = buf[off];
        let lhs = &buf[off + 1..off + lhs_len];
        off += lhs_len;
        let rhs_len = le16(buf, off) as usize;
        off += 2;
        if off + rhs_len > buf.len() {
            return Err(trunc(off + rhs_len));
        }
        let rhs = &buf[off..off + rhs_len];
        off += rhs_len;
        t.protocols.push(proto);
        let port = || (rhs.len() >= 2).then(|| u16::from_be_bytes([rhs[0], rhs[1]]));
        match proto {
            floor::UUID => {
                let s = uuid_floor(lhs, rhs);
                if t.interface.is_none() {
                    t.interface = s;
                } else if t.transfer_syntax.is_none() {
                    t.transfer_syntax = s;
                }
            }
            floor::NCACN => t.protocol = Some(RpcProtocol::Ncacn),
            floor::NCADG => t.protocol = Some(RpcProtocol::Ncadg),
            floor::NCALRPC if i == 2 => t.protocol = Some(RpcProtocol::Ncalrpc),
            floor::TCP => t.transport = port().map(|p| (Transport::Tcp, p)),
            floor::UDP => t.transport = port().map(|p| (Transport::Udp, p)),
            floor::HTTP => t.transport = port().map(|p| (Transport::Http, p)),
            floor::IPV4 | floor::HTTP_IPV4 if rhs.len() == 4 => {
                t.ipv4 = Some(Ipv4Addr::new(rhs[0], rhs[1], rhs[2], rhs[3]));
            }
            floor::NAMED_PIPE => t.named_pipe = Some(ascii_z(rhs)),
            floor::PIPE_OR_LRPC => {
                if t.protocol == Some(RpcProtocol::Ncalrpc) {
                    t.lrpc_endpoint = Some(ascii_z(rhs));
                } else {
                    t.named_pipe = Some(ascii_z(rhs));
                }
            }
            floor::NETBIOS => t.netbios_host = Some(ascii_z(rhs)),
            _ => {}
        }
    }
    t.len = off;
    Ok(t)
}

// ---------------------------------------------------------------------------
// Messages

/// A context handle (`policy_handle`): u32 attributes + UUID. All-zero marks
/// a finished enumeration in responses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ContextHandle {
    pub attributes: u32,
    pub uuid: Uuid,
}

impl ContextHandle {
    pub fn is_null(&self) -> bool {
        self.attributes == 0 && self.uuid.is_nil()
    }

    pub fn read(r: &mut NdrReader<'_>) -> Result<ContextHandle, NdrError> {
        Ok(ContextHandle {
            attributes: r.u32()?,
            uuid: r.uuid()?,
        })
    }
}

/// Classified EPM status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpmStatus {
    Ok,
    /// 0x16c9a0d6: not registered / no more entries.
    NotRegistered,
    Other(u32),
}

impl EpmStatus {
    pub fn from_u32(v: u32) -> EpmStatus {
        match v {
            0 => EpmStatus::Ok,
            EPT_S_NOT_REGISTERED => EpmStatus::NotRegistered,
            o => EpmStatus::Other(o),
        }
    }
}

/// ept_map request (§2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EptMapRequest {
    pub object: Option<Uuid>,
    pub tower: Option<Tower>,
    pub entry_handle: ContextHandle,
    pub max_towers: u32,
}

/// ept_map response (§2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EptMapResponse {
    pub entry_handle: ContextHandle,
    pub num_towers: u32,
    pub towers: Vec<Tower>,
    pub status: u32,
}

/// ept_lookup request (§2.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EptLookupRequest {
    /// 0 all, 1 by interface, 2 by object, 3 both.
    pub inquiry_type: u32,
    pub object: Option<Uuid>,
    pub interface: Option<SyntaxId>,
    pub vers_option: u32,
    pub entry_handle: ContextHandle,
    pub max_ents: u32,
}

/// One ept_lookup entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EptEntry {
    pub object: Uuid,
    pub annotation: String,
    pub tower: Option<Tower>,
}

/// ept_lookup response (§2.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EptLookupResponse {
    pub entry_handle: ContextHandle,
    pub num_ents: u32,
    pub entries: Vec<EptEntry>,
    pub status: u32,
}

/// Reads `[ptr] twr_t *` pointee: max_count, tower_length, octets.
fn read_twr(r: &mut NdrReader<'_>) -> Result<Tower, EpmError> {
    let max = r.count()?;
    let len = r.u32()?;
    if u64::from(len) > max {
        return Err(EpmError::Malformed("tower_length exceeds its max_count"));
    }
    let n = r.check_count(u64::from(len), 1)?;
    let octets = r.bytes(n)?;
    parse_tower(octets)
}

/// A response ends with its status: bytes left over mean the layout guess
/// (NDR vs NDR64) was wrong.
fn finish(r: &NdrReader<'_>) -> Result<(), EpmError> {
    if r.remaining() != 0 {
        return Err(EpmError::Malformed("bytes left after the status"));
    }
    Ok(())
}

fn read_opt_uuid(r: &mut NdrReader<'_>) -> Result<Option<Uuid>, EpmError> {
    Ok(if r.pointer()? != 0 {
        Some(r.uuid()?)
    } else {
        None
    })
}

pub fn parse_ept_map_request(
    stub: &[u8],
    syntax: NdrSyntax,
    little_endian: bool,
) -> Result<EptMapRequest, EpmError> {
    let mut r = NdrReader::new(stub, syntax, little_endian);
    let object = read_opt_uuid(&mut r)?;
    let tower = if r.pointer()? != 0 {
        Some(read_twr(&mut r)?)
    } else {
        None
    };
    let entry_handle = ContextHandle::read(&mut r)?;
    let max_towers = r.u32()?;
    Ok(EptMapRequest {
        object,
        tower,
        entry_handle,
        max_towers,
    })
}

pub fn parse_ept_map_response(
    stub: &[u8],
    syntax: NdrSyntax,
    little_endian: bool,
) -> Result<EptMapResponse, EpmError> {
    let mut r = NdrReader::new(stub, syntax, little_endian);
    let entry_handle = ContextHandle::read(&mut r)?;
    let num_towers = r.u32()?;
    let _max = r.count()?;
    let offset = r.count()?;
    let actual = r.count()?;
    if offset != 0 {
        return Err(EpmError::Malformed("towers array offset is not 0"));
    }
    let n = r.check_count(actual, r.word())?;
    if actual != u64::from(num_towers) {
        return Err(EpmError::Malformed(
            "num_towers differs from the array's actual_count",
        ));
    }
    let mut refs = Vec::with_capacity(n);
    for _ in 0..n {
        refs.push(r.pointer()?);
    }
    let mut towers = Vec::new();
    for &p in &refs {
        if p != 0 {
            towers.push(read_twr(&mut r)?);
        }
    }
    let status = r.u32()?;
    finish(&r)?;
    Ok(EptMapResponse {
        entry_handle,
        num_towers,
        towers,
        status,
    })
}

pub fn parse_ept_lookup_request(
    stub: &[u8],
    syntax: NdrSyntax,
    little_endian: bool,
) -> Result<EptLookupRequest, EpmError> {
    let mut r = NdrReader::new(stub, syntax, little_endian);
    let inquiry_type = r.u32()?;
    let object = read_opt_uuid(&mut r)?;
    let interface = if r.pointer()? != 0 {
        let uuid = r.uuid()?;
        let major = r.u16()?;
        let minor = r.u16()?;
        Some(SyntaxId {
            uuid,
            version: u32::from(major) | (u32::from(minor) << 16),
        })
    } else {
        None
    };
    let vers_option = r.u32()?;
    let entry_handle = ContextHandle::read(&mut r)?;
    let max_ents = r.u32()?;
    Ok(EptLookupRequest {
        inquiry_type,
        object,
        interface,
        vers_option,
        entry_handle,
        max_ents,
    })
}

pub fn parse_ept_lookup_response(
    stub: &[u8],
    syntax: NdrSyntax,
    little_endian: bool,
) -> Result<EptLookupResponse, EpmError> {
    let mut r = NdrReader::new(stub, syntax, little_endian);
    let entry_handle = ContextHandle::read(&mut r)?;
    let num_ents = r.u32()?;
    let _max = r.count()?;
    let offset = r.count()?;
    let actual = r.count()?;
    if offset != 0 {
        return Err(EpmError::Malformed("entries array offset is not 0"));
    }
    // Minimum entry: UUID 16 + referent + annotation offset + length.
    let n = r.check_count(actual, 16 + 3 * r.word())?;
    if actual != u64::from(num_ents) {
        return Err(EpmError::Malformed(
            "num_ents differs from the array's actual_count",
        ));
    }
    let mut entries = Vec::with_capacity(n);
    let mut refs = Vec::with_capacity(n);
    for _ in 0..n {
        if syntax == NdrSyntax::Ndr64 {
            r.align(8)?;
        }
        let object = r.uuid()?;
        refs.push(r.pointer()?);
        let _ann_offset = r.count()?;
        let ann_len = r.count()?;
        let ann_len = r.check_count(ann_len, 1)?;
        let annotation = ascii_z(r.bytes(ann_len)?);
        entries.push(EptEntry {
            object,
            annotation,
            tower: None,
        });
    }
    for (e, &p) in entries.iter_mut().zip(&refs) {
        if p != 0 {
            e.tower = Some(read_twr(&mut r)?);
        }
    }
    let status = r.u32()?;
    finish(&r)?;
    Ok(EptLookupResponse {
        entry_handle,
        num_ents,
        entries,
        status,
    })
}

/// §2.5 fallback: find towers in any EPM response stub without knowing its
/// NDR flavour. A candidate is a u32 L (LE) at a 4-aligned offset followed by
/// a tower whose floor_count is 3–6 and whose first floor starts
/// `13 00 0d`, accepted only if walking its floors consumes exactly L bytes.
pub fn scan_towers(stub: &[u8]) -> Vec<Tower> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 4 + 7 <= stub.len() {
        let l = u32::from_le_bytes([stub[i], stub[i + 1], stub[i + 2], stub[i + 3]]) as usize;
        let t = &stub[i + 4..];
        let fc = le16(t, 0);
        if (3..=6).contains(&fc) && t[2..5] == [0x13, 0x00, 0x0d] && l <= t.len() {
            if let Ok(tower) = parse_tower(&t[..l]) {
                if tower.len == l {
                    out.push(tower);
                    i += 4 + l;
                    i = i.div_ceil(4) * 4;
                    continue;
                }
            }
        }
        i += 4;
    }
    out
}

/// Status u32 at the end of a response stub.
pub fn trailing_status(stub: &[u8], little_endian: bool) -> Option<u32> {
    let n = stub.len().checked_sub(4)?;
    let a = [stub[n], stub[n + 1], stub[n + 2], stub[n + 3]];
    Some(if little_endian {
        u32::from_le_bytes(a)
    } else {
        u32::from_be_bytes(a)
    })
}

/// How an [`EpmAnswer`] was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoding {
    /// The structured NDR / NDR64 parse succeeded.
    Structured,
    /// The structured parse failed; towers come from [`scan_towers`]
    /// (entry handle unknown, annotations lost).
    TowerScan,
}

/// Towers from an ept_map or ept_lookup response, however decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpmAnswer {
    pub opnum: u16,
    pub decoding: Decoding,
    /// None when decoded by tower scan.
    pub entry_handle: Option<ContextHandle>,
    /// (tower, annotation) in wire order; annotations only for ept_lookup.
    pub towers: Vec<(Tower, Option<String>)>,
    pub status: u32,
}

/// Decode an EPM response stub for `opnum` (2 or 3): structured first, in
/// the given syntax; when that fails, the §2.5 tower scan with the status
/// taken from the last 4 bytes.
pub fn parse_epm_response(
    opnum: u16,
    stub: &[u8],
    syntax: NdrSyntax,
    little_endian: bool,
) -> Result<EpmAnswer, EpmError> {
    let structured = match opnum {
        OPNUM_EPT_MAP => parse_ept_map_response(stub, syntax, little_endian).map(|m| EpmAnswer {
            opnum,
            decoding: Decoding::Structured,
            entry_handle: Some(m.entry_handle),
            towers: m.towers.into_iter().map(|t| (t, None)).collect(),
            status: m.status,
        }),
        OPNUM_EPT_LOOKUP => {
            parse_ept_lookup_response(stub, syntax, little_endian).map(|m| EpmAnswer {
                opnum,
                decoding: Decoding::Structured,
                entry_handle: Some(m.entry_handle),
                towers: m
                    .entries
                    .into_iter()
                    .filter_map(|e| e.tower.map(|t| (t, Some(e.annotation))))
                    .collect(),
                status: m.status,
            })
        }
        _ => return Err(EpmError::Malformed("not an ept_map/ept_lookup opnum")),
    };
    match structured {
        Ok(a) => Ok(a),
        Err(e) => {
            let towers = scan_towers(stub);
            let status = trailing_status(stub, little_endian).ok_or(e)?;
            if towers.is_empty() && status == 0 {
                return Err(e);
            }
            Ok(EpmAnswer {
                opnum,
                decoding: Decoding::TowerScan,
                entry_handle: None,
                towers: towers.into_iter().map(|t| (t, None)).collect(),
                status,
            })
        }
    }
}

#[cfg(test)]
mod tests;
