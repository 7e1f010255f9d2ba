//! [`LibpcapSource`]: the same inputs read through libpcap, copying each
//! frame into an owned per-batch buffer. Used to cross-check the native
//! reader and for `--reader libpcap`.

use std::fs;
use std::io::Read;
use std::mem;
use std::path::Path;
use std::sync::Arc;

use pcap::{Capture, Offline, Precision};

use super::filter::{dlt_to_link, FilterSet};
use super::merge::{Counters, MergeInput, Merger};
use super::native::{sniff, Magic};
use super::paths::{expand, InputSpec};
use super::{
    FrameBatch, FrameMeta, InputInfo, InputProblem, LinkType, OpenError, Source, SourceError,
};
use crate::Ts;

/// Frames from one or more captures read by libpcap, merged by timestamp.
pub struct LibpcapSource {
    merger: Merger<LibpcapInput>,
}

impl LibpcapSource {
    /// Opens `paths` (same conventions as [`super::FileSource::open`]) with
    /// an optional BPF `filter`; returns warnings about skipped files.
    pub fn open<P: AsRef<Path>>(
        paths: &[P],
        filter: Option<&str>,
    ) -> Result<(LibpcapSource, Vec<String>), SourceError> {
        let (specs, warnings) = expand(paths)?;
        let mut filters = FilterSet::new(filter);
        let mut inputs = Vec::with_capacity(specs.len());
        for spec in &specs {
            let input = LibpcapInput::open(spec)?;
            if input.link.is_supported() {
                filters.prepare(input.link)?;
            }
            inputs.push(input);
        }
        Ok((
            LibpcapSource {
                merger: Merger::new(inputs, filters),
            },
            warnings,
        ))
    }
}

impl Source for LibpcapSource {
    fn next_batch(&mut self, max_frames: usize) -> Option<FrameBatch> {
        self.merger.next_batch(max_frames)
    }

    fn inputs(&self) -> Vec<InputInfo> {
        self.merger.inputs()
    }
}

/// The current frame, copied out of libpcap's buffer.
#[derive(Clone, Copy, Debug, Default)]
struct Current {
    ts: Ts,
    caplen: u32,
    orig_len: u32,
}

struct LibpcapInput {
    path: String,
    format: &'static str,
    cap: Capture<Offline>,
    link: LinkType,
    links: Vec<LinkType>,
    counters: Counters,
    problem: Option<InputProblem>,
    done: bool,
    cur: Current,
    /// The current frame's bytes (libpcap reuses its buffer on every read).
    staging: Vec<u8>,
    /// Frames of the batch being built: (batch seq, buffer index, bytes).
    owned: Option<(u64, u16)>,
    owned_bytes: Vec<u8>,
    /// Estimated input offset of the next record (exact for pcap files).
    consumed: u64,
}

impl LibpcapInput {
    fn open(spec: &InputSpec) -> Result<LibpcapInput, OpenError> {
        let path = spec.display();
        let err = |message: String| OpenError {
            path: path.clone(),
            message,
        };
        let format = match spec {
            InputSpec::Stdin => "unknown",
            InputSpec::File(p) => match file_magic(p) {
                Some(Magic::Pcapng) => "pcapng",
                Some(Magic::Pcap { .. }) => "pcap",
                None => "unknown",
            },
        };
        let cap = Capture::from_file_with_precision(&path, Precision::Nano)
            .map_err(|e| err(libpcap_message(e)))?;
        let link = dlt_to_link(cap.get_datalink().0);
        if !link.is_supported() {
            return Err(err(format!(
                "unsupported link type {} ({})",
                link.0,
                link.name()
            )));
        }
        Ok(LibpcapInput {
            path: path.clone(),
            format,
            cap,
            link,
            links: vec![link],
            counters: Counters::default(),
            problem: None,
            done: false,
            cur: Current::default(),
            staging: Vec::new(),
            owned: None,
            owned_bytes: Vec::new(),
            consumed: if format == "pcapng" { 0 } else { 24 },
        })
    }

    /// Bytes a record of `caplen` takes in the file: exact for pcap, the
    /// size of an option-less enhanced packet block for pcapng.
    fn record_size(&self, caplen: u32) -> u64 {
        if self.format == "pcapng" {
            32 + ((u64::from(caplen) + 3) & !3)
        } else {
            16 + u64::from(caplen)
        }
    }
}

fn file_magic(path: &Path) -> Option<Magic> {
    let mut head = [0u8; 4];
    let mut file = fs::File::open(path).ok()?;
    file.read_exact(&mut head).ok()?;
    sniff(&head)
}

fn libpcap_message(e: pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(msg) => msg,
        other => other.to_string(),
    }
}

impl MergeInput for LibpcapInput {
    fn advance(&mut self, filters: &mut FilterSet) -> bool {
        while !self.done {
            let packet = match self.cap.next_packet() {
                Ok(p) => p,
                Err(pcap::Error::NoMorePackets) => {
                    self.done = true;
                    break;
                }
                Err(e) => {
                    let offset = self.consumed;
                    self.problem = Some(InputProblem {
                        offset,
                        message: format!(
                            "libpcap: {} (near byte {offset}; offset estimated from the records read)",
                            libpcap_message(e)
                        ),
                    });
                    self.done = true;
                    break;
                }
            };
            let secs = u64::try_from(packet.header.ts.tv_sec).unwrap_or(0);
            let nanos = u64::try_from(packet.header.ts.tv_usec).unwrap_or(0);
            let cur = Current {
                ts: secs.saturating_mul(1_000_000_000).saturating_add(nanos),
                caplen: packet.header.caplen,
                orig_len: packet.header.len,
            };
            self.staging.clear();
            self.staging.extend_from_slice(packet.data);
            self.consumed += self.record_size(cur.caplen);
            self.counters.count(cur.ts, cur.caplen, cur.orig_len);
            match filters.matches(self.link, &self.staging) {
                Ok(true) => {
                    self.counters.matched += 1;
                    self.cur = cur;
                    return true;
                }
                Ok(false) => {}
                Err(e) => {
                    self.problem = Some(InputProblem {
                        offset: self.consumed,
                        message: e.to_string(),
                    });
                    self.done = true;
                }
            }
        }
        false
    }

    fn ts(&self) -> Ts {
        self.cur.ts
    }

    fn emit(&mut self, batch: &mut FrameBatch, seq: u64, input: u16) -> bool {
        let buf = match self.owned {
            Some((s, idx)) if s == seq => idx,
            _ => {
                let Ok(idx) = u16::try_from(batch.buffers.len()) else {
                    return false;
                };
                // Placeholder, replaced by the filled buffer in finish_batch.
                batch.buffers.push(Arc::new(Vec::new().into()));
                self.owned = Some((seq, idx));
                self.owned_bytes.clear();
                idx
            }
        };
        let end = self.owned_bytes.len() + self.staging.len();
        let (Ok(offset), Ok(_)) = (u32::try_from(self.owned_bytes.len()), u32::try_from(end))
        else {
            return false; // the batch buffer is full; next batch
        };
        self.owned_bytes.extend_from_slice(&self.staging);
        batch.frames.push(FrameMeta {
            ts: self.cur.ts,
            buf,
            input,
            link: self.link,
            offset,
            caplen: u32::try_from(self.staging.len()).unwrap_or(u32::MAX),
            orig_len: self.cur.orig_len,
        });
        true
    }

    fn finish_batch(&mut self, batch: &mut FrameBatch, seq: u64) {
        if let Some((s, idx)) = self.owned {
            if s == seq {
                let capacity = self.owned_bytes.capacity();
                let bytes = mem::replace(&mut self.owned_bytes, Vec::with_capacity(capacity));
                if let Some(slot) = batch.buffers.get_mut(usize::from(idx)) {
                    *slot = Arc::new(bytes.into());
                }
            }
        }
    }

    fn link_types(&self) -> &[LinkType] {
        &self.links
    }

    fn info(&self) -> InputInfo {
        self.counters
            .info(&self.path, self.format, &self.links, self.problem.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{FileSource, ReaderOptions};
    use std::path::PathBuf;

    type Frame = (Ts, u32, u32, LinkType, Vec<u8>);

    fn drain(src: &mut dyn Source) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(batch) = src.next_batch(97) {
            for f in &batch.frames {
                out.push((f.ts, f.caplen, f.orig_len, f.link, batch.data(f).to_vec()));
            }
        }
        out
    }

    /// Every capture file under ../shared/captures (lab and public).
    fn shared_captures() -> Vec<PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/captures");
        let mut files = Vec::new();
        for group in ["lab", "public"] {
            let Ok(dirs) = fs::read_dir(root.join(group)) else {
                continue;
            };
            for dir in dirs.flatten() {
                let Ok(entries) = fs::read_dir(dir.path()) else {
                    continue;
                };
                for e in entries.flatten() {
                    let p = e.path();
                    let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
                    if ext == "pcap" || ext == "pcapng" {
                        files.push(p);
                    }
                }
            }
        }
        files.sort();
        files
    }

    #[test]
    fn native_matches_libpcap_on_shared_captures() {
        let files = shared_captures();
        if files.is_empty() {
            eprintln!("../shared/captures not present; nothing to compare");
            return;
        }
        for path in &files {
            let (mut native, _) = FileSource::open(&[path], None).expect("native open");
            let (mut lib, _) = LibpcapSource::open(&[path], None).expect("libpcap open");
            let a = drain(&mut native);
            let b = drain(&mut lib);
            let (ia, ib) = (&native.inputs()[0], &lib.inputs()[0]);
            assert_eq!(
                ia.problem.is_some(),
                ib.problem.is_some(),
                "{}: native {:?} libpcap {:?}",
                path.display(),
                ia.problem,
                ib.problem
            );
            assert_eq!(a.len(), b.len(), "{}", path.display());
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert_eq!(x, y, "{} frame {i}", path.display());
            }
            assert_eq!(ia.packets, ib.packets);
            assert_eq!(ia.bytes, ib.bytes);
            assert_eq!(ia.first_ts, ib.first_ts);
            assert_eq!(ia.last_ts, ib.last_ts);
        }
    }

    #[test]
    fn native_matches_libpcap_with_tiny_chunks_and_filter() {
        for path in shared_captures() {
            let opts = ReaderOptions {
                chunk_size: 200,
                ..ReaderOptions::default()
            };
            let (mut native, _) =
                FileSource::open_with(&[&path], Some("tcp port 135"), &opts).expect("native");
            let (mut lib, _) = LibpcapSource::open(&[&path], Some("tcp port 135")).expect("lib");
            let a = drain(&mut native);
            let b = drain(&mut lib);
            assert_eq!(a, b, "{}", path.display());
            assert_eq!(
                native.inputs()[0].packets_matched,
                lib.inputs()[0].packets_matched
            );
        }
    }

    /// Hand-built files (all pcap flavours, a cut-short file) read by both.
    #[test]
    fn native_matches_libpcap_on_hand_built_files() {
        let dir = std::env::temp_dir().join(format!("exflow-libpcap-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut paths = Vec::new();
        for (i, (be, nanos, link)) in [
            (false, false, 1u32),
            (true, false, 1),
            (false, true, 101),
            (true, true, 113),
        ]
        .into_iter()
        .enumerate()
        {
            let word = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
            let mut b = Vec::new();
            b.extend_from_slice(&word(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
            b.extend_from_slice(&word(0x0004_0002_u32.rotate_left(if be { 16 } else { 0 })));
            b.extend_from_slice(&[0; 8]);
            b.extend_from_slice(&word(65535));
            b.extend_from_slice(&word(link));
            for r in 0..50u32 {
                let n = (r * 37) % 300;
                for v in [1_600_000_000 + r, r * 1001, n, n + r % 3] {
                    b.extend_from_slice(&word(v));
                }
                b.extend((0..n).map(|x| (x ^ r) as u8));
            }
            if i == 3 {
                b.truncate(b.len() - 7); // cut the last record short
            }
            let path = dir.join(format!("f{i}.pcap"));
            fs::write(&path, &b).unwrap();
            paths.push(path);
        }
        for path in &paths {
            let (mut native, _) = FileSource::open(&[path], None).unwrap();
            let (mut lib, _) = LibpcapSource::open(&[path], None).unwrap();
            assert_eq!(drain(&mut native), drain(&mut lib), "{}", path.display());
            let (a, b) = (&native.inputs()[0], &lib.inputs()[0]);
            assert_eq!(a.problem.is_some(), b.problem.is_some());
            if let (Some(pa), Some(pb)) = (&a.problem, &b.problem) {
                assert_eq!(pa.offset, pb.offset, "{pa:?} vs {pb:?}");
                assert!(pb.message.contains("estimated"), "{}", pb.message);
            }
        }
        // Merged: same order from both sources.
        let (mut native, _) = FileSource::open(&paths, Some("ip or ip6")).unwrap();
        let (mut lib, _) = LibpcapSource::open(&paths, Some("ip or ip6")).unwrap();
        assert_eq!(drain(&mut native), drain(&mut lib));
        let _ = fs::remove_dir_all(&dir);
    }
}
