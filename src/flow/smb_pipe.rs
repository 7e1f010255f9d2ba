//! DCE/RPC inside SMB named pipes (#24): one SMB connection (TCP 445, or
//! 139 behind a NetBIOS session) → NBSS messages → the SMB2 / SMB1
//! commands that open pipes and move their bytes → one
//! [`RpcConnection`] per pipe, fed the pipe's bytes in order (client →
//! server as direction 0: WRITE data, IOCTL input, SMB1 transaction and
//! WriteAndX data; server → client as direction 1: READ and IOCTL
//! output, SMB1 response data). The pipes' DCE/RPC is then what it is over
//! TCP: binds, endpoint-mapper answers (events said to come over
//! `ncacn_np`), DCOM, the summary.
//!
//! Everything is bounded: out-of-order stream bytes (64 KiB per
//! direction), a message held to be read (at most [`MAX_HELD`]: file
//! data, large pipe messages and every command that cannot carry a pipe
//! are passed over unread, counted), requests awaiting their response
//! ([`MAX_PENDING`], oldest forgotten, counted), pipes open at once
//! ([`MAX_PIPES`], more refused, counted), trees ([`MAX_TREES`]).
//! Encrypted SMB3 (transform header) cannot be read: its messages are
//! counted and passed over.

use serde::Serialize;

use super::rpc_conn::{ConnCtx, RpcConnection, RpcSummary, STREAM_BUFFER};
use super::stream::{Chunk, StreamReassembler};
use super::AppLabel;
use crate::event::{Carrier, Event};
use crate::proto::dcerpc::looks_like_dcerpc;
use crate::proto::smb::{
    self, data_at, parse_nbss, parse_smb1_header, pipe_name, smb1_cmd, smb1_commands, smb2_cmd,
    smb2_commands, status, FileId, Protocol, Smb2Header, NBSS_HEADER_LEN, NBSS_MESSAGE,
};
use crate::Ts;

/// Pipes open at once per connection.
pub const MAX_PIPES: usize = 16;
/// Requests awaiting their response (CREATE for its name, READ for its
/// file); past it the oldest is forgotten.
pub const MAX_PENDING: usize = 64;
/// Trees whose share type is remembered (SMB2: is it IPC$?).
pub const MAX_TREES: usize = 16;
/// Largest SMB message held to be read whole (NBSS header included): a
/// pipe's messages carry DCE/RPC fragments (Windows 5,840 bytes, Samba
/// 4,280); a larger one is passed over and its pipe told of the gap.
pub const MAX_HELD: usize = 16 * 1024 + 512;
/// Bytes of a message's start read to decide whether it matters (NBSS,
/// SMB2 header, a command's fixed part and the first bytes of its data).
const HEAD: usize = 256;
/// Framer capacity kept between messages (more is given back).
const FRAMER_KEEP: usize = 4096;

/// What one SMB connection's parser saw, for `flows[].app.smb`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SmbSummary {
    /// SMB messages (NBSS session messages) framed.
    pub messages: u64,
    /// Messages passed over unread (file data, commands that carry no
    /// pipe, anything larger than the parser holds), and their bytes.
    pub messages_passed: u64,
    pub bytes_passed: u64,
    /// Messages behind an SMB3 transform header: encrypted, nothing in
    /// them (an endpoint-mapper answer included) can be seen.
    pub encrypted_messages: u64,
    /// Messages behind an SMB3 compression header (not read).
    pub compressed_messages: u64,
    /// Named pipes carrying DCE/RPC, and pipes refused because
    /// [`MAX_PIPES`] were open.
    pub pipes_opened: u64,
    pub pipes_over_cap: u64,
    /// Pipe messages passed over because larger than [`MAX_HELD`].
    pub pipe_messages_refused: u64,
    /// Requests forgotten unanswered because [`MAX_PENDING`] were waiting.
    pub requests_dropped: u64,
    /// Commands whose fields did not parse.
    pub malformed: u64,
    /// Times the framer lost the message boundaries (a hole in the
    /// stream, bytes that are no NBSS header) and searched for the next.
    pub resyncs: u64,
    /// Holes in the TCP stream.
    pub stream_gaps: u64,
}

/// A file as the two dialects name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fid {
    V2(FileId),
    V1(u16),
}

#[derive(Debug)]
struct Pipe {
    fid: Fid,
    name: Option<Box<str>>,
    /// Opened on a tree whose share type is unknown: a pipe only if its
    /// first bytes are DCE/RPC.
    tentative: bool,
    rpc: Box<RpcConnection>,
}

#[derive(Debug)]
enum Awaiting {
    /// SMB2 CREATE on `tree`.
    Create { name: Box<str>, tree: Option<u32> },
    /// SMB1 NT_CREATE_ANDX.
    NtCreate { name: Box<str> },
    /// A READ (SMB2, SMB1 ReadAndX) or SMB1 TransactNmPipe of a pipe.
    Read(Fid),
}

#[derive(Debug)]
struct Pending {
    /// SMB2 MessageId, or SMB1 MID with the top bit set.
    id: u64,
    what: Awaiting,
}

const SMB1_KEY: u64 = 1 << 63;

/// What to do with a message of which only the head is at hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    Hold,
    Pass,
}

/// One direction's NBSS framing.
#[derive(Debug, Default)]
struct Framer {
    /// The head, or the whole, of the message being read.
    buf: Vec<u8>,
    /// Bytes `buf` must hold before acting (0: at a message boundary).
    want: usize,
    /// The message's length, NBSS header included (0: not known yet).
    total: usize,
    /// Bytes still to pass over.
    skip: usize,
    /// Lost the message boundaries: searching for the next header.
    lost: bool,
}

/// The connection state the framers hand whole messages to.
#[derive(Debug, Default)]
struct Conn {
    pending: Vec<Pending>,
    pipes: Vec<Pipe>,
    /// (TreeId, is the IPC$ share).
    trees: Vec<(u32, bool)>,
    summary: SmbSummary,
    /// What the pipes closed so far showed, and the names of every pipe.
    rpc: RpcSummary,
    /// A pipe was ever opened (the flow gets an `rpc` summary).
    carried_rpc: bool,
    last_progress: Ts,
    /// The last file refused a pipe slot.
    last_refused: Option<Fid>,
    /// The protocol of the first message framed.
    first: Option<Protocol>,
}

/// SMB state of one TCP connection.
#[derive(Debug)]
pub struct SmbFlow {
    streams: [StreamReassembler; 2],
    framers: [Framer; 2],
    conn: Conn,
    label: Box<AppLabel>,
    /// Heap bytes last counted in the flow table's DCE/RPC budget.
    pub(crate) accounted: usize,
}

/// What a finished SMB parser leaves on its flow.
#[derive(Debug)]
pub struct SmbDone {
    /// The pipes' DCE/RPC, merged (none when no pipe carried any).
    pub rpc: Option<Box<RpcSummary>>,
    /// The flow's label (`smb`), with the SMB summary.
    pub label: Box<AppLabel>,
}

impl Conn {
    /// The label the connection leaves: its first payload's, the dialect
    /// family told by the first message framed when that payload was too
    /// short to tell it (the recognizers' names), and the summary.
    fn label(&self, mut label: Box<AppLabel>) -> Box<AppLabel> {
        if label.service == "smb" && label.detail.is_none() {
            label.detail = self.first.map(|p| {
                match p {
                    Protocol::Smb1 => "SMB1",
                    Protocol::Smb2 => "SMB2",
                    Protocol::Transform => "SMB3-encrypted",
                    Protocol::Compressed => "SMB3-compressed",
                }
                .to_string()
            });
        }
        label.smb = Some(Box::new(self.summary.clone()));
        label
    }
}

impl SmbFlow {
    /// A parser for a connection labeled `label` by its first payload.
    pub fn new(label: AppLabel) -> Self {
        SmbFlow {
            streams: [
                StreamReassembler::new(STREAM_BUFFER),
                StreamReassembler::new(STREAM_BUFFER),
            ],
            framers: [Framer::default(), Framer::default()],
            conn: Conn::default(),
            label: Box::new(label),
            accounted: 0,
        }
    }

    /// The side `dir` sent a SYN with `isn`.
    pub fn on_syn(&mut self, dir: usize, isn: u32) {
        self.streams[dir & 1].on_syn(isn);
    }

    /// One TCP segment of direction `dir` (0 = client → server); `missing`
    /// is the payload the snaplen cut off.
    #[allow(clippy::too_many_arguments)]
    pub fn on_segment(
        &mut self,
        dir: usize,
        seq: u32,
        data: &[u8],
        missing: u32,
        fin: bool,
        ctx: &ConnCtx,
        events: &mut Vec<Event>,
    ) {
        let d = dir & 1;
        if self.conn.last_progress == 0 {
            self.conn.last_progress = ctx.ts;
        }
        let Self {
            streams,
            framers,
            conn,
            ..
        } = self;
        let fr = &mut framers[d];
        if !fin
            && missing == 0
            && fr.skip >= data.len()
            && streams[d].pass_in_order(seq, data.len())
        {
            // Inside a message passed over (file data): nothing to look at.
            fr.skip -= data.len();
            conn.summary.bytes_passed += data.len() as u64;
            return;
        }
        let mut emit = |c: Chunk<'_>| conn.on_chunk(fr, d, c, ctx, events);
        streams[d].push(seq, data, fin && missing == 0, &mut emit);
        if missing > 0 {
            streams[d].skip(seq.wrapping_add(data.len() as u32), missing, &mut emit);
        }
        if fr.buf.is_empty() && fr.buf.capacity() > FRAMER_KEEP {
            fr.buf = Vec::new();
        }
    }

    /// Heap bytes held: stream and framer buffers, the tables, the pipes'
    /// DCE/RPC connections (structs and heap).
    pub fn heap_bytes(&self) -> usize {
        let streams: usize = self.streams.iter().map(|s| s.heap_bytes()).sum();
        let framers: usize = self.framers.iter().map(|f| f.buf.capacity()).sum();
        let pipes: usize = self
            .conn
            .pipes
            .iter()
            .map(|p| {
                std::mem::size_of::<RpcConnection>()
                    + p.rpc.heap_bytes()
                    + p.name.as_ref().map_or(0, |n| n.len())
            })
            .sum();
        let tables = self.conn.pending.capacity() * std::mem::size_of::<Pending>()
            + self.conn.pipes.capacity() * std::mem::size_of::<Pipe>()
            + self.conn.trees.capacity() * 8
            + self
                .conn
                .pending
                .iter()
                .map(|p| match &p.what {
                    Awaiting::Create { name, .. } | Awaiting::NtCreate { name } => name.len(),
                    Awaiting::Read(_) => 0,
                })
                .sum::<usize>();
        streams + framers + pipes + tables
    }

    /// Whether a stream holds bytes beyond a hole.
    pub fn waiting_for_holes(&self) -> bool {
        self.streams.iter().any(|s| s.buffered() > 0)
    }

    /// Capture time of the last whole SMB message read (or of the first
    /// segment).
    pub fn last_progress(&self) -> Ts {
        self.conn.last_progress
    }

    /// Pipe messages refused as too large, and DCE/RPC PDUs the pipes
    /// refused: the connection misbehaves (its slot may go first).
    pub fn refused(&self) -> u64 {
        self.conn.summary.pipe_messages_refused
            + self
                .conn
                .pipes
                .iter()
                .map(|p| p.rpc.refused_pdus())
                .sum::<u64>()
    }

    /// What the parser counted so far (the table adds each segment's
    /// difference to its `stats.smb` counters).
    pub fn counters(&self) -> SmbSummary {
        self.conn.summary.clone()
    }

    /// The parser ends with its flow (or its connection closed): buffered
    /// bytes delivered, every pipe finished, what they read merged.
    pub fn finish(mut self: Box<Self>, ctx: &ConnCtx, events: &mut Vec<Event>) -> SmbDone {
        let Self {
            streams,
            framers,
            conn,
            ..
        } = &mut *self;
        for (d, s) in streams.iter_mut().enumerate() {
            let fr = &mut framers[d];
            s.flush(&mut |c| conn.on_chunk(fr, d, c, ctx, events));
        }
        for mut p in std::mem::take(&mut conn.pipes) {
            p.rpc.finish(ctx, events);
            conn.rpc.merge(&p.rpc.summary());
        }
        let SmbFlow { label, conn, .. } = *self;
        let label = conn.label(label);
        SmbDone {
            rpc: conn.carried_rpc.then(|| Box::new(conn.rpc)),
            label,
        }
    }

    /// The parser is dropped (its slot or budget taken): the flow keeps its
    /// label; what the pipes read is lost (their events were emitted).
    pub fn into_label(self: Box<Self>) -> Box<AppLabel> {
        self.conn.label(self.label)
    }
}

/// Where a resynchronizing framer may start again: a session message
/// header followed by an SMB1 or SMB2 protocol id.
fn resync_point(b: &[u8]) -> Option<usize> {
    memchr::memmem::find_iter(b, b"SMB")
        .filter(|&p| p >= 5)
        .map(|p| p - 5)
        .find(|&s| b[s] == NBSS_MESSAGE && matches!(b[s + 4], 0xfe | 0xff))
}

impl Conn {
    fn on_chunk(
        &mut self,
        fr: &mut Framer,
        d: usize,
        c: Chunk<'_>,
        ctx: &ConnCtx,
        events: &mut Vec<Event>,
    ) {
        match c {
            Chunk::Data(b) => self.on_data(fr, d, b, ctx, events),
            Chunk::Gap { .. } => {
                self.summary.stream_gaps += 1;
                self.lose_sync(fr);
                self.gap_all(d, ctx, events);
            }
        }
    }

    fn lose_sync(&mut self, fr: &mut Framer) {
        fr.buf.clear();
        fr.want = 0;
        fr.total = 0;
        fr.skip = 0;
        if !fr.lost {
            fr.lost = true;
            self.summary.resyncs += 1;
        }
    }

    /// Every pipe lost bytes of direction `d` (which pipe a lost message
    /// was for is not known).
    fn gap_all(&mut self, d: usize, ctx: &ConnCtx, events: &mut Vec<Event>) {
        for p in &mut self.pipes {
            p.rpc.on_gap(d, ctx, events);
        }
    }

    fn on_data(
        &mut self,
        fr: &mut Framer,
        d: usize,
        mut bytes: &[u8],
        ctx: &ConnCtx,
        events: &mut Vec<Event>,
    ) {
        while !bytes.is_empty() {
            if fr.skip > 0 {
                let n = fr.skip.min(bytes.len());
                fr.skip -= n;
                self.summary.bytes_passed += n as u64;
                bytes = &bytes[n..];
                continue;
            }
            if fr.lost {
                // (A header cut by a segment boundary is missed; the next
                // one is found.)
                match resync_point(bytes) {
                    Some(p) => {
                        fr.lost = false;
                        bytes = &bytes[p..];
                    }
                    None => return,
                }
                continue;
            }
            if fr.want > 0 {
                // Filling the buffer up to `want`.
                let n = (fr.want - fr.buf.len()).min(bytes.len());
                fr.buf.extend_from_slice(&bytes[..n]);
                bytes = &bytes[n..];
                if fr.buf.len() < fr.want {
                    return;
                }
                if fr.total == 0 {
                    // The NBSS header is whole.
                    match parse_nbss(&fr.buf) {
                        Err(_) => self.lose_sync(fr),
                        Ok(nb) if nb.kind != NBSS_MESSAGE => {
                            fr.skip = nb.len;
                            fr.buf.clear();
                            fr.want = 0;
                        }
                        Ok(nb) => {
                            fr.total = nb.total();
                            fr.want = fr.total.min(HEAD);
                        }
                    }
                    continue;
                }
                let buf = std::mem::take(&mut fr.buf);
                if buf.len() >= fr.total {
                    fr.want = 0;
                    fr.total = 0;
                    self.message(d, &buf[NBSS_HEADER_LEN..], ctx, events);
                    fr.buf = buf;
                    fr.buf.clear();
                } else {
                    let total = fr.total;
                    match self.decide(d, &buf, total, ctx, events) {
                        Decision::Hold => {
                            fr.want = total;
                            fr.buf = buf;
                        }
                        Decision::Pass => {
                            fr.want = 0;
                            fr.total = 0;
                            fr.skip = total - buf.len();
                            self.summary.bytes_passed += buf.len() as u64;
                            fr.buf = buf;
                            fr.buf.clear();
                        }
                    }
                }
                continue;
            }
            // At a message boundary.
            if bytes.len() < NBSS_HEADER_LEN {
                fr.buf.extend_from_slice(bytes);
                fr.want = NBSS_HEADER_LEN;
                fr.total = 0;
                return;
            }
            let nb = match parse_nbss(bytes) {
                Ok(h) => h,
                Err(_) => {
                    self.lose_sync(fr);
                    continue;
                }
            };
            let total = nb.total();
            if nb.kind != NBSS_MESSAGE {
                // Session request / response / keepalive: nothing to read.
                let n = total.min(bytes.len());
                fr.skip = total - n;
                bytes = &bytes[n..];
                continue;
            }
            if bytes.len() >= total {
                self.message(d, &bytes[NBSS_HEADER_LEN..total], ctx, events);
                bytes = &bytes[total..];
                continue;
            }
            let head = total.min(HEAD);
            if bytes.len() >= head {
                match self.decide(d, bytes, total, ctx, events) {
                    Decision::Hold => {
                        fr.buf.extend_from_slice(bytes);
                        fr.want = total;
                        fr.total = total;
                    }
                    Decision::Pass => {
                        fr.skip = total - bytes.len();
                        self.summary.bytes_passed += bytes.len() as u64;
                    }
                }
                return;
            }
            fr.buf.extend_from_slice(bytes);
            fr.want = head;
            fr.total = total;
            return;
        }
    }

    /// A message of `total` bytes of which `head` (at least [`HEAD`]
    /// bytes, or the NBSS header and what the segment had) is at hand:
    /// hold it to read it whole, or pass over the rest.
    fn decide(
        &mut self,
        d: usize,
        head: &[u8],
        total: usize,
        ctx: &ConnCtx,
        events: &mut Vec<Event>,
    ) -> Decision {
        self.summary.messages += 1;
        let body = &head[NBSS_HEADER_LEN..];
        if self.first.is_none() {
            self.first = Protocol::of(body);
        }
        let decision = match Protocol::of(body) {
            Some(Protocol::Transform) => {
                self.summary.encrypted_messages += 1;
                Decision::Pass
            }
            Some(Protocol::Compressed) => {
                self.summary.compressed_messages += 1;
                Decision::Pass
            }
            Some(Protocol::Smb2) => match self.smb2_pipe_of(body) {
                Interest::Pipe(fid) if total > MAX_HELD => {
                    self.refuse(fid, d, ctx, events);
                    Decision::Pass
                }
                Interest::Pipe(_) | Interest::Control if total <= MAX_HELD => Decision::Hold,
                _ => Decision::Pass,
            },
            Some(Protocol::Smb1) => match self.smb1_pipe_of(body) {
                Interest::Pipe(fid) if total > MAX_HELD => {
                    self.refuse(fid, d, ctx, events);
                    Decision::Pass
                }
                Interest::Pipe(_) | Interest::Control if total <= MAX_HELD => Decision::Hold,
                _ => Decision::Pass,
            },
            None => Decision::Pass,
        };
        if decision == Decision::Pass {
            self.summary.messages_passed += 1;
        } else {
            // Counted again when read whole.
            self.summary.messages -= 1;
        }
        decision
    }

    /// A pipe message too large to hold: its pipe misses those bytes.
    fn refuse(&mut self, fid: Option<Fid>, d: usize, ctx: &ConnCtx, events: &mut Vec<Event>) {
        self.summary.pipe_messages_refused += 1;
        if let Some(p) = fid.and_then(|f| self.pipes.iter_mut().find(|p| p.fid == f)) {
            p.rpc.on_gap(d, ctx, events);
        }
    }

    fn pipe_known(&self, fid: Fid) -> bool {
        self.pipes.iter().any(|p| p.fid == fid)
    }

    fn pending(&self, id: u64) -> Option<&Awaiting> {
        self.pending.iter().find(|p| p.id == id).map(|p| &p.what)
    }

    /// Whether an SMB2 message whose head is `body` may matter.
    fn smb2_pipe_of(&self, body: &[u8]) -> Interest {
        let Ok(h) = smb::parse_smb2_header(body) else {
            return Interest::None;
        };
        if h.next_command != 0 {
            return Interest::Control;
        }
        match (h.command, h.is_response()) {
            (smb2_cmd::WRITE, false) => match smb::smb2_write_request_head(body) {
                Ok((id, off, _)) => {
                    let fid = Fid::V2(id);
                    let starts_rpc = body.get(off..).is_some_and(looks_like_dcerpc);
                    if self.pipe_known(fid) || starts_rpc {
                        Interest::Pipe(Some(fid))
                    } else {
                        Interest::None
                    }
                }
                Err(_) => Interest::None,
            },
            (smb2_cmd::READ, true) => match self.pending(h.message_id) {
                Some(Awaiting::Read(fid)) => Interest::Pipe(Some(*fid)),
                _ if h.is_interim() => Interest::Control,
                _ => Interest::None,
            },
            (smb2_cmd::IOCTL, _) => {
                let ctl = body
                    .get(68..72)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
                if ctl == Some(smb::FSCTL_PIPE_TRANSCEIVE) {
                    let fid = body.get(72..88).map(|f| {
                        let mut id = [0u8; 16];
                        id.copy_from_slice(f);
                        Fid::V2(id)
                    });
                    Interest::Pipe(fid)
                } else {
                    Interest::None
                }
            }
            (smb2_cmd::READ, false) => Interest::Control,
            (smb2_cmd::WRITE, true) => Interest::None,
            (smb2_cmd::CREATE | smb2_cmd::CLOSE | smb2_cmd::TREE_CONNECT, _) => Interest::Control,
            _ => Interest::None,
        }
    }

    /// Whether an SMB1 message whose head is `body` may matter.
    fn smb1_pipe_of(&self, body: &[u8]) -> Interest {
        let Ok(h) = parse_smb1_header(body) else {
            return Interest::None;
        };
        let Some(Ok(b)) = smb1_commands(body).next() else {
            return Interest::None;
        };
        match (h.command, h.is_response()) {
            (smb1_cmd::WRITE_ANDX, false) => match smb::smb1_write_andx_head(&b) {
                Ok((fid, off, _)) => {
                    let fid = Fid::V1(fid);
                    let starts_rpc = body.get(off..).is_some_and(looks_like_dcerpc);
                    if self.pipe_known(fid) || starts_rpc {
                        Interest::Pipe(Some(fid))
                    } else {
                        Interest::None
                    }
                }
                Err(_) => Interest::None,
            },
            (smb1_cmd::READ_ANDX | smb1_cmd::TRANSACTION, true) => {
                match self.pending(SMB1_KEY | u64::from(h.mid)) {
                    Some(Awaiting::Read(fid)) => Interest::Pipe(Some(*fid)),
                    _ => Interest::None,
                }
            }
            (smb1_cmd::TRANSACTION, false) => match smb::smb1_transaction_request_head(&b) {
                Ok((Some(fid), _, _)) => Interest::Pipe(Some(Fid::V1(fid))),
                _ => Interest::None,
            },
            (smb1_cmd::WRITE_ANDX, true) => Interest::None,
            (
                smb1_cmd::NT_CREATE_ANDX
                | smb1_cmd::CLOSE
                | smb1_cmd::READ_ANDX
                | smb1_cmd::TREE_CONNECT_ANDX,
                _,
            ) => Interest::Control,
            _ => Interest::None,
        }
    }

    /// One whole SMB message (after its NBSS header).
    fn message(&mut self, d: usize, body: &[u8], ctx: &ConnCtx, events: &mut Vec<Event>) {
        self.summary.messages += 1;
        self.last_progress = ctx.ts;
        if self.first.is_none() {
            self.first = Protocol::of(body);
        }
        match Protocol::of(body) {
            Some(Protocol::Smb2) => self.smb2(d, body, ctx, events),
            Some(Protocol::Smb1) => self.smb1(d, body, ctx, events),
            Some(Protocol::Transform) => self.summary.encrypted_messages += 1,
            Some(Protocol::Compressed) => self.summary.compressed_messages += 1,
            None => self.summary.malformed += 1,
        }
    }

    fn smb2(&mut self, _d: usize, body: &[u8], ctx: &ConnCtx, events: &mut Vec<Event>) {
        for cmd in smb2_commands(body) {
            let Ok((h, m)) = cmd else {
                self.summary.malformed += 1;
                return;
            };
            if let Err(()) = self.smb2_command(&h, m, ctx, events) {
                self.summary.malformed += 1;
            }
        }
    }

    fn smb2_command(
        &mut self,
        h: &Smb2Header,
        m: &[u8],
        ctx: &ConnCtx,
        events: &mut Vec<Event>,
    ) -> Result<(), ()> {
        let ok = matches!(h.status, status::SUCCESS | status::BUFFER_OVERFLOW);
        if h.is_response() {
            if h.is_interim() {
                return Ok(());
            }
            let awaiting = self.take_pending(h.message_id);
            if !ok || smb::smb2_is_error_response(m) {
                return Ok(());
            }
            match h.command {
                smb2_cmd::TREE_CONNECT => {
                    let share = smb::smb2_tree_connect_share_type(m).map_err(drop)?;
                    if let Some(tree) = h.tree_id {
                        self.trees.retain(|t| t.0 != tree);
                        if self.trees.len() >= MAX_TREES {
                            self.trees.remove(0);
                        }
                        self.trees.push((tree, share == smb::SMB2_SHARE_TYPE_PIPE));
                    }
                }
                smb2_cmd::CREATE => {
                    let Some(Awaiting::Create { name, tree }) = awaiting else {
                        return Ok(());
                    };
                    let id = smb::smb2_create_response_file_id(m).map_err(drop)?;
                    let share = tree.and_then(|t| self.trees.iter().find(|x| x.0 == t));
                    // (A pipe refused by the cap is counted there.)
                    let _ = match share {
                        Some((_, false)) => false,
                        Some((_, true)) => self.open(Fid::V2(id), Some(name), false),
                        None => self.open(Fid::V2(id), Some(name), true),
                    };
                }
                smb2_cmd::READ => {
                    if let Some(Awaiting::Read(fid)) = awaiting {
                        let data = smb::smb2_read_response_data(m).map_err(drop)?;
                        self.pipe_data(fid, 1, data, ctx, events);
                    }
                }
                smb2_cmd::IOCTL => {
                    let io = smb::smb2_ioctl(m, true).map_err(drop)?;
                    if io.ctl_code == smb::FSCTL_PIPE_TRANSCEIVE {
                        self.pipe_data(Fid::V2(io.file_id), 1, io.data, ctx, events);
                    }
                }
                _ => {}
            }
            return Ok(());
        }
        match h.command {
            smb2_cmd::CREATE => {
                let raw = smb::smb2_create_request_name(m).map_err(drop)?;
                let name = pipe_name(raw, true).into_boxed_str();
                self.await_response(
                    h.message_id,
                    Awaiting::Create {
                        name,
                        tree: h.tree_id,
                    },
                );
            }
            smb2_cmd::WRITE => {
                let w = smb::smb2_write_request(m).map_err(drop)?;
                self.pipe_data(Fid::V2(w.file_id), 0, w.data, ctx, events);
            }
            smb2_cmd::READ => {
                let fid = Fid::V2(smb::smb2_read_request_file_id(m).map_err(drop)?);
                if self.pipe_known(fid) {
                    self.await_response(h.message_id, Awaiting::Read(fid));
                }
            }
            smb2_cmd::IOCTL => {
                let io = smb::smb2_ioctl(m, false).map_err(drop)?;
                if io.ctl_code == smb::FSCTL_PIPE_TRANSCEIVE {
                    self.pipe_data(Fid::V2(io.file_id), 0, io.data, ctx, events);
                }
            }
            smb2_cmd::CLOSE => {
                let id = smb::smb2_close_request_file_id(m).map_err(drop)?;
                self.close(Fid::V2(id), ctx, events);
            }
            _ => {}
        }
        Ok(())
    }

    fn smb1(&mut self, _d: usize, msg: &[u8], ctx: &ConnCtx, events: &mut Vec<Event>) {
        let Ok(h) = parse_smb1_header(msg) else {
            self.summary.malformed += 1;
            return;
        };
        let key = SMB1_KEY | u64::from(h.mid);
        let ok = matches!(h.status, status::SUCCESS | status::BUFFER_OVERFLOW);
        let mut awaiting = if h.is_response() {
            self.take_pending(key)
        } else {
            None
        };
        if h.is_response() && !ok {
            return;
        }
        for blk in smb1_commands(msg) {
            let Ok(b) = blk else {
                self.summary.malformed += 1;
                return;
            };
            let r = if h.is_response() {
                self.smb1_response(&b, msg, awaiting.take(), ctx, events)
            } else {
                self.smb1_request(&h, key, &b, msg, ctx, events)
            };
            if r.is_err() {
                self.summary.malformed += 1;
            }
        }
    }

    fn smb1_request(
        &mut self,
        h: &smb::Smb1Header,
        key: u64,
        b: &smb::Smb1Block<'_>,
        msg: &[u8],
        ctx: &ConnCtx,
        events: &mut Vec<Event>,
    ) -> Result<(), ()> {
        match b.command {
            smb1_cmd::NT_CREATE_ANDX => {
                let raw = smb::smb1_nt_create_request_name(msg, b, h.unicode()).map_err(drop)?;
                let name = pipe_name(raw, h.unicode()).into_boxed_str();
                self.await_response(key, Awaiting::NtCreate { name });
            }
            smb1_cmd::WRITE_ANDX => {
                let (fid, off, len) = smb::smb1_write_andx_head(b).map_err(drop)?;
                let data = data_at(msg, off, len).map_err(drop)?;
                self.pipe_data(Fid::V1(fid), 0, data, ctx, events);
            }
            smb1_cmd::READ_ANDX => {
                let fid = Fid::V1(smb::smb1_read_andx_request_fid(b).map_err(drop)?);
                if self.pipe_known(fid) {
                    self.await_response(key, Awaiting::Read(fid));
                }
            }
            smb1_cmd::TRANSACTION => {
                let (fid, off, len) = smb::smb1_transaction_request_head(b).map_err(drop)?;
                if let Some(fid) = fid.map(Fid::V1) {
                    let data = data_at(msg, off, len).map_err(drop)?;
                    self.pipe_data(fid, 0, data, ctx, events);
                    if self.pipe_known(fid) {
                        self.await_response(key, Awaiting::Read(fid));
                    }
                }
            }
            smb1_cmd::CLOSE => {
                let fid = smb::smb1_close_request_fid(b).map_err(drop)?;
                self.close(Fid::V1(fid), ctx, events);
            }
            _ => {}
        }
        Ok(())
    }

    fn smb1_response(
        &mut self,
        b: &smb::Smb1Block<'_>,
        msg: &[u8],
        awaiting: Option<Awaiting>,
        ctx: &ConnCtx,
        events: &mut Vec<Event>,
    ) -> Result<(), ()> {
        match b.command {
            smb1_cmd::NT_CREATE_ANDX => {
                let (fid, is_pipe) = smb::smb1_nt_create_response(b).map_err(drop)?;
                if is_pipe {
                    let name = match awaiting {
                        Some(Awaiting::NtCreate { name }) => Some(name),
                        _ => None,
                    };
                    let _ = self.open(Fid::V1(fid), name, false);
                }
            }
            smb1_cmd::READ_ANDX | smb1_cmd::TRANSACTION => {
                let Some(Awaiting::Read(fid)) = awaiting else {
                    return Ok(());
                };
                let (off, len) = if b.command == smb1_cmd::READ_ANDX {
                    smb::smb1_read_andx_response_head(b).map_err(drop)?
                } else {
                    smb::smb1_transaction_response_head(b).map_err(drop)?
                };
                let data = data_at(msg, off, len).map_err(drop)?;
                self.pipe_data(fid, 1, data, ctx, events);
            }
            _ => {}
        }
        Ok(())
    }

    fn await_response(&mut self, id: u64, what: Awaiting) {
        self.pending.retain(|p| p.id != id);
        if self.pending.len() >= MAX_PENDING {
            self.pending.remove(0);
            self.summary.requests_dropped += 1;
        }
        self.pending.push(Pending { id, what });
    }

    fn take_pending(&mut self, id: u64) -> Option<Awaiting> {
        let i = self.pending.iter().position(|p| p.id == id)?;
        Some(self.pending.remove(i).what)
    }

    /// A pipe opened (or, `tentative`, a file that may be one). False when
    /// the table is full.
    fn open(&mut self, fid: Fid, name: Option<Box<str>>, tentative: bool) -> bool {
        if let Some(i) = self.pipes.iter().position(|p| p.fid == fid) {
            // The same id again (a reopen after a lost CLOSE): start over.
            self.pipes.swap_remove(i);
        }
        if self.pipes.len() >= MAX_PIPES {
            // (Counted once per file: each later write to a refused pipe
            // would try again.)
            if self.last_refused != Some(fid) {
                self.summary.pipes_over_cap += 1;
                self.last_refused = Some(fid);
            }
            return false;
        }
        let pipe = Pipe {
            fid,
            name: name.filter(|n| !n.is_empty()),
            tentative,
            rpc: Box::new(RpcConnection::carried_by(Carrier::NamedPipe)),
        };
        if !tentative {
            self.confirmed(&pipe);
        }
        self.pipes.push(pipe);
        true
    }

    fn confirmed(&mut self, p: &Pipe) {
        self.summary.pipes_opened += 1;
        self.carried_rpc = true;
        if let Some(n) = &p.name {
            self.rpc.add_pipe(n);
        }
    }

    /// Bytes of pipe `fid` in direction `d`. A file not known to be a
    /// pipe becomes one when the bytes begin like a DCE/RPC PDU (a capture
    /// that started after the pipe was opened).
    fn pipe_data(
        &mut self,
        fid: Fid,
        d: usize,
        data: &[u8],
        ctx: &ConnCtx,
        events: &mut Vec<Event>,
    ) {
        if data.is_empty() {
            return;
        }
        let i = match self.pipes.iter().position(|p| p.fid == fid) {
            Some(i) => i,
            None => {
                if !looks_like_dcerpc(data) || !self.open(fid, None, false) {
                    return;
                }
                self.pipes.len() - 1
            }
        };
        if self.pipes[i].tentative {
            if !looks_like_dcerpc(data) {
                // A file on a share of unknown type, not a pipe.
                self.pipes.swap_remove(i);
                return;
            }
            self.pipes[i].tentative = false;
            self.summary.pipes_opened += 1;
            self.carried_rpc = true;
            if let Some(n) = self.pipes[i].name.clone() {
                self.rpc.add_pipe(&n);
            }
        }
        self.pipes[i].rpc.on_bytes(d, data, ctx, events);
    }

    /// A CLOSE of `fid`: its pipe's DCE/RPC ends.
    fn close(&mut self, fid: Fid, ctx: &ConnCtx, events: &mut Vec<Event>) {
        if let Some(i) = self.pipes.iter().position(|p| p.fid == fid) {
            let mut p = self.pipes.remove(i);
            if !p.tentative {
                p.rpc.finish(ctx, events);
                self.rpc.merge(&p.rpc.summary());
            }
        }
    }
}

/// What the head of a message says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Interest {
    /// Nothing to read in it.
    None,
    /// A command that may open, name or close a pipe (small).
    Control,
    /// A pipe's bytes (of this file, when the head tells).
    Pipe(Option<Fid>),
}
