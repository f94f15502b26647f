//! TimeCoin's mempool: admission, conflicts and replacement, fee ordering, eviction, expiry
//! and block templates.
//!
//! Admission runs the chain rules (`timecoin-chain`) against the tip's UTXO set, given as a
//! [`timecoin_chain::UtxoView`], plus the pool's own outputs, so chains of unconfirmed
//! transactions are allowed (up to a bounded depth). The pool is synchronous and owns no
//! clock: the caller passes the time.
//!
//! Invariants a reader must keep:
//! - the pool never exceeds its transaction count or its estimated memory: each admission
//!   ends by evicting the lowest descendant-score packages, and a transaction that would be
//!   evicted at once is refused;
//! - no two pooled transactions spend the same output, and none spends an output a pooled
//!   registration names as its collateral (no block could hold both);
//! - every refusal is a [`MempoolError`] with a reason code.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

mod error;
mod pool;

pub use error::MempoolError;
pub use pool::{BlockRemoval, BlockTemplate, EntryInfo, Mempool, MempoolConfig, Score};
