//! TimeCoin's chain rules: network parameters, the genesis block, validation, rewards, and
//! the masternode list that blocks derive.
//!
//! This crate decides what a valid transaction and a valid block are, and how a block moves
//! the masternode list ([`MasternodeList`]). It reads chain state only through the
//! [`UtxoView`] trait and time only as an argument, so it holds no database, no clock and no
//! network; it is pure apart from spreading signature batches over the rayon thread pool.
//!
//! Invariants a reader must keep:
//! - validation never panics on any input: every rejection is a typed error with a
//!   reason code ([`TxError::code`]);
//! - a block mints what [`reward::reward_outputs`] pays of [`reward::block_reward`] (all of
//!   it, unless no masternode is eligible), so the coin supply is always the genesis
//!   allocations plus the sum of the rewards paid;
//! - the list after a block is a function of the list before and the block alone, so every
//!   node derives the same list at every height.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod genesis;
pub mod masternodes;
pub mod params;
pub mod reward;
pub mod sigcache;
pub mod validation;

pub use genesis::{Genesis, GenesisError};
pub use masternodes::{EMPTY_LIST, Entry, FormerOperator, MasternodeList, Status};
pub use params::{ChainParams, FeeRate};
pub use sigcache::{OutputsAhead, SignatureCache};
pub use validation::{
    BlockContext, BlockError, BlockExtras, ChainTip, CheckedBlock, CheckedTx, MasternodeTxError, Proposal, SigItem,
    TxContext, TxError, Utxo, UtxoView, ViewError, assemble_block, build_reward_tx, check_block, check_block_cached,
    check_equivocation, check_masternode_rules, check_transaction, check_tx_contextual, check_tx_stateless,
    created_outputs, propose_block, select_masternode_txs, verify_batch, verify_signatures,
};
