#!/usr/bin/env python3
"""Builds the fuzz targets' seed corpora (fuzz/corpus/<target>/) from real
captures: ../shared/captures (when present), pcaps/ and fuzz/seeds/.
Whole small files seed the readers and the analysis driver; frames, IP
datagrams, TCP/UDP payloads, DCE/RPC PDUs and stubs, TPKT packets cut out
of them seed the protocol targets, in each target's input format (see the
target's header comment). Only the standard library; files are named by
their SHA-1, so running it again adds nothing twice.

usage: fuzz/seeds.py [CORPUS_DIR]   (default fuzz/corpus)
"""
import hashlib
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = [os.path.join(ROOT, "..", "shared", "captures"), os.path.join(ROOT, "pcaps"),
           os.path.join(ROOT, "fuzz", "seeds"), os.path.join(ROOT, "tests", "data", "lab")]
MAX_FILE = 64 << 10          # whole-file seeds
MAX_PER_TARGET = 300
MAX_PER_FILE = 12            # seeds of one target cut out of one capture
# decode's link table (fuzz_targets/decode.rs): DLT -> selector byte.
LINK_SEL = {1: 0, 101: 1, 0: 2, 108: 3, 113: 4, 276: 5, 228: 6, 229: 7}

out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fuzz", "corpus")
counts = {}
per_file = {}


def put(target, data, src=None):
    if counts.get(target, 0) >= MAX_PER_TARGET or not data:
        return
    if src is not None:
        if per_file.get((target, src), 0) >= MAX_PER_FILE:
            return
        per_file[(target, src)] = per_file.get((target, src), 0) + 1
    d = os.path.join(out_dir, target)
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, hashlib.sha1(data).hexdigest())
    if not os.path.exists(p):
        with open(p, "wb") as f:
            f.write(data)
        counts[target] = counts.get(target, 0) + 1


def pieces(chunks):
    """The targets' piece format: a length byte, then that many bytes."""
    out = bytearray()
    for c in chunks:
        while len(c) > 255:
            out += bytes([255]) + c[:255]
            c = c[255:]
        out += bytes([len(c)]) + c
    return bytes(out)


def frames(blob):
    """(dlt, frame) of a pcap or pcapng file (a best-effort reader)."""
    if len(blob) < 24:
        return
    magic = blob[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = "<" if magic[0] in (0xd4, 0x4d) else ">"
        dlt = struct.unpack(e + "I", blob[20:24])[0] & 0xFFFF
        i = 24
        while i + 16 <= len(blob):
            incl = struct.unpack(e + "I", blob[i + 8:i + 12])[0]
            if i + 16 + incl > len(blob):
                return
            yield dlt, blob[i + 16:i + 16 + incl]
            i += 16 + incl
    elif magic == b"\x0a\x0d\x0d\x0a":
        e = "<" if blob[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        links, i = [], 0
        while i + 12 <= len(blob):
            btype, blen = struct.unpack(e + "II", blob[i:i + 8])
            if blen < 12 or i + blen > len(blob):
                return
            body = blob[i + 8:i + blen - 4]
            if btype == 0x0A0D0D0A:
                links = []
            elif btype == 1:
                links.append(struct.unpack(e + "H", body[:2])[0])
            elif btype == 6 and len(body) >= 20:
                iface, _, _, cap = struct.unpack(e + "IIII", body[:16])
                if iface < len(links):
                    yield links[iface], body[20:20 + cap]
            i += blen


def ip_of(dlt, f):
    """The IP datagram inside a frame, or None."""
    off = {1: 14, 101: 0, 228: 0, 229: 0, 0: 4, 108: 4, 113: 16, 276: 20}.get(dlt)
    if off is None or len(f) < off + 20:
        return None
    if dlt == 1:
        et = struct.unpack(">H", f[12:14])[0]
        while et == 0x8100 and len(f) >= off + 4:
            et = struct.unpack(">H", f[off + 2:off + 4])[0]
            off += 4
    return f[off:]


def l4(ip):
    """(proto, sport, dport, payload) of an unfragmented IPv4/IPv6 packet."""
    v = ip[0] >> 4
    if v == 4:
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        proto, body = ip[9], ip[ihl:total]
    elif v == 6 and len(ip) >= 40:
        proto, body = ip[6], ip[40:40 + struct.unpack(">H", ip[4:6])[0]]
    else:
        return None
    if proto == 6 and len(body) >= 20:
        return 6, *struct.unpack(">HH", body[:4]), body[(body[12] >> 4) * 4:]
    if proto == 17 and len(body) >= 8:
        return 17, *struct.unpack(">HH", body[:4]), body[8:]
    return None


def dce_pdus(stream):
    """Whole connection-oriented PDUs found at the start of a payload."""
    i = 0
    while i + 16 <= len(stream) and stream[i] == 5 and stream[i + 1] == 0:
        le = stream[i + 4] & 0x10
        n = struct.unpack("<H" if le else ">H", stream[i + 8:i + 10])[0]
        if n < 16 or i + n > len(stream):
            return
        yield stream[i:i + n]
        i += n


for src in SOURCES:
    for dirpath, _, names in sorted(os.walk(src)):
        for name in sorted(names):
            if not name.endswith((".pcap", ".pcapng")):
                continue
            blob = open(os.path.join(dirpath, name), "rb").read()
            if len(blob) <= MAX_FILE:
                for t in ("analyze", "reader_vs_libpcap"):
                    put(t, blob)
                put("pcap_chunks", bytes([len(blob) % 251]) + blob)
            flows = {}
            for dlt, f in frames(blob):
                if dlt in LINK_SEL:
                    put("decode", bytes([LINK_SEL[dlt]]) + f, name)
                ip = ip_of(dlt, f)
                if ip is None:
                    continue
                frag = ip[0] >> 4 == 4 and struct.unpack(">H", ip[6:8])[0] & 0x3FFF
                if frag:
                    put("defrag", pieces([ip]), name)
                    continue
                t = l4(ip)
                if t is None:
                    continue
                proto, sp, dp, pl = t
                if not pl:
                    continue
                key = (proto, min(sp, dp), max(sp, dp))
                flows.setdefault(key, []).append((sp < dp, pl))
                if proto == 17 and pl[0] == 4:
                    put("dcerpc_cl", pl, name)
                    if len(pl) > 80:
                        put("epm", bytes([0x18]) + pl[80:], name)
                for pdu in dce_pdus(pl):
                    ptype, le = pdu[2], pdu[4] & 0x10
                    put("dcerpc_co", bytes([0]) + pieces([pdu]), name)
                    if ptype in (0, 2) and len(pdu) > 24:
                        opnum = struct.unpack("<H" if le else ">H", pdu[22:24])[0]
                        stub = pdu[24:]
                        mode = 0 if le else 2
                        if ptype == 0 and opnum == 4:
                            put("emsmdb", bytes([mode]) + stub, name)
                        if ptype == 0:
                            put("epm", bytes([mode | (0 << 2)]) + stub, name)
                            put("epm", bytes([mode | (2 << 2)]) + stub, name)
                        else:
                            for sel in (1, 3, 5, 6):
                                put("epm", bytes([mode | (sel << 2) | 0x80]) + stub, name)
                if len(pl) >= 7 and pl[0] == 3 and pl[1] == 0:
                    put("rfc1006", pieces([pl]), name)
            for (proto, lo, hi), segs in flows.items():
                a = b"".join(p for d, p in segs if not d)[:2048]
                b = b"".join(p for d, p in segs if d)[:2048]
                if proto == 6:
                    if a[:1] == b"\x05" or b[:1] == b"\x05":
                        put("dcerpc_co", bytes([0]) + pieces([p for _, p in segs][:32]), name)
                    if a[:2] == b"\x03\x00" or b[:2] == b"\x03\x00":
                        put("rfc1006", pieces([p for _, p in segs][:32]), name)
                if proto == 6 and lo in (139, 445) and len(segs) > 2:
                    # smb: segments as (direction bit | 15-bit length, bytes);
                    # the side on the low port (the server) is direction 1.
                    out = b""
                    for d, p in segs[:64]:
                        p = p[:0x7fff]
                        out += struct.pack(">H", (0x8000 if d else 0) | len(p)) + p
                    put("smb", out, name)
                first_a = next((p for d, p in segs if not d), b"")[:1024]
                first_b = next((p for d, p in segs if d), b"")[:1024]
                ports = struct.pack("<HH", hi, lo)
                put("recognize", bytes([min(len(first_a), 255)]) + ports + first_a + first_b, name)

# JSON readers: the files in fuzz/seeds/ (policies, baselines) and the
# truth files' neighbours are not policies; policy/baseline seeds come from
# fuzz/seeds/*.json named policy-* / baseline-*.
seeds = os.path.join(ROOT, "fuzz", "seeds")
for name in sorted(os.listdir(seeds)) if os.path.isdir(seeds) else []:
    p = os.path.join(seeds, name)
    if name.startswith("policy-"):
        put("policy_json", open(p, "rb").read())
    elif name.startswith("baseline-"):
        put("baseline_json", open(p, "rb").read())
# defrag: no capture here has fragments; an IPv4 UDP datagram and an IPv6
# one, each cut in two fragments (in order, and reversed).
def csum(h):
    t = sum(struct.unpack(">%dH" % (len(h) // 2), h))
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return struct.pack(">H", ~t & 0xFFFF)


udp = struct.pack(">HHHH", 50000, 135, 8 + 40, 0) + bytes(range(40))
v4 = []
for off, chunk, more in ((0, udp[:24], 1), (24, udp[24:], 0)):
    h = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(chunk), 0x1234, (more << 13) | (off // 8), 64,
                    17, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    v4.append(h[:10] + csum(h) + h[12:] + chunk)
put("defrag", pieces(v4))
put("defrag", pieces(v4[::-1]))
v6 = []
for off, chunk, more in ((0, udp[:24], 1), (24, udp[24:], 0)):
    fh = struct.pack(">BBHI", 17, 0, off | more, 0xABCD)
    v6.append(struct.pack(">IHBB", 6 << 28, 8 + len(chunk), 44, 64) + bytes(15) + b"\x01" + bytes(15) + b"\x02"
              + fh + chunk)
put("defrag", pieces(v6))
put("defrag", pieces(v6[::-1]))
# tcp_stream needs no real bytes: a SYN and a few in-order segments.
put("tcp_stream", bytes([1, 0, 0, 0, 1]) + bytes([0, 0, 10, 0, 10, 0, 10, 0, 20, 0, 5, 1]))

# dcom: the real RemoteCreateInstance answer of zeek's kerberos135_auth trace
# (the parser's unit tests read the same hex), as every operation and the
# other byte order.
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "..", "src", "proto", "dcom", "remote_create_instance_response.hex")) as f:
    rci = bytes.fromhex(f.read())
for mode in range(12):
    put("dcom", bytes([mode]) + rci)

for t in sorted(counts):
    print(f"{t}: {counts[t]} new seeds")
