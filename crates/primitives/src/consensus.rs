//! Signed consensus messages and equivocation evidence.
//!
//! A masternode signs the [`Domain::Vote`] hash of a vote's encoding, or the
//! [`Domain::Proposal`] hash of a proposal's; both carry the network's genesis hash, the
//! height and the round, so a signature is valid for exactly one message on one network.

use thiserror::Error;

use crate::block::{Vote, VoteKind};
use crate::encoding::{Decode, DecodeError, Encode, Reader};
use crate::hash::{Domain, Hash256};
use crate::keys::{PublicKey, SecretKey, Signature, SignatureError};
use crate::transaction::BlockHash;

/// A vote with its signer and signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignedVote {
    /// What was voted.
    pub vote: Vote,
    /// The signer's operator key.
    pub validator: PublicKey,
    /// The signature over [`Vote::signing_message`].
    pub signature: Signature,
}

impl SignedVote {
    /// Signs `vote` with `key`.
    pub fn sign(vote: Vote, key: &SecretKey) -> SignedVote {
        SignedVote {
            vote,
            validator: key.public_key(),
            signature: key.sign(&vote.signing_message().0),
        }
    }

    /// Checks the signature.
    pub fn verify(&self) -> Result<(), SignatureError> {
        self.validator.verify(&self.vote.signing_message().0, &self.signature)
    }
}

impl Encode for SignedVote {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.vote.encode_to(out);
        self.validator.encode_to(out);
        self.signature.encode_to(out);
    }
    fn encoded_len(&self) -> usize {
        self.vote.encoded_len() + 32 + 64
    }
}

impl Decode for SignedVote {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SignedVote {
            vote: Vote::decode_from(reader)?,
            validator: PublicKey::decode_from(reader)?,
            signature: Signature::decode_from(reader)?,
        })
    }
}

/// A proposer's proposal of a block for a height and round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Proposal {
    /// The network's genesis hash.
    pub chain: BlockHash,
    /// The height.
    pub height: u64,
    /// The round.
    pub round: u32,
    /// The round in which the proposer saw more than 2/3 prevotes for this block, if it is
    /// re-proposing a block from an earlier round (Tendermint's `validRound`).
    pub valid_round: Option<u32>,
    /// The proposed block.
    pub block: BlockHash,
}

impl Proposal {
    /// The message a proposer signs.
    pub fn signing_message(&self) -> Hash256 {
        Domain::Proposal.hash_encoded(self)
    }
}

impl Encode for Proposal {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.chain.encode_to(out);
        out.extend_from_slice(&self.height.to_le_bytes());
        out.extend_from_slice(&self.round.to_le_bytes());
        match self.valid_round {
            None => out.push(0),
            Some(round) => {
                out.push(1);
                out.extend_from_slice(&round.to_le_bytes());
            }
        }
        self.block.encode_to(out);
    }
    fn encoded_len(&self) -> usize {
        32 + 8 + 4 + 1 + if self.valid_round.is_some() { 4 } else { 0 } + 32
    }
}

impl Decode for Proposal {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let chain = BlockHash::decode_from(reader)?;
        let height = reader.read_u64()?;
        let round = reader.read_u32()?;
        let valid_round = match reader.read_u8()? {
            0 => None,
            1 => Some(reader.read_u32()?),
            _ => {
                return Err(DecodeError::InvalidValue {
                    field: "valid round",
                    reason: "expected 0 (none) or 1 (a round)",
                });
            }
        };
        Ok(Proposal {
            chain,
            height,
            round,
            valid_round,
            block: BlockHash::decode_from(reader)?,
        })
    }
}

/// A proposal with its signer and signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignedProposal {
    /// What was proposed.
    pub proposal: Proposal,
    /// The proposer's operator key.
    pub proposer: PublicKey,
    /// The signature over [`Proposal::signing_message`].
    pub signature: Signature,
}

impl SignedProposal {
    /// Signs `proposal` with `key`.
    pub fn sign(proposal: Proposal, key: &SecretKey) -> SignedProposal {
        SignedProposal {
            proposal,
            proposer: key.public_key(),
            signature: key.sign(&proposal.signing_message().0),
        }
    }

    /// Checks the signature.
    pub fn verify(&self) -> Result<(), SignatureError> {
        self.proposer
            .verify(&self.proposal.signing_message().0, &self.signature)
    }
}

impl Encode for SignedProposal {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.proposal.encode_to(out);
        self.proposer.encode_to(out);
        self.signature.encode_to(out);
    }
    fn encoded_len(&self) -> usize {
        self.proposal.encoded_len() + 32 + 64
    }
}

impl Decode for SignedProposal {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SignedProposal {
            proposal: Proposal::decode_from(reader)?,
            proposer: PublicKey::decode_from(reader)?,
            signature: Signature::decode_from(reader)?,
        })
    }
}

/// Why two votes are not evidence of equivocation.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// The votes differ in signer, network, height, round or kind, or agree on the value.
    #[error("the two votes are not conflicting votes of one validator for one height, round and kind")]
    NotConflicting,
    /// A signature does not verify.
    #[error("a vote in the evidence has an invalid signature")]
    BadSignature,
}

/// Proof that a validator signed two different votes of one kind for one height and round.
/// The two votes are kept in canonical order (by encoding), so one equivocation has one
/// encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Equivocation {
    first: SignedVote,
    second: SignedVote,
}

impl Equivocation {
    /// Evidence from two conflicting votes, in either order.
    pub fn new(a: SignedVote, b: SignedVote) -> Result<Equivocation, EvidenceError> {
        let conflicting = a.validator == b.validator
            && a.vote.chain == b.vote.chain
            && a.vote.height == b.vote.height
            && a.vote.round == b.vote.round
            && a.vote.kind == b.vote.kind
            && a.vote.block != b.vote.block;
        if !conflicting {
            return Err(EvidenceError::NotConflicting);
        }
        let (first, second) = if a.to_bytes() < b.to_bytes() { (a, b) } else { (b, a) };
        Ok(Equivocation { first, second })
    }

    /// The two votes, in canonical order.
    pub fn votes(&self) -> (&SignedVote, &SignedVote) {
        (&self.first, &self.second)
    }

    /// The offending validator.
    pub fn validator(&self) -> PublicKey {
        self.first.validator
    }

    /// The height of the offence.
    pub fn height(&self) -> u64 {
        self.first.vote.height
    }

    /// The round and kind of the offence.
    pub fn round_and_kind(&self) -> (u32, VoteKind) {
        (self.first.vote.round, self.first.vote.kind)
    }

    /// Checks both signatures.
    pub fn verify(&self) -> Result<(), EvidenceError> {
        self.first.verify().map_err(|_| EvidenceError::BadSignature)?;
        self.second.verify().map_err(|_| EvidenceError::BadSignature)
    }
}

impl Encode for Equivocation {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.first.encode_to(out);
        self.second.encode_to(out);
    }
    fn encoded_len(&self) -> usize {
        self.first.encoded_len() + self.second.encoded_len()
    }
}

impl Decode for Equivocation {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let first = SignedVote::decode_from(reader)?;
        let second = SignedVote::decode_from(reader)?;
        let evidence = Equivocation::new(first, second).map_err(|_| DecodeError::InvalidValue {
            field: "equivocation",
            reason: "the votes do not conflict",
        })?;
        if evidence.first != first {
            return Err(DecodeError::InvalidValue {
                field: "equivocation",
                reason: "votes are not in canonical order",
            });
        }
        Ok(evidence)
    }
}
