#!/usr/bin/env python3
"""tshark as the oracle for src/proto/recognize.rs: for every TCP/UDP
conversation of the captures below, the application protocol tshark names
first (in frame order, frames with payload only), mapped to the service
vocabulary of the report contract. Written to tests/data/recognize_tshark.json;
tests/recognize_parsers.rs compares the payload recognizers against it.

tshark is not a test dependency: the output is committed. Re-run after adding
a capture or upgrading tshark:

    python3 tests/support/recognize_expected.py > tests/data/recognize_tshark.json

"service" is null when tshark names no application protocol in any frame of
the conversation (e.g. a capture that starts mid-stream, or a Kerberos PDU
whose reassembly never completes); "tshark" then is null too. A protocol
outside the recognizers' scope (dcerpc, ymsg, data, ...) is kept as
"tshark" with "service": "other".
"""
import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CAPTURES = [
    "../shared/captures/public/zeek+zeek/testing__btest__Traces__smtp.pcap",
    "../shared/captures/public/zeek+zeek/testing__btest__Traces__pop3__pop3.pcap",
    "../shared/captures/public/zeek+zeek/testing__btest__Traces__tls__imap-starttls.pcap",
    "../shared/captures/public/zeek+zeek/testing__btest__Traces__ldap__aduser1.pcap",
    "../shared/captures/public/zeek+zeek/testing__btest__Traces__krb__kinit.pcap",
    "../shared/captures/public/zeek+zeek/testing__btest__Traces__smb__smb3.pcap",
    "../shared/captures/public/zeek+zeek/testing__btest__Traces__dns53.pcap",
    "../shared/captures/public/OISF+suricata-verify/tests__bug-3616-smtp__input.pcap",
    "../shared/captures/public/ntop+nDPI/tests__cfgs__default__pcap__kerberos.pcap",
    "../shared/captures/lab/allow-all/client-tap.pcap",
]

# tshark protocol name -> report service name.
SERVICE = {
    "smtp": "smtp",
    "pop": "pop3",
    "imap": "imap",
    "ldap": "ldap",
    "cldap": "ldap",
    "kerberos": "kerberos",
    "smb": "smb",
    "smb2": "smb",
    "dns": "dns",
    "tls": "tls",
    "ssl": "tls",
    "http": "http",
    "ntp": "ntp",
    "nbns": "netbios-ns",
    "nbdgm": "netbios-dgm",
    "nntp": "nntp",
}
# Layers that say nothing by themselves (nbss: look at what it carries).
TRANSPARENT = {"eth", "ethertype", "ip", "ipv6", "tcp", "udp", "vlan", "sll", "nbss"}


def label(protocols):
    """The first mapped protocol above the transport, else the first unmapped."""
    layers = protocols.split(":")
    for p in layers:
        if p in SERVICE:
            return p, SERVICE[p]
    for p in layers:
        if p not in TRANSPARENT:
            return p, "other"
    return None


def conversations(path):
    cmd = ["tshark", "-n", "-r", os.path.join(ROOT, path), "-T", "fields", "-E", "separator=|",
           "-e", "tcp.stream", "-e", "udp.stream", "-e", "ip.src", "-e", "ipv6.src",
           "-e", "tcp.srcport", "-e", "udp.srcport", "-e", "ip.dst", "-e", "ipv6.dst",
           "-e", "tcp.dstport", "-e", "udp.dstport", "-e", "tcp.len", "-e", "frame.protocols"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    convs = {}
    order = []
    for line in out.splitlines():
        ts, us, s4, s6, tsp, usp, d4, d6, tdp, udp_, tlen, protos = line.split("|")
        if ts:
            key, proto, sp, dp, has_payload = ("tcp", int(ts)), "tcp", tsp, tdp, int(tlen or 0) > 0
        elif us:
            key, proto, sp, dp, has_payload = ("udp", int(us)), "udp", usp, udp_, True
        else:
            continue
        if "icmp" in protos.split(":"):
            continue  # a quoted datagram inside an ICMP error
        src, dst = (s4 or s6), (d4 or d6)
        if key not in convs:
            a, b = sorted([[src, int(sp)], [dst, int(dp)]])
            convs[key] = {"proto": proto, "a": a, "b": b, "tshark": None, "service": None}
            order.append(key)
        c = convs[key]
        if has_payload and c["tshark"] is None:
            lab = label(protos)
            if lab:
                c["tshark"], c["service"] = lab
    return [convs[k] for k in order]


def main():
    res = []
    for path in CAPTURES:
        res.append({"path": path, "conversations": conversations(path)})
    print(json.dumps({"tshark": subprocess.run(["tshark", "--version"], capture_output=True,
                                               text=True).stdout.splitlines()[0],
                      "captures": res}, indent=1))


if __name__ == "__main__":
    main()
