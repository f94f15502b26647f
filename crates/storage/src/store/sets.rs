//! The record of voting-set changes: each set that took over, keyed by the first height it
//! finalizes, so that a finality proof can carry the sets a light verifier must move
//! through (see `timecoin-light`). The masternode list itself is kept for recent blocks
//! only ([`super::LIST_UNDO_DEPTH`]); the sets are small and change rarely, so all of them
//! are kept.
//!
//! A store created from genesis holds every change, and so does one upgraded from an older
//! schema (the record is rebuilt from its blocks). One loaded from a chain state holds
//! those from the state's height ([`KEY_SETS_FROM`]), with the sets there as anchors;
//! proofs that start below it are refused with the reason.

use redb::{TableDefinition, WriteTransaction};
use timecoin_chain::{Genesis, MasternodeList};
use timecoin_primitives::{BlockHeader, Decode, Encode, MasternodeSet};

use super::Store;
use super::layout::{BLOCKS, META};
use crate::error::StorageError;

/// First height a set finalizes → the encoded set.
pub(super) const VOTING_SETS: TableDefinition<u64, &[u8]> = TableDefinition::new("voting_sets");
/// The height above which every set change is recorded.
pub(super) const KEY_SETS_FROM: &str = "voting_sets_from";

impl Store {
    /// Records the set `after` names for the next block if it differs from `before`'s.
    pub(super) fn record_set_change(
        &self,
        write: &WriteTransaction,
        height: u64,
        before: &MasternodeList,
        after: &MasternodeList,
    ) -> Result<(), StorageError> {
        if before.voting_set() == after.voting_set() {
            return Ok(());
        }
        write
            .open_table(VOTING_SETS)
            .map_err(|e| self.err(e))?
            .insert(height.saturating_add(1), after.voting_set().to_bytes().as_slice())
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets the change the reverted block at `height` made, if it made one.
    pub(super) fn forget_set_change(&self, write: &WriteTransaction, height: u64) -> Result<(), StorageError> {
        write
            .open_table(VOTING_SETS)
            .map_err(|e| self.err(e))?
            .remove(height.saturating_add(1))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Marks the record complete above `height`. A record that does not start at the
    /// genesis (whose set the genesis file gives) holds `anchors`: the sets that finalize
    /// the blocks at `height` and `height + 1`, as the list there says.
    pub(super) fn start_set_record(
        &self,
        write: &WriteTransaction,
        height: u64,
        anchors: Option<&MasternodeList>,
    ) -> Result<(), StorageError> {
        let mut sets = write.open_table(VOTING_SETS).map_err(|e| self.err(e))?;
        if let Some(list) = anchors {
            sets.insert(height, list.signers().to_bytes().as_slice())
                .map_err(|e| self.err(e))?;
            if list.voting_set() != list.signers() {
                sets.insert(height.saturating_add(1), list.voting_set().to_bytes().as_slice())
                    .map_err(|e| self.err(e))?;
            }
        }
        write
            .open_table(META)
            .map_err(|e| self.err(e))?
            .insert(KEY_SETS_FROM, height.to_le_bytes().as_slice())
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records every change of the voting set in blocks `1..=tip`, replaying the masternode
    /// list over them from `genesis` (a store upgraded from a schema without the record).
    pub(super) fn rebuild_set_record(
        &self,
        write: &WriteTransaction,
        genesis: &Genesis,
        tip: u64,
    ) -> Result<(), StorageError> {
        let mut list = genesis.masternode_list();
        for height in 1..=tip {
            let block = self
                .block_by_height(height)?
                .ok_or_else(|| self.missing(&format!("block {height} (to rebuild the record of voting sets)")))?;
            let before = list.clone();
            list.apply_block(&block, &self.params);
            self.record_set_change(write, height, &before, &list)?;
        }
        self.start_set_record(write, 0, None)
    }

    /// Where the record starts: the changes above this height are all held.
    fn sets_from(&self, read: &redb::ReadTransaction) -> Result<u64, StorageError> {
        read.open_table(META)
            .map_err(|e| self.err(e))?
            .get(KEY_SETS_FROM)
            .map_err(|e| self.err(e))?
            .map(|v| <[u8; 8]>::try_from(v.value()).map(u64::from_le_bytes))
            .transpose()
            .map_err(|_| StorageError::Corrupted {
                path: self.path.clone(),
                detail: "the voting-set record's start is not 8 bytes".to_owned(),
            })?
            .ok_or_else(|| self.missing("the voting-set record's start"))
    }

    /// The voting set that finalizes the block at `height`: the latest recorded change at or
    /// below it; `None` when there is none since the genesis (the genesis set finalizes it).
    /// Refused below where the record starts.
    pub fn voting_set_at(&self, height: u64) -> Result<Option<MasternodeSet>, StorageError> {
        let read = self.begin_read()?;
        let from = self.sets_from(&read)?;
        if height < from {
            return Err(StorageError::Refused(format!(
                "this store records masternode sets from height {from} (it was upgraded or loaded from a chain state there)"
            )));
        }
        let table = read.open_table(VOTING_SETS).map_err(|e| self.err(e))?;
        let Some(entry) = table.range(..=height).map_err(|e| self.err(e))?.next_back() else {
            return Ok(None);
        };
        let (at, bytes) = entry.map_err(|e| self.err(e))?;
        MasternodeSet::from_bytes(bytes.value())
            .map(Some)
            .map_err(|e| self.corrupt(&format!("voting set of height {}", at.value()), e))
    }

    /// Each voting set that took over in `(after, upto]`, with the first height it
    /// finalizes, in ascending height (consecutive sets differ). Refused when the record
    /// does not reach back to `after`.
    pub fn voting_set_changes(&self, after: u64, upto: u64) -> Result<Vec<(u64, MasternodeSet)>, StorageError> {
        let read = self.begin_read()?;
        let from = self.sets_from(&read)?;
        if after < from {
            return Err(StorageError::Refused(format!(
                "this store records masternode-set changes from height {from} (it was upgraded or loaded from a chain state there); a proof from height {after} needs a node that holds them"
            )));
        }
        if upto <= after {
            return Ok(Vec::new());
        }
        let table = read.open_table(VOTING_SETS).map_err(|e| self.err(e))?;
        let mut changes = Vec::new();
        for entry in table.range(after.saturating_add(1)..=upto).map_err(|e| self.err(e))? {
            let (height, bytes) = entry.map_err(|e| self.err(e))?;
            let set = MasternodeSet::from_bytes(bytes.value())
                .map_err(|e| self.corrupt(&format!("voting set of height {}", height.value()), e))?;
            changes.push((height.value(), set));
        }
        Ok(changes)
    }

    /// The header of the block at `height` (read from the stored block's first bytes, or
    /// kept apart once the block was pruned).
    pub fn header(&self, height: u64) -> Result<Option<BlockHeader>, StorageError> {
        let read = self.begin_read()?;
        let table = read.open_table(BLOCKS).map_err(|e| self.err(e))?;
        let Some(bytes) = table.get(height).map_err(|e| self.err(e))? else {
            return self.pruned_header(height);
        };
        let prefix = bytes.value().get(..BlockHeader::ENCODED_LEN).unwrap_or_default();
        BlockHeader::from_bytes(prefix)
            .map(Some)
            .map_err(|e| self.corrupt(&format!("header of block {height}"), e))
    }
}
