//! Who is who without a policy file: `--exchange`, `--dc`, `--clients`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 network in CIDR notation (a bare address is a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(net) & mask == u32::from(*a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(net) & mask == u128::from(*a) & mask
            }
            _ => false,
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

    fn from_str(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{s}' is not an IP address or CIDR network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{s}': the prefix length must be 0..={max}"))?,
        };
        Ok(Cidr { addr, prefix })
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
    }
}
