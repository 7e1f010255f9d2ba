//! The native reader against libpcap on the same bytes (written to a file,
//! as libpcap wants a path): when neither reports a problem, both read the
//! same records (count, link type, wire length, bytes — libpcap's cut to
//! the header's snaplen when a record holds more). Timestamps are not
//! compared: a record whose fraction field is out of range (≥ 10^6 µs)
//! is added up by the native reader and mangled by libpcap's precision
//! scaling, and neither calls it a problem.
#![no_main]
use exflow::capture::{LibpcapSource, Source};
use libfuzzer_sys::fuzz_target;

#[path = "../common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some(native) = common::native(data, 4096) else {
        return;
    };
    let (nf, ni) = common::drain(native);
    let path = std::env::temp_dir().join(format!("exflow-fuzz-{}.pcap", std::process::id()));
    std::fs::write(&path, data).unwrap();
    let lib = LibpcapSource::open(&[&path], None);
    let Ok((lib, _)) = lib else {
        let _ = std::fs::remove_file(&path);
        return;
    };
    let (lf, li) = common::drain(Box::new(lib) as Box<dyn Source>);
    // Link types 12 and 14 are raw IP (BSDs' DLT_RAW in old files): libpcap
    // says 101, the native reader keeps the number the file has.
    let raw = |l: u16| if l == 12 || l == 14 { 101 } else { l };
    let untimed = |v: Vec<common::Frame>| v.into_iter().map(|f| (raw(f.1), f.2, f.3, f.4)).collect::<Vec<_>>();
    let (nf, lf) = (untimed(nf), untimed(lf));
    let _ = std::fs::remove_file(&path);
    // libpcap reads one link type per file: compare plain files only.
    if ni[0].problem.is_none() && li[0].problem.is_none() && ni[0].link_types.len() == 1 {
        assert_eq!(nf.len(), lf.len(), "native {} records, libpcap {}", nf.len(), lf.len());
        for (k, (n, l)) in nf.iter().zip(&lf).enumerate() {
            assert_eq!((n.0, n.2), (l.0, l.2), "record {k}: link or wire length differ");
            // libpcap cuts a record longer than the header's snaplen to it;
            // the native reader keeps what the record holds.
            assert!(l.1 <= n.1 && n.3.starts_with(&l.3), "record {k}: bytes differ");
            if l.1 < n.1 {
                assert!(n.1 > 0 && l.1 == l.3.len() as u32);
            }
        }
    }
});
