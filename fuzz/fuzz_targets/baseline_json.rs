//! The baseline JSON reader (`Baseline::parse`). Checks: a baseline it
//! accepts round-trips (written by `to_json`, read back: the same
//! baseline), and the policy `baseline to-policy` writes from it is one
//! `Policy::parse` accepts.
#![no_main]
use exflow::baseline::to_policy::policy_json;
use exflow::baseline::Baseline;
use exflow::policy::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(b) = Baseline::parse(text, "fuzz.json") else {
        return;
    };
    let json = b.to_json();
    let again = Baseline::parse(&json, "again.json").expect("a written baseline is read back");
    assert_eq!(b, again, "baseline round trip");
    let policy = policy_json(&b, "fuzz", None);
    if let Err(e) = Policy::parse(&policy, "to-policy.json") {
        panic!("to-policy wrote a policy the reader refuses: {e}\n{policy}");
    }
});
