//! A bounds-checked cursor over an NDR 2.0 / NDR64 stub (protocols.md §2.1,
//! §2.5). Alignment is measured from the start of the slice it wraps — a
//! request/response stub starts at PDU offset 24 or 40, both multiples of 8,
//! so stub-relative alignment equals PDU-relative alignment.
//!
//! Every read is checked; counts taken from the wire are checked against the
//! bytes still present ([`NdrReader::check_count`]) before anyone allocates.

use super::dcerpc::Uuid;

/// Which NDR transfer syntax a stub is encoded in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NdrSyntax {
    /// NDR 2.0 ("32-bit NDR"): pointers and array counts are u32.
    Ndr20,
    /// NDR64: pointers and array counts are u64, aligned 8.
    Ndr64,
}

/// Failure while reading an NDR stub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NdrError {
    /// `need` bytes were needed at `offset` but the stub ends earlier.
    Truncated { offset: usize, need: usize },
    /// A count from the wire promises more elements than the bytes present
    /// could hold (`count` × minimum element size > remaining).
    CountTooLarge { offset: usize, count: u64 },
    /// Structurally impossible value.
    Malformed(&'static str),
}

impl std::fmt::Display for NdrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NdrError::Truncated { offset, need } => {
                write!(
                    f,
                    "NDR stub truncated: {need} bytes needed at offset {offset}"
                )
            }
            NdrError::CountTooLarge { offset, count } => {
                write!(
                    f,
                    "NDR count {count} at offset {offset} exceeds the bytes present"
                )
            }
            NdrError::Malformed(what) => write!(f, "malformed NDR: {what}"),
        }
    }
}

impl std::error::Error for NdrError {}

/// Cursor over one stub.
#[derive(Clone, Debug)]
pub struct NdrReader<'a> {
    buf: &'a [u8],
    pos: usize,
    little_endian: bool,
    syntax: NdrSyntax,
}

impl<'a> NdrReader<'a> {
    pub fn new(buf: &'a [u8], syntax: NdrSyntax, little_endian: bool) -> Self {
        NdrReader {
            buf,
            pos: 0,
            little_endian,
            syntax,
        }
    }

    pub fn syntax(&self) -> NdrSyntax {
        self.syntax
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Advance to the next multiple of `n` (a power of two).
    pub fn align(&mut self, n: usize) -> Result<(), NdrError> {
        let target = self.pos.div_ceil(n) * n;
        if target > self.buf.len() {
            return Err(NdrError::Truncated {
                offset: self.pos,
                need: target - self.pos,
            });
        }
        self.pos = target;
        Ok(())
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], NdrError> {
        if n > self.remaining() {
            return Err(NdrError::Truncated {
                offset: self.pos,
                need: n,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], NdrError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    pub fn u8(&mut self) -> Result<u8, NdrError> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, NdrError> {
        self.align(2)?;
        let a = self.array::<2>()?;
        Ok(if self.little_endian {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        })
    }

    pub fn u32(&mut self) -> Result<u32, NdrError> {
        self.align(4)?;
        let a = self.array::<4>()?;
        Ok(if self.little_endian {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    }

    pub fn u64(&mut self) -> Result<u64, NdrError> {
        self.align(8)?;
        let a = self.array::<8>()?;
        Ok(if self.little_endian {
            u64::from_le_bytes(a)
        } else {
            u64::from_be_bytes(a)
        })
    }

    /// A pointer referent ID: u32 in NDR 2.0, u64 in NDR64.
    pub fn pointer(&mut self) -> Result<u64, NdrError> {
        match self.syntax {
            NdrSyntax::Ndr20 => self.u32().map(u64::from),
            NdrSyntax::Ndr64 => self.u64(),
        }
    }

    /// A conformance / offset / actual-count value: u32 in NDR 2.0, u64 in NDR64.
    pub fn count(&mut self) -> Result<u64, NdrError> {
        self.pointer()
    }

    /// Size in bytes of a pointer or count in this syntax.
    pub fn word(&self) -> usize {
        match self.syntax {
            NdrSyntax::Ndr20 => 4,
            NdrSyntax::Ndr64 => 8,
        }
    }

    /// Reject `count` elements of at least `min_size` bytes each when they
    /// cannot fit in what is left; returns the count as usize otherwise.
    pub fn check_count(&self, count: u64, min_size: usize) -> Result<usize, NdrError> {
        let too_large = NdrError::CountTooLarge {
            offset: self.pos,
            count,
        };
        let c = usize::try_from(count).map_err(|_| too_large)?;
        match c.checked_mul(min_size.max(1)) {
            Some(total) if total <= self.remaining() => Ok(c),
            _ => Err(too_large),
        }
    }

    /// A GUID (NDR struct of u32, u16, u16, `u8[8]`; aligned 4).
    pub fn uuid(&mut self) -> Result<Uuid, NdrError> {
        self.align(4)?;
        let raw: [u8; 16] = self.array()?;
        Ok(Uuid::from_wire(&raw, self.little_endian))
    }
}
