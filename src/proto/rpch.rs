//! RPC over HTTP ([MS-RPCH]): what an RPC proxy's client asks for, and the
//! banner an ncacn_http server opens its connections with (#24).
//!
//! An Outlook Anywhere client (or any ncacn_http client behind a proxy)
//! opens two HTTP connections to the RPC proxy, the IN channel
//! (`RPC_IN_DATA`) and the OUT channel (`RPC_OUT_DATA`), each naming the
//! backend in the query string: `/rpc/rpcproxy.dll?server:port`
//! ([MS-RPCH] 2.2.2, "the URI ... RPC server name and port"). The proxy
//! then opens a TCP connection to that port of that server for each
//! channel; the server answers first with [`NCACN_HTTP_BANNER`] and
//! DCE/RPC follows. So the URL is a hand-off from the proxy's point of
//! view, and the proxy's connection to the port is its follow-up.

use std::net::IpAddr;

/// What an ncacn_http server sends first on every connection ([MS-RPCH]
/// 2.1.2.1.1, "legacy server response"), before any PDU.
pub const NCACN_HTTP_BANNER: &[u8] = b"ncacn_http/1.0";

/// The endpoint mapper's port over ncacn_http ([MS-RPCH] 2.1.2.1: the RPC
/// over HTTP mapper).
pub const NCACN_HTTP_MAPPER_PORT: u16 = 593;

/// Longest backend name kept (a DNS name is at most 253 characters).
const MAX_NAME: usize = 253;

/// The two channels of an RPC over HTTP v2 connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProxyChannel {
    /// `RPC_IN_DATA`: client to server.
    In,
    /// `RPC_OUT_DATA`: server to client.
    Out,
}

impl ProxyChannel {
    /// The HTTP method, as sent.
    pub fn method(self) -> &'static str {
        match self {
            ProxyChannel::In => "RPC_IN_DATA",
            ProxyChannel::Out => "RPC_OUT_DATA",
        }
    }
}

/// An RPC proxy request naming its backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyRequest {
    pub channel: ProxyChannel,
    /// The backend as the URL names it (a DNS or NetBIOS name, or an
    /// address), without the port.
    pub host: String,
    /// The backend's address when the URL names it by one.
    pub address: Option<IpAddr>,
    pub port: u16,
}

/// Reads an RPC proxy request from the first bytes a client sent on a
/// connection: `RPC_IN_DATA` or `RPC_OUT_DATA`, a target whose path is
/// `/rpc/rpcproxy.dll` (any case; also in an absolute URI) and whose query
/// is `host:port` (`[v6]:port` for an IPv6 address), `HTTP/1.x`. `None`
/// for anything else (other methods, the echo requests without a query, a
/// line cut before its end, a port that is not a number from 1 to 65535).
pub fn parse_proxy_request(first: &[u8]) -> Option<ProxyRequest> {
    let end = first.iter().position(|&c| c == b'\n')?;
    let line = first[..end].strip_suffix(b"\r").unwrap_or(&first[..end]);
    let mut parts = line.split(|&c| c == b' ');
    let channel = match parts.next()? {
        b"RPC_IN_DATA" => ProxyChannel::In,
        b"RPC_OUT_DATA" => ProxyChannel::Out,
        _ => return None,
    };
    let target = parts.next()?;
    let version = parts.next()?;
    if parts.next().is_some() || !version.starts_with(b"HTTP/1.") {
        return None;
    }
    // An absolute URI: its path.
    let path = if target.first() == Some(&b'/') {
        target
    } else {
        let scheme = target.windows(3).position(|w| w == b"://")?;
        let after = &target[scheme + 3..];
        &after[after.iter().position(|&c| c == b'/')?..]
    };
    let q = path.iter().position(|&c| c == b'?')?;
    if !path[..q].eq_ignore_ascii_case(b"/rpc/rpcproxy.dll") {
        return None;
    }
    let query = &path[q + 1..];
    let colon = query.iter().rposition(|&c| c == b':')?;
    let (host, port) = (&query[..colon], &query[colon + 1..]);
    if port.is_empty() || port.len() > 5 || !port.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let port: u16 = std::str::from_utf8(port).ok()?.parse().ok()?;
    if port == 0 {
        return None;
    }
    let host = host
        .strip_prefix(b"[")
        .and_then(|h| h.strip_suffix(b"]"))
        .unwrap_or(host);
    let ok = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b':');
    if host.is_empty() || host.len() > MAX_NAME || !host.iter().all(ok) {
        return None;
    }
    let host = std::str::from_utf8(host).ok()?.to_string();
    Some(ProxyRequest {
        channel,
        address: host.parse().ok(),
        host,
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_backend_of_either_channel() {
        let r = parse_proxy_request(
            b"RPC_IN_DATA /rpc/rpcproxy.dll?ex01.contoso.com:6001 HTTP/1.1\r\nHost: mail\r\n",
        )
        .unwrap();
        assert_eq!(r.channel, ProxyChannel::In);
        assert_eq!(
            (r.host.as_str(), r.address, r.port),
            ("ex01.contoso.com", None, 6001)
        );
        let r =
            parse_proxy_request(b"RPC_OUT_DATA /RPC/RpcProxy.dll?198.51.100.10:6004 HTTP/1.1\r\n")
                .unwrap();
        assert_eq!(r.channel, ProxyChannel::Out);
        assert_eq!(r.address, Some("198.51.100.10".parse().unwrap()));
        assert_eq!(r.port, 6004);
        let r = parse_proxy_request(
            b"RPC_IN_DATA https://mail.example/rpc/rpcproxy.dll?[2001:db8::10]:593 HTTP/1.1\r\n",
        )
        .unwrap();
        assert_eq!(r.address, Some("2001:db8::10".parse().unwrap()));
        assert_eq!(r.port, 593);
    }

    #[test]
    fn anything_else_is_not_a_proxy_request() {
        for bad in [
            &b"GET /rpc/rpcproxy.dll?ex01:6001 HTTP/1.1\r\n"[..],
            b"RPC_IN_DATA /rpc/rpcproxy.dll HTTP/1.1\r\n",
            b"RPC_IN_DATA /rpc/rpcproxy.dll?ex01:6001 HTTP/1.1",
            b"RPC_IN_DATA /rpc/other.dll?ex01:6001 HTTP/1.1\r\n",
            b"RPC_IN_DATA /rpc/rpcproxy.dll?ex01:0 HTTP/1.1\r\n",
            b"RPC_IN_DATA /rpc/rpcproxy.dll?ex01:65536 HTTP/1.1\r\n",
            b"RPC_IN_DATA /rpc/rpcproxy.dll?ex01: HTTP/1.1\r\n",
            b"RPC_IN_DATA /rpc/rpcproxy.dll?:6001 HTTP/1.1\r\n",
            b"RPC_IN_DATA /rpc/rpcproxy.dll?ex 01:6001 HTTP/1.1\r\n",
            b"RPC_IN_DATA /rpc/rpcproxy.dll?ex01%00:6001 HTTP/1.1\r\n",
            b"RPC_IN_DATA /rpc/rpcproxy.dll?ex01:6001 SIP/2.0\r\n",
            b"",
        ] {
            assert_eq!(
                parse_proxy_request(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = format!(
            "RPC_IN_DATA /rpc/rpcproxy.dll?{}:6001 HTTP/1.1\r\n",
            "a".repeat(254)
        );
        assert_eq!(parse_proxy_request(long.as_bytes()), None);
    }
}
