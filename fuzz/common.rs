//! Helpers shared by the fuzz targets (included with `#[path]`).
#![allow(dead_code)]

use exflow::capture::{FileSource, FrameBatch, InputInfo, ReaderOptions, Source};

/// One frame as read: (ts, link, caplen, orig_len, bytes).
pub type Frame = (u64, u16, u32, u32, Vec<u8>);

/// Every frame of `src` and its inputs' facts at the end.
pub fn drain(mut src: Box<dyn Source>) -> (Vec<Frame>, Vec<InputInfo>) {
    let mut frames = Vec::new();
    while let Some(b) = src.next_batch(64) {
        push_frames(&b, &mut frames);
    }
    (frames, src.inputs())
}

fn push_frames(b: &FrameBatch, out: &mut Vec<Frame>) {
    for f in &b.frames {
        out.push((f.ts, f.link.0, f.caplen, f.orig_len, b.data(f).to_vec()));
    }
}

/// The native reader over `bytes` as a stream read `chunk` bytes at a time.
pub fn native(bytes: &[u8], chunk: usize) -> Option<Box<dyn Source>> {
    let opts = ReaderOptions {
        chunk_size: chunk,
        map_window: None,
    };
    let r: Box<dyn std::io::Read + Send> = Box::new(std::io::Cursor::new(bytes.to_vec()));
    FileSource::from_readers(vec![("fuzz".to_owned(), r)], None, &opts)
        .ok()
        .map(|s| Box::new(s) as Box<dyn Source>)
}

/// Splits `data` into pieces: each piece's length is the next byte (0..=255)
/// followed by that many bytes (the last piece takes what is left).
pub fn pieces(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&n, rest)) = data.split_first() {
        let n = (n as usize).min(rest.len());
        out.push(&rest[..n]);
        data = &rest[n..];
    }
    out
}
