//! Coins in memory, disk behind (Bitcoin Core's `dbcache`): the UTXO changes and txid-index
//! entries of the blocks applied since the last flush are kept in memory, above the `utxos`
//! and `tx_locations` tables, which hold them as of the *flushed* height. Every block is
//! still durable before its application returns (its body, certificate, undo data, hash
//! index, masternode list and the tip, in one write); only the two tables, the supply and the
//! commitment lag, and they are written in one atomic write when the changes pass a size or a
//! block count (or when the store is closed). After a crash the store replays its stored
//! blocks above the flushed height, so a reopened store holds exactly the set it had.
//!
//! Why: a block's changes hit random keys, so writing them block by block copied every leaf
//! page they touched at every commit; a flush of many blocks copies each page once, and a
//! coin created and spent between two flushes never reaches the table. Recent coins, which
//! are what new transactions spend, are read from memory. ADR 0007 has the measurements.
//!
//! The changes since the flush are one map (a [`Generation`]) from each changed coin to its
//! [`History`]: created at a height, spent at a height, or both. A reader at tip `T` takes
//! the coin's state at `T` from it, and so ignores what later blocks did; a coin absent from
//! the map is unchanged since the flush, and read from the table. A flush starts a new
//! generation after its commit (holding only the coins the old one read from the table and
//! did not change); readers that began before keep the old one.
//!
//! Consistency: a reader captures the generation and its tip and begins its read of the table
//! under one lock (see [`Store::coins_view`]), and the flushing writer swaps the generation
//! only after its commit. A reader's table is therefore at a height at or below the reader's
//! tip, and its generation covers every change above that height.

use std::sync::{Arc, PoisonError, RwLock};

use hashbrown::HashMap;
use rand::RngExt;

use redb::ReadableTable;
use timecoin_chain::MasternodeList;
use timecoin_primitives::{Hash256, chain_state_hash};

use super::Store;
use super::layout::{TX_LOCATIONS, UTXO_VALUE_LEN, UTXOS, WriteState};
use crate::error::StorageError;

/// A UTXO-table key: txid and output index.
pub(super) type Key = [u8; 36];
/// A UTXO-table value.
pub(super) type Value = [u8; UTXO_VALUE_LEN];

/// Bytes one changed coin is counted as holding in memory: a map slot of 112 bytes (key
/// padded to 40, history 72) in a table that may be under half full after it grows, and
/// the sorted copy a flush makes.
const ENTRY_BYTES: usize = 256;
/// Bytes one transaction's location is counted as holding in memory (a 48-byte slot, the
/// same way).
const TX_ENTRY_BYTES: usize = 112;

/// A txid-index key: the txid's bytes.
pub(super) type TxKey = [u8; 32];

/// Coins one generation keeps of those it read from the table (about 2.8 MB: 32,768 slots
/// of 86 bytes, the map growing no further; with 114,688 a node's peak memory with pools
/// full rose by 25-55 MB, several generations being alive at once). A transaction's input
/// is looked up at admission, when a proposal is built, when it is checked and when it is
/// applied; the table is read for the first only.
const TABLE_READS: usize = 28_672;

/// When the layers are written to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushPolicy {
    /// Flush once the layers hold about this many bytes.
    pub max_bytes: usize,
    /// Flush once this many blocks are unflushed (bounds the replay after a crash).
    pub max_blocks: usize,
    /// Flush each generation at a random share (a half to the whole) of the two limits, so
    /// that nodes applying the same blocks do not all pause to flush at the same height.
    pub stagger: bool,
}

impl Default for FlushPolicy {
    /// 64 MiB or 64 blocks: about 25 full blocks of payments, a replay of seconds.
    fn default() -> Self {
        FlushPolicy {
            max_bytes: 64 * 1024 * 1024,
            max_blocks: 64,
            stagger: true,
        }
    }
}

/// A coin's change in one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    Created(Value),
    /// Spent; the value it had.
    Spent(Value),
}

/// The UTXO changes of one block (a coin created and spent within the block is not there at
/// all), and the positions of its transactions for the txid index.
#[derive(Debug, Default)]
pub(super) struct Layer {
    pub(super) height: u64,
    pub(super) changes: HashMap<Key, Change>,
    pub(super) txs: Vec<(TxKey, u32)>,
}

/// What happened to a coin since the flushed height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum History {
    /// Created at `at` (so not in the table).
    Created { at: u64, value: Value },
    /// In the table, spent at `at`.
    Spent { at: u64, value: Value },
    /// Created and spent since the flush (so not in the table, and never written to it).
    CreatedSpent { created: u64, spent: u64, value: Value },
}

impl History {
    /// The coin as of the block at `height`.
    fn at(&self, height: u64) -> Option<Value> {
        match *self {
            History::Created { at, value } => (at <= height).then_some(value),
            History::Spent { at, value } => (height < at).then_some(value),
            History::CreatedSpent { created, spent, value } => (created <= height && height < spent).then_some(value),
        }
    }
}

/// The UTXO changes since one flush, and the txid index's new entries (derived from the
/// blocks like the coins, and so written with them: one random-key insert a transaction, per
/// block, cost what the UTXO writes did). A lookup hashes its key once, with foldhash
/// (randomly seeded, so that nobody can aim collisions at it).
#[derive(Debug)]
pub(super) struct Generation {
    coins: RwLock<HashMap<Key, History>>,
    txs: RwLock<HashMap<TxKey, (u64, u32)>>,
    /// Coins read from the table through this generation and found there. Only its own flush
    /// writes the table while a generation is current (every other write of the table starts
    /// a new one), and that flush changes only coins the generation has a history of; a reader
    /// takes from the table only coins with no history here. So every read through one
    /// generation finds the table as of the flush it started from, whether the reader's read
    /// transaction began before or after that generation's own flush committed.
    /// A coin leaves when a block spends it; when full, the map is emptied; at a flush, the
    /// next generation takes what the flush left unchanged.
    table_reads: RwLock<HashMap<Key, Value>>,
    /// The share of the flush policy's limits at which this generation is written, drawn
    /// between a half and the whole at random: nodes that apply the same blocks then flush
    /// at different heights, so that the pause a flush makes (it is on the applying thread)
    /// holds up one node of a quorum rather than all of them at once.
    share_permille: usize,
}

impl Default for Generation {
    fn default() -> Generation {
        Generation::with_table_reads(HashMap::new())
    }
}

impl Generation {
    fn with_table_reads(table_reads: HashMap<Key, Value>) -> Generation {
        Generation {
            coins: RwLock::default(),
            txs: RwLock::default(),
            table_reads: RwLock::new(table_reads),
            share_permille: rand::rng().random_range(500..=1_000),
        }
    }

    /// The generation that follows this one once it is flushed: it keeps the coins read from
    /// the table that this one has no history of (the flush did not change them). Called with
    /// the apply lock held, so no block adds to this one meanwhile.
    fn successor(&self) -> Generation {
        let mut reads = std::mem::take(&mut *self.table_reads.write().unwrap_or_else(PoisonError::into_inner));
        let coins = self.read();
        // A reader may have kept a coin just as a block of this generation spent it.
        reads.retain(|key, _| !coins.contains_key(key));
        Generation::with_table_reads(reads)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Key, History>> {
        // Entries are inserted whole; a panic cannot leave one half-written.
        self.coins.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds the changes of a block (checked against this generation by `coin_changes`).
    pub(super) fn merge(&self, layer: &Layer) {
        {
            let mut txs = self.txs.write().unwrap_or_else(PoisonError::into_inner);
            txs.reserve(layer.txs.len());
            for (txid, position) in &layer.txs {
                txs.insert(*txid, (layer.height, *position));
            }
        }
        {
            // A spent coin has a history from now on: its copy is no longer read.
            let mut reads = self.table_reads.write().unwrap_or_else(PoisonError::into_inner);
            for (key, change) in &layer.changes {
                if matches!(change, Change::Spent(_)) {
                    reads.remove(key);
                }
            }
        }
        let mut coins = self.coins.write().unwrap_or_else(PoisonError::into_inner);
        coins.reserve(layer.changes.len());
        for (key, change) in &layer.changes {
            let history = match (*change, coins.get(key)) {
                (Change::Spent(value), Some(History::Created { at, .. })) => History::CreatedSpent {
                    created: *at,
                    spent: layer.height,
                    value,
                },
                (Change::Spent(value), _) => History::Spent {
                    at: layer.height,
                    value,
                },
                (Change::Created(value), _) => History::Created {
                    at: layer.height,
                    value,
                },
            };
            coins.insert(*key, history);
        }
    }

    /// The coin under `key` as the table holds it, if it was read through this generation.
    fn table_read(&self, key: &Key) -> Option<Value> {
        self.table_reads
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .copied()
    }

    /// Keeps a coin found in the table.
    fn remember_table_read(&self, key: &Key, value: Value) {
        let mut reads = self.table_reads.write().unwrap_or_else(PoisonError::into_inner);
        if reads.len() >= TABLE_READS {
            reads.clear();
        }
        reads.insert(*key, value);
    }

    /// Whether the generation has seen `key` at all (created or spent since the flush).
    pub(super) fn contains(&self, key: &Key) -> bool {
        self.read().contains_key(key)
    }

    /// Where a transaction of a block since the flush is.
    pub(super) fn tx_location(&self, txid: &TxKey) -> Option<(u64, u32)> {
        self.txs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(txid)
            .copied()
    }

    /// Bytes the generation is counted as holding.
    fn bytes(&self) -> usize {
        let txs = self.txs.read().unwrap_or_else(PoisonError::into_inner).len();
        self.read()
            .len()
            .saturating_mul(ENTRY_BYTES)
            .saturating_add(txs.saturating_mul(TX_ENTRY_BYTES))
    }
}

/// The chain state at the tip, held in memory: the tip, supply and commitment, the
/// masternode list and the state's hash, and the UTXO changes since the flush. It is
/// replaced whole under [`Store::coins_lock`] when a block is applied.
#[derive(Clone)]
pub(super) struct Coins {
    /// Shared: every snapshot clones the coins, and the commitment's state is 2 KiB.
    pub(super) state: Arc<WriteState>,
    pub(super) list: Arc<MasternodeList>,
    /// `chain_state_hash` of the commitment and the list: what the next header names.
    pub(super) state_hash: Hash256,
    pub(super) generation: Arc<Generation>,
    /// Blocks applied since the flush.
    pub(super) unflushed_blocks: usize,
}

impl Coins {
    /// The state `state` with `list`, and `generation` (of `unflushed_blocks`) above the table.
    pub(super) fn new(
        state: WriteState,
        list: Arc<MasternodeList>,
        generation: Arc<Generation>,
        unflushed_blocks: usize,
    ) -> Coins {
        Coins {
            state_hash: chain_state_hash(&state.lthash.digest(), &list.hash()),
            state: Arc::new(state),
            list,
            generation,
            unflushed_blocks,
        }
    }

    /// Bytes the changes are counted as holding.
    pub(super) fn bytes(&self) -> usize {
        self.generation.bytes()
    }

    /// Whether `policy` says the changes are due to be written.
    pub(super) fn due(&self, policy: FlushPolicy) -> bool {
        let permille = if policy.stagger {
            self.generation.share_permille
        } else {
            1_000
        };
        let share = |limit: usize| limit / 1_000 * permille + limit % 1_000 * permille / 1_000;
        self.unflushed_blocks >= share(policy.max_blocks).max(1) || self.bytes() >= share(policy.max_bytes)
    }
}

/// A consistent view of the UTXO set at one tip: the changes since a flush over the table as
/// of that flush.
pub(super) struct CoinsView {
    pub(super) generation: Arc<Generation>,
    /// The tip the view is of.
    pub(super) height: u64,
    pub(super) table: redb::ReadOnlyTable<&'static [u8; 36], &'static [u8; UTXO_VALUE_LEN]>,
}

impl CoinsView {
    /// The coin under `key`: its history since the flush, else the table.
    pub(super) fn get(&self, key: &Key) -> Result<Option<Value>, redb::StorageError> {
        self.lookup(key, true)
    }

    /// [`CoinsView::get`] for the coins a block being applied spends: a coin read from the
    /// table is not kept (the block's merge would drop it at once).
    pub(super) fn get_spent(&self, key: &Key) -> Result<Option<Value>, redb::StorageError> {
        self.lookup(key, false)
    }

    fn lookup(&self, key: &Key, keep: bool) -> Result<Option<Value>, redb::StorageError> {
        if let Some(history) = self.generation.read().get(key) {
            return Ok(history.at(self.height));
        }
        if let Some(value) = self.generation.table_read(key) {
            return Ok(Some(value));
        }
        let found = self.table.get(key)?.map(|value| *value.value());
        if keep && let Some(value) = found {
            self.generation.remember_table_read(key, value);
        }
        Ok(found)
    }

    /// Every coin, in key order: the table with the changes laid over it (for audits).
    pub(super) fn all(&self) -> Result<Vec<(Key, Value)>, redb::StorageError> {
        let mut merged = std::collections::BTreeMap::new();
        for entry in self.table.iter()? {
            let (key, value) = entry?;
            merged.insert(*key.value(), *value.value());
        }
        for (key, history) in self.generation.read().iter() {
            match history.at(self.height) {
                Some(value) => merged.insert(*key, value),
                None => merged.remove(key),
            };
        }
        Ok(merged.into_iter().collect())
    }
}

/// What the in-memory coins hold (for metrics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoinsCacheInfo {
    /// Blocks whose UTXO changes are not yet in the table.
    pub unflushed_blocks: usize,
    /// Bytes those changes are counted as holding.
    pub bytes: usize,
}

impl Store {
    /// What the in-memory coins hold now.
    pub fn coins_cache(&self) -> CoinsCacheInfo {
        let coins = self.coins_lock();
        CoinsCacheInfo {
            unflushed_blocks: coins.unflushed_blocks,
            bytes: coins.bytes(),
        }
    }

    /// The coins' state now (a clone: cheap, its parts are shared).
    pub(super) fn coins(&self) -> Coins {
        self.coins_lock().clone()
    }

    pub(super) fn coins_lock(&self) -> std::sync::MutexGuard<'_, Coins> {
        // The state is replaced whole under the lock, never left half-written.
        self.coins.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The coins' state with a view of the UTXO set consistent with it.
    pub(super) fn coins_view(&self) -> Result<(Coins, CoinsView), StorageError> {
        let coins = self.coins_lock();
        let read = self.begin_read()?;
        let table = read.open_table(UTXOS).map_err(|e| self.err(e))?;
        let view = CoinsView {
            generation: Arc::clone(&coins.generation),
            height: coins.state.tip.height,
            table,
        };
        Ok((coins.clone(), view))
    }

    /// Writes the changes since the last flush to the table with the state they lead to, in
    /// one atomic write, then starts a new generation (readers that hold the old one keep
    /// it). The caller holds the apply lock, so no block is applied meanwhile.
    pub(super) fn flush_coins(&self) -> Result<(), StorageError> {
        let coins = self.coins();
        if coins.unflushed_blocks == 0 {
            return Ok(());
        }
        let write = self.db.begin_write().map_err(|e| self.err(e))?;
        self.write_generation(&write, &coins.generation, coins.state.tip.height)?;
        coins.state.save(&write, self)?;
        write.commit().map_err(|e| self.err(e))?;
        let successor = coins.generation.successor();
        let mut now = self.coins_lock();
        now.generation = Arc::new(successor);
        now.unflushed_blocks = 0;
        Ok(())
    }

    /// Writes what `generation` changed in the UTXO table and the txid index, in key order
    /// (so that each B-tree is walked once); a coin created and spent within it is not
    /// written at all.
    pub(super) fn write_generation(
        &self,
        write: &redb::WriteTransaction,
        generation: &Generation,
        height: u64,
    ) -> Result<(), StorageError> {
        let mut changes: Vec<(Key, History)> = generation
            .read()
            .iter()
            .filter(|(_, history)| !matches!(history, History::CreatedSpent { .. }))
            .map(|(key, history)| (*key, *history))
            .collect();
        changes.sort_unstable_by_key(|(key, _)| *key);
        let mut txs: Vec<(TxKey, (u64, u32))> = generation
            .txs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(txid, location)| (*txid, *location))
            .collect();
        txs.sort_unstable_by_key(|(txid, _)| *txid);
        let mut locations = write.open_table(TX_LOCATIONS).map_err(|e| self.err(e))?;
        for (txid, location) in &txs {
            locations.insert(txid, *location).map_err(|e| self.err(e))?;
        }
        let mut table = write.open_table(UTXOS).map_err(|e| self.err(e))?;
        for (key, history) in &changes {
            let inconsistent = |detail: &str| StorageError::Inconsistent {
                height,
                detail: format!("{detail} (output key {})", hex_key(key)),
            };
            match history {
                History::Created { value, .. } => {
                    if table.insert(key, value).map_err(|e| self.err(e))?.is_some() {
                        return Err(inconsistent("a created output already exists in the table"));
                    }
                }
                History::Spent { .. } => {
                    if table.remove(key).map_err(|e| self.err(e))?.is_none() {
                        return Err(inconsistent("a spent output is missing from the table"));
                    }
                }
                History::CreatedSpent { .. } => {}
            }
        }
        Ok(())
    }
}

fn hex_key(key: &Key) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}
