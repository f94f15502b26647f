//! Chain-state files (`dumptxoutset`): the UTXO set and masternode list at one block, written
//! from a store, and a new store made from one, so that a node joins without replaying the
//! chain (Bitcoin Core's assumeutxo, CometBFT's state sync).
//!
//! The file: `TIMESNAP`, a format byte, the genesis hash, the tip block and its certificate,
//! the masternode list, the coins minted so far, the UTXO count, then each coin as its
//! fixed-width key and value (sorted by key, as the table holds them), and last a trailer the
//! caller adds (the node appends the finality proof of the next block, whose header names
//! the state's hash). Variable parts carry their length.
//!
//! The store checks the file's structure and computes the state's hash as it loads; whether
//! that hash is the one a final header names is the caller's check (`verify`), run before
//! anything is committed: a file that fails it leaves no store behind.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable};
use timecoin_chain::{ChainTip, Genesis, MasternodeList};
use timecoin_primitives::{Block, BlockHash, CommitCertificate, Decode, Encode, Hash256, chain_state_hash};

use super::Store;
use super::layout::{
    BLOCK_HEIGHTS, BLOCKS, CERTIFICATES, KEY_MASTERNODES, KEY_TIP, META, TX_LOCATIONS, UTXO_VALUE_LEN, UTXOS,
    WriteState, commitment_element, tip_from_bytes, utxo_from_value,
};
use super::prune::KEY_PRUNED_BELOW;
use crate::error::StorageError;

const MAGIC: &[u8; 8] = b"TIMESNAP";
const FORMAT: u8 = 1;
/// The largest variable part a file may hold (a block, a certificate, the list, a trailer).
const MAX_PART: u64 = 256 * 1024 * 1024;

/// What a chain-state file holds, as dumped or loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateFileInfo {
    /// The block the state follows.
    pub tip: ChainTip,
    /// Unspent outputs.
    pub coins: u64,
    /// The UTXO-set commitment.
    pub commitment: Hash256,
    /// The state's hash (commitment and masternode list), which the next header names.
    pub state_hash: Hash256,
}

/// What a loaded file's caller checks before the store is kept.
#[derive(Debug)]
pub struct LoadedState<'a> {
    /// The tip block.
    pub block: &'a Block,
    /// Its certificate.
    pub certificate: &'a CommitCertificate,
    /// The masternode list after it.
    pub list: &'a MasternodeList,
    /// The hash of the loaded UTXO set and list.
    pub state_hash: Hash256,
    /// The trailer after the coins.
    pub trailer: &'a [u8],
}

fn file_error(what: &str, error: impl std::fmt::Display) -> StorageError {
    StorageError::StateFile(format!("{what}: {error}"))
}

fn write_part(out: &mut impl Write, bytes: &[u8]) -> Result<(), StorageError> {
    out.write_all(&(bytes.len() as u64).to_le_bytes())
        .and_then(|()| out.write_all(bytes))
        .map_err(|e| file_error("writing", e))
}

fn read_exact<const N: usize>(input: &mut impl Read, what: &str) -> Result<[u8; N], StorageError> {
    let mut bytes = [0u8; N];
    input.read_exact(&mut bytes).map_err(|e| file_error(what, e))?;
    Ok(bytes)
}

fn read_u64(input: &mut impl Read, what: &str) -> Result<u64, StorageError> {
    read_exact::<8>(input, what).map(u64::from_le_bytes)
}

/// A length-prefixed part, at most [`MAX_PART`] bytes, read as it arrives (the length is not
/// trusted for an allocation).
fn read_part(input: &mut impl Read, what: &str) -> Result<Vec<u8>, StorageError> {
    let len = read_u64(input, what)?;
    if len > MAX_PART {
        return Err(file_error(
            what,
            format!("{len} bytes, above the {MAX_PART} a part may hold"),
        ));
    }
    let mut bytes = Vec::new();
    input
        .take(len)
        .read_to_end(&mut bytes)
        .map_err(|e| file_error(what, e))?;
    if bytes.len() as u64 != len {
        return Err(file_error(what, "the file ends early"));
    }
    Ok(bytes)
}

fn decode<T: Decode>(bytes: &[u8], what: &str) -> Result<T, StorageError> {
    T::from_bytes(bytes).map_err(|e| file_error(what, e))
}

impl Store {
    /// Writes the chain state at the tip to `out` (all but the trailer), consistent with
    /// one tip while blocks go on being applied.
    pub fn dump_chain_state(&self, out: &mut impl Write) -> Result<StateFileInfo, StorageError> {
        let read = {
            let _applying = self
                .apply_lock
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // The table then holds the tip's whole set; this read sees it as of now.
            self.flush_coins()?;
            self.db.begin_read().map_err(|e| self.err(e))?
        };
        let meta = read.open_table(META).map_err(|e| self.err(e))?;
        let get = |key: &str| -> Result<Vec<u8>, StorageError> {
            meta.get(key)
                .map_err(|e| self.err(e))?
                .map(|v| v.value().to_vec())
                .ok_or_else(|| self.missing(key))
        };
        let tip = tip_from_bytes(&get(KEY_TIP)?).map_err(|e| self.corrupt("chain tip", e))?;
        if tip.height == 0 {
            return Err(StorageError::Refused(
                "the chain has no block past the genesis to dump at".to_owned(),
            ));
        }
        let state = WriteState::read(&meta, self)?;
        let list = get(KEY_MASTERNODES)?;
        let list_hash = MasternodeList::from_bytes(&list)
            .map_err(|e| self.corrupt("masternode list", e))?
            .hash();
        let block = read
            .open_table(BLOCKS)
            .map_err(|e| self.err(e))?
            .get(tip.height)
            .map_err(|e| self.err(e))?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| self.missing(&format!("block {}", tip.height)))?;
        let certificate = read
            .open_table(CERTIFICATES)
            .map_err(|e| self.err(e))?
            .get(tip.height)
            .map_err(|e| self.err(e))?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| self.missing(&format!("certificate of block {}", tip.height)))?;
        let network = self.stored_genesis()?;
        out.write_all(MAGIC)
            .and_then(|()| out.write_all(&[FORMAT]))
            .and_then(|()| out.write_all(&network.0.0))
            .map_err(|e| file_error("writing", e))?;
        write_part(out, &block)?;
        write_part(out, &certificate)?;
        write_part(out, &list)?;
        out.write_all(&state.supply.minted.to_le_bytes())
            .and_then(|()| out.write_all(&state.supply.utxo_count.to_le_bytes()))
            .map_err(|e| file_error("writing", e))?;
        let mut written = 0u64;
        for entry in read
            .open_table(UTXOS)
            .map_err(|e| self.err(e))?
            .iter()
            .map_err(|e| self.err(e))?
        {
            let (key, value) = entry.map_err(|e| self.err(e))?;
            out.write_all(key.value())
                .and_then(|()| out.write_all(value.value()))
                .map_err(|e| file_error("writing", e))?;
            written += 1;
        }
        if written != state.supply.utxo_count {
            return Err(StorageError::Corrupted {
                path: self.path.clone(),
                detail: format!(
                    "the UTXO table holds {written} coins, the supply record {}",
                    state.supply.utxo_count
                ),
            });
        }
        Ok(StateFileInfo {
            tip,
            coins: written,
            commitment: state.lthash.digest(),
            state_hash: chain_state_hash(&state.lthash.digest(), &list_hash),
        })
    }

    /// Creates a store at `path` (which must not exist) from a chain-state file of
    /// `genesis`'s network, if `verify` accepts what it holds; otherwise leaves nothing.
    pub fn create_from_chain_state(
        path: &Path,
        genesis: &Genesis,
        input: &mut impl Read,
        verify: impl FnOnce(&LoadedState<'_>) -> Result<(), String>,
    ) -> Result<(Store, StateFileInfo), StorageError> {
        if path.exists() {
            return Err(StorageError::Refused(format!(
                "{} exists; a node loads a chain state into an empty data directory only",
                path.display()
            )));
        }
        let staging = path.with_extension("loading");
        let _ = std::fs::remove_file(&staging);
        let result = Store::load_into(&staging, genesis, input, verify);
        match result {
            Ok(info) => {
                std::fs::rename(&staging, path).map_err(|e| file_error("renaming the loaded store", e))?;
                let store = Store::open(path, genesis)?;
                Ok((store, info))
            }
            Err(error) => {
                let _ = std::fs::remove_file(&staging);
                Err(error)
            }
        }
    }

    /// Loads the file into a new store at `path` and closes it.
    fn load_into(
        path: &Path,
        genesis: &Genesis,
        input: &mut impl Read,
        verify: impl FnOnce(&LoadedState<'_>) -> Result<(), String>,
    ) -> Result<StateFileInfo, StorageError> {
        if &read_exact::<8>(input, "magic")? != MAGIC {
            return Err(file_error("magic", "not a TimeCoin chain-state file"));
        }
        if read_exact::<1>(input, "format")? != [FORMAT] {
            return Err(file_error("format", "an unknown format"));
        }
        let network = BlockHash(Hash256(read_exact::<32>(input, "genesis hash")?));
        if network != genesis.hash() {
            return Err(file_error(
                "genesis hash",
                format!(
                    "the file is of the network of genesis {network}, not {}",
                    genesis.hash()
                ),
            ));
        }
        let block: Block = decode(&read_part(input, "tip block")?, "tip block")?;
        let certificate: CommitCertificate = decode(&read_part(input, "certificate")?, "certificate")?;
        let list_bytes = read_part(input, "masternode list")?;
        let list: MasternodeList = decode(&list_bytes, "masternode list")?;
        let minted = read_u64(input, "minted")?;
        let count = read_u64(input, "coin count")?;

        // A fresh store holding the genesis, filled in one write transaction.
        let store = Store::open(path, genesis)?;
        let write = store.db.begin_write().map_err(|e| store.err(e))?;
        let mut state = WriteState::load(&write, &store)?;
        {
            let mut utxos = write.open_table(UTXOS).map_err(|e| store.err(e))?;
            // The genesis outputs are in the file's set if they are unspent.
            utxos.retain(|_, _| false).map_err(|e| store.err(e))?;
            state.lthash = crate::commitment::LtHash::default();
            state.supply.utxo_count = 0;
            state.supply.utxo_total = 0;
            let mut previous: Option<[u8; 36]> = None;
            for _ in 0..count {
                let key = read_exact::<36>(input, "coin")?;
                let value = read_exact::<UTXO_VALUE_LEN>(input, "coin")?;
                if previous.is_some_and(|p| p >= key) {
                    return Err(file_error("coins", "not strictly sorted by outpoint"));
                }
                previous = Some(key);
                let utxo = utxo_from_value(&value).map_err(|e| file_error("coin", e))?;
                state.lthash.insert(&commitment_element(&key, &value));
                state.supply.utxo_count += 1;
                state.supply.utxo_total = state
                    .supply
                    .utxo_total
                    .checked_add(utxo.output.amount.units())
                    .ok_or_else(|| file_error("coins", "their sum overflows"))?;
                utxos.insert(&key, &value).map_err(|e| store.err(e))?;
            }
        }
        let trailer = read_part(input, "trailer")?;
        let mut rest = [0u8; 1];
        if input.read(&mut rest).map_err(|e| file_error("trailer", e))? != 0 {
            return Err(file_error("trailer", "bytes after the end"));
        }
        state.supply.minted = minted;
        if state.supply.utxo_total != state.supply.allocated.saturating_add(minted) {
            return Err(file_error(
                "coins",
                format!(
                    "they sum to {} units, but the genesis allocated {} and rewards minted {minted}",
                    state.supply.utxo_total, state.supply.allocated
                ),
            ));
        }
        let state_hash = chain_state_hash(&state.lthash.digest(), &list.hash());
        verify(&LoadedState {
            block: &block,
            certificate: &certificate,
            list: &list,
            state_hash,
            trailer: &trailer,
        })
        .map_err(StorageError::StateFile)?;

        let height = block.header.height;
        state.tip = ChainTip::of(&block.header);
        let body = block.to_bytes();
        let certificate_bytes = certificate.to_bytes();
        write
            .open_table(BLOCKS)
            .map_err(|e| store.err(e))?
            .insert(height, body.as_slice())
            .map_err(|e| store.err(e))?;
        write
            .open_table(CERTIFICATES)
            .map_err(|e| store.err(e))?
            .insert(height, certificate_bytes.as_slice())
            .map_err(|e| store.err(e))?;
        write
            .open_table(BLOCK_HEIGHTS)
            .map_err(|e| store.err(e))?
            .insert(&block.hash().0.0, height)
            .map_err(|e| store.err(e))?;
        {
            let mut locations = write.open_table(TX_LOCATIONS).map_err(|e| store.err(e))?;
            for (index, txid) in block.txids().iter().enumerate() {
                locations
                    .insert(&txid.0.0, (height, index as u32))
                    .map_err(|e| store.err(e))?;
            }
        }
        write
            .open_table(META)
            .map_err(|e| store.err(e))?
            .insert(KEY_MASTERNODES, list_bytes.as_slice())
            .map_err(|e| store.err(e))?;
        write
            .open_table(META)
            .map_err(|e| store.err(e))?
            .insert(KEY_PRUNED_BELOW, height.to_le_bytes().as_slice())
            .map_err(|e| store.err(e))?;
        store.count_block_bytes(&write, (body.len() + certificate_bytes.len()) as i128)?;
        store.start_set_record(&write, height, Some(&list))?;
        state.save(&write, &store)?;
        write.commit().map_err(|e| store.err(e))?;
        let info = StateFileInfo {
            tip: state.tip,
            coins: state.supply.utxo_count,
            commitment: state.lthash.digest(),
            state_hash,
        };
        // Nothing in memory to write: the store is closed as it is.
        *store.coins_lock() =
            super::coins::Coins::new(state, Arc::new(list), Arc::new(super::coins::Generation::default()), 0);
        drop(store);
        Ok(info)
    }
}

impl Store {
    /// Ends a chain-state file that [`Store::dump_chain_state`] began, with `trailer`.
    pub fn finish_state_file(out: &mut impl Write, trailer: &[u8]) -> Result<(), StorageError> {
        write_part(out, trailer)
    }
}
