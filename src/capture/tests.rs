//! Tests of the native reader, the merge and path handling over hand-built
//! pcap / pcapng bytes.

use std::io::{Cursor, Read};
use std::sync::Arc;

use super::*;

// ---------------------------------------------------------------- builders

fn put16(out: &mut Vec<u8>, be: bool, v: u16) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

fn put32(out: &mut Vec<u8>, be: bool, v: u32) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

/// A pcap file header.
fn pcap_header(be: bool, nanos: bool, link: u32, snaplen: u32) -> Vec<u8> {
    let mut out = Vec::new();
    put32(&mut out, be, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
    put16(&mut out, be, 2);
    put16(&mut out, be, 4);
    put32(&mut out, be, 0);
    put32(&mut out, be, 0);
    put32(&mut out, be, snaplen);
    put32(&mut out, be, link);
    out
}

/// A pcap record with an explicit caplen (may lie about the data).
fn pcap_record(out: &mut Vec<u8>, be: bool, ts: (u32, u32), caplen: u32, orig: u32, data: &[u8]) {
    put32(out, be, ts.0);
    put32(out, be, ts.1);
    put32(out, be, caplen);
    put32(out, be, orig);
    out.extend_from_slice(data);
}

fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A pcapng writer.
struct Ng {
    be: bool,
    out: Vec<u8>,
}

impl Ng {
    fn new(be: bool) -> Ng {
        let mut ng = Ng {
            be,
            out: Vec::new(),
        };
        ng.shb();
        ng
    }

    fn shb(&mut self) -> &mut Ng {
        let mut body = Vec::new();
        put32(&mut body, self.be, 0x1A2B_3C4D);
        put16(&mut body, self.be, 1);
        put16(&mut body, self.be, 0);
        body.extend_from_slice(&[0xff; 8]); // section length: unknown
        self.block(0x0A0D_0D0A, &body)
    }

    /// Switches byte order and starts a new section.
    fn section(&mut self, be: bool) -> &mut Ng {
        self.be = be;
        self.shb()
    }

    fn idb(&mut self, link: u16, snaplen: u32, options: &[(u16, Vec<u8>)]) -> &mut Ng {
        let mut body = Vec::new();
        put16(&mut body, self.be, link);
        put16(&mut body, self.be, 0);
        put32(&mut body, self.be, snaplen);
        for (code, value) in options {
            put16(&mut body, self.be, *code);
            put16(&mut body, self.be, value.len() as u16);
            body.extend_from_slice(value);
            while body.len() % 4 != 0 {
                body.push(0);
            }
        }
        if !options.is_empty() {
            body.extend_from_slice(&[0; 4]);
        }
        self.block(1, &body)
    }

    fn epb(&mut self, iface: u32, ts: u64, orig: u32, data: &[u8]) -> &mut Ng {
        let mut body = Vec::new();
        put32(&mut body, self.be, iface);
        put32(&mut body, self.be, (ts >> 32) as u32);
        put32(&mut body, self.be, ts as u32);
        put32(&mut body, self.be, data.len() as u32);
        put32(&mut body, self.be, orig);
        body.extend_from_slice(data);
        self.block(6, &body)
    }

    fn pb(&mut self, iface: u16, ts: u64, orig: u32, data: &[u8]) -> &mut Ng {
        let mut body = Vec::new();
        put16(&mut body, self.be, iface);
        put16(&mut body, self.be, 0);
        put32(&mut body, self.be, (ts >> 32) as u32);
        put32(&mut body, self.be, ts as u32);
        put32(&mut body, self.be, data.len() as u32);
        put32(&mut body, self.be, orig);
        body.extend_from_slice(data);
        self.block(2, &body)
    }

    fn spb(&mut self, orig: u32, data: &[u8]) -> &mut Ng {
        let mut body = Vec::new();
        put32(&mut body, self.be, orig);
        body.extend_from_slice(data);
        self.block(3, &body)
    }

    fn block(&mut self, btype: u32, body: &[u8]) -> &mut Ng {
        let padded = (body.len() + 3) & !3;
        let total = (12 + padded) as u32;
        put32(&mut self.out, self.be, btype);
        put32(&mut self.out, self.be, total);
        self.out.extend_from_slice(body);
        self.out.resize(self.out.len() + padded - body.len(), 0);
        put32(&mut self.out, self.be, total);
        self
    }

    fn bytes(&self) -> Vec<u8> {
        self.out.clone()
    }
}

// ----------------------------------------------------------------- helpers

#[derive(Clone, Debug, PartialEq, Eq)]
struct F {
    ts: u64,
    input: u16,
    link: LinkType,
    caplen: u32,
    orig_len: u32,
    data: Vec<u8>,
}

fn open_bytes(
    inputs: Vec<Vec<u8>>,
    filter: Option<&str>,
    chunk_size: usize,
) -> Result<FileSource, SourceError> {
    let readers = inputs
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            (
                format!("in{i}"),
                Box::new(Cursor::new(b)) as Box<dyn Read + Send>,
            )
        })
        .collect();
    FileSource::from_readers(
        readers,
        filter,
        &ReaderOptions {
            chunk_size,
            ..ReaderOptions::default()
        },
    )
}

fn drain(src: &mut dyn Source, max: usize) -> Vec<F> {
    let mut out = Vec::new();
    while let Some(batch) = src.next_batch(max) {
        for pair in batch.buffers.windows(2) {
            assert!(!Arc::ptr_eq(&pair[0], &pair[1]), "same buffer pushed twice");
        }
        for f in &batch.frames {
            out.push(F {
                ts: f.ts,
                input: f.input,
                link: f.link,
                caplen: f.caplen,
                orig_len: f.orig_len,
                data: batch.data(f).to_vec(),
            });
        }
    }
    out
}

fn read_all(bytes: Vec<u8>) -> (Vec<F>, InputInfo) {
    let mut src = open_bytes(vec![bytes], None, DEFAULT_CHUNK_SIZE).expect("open");
    let frames = drain(&mut src, 1000);
    (frames, src.inputs().remove(0))
}

fn open_err(bytes: Vec<u8>) -> String {
    match open_bytes(vec![bytes], None, DEFAULT_CHUNK_SIZE) {
        Err(SourceError::Open(e)) => e.message,
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened"),
    }
}

fn problem_of(bytes: Vec<u8>) -> (usize, InputProblem) {
    let (frames, info) = read_all(bytes);
    (frames.len(), info.problem.expect("a problem"))
}

const S: u64 = 1_000_000_000;

// ------------------------------------------------------------------- pcap

/// Files of pcap version 2.0–2.2 (libpcap before 0.4) have the two
/// lengths of each record swapped, and 2.3 files may: libpcap reads them
/// swapped (`sf-pcap.c`, `lengths_swapped`), and so must this reader (the
/// fuzz target `reader_vs_libpcap` found the difference).
#[test]
fn old_pcap_versions_have_their_lengths_swapped() {
    for be in [false, true] {
        for minor in [0u16, 1, 2, 3, 4] {
            let mut b = pcap_header(be, false, 1, 65535);
            b[6..8].copy_from_slice(&if be {
                minor.to_be_bytes()
            } else {
                minor.to_le_bytes()
            });
            let d = payload(60, 3);
            // 60 bytes captured of 1514, written in the version's order:
            // swapped before 2.3; 2.3 reads a pair swapped when its first
            // length is the larger, so both orders read alike there.
            let (first, second) = if minor <= 3 { (1514, 60) } else { (60, 1514) };
            pcap_record(&mut b, be, (1_700_000_000, 0), first, second, &d);
            if minor >= 3 {
                pcap_record(&mut b, be, (1_700_000_001, 0), 60, 1514, &d);
            }
            let (frames, info) = read_all(b);
            assert!(info.problem.is_none(), "2.{minor}: {:?}", info.problem);
            assert_eq!(frames.len(), if minor >= 3 { 2 } else { 1 }, "2.{minor}");
            for f in &frames {
                assert_eq!((f.caplen, f.orig_len), (60, 1514), "2.{minor}");
                assert_eq!(f.data, d);
            }
        }
    }
}

/// The fuzz finding (fuzz/open/reader_vs_libpcap-record-count.pcap):
/// version 2.1, three 16-byte record headers, read 3 records here and 2 by
/// libpcap. Read swapped, as libpcap does, the second record claims 16
/// captured bytes of 0 on the wire: libpcap takes them (the third header);
/// this reader calls a captured length above the original corrupt, and
/// says where.
#[test]
fn fuzz_finding_version_2_1_is_read_swapped() {
    let mut b = vec![
        0xd4, 0xc3, 0xb2, 0xa1, 0x02, 0x00, 0x01, 0x00, 0x35, 0x00, 0x18, 0x00, 0x00, 0x10, 0x00,
        0x00, 0x00, 0x00, 0x00, 0xf6, 0x0e, 0x00, 0x00, 0x00,
    ];
    b.extend_from_slice(&[0; 16]);
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0]);
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x0a]);
    assert_eq!(b.len(), 72);
    let (n, problem) = problem_of(b);
    assert_eq!(n, 1);
    assert_eq!(problem.offset, 40);
    assert!(
        problem
            .message
            .contains("captured length 16 exceeds the original length 0"),
        "{}",
        problem.message
    );
}

#[test]
fn pcap_all_magics_and_byte_orders() {
    for be in [false, true] {
        for nanos in [false, true] {
            let mut b = pcap_header(be, nanos, 1, 65535);
            let (d1, d2) = (payload(60, 1), payload(20, 2));
            pcap_record(&mut b, be, (1_700_000_000, 123_456), 60, 60, &d1);
            pcap_record(&mut b, be, (1_700_000_001, 7), 20, 1514, &d2);
            let (frames, info) = read_all(b.clone());
            let mul = if nanos { 1 } else { 1000 };
            assert_eq!(frames.len(), 2);
            assert_eq!(frames[0].ts, 1_700_000_000 * S + 123_456 * mul);
            assert_eq!(frames[0].data, d1);
            assert_eq!(frames[0].link, LinkType::ETHERNET);
            assert_eq!((frames[1].caplen, frames[1].orig_len), (20, 1514));
            assert_eq!(frames[1].data, d2);
            assert_eq!(info.format, "pcap");
            assert_eq!(info.packets, 2);
            assert_eq!(info.packets_matched, 2);
            assert_eq!(info.bytes, 60 + 1514);
            assert_eq!(info.snaplen_truncated, 1);
            assert_eq!(info.first_ts, Some(frames[0].ts));
            assert_eq!(info.last_ts, Some(frames[1].ts));
            assert_eq!(info.link_types, vec![LinkType::ETHERNET]);
            assert_eq!(info.problem, None);
        }
    }
}

#[test]
fn pcap_link_type_masks_fcs_bits() {
    let b = pcap_header(false, false, 0x1000_0000 | 101, 65535);
    let (frames, info) = read_all(b);
    assert!(frames.is_empty());
    assert_eq!(info.link_types, vec![LinkType::RAW]);
}

#[test]
fn pcap_truncated_record() {
    let mut b = pcap_header(false, false, 1, 65535);
    pcap_record(&mut b, false, (1, 0), 10, 10, &payload(10, 0));
    pcap_record(&mut b, false, (2, 0), 1514, 1514, &payload(200, 0));
    let (n, p) = problem_of(b);
    assert_eq!(n, 1);
    assert_eq!(p.offset, 50);
    assert_eq!(
        p.message,
        "truncated record at byte 50: header says 1514 captured bytes, only 200 present (capture cut short?)"
    );
}

#[test]
fn pcap_truncated_record_header() {
    let mut b = pcap_header(true, false, 1, 65535);
    pcap_record(&mut b, true, (1, 0), 4, 4, &[1, 2, 3, 4]);
    b.extend_from_slice(&[0; 5]);
    let (n, p) = problem_of(b);
    assert_eq!(n, 1);
    assert_eq!(p.offset, 44);
    assert_eq!(
        p.message,
        "truncated record header at byte 44: 5 of 16 bytes present"
    );
}

#[test]
fn pcap_corrupt_lengths() {
    let mut b = pcap_header(false, false, 1, 65535);
    pcap_record(&mut b, false, (1, 0), u32::MAX, 60, &payload(64, 0));
    let (n, p) = problem_of(b);
    assert_eq!(n, 0);
    assert_eq!(p.offset, 24);
    assert_eq!(
        p.message,
        "corrupt record at byte 24: captured length 4294967295 exceeds the maximum 262144"
    );

    let mut b = pcap_header(false, false, 1, 65535);
    pcap_record(&mut b, false, (1, 0), 60, 40, &payload(60, 0));
    let (_, p) = problem_of(b);
    assert_eq!(
        p.message,
        "corrupt record at byte 24: captured length 60 exceeds the original length 40"
    );

    // A snaplen above libpcap's default raises the maximum.
    let mut b = pcap_header(false, false, 1, 300_000);
    pcap_record(
        &mut b,
        false,
        (1, 0),
        270_000,
        270_000,
        &payload(270_000, 0),
    );
    let (frames, info) = read_all(b);
    assert_eq!((frames.len(), info.problem), (1, None));
}

// ----------------------------------------------------------------- pcapng

#[test]
fn pcapng_sections_with_different_byte_orders() {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[]).epb(0, 1_000_000, 60, &payload(60, 1));
    ng.section(true)
        .idb(101, 0, &[(9, vec![9])])
        .epb(0, 2 * S + 5, 40, &payload(40, 2));
    let (frames, info) = read_all(ng.bytes());
    assert_eq!(info.problem, None);
    assert_eq!(info.format, "pcapng");
    assert_eq!(frames.len(), 2);
    assert_eq!((frames[0].ts, frames[0].link), (S, LinkType::ETHERNET));
    assert_eq!((frames[1].ts, frames[1].link), (2 * S + 5, LinkType::RAW));
    assert_eq!(frames[1].data, payload(40, 2));
    assert_eq!(info.link_types, vec![LinkType::ETHERNET, LinkType::RAW]);
}

#[test]
fn pcapng_interfaces_with_own_resolution_and_offset() {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[]) // µs
        .idb(
            113,
            0,
            &[(9, vec![0x80 | 10]), (14, 100u64.to_le_bytes().to_vec())],
        ) // 2^-10 s, +100 s
        .idb(229, 0, &[(9, vec![12])]) // ps
        .epb(0, 1_500_000, 10, &payload(10, 0))
        .epb(1, 1024 * 3 + 512, 11, &payload(11, 0))
        .epb(2, 7_000_000_000_123, 12, &payload(12, 0));
    let (frames, info) = read_all(ng.bytes());
    assert_eq!(info.problem, None);
    let got: Vec<(u64, LinkType)> = frames.iter().map(|f| (f.ts, f.link)).collect();
    assert_eq!(
        got,
        vec![
            (1_500_000_000, LinkType::ETHERNET),
            (103 * S + S / 2, LinkType::LINUX_SLL),
            (7 * S, LinkType::IPV6),
        ]
    );
}

#[test]
fn pcapng_spb_pb_and_unknown_blocks() {
    let mut ng = Ng::new(true);
    ng.idb(1, 50, &[])
        .block(0x0BAD_0001, &[1, 2, 3, 4, 5]) // unknown: skipped
        .epb(0, 3_000_000, 60, &payload(60, 1))
        .spb(100, &payload(100, 2)) // snaplen 50 cuts it
        .pb(0, 4_000_000, 30, &payload(30, 3));
    let (frames, info) = read_all(ng.bytes());
    assert_eq!(info.problem, None);
    assert_eq!(frames.len(), 3);
    assert_eq!(
        (frames[1].ts, frames[1].caplen, frames[1].orig_len),
        (3 * S, 50, 100)
    );
    assert_eq!(frames[1].data, payload(50, 2));
    assert_eq!(frames[2].ts, 4 * S);
    assert_eq!(info.snaplen_truncated, 1);
}

#[test]
fn pcapng_unsupported_interface_is_skipped_and_counted() {
    let mut ng = Ng::new(false);
    ng.idb(147, 0, &[])
        .idb(1, 0, &[])
        .epb(0, 1, 10, &payload(10, 0))
        .epb(1, 2, 10, &payload(10, 0));
    let (frames, info) = read_all(ng.bytes());
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].link, LinkType::ETHERNET);
    assert_eq!((info.packets, info.packets_matched), (2, 1));
    assert_eq!(info.unsupported_link_frames, 1);

    let mut ng = Ng::new(false);
    ng.idb(147, 0, &[]).epb(0, 1, 10, &payload(10, 0));
    assert_eq!(
        open_err(ng.bytes()),
        "unsupported link type 147 (linktype-147)"
    );
    assert_eq!(
        open_err(pcap_header(false, false, 105, 65535)),
        "unsupported link type 105 (linktype-105)"
    );
}

/// The `if_filter` of each usable interface, numbered over the whole file
/// (every section), in either byte order; byte code is kept as unknown, a
/// blank string is no filter, an unsupported interface's is ignored.
#[test]
fn pcapng_interface_filters_are_reported_per_interface() {
    let text = |k: u8, t: &str| {
        let mut v = vec![k];
        v.extend_from_slice(t.as_bytes());
        (11u16, v)
    };
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[text(0, "tcp port 135\0")])
        .idb(1, 0, &[])
        .idb(147, 0, &[text(0, "udp")])
        .epb(0, 1, 10, &payload(10, 0))
        .section(true)
        .idb(101, 0, &[text(1, "\x28\0\0\0\x0c\0\0\0")])
        .idb(113, 0, &[text(0, "  ")])
        .idb(113, 0, &[(9, vec![6]), text(0, "host 198.51.100.10")])
        .epb(0, 2, 10, &payload(10, 0));
    let (frames, info) = read_all(ng.bytes());
    assert_eq!(frames.len(), 2);
    assert_eq!(
        info.interface_filters,
        vec![
            InterfaceFilter {
                interface: 0,
                link: LinkType::ETHERNET,
                expression: Some("tcp port 135".into()),
            },
            InterfaceFilter {
                interface: 3,
                link: LinkType::RAW,
                expression: None,
            },
            InterfaceFilter {
                interface: 5,
                link: LinkType::LINUX_SLL,
                expression: Some("host 198.51.100.10".into()),
            },
        ]
    );
    assert_eq!(info.filter, None);

    // The synthetic writer's option reads back; the reader's own filter is
    // reported beside it.
    let mut w = exflow_testkit::PcapngWriter::new(Vec::new()).unwrap();
    w.add_interface_with_filter(exflow_testkit::Link::Ethernet, 0, true, Some((0, b"tcp")))
        .unwrap();
    w.write_packet(0, 5, &payload(10, 0)).unwrap();
    let bytes = w.into_inner().unwrap();
    let mut src = open_bytes(vec![bytes], Some("ip or not ip"), DEFAULT_CHUNK_SIZE).unwrap();
    drain(&mut src, 100);
    let info = src.inputs().remove(0);
    assert_eq!(info.filter.as_deref(), Some("ip or not ip"));
    assert_eq!(info.interface_filters[0].expression.as_deref(), Some("tcp"));
    assert_eq!(info.first_ts, Some(5));
}

/// A pcapng prefix (SHB + IDB) and the offset of what follows.
fn ng_prefix() -> (Ng, u64) {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[]);
    let at = ng.out.len() as u64;
    (ng, at)
}

#[test]
fn pcapng_block_errors_with_offsets() {
    let (mut ng, at) = ng_prefix();
    put32(&mut ng.out, false, 6);
    put32(&mut ng.out, false, 7);
    ng.out.extend_from_slice(&[0; 8]);
    let (_, p) = problem_of(ng.bytes());
    assert_eq!(p.offset, at);
    assert_eq!(
        p.message,
        format!("corrupt block at byte {at}: total length 7 is not a multiple of 4")
    );

    let (mut ng, at) = ng_prefix();
    put32(&mut ng.out, false, 6);
    put32(&mut ng.out, false, 8);
    ng.out.extend_from_slice(&[0; 8]);
    let (_, p) = problem_of(ng.bytes());
    assert_eq!(
        p.message,
        format!("corrupt block at byte {at}: total length 8 is below the minimum 12")
    );

    let (mut ng, at) = ng_prefix();
    ng.epb(0, 1, 4, &[1, 2, 3, 4]);
    let last = ng.out.len() - 4;
    ng.out[last] = 99;
    let (n, p) = problem_of(ng.bytes());
    assert_eq!(n, 0);
    assert_eq!(
        p.message,
        format!("corrupt block at byte {at}: trailing length 99 does not match leading length 36")
    );

    let (mut ng, at) = ng_prefix();
    ng.epb(0, 1, 4, &[1, 2, 3, 4])
        .epb(0, 2, 60, &payload(60, 0));
    ng.out.truncate(ng.out.len() - 30);
    let second = at + 36;
    let (n, p) = problem_of(ng.bytes());
    assert_eq!(n, 1);
    assert_eq!(p.offset, second);
    assert_eq!(
        p.message,
        format!("truncated block at byte {second}: total length says 92 bytes, only 62 present (capture cut short?)")
    );

    let (mut ng, at) = ng_prefix();
    ng.epb(3, 1, 4, &[1, 2, 3, 4]);
    let (_, p) = problem_of(ng.bytes());
    assert_eq!(
        p.message,
        format!("corrupt packet block at byte {at}: interface 3 was not declared (1 interfaces in this section)")
    );

    // caplen larger than the block holds.
    let (mut ng, at) = ng_prefix();
    ng.epb(0, 1, 4, &[1, 2, 3, 4]);
    let caplen_at = at as usize + 20;
    ng.out[caplen_at..caplen_at + 4].copy_from_slice(&200u32.to_le_bytes());
    let (_, p) = problem_of(ng.bytes());
    assert_eq!(
        p.message,
        format!("corrupt packet block at byte {at}: captured length 200 does not fit in a block of 36 bytes")
    );

    let (mut ng, at) = ng_prefix();
    ng.epb(0, 1, 2, &[1, 2, 3, 4]);
    let (_, p) = problem_of(ng.bytes());
    assert_eq!(
        p.message,
        format!(
            "corrupt packet block at byte {at}: captured length 4 exceeds the original length 2"
        )
    );

    let (mut ng, at) = ng_prefix();
    ng.out.extend_from_slice(&[6, 0, 0, 0, 32]);
    let (_, p) = problem_of(ng.bytes());
    assert_eq!(
        p.message,
        format!("truncated block header at byte {at}: 5 of 12 bytes present")
    );
}

// ------------------------------------------------------------ open errors

#[test]
fn open_errors() {
    assert_eq!(open_err(Vec::new()), "empty file (0 bytes)");
    assert_eq!(
        open_err(b"<!DOCTYPE html>".to_vec()),
        "not a pcap or pcapng capture (first bytes: 3c 21 44 4f)"
    );
    assert_eq!(
        open_err(pcap_header(false, false, 1, 65535)[..10].to_vec()),
        "truncated pcap file header: 10 of 24 bytes present"
    );
    assert_eq!(
        open_err(vec![0xd4, 0xc3]),
        "truncated file header: 2 of at least 4 bytes present"
    );
    let shb = Ng::new(false).bytes();
    assert_eq!(
        open_err(shb[..20].to_vec()),
        "truncated pcapng section header block: 20 of 28 bytes present"
    );
    let mut bad = shb.clone();
    bad[8..12].copy_from_slice(&[1, 2, 3, 4]);
    assert!(open_err(bad).contains("byte-order magic"));
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "exflow-capture-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn path_err(paths: &[std::path::PathBuf]) -> OpenError {
    match FileSource::open(paths, None) {
        Err(SourceError::Open(e)) => e,
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("opened"),
    }
}

#[test]
fn path_errors_and_directory_expansion() {
    let dir = temp_dir("paths");
    let missing = dir.join("missing.pcap");
    let e = path_err(std::slice::from_ref(&missing));
    assert_eq!(e.message, "no such file or directory");
    assert_eq!(e.path, missing.display().to_string());

    let empty_dir = dir.join("empty");
    std::fs::create_dir(&empty_dir).unwrap();
    std::fs::write(empty_dir.join("notes.txt"), "hello").unwrap();
    assert_eq!(
        path_err(std::slice::from_ref(&empty_dir)).message,
        "no pcap or pcapng captures in directory"
    );

    let mut b = pcap_header(false, false, 1, 65535);
    pcap_record(&mut b, false, (5, 0), 4, 4, &[5; 4]);
    std::fs::write(dir.join("b.pcap"), &b).unwrap();
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[]).epb(0, 1_000_000, 4, &[1; 4]);
    std::fs::write(dir.join("a.pcapng"), ng.bytes()).unwrap();
    std::fs::write(dir.join("c.txt"), "not a capture").unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();

    let (mut src, warnings) = FileSource::open(std::slice::from_ref(&dir), None).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("c.txt"));
    let names: Vec<String> = src.inputs().into_iter().map(|i| i.path).collect();
    assert!(names[0].ends_with("a.pcapng") && names[1].ends_with("b.pcap"));
    let frames = drain(&mut src, 10);
    assert_eq!(
        frames.iter().map(|f| f.ts).collect::<Vec<_>>(),
        vec![S, 5 * S]
    );

    let dash = [std::path::PathBuf::from("-"), std::path::PathBuf::from("-")];
    assert_eq!(
        path_err(&dash).message,
        "standard input given more than once"
    );

    // Permission checks do not apply to root; only test when they bite.
    let locked = dir.join("locked.pcap");
    std::fs::write(&locked, &b).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::File::open(&locked).is_err() {
        assert_eq!(path_err(&[locked]).message, "permission denied");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ----------------------------------------------------------------- filter

#[test]
fn filter_drops_frames_and_bad_filter_is_an_error() {
    let mut b = pcap_header(false, false, 101, 65535);
    let mut udp = vec![
        0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    udp.extend_from_slice(&[0, 53, 0, 53, 0, 8, 0, 0]);
    let mut tcp = udp.clone();
    tcp[9] = 6;
    pcap_record(&mut b, false, (1, 0), 28, 28, &udp);
    pcap_record(&mut b, false, (2, 0), 28, 28, &tcp);
    let mut src = open_bytes(vec![b.clone()], Some("udp"), 64).unwrap();
    let frames = drain(&mut src, 10);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].ts, S);
    let info = &src.inputs()[0];
    assert_eq!((info.packets, info.packets_matched), (2, 1));

    match open_bytes(vec![b], Some("udp port banana"), 64) {
        Err(SourceError::Filter(e)) => {
            assert_eq!(e.filter, "udp port banana");
            assert_eq!(e.link_type, LinkType::RAW);
        }
        _ => panic!("expected a filter error"),
    }
}

// ---------------------------------------------------- chunks and merging

/// A pcap and a pcapng with frames of many sizes, some larger than small
/// chunks.
fn varied_inputs() -> Vec<Vec<u8>> {
    let sizes = [
        0usize, 1, 3, 14, 60, 61, 62, 63, 64, 65, 127, 200, 1514, 9000, 70_000,
    ];
    let mut p = pcap_header(false, true, 1, 262_144);
    let mut ng = Ng::new(true);
    ng.idb(1, 0, &[(9, vec![9])]);
    for (i, &n) in sizes.iter().cycle().take(60).enumerate() {
        let data = payload(n, i as u8);
        pcap_record(
            &mut p,
            false,
            (10, i as u32 * 7),
            n as u32,
            n as u32 + 4,
            &data,
        );
        if i % 5 == 0 {
            ng.block(0x0BAD_0002, &payload(i, 9));
        }
        ng.epb(0, 10 * S + i as u64 * 5, n as u32, &data);
    }
    vec![p, ng.bytes()]
}

#[test]
fn chunk_size_does_not_change_frames() {
    for input in varied_inputs() {
        let reference = {
            let mut src = open_bytes(vec![input.clone()], None, DEFAULT_CHUNK_SIZE).unwrap();
            drain(&mut src, 1 << 20)
        };
        assert_eq!(reference.len(), 60);
        let mut size = 64;
        while size <= DEFAULT_CHUNK_SIZE {
            for s in [size, size + 1, size + 3] {
                let mut src = open_bytes(vec![input.clone()], None, s).unwrap();
                assert_eq!(drain(&mut src, 7), reference, "chunk size {s}");
                assert_eq!(src.inputs()[0].problem, None);
            }
            size *= 4;
        }
    }
}

/// A reader that returns at most 5 bytes per call (a slow pipe / stdin).
struct Trickle(Cursor<Vec<u8>>);

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(5);
        self.0.read(&mut buf[..n])
    }
}

#[test]
fn short_reads_do_not_change_frames() {
    for input in varied_inputs() {
        let mut whole = open_bytes(vec![input.clone()], None, 4096).unwrap();
        let reference = drain(&mut whole, 100);
        let readers = vec![(
            "-".to_owned(),
            Box::new(Trickle(Cursor::new(input))) as Box<dyn Read + Send>,
        )];
        let mut src = FileSource::from_readers(
            readers,
            None,
            &ReaderOptions {
                chunk_size: 100,
                ..ReaderOptions::default()
            },
        )
        .unwrap();
        assert_eq!(drain(&mut src, 100), reference);
    }
}

/// Frames and input facts of `path` read through `read()` and mapped with
/// windows of `window` bytes.
fn read_vs_mapped(path: &std::path::Path, window: usize) -> (Vec<F>, Vec<F>, InputInfo, InputInfo) {
    let open = |map_window| {
        let options = ReaderOptions {
            map_window,
            ..ReaderOptions::default()
        };
        let (mut src, _) = FileSource::open_with(&[path], None, &options).expect("open");
        let frames = drain(&mut src, 50);
        (frames, src.inputs().remove(0))
    };
    let (read, read_info) = open(None);
    let (mapped, mapped_info) = open(Some(window));
    (read, mapped, read_info, mapped_info)
}

#[test]
fn mapped_files_give_the_same_frames_and_problems_as_read() {
    let dir = temp_dir("mapped");
    let mut files = Vec::new();
    for (i, input) in varied_inputs().into_iter().enumerate() {
        // Whole, and cut inside a record (the problem and the frames
        // before it must be the same).
        for (k, cut) in [input.len(), input.len() - 1000, input.len() / 2 + 3]
            .into_iter()
            .enumerate()
        {
            let p = dir.join(format!("in{i}-{k}.cap"));
            std::fs::write(&p, &input[..cut]).unwrap();
            files.push(p);
        }
    }
    let lab = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
    for e in std::fs::read_dir(&lab).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
            if f.path()
                .extension()
                .is_some_and(|x| x == "pcap" || x == "pcapng")
            {
                files.push(f.path());
            }
        }
    }
    assert!(
        files.len() > 6,
        "no shipped captures found in {}",
        lab.display()
    );
    for p in &files {
        // One page (the smallest), an odd size, and the default.
        for window in [4096, 3 * 4096 + 5, crate::capture::DEFAULT_MAP_WINDOW] {
            let (read, mapped, ri, mi) = read_vs_mapped(p, window);
            assert!(!read.is_empty() || ri.problem.is_some(), "{}", p.display());
            assert_eq!(mapped, read, "{} window {window}", p.display());
            assert_eq!(mi, ri, "{} window {window}", p.display());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn merge_by_next_timestamp_keeps_file_order() {
    let file = |tss: &[u32], seed: u8| {
        let mut b = pcap_header(false, false, 1, 65535);
        for (i, &t) in tss.iter().enumerate() {
            pcap_record(&mut b, false, (t, 0), 4, 4, &[seed, i as u8, 0, 0]);
        }
        b
    };
    // Input 0 goes backwards (5 then 2); ties go to the lower input.
    let a = file(&[1, 3, 5, 2, 7], 0xa);
    let b = file(&[2, 3, 4, 8], 0xb);
    let expected: Vec<(u64, u16)> = vec![
        (1, 0),
        (2, 1),
        (3, 0),
        (3, 1),
        (4, 1),
        (5, 0),
        (2, 0),
        (7, 0),
        (8, 1),
    ];
    for max in [1, 2, 3, 100] {
        for chunk in [32, 64, DEFAULT_CHUNK_SIZE] {
            let mut src = open_bytes(vec![a.clone(), b.clone()], None, chunk).unwrap();
            let got: Vec<(u64, u16)> = drain(&mut src, max)
                .iter()
                .map(|f| (f.ts / S, f.input))
                .collect();
            assert_eq!(got, expected, "max {max} chunk {chunk}");
        }
    }
    // Frames of both inputs share a batch, each with its own buffer.
    let mut src = open_bytes(vec![a, b], None, DEFAULT_CHUNK_SIZE).unwrap();
    let batch = src.next_batch(100).unwrap();
    assert_eq!(batch.buffers.len(), 2);
    assert_eq!(batch.frames.len(), 9);
    for f in &batch.frames {
        let data = batch.data(f);
        assert_eq!(data[0], if f.input == 0 { 0xa } else { 0xb });
    }
    assert!(src.next_batch(100).is_none());
    let infos = src.inputs();
    assert_eq!(
        (infos[0].first_ts, infos[0].last_ts),
        (Some(S), Some(7 * S))
    );
}

#[test]
fn problem_in_one_input_does_not_stop_the_others() {
    let mut a = pcap_header(false, false, 1, 65535);
    pcap_record(&mut a, false, (1, 0), 4, 4, &[0; 4]);
    pcap_record(&mut a, false, (2, 0), 400, 400, &[0; 4]);
    let mut b = pcap_header(false, false, 1, 65535);
    for t in [1, 2, 3] {
        pcap_record(&mut b, false, (t, 0), 4, 4, &[1; 4]);
    }
    let mut src = open_bytes(vec![a, b], None, 64).unwrap();
    assert_eq!(drain(&mut src, 10).len(), 4);
    let infos = src.inputs();
    assert_eq!(infos[0].problem.as_ref().map(|p| p.offset), Some(44));
    assert_eq!(infos[1].problem, None);
}

/// Throughput sanity check: `cargo test --release -- --ignored --nocapture throughput`.
#[test]
#[ignore]
fn throughput() {
    let frames = 4_000_000u32;
    let mut b = pcap_header(false, false, 1, 65535);
    b.reserve(frames as usize * 76);
    let data = payload(60, 0);
    for i in 0..frames {
        pcap_record(&mut b, false, (i / 1000, i % 1000), 60, 60, &data);
    }
    for inputs in [1usize, 2] {
        let bufs: Vec<Vec<u8>> = (0..inputs).map(|_| b.clone()).collect();
        let mut src = open_bytes(bufs, None, DEFAULT_CHUNK_SIZE).unwrap();
        let start = std::time::Instant::now();
        let mut n = 0usize;
        while let Some(batch) = src.next_batch(4096) {
            n += batch.len();
        }
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "{inputs} input(s): {n} frames in {secs:.3} s = {:.1} M frames/s",
            n as f64 / secs / 1e6
        );
    }
}

/// Found by fuzzing (`fuzz/fuzz_targets/pcap_chunks.rs`): an interface block
/// whose trailing length is corrupt ends the input there; its link type was
/// still reported when the first chunk happened to reach it (the open's
/// look-ahead did not check the trailer), not when it did not.
#[test]
fn corrupt_leading_interface_block_reports_the_same_link_types_at_any_chunk_size() {
    let mut ng = Ng::new(false);
    ng.block(0x0BAD_0002, &payload(160, 3));
    ng.idb(1, 65535, &[]);
    let mut bytes = ng.bytes();
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&[0xca, 0xfe, 0x1a, 0x21]);
    let mut infos = Vec::new();
    for chunk in [64, DEFAULT_CHUNK_SIZE] {
        let mut src = open_bytes(vec![bytes.clone()], None, chunk).unwrap();
        assert!(drain(&mut src, 10).is_empty());
        infos.push(src.inputs().remove(0));
    }
    assert_eq!(infos[0], infos[1]);
    assert!(infos[0].link_types.is_empty());
    let p = infos[0].problem.as_ref().expect("a problem");
    assert_eq!(p.offset, 28 + 12 + 160);
    assert!(p.message.contains("trailing length"), "{}", p.message);
}

/// Found by fuzzing (`pcap_chunks`): a file whose only interface has an
/// unsupported link type was refused at open when the first chunk reached
/// its interface block, and opened (its frames skipped) when it did not.
#[test]
fn unsupported_only_file_is_refused_at_any_chunk_size() {
    let mut ng = Ng::new(false);
    ng.block(0x0BAD_0002, &payload(160, 3));
    ng.idb(9, 65535, &[]);
    ng.epb(0, 10 * S, 4, &[1, 2, 3, 4]);
    for chunk in [64, 100, DEFAULT_CHUNK_SIZE] {
        match open_bytes(vec![ng.bytes()], None, chunk) {
            Err(SourceError::Open(e)) => {
                assert!(e.message.contains("unsupported"), "{}", e.message)
            }
            Err(e) => panic!("chunk {chunk}: {e}"),
            Ok(_) => panic!("chunk {chunk}: opened"),
        }
    }
}

/// The progress line's figures: bytes read of two files' total, growing
/// batch by batch, all of it at the end; a stream has no size to tell.
#[test]
fn file_sources_tell_how_far_through_their_files_they_are() {
    let dir = temp_dir("progress");
    let mut paths = Vec::new();
    for k in 0..2u8 {
        let mut b = pcap_header(false, false, 1, 65535);
        for i in 0..200u32 {
            pcap_record(&mut b, false, (i, u32::from(k)), 60, 60, &payload(60, k));
        }
        let p = dir.join(format!("in{k}.pcap"));
        std::fs::write(&p, &b).unwrap();
        paths.push(p);
    }
    let total: u64 = paths
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let (mut src, _) = FileSource::open(&paths, None).unwrap();
    let (first, all) = src.progress().expect("files have a size");
    assert_eq!(all, total);
    assert!(first < total);
    let mut last = first;
    while src.next_batch(50).is_some() {
        let (done, all) = src.progress().unwrap();
        assert!(done >= last && done <= all, "{done} after {last} of {all}");
        last = done;
    }
    assert_eq!(src.progress(), Some((total, total)));
    let mut stream = open_bytes(vec![std::fs::read(&paths[0]).unwrap()], None, 4096).unwrap();
    assert_eq!(stream.progress(), None);
    drain(&mut stream, 10);
    let _ = std::fs::remove_dir_all(&dir);
}
