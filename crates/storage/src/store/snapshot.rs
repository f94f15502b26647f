//! A consistent read-only view of one tip's chain state for validation ([`Snapshot`]: the
//! UTXO set, the masternode list, the state's hash), taken from the in-memory coins.

use std::path::PathBuf;
use std::sync::Arc;

use timecoin_chain::{ChainTip, MasternodeList, Utxo, UtxoView, ViewError};
use timecoin_primitives::{Hash256, OutPoint};

use super::Store;
use super::coins::CoinsView;
use super::layout::{outpoint_key, utxo_from_value};
use crate::error::StorageError;

impl Store {
    /// A consistent read-only view of the chain state as of the current tip: the UTXO set,
    /// the masternode list and the state's hash.
    pub fn snapshot(&self) -> Result<Snapshot, StorageError> {
        let (coins, view) = self.coins_view()?;
        Ok(Snapshot {
            view,
            path: self.path.clone(),
            tip: coins.state.tip,
            state_hash: coins.state_hash,
            list: coins.list,
        })
    }

    /// The masternode list at the current tip.
    pub fn masternodes(&self) -> Result<Arc<MasternodeList>, StorageError> {
        Ok(Arc::clone(&self.coins_lock().list))
    }
}

/// A read-only view of the chain state at one moment, for validation: the UTXO set and the
/// masternode list of one tip.
pub struct Snapshot {
    view: CoinsView,
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
            .view
            .get(&outpoint_key(outpoint))
            .map_err(|e| ViewError::new(*outpoint, format!("reading {} failed", self.path.display()), e))?;
        match found {
            None => Ok(None),
            Some(value) => utxo_from_value(&value).map(Some).map_err(|e| {
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
