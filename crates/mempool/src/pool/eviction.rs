//! Leaving the pool: eviction of the lowest descendant-score packages down to the limits,
//! expiry, the removals a connected block causes, and the rolling minimum fee rate that
//! evictions raise and blocks let decay.

use timecoin_chain::{FeeRate, UtxoView, ViewError};
use timecoin_primitives::{Block, TxId};

use super::claims::Claim;
use super::{BlockRemoval, Mempool};

/// Entries whose confirmed inputs are looked up again after each block, at least (half the
/// block's transaction count when larger: the lookups were 4% of a loaded node's CPU at twice
/// the count, and the net only guards against a chain state the pool failed to follow).
const MIN_RECHECK_PER_BLOCK: usize = 1_000;

impl Mempool {
    /// The lowest fee rate a new transaction must pay now: the network minimum, or the
    /// rolling minimum that rises when the pool evicts and decays after blocks.
    pub fn min_fee_rate(&mut self, now_ms: u64) -> FeeRate {
        let incremental = self.config.incremental_fee_rate.0 as f64;
        if self.block_since_bump && self.rolling_min_fee > 0.0 && now_ms > self.rolling_updated_ms + 10_000 {
            let mut half_life = self.config.min_fee_half_life_ms.max(1) as f64;
            if self.usage < self.config.max_bytes / 4 {
                half_life /= 4.0;
            } else if self.usage < self.config.max_bytes / 2 {
                half_life /= 2.0;
            }
            let elapsed = now_ms.saturating_sub(self.rolling_updated_ms) as f64;
            self.rolling_min_fee /= (elapsed / half_life).exp2();
            self.rolling_updated_ms = now_ms;
            if self.rolling_min_fee < incremental / 2.0 {
                self.rolling_min_fee = 0.0;
            }
        }
        FeeRate(self.params.min_fee_rate.0.max(self.rolling_min_fee.ceil() as u64))
    }

    /// Drops expired transactions, then evicts the lowest descendant-score packages until the
    /// pool is within its limits, raising the rolling minimum fee rate past each evicted
    /// package's rate. Returns what was removed.
    pub fn trim(&mut self, now_ms: u64) -> Vec<TxId> {
        let mut removed = self.expire(now_ms);
        while self.entries.len() > self.config.max_transactions || self.usage > self.config.max_bytes {
            let Some(&(score, worst)) = self.by_descendant_score.first() else {
                break;
            };
            removed.extend(self.remove_with_descendants(&worst));
            let floor = score.fee_rate().0.saturating_add(self.config.incremental_fee_rate.0) as f64;
            if floor > self.rolling_min_fee {
                self.rolling_min_fee = floor;
            }
            self.rolling_updated_ms = now_ms;
            self.block_since_bump = false;
        }
        removed
    }

    /// Drops transactions older than the expiry, with their descendants.
    pub fn expire(&mut self, now_ms: u64) -> Vec<TxId> {
        let cutoff = now_ms.saturating_sub(self.config.expiry_ms);
        let mut removed = Vec::new();
        while let Some(&(time, txid)) = self.by_time.first() {
            if time >= cutoff {
                break;
            }
            removed.extend(self.remove_with_descendants(&txid));
        }
        removed
    }

    /// Updates the pool for a block applied to the chain: included transactions leave,
    /// transactions that spend what the block spent leave with their descendants, and every
    /// remaining transaction's confirmed inputs are re-checked against `view` (the UTXO set
    /// after the block).
    pub fn block_connected(&mut self, block: &Block, view: &impl UtxoView) -> Result<BlockRemoval, ViewError> {
        self.tip_height = block.header.height;
        self.block_since_bump = true;
        let mut removal = BlockRemoval::default();
        for tx in &block.transactions {
            let txid = tx.txid();
            if self.remove_entry(&txid).is_some() {
                removal.included.push(txid);
            }
            for input in &tx.inputs {
                if let Some(other) = self.spends.get(&input.prevout).copied() {
                    removal.conflicted.extend(self.remove_with_descendants(&other));
                }
                // A registration naming what the block spent as its collateral.
                if let Some(other) = self.claims.get(&Claim::Collateral(input.prevout)).copied() {
                    removal.conflicted.extend(self.remove_with_descendants(&other));
                }
            }
        }
        let mut stale = Vec::new();
        // A block that changed the masternode list can make a waiting masternode transaction
        // (or a spend of a newly registered collateral) invalid: every entry is checked. Its
        // evidence bans masternodes, whose updates and unlocks then wait in vain.
        let list_changed = !block.evidence.is_empty() || block.transactions.iter().any(|tx| tx.payload.is_some());
        if list_changed {
            let ctx = self.next_block_context();
            let pool_view = self.view_over(view);
            for (txid, entry) in &self.entries {
                if timecoin_chain::check_masternode_rules(&entry.tx, *txid, &pool_view, &ctx).is_err() {
                    stale.push(*txid);
                }
            }
        }
        // Spends of what the block spent were removed above. As a safety net against a chain
        // state the pool did not follow, a rolling window of entries has its confirmed inputs
        // looked up again: bounded work per block, the whole pool in turn.
        let window = (block.transactions.len() / 2).max(MIN_RECHECK_PER_BLOCK);
        for txid in self.next_recheck_window(window) {
            let Some(entry) = self.entries.get(&txid) else {
                continue;
            };
            for input in &entry.tx.inputs {
                if !self.entries.contains_key(&input.prevout.txid) && view.utxo(&input.prevout)?.is_none() {
                    stale.push(txid);
                    break;
                }
            }
        }
        for txid in stale {
            removal.invalidated.extend(self.remove_with_descendants(&txid));
        }
        Ok(removal)
    }

    /// The next `count` entries in arrival order after the recheck cursor, wrapping around
    /// once; moves the cursor past them.
    fn next_recheck_window(&mut self, count: usize) -> Vec<TxId> {
        use std::ops::Bound::{Excluded, Unbounded};
        let after = match self.recheck_cursor {
            Some(cursor) => self.by_time.range((Excluded(cursor), Unbounded)),
            None => self.by_time.range(..),
        };
        let mut window: Vec<(u64, TxId)> = after.take(count).copied().collect();
        if window.len() < count {
            let first = window.first().copied();
            window.extend(
                self.by_time
                    .iter()
                    .take_while(|key| Some(**key) != first)
                    .take(count - window.len())
                    .copied(),
            );
        }
        self.recheck_cursor = window.last().copied();
        window.into_iter().map(|(_, txid)| txid).collect()
    }
}
