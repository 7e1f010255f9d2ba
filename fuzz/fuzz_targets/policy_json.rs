//! The policy JSON reader (`Policy::parse`: JSON, then validation of
//! groups, rules, pins, ports). Check: a policy it accepts answers a group
//! lookup; errors name their file.
#![no_main]
use exflow::policy::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::parse(text, "fuzz.json") {
        Ok(p) => {
            let _ = p.group_of(&"10.0.0.1".parse().unwrap());
            let _ = p.group_of(&"2001:db8::1".parse().unwrap());
        }
        Err(e) => assert_eq!(e.file, "fuzz.json"),
    }
});
