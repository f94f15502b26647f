//! The file's layout: its tables and meta keys, the fixed-width encodings of UTXO keys and
//! values, and the tip, supply and commitment records every write transaction updates.

use redb::{ReadableTable, TableDefinition};
use timecoin_chain::{ChainTip, Utxo};
use timecoin_primitives::encoding::Reader;
use timecoin_primitives::{AddressPayload, Amount, BlockHash, Decode, Encode, Hash256, OutPoint, TxId, TxOutput};

use super::Store;
use crate::commitment::LtHash;
use crate::error::StorageError;

/// The schema this build writes (2: blocks carry their parent's certificate and evidence,
/// and the state holds the masternode list; 3: the UTXO table, supply and commitment may lag
/// the tip, as of [`KEY_COINS_TIP`]; 4: the voting-set changes are recorded). An older store
/// is upgraded when opened.
pub const SCHEMA_VERSION: u32 = 4;
/// The oldest schema this build opens (and upgrades).
pub(super) const OLDEST_SCHEMA: u32 = 2;

pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(super) const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
pub(super) const CERTIFICATES: TableDefinition<u64, &[u8]> = TableDefinition::new("certificates");
// Fixed-width keys and values are borrowed arrays (`&[u8; N]`), which redb stores exactly as
// owned arrays (same type name, same bytes) but compares with one `memcmp` and reads without
// an allocation; owned `[u8; N]` keys compared byte by byte through `u8`'s comparison (7.3%
// of the CPU samples of a 4-node `timed bench` at 10,000 tx/s offered).
pub(super) const BLOCK_HEIGHTS: TableDefinition<&[u8; 32], u64> = TableDefinition::new("block_heights");
pub(super) const TX_LOCATIONS: TableDefinition<&[u8; 32], (u64, u32)> = TableDefinition::new("tx_locations");
pub(super) const UTXOS: TableDefinition<&[u8; 36], &[u8; UTXO_VALUE_LEN]> = TableDefinition::new("utxos");
pub(super) const UNDO: TableDefinition<u64, &[u8]> = TableDefinition::new("undo");
/// What this masternode signed: (height, sequence) → encoded [`timecoin_consensus::WalEntry`].
pub(crate) const WAL: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("consensus_wal");
/// The masternode list before each recent block: height → encoded list.
pub(super) const LIST_UNDO: TableDefinition<u64, &[u8]> = TableDefinition::new("masternode_list_undo");

/// How many recent blocks keep the masternode list they replaced, so that they can be
/// reverted. Finalized blocks are never reverted by consensus; this bounds what repair tools
/// can undo, and keeps the table from growing with the chain.
pub const LIST_UNDO_DEPTH: u64 = 1_000;

pub(super) const UTXO_VALUE_LEN: usize = 8 + 32 + 8 + 1;

pub(super) const KEY_SCHEMA: &str = "schema_version";
pub(super) const KEY_GENESIS: &str = "genesis";
/// The last block applied (written with every block).
pub(super) const KEY_TIP: &str = "tip";
/// The block the UTXO table, the supply and the commitment are as of (written when the
/// in-memory coins are flushed; a schema-2 store, which has none, gets its tip when opened).
pub(super) const KEY_COINS_TIP: &str = "coins_tip";
const KEY_SUPPLY: &str = "supply";
const KEY_LTHASH: &str = "utxo_lthash";
pub(super) const KEY_MASTERNODES: &str = "masternode_list";

pub(super) fn outpoint_key(outpoint: &OutPoint) -> [u8; 36] {
    let mut key = [0u8; 36];
    let (txid, index) = key.split_at_mut(32);
    txid.copy_from_slice(&outpoint.txid.0.0);
    index.copy_from_slice(&outpoint.index.to_le_bytes());
    key
}

pub(super) fn outpoint_from_key(key: &[u8; 36]) -> OutPoint {
    let mut txid = [0u8; 32];
    let mut index = [0u8; 4];
    txid.copy_from_slice(key.get(..32).unwrap_or(&[0; 32]));
    index.copy_from_slice(key.get(32..).unwrap_or(&[0; 4]));
    OutPoint {
        txid: TxId(Hash256(txid)),
        index: u32::from_le_bytes(index),
    }
}

pub(super) fn utxo_value(utxo: &Utxo) -> [u8; UTXO_VALUE_LEN] {
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

pub(super) fn utxo_from_value(value: &[u8; UTXO_VALUE_LEN]) -> Result<Utxo, timecoin_primitives::DecodeError> {
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

/// A block's undo record: the reward it minted, then the coin each of its inputs spent (its
/// outpoint key and stored value), in the block's input order.
pub(super) struct UndoRecord {
    pub(super) minted: u64,
    pub(super) spent: Vec<([u8; 36], [u8; UTXO_VALUE_LEN])>,
}

impl UndoRecord {
    /// Reads a stored record; its length bounds what is allocated.
    pub(super) fn read(bytes: &[u8]) -> Result<UndoRecord, timecoin_primitives::DecodeError> {
        let mut reader = Reader::new(bytes);
        let minted = reader.read_u64()?;
        let count = reader.read_count("undo entries", usize::MAX, 36 + UTXO_VALUE_LEN)?;
        let mut spent = Vec::with_capacity(count);
        for _ in 0..count {
            spent.push((reader.read_array()?, reader.read_array()?));
        }
        reader.finish()?;
        Ok(UndoRecord { minted, spent })
    }
}

/// The bytes one UTXO contributes to the commitment: its key and its value.
pub(super) fn commitment_element(key: &[u8; 36], value: &[u8; UTXO_VALUE_LEN]) -> [u8; 36 + UTXO_VALUE_LEN] {
    let mut element = [0u8; 36 + UTXO_VALUE_LEN];
    let (k, v) = element.split_at_mut(36);
    k.copy_from_slice(key);
    v.copy_from_slice(value);
    element
}

/// Coin supply bookkeeping, stored beside the tip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Supply {
    pub(super) utxo_count: u64,
    pub(super) utxo_total: u64,
    pub(super) allocated: u64,
    pub(super) minted: u64,
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

pub(super) fn tip_from_bytes(bytes: &[u8]) -> Result<ChainTip, timecoin_primitives::DecodeError> {
    let mut reader = Reader::new(bytes);
    let tip = ChainTip {
        height: reader.read_u64()?,
        hash: BlockHash::decode_from(&mut reader)?,
        timestamp_ms: reader.read_u64()?,
    };
    reader.finish()?;
    Ok(tip)
}

/// The tip, supply and commitment of one UTXO set.
#[derive(Clone)]
pub(super) struct WriteState {
    pub(super) tip: ChainTip,
    pub(super) supply: Supply,
    pub(super) lthash: LtHash,
}

impl WriteState {
    pub(super) fn load_empty() -> WriteState {
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

    pub(super) fn load(write: &redb::WriteTransaction, store: &Store) -> Result<WriteState, StorageError> {
        let meta = write.open_table(META).map_err(|e| store.err(e))?;
        WriteState::read(&meta, store)
    }

    pub(super) fn read(
        meta: &impl ReadableTable<&'static str, &'static [u8]>,
        store: &Store,
    ) -> Result<WriteState, StorageError> {
        let get = |key: &str| -> Result<Vec<u8>, StorageError> {
            meta.get(key)
                .map_err(|e| store.err(e))?
                .map(|v| v.value().to_vec())
                .ok_or_else(|| store.missing(key))
        };
        Ok(WriteState {
            tip: tip_from_bytes(&get(KEY_COINS_TIP)?).map_err(|e| store.corrupt("coins tip", e))?,
            supply: Supply::from_bytes(&get(KEY_SUPPLY)?).ok_or_else(|| store.missing("valid supply record"))?,
            lthash: LtHash::from_bytes(&get(KEY_LTHASH)?).ok_or_else(|| store.missing("valid utxo commitment"))?,
        })
    }

    /// Writes the state as the table's (the coins tip, supply, commitment) and its tip as the
    /// chain's.
    pub(super) fn save(&self, write: &redb::WriteTransaction, store: &Store) -> Result<(), StorageError> {
        save_tip(write, store, &self.tip)?;
        let mut meta = write.open_table(META).map_err(|e| store.err(e))?;
        meta.insert(KEY_COINS_TIP, tip_to_bytes(&self.tip).as_slice())
            .map_err(|e| store.err(e))?;
        meta.insert(KEY_SUPPLY, self.supply.to_bytes().as_slice())
            .map_err(|e| store.err(e))?;
        meta.insert(KEY_LTHASH, self.lthash.to_bytes().as_slice())
            .map_err(|e| store.err(e))?;
        Ok(())
    }
}

/// Writes `tip` as the chain's tip.
pub(super) fn save_tip(write: &redb::WriteTransaction, store: &Store, tip: &ChainTip) -> Result<(), StorageError> {
    write
        .open_table(META)
        .map_err(|e| store.err(e))?
        .insert(KEY_TIP, tip_to_bytes(tip).as_slice())
        .map_err(|e| store.err(e))?;
    Ok(())
}
