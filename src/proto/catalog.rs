//! The interface catalogue of protocols.md §3: UUID → friendly name, service
//! label (report-contract vocabulary) and the registry values that pin the
//! interface's TCP port. The rows live in the knowledge table
//! ([`crate::kb::INTERFACES`]); this is the parsers' view of them.

use super::dcerpc::Uuid;

pub use crate::kb::{Interface, INTERFACES};

/// Service label for an RPC interface that is not in the catalogue.
pub const SERVICE_RPC_OTHER: &str = "rpc-other";

/// Catalogue entry for `uuid`, if any (versions are not compared).
pub fn lookup(uuid: &Uuid) -> Option<&'static Interface> {
    crate::kb::interface(uuid)
}

/// Service label for `uuid`: the catalogue's, or [`SERVICE_RPC_OTHER`].
pub fn service_of(uuid: &Uuid) -> &'static str {
    lookup(uuid).map_or(SERVICE_RPC_OTHER, |i| i.service)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_unique_and_services_in_vocabulary() {
        let vocab = [
            "exchange-store",
            "exchange-directory",
            "exchange-referral",
            "exchange-sa",
            "exchange-mta",
            "exchange-store-admin",
            "ad-replication",
            "netlogon",
            "lsarpc",
            "samr",
            "dnsserver",
            "frs",
            "dfsr",
            "ismserv",
            "epm",
        ];
        for (i, a) in INTERFACES.iter().enumerate() {
            assert!(vocab.contains(&a.service), "{}", a.service);
            for b in &INTERFACES[i + 1..] {
                assert_ne!(a.uuid, b.uuid, "{} duplicated", a.uuid);
            }
            for p in a.pins {
                assert!(p.value.key.starts_with(crate::kb::SERVICES_KEY));
            }
        }
    }

    #[test]
    fn lookups() {
        let nspi: Uuid = "f5cc5a18-4264-101a-8c59-08002b2f8426".parse().unwrap();
        let i = lookup(&nspi).unwrap();
        assert_eq!(i.name, "NSPI");
        assert_eq!(i.service, "exchange-directory");
        assert_eq!(i.version, Some((56, 0)));
        let emsmdb: Uuid = "a4f1db00-ca47-1067-b31f-00dd010662da".parse().unwrap();
        assert_eq!(service_of(&emsmdb), "exchange-store");
        assert_eq!(
            lookup(&emsmdb).unwrap().pins[0].value.full_key(),
            r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\MSExchangeIS\ParametersSystem"
        );
        assert_eq!(lookup(&emsmdb).unwrap().pins[0].value.value, "TCP/IP Port");
        // The store-admin twin differs from EMSMDB in one nibble only.
        let admin: Uuid = "a4f1db00-ca47-1067-b31e-00dd010662da".parse().unwrap();
        assert_eq!(service_of(&admin), "exchange-store-admin");
        // AsyncEMSMDB ends in …b4e4 (not …b4e5).
        let wrong: Uuid = "5261574a-4572-206e-b268-6b199213b4e5".parse().unwrap();
        assert_eq!(service_of(&wrong), SERVICE_RPC_OTHER);
        let drs: Uuid = "e3514235-4b06-11d1-ab04-00c04fc2dcd2".parse().unwrap();
        assert_eq!(lookup(&drs).unwrap().pins[0].value.value, "TCP/IP Port");
        assert_eq!(service_of(&super::super::dcerpc::UUID_EPM), "epm");
    }
}
