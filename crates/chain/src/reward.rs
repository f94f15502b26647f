//! The block reward rule.
//!
//! Each block mints `emission_per_period * min(dt, reward_period) / reward_period`, rounded
//! down, where `dt` is the chain time since the previous block: 100 TIME per 600 s however
//! blocks are spaced, and an outage mints at most one period's worth. The minted amount is
//! split, in proportion to tier weight, among the masternodes that have been active for a
//! whole reward period (genesis masternodes from the start); the units that rounding leaves
//! over go to the heaviest of them (the first in key order among equals). When none is
//! eligible nothing is minted. The block's transaction fees go to the proposer. `docs/PROTOCOL.md` states the rule.

use thiserror::Error;
use timecoin_primitives::{Amount, Masternode, MasternodeSet, PublicKey, TxOutput};

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

/// Each payee's share of `reward`, in key order: proportional to tier weight, rounded down,
/// with the units rounding leaves over added to the heaviest payee (the first in key order
/// among equals).
pub fn reward_shares(payees: &MasternodeSet, reward: Amount) -> Vec<(Masternode, u64)> {
    let total_weight = u128::from(payees.total_voting_power());
    let mut shares: Vec<(Masternode, u64)> = payees
        .members()
        .iter()
        .filter(|m| m.tier.weight() > 0)
        .map(|m| {
            let share = (u128::from(reward.units()) * u128::from(m.tier.weight()))
                .checked_div(total_weight)
                .unwrap_or(0);
            // A share is at most `reward`, which fits in u64.
            (*m, u64::try_from(share).unwrap_or(0))
        })
        .collect();
    let paid: u64 = shares.iter().fold(0u64, |sum, (_, share)| sum.saturating_add(*share));
    let remainder = reward.units().saturating_sub(paid);
    let heaviest = shares
        .iter()
        .enumerate()
        .max_by(|(ia, a), (ib, b)| a.0.tier.weight().cmp(&b.0.tier.weight()).then(ib.cmp(ia)))
        .map(|(i, _)| i);
    if let Some(entry) = heaviest.and_then(|i| shares.get_mut(i)) {
        entry.1 = entry.1.saturating_add(remainder);
    }
    shares
}

/// The outputs of a block's reward transaction, in their required order: one per paid
/// masternode in key order (zero shares omitted), then the fees to the proposer (if any).
/// `payees` are the masternodes eligible for the reward ([`crate::MasternodeList::payees`]);
/// when there are none, nothing is minted. The proposer must hold voting power in `voting`.
pub fn reward_outputs(
    voting: &MasternodeSet,
    payees: &MasternodeSet,
    reward: Amount,
    fees: Amount,
    proposer: &PublicKey,
) -> Result<Vec<TxOutput>, RewardError> {
    let proposer_node = voting
        .get(proposer)
        .filter(|m| m.tier.weight() > 0)
        .ok_or(RewardError::UnknownProposer(*proposer))?;
    let mut outputs: Vec<TxOutput> = reward_shares(payees, reward)
        .into_iter()
        .filter(|(_, share)| *share > 0)
        .map(|(m, share)| TxOutput {
            amount: Amount::from_units(share),
            address: m.reward_address,
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
        let outputs = reward_outputs(&s, &s, Amount::from_units(1_000_003), Amount::from_units(7), &proposer).unwrap();
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
            reward_outputs(&s, &s, Amount::COIN, Amount::ZERO, &PublicKey([2; 32])),
            Err(RewardError::UnknownProposer(PublicKey([2; 32])))
        );
        assert!(reward_outputs(&s, &s, Amount::COIN, Amount::ZERO, &PublicKey([9; 32])).is_err());
    }
}
