//! A consistent read-only view of one tip's chain state for validation ([`Snapshot`]: the
//! UTXO set, the masternode list, the state's hash), and the decoded masternode list the
//! store caches per tip.

use std::path::PathBuf;
use std::sync::Arc;

use redb::ReadableTable;
use timecoin_chain::{ChainTip, MasternodeList, Utxo, UtxoView, ViewError};
use timecoin_primitives::{BlockHash, Decode, Hash256, OutPoint, chain_state_hash};

use super::Store;
use super::layout::{KEY_MASTERNODES, META, UTXO_VALUE_LEN, UTXOS, WriteState, outpoint_key, utxo_from_value};
use crate::error::StorageError;

/// The masternode list of one tip, decoded once and shared.
#[derive(Debug, Clone)]
pub(super) struct CachedList {
    tip: BlockHash,
    list: Arc<MasternodeList>,
    hash: Hash256,
}

impl Store {
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
            .map_err(|e| ViewError::new(*outpoint, format!("reading {} failed", self.path.display()), e))?;
        match found {
            None => Ok(None),
            Some(value) => utxo_from_value(value.value()).map(Some).map_err(|e| {
                ViewError::new(
                    *outpoint,
                    format!("its record in {} is corrupted", self.path.display()),
                    e,
                )
            }),
        }
    }

    fn masternodes(&self) -> &MasternodeList {
        &self.list
    }
}
