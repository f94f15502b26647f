//! Which proposals a node takes up at its height, before any signature is checked or any
//! block validated: only the round's proposer's, within the round window, naming the block
//! they carry, and one block a round. A proposer that signs many blocks for one round can
//! make a node hold and validate only the first; a stranger, or a validator out of turn, none.
//!
//! Pure: the host asks [`ProposalGate::consider`], checks the signature and the body, and
//! [`ProposalGate::record`]s what it took up.

use std::collections::HashMap;

use timecoin_primitives::{BlockHash, PublicKey, SignedProposal};

use crate::validators::ValidatorSet;

/// What a proposal for this node's height is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalAdmission {
    /// The round's first block from its proposer: check its signature and body, then take it.
    New,
    /// The block already taken up for its round, again.
    Known,
    /// Not worth a signature check: another height, a round past the window, a signer who is
    /// not the round's proposer, a new block whose header names another proposer, a hash
    /// that is not the block's, or a second block for the round.
    Dropped,
}

/// The blocks taken up at one height, by round.
#[derive(Debug, Clone, Default)]
pub struct ProposalGate {
    taken: HashMap<u32, BlockHash>,
}

/// A proposal as it arrived: the signed proposal, and what the block it carries says.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    /// The signed proposal (its signature not checked yet).
    pub proposal: &'a SignedProposal,
    /// The hash of the block it carries.
    pub block_hash: BlockHash,
    /// The proposer the block's header names.
    pub block_proposer: PublicKey,
}

impl ProposalGate {
    /// Forgets the last height's blocks.
    pub fn clear(&mut self) {
        self.taken.clear();
    }

    /// Judges `arrival` at `height`, whose current round is `round` and whose set is
    /// `validators`; rounds more than `max_future_rounds` ahead are dropped before the
    /// round's proposer is computed (which costs time proportional to the round).
    pub fn consider(
        &self,
        validators: &ValidatorSet,
        height: u64,
        (round, max_future_rounds): (u32, u32),
        arrival: Arrival<'_>,
    ) -> ProposalAdmission {
        let proposal = &arrival.proposal.proposal;
        if proposal.height != height || proposal.round > round.saturating_add(max_future_rounds) {
            return ProposalAdmission::Dropped;
        }
        let proposer = arrival.proposal.proposer;
        // A new block must name its proposer (who is paid for it); a block re-proposed from
        // an earlier round (`valid_round`) keeps the header of whoever built it, and the
        // engine follows it only with the earlier round's polka.
        let builder_named = proposal.valid_round.is_some() || arrival.block_proposer == proposer;
        if validators.proposer(proposal.round) != Some(proposer)
            || !builder_named
            || proposal.block != arrival.block_hash
        {
            return ProposalAdmission::Dropped;
        }
        match self.taken.get(&proposal.round) {
            None => ProposalAdmission::New,
            Some(taken) if *taken == arrival.block_hash => ProposalAdmission::Known,
            Some(_) => ProposalAdmission::Dropped,
        }
    }

    /// Takes up `block_hash` for `round` (after its signature and body passed).
    pub fn record(&mut self, round: u32, block_hash: BlockHash) {
        self.taken.entry(round).or_insert(block_hash);
    }
}
