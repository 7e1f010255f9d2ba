//! A busy endpoint mapper (#20): 20,000 clients each ask it for NSPI and
//! connect to the port it names, one after the other within 4 s, every
//! conversation closed. More conversations than the 16,384 parser slots
//! (256 per table × 64) are open or lingering at once (closed flows stay
//! for the closed timeout, 10 s): a closed connection's parser ends when it
//! closes and gives its slot back, so every ept_map answer is read and
//! every hand-off is found, followed.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::pdus::ept_map_answer_at;
use common::*;
use exflow_testkit::{Link, PcapWriter, TcpConversation};

const CLIENTS: u32 = 20_000;
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 40);
const T0: u64 = 1_795_305_697_000_000_000;
const US: u64 = 1_000;

fn client(k: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, (k >> 16) as u8, (k >> 8) as u8, k as u8))
}

#[test]
fn every_handoff_of_a_busy_mapper_is_found() {
    let p = tmp_path("busy-mapper.pcap");
    let mut w = PcapWriter::create(&p, Link::Ethernet, 65535, false).unwrap();
    let answer = ept_map_answer_at(Ipv4Addr::UNSPECIFIED, 4997);
    let mut t = T0;
    for k in 0..CLIENTS {
        let mut c = TcpConversation::new(client(k), 40000, IpAddr::V4(SERVER), 135);
        let mut frames = epm_request(&mut c);
        frames.extend([c.data_s2c(&answer), c.fin_c(), c.fin_s(), c.ack()]);
        let mut f = TcpConversation::new(client(k), 40001, IpAddr::V4(SERVER), 4997);
        frames.extend([f.syn(), f.syn_ack(), f.ack(), f.fin_c(), f.fin_s(), f.ack()]);
        for frame in frames {
            t += 15 * US;
            w.write_packet(t, &frame).unwrap();
        }
    }
    w.flush().unwrap();
    drop(w);
    let r = analyze_json(&[path_str(&p)], &[0, 1]);
    let _ = std::fs::remove_file(&p);

    let d = &r["stats"]["dcerpc"];
    assert_eq!(d["over_cap"], 0, "{d}");
    assert_eq!(d["parsed_flows"], u64::from(CLIENTS), "{d}");
    let h = r["handoffs"].as_array().unwrap();
    assert_eq!(h.len(), CLIENTS as usize);
    assert!(h.iter().all(|h| h["followed"] == true && h["port"] == 4997));
    // The mapper conversations keep what their parsers read.
    let read = r["flows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["server_port"] == 135 && f["rpc"]["epm_answers"] == 1)
        .count();
    assert_eq!(read, CLIENTS as usize);
}
