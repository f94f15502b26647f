//! TimeCoin's chain store, on redb: blocks by height and hash, the txid index, the UTXO set,
//! undo data per block, commit certificates, the chain tip, an incremental UTXO-set
//! commitment, the masternode list the chain derives, the record of voting-set changes,
//! and the consensus write-ahead log; old block bodies can be pruned.
//!
//! This crate persists what the chain rules (`timecoin-chain`) accepted; it does not decide
//! validity. Every method does blocking disk I/O, so async callers run it on a blocking
//! thread.
//!
//! Invariants a reader must keep:
//! - applying or reverting a block is durable before it returns and atomic: after a crash
//!   the store holds the previous state or the new one, never a mix (the UTXO changes of
//!   recent blocks live in memory and are written in batches; a reopened store replays the
//!   stored blocks above the last batch, so it holds exactly the set it had);
//! - the sum of all unspent outputs equals the genesis allocations plus the coins minted by
//!   rewards, and the kept commitment equals the one recomputed from the full set;
//! - damaged data is reported with the file's name and never silently deleted.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod commitment;
mod error;
mod store;
mod wal;

pub use error::StorageError;
pub use store::{
    AddressDelta, AddressUtxo, AppliedBlock, CoinsCacheInfo, DEFAULT_CACHE_BYTES, FlushPolicy, LIST_UNDO_DEPTH,
    LoadedState, MIN_KEPT_BLOCKS, PruneState, SCHEMA_VERSION, Snapshot, StateFileInfo, Store, UtxoSetInfo,
};
pub use wal::ConsensusWal;
