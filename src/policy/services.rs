//! Named services of policy rules: a view of the knowledge table
//! ([`crate::kb`]) for the policy language — their protocols and default
//! ports, which of them a policy may pin.

use crate::packet::{PROTO_TCP, PROTO_UDP};

pub use crate::kb::pin_service;
pub use crate::kb::Kind as ServiceKind;
pub use crate::kb::Service as ServiceSpec;
pub use crate::kb::SERVICES;

/// The spec of a rule service name, if it is one.
pub fn service_ports(name: &str) -> Option<ServiceSpec> {
    crate::kb::service(name).copied()
}

/// Every rule service name, in documentation order.
pub fn service_names() -> impl Iterator<Item = &'static str> {
    SERVICES.iter().map(|s| s.name)
}

/// Whether `name` is an RPC interface service of the report contract
/// (`exchange-store`, `netlogon`, ..., `rpc-other`) — not `epm`, not
/// `rpc-dynamic`.
pub fn is_rpc_interface_service(name: &str) -> bool {
    service_ports(name).is_some_and(|s| s.kind == ServiceKind::RpcInterface)
}

/// Whether a policy pin may fix the port of `name`: the RPC interface
/// services, `x400-mta` (and its alias `rfc1006`) and `mapi-notification`.
pub fn is_pinnable(name: &str) -> bool {
    service_ports(name).is_some_and(|s| s.pinnable())
}

/// The protocol a pinned port of `service` is on.
pub fn pin_proto(service: &str) -> u8 {
    if service_ports(service).is_some_and(|s| s.kind == ServiceKind::Notification) {
        PROTO_UDP
    } else {
        PROTO_TCP
    }
}
