//! Connectionless DCE/RPC (ncadg_ip_udp): one datagram through
//! `parse_cl_header` and the cheap `looks_like_dcerpc_cl` probe; an EPM
//! request or answer body is decoded as exflow would. Check: the body lies
//! inside the datagram, after the 80-byte header.
#![no_main]
use exflow::proto::dcerpc::{looks_like_dcerpc_cl, parse_cl_header, PacketType};
use exflow::proto::epm::{parse_ept_map_request, parse_epm_response};
use exflow::proto::ndr::NdrSyntax;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_dcerpc_cl(data);
    if let Ok(p) = parse_cl_header(data) {
        assert!(p.body.len() <= data.len() - 80);
        let le = p.drep[0] & 0x10 != 0;
        match p.ptype {
            PacketType::Request => drop(parse_ept_map_request(p.body, NdrSyntax::Ndr20, le)),
            PacketType::Response => drop(parse_epm_response(p.opnum, p.body, NdrSyntax::Ndr20, le)),
            _ => {}
        }
    }
});
