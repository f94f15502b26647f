//! Transaction and block validation, in three stages (as Zebra splits them):
//!
//! 1. **stateless** checks need only the object and the parameters: sizes, counts,
//!    duplicates, amount ranges;
//! 2. **contextual** checks need the chain state through a [`UtxoView`]: inputs exist and are
//!    unspent, belong to the signing key, cover the outputs and the minimum fee, and the lock
//!    time has passed. They produce the signature checks still to be done as [`SigItem`]s;
//! 3. **signatures** are verified in batches, split across all cores ([`verify_signatures`]).
//!
//! Nothing here reads a clock: the caller passes the time a block is judged at.
//!
//! This module holds what every stage shares: the view of the chain state ([`UtxoView`])
//! and the contexts a transaction and a block are judged in. The rules live in its parts:
//! - `transaction`: a transaction's stateless and contextual checks, and [`TxError`];
//! - `masternode`: the rules of masternode payloads and of locked collaterals;
//! - `signatures`: the signature checks still to do, verified in batches across all cores;
//! - `block`: a block's checks, each transaction's run against the block's state so far;
//! - `assembly`: the block a proposer builds, kept to what those same checks accept.

mod assembly;
mod block;
mod masternode;
mod signatures;
mod transaction;

use std::collections::HashMap;
use std::error::Error;
use std::sync::Arc;

use timecoin_primitives::{BlockHash, BlockHeader, Hash256, OutPoint, Transaction, TxId, TxOutput};

use crate::masternodes::{EMPTY_LIST, MasternodeList};
use crate::params::ChainParams;

pub use assembly::{BlockExtras, Proposal, assemble_block, build_reward_tx, propose_block, select_masternode_txs};
pub use block::{BlockError, CheckedBlock, check_block, check_block_cached, check_equivocation};
pub use masternode::{MasternodeTxError, check_masternode_rules};
pub use signatures::{SigItem, verify_batch, verify_signatures};
pub use transaction::{CheckedTx, TxError, check_transaction, check_tx_contextual, check_tx_stateless};

/// An unspent output as the chain state holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Utxo {
    /// The output.
    pub output: TxOutput,
    /// The height of the block that created it.
    pub height: u64,
    /// Whether a reward (or genesis) transaction created it.
    pub is_reward: bool,
}

/// The chain state could not be read.
///
/// The validation errors that carry it are `Clone` and compared in tests, so the cause is
/// shared (cloning costs a reference count) and two are equal when they say the same thing.
#[derive(Debug, Clone)]
pub struct ViewError {
    outpoint: OutPoint,
    detail: String,
    source: Arc<dyn Error + Send + Sync>,
}

impl ViewError {
    /// The lookup of `outpoint` failed; `detail` says where (without the cause's text, which
    /// is the source).
    pub fn new(
        outpoint: OutPoint,
        detail: impl Into<String>,
        source: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> ViewError {
        ViewError {
            outpoint,
            detail: detail.into(),
            source: Arc::from(source.into()),
        }
    }
}

impl std::fmt::Display for ViewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot read utxo {}: {}", self.outpoint, self.detail)
    }
}

/// Written out rather than derived: `Arc<dyn Error>` is itself an error whose `source()` is
/// its content's source, so a derived `#[source]` would hide the cause behind the `Arc`.
impl Error for ViewError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

impl PartialEq for ViewError {
    fn eq(&self, other: &ViewError) -> bool {
        self.outpoint == other.outpoint
            && self.detail == other.detail
            && self.source.to_string() == other.source.to_string()
    }
}

impl Eq for ViewError {}

/// Read access to a chain state: its unspent outputs (the tip's, or those plus a block's or
/// a mempool's own outputs) and its masternode list.
pub trait UtxoView {
    /// The unspent output at `outpoint`, if there is one.
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, ViewError>;

    /// The masternode list of the same state (empty for a view that holds none).
    fn masternodes(&self) -> &MasternodeList {
        &EMPTY_LIST
    }
}

impl<T: UtxoView + ?Sized> UtxoView for &T {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, ViewError> {
        (**self).utxo(outpoint)
    }

    fn masternodes(&self) -> &MasternodeList {
        (**self).masternodes()
    }
}

impl UtxoView for HashMap<OutPoint, Utxo> {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, ViewError> {
        Ok(self.get(outpoint).copied())
    }
}

/// The unspent outputs `tx` creates when a block at `height` includes it.
pub fn created_outputs(tx: &Transaction, txid: TxId, height: u64) -> impl Iterator<Item = (OutPoint, Utxo)> + '_ {
    let is_reward = tx.is_reward();
    (0u32..).zip(&tx.outputs).map(move |(index, output)| {
        (
            OutPoint { txid, index },
            Utxo {
                output: *output,
                height,
                is_reward,
            },
        )
    })
}

/// Where a transaction is judged: the network and the height of the block it would enter.
#[derive(Debug, Clone, Copy)]
pub struct TxContext<'a> {
    /// The network's parameters.
    pub params: &'a ChainParams,
    /// The network's genesis hash (signed by every input).
    pub genesis_hash: BlockHash,
    /// The height of the block being built or checked.
    pub height: u64,
}

/// The block a new block must extend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainTip {
    /// Its height.
    pub height: u64,
    /// Its hash.
    pub hash: BlockHash,
    /// Its timestamp.
    pub timestamp_ms: u64,
}

impl ChainTip {
    /// The tip that `header` makes.
    pub fn of(header: &BlockHeader) -> ChainTip {
        ChainTip {
            height: header.height,
            hash: header.hash(),
            timestamp_ms: header.timestamp_ms,
        }
    }
}

/// Where a block is judged.
#[derive(Debug, Clone, Copy)]
pub struct BlockContext<'a> {
    /// The network's parameters.
    pub params: &'a ChainParams,
    /// The network's genesis hash.
    pub genesis_hash: BlockHash,
    /// The block the new one must extend.
    pub parent: ChainTip,
    /// The masternode list after the parent: it fixes the set that signs the new block.
    pub masternodes: &'a MasternodeList,
    /// The chain state after the parent ([`timecoin_primitives::chain_state_hash`]).
    pub parent_state: Hash256,
    /// The judging node's clock, for the far-future rule on a proposal it votes on; `None`
    /// for a block whose commit certificate verified: more than 2/3 of the voting power
    /// accepted its timestamp, and a node whose clock lags has no say over what is final.
    pub now_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_view_error_keeps_its_cause_as_the_source() {
        let outpoint = OutPoint {
            txid: TxId::default(),
            index: 1,
        };
        let error = ViewError::new(
            outpoint,
            "reading chain.redb failed",
            std::io::Error::other("disk unplugged"),
        );
        let message = error.to_string();
        assert!(
            message.contains(&outpoint.to_string()) && message.contains("chain.redb"),
            "{message}"
        );
        assert!(
            !message.contains("disk unplugged"),
            "the cause is the source, not the message: {message}"
        );
        let source = error.source().and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(source.map(ToString::to_string).as_deref(), Some("disk unplugged"));
        // Clones share the cause and compare equal; another cause makes another error.
        assert_eq!(error.clone(), error);
        assert_ne!(
            ViewError::new(
                outpoint,
                "reading chain.redb failed",
                std::io::Error::other("disk full")
            ),
            error
        );
    }
}
