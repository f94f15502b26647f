//! An incremental commitment to the whole UTXO set.
//!
//! A lattice hash (LtHash, as used by Facebook's and Solana's state commitments): every
//! unspent output maps, through BLAKE3's extendable output, to a vector of 1,024 16-bit
//! lanes; the set's state is the lane-wise sum modulo 2^16. Adding an output adds its vector
//! and spending it subtracts it, so a block updates the commitment in time proportional to
//! the outputs it touches, and the result does not depend on the order of updates. The
//! 32-byte commitment is the [`Domain::UtxoCommitment`] hash of the 2,048-byte state.

use timecoin_primitives::{Domain, Hash256};

/// Number of 16-bit lanes.
pub const LANES: usize = 1024;
/// Encoded size of the state.
pub const STATE_BYTES: usize = LANES * 2;

/// The running state of the commitment.
#[derive(Clone, PartialEq, Eq)]
pub struct LtHash(Box<[u16; LANES]>);

impl std::fmt::Debug for LtHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LtHash({})", self.digest())
    }
}

impl Default for LtHash {
    fn default() -> Self {
        LtHash(Box::new([0; LANES]))
    }
}

/// Little-endian 16-bit lanes of `bytes`.
fn lanes(bytes: &[u8]) -> impl Iterator<Item = u16> + '_ {
    bytes.as_chunks::<2>().0.iter().map(|pair| u16::from_le_bytes(*pair))
}

impl LtHash {
    fn element(bytes: &[u8]) -> [u8; STATE_BYTES] {
        let mut hasher = Domain::UtxoElement.hasher();
        hasher.update(bytes);
        let mut out = [0u8; STATE_BYTES];
        hasher.finalize_xof().fill(&mut out);
        out
    }

    /// Adds one element (an encoded outpoint and output).
    pub fn insert(&mut self, bytes: &[u8]) {
        let element = Self::element(bytes);
        for (lane, value) in self.0.iter_mut().zip(lanes(&element)) {
            *lane = lane.wrapping_add(value);
        }
    }

    /// Removes one element added before.
    pub fn remove(&mut self, bytes: &[u8]) {
        let element = Self::element(bytes);
        for (lane, value) in self.0.iter_mut().zip(lanes(&element)) {
            *lane = lane.wrapping_sub(value);
        }
    }

    /// The state as bytes, for storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|lane| lane.to_le_bytes()).collect()
    }

    /// The state from stored bytes, or `None` if the length is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Option<LtHash> {
        if bytes.len() != STATE_BYTES {
            return None;
        }
        let mut state = Box::new([0u16; LANES]);
        for (lane, value) in state.iter_mut().zip(lanes(bytes)) {
            *lane = value;
        }
        Some(LtHash(state))
    }

    /// The 32-byte commitment.
    pub fn digest(&self) -> Hash256 {
        Domain::UtxoCommitment.hash(&self.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_independent_and_invertible() {
        let mut a = LtHash::default();
        let mut b = LtHash::default();
        a.insert(b"one");
        a.insert(b"two");
        b.insert(b"two");
        b.insert(b"one");
        assert_eq!(a.digest(), b.digest());
        a.insert(b"three");
        assert_ne!(a.digest(), b.digest());
        a.remove(b"three");
        assert_eq!(a, b);
        assert_eq!(LtHash::from_bytes(&a.to_bytes()), Some(a.clone()));
        assert_eq!(LtHash::from_bytes(&[0; 3]), None);
        // A set and the same set with an element twice differ.
        b.insert(b"one");
        assert_ne!(a.digest(), b.digest());
    }
}
