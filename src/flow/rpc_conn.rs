//! DCE/RPC over one TCP connection: reassembled byte streams → PDUs →
//! presentation contexts and calls → endpoint-mapper and DCOM answers
//! (events) and a per-flow summary (interfaces bound, authentication,
//! framing trouble).
//!
//! Direction 0 is the connection's originator (the RPC client), 1 the
//! responder. Everything is bounded: stream buffers, the PDU framer, calls
//! being reassembled, pending binds and calls in flight.

use std::net::IpAddr;

use super::stream::{Chunk, StreamReassembler};
use crate::event::{
    Carrier, EpmAnswerEvent, EpmEndpoint, EpmOperation, Event, InterfaceId, RegistrationEvent,
};
use crate::proto::dcerpc::Uuid;
use crate::proto::dcerpc::{
    auth_level, parse_header, parse_pdu, CallReassembler, CoBody, CoHeader, CoPdu, CompleteCall,
    PacketType, PduFramer, PresentationContext, SyntaxId, TransferSyntaxKind, UUID_EPM,
};
use crate::proto::dcom::{
    parse_dcom_response, BindingHost, DcomAnswer, DcomOperation, UUID_IOBJECT_EXPORTER,
    UUID_IREMOTE_ACTIVATION, UUID_ISYSTEM_ACTIVATOR,
};
use crate::proto::emsmdb::parse_register_push_notification;
use crate::proto::epm::Transport;
use crate::proto::epm::{
    parse_epm_response, parse_ept_lookup_request, parse_ept_map_request, EpmAnswer,
    OPNUM_EPT_LOOKUP, OPNUM_EPT_MAP,
};
use crate::proto::ndr::NdrSyntax;
use crate::proto::rpch::{NCACN_HTTP_BANNER, NCACN_HTTP_MAPPER_PORT};
use crate::Ts;

/// Out-of-order bytes held per direction while waiting for a hole to fill.
pub const STREAM_BUFFER: usize = 64 * 1024;
/// Bytes the PDU framer may hold per direction (one maximal PDU fits).
pub const FRAMER_BUFFER: usize = 65_535 + 16;
/// Largest PDU the framer buffers to read whole (one that matters: a bind,
/// an endpoint-mapper call or answer, an EMSMDB registration). Real ones are
/// a few hundred bytes to a few KB (Windows fragments at max_xmit_frag 5840,
/// Samba at 4280); a larger claim is passed over unread and counted
/// (`RpcConnection::refused_pdus`), so a peer that announces a 65,535-byte
/// fragment and trickles it cannot make each connection hold 64 KB (#23).
pub const MAX_BUFFERED_PDU: usize = 16 * 1024;
/// Largest reassembled call stub. An ept_map answer is a few KB, but an
/// ept_lookup enumeration is larger: impacket's rpcdump in
/// captures/public/sbousseaden (Discovery_impacket_rpcdump) gets a 14-PDU
/// answer of about 40 KB, which a 32 KiB cap lost. What calls hold counts
/// in the table's DCE/RPC budget, which bounds them all together.
pub const MAX_CALL_BYTES: usize = 256 * 1024;
/// Calls reassembled at once per direction.
pub const MAX_CALLS: usize = 4;
/// Framer capacity a connection keeps once its buffer is drained (more is
/// given back, see `PduFramer::release`).
const FRAMER_KEEP: usize = MAX_BUFFERED_PDU;
/// Binds awaiting their ack, and calls awaiting their response.
const MAX_PENDING: usize = 32;
/// Interfaces remembered in the summary.
pub const MAX_INTERFACES: usize = 8;

/// The addresses of the connection, passed with each segment.
#[derive(Clone, Copy, Debug)]
pub struct ConnCtx {
    pub ts: Ts,
    pub client: IpAddr,
    pub client_port: u16,
    pub server: IpAddr,
    pub server_port: u16,
}

/// An interface bound on the connection (bind or alter_context + ack).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BoundInterface {
    pub interface: InterfaceId,
    /// The server accepted a transfer syntax for it.
    pub accepted: bool,
    /// The accepted transfer syntax is NDR64.
    pub ndr64: bool,
}

/// What one DCE/RPC connection showed, for `flows[].rpc`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RpcSummary {
    pub interfaces: Vec<BoundInterface>,
    /// auth_type of the first verifier seen (10 NTLMSSP, 9 SPNEGO, 16 Kerberos, ...).
    pub auth_type: Option<u8>,
    /// Highest auth_level seen (6 = packet privacy).
    pub auth_level: Option<u8>,
    /// Stubs were sealed (privacy): parameters cannot be read.
    pub encrypted: bool,
    pub pdus: u64,
    pub requests: u64,
    pub faults: u64,
    pub binds_rejected: u64,
    pub epm_answers: u64,
    /// EMSMDB push-notification registrations read in clear.
    pub registrations: u64,
    /// PDUs whose body did not parse.
    pub malformed: u64,
    /// Holes in the TCP stream (lost segments, capture started late).
    pub stream_gaps: u64,
    /// What DCE/RPC came over on the flow (ncacn_http after the banner;
    /// ncacn_np inside SMB pipes).
    pub carrier: Carrier,
    /// Times the framer had to search for the next PDU header.
    pub resyncs: u64,
    pub bytes_skipped: u64,
    /// The SMB named pipes the DCE/RPC was carried in (#24; empty for
    /// DCE/RPC straight over TCP), in the order first opened, at most
    /// [`MAX_PIPE_NAMES`].
    pub pipes: Vec<Box<str>>,
}

/// Pipe names remembered in the summary.
pub const MAX_PIPE_NAMES: usize = 16;

#[derive(Clone, Copy, Debug)]
struct Context {
    id: u16,
    interface: InterfaceId,
    ndr64: bool,
}

#[derive(Debug)]
struct PendingBind {
    call_id: u32,
    /// (context id, abstract syntax) in bind order: acks answer positionally.
    contexts: Vec<(u16, SyntaxId)>,
}

/// What an endpoint-mapper request asked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EpmQuery {
    operation: EpmOperation,
    /// ept_map: the protocol sequence its tower asked for.
    transport: Option<Transport>,
    inquiry_type: Option<u32>,
    requested: Option<InterfaceId>,
    first_call: bool,
}

#[derive(Clone, Copy, Debug)]
struct InFlight {
    call_id: u32,
    opnum: u16,
    ndr64: bool,
    epm: Option<EpmQuery>,
    /// A DCOM call whose answer carries string bindings, with the
    /// interface it was made on (#22).
    dcom: Option<(DcomOperation, InterfaceId)>,
}

impl InFlight {
    /// Its answer is read.
    fn answer_matters(&self) -> bool {
        self.epm.is_some() || self.dcom.is_some()
    }
}

/// Call-level state, separate from the framers so both can be borrowed.
#[derive(Debug, Default)]
struct Calls {
    reassemblers: [CallReassembler; 2],
    contexts: Vec<Context>,
    pending_binds: Vec<PendingBind>,
    in_flight: Vec<InFlight>,
    /// What the connection showed; its `carrier` (what DCE/RPC comes over)
    /// goes into the answers' events too.
    summary: RpcSummary,
}

/// What deciding to pass over a large PDU needs, copied out of [`Calls`]
/// after every PDU that reaches it, so that the segments of large calls
/// (most of a DCE/RPC connection's bytes) are decided from the prefetched
/// head of [`RpcConnection`] without touching the call state's heap data.
#[derive(Debug, Default)]
struct PassGate {
    /// The bound contexts whose calls may matter: (id, interface kind).
    watch: [(u16, Watched); 4],
    watched: u8,
    /// More such contexts than `watch` holds: ask [`Calls`].
    overflow: bool,
    /// Endpoint-mapper and DCOM calls awaiting the response that is read.
    epm_in_flight: u8,
    /// PDUs passed over here, and the requests among them (added to the
    /// summary's counts).
    passed_pdus: u64,
    passed_requests: u64,
    /// Per direction: the framer is not idle (it holds bytes, or is out
    /// of sync). Mirrors `!PduFramer::is_idle`, updated wherever the
    /// framer changes, so that a chunk framed straight from the segment
    /// does not first wait for the framer's own cache lines.
    framer_busy: [bool; 2],
    /// PDUs that would have been buffered but claimed more than
    /// [`MAX_BUFFERED_PDU`]: passed over unread.
    refused_pdus: u64,
}

/// The interfaces some of whose calls exflow reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Watched {
    #[default]
    Epm,
    Emsmdb,
    /// A DCOM activator or OXID resolver interface (#22).
    Dcom(DcomInterface),
}

/// The DCOM interfaces whose answers name ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DcomInterface {
    SystemActivator,
    RemoteActivation,
    ObjectExporter,
}

impl DcomInterface {
    fn uuid(self) -> Uuid {
        match self {
            DcomInterface::SystemActivator => UUID_ISYSTEM_ACTIVATOR,
            DcomInterface::RemoteActivation => UUID_IREMOTE_ACTIVATION,
            DcomInterface::ObjectExporter => UUID_IOBJECT_EXPORTER,
        }
    }
}

impl Watched {
    fn of(uuid: &Uuid) -> Option<Watched> {
        if *uuid == UUID_EPM {
            Some(Watched::Epm)
        } else if *uuid == UUID_EMSMDB {
            Some(Watched::Emsmdb)
        } else if *uuid == UUID_ISYSTEM_ACTIVATOR {
            Some(Watched::Dcom(DcomInterface::SystemActivator))
        } else if *uuid == UUID_IREMOTE_ACTIVATION {
            Some(Watched::Dcom(DcomInterface::RemoteActivation))
        } else if *uuid == UUID_IOBJECT_EXPORTER {
            Some(Watched::Dcom(DcomInterface::ObjectExporter))
        } else {
            None
        }
    }

    /// Calls whose stub matters: endpoint-mapper lookups (and their
    /// answers), EMSMDB push registrations, the DCOM calls whose answers
    /// carry string bindings (their requests are read only to know the
    /// call; they are small).
    fn wants(self, opnum: u16) -> bool {
        match self {
            Watched::Epm => matches!(opnum, OPNUM_EPT_MAP | OPNUM_EPT_LOOKUP),
            Watched::Emsmdb => opnum == OPNUM_REGISTER_PUSH,
            Watched::Dcom(i) => DcomOperation::of(&i.uuid(), opnum).is_some(),
        }
    }
}

/// A call to a context's interface whose stub matters.
fn stub_matters(c: &Context, opnum: u16) -> bool {
    Watched::of(&c.interface.uuid).is_some_and(|w| w.wants(opnum))
}

/// The context id and opnum of a request PDU from its first 24 bytes.
fn request_ids(h: &CoHeader, head: &[u8]) -> Option<(u16, u16)> {
    let b = |at: usize| Some([*head.get(at)?, *head.get(at + 1)?]);
    let (c, o) = (b(20)?, b(22)?);
    Some(if h.little_endian() {
        (u16::from_le_bytes(c), u16::from_le_bytes(o))
    } else {
        (u16::from_be_bytes(c), u16::from_be_bytes(o))
    })
}

impl PassGate {
    /// Copies what [`Calls::passes_over`] looks at from `calls`.
    fn refresh(&mut self, calls: &Calls) {
        self.watched = 0;
        self.overflow = false;
        for c in &calls.contexts {
            let Some(kind) = Watched::of(&c.interface.uuid) else {
                continue;
            };
            match self.watch.get_mut(usize::from(self.watched)) {
                Some(slot) => {
                    *slot = (c.id, kind);
                    self.watched += 1;
                }
                None => {
                    self.overflow = true;
                    break;
                }
            }
        }
        let epm = calls
            .in_flight
            .iter()
            .filter(|c| c.answer_matters())
            .count();
        self.epm_in_flight = u8::try_from(epm).unwrap_or(u8::MAX);
    }

    /// [`Calls::passes_over`]'s answer when this gate knows it (`None`: ask
    /// the call state). Counts what it passes over.
    #[inline]
    fn passes_over(&mut self, d: usize, h: &CoHeader, head: &[u8], ctx: &ConnCtx) -> Option<bool> {
        if head.len() < 24 {
            return Some(false);
        }
        let pass = match h.ptype {
            PacketType::Request if d == 0 => {
                // Without a bind, a call to a mapper's port (135, or
                // ncacn_http's 593) is taken to be the endpoint mapper's:
                // that is for the call state to say.
                if self.overflow || matches!(ctx.server_port, 135 | NCACN_HTTP_MAPPER_PORT) {
                    return None;
                }
                let (ctx_id, opnum) = request_ids(h, head)?;
                let watched = &self.watch[..usize::from(self.watched).min(self.watch.len())];
                !watched
                    .iter()
                    .any(|&(id, kind)| id == ctx_id && kind.wants(opnum))
            }
            PacketType::Response if d == 1 => {
                if self.epm_in_flight > 0 {
                    return None;
                }
                true
            }
            _ => return Some(false),
        };
        if pass {
            self.passed_pdus += 1;
            if d == 0 && h.first_frag() {
                self.passed_requests += 1;
            }
        }
        Some(pass)
    }
}

/// DCE/RPC state of one TCP connection.
///
/// Laid out in the order a segment reads it (`repr(C)`): `skip` and the
/// streams for every segment (most segments of large calls stop there), the
/// framers for those that reach a PDU boundary, the call state last; the
/// shard workers prefetch the first [`HOT_BYTES`] before the segment comes.
#[derive(Debug)]
#[repr(C)]
pub struct RpcConnection {
    /// Bytes still to pass over, per direction: the rest of a large PDU
    /// whose contents do not matter (see [`deliver`]).
    skip: [usize; 2],
    gate: PassGate,
    streams: [StreamReassembler; 2],
    framers: [PduFramer; 2],
    calls: Calls,
    /// Capture time of the last whole PDU (or of the first segment): a
    /// connection that stops making progress may lose its parser to one
    /// that does (`FlowTable`'s slot eviction, #23).
    last_progress: Ts,
    /// Heap bytes last counted in the flow table's DCE/RPC budget.
    pub(crate) accounted: usize,
}

/// The bytes at the start of an [`RpcConnection`] that every segment reads
/// (`skip`, the pass-over gate and the streams; the framers and the call state only at PDU
/// boundaries), for prefetching.
pub const HOT_BYTES: usize = std::mem::offset_of!(RpcConnection, framers);

// The per-segment state fits in 8 cache lines, and `skip` leads.
const _: () = assert!(HOT_BYTES <= 512 && std::mem::offset_of!(RpcConnection, skip) == 0);

impl Default for RpcConnection {
    fn default() -> Self {
        Self::new()
    }
}

fn interface_of(s: &SyntaxId) -> InterfaceId {
    InterfaceId {
        uuid: s.uuid,
        major: s.major(),
        minor: s.minor(),
    }
}

fn framer() -> PduFramer {
    let mut f = PduFramer::new(FRAMER_BUFFER);
    f.set_max_candidate(MAX_BUFFERED_PDU);
    f
}

impl RpcConnection {
    /// Heap bytes this connection holds beyond its own struct: framer
    /// buffers, out-of-order stream bytes, calls being reassembled.
    pub fn heap_bytes(&self) -> usize {
        let framers: usize = self.framers.iter().map(PduFramer::heap_bytes).sum();
        let streams: usize = self.streams.iter().map(StreamReassembler::heap_bytes).sum();
        let calls: usize = self
            .calls
            .reassemblers
            .iter()
            .map(CallReassembler::heap_bytes)
            .sum();
        framers + streams + calls
    }

    /// PDUs passed over unread because they claimed more than
    /// [`MAX_BUFFERED_PDU`].
    pub fn refused_pdus(&self) -> u64 {
        self.gate.refused_pdus
    }

    /// Whether a stream holds bytes beyond a hole (out of order).
    pub fn waiting_for_holes(&self) -> bool {
        self.streams.iter().any(|s| s.buffered() > 0)
    }

    /// Capture time of the last whole PDU (or of the first segment).
    pub fn last_progress(&self) -> Ts {
        self.last_progress
    }

    fn pdus_seen(&self) -> u64 {
        self.calls.summary.pdus + self.calls.summary.malformed + self.gate.passed_pdus
    }

    pub fn new() -> Self {
        RpcConnection {
            streams: [
                StreamReassembler::new(STREAM_BUFFER),
                StreamReassembler::new(STREAM_BUFFER),
            ],
            framers: [framer(), framer()],
            skip: [0; 2],
            last_progress: 0,
            accounted: 0,
            gate: PassGate::default(),
            calls: Calls {
                reassemblers: [
                    CallReassembler::new(MAX_CALL_BYTES, MAX_CALLS),
                    CallReassembler::new(MAX_CALL_BYTES, MAX_CALLS),
                ],
                ..Calls::default()
            },
        }
    }

    /// A connection whose server opened with the ncacn_http banner, whose
    /// first byte is at sequence number `banner_seq` (#24): the server's
    /// stream starts after it, and what the connection answers is said to
    /// have come over ncacn_http. Call before [`Self::on_syn`].
    pub fn ncacn_http(banner_seq: u32) -> Self {
        let mut c = Self::carried_by(Carrier::Http);
        c.streams[1].on_syn(banner_seq.wrapping_add(NCACN_HTTP_BANNER.len() as u32 - 1));
        c
    }

    /// DCE/RPC carried by another protocol (an SMB named pipe): its
    /// answers are said to have come over `carrier`.
    pub fn carried_by(carrier: Carrier) -> Self {
        let mut c = Self::new();
        c.calls.summary.carrier = carrier;
        c
    }

    /// What the connection carries DCE/RPC over.
    pub fn carrier(&self) -> Carrier {
        self.calls.summary.carrier
    }

    /// The side `dir` sent a SYN with `isn`: its stream starts at isn + 1.
    pub fn on_syn(&mut self, dir: usize, isn: u32) {
        self.streams[dir & 1].on_syn(isn);
    }

    /// One TCP segment of direction `dir` (0 = client → server). `missing`
    /// is the payload the snaplen cut off after `data`.
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
        if self.last_progress == 0 {
            self.last_progress = ctx.ts;
        }
        let before = self.pdus_seen();
        self.segment(dir, seq, data, missing, fin, ctx, events);
        if self.pdus_seen() != before {
            self.last_progress = ctx.ts;
        }
        let f = &mut self.framers[dir & 1];
        if f.heap_bytes() > FRAMER_KEEP {
            f.release(FRAMER_KEEP);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn segment(
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
        let Self {
            streams,
            framers,
            skip,
            gate,
            calls,
            ..
        } = self;
        let framer = &mut framers[d];
        let skip = &mut skip[d];
        if !fin && missing == 0 && *skip >= data.len() && streams[d].pass_in_order(seq, data.len())
        {
            // In order and wholly inside a PDU being passed over (most
            // segments of large calls): nothing to look at.
            *skip -= data.len();
            return;
        }
        let mut emit = |c: Chunk<'_>| deliver(framer, skip, gate, calls, d, c, ctx, events);
        streams[d].push(seq, data, fin && missing == 0, &mut emit);
        if missing > 0 {
            // The snaplen cut this segment: what follows it is a hole.
            streams[d].skip(seq.wrapping_add(data.len() as u32), missing, &mut emit);
        }
    }

    /// In-order bytes of direction `dir` from a carrier that frames them
    /// itself (an SMB named pipe's WRITE or READ data, #24): what
    /// [`Self::on_segment`] does with a segment's bytes once its stream
    /// put them in order.
    pub fn on_bytes(&mut self, dir: usize, data: &[u8], ctx: &ConnCtx, events: &mut Vec<Event>) {
        if self.last_progress == 0 {
            self.last_progress = ctx.ts;
        }
        let before = self.pdus_seen();
        self.deliver(dir, Chunk::Data(data), ctx, events);
        if self.pdus_seen() != before {
            self.last_progress = ctx.ts;
        }
        let f = &mut self.framers[dir & 1];
        if f.heap_bytes() > FRAMER_KEEP {
            f.release(FRAMER_KEEP);
        }
    }

    /// Bytes of direction `dir` were lost by the carrier (an SMB message
    /// passed over, a hole in its stream): the framer resynchronizes.
    pub fn on_gap(&mut self, dir: usize, ctx: &ConnCtx, events: &mut Vec<Event>) {
        self.deliver(dir, Chunk::Gap { missing: 0 }, ctx, events);
    }

    fn deliver(&mut self, dir: usize, c: Chunk<'_>, ctx: &ConnCtx, events: &mut Vec<Event>) {
        let d = dir & 1;
        let Self {
            framers,
            skip,
            gate,
            calls,
            ..
        } = self;
        deliver(
            &mut framers[d],
            &mut skip[d],
            gate,
            calls,
            d,
            c,
            ctx,
            events,
        );
    }

    /// The connection ends: deliver what is still buffered.
    pub fn finish(&mut self, ctx: &ConnCtx, events: &mut Vec<Event>) {
        for d in 0..2 {
            let Self {
                streams,
                framers,
                skip,
                gate,
                calls,
                ..
            } = self;
            let framer = &mut framers[d];
            let skip = &mut skip[d];
            let mut emit = |c: Chunk<'_>| deliver(framer, skip, gate, calls, d, c, ctx, events);
            streams[d].flush(&mut emit);
        }
    }

    pub fn summary(&self) -> RpcSummary {
        let mut s = self.calls.summary.clone();
        s.pdus += self.gate.passed_pdus;
        s.requests += self.gate.passed_requests;
        for f in &self.framers {
            let st = f.stats();
            s.resyncs += st.resyncs;
            s.bytes_skipped += st.bytes_skipped;
        }
        s
    }
}

/// Hands one chunk of direction `d`'s stream to the framer and every whole
/// PDU to the call state. While the framer is idle, whole PDUs are taken
/// straight from the chunk (no copy), and a large request or response whose
/// stub does not matter is counted from its header and passed over without
/// being buffered (`skip` holds what is left of it); only a trailing partial
/// PDU that matters is buffered.
#[allow(clippy::too_many_arguments)]
fn deliver(
    framer: &mut PduFramer,
    skip: &mut usize,
    gate: &mut PassGate,
    calls: &mut Calls,
    d: usize,
    chunk: Chunk<'_>,
    ctx: &ConnCtx,
    events: &mut Vec<Event>,
) {
    match chunk {
        Chunk::Data(mut bytes) => {
            if *skip > 0 {
                let n = (*skip).min(bytes.len());
                *skip -= n;
                bytes = &bytes[n..];
            }
            debug_assert_eq!(gate.framer_busy[d], !framer.is_idle());
            if !gate.framer_busy[d] {
                while let Ok(h) = parse_header(bytes) {
                    let len = h.frag_length as usize;
                    if !h.ptype.is_connection_oriented() {
                        break;
                    }
                    if bytes.len() >= len {
                        let (pdu, rest) = bytes.split_at(len);
                        calls.on_pdu(d, pdu, ctx, events);
                        gate.refresh(calls);
                        bytes = rest;
                        continue;
                    }
                    let pass = match gate.passes_over(d, &h, bytes, ctx) {
                        Some(pass) => pass,
                        None => calls.passes_over(d, &h, bytes, ctx),
                    };
                    if !pass && len > MAX_BUFFERED_PDU {
                        // Would be buffered, and claims too much: refused.
                        gate.refused_pdus += 1;
                        *skip = len - bytes.len();
                        bytes = &[];
                    } else if pass {
                        *skip = len - bytes.len();
                        bytes = &[];
                    }
                    break;
                }
            }
            if !bytes.is_empty() {
                framer.push(bytes);
                while let Some(pdu) = framer.next_pdu() {
                    calls.on_pdu(d, pdu, ctx, events);
                    gate.refresh(calls);
                }
                // The framer holds the start of a PDU (a header cut by a
                // segment boundary, or the start of one that mattered and
                // then was followed by others): once its head is there, a
                // PDU whose stub does not matter is passed over as above,
                // and the framer is idle again. Else one cut header made
                // the framer copy and parse every later PDU of the
                // connection whole (PDU ends rarely meet segment ends).
                let pass = framer.partial().and_then(|head| {
                    let h = parse_header(head).ok()?;
                    // (Longer than what is buffered, or the framer had
                    // handed it out.)
                    let rest = (h.frag_length as usize).checked_sub(head.len())?;
                    let pass = match gate.passes_over(d, &h, head, ctx) {
                        Some(pass) => pass,
                        None => calls.passes_over(d, &h, head, ctx),
                    };
                    if !pass && h.frag_length as usize > MAX_BUFFERED_PDU {
                        // Would be buffered, and claims too much: refused.
                        gate.refused_pdus += 1;
                        return Some(rest);
                    }
                    pass.then_some(rest)
                });
                if let Some(rest) = pass {
                    *skip = rest;
                    framer.pass_partial();
                }
                gate.framer_busy[d] = !framer.is_idle();
            }
        }
        Chunk::Gap { .. } => {
            calls.summary.stream_gaps += 1;
            *skip = 0;
            framer.gap();
            gate.framer_busy[d] = !framer.is_idle();
        }
    }
}

impl Calls {
    fn on_pdu(&mut self, d: usize, bytes: &[u8], ctx: &ConnCtx, events: &mut Vec<Event>) {
        let pdu = match parse_pdu(bytes) {
            Ok(p) => p,
            Err(_) => {
                self.summary.malformed += 1;
                return;
            }
        };
        self.summary.pdus += 1;
        if let Some(a) = &pdu.auth {
            self.summary.auth_type.get_or_insert(a.auth_type);
            let lvl = self.summary.auth_level.get_or_insert(a.auth_level);
            *lvl = (*lvl).max(a.auth_level);
            if a.auth_level == auth_level::PRIVACY {
                self.summary.encrypted = true;
            }
        }
        match &pdu.body {
            CoBody::Bind(b) | CoBody::AlterContext(b) if d == 0 => {
                self.on_bind(pdu.header.call_id, &b.contexts)
            }
            CoBody::BindAck(a) | CoBody::AlterContextResp(a) if d == 1 => {
                let Some(i) = self
                    .pending_binds
                    .iter()
                    .position(|p| p.call_id == pdu.header.call_id)
                else {
                    return;
                };
                let pending = self.pending_binds.remove(i);
                for (slot, result) in pending.contexts.iter().zip(&a.results) {
                    let (id, syntax) = *slot;
                    if matches!(syntax.kind(), TransferSyntaxKind::BindTimeFeatures(_)) {
                        continue;
                    }
                    let accepted = result.accepted();
                    let ndr64 = matches!(result.transfer_syntax.kind(), TransferSyntaxKind::Ndr64);
                    self.bound(interface_of(&syntax), accepted, ndr64);
                    if accepted {
                        self.contexts.retain(|c| c.id != id);
                        self.contexts.push(Context {
                            id,
                            interface: interface_of(&syntax),
                            ndr64,
                        });
                    }
                }
            }
            CoBody::BindNak { .. } if d == 1 => {
                self.summary.binds_rejected += 1;
                self.pending_binds
                    .retain(|p| p.call_id != pdu.header.call_id);
            }
            CoBody::Request(_) | CoBody::Response(_) => {
                if self.wants_stub(d, &pdu, ctx) {
                    if let Some(call) = self.reassemblers[d].push(&pdu) {
                        self.on_call(d, call, ctx, events);
                    }
                } else if d == 0 && pdu.header.first_frag() {
                    self.summary.requests += 1;
                }
            }
            CoBody::Fault(_) if d == 1 => {
                self.summary.faults += 1;
                self.in_flight.retain(|c| c.call_id != pdu.header.call_id);
            }
            _ => {}
        }
    }

    /// A request or response PDU (seen only in part: `head` is its start)
    /// whose stub does not matter: counted here from its header, so the
    /// caller may pass over the rest without buffering it.
    fn passes_over(&mut self, d: usize, h: &CoHeader, head: &[u8], ctx: &ConnCtx) -> bool {
        if head.len() < 24 {
            return false;
        }
        let wanted = match h.ptype {
            PacketType::Request if d == 0 => {
                let Some((ctx_id, opnum)) = request_ids(h, head) else {
                    return false;
                };
                self.context(ctx_id, ctx)
                    .is_some_and(|c| stub_matters(&c, opnum))
            }
            PacketType::Response if d == 1 => self
                .in_flight
                .iter()
                .any(|c| c.call_id == h.call_id && c.answer_matters()),
            _ => return false,
        };
        if wanted {
            return false;
        }
        self.summary.pdus += 1;
        if d == 0 && h.first_frag() {
            self.summary.requests += 1;
        }
        true
    }

    /// Only calls whose parameters matter are reassembled: endpoint-mapper
    /// lookups and their answers, EMSMDB push registrations, and the DCOM
    /// calls whose answers carry string bindings (and those answers). Everything
    /// else is counted from its header alone (no copy of its stub).
    fn wants_stub(&self, d: usize, pdu: &CoPdu<'_>, ctx: &ConnCtx) -> bool {
        match &pdu.body {
            CoBody::Request(r) if d == 0 => self
                .context(r.context_id, ctx)
                .is_some_and(|c| stub_matters(&c, r.opnum)),
            CoBody::Response(_) if d == 1 => self
                .in_flight
                .iter()
                .any(|c| c.call_id == pdu.header.call_id && c.answer_matters()),
            _ => false,
        }
    }

    fn on_bind(&mut self, call_id: u32, contexts: &[PresentationContext]) {
        if self.pending_binds.len() >= MAX_PENDING {
            self.pending_binds.remove(0);
        }
        self.pending_binds.push(PendingBind {
            call_id,
            contexts: contexts
                .iter()
                .map(|c| {
                    // A BTFN "context" carries the negotiation syntax as its
                    // transfer syntax; mark it so the ack slot is skipped.
                    let btfn = c
                        .transfer_syntaxes
                        .iter()
                        .find(|t| matches!(t.kind(), TransferSyntaxKind::BindTimeFeatures(_)));
                    (c.context_id, btfn.copied().unwrap_or(c.abstract_syntax))
                })
                .collect(),
        });
    }

    fn bound(&mut self, interface: InterfaceId, accepted: bool, ndr64: bool) {
        self.summary.bound(interface, accepted, ndr64);
    }
}

impl RpcSummary {
    /// Adds what another DCE/RPC conversation of the same flow showed (the
    /// pipes of one SMB connection, #24): counts summed, interfaces and
    /// pipe names merged (bounded), the first auth type, the highest level.
    pub fn merge(&mut self, o: &RpcSummary) {
        for b in &o.interfaces {
            self.bound(b.interface, b.accepted, b.ndr64);
        }
        if self.auth_type.is_none() {
            self.auth_type = o.auth_type;
        }
        self.auth_level = self.auth_level.max(o.auth_level);
        self.encrypted |= o.encrypted;
        self.pdus += o.pdus;
        self.requests += o.requests;
        self.faults += o.faults;
        self.binds_rejected += o.binds_rejected;
        self.epm_answers += o.epm_answers;
        self.registrations += o.registrations;
        self.malformed += o.malformed;
        self.stream_gaps += o.stream_gaps;
        self.resyncs += o.resyncs;
        self.bytes_skipped += o.bytes_skipped;
        for p in &o.pipes {
            self.add_pipe(p);
        }
    }

    /// Records a pipe name (once, at most [`MAX_PIPE_NAMES`]).
    pub fn add_pipe(&mut self, name: &str) {
        if self.pipes.len() < MAX_PIPE_NAMES && !self.pipes.iter().any(|p| &**p == name) {
            self.pipes.push(name.into());
        }
    }

    /// Records an interface bound (or named) on the flow.
    pub(crate) fn bound(&mut self, interface: InterfaceId, accepted: bool, ndr64: bool) {
        let s = &mut self.interfaces;
        if let Some(b) = s.iter_mut().find(|b| b.interface == interface) {
            b.accepted |= accepted;
            b.ndr64 |= ndr64 && accepted;
        } else if s.len() < MAX_INTERFACES {
            s.push(BoundInterface {
                interface,
                accepted,
                ndr64: ndr64 && accepted,
            });
        }
    }
}

impl Calls {
    /// The context a call names; without a bind (capture started late) a
    /// call to TCP 135 (or, after the ncacn_http banner, to 593) is taken
    /// to be the endpoint mapper in NDR.
    fn context(&self, id: u16, ctx: &ConnCtx) -> Option<Context> {
        let mapper = ctx.server_port == 135
            || (self.summary.carrier == Carrier::Http && ctx.server_port == NCACN_HTTP_MAPPER_PORT);
        self.contexts.iter().find(|c| c.id == id).copied().or({
            mapper.then_some(Context {
                id,
                interface: InterfaceId {
                    uuid: UUID_EPM,
                    major: 3,
                    minor: 0,
                },
                ndr64: false,
            })
        })
    }

    fn on_call(
        &mut self,
        d: usize,
        call: CompleteCall<'_>,
        ctx: &ConnCtx,
        events: &mut Vec<Event>,
    ) {
        if call.ptype == PacketType::Request && d == 0 {
            self.summary.requests += 1;
            let Some(opnum) = call.opnum else { return };
            let Some(c) = self.context(call.context_id, ctx) else {
                return;
            };
            let syntax = if c.ndr64 {
                NdrSyntax::Ndr64
            } else {
                NdrSyntax::Ndr20
            };
            if c.interface.uuid == UUID_EMSMDB && opnum == OPNUM_REGISTER_PUSH && !call.encrypted {
                self.register_push(&call, ctx, events);
            }
            let epm = (c.interface.uuid == UUID_EPM
                && matches!(opnum, OPNUM_EPT_MAP | OPNUM_EPT_LOOKUP)
                && !call.encrypted)
                .then(|| epm_query(opnum, &call.stub, syntax, call.little_endian))
                .flatten();
            // DCOM answers are read in NDR 2.0 only (Windows binds the
            // activator and the resolver in NDR 2.0); one in NDR64 is
            // passed over.
            let dcom = DcomOperation::of(&c.interface.uuid, opnum)
                .filter(|_| !c.ndr64)
                .map(|op| (op, c.interface));
            if self.in_flight.len() >= MAX_PENDING {
                self.in_flight.remove(0);
            }
            self.in_flight.push(InFlight {
                call_id: call.call_id,
                opnum,
                ndr64: c.ndr64,
                epm,
                dcom,
            });
        } else if call.ptype == PacketType::Response && d == 1 {
            let Some(i) = self
                .in_flight
                .iter()
                .position(|c| c.call_id == call.call_id)
            else {
                return;
            };
            let req = self.in_flight.remove(i);
            if let Some((op, interface)) = req.dcom {
                self.dcom_answer(op, interface, &call, ctx, events);
                return;
            }
            let Some(q) = req.epm else { return };
            if call.encrypted {
                return;
            }
            let syntax = if req.ndr64 {
                NdrSyntax::Ndr64
            } else {
                NdrSyntax::Ndr20
            };
            let Ok(answer) = parse_epm_response(req.opnum, &call.stub, syntax, call.little_endian)
            else {
                self.summary.malformed += 1;
                return;
            };
            self.summary.epm_answers += 1;
            events.push(Event::EpmAnswer(EpmAnswerEvent::from_answer(
                ctx,
                self.summary.carrier,
                call.call_id,
                &q,
                req.ndr64,
                answer,
            )));
        }
    }
}

impl Calls {
    /// The answer to a DCOM call naming ports: its string bindings, or
    /// that it was sealed (#22).
    fn dcom_answer(
        &mut self,
        op: DcomOperation,
        interface: InterfaceId,
        call: &CompleteCall<'_>,
        ctx: &ConnCtx,
        events: &mut Vec<Event>,
    ) {
        let (endpoints, status) = if call.encrypted {
            (Vec::new(), 0)
        } else {
            match parse_dcom_response(op, &call.stub, call.little_endian) {
                Ok(a) => (dcom_endpoints(&a, interface, ctx.server), a.status),
                Err(_) => {
                    self.summary.malformed += 1;
                    return;
                }
            }
        };
        // (Not counted in `epm_answers`: the endpoint mapper's only.)
        events.push(Event::EpmAnswer(EpmAnswerEvent {
            ts: ctx.ts,
            client: ctx.client,
            client_port: ctx.client_port,
            mapper: ctx.server,
            mapper_port: ctx.server_port,
            carrier: self.summary.carrier,
            call_id: call.call_id,
            operation: EpmOperation::Dcom(op),
            inquiry_type: None,
            // The interface the call was made on.
            requested: Some(interface),
            first_call: false,
            requested_transport: None,
            ndr64: false,
            status,
            endpoints,
            sealed: call.encrypted,
        }));
    }

    /// EcRRegisterPushNotification in clear: where the client wants its
    /// new-mail notifications.
    fn register_push(&mut self, call: &CompleteCall<'_>, ctx: &ConnCtx, events: &mut Vec<Event>) {
        match parse_register_push_notification(&call.stub, call.little_endian) {
            Ok(reg) => {
                if let Some(callback) = reg.callback {
                    self.summary.registrations += 1;
                    events.push(Event::Registration(RegistrationEvent {
                        ts: ctx.ts,
                        client: ctx.client,
                        server: ctx.server,
                        callback,
                        cookie: reg.cookie.to_vec(),
                    }));
                }
            }
            Err(_) => self.summary.malformed += 1,
        }
    }
}

/// EMSMDB, the information store's MAPI interface (MS-OXCRPC).
pub const UUID_EMSMDB: Uuid = Uuid::from_fields(
    0xa4f1_db00,
    0xca47,
    0x1067,
    [0xb3, 0x1f, 0x00, 0xdd, 0x01, 0x06, 0x62, 0xda],
);
/// EcRRegisterPushNotification (MS-OXCRPC §3.1.4.5).
pub const OPNUM_REGISTER_PUSH: u16 = 4;

/// What an ept_map / ept_lookup request asked for.
pub(crate) fn epm_query(opnum: u16, stub: &[u8], syntax: NdrSyntax, le: bool) -> Option<EpmQuery> {
    match opnum {
        OPNUM_EPT_MAP => {
            let r = parse_ept_map_request(stub, syntax, le).ok();
            Some(EpmQuery {
                operation: EpmOperation::EptMap,
                transport: r
                    .as_ref()
                    .and_then(|r| r.tower.as_ref())
                    .and_then(|t| t.transport)
                    .map(|(t, _)| t),
                inquiry_type: None,
                requested: r
                    .as_ref()
                    .and_then(|r| r.tower.as_ref())
                    .and_then(|t| t.interface.as_ref())
                    .map(interface_of),
                first_call: r.as_ref().is_none_or(|r| r.entry_handle.is_null()),
            })
        }
        OPNUM_EPT_LOOKUP => {
            let r = parse_ept_lookup_request(stub, syntax, le).ok();
            Some(EpmQuery {
                operation: EpmOperation::EptLookup,
                transport: None,
                inquiry_type: r.as_ref().map(|r| r.inquiry_type),
                requested: r
                    .as_ref()
                    .filter(|r| matches!(r.inquiry_type, 1 | 3))
                    .and_then(|r| r.interface.as_ref())
                    .map(interface_of),
                first_call: r.as_ref().is_none_or(|r| r.entry_handle.is_null()),
            })
        }
        _ => None,
    }
}

impl EpmAnswerEvent {
    /// The event for `answer`, the response to `q`, on the connection `ctx`.
    pub(crate) fn from_answer(
        ctx: &ConnCtx,
        carrier: Carrier,
        call_id: u32,
        q: &EpmQuery,
        ndr64: bool,
        answer: EpmAnswer,
    ) -> EpmAnswerEvent {
        EpmAnswerEvent {
            ts: ctx.ts,
            client: ctx.client,
            client_port: ctx.client_port,
            mapper: ctx.server,
            mapper_port: ctx.server_port,
            carrier,
            call_id,
            operation: q.operation,
            inquiry_type: q.inquiry_type,
            requested: q.requested,
            first_call: q.first_call,
            requested_transport: q.transport,
            ndr64,
            status: answer.status,
            endpoints: answer
                .towers
                .into_iter()
                .filter_map(|(tower, annotation)| {
                    let (transport, port, ip) = tower.endpoint()?;
                    Some(EpmEndpoint {
                        interface: tower.interface.as_ref().map(interface_of),
                        transport,
                        port,
                        tower_ip: ip.map(IpAddr::V4),
                        annotation: annotation.filter(|a| !a.is_empty()),
                        bindings: Vec::new(),
                    })
                })
                .collect(),
            sealed: false,
        }
    }
}

/// The endpoints a DCOM answer names: one per TCP port its ncacn_ip_tcp
/// string bindings give (the bindings of one port are the same endpoint
/// by its several names and addresses), in the order the ports first
/// appear. The address the follow-up is looked for at: the binding equal
/// to the answering host's address when there is one (the client reached
/// it there), else the first address literal, else none (`tower_ip`
/// `None`: only names, the answering host is assumed).
pub(crate) fn dcom_endpoints(
    a: &DcomAnswer,
    interface: InterfaceId,
    answering: IpAddr,
) -> Vec<EpmEndpoint> {
    let mut out: Vec<EpmEndpoint> = Vec::new();
    for b in a.string_bindings() {
        let Some(port) = b.tcp_port() else { continue };
        let at = match out.iter().position(|e| e.port == port) {
            Some(i) => i,
            None => {
                out.push(EpmEndpoint {
                    interface: Some(interface),
                    transport: Transport::Tcp,
                    port,
                    tower_ip: None,
                    annotation: None,
                    bindings: Vec::new(),
                });
                out.len() - 1
            }
        };
        let e = &mut out[at];
        if let BindingHost::Ip(ip) = b.host() {
            if e.tower_ip.is_none() || ip == answering {
                e.tower_ip = Some(ip);
            }
        }
        e.bindings.push(b.address.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// The first 24 bytes of a request (ptype 0) or response (ptype 2) whose
    /// fragment is far longer than what is at hand.
    fn head(ptype: u8, le: bool, call_id: u32, ctx_id: u16, opnum: u16) -> Vec<u8> {
        let mut b = vec![5, 0, ptype, 3, if le { 0x10 } else { 0 }, 0, 0, 0];
        let u16b = |v: u16| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let u32b = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        b.extend(u16b(5000));
        b.extend(u16b(0));
        b.extend(u32b(call_id));
        b.extend(u32b(4976));
        b.extend(u16b(ctx_id));
        b.extend(u16b(opnum));
        b
    }

    fn context(id: u16, uuid: Uuid) -> Context {
        Context {
            id,
            interface: InterfaceId {
                uuid,
                major: 1,
                minor: 0,
            },
            ndr64: false,
        }
    }

    /// Whatever the gate answers must be what the call state answers (and
    /// count the same), and it answers the common cases itself.
    #[test]
    fn pass_gate_agrees_with_the_call_state() {
        let other = Uuid::from_fields(0x1234_5678, 1, 2, [3, 4, 5, 6, 7, 8, 9, 10]);
        let layouts: Vec<Vec<Context>> = vec![
            vec![],
            vec![context(0, other)],
            vec![
                context(0, UUID_EPM),
                context(1, UUID_EMSMDB),
                context(2, other),
            ],
            // More watched contexts than the gate holds.
            (0..6).map(|i| context(i, UUID_EMSMDB)).collect(),
        ];
        let epm_call = InFlight {
            call_id: 7,
            opnum: OPNUM_EPT_MAP,
            ndr64: false,
            epm: Some(EpmQuery {
                operation: EpmOperation::EptMap,
                transport: None,
                inquiry_type: None,
                requested: None,
                first_call: true,
            }),
            dcom: None,
        };
        let (mut decided, mut kept) = (0, 0);
        for contexts in &layouts {
            for in_flight in [vec![], vec![epm_call]] {
                for port in [135, 6001] {
                    let ctx = ConnCtx {
                        ts: 0,
                        client: Ipv4Addr::new(192, 0, 2, 1).into(),
                        client_port: 50000,
                        server: Ipv4Addr::new(198, 51, 100, 2).into(),
                        server_port: port,
                    };
                    let mut calls = Calls {
                        contexts: contexts.clone(),
                        in_flight: in_flight.clone(),
                        ..Calls::default()
                    };
                    let mut gate = PassGate::default();
                    gate.refresh(&calls);
                    for (ptype, d) in [(0u8, 0usize), (2, 1), (0, 1), (2, 0)] {
                        for le in [true, false] {
                            for ctx_id in 0..4 {
                                for opnum in
                                    [0, OPNUM_EPT_LOOKUP, OPNUM_EPT_MAP, OPNUM_REGISTER_PUSH]
                                {
                                    for call_id in [7, 8] {
                                        let b = head(ptype, le, call_id, ctx_id, opnum);
                                        let h = parse_header(&b).unwrap();
                                        let before = (gate.passed_pdus, gate.passed_requests);
                                        let Some(g) = gate.passes_over(d, &h, &b, &ctx) else {
                                            continue;
                                        };
                                        decided += 1;
                                        kept += usize::from(!g);
                                        let (p, r) = (calls.summary.pdus, calls.summary.requests);
                                        assert_eq!(
                                            g,
                                            calls.passes_over(d, &h, &b, &ctx),
                                            "ptype {ptype} dir {d} ctx {ctx_id} opnum {opnum} port {port} contexts {contexts:?}"
                                        );
                                        assert_eq!(
                                            (
                                                gate.passed_pdus - before.0,
                                                gate.passed_requests - before.1
                                            ),
                                            (calls.summary.pdus - p, calls.summary.requests - r)
                                        );
                                        // Too short a head is never passed over.
                                        assert_eq!(
                                            gate.passes_over(d, &h, &b[..20], &ctx),
                                            Some(false)
                                        );
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(decided > 1000, "the gate decided only {decided} cases");
        assert!(kept > 50 && decided - kept > 50, "kept {kept} of {decided}");
    }

    /// One request of `frags` fragments of `frag_len` bytes (context 0,
    /// which no bind names: nothing in it matters).
    fn fragmented_request(call_id: u32, frags: usize, frag_len: u16) -> Vec<u8> {
        let mut out = Vec::new();
        for k in 0..frags {
            let flags = u8::from(k == 0) | if k + 1 == frags { 2 } else { 0 };
            let mut p = vec![5, 0, 0, flags, 0x10, 0, 0, 0];
            p.extend(frag_len.to_le_bytes());
            p.extend(0u16.to_le_bytes());
            p.extend(call_id.to_le_bytes());
            p.extend((u32::from(frag_len) - 24).to_le_bytes());
            p.extend(0u16.to_le_bytes());
            p.extend(9u16.to_le_bytes());
            p.resize(usize::from(frag_len), 0xab);
            out.extend(p);
        }
        out
    }

    /// A fragment header cut by a segment boundary is passed over once its
    /// head has come, like any other: the framer does not go on copying
    /// and parsing every later fragment whole. Counted as when the
    /// fragments arrive whole.
    #[test]
    fn a_header_cut_by_a_segment_does_not_make_the_framer_copy_what_follows() {
        let ctx = ConnCtx {
            ts: 0,
            client: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            client_port: 50000,
            server: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
            server_port: 6001,
        };
        let stream = [
            fragmented_request(1, 12, 4280),
            fragmented_request(2, 3, 4280),
        ]
        .concat();
        let run = |cuts: &[usize]| {
            let mut c = RpcConnection::new();
            let mut events = Vec::new();
            c.on_syn(0, 99);
            let (mut off, mut most_buffered) = (0, 0);
            for &end in cuts.iter().chain([stream.len()].iter()) {
                let seq = 100u32.wrapping_add(off as u32);
                c.on_segment(0, seq, &stream[off..end], 0, false, &ctx, &mut events);
                most_buffered = most_buffered.max(c.framers[0].buffered());
                off = end;
            }
            (c.summary(), c.framers[0].stats().pdus, most_buffered)
        };
        // Whole, in one segment: every fragment is framed from the chunk.
        let (whole, _, _) = run(&[]);
        assert_eq!((whole.pdus, whole.requests), (15, 2));
        // The first segment ends 10 bytes into the second fragment's
        // header; then 1,460-byte segments (the message's last ends it).
        let mut cuts = vec![4280 + 10];
        while cuts[cuts.len() - 1] + 1460 < stream.len() {
            cuts.push(cuts[cuts.len() - 1] + 1460);
        }
        let (cut, framed, most_buffered) = run(&cuts);
        assert_eq!(cut, whole);
        assert_eq!(framed, 0, "fragments copied through the framer");
        assert!(
            most_buffered < 24,
            "{most_buffered} bytes held between segments"
        );
    }

    /// #23: an endpoint-mapper request claiming a 65,535-byte fragment,
    /// trickled a segment at a time (its header cut in two as well), is
    /// passed over unread: the connection never holds more than a segment,
    /// the refusal is counted, and the framer stays in sync (a following
    /// bind is still read).
    #[test]
    fn a_call_claiming_a_huge_fragment_is_refused_not_buffered() {
        let ctx = ConnCtx {
            ts: 1,
            client: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            client_port: 50000,
            server: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
            server_port: 135,
        };
        for cut in [24, 10] {
            let mut pdu = head(0, true, 1, 0, OPNUM_EPT_MAP);
            pdu[8..10].copy_from_slice(&65_535u16.to_le_bytes());
            pdu.resize(65_535, 0x41);
            let mut c = RpcConnection::new();
            let mut events = Vec::new();
            c.on_syn(0, 99);
            let mut off = 0;
            let mut most = 0;
            let mut ends = vec![cut];
            while ends[ends.len() - 1] < pdu.len() {
                ends.push((ends[ends.len() - 1] + 600).min(pdu.len()));
            }
            for end in ends {
                let seq = 100u32.wrapping_add(off as u32);
                c.on_segment(0, seq, &pdu[off..end], 0, false, &ctx, &mut events);
                most = most.max(c.heap_bytes());
                off = end;
            }
            assert_eq!(c.refused_pdus(), 1, "cut at {cut}");
            // At most the cut header plus one segment (the framer keeps
            // that capacity, up to `FRAMER_KEEP`).
            assert!(most <= 10 + 600, "cut at {cut}: {most} bytes held");
            assert!(c.framers[0].is_idle());
        }
    }
}
