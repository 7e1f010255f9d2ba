//! DCOM answers (#22): the string-binding arrays of ISystemActivator,
//! IRemoteActivation and IObjectExporter response stubs, both byte orders.
//! Checks beyond "no panic": every array found lies inside the stub, holds
//! at most its bounds ([`MAX_BINDINGS`] bindings, [`MAX_ARRAYS`] arrays),
//! every binding's address is at most [`MAX_ADDRESS`] characters, and
//! arrays do not overlap (each starts after the previous one).
#![no_main]
use exflow::proto::dcom::{
    parse_dcom_response, scan_dual_string_arrays, DcomOperation, MAX_ADDRESS, MAX_ARRAYS,
    MAX_BINDINGS,
};
use libfuzzer_sys::fuzz_target;

const OPS: [DcomOperation; 6] = [
    DcomOperation::RemoteGetClassObject,
    DcomOperation::RemoteCreateInstance,
    DcomOperation::RemoteActivation,
    DcomOperation::ResolveOxid,
    DcomOperation::ResolveOxid2,
    DcomOperation::ServerAlive2,
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, stub)) = data.split_first() else {
        return;
    };
    let le = mode & 1 == 0;
    let arrays = match parse_dcom_response(OPS[usize::from(mode >> 1) % OPS.len()], stub, le) {
        Ok(a) => {
            let _ = a.string_bindings();
            a.arrays
        }
        Err(_) => scan_dual_string_arrays(stub, le),
    };
    assert!(arrays.len() <= MAX_ARRAYS);
    let mut end = 0;
    for a in &arrays {
        assert!(a.offset >= end && a.offset < stub.len().max(1), "{} {}", a.offset, stub.len());
        end = a.offset + 4;
        assert!(a.string_bindings.len() <= MAX_BINDINGS);
        for b in &a.string_bindings {
            assert!(b.address.chars().count() <= MAX_ADDRESS);
            let _ = b.to_string();
        }
    }
});
