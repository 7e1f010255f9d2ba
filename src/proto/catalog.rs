//! The interface catalogue of protocols.md §3: UUID → friendly name, service
//! label (report-contract vocabulary) and, where §3 names one, the registry
//! value that pins the interface's TCP port.

use super::dcerpc::Uuid;

/// Service label for an RPC interface that is not in the catalogue.
pub const SERVICE_RPC_OTHER: &str = "rpc-other";

/// A registry value that pins an interface's port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistryPin {
    pub key: &'static str,
    pub value: &'static str,
}

/// One catalogue entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interface {
    pub uuid: Uuid,
    /// (major, minor) as listed in §3; informational — matching is by UUID.
    /// `None` where §3 marks the version as not verified (AsyncEMSMDB).
    pub version: Option<(u16, u16)>,
    pub name: &'static str,
    /// Report-contract service name.
    pub service: &'static str,
    /// Where §3 gives one; several products may pin the same interface, the
    /// first listed is the one §3 names first.
    pub pins: &'static [RegistryPin],
}

const SVC: &str = r"HKLM\SYSTEM\CurrentControlSet\Services\";

macro_rules! pin {
    ($key:literal, $value:literal) => {
        RegistryPin {
            key: concat!(r"HKLM\SYSTEM\CurrentControlSet\Services\", $key),
            value: $value,
        }
    };
}

const fn u(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Uuid {
    Uuid::from_fields(d1, d2, d3, d4)
}

const PIN_IS: RegistryPin = pin!(r"MSExchangeIS\ParametersSystem", "TCP/IP Port");
const PIN_SA: RegistryPin = pin!(r"MSExchangeSA\Parameters", "TCP/IP Port");
const PIN_SA_NSPI: RegistryPin = pin!(r"MSExchangeSA\Parameters", "TCP/IP NSPI Port");
const PIN_DS: RegistryPin = pin!(r"MSExchangeDS\Parameters", "TCP/IP port");
const PIN_NTDS: RegistryPin = pin!(r"NTDS\Parameters", "TCP/IP Port");
const PIN_MTA: RegistryPin = pin!(r"MSExchangeMTA\Parameters", "TCP/IP port for RPC listens");
const PIN_NETLOGON: RegistryPin = pin!(r"Netlogon\Parameters", "DCTcpipPort");
const PIN_FRS: RegistryPin = pin!(r"NTFRS\Parameters", "RPC TCP/IP Port Assignment");

/// The catalogue, in §3 order.
pub static INTERFACES: &[Interface] = &[
    Interface {
        uuid: u(
            0xa4f1db00,
            0xca47,
            0x1067,
            [0xb3, 0x1f, 0x00, 0xdd, 0x01, 0x06, 0x62, 0xda],
        ),
        version: Some((0, 81)),
        name: "EMSMDB",
        service: "exchange-store",
        pins: &[PIN_IS],
    },
    Interface {
        uuid: u(
            0x5261574a,
            0x4572,
            0x206e,
            [0xb2, 0x68, 0x6b, 0x19, 0x92, 0x13, 0xb4, 0xe4],
        ),
        version: None,
        name: "AsyncEMSMDB",
        service: "exchange-store",
        pins: &[PIN_IS],
    },
    Interface {
        uuid: u(
            0xf5cc5a18,
            0x4264,
            0x101a,
            [0x8c, 0x59, 0x08, 0x00, 0x2b, 0x2f, 0x84, 0x26],
        ),
        version: Some((56, 0)),
        name: "NSPI",
        service: "exchange-directory",
        pins: &[PIN_DS, PIN_SA_NSPI, PIN_NTDS],
    },
    Interface {
        uuid: u(
            0x1544f5e0,
            0x613c,
            0x11d1,
            [0x93, 0xdf, 0x00, 0xc0, 0x4f, 0xd7, 0xbd, 0x09],
        ),
        version: Some((1, 0)),
        name: "RFR",
        service: "exchange-referral",
        pins: &[PIN_SA],
    },
    Interface {
        uuid: u(
            0x469d6ec0,
            0x0d87,
            0x11ce,
            [0xb1, 0x3f, 0x00, 0xaa, 0x00, 0x3b, 0xac, 0x6c],
        ),
        version: Some((16, 0)),
        name: "Exchange System Attendant",
        service: "exchange-sa",
        pins: &[PIN_SA],
    },
    Interface {
        uuid: u(
            0x83d72bf0,
            0x0d89,
            0x11ce,
            [0xb1, 0x3f, 0x00, 0xaa, 0x00, 0x3b, 0xac, 0x6c],
        ),
        version: Some((6, 0)),
        name: "Exchange System Attendant Private",
        service: "exchange-sa",
        pins: &[PIN_SA],
    },
    Interface {
        uuid: u(
            0xf930c514,
            0x1215,
            0x11d3,
            [0x99, 0xa5, 0x00, 0xa0, 0xc9, 0xb6, 0x1b, 0x04],
        ),
        version: Some((1, 0)),
        name: "Exchange System Attendant Cluster",
        service: "exchange-sa",
        pins: &[PIN_SA],
    },
    Interface {
        uuid: u(
            0x9e8ee830,
            0x4459,
            0x11ce,
            [0x97, 0x9b, 0x00, 0xaa, 0x00, 0x5f, 0xfe, 0xbe],
        ),
        version: Some((2, 0)),
        name: "Exchange MTA",
        service: "exchange-mta",
        pins: &[PIN_MTA],
    },
    Interface {
        uuid: u(
            0x38a94e72,
            0xa9bc,
            0x11d2,
            [0x8f, 0xaf, 0x00, 0xc0, 0x4f, 0xa3, 0x78, 0xff],
        ),
        version: Some((1, 0)),
        name: "Exchange MTA QAdmin",
        service: "exchange-mta",
        pins: &[PIN_MTA],
    },
    Interface {
        uuid: u(
            0x99e64010,
            0xb032,
            0x11d0,
            [0x97, 0xa4, 0x00, 0xc0, 0x4f, 0xd6, 0x55, 0x1d],
        ),
        version: Some((3, 0)),
        name: "Exchange Store Admin",
        service: "exchange-store-admin",
        pins: &[],
    },
    Interface {
        uuid: u(
            0x89742ace,
            0xa9ed,
            0x11cf,
            [0x9c, 0x0c, 0x08, 0x00, 0x2b, 0xe7, 0xae, 0x86],
        ),
        version: Some((2, 0)),
        name: "Exchange Store Admin",
        service: "exchange-store-admin",
        pins: &[],
    },
    Interface {
        uuid: u(
            0xa4f1db00,
            0xca47,
            0x1067,
            [0xb3, 0x1e, 0x00, 0xdd, 0x01, 0x06, 0x62, 0xda],
        ),
        version: Some((1, 0)),
        name: "Exchange Store Admin",
        service: "exchange-store-admin",
        pins: &[],
    },
    Interface {
        uuid: u(
            0xf5cc5a7c,
            0x4264,
            0x101a,
            [0x8c, 0x59, 0x08, 0x00, 0x2b, 0x2f, 0x84, 0x26],
        ),
        version: Some((21, 0)),
        name: "Exchange Directory XDS",
        service: "exchange-directory",
        pins: &[],
    },
    Interface {
        uuid: u(
            0xe3514235,
            0x4b06,
            0x11d1,
            [0xab, 0x04, 0x00, 0xc0, 0x4f, 0xc2, 0xdc, 0xd2],
        ),
        version: Some((4, 0)),
        name: "DRSUAPI",
        service: "ad-replication",
        pins: &[PIN_NTDS],
    },
    Interface {
        uuid: u(
            0x7c44d7d4,
            0x31d5,
            0x424c,
            [0xbd, 0x5e, 0x2b, 0x3e, 0x1f, 0x32, 0x3d, 0x22],
        ),
        version: Some((1, 0)),
        name: "dsaop",
        service: "ad-replication",
        pins: &[],
    },
    Interface {
        uuid: u(
            0x12345678,
            0x1234,
            0xabcd,
            [0xef, 0x00, 0x01, 0x23, 0x45, 0x67, 0xcf, 0xfb],
        ),
        version: Some((1, 0)),
        name: "NETLOGON",
        service: "netlogon",
        pins: &[PIN_NETLOGON],
    },
    Interface {
        uuid: u(
            0x12345778,
            0x1234,
            0xabcd,
            [0xef, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab],
        ),
        version: Some((0, 0)),
        name: "LSARPC",
        service: "lsarpc",
        pins: &[],
    },
    Interface {
        uuid: u(
            0x12345778,
            0x1234,
            0xabcd,
            [0xef, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0xac],
        ),
        version: Some((1, 0)),
        name: "SAMR",
        service: "samr",
        pins: &[],
    },
    Interface {
        uuid: u(
            0x50abc2a4,
            0x574d,
            0x40b3,
            [0x9d, 0x66, 0xee, 0x4f, 0xd5, 0xfb, 0xa0, 0x76],
        ),
        version: Some((5, 0)),
        name: "DNS Server",
        service: "dnsserver",
        pins: &[],
    },
    Interface {
        uuid: u(
            0xf5cc59b4,
            0x4264,
            0x101a,
            [0x8c, 0x59, 0x08, 0x00, 0x2b, 0x2f, 0x84, 0x26],
        ),
        version: Some((1, 1)),
        name: "FRS",
        service: "frs",
        pins: &[PIN_FRS],
    },
    Interface {
        uuid: u(
            0x897e2e5f,
            0x93f3,
            0x4376,
            [0x9c, 0x9c, 0xfd, 0x22, 0x77, 0x49, 0x5c, 0x27],
        ),
        version: Some((1, 0)),
        name: "DFSR",
        service: "dfsr",
        pins: &[],
    },
    Interface {
        uuid: u(
            0x68dcd486,
            0x669e,
            0x11d1,
            [0xab, 0x0c, 0x00, 0xc0, 0x4f, 0xc2, 0xdc, 0xd2],
        ),
        version: Some((1, 0)),
        name: "Intersite Messaging",
        service: "ad-replication",
        pins: &[],
    },
    Interface {
        uuid: super::dcerpc::UUID_EPM,
        version: Some((3, 0)),
        name: "EPM",
        service: "epm",
        pins: &[],
    },
];

/// Catalogue entry for `uuid`, if any (versions are not compared).
pub fn lookup(uuid: &Uuid) -> Option<&'static Interface> {
    INTERFACES.iter().find(|i| i.uuid == *uuid)
}

/// Service label for `uuid`: the catalogue's, or [`SERVICE_RPC_OTHER`].
pub fn service_of(uuid: &Uuid) -> &'static str {
    lookup(uuid).map_or(SERVICE_RPC_OTHER, |i| i.service)
}

/// The registry key prefix every pin shares.
pub fn services_key_prefix() -> &'static str {
    SVC
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
            "epm",
        ];
        for (i, a) in INTERFACES.iter().enumerate() {
            assert!(vocab.contains(&a.service), "{}", a.service);
            for b in &INTERFACES[i + 1..] {
                assert_ne!(a.uuid, b.uuid, "{} duplicated", a.uuid);
            }
            for p in a.pins {
                assert!(p.key.starts_with(services_key_prefix()));
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
            lookup(&emsmdb).unwrap().pins[0].key,
            r"HKLM\SYSTEM\CurrentControlSet\Services\MSExchangeIS\ParametersSystem"
        );
        assert_eq!(lookup(&emsmdb).unwrap().pins[0].value, "TCP/IP Port");
        // The store-admin twin differs from EMSMDB in one nibble only.
        let admin: Uuid = "a4f1db00-ca47-1067-b31e-00dd010662da".parse().unwrap();
        assert_eq!(service_of(&admin), "exchange-store-admin");
        // AsyncEMSMDB ends in …b4e4 (not …b4e5).
        let wrong: Uuid = "5261574a-4572-206e-b268-6b199213b4e5".parse().unwrap();
        assert_eq!(service_of(&wrong), SERVICE_RPC_OTHER);
        let drs: Uuid = "e3514235-4b06-11d1-ab04-00c04fc2dcd2".parse().unwrap();
        assert_eq!(lookup(&drs).unwrap().pins[0].value, "TCP/IP Port");
        assert_eq!(service_of(&super::super::dcerpc::UUID_EPM), "epm");
    }
}
