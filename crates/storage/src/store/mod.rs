//! The chain store: blocks, indexes, the UTXO set and undo data in one redb file.
//!
//! Its parts: `layout` (the tables, the meta keys and the fixed-width encodings of what they
//! hold), `reads` (blocks, transactions and the UTXO-set summary), `snapshot` (a consistent
//! view of one tip's state for validation, and the cached masternode list) and `apply`
//! (applying and reverting blocks, each in one atomic write). This file opens the store and
//! checks its schema and genesis.

mod apply;
mod layout;
mod reads;
mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use redb::{Database, ReadTransaction, ReadableDatabase};
use timecoin_chain::{ChainParams, Genesis};
use timecoin_primitives::{BlockHash, Decode, Encode};

pub use apply::AppliedBlock;
pub(crate) use layout::WAL;
pub use layout::{LIST_UNDO_DEPTH, SCHEMA_VERSION};
pub use reads::UtxoSetInfo;
pub use snapshot::Snapshot;

use crate::error::StorageError;
use layout::{
    BLOCK_HEIGHTS, BLOCKS, CERTIFICATES, KEY_GENESIS, KEY_MASTERNODES, KEY_SCHEMA, LIST_UNDO, META, TX_LOCATIONS, UNDO,
    UTXOS, WriteState,
};
use snapshot::CachedList;

/// The page cache a store keeps by default: 128 MiB.
pub const DEFAULT_CACHE_BYTES: usize = 128 * 1024 * 1024;

/// The chain store. All methods block on disk I/O: call them from a blocking thread.
#[derive(Debug)]
pub struct Store {
    pub(crate) db: Database,
    path: PathBuf,
    params: ChainParams,
    list: Mutex<Option<CachedList>>,
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
        let store = Store {
            db,
            path: path.to_owned(),
            params: genesis.params.clone(),
            list: Mutex::new(None),
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
                if found < SCHEMA_VERSION {
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
            meta.insert(KEY_MASTERNODES, genesis.masternode_list().to_bytes().as_slice())
                .map_err(|e| self.err(e))?;
        }
        let genesis_block = &genesis.block;
        let mut state = WriteState::load_empty();
        let allocated = genesis.allocated().units();
        state.supply.allocated = allocated;
        self.write_block(&write, genesis_block, None, &mut state, true)?;
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
