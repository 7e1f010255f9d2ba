//! The well-known ports of the KB tables (Q176466, KB270836, KB280132) and
//! the service names of the report contract.

use crate::packet::{PROTO_TCP, PROTO_UDP};

/// The service a server port conventionally carries, by IP protocol.
///
/// Names are the stable vocabulary of `docs/report-contract.md`.
pub fn service_for_port(proto: u8, port: u16) -> Option<&'static str> {
    let tcp = proto == PROTO_TCP;
    let udp = proto == PROTO_UDP;
    Some(match port {
        25 | 587 if tcp => "smtp",
        53 if tcp || udp => "dns",
        80 if tcp => "http",
        88 if tcp || udp => "kerberos",
        102 if tcp => "rfc1006",
        110 if tcp => "pop3",
        119 if tcp => "nntp",
        123 if udp => "ntp",
        135 if tcp || udp => "epm",
        137 if udp => "netbios-ns",
        138 if udp => "netbios-dgm",
        139 if tcp => "netbios-ssn",
        143 if tcp => "imap",
        389 if tcp || udp => "ldap",
        443 if tcp => "https",
        445 if tcp => "smb",
        563 if tcp => "nntps",
        593 if tcp => "rpc-over-http",
        636 if tcp => "ldaps",
        993 if tcp => "imaps",
        995 if tcp => "pop3s",
        3268 if tcp => "gc",
        3269 if tcp => "gc-ssl",
        5353 if udp => "mdns",
        5355 if tcp || udp => "llmnr",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kb_ports_map_to_contract_names() {
        assert_eq!(service_for_port(PROTO_TCP, 135), Some("epm"));
        assert_eq!(service_for_port(PROTO_UDP, 135), Some("epm"));
        assert_eq!(service_for_port(PROTO_TCP, 3268), Some("gc"));
        assert_eq!(service_for_port(PROTO_UDP, 53), Some("dns"));
        assert_eq!(service_for_port(PROTO_TCP, 123), None);
        assert_eq!(service_for_port(PROTO_UDP, 25), None);
        assert_eq!(service_for_port(PROTO_TCP, 40500), None);
    }
}
