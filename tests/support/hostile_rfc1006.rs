//! RFC 1006 attack traffic of issue #23, shared by `tests/hostile_rfc1006.rs`
//! and `benches/hostile_rfc1006.rs`: N connections to TCP 102 open a COTP
//! connection (CR/CC), then send a TPKT whose length claims 65,535 bytes
//! and trickle bytes of it ([`Attack::Trickle`]), leave a hole and send
//! out-of-order bytes that never become in order ([`Attack::Gap`]), or keep
//! alive doing nothing ([`Attack::Idle`]); a real S7 connection comes 30 s
//! in. The timeline is the DCE/RPC one's (`hostile_rpc.rs`).

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use super::hostile::{write_timeline, Attack};
use super::pdus::hex;
use exflow_testkit::{Link, PcapWriter, TcpConversation};

pub const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);
pub const REAL_CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 20);

/// protocols.md §5 (lab rfc1006-allow): CR and its CC, TSAPs 0x0100 →
/// 0x0102, TPDU size 1024; an S7 setup in a DT.
const CR: &str = "03 00 00 16 11 e0 00 00 00 01 00 c0 01 0a c1 02 01 00 c2 02 01 02";
const CC: &str = "03 00 00 16 11 d0 00 01 00 02 00 c0 01 0a c1 02 01 00 c2 02 01 02";
const DT_S7_SETUP: &str =
    "03 00 00 19 02 f0 80 32 01 00 00 00 00 00 08 00 00 f0 00 00 01 00 01 01 e0";
/// The attackers' DT: its TPKT length claims 65,535 bytes.
const LYING_DT: &str = "03 00 ff ff 02 f0 80";

fn attacker(k: u32) -> TcpConversation {
    let host = 1 + k / 50_000;
    let a = Ipv4Addr::new(10, (host >> 8) as u8, host as u8, 2);
    let port = 1024 + (k % 50_000) as u16;
    TcpConversation::new(IpAddr::V4(a), port, IpAddr::V4(SERVER), 102)
}

/// The attackers' bytes, or (`control`) the same bytes with a TPKT version
/// of 4 instead of 3, which no RFC 1006 parser takes: the same packets and
/// flows without RFC 1006 parsing, for the bench's comparison.
fn attacker_bytes(s: &str, control: bool) -> Vec<u8> {
    let mut b = hex(s);
    if control {
        b[0] = 4;
    }
    b
}

/// Writes the capture of `conns` attackers and the real connection;
/// returns the packets written.
pub fn write(path: &Path, conns: u32, attack: Attack, control: bool) -> io::Result<u64> {
    let mut w = PcapWriter::create(path, Link::Ethernet, 65535, false)?;
    let (cr, cc) = (attacker_bytes(CR, control), attacker_bytes(CC, control));
    let mut convs: Vec<TcpConversation> = (0..conns).map(attacker).collect();
    let opening = |c: &mut TcpConversation, cr: &[u8], cc: &[u8]| {
        vec![
            c.syn(),
            c.syn_ack(),
            c.ack(),
            c.data_c2s(cr),
            c.data_s2c(cc),
        ]
    };
    let real = || {
        let mut c = TcpConversation::new(IpAddr::V4(REAL_CLIENT), 40000, IpAddr::V4(SERVER), 102);
        let mut frames = opening(&mut c, &hex(CR), &hex(CC));
        frames.extend([c.data_c2s(&hex(DT_S7_SETUP)), c.fin_c(), c.fin_s(), c.ack()]);
        frames
    };
    let lying = attacker_bytes(LYING_DT, control);
    write_timeline(
        &mut w,
        &mut convs,
        attack,
        |_, c| (opening(c, &cr, &cc), lying.clone()),
        real,
    )?;
    w.flush()?;
    Ok(w.packets())
}
