//! EPM (endpoint mapper) stubs in NDR and NDR64, both byte orders: the
//! ept_map / ept_lookup requests and answers, single towers, the §2.5 tower
//! scan and the trailing status. There is no encoder to round-trip
//! through: the checks are that nothing panics, that an answer never holds
//! more towers than it has bytes, and (with `-malloc_limit_mb`, set by
//! scripts/fuzz) that no count the stub cannot hold is allocated for.
#![no_main]
use exflow::proto::epm::{
    parse_ept_lookup_request, parse_ept_lookup_response, parse_ept_map_request,
    parse_ept_map_response, parse_epm_response, parse_tower, scan_towers, trailing_status,
};
use exflow::proto::ndr::NdrSyntax;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, stub)) = data.split_first() else {
        return;
    };
    let syntax = if mode & 1 != 0 { NdrSyntax::Ndr64 } else { NdrSyntax::Ndr20 };
    let le = mode & 2 == 0;
    match (mode >> 2) & 7 {
        0 => drop(parse_ept_map_request(stub, syntax, le)),
        1 => drop(parse_ept_map_response(stub, syntax, le)),
        2 => drop(parse_ept_lookup_request(stub, syntax, le)),
        3 => drop(parse_ept_lookup_response(stub, syntax, le)),
        4 => {
            if let Ok(t) = parse_tower(stub) {
                let _ = t.endpoint();
            }
        }
        5 => {
            for t in scan_towers(stub) {
                let _ = t.endpoint();
            }
            let _ = trailing_status(stub, le);
        }
        _ => {
            if let Ok(a) = parse_epm_response(2 + u16::from(mode >> 7), stub, syntax, le) {
                assert!(a.towers.len() <= stub.len(), "{} towers from {} bytes", a.towers.len(), stub.len());
                for (t, _) in &a.towers {
                    let _ = t.endpoint();
                }
            }
        }
    }
});
