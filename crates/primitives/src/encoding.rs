//! The canonical binary encoding of every consensus object.
//!
//! Rules, applied by every type in this crate:
//! - integers are fixed-width little-endian;
//! - a variable-length field is prefixed by its length as a minimal CompactSize
//!   (1, 3, 5 or 9 bytes, as in Bitcoin), and a longer-than-needed prefix is rejected;
//! - every length has an explicit maximum, and a count is checked against the bytes that
//!   remain before anything is allocated, so hostile input cannot make a decoder allocate
//!   more than the input's own size;
//! - decoding must consume every byte: trailing bytes are an error.
//!
//! Together these give `encode(decode(b)) == b` for every accepted `b`.

use thiserror::Error;

/// Why a byte string is not the canonical encoding of the expected object.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the object did.
    #[error("unexpected end of input: needed {needed} more bytes, {remaining} remain")]
    UnexpectedEnd {
        /// Bytes the decoder needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// Bytes were left over after the object.
    #[error("{0} trailing bytes after the object")]
    TrailingBytes(usize),
    /// A length prefix used more bytes than its value needs.
    #[error("non-canonical length prefix for value {0}")]
    NonCanonicalLength(u64),
    /// A length or count is above the maximum allowed for its field.
    #[error("{field} has length {len}, above the maximum of {max}")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// The length found.
        len: u64,
        /// The maximum allowed.
        max: u64,
    },
    /// A field holds a value outside its domain.
    #[error("invalid {field}: {reason}")]
    InvalidValue {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A type with one canonical byte encoding.
pub trait Encode {
    /// Appends the canonical encoding of `self` to `out`.
    fn encode_to(&self, out: &mut Vec<u8>);

    /// The number of bytes [`Encode::encode_to`] writes.
    fn encoded_len(&self) -> usize;

    /// The canonical encoding of `self` as a new vector.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_to(&mut out);
        out
    }
}

/// A type that can be read back from its canonical encoding.
pub trait Decode: Sized {
    /// Reads one object from the reader, leaving the rest of the input in place.
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Decodes an object that must span exactly `bytes`.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let value = Self::decode_from(&mut reader)?;
        reader.finish()?;
        Ok(value)
    }
}

/// A cursor over an input byte string that never reads past its end.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.rest.len()))
        }
    }

    /// Reads `n` bytes.
    pub fn read_bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(DecodeError::UnexpectedEnd {
                needed: n,
                remaining: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Reads a fixed-size array.
    pub fn read_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.read_bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Reads one byte.
    pub fn read_u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_le_bytes(self.read_array()?))
    }

    /// Reads a little-endian `u16`.
    pub fn read_u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.read_array()?))
    }

    /// Reads a little-endian `u32`.
    pub fn read_u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.read_array()?))
    }

    /// Reads a little-endian `u64`.
    pub fn read_u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.read_array()?))
    }

    /// Reads a minimal CompactSize.
    pub fn read_compact_size(&mut self) -> Result<u64, DecodeError> {
        let first = self.read_u8()?;
        let (value, min) = match first {
            0xfd => (u64::from(self.read_u16()?), 0xfd),
            0xfe => (u64::from(self.read_u32()?), 0x1_0000),
            0xff => (self.read_u64()?, 0x1_0000_0000),
            small => return Ok(u64::from(small)),
        };
        if value < min {
            return Err(DecodeError::NonCanonicalLength(value));
        }
        Ok(value)
    }

    /// Reads the length prefix of a field holding at most `max` items of at least
    /// `min_item_size` bytes each, and checks that the input can hold them before the
    /// caller allocates anything.
    pub fn read_count(&mut self, field: &'static str, max: usize, min_item_size: usize) -> Result<usize, DecodeError> {
        let len = self.read_compact_size()?;
        let max = max as u64;
        if len > max {
            return Err(DecodeError::TooLong { field, len, max });
        }
        // `len <= max`, and `max` came from a usize.
        let count = usize::try_from(len).map_err(|_| DecodeError::TooLong { field, len, max })?;
        let needed = count.saturating_mul(min_item_size);
        if needed > self.rest.len() {
            return Err(DecodeError::UnexpectedEnd {
                needed,
                remaining: self.rest.len(),
            });
        }
        Ok(count)
    }

    /// Reads a length-prefixed byte string of at most `max` bytes.
    pub fn read_var_bytes(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.read_count(field, max, 1)?;
        self.read_bytes(len)
    }
}

/// Appends a minimal CompactSize.
pub fn write_compact_size(out: &mut Vec<u8>, value: u64) {
    match value {
        0..=0xfc => out.push(value as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(value as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(value as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
}

/// The number of bytes [`write_compact_size`] writes for `value`.
pub fn compact_size_len(value: u64) -> usize {
    match value {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Appends a length-prefixed byte string.
pub fn write_var_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_compact_size(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The encoded size of a length-prefixed byte string of `len` bytes.
pub fn var_bytes_len(len: usize) -> usize {
    compact_size_len(len as u64) + len
}

/// The encoded length of a socket address (see [`write_socket_addr`]).
pub fn socket_addr_len(address: &std::net::SocketAddr) -> usize {
    match address.ip().to_canonical() {
        std::net::IpAddr::V4(_) => 1 + 4 + 2,
        std::net::IpAddr::V6(_) => 1 + 16 + 2,
    }
}

/// Writes a socket address: a family byte (4 or 6), the address, the port (little-endian). An
/// IPv4-mapped IPv6 address is written as IPv4, so each address has one encoding.
pub fn write_socket_addr(out: &mut Vec<u8>, address: &std::net::SocketAddr) {
    match address.ip().to_canonical() {
        std::net::IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        std::net::IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&address.port().to_le_bytes());
}

impl Reader<'_> {
    /// Reads a socket address written by [`write_socket_addr`]; an IPv4-mapped IPv6 address
    /// is refused (it has the IPv4 form).
    pub fn read_socket_addr(&mut self) -> Result<std::net::SocketAddr, DecodeError> {
        let ip = match self.read_u8()? {
            4 => std::net::IpAddr::V4(std::net::Ipv4Addr::from(self.read_array::<4>()?)),
            6 => {
                let ip = std::net::Ipv6Addr::from(self.read_array::<16>()?);
                if ip.to_ipv4_mapped().is_some() {
                    return Err(DecodeError::InvalidValue {
                        field: "address",
                        reason: "an IPv4-mapped IPv6 address must be written as IPv4",
                    });
                }
                std::net::IpAddr::V6(ip)
            }
            _ => {
                return Err(DecodeError::InvalidValue {
                    field: "address family",
                    reason: "expected 4 or 6",
                });
            }
        };
        Ok(std::net::SocketAddr::new(ip, self.read_u16()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_compact(bytes: &[u8]) -> Result<u64, DecodeError> {
        let mut reader = Reader::new(bytes);
        let value = reader.read_compact_size()?;
        reader.finish()?;
        Ok(value)
    }

    #[test]
    fn compact_size_rejects_non_minimal_prefixes() {
        assert_eq!(
            decode_compact(&[0xfd, 0xfc, 0x00]),
            Err(DecodeError::NonCanonicalLength(0xfc))
        );
        assert_eq!(
            decode_compact(&[0xfe, 0xff, 0xff, 0x00, 0x00]),
            Err(DecodeError::NonCanonicalLength(0xffff))
        );
        assert_eq!(
            decode_compact(&[0xff, 1, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::NonCanonicalLength(1))
        );
        assert_eq!(decode_compact(&[0xfd, 0xfd, 0x00]), Ok(0xfd));
    }

    #[test]
    fn count_larger_than_input_is_refused_before_allocation() {
        let mut bytes = Vec::new();
        write_compact_size(&mut bytes, 1_000);
        let mut reader = Reader::new(&bytes);
        assert!(matches!(
            reader.read_count("inputs", 10_000, 100),
            Err(DecodeError::UnexpectedEnd { needed: 100_000, .. })
        ));
        let mut reader = Reader::new(&bytes);
        assert!(matches!(
            reader.read_count("inputs", 10, 1),
            Err(DecodeError::TooLong {
                len: 1_000,
                max: 10,
                ..
            })
        ));
    }

    proptest! {
        #[test]
        fn compact_size_round_trips(value: u64) {
            let mut out = Vec::new();
            write_compact_size(&mut out, value);
            prop_assert_eq!(out.len(), compact_size_len(value));
            prop_assert_eq!(decode_compact(&out), Ok(value));
        }
    }
}
