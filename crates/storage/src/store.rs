//! The chain store: blocks, indexes, the UTXO set and undo data in one redb file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use timecoin_chain::{ChainParams, ChainTip, Genesis, MasternodeList, Utxo, UtxoView, ViewError, created_outputs};
use timecoin_primitives::encoding::{Reader, write_compact_size};
use timecoin_primitives::{
    AddressPayload, Amount, Block, BlockHash, CommitCertificate, Decode, Encode, Hash256, OutPoint, Transaction, TxId,
    TxOutput, chain_state_hash,
};

use crate::commitment::LtHash;
use crate::error::StorageError;

/// The schema this build writes and reads (2: blocks carry their parent's certificate and
/// evidence, and the state holds the masternode list).
pub const SCHEMA_VERSION: u32 = 2;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const CERTIFICATES: TableDefinition<u64, &[u8]> = TableDefinition::new("certificates");
// Fixed-width keys and values are borrowed arrays (`&[u8; N]`), which redb stores exactly as
// owned arrays (same type name, same bytes) but compares with one `memcmp` and reads without
// an allocation; owned `[u8; N]` keys compared byte by byte through `u8`'s comparison (7.3%
// of the CPU samples of a 4-node `timed bench` at 10,000 tx/s offered).
const BLOCK_HEIGHTS: TableDefinition<&[u8; 32], u64> = TableDefinition::new("block_heights");
const TX_LOCATIONS: TableDefinition<&[u8; 32], (u64, u32)> = TableDefinition::new("tx_locations");
const UTXOS: TableDefinition<&[u8; 36], &[u8; UTXO_VALUE_LEN]> = TableDefinition::new("utxos");
const UNDO: TableDefinition<u64, &[u8]> = TableDefinition::new("undo");
/// What this masternode signed: (height, sequence) → encoded [`timecoin_consensus::WalEntry`].
pub(crate) const WAL: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("consensus_wal");
/// The masternode list before each recent block: height → encoded list.
const LIST_UNDO: TableDefinition<u64, &[u8]> = TableDefinition::new("masternode_list_undo");

/// How many recent blocks keep the masternode list they replaced, so that they can be
/// reverted. Finalized blocks are never reverted by consensus; this bounds what repair tools
/// can undo, and keeps the table from growing with the chain.
pub const LIST_UNDO_DEPTH: u64 = 1_000;

const UTXO_VALUE_LEN: usize = 8 + 32 + 8 + 1;

const KEY_SCHEMA: &str = "schema_version";
const KEY_GENESIS: &str = "genesis";
const KEY_TIP: &str = "tip";
const KEY_SUPPLY: &str = "supply";
const KEY_LTHASH: &str = "utxo_lthash";
const KEY_MASTERNODES: &str = "masternode_list";

fn outpoint_key(outpoint: &OutPoint) -> [u8; 36] {
    let mut key = [0u8; 36];
    let (txid, index) = key.split_at_mut(32);
    txid.copy_from_slice(&outpoint.txid.0.0);
    index.copy_from_slice(&outpoint.index.to_le_bytes());
    key
}

fn outpoint_from_key(key: &[u8; 36]) -> OutPoint {
    let mut txid = [0u8; 32];
    let mut index = [0u8; 4];
    txid.copy_from_slice(key.get(..32).unwrap_or(&[0; 32]));
    index.copy_from_slice(key.get(32..).unwrap_or(&[0; 4]));
    OutPoint {
        txid: TxId(Hash256(txid)),
        index: u32::from_le_bytes(index),
    }
}

fn utxo_value(utxo: &Utxo) -> [u8; UTXO_VALUE_LEN] {
    let mut value = [0u8; UTXO_VALUE_LEN];
    let (amount, rest) = value.split_at_mut(8);
    let (address, rest) = rest.split_at_mut(32);
    let (height, flag) = rest.split_at_mut(8);
    amount.copy_from_slice(&utxo.output.amount.units().to_le_bytes());
    address.copy_from_slice(&utxo.output.address.0);
    height.copy_from_slice(&utxo.height.to_le_bytes());
    flag.fill(u8::from(utxo.is_reward));
    value
}

fn utxo_from_value(value: &[u8; UTXO_VALUE_LEN]) -> Result<Utxo, timecoin_primitives::DecodeError> {
    let mut reader = Reader::new(value);
    let amount = Amount::decode_from(&mut reader)?;
    let address = AddressPayload::decode_from(&mut reader)?;
    let height = reader.read_u64()?;
    let is_reward = match reader.read_u8()? {
        0 => false,
        1 => true,
        _ => {
            return Err(timecoin_primitives::DecodeError::InvalidValue {
                field: "utxo flags",
                reason: "expected 0 or 1",
            });
        }
    };
    reader.finish()?;
    Ok(Utxo {
        output: TxOutput { amount, address },
        height,
        is_reward,
    })
}

/// The bytes one UTXO contributes to the commitment: its key and its value.
fn commitment_element(key: &[u8; 36], value: &[u8; UTXO_VALUE_LEN]) -> [u8; 36 + UTXO_VALUE_LEN] {
    let mut element = [0u8; 36 + UTXO_VALUE_LEN];
    let (k, v) = element.split_at_mut(36);
    k.copy_from_slice(key);
    v.copy_from_slice(value);
    element
}

/// Coin supply bookkeeping, stored beside the tip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Supply {
    utxo_count: u64,
    utxo_total: u64,
    allocated: u64,
    minted: u64,
}

impl Supply {
    fn to_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, v) in out
            .chunks_exact_mut(8)
            .zip([self.utxo_count, self.utxo_total, self.allocated, self.minted])
        {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    fn from_bytes(bytes: &[u8]) -> Option<Supply> {
        let mut reader = Reader::new(bytes);
        let s = Supply {
            utxo_count: reader.read_u64().ok()?,
            utxo_total: reader.read_u64().ok()?,
            allocated: reader.read_u64().ok()?,
            minted: reader.read_u64().ok()?,
        };
        reader.finish().ok()?;
        Some(s)
    }
}

fn tip_to_bytes(tip: &ChainTip) -> Vec<u8> {
    let mut out = Vec::with_capacity(48);
    out.extend_from_slice(&tip.height.to_le_bytes());
    tip.hash.encode_to(&mut out);
    out.extend_from_slice(&tip.timestamp_ms.to_le_bytes());
    out
}

fn tip_from_bytes(bytes: &[u8]) -> Result<ChainTip, timecoin_primitives::DecodeError> {
    let mut reader = Reader::new(bytes);
    let tip = ChainTip {
        height: reader.read_u64()?,
        hash: BlockHash::decode_from(&mut reader)?,
        timestamp_ms: reader.read_u64()?,
    };
    reader.finish()?;
    Ok(tip)
}

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

/// A summary of the UTXO set, like Bitcoin Core's `gettxoutsetinfo`: two nodes at the same
/// height must report the same values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UtxoSetInfo {
    /// The tip the summary describes.
    pub height: u64,
    /// The tip's hash.
    pub best_block: BlockHash,
    /// Number of unspent outputs.
    pub count: u64,
    /// Their total value.
    pub total: Amount,
    /// The incremental commitment to the whole set.
    pub commitment: Hash256,
    /// Coins created by the genesis block.
    pub allocated: Amount,
    /// Coins minted by block rewards since genesis.
    pub minted: Amount,
}

/// The masternode list of one tip, decoded once and shared.
#[derive(Debug, Clone)]
struct CachedList {
    tip: BlockHash,
    list: Arc<MasternodeList>,
    hash: Hash256,
}

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
                detail: other.to_string(),
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

    /// The last applied block.
    pub fn tip(&self) -> Result<ChainTip, StorageError> {
        let bytes = self.meta(KEY_TIP)?.ok_or_else(|| self.missing("chain tip"))?;
        tip_from_bytes(&bytes).map_err(|e| self.corrupt("chain tip", e))
    }

    /// The genesis hash this store was created with.
    pub fn genesis_hash(&self) -> Result<BlockHash, StorageError> {
        self.stored_genesis()
    }

    /// The value stored under `height` in `table`, decoded.
    fn by_height<T: Decode>(
        &self,
        table: TableDefinition<u64, &[u8]>,
        height: u64,
        what: &str,
    ) -> Result<Option<T>, StorageError> {
        let read = self.begin_read()?;
        let table = read.open_table(table).map_err(|e| self.err(e))?;
        let Some(bytes) = table.get(height).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        T::from_bytes(bytes.value())
            .map(Some)
            .map_err(|e| self.corrupt(&format!("{what} {height}"), e))
    }

    /// The block at `height`.
    pub fn block_by_height(&self, height: u64) -> Result<Option<Block>, StorageError> {
        self.by_height(BLOCKS, height, "block")
    }

    /// The height of the block with this hash.
    pub fn height_of(&self, hash: &BlockHash) -> Result<Option<u64>, StorageError> {
        let read = self.begin_read()?;
        let table = read.open_table(BLOCK_HEIGHTS).map_err(|e| self.err(e))?;
        Ok(table.get(&hash.0.0).map_err(|e| self.err(e))?.map(|v| v.value()))
    }

    /// The block with this hash.
    pub fn block_by_hash(&self, hash: &BlockHash) -> Result<Option<Block>, StorageError> {
        match self.height_of(hash)? {
            Some(height) => self.block_by_height(height),
            None => Ok(None),
        }
    }

    /// The commit certificate stored with the block at `height`.
    pub fn certificate(&self, height: u64) -> Result<Option<CommitCertificate>, StorageError> {
        self.by_height(CERTIFICATES, height, "certificate")
    }

    /// Where a transaction was included: block height and position.
    pub fn tx_location(&self, txid: &TxId) -> Result<Option<(u64, u32)>, StorageError> {
        let read = self.begin_read()?;
        let table = read.open_table(TX_LOCATIONS).map_err(|e| self.err(e))?;
        Ok(table.get(&txid.0.0).map_err(|e| self.err(e))?.map(|v| v.value()))
    }

    /// A confirmed transaction and the height of its block.
    pub fn transaction(&self, txid: &TxId) -> Result<Option<(Transaction, u64)>, StorageError> {
        let Some((height, index)) = self.tx_location(txid)? else {
            return Ok(None);
        };
        let block = self
            .block_by_height(height)?
            .ok_or_else(|| self.missing(&format!("block {height} named by the index of {txid}")))?;
        let tx = block
            .transactions
            .into_iter()
            .nth(index as usize)
            .ok_or_else(|| self.missing(&format!("transaction {index} of block {height}")))?;
        Ok(Some((tx, height)))
    }

    /// A consistent read-only view of the chain state as of the current tip: the UTXO set,
    /// the masternode list and the state's hash.
    pub fn snapshot(&self) -> Result<Snapshot, StorageError> {
        let read = self.begin_read()?;
        let utxos = read.open_table(UTXOS).map_err(|e| self.err(e))?;
        let meta = read.open_table(META).map_err(|e| self.err(e))?;
        let state = WriteState::read(&meta, self)?;
        let list = self.list_at(&meta, state.tip.hash)?;
        Ok(Snapshot {
            utxos,
            path: self.path.clone(),
            tip: state.tip,
            state_hash: chain_state_hash(&state.lthash.digest(), &list.hash),
            list: list.list,
        })
    }

    /// The masternode list at the current tip.
    pub fn masternodes(&self) -> Result<Arc<MasternodeList>, StorageError> {
        let read = self.begin_read()?;
        let meta = read.open_table(META).map_err(|e| self.err(e))?;
        let tip = WriteState::read(&meta, self)?.tip;
        Ok(self.list_at(&meta, tip.hash)?.list)
    }

    /// The list stored in `meta` (which belongs to the tip `tip`), from the cache when it
    /// holds that tip's list.
    fn list_at(
        &self,
        meta: &impl ReadableTable<&'static str, &'static [u8]>,
        tip: BlockHash,
    ) -> Result<CachedList, StorageError> {
        if let Ok(cache) = self.list.lock()
            && let Some(cached) = cache.as_ref().filter(|c| c.tip == tip)
        {
            return Ok(cached.clone());
        }
        let list = read_list(meta, self)?;
        let cached = CachedList {
            tip,
            hash: list.hash(),
            list: Arc::new(list),
        };
        if let Ok(mut cache) = self.list.lock() {
            *cache = Some(cached.clone());
        }
        Ok(cached)
    }

    /// The UTXO-set summary at the tip, from the incrementally kept values.
    pub fn utxo_set_info(&self) -> Result<UtxoSetInfo, StorageError> {
        let read = self.begin_read()?;
        let meta = read.open_table(META).map_err(|e| self.err(e))?;
        let state = WriteState::read(&meta, self)?;
        Ok(UtxoSetInfo {
            height: state.tip.height,
            best_block: state.tip.hash,
            count: state.supply.utxo_count,
            total: Amount::from_units(state.supply.utxo_total),
            commitment: state.lthash.digest(),
            allocated: Amount::from_units(state.supply.allocated),
            minted: Amount::from_units(state.supply.minted),
        })
    }

    /// The UTXO-set summary recomputed by reading every unspent output: slow, for audits and
    /// tests. Equals [`Store::utxo_set_info`] unless the store is damaged.
    pub fn recompute_utxo_set_info(&self) -> Result<UtxoSetInfo, StorageError> {
        let kept = self.utxo_set_info()?;
        let read = self.begin_read()?;
        let table = read.open_table(UTXOS).map_err(|e| self.err(e))?;
        let mut lthash = LtHash::default();
        let mut count = 0u64;
        let mut total = Amount::ZERO;
        for entry in table.iter().map_err(|e| self.err(e))? {
            let (key, value) = entry.map_err(|e| self.err(e))?;
            let (key, value) = (key.value(), value.value());
            let utxo = utxo_from_value(value).map_err(|e| self.corrupt("utxo", e))?;
            lthash.insert(&commitment_element(key, value));
            count += 1;
            total = total
                .checked_add(utxo.output.amount)
                .ok_or_else(|| StorageError::Corrupted {
                    path: self.path.clone(),
                    detail: "utxo total overflows".to_owned(),
                })?;
        }
        Ok(UtxoSetInfo {
            count,
            total,
            commitment: lthash.digest(),
            ..kept
        })
    }

    /// Every unspent output, in outpoint order: for audits and tests.
    pub fn all_utxos(&self) -> Result<Vec<(OutPoint, Utxo)>, StorageError> {
        let read = self.begin_read()?;
        let table = read.open_table(UTXOS).map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(usize::try_from(table.len().map_err(|e| self.err(e))?).unwrap_or(0));
        for entry in table.iter().map_err(|e| self.err(e))? {
            let (key, value) = entry.map_err(|e| self.err(e))?;
            let utxo = utxo_from_value(value.value()).map_err(|e| self.corrupt("utxo", e))?;
            out.push((outpoint_from_key(key.value()), utxo));
        }
        Ok(out)
    }

    /// Applies a block that was validated against the current tip, with its commit
    /// certificate, in **one atomic, durable write transaction**: the UTXO changes, undo data,
    /// block, indexes, commitment and tip become visible together after an fsync, or not at
    /// all. A crash at any moment leaves the previous or the new state.
    ///
    /// The store re-checks only what it needs to stay consistent (the block extends the tip,
    /// every input exists); it does not verify signatures or rewards.
    pub fn apply_block(
        &self,
        block: &Block,
        certificate: Option<&CommitCertificate>,
    ) -> Result<AppliedBlock, StorageError> {
        let tip = self.tip()?;
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
        let write = self.db.begin_write().map_err(|e| self.err(e))?;
        let mut state = WriteState::load(&write, self)?;
        let minted_before = state.supply.minted;
        let (spent, created) = self.write_block(&write, block, certificate, &mut state, false)?;
        state.save(&write, self)?;
        // Dropping `write` without commit aborts it: an error above leaves nothing behind.
        write.commit().map_err(|e| self.err(e))?;
        Ok(AppliedBlock {
            tip: ChainTip::of(&block.header),
            spent,
            created,
            minted: Amount::from_units(state.supply.minted.saturating_sub(minted_before)),
        })
    }

    fn write_block(
        &self,
        write: &redb::WriteTransaction,
        block: &Block,
        certificate: Option<&CommitCertificate>,
        state: &mut WriteState,
        is_genesis: bool,
    ) -> Result<(usize, usize), StorageError> {
        let height = block.header.height;
        let hash = block.hash();
        let inconsistent = |detail: String| StorageError::Inconsistent { height, detail };
        if !is_genesis {
            self.advance_list(write, block)?;
        }
        let mut utxos = write.open_table(UTXOS).map_err(|e| self.err(e))?;
        let mut tx_locations = write.open_table(TX_LOCATIONS).map_err(|e| self.err(e))?;
        let mut undo = Vec::new();
        let mut undo_count = 0u64;
        let mut spent_total = 0u64;
        let mut regular_out = 0u64;
        let mut reward_out = 0u64;
        let mut created = 0usize;
        for (position, tx) in block.transactions.iter().enumerate() {
            let txid = tx.txid();
            for input in &tx.inputs {
                let key = outpoint_key(&input.prevout);
                let value = utxos
                    .remove(&key)
                    .map_err(|e| self.err(e))?
                    .map(|v| *v.value())
                    .ok_or_else(|| inconsistent(format!("input {} is missing or spent", input.prevout)))?;
                let utxo = utxo_from_value(&value).map_err(|e| self.corrupt("utxo", e))?;
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
                if utxos.insert(&key, &value).map_err(|e| self.err(e))?.is_some() {
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
            let position = u32::try_from(position).map_err(|_| inconsistent("too many transactions".to_owned()))?;
            tx_locations
                .insert(&txid.0.0, (height, position))
                .map_err(|e| self.err(e))?;
        }
        let minted = if is_genesis {
            0
        } else {
            // The reward transaction pays the minted coins plus the fees; fees are what
            // regular transactions spent and did not pay out.
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

        let mut undo_record = Vec::with_capacity(undo.len() + 17);
        undo_record.extend_from_slice(&minted.to_le_bytes());
        write_compact_size(&mut undo_record, undo_count);
        undo_record.extend_from_slice(&undo);
        write
            .open_table(UNDO)
            .map_err(|e| self.err(e))?
            .insert(height, undo_record.as_slice())
            .map_err(|e| self.err(e))?;
        write
            .open_table(BLOCKS)
            .map_err(|e| self.err(e))?
            .insert(height, block.to_bytes().as_slice())
            .map_err(|e| self.err(e))?;
        write
            .open_table(BLOCK_HEIGHTS)
            .map_err(|e| self.err(e))?
            .insert(&hash.0.0, height)
            .map_err(|e| self.err(e))?;
        if let Some(certificate) = certificate {
            write
                .open_table(CERTIFICATES)
                .map_err(|e| self.err(e))?
                .insert(height, certificate.to_bytes().as_slice())
                .map_err(|e| self.err(e))?;
        }
        state.tip = ChainTip::of(&block.header);
        Ok((undo_count as usize, created))
    }

    /// Moves the stored masternode list past `block`, keeping the list it replaces for
    /// [`LIST_UNDO_DEPTH`] blocks.
    fn advance_list(&self, write: &redb::WriteTransaction, block: &Block) -> Result<(), StorageError> {
        let height = block.header.height;
        let mut meta = write.open_table(META).map_err(|e| self.err(e))?;
        let before = meta
            .get(KEY_MASTERNODES)
            .map_err(|e| self.err(e))?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| self.missing("masternode list"))?;
        let mut list = MasternodeList::from_bytes(&before).map_err(|e| self.corrupt("masternode list", e))?;
        list.apply_block(block, &self.params);
        meta.insert(KEY_MASTERNODES, list.to_bytes().as_slice())
            .map_err(|e| self.err(e))?;
        let mut undo = write.open_table(LIST_UNDO).map_err(|e| self.err(e))?;
        undo.insert(height, before.as_slice()).map_err(|e| self.err(e))?;
        let keep_from = height.saturating_sub(LIST_UNDO_DEPTH);
        undo.retain_in(0..keep_from, |_, _| false).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Undoes the tip block with its undo data, in one atomic write, and returns it.
    ///
    /// Finalized blocks are never reverted by consensus; this exists for operators' repair
    /// tools and to prove that undo data restores the previous state exactly.
    pub fn revert_tip(&self) -> Result<Block, StorageError> {
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
            write
                .open_table(META)
                .map_err(|e| self.err(e))?
                .insert(KEY_MASTERNODES, list_before.as_slice())
                .map_err(|e| self.err(e))?;
            let mut utxos = write.open_table(UTXOS).map_err(|e| self.err(e))?;
            let mut tx_locations = write.open_table(TX_LOCATIONS).map_err(|e| self.err(e))?;
            for tx in block.transactions.iter().rev() {
                let txid = tx.txid();
                for index in 0..tx.outputs.len() {
                    let key = outpoint_key(&OutPoint {
                        txid,
                        index: index as u32,
                    });
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
            let mut reader = Reader::new(&record);
            let undo_err = |e| self.corrupt(&format!("undo data of block {}", tip.height), e);
            let minted = reader.read_u64().map_err(undo_err)?;
            let count = reader
                .read_count("undo entries", usize::MAX, 36 + UTXO_VALUE_LEN)
                .map_err(undo_err)?;
            for _ in 0..count {
                let key: [u8; 36] = reader.read_array().map_err(undo_err)?;
                let value: [u8; UTXO_VALUE_LEN] = reader.read_array().map_err(undo_err)?;
                let utxo = utxo_from_value(&value).map_err(|e| self.corrupt("undo utxo", e))?;
                utxos.insert(&key, &value).map_err(|e| self.err(e))?;
                state.lthash.insert(&commitment_element(&key, &value));
                state.supply.utxo_count += 1;
                state.supply.utxo_total = state.supply.utxo_total.saturating_add(utxo.output.amount.units());
            }
            reader.finish().map_err(undo_err)?;
            state.supply.minted = state.supply.minted.saturating_sub(minted);
            write
                .open_table(BLOCKS)
                .map_err(|e| self.err(e))?
                .remove(tip.height)
                .map_err(|e| self.err(e))?;
            write
                .open_table(CERTIFICATES)
                .map_err(|e| self.err(e))?
                .remove(tip.height)
                .map_err(|e| self.err(e))?;
            write
                .open_table(BLOCK_HEIGHTS)
                .map_err(|e| self.err(e))?
                .remove(&tip.hash.0.0)
                .map_err(|e| self.err(e))?;
        }
        state.tip = ChainTip::of(&parent.header);
        state.save(&write, self)?;
        write.commit().map_err(|e| self.err(e))?;
        Ok(block)
    }
}

/// The tip, supply and commitment as one write transaction changes them.
struct WriteState {
    tip: ChainTip,
    supply: Supply,
    lthash: LtHash,
}

impl WriteState {
    fn load_empty() -> WriteState {
        WriteState {
            tip: ChainTip {
                height: 0,
                hash: BlockHash::default(),
                timestamp_ms: 0,
            },
            supply: Supply::default(),
            lthash: LtHash::default(),
        }
    }

    fn load(write: &redb::WriteTransaction, store: &Store) -> Result<WriteState, StorageError> {
        let meta = write.open_table(META).map_err(|e| store.err(e))?;
        WriteState::read(&meta, store)
    }

    fn read(meta: &impl ReadableTable<&'static str, &'static [u8]>, store: &Store) -> Result<WriteState, StorageError> {
        let get = |key: &str| -> Result<Vec<u8>, StorageError> {
            meta.get(key)
                .map_err(|e| store.err(e))?
                .map(|v| v.value().to_vec())
                .ok_or_else(|| store.missing(key))
        };
        Ok(WriteState {
            tip: tip_from_bytes(&get(KEY_TIP)?).map_err(|e| store.corrupt("chain tip", e))?,
            supply: Supply::from_bytes(&get(KEY_SUPPLY)?).ok_or_else(|| store.missing("valid supply record"))?,
            lthash: LtHash::from_bytes(&get(KEY_LTHASH)?).ok_or_else(|| store.missing("valid utxo commitment"))?,
        })
    }

    fn save(&self, write: &redb::WriteTransaction, store: &Store) -> Result<(), StorageError> {
        let mut meta = write.open_table(META).map_err(|e| store.err(e))?;
        meta.insert(KEY_TIP, tip_to_bytes(&self.tip).as_slice())
            .map_err(|e| store.err(e))?;
        meta.insert(KEY_SUPPLY, self.supply.to_bytes().as_slice())
            .map_err(|e| store.err(e))?;
        meta.insert(KEY_LTHASH, self.lthash.to_bytes().as_slice())
            .map_err(|e| store.err(e))?;
        Ok(())
    }
}

fn read_list(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    store: &Store,
) -> Result<MasternodeList, StorageError> {
    let bytes = meta
        .get(KEY_MASTERNODES)
        .map_err(|e| store.err(e))?
        .map(|v| v.value().to_vec())
        .ok_or_else(|| store.missing("masternode list"))?;
    MasternodeList::from_bytes(&bytes).map_err(|e| store.corrupt("masternode list", e))
}

/// A read-only view of the chain state at one moment, for validation: the UTXO set and the
/// masternode list of one tip.
pub struct Snapshot {
    utxos: redb::ReadOnlyTable<&'static [u8; 36], &'static [u8; UTXO_VALUE_LEN]>,
    path: PathBuf,
    tip: ChainTip,
    state_hash: Hash256,
    list: Arc<MasternodeList>,
}

impl Snapshot {
    /// The tip this state follows.
    pub fn tip(&self) -> ChainTip {
        self.tip
    }

    /// The state's hash, which the next block's header names.
    pub fn state_hash(&self) -> Hash256 {
        self.state_hash
    }

    /// The masternode list, shared.
    pub fn masternode_list(&self) -> Arc<MasternodeList> {
        Arc::clone(&self.list)
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("path", &self.path).finish()
    }
}

impl UtxoView for Snapshot {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, ViewError> {
        let found = self
            .utxos
            .get(&outpoint_key(outpoint))
            .map_err(|e| ViewError(format!("{}: {e}", self.path.display())))?;
        match found {
            None => Ok(None),
            Some(value) => utxo_from_value(value.value())
                .map(Some)
                .map_err(|e| ViewError(format!("{}: corrupted utxo {outpoint}: {e}", self.path.display()))),
        }
    }

    fn masternodes(&self) -> &MasternodeList {
        &self.list
    }
}
