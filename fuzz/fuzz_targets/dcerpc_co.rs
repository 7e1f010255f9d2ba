//! Connection-oriented DCE/RPC: stream pieces (an empty piece is a gap) fed
//! to the `PduFramer`, each framed PDU parsed (`parse_pdu`), requests and
//! responses reassembled into calls (`CallReassembler`, small caps), and
//! whole calls' stubs decoded as the EPM and EMSMDB calls exflow reads.
//! Checks: a framed PDU is exactly its header's frag_length long, the
//! framer's buffer and the reassembler's calls stay under their bounds.
#![no_main]
use exflow::proto::dcerpc::{parse_header, parse_pdu, CallReassembler, PduFramer};
use exflow::proto::emsmdb::parse_register_push_notification;
use exflow::proto::epm::{parse_ept_lookup_request, parse_ept_map_request, parse_epm_response};
use exflow::proto::ndr::NdrSyntax;
use libfuzzer_sys::fuzz_target;

#[path = "../common.rs"]
mod common;

const MAX_CALLS: usize = 4;
const MAX_CALL_BYTES: usize = 8192;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let mut framer = PduFramer::new(0);
    if mode & 1 != 0 {
        framer.set_max_candidate(16 << 10);
    }
    let syntax = if mode & 2 != 0 { NdrSyntax::Ndr64 } else { NdrSyntax::Ndr20 };
    let mut calls = CallReassembler::new(MAX_CALL_BYTES, MAX_CALLS);
    for piece in common::pieces(data) {
        if piece.is_empty() {
            framer.gap();
            continue;
        }
        framer.push(piece);
        assert!(framer.buffered() <= 65535 + 16, "{} buffered", framer.buffered());
        while let Some(pdu) = framer.next_pdu() {
            let h = parse_header(pdu).expect("framed PDU without a header");
            assert_eq!(usize::from(h.frag_length), pdu.len());
            let Ok(p) = parse_pdu(pdu) else { continue };
            let _ = p.stub();
            if let Some(call) = calls.push(&p) {
                let le = call.little_endian;
                match call.opnum {
                    Some(3) => drop(parse_ept_map_request(&call.stub, syntax, le)),
                    Some(2) => drop(parse_ept_lookup_request(&call.stub, syntax, le)),
                    Some(4) => drop(parse_register_push_notification(&call.stub, le)),
                    Some(_) => {}
                    None => {
                        let _ = parse_epm_response(2 + u16::from(mode >> 7), &call.stub, syntax, le);
                    }
                }
            }
            assert!(calls.in_progress() <= MAX_CALLS);
            assert!(calls.heap_bytes() <= MAX_CALLS * 2 * MAX_CALL_BYTES.max(65536));
        }
        if mode & 4 != 0 {
            framer.release(16 << 10);
        }
    }
});
