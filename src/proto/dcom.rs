//! DCOM answers that hand a client a port ([MS-DCOM]): the string bindings
//! of the `DUALSTRINGARRAY`s in the responses of the activator and the OXID
//! resolver on TCP 135 —
//! `ISystemActivator` RemoteGetClassObject (opnum 3) and
//! RemoteCreateInstance (4), `IRemoteActivation` RemoteActivation (0),
//! `IObjectExporter` ResolveOxid (0), ResolveOxid2 (4), ServerAlive2 (5).
//!
//! A `DUALSTRINGARRAY` ([MS-DCOM] §2.2.19.1) is `wNumEntries` (u16, the
//! count of u16 in the array), `wSecurityOffset` (u16, where the security
//! bindings start, in u16 units), then the array: `STRINGBINDING`s
//! (`wTowerId` u16, a NUL-terminated UTF-16 network address such as
//! `HOST[49670]`) ended by one more 0, then `SECURITYBINDING`s
//! (`wAuthnSvc`, `Reserved`/authz u16, a NUL-terminated principal name)
//! ended by one more 0. Marshaled as an NDR parameter it is preceded by
//! its conformance (u32 = `wNumEntries`); inside an `OBJREF` (the
//! `STDOBJREF`'s resolver address) it is not.
//!
//! The arrays sit at different depths of each answer (RemoteCreateInstance
//! carries them inside the activation properties blob: `ScmReplyInfoData`'s
//! OXID bindings, and each `OBJREF`'s resolver address), so they are found
//! by their own framing rather than by walking every structure above them:
//! every 2-byte-aligned offset of the stub is tried as a `DUALSTRINGARRAY`,
//! and one is accepted only when its counts fit the bytes present and
//! every entry is well formed — a tower id of C706 Appendix I's range, a
//! non-empty printable address, the string bindings ending exactly where
//! `wSecurityOffset` says, the security bindings ending exactly at
//! `wNumEntries`. A size that lies is refused, never read past. Cost:
//! one pass to index the NUL and bad characters of the stub, then
//! O(bindings) per candidate offset, bounded by [`MAX_BINDINGS`]; at most
//! [`MAX_SCAN_BYTES`] of a stub are searched.
//!
//! Pure functions over stub bytes; nothing panics.

use std::fmt;
use std::net::IpAddr;

use super::dcerpc::Uuid;

/// ISystemActivator (IRemoteSCMActivator), 000001a0-0000-0000-c000-000000000046.
pub const UUID_ISYSTEM_ACTIVATOR: Uuid =
    Uuid::from_fields(0x0000_01a0, 0, 0, [0xc0, 0, 0, 0, 0, 0, 0, 0x46]);
/// IRemoteActivation, 4d9f4ab8-7d1c-11cf-861e-0020af6e7c57.
pub const UUID_IREMOTE_ACTIVATION: Uuid = Uuid::from_fields(
    0x4d9f_4ab8,
    0x7d1c,
    0x11cf,
    [0x86, 0x1e, 0x00, 0x20, 0xaf, 0x6e, 0x7c, 0x57],
);
/// IObjectExporter (the OXID resolver), 99fcfec4-5260-101b-bbcb-00aa0021347a.
pub const UUID_IOBJECT_EXPORTER: Uuid = Uuid::from_fields(
    0x99fc_fec4,
    0x5260,
    0x101b,
    [0xbb, 0xcb, 0x00, 0xaa, 0x00, 0x21, 0x34, 0x7a],
);

/// Most string bindings read from one array (a server lists its names and
/// each of its addresses; real answers carry 2–10).
pub const MAX_BINDINGS: usize = 64;
/// Most security bindings walked in one array.
pub const MAX_SECURITY_BINDINGS: usize = 64;
/// Most u16 entries of one array (`wNumEntries`; real ones are 50–300).
pub const MAX_ENTRIES: usize = 8192;
/// Most arrays kept from one answer.
pub const MAX_ARRAYS: usize = 16;
/// Bytes of a stub searched (real answers are 0.3–4 KB).
pub const MAX_SCAN_BYTES: usize = 64 * 1024;
/// Longest network address read (a DNS name is at most 255 characters,
/// plus `[65535]`).
pub const MAX_ADDRESS: usize = 300;

/// The DCOM calls whose answers carry string bindings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DcomOperation {
    /// ISystemActivator opnum 3.
    RemoteGetClassObject,
    /// ISystemActivator opnum 4.
    RemoteCreateInstance,
    /// IRemoteActivation opnum 0.
    RemoteActivation,
    /// IObjectExporter opnum 0.
    ResolveOxid,
    /// IObjectExporter opnum 4.
    ResolveOxid2,
    /// IObjectExporter opnum 5.
    ServerAlive2,
}

impl DcomOperation {
    /// The operation of a call to `interface` with `opnum`, if its answer
    /// carries string bindings.
    pub fn of(interface: &Uuid, opnum: u16) -> Option<DcomOperation> {
        Some(match (*interface, opnum) {
            (UUID_ISYSTEM_ACTIVATOR, 3) => DcomOperation::RemoteGetClassObject,
            (UUID_ISYSTEM_ACTIVATOR, 4) => DcomOperation::RemoteCreateInstance,
            (UUID_IREMOTE_ACTIVATION, 0) => DcomOperation::RemoteActivation,
            (UUID_IOBJECT_EXPORTER, 0) => DcomOperation::ResolveOxid,
            (UUID_IOBJECT_EXPORTER, 4) => DcomOperation::ResolveOxid2,
            (UUID_IOBJECT_EXPORTER, 5) => DcomOperation::ServerAlive2,
            _ => return None,
        })
    }

    /// Whether calls to `interface` may be one of these.
    pub fn is_dcom_interface(interface: &Uuid) -> bool {
        matches!(
            *interface,
            UUID_ISYSTEM_ACTIVATOR | UUID_IREMOTE_ACTIVATION | UUID_IOBJECT_EXPORTER
        )
    }

    /// The interface the call is made on.
    pub fn interface(self) -> Uuid {
        match self {
            DcomOperation::RemoteGetClassObject | DcomOperation::RemoteCreateInstance => {
                UUID_ISYSTEM_ACTIVATOR
            }
            DcomOperation::RemoteActivation => UUID_IREMOTE_ACTIVATION,
            DcomOperation::ResolveOxid
            | DcomOperation::ResolveOxid2
            | DcomOperation::ServerAlive2 => UUID_IOBJECT_EXPORTER,
        }
    }

    /// The report contract's `operation` name.
    pub fn as_str(self) -> &'static str {
        match self {
            DcomOperation::RemoteGetClassObject => "remote-get-class-object",
            DcomOperation::RemoteCreateInstance => "remote-create-instance",
            DcomOperation::RemoteActivation => "remote-activation",
            DcomOperation::ResolveOxid => "resolve-oxid",
            DcomOperation::ResolveOxid2 => "resolve-oxid2",
            DcomOperation::ServerAlive2 => "server-alive2",
        }
    }
}

/// Tower ids ([MS-DCOM] §2.2.19.3: C706 Appendix I's protocol identifiers).
pub mod tower {
    /// ncacn_ip_tcp.
    pub const NCACN_IP_TCP: u16 = 0x07;
    /// ncadg_ip_udp.
    pub const NCADG_IP_UDP: u16 = 0x08;
    /// ncacn_http.
    pub const NCACN_HTTP: u16 = 0x1f;
    /// The highest id accepted as a tower id.
    pub const MAX: u16 = 0x1f;
}

/// The host part of a string binding's network address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BindingHost {
    /// An IPv4 or IPv6 literal.
    Ip(IpAddr),
    /// A NetBIOS or DNS name: which address it stands for is not on the wire.
    Name(String),
}

/// One `STRINGBINDING`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StringBinding {
    pub tower_id: u16,
    /// The network address as written, e.g. `HOST[49670]` or `10.0.0.5`.
    pub address: String,
}

impl StringBinding {
    /// The protocol sequence's name (`ncacn_ip_tcp`, ...), when known.
    pub fn protseq(&self) -> Option<&'static str> {
        Some(match self.tower_id {
            tower::NCACN_IP_TCP => "ncacn_ip_tcp",
            tower::NCADG_IP_UDP => "ncadg_ip_udp",
            tower::NCACN_HTTP => "ncacn_http",
            0x04 => "ncacn_dnet_nsp",
            0x0c => "ncacn_spx",
            0x0d => "ncacn_nb_ipx",
            0x0e => "ncadg_ipx",
            0x0f => "ncacn_np",
            0x10 => "ncalrpc",
            0x12 => "ncacn_nb_nb",
            _ => return None,
        })
    }

    /// The address split into its host and its bracketed port (`None`:
    /// no port, as in the resolver's own bindings, which mean TCP 135).
    pub fn host_port(&self) -> (&str, Option<u16>) {
        let a = self.address.as_str();
        if let Some(inner) = a.strip_suffix(']') {
            if let Some(open) = inner.rfind('[') {
                let digits = &inner[open + 1..];
                let port = (!digits.is_empty()
                    && digits.len() <= 5
                    && digits.bytes().all(|c| c.is_ascii_digit()))
                .then(|| digits.parse::<u16>().ok())
                .flatten()
                .filter(|&p| p != 0);
                if port.is_some() {
                    return (&inner[..open], port);
                }
            }
        }
        (a, None)
    }

    /// The host, as an address when it is a literal (an IPv6 zone index,
    /// `%11`, is dropped).
    pub fn host(&self) -> BindingHost {
        let (h, _) = self.host_port();
        let bare = h.split('%').next().unwrap_or(h);
        match bare.parse::<IpAddr>() {
            Ok(ip) => BindingHost::Ip(ip),
            Err(_) => BindingHost::Name(h.to_string()),
        }
    }

    /// The TCP port of an ncacn_ip_tcp binding that names one.
    pub fn tcp_port(&self) -> Option<u16> {
        (self.tower_id == tower::NCACN_IP_TCP)
            .then(|| self.host_port().1)
            .flatten()
    }
}

impl fmt::Display for StringBinding {
    /// `ncacn_ip_tcp:HOST[49670]`, the string-binding form of MS-RPCE.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.protseq() {
            Some(p) => write!(f, "{p}:{}", self.address),
            None => write!(f, "tower-0x{:04x}:{}", self.tower_id, self.address),
        }
    }
}

/// One `DUALSTRINGARRAY` found in a stub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DualStringArray {
    /// Byte offset of `wNumEntries` in the stub.
    pub offset: usize,
    /// Preceded by its NDR conformance (a marshaled parameter or field),
    /// not embedded raw (an OBJREF's resolver address).
    pub conformant: bool,
    pub num_entries: u16,
    pub security_offset: u16,
    pub string_bindings: Vec<StringBinding>,
    pub security_bindings: usize,
}

/// Why an answer was not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DcomError {
    /// Fewer than the 4 bytes of a status.
    Truncated { have: usize },
}

impl fmt::Display for DcomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DcomError::Truncated { have } => {
                write!(f, "DCOM answer truncated: {have} bytes, no status")
            }
        }
    }
}

impl std::error::Error for DcomError {}

/// What a DCOM answer said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DcomAnswer {
    pub operation: DcomOperation,
    /// Every array found, in stub order.
    pub arrays: Vec<DualStringArray>,
    /// The last u32 of the stub: the call's HRESULT or error_status_t.
    pub status: u32,
    /// The stub was longer than [`MAX_SCAN_BYTES`]: only its start was searched.
    pub cut: bool,
}

impl DcomAnswer {
    /// Every string binding of every array, each once, in stub order.
    pub fn string_bindings(&self) -> Vec<&StringBinding> {
        let mut out: Vec<&StringBinding> = Vec::new();
        for b in self.arrays.iter().flat_map(|a| &a.string_bindings) {
            if !out.contains(&b) {
                out.push(b);
            }
        }
        out
    }
}

/// Decode the response stub of `operation`: its string bindings, wherever
/// they are, and its status.
pub fn parse_dcom_response(
    operation: DcomOperation,
    stub: &[u8],
    little_endian: bool,
) -> Result<DcomAnswer, DcomError> {
    let n = stub.len();
    if n < 4 {
        return Err(DcomError::Truncated { have: n });
    }
    let s = [stub[n - 4], stub[n - 3], stub[n - 2], stub[n - 1]];
    let status = if little_endian {
        u32::from_le_bytes(s)
    } else {
        u32::from_be_bytes(s)
    };
    let cut = n > MAX_SCAN_BYTES;
    Ok(DcomAnswer {
        operation,
        arrays: scan_dual_string_arrays(&stub[..n.min(MAX_SCAN_BYTES)], little_endian),
        status,
        cut,
    })
}

/// Whether `c` may be part of a network address (printable ASCII, no space).
fn address_char(c: u16) -> bool {
    (0x21..=0x7e).contains(&c)
}

/// Whether `c` may be part of a principal name (no control characters, no
/// lone surrogates).
fn principal_char(c: u16) -> bool {
    c >= 0x20 && c != 0x7f && !(0xd800..=0xdfff).contains(&c)
}

/// The stub as u16 units, with what validating a candidate needs in O(1)
/// per entry.
struct Units {
    u: Vec<u16>,
    le: bool,
    /// `next_zero[k]`: the first index ≥ k holding 0 (`u.len()` if none).
    next_zero: Vec<u32>,
    /// Prefix counts of units that cannot be in an address / a principal.
    bad_addr: Vec<u32>,
    bad_princ: Vec<u32>,
}

impl Units {
    fn new(stub: &[u8], le: bool) -> Units {
        let u: Vec<u16> = stub
            .chunks_exact(2)
            .map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        let w = u.len();
        let mut next_zero = vec![w as u32; w + 1];
        for k in (0..w).rev() {
            next_zero[k] = if u[k] == 0 {
                k as u32
            } else {
                next_zero[k + 1]
            };
        }
        let mut bad_addr = Vec::with_capacity(w + 1);
        let mut bad_princ = Vec::with_capacity(w + 1);
        let (mut a, mut p) = (0u32, 0u32);
        bad_addr.push(0);
        bad_princ.push(0);
        for &c in &u {
            a += u32::from(c != 0 && !address_char(c));
            p += u32::from(c != 0 && !principal_char(c));
            bad_addr.push(a);
            bad_princ.push(p);
        }
        Units {
            u,
            le,
            next_zero,
            bad_addr,
            bad_princ,
        }
    }

    /// The string `[from, NUL)` when its NUL comes before `limit` (the
    /// index of the section's own terminator): (end = the NUL's index).
    fn string(&self, from: usize, limit: usize) -> Option<usize> {
        let z = *self.next_zero.get(from)? as usize;
        (z < limit).then_some(z)
    }

    /// Validates a `DUALSTRINGARRAY` whose `wNumEntries` is unit `k`.
    fn array_at(&self, k: usize) -> Option<(DualStringArray, usize)> {
        let u = &self.u;
        let n = usize::from(*u.get(k)?);
        let s = usize::from(*u.get(k + 1)?);
        let base = k + 2;
        if !(2..=MAX_ENTRIES).contains(&n) || s == 0 || s >= n || base + n > u.len() {
            return None;
        }
        // String bindings: [base, base + s - 1), terminator at base + s - 1.
        let str_end = base + s - 1;
        if u[str_end] != 0 {
            return None;
        }
        let mut bindings = Vec::new();
        let mut p = base;
        while p < str_end {
            let tower_id = u[p];
            if tower_id == 0 || tower_id > tower::MAX || bindings.len() == MAX_BINDINGS {
                return None;
            }
            let z = self.string(p + 1, str_end)?;
            let len = z - (p + 1);
            if len == 0 || len > MAX_ADDRESS || self.bad_addr[z] != self.bad_addr[p + 1] {
                return None;
            }
            let address: String = u[p + 1..z].iter().map(|&c| c as u8 as char).collect();
            bindings.push(StringBinding { tower_id, address });
            p = z + 1;
        }
        if p != str_end {
            return None;
        }
        // Security bindings: [base + s, base + n - 1), terminator last.
        let last = base + n - 1;
        if u[last] != 0 {
            return None;
        }
        let mut q = base + s;
        let mut security = 0;
        while q < last {
            if u[q] == 0 || q + 2 > last || security == MAX_SECURITY_BINDINGS {
                return None;
            }
            let z = self.string(q + 2, last)?;
            if self.bad_princ[z] != self.bad_princ[q + 2] {
                return None;
            }
            security += 1;
            q = z + 1;
        }
        if q != last {
            return None;
        }
        // The u32 before it equals wNumEntries (< 65,536: its high half is 0).
        let conformant = k >= 2 && {
            let (lo, hi) = if self.le {
                (u[k - 2], u[k - 1])
            } else {
                (u[k - 1], u[k - 2])
            };
            hi == 0 && usize::from(lo) == n
        };
        Some((
            DualStringArray {
                offset: 2 * k,
                conformant,
                num_entries: n as u16,
                security_offset: s as u16,
                string_bindings: bindings,
                security_bindings: security,
            },
            base + n,
        ))
    }
}

/// Every well-formed `DUALSTRINGARRAY` of `stub` (2-byte aligned), in
/// order, not overlapping; at most [`MAX_ARRAYS`]. Empty arrays (no string
/// binding) are skipped: they name nothing and their few bytes occur by
/// chance.
pub fn scan_dual_string_arrays(stub: &[u8], little_endian: bool) -> Vec<DualStringArray> {
    let units = Units::new(stub, little_endian);
    let mut out = Vec::new();
    let mut k = 0;
    while k + 4 <= units.u.len() && out.len() < MAX_ARRAYS {
        match units.array_at(k) {
            Some((a, next)) if !a.string_bindings.is_empty() => {
                out.push(a);
                k = next;
            }
            _ => k += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests;
