//! Whether the network has finalized this node's height without it: Tendermint's f+1 rule,
//! applied to heights.
//!
//! An honest validator signs a message for height `h + 1` only after height `h` was
//! finalized. So when validators holding more than a third of the voting power signed
//! messages for heights above this node's next height, at least one honest validator is past
//! it, the height is finalized, and the node must sync instead of voting. One signature
//! proves nothing about the others: a single Byzantine validator signing a vote for a far
//! height cannot silence anyone, because it never holds more than a third on its own.
//!
//! Each validator's claim expires [`AheadWitnesses::ttl_ms`] after it was last seen, so a
//! claim that is never served (the honest network keeps re-sending its current votes, which
//! refreshes a true claim) stops counting. The host checks signatures and the network tag;
//! this module owns no clock: time comes in as milliseconds from any monotonic origin.

use std::collections::HashMap;

use timecoin_primitives::PublicKey;

use crate::validators::ValidatorSet;

/// The default time a validator's claim counts after it was last seen.
pub const DEFAULT_AHEAD_TTL_MS: u64 = 10_000;

/// The highest later height each validator signed for, and when it was last seen.
#[derive(Debug, Clone)]
pub struct AheadWitnesses {
    /// Validator → (highest height signed above the node's, when seen in ms).
    seen: HashMap<PublicKey, (u64, u64)>,
    ttl_ms: u64,
}

impl Default for AheadWitnesses {
    fn default() -> Self {
        AheadWitnesses::new(DEFAULT_AHEAD_TTL_MS)
    }
}

impl AheadWitnesses {
    /// No witnesses; claims count for `ttl_ms` after they were last seen.
    pub fn new(ttl_ms: u64) -> AheadWitnesses {
        AheadWitnesses {
            seen: HashMap::new(),
            ttl_ms,
        }
    }

    /// How long a claim counts after it was last seen.
    pub fn ttl_ms(&self) -> u64 {
        self.ttl_ms
    }

    /// `validator` (whose signature the host checked) signed a message for `height`, above
    /// this node's next height `next`. Only members of `validators` are remembered, so the
    /// map holds at most one entry per validator of the set.
    pub fn observe(&mut self, validator: PublicKey, height: u64, next: u64, validators: &ValidatorSet, now_ms: u64) {
        if height <= next || validators.power(&validator) == 0 {
            return;
        }
        // Any message above this node's height refreshes the validator's claim.
        let entry = self.seen.entry(validator).or_insert((height, now_ms));
        *entry = (entry.0.max(height), entry.1.max(now_ms));
    }

    /// Whether validators of `validators` holding more than a third of its power signed, in
    /// the last `ttl_ms`, for heights above `next`: the network finalized `next`.
    pub fn is_behind(&self, next: u64, validators: &ValidatorSet, now_ms: u64) -> bool {
        let power = self
            .seen
            .iter()
            .filter(|(_, (height, at))| *height > next && now_ms.saturating_sub(*at) <= self.ttl_ms)
            .map(|(validator, _)| validators.power(validator))
            .fold(0u64, u64::saturating_add);
        validators.is_one_third(power)
    }

    /// The node moved to `next`: claims it reached no longer count, expired ones are
    /// forgotten.
    pub fn advance(&mut self, next: u64, now_ms: u64) {
        let ttl = self.ttl_ms;
        self.seen
            .retain(|_, (height, at)| *height > next && now_ms.saturating_sub(*at) <= ttl);
    }

    /// Whether `validator`'s claim already covers `height` and was refreshed less than
    /// `within_ms` ago: the host may skip checking another signature for it.
    pub fn refreshed_within(&self, validator: &PublicKey, height: u64, now_ms: u64, within_ms: u64) -> bool {
        self.seen
            .get(validator)
            .is_some_and(|(seen, at)| *seen >= height && now_ms.saturating_sub(*at) < within_ms)
    }

    /// Validators remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}
