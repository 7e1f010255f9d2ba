//! The report contract as types: every object the JSON report, the NDJSON
//! records and the live stream write is one of these records, serialized
//! by serde, and `docs/report.schema.json` is generated from them
//! ([`report_schema`], [`record_schema`]; docs/report-contract.md says what
//! each field means).
//!
//! Byte order of the keys: the report was first written from `json!`
//! objects, whose keys serde_json sorts; the records declare their fields
//! in that (alphabetical) order so the bytes stay the same. Two records
//! keep the order of the hand-written writer instead: [`FlowLine`] (its
//! own order, `record` first) and [`VerdictRow`] (sorted); that writer
//! (`records.rs`) stays for speed and is proven byte-equal to them by a
//! property test.
//!
//! A field that is always written (maybe as `null`) is required in the
//! schema; one skipped when absent (`skip_serializing_if`) is optional.

use std::collections::BTreeMap;
use std::net::IpAddr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;

use crate::event::InterfaceId;
use crate::finding::FindingKind;
use crate::policy::DecisionKind;
use crate::time::Rfc3339;
use crate::verdict::{Status, VerdictLabel};

/// `skip_serializing_if` for the fields written only when set.
type Skip<T> = Option<T>;

impl JsonSchema for Rfc3339 {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "RFC 3339 UTC with microseconds, e.g. 2026-11-21T23:41:07.123456Z",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$"
        })
    }
}

/// A value written through its `Display`, without an intermediate `String`.
pub struct Shown<T>(pub T);

impl<T: std::fmt::Display> Serialize for Shown<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<T> JsonSchema for Shown<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "string".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string" })
    }
}

/// `major.minor`.
pub struct Version(pub u16, pub u16);

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// An RPC interface: `{"name", "uuid", "version": "major.minor"}`.
#[derive(Serialize, JsonSchema)]
pub struct Interface {
    /// The catalog's name for it, `null` when unknown.
    pub name: Option<&'static str>,
    /// Lowercase with dashes.
    pub uuid: Shown<crate::proto::dcerpc::Uuid>,
    /// `major.minor`.
    pub version: Shown<Version>,
}

impl Interface {
    pub(crate) fn new(i: &InterfaceId) -> Self {
        Interface {
            name: super::json::interface_name(i),
            uuid: Shown(i.uuid),
            version: Shown(Version(i.major, i.minor)),
        }
    }
}

/// Where an input was cut short.
#[derive(Serialize, JsonSchema)]
pub struct InputProblem<'a> {
    pub message: &'a str,
    /// Byte offset in the file.
    pub offset: u64,
}

/// `inputs[]`: one per capture file (or live interface).
#[derive(Serialize, JsonSchema)]
pub struct Input<'a> {
    pub bytes: u64,
    /// No problem cut the input short.
    pub complete: bool,
    pub first_ts: Option<Rfc3339>,
    /// `pcap` or `pcapng` (live: `live`).
    pub format: &'a str,
    pub last_ts: Option<Rfc3339>,
    /// The first link type, `none` when no frame was read.
    pub link_type: String,
    pub link_types: Vec<String>,
    /// Frames read.
    pub packets: u64,
    /// Frames that passed the BPF filter.
    pub packets_matched: u64,
    pub path: &'a str,
    pub problem: Option<InputProblem<'a>>,
    /// NDJSON: `input`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Skip<&'static str>,
    pub snaplen_truncated: u64,
    /// Two-tap analyses: `inside` or `outside`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tap: Skip<&'static str>,
}

/// `stats.dcerpc`: what DCE/RPC parsing refused or dropped to stay bounded.
#[derive(Serialize, JsonSchema)]
pub struct DcerpcStats {
    pub bytes_peak: u64,
    pub evicted_over_budget: u64,
    pub evicted_stalled: u64,
    pub over_cap: u64,
    pub parsed_flows: u64,
    pub pdus_refused: u64,
}

/// `stats.smb`: SMB connections parsed for the DCE/RPC of their named
/// pipes (#24). Their parsers count with DCE/RPC's (`stats.dcerpc`: slots,
/// budget, evictions).
#[derive(Serialize, JsonSchema)]
pub struct SmbStats {
    /// Connections that sent encrypted (SMB3 transform) messages, and
    /// those messages: what their pipes carried cannot be seen.
    pub encrypted_flows: u64,
    pub encrypted_messages: u64,
    /// Connections left unparsed because every parser slot was taken.
    pub over_cap: u64,
    /// Connections parsed.
    pub parsed_flows: u64,
    /// Pipe messages larger than the parser holds (16.5 KiB), passed over.
    pub pipe_messages_refused: u64,
    /// Named pipes that carried DCE/RPC.
    pub pipes: u64,
    /// Pipes refused because a connection had 16 open.
    pub pipes_over_cap: u64,
    /// Requests forgotten unanswered because 64 were waiting.
    pub requests_dropped: u64,
}

/// `stats.rfc1006`: what RFC 1006 (TPKT/COTP) parsing passed over or gave
/// up to stay bounded (#23).
#[derive(Serialize, JsonSchema)]
pub struct Rfc1006Stats {
    /// Bytes of TPKT packets beyond the head that is read, passed over.
    pub bytes_passed: u64,
    /// Peak bytes held by RFC 1006 parsers (per table, summed).
    pub bytes_peak: u64,
    /// Parsers dropped because the budget was still exceeded.
    pub evicted_over_budget: u64,
    /// Parsers dropped to give their slot to a new connection (no TPKT
    /// framed for 10 s).
    pub evicted_stalled: u64,
    /// Times the parser holding most gave up waiting for its holes.
    pub holes_given_up: u64,
    /// Connections left unparsed because every parser slot was taken.
    pub over_cap: u64,
    /// Flows whose RFC 1006 was parsed.
    pub parsed_flows: u64,
    /// TPKT packets longer than the head that is read.
    pub tpkts_cut: u64,
}

/// `stats.fragments`: IP reassembly counters.
#[derive(Serialize, JsonSchema)]
pub struct FragmentStats {
    pub datagrams_reassembled: u64,
    pub dropped_bad: u64,
    pub dropped_cap: u64,
    pub dropped_overlap: u64,
    pub dropped_timeout: u64,
    pub dropped_truncated: u64,
    pub fragments_seen: u64,
    /// Datagrams still incomplete at the end of the input whose first
    /// fragment came less than a second before its last packet: perhaps
    /// cut by the capture, not counted as lost (#25).
    pub incomplete_at_end: u64,
    /// Datagrams that never completed although their first fragment came:
    /// each is evidence for its flow (`fragments-dropped`, #25).
    pub incomplete_with_first: u64,
    /// Of those, the ones whose flow was not tracked.
    pub lost_unmatched: u64,
    pub overlapping_fragments: u64,
}

/// `stats` (NDJSON: the last record, with `schema`).
#[derive(Serialize, JsonSchema)]
pub struct Stats<'a> {
    pub bytes: u64,
    pub dcerpc: DcerpcStats,
    /// Frames that could not be decoded, by reason.
    pub decode_errors: &'a BTreeMap<&'static str, u64>,
    pub flows: usize,
    pub flows_evicted: u64,
    pub flows_not_retained: u64,
    /// Flow records the report carries, when `--flows` chose fewer than
    /// all (`failed` or `none`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flows_reported: Option<u64>,
    pub flows_reused: u64,
    pub flows_timed_out: u64,
    pub fragments: FragmentStats,
    pub icmp_packets: u64,
    pub icmp_unmatched: u64,
    /// Live captures only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_drops: Skip<u64>,
    /// Live captures only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_drops: Skip<u64>,
    pub other_ip_packets: u64,
    pub packets: u64,
    pub peak_flows_tracked: u64,
    /// NDJSON: `stats`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Skip<&'static str>,
    pub rfc1006: Rfc1006Stats,
    pub scan_probes_untracked: u64,
    /// SMB parsing for named pipes (#24).
    pub smb: SmbStats,
    /// NDJSON: the report's schema name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Skip<&'static str>,
    pub snaplen_truncated: u64,
    pub tcp_packets: u64,
    pub udp_packets: u64,
}

/// A hand-off's `outcome`: its `kind` and the fields of that kind (keys
/// sorted).
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Outcome {
    /// `followed`.
    Followed {
        client_port: u16,
        kind: &'static str,
        latency_ms: f64,
    },
    /// `syn-unanswered`.
    SynUnanswered {
        attempts: u32,
        kind: &'static str,
        syns: u32,
    },
    /// `reset`: the RST's TTL is `null` when unknown.
    Reset {
        attempts: u32,
        kind: &'static str,
        rst_ttl: Option<u8>,
    },
    /// `icmp-unreachable`.
    IcmpUnreachable {
        code: u8,
        /// 4 or 6.
        icmp_version: u8,
        kind: &'static str,
        sender: IpAddr,
        r#type: u8,
    },
    /// `existing-connection`.
    ExistingConnection {
        client_port: u16,
        kind: &'static str,
    },
    /// Every other kind: `no-attempt`, `capture-ended`, `udp-unanswered`,
    /// `superseded`, `not-captured`, `sealed` (DCOM: the answer was sealed
    /// and no follow-up could be inferred).
    Other { kind: &'static str },
}

/// `handoffs[]` (live: the `handoff` record).
#[derive(Serialize, JsonSchema)]
pub struct Handoff {
    pub client: IpAddr,
    pub followed: bool,
    /// Sealed DCOM hand-offs only: `true` when a connection from the
    /// client to the server's dynamic range (ports 1024 and up that no
    /// well-known service has) starting within 5 s of the answer was taken
    /// as its likely follow-up: `port`, `outcome` and `matched_address`
    /// are that connection's, inferred, not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inferred: Skip<bool>,
    pub interface: Interface,
    pub mapper: IpAddr,
    /// `tower-address` (the address the tower or DCOM string binding
    /// named), `mapper-address` (the one the client reached the mapper,
    /// activator or resolver on, when another), `answering-host` (DCOM:
    /// the bindings named the host only by name, so only a follow-up to
    /// the answering host is matched) or `any-address` (an RPC proxy's URL
    /// named the backend by name: the proxy's connection to that port at
    /// any address is matched, and `server` is that address); `null` when
    /// no connection was seen.
    pub matched: Option<&'static str>,
    pub matched_address: Option<IpAddr>,
    /// `ept_map` or `ept_lookup` (endpoint mapper); DCOM (#22):
    /// `remote-create-instance`, `remote-get-class-object`,
    /// `remote-activation`, `resolve-oxid`, `resolve-oxid2`, `server-alive2`;
    /// `rpc-proxy` (#24: an RPC over HTTP request, `RPC_IN_DATA` or
    /// `RPC_OUT_DATA /rpc/rpcproxy.dll?host:port`, named the backend; see
    /// `rpc_proxy`).
    pub operation: &'static str,
    pub outcome: Outcome,
    pub port: u16,
    /// `tcp`, `udp` or `http`.
    pub proto: &'static str,
    /// NDJSON and live: `handoff`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Skip<&'static str>,
    /// An RPC proxy's hand-off only (operation `rpc-proxy`, #24): the
    /// request that named the backend. `client` is then the proxy (it
    /// connects to the backend), `mapper` the proxy too, and `interface`
    /// the nil UUID (the URL names none; a follow-up's label names what it
    /// bound). When the URL names the backend by name and no connection
    /// from the proxy to the port was seen, `server` is the unspecified
    /// address (`0.0.0.0` or `::`). A proxy hand-off with outcome
    /// `no-attempt` is never a finding: the proxy's backend side may be
    /// outside the capture. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_proxy: Skip<RpcProxy>,
    /// DCOM: `true` when the call was sealed (packet privacy): its
    /// bindings could not be read; `port` is 0 unless a follow-up was
    /// inferred. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed: Skip<bool>,
    pub server: IpAddr,
    pub service: &'static str,
    /// DCOM: every string binding of the answer that named this port, as
    /// written (`HOST[49670]`, `10.0.0.5[49670]`). Absent for the endpoint
    /// mapper's towers and for sealed answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string_bindings: Skip<Vec<String>>,
    /// What the answer that named the port came over (#24), as MS-RPCE
    /// names protocol sequences: `ncacn_ip_tcp` (the endpoint mapper on
    /// TCP 135, a DCOM activator), `ncadg_ip_udp`, `ncacn_np` (an SMB
    /// named pipe, `\PIPE\epmapper`, over 445 or 139) or `ncacn_http`
    /// (the RPC over HTTP mapper on TCP 593, after its `ncacn_http/1.0`
    /// banner; or an RPC proxy's URL, operation `rpc-proxy`).
    pub transport: &'static str,
    pub ts: Rfc3339,
    pub window_cut_by_capture_end: bool,
}

/// `handoffs[].rpc_proxy`: the RPC over HTTP request that named a backend.
#[derive(Serialize, JsonSchema)]
pub struct RpcProxy {
    /// The backend as the URL wrote it, `host:port`.
    pub backend: String,
    /// `RPC_IN_DATA` (the IN channel) or `RPC_OUT_DATA` (the OUT channel).
    pub method: &'static str,
    /// The RPC over HTTP client that sent the request.
    pub requested_by: IpAddr,
}

/// `endpoints[]`: every tower an endpoint mapper advertised.
#[derive(Serialize, JsonSchema)]
pub struct Endpoint<'a> {
    pub annotation: Option<&'a str>,
    pub first_ts: Rfc3339,
    pub interface: Option<Interface>,
    pub port: u16,
    /// `tcp`, `udp` or `http`.
    pub proto: &'static str,
    /// NDJSON: `endpoint`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Skip<&'static str>,
    pub server: IpAddr,
}

/// Declares the evidence records: each with its own fields and the
/// `confidence`, `ts` and `type` every evidence has. Their keys are written
/// sorted (see [`Evidence`]), whatever the order here.
macro_rules! evidence_records {
    ($(
        $(#[$meta:meta])*
        $name:ident $(<$lt:lifetime>)? {
            $( $(#[$fmeta:meta])* $field:ident: $ty:ty, )*
        }
    )*) => {$(
        $(#[$meta])*
        #[derive(Serialize, JsonSchema)]
        pub struct $name $(<$lt>)? {
            $( $(#[$fmeta])* pub $field: $ty, )*
            /// `low`, `medium` or `high`.
            pub confidence: &'static str,
            pub ts: Rfc3339,
            pub r#type: &'static str,
        }
    )*};
}

evidence_records! {
    /// Evidence of type `epm-not-registered`.
    EpmNotRegisteredEvidence {
        client: IpAddr,
        operation: &'static str,
        /// The EPM status, `0x` and 8 hex digits.
        status: String,
    }

    /// Evidence of type `syn-unanswered`.
    SynUnansweredEvidence {
        client: IpAddr,
        client_port: u16,
        gaps_ms: Vec<f64>,
        retransmissions: u32,
        syns: u32,
    }

    /// Evidence of type `rst`.
    RstEvidence<'a> {
        client: IpAddr,
        client_port: u16,
        forged: Option<bool>,
        /// `zero` or `counter`.
        host_ip_id: Option<&'static str>,
        host_ttls: &'a [u8],
        ip_id: Option<u16>,
        reason: &'a str,
        sender: &'static str,
        ttl: Option<u8>,
    }

    /// Evidence of type `icmp-unreachable`.
    IcmpUnreachableEvidence {
        client: IpAddr,
        client_port: u16,
        code: u8,
        icmp_type: u8,
        icmp_version: u8,
        meaning: &'static str,
        sender: IpAddr,
    }

    /// Evidence of type `handoff-unfulfilled`.
    HandoffUnfulfilledEvidence {
        client: IpAddr,
        interface: Interface,
        mapper: IpAddr,
        operation: &'static str,
    }

    /// Evidence of type `cotp-refused`.
    CotpRefusedEvidence<'a> {
        client: IpAddr,
        client_port: u16,
        reason: &'a str,
    }

    /// Evidence of type `udp-unanswered`.
    UdpUnansweredEvidence {
        client: IpAddr,
        client_port: u16,
        datagrams: u64,
    }

    /// Evidence of type `dropped-between-taps`.
    DroppedBetweenTapsEvidence {
        client: IpAddr,
        client_port: u16,
        direction: crate::finding::Direction,
        missing_on: &'static str,
        packets: u64,
        seen_on: &'static str,
    }

    /// Evidence of type `data-unanswered`.
    DataUnansweredEvidence<'a> {
        client: IpAddr,
        client_port: u16,
        direction: crate::finding::Direction,
        idle_gap_s: f64,
        /// The RST that ended it, as `rst` evidence.
        reset: Option<Box<Evidence<'a>>>,
        retransmissions: u32,
        retransmitted_bytes: u64,
        span_ms: f64,
    }

    /// Evidence of type `path-mtu` (#25): segments too big for the path.
    PathMtuEvidence {
        client: IpAddr,
        client_port: u16,
        /// Whose segments were too big (`reply`: the server's).
        direction: crate::finding::Direction,
        /// Who sent an ICMP "fragmentation needed" / "packet too big"
        /// quoting that data, seen at the tap (null: none seen).
        icmp_sender: Option<IpAddr>,
        /// The MTU it named.
        icmp_mtu: Option<u32>,
        /// Payload bytes of the largest segment sent again.
        largest_segment_bytes: u16,
        /// The most of that side's data one acknowledgement covered: no
        /// larger segment is known to have passed.
        passed_bytes: u16,
        retransmissions: u32,
        /// Payload bytes of the smallest segment sent again.
        segment_bytes: u16,
        span_ms: f64,
    }

    /// Evidence of type `fragments-missing` (#25): datagrams whose later
    /// fragments never came.
    FragmentsMissingEvidence {
        client: IpAddr,
        client_port: u16,
        datagrams: u32,
        /// Whose datagrams (`reply`: the server's).
        direction: crate::finding::Direction,
        /// Fragments of them that came.
        fragments: u32,
        /// The largest length (IP payload bytes) known of one: only a
        /// datagram whose last fragment came tells it (null: none did).
        datagram_bytes: Option<u32>,
        /// The most bytes (IP payload) that came of one of them.
        received_bytes: u32,
        /// Two taps: the tap where they were whole (null: one tap).
        whole_on: Option<&'static str>,
    }

    /// Evidence of type `established`.
    EstablishedEvidence {
        client: IpAddr,
        connections: u64,
    }

    /// Evidence of type `probes` (lists hold at most 64 values; the totals
    /// count them all).
    ProbesEvidence<'a> {
        icmp_errors: u64,
        last_ts: Rfc3339,
        ports: &'a [u16],
        ports_total: u64,
        probes: u64,
        reset: u64,
        sources: &'a [IpAddr],
        sources_total: u64,
        targets: &'a [IpAddr],
        targets_total: u64,
        unanswered: u64,
    }
}

/// A finding's `evidence[]` entry: one shape per `type`, each with
/// `type`, `ts` and `confidence`.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum EvidenceShape<'a> {
    EpmNotRegistered(EpmNotRegisteredEvidence),
    SynUnanswered(SynUnansweredEvidence),
    Rst(RstEvidence<'a>),
    IcmpUnreachable(IcmpUnreachableEvidence),
    HandoffUnfulfilled(HandoffUnfulfilledEvidence),
    CotpRefused(CotpRefusedEvidence<'a>),
    UdpUnanswered(UdpUnansweredEvidence),
    DroppedBetweenTaps(DroppedBetweenTapsEvidence),
    DataUnanswered(DataUnansweredEvidence<'a>),
    PathMtu(PathMtuEvidence),
    FragmentsMissing(FragmentsMissingEvidence),
    Established(EstablishedEvidence),
    Probes(ProbesEvidence<'a>),
}

/// A finding's `evidence[]` entry ([`EvidenceShape`]), written with its
/// keys sorted as the report always had them.
#[derive(JsonSchema)]
#[serde(transparent)]
pub struct Evidence<'a>(pub EvidenceShape<'a>);

impl Serialize for Evidence<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Through a `Value`, whose object keys are sorted: evidence is
        // rare (a finding's few, a failed attempt's one).
        serde_json::to_value(&self.0)
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

/// A fix's `pin[]`: the registry value that pins a dynamic RPC port.
#[derive(Serialize, JsonSchema)]
pub struct Pin<'a> {
    pub article: &'static str,
    pub component: &'a str,
    pub exchange: Option<&'a str>,
    pub format: &'static str,
    pub notes: &'a [String],
    pub on: &'a str,
    pub registry_key: &'a str,
    pub restart: &'static str,
    pub service: &'static str,
    pub r#type: &'static str,
    pub value: &'a str,
}

/// A fix's `keepalive` (killed-after-idle findings only).
#[derive(Serialize, JsonSchema)]
pub struct Keepalive<'a> {
    pub advice: &'static str,
    pub article: &'static str,
    pub default: &'static str,
    pub format: &'static str,
    pub registry_key: &'a str,
    pub set_to_ms: u64,
    pub r#type: &'static str,
    pub value: &'static str,
}

/// A fix's `host_setting` (`pmtu-black-hole`; `fragments-dropped` of
/// Kerberos): a registry value to set on hosts, from its article (#25).
#[derive(Serialize, JsonSchema)]
pub struct HostSetting<'a> {
    pub advice: &'static str,
    pub article: &'static str,
    pub default: &'static str,
    pub format: &'static str,
    /// Which hosts.
    pub on: &'a str,
    pub registry_key: &'a str,
    /// What to restart afterwards ("" when nothing).
    pub restart: &'static str,
    pub set_to: &'static str,
    pub r#type: &'static str,
    pub value: &'static str,
}

/// A count exact up to 2^64, approximate (a float) beyond.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Count {
    Exact(u64),
    Approximate(f64),
}

/// A fix's `sources`: whom its rules name and what they stand for.
#[derive(Serialize, JsonSchema)]
pub struct FixSources<'a> {
    pub added_addresses: Count,
    pub blocks: &'a [String],
    /// `exact`, `policy-group` or `covering-prefix`.
    pub by: &'static str,
    pub clients: usize,
    pub exact_blocks: usize,
    /// The policy group, for `by: policy-group`.
    pub group: Option<&'a str>,
}

/// A finding's `fix`.
#[derive(Serialize, JsonSchema)]
pub struct Fix<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_setting: Skip<HostSetting<'a>>,
    pub iptables: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keepalive: Skip<Keepalive<'a>>,
    pub nftables: &'a [String],
    pub note: Option<&'a str>,
    pub pin: Vec<Pin<'a>>,
    pub port_advice: Option<&'static str>,
    pub restrict_range: Option<&'a str>,
    pub sources: Option<FixSources<'a>>,
    pub summary: &'a str,
}

/// An empty object: a finding with nothing to fix.
#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct NoFix {}

/// A finding's `fix`: a [`Fix`], or `{}`.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum MaybeFix<'a> {
    Fix(Box<Fix<'a>>),
    None(NoFix),
}

/// A killed-after-idle finding's `idle_timeout`.
#[derive(Serialize, JsonSchema)]
pub struct IdleTimeout {
    pub killed_after_idle_s: u64,
    pub longest_surviving_idle_s: Option<u64>,
}

/// `findings[]`: what the admin must act on (live: the `finding` record).
#[derive(Serialize, JsonSchema)]
pub struct Finding<'a> {
    pub clients: &'a [IpAddr],
    pub confidence: &'static str,
    pub consequence: Option<&'static str>,
    pub evidence: Vec<Evidence<'a>>,
    pub first_ts: Rfc3339,
    pub fix: MaybeFix<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Skip<IdleTimeout>,
    pub interface: Option<Interface>,
    pub kind: FindingKind,
    pub policy: DecisionKind,
    pub policy_rule: Option<&'a str>,
    pub port: u16,
    /// `tcp` or `udp`.
    pub proto: &'static str,
    /// NDJSON and live: `finding`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Skip<&'static str>,
    pub server: IpAddr,
    pub service: &'static str,
    pub services: &'a [&'static str],
    /// `action` or `info`.
    pub severity: &'static str,
    pub verdict: &'a str,
}

/// `taps.ports[]`: one port's connections as each tap saw them.
#[derive(Serialize, JsonSchema)]
pub struct TapPort {
    pub connections_both: u64,
    pub connections_only_inside: u64,
    pub connections_only_outside: u64,
    pub packets_inside: [u64; 2],
    pub packets_outside: [u64; 2],
    pub port: u16,
    pub proto: &'static str,
    pub server: IpAddr,
    pub vanished: bool,
}

/// `taps`: the join of two taps (two-tap analyses only).
#[derive(Serialize, JsonSchema)]
pub struct Taps<'a> {
    pub aligned_by_connections: usize,
    pub clock_offset_us: i64,
    pub inside: &'a [String],
    pub outside: &'a [String],
    pub ports: Vec<TapPort>,
    /// NDJSON: `taps`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Skip<&'static str>,
}

/// `limits[]`: a capture filter and what it limits.
#[derive(Serialize, JsonSchema)]
pub struct Limit<'a> {
    /// `--filter` or `if_filter`.
    pub applied_by: &'static str,
    pub evaluated: bool,
    /// The expression, `null` for BPF byte code.
    pub filter: Option<&'a str>,
    pub handoffs_not_captured: u64,
    /// `if_filter`: the input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Skip<&'a str>,
    /// `if_filter`: the interface's number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Skip<u32>,
    /// `filter`.
    pub kind: &'static str,
    pub link_types: Vec<String>,
    pub note: String,
    /// NDJSON: `limit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Skip<&'static str>,
}

/// `one_way`: servers whose answers the capture misses.
#[derive(Serialize, JsonSchema)]
pub struct OneWay {
    pub connections: u64,
    pub note: &'static str,
    /// At most 64.
    pub servers: Vec<IpAddr>,
    pub servers_total: usize,
}

/// A flow's `handoff`: the hand-off that announced it.
#[derive(Serialize, JsonSchema)]
pub struct FlowHandoff {
    pub client: IpAddr,
    pub latency_ms: f64,
    pub other_client: bool,
    pub ts: Rfc3339,
}

/// A flow's `app`: what its payload said it is.
#[derive(Serialize, JsonSchema)]
pub struct FlowApp<'a> {
    pub detail: Option<&'a str>,
    /// RFC 1006 / COTP flows: the connection's outcome, TSAPs and
    /// classification.
    pub rfc1006: Option<serde_json::Value>,
    pub service: &'static str,
    /// SMB connections whose messages were parsed for named pipes (#24):
    /// messages framed and passed over, encrypted (SMB3 transform) and
    /// compressed messages (nothing in them can be seen), pipes opened
    /// and refused, requests forgotten, resyncs. Absent on other flows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smb: Skip<serde_json::Value>,
}

/// A flow's `icmp_errors[]`.
#[derive(Serialize, JsonSchema)]
pub struct FlowIcmp {
    pub ts: Rfc3339,
    pub sender: IpAddr,
    pub icmp_version: u8,
    pub r#type: u8,
    pub code: u8,
    pub quotes_originator: bool,
}

/// A flow's `rpc.interfaces[]`.
#[derive(Serialize, JsonSchema)]
pub struct BoundInterface {
    pub accepted: bool,
    pub name: Option<&'static str>,
    /// `ndr` or `ndr64`.
    pub transfer_syntax: &'static str,
    pub uuid: Shown<crate::proto::dcerpc::Uuid>,
    pub version: Shown<Version>,
}

/// A flow's `rpc`: its DCE/RPC summary.
#[derive(Serialize, JsonSchema)]
pub struct FlowRpc {
    pub auth_level: Option<u8>,
    pub auth_type: Option<u8>,
    pub binds_rejected: u64,
    pub bytes_skipped: u64,
    pub encrypted: bool,
    pub epm_answers: u64,
    pub faults: u64,
    pub interfaces: Vec<BoundInterface>,
    pub malformed_pdus: u64,
    pub pdus: u64,
    /// The SMB named pipes the DCE/RPC was carried in (#24: `epmapper`,
    /// `lsarpc`, ...; without `\\`, `PIPE\\` or case), in the order first
    /// opened, at most 16. Absent for DCE/RPC straight over TCP or UDP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipes: Skip<Vec<String>>,
    pub registrations: u64,
    pub requests: u64,
    pub resyncs: u64,
    pub stream_gaps: u64,
}

/// A flow's `taps`: packets [client→server, server→client] on each tap.
#[derive(Serialize, JsonSchema)]
pub struct FlowTaps {
    pub inside: Option<[u64; 2]>,
    pub outside: Option<[u64; 2]>,
}

/// `flows[]`: one per connection or UDP conversation. The keys keep the
/// order of the byte writer (`records.rs`), which writes this record.
#[derive(Serialize, JsonSchema)]
pub struct FlowLine<'a> {
    /// NDJSON: `flow`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Skip<&'static str>,
    pub proto: &'static str,
    pub client: IpAddr,
    pub client_port: u16,
    pub server: IpAddr,
    pub server_port: u16,
    pub first_ts: Rfc3339,
    pub last_ts: Rfc3339,
    pub service: &'static str,
    pub identified_by: &'static str,
    /// The service the port would say, when the payload said another.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_service_mismatch: Skip<&'static str>,
    pub interface: Option<Interface>,
    pub handoff: Option<FlowHandoff>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Skip<FlowApp<'a>>,
    /// TCP: Zeek's conn_state; UDP: `udp`.
    pub state: &'static str,
    pub history: &'a str,
    pub syn_retries: u32,
    pub syn_gaps_ms: Vec<f64>,
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub payload_bytes: [u64; 2],
    pub responder_ttl: Option<u8>,
    pub responder_ip_id: Option<u16>,
    pub icmp_errors: Vec<FlowIcmp>,
    pub icmp_error_count: u32,
    pub rpc: Option<FlowRpc>,
    /// `end-of-capture`, `idle-timeout`, `evicted` or `reused`.
    pub end: &'static str,
    /// Two-tap analyses only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taps: Skip<FlowTaps>,
}

/// `verdicts[]`: one per server, port and client group. Written by the
/// byte writer (`records.rs`).
#[derive(Serialize, JsonSchema)]
pub struct VerdictRow<'a> {
    pub client_group: &'a str,
    pub clients: &'a [IpAddr],
    pub failed: u64,
    /// `null` when never seen.
    pub first_ts: Option<Rfc3339>,
    pub last_ts: Option<Rfc3339>,
    pub policy: DecisionKind,
    pub port: u16,
    pub proto: &'static str,
    /// NDJSON: `verdict`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Skip<&'static str>,
    pub server: IpAddr,
    pub service: &'static str,
    pub status: Status,
    pub verdict: VerdictLabel,
    pub working: u64,
}

/// Live: `scan`, once per scan when it shows.
#[derive(Serialize, JsonSchema)]
pub struct Scan {
    pub kind: FindingKind,
    pub port: Option<u16>,
    pub proto: &'static str,
    pub record: &'static str,
    pub source: Option<IpAddr>,
    pub target: Option<IpAddr>,
    pub ts: Rfc3339,
}

/// Live: `attempt-failed` and `connection-failed`.
#[derive(Serialize, JsonSchema)]
pub struct AttemptFailed<'a> {
    pub client: IpAddr,
    pub client_port: u16,
    pub epm_announced: bool,
    pub evidence: Evidence<'a>,
    pub identified_by: &'static str,
    pub interface: Option<Interface>,
    pub kind: FindingKind,
    pub last_ts: Rfc3339,
    pub packets: [u64; 2],
    pub port: u16,
    pub proto: &'static str,
    pub record: &'static str,
    pub server: IpAddr,
    pub service: &'static str,
    pub state: &'static str,
    pub syn_retries: u32,
    pub ts: Rfc3339,
}

/// The JSON report (`analyze --format json`): for the schema only; the
/// report is written member by member, in this order.
#[derive(JsonSchema)]
// Never built: it only names the report's members for the schema.
#[allow(dead_code)]
pub struct Report<'a> {
    /// `exflow.report/1`.
    schema: &'static str,
    /// Present only when a capture filter limits the report.
    #[serde(skip_serializing_if = "Option::is_none")]
    limits: Skip<Vec<Limit<'a>>>,
    /// Present only when the capture is one-way for some server.
    #[serde(skip_serializing_if = "Option::is_none")]
    one_way: Skip<OneWay>,
    inputs: Vec<Input<'a>>,
    stats: Stats<'a>,
    handoffs: Vec<Handoff>,
    endpoints: Vec<Endpoint<'a>>,
    flows: Vec<FlowLine<'a>>,
    findings: Vec<Finding<'a>>,
    verdicts: Vec<VerdictRow<'a>>,
    /// Two-tap analyses only.
    #[serde(skip_serializing_if = "Option::is_none")]
    taps: Skip<Taps<'a>>,
}

/// One NDJSON line (`analyze --format ndjson`) or live stream line
/// (`exflow live`), told apart by `record`.
#[derive(JsonSchema)]
#[serde(untagged)]
// Never built: it only names the records for the schema.
#[allow(dead_code, clippy::large_enum_variant)]
pub enum Record<'a> {
    Input(Input<'a>),
    Limit(Limit<'a>),
    Handoff(Handoff),
    Endpoint(Endpoint<'a>),
    Flow(FlowLine<'a>),
    Finding(Finding<'a>),
    Verdict(VerdictRow<'a>),
    Taps(Taps<'a>),
    Stats(Stats<'a>),
    Scan(Scan),
    AttemptFailed(AttemptFailed<'a>),
}

/// The generator: draft 2020-12, the serialize side (a field skipped when
/// absent is optional, every other one required, `null` or not).
fn generator() -> SchemaGenerator {
    schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .with_transform(schemars::transform::RecursiveTransform(absent_not_null))
        .into_generator()
}

/// An optional field is absent when unset, never `null`: its schema loses
/// the `null` that `Option` gave it.
fn absent_not_null(schema: &mut Schema) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    let required: Vec<serde_json::Value> = obj
        .get("required")
        .and_then(|r| r.as_array())
        .cloned()
        .unwrap_or_default();
    let Some(props) = obj.get_mut("properties").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for (name, p) in props.iter_mut() {
        if required.iter().any(|r| r == name) {
            continue;
        }
        let Some(p) = p.as_object_mut() else {
            continue;
        };
        if let Some(types) = p.get_mut("type").and_then(|t| t.as_array_mut()) {
            types.retain(|t| t != "null");
            if types.len() == 1 {
                let only = types[0].clone();
                p.insert("type".into(), only);
            }
        }
        if let Some(any) = p.get_mut("anyOf").and_then(|a| a.as_array_mut()) {
            any.retain(|a| a.get("type").is_none_or(|t| t != "null"));
            if any.len() == 1 {
                let only = any[0].clone();
                p.remove("anyOf");
                if let Some(only) = only.as_object() {
                    p.extend(only.clone());
                }
            }
        }
    }
}

/// The JSON Schema of the JSON report.
pub fn report_schema() -> Schema {
    generator().into_root_schema_for::<Report<'static>>()
}

/// The JSON Schema of one NDJSON or live stream record.
pub fn record_schema() -> Schema {
    generator().into_root_schema_for::<Record<'static>>()
}
