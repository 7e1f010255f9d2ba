//! SMB as a carrier of DCE/RPC named pipes (#24): NetBIOS session service
//! framing (RFC 1002 §4.3; the same four-byte header on direct TCP 445,
//! MS-SMB2 §2.1), the SMB2 header and the commands that move pipe bytes
//! (MS-SMB2 §2.2), the SMB1 header and its pipe commands (MS-CIFS §2.2).
//!
//! Pure, zero-copy and lax: typed views over `&[u8]`, every offset and
//! length checked against the bytes present before it is used (an offset
//! or length reaching beyond the message is [`SmbError::OutOfBounds`]), no
//! panic on any input. Offsets inside a message are relative to the start
//! of its SMB header, as on the wire. What a connection does with them
//! (which file ids are pipes, requests awaiting responses) is
//! `flow::smb_pipe`'s.

use std::fmt;

/// The NetBIOS session service header (type, flags or length high bits,
/// 16-bit length).
pub const NBSS_HEADER_LEN: usize = 4;
/// NBSS session message: an SMB message follows.
pub const NBSS_MESSAGE: u8 = 0x00;
/// NBSS session request (TCP 139, before any SMB).
pub const NBSS_SESSION_REQUEST: u8 = 0x81;
/// NBSS positive and negative session responses, retarget response.
pub const NBSS_POSITIVE_RESPONSE: u8 = 0x82;
pub const NBSS_NEGATIVE_RESPONSE: u8 = 0x83;
pub const NBSS_RETARGET_RESPONSE: u8 = 0x84;
/// NBSS keepalive (no body).
pub const NBSS_KEEPALIVE: u8 = 0x85;

/// The SMB2 header's length.
pub const SMB2_HEADER_LEN: usize = 64;
/// The SMB1 header's length.
pub const SMB1_HEADER_LEN: usize = 32;
/// Most commands of one SMB2 compound (or one SMB1 AndX chain) read; a
/// real compound has a handful (MS-SMB2 §3.2.4.1.4).
pub const MAX_CHAINED: usize = 16;

/// SMB2 commands (MS-SMB2 §2.2.1).
pub mod smb2_cmd {
    pub const NEGOTIATE: u16 = 0x00;
    pub const SESSION_SETUP: u16 = 0x01;
    pub const TREE_CONNECT: u16 = 0x03;
    pub const CREATE: u16 = 0x05;
    pub const CLOSE: u16 = 0x06;
    pub const READ: u16 = 0x08;
    pub const WRITE: u16 = 0x09;
    pub const IOCTL: u16 = 0x0B;
}

/// SMB1 commands (MS-CIFS §2.2.2.1).
pub mod smb1_cmd {
    pub const CLOSE: u8 = 0x04;
    pub const TRANSACTION: u8 = 0x25;
    pub const READ_ANDX: u8 = 0x2E;
    pub const WRITE_ANDX: u8 = 0x2F;
    pub const TREE_CONNECT_ANDX: u8 = 0x75;
    pub const NT_CREATE_ANDX: u8 = 0xA2;
    /// No further command in an AndX chain.
    pub const NO_ANDX: u8 = 0xFF;
}

/// NT status codes the pipe tracking tells apart.
pub mod status {
    pub const SUCCESS: u32 = 0;
    /// An interim response: the final one follows (MS-SMB2 §3.3.4.2).
    pub const PENDING: u32 = 0x0000_0103;
    /// The data is valid, and there is more of the pipe message (MS-SMB2
    /// §3.3.5.12, §3.3.5.15.1).
    pub const BUFFER_OVERFLOW: u32 = 0x8000_0005;
}

/// FSCTL_PIPE_TRANSCEIVE (MS-FSCC §2.3.51): write then read a pipe.
pub const FSCTL_PIPE_TRANSCEIVE: u32 = 0x0011_C017;
/// TransactNmPipe, the SMB1 TRANSACTION subcommand (MS-CIFS §2.2.5.6).
pub const TRANS_TRANSACT_NM_PIPE: u16 = 0x0026;
/// SMB2 header flag: the message is a response.
pub const SMB2_FLAGS_SERVER_TO_REDIR: u32 = 0x0000_0001;
/// SMB2 header flag: async header (AsyncId in place of TreeId).
pub const SMB2_FLAGS_ASYNC_COMMAND: u32 = 0x0000_0002;
/// SMB2 TREE_CONNECT response ShareType of a named-pipe share (IPC$).
pub const SMB2_SHARE_TYPE_PIPE: u8 = 0x02;

/// Why a piece of an SMB message was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmbError {
    /// Fewer bytes than the structure needs.
    Truncated { need: usize, have: usize },
    /// Not the protocol id the parser reads (`\xfeSMB`, `\xffSMB`).
    BadProtocol,
    /// An NBSS type RFC 1002 does not define.
    BadNbssType(u8),
    /// The command's StructureSize (SMB2) or WordCount (SMB1) is not one
    /// the parser knows.
    BadStructure { command: u16, size: u16 },
    /// An offset or length points outside the message.
    OutOfBounds {
        offset: usize,
        len: usize,
        have: usize,
    },
    /// An SMB2 NextCommand or SMB1 AndXOffset that does not move forward.
    BadChain(usize),
}

impl fmt::Display for SmbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SmbError::Truncated { need, have } => {
                write!(f, "truncated: need {need} bytes, have {have}")
            }
            SmbError::BadProtocol => f.write_str("not an SMB header"),
            SmbError::BadNbssType(t) => write!(f, "NBSS type {t:#04x}"),
            SmbError::BadStructure { command, size } => {
                write!(f, "command {command:#06x}: structure size {size}")
            }
            SmbError::OutOfBounds { offset, len, have } => {
                write!(f, "{len} bytes at {offset} beyond the {have}-byte message")
            }
            SmbError::BadChain(at) => write!(f, "chained command at {at} does not advance"),
        }
    }
}

impl std::error::Error for SmbError {}

type Result<T> = std::result::Result<T, SmbError>;

fn need(b: &[u8], n: usize) -> Result<()> {
    if b.len() < n {
        Err(SmbError::Truncated {
            need: n,
            have: b.len(),
        })
    } else {
        Ok(())
    }
}

fn u16le(b: &[u8], at: usize) -> Result<u16> {
    need(b, at + 2)?;
    Ok(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn u32le(b: &[u8], at: usize) -> Result<u32> {
    need(b, at + 4)?;
    Ok(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}

fn u64le(b: &[u8], at: usize) -> Result<u64> {
    need(b, at + 8)?;
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    Ok(u64::from_le_bytes(x))
}

/// `len` bytes at `offset` of `msg`, or why not.
fn range(msg: &[u8], offset: usize, len: usize) -> Result<&[u8]> {
    offset
        .checked_add(len)
        .and_then(|end| msg.get(offset..end))
        .ok_or(SmbError::OutOfBounds {
            offset,
            len,
            have: msg.len(),
        })
}

// ---------------------------------------------------------------------------
// NBSS framing

/// A NetBIOS session service packet header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nbss {
    pub kind: u8,
    /// Length of what follows the header.
    pub len: usize,
}

impl Nbss {
    /// The whole packet's length, header included.
    pub fn total(&self) -> usize {
        NBSS_HEADER_LEN + self.len
    }
}

/// The NBSS header at the start of `b`. A session message's length is read
/// on 24 bits (direct TCP, MS-SMB2 §2.1, which the 17-bit RFC 1002 length
/// is a case of); the other types' on 17 bits.
pub fn parse_nbss(b: &[u8]) -> Result<Nbss> {
    need(b, NBSS_HEADER_LEN)?;
    let kind = b[0];
    let low = (usize::from(b[2]) << 8) | usize::from(b[3]);
    let len = match kind {
        NBSS_MESSAGE => (usize::from(b[1]) << 16) | low,
        NBSS_SESSION_REQUEST
        | NBSS_POSITIVE_RESPONSE
        | NBSS_NEGATIVE_RESPONSE
        | NBSS_RETARGET_RESPONSE
        | NBSS_KEEPALIVE => (usize::from(b[1] & 1) << 16) | low,
        other => return Err(SmbError::BadNbssType(other)),
    };
    Ok(Nbss { kind, len })
}

/// What an NBSS session message carries, from its first four bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Smb1,
    Smb2,
    /// SMB3 transform header: the message is encrypted (MS-SMB2 §2.2.41).
    Transform,
    /// SMB3 compression transform header (MS-SMB2 §2.2.42).
    Compressed,
}

impl Protocol {
    /// The protocol whose id `body` starts with.
    pub fn of(body: &[u8]) -> Option<Protocol> {
        match body.get(..4)? {
            b"\xffSMB" => Some(Protocol::Smb1),
            b"\xfeSMB" => Some(Protocol::Smb2),
            b"\xfdSMB" => Some(Protocol::Transform),
            b"\xfcSMB" => Some(Protocol::Compressed),
            _ => None,
        }
    }

    /// The least a message of this protocol has.
    fn min_len(self) -> usize {
        match self {
            Protocol::Smb1 => SMB1_HEADER_LEN,
            Protocol::Smb2 => SMB2_HEADER_LEN,
            Protocol::Transform => 52,
            Protocol::Compressed => 16,
        }
    }
}

/// A NetBIOS session request (RFC 1002 §4.3.2) at the start of `b`: type
/// 0x81, then the called name, first-level encoded (length 32, letters
/// A–P).
fn session_request(b: &[u8]) -> bool {
    let Ok(h) = parse_nbss(b) else { return false };
    h.kind == NBSS_SESSION_REQUEST
        && b[1] & 0xFE == 0
        && (68..=512).contains(&h.len)
        && b.get(4) == Some(&0x20)
        && b.get(5..37)
            .is_some_and(|n| n.iter().all(|c| (b'A'..=b'P').contains(c)))
}

/// Whether a connection's first payload looks like SMB: an NBSS session
/// message whose body starts with an SMB protocol id (and claims at least
/// that protocol's header), or an NBSS session request (TCP 139).
pub fn looks_like_smb(b: &[u8]) -> bool {
    if session_request(b) {
        return true;
    }
    let Ok(h) = parse_nbss(b) else { return false };
    h.kind == NBSS_MESSAGE
        && b.get(NBSS_HEADER_LEN..)
            .and_then(Protocol::of)
            .is_some_and(|p| h.len >= p.min_len())
}

// ---------------------------------------------------------------------------
// SMB2

/// The SMB2 sync or async header (MS-SMB2 §2.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Smb2Header {
    pub status: u32,
    pub command: u16,
    pub flags: u32,
    /// Offset of the next command of a compound from this header (0: the
    /// last).
    pub next_command: u32,
    pub message_id: u64,
    /// The tree (sync header only).
    pub tree_id: Option<u32>,
}

impl Smb2Header {
    pub fn is_response(&self) -> bool {
        self.flags & SMB2_FLAGS_SERVER_TO_REDIR != 0
    }

    /// An interim response: the final one, with the same MessageId, follows.
    pub fn is_interim(&self) -> bool {
        self.is_response() && self.status == status::PENDING
    }
}

/// The SMB2 header at the start of `msg`.
pub fn parse_smb2_header(msg: &[u8]) -> Result<Smb2Header> {
    need(msg, SMB2_HEADER_LEN)?;
    if &msg[..4] != b"\xfeSMB" {
        return Err(SmbError::BadProtocol);
    }
    let flags = u32le(msg, 16)?;
    Ok(Smb2Header {
        status: u32le(msg, 8)?,
        command: u16le(msg, 12)?,
        flags,
        next_command: u32le(msg, 20)?,
        message_id: u64le(msg, 24)?,
        tree_id: (flags & SMB2_FLAGS_ASYNC_COMMAND == 0).then(|| u32le(msg, 36).unwrap_or(0)),
    })
}

/// The commands of an SMB2 message (one, or a compound chained by
/// NextCommand), each with its own bytes (header first; offsets in it are
/// relative to that header). Stops at the first header that does not
/// parse (yielding the error once), after [`MAX_CHAINED`] commands, and at
/// a NextCommand that does not move forward or points past the message.
pub fn smb2_commands(body: &[u8]) -> Smb2Commands<'_> {
    Smb2Commands {
        rest: body,
        at: 0,
        n: 0,
        done: false,
    }
}

/// See [`smb2_commands`].
#[derive(Clone, Debug)]
pub struct Smb2Commands<'a> {
    rest: &'a [u8],
    at: usize,
    n: usize,
    done: bool,
}

impl<'a> Iterator for Smb2Commands<'a> {
    type Item = Result<(Smb2Header, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.n >= MAX_CHAINED {
            return None;
        }
        self.n += 1;
        let h = match parse_smb2_header(self.rest) {
            Ok(h) => h,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        let next = h.next_command as usize;
        if next == 0 {
            self.done = true;
            return Some(Ok((h, self.rest)));
        }
        if next < SMB2_HEADER_LEN || next > self.rest.len() {
            self.done = true;
            // This command is whole up to the end; what follows is not.
            return Some(if next > self.rest.len() {
                Err(SmbError::BadChain(self.at + next))
            } else {
                Ok((h, self.rest))
            });
        }
        let (this, rest) = self.rest.split_at(next);
        self.rest = rest;
        self.at += next;
        Some(Ok((h, this)))
    }
}

fn structure(msg: &[u8], command: u16, sizes: &[u16]) -> Result<()> {
    let size = u16le(msg, SMB2_HEADER_LEN)?;
    if sizes.contains(&size) {
        Ok(())
    } else {
        Err(SmbError::BadStructure { command, size })
    }
}

/// An SMB2 FileId (persistent and volatile halves).
pub type FileId = [u8; 16];

fn file_id(msg: &[u8], at: usize) -> Result<FileId> {
    let b = range(msg, at, 16)?;
    let mut id = [0u8; 16];
    id.copy_from_slice(b);
    Ok(id)
}

/// An SMB2 error response (MS-SMB2 §2.2.2): StructureSize 9.
pub fn smb2_is_error_response(msg: &[u8]) -> bool {
    u16le(msg, SMB2_HEADER_LEN).is_ok_and(|s| s == 9)
}

/// CREATE request (MS-SMB2 §2.2.13): the name, UTF-16LE bytes.
pub fn smb2_create_request_name(msg: &[u8]) -> Result<&[u8]> {
    structure(msg, smb2_cmd::CREATE, &[57])?;
    let off = usize::from(u16le(msg, SMB2_HEADER_LEN + 44)?);
    let len = usize::from(u16le(msg, SMB2_HEADER_LEN + 46)?);
    if len == 0 {
        return Ok(&[]);
    }
    range(msg, off, len)
}

/// CREATE response (MS-SMB2 §2.2.14): the FileId opened.
pub fn smb2_create_response_file_id(msg: &[u8]) -> Result<FileId> {
    structure(msg, smb2_cmd::CREATE, &[89])?;
    file_id(msg, SMB2_HEADER_LEN + 64)
}

/// CLOSE request (MS-SMB2 §2.2.15): the FileId closed.
pub fn smb2_close_request_file_id(msg: &[u8]) -> Result<FileId> {
    structure(msg, smb2_cmd::CLOSE, &[24])?;
    file_id(msg, SMB2_HEADER_LEN + 8)
}

/// TREE_CONNECT response (MS-SMB2 §2.2.10): the ShareType.
pub fn smb2_tree_connect_share_type(msg: &[u8]) -> Result<u8> {
    structure(msg, smb2_cmd::TREE_CONNECT, &[16])?;
    range(msg, SMB2_HEADER_LEN + 2, 1).map(|b| b[0])
}

/// WRITE request (MS-SMB2 §2.2.21): the file and the bytes written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Smb2Write<'a> {
    pub file_id: FileId,
    pub data: &'a [u8],
}

/// Where a WRITE request's data is, without reading it (the head of a
/// message may be all that is at hand): (FileId, DataOffset, Length).
pub fn smb2_write_request_head(msg: &[u8]) -> Result<(FileId, usize, usize)> {
    structure(msg, smb2_cmd::WRITE, &[49])?;
    let off = usize::from(u16le(msg, SMB2_HEADER_LEN + 2)?);
    let len = u32le(msg, SMB2_HEADER_LEN + 4)? as usize;
    Ok((file_id(msg, SMB2_HEADER_LEN + 16)?, off, len))
}

pub fn smb2_write_request(msg: &[u8]) -> Result<Smb2Write<'_>> {
    let (file_id, off, len) = smb2_write_request_head(msg)?;
    Ok(Smb2Write {
        file_id,
        data: range(msg, off, len)?,
    })
}

/// READ request (MS-SMB2 §2.2.19): the FileId read.
pub fn smb2_read_request_file_id(msg: &[u8]) -> Result<FileId> {
    structure(msg, smb2_cmd::READ, &[49])?;
    file_id(msg, SMB2_HEADER_LEN + 16)
}

/// READ response (MS-SMB2 §2.2.20): the bytes read.
pub fn smb2_read_response_data(msg: &[u8]) -> Result<&[u8]> {
    structure(msg, smb2_cmd::READ, &[17])?;
    let off = usize::from(range(msg, SMB2_HEADER_LEN + 2, 1)?[0]);
    let len = u32le(msg, SMB2_HEADER_LEN + 4)? as usize;
    if len == 0 {
        return Ok(&[]);
    }
    range(msg, off, len)
}

/// IOCTL request or response (MS-SMB2 §2.2.31, §2.2.32): the control
/// code, the file and the bytes it carries (request: input; response:
/// output).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Smb2Ioctl<'a> {
    pub ctl_code: u32,
    pub file_id: FileId,
    pub data: &'a [u8],
}

pub fn smb2_ioctl(msg: &[u8], response: bool) -> Result<Smb2Ioctl<'_>> {
    structure(msg, smb2_cmd::IOCTL, if response { &[49] } else { &[57] })?;
    let b = SMB2_HEADER_LEN;
    let (off, len) = if response {
        (u32le(msg, b + 32)?, u32le(msg, b + 36)?)
    } else {
        (u32le(msg, b + 24)?, u32le(msg, b + 28)?)
    };
    let data = if len == 0 {
        &[][..]
    } else {
        range(msg, off as usize, len as usize)?
    };
    Ok(Smb2Ioctl {
        ctl_code: u32le(msg, b + 4)?,
        file_id: file_id(msg, b + 8)?,
        data,
    })
}

// ---------------------------------------------------------------------------
// SMB1

/// The SMB1 header (MS-CIFS §2.2.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Smb1Header {
    pub command: u8,
    pub status: u32,
    pub flags: u8,
    pub flags2: u16,
    pub tid: u16,
    pub mid: u16,
}

impl Smb1Header {
    pub fn is_response(&self) -> bool {
        self.flags & 0x80 != 0
    }

    /// Strings are UTF-16LE (SMB_FLAGS2_UNICODE).
    pub fn unicode(&self) -> bool {
        self.flags2 & 0x8000 != 0
    }
}

pub fn parse_smb1_header(msg: &[u8]) -> Result<Smb1Header> {
    need(msg, SMB1_HEADER_LEN)?;
    if &msg[..4] != b"\xffSMB" {
        return Err(SmbError::BadProtocol);
    }
    Ok(Smb1Header {
        command: msg[4],
        status: u32le(msg, 5)?,
        flags: msg[9],
        flags2: u16le(msg, 10)?,
        tid: u16le(msg, 24)?,
        mid: u16le(msg, 30)?,
    })
}

/// One SMB1 command's parameter and data blocks (MS-CIFS §2.2.3.2,
/// §2.2.3.3), at `at` in the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Smb1Block<'a> {
    pub command: u8,
    /// The parameter words, as bytes (WordCount × 2).
    pub words: &'a [u8],
    /// The data block (ByteCount bytes, cut to what the message holds).
    pub bytes: &'a [u8],
    /// Where `bytes` starts in the message.
    pub bytes_at: usize,
}

impl Smb1Block<'_> {
    pub fn word_count(&self) -> usize {
        self.words.len() / 2
    }

    /// The little-endian u16 at byte `at` of the parameter words.
    pub fn w16(&self, at: usize) -> Result<u16> {
        u16le(self.words, at)
    }

    pub fn w32(&self, at: usize) -> Result<u32> {
        u32le(self.words, at)
    }
}

fn smb1_block(msg: &[u8], command: u8, at: usize) -> Result<Smb1Block<'_>> {
    let wc = usize::from(*msg.get(at).ok_or(SmbError::Truncated {
        need: at + 1,
        have: msg.len(),
    })?);
    let words = range(msg, at + 1, wc * 2)?;
    let bc_at = at + 1 + wc * 2;
    // ByteCount may be cut off in an error response: lax, no bytes.
    let (bytes, bytes_at) = match u16le(msg, bc_at) {
        Ok(bc) => {
            let start = bc_at + 2;
            let end = (start + usize::from(bc)).min(msg.len());
            (&msg[start.min(end)..end], start)
        }
        Err(_) => (&[][..], msg.len()),
    };
    Ok(Smb1Block {
        command,
        words,
        bytes,
        bytes_at,
    })
}

/// The commands of an SMB1 message: the first, then those an AndX chain
/// adds (MS-CIFS §2.2.3.4), each AndXOffset moving strictly forward, at
/// most [`MAX_CHAINED`]. Stops (after yielding the error) at a block that
/// does not parse.
pub fn smb1_commands(msg: &[u8]) -> Smb1Commands<'_> {
    let first = parse_smb1_header(msg).map(|h| h.command);
    Smb1Commands {
        msg,
        next: match first {
            Ok(c) => Some((c, SMB1_HEADER_LEN)),
            Err(_) => None,
        },
        n: 0,
    }
}

/// See [`smb1_commands`].
#[derive(Clone, Debug)]
pub struct Smb1Commands<'a> {
    msg: &'a [u8],
    next: Option<(u8, usize)>,
    n: usize,
}

/// Commands whose parameter block starts with the AndX header.
fn is_andx(command: u8) -> bool {
    matches!(
        command,
        smb1_cmd::READ_ANDX
            | smb1_cmd::WRITE_ANDX
            | smb1_cmd::NT_CREATE_ANDX
            | smb1_cmd::TREE_CONNECT_ANDX
            | 0x2D // OPEN_ANDX
            | 0x24 // LOCKING_ANDX
            | 0x73 // SESSION_SETUP_ANDX
            | 0x74 // LOGOFF_ANDX
    )
}

impl<'a> Iterator for Smb1Commands<'a> {
    type Item = Result<Smb1Block<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let (command, at) = self.next.take()?;
        if self.n >= MAX_CHAINED {
            return None;
        }
        self.n += 1;
        let block = match smb1_block(self.msg, command, at) {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        if is_andx(command) && block.words.len() >= 4 {
            let next = block.words[0];
            let off = usize::from(u16le(block.words, 2).unwrap_or(0));
            // An offset that does not move forward ends the chain.
            if next != smb1_cmd::NO_ANDX && off > at && off < self.msg.len() {
                self.next = Some((next, off));
            }
        }
        Some(Ok(block))
    }
}

/// NT_CREATE_ANDX request (MS-CIFS §2.2.4.64.1): the name's bytes
/// (UTF-16LE when `unicode`, which also aligns it on an even offset
/// from the header).
pub fn smb1_nt_create_request_name<'a>(
    msg: &'a [u8],
    b: &Smb1Block<'a>,
    unicode: bool,
) -> Result<&'a [u8]> {
    if b.word_count() != 24 {
        return Err(SmbError::BadStructure {
            command: u16::from(b.command),
            size: b.word_count() as u16,
        });
    }
    let len = usize::from(b.w16(5)?);
    let pad = usize::from(unicode && b.bytes_at % 2 == 1);
    let name = range(msg, b.bytes_at + pad, len)?;
    Ok(name)
}

/// NT_CREATE_ANDX response (MS-CIFS §2.2.4.64.2): the FID and whether the
/// file is a named pipe (ResourceType 1 or 2).
pub fn smb1_nt_create_response(b: &Smb1Block<'_>) -> Result<(u16, bool)> {
    if b.word_count() < 34 {
        return Err(SmbError::BadStructure {
            command: u16::from(b.command),
            size: b.word_count() as u16,
        });
    }
    let fid = b.w16(5)?;
    let resource = b.w16(63)?;
    Ok((fid, matches!(resource, 1 | 2)))
}

/// WRITE_ANDX request (MS-CIFS §2.2.4.43.1): FID and where the data is
/// (DataOffset, DataLength with its high half), without reading it.
pub fn smb1_write_andx_head(b: &Smb1Block<'_>) -> Result<(u16, usize, usize)> {
    if !matches!(b.word_count(), 12 | 14) {
        return Err(SmbError::BadStructure {
            command: u16::from(b.command),
            size: b.word_count() as u16,
        });
    }
    let fid = b.w16(4)?;
    let len = usize::from(b.w16(20)?) | (usize::from(b.w16(18)?) << 16);
    let off = usize::from(b.w16(22)?);
    Ok((fid, off, len))
}

/// READ_ANDX request (MS-CIFS §2.2.4.42.1): the FID.
pub fn smb1_read_andx_request_fid(b: &Smb1Block<'_>) -> Result<u16> {
    if !matches!(b.word_count(), 10 | 12) {
        return Err(SmbError::BadStructure {
            command: u16::from(b.command),
            size: b.word_count() as u16,
        });
    }
    b.w16(4)
}

/// READ_ANDX response (MS-CIFS §2.2.4.42.2): where the data is.
pub fn smb1_read_andx_response_head(b: &Smb1Block<'_>) -> Result<(usize, usize)> {
    if b.word_count() != 12 {
        return Err(SmbError::BadStructure {
            command: u16::from(b.command),
            size: b.word_count() as u16,
        });
    }
    let len = usize::from(b.w16(10)?) | (usize::from(b.w16(14)?) << 16);
    Ok((usize::from(b.w16(12)?), len))
}

/// A TRANSACTION request (MS-CIFS §2.2.4.33.1): the pipe's FID when its
/// setup is TransactNmPipe, and where its data is.
pub fn smb1_transaction_request_head(b: &Smb1Block<'_>) -> Result<(Option<u16>, usize, usize)> {
    if b.word_count() < 14 {
        return Err(SmbError::BadStructure {
            command: u16::from(b.command),
            size: b.word_count() as u16,
        });
    }
    let count = usize::from(b.w16(22)?);
    let off = usize::from(b.w16(24)?);
    let setup_count = usize::from(*b.words.get(26).unwrap_or(&0));
    let fid = if setup_count >= 2 && b.w16(28)? == TRANS_TRANSACT_NM_PIPE {
        Some(b.w16(30)?)
    } else {
        None
    };
    Ok((fid, off, count))
}

/// A TRANSACTION response (MS-CIFS §2.2.4.33.2): where its data is.
pub fn smb1_transaction_response_head(b: &Smb1Block<'_>) -> Result<(usize, usize)> {
    if b.word_count() < 10 {
        return Err(SmbError::BadStructure {
            command: u16::from(b.command),
            size: b.word_count() as u16,
        });
    }
    Ok((usize::from(b.w16(14)?), usize::from(b.w16(12)?)))
}

/// CLOSE request (MS-CIFS §2.2.4.5.1): the FID.
pub fn smb1_close_request_fid(b: &Smb1Block<'_>) -> Result<u16> {
    if b.word_count() != 3 {
        return Err(SmbError::BadStructure {
            command: u16::from(b.command),
            size: b.word_count() as u16,
        });
    }
    b.w16(0)
}

/// TREE_CONNECT_ANDX response (MS-CIFS §2.2.4.55.2): the share is the
/// IPC$ (named pipes) share: its Service string is `IPC`.
pub fn smb1_tree_connect_is_ipc(b: &Smb1Block<'_>) -> bool {
    b.bytes.starts_with(b"IPC\0")
}

/// `len` bytes at `off` of `msg`: the data an SMB1 command's head points at.
pub fn data_at(msg: &[u8], off: usize, len: usize) -> Result<&[u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    range(msg, off, len)
}

// ---------------------------------------------------------------------------
// Names

/// Most characters of a pipe name kept.
pub const MAX_PIPE_NAME: usize = 64;

/// A pipe's name as the report shows it: decoded (UTF-16LE or 8-bit),
/// without leading backslashes or a `PIPE\` prefix, ASCII-lowercased (names
/// are case-insensitive), at most [`MAX_PIPE_NAME`] characters, control
/// characters dropped. SMB2 names `epmapper`, SMB1 `\epmapper` and
/// `\PIPE\epmapper` all become `epmapper`.
pub fn pipe_name(raw: &[u8], utf16: bool) -> String {
    let s: String = if utf16 {
        char::decode_utf16(
            raw.chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]])),
        )
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .take_while(|&c| c != '\0')
        .take(MAX_PIPE_NAME + 8)
        .collect()
    } else {
        raw.iter()
            .take_while(|&&c| c != 0)
            .take(MAX_PIPE_NAME + 8)
            .map(|&c| char::from(c))
            .collect()
    };
    let t = s.trim_start_matches('\\');
    let t = if t.len() >= 5 && t.is_char_boundary(5) && t[..5].eq_ignore_ascii_case("pipe\\") {
        t[5..].trim_start_matches('\\')
    } else {
        t
    };
    t.chars()
        .filter(|c| !c.is_control())
        .take(MAX_PIPE_NAME)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::test_hex::hex;

    // Frames of tests/data/lab/smb-pipe-allow/client-tap.pcap (Samba 4.17
    // and impacket 0.12.0), TCP payloads as tshark shows them.

    /// Frame 18: SMB2 CREATE request `epmapper`, MessageId 4.
    const CREATE_REQ: &str = "00000088fe534d42400001000000000005007f000800000000000000040000000000000000000000ba673877b97c991200000000544b6da6dde6cf568b849b7df4e34d2e3900000002000000000000000000000000000000000000000300000080000000010000000100000040000000780010000000000000000000650070006d0061007000700065007200";
    /// Frame 19: its response.
    const CREATE_RESP: &str = "00000098fe534d42400001000000000005007f000900000000000000040000000000000000000000ba673877b97c9912000000000ba3356a16f56423596074142b905420590000000100000000803ed5deb19d0100803ed5deb19d0100803ed5deb19d0100803ed5deb19d01000000000000000000000000000000008000000000000000579edba400000000ce580104000000000000000000000000";
    /// Frame 20: WRITE request carrying the EPM bind.
    const WRITE_REQ: &str = "000000b8fe534d42400001000000000009007f000800000000000000050000000000000000000000ba673877b97c9912000000007847857254262a5aa0fa605cf029d47b31007000480000000000000000000000579edba400000000ce580104000000000000000000000000000000000000000005000b03100000004800000001000000b810b8100000000001000000000001000883afe11f5dc91191a408002b14a0fa03000000045d888aeb1cc9119fe808002b10486002000000";
    /// Frame 22: READ request on the pipe.
    const READ_REQ: &str = "00000071fe534d42400010000000000008007f000800000000000000060000000000000000000000ba673877b97c99120000000072bf657add66d52a2010b9aee7c5695f31005000000010000000000000000000579edba400000000ce580104000000000000000000000000000000000000000030";
    /// Frame 27: READ response carrying the ept_map answer (netlogon).
    const READ_RESP: &str = "000000e8fe534d42400010000000000008008e000900000000000000170000000000000000000000ba673877b97c991200000000cf7195ad414d9fdf7d88fc4b10fb572811005000980000000000000000000000050002031000000098000000010000008000000000000000000000000000000000000000000000000000000001000000040000000000000001000000030000004b0000004b000000050013000d785634123412cdabef0001234567cffb01000200000013000d045d888aeb1cc9119fe808002b10486002000200000001000b020000000100070200d6d80100090400000000000000000000";
    /// Frame 117: an interim STATUS_PENDING READ response (async header).
    const READ_PENDING: &str = "00000049fe534d42400000000301000008008e000300000000000000b600000000000000b600000000000000b97c991200000000e4cf4c7714148774b4d4c453b26ff58d090000000000000021";
    /// Frames 173-175, 178: SMB1 NT_CREATE_ANDX `\epmapper`, its
    /// response, WRITE_ANDX (the bind) and READ_ANDX response (bind_ack).
    const NT_CREATE_REQ: &str = "0000005dff534d42a2000000001805480000425bc072febc255e00001a4d5f2bb46c000018ff00000000090016000000000000000300000000000000000000008000000001000000010000004000000002000000000a005c65706d617070657200";
    const NT_CREATE_RESP: &str = "00000087ff534d42a20000000088074800008827ad3c731b82a200001a4d5f2bb46c00002aff00000000656b01000000000000000000000000000000000000000000000000000000000000000000000080000000000000000000000000000000000000000200ff0500000000000000000000000000000000000000000000000000ff011f009b0112000000";
    const WRITE_ANDX: &str = "00000087ff534d422f0000000018054800000720ecc5503659db00001a4d5f2bb46c00000eff000000656b00000000ff00000008004800000048003f0000000000480005000b03100000004800000001000000b810b8100000000001000000000001000883afe11f5dc91191a408002b14a0fa03000000045d888aeb1cc9119fe808002b10486002000000";
    const READ_ANDX_RESP: &str = "00000084ff534d422e0000000088074800005753aa11915fbe9300001a4d5f2bb46c00000cff00000000000000000048003c000000000000000000000049000005000c03100000004800000001000000b810b810fc1700000f005c706970655c65706d6170706572000000000100000000000000045d888aeb1cc9119fe808002b10486002000000";

    fn hx(s: &str) -> Vec<u8> {
        let spaced: String = s
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ");
        hex(&spaced)
    }

    /// The one SMB2 command of a real message.
    fn smb2(s: &str) -> (Vec<u8>, Smb2Header) {
        let b = hx(s);
        let n = parse_nbss(&b).unwrap();
        assert_eq!(n.total(), b.len());
        let msg = b[NBSS_HEADER_LEN..].to_vec();
        let cmds: Vec<_> = smb2_commands(&msg).collect();
        assert_eq!(cmds.len(), 1);
        let h = cmds[0].as_ref().unwrap().0;
        (msg, h)
    }

    const FID: &str = "579edba400000000ce58010400000000";

    #[test]
    fn smb2_pipe_conversation() {
        assert!(looks_like_smb(&hx(CREATE_REQ)));
        let (m, h) = smb2(CREATE_REQ);
        assert_eq!((h.command, h.message_id, h.is_response()), (5, 4, false));
        let name = smb2_create_request_name(&m).unwrap();
        assert_eq!(pipe_name(name, true), "epmapper");
        let (m, h) = smb2(CREATE_RESP);
        assert!(h.is_response() && h.status == 0 && h.message_id == 4);
        assert_eq!(smb2_create_response_file_id(&m).unwrap().to_vec(), hx(FID));
        let (m, h) = smb2(WRITE_REQ);
        let w = smb2_write_request(&m).unwrap();
        assert_eq!((h.command, w.file_id.to_vec()), (9, hx(FID)));
        assert_eq!(w.data.len(), 72);
        assert!(crate::proto::dcerpc::looks_like_dcerpc(w.data));
        let (m, _) = smb2(READ_REQ);
        assert_eq!(smb2_read_request_file_id(&m).unwrap().to_vec(), hx(FID));
        let (m, h) = smb2(READ_RESP);
        assert_eq!(h.message_id, 0x17);
        let data = smb2_read_response_data(&m).unwrap();
        assert_eq!(data.len(), 152);
        let pdu = crate::proto::dcerpc::parse_header(data).unwrap();
        assert_eq!(pdu.frag_length, 152);
        let (m, h) = smb2(READ_PENDING);
        assert!(h.is_interim() && h.tree_id.is_none() && h.message_id == 0xb6);
        assert!(smb2_is_error_response(&m));
    }

    #[test]
    fn smb1_pipe_conversation() {
        let b = hx(NT_CREATE_REQ);
        assert!(looks_like_smb(&b));
        let m = &b[4..];
        let h = parse_smb1_header(m).unwrap();
        assert_eq!(
            (h.command, h.is_response(), h.unicode()),
            (0xa2, false, false)
        );
        let blk = smb1_commands(m).next().unwrap().unwrap();
        let name = smb1_nt_create_request_name(m, &blk, h.unicode()).unwrap();
        assert_eq!(name, b"\\epmapper");
        assert_eq!(pipe_name(name, false), "epmapper");
        let b = hx(NT_CREATE_RESP);
        let m = &b[4..];
        let blk = smb1_commands(m).next().unwrap().unwrap();
        assert_eq!(smb1_nt_create_response(&blk).unwrap(), (0x6b65, true));
        let b = hx(WRITE_ANDX);
        let m = &b[4..];
        let blk = smb1_commands(m).next().unwrap().unwrap();
        let (fid, off, len) = smb1_write_andx_head(&blk).unwrap();
        assert_eq!((fid, len), (0x6b65, 72));
        let data = data_at(m, off, len).unwrap();
        assert!(crate::proto::dcerpc::looks_like_dcerpc(data));
        let b = hx(READ_ANDX_RESP);
        let m = &b[4..];
        let blk = smb1_commands(m).next().unwrap().unwrap();
        let (off, len) = smb1_read_andx_response_head(&blk).unwrap();
        let data = data_at(m, off, len).unwrap();
        assert_eq!(
            crate::proto::dcerpc::parse_header(data).unwrap().ptype as u8,
            12
        );
    }

    /// Every prefix of every real message parses or fails with an error,
    /// never a panic; hostile offsets are `OutOfBounds`.
    #[test]
    fn truncation_and_hostile_offsets() {
        for s in [
            CREATE_REQ,
            CREATE_RESP,
            WRITE_REQ,
            READ_REQ,
            READ_RESP,
            READ_PENDING,
            NT_CREATE_REQ,
            NT_CREATE_RESP,
            WRITE_ANDX,
            READ_ANDX_RESP,
        ] {
            let b = hx(s);
            for n in 0..b.len() {
                let p = &b[..n];
                let _ = looks_like_smb(p);
                let _ = parse_nbss(p);
                let m = p.get(4..).unwrap_or(&[]);
                for c in smb2_commands(m).flatten() {
                    let _ = smb2_create_request_name(c.1);
                    let _ = smb2_create_response_file_id(c.1);
                    let _ = smb2_write_request(c.1);
                    let _ = smb2_read_response_data(c.1);
                    let _ = smb2_ioctl(c.1, true);
                    let _ = smb2_ioctl(c.1, false);
                }
                if let Ok(h) = parse_smb1_header(m) {
                    for blk in smb1_commands(m).flatten() {
                        let _ = smb1_nt_create_request_name(m, &blk, h.unicode());
                        let _ = smb1_nt_create_response(&blk);
                        let _ = smb1_write_andx_head(&blk);
                        let _ = smb1_read_andx_response_head(&blk);
                        let _ = smb1_transaction_request_head(&blk);
                    }
                }
            }
        }
        // WRITE whose Length runs past the message.
        let (mut m, _) = smb2(WRITE_REQ);
        m[64 + 4..64 + 8].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        assert!(matches!(
            smb2_write_request(&m),
            Err(SmbError::OutOfBounds { .. })
        ));
        // CREATE whose name runs past the message.
        let (mut m, _) = smb2(CREATE_REQ);
        m[64 + 46..64 + 48].copy_from_slice(&0xfff0u16.to_le_bytes());
        assert!(matches!(
            smb2_create_request_name(&m),
            Err(SmbError::OutOfBounds { .. })
        ));
        // NBSS length at its largest.
        assert_eq!(parse_nbss(&[0, 0xff, 0xff, 0xff]).unwrap().len, 0xff_ffff);
        assert_eq!(parse_nbss(&[0x85, 0, 0, 0]).unwrap().total(), 4);
        assert!(parse_nbss(&[0x42, 0, 0, 0]).is_err());
    }

    /// NextCommand that points back, at itself, or past the message ends
    /// the compound; a compound of many commands stops at the cap.
    #[test]
    fn compounds_are_bounded() {
        let (m, _) = smb2(READ_REQ);
        for next in [1u32, 63, 0xffff_ffff] {
            let mut x = m.clone();
            x[20..24].copy_from_slice(&next.to_le_bytes());
            assert!(smb2_commands(&x).count() <= 1, "next {next}");
        }
        // 64 bytes apart, 40 commands: a loop would never end.
        let mut x = Vec::new();
        for _ in 0..40 {
            let mut h = m[..64].to_vec();
            h[20..24].copy_from_slice(&64u32.to_le_bytes());
            x.extend(h);
        }
        assert_eq!(smb2_commands(&x).count(), MAX_CHAINED);
    }

    #[test]
    fn pipe_names() {
        let utf16: Vec<u8> = "\\PIPE\\LsaRpc"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(pipe_name(&utf16, true), "lsarpc");
        assert_eq!(pipe_name(b"\\lsarpc\0junk", false), "lsarpc");
        assert_eq!(
            pipe_name(&[0xff; 300], false).chars().count(),
            MAX_PIPE_NAME
        );
        assert_eq!(pipe_name(&[0x00, 0xd8, 0x41, 0x00], true), "\u{fffd}a");
    }
}
