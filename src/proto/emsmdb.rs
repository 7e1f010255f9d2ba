//! EMSMDB (a4f1db00-ca47-1067-b31f-00dd010662da): EcRRegisterPushNotification
//! (opnum 4) request stub, NDR 2.0 (protocols.md §4.3) — where a MAPI client
//! asks the server to send UDP new-mail notifications.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::epm::ContextHandle;
use super::ndr::{NdrError, NdrReader, NdrSyntax};

/// EcRRegisterPushNotification.
pub const OPNUM_REGISTER_PUSH_NOTIFICATION: u16 = 4;
/// AF_INET as sent in the callback SOCKADDR.
pub const AF_INET: u16 = 2;

/// Why a registration stub was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmsmdbError {
    Ndr(NdrError),
    /// cbContext / cbCallbackAddress disagrees with its array's max_count.
    SizeMismatch {
        max_count: u32,
        size: u16,
    },
}

impl fmt::Display for EmsmdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmsmdbError::Ndr(e) => write!(f, "{e}"),
            EmsmdbError::SizeMismatch { max_count, size } => {
                write!(f, "array max_count {max_count} but size field {size}")
            }
        }
    }
}

impl std::error::Error for EmsmdbError {}

impl From<NdrError> for EmsmdbError {
    fn from(e: NdrError) -> Self {
        EmsmdbError::Ndr(e)
    }
}

/// A decoded EcRRegisterPushNotification request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushRegistration<'a> {
    pub context_handle: ContextHandle,
    pub irpc: u32,
    /// rgbContext: the opaque cookie the server will send back over UDP.
    pub cookie: &'a [u8],
    pub advise_bits: u32,
    /// SOCKADDR family as sent (LE).
    pub family: u16,
    /// The callback address when the SOCKADDR is IPv4 (family 2, ≥ 8 bytes)
    /// or IPv6-sized (28 bytes, any family — §8 leaves AF_INET6's value open).
    pub callback: Option<SocketAddr>,
    /// rgbCallbackAddress verbatim.
    pub callback_raw: &'a [u8],
}

fn sized_array<'a>(r: &mut NdrReader<'a>) -> Result<&'a [u8], EmsmdbError> {
    let max = r.u32()?;
    let n = r.check_count(u64::from(max), 1)?;
    let bytes = r.bytes(n)?;
    let size = r.u16()?;
    if u32::from(size) != max {
        return Err(EmsmdbError::SizeMismatch {
            max_count: max,
            size,
        });
    }
    Ok(bytes)
}

fn sockaddr(raw: &[u8]) -> (u16, Option<SocketAddr>) {
    if raw.len() < 2 {
        return (0, None);
    }
    let family = u16::from_le_bytes([raw[0], raw[1]]);
    let port = |b: &[u8]| u16::from_be_bytes([b[2], b[3]]);
    let addr = if raw.len() == 28 {
        let mut a = [0u8; 16];
        a.copy_from_slice(&raw[8..24]);
        Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(a)), port(raw)))
    } else if family == AF_INET && raw.len() >= 8 {
        let ip = Ipv4Addr::new(raw[4], raw[5], raw[6], raw[7]);
        Some(SocketAddr::new(IpAddr::V4(ip), port(raw)))
    } else {
        None
    };
    (family, addr)
}

/// Parse an EcRRegisterPushNotification request stub (clear text: auth
/// level below 6). Trailing bytes (verification trailer) are ignored.
pub fn parse_register_push_notification(
    stub: &[u8],
    little_endian: bool,
) -> Result<PushRegistration<'_>, EmsmdbError> {
    let mut r = NdrReader::new(stub, NdrSyntax::Ndr20, little_endian);
    let context_handle = ContextHandle::read(&mut r)?;
    let irpc = r.u32()?;
    let cookie = sized_array(&mut r)?;
    let advise_bits = r.u32()?;
    let callback_raw = sized_array(&mut r)?;
    let (family, callback) = sockaddr(callback_raw);
    Ok(PushRegistration {
        context_handle,
        irpc,
        cookie,
        advise_bits,
        family,
        callback,
        callback_raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::dcerpc::{parse_pdu, CoBody};
    use crate::proto::test_hex::hex;

    /// protocols.md Example 7 (T-MAPI f797).
    const EXAMPLE7: &str = "
        05 00 00 03 10 00 00 00 80 00 10 00 06 00 00 00
        42 00 00 00 00 00 04 00 00 00 00 00 96 57 70 3b
        05 09 2b 45 8e b2 2f 53 83 13 30 45 00 00 00 00
        08 00 00 00 d0 27 3b 02 00 e0 fd 7f 08 00 a5 a5
        ff ff ff ff 10 00 00 00 02 00 04 2f c0 a8 00 ad
        00 00 00 00 00 00 00 00 10 00 00 16 a8 89 0b 00
        01 00 00 00 00 00 00 00 0a 02 0e 00 a8 89 0b 00
        01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00";

    #[test]
    fn example7_registration() {
        let pdu = hex(EXAMPLE7);
        let p = parse_pdu(&pdu).unwrap();
        let CoBody::Request(req) = &p.body else {
            panic!("not a request")
        };
        assert_eq!(req.opnum, OPNUM_REGISTER_PUSH_NOTIFICATION);
        assert_eq!(req.stub.len(), 66);
        assert!(!p.stub_encrypted());
        let reg = parse_register_push_notification(req.stub, true).unwrap();
        assert_eq!(
            reg.context_handle.uuid.to_string(),
            "3b705796-0905-452b-8eb2-2f5383133045"
        );
        assert_eq!(reg.irpc, 0);
        assert_eq!(
            reg.cookie,
            &[0xd0, 0x27, 0x3b, 0x02, 0x00, 0xe0, 0xfd, 0x7f]
        );
        assert_eq!(reg.advise_bits, 0xffff_ffff);
        assert_eq!(reg.family, AF_INET);
        assert_eq!(reg.callback, Some("192.168.0.173:1071".parse().unwrap()));
    }

    #[test]
    fn ipv6_and_hostile() {
        let mut stub = vec![0u8; 24];
        stub.extend_from_slice(&[8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 0, 0, 0]);
        stub.extend_from_slice(&[0xff; 4]);
        stub.extend_from_slice(&28u32.to_le_bytes());
        let mut sa = vec![23, 0, 0x9e, 0x34, 0, 0, 0, 0];
        sa.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        sa.extend_from_slice(&[0; 4]);
        stub.extend_from_slice(&sa);
        stub.extend_from_slice(&[28, 0]);
        let reg = parse_register_push_notification(&stub, true).unwrap();
        assert_eq!(reg.callback, Some("[2001:db8::1]:40500".parse().unwrap()));

        // Every truncation fails cleanly.
        for n in 0..stub.len() {
            assert!(parse_register_push_notification(&stub[..n], true).is_err());
        }
        // A huge max_count is rejected without allocating.
        let mut bad = vec![0u8; 24];
        bad.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            parse_register_push_notification(&bad, true),
            Err(EmsmdbError::Ndr(NdrError::CountTooLarge { .. }))
        ));
        // Size field disagreeing with max_count.
        let mut mism = stub.clone();
        mism[36] = 9;
        assert!(matches!(
            parse_register_push_notification(&mism, true),
            Err(EmsmdbError::SizeMismatch { .. })
        ));
        assert!(parse_register_push_notification(&[], true).is_err());
    }
}
