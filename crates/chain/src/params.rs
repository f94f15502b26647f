//! Per-network chain parameters.

use timecoin_primitives::limits::{MAX_BLOCK_BYTES, MAX_BLOCK_TXS, MAX_TX_BYTES};
use timecoin_primitives::{Amount, Network};

/// A fee rate in base units per 1,000 bytes of encoded transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FeeRate(pub u64);

impl FeeRate {
    /// The fee this rate asks of `size` bytes, rounded up.
    pub fn fee_for(self, size: usize) -> Amount {
        let units = (u128::from(self.0) * size as u128).div_ceil(1_000);
        Amount::from_units(u64::try_from(units).unwrap_or(u64::MAX))
    }

    /// The rate `fee` pays for `size` bytes, rounded down.
    pub fn of(fee: Amount, size: usize) -> FeeRate {
        let rate = u128::from(fee.units()) * 1_000 / (size.max(1) as u128);
        FeeRate(u64::try_from(rate).unwrap_or(u64::MAX))
    }
}

/// Everything that differs between networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainParams {
    /// Which network.
    pub network: Network,
    /// Four bytes that open every P2P message, so peers of different networks never talk.
    pub magic: [u8; 4],
    /// Default P2P port.
    pub p2p_port: u16,
    /// Default JSON-RPC port.
    pub rpc_port: u16,
    /// Largest encoded block.
    pub max_block_bytes: usize,
    /// Largest encoded transaction.
    pub max_tx_bytes: usize,
    /// Most transactions in a block, the reward transaction included.
    pub max_block_txs: usize,
    /// The lowest fee rate a transaction may pay (a consensus rule).
    pub min_fee_rate: FeeRate,
    /// Outputs below this are refused by the mempool (a relay policy, not consensus).
    pub dust_limit: Amount,
    /// How far past the validating node's clock a block timestamp may be.
    pub max_future_block_ms: u64,
    /// Coins minted per reward period.
    pub emission_per_period: Amount,
    /// The reward period in milliseconds of chain time.
    pub reward_period_ms: u64,
    /// Fewest masternodes with voting power for blocks to be produced.
    pub min_masternodes: usize,
    /// Blocks between a registration's block and the first block its masternode votes on.
    pub masternode_activation_blocks: u64,
    /// Proof-of-service penalty added for each certificate that lacks a masternode's
    /// precommit; each certificate that has it takes 1 away. With 2, a masternode missing
    /// more than a third of recent certificates accumulates a penalty.
    pub pose_miss_penalty: u32,
    /// The penalty at which an active masternode is excluded from the voting set.
    pub pose_ban_threshold: u32,
    /// How long (blocks) evidence of double-signing bans a masternode.
    pub evidence_ban_blocks: u64,
    /// The oldest evidence a block may carry, in blocks below its height; also how long a
    /// collateral stays locked after its masternode leaves the voting set, so that evidence
    /// of its last votes can still ban it.
    pub max_evidence_age_blocks: u64,
}

impl ChainParams {
    /// The parameters of `network`.
    pub fn for_network(network: Network) -> ChainParams {
        // A local chain may run on one masternode (`timed --dev`); public networks need
        // enough masternodes that one operator cannot finalize alone.
        let (magic, p2p_port, rpc_port, min_masternodes) = match network {
            Network::Mainnet => (*b"TIME", 24000, 24001, 3),
            Network::Testnet => (*b"TIMT", 24100, 24101, 3),
            Network::Local => (*b"TIML", 24200, 24201, 1),
        };
        // A local chain runs blocks as fast as they are asked for (one a second when idle),
        // so its masternodes join within a couple of blocks and a collateral unlocks within
        // the evidence window of 20 blocks after a revocation; public networks wait longer.
        let (masternode_activation_blocks, evidence_ban_blocks, max_evidence_age_blocks) = match network {
            Network::Mainnet | Network::Testnet => (10, 100_000, 1_000),
            Network::Local => (2, 10_000, 20),
        };
        ChainParams {
            network,
            magic,
            p2p_port,
            rpc_port,
            max_block_bytes: MAX_BLOCK_BYTES,
            max_tx_bytes: MAX_TX_BYTES,
            max_block_txs: MAX_BLOCK_TXS,
            min_fee_rate: FeeRate(1_000),
            dust_limit: Amount::from_units(1_000),
            max_future_block_ms: 15_000,
            emission_per_period: Amount::COIN.checked_mul(100).unwrap_or(Amount::ZERO),
            reward_period_ms: 600_000,
            min_masternodes,
            masternode_activation_blocks,
            pose_miss_penalty: 2,
            pose_ban_threshold: 1_000,
            evidence_ban_blocks,
            max_evidence_age_blocks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_rate_rounds_in_the_network_s_favour() {
        assert_eq!(FeeRate(1_000).fee_for(250), Amount::from_units(250));
        assert_eq!(FeeRate(1).fee_for(1), Amount::from_units(1));
        assert_eq!(FeeRate(1_500).fee_for(3), Amount::from_units(5));
        assert_eq!(FeeRate::of(Amount::from_units(250), 250), FeeRate(1_000));
        assert_eq!(FeeRate::of(Amount::from_units(1), 0), FeeRate(1_000));
    }

    #[test]
    fn networks_differ_where_they_must() {
        let all: Vec<_> = Network::ALL.into_iter().map(ChainParams::for_network).collect();
        assert_eq!((all[0].p2p_port, all[0].rpc_port), (24000, 24001));
        assert_eq!((all[1].p2p_port, all[1].rpc_port), (24100, 24101));
        assert_ne!(all[0].magic, all[1].magic);
        assert_ne!(all[1].magic, all[2].magic);
        assert_eq!(all[0].emission_per_period, Amount::from_units(100 * 100_000_000));
    }
}
