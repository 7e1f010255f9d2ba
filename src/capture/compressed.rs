//! Compressed captures (`capture.pcap.gz`, `capture.pcapng.zst`): known by
//! their first bytes, not their names, and read through a decoder as a
//! stream (no mapping, no progress percentage). Gzip members and zstd
//! frames may be concatenated (`cat a.gz b.gz`, pzstd), as their own tools
//! accept. Pure-Rust decoders (flate2, ruzstd): nothing to install.

use std::io::{self, BufRead, BufReader, Read};

/// A compression format recognised at the start of an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    Gzip,
    Zstd,
}

impl Compression {
    /// The format whose magic `head` starts with, if any.
    pub(crate) fn sniff(head: &[u8]) -> Option<Compression> {
        match head {
            [0x1f, 0x8b, ..] => Some(Compression::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The decompressed bytes of `r`.
    pub(crate) fn decoder(self, r: Box<dyn Read + Send>) -> Box<dyn Read + Send> {
        match self {
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(r))),
            Compression::Zstd => Box::new(ZstdFrames {
                frame: None,
                source: Some(BufReader::new(r)),
            }),
        }
    }
}

/// Every zstd frame of a stream, one after another (ruzstd's decoder reads
/// one frame).
struct ZstdFrames {
    frame: Option<
        ruzstd::decoding::StreamingDecoder<
            BufReader<Box<dyn Read + Send>>,
            ruzstd::decoding::FrameDecoder,
        >,
    >,
    /// The stream between frames.
    source: Option<BufReader<Box<dyn Read + Send>>>,
}

impl Read for ZstdFrames {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(frame) = &mut self.frame {
                let n = frame.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                let done = self.frame.take().map(|f| f.into_inner());
                self.source = done;
            }
            let Some(mut source) = self.source.take() else {
                return Ok(0);
            };
            if source.fill_buf()?.is_empty() {
                return Ok(0);
            }
            let frame = ruzstd::decoding::StreamingDecoder::new(source)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}")))?;
            self.frame = Some(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
    }

    fn read_all(c: Compression, bytes: Vec<u8>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        c.decoder(Box::new(Cursor::new(bytes)))
            .read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn concatenated_members_and_frames_are_read_whole() {
        let (a, b) = (vec![7u8; 100_000], b"second part".to_vec());
        let whole: Vec<u8> = a.iter().chain(&b).copied().collect();
        for (c, pack) in [
            (Compression::Gzip, gzip as fn(&[u8]) -> Vec<u8>),
            (Compression::Zstd, zstd),
        ] {
            let one = pack(&whole);
            assert_eq!(Compression::sniff(&one), Some(c));
            assert_eq!(read_all(c, one).unwrap(), whole, "{c:?}");
            let two: Vec<u8> = pack(&a).into_iter().chain(pack(&b)).collect();
            assert_eq!(read_all(c, two).unwrap(), whole, "{c:?} concatenated");
            // Cut short: an error, not a silent end.
            let mut cut = pack(&whole);
            cut.truncate(cut.len() / 2);
            assert!(read_all(c, cut).is_err(), "{c:?} cut short");
        }
        assert_eq!(Compression::sniff(&[0xd4, 0xc3, 0xb2, 0xa1]), None);
    }
}
