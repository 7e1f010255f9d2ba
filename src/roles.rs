//! Who is who without a policy file: `--exchange`, `--dc`, `--clients`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// An IPv4 or IPv6 network in CIDR notation (a bare address is a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.net().contains(ip)
    }

    /// The network as `ipnet` has it (host bits kept, as in `addr`).
    pub fn net(&self) -> IpNet {
        // A Cidr is only made with a prefix that fits its address (`from_str`);
        // one built by hand with a longer prefix is taken as a host.
        IpNet::new(self.addr, self.prefix).unwrap_or_else(|_| IpNet::from(self.addr))
    }
}

impl From<IpNet> for Cidr {
    fn from(n: IpNet) -> Cidr {
        Cidr {
            addr: n.addr(),
            prefix: n.prefix_len(),
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// `192.0.2.0/24`, `2001:db8::/32`, or a bare address (a /32 or /128).
    /// Addresses are read by the standard library (no leading zeros, which
    /// `ipnet`'s own parser would take), the prefix checked by `ipnet`.
    fn from_str(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{s}' is not an IP address or CIDR network"))?;
        let net = match prefix {
            None => IpNet::from(addr),
            Some(p) => p
                .parse::<u8>()
                .ok()
                .and_then(|p| IpNet::new(addr, p).ok())
                .ok_or_else(|| {
                    let max = if addr.is_ipv4() { 32 } else { 128 };
                    format!("'{s}': the prefix length must be 0..={max}")
                })?,
        };
        Ok(Cidr::from(net))
    }
}

/// Roles given on the command line (the policy file will carry the same).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roles {
    /// Exchange servers.
    pub exchange: Vec<Cidr>,
    /// Domain controllers / global catalogs.
    pub dcs: Vec<Cidr>,
    /// Client networks.
    pub clients: Vec<Cidr>,
    /// The Exchange servers' version (`--exchange-version`, or what the
    /// policy's profiles name): registry values that pin a port depend on
    /// it. None: unknown, every covered version's values are given.
    pub exchange_version: Option<crate::kb::ExchangeVersion>,
}

impl Roles {
    pub fn is_exchange(&self, ip: &IpAddr) -> bool {
        self.exchange.iter().any(|c| c.contains(ip))
    }

    pub fn is_dc(&self, ip: &IpAddr) -> bool {
        self.dcs.iter().any(|c| c.contains(ip))
    }

    pub fn is_client(&self, ip: &IpAddr) -> bool {
        self.clients.iter().any(|c| c.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing_and_membership() {
        let c: Cidr = "192.0.2.0/24".parse().unwrap();
        assert!(c.contains(&"192.0.2.77".parse().unwrap()));
        assert!(!c.contains(&"198.51.100.1".parse().unwrap()));
        let one: Cidr = "198.51.100.10".parse().unwrap();
        assert_eq!(one.prefix, 32);
        assert!(one.contains(&"198.51.100.10".parse().unwrap()));
        assert!(!one.contains(&"198.51.100.11".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(&"203.0.113.9".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(&"2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains(&"192.0.2.1".parse().unwrap()));
        assert!("192.0.2.0/33".parse::<Cidr>().is_err());
        assert!("exchange01".parse::<Cidr>().is_err());
        assert!("10.0.0.0/x".parse::<Cidr>().is_err());
        assert!("010.0.0.0/8".parse::<Cidr>().is_err());
        // Host bits are kept, and membership is by the network.
        let host: Cidr = " 10.1.2.3/8 ".parse().unwrap();
        assert_eq!(host.to_string(), "10.1.2.3/8");
        assert!(host.contains(&"10.200.0.1".parse().unwrap()));
        assert_eq!(
            "fe80::/129".parse::<Cidr>(),
            Err("'fe80::/129': the prefix length must be 0..=128".to_string())
        );
        assert_eq!(
            "300.1.1.1".parse::<Cidr>(),
            Err("'300.1.1.1' is not an IP address or CIDR network".to_string())
        );
    }
}
