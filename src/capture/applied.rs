//! The filters that decided what a capture holds — `--filter` (every frame
//! was read through it) and a pcapng interface's own capture filter (its
//! `if_filter`: what it dropped was never written) — and whether a packet
//! that is not in the capture would have passed them. A connection the
//! filters would have dropped is missing because of them, not because it
//! never happened: the correlator asks [`CaptureFilter::dropping`] before
//! it takes a missing follow-up for a blocked one.
//!
//! The would-be packet is built ([`super::probe`]) in each link type the
//! filter was applied to (Ethernet for a link type the probe cannot
//! frame) and run through the program libpcap compiles for that link type
//! (`pcap_offline_filter`). Link-layer details of the real packet are not
//! known: MAC addresses are made up and there is no VLAN tag, so a filter
//! on those says nothing about it.

use std::net::{IpAddr, SocketAddr};

use super::filter::compile;
use super::probe::{first_packet, probe_link};
use super::{InputInfo, LinkType};

/// Where a filter was applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterOrigin {
    /// The inputs were read through it (`--filter`).
    Reader,
    /// A pcapng interface captured through it (its IDB's `if_filter`).
    Interface {
        /// The input, as reported in `inputs[].path`.
        input: String,
        /// The interface's place among the file's interface blocks.
        interface: u32,
    },
}

/// A filter that decided which packets the analysis holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedFilter {
    /// libpcap syntax; `None` for an interface filter of another kind (BPF
    /// byte code), which cannot be evaluated: nothing is known to pass it.
    pub expression: Option<String>,
    pub origin: FilterOrigin,
    /// The link types of the frames it was applied to.
    pub links: Vec<LinkType>,
}

impl AppliedFilter {
    /// `"--filter"` or `"if_filter"`, as reports name them.
    pub fn applied_by(&self) -> &'static str {
        match self.origin {
            FilterOrigin::Reader => "--filter",
            FilterOrigin::Interface { .. } => "if_filter",
        }
    }
}

/// The filters the inputs were read or captured through, in input order:
/// each `--filter` expression once (over the supported link types of the
/// inputs read through it), then every interface filter. Empty when
/// nothing was filtered.
pub fn applied_filters(inputs: &[InputInfo]) -> Vec<AppliedFilter> {
    let mut out: Vec<AppliedFilter> = Vec::new();
    for i in inputs {
        let Some(expr) = &i.filter else { continue };
        let at = match out.iter().position(|f| f.expression.as_ref() == Some(expr)) {
            Some(at) => at,
            None => {
                out.push(AppliedFilter {
                    expression: Some(expr.clone()),
                    origin: FilterOrigin::Reader,
                    links: Vec::new(),
                });
                out.len() - 1
            }
        };
        let links = &mut out[at].links;
        for &l in i.link_types.iter().filter(|l| l.is_supported()) {
            if !links.contains(&l) {
                links.push(l);
            }
        }
    }
    for i in inputs {
        for f in &i.interface_filters {
            out.push(AppliedFilter {
                expression: f.expression.clone(),
                origin: FilterOrigin::Interface {
                    input: i.path.clone(),
                    interface: f.interface,
                },
                links: vec![f.link],
            });
        }
    }
    out
}

/// One link type a filter is tested in: the frame layout and the program
/// (`None`: it did not compile, so nothing is known to pass).
struct Program {
    link: LinkType,
    program: Option<pcap::BpfProgram>,
}

/// The applied filters, compiled: answers whether a packet the capture
/// does not hold would have passed them.
pub struct CaptureFilter {
    filters: Vec<AppliedFilter>,
    programs: Vec<Vec<Program>>,
}

impl std::fmt::Debug for CaptureFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureFilter")
            .field("filters", &self.filters)
            .finish_non_exhaustive()
    }
}

impl CaptureFilter {
    /// Compiles `filters` for their link types; `None` when there are none
    /// (nothing was filtered).
    pub fn new(filters: &[AppliedFilter]) -> Option<CaptureFilter> {
        if filters.is_empty() {
            return None;
        }
        let programs = filters
            .iter()
            .map(|f| {
                let mut links: Vec<LinkType> = Vec::new();
                let given = if f.links.is_empty() {
                    &[LinkType::ETHERNET][..]
                } else {
                    &f.links[..]
                };
                for &l in given {
                    let fl = probe_link(l);
                    if !links.contains(&fl) {
                        links.push(fl);
                    }
                }
                links
                    .into_iter()
                    .map(|link| Program {
                        link,
                        program: f.expression.as_deref().and_then(|e| compile(e, link).ok()),
                    })
                    .collect()
            })
            .collect();
        Some(CaptureFilter {
            filters: filters.to_vec(),
            programs,
        })
    }

    pub fn filters(&self) -> &[AppliedFilter] {
        &self.filters
    }

    /// Whether filter `i` could be evaluated on every link type it was
    /// applied to (it is an expression libpcap compiles for them).
    pub fn evaluated(&self, i: usize) -> bool {
        self.programs
            .get(i)
            .is_some_and(|p| p.iter().all(|p| p.program.is_some()))
    }

    /// The filters (indices into [`Self::filters`]) that would have
    /// dropped the first packet of a connection from `client:client_port`
    /// to `server:port` — a TCP SYN, or a UDP datagram for `proto` 17 — in
    /// some link type they were applied to (a link type that cannot carry
    /// the packet's address family is skipped). A filter that could not be
    /// compiled drops it: nothing is known to pass it. Empty: the capture
    /// would hold it. (A client of the other address family than the
    /// server's — the tower named an IPv4 address to an IPv6 client —
    /// connects from an address not known here: the unspecified one.)
    pub fn dropping(
        &self,
        proto: u8,
        client: IpAddr,
        client_port: u16,
        server: IpAddr,
        port: u16,
    ) -> Vec<u16> {
        let v6 = server.is_ipv6();
        let client = match (client, v6) {
            (IpAddr::V4(_), true) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            (IpAddr::V6(_), false) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            (c, _) => c,
        };
        let (client, server) = (
            SocketAddr::new(client, client_port),
            SocketAddr::new(server, port),
        );
        let mut frames: Vec<(LinkType, Vec<u8>)> = Vec::new();
        let mut frame = |link: LinkType| -> Vec<u8> {
            if let Some((_, f)) = frames.iter().find(|(l, _)| *l == link) {
                return f.clone();
            }
            let bytes = first_packet(link, proto, client, server);
            frames.push((link, bytes.clone()));
            bytes
        };
        let mut out = Vec::new();
        for (i, programs) in self.programs.iter().enumerate() {
            let drops = programs.iter().any(|p| {
                let carries = match p.link {
                    LinkType::IPV4 => !v6,
                    LinkType::IPV6 => v6,
                    _ => true,
                };
                carries
                    && match &p.program {
                        Some(prog) => !prog.filter(&frame(p.link)),
                        None => true,
                    }
            });
            if drops {
                out.push(u16::try_from(i).unwrap_or(u16::MAX));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{PROTO_TCP, PROTO_UDP};
    use std::net::Ipv4Addr;

    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));

    fn read_through(expr: &str, links: &[LinkType]) -> AppliedFilter {
        AppliedFilter {
            expression: Some(expr.into()),
            origin: FilterOrigin::Reader,
            links: links.to_vec(),
        }
    }

    #[test]
    fn a_follow_up_is_tested_against_the_filter_in_every_link_type() {
        let links = [
            LinkType::ETHERNET,
            LinkType::RAW,
            LinkType::LINUX_SLL,
            LinkType::LINUX_SLL2,
            LinkType::NULL,
            LinkType::LOOP,
        ];
        for &link in &links {
            let f = CaptureFilter::new(&[
                read_through("tcp port 135", &[link]),
                read_through("tcp port 135 or tcp portrange 1024-65535", &[link]),
                read_through("tcp port 135 or portrange 49152-65535", &[link]),
                read_through("udp", &[link]),
            ])
            .unwrap();
            assert!((0..4).all(|i| f.evaluated(i)), "{link}");
            // A Windows 2003 port from a Windows XP client port.
            assert_eq!(
                f.dropping(PROTO_TCP, CLIENT, 1040, SERVER, 1029),
                vec![0, 2, 3],
                "{link}"
            );
            // The same port from a Vista client: its own port passes.
            assert_eq!(
                f.dropping(PROTO_TCP, CLIENT, 49700, SERVER, 1029),
                vec![0, 3],
                "{link}"
            );
            assert_eq!(
                f.dropping(PROTO_UDP, CLIENT, 1040, SERVER, 50000),
                vec![0, 1],
                "{link}"
            );
            // (BSD loopback: which AF_INET6 value libpcap compiles "ip6"
            // to depends on the platform it was built for.)
            if matches!(link, LinkType::NULL | LinkType::LOOP) {
                continue;
            }
            let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
            assert_eq!(
                f.dropping(PROTO_TCP, v6("2001:db8::1"), 1040, v6("2001:db8::2"), 55000),
                vec![0, 3],
                "{link}"
            );
        }
    }

    #[test]
    fn a_filter_that_cannot_be_evaluated_lets_nothing_be_known_to_pass() {
        let f = CaptureFilter::new(&[
            AppliedFilter {
                expression: None,
                origin: FilterOrigin::Interface {
                    input: "x.pcapng".into(),
                    interface: 0,
                },
                links: vec![LinkType::ETHERNET],
            },
            read_through("port nonsense", &[LinkType::ETHERNET]),
            read_through("tcp", &[]),
        ])
        .unwrap();
        assert!(!f.evaluated(0) && !f.evaluated(1) && f.evaluated(2));
        assert_eq!(f.dropping(PROTO_TCP, CLIENT, 1040, SERVER, 135), vec![0, 1]);
        assert!(CaptureFilter::new(&[]).is_none());
    }

    #[test]
    fn applied_filters_name_the_reader_filter_once_and_every_interface_filter() {
        let input = |path: &str, links: &[LinkType]| InputInfo {
            path: path.into(),
            link_types: links.to_vec(),
            filter: Some("tcp port 135".into()),
            ..InputInfo::default()
        };
        let mut b = input("b.pcapng", &[LinkType::RAW, LinkType(147)]);
        b.interface_filters.push(super::super::InterfaceFilter {
            interface: 1,
            link: LinkType::RAW,
            expression: Some("host 198.51.100.10".into()),
        });
        let got = applied_filters(&[input("a.pcap", &[LinkType::ETHERNET]), b]);
        assert_eq!(
            got,
            vec![
                read_through("tcp port 135", &[LinkType::ETHERNET, LinkType::RAW]),
                AppliedFilter {
                    expression: Some("host 198.51.100.10".into()),
                    origin: FilterOrigin::Interface {
                        input: "b.pcapng".into(),
                        interface: 1
                    },
                    links: vec![LinkType::RAW],
                }
            ]
        );
        assert!(applied_filters(&[InputInfo::default()]).is_empty());
    }
}
