//! The consensus write-ahead log in the chain store: what this masternode signed, and the
//! bodies of the blocks it proposed or precommitted.

use redb::{ReadableTable, TableDefinition, TableError};
use timecoin_consensus::{Wal, WalEntry};
use timecoin_primitives::{Block, Decode, Encode};

use crate::StorageError;
use crate::store::{Store, WAL};

/// The blocks this masternode proposed or precommitted: (height, block hash) → encoded block.
pub(crate) const PROPOSED: TableDefinition<(u64, &[u8; 32]), &[u8]> = TableDefinition::new("proposed_blocks");

/// The consensus write-ahead log, kept in the chain store's file: each append is its own
/// durable (fsynced) redb transaction. Beside the signed messages it keeps the bodies of the
/// blocks this node proposed, so that a proposer restarted mid-height can send its logged
/// proposal again with the block it names.
#[derive(Debug)]
pub struct ConsensusWal<'a> {
    store: &'a Store,
}

impl Store {
    /// The consensus write-ahead log.
    pub fn consensus_wal(&self) -> ConsensusWal<'_> {
        ConsensusWal { store: self }
    }
}

impl Wal for ConsensusWal<'_> {
    type Error = StorageError;

    fn append(&mut self, entry: &WalEntry) -> Result<(), StorageError> {
        self.append_with_body(entry, None)
    }

    fn entries(&self, height: u64) -> Result<Vec<WalEntry>, StorageError> {
        let store = self.store;
        let read = store.begin_read()?;
        let table = read.open_table(WAL).map_err(|e| store.err(e))?;
        let mut entries = Vec::new();
        for item in table
            .range((height, 0)..=(height, u32::MAX))
            .map_err(|e| store.err(e))?
        {
            let (_, value) = item.map_err(|e| store.err(e))?;
            entries.push(WalEntry::from_bytes(value.value()).map_err(|e| store.corrupt("consensus wal entry", e))?);
        }
        Ok(entries)
    }

    fn prune_below(&mut self, height: u64) -> Result<(), StorageError> {
        let store = self.store;
        let write = store.db.begin_write().map_err(|e| store.err(e))?;
        {
            let mut table = write.open_table(WAL).map_err(|e| store.err(e))?;
            table
                .retain_in((0, 0)..(height, 0), |_, _| false)
                .map_err(|e| store.err(e))?;
            let mut proposed = write.open_table(PROPOSED).map_err(|e| store.err(e))?;
            proposed
                .retain_in((0, &[0u8; 32])..(height, &[0u8; 32]), |_, _| false)
                .map_err(|e| store.err(e))?;
        }
        write.commit().map_err(|e| store.err(e))
    }
}

impl ConsensusWal<'_> {
    /// Appends `entry` and, in the same durable transaction, keeps `body` (the block a
    /// precommit names) unless it is kept already: a node restarted while locked on a block
    /// must still hold it, to check it and to propose it again, even when whoever built it is
    /// gone.
    pub fn append_with_body(&mut self, entry: &WalEntry, body: Option<&Block>) -> Result<(), StorageError> {
        let store = self.store;
        let height = entry.height();
        let write = store.db.begin_write().map_err(|e| store.err(e))?;
        {
            if let Some(block) = body {
                keep_body(store, &write, height, block)?;
            }
            let mut table = write.open_table(WAL).map_err(|e| store.err(e))?;
            let next = table
                .range((height, 0)..=(height, u32::MAX))
                .map_err(|e| store.err(e))?
                .next_back()
                .transpose()
                .map_err(|e| store.err(e))?
                .map_or(0, |(key, _)| key.value().1.saturating_add(1));
            table
                .insert((height, next), entry.to_bytes().as_slice())
                .map_err(|e| store.err(e))?;
        }
        write.commit().map_err(|e| store.err(e))
    }

    /// Keeps the body of a block this node is about to propose at `height` (durably, before
    /// the proposal is signed and logged).
    pub fn save_proposed(&self, height: u64, block: &Block) -> Result<(), StorageError> {
        let store = self.store;
        let write = store.db.begin_write().map_err(|e| store.err(e))?;
        keep_body(store, &write, height, block)?;
        write.commit().map_err(|e| store.err(e))
    }

    /// The blocks this node proposed or precommitted at `height`.
    pub fn proposed(&self, height: u64) -> Result<Vec<Block>, StorageError> {
        let store = self.store;
        let read = store.begin_read()?;
        let table = match read.open_table(PROPOSED) {
            Ok(table) => table,
            // A store written before proposals were kept.
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(error) => return Err(store.err(error)),
        };
        let mut blocks = Vec::new();
        for item in table
            .range((height, &[0u8; 32])..=(height, &[0xffu8; 32]))
            .map_err(|e| store.err(e))?
        {
            let (_, value) = item.map_err(|e| store.err(e))?;
            blocks.push(Block::from_bytes(value.value()).map_err(|e| store.corrupt("proposed block", e))?);
        }
        Ok(blocks)
    }
}

/// Keeps `block`'s body for `height` in `write`, unless it is kept already.
fn keep_body(store: &Store, write: &redb::WriteTransaction, height: u64, block: &Block) -> Result<(), StorageError> {
    let mut proposed = write.open_table(PROPOSED).map_err(|e| store.err(e))?;
    let key = (height, &block.hash().0.0);
    if proposed.get(key).map_err(|e| store.err(e))?.is_none() {
        proposed
            .insert(key, block.to_bytes().as_slice())
            .map_err(|e| store.err(e))?;
    }
    Ok(())
}
