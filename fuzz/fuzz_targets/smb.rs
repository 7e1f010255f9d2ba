//! SMB named pipes (#24): segments of both directions (each: two bytes,
//! the direction in the top bit and a 15-bit length, then that many bytes;
//! length 0 is a hole of one byte in that direction's stream) through
//! `flow::smb_pipe::SmbFlow` (NBSS framing, SMB2 / SMB1 pipe commands, the
//! pipes' DCE/RPC), then the parser finished; and each piece on its own
//! through the pure parsers of `proto::smb`. Checks: no panic, the heap
//! the parser holds stays under its bounds (two 64 KiB stream buffers, two
//! held messages, 16 pipes), events only over `ncacn_np`.
#![no_main]
use std::net::{IpAddr, Ipv4Addr};

use exflow::event::{Carrier, Event};
use exflow::flow::rpc_conn::ConnCtx;
use exflow::flow::smb_pipe::SmbFlow;
use exflow::flow::AppLabel;
use exflow::proto::smb;
use libfuzzer_sys::fuzz_target;

fn pure(piece: &[u8]) {
    let _ = smb::looks_like_smb(piece);
    let _ = smb::parse_nbss(piece);
    let body = piece.get(4..).unwrap_or(&[]);
    for (h, m) in smb::smb2_commands(body).flatten() {
        let _ = smb::smb2_create_request_name(m).map(|n| smb::pipe_name(n, true));
        let _ = smb::smb2_create_response_file_id(m);
        let _ = smb::smb2_write_request(m);
        let _ = smb::smb2_read_request_file_id(m);
        let _ = smb::smb2_read_response_data(m);
        let _ = smb::smb2_ioctl(m, h.is_response());
        let _ = smb::smb2_close_request_file_id(m);
        let _ = smb::smb2_tree_connect_share_type(m);
    }
    if let Ok(h) = smb::parse_smb1_header(body) {
        for b in smb::smb1_commands(body).flatten() {
            let _ = smb::smb1_nt_create_request_name(body, &b, h.unicode())
                .map(|n| smb::pipe_name(n, h.unicode()));
            let _ = smb::smb1_nt_create_response(&b);
            let _ = smb::smb1_write_andx_head(&b)
                .map(|(_, off, len)| smb::data_at(body, off, len));
            let _ = smb::smb1_read_andx_request_fid(&b);
            let _ = smb::smb1_read_andx_response_head(&b);
            let _ = smb::smb1_transaction_request_head(&b);
            let _ = smb::smb1_transaction_response_head(&b);
            let _ = smb::smb1_close_request_fid(&b);
            let _ = smb::smb1_tree_connect_is_ipc(&b);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let ctx = ConnCtx {
        ts: 1,
        client: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        client_port: 50000,
        server: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10)),
        server_port: 445,
    };
    let mut flow = Box::new(SmbFlow::new(AppLabel {
        service: "smb",
        detail: None,
        rfc1006: None,
        smb: None,
    }));
    let mut seq = [1000u32, 5000u32];
    flow.on_syn(0, seq[0] - 1);
    flow.on_syn(1, seq[1] - 1);
    let mut events: Vec<Event> = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 {
        let d = usize::from(rest[0] >> 7);
        let n = (usize::from(rest[0] & 0x7f) << 8 | usize::from(rest[1])).min(rest.len() - 2);
        let piece = &rest[2..2 + n];
        rest = &rest[2 + n..];
        if piece.is_empty() {
            seq[d] = seq[d].wrapping_add(1);
            continue;
        }
        flow.on_segment(d, seq[d], piece, 0, false, &ctx, &mut events);
        seq[d] = seq[d].wrapping_add(piece.len() as u32);
        pure(piece);
        assert!(flow.heap_bytes() < 4 << 20, "{} heap bytes", flow.heap_bytes());
    }
    let done = flow.finish(&ctx, &mut events);
    assert!(done.label.smb.is_some());
    for e in &events {
        if let Event::EpmAnswer(a) = e {
            assert_eq!(a.carrier, Carrier::NamedPipe);
        }
    }
});
