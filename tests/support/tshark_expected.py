#!/usr/bin/env python3
"""Runs tshark once over every capture the tests use and writes what it sees
as expected data (tests/data/tshark.json): frame counts and, per TCP/UDP
stream, the stream's endpoints and frame counts.

tshark is the oracle, not a test dependency: the output is committed, and the
tests compare exflow's report against it. Re-run after adding a capture:

    python3 tests/support/tshark_expected.py > tests/data/tshark.json
"""
import glob
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def captures():
    pats = ["../shared/captures/lab/*/*.pcap", "../shared/captures/public/*/*", "pcaps/*.pcap*"]
    out = []
    for p in pats:
        for f in sorted(glob.glob(os.path.join(ROOT, p))):
            if f.endswith((".pcap", ".pcapng")):
                out.append(os.path.relpath(f, ROOT))
    return out


def tshark_fields(path, display_filter, fields):
    cmd = ["tshark", "-n", "-r", os.path.join(ROOT, path), "-T", "fields", "-E", "separator=|"]
    if display_filter:
        cmd += ["-Y", display_filter]
    for f in fields:
        cmd += ["-e", f]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return [line.split("|") for line in res.stdout.splitlines()]


def streams(path, proto):
    # Frames whose outermost transport is `proto`: exclude ICMP errors, which
    # tshark dissects down to the quoted TCP/UDP header.
    rows = tshark_fields(
        path,
        f"{proto} and not icmp and not icmpv6",
        [f"{proto}.stream", "ip.src", "ipv6.src", f"{proto}.srcport", "ip.dst", "ipv6.dst", f"{proto}.dstport"],
    )
    by_stream = {}
    for r in rows:
        sid = r[0].split(",")[0]
        if not sid:
            continue
        src = (r[1] or r[2]).split(",")[0]
        dst = (r[4] or r[5]).split(",")[0]
        s = by_stream.setdefault(sid, {"a": [src, int(r[3].split(",")[0])], "b": [dst, int(r[6].split(",")[0])], "frames": 0})
        s["frames"] += 1
    return sorted(by_stream.values(), key=lambda s: (s["a"], s["b"], s["frames"]))


def main():
    out = {}
    for path in captures():
        frames = len(tshark_fields(path, None, ["frame.number"]))
        out[path] = {
            "frames": frames,
            "tcp": streams(path, "tcp"),
            "udp": streams(path, "udp"),
        }
        print(f"{path}: {frames} frames", file=sys.stderr)
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
