//! The address index (Dash Core's `-addressindex`), off unless [`Store::enable_address_index`]
//! is called: each address's balance changes (`address_deltas`) and unspent outputs
//! (`address_utxos`), written in the same write transaction as the block they come from, so
//! that the index is exactly at the stored tip after any crash.
//!
//! A block's rows come from the block and its undo record (which holds every coin its inputs
//! spent, in input order). Turned on later, or again after being off, the index catches up
//! from the height it reached ([`KEY_ADDRESS_INDEX`]) over the stored blocks.

use redb::{ReadableTable, TableDefinition};
use timecoin_chain::created_outputs;
use timecoin_primitives::{AddressPayload, Amount, Block, Hash256, OutPoint, TxId};

use super::Store;
use super::layout::{META, UNDO, UndoRecord, outpoint_from_key, utxo_from_value};
use crate::error::StorageError;

/// Key: address, height (big-endian), txid, index (big-endian), 0 received / 1 spent.
/// Value: amount (little-endian), the transaction's position in its block.
const ADDRESS_DELTAS: TableDefinition<&[u8; DELTA_KEY], &[u8; 12]> = TableDefinition::new("address_deltas");
/// Key: address, txid, output index (big-endian). Value: amount, height (little-endian).
const ADDRESS_UTXOS: TableDefinition<&[u8; UTXO_KEY], &[u8; 16]> = TableDefinition::new("address_utxos");
/// The last block the index holds (absent: never built).
const KEY_ADDRESS_INDEX: &str = "address_index_height";

const DELTA_KEY: usize = 32 + 8 + 32 + 4 + 1;
const UTXO_KEY: usize = 32 + 32 + 4;
/// Blocks indexed in one write transaction while catching up.
const CATCH_UP_BATCH: u64 = 200;

/// One change of an address's balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AddressDelta {
    /// Whose balance.
    pub address: AddressPayload,
    /// The block's height.
    pub height: u64,
    /// The transaction.
    pub txid: TxId,
    /// The output's index (received) or the input's (spent).
    pub index: u32,
    /// Whether the address spent (else it received).
    pub spent: bool,
    /// How much.
    pub amount: Amount,
    /// The transaction's position in its block.
    pub block_index: u32,
}

/// An unspent output, by address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AddressUtxo {
    /// Its address.
    pub address: AddressPayload,
    /// Where it is.
    pub outpoint: OutPoint,
    /// Its value.
    pub amount: Amount,
    /// The height of its block.
    pub height: u64,
}

/// What a block does to the index.
struct BlockRows {
    deltas: Vec<AddressDelta>,
    created: Vec<AddressUtxo>,
    /// Coins spent: (address, outpoint), with their value and height for a revert.
    spent: Vec<AddressUtxo>,
}

fn delta_key(address: &AddressPayload, height: u64, txid: &TxId, index: u32, spent: bool) -> [u8; DELTA_KEY] {
    let mut key = [0u8; DELTA_KEY];
    let (a, rest) = key.split_at_mut(32);
    let (h, rest) = rest.split_at_mut(8);
    let (t, rest) = rest.split_at_mut(32);
    let (i, s) = rest.split_at_mut(4);
    a.copy_from_slice(&address.0);
    h.copy_from_slice(&height.to_be_bytes());
    t.copy_from_slice(&txid.0.0);
    i.copy_from_slice(&index.to_be_bytes());
    s.copy_from_slice(&[u8::from(spent)]);
    key
}

fn utxo_key(address: &AddressPayload, outpoint: &OutPoint) -> [u8; UTXO_KEY] {
    let mut key = [0u8; UTXO_KEY];
    let (a, rest) = key.split_at_mut(32);
    let (t, i) = rest.split_at_mut(32);
    a.copy_from_slice(&address.0);
    t.copy_from_slice(&outpoint.txid.0.0);
    i.copy_from_slice(&outpoint.index.to_be_bytes());
    key
}

/// `N` bytes of `bytes` from `at` (zeros where it is short: keys are fixed-width).
fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(slice) = bytes.get(at..at + N) {
        out.copy_from_slice(slice);
    }
    out
}

/// Two little-endian numbers side by side: a row's value.
fn pair<const N: usize>(first: u64, second: &[u8]) -> [u8; N] {
    let mut value = [0u8; N];
    let (a, b) = value.split_at_mut(8);
    a.copy_from_slice(&first.to_le_bytes());
    if b.len() == second.len() {
        b.copy_from_slice(second);
    }
    value
}

fn delta_from(key: &[u8; DELTA_KEY], value: &[u8; 12]) -> AddressDelta {
    AddressDelta {
        address: AddressPayload(array(key, 0)),
        height: u64::from_be_bytes(array(key, 32)),
        txid: TxId(Hash256(array(key, 40))),
        index: u32::from_be_bytes(array(key, 72)),
        spent: key.get(76).is_some_and(|b| *b == 1),
        amount: Amount::from_units(u64::from_le_bytes(array(value, 0))),
        block_index: u32::from_le_bytes(array(value, 8)),
    }
}

fn utxo_from(key: &[u8; UTXO_KEY], value: &[u8; 16]) -> AddressUtxo {
    AddressUtxo {
        address: AddressPayload(array(key, 0)),
        outpoint: OutPoint {
            txid: TxId(Hash256(array(key, 32))),
            index: u32::from_be_bytes(array(key, 64)),
        },
        amount: Amount::from_units(u64::from_le_bytes(array(value, 0))),
        height: u64::from_le_bytes(array(value, 8)),
    }
}

impl Store {
    /// A block's rows, from the block and its undo record.
    fn block_rows(&self, block: &Block, undo_record: &[u8]) -> Result<BlockRows, StorageError> {
        let height = block.header.height;
        let undo =
            UndoRecord::read(undo_record).map_err(|e| self.corrupt(&format!("undo data of block {height}"), e))?;
        let mut spent_coins = undo.spent.iter();
        let mut rows = BlockRows {
            deltas: Vec::new(),
            created: Vec::new(),
            spent: Vec::with_capacity(undo.spent.len()),
        };
        for (position, tx) in block.transactions.iter().enumerate() {
            let txid = tx.txid();
            let block_index = u32::try_from(position).unwrap_or(u32::MAX);
            for index in 0..tx.inputs.len() {
                let (key, value) = spent_coins
                    .next()
                    .ok_or_else(|| self.missing(&format!("undo data of block {height}: an input's coin")))?;
                let coin = utxo_from_value(value).map_err(|e| self.corrupt("undo utxo", e))?;
                rows.deltas.push(AddressDelta {
                    address: coin.output.address,
                    height,
                    txid,
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    spent: true,
                    amount: coin.output.amount,
                    block_index,
                });
                rows.spent.push(AddressUtxo {
                    address: coin.output.address,
                    outpoint: outpoint_from_key(key),
                    amount: coin.output.amount,
                    height: coin.height,
                });
            }
            for (outpoint, coin) in created_outputs(tx, txid, height) {
                rows.deltas.push(AddressDelta {
                    address: coin.output.address,
                    height,
                    txid,
                    index: outpoint.index,
                    spent: false,
                    amount: coin.output.amount,
                    block_index,
                });
                rows.created.push(AddressUtxo {
                    address: coin.output.address,
                    outpoint,
                    amount: coin.output.amount,
                    height,
                });
            }
        }
        if spent_coins.next().is_some() {
            return Err(StorageError::Corrupted {
                path: self.path.clone(),
                detail: format!("undo data of block {height} holds more coins than the block has inputs"),
            });
        }
        Ok(rows)
    }

    /// Writes `block`'s rows into `write` and moves the index to its height. A coin created
    /// and spent within the block is inserted, then removed.
    pub(super) fn index_block(
        &self,
        write: &redb::WriteTransaction,
        block: &Block,
        undo_record: &[u8],
    ) -> Result<(), StorageError> {
        let rows = self.block_rows(block, undo_record)?;
        let mut deltas = write.open_table(ADDRESS_DELTAS).map_err(|e| self.err(e))?;
        for d in &rows.deltas {
            let value: [u8; 12] = pair(d.amount.units(), &d.block_index.to_le_bytes());
            deltas
                .insert(&delta_key(&d.address, d.height, &d.txid, d.index, d.spent), &value)
                .map_err(|e| self.err(e))?;
        }
        let mut utxos = write.open_table(ADDRESS_UTXOS).map_err(|e| self.err(e))?;
        // In block order: created outputs of a transaction come after its inputs, and a later
        // transaction may spend them; inserting every creation first, then removing every
        // spend, gives the same end state.
        for u in &rows.created {
            let value: [u8; 16] = pair(u.amount.units(), &u.height.to_le_bytes());
            utxos
                .insert(&utxo_key(&u.address, &u.outpoint), &value)
                .map_err(|e| self.err(e))?;
        }
        for u in &rows.spent {
            utxos
                .remove(&utxo_key(&u.address, &u.outpoint))
                .map_err(|e| self.err(e))?;
        }
        self.set_index_height(write, Some(block.header.height))
    }

    /// Removes `block`'s rows (the tip's, being reverted) and moves the index below it.
    pub(super) fn unindex_block(
        &self,
        write: &redb::WriteTransaction,
        block: &Block,
        undo_record: &[u8],
    ) -> Result<(), StorageError> {
        let rows = self.block_rows(block, undo_record)?;
        let mut deltas = write.open_table(ADDRESS_DELTAS).map_err(|e| self.err(e))?;
        for d in &rows.deltas {
            deltas
                .remove(&delta_key(&d.address, d.height, &d.txid, d.index, d.spent))
                .map_err(|e| self.err(e))?;
        }
        let mut utxos = write.open_table(ADDRESS_UTXOS).map_err(|e| self.err(e))?;
        for u in &rows.created {
            utxos
                .remove(&utxo_key(&u.address, &u.outpoint))
                .map_err(|e| self.err(e))?;
        }
        // Coins created in this block and spent in it are gone either way.
        let created: std::collections::HashSet<OutPoint> = rows.created.iter().map(|c| c.outpoint).collect();
        for u in rows.spent.iter().filter(|u| !created.contains(&u.outpoint)) {
            let value: [u8; 16] = pair(u.amount.units(), &u.height.to_le_bytes());
            utxos
                .insert(&utxo_key(&u.address, &u.outpoint), &value)
                .map_err(|e| self.err(e))?;
        }
        self.set_index_height(write, block.header.height.checked_sub(1))
    }

    fn set_index_height(&self, write: &redb::WriteTransaction, height: Option<u64>) -> Result<(), StorageError> {
        let mut meta = write.open_table(META).map_err(|e| self.err(e))?;
        match height {
            Some(height) => meta.insert(KEY_ADDRESS_INDEX, height.to_le_bytes().as_slice()),
            None => meta.remove(KEY_ADDRESS_INDEX),
        }
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The last block the address index holds, `None` if it was never built.
    pub fn address_index_height(&self) -> Result<Option<u64>, StorageError> {
        let read = self.begin_read()?;
        let meta = read.open_table(META).map_err(|e| self.err(e))?;
        let value = meta.get(KEY_ADDRESS_INDEX).map_err(|e| self.err(e))?;
        Ok(value.map(|v| u64::from_le_bytes(array(v.value(), 0))))
    }

    /// Turns the address index on: from now on every applied block is indexed with it, and
    /// the blocks stored since the index was last on (all, the first time) are indexed now,
    /// [`CATCH_UP_BATCH`] a write. Returns how many blocks were caught up. Blocking.
    pub fn enable_address_index(&self, progress: impl Fn(u64, u64)) -> Result<u64, StorageError> {
        let _applying = self
            .apply_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tip = self.tip()?.height;
        let mut next = self.address_index_height()?.map_or(0, |h| h.saturating_add(1));
        let pruned_below = self.prune_state()?.pruned_below;
        if pruned_below > next.max(1) {
            return Err(StorageError::Refused(format!(
                "the address index needs every block, and blocks below {pruned_below} were pruned; resync without pruning"
            )));
        }
        let from = next;
        while next <= tip {
            let last = next.saturating_add(CATCH_UP_BATCH - 1).min(tip);
            let write = self.db.begin_write().map_err(|e| self.err(e))?;
            for height in next..=last {
                let block = self
                    .block_by_height(height)?
                    .ok_or_else(|| self.missing(&format!("block {height} (to index its addresses)")))?;
                let undo = {
                    let table = write.open_table(UNDO).map_err(|e| self.err(e))?;
                    let record = table.get(height).map_err(|e| self.err(e))?;
                    record
                        .map(|v| v.value().to_vec())
                        .ok_or_else(|| self.missing(&format!("undo data of block {height}")))?
                };
                self.index_block(&write, &block, &undo)?;
            }
            write.commit().map_err(|e| self.err(e))?;
            progress(last, tip);
            next = last.saturating_add(1);
        }
        self.address_index.store(true, std::sync::atomic::Ordering::Release);
        Ok(tip.saturating_add(1).saturating_sub(from))
    }

    /// Whether blocks are being indexed by address.
    pub fn address_index_enabled(&self) -> bool {
        self.address_index.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The balance changes of `address` in blocks `from..=to`, oldest first, and the height
    /// the index is at; an error when the index is off.
    pub fn address_deltas(
        &self,
        address: &AddressPayload,
        from: u64,
        to: u64,
    ) -> Result<(Vec<AddressDelta>, u64), StorageError> {
        let (read, height) = self.index_read()?;
        let table = read.open_table(ADDRESS_DELTAS).map_err(|e| self.err(e))?;
        let start = delta_key(address, from, &TxId(Hash256([0; 32])), 0, false);
        let end = delta_key(address, to, &TxId(Hash256([0xff; 32])), u32::MAX, true);
        let mut deltas = Vec::new();
        for entry in table
            .range::<&[u8; DELTA_KEY]>(&start..=&end)
            .map_err(|e| self.err(e))?
        {
            let (key, value) = entry.map_err(|e| self.err(e))?;
            deltas.push(delta_from(key.value(), value.value()));
        }
        Ok((deltas, height))
    }

    /// The unspent outputs of `address`, and the height the index is at; an error when the
    /// index is off.
    pub fn address_utxos(&self, address: &AddressPayload) -> Result<(Vec<AddressUtxo>, u64), StorageError> {
        let (read, height) = self.index_read()?;
        let table = read.open_table(ADDRESS_UTXOS).map_err(|e| self.err(e))?;
        let start = [address.0.as_slice(), &[0u8; 36]].concat();
        let end = [address.0.as_slice(), &[0xffu8; 36]].concat();
        let (start, end): ([u8; UTXO_KEY], [u8; UTXO_KEY]) = (array(&start, 0), array(&end, 0));
        let mut utxos = Vec::new();
        for entry in table.range::<&[u8; UTXO_KEY]>(&start..=&end).map_err(|e| self.err(e))? {
            let (key, value) = entry.map_err(|e| self.err(e))?;
            utxos.push(utxo_from(key.value(), value.value()));
        }
        Ok((utxos, height))
    }

    /// A read transaction of an enabled index, and its height.
    fn index_read(&self) -> Result<(redb::ReadTransaction, u64), StorageError> {
        if !self.address_index_enabled() {
            return Err(StorageError::Refused(
                "the address index is off ([index] address = true turns it on)".to_owned(),
            ));
        }
        let read = self.begin_read()?;
        let height = {
            let meta = read.open_table(META).map_err(|e| self.err(e))?;
            let value = meta.get(KEY_ADDRESS_INDEX).map_err(|e| self.err(e))?;
            value.map(|v| u64::from_le_bytes(array(v.value(), 0)))
        };
        let height = height.ok_or_else(|| self.missing("the address index's height"))?;
        Ok((read, height))
    }
}
