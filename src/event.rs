//! Events: what shard workers learn inside one flow that matters across
//! flows. The correlator joins them (EPM answers to later connections, ...).

use std::net::IpAddr;

use crate::proto::dcerpc::Uuid;
use crate::proto::dcom::DcomOperation;
use crate::proto::epm::Transport;
use crate::proto::rpch::ProxyChannel;
use crate::Ts;

/// An RPC interface: UUID and version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InterfaceId {
    pub uuid: Uuid,
    pub major: u16,
    pub minor: u16,
}

/// The operation that produced an answer naming ports: the endpoint
/// mapper's, or a DCOM activator's or OXID resolver's (#22).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EpmOperation {
    EptMap,
    EptLookup,
    /// An answer of the DCOM activator or OXID resolver: its string
    /// bindings name the ports.
    Dcom(DcomOperation),
    /// An RPC proxy request (`RPC_IN_DATA` / `RPC_OUT_DATA`
    /// `/rpc/rpcproxy.dll?host:port`, #24): the URL names the backend the
    /// proxy is to connect to. The event's `client` is the RPC over HTTP
    /// client, its `mapper` the proxy, its one endpoint the backend.
    RpcProxy(ProxyChannel),
}

impl EpmOperation {
    pub fn as_str(self) -> &'static str {
        match self {
            EpmOperation::EptMap => "ept_map",
            EpmOperation::EptLookup => "ept_lookup",
            EpmOperation::Dcom(d) => d.as_str(),
            EpmOperation::RpcProxy(_) => "rpc-proxy",
        }
    }

    /// A DCOM answer (string bindings), not the endpoint mapper's (towers).
    pub fn is_dcom(self) -> bool {
        matches!(self, EpmOperation::Dcom(_))
    }
}

/// The protocol sequence (MS-RPCE 2.1.1) an answer naming ports came over:
/// the answering side's own transport, not the endpoints it names (#24).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Carrier {
    /// ncacn_ip_tcp: DCE/RPC straight over TCP (the endpoint mapper on 135).
    #[default]
    Tcp,
    /// ncadg_ip_udp: connectionless DCE/RPC.
    Udp,
    /// ncacn_http: after the `ncacn_http/1.0` banner (the mapper on TCP 593,
    /// or an RPC proxy's backend connection), or the RPC proxy's URL itself.
    Http,
    /// ncacn_np: inside an SMB named pipe (`\PIPE\epmapper`) over 445 or 139.
    NamedPipe,
}

impl Carrier {
    /// The report contract's `transport` string (MS-RPCE's protocol sequence).
    pub fn as_str(self) -> &'static str {
        match self {
            Carrier::Tcp => "ncacn_ip_tcp",
            Carrier::Udp => "ncadg_ip_udp",
            Carrier::Http => "ncacn_http",
            Carrier::NamedPipe => "ncacn_np",
        }
    }

    /// The IP protocol of the connection the answer came over.
    pub fn ip_proto(self) -> u8 {
        match self {
            Carrier::Udp => crate::packet::PROTO_UDP,
            Carrier::Tcp | Carrier::Http | Carrier::NamedPipe => crate::packet::PROTO_TCP,
        }
    }
}

/// One endpoint named in an EPM answer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EpmEndpoint {
    pub interface: Option<InterfaceId>,
    pub transport: Transport,
    pub port: u16,
    /// The tower's IPv4 floor; `None` or 0.0.0.0 means "the mapper itself".
    pub tower_ip: Option<IpAddr>,
    pub annotation: Option<String>,
    /// DCOM: the string bindings that name this port, as written
    /// (`HOST[49670]`, `10.0.0.5[49670]`); `tower_ip` is the address among
    /// them the follow-up is looked for at, `None` when they name the host
    /// only by a NetBIOS or DNS name (the answering host is assumed).
    /// Empty for endpoint-mapper towers.
    pub bindings: Vec<String>,
}

/// An endpoint-mapper answer (ept_map or ept_lookup response), with what
/// the client had asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpmAnswerEvent {
    /// Time of the response PDU that completed the call.
    pub ts: Ts,
    pub client: IpAddr,
    pub client_port: u16,
    /// The endpoint mapper that answered.
    pub mapper: IpAddr,
    pub mapper_port: u16,
    /// What the answer came over (its IP protocol: `Carrier::ip_proto`).
    pub carrier: Carrier,
    pub call_id: u32,
    pub operation: EpmOperation,
    /// ept_lookup's inquiry_type (0 all, 1 by interface, 2 by object, 3 both).
    pub inquiry_type: Option<u32>,
    /// The interface the client asked for (ept_map's tower, ept_lookup's
    /// interface), when readable.
    pub requested: Option<InterfaceId>,
    /// The request carried a null entry handle: the first call of a lookup.
    pub first_call: bool,
    /// The protocol sequence the ept_map request's tower asked for
    /// (ncacn_ip_tcp, ncadg_ip_udp, ncacn_http), when readable.
    pub requested_transport: Option<Transport>,
    /// Whether the answer came in NDR64.
    pub ndr64: bool,
    pub status: u32,
    pub endpoints: Vec<EpmEndpoint>,
    /// DCOM: the call was sealed (packet privacy): the answer's bindings
    /// cannot be read, `endpoints` is empty.
    pub sealed: bool,
}

impl EpmAnswerEvent {
    /// The client asked where ONE interface lives (ept_map, or ept_lookup
    /// by interface): each endpoint named is a hand-off.
    pub fn is_single_interface_query(&self) -> bool {
        match self.operation {
            EpmOperation::EptMap | EpmOperation::Dcom(_) | EpmOperation::RpcProxy(_) => true,
            EpmOperation::EptLookup => matches!(self.inquiry_type, Some(1 | 3)),
        }
    }
}

impl EpmAnswerEvent {
    /// An RPC proxy request as the hand-off it is (#24): the client (at
    /// `client`:`client_port`) asked the proxy (`proxy`:`proxy_port`) to
    /// connect to the backend the URL names. One endpoint: the backend's
    /// port over ncacn_http, at its address when the URL gives one (else
    /// `tower_ip` is `None` and `bindings` holds the name as written).
    pub fn rpc_proxy(
        ts: Ts,
        (client, client_port): (IpAddr, u16),
        (proxy, proxy_port): (IpAddr, u16),
        req: crate::proto::rpch::ProxyRequest,
    ) -> EpmAnswerEvent {
        EpmAnswerEvent {
            ts,
            client,
            client_port,
            mapper: proxy,
            mapper_port: proxy_port,
            carrier: Carrier::Http,
            call_id: 0,
            operation: EpmOperation::RpcProxy(req.channel),
            inquiry_type: None,
            requested: None,
            first_call: true,
            requested_transport: None,
            ndr64: false,
            status: 0,
            endpoints: vec![EpmEndpoint {
                interface: None,
                transport: Transport::Http,
                port: req.port,
                tower_ip: req.address,
                annotation: None,
                bindings: vec![format!("{}:{}", req.host, req.port)],
            }],
            sealed: false,
        }
    }
}

/// An EMSMDB EcRRegisterPushNotification seen in clear: the client asked
/// the information store to send new-mail notifications to `callback`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationEvent {
    pub ts: Ts,
    /// The MAPI client that registered (the RPC connection's client).
    pub client: IpAddr,
    /// The Exchange server it registered with.
    pub server: IpAddr,
    /// Where notifications are to be sent (address and UDP port).
    pub callback: std::net::SocketAddr,
    /// The opaque context cookie each notification datagram carries.
    pub cookie: Vec<u8>,
}

/// Everything workers report to the correlator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    EpmAnswer(EpmAnswerEvent),
    Registration(RegistrationEvent),
}

impl Event {
    pub fn ts(&self) -> Ts {
        match self {
            Event::EpmAnswer(e) => e.ts,
            Event::Registration(r) => r.ts,
        }
    }
}
