//! The write-ahead log of what this masternode signed.
//!
//! Rule: every proposal or vote the engine signs comes out as [`crate::Effect::PersistWal`]
//! followed by its broadcast; the host must make the entry durable (fsync) before it sends
//! the message. On restart the host loads the entries of the current height and gives them
//! in [`crate::Input::StartHeight`]; the engine then never signs anything that conflicts
//! with them, re-sends them instead, and restores its lock from its own precommits. When it
//! locks, it also logs the prevotes that justified the lock ([`WalEntry::LockProof`]), so
//! that after a restart it can still show peers why its locked value may be re-proposed.

use timecoin_primitives::encoding::{Reader, compact_size_len, write_compact_size};
use timecoin_primitives::{Decode, DecodeError, Encode, SignedProposal, SignedVote};

/// One signed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalEntry {
    /// A proposal this masternode signed.
    Proposal(SignedProposal),
    /// A vote this masternode signed.
    Vote(SignedVote),
    /// The prevotes (more than 2/3 of the power, for one value in one round) on which this
    /// masternode locked.
    LockProof {
        /// Their height.
        height: u64,
        /// The prevotes.
        votes: Vec<SignedVote>,
    },
}

/// Most prevotes a lock proof holds (one per masternode at most).
const MAX_PROOF_VOTES: usize = timecoin_primitives::limits::MAX_MASTERNODES;

impl WalEntry {
    /// The height the message belongs to.
    pub fn height(&self) -> u64 {
        match self {
            WalEntry::Proposal(p) => p.proposal.height,
            WalEntry::Vote(v) => v.vote.height,
            WalEntry::LockProof { height, .. } => *height,
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
            WalEntry::LockProof { height, votes } => {
                out.push(3);
                out.extend_from_slice(&height.to_le_bytes());
                write_compact_size(out, votes.len() as u64);
                for vote in votes {
                    vote.encode_to(out);
                }
            }
        }
    }
    fn encoded_len(&self) -> usize {
        1 + match self {
            WalEntry::Proposal(p) => p.encoded_len(),
            WalEntry::Vote(v) => v.encoded_len(),
            WalEntry::LockProof { votes, .. } => {
                8 + compact_size_len(votes.len() as u64) + votes.iter().map(Encode::encoded_len).sum::<usize>()
            }
        }
    }
}

impl Decode for WalEntry {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.read_u8()? {
            1 => Ok(WalEntry::Proposal(SignedProposal::decode_from(reader)?)),
            2 => Ok(WalEntry::Vote(SignedVote::decode_from(reader)?)),
            3 => {
                let height = reader.read_u64()?;
                let count = reader.read_count("lock proof", MAX_PROOF_VOTES, 32 + 8 + 4 + 2 + 96)?;
                let mut votes = Vec::with_capacity(count);
                for _ in 0..count {
                    votes.push(SignedVote::decode_from(reader)?);
                }
                Ok(WalEntry::LockProof { height, votes })
            }
            _ => Err(DecodeError::InvalidValue {
                field: "wal entry",
                reason: "expected 1 (proposal), 2 (vote) or 3 (lock proof)",
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
        self.entries.push(entry.clone());
        Ok(())
    }

    fn entries(&self, height: u64) -> Result<Vec<WalEntry>, Self::Error> {
        Ok(self.entries.iter().filter(|e| e.height() == height).cloned().collect())
    }

    fn prune_below(&mut self, height: u64) -> Result<(), Self::Error> {
        self.entries.retain(|e| e.height() >= height);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timecoin_primitives::{BlockHash, Hash256, Proposal, SecretKey, Vote, VoteKind};

    fn vote(round: u32) -> SignedVote {
        SignedVote::sign(
            Vote {
                chain: BlockHash(Hash256([1; 32])),
                height: 3,
                round,
                kind: VoteKind::Prevote,
                block: Some(BlockHash(Hash256([2; 32]))),
            },
            &SecretKey::from_seed([round as u8; 32]),
        )
    }

    #[test]
    fn every_entry_round_trips_and_nothing_else_decodes() {
        let proposal = SignedProposal::sign(
            Proposal {
                chain: BlockHash(Hash256([1; 32])),
                height: 3,
                round: 1,
                valid_round: Some(0),
                block: BlockHash(Hash256([2; 32])),
            },
            &SecretKey::from_seed([9; 32]),
        );
        let entries = [
            WalEntry::Proposal(proposal),
            WalEntry::Vote(vote(0)),
            WalEntry::LockProof {
                height: 3,
                votes: vec![vote(0), vote(1), vote(2)],
            },
        ];
        for entry in entries {
            let bytes = entry.to_bytes();
            assert_eq!(bytes.len(), entry.encoded_len());
            assert_eq!(WalEntry::from_bytes(&bytes), Ok(entry.clone()));
            assert_eq!(entry.height(), 3);
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(WalEntry::from_bytes(&longer), Err(DecodeError::TrailingBytes(1)));
            let mut tagged = bytes;
            tagged[0] = 4;
            assert!(WalEntry::from_bytes(&tagged).is_err());
        }
    }

    #[test]
    fn the_memory_wal_keeps_heights_apart_and_prunes() {
        let mut wal = MemoryWal::default();
        wal.append(&WalEntry::Vote(vote(0))).unwrap_or_default();
        assert_eq!(wal.entries(3).unwrap_or_default().len(), 1);
        assert!(wal.entries(4).unwrap_or_default().is_empty());
        wal.prune_below(4).unwrap_or_default();
        assert!(wal.entries(3).unwrap_or_default().is_empty());
    }
}
