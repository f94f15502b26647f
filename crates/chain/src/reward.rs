//! The block reward rule.
//!
//! Each block mints `emission_per_period * min(dt, reward_period) / reward_period`, rounded
//! down, where `dt` is the chain time since the previous block: 100 TIME per 600 s however
//! blocks are spaced, and an outage mints at most one period's worth. The minted amount is
//! split among masternodes with voting power in proportion to their tier weight; the units
//! that rounding leaves over go to the heaviest member (the first in key order among equals).
//! The block's transaction fees go to the proposer. `docs/PROTOCOL.md` states the rule.

use thiserror::Error;
use timecoin_primitives::{Amount, MasternodeSet, PublicKey, TxOutput};

use crate::params::ChainParams;

/// The reward cannot be paid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RewardError {
    /// The proposer is not a voting member of the set.
    #[error("proposer {0} is not a voting masternode")]
    UnknownProposer(PublicKey),
    /// Reward plus fees overflow.
    #[error("reward plus fees overflow")]
    Overflow,
}

/// The amount a block minted `timestamp_ms` after its parent at `prev_timestamp_ms` creates.
pub fn block_reward(params: &ChainParams, prev_timestamp_ms: u64, timestamp_ms: u64) -> Amount {
    let period = params.reward_period_ms.max(1);
    let elapsed = timestamp_ms.saturating_sub(prev_timestamp_ms).min(period);
    let units = u128::from(params.emission_per_period.units()) * u128::from(elapsed) / u128::from(period);
    Amount::from_units(u64::try_from(units).unwrap_or(u64::MAX))
}

/// The outputs of a block's reward transaction, in their required order: one per paid
/// masternode in key order (zero shares omitted), then the fees to the proposer (if any).
pub fn reward_outputs(
    set: &MasternodeSet,
    reward: Amount,
    fees: Amount,
    proposer: &PublicKey,
) -> Result<Vec<TxOutput>, RewardError> {
    let proposer_node = set
        .get(proposer)
        .filter(|m| m.tier.weight() > 0)
        .ok_or(RewardError::UnknownProposer(*proposer))?;
    let total_weight = u128::from(set.total_voting_power());
    let mut shares: Vec<(usize, u64)> = Vec::new();
    let mut paid: u64 = 0;
    for (i, member) in set.members().iter().enumerate() {
        let weight = u128::from(member.tier.weight());
        if weight == 0 {
            continue;
        }
        // `total_weight` is positive: the proposer holds voting power.
        let share = (u128::from(reward.units()) * weight)
            .checked_div(total_weight)
            .unwrap_or(0);
        let share = u64::try_from(share).map_err(|_| RewardError::Overflow)?;
        paid = paid.checked_add(share).ok_or(RewardError::Overflow)?;
        shares.push((i, share));
    }
    let remainder = reward.units().checked_sub(paid).ok_or(RewardError::Overflow)?;
    // The heaviest member, first in key order among equals, takes the rounding remainder.
    let heaviest = set
        .members()
        .iter()
        .enumerate()
        .max_by(|(ia, a), (ib, b)| a.tier.weight().cmp(&b.tier.weight()).then(ib.cmp(ia)))
        .map(|(i, _)| i);
    if let Some(entry) = shares.iter_mut().find(|(i, _)| Some(*i) == heaviest) {
        entry.1 = entry.1.checked_add(remainder).ok_or(RewardError::Overflow)?;
    }
    let mut outputs: Vec<TxOutput> = shares
        .into_iter()
        .filter(|(_, share)| *share > 0)
        .filter_map(|(i, share)| {
            set.members().get(i).map(|m| TxOutput {
                amount: Amount::from_units(share),
                address: m.reward_address,
            })
        })
        .collect();
    if fees > Amount::ZERO {
        outputs.push(TxOutput {
            amount: fees,
            address: proposer_node.reward_address,
        });
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use timecoin_primitives::{AddressPayload, Masternode, Network, Tier};

    fn set(tiers: &[Tier]) -> MasternodeSet {
        MasternodeSet::new(
            tiers
                .iter()
                .enumerate()
                .map(|(i, tier)| Masternode {
                    operator: PublicKey([i as u8 + 1; 32]),
                    tier: *tier,
                    reward_address: AddressPayload([i as u8 + 1; 32]),
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn reward_is_proportional_to_elapsed_time_and_capped() {
        let p = ChainParams::for_network(Network::Local);
        assert_eq!(block_reward(&p, 0, 600_000), Amount::from_units(100 * 100_000_000));
        assert_eq!(block_reward(&p, 0, 6_000_000), Amount::from_units(100 * 100_000_000));
        assert_eq!(block_reward(&p, 1_000, 2_000), Amount::from_units(16_666_666));
        assert_eq!(block_reward(&p, 5, 5), Amount::ZERO);
        // Many short blocks never mint more than one long one.
        let mut total = 0;
        let mut t = 0;
        while t < 600_000 {
            total += block_reward(&p, t, t + 1_000).units();
            t += 1_000;
        }
        assert!(total <= 100 * 100_000_000);
        assert!(100 * 100_000_000 - total < 600);
    }

    #[test]
    fn split_by_tier_weight_pays_exactly_the_reward() {
        let s = set(&[Tier::Bronze, Tier::Silver, Tier::Gold, Tier::Free]);
        let proposer = PublicKey([1; 32]);
        let outputs = reward_outputs(&s, Amount::from_units(1_000_003), Amount::from_units(7), &proposer).unwrap();
        // Free is unpaid: three shares and the fee output.
        assert_eq!(outputs.len(), 4);
        let units: Vec<u64> = outputs.iter().map(|o| o.amount.units()).collect();
        assert_eq!(units[0], 1_000_003 / 111);
        assert_eq!(units[1], 1_000_003 * 10 / 111);
        assert_eq!(units[2], 1_000_003 - units[0] - units[1]);
        assert_eq!(units[3], 7);
        assert_eq!(outputs[3].address, AddressPayload([1; 32]));
    }

    #[test]
    fn free_or_unknown_proposer_is_refused() {
        let s = set(&[Tier::Bronze, Tier::Free]);
        assert_eq!(
            reward_outputs(&s, Amount::COIN, Amount::ZERO, &PublicKey([2; 32])),
            Err(RewardError::UnknownProposer(PublicKey([2; 32])))
        );
        assert!(reward_outputs(&s, Amount::COIN, Amount::ZERO, &PublicKey([9; 32])).is_err());
    }
}
