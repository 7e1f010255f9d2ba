//! The recent frames `exflow live --write-failed` keeps (#21 point 2): live
//! cannot read its input a second time, so the reader keeps the first
//! [`KEPT_BYTES`] of every frame (the headers exflow reads) in a ring
//! bounded in bytes, keyed by the flow's symmetric hash; when the stream
//! decides an attempt failed it takes that flow's frames out and writes
//! them. What the ring had to let go before it was asked is counted.

use std::collections::VecDeque;
use std::sync::Mutex;

use hashbrown::HashMap;

use crate::packet::LinkType;
use crate::Ts;

/// Bytes kept of each frame: Ethernet with two VLAN tags (22), the largest
/// IPv4 header (60) or IPv6 with a few extension headers, the largest TCP
/// header (60). A frame cut shorter decodes as truncated, which the
/// evidence writer cuts to its headers anyway.
pub const KEPT_BYTES: usize = 192;

/// One kept frame.
#[derive(Clone, Copy, Debug)]
pub struct KeptFrame {
    /// The symmetric hash of its flow (`FiveTuple::symmetric_hash`; for an
    /// ICMP error, the quoted flow's).
    pub hash: u64,
    pub ts: Ts,
    pub link: LinkType,
    pub orig_len: u32,
    len: u16,
    data: [u8; KEPT_BYTES],
}

impl KeptFrame {
    pub fn new(hash: u64, ts: Ts, link: LinkType, orig_len: u32, frame: &[u8]) -> KeptFrame {
        let n = frame.len().min(KEPT_BYTES);
        let mut data = [0u8; KEPT_BYTES];
        data[..n].copy_from_slice(&frame[..n]);
        KeptFrame {
            hash,
            ts,
            link,
            orig_len,
            len: n as u16,
            data,
        }
    }

    /// The kept bytes.
    pub fn data(&self) -> &[u8] {
        &self.data[..usize::from(self.len)]
    }
}

/// A flow whose frames are wanted: its hash and time span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub hash: u64,
    pub first_ts: Ts,
    pub last_ts: Ts,
}

/// The ring (shared by the reader, which pushes, and the stream, which
/// takes).
#[derive(Debug)]
pub struct EvidenceRing {
    cap: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    frames: VecDeque<KeptFrame>,
    /// Frames let go to stay within the cap.
    evicted: u64,
}

impl EvidenceRing {
    /// A ring of at most `bytes` of kept frames (at least one).
    pub fn new(bytes: usize) -> EvidenceRing {
        EvidenceRing {
            cap: (bytes / std::mem::size_of::<KeptFrame>()).max(1),
            inner: Mutex::default(),
        }
    }

    /// Adds a batch's frames (oldest first), letting the oldest go beyond
    /// the cap.
    pub fn push(&self, batch: &mut Vec<KeptFrame>) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.frames.extend(batch.drain(..));
        let over = g.frames.len().saturating_sub(self.cap);
        if over > 0 {
            g.frames.drain(..over);
            g.evicted += over as u64;
        }
    }

    /// Takes out the frames of the `wanted` flows within their spans (an
    /// ICMP error may come up to `after` later), in capture order.
    pub fn take(&self, wanted: &[Wanted], after: Ts) -> Vec<KeptFrame> {
        if wanted.is_empty() {
            return Vec::new();
        }
        let mut spans: HashMap<u64, Vec<(Ts, Ts)>> = HashMap::new();
        for w in wanted {
            spans
                .entry(w.hash)
                .or_default()
                .push((w.first_ts, w.last_ts.saturating_add(after)));
        }
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        g.frames.retain(|f| {
            let hit = spans
                .get(&f.hash)
                .is_some_and(|s| s.iter().any(|(a, b)| (*a..=*b).contains(&f.ts)));
            if hit {
                out.push(*f);
            }
            !hit
        });
        out
    }

    /// Frames let go to stay within the cap so far.
    pub fn evicted(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).evicted
    }

    /// Frames kept now.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .frames
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(hash: u64, ts: Ts) -> KeptFrame {
        KeptFrame::new(hash, ts, LinkType(1), 300, &[7u8; 300])
    }

    #[test]
    fn keeps_the_headers_takes_by_flow_and_span_and_counts_what_it_let_go() {
        let ring = EvidenceRing::new(3 * std::mem::size_of::<KeptFrame>());
        let mut batch = vec![frame(1, 10), frame(2, 20), frame(1, 30), frame(1, 40)];
        ring.push(&mut batch);
        assert!(batch.is_empty());
        // Three fit: the oldest went.
        assert_eq!((ring.len(), ring.evicted()), (3, 1));
        assert_eq!(frame(1, 0).data().len(), KEPT_BYTES);
        let got = ring.take(
            &[Wanted {
                hash: 1,
                first_ts: 25,
                last_ts: 30,
            }],
            5,
        );
        assert_eq!(got.iter().map(|f| f.ts).collect::<Vec<_>>(), [30]);
        // Taken frames are gone; the others stay.
        assert_eq!(ring.len(), 2);
        let got = ring.take(
            &[Wanted {
                hash: 1,
                first_ts: 0,
                last_ts: 35,
            }],
            5,
        );
        assert_eq!(got.iter().map(|f| f.ts).collect::<Vec<_>>(), [40]);
    }
}
