//! RFC 1006 / COTP: stream pieces of both directions (an empty piece is a
//! gap) through `Rfc1006Conn`, and the same bytes one at a time through a
//! second connection. Checks: segmentation does not matter (both summaries
//! equal when there were no gaps), the framers' buffers stay under their
//! bound; and each piece on its own through the pure parsers (TPKT, COTP,
//! SPDU, the user-data classifier).
#![no_main]
use exflow::proto::rfc1006::{
    classify_user_data, looks_like_tpkt, parse_cotp, parse_spdu, parse_tpkt, Rfc1006Conn,
    MAX_FRAMER_BUFFER,
};
use libfuzzer_sys::fuzz_target;

#[path = "../common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let mut conn = Rfc1006Conn::new();
    let mut bytewise = Rfc1006Conn::new();
    let mut gaps = false;
    for (i, piece) in common::pieces(data).into_iter().enumerate() {
        let dir = i & 1;
        if piece.is_empty() {
            conn.gap(dir);
            bytewise.gap(dir);
            gaps = true;
            continue;
        }
        conn.on_data(dir, piece);
        for b in piece.chunks(1) {
            bytewise.on_data(dir, b);
        }
        assert!(conn.buffered(dir) <= MAX_FRAMER_BUFFER);
        let _ = looks_like_tpkt(piece);
        if let Ok((_, tpdu)) = parse_tpkt(piece) {
            let _ = parse_cotp(tpdu);
        }
        let _ = parse_cotp(piece);
        let _ = parse_spdu(piece);
        let _ = classify_user_data(piece);
    }
    let (a, b) = (conn.summary(), bytewise.summary());
    if !gaps {
        assert_eq!(a.outcome, b.outcome);
        assert_eq!(a.application, b.application);
        assert_eq!(a.tpdus, b.tpdus);
        assert_eq!(a.cr, b.cr);
        assert_eq!(a.cc, b.cc);
    }
});
