//! The write-ahead log of what this masternode signed.
//!
//! Rule: every proposal or vote the engine signs comes out as [`crate::Effect::PersistWal`]
//! followed by its broadcast; the host must make the entry durable (fsync) before it sends
//! the message. On restart the host loads the entries of the current height and gives them
//! to [`crate::Engine::start_height`]; the engine then never signs anything that conflicts
//! with them, re-sends them instead, and restores its lock from its own precommits.

use timecoin_primitives::encoding::Reader;
use timecoin_primitives::{Decode, DecodeError, Encode, SignedProposal, SignedVote};

/// One signed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalEntry {
    /// A proposal this masternode signed.
    Proposal(SignedProposal),
    /// A vote this masternode signed.
    Vote(SignedVote),
}

impl WalEntry {
    /// The height the message belongs to.
    pub fn height(&self) -> u64 {
        match self {
            WalEntry::Proposal(p) => p.proposal.height,
            WalEntry::Vote(v) => v.vote.height,
        }
    }
}

impl Encode for WalEntry {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            WalEntry::Proposal(p) => {
                out.push(1);
                p.encode_to(out);
            }
            WalEntry::Vote(v) => {
                out.push(2);
                v.encode_to(out);
            }
        }
    }
    fn encoded_len(&self) -> usize {
        1 + match self {
            WalEntry::Proposal(p) => p.encoded_len(),
            WalEntry::Vote(v) => v.encoded_len(),
        }
    }
}

impl Decode for WalEntry {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.read_u8()? {
            1 => Ok(WalEntry::Proposal(SignedProposal::decode_from(reader)?)),
            2 => Ok(WalEntry::Vote(SignedVote::decode_from(reader)?)),
            _ => Err(DecodeError::InvalidValue {
                field: "wal entry",
                reason: "expected 1 (proposal) or 2 (vote)",
            }),
        }
    }
}

/// Durable storage for [`WalEntry`]s. `append` returns only once the entry is on disk.
pub trait Wal {
    /// The storage's error.
    type Error: std::error::Error;

    /// Appends an entry durably.
    fn append(&mut self, entry: &WalEntry) -> Result<(), Self::Error>;

    /// The entries of `height`, in the order they were appended.
    fn entries(&self, height: u64) -> Result<Vec<WalEntry>, Self::Error>;

    /// Forgets the entries of heights below `height` (once those heights are decided).
    fn prune_below(&mut self, height: u64) -> Result<(), Self::Error>;
}

/// A WAL in memory, for tests and the simulator: it survives an engine's restart, not the
/// process's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryWal {
    entries: Vec<WalEntry>,
}

impl Wal for MemoryWal {
    type Error = std::convert::Infallible;

    fn append(&mut self, entry: &WalEntry) -> Result<(), Self::Error> {
        self.entries.push(*entry);
        Ok(())
    }

    fn entries(&self, height: u64) -> Result<Vec<WalEntry>, Self::Error> {
        Ok(self.entries.iter().filter(|e| e.height() == height).copied().collect())
    }

    fn prune_below(&mut self, height: u64) -> Result<(), Self::Error> {
        self.entries.retain(|e| e.height() >= height);
        Ok(())
    }
}
