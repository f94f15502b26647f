//! The validator set of one height and CometBFT's weighted round-robin proposer selection.

use thiserror::Error;
use timecoin_primitives::{MasternodeSet, PublicKey};

/// A validator: an operator key and its voting power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Validator {
    /// The key it signs with.
    pub key: PublicKey,
    /// Its voting power (positive).
    pub power: u64,
}

/// Why a list of validators is not a set.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ValidatorSetError {
    /// One key appears twice.
    #[error("validator {0} appears more than once")]
    Duplicate(PublicKey),
    /// The total power does not fit the arithmetic.
    #[error("total voting power is too large")]
    PowerOverflow,
}

/// The validators of one height, with the proposer priorities that choose each round's
/// proposer. Validators without power are left out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    priorities: Vec<i64>,
    total: u64,
}

/// Largest total power: keeps every priority computation inside `i64`.
const MAX_TOTAL_POWER: u64 = (i64::MAX / 8) as u64;

impl ValidatorSet {
    /// A set with all priorities at zero.
    pub fn new(mut validators: Vec<Validator>) -> Result<ValidatorSet, ValidatorSetError> {
        validators.retain(|v| v.power > 0);
        validators.sort_by_key(|v| v.key);
        for pair in validators.windows(2) {
            if let [a, b] = pair
                && a.key == b.key
            {
                return Err(ValidatorSetError::Duplicate(a.key));
            }
        }
        let total = validators
            .iter()
            .try_fold(0u64, |sum, v| sum.checked_add(v.power))
            .filter(|t| *t <= MAX_TOTAL_POWER)
            .ok_or(ValidatorSetError::PowerOverflow)?;
        let priorities = vec![0; validators.len()];
        Ok(ValidatorSet {
            validators,
            priorities,
            total,
        })
    }

    /// The voting members of a masternode set, power = tier weight.
    pub fn from_masternodes(set: &MasternodeSet) -> Result<ValidatorSet, ValidatorSetError> {
        ValidatorSet::new(
            set.members()
                .iter()
                .map(|m| Validator {
                    key: m.operator,
                    power: m.tier.weight(),
                })
                .collect(),
        )
    }

    /// The validators, sorted by key.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// Number of validators.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// Total voting power.
    pub fn total_power(&self) -> u64 {
        self.total
    }

    /// The power of `key` (0 if it is not a validator).
    pub fn power(&self, key: &PublicKey) -> u64 {
        self.validators
            .binary_search_by_key(key, |v| v.key)
            .ok()
            .and_then(|i| self.validators.get(i))
            .map_or(0, |v| v.power)
    }

    /// Whether `power` is more than 2/3 of the total.
    pub fn is_quorum(&self, power: u64) -> bool {
        u128::from(power) * 3 > u128::from(self.total) * 2
    }

    /// Whether `power` is more than 1/3 of the total: at least one honest validator is in it.
    pub fn is_one_third(&self, power: u64) -> bool {
        u128::from(power) * 3 > u128::from(self.total)
    }

    /// The proposer of `round` at this set's height.
    pub fn proposer(&self, round: u32) -> Option<PublicKey> {
        let mut priorities = self.priorities.clone();
        self.rescale_and_center(&mut priorities);
        let mut chosen = None;
        for _ in 0..=round {
            chosen = self.increment(&mut priorities);
        }
        chosen.and_then(|i| self.validators.get(i)).map(|v| v.key)
    }

    /// The same validators with the priorities of the next height (one increment, as
    /// CometBFT does per height).
    pub fn next_height(&self) -> ValidatorSet {
        let mut next = self.clone();
        let mut priorities = std::mem::take(&mut next.priorities);
        self.rescale_and_center(&mut priorities);
        self.increment(&mut priorities);
        next.priorities = priorities;
        next
    }

    /// One step of weighted round robin: everyone gains its power, the highest (lowest key
    /// among equals) is chosen and pays the total.
    fn increment(&self, priorities: &mut [i64]) -> Option<usize> {
        let mut best: Option<(usize, i64)> = None;
        for (i, (priority, validator)) in priorities.iter_mut().zip(&self.validators).enumerate() {
            *priority = priority.saturating_add(i64::try_from(validator.power).unwrap_or(i64::MAX));
            if best.is_none_or(|(_, p)| *priority > p) {
                best = Some((i, *priority));
            }
        }
        let (index, _) = best?;
        if let Some(p) = priorities.get_mut(index) {
            *p = p.saturating_sub(i64::try_from(self.total).unwrap_or(i64::MAX));
        }
        Some(index)
    }

    /// Keeps priorities within twice the total power of each other and centred on zero.
    fn rescale_and_center(&self, priorities: &mut [i64]) {
        if priorities.is_empty() {
            return;
        }
        let window = i64::try_from(self.total.saturating_mul(2)).unwrap_or(i64::MAX).max(1);
        let max = priorities.iter().copied().max().unwrap_or(0);
        let min = priorities.iter().copied().min().unwrap_or(0);
        let spread = max.saturating_sub(min);
        if spread > window {
            let ratio = (spread + window - 1) / window;
            for p in priorities.iter_mut() {
                *p /= ratio;
            }
        }
        let sum: i128 = priorities.iter().map(|p| i128::from(*p)).sum();
        let average = sum.div_euclid(priorities.len() as i128);
        let average = i64::try_from(average).unwrap_or(0);
        for p in priorities.iter_mut() {
            *p = p.saturating_sub(average);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(powers: &[u64]) -> ValidatorSet {
        ValidatorSet::new(
            powers
                .iter()
                .enumerate()
                .map(|(i, p)| Validator {
                    key: PublicKey([i as u8 + 1; 32]),
                    power: *p,
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn equal_power_rotates_through_everyone() {
        let s = set(&[1, 1, 1, 1]);
        let proposers: Vec<_> = (0..8).map(|r| s.proposer(r).unwrap()).collect();
        for key in s.validators().iter().map(|v| v.key) {
            assert_eq!(proposers.iter().filter(|p| **p == key).count(), 2);
        }
        // The next height starts where this one's round 0 left off.
        assert_eq!(s.next_height().proposer(0), s.proposer(1));
    }

    #[test]
    fn proposals_follow_voting_power() {
        let s = set(&[1, 2, 7]);
        let mut counts = [0usize; 3];
        let mut height = s.clone();
        for _ in 0..1000 {
            let p = height.proposer(0).unwrap();
            counts[s.validators().iter().position(|v| v.key == p).unwrap()] += 1;
            height = height.next_height();
        }
        assert_eq!(counts, [100, 200, 700]);
    }

    #[test]
    fn thresholds_and_bad_sets() {
        let s = set(&[1, 1, 1, 0]);
        assert_eq!(s.len(), 3);
        assert!(s.is_quorum(3) && !s.is_quorum(2));
        assert!(s.is_one_third(2) && !s.is_one_third(1));
        let dup = ValidatorSet::new(vec![
            Validator {
                key: PublicKey([1; 32]),
                power: 1,
            },
            Validator {
                key: PublicKey([1; 32]),
                power: 2,
            },
        ]);
        assert_eq!(dup, Err(ValidatorSetError::Duplicate(PublicKey([1; 32]))));
        let huge = ValidatorSet::new(vec![
            Validator {
                key: PublicKey([1; 32]),
                power: u64::MAX,
            },
            Validator {
                key: PublicKey([2; 32]),
                power: 1,
            },
        ]);
        assert_eq!(huge, Err(ValidatorSetError::PowerOverflow));
    }
}
