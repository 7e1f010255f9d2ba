//! Application protocols: recognizers and parsers that label flows.

pub mod dcerpc;
pub mod dcom;
pub mod emsmdb;
pub mod epm;
pub mod ndr;
pub mod recognize;
pub mod rfc1006;
pub mod rpch;
pub mod smb;
pub mod wellknown;

/// Hex-dump transcription helper for unit tests.
#[cfg(test)]
pub(crate) mod test_hex {
    /// Parse a hex dump: whitespace-separated byte pairs; a leading 4-hex-digit
    /// offset column and anything after two spaces of annotation are NOT
    /// handled here — callers pass bare bytes.
    pub fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|t| u8::from_str_radix(t, 16).expect("hex byte"))
            .collect()
    }
}
