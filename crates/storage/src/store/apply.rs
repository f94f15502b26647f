//! Applying a block (its body, certificate, undo data, hash index, masternode list and the
//! tip in one atomic, durable write; its UTXO changes and txid-index entries into the
//! in-memory coins) and reverting the tip with its undo data.

use std::sync::Arc;

use hashbrown::HashMap;

use timecoin_chain::{ChainTip, MasternodeList, created_outputs};
use timecoin_primitives::encoding::write_compact_size;
use timecoin_primitives::{Amount, Block, CommitCertificate, Decode, Encode, OutPoint};

use super::Store;
use super::coins::{Change, Coins, Generation, Key, Layer, Value};
use super::layout::{
    BLOCK_HEIGHTS, BLOCKS, CERTIFICATES, KEY_MASTERNODES, LIST_UNDO, LIST_UNDO_DEPTH, META, TX_LOCATIONS, UNDO, UTXOS,
    UndoRecord, WriteState, commitment_element, outpoint_from_key, outpoint_key, save_tip, utxo_from_value, utxo_value,
};
use crate::error::StorageError;

/// What a block's application changed, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedBlock {
    /// The new tip.
    pub tip: ChainTip,
    /// Outputs spent.
    pub spent: usize,
    /// Outputs created.
    pub created: usize,
    /// Coins minted by the reward transaction.
    pub minted: Amount,
}

/// A block's UTXO changes and the undo record that reverts them.
pub(super) struct BlockChanges {
    pub(super) layer: Layer,
    pub(super) undo_record: Vec<u8>,
    spent: usize,
    created: usize,
}

impl Store {
    /// Applies a block that was validated against the current tip, with its commit
    /// certificate. The block, certificate, undo data, hash index, masternode list and tip
    /// are written in **one atomic, durable write transaction** before this returns; the UTXO
    /// changes and txid-index entries join the in-memory coins, which are written to their
    /// tables when they pass the store's flush policy (a crash before that replays the stored
    /// blocks).
    ///
    /// The store re-checks only what it needs to stay consistent (the block extends the tip,
    /// every input exists); it does not verify signatures or rewards.
    pub fn apply_block(
        &self,
        block: &Block,
        certificate: Option<&CommitCertificate>,
    ) -> Result<AppliedBlock, StorageError> {
        let _applying = self
            .apply_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (coins, view) = self.coins_view()?;
        let tip = coins.state.tip;
        let height = block.header.height;
        if height != tip.height.saturating_add(1) || block.header.prev_hash != tip.hash {
            return Err(StorageError::Inconsistent {
                height,
                detail: format!(
                    "it extends {} at height {}, but the tip is {} at height {}",
                    block.header.prev_hash,
                    height.saturating_sub(1),
                    tip.hash,
                    tip.height
                ),
            });
        }
        let mut state = WriteState::clone(&coins.state);
        let minted_before = state.supply.minted;
        let changes = coin_changes(
            block,
            &mut state,
            false,
            |key| view.get_spent(key).map_err(|e| self.err(e)),
            |key| coins.generation.contains(key),
        )?;
        drop(view);
        let write = self.db.begin_write().map_err(|e| self.err(e))?;
        let list = self.advance_list(&write, block, &coins.list)?;
        self.write_records(&write, block, certificate, &changes)?;
        if self.address_index_enabled() {
            self.index_block(&write, block, &changes.undo_record)?;
        }
        save_tip(&write, self, &state.tip)?;
        // Dropping `write` without commit aborts it: an error above leaves nothing behind.
        write.commit().map_err(|e| self.err(e))?;
        let applied = AppliedBlock {
            tip: ChainTip::of(&block.header),
            spent: changes.spent,
            created: changes.created,
            minted: Amount::from_units(state.supply.minted.saturating_sub(minted_before)),
        };
        // Readers at the old tip ignore what this block did; the new state names it.
        coins.generation.merge(&changes.layer);
        let next = Coins::new(
            state,
            Arc::new(list),
            Arc::clone(&coins.generation),
            coins.unflushed_blocks.saturating_add(1),
        );
        let due = next.due(self.flush_policy);
        *self.coins_lock() = next;
        if due {
            self.flush_coins()?;
        }
        Ok(applied)
    }

    /// Writes the in-memory coins to the UTXO table now (they are also written when the store
    /// is dropped).
    pub fn flush(&self) -> Result<(), StorageError> {
        let _applying = self
            .apply_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.flush_coins()
    }

    /// Writes what a block adds besides its UTXO changes and txid-index entries: undo data,
    /// body, hash index and certificate.
    pub(super) fn write_records(
        &self,
        write: &redb::WriteTransaction,
        block: &Block,
        certificate: Option<&CommitCertificate>,
        changes: &BlockChanges,
    ) -> Result<(), StorageError> {
        let height = block.header.height;
        let body = block.to_bytes();
        write
            .open_table(UNDO)
            .map_err(|e| self.err(e))?
            .insert(height, changes.undo_record.as_slice())
            .map_err(|e| self.err(e))?;
        write
            .open_table(BLOCKS)
            .map_err(|e| self.err(e))?
            .insert(height, body.as_slice())
            .map_err(|e| self.err(e))?;
        let mut counted = body.len() + changes.undo_record.len();
        write
            .open_table(BLOCK_HEIGHTS)
            .map_err(|e| self.err(e))?
            .insert(&block.hash().0.0, height)
            .map_err(|e| self.err(e))?;
        if let Some(certificate) = certificate {
            let bytes = certificate.to_bytes();
            counted += bytes.len();
            write
                .open_table(CERTIFICATES)
                .map_err(|e| self.err(e))?
                .insert(height, bytes.as_slice())
                .map_err(|e| self.err(e))?;
        }
        self.count_block_bytes(write, counted as i128)
    }

    /// Moves the masternode list `before` (the tip's) past `block` and stores it, keeping the
    /// list it replaces for [`LIST_UNDO_DEPTH`] blocks; returns the new list.
    fn advance_list(
        &self,
        write: &redb::WriteTransaction,
        block: &Block,
        before: &MasternodeList,
    ) -> Result<MasternodeList, StorageError> {
        let height = block.header.height;
        let mut list = before.clone();
        list.apply_block(block, &self.params);
        write
            .open_table(META)
            .map_err(|e| self.err(e))?
            .insert(KEY_MASTERNODES, list.to_bytes().as_slice())
            .map_err(|e| self.err(e))?;
        let mut undo = write.open_table(LIST_UNDO).map_err(|e| self.err(e))?;
        undo.insert(height, before.to_bytes().as_slice())
            .map_err(|e| self.err(e))?;
        let keep_from = height.saturating_sub(LIST_UNDO_DEPTH);
        undo.retain_in(0..keep_from, |_, _| false).map_err(|e| self.err(e))?;
        self.record_set_change(write, height, before, &list)?;
        Ok(list)
    }

    /// Undoes the tip block with its undo data, in one atomic write, and returns it.
    ///
    /// Finalized blocks are never reverted by consensus; this exists for operators' repair
    /// tools and to prove that undo data restores the previous state exactly.
    pub fn revert_tip(&self) -> Result<Block, StorageError> {
        let _applying = self
            .apply_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Reverting works on the table: everything in memory is written first.
        self.flush_coins()?;
        let tip = self.tip()?;
        if tip.height == 0 {
            return Err(StorageError::Refused("the genesis block cannot be reverted".to_owned()));
        }
        let block = self
            .block_by_height(tip.height)?
            .ok_or_else(|| self.missing(&format!("block {}", tip.height)))?;
        let parent = self
            .block_by_height(tip.height - 1)?
            .ok_or_else(|| self.missing(&format!("block {}", tip.height - 1)))?;
        let write = self.db.begin_write().map_err(|e| self.err(e))?;
        let mut state = WriteState::load(&write, self)?;
        let reverted_list;
        {
            let list_before = write
                .open_table(LIST_UNDO)
                .map_err(|e| self.err(e))?
                .remove(tip.height)
                .map_err(|e| self.err(e))?
                .map(|v| v.value().to_vec())
                .ok_or_else(|| {
                    StorageError::Refused(format!(
                        "block {} is more than {LIST_UNDO_DEPTH} blocks old: the masternode list before it is no longer kept",
                        tip.height
                    ))
                })?;
            reverted_list = MasternodeList::from_bytes(&list_before).map_err(|e| self.corrupt("masternode list", e))?;
            write
                .open_table(META)
                .map_err(|e| self.err(e))?
                .insert(KEY_MASTERNODES, list_before.as_slice())
                .map_err(|e| self.err(e))?;
            let mut utxos = write.open_table(UTXOS).map_err(|e| self.err(e))?;
            let mut tx_locations = write.open_table(TX_LOCATIONS).map_err(|e| self.err(e))?;
            // A coin the block created and spent itself is neither in the table nor to be put
            // back: applying it left the set, supply and commitment as they were.
            let spent_here: std::collections::HashSet<OutPoint> = block
                .transactions
                .iter()
                .flat_map(|tx| tx.inputs.iter().map(|i| i.prevout))
                .collect();
            let created_here: std::collections::HashSet<timecoin_primitives::TxId> =
                block.transactions.iter().map(|tx| tx.txid()).collect();
            for tx in block.transactions.iter().rev() {
                let txid = tx.txid();
                for index in 0..tx.outputs.len() {
                    let outpoint = OutPoint {
                        txid,
                        index: index as u32,
                    };
                    if spent_here.contains(&outpoint) {
                        continue;
                    }
                    let key = outpoint_key(&outpoint);
                    let value = utxos
                        .remove(&key)
                        .map_err(|e| self.err(e))?
                        .map(|v| *v.value())
                        .ok_or_else(|| self.missing(&format!("output {txid}:{index} of the tip block")))?;
                    let utxo = utxo_from_value(&value).map_err(|e| self.corrupt("utxo", e))?;
                    state.lthash.remove(&commitment_element(&key, &value));
                    state.supply.utxo_count = state.supply.utxo_count.saturating_sub(1);
                    state.supply.utxo_total = state.supply.utxo_total.saturating_sub(utxo.output.amount.units());
                }
                tx_locations.remove(&txid.0.0).map_err(|e| self.err(e))?;
            }
            let mut undo_table = write.open_table(UNDO).map_err(|e| self.err(e))?;
            let record = undo_table
                .remove(tip.height)
                .map_err(|e| self.err(e))?
                .map(|v| v.value().to_vec())
                .ok_or_else(|| self.missing(&format!("undo data of block {}", tip.height)))?;
            if self.address_index_height()? == Some(tip.height) {
                self.unindex_block(&write, &block, &record)?;
            }
            let undo = UndoRecord::read(&record)
                .map_err(|e| self.corrupt(&format!("undo data of block {}", tip.height), e))?;
            for (key, value) in &undo.spent {
                if created_here.contains(&outpoint_from_key(key).txid) {
                    continue;
                }
                let utxo = utxo_from_value(value).map_err(|e| self.corrupt("undo utxo", e))?;
                utxos.insert(key, value).map_err(|e| self.err(e))?;
                state.lthash.insert(&commitment_element(key, value));
                state.supply.utxo_count += 1;
                state.supply.utxo_total = state.supply.utxo_total.saturating_add(utxo.output.amount.units());
            }
            let minted = undo.minted;
            state.supply.minted = state.supply.minted.saturating_sub(minted);
            let mut removed = record.len();
            for table in [BLOCKS, CERTIFICATES] {
                removed += write
                    .open_table(table)
                    .map_err(|e| self.err(e))?
                    .remove(tip.height)
                    .map_err(|e| self.err(e))?
                    .map_or(0, |v| v.value().len());
            }
            self.count_block_bytes(&write, -(removed as i128))?;
            self.forget_set_change(&write, tip.height)?;
            write
                .open_table(BLOCK_HEIGHTS)
                .map_err(|e| self.err(e))?
                .remove(&tip.hash.0.0)
                .map_err(|e| self.err(e))?;
        }
        state.tip = ChainTip::of(&parent.header);
        state.save(&write, self)?;
        // The table now holds everything (it was flushed above): the new state has an empty
        // generation. It replaces the old one under the lock held across the commit, so no
        // reader sees the reverted table with the old tip.
        let reverted = Coins::new(state, Arc::new(reverted_list), Arc::new(Generation::default()), 0);
        let mut coins = self.coins_lock();
        write.commit().map_err(|e| self.err(e))?;
        *coins = reverted;
        Ok(block)
    }
}

/// The UTXO changes of `block` on the set `lookup` reads (keys not yet changed by the block),
/// with `state`'s supply and commitment moved past it and its tip set to the block.
/// `changed` says whether a coin was created or spent since the last flush: a created output
/// must not have been.
pub(super) fn coin_changes(
    block: &Block,
    state: &mut WriteState,
    is_genesis: bool,
    lookup: impl Fn(&Key) -> Result<Option<Value>, StorageError>,
    changed: impl Fn(&Key) -> bool,
) -> Result<BlockChanges, StorageError> {
    let height = block.header.height;
    let inconsistent = |detail: String| StorageError::Inconsistent { height, detail };
    let mut changes: HashMap<Key, Change> = HashMap::with_capacity(block.transactions.len() * 3);
    let mut undo = Vec::new();
    let mut undo_count = 0u64;
    let mut spent_total = 0u64;
    let mut regular_out = 0u64;
    let mut reward_out = 0u64;
    let mut created = 0usize;
    let mut txs = Vec::with_capacity(block.transactions.len());
    for (position, tx) in block.transactions.iter().enumerate() {
        let txid = tx.txid();
        let position = u32::try_from(position).map_err(|_| inconsistent("too many transactions".to_owned()))?;
        txs.push((txid.0.0, position));
        for input in &tx.inputs {
            let key = outpoint_key(&input.prevout);
            let value = match changes.get(&key) {
                // Created earlier in this block: spending it leaves no change at all.
                Some(Change::Created(value)) => {
                    let value = *value;
                    changes.remove(&key);
                    Some(value)
                }
                Some(Change::Spent(_)) => None,
                None => {
                    let value = lookup(&key)?;
                    if let Some(value) = value {
                        changes.insert(key, Change::Spent(value));
                    }
                    value
                }
            }
            .ok_or_else(|| inconsistent(format!("input {} is missing or spent", input.prevout)))?;
            let utxo = utxo_from_value(&value).map_err(|e| StorageError::Inconsistent {
                height,
                detail: format!("the record of input {} is damaged: {e}", input.prevout),
            })?;
            state.lthash.remove(&commitment_element(&key, &value));
            state.supply.utxo_count = state.supply.utxo_count.saturating_sub(1);
            state.supply.utxo_total = state.supply.utxo_total.saturating_sub(utxo.output.amount.units());
            spent_total = spent_total.saturating_add(utxo.output.amount.units());
            undo.extend_from_slice(&key);
            undo.extend_from_slice(&value);
            undo_count += 1;
        }
        for (outpoint, utxo) in created_outputs(tx, txid, height) {
            let key = outpoint_key(&outpoint);
            let value = utxo_value(&utxo);
            if changed(&key) || changes.insert(key, Change::Created(value)).is_some() {
                return Err(inconsistent(format!("output {outpoint} already exists")));
            }
            let amount = utxo.output.amount.units();
            state.lthash.insert(&commitment_element(&key, &value));
            state.supply.utxo_count += 1;
            state.supply.utxo_total = state
                .supply
                .utxo_total
                .checked_add(amount)
                .ok_or_else(|| inconsistent("utxo total overflows".to_owned()))?;
            if utxo.is_reward {
                reward_out = reward_out.saturating_add(amount);
            } else {
                regular_out = regular_out.saturating_add(amount);
            }
            created += 1;
        }
    }
    let minted = if is_genesis {
        0
    } else {
        // The reward transaction pays the minted coins plus the fees; fees are what regular
        // transactions spent and did not pay out.
        let fees = spent_total
            .checked_sub(regular_out)
            .ok_or_else(|| inconsistent("outputs exceed inputs".to_owned()))?;
        reward_out
            .checked_sub(fees)
            .ok_or_else(|| inconsistent("the reward transaction pays less than the fees".to_owned()))?
    };
    state.supply.minted = state
        .supply
        .minted
        .checked_add(minted)
        .ok_or_else(|| inconsistent("minted total overflows".to_owned()))?;
    state.tip = ChainTip::of(&block.header);
    let mut undo_record = Vec::with_capacity(undo.len() + 17);
    undo_record.extend_from_slice(&minted.to_le_bytes());
    write_compact_size(&mut undo_record, undo_count);
    undo_record.extend_from_slice(&undo);
    Ok(BlockChanges {
        layer: Layer { height, changes, txs },
        undo_record,
        spent: undo_count as usize,
        created,
    })
}
