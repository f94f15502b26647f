//! Reading what the store holds: the tip, blocks by height and hash, commit certificates,
//! confirmed transactions through the txid index, the coins a block spent, and the UTXO set (its kept summary, the
//! summary recomputed, every output).

use redb::TableDefinition;
use timecoin_chain::{ChainTip, Utxo};
use timecoin_primitives::{Amount, Block, BlockHash, CommitCertificate, Decode, Hash256, OutPoint, Transaction, TxId};

use super::Store;
use super::layout::{
    BLOCK_HEIGHTS, BLOCKS, CERTIFICATES, TX_LOCATIONS, UNDO, UndoRecord, WriteState, commitment_element,
    outpoint_from_key, utxo_from_value,
};
use crate::commitment::LtHash;
use crate::error::StorageError;

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

impl Store {
    /// The last applied block.
    pub fn tip(&self) -> Result<ChainTip, StorageError> {
        Ok(self.coins_lock().state.tip)
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

    /// The coins the block at `height` spent, one per input in the block's order (from its
    /// undo record): what its fees are computed from.
    pub fn spent_coins(&self, height: u64) -> Result<Option<Vec<Utxo>>, StorageError> {
        let read = self.begin_read()?;
        let table = read.open_table(UNDO).map_err(|e| self.err(e))?;
        let Some(bytes) = table.get(height).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        let undo =
            UndoRecord::read(bytes.value()).map_err(|e| self.corrupt(&format!("undo data of block {height}"), e))?;
        undo.spent
            .iter()
            .map(|(_, value)| utxo_from_value(value).map_err(|e| self.corrupt("undo utxo", e)))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
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
        Ok(self
            .tx_locations(std::slice::from_ref(txid))?
            .into_iter()
            .next()
            .flatten())
    }

    /// [`Store::tx_location`] of each of `txids`, read in one transaction: the blocks since
    /// the last flush from memory, older ones from the index (the generation is taken
    /// first, so an entry a flush moved meanwhile is found in one or the other). A block
    /// being applied is in the generation a moment before it is the tip; it is not shown
    /// before.
    pub fn tx_locations(&self, txids: &[TxId]) -> Result<Vec<Option<(u64, u32)>>, StorageError> {
        let (generation, tip) = {
            let coins = self.coins_lock();
            (std::sync::Arc::clone(&coins.generation), coins.state.tip.height)
        };
        let read = self.begin_read()?;
        let table = read.open_table(TX_LOCATIONS).map_err(|e| self.err(e))?;
        txids
            .iter()
            .map(
                |txid| match generation.tx_location(&txid.0.0).filter(|(height, _)| *height <= tip) {
                    Some(location) => Ok(Some(location)),
                    None => Ok(table.get(&txid.0.0).map_err(|e| self.err(e))?.map(|v| v.value())),
                },
            )
            .collect()
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

    /// The UTXO-set summary at the tip, from the incrementally kept values.
    pub fn utxo_set_info(&self) -> Result<UtxoSetInfo, StorageError> {
        Ok(self.info_of(&self.coins().state))
    }

    fn info_of(&self, state: &WriteState) -> UtxoSetInfo {
        UtxoSetInfo {
            height: state.tip.height,
            best_block: state.tip.hash,
            count: state.supply.utxo_count,
            total: Amount::from_units(state.supply.utxo_total),
            commitment: state.lthash.digest(),
            allocated: Amount::from_units(state.supply.allocated),
            minted: Amount::from_units(state.supply.minted),
        }
    }

    /// The UTXO-set summary recomputed by reading every unspent output: slow, for audits and
    /// tests. Equals [`Store::utxo_set_info`] unless the store is damaged.
    pub fn recompute_utxo_set_info(&self) -> Result<UtxoSetInfo, StorageError> {
        let (coins, view) = self.coins_view()?;
        let kept = self.info_of(&coins.state);
        let mut lthash = LtHash::default();
        let mut count = 0u64;
        let mut total = Amount::ZERO;
        for (key, value) in view.all().map_err(|e| self.err(e))? {
            let utxo = utxo_from_value(&value).map_err(|e| self.corrupt("utxo", e))?;
            lthash.insert(&commitment_element(&key, &value));
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
        let (_, view) = self.coins_view()?;
        let all = view.all().map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(all.len());
        for (key, value) in all {
            let utxo = utxo_from_value(&value).map_err(|e| self.corrupt("utxo", e))?;
            out.push((outpoint_from_key(&key), utxo));
        }
        Ok(out)
    }
}
