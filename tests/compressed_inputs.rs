//! Gzip- and zstd-compressed captures are read directly (#21 point 4):
//! the report is the uncompressed file's, from a file, a directory or
//! standard input; one cut short is a partial input naming the file.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::*;
use serde_json::Value;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

/// The JSON report without what names or sizes the input file.
fn report(args: &[&str]) -> Value {
    let mut r = analyze_json(args, &[0, 1]);
    for i in r["inputs"].as_array_mut().unwrap() {
        let i = i.as_object_mut().unwrap();
        i.remove("path");
        i.remove("file_bytes");
    }
    r
}

#[test]
fn compressed_captures_give_the_same_report() {
    for capture in [
        "lab/dyn-drop/client-tap.pcap",
        "lab/rfc1006-allow/server-tap.pcap",
    ] {
        let plain_path = shared_captures().join(capture);
        let plain = std::fs::read(&plain_path).unwrap();
        let want = report(&[path_str(&plain_path)]);
        for (ext, packed) in [("gz", gzip(&plain)), ("zst", zstd(&plain))] {
            let dir = tmp_path(&format!("compressed-{ext}"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let p = dir.join(format!("capture.pcap.{ext}"));
            std::fs::write(&p, &packed).unwrap();
            assert_eq!(report(&[path_str(&p)]), want, "{capture}.{ext}");
            assert_eq!(
                report(&[path_str(&dir)]),
                want,
                "{capture}.{ext} in a directory"
            );
            // Standard input.
            let mut child = exflow()
                .args(["analyze", "--format", "json", "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(&packed).unwrap();
            let out = child.wait_with_output().unwrap();
            let mut r: Value = serde_json::from_slice(&out.stdout).unwrap();
            r["inputs"][0].as_object_mut().unwrap().remove("path");
            r["inputs"][0].as_object_mut().unwrap().remove("file_bytes");
            assert_eq!(r["flows"], want["flows"], "{capture}.{ext} on stdin");
            assert_eq!(r["findings"], want["findings"], "{capture}.{ext} on stdin");
            // Cut short: what was read is analyzed, the input says why it
            // ended, the exit code is 3. (Two members or frames, the second
            // cut in half: the first decodes whole whatever the format's
            // block size.)
            let pack = if ext == "gz" { gzip } else { zstd };
            let half = plain.len() / 2;
            let second = pack(&plain[half..]);
            let mut cut_bytes = pack(&plain[..half]);
            cut_bytes.extend_from_slice(&second[..second.len() / 2]);
            let cut = dir.join(format!("cut.pcap.{ext}"));
            std::fs::write(&cut, &cut_bytes).unwrap();
            let out = run(&["analyze", "--format", "json", path_str(&cut)]);
            assert_eq!(
                out.status.code(),
                Some(3),
                "{capture}.{ext} cut: {}",
                stderr(&out)
            );
            let r: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(r["inputs"][0]["complete"], false, "{}", r["inputs"][0]);
            let read = r["inputs"][0]["packets"].as_u64().unwrap();
            assert!(read > 0, "what was read is analyzed: {}", r["inputs"][0]);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
