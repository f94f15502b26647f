//! Counting votes of one height: power per round, kind and value, duplicates ignored, and
//! equivocation detected.
//!
//! As in the algorithm's paper, a quorum for a value is counted over the distinct validators
//! that sent a vote *for that value*: a validator that equivocates counts toward each value
//! it voted for. That keeps safety (two quorums still share an honest validator, and honest
//! validators vote once) and keeps honest nodes from disagreeing about which of an
//! equivocator's votes they happened to see first, which would cost liveness. At most
//! [`MAX_VALUES_PER_VALIDATOR`] distinct values are kept per validator, round and kind.

use std::collections::{BTreeMap, HashMap, HashSet};

use timecoin_primitives::{BlockHash, Equivocation, PublicKey, SignedVote, VoteKind};

/// Distinct values counted per validator, round and kind; further ones are only evidence.
pub(crate) const MAX_VALUES_PER_VALIDATOR: usize = 4;

/// What adding a vote did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    /// A new vote was counted.
    Counted,
    /// The same vote was already counted.
    Duplicate,
    /// The validator had signed a different vote of this kind in this round: both count
    /// toward their values, and the pair is evidence.
    Equivocation(Box<Equivocation>),
}

/// The votes of one kind in one round.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    by_validator: HashMap<PublicKey, Vec<SignedVote>>,
    power_by_value: HashMap<Option<BlockHash>, u64>,
    total: u64,
}

impl Tally {
    /// Power that voted for `value` (`None`: nil).
    pub fn power_for(&self, value: &Option<BlockHash>) -> u64 {
        self.power_by_value.get(value).copied().unwrap_or(0)
    }

    /// Power that voted at all (each validator once).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Every vote counted.
    pub fn all_votes(&self) -> impl Iterator<Item = &SignedVote> {
        self.by_validator.values().flat_map(|votes| votes.iter())
    }

    /// The votes for `value`.
    pub fn votes_for<'a>(&'a self, value: &'a Option<BlockHash>) -> impl Iterator<Item = &'a SignedVote> + 'a {
        self.by_validator
            .values()
            .flat_map(|votes| votes.iter())
            .filter(move |v| v.vote.block == *value)
    }
}

/// Votes of one round.
#[derive(Debug, Clone, Default)]
pub struct RoundVotes {
    /// Prevotes.
    pub prevotes: Tally,
    /// Precommits.
    pub precommits: Tally,
    senders: HashSet<PublicKey>,
    sender_power: u64,
}

impl RoundVotes {
    /// The tally of one kind.
    pub fn tally(&self, kind: VoteKind) -> &Tally {
        match kind {
            VoteKind::Prevote => &self.prevotes,
            VoteKind::Precommit => &self.precommits,
        }
    }

    /// Power of the distinct validators that sent any message in this round.
    pub fn sender_power(&self) -> u64 {
        self.sender_power
    }
}

/// All votes of one height, by round.
#[derive(Debug, Clone, Default)]
pub struct VoteKeeper {
    rounds: BTreeMap<u32, RoundVotes>,
}

impl VoteKeeper {
    /// The votes of `round`, if any arrived.
    pub fn round(&self, round: u32) -> Option<&RoundVotes> {
        self.rounds.get(&round)
    }

    /// Records that a validator of `power` sent some message in `round`.
    pub fn note_sender(&mut self, round: u32, sender: PublicKey, power: u64) {
        let entry = self.rounds.entry(round).or_default();
        if entry.senders.insert(sender) {
            entry.sender_power = entry.sender_power.saturating_add(power);
        }
    }

    /// Adds a vote (its signature already checked) from a validator of `power`.
    pub fn add(&mut self, vote: SignedVote, power: u64) -> AddOutcome {
        self.note_sender(vote.vote.round, vote.validator, power);
        let round = self.rounds.entry(vote.vote.round).or_default();
        let tally = match vote.vote.kind {
            VoteKind::Prevote => &mut round.prevotes,
            VoteKind::Precommit => &mut round.precommits,
        };
        let existing = tally.by_validator.entry(vote.validator).or_default();
        if existing.contains(&vote) {
            return AddOutcome::Duplicate;
        }
        let first_vote = existing.is_empty();
        let conflict = existing.first().map(|first| Equivocation::new(*first, vote));
        let same_value = existing.iter().any(|v| v.vote.block == vote.vote.block);
        if !same_value && existing.len() < MAX_VALUES_PER_VALIDATOR {
            existing.push(vote);
            let slot = tally.power_by_value.entry(vote.vote.block).or_default();
            *slot = slot.saturating_add(power);
        }
        if first_vote {
            tally.total = tally.total.saturating_add(power);
        }
        match conflict {
            Some(Ok(evidence)) => AddOutcome::Equivocation(Box::new(evidence)),
            // Same value under another signature encoding: nothing to count or report.
            Some(Err(_)) => AddOutcome::Duplicate,
            None => AddOutcome::Counted,
        }
    }

    /// Rounds with any message, highest first.
    pub fn rounds_descending(&self) -> impl Iterator<Item = (&u32, &RoundVotes)> {
        self.rounds.iter().rev()
    }
}
