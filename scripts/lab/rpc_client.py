#!/usr/bin/env python3
"""exflow lab client (issue #24): DCE/RPC inside SMB2, SMB1 and plain TCP, with impacket.

Run by scripts/lab-rpc-transports inside the client namespace (xf-c), against the Samba AD DC
at 198.51.100.10. Every step is written as one JSON line to --out (what impacket reported);
the captures themselves are the truth, this file only says what the client saw.

  allow: SMB2 session: \\pipe\\epmapper (bind EPM, ept_map for several interfaces on
         ncacn_ip_tcp, one ept_map asking for an ncacn_http tower), then a TCP connection +
         bind to every announced port (the hand-off), then \\pipe\\lsarpc, \\pipe\\samr and
         \\pipe\\srvsvc with one or two calls each. SMB1 session (NT LM 0.12): \\pipe\\epmapper
         (ept_map netlogon) and \\pipe\\lsarpc (OpenPolicy2 + QueryInformationPolicy2).
         Finally a direct ncacn_http connection to 593.
  drop:  SMB2 session: \\pipe\\epmapper ept_map for the same interfaces, then the client
         tries every announced port (the firewall drops them: connect timeout). SMB1 session:
         \\pipe\\epmapper ept_map netlogon, then the same attempt.
"""
import argparse
import json
import socket
import sys
import time
import traceback
from struct import unpack

from impacket.dcerpc.v5 import epm, lsad, samr, srvs, transport
from impacket.smb import SMB_DIALECT
from impacket.smb3structs import SMB2_DIALECT_21
from impacket.smbconnection import SMBConnection
from impacket.uuid import uuidtup_to_bin

NDR = ("8a885d04-1ceb-11c9-9fe8-08002b104860", "2.0")
IFACES = [  # name, (uuid, version) -- interfaces Samba registers on ncacn_ip_tcp
    ("netlogon", ("12345678-1234-ABCD-EF00-01234567CFFB", "1.0")),
    ("drsuapi", ("E3514235-4B06-11D1-AB04-00C04FC2DCD2", "4.0")),
    ("lsarpc", ("12345778-1234-ABCD-EF00-0123456789AB", "0.0")),
    ("samr", ("12345778-1234-ABCD-EF00-0123456789AC", "1.0")),
]
IFMAP = dict(IFACES)

OUT = None


def emit(**kw):
    kw["t"] = time.time()
    OUT.write(json.dumps(kw) + "\n")
    OUT.flush()
    print(json.dumps(kw), file=sys.stderr)


def ept_map(dce, ifid, protocol="ncacn_ip_tcp"):
    """One ept_map request on an already bound EPM connection (impacket's hept_map binds
    again on every call, which a second time on the same connection is rejected)."""
    remote = uuidtup_to_bin(ifid)
    ndr = uuidtup_to_bin(NDR)
    interface = epm.EPMRPCInterface()
    interface["InterfaceUUID"] = remote[:16]
    interface["MajorVersion"] = unpack("<H", remote[16:18])[0]
    interface["MinorVersion"] = unpack("<H", remote[18:20])[0]
    rep = epm.EPMRPCDataRepresentation()
    rep["DataRepUuid"] = ndr[:16]
    rep["MajorVersion"] = unpack("<H", ndr[16:18])[0]
    rep["MinorVersion"] = unpack("<H", ndr[18:20])[0]
    prot = epm.EPMProtocolIdentifier()
    prot["ProtIdentifier"] = epm.FLOOR_RPCV5_IDENTIFIER
    port = epm.EPMPortAddr()
    if protocol == "ncacn_http":
        port["PortIdentifier"] = epm.FLOOR_HTTP_IDENTIFIER
    port["IpPort"] = 0
    host = epm.EPMHostAddr()
    host["Ip4addr"] = socket.inet_aton("0.0.0.0")
    tower = epm.EPMTower()
    tower["NumberOfFloors"] = 5
    tower["Floors"] = interface.getData() + rep.getData() + prot.getData() + port.getData() + host.getData()
    req = epm.ept_map()
    req["max_towers"] = 4
    req["map_tower"]["tower_length"] = len(tower)
    req["map_tower"]["tower_octet_string"] = tower.getData()
    req.fields["obj"].fields["ReferentID"] = 1
    req.fields["map_tower"].fields["ReferentID"] = 2
    resp = dce.request(req)
    res = []
    for t in resp["ITowers"]:
        tw = epm.EPMTower(b"".join(t["Data"]["tower_octet_string"]))
        floors = tw["Floors"]
        res.append({"binding": epm.PrintStringBinding(floors),
                    "port": epm.EPMPortAddr(floors[3].getData())["IpPort"]})
    return res


def pipe(conn, name, args):
    # impacket's SMB transports take the pipe name without the \pipe prefix (as its
    # DCERPCTransportFactory strips it from ncacn_np:host[\pipe\name]).
    t = transport.SMBTransport(args.server, filename=name[len("\\pipe"):], smb_connection=conn)
    return t.get_dce_rpc()


def do_epmapper(conn, dialect, args, names, with_http):
    """Returns {iface name: port} for the ncacn_ip_tcp answers."""
    dce = pipe(conn, r"\pipe\epmapper", args)
    dce.connect()
    dce.bind(epm.MSRPC_UUID_PORTMAP)
    emit(step="bind", via=dialect, pipe=r"\pipe\epmapper", iface="epmapper", ok=True)
    ports = {}
    for n in names:
        try:
            r = ept_map(dce, IFMAP[n])
            ports[n] = r[0]["port"] if r else None
            emit(step="ept_map", via=dialect, pipe=r"\pipe\epmapper", iface=n, protocol="ncacn_ip_tcp",
                 towers=r, ok=True)
        except Exception as e:
            emit(step="ept_map", via=dialect, pipe=r"\pipe\epmapper", iface=n, protocol="ncacn_ip_tcp",
                 ok=False, error=str(e))
    if with_http:
        try:
            r = ept_map(dce, IFMAP["netlogon"], "ncacn_http")
            emit(step="ept_map", via=dialect, pipe=r"\pipe\epmapper", iface="netlogon", protocol="ncacn_http",
                 towers=r, ok=True)
        except Exception as e:
            emit(step="ept_map", via=dialect, pipe=r"\pipe\epmapper", iface="netlogon", protocol="ncacn_http",
                 ok=False, error=str(e))
    dce.disconnect()
    return ports


def do_handoff(args, name, port):
    sb = "ncacn_ip_tcp:%s[%d]" % (args.server, port)
    t = transport.DCERPCTransportFactory(sb)
    t.set_connect_timeout(args.connect_timeout)
    dce = t.get_dce_rpc()
    t0 = time.time()
    try:
        dce.connect()
        dce.bind(uuidtup_to_bin(IFMAP[name]))
        emit(step="handoff", iface=name, binding=sb, port=port, ok=True, bound=True,
             seconds=round(time.time() - t0, 3))
        dce.disconnect()
    except Exception as e:
        emit(step="handoff", iface=name, binding=sb, port=port, ok=False, error="%s: %s" % (type(e).__name__, e),
             seconds=round(time.time() - t0, 3))


def do_lsa(conn, dialect, args):
    dce = pipe(conn, r"\pipe\lsarpc", args)
    dce.connect()
    dce.bind(lsad.MSRPC_UUID_LSAD)
    emit(step="bind", via=dialect, pipe=r"\pipe\lsarpc", iface="lsarpc", ok=True)
    r = lsad.hLsarOpenPolicy2(dce, lsad.POLICY_VIEW_LOCAL_INFORMATION)
    h = r["PolicyHandle"]
    q = lsad.hLsarQueryInformationPolicy2(dce, h, lsad.POLICY_INFORMATION_CLASS.PolicyPrimaryDomainInformation)
    dom = q["PolicyInformation"]["PolicyPrimaryDomainInfo"]["Name"]
    lsad.hLsarClose(dce, h)
    emit(step="call", via=dialect, pipe=r"\pipe\lsarpc", iface="lsarpc",
         calls=["LsarOpenPolicy2", "LsarQueryInformationPolicy2(PolicyPrimaryDomainInformation)", "LsarClose"],
         result=dom, ok=True)
    dce.disconnect()


def do_samr(conn, dialect, args):
    dce = pipe(conn, r"\pipe\samr", args)
    dce.connect()
    dce.bind(samr.MSRPC_UUID_SAMR)
    emit(step="bind", via=dialect, pipe=r"\pipe\samr", iface="samr", ok=True)
    r = samr.hSamrConnect(dce)
    h = r["ServerHandle"]
    e = samr.hSamrEnumerateDomainsInSamServer(dce, h)
    doms = [d["Name"] for d in e["Buffer"]["Buffer"]]
    samr.hSamrCloseHandle(dce, h)
    emit(step="call", via=dialect, pipe=r"\pipe\samr", iface="samr",
         calls=["SamrConnect", "SamrEnumerateDomainsInSamServer", "SamrCloseHandle"], result=doms, ok=True)
    dce.disconnect()


def do_srvsvc(conn, dialect, args):
    dce = pipe(conn, r"\pipe\srvsvc", args)
    dce.connect()
    dce.bind(srvs.MSRPC_UUID_SRVS)
    emit(step="bind", via=dialect, pipe=r"\pipe\srvsvc", iface="srvsvc", ok=True)
    r = srvs.hNetrShareEnum(dce, 1)
    shares = [s["shi1_netname"][:-1] for s in r["InfoStruct"]["ShareInfo"]["Level1"]["Buffer"]]
    emit(step="call", via=dialect, pipe=r"\pipe\srvsvc", iface="srvsvc", calls=["NetrShareEnum(level 1)"],
         result=shares, ok=True)
    dce.disconnect()


def smb_session(args, smb1):
    # SMB2: dialect 2.1 (signing, no encryption). impacket encrypts every SMB 3.x session
    # whose server offers encryption, which would hide the pipes from the taps.
    kw = {"preferredDialect": SMB_DIALECT if smb1 else SMB2_DIALECT_21}
    conn = SMBConnection(args.server, args.server, sess_port=445, timeout=10, **kw)
    conn.login(args.user, args.password, args.domain)
    d = conn.getDialect()
    label = "smb1" if d == SMB_DIALECT else "smb2"
    emit(step="smb_session", via=label, dialect=("NT LM 0.12" if d == SMB_DIALECT else "0x%04x" % d),
         signing=conn.isSigningRequired(), ok=True)
    return conn, label


def main():
    global OUT
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["allow", "drop"])
    ap.add_argument("--server", default="198.51.100.10")
    ap.add_argument("--user", default="Administrator")
    ap.add_argument("--password", required=True)
    ap.add_argument("--domain", default="LAB")
    ap.add_argument("--connect-timeout", type=float, default=4)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    OUT = open(args.out, "a")
    names = [n for n, _ in IFACES]
    failed = 0

    def step(fn, *a):
        nonlocal failed
        try:
            return fn(*a)
        except Exception as e:
            failed += 1
            emit(step="error", where=fn.__name__, ok=False, error="%s: %s" % (type(e).__name__, e),
                 trace=traceback.format_exc().splitlines()[-3:])
            return None

    # --- SMB2 (dialect 2.1)
    conn, via = smb_session(args, smb1=False)
    ports = step(do_epmapper, conn, via, args, names, args.mode == "allow") or {}
    time.sleep(0.3)
    for n in names:
        if ports.get(n):
            do_handoff(args, n, ports[n])
            time.sleep(0.2)
    if args.mode == "allow":
        step(do_lsa, conn, via, args)
        step(do_samr, conn, via, args)
        step(do_srvsvc, conn, via, args)
    conn.logoff()
    conn.close()
    emit(step="smb_close", via=via, ok=True)
    time.sleep(0.5)

    # --- SMB1 (NT LM 0.12: WriteAndX / ReadAndX on the pipe)
    conn, via = smb_session(args, smb1=True)
    p1 = step(do_epmapper, conn, via, args, ["netlogon"], False) or {}
    if args.mode == "allow":
        step(do_lsa, conn, via, args)
    conn.logoff()
    conn.close()
    emit(step="smb_close", via=via, ok=True)
    if args.mode == "drop" and p1.get("netlogon"):
        time.sleep(0.3)
        do_handoff(args, "netlogon", p1["netlogon"])
    time.sleep(0.5)

    # --- ncacn_http direct (legacy, no RPC proxy): Samba 4.x does not listen on 593
    if args.mode == "allow":
        sb = "ncacn_http:%s[593]" % args.server
        t = transport.DCERPCTransportFactory(sb)
        t.set_connect_timeout(args.connect_timeout)
        dce = t.get_dce_rpc()
        try:
            dce.connect()
            dce.bind(epm.MSRPC_UUID_PORTMAP)
            r = ept_map(dce, IFMAP["netlogon"])
            emit(step="ept_map", via="ncacn_http", iface="netlogon", protocol="ncacn_ip_tcp", towers=r, ok=True)
            dce.disconnect()
        except Exception as e:
            emit(step="ncacn_http_connect", binding=sb, ok=False, error="%s: %s" % (type(e).__name__, e))
    OUT.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
