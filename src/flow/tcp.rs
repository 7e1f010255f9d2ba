//! Zeek-compatible TCP bookkeeping: per-endpoint states, the `history`
//! letters and the `conn_state` summary.
//!
//! Modelled on Zeek's `TCP_Analyzer::UpdateStateMachine` (src/analyzer/
//! protocol/tcp/TCP.cc) and `conn_state()` (scripts/base/protocols/conn/
//! main.zeek). Deliberate simplifications, all documented where they apply:
//!
//! * No role flipping: the table decides the originator once when the flow
//!   is created (a first-seen SYN-ACK makes its *receiver* the originator),
//!   so Zeek's SYN/SYN-ACK reversal and the `^` history letter never occur.
//! * No sequence-number sanity checks (Zeek only raises weirds for those).
//! * Endpoint "size" (Zeek derives it from sequence numbers) is the sum of
//!   TCP payload lengths the endpoint sent; it only matters for REJ.
//! * History letters are recorded once each (Zeek repeats S/H/F/R when the
//!   sequence number changes and has log-scaled c/g/t/w letters; those are
//!   not modelled).

use crate::packet::tcp_flags::{ACK, FIN, RST, SYN};

use super::ConnState;

/// Zeek's per-endpoint TCP state (`TCP_ENDPOINT_*`).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ep {
    Inactive,
    SynSent,
    SynAckSent,
    Partial,
    Established,
    Closed,
    Reset,
}

impl Ep {
    /// Has moved beyond connection setup (Zeek's "answered" endpoints).
    #[inline]
    fn past_setup(self) -> bool {
        matches!(self, Ep::Partial | Ep::Established | Ep::Closed)
    }
}

/// Both endpoints' states; index 0 = originator, 1 = responder. `prev` is
/// Zeek's `prev_state` (needed for "FIN after the peer's FIN+RST").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Endpoints {
    pub state: [Ep; 2],
    prev: [Ep; 2],
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            state: [Ep::Inactive; 2],
            prev: [Ep::Inactive; 2],
        }
    }
}

impl Endpoints {
    #[inline]
    fn set(&mut self, i: usize, s: Ep) {
        self.prev[i] = self.state[i];
        self.state[i] = s;
    }

    /// FIN from both sides, or a RST from either: the connection is over
    /// (a new SYN on the tuple is a new connection).
    #[inline]
    pub fn is_closed(&self) -> bool {
        let [o, r] = self.state;
        (o == Ep::Closed && r == Ep::Closed) || o == Ep::Reset || r == Ep::Reset
    }

    /// Both sides progressed past setup (handshake completed, or both
    /// sides seen mid-stream).
    #[inline]
    pub fn is_answered(&self) -> bool {
        self.state[0].past_setup() && self.state[1].past_setup()
    }

    /// Apply one packet (Zeek's `UpdateStateMachine`). `len` is the TCP
    /// payload length.
    pub fn update(&mut self, is_orig: bool, flags: u8, len: u64) {
        let (e, p) = if is_orig { (0, 1) } else { (1, 0) };
        let syn = flags & SYN != 0;
        let fin = flags & FIN != 0;
        let rst = flags & RST != 0;
        let ack = flags & ACK != 0;
        match self.state[e] {
            Ep::Inactive => {
                if syn {
                    if is_orig {
                        self.set(e, if ack { Ep::SynAckSent } else { Ep::SynSent });
                    } else {
                        // A SYN (with or without ACK) from the responder
                        // establishes both sides that are waiting on it.
                        if self.state[p] == Ep::SynSent {
                            self.set(p, Ep::Established);
                        }
                        self.set(e, Ep::Established);
                    }
                }
                if fin {
                    self.set(e, Ep::Closed);
                }
                if rst {
                    self.set(e, Ep::Reset);
                }
                if self.state[e] == Ep::Inactive {
                    if !is_orig && len == 0 && self.state[0] == Ep::SynSent {
                        // Some stacks ACK a SYN before answering it: that
                        // does not make a partial connection.
                    } else if ack && self.state[p] == Ep::Established {
                        // Missed the SYN but saw the SYN-ACK: established.
                        self.set(e, Ep::Established);
                    } else {
                        self.set(e, Ep::Partial);
                    }
                }
            }
            Ep::SynSent | Ep::SynAckSent => {
                if fin {
                    self.set(e, Ep::Closed);
                }
                if rst {
                    self.set(e, Ep::Reset);
                }
            }
            Ep::Established | Ep::Partial => {
                if syn && !ack && self.state[e] == Ep::Partial && self.state[p] == Ep::Inactive {
                    self.set(e, Ep::SynSent);
                }
                if fin && !rst {
                    self.set(e, Ep::Closed);
                    if self.state[p] == Ep::Reset && self.prev[p] == Ep::Closed {
                        // Peer sent FIN then RST: that was a normal close.
                        self.set(p, Ep::Closed);
                    }
                }
                if rst {
                    self.set(e, Ep::Reset);
                }
            }
            Ep::Closed => {
                // After a FIN exchange, a RST does not change the outcome.
                if rst && self.state[p] != Ep::Closed {
                    self.set(e, Ep::Reset);
                }
            }
            Ep::Reset => {}
        }
    }

    /// Zeek's `conn_state()` for TCP. `sizes` are payload bytes sent by
    /// [originator, responder].
    pub fn conn_state(&self, sizes: [u64; 2], history: &History) -> ConnState {
        let [os, rs] = self.state;
        let inactive = |s: Ep| matches!(s, Ep::Inactive | Ep::Partial);
        let (o_inactive, r_inactive) = (inactive(os), inactive(rs));
        if rs == Ep::Reset {
            if matches!(os, Ep::SynSent | Ep::SynAckSent)
                || (os == Ep::Reset && sizes[0] == 0 && sizes[1] == 0)
            {
                ConnState::REJ
            } else if o_inactive {
                ConnState::RSTRH
            } else {
                ConnState::RSTR
            }
        } else if os == Ep::Reset {
            if r_inactive {
                if history.syn_then_reset() {
                    ConnState::RSTOS0
                } else {
                    ConnState::OTH
                }
            } else {
                ConnState::RSTO
            }
        } else if rs == Ep::Closed && os == Ep::Closed {
            ConnState::SF
        } else if os == Ep::Closed {
            if r_inactive {
                ConnState::SH
            } else {
                ConnState::S2
            }
        } else if rs == Ep::Closed {
            if o_inactive {
                ConnState::SHR
            } else {
                ConnState::S3
            }
        } else if os == Ep::SynSent && rs == Ep::Inactive {
            ConnState::S0
        } else if os == Ep::Established && rs == Ep::Established {
            ConnState::S1
        } else {
            ConnState::OTH
        }
    }
}

/// History letter codes; the responder's code is the originator's + 8.
pub(crate) mod letter {
    pub const S: u8 = 0;
    pub const H: u8 = 1;
    pub const A: u8 = 2;
    pub const D: u8 = 3;
    pub const F: u8 = 4;
    pub const R: u8 = 5;
    pub const I: u8 = 6;
    pub const Q: u8 = 7;
    pub const RESP: u8 = 8;
}

const LETTERS: &[u8; 16] = b"SHADFRIQshadfriq";

/// Zeek's `history`, each letter at most once, in order of first
/// occurrence. 16 possible letters, so the order fits in 16 nibbles and the
/// set in 16 bits: 10 bytes, no allocation until rendered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct History {
    seen: u16,
    order: u64,
}

impl History {
    pub fn from_parts(seen: u16, order: u64) -> History {
        History { seen, order }
    }

    pub fn parts(&self) -> (u16, u64) {
        (self.seen, self.order)
    }

    #[inline]
    pub fn add(&mut self, code: u8) {
        let bit = 1u16 << code;
        if self.seen & bit == 0 {
            let n = self.seen.count_ones();
            self.order |= (code as u64) << (4 * n);
            self.seen |= bit;
        }
    }

    fn codes(&self) -> impl Iterator<Item = u8> + '_ {
        (0..self.seen.count_ones()).map(|i| ((self.order >> (4 * i)) & 0xf) as u8)
    }

    /// The letters, without a heap allocation.
    pub fn letters(&self) -> super::HistoryStr {
        let mut buf = [0u8; 16];
        let mut n = 0;
        for c in self.codes().take(16) {
            buf[n] = LETTERS[c as usize];
            n += 1;
        }
        super::HistoryStr::new(std::str::from_utf8(&buf[..n]).unwrap_or(""))
    }

    /// Zeek's RSTOS0 test `/\^?S[^HAFGIQ]*R.*/`: starts with the
    /// originator's SYN, and the originator's RST comes before any of its
    /// H, A, F, I, Q letters.
    pub fn syn_then_reset(&self) -> bool {
        let mut it = self.codes();
        if it.next() != Some(letter::S) {
            return false;
        }
        for c in it {
            match c {
                letter::R => return true,
                letter::H | letter::A | letter::F | letter::I | letter::Q => return false,
                _ => {}
            }
        }
        false
    }

    /// Record the letters of one TCP packet (Zeek's `update_history`).
    #[inline]
    pub fn add_tcp(&mut self, is_orig: bool, flags: u8, len: u64) {
        let off = if is_orig { 0 } else { letter::RESP };
        let syn = flags & SYN != 0;
        let fin = flags & FIN != 0;
        let rst = flags & RST != 0;
        let bits = syn as u8 + fin as u8 + rst as u8;
        if bits > 1 {
            self.add(off + if fin && rst { letter::I } else { letter::Q });
        } else if syn {
            self.add(
                off + if flags & ACK != 0 {
                    letter::H
                } else {
                    letter::S
                },
            );
        } else if fin {
            self.add(off + letter::F);
        } else if rst {
            self.add(off + letter::R);
        } else if len > 0 {
            self.add(off + letter::D);
        } else if flags & ACK != 0 {
            self.add(off + letter::A);
        }
    }
}
