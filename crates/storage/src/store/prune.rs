//! Pruning: dropping the bodies of old blocks (their transactions, undo data, certificates
//! and txid-index entries) to hold the stored block data under a target, as Bitcoin Core's
//! `prune` does. The headers stay (in their own table), so every height keeps its hash, and
//! so do the certificates of the blocks where the voting set changed, which finality proofs
//! from the genesis carry.
//!
//! The store counts the bytes of the block data it holds ([`KEY_BLOCK_BYTES`]: bodies, undo
//! records, certificates), and the first height whose body it holds ([`KEY_PRUNED_BELOW`];
//! the genesis block is always kept). It never drops the [`MIN_KEPT_BLOCKS`] most recent
//! blocks, nor one the in-memory coins may still replay, so with large blocks the data can
//! stay above a small target.

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use timecoin_primitives::{BlockHeader, Decode, Encode};

use super::Store;
use super::layout::{BLOCKS, CERTIFICATES, META, TX_LOCATIONS, UNDO};
use crate::error::StorageError;

/// Headers of the blocks whose bodies were pruned: height → encoded header.
pub(super) const PRUNED_HEADERS: TableDefinition<u64, &[u8]> = TableDefinition::new("pruned_headers");
/// The bytes of block data held (bodies, undo records, certificates).
pub(super) const KEY_BLOCK_BYTES: &str = "block_bytes";
/// The lowest height above genesis whose body is held (absent: nothing pruned).
pub(super) const KEY_PRUNED_BELOW: &str = "pruned_below";

/// Blocks at the tip that are never pruned (Bitcoin Core keeps 288, two days of its blocks).
pub const MIN_KEPT_BLOCKS: u64 = 288;
/// Blocks pruned in one write transaction at most.
const PRUNE_BATCH: u64 = 500;

/// What pruning left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneState {
    /// The lowest height above genesis whose body is held (1 when nothing was pruned).
    pub pruned_below: u64,
    /// The bytes of block data held.
    pub block_bytes: u64,
}

impl PruneState {
    /// The lowest height above genesis whose block is served: 0 when every block is.
    pub fn served_from(&self) -> u64 {
        if self.pruned_below > 1 { self.pruned_below } else { 0 }
    }
}

fn read_u64(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<u64>, redb::StorageError> {
    Ok(meta
        .get(key)?
        .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
        .map(u64::from_le_bytes))
}

impl Store {
    /// Adds `delta` (negative: removes) to the block-data count, in `write`.
    pub(super) fn count_block_bytes(&self, write: &WriteTransaction, delta: i128) -> Result<(), StorageError> {
        let mut meta = write.open_table(META).map_err(|e| self.err(e))?;
        let held = read_u64(&meta, KEY_BLOCK_BYTES).map_err(|e| self.err(e))?.unwrap_or(0);
        let updated = u64::try_from((i128::from(held) + delta).max(0)).unwrap_or(u64::MAX);
        meta.insert(KEY_BLOCK_BYTES, updated.to_le_bytes().as_slice())
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Counts the block data stored, from the tables (a store upgraded to schema 4).
    pub(super) fn count_stored_block_bytes(&self, write: &WriteTransaction) -> Result<(), StorageError> {
        let mut total: i128 = 0;
        for table in [BLOCKS, UNDO, CERTIFICATES] {
            let table = write.open_table(table).map_err(|e| self.err(e))?;
            for entry in table.iter().map_err(|e| self.err(e))? {
                let (_, value) = entry.map_err(|e| self.err(e))?;
                total += value.value().len() as i128;
            }
        }
        write.open_table(PRUNED_HEADERS).map_err(|e| self.err(e))?;
        let total = u64::try_from(total).unwrap_or(u64::MAX);
        write
            .open_table(META)
            .map_err(|e| self.err(e))?
            .insert(KEY_BLOCK_BYTES, total.to_le_bytes().as_slice())
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Where pruning stands.
    pub fn prune_state(&self) -> Result<PruneState, StorageError> {
        let read = self.begin_read()?;
        let meta = read.open_table(META).map_err(|e| self.err(e))?;
        Ok(PruneState {
            pruned_below: read_u64(&meta, KEY_PRUNED_BELOW).map_err(|e| self.err(e))?.unwrap_or(1),
            block_bytes: read_u64(&meta, KEY_BLOCK_BYTES).map_err(|e| self.err(e))?.unwrap_or(0),
        })
    }

    /// The header of a pruned block at `height`.
    pub(super) fn pruned_header(&self, height: u64) -> Result<Option<BlockHeader>, StorageError> {
        let read = self.begin_read()?;
        let table = match read.open_table(PRUNED_HEADERS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let Some(bytes) = table.get(height).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        BlockHeader::from_bytes(bytes.value())
            .map(Some)
            .map_err(|e| self.corrupt(&format!("header of pruned block {height}"), e))
    }

    /// Drops the bodies of the blocks below `height` (never the genesis, the
    /// [`MIN_KEPT_BLOCKS`] at the tip, or one the coins may replay), and returns what is left.
    /// Refused while the address index is on, which needs every block.
    pub fn prune_below(&self, height: u64) -> Result<PruneState, StorageError> {
        let _applying = self
            .apply_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.prune_locked(height, None)
    }

    fn prune_locked(&self, height: u64, target: Option<u64>) -> Result<PruneState, StorageError> {
        if self.address_index_enabled() {
            return Err(StorageError::Refused(
                "pruning drops blocks the address index needs; turn the index off first".to_owned(),
            ));
        }
        let (tip, coins_tip) = {
            let coins = self.coins_lock();
            let tip = coins.state.tip.height;
            (tip, tip.saturating_sub(coins.unflushed_blocks as u64))
        };
        let limit = height
            .min(tip.saturating_add(1).saturating_sub(MIN_KEPT_BLOCKS))
            .min(coins_tip.saturating_add(1));
        let mut state = self.prune_state()?;
        // Past the target, down to 90% of it, so that a node does not prune after every
        // block.
        let target = match target {
            Some(t) if state.block_bytes <= t => return Ok(state),
            Some(t) => Some(t - t / 10),
            None => None,
        };
        while state.pruned_below < limit && target.is_none_or(|t| state.block_bytes > t) {
            let end = limit.min(state.pruned_below.saturating_add(PRUNE_BATCH));
            let write = self.db.begin_write().map_err(|e| self.err(e))?;
            let mut removed: i128 = 0;
            let mut next = state.pruned_below;
            {
                let mut blocks = write.open_table(BLOCKS).map_err(|e| self.err(e))?;
                let mut undo = write.open_table(UNDO).map_err(|e| self.err(e))?;
                let mut certificates = write.open_table(CERTIFICATES).map_err(|e| self.err(e))?;
                let mut locations = write.open_table(TX_LOCATIONS).map_err(|e| self.err(e))?;
                let mut headers = write.open_table(PRUNED_HEADERS).map_err(|e| self.err(e))?;
                let sets = write.open_table(super::sets::VOTING_SETS).map_err(|e| self.err(e))?;
                while next < end && target.is_none_or(|t| i128::from(state.block_bytes) - removed > i128::from(t)) {
                    if let Some(body) = blocks.remove(next).map_err(|e| self.err(e))? {
                        let bytes = body.value().to_vec();
                        drop(body);
                        removed += bytes.len() as i128;
                        let block = timecoin_primitives::Block::from_bytes(&bytes)
                            .map_err(|e| self.corrupt(&format!("block {next}"), e))?;
                        headers
                            .insert(next, block.header.to_bytes().as_slice())
                            .map_err(|e| self.err(e))?;
                        for tx in &block.transactions {
                            locations.remove(&tx.txid().0.0).map_err(|e| self.err(e))?;
                        }
                    }
                    if let Some(record) = undo.remove(next).map_err(|e| self.err(e))? {
                        removed += record.value().len() as i128;
                    }
                    // A block where the voting set changed keeps its certificate: proofs
                    // from the genesis carry it.
                    let set_change = sets.get(next).map_err(|e| self.err(e))?.is_some();
                    if !set_change && let Some(certificate) = certificates.remove(next).map_err(|e| self.err(e))? {
                        removed += certificate.value().len() as i128;
                    }
                    next += 1;
                }
            }
            write
                .open_table(META)
                .map_err(|e| self.err(e))?
                .insert(KEY_PRUNED_BELOW, next.to_le_bytes().as_slice())
                .map_err(|e| self.err(e))?;
            self.count_block_bytes(&write, -removed)?;
            write.commit().map_err(|e| self.err(e))?;
            state = self.prune_state()?;
            if next < end {
                break;
            }
        }
        Ok(state)
    }
}

impl Store {
    /// Records the target the node prunes to (with [`Store::prune_to`] after each block),
    /// for `getblockchaininfo`; `None`: it does not prune.
    pub fn set_prune_target(&self, target: Option<u64>) {
        self.prune_target
            .store(target.unwrap_or(0), std::sync::atomic::Ordering::Release);
    }

    /// The target set by [`Store::set_prune_target`].
    pub fn prune_target(&self) -> Option<u64> {
        Some(self.prune_target.load(std::sync::atomic::Ordering::Acquire)).filter(|t| *t > 0)
    }

    /// The lowest height above genesis whose block this store serves: 0 when it holds
    /// every block (what a node's hello tells peers).
    pub fn served_from(&self) -> Result<u64, StorageError> {
        Ok(self.prune_state()?.served_from())
    }

    /// Once the block data passes `target` bytes, drops the oldest bodies until it is at
    /// most 90% of it, within the bounds of [`Store::prune_below`].
    pub fn prune_to(&self, target: u64) -> Result<PruneState, StorageError> {
        let _applying = self
            .apply_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.prune_locked(u64::MAX, Some(target))
    }
}
