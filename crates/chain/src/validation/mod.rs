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

use thiserror::Error;
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
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("utxo lookup failed: {0}")]
pub struct ViewError(pub String);

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
