//! BLAKE3 hashes with one domain tag per kind of object.
//!
//! Each [`Domain`] has its own context string; the hash of an object is BLAKE3 keyed with
//! the key that BLAKE3's `derive_key` mode gives for that context. Two objects of different
//! kinds can therefore never share a hash, even when their encodings are equal.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use crate::encoding::{Decode, DecodeError, Encode, Reader};

/// A 32-byte hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash256(pub [u8; 32]);

impl Hash256 {
    /// The all-zero hash, used where no predecessor exists (the genesis block's parent).
    pub const ZERO: Hash256 = Hash256([0; 32]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Why a string is not a hex hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseHashError {
    /// The string is not 64 characters long.
    #[error("a hash is 64 hex characters, got {0}")]
    WrongLength(usize),
    /// A character is not a hex digit.
    #[error("a hash holds only hex digits")]
    NotHex,
}

impl FromStr for Hash256 {
    type Err = ParseHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64 {
            return Err(ParseHashError::WrongLength(s.len()));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| ParseHashError::NotHex)?;
        Ok(Hash256(out))
    }
}

impl Encode for Hash256 {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    fn encoded_len(&self) -> usize {
        32
    }
}

impl Decode for Hash256 {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Hash256(reader.read_array()?))
    }
}

/// The kinds of object that are hashed, each under its own tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Domain {
    /// A transaction without its signatures: the txid.
    TxId,
    /// A whole transaction with its signatures.
    WitnessHash,
    /// The message an input's owner signs.
    SigHash,
    /// A block header: the block hash.
    BlockHeader,
    /// A leaf of a block's merkle tree (a txid).
    MerkleLeaf,
    /// An inner node of a block's merkle tree.
    MerkleNode,
    /// A public key, giving an address payload.
    Address,
    /// A masternode set.
    MasternodeSet,
    /// A consensus vote.
    Vote,
    /// A consensus proposal.
    Proposal,
    /// A P2P session's handshake hash, signed to bind a node identity to the session.
    PeerIdentity,
    /// One element of the UTXO-set commitment.
    UtxoElement,
    /// The UTXO-set commitment's digest.
    UtxoCommitment,
    /// The message a masternode special transaction's payload signature signs.
    PayloadSigHash,
    /// The id of a masternode written in the genesis block (it has no registration txid).
    GenesisMasternode,
    /// A block's commit certificate of its parent.
    LastCommit,
    /// A block's list of equivocation evidence.
    Evidence,
    /// The masternode list a chain state holds.
    MasternodeList,
    /// A chain state: the UTXO-set commitment and the masternode list's hash.
    ChainState,
    /// What an operator key signs to show that its holder agrees to operate a masternode.
    OperatorProof,
    /// A message signed with an address's key (`signmessage`), never a transaction.
    SignedMessage,
}

const DOMAIN_COUNT: usize = 21;

impl Domain {
    /// The BLAKE3 `derive_key` context string of this domain.
    pub const fn context(self) -> &'static str {
        match self {
            Domain::TxId => "timecoin 2026 txid",
            Domain::WitnessHash => "timecoin 2026 witness hash",
            Domain::SigHash => "timecoin 2026 signature message",
            Domain::BlockHeader => "timecoin 2026 block header",
            Domain::MerkleLeaf => "timecoin 2026 merkle leaf",
            Domain::MerkleNode => "timecoin 2026 merkle node",
            Domain::Address => "timecoin 2026 address",
            Domain::MasternodeSet => "timecoin 2026 masternode set",
            Domain::Vote => "timecoin 2026 vote",
            Domain::Proposal => "timecoin 2026 proposal",
            Domain::PeerIdentity => "timecoin 2026 peer identity",
            Domain::UtxoElement => "timecoin 2026 utxo element",
            Domain::UtxoCommitment => "timecoin 2026 utxo commitment",
            Domain::PayloadSigHash => "timecoin 2026 payload signature message",
            Domain::GenesisMasternode => "timecoin 2026 genesis masternode",
            Domain::LastCommit => "timecoin 2026 last commit",
            Domain::Evidence => "timecoin 2026 evidence",
            Domain::MasternodeList => "timecoin 2026 masternode list",
            Domain::ChainState => "timecoin 2026 chain state",
            Domain::OperatorProof => "timecoin 2026 operator proof",
            Domain::SignedMessage => "timecoin 2026 signed message",
        }
    }

    const fn index(self) -> usize {
        match self {
            Domain::TxId => 0,
            Domain::WitnessHash => 1,
            Domain::SigHash => 2,
            Domain::BlockHeader => 3,
            Domain::MerkleLeaf => 4,
            Domain::MerkleNode => 5,
            Domain::Address => 6,
            Domain::MasternodeSet => 7,
            Domain::Vote => 8,
            Domain::UtxoElement => 9,
            Domain::UtxoCommitment => 10,
            Domain::Proposal => 11,
            Domain::PeerIdentity => 12,
            Domain::PayloadSigHash => 13,
            Domain::GenesisMasternode => 14,
            Domain::LastCommit => 15,
            Domain::Evidence => 16,
            Domain::MasternodeList => 17,
            Domain::ChainState => 18,
            Domain::OperatorProof => 19,
            Domain::SignedMessage => 20,
        }
    }

    fn key(self) -> &'static [u8; 32] {
        static KEYS: [OnceLock<[u8; 32]>; DOMAIN_COUNT] = [const { OnceLock::new() }; DOMAIN_COUNT];
        // `index()` is below DOMAIN_COUNT for every domain; a unit test checks it.
        #[allow(clippy::indexing_slicing)]
        let slot = &KEYS[self.index()];
        slot.get_or_init(|| blake3::derive_key(self.context(), &[]))
    }

    /// A hasher for this domain, to feed in pieces.
    pub fn hasher(self) -> blake3::Hasher {
        blake3::Hasher::new_keyed(self.key())
    }

    /// The hash of `data` in this domain.
    pub fn hash(self, data: &[u8]) -> Hash256 {
        Hash256(*blake3::keyed_hash(self.key(), data).as_bytes())
    }

    /// The hash of an object's canonical encoding in this domain.
    pub fn hash_encoded<T: Encode + ?Sized>(self, value: &T) -> Hash256 {
        let mut hasher = self.hasher();
        hasher.update(&value.to_bytes());
        Hash256(*hasher.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_separate_equal_inputs() {
        let all = [
            Domain::TxId,
            Domain::WitnessHash,
            Domain::SigHash,
            Domain::BlockHeader,
            Domain::MerkleLeaf,
            Domain::MerkleNode,
            Domain::Address,
            Domain::MasternodeSet,
            Domain::Vote,
            Domain::UtxoElement,
            Domain::UtxoCommitment,
            Domain::Proposal,
            Domain::PeerIdentity,
            Domain::PayloadSigHash,
            Domain::GenesisMasternode,
            Domain::LastCommit,
            Domain::Evidence,
            Domain::MasternodeList,
            Domain::ChainState,
            Domain::OperatorProof,
            Domain::SignedMessage,
        ];
        assert_eq!(all.len(), DOMAIN_COUNT);
        let mut seen = std::collections::HashSet::new();
        for (i, d) in all.iter().enumerate() {
            assert_eq!(d.index(), i);
            assert!(seen.insert(d.hash(b"same bytes")), "{d:?} collides");
        }
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let h = Domain::TxId.hash(b"x");
        assert_eq!(h.to_string().parse::<Hash256>(), Ok(h));
        assert_eq!("ab".parse::<Hash256>(), Err(ParseHashError::WrongLength(2)));
        assert_eq!("zz".repeat(32).parse::<Hash256>(), Err(ParseHashError::NotHex));
    }
}
