//! The native pcap / pcapng reader: parses records straight out of the
//! shared chunks of a [`ChunkReader`] and hands out frames that point into
//! them (no copy, no per-frame allocation).
//!
//! Every length in the input is untrusted: all slicing goes through checked
//! accessors, and any inconsistency ends the input with an [`InputProblem`]
//! carrying the byte offset of the offending record or block.
//!
//! Why not libpcap for files (`--reader libpcap` still reads through it, to
//! cross-check): libpcap copies every record into its own buffer, stops at
//! corruption without saying where, and ignores pcapng interface filters.
//! Measured on the `mixed` bench capture (10.4 M packets, `--threads 2`,
//! 2 runs each, BENCHMARKS.md "Session 10"): 3.6–4.0 s of CPU with this
//! reader, 4.8–4.9 s through libpcap.

use std::io;

use super::chunk::{ChunkInput, ChunkReader};
use super::filter::FilterSet;
use super::merge::{Counters, MergeInput};
use super::{FrameBatch, FrameMeta, InputInfo, InputProblem, InterfaceFilter, LinkType, OpenError};
use crate::Ts;

/// libpcap's default maximum snapshot length (`MAXIMUM_SNAPLEN`): captured
/// lengths above `max(snaplen, this)` are treated as corruption.
pub const DEFAULT_MAX_CAPLEN: u32 = 262_144;
/// Hard ceiling on a captured length, whatever the header's snaplen claims
/// (libpcap's largest per-link-type maximum is 128 MiB for D-Bus; 16 MiB
/// covers every link type we decode and bounds memory on hostile input).
pub const HARD_MAX_CAPLEN: u32 = 16 << 20;
/// Largest pcapng block accepted (libpcap starts at 16 MiB as well).
pub const MAX_BLOCK_LEN: u32 = HARD_MAX_CAPLEN + 4096;

const PCAP_HEADER_LEN: usize = 24;
const PCAP_RECORD_HEADER_LEN: usize = 16;
/// How far ahead of the record being parsed the reader prefetches (every
/// line, see [`prefetch_ahead_of`]): mapped page-cache pages are scattered
/// in memory, so the hardware prefetcher, which stops at page boundaries,
/// does not run ahead across them.
const READ_AHEAD: usize = 4096;

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 0x0000_0001;
const PB: u32 = 0x0000_0002;
const SPB: u32 = 0x0000_0003;
const EPB: u32 = 0x0000_0006;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// What the first bytes of an input say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Magic {
    Pcap { big_endian: bool, nanos: bool },
    Pcapng,
}

/// Recognizes a capture by its first four bytes.
pub(crate) fn sniff(head: &[u8]) -> Option<Magic> {
    let m: [u8; 4] = head.get(..4)?.try_into().ok()?;
    Some(match m {
        [0xd4, 0xc3, 0xb2, 0xa1] => Magic::Pcap {
            big_endian: false,
            nanos: false,
        },
        [0xa1, 0xb2, 0xc3, 0xd4] => Magic::Pcap {
            big_endian: true,
            nanos: false,
        },
        [0x4d, 0x3c, 0xb2, 0xa1] => Magic::Pcap {
            big_endian: false,
            nanos: true,
        },
        [0xa1, 0xb2, 0x3c, 0x4d] => Magic::Pcap {
            big_endian: true,
            nanos: true,
        },
        [0x0a, 0x0d, 0x0d, 0x0a] => Magic::Pcapng,
        _ => return None,
    })
}

/// Whether `head` (shorter than 4 bytes) could be the start of a magic.
fn is_magic_prefix(head: &[u8]) -> bool {
    const MAGICS: [[u8; 4]; 5] = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
        [0x0a, 0x0d, 0x0d, 0x0a],
    ];
    MAGICS.iter().any(|m| m.starts_with(head))
}

/// "3c 21 44 4f": the first bytes of an input, for error messages.
pub(crate) fn hex_prefix(head: &[u8]) -> String {
    let hex: Vec<String> = head.iter().take(4).map(|b| format!("{b:02x}")).collect();
    hex.join(" ")
}

#[inline]
fn u16_at(b: &[u8], at: usize, be: bool) -> u16 {
    match b.get(at..at + 2).and_then(|s| <[u8; 2]>::try_from(s).ok()) {
        Some(a) if be => u16::from_be_bytes(a),
        Some(a) => u16::from_le_bytes(a),
        None => 0,
    }
}

#[inline]
fn u32_at(b: &[u8], at: usize, be: bool) -> u32 {
    match b.get(at..at + 4).and_then(|s| <[u8; 4]>::try_from(s).ok()) {
        Some(a) if be => u32::from_be_bytes(a),
        Some(a) => u32::from_le_bytes(a),
        None => 0,
    }
}

#[inline]
fn u64_at(b: &[u8], at: usize, be: bool) -> u64 {
    match b.get(at..at + 8).and_then(|s| <[u8; 8]>::try_from(s).ok()) {
        Some(a) if be => u64::from_be_bytes(a),
        Some(a) => u64::from_le_bytes(a),
        None => 0,
    }
}

/// Rounds up to a multiple of 4 (pcapng padding), without overflow.
#[inline]
fn pad4(n: u32) -> u64 {
    (u64::from(n) + 3) & !3
}

/// The largest captured length accepted for a given snaplen.
fn max_caplen(snaplen: u32) -> u32 {
    snaplen.clamp(DEFAULT_MAX_CAPLEN, HARD_MAX_CAPLEN)
}

/// How a pcapng interface's timestamp units convert to nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TsScale {
    /// units × n (resolutions of 1 ns or coarser, power of 10).
    Mul(u64),
    /// units ÷ n (power of 10 finer than 1 ns).
    Div(u64),
    /// units × 10⁹ ÷ 2ⁿ.
    Pow2(u32),
}

impl TsScale {
    /// From the `if_tsresol` option byte; `None` when it is out of range.
    fn from_tsresol(v: u8) -> Option<TsScale> {
        let exp = u32::from(v & 0x7f);
        if v & 0x80 != 0 {
            return (exp <= 63).then_some(TsScale::Pow2(exp));
        }
        match exp {
            0..=9 => Some(TsScale::Mul(10u64.pow(9 - exp))),
            10..=19 => Some(TsScale::Div(10u64.pow(exp - 9))),
            _ => None,
        }
    }

    #[inline]
    fn to_ns(self, units: u64) -> u128 {
        match self {
            TsScale::Mul(m) => u128::from(units) * u128::from(m),
            TsScale::Div(d) => u128::from(units / d.max(1)),
            TsScale::Pow2(k) => (u128::from(units) * 1_000_000_000) >> k,
        }
    }
}

/// A pcapng interface (IDB) of the current section.
#[derive(Clone, Debug)]
struct Interface {
    link: LinkType,
    usable: bool,
    snaplen: u32,
    max_caplen: u32,
    scale: TsScale,
    /// `if_tsoffset`, in nanoseconds.
    offset_ns: i128,
}

impl Interface {
    #[inline]
    fn ts(&self, units: u64) -> Ts {
        let ns = self.scale.to_ns(units);
        if self.offset_ns == 0 {
            return u64::try_from(ns).unwrap_or(u64::MAX);
        }
        let shifted = i128::try_from(ns)
            .unwrap_or(i128::MAX)
            .saturating_add(self.offset_ns);
        u64::try_from(shifted.max(0)).unwrap_or(u64::MAX)
    }
}

/// Where a pcap record header keeps its two lengths. Files written by
/// libpcap before 0.4 (version 2.0 to 2.2) have the captured and original
/// lengths swapped, and some 2.3 files do; libpcap reads them that way
/// (`sf-pcap.c`, `lengths_swapped`), and so does this reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lengths {
    /// Version 2.4: captured length, then original length.
    InOrder,
    /// Version 2.0–2.2 (and 543.x, an old byte-order mix-up): swapped.
    Swapped,
    /// Version 2.3: swapped when the first is the larger.
    MaybeSwapped,
}

impl Lengths {
    /// The header's version (major, minor) → where its lengths are.
    fn of_version(major: u16, minor: u16) -> Lengths {
        match (major, minor) {
            (2, 0..=2) | (543, _) => Lengths::Swapped,
            (2, 3) => Lengths::MaybeSwapped,
            _ => Lengths::InOrder,
        }
    }

    /// (captured, original) from the record header's two fields.
    #[inline]
    fn read(self, first: u32, second: u32) -> (u32, u32) {
        match self {
            Lengths::InOrder => (first, second),
            Lengths::MaybeSwapped if first <= second => (first, second),
            Lengths::Swapped | Lengths::MaybeSwapped => (second, first),
        }
    }
}

/// Format-specific parse state.
#[derive(Debug)]
enum Format {
    Pcap {
        big_endian: bool,
        nanos: bool,
        link: LinkType,
        max_caplen: u32,
        lengths: Lengths,
    },
    Pcapng {
        big_endian: bool,
        interfaces: Vec<Interface>,
        /// Timestamp for simple packet blocks, which carry none.
        last_ts: Ts,
    },
}

/// One frame located in the current chunk.
#[derive(Clone, Copy, Debug)]
struct RawFrame {
    ts: Ts,
    link: LinkType,
    usable: bool,
    /// Offset of the first data byte inside the current chunk.
    offset: usize,
    caplen: u32,
    orig_len: u32,
    /// Input offset of the record or block (for problems found later).
    record_at: u64,
}

impl RawFrame {
    const NONE: RawFrame = RawFrame {
        ts: 0,
        link: LinkType::NULL,
        usable: false,
        offset: 0,
        caplen: 0,
        orig_len: 0,
        record_at: 0,
    };
}

fn problem(offset: u64, message: String) -> InputProblem {
    InputProblem { offset, message }
}

fn read_problem(offset: u64, e: &io::Error) -> InputProblem {
    problem(offset, format!("read error at byte {offset}: {e}"))
}

/// Describes an I/O error on opening or first read.
pub(crate) fn describe_io(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::IsADirectory => "is a directory".into(),
        _ => e.to_string(),
    }
}

/// A native reader over one input.
pub(crate) struct NativeInput {
    path: String,
    rd: ChunkReader,
    format: Format,
    link_types: Vec<LinkType>,
    counters: Counters,
    problem: Option<InputProblem>,
    done: bool,
    cur: RawFrame,
    /// (batch seq, chunk generation, buffer index) of the chunk last pushed.
    slot: Option<(u64, u64, u16)>,
    /// Interface description blocks read so far (all sections).
    idbs: u32,
    /// The capture filters of usable interfaces that had one.
    interface_filters: Vec<InterfaceFilter>,
}

impl NativeInput {
    /// Reads and checks the file header of `src`.
    pub(crate) fn open(
        path: &str,
        src: ChunkInput,
        chunk_size: usize,
    ) -> Result<NativeInput, OpenError> {
        let err = |message: String| OpenError {
            path: path.to_owned(),
            message,
        };
        let mut rd = ChunkReader::new(src, chunk_size);
        rd.ensure(PCAP_HEADER_LEN)
            .map_err(|e| err(describe_io(&e)))?;
        let head = rd.available();
        let (format, link_types) = match sniff(head) {
            None if head.is_empty() => Err("empty file (0 bytes)".to_owned()),
            None if is_magic_prefix(head) => Err(format!(
                "truncated file header: {} of at least 4 bytes present",
                head.len()
            )),
            None => Err(format!(
                "not a pcap or pcapng capture (first bytes: {})",
                hex_prefix(head)
            )),
            Some(Magic::Pcap { big_endian, nanos }) => open_pcap(&mut rd, big_endian, nanos),
            Some(Magic::Pcapng) => open_pcapng(&mut rd),
        }
        .map_err(err)?;
        Ok(NativeInput {
            path: path.to_owned(),
            rd,
            format,
            link_types,
            counters: Counters::default(),
            problem: None,
            done: false,
            cur: RawFrame::NONE,
            slot: None,
            idbs: 0,
            interface_filters: Vec::new(),
        })
    }

    /// "pcap" or "pcapng".
    fn format_name(&self) -> &'static str {
        match self.format {
            Format::Pcap { .. } => "pcap",
            Format::Pcapng { .. } => "pcapng",
        }
    }

    /// Ends the input with `p`.
    #[cold]
    fn fail(&mut self, p: InputProblem) {
        self.problem = Some(p);
        self.done = true;
    }

    /// The next frame in file order (any link type), `Ok(None)` at a clean end.
    #[inline]
    fn next_raw(&mut self) -> Result<Option<RawFrame>, InputProblem> {
        match &mut self.format {
            Format::Pcap {
                big_endian,
                nanos,
                link,
                max_caplen,
                lengths,
            } => next_pcap(
                &mut self.rd,
                *big_endian,
                *nanos,
                *link,
                *max_caplen,
                *lengths,
            ),
            Format::Pcapng { .. } => self.next_pcapng(),
        }
    }

    /// Walks pcapng blocks until the next packet.
    fn next_pcapng(&mut self) -> Result<Option<RawFrame>, InputProblem> {
        loop {
            let at = self.rd.offset();
            let ensured = self.rd.ensure(12).map_err(|e| read_problem(at, &e))?;
            let avail = self.rd.available();
            if !ensured {
                if avail.is_empty() {
                    return Ok(None);
                }
                return Err(problem(
                    at,
                    format!(
                        "truncated block header at byte {at}: {} of 12 bytes present",
                        avail.len()
                    ),
                ));
            }
            let Format::Pcapng {
                big_endian,
                interfaces,
                last_ts,
            } = &mut self.format
            else {
                return Ok(None);
            };
            if u32_at(avail, 0, false) == SHB {
                *big_endian = section_byte_order(avail, at)?;
            }
            let be = *big_endian;
            let btype = u32_at(avail, 0, be);
            let total = check_block_len(u32_at(avail, 4, be), at)?;
            let ensured = self.rd.ensure(total).map_err(|e| read_problem(at, &e))?;
            let avail = self.rd.available();
            prefetch_ahead_of(avail, total);
            let Some(block) = avail.get(..total).filter(|_| ensured) else {
                return Err(problem(
                    at,
                    format!(
                        "truncated block at byte {at}: total length says {total} bytes, only {} present (capture cut short?)",
                        avail.len()
                    ),
                ));
            };
            let trailing = u32_at(block, total - 4, be) as usize;
            if trailing != total {
                return Err(problem(
                    at,
                    format!("corrupt block at byte {at}: trailing length {trailing} does not match leading length {total}"),
                ));
            }
            let data_base = self.rd.pos();
            let frame = match btype {
                SHB => {
                    check_shb(block, be, at)?;
                    interfaces.clear();
                    None
                }
                IDB => {
                    let (iface, filter) = parse_idb(block, be, at)?;
                    if !self.link_types.contains(&iface.link) {
                        self.link_types.push(iface.link);
                    }
                    if let Some(expression) = filter.filter(|_| iface.usable) {
                        self.interface_filters.push(InterfaceFilter {
                            interface: self.idbs,
                            link: iface.link,
                            expression,
                        });
                    }
                    self.idbs = self.idbs.saturating_add(1);
                    interfaces.push(iface);
                    None
                }
                EPB | PB => Some(packet_block(block, btype, be, interfaces, at, data_base)?),
                SPB => Some(simple_packet_block(
                    block, be, interfaces, *last_ts, at, data_base,
                )?),
                _ => None,
            };
            self.rd.consume(total);
            if let Some(f) = frame {
                *last_ts = f.ts;
                return Ok(Some(f));
            }
        }
    }
}

impl MergeInput for NativeInput {
    fn progress(&self) -> Option<(u64, u64)> {
        let total = self.rd.total_len()?;
        Some((if self.done { total } else { self.rd.offset() }, total))
    }

    #[inline]
    fn advance(&mut self, filters: &mut FilterSet) -> bool {
        while !self.done {
            let f = match self.next_raw() {
                Ok(Some(f)) => f,
                Ok(None) => {
                    self.done = true;
                    break;
                }
                Err(p) => {
                    self.fail(p);
                    break;
                }
            };
            self.counters.count(f.ts, f.caplen, f.orig_len);
            if !f.usable {
                self.counters.unsupported += 1;
                continue;
            }
            let data = self
                .rd
                .chunk()
                .get(f.offset..f.offset + f.caplen as usize)
                .unwrap_or(&[]);
            match filters.matches(f.link, data) {
                Ok(true) => {
                    self.counters.matched += 1;
                    self.cur = f;
                    return true;
                }
                Ok(false) => {}
                Err(e) => self.fail(problem(
                    f.record_at,
                    format!("at byte {}: {e}", f.record_at),
                )),
            }
        }
        false
    }

    #[inline]
    fn ts(&self) -> Ts {
        self.cur.ts
    }

    #[inline]
    fn emit(&mut self, batch: &mut FrameBatch, seq: u64, input: u16) -> bool {
        let gen = self.rd.generation();
        let buf = match self.slot {
            Some((s, g, idx)) if s == seq && g == gen => idx,
            _ => {
                let Ok(idx) = u16::try_from(batch.buffers.len()) else {
                    return false;
                };
                batch.buffers.push(self.rd.chunk().clone());
                self.slot = Some((seq, gen, idx));
                idx
            }
        };
        let f = &self.cur;
        batch.frames.push(FrameMeta {
            ts: f.ts,
            buf,
            input,
            link: f.link,
            // Chunks are at most max(chunk size, MAX_BLOCK_LEN) bytes.
            offset: u32::try_from(f.offset).unwrap_or(u32::MAX),
            caplen: f.caplen,
            orig_len: f.orig_len,
        });
        true
    }

    fn link_types(&self) -> &[LinkType] {
        &self.link_types
    }

    fn info(&self) -> InputInfo {
        InputInfo {
            interface_filters: self.interface_filters.clone(),
            ..self.counters.info(
                &self.path,
                self.format_name(),
                &self.link_types,
                self.problem.as_ref(),
            )
        }
    }
}

/// Checks the 24-byte pcap file header.
fn open_pcap(
    rd: &mut ChunkReader,
    big_endian: bool,
    nanos: bool,
) -> Result<(Format, Vec<LinkType>), String> {
    let head = rd.available();
    if head.len() < PCAP_HEADER_LEN {
        return Err(format!(
            "truncated pcap file header: {} of {PCAP_HEADER_LEN} bytes present",
            head.len()
        ));
    }
    let snaplen = u32_at(head, 16, big_endian);
    let lengths = Lengths::of_version(u16_at(head, 4, big_endian), u16_at(head, 6, big_endian));
    // The upper bits hold FCS length flags; the link type is the low 16.
    let link = LinkType((u32_at(head, 20, big_endian) & 0xffff) as u16);
    if !link.is_supported() {
        return Err(unsupported(&[link]));
    }
    rd.consume(PCAP_HEADER_LEN);
    Ok((
        Format::Pcap {
            big_endian,
            nanos,
            link,
            max_caplen: max_caplen(snaplen),
            lengths,
        },
        vec![link],
    ))
}

fn unsupported(links: &[LinkType]) -> String {
    let names: Vec<String> = links
        .iter()
        .map(|l| format!("{} ({})", l.0, l.name()))
        .collect();
    format!("unsupported link type {}", names.join(", "))
}

/// Checks the first section header block and refuses a capture none of
/// whose leading interfaces has a supported link type. Consumes nothing:
/// the block loop parses the header again.
fn open_pcapng(rd: &mut ChunkReader) -> Result<(Format, Vec<LinkType>), String> {
    let head = rd.available();
    if head.len() < 12 {
        return Err(format!(
            "truncated pcapng section header block: {} of at least 28 bytes present",
            head.len()
        ));
    }
    let be = section_byte_order(head, 0).map_err(|p| p.message)?;
    let total = check_block_len(u32_at(head, 4, be), 0).map_err(|p| p.message)?;
    let ensured = rd.ensure(total).map_err(|e| describe_io(&e))?;
    let head = rd.available();
    let Some(block) = head.get(..total).filter(|_| ensured) else {
        return Err(format!(
            "truncated pcapng section header block: {} of {total} bytes present",
            head.len()
        ));
    };
    check_shb(block, be, 0).map_err(|p| p.message)?;
    let end = read_leading_blocks(rd, be).map_err(|e| describe_io(&e))?;
    let leading = leading_link_types(&rd.available()[..end], be);
    if !leading.is_empty() && !leading.iter().any(|l| l.is_supported()) {
        return Err(unsupported(&leading));
    }
    Ok((
        Format::Pcapng {
            big_endian: be,
            interfaces: Vec::new(),
            last_ts: 0,
        },
        dedup(leading),
    ))
}

fn dedup(links: Vec<LinkType>) -> Vec<LinkType> {
    let mut out: Vec<LinkType> = Vec::with_capacity(links.len());
    for l in links {
        if !out.contains(&l) {
            out.push(l);
        }
    }
    out
}

/// Blocks [`read_leading_blocks`] reads ahead at most, and the bytes.
const LEADING_BLOCKS: usize = 64;
const LEADING_BYTES: usize = 1 << 20;

/// Makes the blocks before the first packet of the first section available
/// whole (at most [`LEADING_BLOCKS`] of them, within [`LEADING_BYTES`]);
/// returns where they end. What the open decides from them (the link
/// types, refusing a file of unsupported ones) then does not depend on how
/// far the first chunk happened to reach.
fn read_leading_blocks(rd: &mut ChunkReader, be: bool) -> std::io::Result<usize> {
    let mut at = 0usize;
    for k in 0..LEADING_BLOCKS {
        if !rd.ensure(at + 8)? {
            break;
        }
        let hdr = &rd.available()[at..at + 8];
        let btype = u32_at(hdr, 0, be);
        let total = u32_at(hdr, 4, be) as usize;
        if total < 12
            || total % 4 != 0
            || at + total > LEADING_BYTES
            || (btype == SHB && k > 0)
            || matches!(btype, EPB | PB | SPB)
            || !rd.ensure(at + total)?
        {
            break;
        }
        at += total;
    }
    Ok(at)
}

/// The link types of the interfaces declared before the first packet of the
/// first section (as far as `data` reaches).
fn leading_link_types(data: &[u8], be: bool) -> Vec<LinkType> {
    let mut links = Vec::new();
    let mut at = 0usize;
    let mut first = true;
    while let Some(hdr) = data.get(at..at + 8) {
        let btype = u32_at(hdr, 0, be);
        let total = u32_at(hdr, 4, be) as usize;
        if total < 12 || total % 4 != 0 || (btype == SHB && !first) {
            break;
        }
        match btype {
            // Only an interface block the reader will accept too: else the
            // link types reported for a file cut short at a corrupt block
            // would depend on how far the first chunk reached.
            IDB => match data.get(at..at + total) {
                Some(b)
                    if u32_at(b, total - 4, be) as usize == total
                        && parse_idb(b, be, at as u64).is_ok() =>
                {
                    links.push(LinkType(u16_at(b, 8, be)))
                }
                _ => break,
            },
            EPB | PB | SPB => break,
            _ => {}
        }
        first = false;
        at += total;
    }
    links
}

/// Starts loading the `consumed` bytes that lie [`READ_AHEAD`] beyond the
/// start of `avail`, as a record or block of that length is consumed from
/// it: record after record these spans tile the input, so every line is
/// asked for once, well before the reader gets there. (One line per record
/// left the headers after large frames to miss the cache.)
#[inline(always)]
fn prefetch_ahead_of(avail: &[u8], consumed: usize) {
    if let Some(ahead) = avail.get(READ_AHEAD..) {
        crate::prefetch::bytes(ahead.as_ptr(), consumed.min(ahead.len()));
    }
}

/// One pcap record.
#[inline]
fn next_pcap(
    rd: &mut ChunkReader,
    be: bool,
    nanos: bool,
    link: LinkType,
    max_caplen: u32,
    lengths: Lengths,
) -> Result<Option<RawFrame>, InputProblem> {
    let at = rd.offset();
    let ensured = rd
        .ensure(PCAP_RECORD_HEADER_LEN)
        .map_err(|e| read_problem(at, &e))?;
    let avail = rd.available();
    if !ensured {
        if avail.is_empty() {
            return Ok(None);
        }
        return Err(problem(
            at,
            format!(
                "truncated record header at byte {at}: {} of {PCAP_RECORD_HEADER_LEN} bytes present",
                avail.len()
            ),
        ));
    }
    let secs = u64::from(u32_at(avail, 0, be));
    let frac = u64::from(u32_at(avail, 4, be));
    let (caplen, orig_len) = lengths.read(u32_at(avail, 8, be), u32_at(avail, 12, be));
    check_lengths("record", at, caplen, orig_len, max_caplen)?;
    let total = PCAP_RECORD_HEADER_LEN + caplen as usize;
    prefetch_ahead_of(avail, total);
    let ensured = rd.ensure(total).map_err(|e| read_problem(at, &e))?;
    if !ensured {
        let present = rd.available().len().saturating_sub(PCAP_RECORD_HEADER_LEN);
        return Err(problem(
            at,
            format!("truncated record at byte {at}: header says {caplen} captured bytes, only {present} present (capture cut short?)"),
        ));
    }
    let ts = secs * 1_000_000_000 + if nanos { frac } else { frac * 1_000 };
    let offset = rd.pos() + PCAP_RECORD_HEADER_LEN;
    rd.consume(total);
    Ok(Some(RawFrame {
        ts,
        link,
        usable: true,
        offset,
        caplen,
        orig_len,
        record_at: at,
    }))
}

/// Captured length sanity shared by pcap records and pcapng packet blocks.
#[inline]
fn check_lengths(
    what: &str,
    at: u64,
    caplen: u32,
    orig_len: u32,
    max_caplen: u32,
) -> Result<(), InputProblem> {
    if caplen > max_caplen {
        return Err(problem(
            at,
            format!("corrupt {what} at byte {at}: captured length {caplen} exceeds the maximum {max_caplen}"),
        ));
    }
    if caplen > orig_len {
        return Err(problem(
            at,
            format!("corrupt {what} at byte {at}: captured length {caplen} exceeds the original length {orig_len}"),
        ));
    }
    Ok(())
}

/// The byte order announced by a section header block starting `b`.
fn section_byte_order(b: &[u8], at: u64) -> Result<bool, InputProblem> {
    match u32_at(b, 8, false) {
        BYTE_ORDER_MAGIC => Ok(false),
        m if m.swap_bytes() == BYTE_ORDER_MAGIC => Ok(true),
        m => Err(problem(
            at,
            format!(
                "corrupt section header block at byte {at}: byte-order magic {} is neither 1a2b3c4d nor 4d3c2b1a",
                hex_prefix(&m.to_le_bytes())
            ),
        )),
    }
}

/// Validates a block total length; returns it as a usize.
fn check_block_len(total: u32, at: u64) -> Result<usize, InputProblem> {
    let why = if total % 4 != 0 {
        "is not a multiple of 4"
    } else if total < 12 {
        "is below the minimum 12"
    } else if total > MAX_BLOCK_LEN {
        return Err(problem(
            at,
            format!("corrupt block at byte {at}: total length {total} exceeds the maximum {MAX_BLOCK_LEN}"),
        ));
    } else {
        return Ok(total as usize);
    };
    Err(problem(
        at,
        format!("corrupt block at byte {at}: total length {total} {why}"),
    ))
}

fn check_shb(block: &[u8], be: bool, at: u64) -> Result<(), InputProblem> {
    if block.len() < 28 {
        return Err(problem(
            at,
            format!(
                "corrupt section header block at byte {at}: total length {} is below the minimum 28",
                block.len()
            ),
        ));
    }
    let major = u16_at(block, 12, be);
    if major != 1 {
        return Err(problem(
            at,
            format!("unsupported pcapng version {major} in section header block at byte {at}"),
        ));
    }
    Ok(())
}

/// An interface description block, and its capture filter (`if_filter`)
/// if it has one: `Some(Some(expression))` for a libpcap filter string,
/// `Some(None)` for another kind (BPF byte code).
fn parse_idb(
    block: &[u8],
    be: bool,
    at: u64,
) -> Result<(Interface, Option<Option<String>>), InputProblem> {
    if block.len() < 20 {
        return Err(problem(
            at,
            format!(
                "corrupt interface description block at byte {at}: total length {} is below the minimum 20",
                block.len()
            ),
        ));
    }
    let link = LinkType(u16_at(block, 8, be));
    let snaplen = u32_at(block, 12, be);
    let mut iface = Interface {
        link,
        usable: link.is_supported(),
        snaplen,
        max_caplen: max_caplen(snaplen),
        scale: TsScale::Mul(1_000),
        offset_ns: 0,
    };
    let mut filter = None;
    let options = block.get(16..block.len() - 4).unwrap_or(&[]);
    for (code, value) in Options::new(options, be) {
        match (code, value) {
            (11, [kind, text @ ..]) => filter = if_filter(*kind, text),
            (9, [v, ..]) => {
                iface.scale = TsScale::from_tsresol(*v).ok_or_else(|| {
                    problem(
                        at,
                        format!("unsupported if_tsresol 0x{v:02x} in interface description block at byte {at}"),
                    )
                })?;
            }
            (14, v) if v.len() == 8 => {
                let secs = u64_at(v, 0, be) as i64;
                iface.offset_ns = i128::from(secs) * 1_000_000_000;
            }
            _ => {}
        }
    }
    Ok((iface, filter))
}

/// The `if_filter` option: its first byte says the kind (0: a libpcap
/// filter string, 1: BPF byte code), the rest is the filter. A blank
/// string filters nothing.
fn if_filter(kind: u8, value: &[u8]) -> Option<Option<String>> {
    if kind != 0 {
        return Some(None);
    }
    let text = String::from_utf8_lossy(value);
    let text = text.trim_end_matches('\0').trim();
    (!text.is_empty()).then(|| Some(text.to_owned()))
}

/// Iterates over pcapng options (code, value), stopping at opt_endofopt or
/// at the first option that does not fit.
struct Options<'a> {
    data: &'a [u8],
    be: bool,
}

impl<'a> Options<'a> {
    fn new(data: &'a [u8], be: bool) -> Self {
        Options { data, be }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let code = u16_at(self.data, 0, self.be);
        let len = u16_at(self.data, 2, self.be);
        if code == 0 || self.data.len() < 4 {
            return None;
        }
        let value = self.data.get(4..4 + usize::from(len))?;
        let next = 4 + pad4(u32::from(len)) as usize;
        self.data = self.data.get(next..).unwrap_or(&[]);
        Some((code, value))
    }
}

/// An enhanced packet block (6) or an obsolete packet block (2).
#[inline]
fn packet_block(
    block: &[u8],
    btype: u32,
    be: bool,
    interfaces: &[Interface],
    at: u64,
    base: usize,
) -> Result<RawFrame, InputProblem> {
    const DATA: usize = 28;
    if block.len() < DATA + 4 {
        return Err(problem(
            at,
            format!(
                "corrupt packet block at byte {at}: total length {} is below the minimum 32",
                block.len()
            ),
        ));
    }
    let iface_id = if btype == EPB {
        u32_at(block, 8, be)
    } else {
        u32::from(u16_at(block, 8, be))
    };
    let units = (u64::from(u32_at(block, 12, be)) << 32) | u64::from(u32_at(block, 16, be));
    let caplen = u32_at(block, 20, be);
    let orig_len = u32_at(block, 24, be);
    let iface = interface(interfaces, iface_id, at)?;
    if DATA as u64 + pad4(caplen) + 4 > block.len() as u64 {
        return Err(problem(
            at,
            format!(
                "corrupt packet block at byte {at}: captured length {caplen} does not fit in a block of {} bytes",
                block.len()
            ),
        ));
    }
    check_lengths("packet block", at, caplen, orig_len, iface.max_caplen)?;
    Ok(RawFrame {
        ts: iface.ts(units),
        link: iface.link,
        usable: iface.usable,
        offset: base + DATA,
        caplen,
        orig_len,
        record_at: at,
    })
}

/// A simple packet block: interface 0, no timestamp, captured length
/// implied by the block length and snaplen.
fn simple_packet_block(
    block: &[u8],
    be: bool,
    interfaces: &[Interface],
    last_ts: Ts,
    at: u64,
    base: usize,
) -> Result<RawFrame, InputProblem> {
    const DATA: usize = 12;
    if block.len() < DATA + 4 {
        return Err(problem(
            at,
            format!(
                "corrupt simple packet block at byte {at}: total length {} is below the minimum 16",
                block.len()
            ),
        ));
    }
    let iface = interface(interfaces, 0, at)?;
    let orig_len = u32_at(block, 8, be);
    let room = u32::try_from(block.len() - DATA - 4).unwrap_or(u32::MAX);
    let mut caplen = orig_len.min(room);
    if iface.snaplen != 0 {
        caplen = caplen.min(iface.snaplen);
    }
    Ok(RawFrame {
        ts: last_ts,
        link: iface.link,
        usable: iface.usable,
        offset: base + DATA,
        caplen,
        orig_len,
        record_at: at,
    })
}

fn interface(interfaces: &[Interface], id: u32, at: u64) -> Result<&Interface, InputProblem> {
    interfaces.get(id as usize).ok_or_else(|| {
        problem(
            at,
            format!(
                "corrupt packet block at byte {at}: interface {id} was not declared ({} interfaces in this section)",
                interfaces.len()
            ),
        )
    })
}
