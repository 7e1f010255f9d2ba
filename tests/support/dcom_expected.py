#!/usr/bin/env python3
"""tshark as the oracle for DCOM hand-offs (#22): every string binding tshark's
DCOM dissector decodes in a response PDU of every shared capture, one JSON
object per binding, written to tests/data/dcom_tshark.jsonl:
{file, frame, client, server, tower_id, network_addr} (server = the PDU's
source, client = its destination). tests/dcom_handoffs.rs compares exflow's
hand-offs against it. tshark is not a test dependency: the output is
committed. Re-run after adding a capture or upgrading tshark:

    python3 tests/support/dcom_expected.py

(../shared/tools/epm_oracle.py prints endpoint-mapper towers only.)"""
import glob, json, os, subprocess, xml.etree.ElementTree as ET

os.chdir(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = "tests/data/dcom_tshark.jsonl"


def bindings(pcap):
    cmd = ["tshark", "-n", "-r", pcap, "-Y",
           "dcom.dualstringarray.tower_id && dcerpc.pkt_type == 2", "-T", "pdml"]
    xml = subprocess.run(cmd, capture_output=True, check=False).stdout
    if not xml.strip():
        return
    for pkt in ET.fromstring(xml).iter("packet"):
        frame = src = dst = None
        tower = None
        for f in pkt.iter("field"):
            n, s = f.get("name"), f.get("show")
            if n == "frame.number":
                frame = int(s)
            elif n in ("ip.src", "ipv6.src") and src is None:
                src = s
            elif n in ("ip.dst", "ipv6.dst") and dst is None:
                dst = s
            elif n == "dcom.dualstringarray.tower_id":
                # shown as "NCACN_IP_TCP (0x0007)" (the raw value is the wire bytes)
                tower = int(s.split("(")[-1].rstrip(")"), 16)
            elif n == "dcom.dualstringarray.network_addr":
                yield {"frame": frame, "server": src, "client": dst,
                       "tower_id": tower, "network_addr": s}


files = sorted(glob.glob("../shared/captures/lab/*/*.pcap") + glob.glob("../shared/captures/public/*/*"))
n = 0
with open(OUT + ".tmp", "w") as out:
    for p in files:
        if not p.endswith((".pcap", ".pcapng")):
            continue
        for b in bindings(p):
            b["file"] = p
            out.write(json.dumps(b, sort_keys=True) + "\n")
            n += 1
os.replace(OUT + ".tmp", OUT)
print(f"{n} string bindings -> {OUT}")
