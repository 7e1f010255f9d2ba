//! Classic pcap and pcapng writers.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::{Link, Ts};

/// Classic pcap writer (little-endian, version 2.4).
pub struct PcapWriter<W: Write> {
    w: W,
    snaplen: u32,
    nanos: bool,
    link: Link,
    packets: u64,
}

impl PcapWriter<BufWriter<File>> {
    /// Creates `path` (buffered).
    pub fn create(
        path: impl AsRef<Path>,
        link: Link,
        snaplen: u32,
        nanos: bool,
    ) -> io::Result<Self> {
        let f = File::create(path)?;
        PcapWriter::new(BufWriter::with_capacity(1 << 20, f), link, snaplen, nanos)
    }
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header. `nanos` selects the nanosecond magic
    /// (0xa1b23c4d) instead of the microsecond one (0xa1b2c3d4).
    pub fn new(mut w: W, link: Link, snaplen: u32, nanos: bool) -> io::Result<Self> {
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&magic.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone, sigfigs = 0
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&(link.link_type() as u32).to_le_bytes());
        w.write_all(&h)?;
        Ok(PcapWriter {
            w,
            snaplen,
            nanos,
            link,
            packets: 0,
        })
    }

    pub fn link(&self) -> Link {
        self.link
    }

    /// Records written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Writes one frame; bytes beyond the snaplen are cut (orig_len keeps
    /// the full length).
    pub fn write_packet(&mut self, ts: Ts, data: &[u8]) -> io::Result<()> {
        self.write_packet_truncated(ts, data, data.len() as u32)
    }

    /// Writes `data` as the captured part of a frame of `orig_len` bytes on
    /// the wire (orig_len is raised to the captured length if smaller).
    pub fn write_packet_truncated(&mut self, ts: Ts, data: &[u8], orig_len: u32) -> io::Result<()> {
        let cap = data.len().min(self.snaplen as usize);
        let secs = (ts / 1_000_000_000) as u32;
        let frac = if self.nanos {
            (ts % 1_000_000_000) as u32
        } else {
            ((ts % 1_000_000_000) / 1_000) as u32
        };
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&secs.to_le_bytes());
        h[4..8].copy_from_slice(&frac.to_le_bytes());
        h[8..12].copy_from_slice(&(cap as u32).to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.max(cap as u32).to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(&data[..cap])?;
        self.packets += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }

    /// Flushes and returns the inner writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

/// Minimal pcapng writer: one section (SHB), interfaces (IDB) added on
/// demand, enhanced packet blocks (EPB). Little-endian.
pub struct PcapngWriter<W: Write> {
    w: W,
    /// (snaplen, nanos) per interface.
    ifaces: Vec<(u32, bool)>,
}

impl PcapngWriter<BufWriter<File>> {
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        let f = File::create(path)?;
        PcapngWriter::new(BufWriter::with_capacity(1 << 20, f))
    }
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the section header block.
    pub fn new(mut w: W) -> io::Result<Self> {
        let mut b = [0u8; 28];
        b[0..4].copy_from_slice(&0x0a0d_0d0au32.to_le_bytes());
        b[4..8].copy_from_slice(&28u32.to_le_bytes());
        b[8..12].copy_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        b[12..14].copy_from_slice(&1u16.to_le_bytes());
        b[14..16].copy_from_slice(&0u16.to_le_bytes());
        b[16..24].copy_from_slice(&(-1i64).to_le_bytes());
        b[24..28].copy_from_slice(&28u32.to_le_bytes());
        w.write_all(&b)?;
        Ok(PcapngWriter {
            w,
            ifaces: Vec::new(),
        })
    }

    /// Adds an interface (IDB); returns its id for [`Self::write_packet`].
    /// `nanos` writes `if_tsresol = 9`, else the default microseconds.
    pub fn add_interface(&mut self, link: Link, snaplen: u32, nanos: bool) -> io::Result<u32> {
        self.add_interface_with_filter(link, snaplen, nanos, None)
    }

    /// [`Self::add_interface`] with the capture filter the interface was
    /// captured through: its `if_filter` option, `(kind, bytes)` (kind 0:
    /// a libpcap filter string, 1: BPF byte code).
    pub fn add_interface_with_filter(
        &mut self,
        link: Link,
        snaplen: u32,
        nanos: bool,
        filter: Option<(u8, &[u8])>,
    ) -> io::Result<u32> {
        let mut b = Vec::with_capacity(32);
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes()); // length, patched below
        b.extend_from_slice(&link.link_type().to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&snaplen.to_le_bytes());
        if nanos {
            // if_tsresol: code 9, length 1, value 9, padding 3
            b.extend_from_slice(&9u16.to_le_bytes());
            b.extend_from_slice(&1u16.to_le_bytes());
            b.extend_from_slice(&[9, 0, 0, 0]);
        }
        if let Some((kind, bytes)) = filter {
            // if_filter: code 11, the kind byte then the filter, padded
            let len = 1 + bytes.len();
            b.extend_from_slice(&11u16.to_le_bytes());
            b.extend_from_slice(&(len as u16).to_le_bytes());
            b.push(kind);
            b.extend_from_slice(bytes);
            b.resize(b.len() + (4 - len % 4) % 4, 0);
        }
        if nanos || filter.is_some() {
            // opt_endofopt
            b.extend_from_slice(&[0, 0, 0, 0]);
        }
        let total = (b.len() + 4) as u32;
        b.extend_from_slice(&total.to_le_bytes());
        b[4..8].copy_from_slice(&total.to_le_bytes());
        self.w.write_all(&b)?;
        self.ifaces.push((snaplen, nanos));
        Ok((self.ifaces.len() - 1) as u32)
    }

    pub fn write_packet(&mut self, iface: u32, ts: Ts, data: &[u8]) -> io::Result<()> {
        self.write_packet_truncated(iface, ts, data, data.len() as u32)
    }

    /// Writes an EPB. Fails with `InvalidInput` for an unknown interface.
    pub fn write_packet_truncated(
        &mut self,
        iface: u32,
        ts: Ts,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let &(snaplen, nanos) = self
            .ifaces
            .get(iface as usize)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "unknown interface"))?;
        let cap = if snaplen == 0 {
            data.len()
        } else {
            data.len().min(snaplen as usize)
        };
        let pad = (4 - cap % 4) % 4;
        let total = (32 + cap + pad) as u32;
        let units = if nanos { ts } else { ts / 1_000 };
        let mut h = [0u8; 28];
        h[0..4].copy_from_slice(&6u32.to_le_bytes());
        h[4..8].copy_from_slice(&total.to_le_bytes());
        h[8..12].copy_from_slice(&iface.to_le_bytes());
        h[12..16].copy_from_slice(&((units >> 32) as u32).to_le_bytes());
        h[16..20].copy_from_slice(&(units as u32).to_le_bytes());
        h[20..24].copy_from_slice(&(cap as u32).to_le_bytes());
        h[24..28].copy_from_slice(&orig_len.max(cap as u32).to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(&data[..cap])?;
        self.w.write_all(&[0u8; 3][..pad])?;
        self.w.write_all(&total.to_le_bytes())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }

    pub fn into_inner(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}
