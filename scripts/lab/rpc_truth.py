#!/usr/bin/env python3
"""truth.json for scripts/lab-rpc-transports (#24), counted with tshark from the two taps.

Usage: rpc_truth.py SCENARIO WORKDIR
Reads WORKDIR/{client-tap.pcap,server-tap.pcap,client.jsonl,versions.json,nft_ruleset.txt,
smb.conf,listening.txt}, writes WORKDIR/truth.json, exits 1 if a check fails.
"""
import collections
import json
import os
import subprocess
import sys

sc, work = sys.argv[1], sys.argv[2]
TAPS = {"client-tap": os.path.join(work, "client-tap.pcap"),
        "server-tap": os.path.join(work, "server-tap.pcap")}
SERVER = "198.51.100.10"
DYN = range(55000, 55101)
ALLOWED_PORTS_DROP = {139, 445, 593}

IFNAMES = {
    "e1af8308-5d1f-11c9-91a4-08002b14a0fa": "epmapper",
    "12345678-1234-abcd-ef00-01234567cffb": "netlogon",
    "e3514235-4b06-11d1-ab04-00c04fc2dcd2": "drsuapi",
    "12345778-1234-abcd-ef00-0123456789ab": "lsarpc",
    "12345778-1234-abcd-ef00-0123456789ac": "samr",
    "4b324fc8-1670-01d3-1278-5a47bf6ee188": "srvsvc",
    "8a885d04-1ceb-11c9-9fe8-08002b104860": "ndr",
}
NDR_UUID = "8a885d04-1ceb-11c9-9fe8-08002b104860"
PKT = {0: "request", 2: "response", 3: "fault", 11: "bind", 12: "bind_ack", 13: "bind_nak",
       14: "alter_context", 15: "alter_context_resp"}


def tshark(args):
    return subprocess.run(["tshark", "-n"] + args, check=True, capture_output=True, text=True).stdout


def rows(pcap, fields, flt=None, info=False):
    """tshark -T fields rows as dicts of lists (all occurrences); _ws.col.Info last if asked."""
    cmd = ["-r", pcap, "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=;"]
    if flt:
        cmd += ["-Y", flt]
    fl = list(fields) + (["_ws.col.Info"] if info else [])
    for f in fl:
        cmd += ["-e", f]
    res = []
    for line in tshark(cmd).splitlines():
        vals = line.split("|", len(fl) - 1)
        r = {}
        for f, v in zip(fl, vals):
            r[f] = v if f == "_ws.col.Info" else ([x for x in v.split(";")] if v != "" else [])
        res.append(r)
    return res


def first(r, f, conv=str, default=None):
    v = r.get(f) or []
    return conv(v[0]) if v else default


def num(x):
    return int(x, 0)


def truthy(r, f):
    v = r.get(f) or []
    return bool(v) and v[0] in ("1", "True", "true")


# ------------------------------------------------------------------ packets and flows
PFIELDS = ["frame.number", "frame.time_epoch", "ip.src", "ip.dst", "ip.proto", "tcp.stream",
           "tcp.srcport", "tcp.dstport", "tcp.flags.syn", "tcp.flags.ack", "tcp.flags.fin",
           "tcp.flags.reset", "tcp.len", "tcp.analysis.retransmission", "udp.srcport", "udp.dstport",
           "icmp.type", "icmp.code"]
pk = {t: rows(p, PFIELDS) for t, p in TAPS.items()}
t_base = min(float(first(p, "frame.time_epoch")) for t in pk for p in pk[t])


def new_tapstat():
    return {"packets": 0, "fwd": 0, "rev": 0, "syn": 0, "syn_retransmissions": 0, "synack": 0,
            "fin_fwd": 0, "fin_rev": 0, "rst_fwd": 0, "rst_rev": 0,
            "payload_bytes_fwd": 0, "payload_bytes_rev": 0, "retransmissions": 0,
            "tcp_stream": None, "first_frame": None, "last_frame": None,
            "first_time_rel": None, "last_time_rel": None}


flows = collections.OrderedDict()
other = {t: collections.Counter() for t in pk}
for t in pk:
    for p in pk[t]:
        proto = first(p, "ip.proto", int)
        if proto not in (6, 17) or len(p.get("ip.proto") or []) != 1:
            other[t]["non-ip" if proto is None else "ip proto %d" % proto] += 1
            continue
        src, dst = first(p, "ip.src"), first(p, "ip.dst")
        if proto == 6:
            pn, sp, dp = "tcp", first(p, "tcp.srcport", int), first(p, "tcp.dstport", int)
        else:
            pn, sp, dp = "udp", first(p, "udp.srcport", int), first(p, "udp.dstport", int)
        # The DC is the responder of every flow here; otherwise the lower port.
        if dst == SERVER or (src != SERVER and dp < sp):
            key, fwd = (pn, src, sp, dst, dp), True
        else:
            key, fwd = (pn, dst, dp, src, sp), False
        f = flows.setdefault(key, {"client-tap": new_tapstat(), "server-tap": new_tapstat(),
                                   "t0": float(first(p, "frame.time_epoch"))})
        s = f[t]
        fr, ts = first(p, "frame.number", int), float(first(p, "frame.time_epoch"))
        f["t0"] = min(f["t0"], ts)
        s["packets"] += 1
        s["fwd" if fwd else "rev"] += 1
        if s["first_frame"] is None:
            s["first_frame"], s["first_time_rel"] = fr, round(ts - t_base, 6)
        s["last_frame"], s["last_time_rel"] = fr, round(ts - t_base, 6)
        if pn == "tcp":
            s["tcp_stream"] = first(p, "tcp.stream", int)
            syn, ack = truthy(p, "tcp.flags.syn"), truthy(p, "tcp.flags.ack")
            rtx = bool(p.get("tcp.analysis.retransmission"))
            if syn and not ack:
                s["syn"] += 1
                s["syn_retransmissions"] += int(rtx)
            if syn and ack:
                s["synack"] += 1
            if truthy(p, "tcp.flags.fin"):
                s["fin_fwd" if fwd else "fin_rev"] += 1
            if truthy(p, "tcp.flags.reset"):
                s["rst_fwd" if fwd else "rst_rev"] += 1
            s["payload_bytes_fwd" if fwd else "payload_bytes_rev"] += first(p, "tcp.len", int, 0)
            s["retransmissions"] += int(rtx)


def observed(f):
    c, s = f["client-tap"], f["server-tap"]
    if c["synack"] and s["synack"] and s["syn"]:
        return "allowed"
    if c["syn"] and not c["synack"] and c["rst_rev"]:
        return "refused"
    if c["syn"] and s["packets"] == 0:
        return "dropped"
    return "incomplete"


def expected(key):
    pn, _, _, dst, dp = key
    if dp == 593:
        return "refused"  # Samba 4.x has no ncacn_http listener
    if sc == "smb-pipe-drop" and dp not in ALLOWED_PORTS_DROP:
        return "dropped"
    return "allowed"


# ------------------------------------------------------------------ DCE/RPC per tap
DFIELDS = ["frame.number", "frame.time_epoch", "frame.protocols", "tcp.stream", "ip.src", "tcp.srcport",
           "ip.dst", "tcp.dstport", "tcp.seq_raw", "smb2.fid", "smb2.msg_id", "smb.fid", "smb.file",
           "dcerpc.pkt_type", "dcerpc.cn_call_id", "dcerpc.cn_bind_to_uuid", "dcerpc.cn_bind_if_ver",
           "dcerpc.cn_bind_if_ver_minor", "dcerpc.cn_ack_result", "dcerpc.opnum", "dcerpc.request_in",
           "epm.uuid", "epm.uuid_version", "epm.tower.proto_id", "epm.proto.tcp_port", "epm.proto.http_port",
           "epm.proto.ip", "epm.num_towers", "epm.rc"]
rpc = {t: rows(p, DFIELDS, "dcerpc", info=True) for t, p in TAPS.items()}
rpc_by_frame = {t: {first(r, "frame.number", int): r for r in rpc[t]} for t in rpc}

# SMB2 creates: pair request (filename) and response (fid) by (stream, msg_id).
CFIELDS = ["frame.number", "tcp.stream", "smb2.msg_id", "smb2.flags.response", "smb2.filename", "smb2.fid",
           "smb2.nt_status"]
S1FIELDS = ["frame.number", "tcp.stream", "smb.flags.response", "smb.file", "smb.fid", "smb.nt_status"]
NFIELDS = ["frame.number", "tcp.stream", "smb2.dialect", "smb.dialect.name", "smb2.flags.response"]
creates2 = {t: rows(p, CFIELDS, "smb2.cmd == 5") for t, p in TAPS.items()}
creates1 = {t: rows(p, S1FIELDS, "smb.cmd == 0xa2") for t, p in TAPS.items()}
negs = {t: rows(p, NFIELDS, "smb2.cmd == 0 || smb.cmd == 0x72") for t, p in TAPS.items()}


def transport_of(r):
    prot = first(r, "frame.protocols", default="")
    parts = prot.split(":")
    if "smb2" in parts:
        return "smb2"
    if "smb" in parts:
        return "smb1"
    ports = {first(r, "tcp.srcport", int), first(r, "tcp.dstport", int)}
    if 593 in ports:
        return "ncacn_http"
    return "ncacn_ip_tcp"


def flow_of(r):
    src, sp, dst, dp = first(r, "ip.src"), first(r, "tcp.srcport", int), first(r, "ip.dst"), first(r, "tcp.dstport", int)
    return ("tcp", src, sp, dst, dp) if dst == SERVER else ("tcp", dst, dp, src, sp)


def fkey(k):
    return "%s %s:%d -> %s:%d" % (k[0], k[1], k[2], k[3], k[4])


def pipe_names(t):
    """(stream, fid) -> pipe name, for SMB2 (create pairs) and SMB1 (smb.file on NT Create AndX)."""
    names, reqs, opened = {}, {}, []
    for r in creates2[t]:
        k = (first(r, "tcp.stream", int), first(r, "smb2.msg_id"))
        if not truthy(r, "smb2.flags.response"):
            reqs[k] = (first(r, "smb2.filename"), first(r, "frame.number", int))
        elif k in reqs and first(r, "smb2.fid"):
            names[(k[0], first(r, "smb2.fid"))] = reqs[k][0]
            opened.append({"tcp_stream": k[0], "pipe": reqs[k][0], "fid": first(r, "smb2.fid"),
                           "create_request_frame": reqs[k][1], "create_response_frame": first(r, "frame.number", int),
                           "nt_status": first(r, "smb2.nt_status")})
    pend = {}
    for r in creates1[t]:
        st = first(r, "tcp.stream", int)
        if not truthy(r, "smb.flags.response"):
            pend[st] = (first(r, "smb.file"), first(r, "frame.number", int))
        elif st in pend and first(r, "smb.fid"):
            names[(st, first(r, "smb.fid"))] = pend[st][0]
            opened.append({"tcp_stream": st, "pipe": pend[st][0], "fid": first(r, "smb.fid"),
                           "create_request_frame": pend[st][1], "create_response_frame": first(r, "frame.number", int),
                           "nt_status": first(r, "smb.nt_status")})
    return names, opened


def fid_of(r):
    return first(r, "smb2.fid") or first(r, "smb.fid")


def same_fid(a, b):
    # a response may carry no file id of its own (then only the stream and call id match)
    return a == b or a is None or b is None


def rpc_view(t):
    """Per-tap DCE/RPC view: ept_map answers, binds, calls, keyed for matching across taps."""
    names, opened = pipe_names(t)
    answers, binds, calls = [], [], []
    for r in rpc[t]:
        pt = first(r, "dcerpc.pkt_type", int)
        st = first(r, "tcp.stream", int)
        fid = fid_of(r)
        base = {"frame": first(r, "frame.number", int), "time_rel": round(float(first(r, "frame.time_epoch")) - t_base, 6),
                "flow": flow_of(r), "tcp_stream": st, "transport": transport_of(r),
                "pipe": names.get((st, fid)) or first(r, "smb.file"), "fid": fid,
                "call_id": first(r, "dcerpc.cn_call_id", int), "seq_raw": first(r, "tcp.seq_raw", int),
                "info": r.get("_ws.col.Info", "")}
        if pt == 11:
            u = first(r, "dcerpc.cn_bind_to_uuid")
            binds.append(dict(base, uuid=u, interface=IFNAMES.get(u, u),
                              version="%s.%s" % (first(r, "dcerpc.cn_bind_if_ver"), first(r, "dcerpc.cn_bind_if_ver_minor"))))
        elif pt in (12, 13):
            # attach to the bind with the same stream / fid / call id
            for b in reversed(binds):
                if b["tcp_stream"] == st and same_fid(b["fid"], fid) and b["call_id"] == base["call_id"] and "ack_frame" not in b:
                    b["ack_frame"] = base["frame"]
                    b["ack_type"] = PKT[pt]
                    b["ack_result"] = first(r, "dcerpc.cn_ack_result", int)
                    break
        elif pt == 0:
            calls.append(dict(base, opnum=first(r, "dcerpc.opnum", int)))
        elif pt in (2, 3):
            for c in reversed(calls):
                if c["tcp_stream"] == st and same_fid(c["fid"], fid) and c["call_id"] == base["call_id"] and "response_frame" not in c:
                    c["response_frame"] = base["frame"]
                    c["response_type"] = PKT[pt]
                    break
            if pt == 2 and r.get("epm.rc"):  # an ept_map answer (frame.protocols does not list epm)
                req = rpc_by_frame[t].get(first(r, "dcerpc.request_in", int))
                # epm.uuid in the request: the object UUID (all zero here), then floor 1 (the
                # interface), then floor 2 (NDR); epm.uuid_version only for the floors.
                ru = next((u for u in ((req.get("epm.uuid") or []) if req else [])
                           if u.strip("0-") and u != NDR_UUID), None)
                protos = (req.get("epm.tower.proto_id") or []) if req else []
                want = {"0x07": "ncacn_ip_tcp", "0x1f": "ncacn_http"}.get(protos[3] if len(protos) > 3 else "", "?")
                nt = first(r, "epm.num_towers", int, 0)
                if base["pipe"] is None and req is not None:
                    base["fid"] = fid_of(req)
                    base["pipe"] = names.get((st, base["fid"])) or first(req, "smb.file")
                answers.append(dict(base, request_frame=first(r, "dcerpc.request_in", int),
                                    interface_uuid=ru, interface=IFNAMES.get(ru, ru),
                                    # tshark shows the floor's little-endian major version
                                    # read big-endian ("1.00" = 0x0100): major = value >> 8
                                    interface_version_major=(num((req.get("epm.uuid_version") or ["0"])[0]) >> 8 if req else None),
                                    requested_protocol=want, num_towers=nt,
                                    return_code="0x%08x" % first(r, "epm.rc", num, 0),
                                    answer_uuid=first(r, "epm.uuid"),
                                    announced_port=first(r, "epm.proto.tcp_port", int) if nt else None,
                                    announced_http_port=first(r, "epm.proto.http_port", int) if nt else None,
                                    announced_ip=first(r, "epm.proto.ip") if nt else None))
    return {"answers": answers, "binds": binds, "calls": calls, "opened": opened}


views = {t: rpc_view(t) for t in TAPS}
cv, sv = views["client-tap"], views["server-tap"]


def other_frame(item, kind):
    """The same PDU on server-tap (same flow, same TCP sequence number)."""
    for o in sv[kind]:
        if o["flow"] == item["flow"] and o["seq_raw"] == item["seq_raw"]:
            return o["frame"]
    return None


# ------------------------------------------------------------------ flows out
client = [json.loads(l) for l in open(os.path.join(work, "client.jsonl"))]
out_flows = []
flow_transport = {}
for b in cv["binds"]:
    flow_transport.setdefault(b["flow"], b["transport"])
for key, f in sorted(flows.items(), key=lambda kv: kv[1]["t0"]):
    pn, src, sp, dst, dp = key
    tr = flow_transport.get(key)
    if tr is None:
        tr = {445: "smb", 139: "smb", 593: "ncacn_http"}.get(dp, "ncacn_ip_tcp" if dp in DYN else "other")
    o = observed(f)
    e = expected(key)
    binds = [b for b in cv["binds"] if b["flow"] == key]
    ent = {"flow": fkey(key), "proto": pn, "initiator": src, "initiator_port": sp, "responder": dst,
           "responder_port": dp, "transport": tr,
           "start_time_rel": round(f["t0"] - t_base, 6),
           "near_tap_packets": f["client-tap"], "far_tap_packets": f["server-tap"],
           "interfaces_bound": [{"interface": b["interface"], "uuid": b["uuid"], "version": b["version"],
                                 "pipe": b["pipe"], "bind_frame_client_tap": b["frame"],
                                 "ack_frame_client_tap": b.get("ack_frame"), "ack": b.get("ack_type"),
                                 "ack_result": b.get("ack_result")} for b in binds],
           "observed_verdict": o, "expected_verdict": e, "match": o == e}
    out_flows.append(ent)

# SMB connections: dialect, pipes opened (names, in order) and the interfaces bound on each pipe.
smb_conns = []
for key, f in sorted(flows.items(), key=lambda kv: kv[1]["t0"]):
    if key[4] not in (445, 139) or observed(f) != "allowed":
        continue
    st = f["client-tap"]["tcp_stream"]
    dialect = None
    for n in negs["client-tap"]:
        if first(n, "tcp.stream", int) == st:
            if first(n, "smb2.dialect") and truthy(n, "smb2.flags.response"):
                dialect = "SMB " + {"0x0202": "2.0.2", "0x0210": "2.1", "0x0300": "3.0", "0x0302": "3.0.2",
                                    "0x0311": "3.1.1"}.get(first(n, "smb2.dialect"), first(n, "smb2.dialect"))
            elif first(n, "smb.dialect.name"):
                dialect = "SMB1 " + ", ".join(n["smb.dialect.name"])
    pipes = []
    for op in cv["opened"]:
        if op["tcp_stream"] != st:
            continue
        bs = [b for b in cv["binds"] if b["tcp_stream"] == st and b["fid"] == op["fid"]]
        cs = [c for c in cv["calls"] if c["tcp_stream"] == st and c["fid"] == op["fid"]]
        pipes.append({"pipe": op["pipe"], "fid": op["fid"], "create_request_frame_client_tap": op["create_request_frame"],
                      "create_response_frame_client_tap": op["create_response_frame"], "nt_status": op["nt_status"],
                      "interfaces_bound": [{"interface": b["interface"], "uuid": b["uuid"], "version": b["version"],
                                            "bind_frame_client_tap": b["frame"], "ack_frame_client_tap": b.get("ack_frame"),
                                            "ack": b.get("ack_type"), "ack_result": b.get("ack_result")} for b in bs],
                      "calls": [{"opnum": c["opnum"], "request_frame_client_tap": c["frame"],
                                 "response_frame_client_tap": c.get("response_frame"), "response": c.get("response_type"),
                                 "info": c["info"]} for c in cs]})
    smb_conns.append({"flow": fkey(key), "transport": "smb1" if (dialect or "").startswith("SMB1") else "smb2",
                      "dialect": dialect, "tcp_stream_client_tap": st,
                      "tcp_stream_server_tap": f["server-tap"]["tcp_stream"],
                      "pipes_opened": [p["pipe"] for p in pipes],
                      "interfaces_bound": [i["interface"] for p in pipes for i in p["interfaces_bound"]],
                      "pipes": pipes})

# ept_map answers and their hand-offs (greedy in time: each connection to an announced port
# belongs to the earliest not yet used answer before it that announced that port, for the
# interface it binds when a bind is visible).
answers = []
for a in cv["answers"]:
    answers.append({"transport": a["transport"], "via_flow": fkey(a["flow"]), "pipe": a["pipe"],
                    "interface": a["interface"], "interface_uuid": a["interface_uuid"],
                    "interface_version_major": a["interface_version_major"], "requested_protocol": a["requested_protocol"],
                    "num_towers": a["num_towers"], "return_code": a["return_code"],
                    "announced_port": a["announced_port"], "announced_ip": a["announced_ip"],
                    "client_tap_frame": a["frame"], "server_tap_frame": other_frame(a, "answers"),
                    "request_frame_client_tap": a["request_frame"], "call_id": a["call_id"],
                    "time_rel": a["time_rel"], "handoff_flows": []})
used = set()
for ent, (key, f) in zip(out_flows, sorted(flows.items(), key=lambda kv: kv[1]["t0"])):
    dp = key[4]
    if dp not in DYN:
        continue
    bound = {b["interface"] for b in ent["interfaces_bound"]}
    cands = [i for i, a in enumerate(answers) if a["announced_port"] == dp and a["time_rel"] < ent["start_time_rel"]
             and (not bound or a["interface"] in bound)]
    free = [i for i in cands if i not in used]
    pick = free[0] if free else (cands[-1] if cands else None)
    if pick is not None:
        used.add(pick)
        answers[pick]["handoff_flows"].append({"flow": ent["flow"], "observed_verdict": ent["observed_verdict"],
                                               "interfaces_bound": sorted(bound)})
        ent["handoff_of"] = {"transport": answers[pick]["transport"], "interface": answers[pick]["interface"],
                             "client_tap_frame": answers[pick]["client_tap_frame"]}

blocked = []
ports = sorted({a["announced_port"] for a in answers if a["announced_port"]})
for p in ports:
    fl = [e for e in out_flows if e["responder_port"] == p]
    if fl and all(e["observed_verdict"] == "dropped" for e in fl):
        blocked.append({"port": p, "proto": "tcp",
                        "interfaces": sorted({a["interface"] for a in answers if a["announced_port"] == p}),
                        "announced_via": sorted({a["transport"] for a in answers if a["announced_port"] == p}),
                        "announced_in_client_tap_frames": [a["client_tap_frame"] for a in answers if a["announced_port"] == p],
                        "attempts": len(fl),
                        "syn_client_tap": sum(e["near_tap_packets"]["syn"] for e in fl),
                        "syn_server_tap": sum(e["far_tap_packets"]["syn"] for e in fl)})

# ------------------------------------------------------------------ tshark oracle
ORACLE = {
    "ept_map_answers": ("epm && dcerpc.pkt_type == 2",
                        ["frame.number", "tcp.stream", "tcp.srcport", "tcp.dstport", "epm.uuid", "epm.proto.tcp_port",
                         "epm.num_towers", "epm.rc"]),
    "binds": ("dcerpc.pkt_type == 11",
              ["frame.number", "tcp.stream", "tcp.dstport", "smb2.fid", "smb.file", "dcerpc.cn_bind_to_uuid"]),
    "bind_acks": ("dcerpc.pkt_type == 12", ["frame.number", "tcp.stream", "tcp.srcport", "dcerpc.cn_ack_result"]),
    "smb2_create_requests": ("smb2.cmd == 5 && smb2.flags.response == 0", ["frame.number", "tcp.stream", "smb2.filename"]),
    "smb1_nt_create_requests": ("smb.cmd == 0xa2 && smb.flags.response == 0", ["frame.number", "tcp.stream", "smb.file"]),
    "syn": ("tcp.flags.syn == 1 && tcp.flags.ack == 0",
            ["frame.number", "tcp.srcport", "tcp.dstport", "tcp.analysis.retransmission"]),
    "rst": ("tcp.flags.reset == 1", ["frame.number", "tcp.srcport", "tcp.dstport"]),
}
oracle = {}
for name, (flt, fields) in ORACLE.items():
    for t, pcap in TAPS.items():
        cmd = ["-r", os.path.basename(pcap), "-Y", flt, "-T", "fields", "-E", "separator=|", "-E", "occurrence=f"]
        for fl in fields:
            cmd += ["-e", fl]
        lines = tshark(["-r", pcap] + cmd[2:]).splitlines()
        oracle["%s_%s" % (name, t)] = {"command": "tshark -n " + " ".join(
            "'%s'" % c if (" " in c or "|" in c) else c for c in cmd), "count": len(lines), "lines": lines}

# ------------------------------------------------------------------ checks
checks = []


def check(name, ok, detail=""):
    checks.append({"check": name, "ok": bool(ok), "detail": detail})


def ans(tr, proto="ncacn_ip_tcp"):
    return [a for a in answers if a["transport"] == tr and a["requested_protocol"] == proto]


sizes = {t: os.path.getsize(p) for t, p in TAPS.items()}
check("captures under 1 MB", all(s < 1 << 20 for s in sizes.values()), json.dumps(sizes))
check("client reported no failed step except the expected ones",
      all(c.get("ok") or c["step"] in ("handoff", "ncacn_http_connect") or c.get("protocol") == "ncacn_http"
          for c in client))
a2 = ans("smb2")
check("4 ept_map answers over SMB2 \\pipe\\epmapper with a port in 55000-55100",
      len(a2) == 4 and all(a["announced_port"] in DYN and a["pipe"] == "epmapper" for a in a2),
      ", ".join("%s=%s@%s" % (a["interface"], a["announced_port"], a["client_tap_frame"]) for a in a2))
check("ept_map interfaces over SMB2 are netlogon, drsuapi, lsarpc, samr",
      [a["interface"] for a in a2] == ["netlogon", "drsuapi", "lsarpc", "samr"])
a1 = ans("smb1")
check("1 ept_map answer over SMB1 \\epmapper (netlogon)",
      len(a1) == 1 and a1[0]["interface"] == "netlogon" and a1[0]["announced_port"] in DYN)
check("SMB1 and SMB2 announce the same netlogon port",
      a1 and a2 and a1[0]["announced_port"] == a2[0]["announced_port"])
check("every ept_map answer on client-tap is on server-tap too", all(a["server_tap_frame"] for a in answers))
check("no ept_map answer over ncacn_http / 593 (Samba does not serve it)", not ans("ncacn_http"))
smb2c = [c for c in smb_conns if c["transport"] == "smb2"]
smb1c = [c for c in smb_conns if c["transport"] == "smb1"]
check("one SMB2 connection (dialect 2.1)", len(smb2c) == 1 and smb2c[0]["dialect"] == "SMB 2.1",
      json.dumps([c["dialect"] for c in smb_conns]))
check("one SMB1 connection (NT LM 0.12)", len(smb1c) == 1 and smb1c[0]["dialect"] == "SMB1 NT LM 0.12")
all_acc = all(i["ack"] == "bind_ack" and i["ack_result"] == 0 for c in smb_conns for p in c["pipes"]
              for i in p["interfaces_bound"])
check("every bind on a pipe is accepted (bind_ack, result 0)", all_acc)
if sc == "smb-pipe-allow":
    check("SMB2 pipes: epmapper, lsarpc, samr, srvsvc", smb2c and smb2c[0]["pipes_opened"] == ["epmapper", "lsarpc", "samr", "srvsvc"],
          json.dumps(smb2c[0]["pipes_opened"] if smb2c else None))
    check("SMB2 interfaces: epmapper, lsarpc, samr, srvsvc",
          smb2c and smb2c[0]["interfaces_bound"] == ["epmapper", "lsarpc", "samr", "srvsvc"])
    check("SMB1 pipes: \\epmapper, \\lsarpc", smb1c and smb1c[0]["pipes_opened"] == ["\\epmapper", "\\lsarpc"],
          json.dumps(smb1c[0]["pipes_opened"] if smb1c else None))
    check("SMB1 interfaces: epmapper, lsarpc", smb1c and smb1c[0]["interfaces_bound"] == ["epmapper", "lsarpc"])
    calls_ok = all(c.get("response") == "response" for x in smb_conns for p in x["pipes"] for c in p["calls"]
                   if p["pipe"].lstrip("\\") != "epmapper")
    check("every call on lsarpc / samr / srvsvc has a response (no fault)", calls_ok)
    neg = ans("smb2", "ncacn_http")
    check("the ept_map asking for an ncacn_http tower is answered ept_s_not_registered (0x16c9a0d6), no tower",
          len(neg) == 1 and neg[0]["num_towers"] == 0 and neg[0]["return_code"] == "0x16c9a0d6")
    ho = [e for e in out_flows if e["responder_port"] in DYN]
    check("4 hand-off connections, allowed, each binds the interface it was mapped for",
          len(ho) == 4 and all(e["observed_verdict"] == "allowed" and e.get("handoff_of")
                               and [i["interface"] for i in e["interfaces_bound"]] == [e["handoff_of"]["interface"]]
                               and e["interfaces_bound"][0]["ack"] == "bind_ack" for e in ho),
          ", ".join("%s:%s" % (e["responder_port"], [i["interface"] for i in e["interfaces_bound"]]) for e in ho))
    h593 = [e for e in out_flows if e["responder_port"] == 593]
    check("the direct ncacn_http connection to 593 is refused (RST)", len(h593) == 1 and h593[0]["observed_verdict"] == "refused")
    check("no blocked ports", blocked == [])
else:
    check("SMB2 pipe: epmapper only", smb2c and smb2c[0]["pipes_opened"] == ["epmapper"])
    check("SMB1 pipe: \\epmapper only", smb1c and smb1c[0]["pipes_opened"] == ["\\epmapper"])
    ho = [e for e in out_flows if e["responder_port"] in DYN]
    check("5 hand-off attempts, all dropped (>= 2 SYNs on client-tap, nothing on server-tap)",
          len(ho) == 5 and all(e["observed_verdict"] == "dropped" and e["near_tap_packets"]["syn"] >= 2
                               and e["far_tap_packets"]["packets"] == 0 and e.get("handoff_of") for e in ho),
          ", ".join("%s:%d SYN" % (e["responder_port"], e["near_tap_packets"]["syn"]) for e in ho))
    check("no DCE/RPC on the dynamic ports on either tap",
          not [b for v in views.values() for b in v["binds"] if b["flow"][4] in DYN])
    check("blocked ports = every announced port", [b["port"] for b in blocked] == ports and len(ports) == 3,
          json.dumps([b["port"] for b in blocked]))
check("all flows match", all(e["match"] for e in out_flows),
      ", ".join("%s=%s" % (e["flow"], e["observed_verdict"]) for e in out_flows if not e["match"]))

# ------------------------------------------------------------------ truth.json
v = json.load(open(os.path.join(work, "versions.json")))
ruleset = open(os.path.join(work, "nft_ruleset.txt")).read()
smbconf = open(os.path.join(work, "smb.conf")).read()
listening = sorted({int(l.split()[3].rsplit(":", 1)[1]) for l in open(os.path.join(work, "listening.txt"))
                    if l.split()[3].startswith(SERVER + ":")})

if sc == "smb-pipe-allow":
    desc = ("DCE/RPC inside SMB named pipes, with the endpoint mapper reached through \\pipe\\epmapper and a "
            "working hand-off. The stateful firewall allows every connection from the clients to the DC. "
            "Client 192.0.2.10 (impacket) opens one SMB2 session (dialect 2.1, NTLM as LAB\\Administrator, "
            "signed, not encrypted) to the Samba AD DC 198.51.100.10 and on it: \\pipe\\epmapper, bind EPM "
            "v3, ept_map for netlogon, drsuapi, lsarpc and samr (ncacn_ip_tcp towers: Samba answers ports "
            "from its dynamic range 55000-55100 with IP 0.0.0.0), and one ept_map asking for an ncacn_http "
            "tower for netlogon (answered ept_s_not_registered, no tower: Samba registers no ncacn_http "
            "endpoint). The client then connects to each announced TCP port and binds the interface there "
            "(bind_ack, no auth; two connections go to the same port, drsuapi and lsarpc share it). Back on "
            "the SMB2 session: \\pipe\\lsarpc (LsarOpenPolicy2, LsarQueryInformationPolicy2, LsarClose), "
            "\\pipe\\samr (SamrConnect, SamrEnumerateDomainsInSamServer, SamrCloseHandle), \\pipe\\srvsvc "
            "(NetrShareEnum level 1). Then an SMB1 session (NT LM 0.12, WriteAndX/ReadAndX on the pipe): "
            "\\epmapper (ept_map netlogon, same port) and \\lsarpc (the same three LSA calls). Finally a "
            "direct ncacn_http connection to 593 (impacket, legacy/v1, no RPC proxy): Samba 4.17 does not "
            "listen on 593, the SYN gets a RST.")
else:
    desc = ("DCE/RPC hand-off blocked after an endpoint-mapper answer carried inside SMB. The stateful "
            "firewall allows only TCP 139, 445 and 593 from the clients to the DC (+established,related); "
            "everything else, including Samba's dynamic RPC range 55000-55100, is silently dropped (policy "
            "drop, no ICMP, no RST). Client 192.0.2.10 (impacket) opens an SMB2 session (dialect 2.1) and "
            "on \\pipe\\epmapper maps netlogon, drsuapi, lsarpc and samr (ports from 55000-55100), then "
            "tries each announced port: %s SYNs per attempt on client-tap (the first + retransmissions about "
            "1 s apart: the client kernel has net.ipv4.tcp_syn_linear_timeouts=%s), nothing on server-tap, "
            "impacket's connect timeout after %s s. Then an SMB1 session (NT LM 0.12): \\epmapper ept_map "
            "netlogon (same port), and one more attempt to that port, dropped the same way. No ncacn_http "
            "part (Samba does not serve 593)."
            % ("/".join(str(n) for n in sorted({e["near_tap_packets"]["syn"] for e in out_flows
                                                if e["observed_verdict"] == "dropped"})),
               v.get("tcp_syn_linear_timeouts"), v.get("connect_timeout_s")))

truth = {
    "scenario": sc,
    "profile": "dev",
    "description": desc,
    "files": {"client_tap": "client-tap.pcap", "server_tap": "server-tap.pcap",
              "taps": "both taps are in the firewall namespace (xf-fw): client-tap = fw-c, the firewall veth "
                      "towards the clients (192.0.2.0/24), server-tap = fw-s, the firewall veth towards the "
                      "server (198.51.100.0/24); tcpdump -s 262144 -U, classic pcap; timestamps share one clock",
              "bytes": sizes},
    "hosts": {"client": "192.0.2.10 (xf-c, impacket %s, python %s)" % (v["impacket"], v["python"]),
              "firewall": ["192.0.2.1", "198.51.100.1"],
              "server": "198.51.100.10 (xf-s, Samba AD DC dc1.lab.example, domain LAB, %s, samba -i -M single)" % v["samba"]},
    "links": [{"a": "xf-c c-eth0 192.0.2.10/24", "b": "xf-fw fw-c 192.0.2.1/24", "mtu": 1500},
              {"a": "xf-fw fw-s 198.51.100.1/24", "b": "xf-s s-eth0 198.51.100.10/24", "mtu": 1500}],
    "routes": {"xf-c": ["198.51.100.0/24 via 192.0.2.1"], "xf-s": ["192.0.2.0/24 via 198.51.100.1"]},
    "sysctls": {"all namespaces": ["net.ipv6.conf.all.disable_ipv6=1"], "xf-fw": ["net.ipv4.ip_forward=1"],
                "xf-c": ["net.ipv4.tcp_syn_linear_timeouts=%s (kernel default)" % v.get("tcp_syn_linear_timeouts"),
                         "net.ipv4.tcp_syn_retries=%s (kernel default)" % v.get("tcp_syn_retries")],
                "all veths": ["ethtool -K tx off tso off gso off gro off"]},
    "implementations": {"kernel": v["kernel"], "server": "%s (Debian samba-ad-dc %s)" % (v["samba"], v["samba_ad_dc_deb"]),
                        "client": "impacket %s (%s), scripts/lab/rpc_client.py" % (v["impacket"], v["python"]),
                        "capture": v["tcpdump"], "nftables": v["nftables"]},
    "samba": {"smb_conf_global": [l.strip() for l in smbconf.split("[global]", 1)[1].split("[", 1)[0].splitlines()
                                  if l.strip() and ("dir" not in l and "directory" not in l and "log file" not in l)],
              "listening_tcp_ports": listening,
              "ncacn_http_593": "not served: Samba 4.17 opens no listener on 593 and its endpoint mapper "
                                "registers no ncacn_http tower (ept_map for one -> ept_s_not_registered)"},
    "firewall": {"namespace": "xf-fw", "stateful": True, "nft_ruleset": ruleset},
    "expected_rules": ([{"label": "anything from the clients to the DC", "proto": "tcp", "src": "192.0.2.0/24",
                         "dst": SERVER, "verdict": "allowed", "required": True}]
                       if sc == "smb-pipe-allow" else
                       [{"label": "SMB / ncacn_http", "proto": "tcp", "src": "192.0.2.0/24", "dst": SERVER,
                         "dports": [139, 445, 593], "verdict": "allowed", "required": True},
                        {"label": "RPC dynamic range (announced by the endpoint mapper over SMB)", "proto": "tcp",
                         "src": "192.0.2.0/24", "dst": SERVER, "dports": "55000-55100", "verdict": "dropped",
                         "required": True}]),
    "flows": out_flows,
    "smb_connections": smb_conns,
    "ept_map_answers": answers,
    "blocked_ports": blocked,
    "other_packets": {t: dict(c) for t, c in other.items()},
    "client_results": client,
    "verification": {"ok": all(c["ok"] for c in checks), "checks": checks},
    "tshark_oracle": oracle,
    "tshark_version": v["tshark"],
    "generated_by": "scripts/lab-rpc-transports " + sc,
}
json.dump(truth, open(os.path.join(work, "truth.json"), "w"), indent=1)
for c in checks:
    print("  [%s] %s %s" % ("ok" if c["ok"] else "FAIL", c["check"], c["detail"]), file=sys.stderr)
sys.exit(0 if truth["verification"]["ok"] else 1)
