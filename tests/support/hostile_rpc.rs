//! Attack traffic of issue #23, shared by `tests/hostile_rpc.rs` and
//! `benches/hostile_rpc.rs`: `conns` connections to the endpoint mapper
//! (TCP 135) each bind it, then start an ept_map request whose header
//! claims a large fragment and trickle bytes of it, never finishing it. Half
//! claim 65,535 bytes; the other half claim 8,000 (under any sane per-PDU
//! cap, so only their lack of progress tells them apart). In the middle,
//! a real client asks the mapper for NSPI, gets its answer (TCP `port`) and
//! connects there.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use exflow_testkit::{Link, PcapWriter, TcpConversation};

pub const MS: u64 = 1_000_000;
pub const T0: u64 = 1_795_305_697_000_000_000;
pub const REAL_CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
pub const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
/// Rounds of trickled bytes per connection, 5 s apart.
pub const ROUNDS: u64 = 12;
/// Bytes per trickled segment (12 × 600 < 8,000: the smaller claims never
/// complete either).
pub const TRICKLE: usize = 600;

/// The real exchange's PDUs (bind, bind_ack, ept_map request, answer).
pub struct Exchange {
    pub bind: Vec<u8>,
    pub bind_ack: Vec<u8>,
    pub request: Vec<u8>,
    pub answer: Vec<u8>,
}

/// The start of an ept_map request (context 0, opnum 3) whose header
/// claims `frag_length` bytes.
fn claimed_request(frag_length: u16) -> Vec<u8> {
    let mut b = vec![5, 0, 0, 3, 0x10, 0, 0, 0];
    b.extend(frag_length.to_le_bytes());
    b.extend([0, 0]); // auth_length
    b.extend(1u32.to_le_bytes()); // call_id
    b.extend(u32::from(frag_length - 24).to_le_bytes()); // alloc_hint
    b.extend([0, 0, 3, 0]); // context 0, opnum 3
    b
}

fn attacker(k: u32) -> TcpConversation {
    // 10.0.0.0/8 clients, ports 1024.. : distinct 4-tuples.
    let host = 1 + k / 50_000;
    let a = Ipv4Addr::new(10, (host >> 8) as u8, host as u8, 1);
    let port = 1024 + (k % 50_000) as u16;
    TcpConversation::new(IpAddr::V4(a), port, IpAddr::V4(SERVER), 135)
}

/// What the attacking connections do after binding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// Claim a large fragment and trickle bytes of it (see the module docs).
    Trickle,
    /// Leave a one-byte hole and send the trickled bytes after it: out of
    /// order, never delivered, held by the stream reassembler.
    Gap,
    /// Send nothing more after the opening but bare ACKs (keep-alives):
    /// connections that hold a parser slot and make no progress.
    Idle,
}

/// Writes the capture; returns the packets written.
#[allow(dead_code)] // The bench calls `write_attack` only.
pub fn write(path: &Path, conns: u32, port: u16, ex: &Exchange) -> io::Result<u64> {
    write_attack(path, conns, port, ex, Attack::Trickle)
}

/// [`write`] with the attack of choice.
pub fn write_attack(
    path: &Path,
    conns: u32,
    port: u16,
    ex: &Exchange,
    attack: Attack,
) -> io::Result<u64> {
    let mut w = PcapWriter::create(path, Link::Ethernet, 65535, false)?;
    let mut convs: Vec<TcpConversation> = (0..conns).map(attacker).collect();
    let opening = |k: usize, c: &mut TcpConversation| {
        let claim = if k % 2 == 0 { 65_535 } else { 8_000 };
        let frames = vec![
            c.syn(),
            c.syn_ack(),
            c.ack(),
            c.data_c2s(&ex.bind),
            c.data_s2c(&ex.bind_ack),
        ];
        (frames, claimed_request(claim))
    };
    // The real exchange, 30 s in: every slot is long taken.
    let real = || {
        let mut c = TcpConversation::new(IpAddr::V4(REAL_CLIENT), 40000, IpAddr::V4(SERVER), 135);
        let mut f = TcpConversation::new(IpAddr::V4(REAL_CLIENT), 40001, IpAddr::V4(SERVER), port);
        vec![
            c.syn(),
            c.syn_ack(),
            c.ack(),
            c.data_c2s(&ex.bind),
            c.data_s2c(&ex.bind_ack),
            c.data_c2s(&ex.request),
            c.data_s2c(&ex.answer),
            c.fin_c(),
            c.fin_s(),
            c.ack(),
            f.syn(),
            f.syn_ack(),
            f.ack(),
        ]
    };
    write_timeline(&mut w, &mut convs, attack, opening, real)?;
    w.flush()?;
    Ok(w.packets())
}

/// The attack's timeline, whatever the protocol: every connection opens
/// within 2 s (`opening` gives its frames and the start of the message it
/// then trickles toward, sent for [`Attack::Trickle`]; [`Attack::Gap`]
/// leaves a one-byte hole instead), then [`ROUNDS`] rounds 5 s apart of
/// [`TRICKLE`] bytes from each, and in the middle the real client's
/// frames (`real`), 1 ms apart.
pub fn write_timeline<W: io::Write>(
    w: &mut PcapWriter<W>,
    convs: &mut [TcpConversation],
    attack: Attack,
    mut opening: impl FnMut(usize, &mut TcpConversation) -> (Vec<Vec<u8>>, Vec<u8>),
    real: impl FnOnce() -> Vec<Vec<u8>>,
) -> io::Result<()> {
    let mut t = T0;
    let step = (2_000 * MS / (convs.len() as u64).max(1)).max(1);
    for (k, c) in convs.iter_mut().enumerate() {
        let (frames, start) = opening(k, c);
        for f in frames {
            w.write_packet(t, &f)?;
        }
        match attack {
            Attack::Trickle => w.write_packet(t, &c.data_c2s(&start))?,
            Attack::Gap => c.next_c = c.next_c.wrapping_add(1),
            Attack::Idle => {}
        }
        t += step;
    }
    let trickle = vec![0x41u8; TRICKLE];
    let mut real = Some(real);
    for round in 0..ROUNDS {
        t = T0 + (round + 1) * 5_000 * MS;
        if round == ROUNDS / 2 {
            for f in real.take().map(|r| r()).unwrap_or_default() {
                t += MS;
                w.write_packet(t, &f)?;
            }
        }
        for c in convs.iter_mut() {
            let f = match attack {
                Attack::Idle => c.ack(),
                Attack::Trickle | Attack::Gap => c.data_c2s(&trickle),
            };
            w.write_packet(t, &f)?;
            t += step / 4;
        }
    }
    Ok(())
}
