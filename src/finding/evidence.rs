//! Evidence: what the packets alone show about one attempt, and how sure
//! each piece is. The report contract's `evidence` entries, one variant per
//! `type`.

use std::net::IpAddr;

use crate::event::{EpmOperation, InterfaceId};
use crate::Ts;

/// How sure a piece of evidence (or a finding) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

/// Which tap of a two-tap analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tap {
    Inside,
    Outside,
}

impl Tap {
    pub fn as_str(self) -> &'static str {
        match self {
            Tap::Inside => "inside",
            Tap::Outside => "outside",
        }
    }
    pub fn other(self) -> Tap {
        match self {
            Tap::Inside => Tap::Outside,
            Tap::Outside => Tap::Inside,
        }
    }
}

/// What an ICMP destination-unreachable code means for a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpMeaning {
    /// Administratively prohibited: a filter rejected it.
    AdminProhibited,
    /// Nothing listens on the port (or a firewall pretends so).
    PortUnreachable,
    /// No route, host or network unreachable.
    Unreachable,
    /// Another code (protocol unreachable, fragmentation needed, ...).
    Other,
}

impl IcmpMeaning {
    pub fn of(v6: bool, icmp_type: u8, code: u8) -> IcmpMeaning {
        if v6 {
            match (icmp_type, code) {
                (1, 1) | (1, 5) | (1, 6) => IcmpMeaning::AdminProhibited,
                (1, 4) => IcmpMeaning::PortUnreachable,
                (1, 0) | (1, 2) | (1, 3) => IcmpMeaning::Unreachable,
                _ => IcmpMeaning::Other,
            }
        } else {
            match (icmp_type, code) {
                (3, 9) | (3, 10) | (3, 13) => IcmpMeaning::AdminProhibited,
                (3, 3) => IcmpMeaning::PortUnreachable,
                (3, 0) | (3, 1) | (3, 6) | (3, 7) => IcmpMeaning::Unreachable,
                _ => IcmpMeaning::Other,
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IcmpMeaning::AdminProhibited => "administratively-prohibited",
            IcmpMeaning::PortUnreachable => "port-unreachable",
            IcmpMeaning::Unreachable => "host-or-network-unreachable",
            IcmpMeaning::Other => "other",
        }
    }
}

crate::contract::contract_enum! {
    /// A direction of a flow.
    pub enum Direction {
        /// Responder → originator.
        Reply => "reply",
        /// Originator → responder.
        Request => "request",
    }
}

impl Direction {
    /// What the originator (`true`) or the responder sends.
    pub fn from_originator(originator: bool) -> Direction {
        if originator {
            Direction::Request
        } else {
            Direction::Reply
        }
    }
}

/// One piece of evidence, from the packets alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// The endpoint mapper answered "not registered" (0x16c9a0d6).
    EpmNotRegistered {
        ts: Ts,
        client: IpAddr,
        operation: EpmOperation,
        status: u32,
    },
    /// SYNs (original + retransmissions) that got no answer at all.
    SynUnanswered {
        ts: Ts,
        client: IpAddr,
        client_port: u16,
        syns: u32,
        gaps_us: Vec<u64>,
    },
    /// A reset answered the SYN; compared with what the host normally
    /// sends, it was forged on the way (`forged`) or is the host's own.
    Rst {
        ts: Ts,
        client: IpAddr,
        client_port: u16,
        ttl: Option<u8>,
        ip_id: Option<u16>,
        /// TTLs of the host's own answers (SYN-ACKs) in other connections.
        host_ttls: Vec<u8>,
        /// Whether the host's own answers carry IP ID 0 (Linux with DF) or
        /// a counter; None when it was never seen answering.
        host_ip_id_zero: Option<bool>,
        forged: Option<bool>,
        confidence: Confidence,
        reason: String,
    },
    /// An ICMP/ICMPv6 destination unreachable quoting the attempt.
    IcmpUnreachable {
        ts: Ts,
        client: IpAddr,
        client_port: u16,
        sender: IpAddr,
        v6: bool,
        icmp_type: u8,
        code: u8,
        meaning: IcmpMeaning,
    },
    /// The mapper named this endpoint to the client, which never
    /// connected (from a server-side capture the blocked SYN is invisible).
    HandoffUnfulfilled {
        ts: Ts,
        client: IpAddr,
        mapper: IpAddr,
        interface: InterfaceId,
        operation: EpmOperation,
    },
    /// A COTP connection request answered by a disconnect or error.
    CotpRefused {
        ts: Ts,
        client: IpAddr,
        client_port: u16,
        reason: String,
    },
    /// UDP requests of a request/response service with no answer.
    UdpUnanswered {
        ts: Ts,
        client: IpAddr,
        client_port: u16,
        datagrams: u64,
    },
    /// Packets seen on one tap that never appeared on the other.
    DroppedBetweenTaps {
        ts: Ts,
        client: IpAddr,
        client_port: u16,
        /// The direction that vanished.
        direction: Direction,
        seen_on: Tap,
        missing_on: Tap,
        packets: u64,
    },
    /// After the handshake (#25): data of an answered connection that the
    /// other side never acknowledged until the flow ended: sent again and
    /// again, or answered by a reset the host did not send (`reset`, an
    /// `Rst`, judged by TTL / IP ID).
    DataUnanswered {
        /// First transmission of the unanswered data.
        ts: Ts,
        client: IpAddr,
        client_port: u16,
        /// Whose data went unanswered (request: the client's).
        direction: Direction,
        /// Silence on the connection before it (ms; measured in whole
        /// seconds, see `FlowRecord::longest_answered_gap_s`).
        idle_gap_ms: u64,
        retransmissions: u32,
        retransmitted_bytes: u64,
        /// From the first transmission to the last retransmission.
        span_us: u64,
        reset: Option<Box<Evidence>>,
    },
    /// Path MTU (#25): data of an answered connection sent again and again
    /// in segments larger than any the peer was seen to acknowledge at
    /// once, with don't-fragment set, never answered: too big for a link on
    /// the path, and the "fragmentation needed" / "packet too big" that
    /// should have told the sender never reached it.
    PathMtu {
        /// First transmission of the unanswered data.
        ts: Ts,
        client: IpAddr,
        client_port: u16,
        /// Whose segments were too big (reply: the server's).
        direction: Direction,
        retransmissions: u32,
        /// Payload bytes of the smallest and largest segment sent again.
        segment_bytes: u16,
        largest_segment_bytes: u16,
        /// The most of that side's data one acknowledgement ever covered:
        /// no segment larger than this is known to have passed.
        passed_bytes: u16,
        /// From the first transmission to the last retransmission.
        span_us: u64,
        /// An ICMP "fragmentation needed" / "packet too big" quoting that
        /// data seen at the tap: who sent it and the MTU it named. Seen here
        /// yet the sender kept sending big segments: it never reached the
        /// sender.
        icmp_sender: Option<IpAddr>,
        icmp_mtu: Option<u32>,
    },
    /// IP fragments (#25): datagrams of the flow whose first fragment came
    /// and whose later fragments never did.
    FragmentsMissing {
        /// The first such datagram's first fragment.
        ts: Ts,
        client: IpAddr,
        client_port: u16,
        /// Whose datagrams (reply: the server's).
        direction: Direction,
        datagrams: u32,
        /// Fragments of them that came.
        fragments: u32,
        /// The most bytes (IP payload) that came of one of them.
        received_bytes: u32,
        /// The largest length (IP payload) known of one: only a datagram
        /// whose last fragment came tells it.
        datagram_bytes: Option<u32>,
        /// Two taps: the tap where the datagrams were whole (the firewall
        /// dropped the fragments between the taps).
        whole_on: Option<Tap>,
    },
    /// (not-in-policy) connections that worked.
    Established {
        ts: Ts,
        client: IpAddr,
        connections: u64,
    },
    /// A scan's probes (port scan, sweep, flood): single SYNs, what they
    /// reached and how they were answered; lists hold at most 64 values,
    /// the totals count them all.
    Probes {
        ts: Ts,
        last_ts: Ts,
        /// The first source.
        client: IpAddr,
        sources: Vec<IpAddr>,
        sources_total: u64,
        targets: Vec<IpAddr>,
        targets_total: u64,
        ports: Vec<u16>,
        ports_total: u64,
        probes: u64,
        unanswered: u64,
        reset: u64,
        icmp: u64,
    },
}

impl Evidence {
    pub fn ts(&self) -> Ts {
        match self {
            Evidence::EpmNotRegistered { ts, .. }
            | Evidence::SynUnanswered { ts, .. }
            | Evidence::Rst { ts, .. }
            | Evidence::IcmpUnreachable { ts, .. }
            | Evidence::HandoffUnfulfilled { ts, .. }
            | Evidence::CotpRefused { ts, .. }
            | Evidence::UdpUnanswered { ts, .. }
            | Evidence::DroppedBetweenTaps { ts, .. }
            | Evidence::DataUnanswered { ts, .. }
            | Evidence::PathMtu { ts, .. }
            | Evidence::FragmentsMissing { ts, .. }
            | Evidence::Established { ts, .. }
            | Evidence::Probes { ts, .. } => *ts,
        }
    }

    pub fn client(&self) -> IpAddr {
        match self {
            Evidence::EpmNotRegistered { client, .. }
            | Evidence::SynUnanswered { client, .. }
            | Evidence::Rst { client, .. }
            | Evidence::IcmpUnreachable { client, .. }
            | Evidence::HandoffUnfulfilled { client, .. }
            | Evidence::CotpRefused { client, .. }
            | Evidence::UdpUnanswered { client, .. }
            | Evidence::DroppedBetweenTaps { client, .. }
            | Evidence::DataUnanswered { client, .. }
            | Evidence::PathMtu { client, .. }
            | Evidence::FragmentsMissing { client, .. }
            | Evidence::Established { client, .. }
            | Evidence::Probes { client, .. } => *client,
        }
    }

    /// The contract's evidence type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Evidence::EpmNotRegistered { .. } => "epm-not-registered",
            Evidence::SynUnanswered { .. } => "syn-unanswered",
            Evidence::Rst { .. } => "rst",
            Evidence::IcmpUnreachable { .. } => "icmp-unreachable",
            Evidence::HandoffUnfulfilled { .. } => "handoff-unfulfilled",
            Evidence::CotpRefused { .. } => "cotp-refused",
            Evidence::UdpUnanswered { .. } => "udp-unanswered",
            Evidence::DroppedBetweenTaps { .. } => "dropped-between-taps",
            Evidence::DataUnanswered { .. } => "data-unanswered",
            Evidence::PathMtu { .. } => "path-mtu",
            Evidence::FragmentsMissing { .. } => "fragments-missing",
            Evidence::Established { .. } => "established",
            Evidence::Probes { .. } => "probes",
        }
    }

    /// How much this one piece proves.
    pub fn confidence(&self) -> Confidence {
        match self {
            Evidence::SynUnanswered { syns, .. } if *syns >= 2 => Confidence::High,
            Evidence::SynUnanswered { .. } => Confidence::Medium,
            Evidence::Rst { confidence, .. } => *confidence,
            Evidence::IcmpUnreachable { meaning, .. } => match meaning {
                IcmpMeaning::AdminProhibited => Confidence::High,
                _ => Confidence::Medium,
            },
            Evidence::HandoffUnfulfilled { .. } => Confidence::Medium,
            Evidence::UdpUnanswered { .. } => Confidence::Low,
            Evidence::DroppedBetweenTaps { .. } => Confidence::High,
            // A forged reset is as sure as its judgement; unanswered data
            // alone could also be a host that died, unless it was retried
            // many times.
            Evidence::DataUnanswered { reset: Some(r), .. } => r.confidence(),
            Evidence::DataUnanswered {
                retransmissions, ..
            } if *retransmissions >= 4 => Confidence::High,
            Evidence::DataUnanswered { .. } => Confidence::Medium,
            // The ICMP seen while the sender kept sending big segments, or
            // many tries, make it sure; a few tries could be another loss.
            Evidence::PathMtu {
                icmp_sender: Some(_),
                ..
            } => Confidence::High,
            Evidence::PathMtu {
                retransmissions, ..
            } if *retransmissions >= 4 => Confidence::High,
            Evidence::PathMtu { .. } => Confidence::Medium,
            // Measured between two taps, or more than one datagram each
            // missing its later fragments.
            Evidence::FragmentsMissing {
                whole_on: Some(_), ..
            } => Confidence::High,
            Evidence::FragmentsMissing { datagrams, .. } if *datagrams >= 2 => Confidence::High,
            Evidence::FragmentsMissing { .. } => Confidence::Medium,
            _ => Confidence::High,
        }
    }
}
