//! The flow table's buffering application parsers — connection-oriented
//! DCE/RPC and RFC 1006 — and the one rule that bounds them (#23):
//!
//! * **Slots.** At most `max_rpc_flows_per_shard` flows of a table have a
//!   parser at once (connectionless DCE/RPC included). When every slot is
//!   taken, a newcomer takes the slot of a parser that misbehaved (a
//!   DCE/RPC PDU refused as oversized) or has made no progress (no whole
//!   PDU or TPKT) for [`PARSER_STALLED_AFTER`], the worst first; when every
//!   parser behaves, the newcomer goes without (counted). So slots go to
//!   connections that behave, not to the first comers.
//! * **Bytes.** Each kind has a byte budget per table
//!   (`max_rpc_bytes_per_shard`, `max_rfc1006_bytes_per_shard`) over its
//!   parsers' structs and their counted heap. Past it, the parser holding
//!   most (ties to the lower slot) first gives up waiting for its holes
//!   when it can (out-of-order bytes delivered, holes declared, as at the
//!   end of a flow), else loses its parser (counted).
//!
//! SMB connections (named pipes, #24) are DCE/RPC parsers here: same
//! slots, same budget and counters (their pipes' connections are counted
//! in their heap).
//!
//! A parser that loses its slot is not probed again (it would take the
//! slot back); the flow goes on without one.

use super::super::{AppState, AppStats, PARSER_STALLED_AFTER};
use super::{FlowTable, APP_PROBE_SHIFT, MAX_APP_PROBES};
use crate::flow::rpc_conn::RpcConnection;
use crate::flow::Rfc1006Flow;
use crate::Ts;

/// What one DCE/RPC parser costs before it buffers anything: its box, and
/// the small vectors of its call state once used (contexts, binds and calls
/// pending: about 1 KB together).
const RPC_STRUCT_BYTES: usize = std::mem::size_of::<RpcConnection>() + 1024;

/// What one RFC 1006 parser costs before it buffers anything.
const RFC1006_STRUCT_BYTES: usize = std::mem::size_of::<Rfc1006Flow>();

/// The kinds of parser that buffer bytes, each with its own budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ParserKind {
    Rpc,
    Rfc1006,
}

impl ParserKind {
    fn struct_bytes(self) -> usize {
        match self {
            ParserKind::Rpc => RPC_STRUCT_BYTES,
            ParserKind::Rfc1006 => RFC1006_STRUCT_BYTES,
        }
    }

    /// This kind's counters in `stats`: (dropped for stalling, dropped over
    /// budget, peak bytes).
    fn counters(self, stats: &mut AppStats) -> (&mut u64, &mut u64, &mut u64) {
        match self {
            ParserKind::Rpc => (
                &mut stats.rpc_evicted_stalled,
                &mut stats.rpc_evicted_over_budget,
                &mut stats.rpc_bytes_peak,
            ),
            ParserKind::Rfc1006 => (
                &mut stats.rfc1006_evicted_stalled,
                &mut stats.rfc1006_evicted_over_budget,
                &mut stats.rfc1006_bytes_peak,
            ),
        }
    }
}

/// The flows of one kind that have a parser, and what those parsers hold.
#[derive(Debug, Default)]
pub(super) struct Pool {
    slots: Vec<u32>,
    /// Their structs plus their counted heap.
    bytes: usize,
}

/// Both kinds' pools.
#[derive(Debug, Default)]
pub(super) struct Pools {
    rpc: Pool,
    rfc1006: Pool,
}

impl Pools {
    fn get(&mut self, kind: ParserKind) -> &mut Pool {
        match kind {
            ParserKind::Rpc => &mut self.rpc,
            ParserKind::Rfc1006 => &mut self.rfc1006,
        }
    }
}

/// What the budget rule reads of a buffering parser.
struct Load {
    kind: ParserKind,
    accounted: usize,
    last_progress: Ts,
    misbehaved: bool,
}

impl AppState {
    fn load(&self) -> Option<Load> {
        match self {
            AppState::Rpc(rpc) => Some(Load {
                kind: ParserKind::Rpc,
                accounted: rpc.accounted,
                last_progress: rpc.last_progress(),
                misbehaved: rpc.refused_pdus() > 0,
            }),
            AppState::Rfc1006(r) => Some(Load {
                kind: ParserKind::Rfc1006,
                accounted: r.accounted,
                last_progress: r.last_progress,
                misbehaved: false,
            }),
            AppState::Smb(smb) => Some(Load {
                kind: ParserKind::Rpc,
                accounted: smb.accounted,
                last_progress: smb.last_progress(),
                misbehaved: smb.refused() > 0,
            }),
            AppState::RpcCl(_)
            | AppState::Label(_)
            | AppState::RpcDone(_)
            | AppState::SmbDone(_) => None,
        }
    }

    /// Counts the parser's heap anew: (kind, bytes counted before, now).
    fn recount(&mut self) -> Option<(ParserKind, usize, usize)> {
        let (kind, accounted, now) = match self {
            AppState::Rpc(rpc) => {
                let now = rpc.heap_bytes();
                (ParserKind::Rpc, &mut rpc.accounted, now)
            }
            AppState::Rfc1006(r) => {
                let now = r.heap_bytes();
                (ParserKind::Rfc1006, &mut r.accounted, now)
            }
            AppState::Smb(smb) => {
                // Its DCE/RPC pipes count in the DCE/RPC budget.
                let now = smb.heap_bytes();
                (ParserKind::Rpc, &mut smb.accounted, now)
            }
            AppState::RpcCl(_)
            | AppState::Label(_)
            | AppState::RpcDone(_)
            | AppState::SmbDone(_) => return None,
        };
        let before = std::mem::replace(accounted, now);
        Some((kind, before, now))
    }

    /// Stops waiting for the holes of its streams: delivers the bytes
    /// buffered beyond them. False when nothing was waiting (or the parser
    /// cannot).
    fn give_up_holes(&mut self) -> bool {
        let AppState::Rfc1006(r) = self else {
            return false;
        };
        if r.streams.iter().all(|s| s.buffered() == 0) {
            return false;
        }
        r.flush();
        true
    }
}

impl FlowTable {
    /// A new parser wants a slot at `now`: true when one is free or was
    /// freed from a parser that misbehaved or stalled.
    pub(super) fn claim_parser_slot(&mut self, now: Ts) -> bool {
        self.app_live < self.config.max_rpc_flows_per_shard || self.evict_stalled(now)
    }

    /// Slot `i` now has a buffering parser of `kind` (its state already in
    /// the flow): counts it, and sheds if that passes the budget.
    pub(super) fn adopt_parser(&mut self, i: u32, kind: ParserKind) {
        self.app_live += 1;
        let pool = self.pools.get(kind);
        pool.slots.push(i);
        pool.bytes += kind.struct_bytes();
        self.settle_parser(i);
    }

    /// After slot `i`'s parser took bytes: counts its heap anew, sheds past
    /// the budget, records the peak.
    pub(super) fn settle_parser(&mut self, i: u32) {
        let Some(kind) = self.recount_parser(i) else {
            return;
        };
        if self.pools.get(kind).bytes > self.budget(kind) {
            self.shed_over_budget(kind);
        }
        let held = self.pools.get(kind).bytes as u64;
        let peak = kind.counters(&mut self.stats.app).2;
        *peak = (*peak).max(held);
    }

    /// Counts slot `i`'s parser heap anew into its pool; its kind (`None`:
    /// no buffering parser there).
    fn recount_parser(&mut self, i: u32) -> Option<ParserKind> {
        let (kind, before, now) = self.slab[i as usize]
            .app
            .as_mut()
            .and_then(AppState::recount)?;
        let pool = self.pools.get(kind);
        pool.bytes = pool.bytes - before + now;
        Some(kind)
    }

    fn budget(&self, kind: ParserKind) -> usize {
        match kind {
            ParserKind::Rpc => self.config.max_rpc_bytes_per_shard,
            ParserKind::Rfc1006 => self.config.max_rfc1006_bytes_per_shard,
        }
    }

    /// Forgets slot `i`'s buffering parser in the pools (the flow is ending
    /// or losing it); its state stays in the flow. The kind it had.
    pub(super) fn unaccount_parser(&mut self, i: u32) -> Option<ParserKind> {
        let load = self.slab[i as usize].app.as_ref()?.load()?;
        let pool = self.pools.get(load.kind);
        pool.bytes -= load.kind.struct_bytes() + load.accounted;
        if let Some(k) = pool.slots.iter().position(|&s| s == i) {
            pool.slots.swap_remove(k);
        }
        self.app_live -= 1;
        Some(load.kind)
    }

    /// Drops slot `i`'s buffering parser: the flow goes on without one and
    /// is not probed again. An RFC 1006 connection keeps what its parser
    /// learnt (TSAPs, outcome, classification, TPDUs so far) as its label;
    /// a DCE/RPC one keeps nothing (its events were emitted as they came).
    fn drop_parser(&mut self, i: u32) {
        if self.unaccount_parser(i).is_some() {
            let f = &mut self.slab[i as usize];
            f.app = match f.app.take() {
                Some(AppState::Rfc1006(r)) => r.into_label().map(AppState::Label),
                // An SMB connection keeps its label (and what its parser
                // counted); what its pipes read is lost.
                Some(AppState::Smb(s)) => Some(AppState::Label(s.into_label())),
                _ => None,
            };
            f.flags |= MAX_APP_PROBES << APP_PROBE_SHIFT;
        }
    }

    /// Slot `i`'s connection is closed (FIN both ways, or a reset) and its
    /// streams wait for no hole: its parser has nothing left to read. It
    /// ends now as it would when the flow ends — buffered bytes delivered,
    /// events emitted (the correlator takes events in any order), what it
    /// read kept for the flow's record — and gives its slot and buffers
    /// back. Closed flows stay in the table for the closed timeout (10 s);
    /// holding their parsers that long left most DCE/RPC connections of a
    /// flow-heavy capture unparsed (#20: 168,092 `over_cap` of 191,058).
    pub(super) fn retire_parser(&mut self, i: u32) {
        let waiting = match &self.slab[i as usize].app {
            Some(AppState::Rpc(rpc)) => rpc.waiting_for_holes(),
            Some(AppState::Rfc1006(r)) => r.waiting_for_holes(),
            Some(AppState::Smb(s)) => s.waiting_for_holes(),
            _ => return,
        };
        if waiting || self.unaccount_parser(i).is_none() {
            return;
        }
        let f = &mut self.slab[i as usize];
        let ctx = f.conn_ctx(f.last_ts);
        f.app = match f.app.take() {
            Some(AppState::Rpc(mut rpc)) => {
                rpc.finish(&ctx, &mut self.events);
                Some(AppState::RpcDone(Box::new(rpc.summary())))
            }
            Some(AppState::Rfc1006(r)) => r.into_label().map(AppState::Label),
            Some(AppState::Smb(s)) => Some(AppState::SmbDone(Box::new(
                s.finish(&ctx, &mut self.events),
            ))),
            other => other,
        };
        // Not probed again: a later segment is no start of a conversation.
        f.flags |= MAX_APP_PROBES << APP_PROBE_SHIFT;
    }

    /// Every slot is taken: drops the parser that misbehaved or made no
    /// progress for [`PARSER_STALLED_AFTER`], the worst first (misbehaved,
    /// then the longest stalled; ties to the lower slot, so the choice
    /// depends on the packets alone). False when every parser behaves.
    fn evict_stalled(&mut self, now: Ts) -> bool {
        let mut best: Option<((bool, Ts, u32), ParserKind)> = None;
        for &i in self.pools.rpc.slots.iter().chain(&self.pools.rfc1006.slots) {
            let Some(load) = self.slab[i as usize].app.as_ref().and_then(AppState::load) else {
                continue;
            };
            if !load.misbehaved && now.saturating_sub(load.last_progress) < PARSER_STALLED_AFTER {
                continue;
            }
            let key = (!load.misbehaved, load.last_progress, i);
            if best.is_none_or(|(b, _)| key < b) {
                best = Some((key, load.kind));
            }
        }
        let Some(((_, _, i), kind)) = best else {
            return false;
        };
        self.drop_parser(i);
        *kind.counters(&mut self.stats.app).0 += 1;
        true
    }

    /// `kind`'s parsers hold more than their budget: the one holding most
    /// (ties to the lower slot) gives up waiting for its holes, or loses its
    /// parser when nothing was waiting, until they fit.
    fn shed_over_budget(&mut self, kind: ParserKind) {
        while self.pools.get(kind).bytes > self.budget(kind) {
            let mut best: Option<(usize, u32)> = None;
            for &i in &self.pools.get(kind).slots {
                if let Some(load) = self.slab[i as usize].app.as_ref().and_then(AppState::load) {
                    if best.is_none_or(|(held, slot)| {
                        (load.accounted, std::cmp::Reverse(i)) > (held, std::cmp::Reverse(slot))
                    }) {
                        best = Some((load.accounted, i));
                    }
                }
            }
            let Some((_, i)) = best else { return };
            let app = self.slab[i as usize].app.as_mut();
            if app.is_some_and(AppState::give_up_holes) {
                self.stats.app.rfc1006_holes_given_up += 1;
                if self.recount_parser(i).is_none() {
                    return;
                }
            } else {
                self.drop_parser(i);
                *kind.counters(&mut self.stats.app).1 += 1;
            }
        }
    }
}
