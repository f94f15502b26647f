//! The chain store: blocks, indexes, the UTXO set and undo data in one redb file.
//!
//! Its parts: `layout` (the tables, the meta keys and the fixed-width encodings of what they
//! hold), `coins` (the tip's state in memory: the UTXO changes of recent blocks above the
//! table, and when they are written), `reads` (blocks, transactions and the UTXO-set
//! summary), `sets` (the record of voting-set changes that finality proofs carry), `prune`
//! (dropping old block bodies to hold the block data under a target), `dump` (chain-state
//! files: the state at one block written out, and a store made from one),
//! `snapshot` (a consistent view of one tip's state for validation) and `apply`
//! (applying and reverting blocks). This file opens the store, checks its schema and genesis,
//! and rebuilds the in-memory coins, replaying the blocks above the flushed height.

mod address;
mod apply;
mod coins;
mod dump;
mod layout;
mod prune;
mod reads;
mod sets;
mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::{Database, ReadTransaction, ReadableDatabase};
use timecoin_chain::{ChainParams, ChainTip, Genesis, MasternodeList};
use timecoin_primitives::{BlockHash, Decode, Encode};

pub use address::{AddressDelta, AddressUtxo};
pub use apply::AppliedBlock;
pub use coins::{CoinsCacheInfo, FlushPolicy};
pub use dump::{LoadedState, StateFileInfo};
pub(crate) use layout::WAL;
pub use layout::{LIST_UNDO_DEPTH, SCHEMA_VERSION};
pub use prune::{MIN_KEPT_BLOCKS, PruneState};
pub use reads::UtxoSetInfo;
pub use snapshot::Snapshot;

use crate::error::StorageError;
use coins::{Coins, Generation};
use layout::{
    BLOCK_HEIGHTS, BLOCKS, CERTIFICATES, KEY_COINS_TIP, KEY_GENESIS, KEY_MASTERNODES, KEY_SCHEMA, KEY_TIP, LIST_UNDO,
    META, OLDEST_SCHEMA, TX_LOCATIONS, UNDO, UTXOS, WriteState, tip_from_bytes,
};

/// The page cache a store keeps by default: 64 MiB. With the 64 MiB of in-memory coins
/// ([`FlushPolicy`]), which now serve the recent coins the page cache used to, the store
/// holds the 128 MiB its page cache alone held before.
pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// The chain store. All methods block on disk I/O: call them from a blocking thread.
pub struct Store {
    pub(crate) db: Database,
    path: PathBuf,
    params: ChainParams,
    /// The tip's state in memory (replaced whole when a block is applied).
    coins: Mutex<Coins>,
    /// Held by whoever applies, reverts or flushes: one at a time.
    apply_lock: Mutex<()>,
    flush_policy: FlushPolicy,
    /// Whether applied blocks are indexed by address (`address`).
    address_index: std::sync::atomic::AtomicBool,
    /// The block data to keep at most, in bytes (0: no pruning; `prune`).
    prune_target: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Drop for Store {
    /// Writes the in-memory coins, so that the next open replays nothing. A failure loses
    /// nothing: the stored blocks are replayed then.
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl Store {
    /// Opens the store at `path`, creating it with `genesis` if the file does not exist.
    ///
    /// An existing store must hold a schema this build reads and the same genesis.
    pub fn open(path: &Path, genesis: &Genesis) -> Result<Store, StorageError> {
        Store::open_with_cache(path, genesis, DEFAULT_CACHE_BYTES)
    }

    /// [`Store::open`] with a page cache of at most `cache_bytes` (redb's own default is
    /// 1 GiB, which would let a node's memory grow by that much under load).
    pub fn open_with_cache(path: &Path, genesis: &Genesis, cache_bytes: usize) -> Result<Store, StorageError> {
        Store::open_with(path, genesis, cache_bytes, FlushPolicy::default())
    }

    /// [`Store::open_with_cache`], writing the in-memory UTXO changes to the table as `flush`
    /// says.
    pub fn open_with(
        path: &Path,
        genesis: &Genesis,
        cache_bytes: usize,
        flush: FlushPolicy,
    ) -> Result<Store, StorageError> {
        let exists = path.exists();
        let mut builder = redb::Builder::new();
        builder.set_cache_size(cache_bytes);
        let db = match if exists {
            builder.open(path)
        } else {
            builder.create(path)
        } {
            Ok(db) => db,
            Err(e) => return Err(Self::map_error(path, e.into())),
        };
        let mut store = Store {
            db,
            path: path.to_owned(),
            params: genesis.params.clone(),
            coins: Mutex::new(Coins::new(
                WriteState::load_empty(),
                Arc::new(MasternodeList::default()),
                Arc::new(Generation::default()),
                0,
            )),
            apply_lock: Mutex::new(()),
            flush_policy: flush,
            address_index: std::sync::atomic::AtomicBool::new(false),
            prune_target: std::sync::atomic::AtomicU64::new(0),
        };
        let read = store.begin_read()?;
        let meta = match read.open_table(META) {
            Ok(table) => Some(table),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(store.err(e)),
        };
        let schema = match &meta {
            Some(meta) => meta
                .get(KEY_SCHEMA)
                .map_err(|e| store.err(e))?
                .map(|v| v.value().to_vec()),
            None => None,
        };
        drop(meta);
        drop(read);
        match schema {
            None if exists && store.has_any_table()? => Err(StorageError::Corrupted {
                path: path.to_owned(),
                detail: "the file has tables but no schema version: it is not a TimeCoin chain store".to_owned(),
            }),
            None => {
                store.initialize(genesis)?;
                *store.coins.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner) = store.load_coins()?;
                Ok(store)
            }
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_slice())
                    .map(u32::from_le_bytes)
                    .map_err(|_| StorageError::Corrupted {
                        path: path.to_owned(),
                        detail: "schema version is not 4 bytes".to_owned(),
                    })?;
                if found > SCHEMA_VERSION {
                    return Err(StorageError::SchemaTooNew {
                        path: path.to_owned(),
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                if found < OLDEST_SCHEMA {
                    return Err(StorageError::SchemaTooOld {
                        path: path.to_owned(),
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                let stored = store.stored_genesis()?;
                if stored != genesis.hash() {
                    return Err(StorageError::GenesisMismatch {
                        path: path.to_owned(),
                        stored,
                        expected: genesis.hash(),
                    });
                }
                if found < SCHEMA_VERSION {
                    store.upgrade_schema(found, genesis)?;
                }
                *store.coins.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner) = store.load_coins()?;
                Ok(store)
            }
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn map_error(path: &Path, error: redb::Error) -> StorageError {
        match error {
            redb::Error::Corrupted(detail) => StorageError::Corrupted {
                path: path.to_owned(),
                detail,
            },
            redb::Error::DatabaseAlreadyOpen => StorageError::InUse { path: path.to_owned() },
            redb::Error::UpgradeRequired(v) => StorageError::Corrupted {
                path: path.to_owned(),
                detail: format!("file format {v} needs an upgrade by an older redb"),
            },
            other => StorageError::Database {
                path: path.to_owned(),
                source: other,
            },
        }
    }

    pub(crate) fn err(&self, error: impl Into<redb::Error>) -> StorageError {
        Self::map_error(&self.path, error.into())
    }

    pub(crate) fn corrupt(&self, what: &str, error: timecoin_primitives::DecodeError) -> StorageError {
        StorageError::corrupt_record(&self.path, what, error)
    }

    fn missing(&self, what: &str) -> StorageError {
        StorageError::Corrupted {
            path: self.path.clone(),
            detail: format!("{what} is missing"),
        }
    }

    pub(crate) fn begin_read(&self) -> Result<ReadTransaction, StorageError> {
        self.db.begin_read().map_err(|e| self.err(e))
    }

    fn has_any_table(&self) -> Result<bool, StorageError> {
        let read = self.begin_read()?;
        let mut tables = read.list_tables().map_err(|e| self.err(e))?;
        Ok(tables.next().is_some())
    }

    fn stored_genesis(&self) -> Result<BlockHash, StorageError> {
        let bytes = self.meta(KEY_GENESIS)?.ok_or_else(|| self.missing("genesis hash"))?;
        BlockHash::from_bytes(&bytes).map_err(|e| self.corrupt("genesis hash", e))
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let read = self.begin_read()?;
        let table = read.open_table(META).map_err(|e| self.err(e))?;
        Ok(table.get(key).map_err(|e| self.err(e))?.map(|v| v.value().to_vec()))
    }

    /// Brings a store of schema `found` to this build's, in one write.
    ///
    /// From 2 to 3: its UTXO table, supply and commitment are as of its tip, which becomes
    /// its coins tip (blocks applied from now on move the tip alone), and an older build,
    /// which would read a lagging table as the tip's, no longer opens it. From 3 to 4: the
    /// record of voting-set changes is rebuilt from its blocks (which it holds since the
    /// genesis: older schemas do not prune), and its block data is counted.
    fn upgrade_schema(&self, found: u32, genesis: &Genesis) -> Result<(), StorageError> {
        let tip_bytes = self.meta(KEY_TIP)?.ok_or_else(|| self.missing("chain tip"))?;
        let tip: ChainTip = tip_from_bytes(&tip_bytes).map_err(|e| self.corrupt("chain tip", e))?;
        let write = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut meta = write.open_table(META).map_err(|e| self.err(e))?;
            if found < 3 {
                meta.insert(KEY_COINS_TIP, tip_bytes.as_slice())
                    .map_err(|e| self.err(e))?;
            }
            meta.insert(KEY_SCHEMA, SCHEMA_VERSION.to_le_bytes().as_slice())
                .map_err(|e| self.err(e))?;
        }
        self.rebuild_set_record(&write, genesis, tip.height)?;
        self.count_stored_block_bytes(&write)?;
        write.commit().map_err(|e| self.err(e))
    }

    /// The tip's state from the file: the table's state, with the stored blocks above the
    /// flushed height replayed into memory (what a crash left unflushed).
    fn load_coins(&self) -> Result<Coins, StorageError> {
        let read = self.begin_read()?;
        let meta = read.open_table(META).map_err(|e| self.err(e))?;
        let mut state = WriteState::read(&meta, self)?;
        let tip_bytes = self.meta(KEY_TIP)?.ok_or_else(|| self.missing("chain tip"))?;
        let tip: ChainTip = tip_from_bytes(&tip_bytes).map_err(|e| self.corrupt("chain tip", e))?;
        let list_bytes = self
            .meta(KEY_MASTERNODES)?
            .ok_or_else(|| self.missing("masternode list"))?;
        let list = MasternodeList::from_bytes(&list_bytes).map_err(|e| self.corrupt("masternode list", e))?;
        drop(meta);
        if state.tip.height > tip.height {
            return Err(StorageError::Corrupted {
                path: self.path.clone(),
                detail: format!(
                    "the UTXO set is as of height {} but the chain ends at {}",
                    state.tip.height, tip.height
                ),
            });
        }
        let generation = Arc::new(Generation::default());
        let mut replayed = 0;
        for height in state.tip.height + 1..=tip.height {
            let block = self
                .block_by_height(height)?
                .ok_or_else(|| self.missing(&format!("block {height} (to replay into the UTXO set)")))?;
            if block.header.prev_hash != state.tip.hash {
                return Err(StorageError::Corrupted {
                    path: self.path.clone(),
                    detail: format!("stored block {height} does not extend block {}", height - 1),
                });
            }
            let view = coins::CoinsView {
                generation: Arc::clone(&generation),
                height: state.tip.height,
                table: read.open_table(UTXOS).map_err(|e| self.err(e))?,
            };
            let changes = apply::coin_changes(
                &block,
                &mut state,
                false,
                |key| view.get_spent(key).map_err(|e| self.err(e)),
                |key| generation.contains(key),
            )?;
            generation.merge(&changes.layer);
            replayed += 1;
        }
        if state.tip != tip {
            return Err(StorageError::Corrupted {
                path: self.path.clone(),
                detail: format!(
                    "the replayed UTXO set ends at {} but the tip is {}",
                    state.tip.hash, tip.hash
                ),
            });
        }
        Ok(Coins::new(state, Arc::new(list), generation, replayed))
    }

    fn initialize(&self, genesis: &Genesis) -> Result<(), StorageError> {
        let write = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut meta = write.open_table(META).map_err(|e| self.err(e))?;
            meta.insert(KEY_SCHEMA, SCHEMA_VERSION.to_le_bytes().as_slice())
                .map_err(|e| self.err(e))?;
            meta.insert(KEY_GENESIS, genesis.hash().0.0.as_slice())
                .map_err(|e| self.err(e))?;
            for table in [BLOCKS, CERTIFICATES, UNDO] {
                write.open_table(table).map_err(|e| self.err(e))?;
            }
            write.open_table(BLOCK_HEIGHTS).map_err(|e| self.err(e))?;
            write.open_table(TX_LOCATIONS).map_err(|e| self.err(e))?;
            write.open_table(UTXOS).map_err(|e| self.err(e))?;
            write.open_table(WAL).map_err(|e| self.err(e))?;
            write.open_table(crate::wal::PROPOSED).map_err(|e| self.err(e))?;
            write.open_table(LIST_UNDO).map_err(|e| self.err(e))?;
            write.open_table(prune::PRUNED_HEADERS).map_err(|e| self.err(e))?;
            meta.insert(KEY_MASTERNODES, genesis.masternode_list().to_bytes().as_slice())
                .map_err(|e| self.err(e))?;
        }
        let genesis_block = &genesis.block;
        let mut state = WriteState::load_empty();
        state.supply.allocated = genesis.allocated().units();
        let changes = apply::coin_changes(genesis_block, &mut state, true, |_| Ok(None), |_| false)?;
        self.write_records(&write, genesis_block, None, &changes)?;
        let generation = Generation::default();
        generation.merge(&changes.layer);
        self.write_generation(&write, &generation, 0)?;
        self.start_set_record(&write, 0, None)?;
        state.save(&write, self)?;
        write.commit().map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_database_failure_keeps_redb_s_error_as_its_source() {
        let path = Path::new("/data/chain.redb");
        let error = Store::map_error(path, redb::Error::Io(std::io::Error::other("disk unplugged")));
        assert!(matches!(error, StorageError::Database { .. }), "{error}");
        let message = error.to_string();
        assert!(message.contains("/data/chain.redb"), "{message}");
        assert!(
            !message.contains("disk unplugged"),
            "the cause is the source, not the message: {message}"
        );
        let source = error.source().and_then(|s| s.downcast_ref::<redb::Error>());
        assert!(
            matches!(source, Some(redb::Error::Io(io)) if io.to_string() == "disk unplugged"),
            "{source:?}"
        );
    }
}
