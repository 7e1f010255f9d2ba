//! The EMSMDB EcRRegisterPushNotification request stub (the call that names
//! the UDP port Exchange notifications go to), both byte orders. Check: the
//! cookie and the callback address borrowed from the stub fit in it, and
//! an address is only read out of a SOCKADDR long enough to hold it.
#![no_main]
use exflow::proto::emsmdb::parse_register_push_notification;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, stub)) = data.split_first() else {
        return;
    };
    if let Ok(r) = parse_register_push_notification(stub, mode & 1 == 0) {
        assert!(r.cookie.len() + r.callback_raw.len() <= stub.len());
        if r.callback.is_some() {
            assert!(r.callback_raw.len() >= 8);
        }
    }
});
