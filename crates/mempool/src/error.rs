//! Why the mempool refused a transaction.

use thiserror::Error;
use timecoin_chain::{FeeRate, TxError};
use timecoin_primitives::{Amount, OutPoint, TxId};

/// A refused transaction. [`MempoolError::code`] gives a short reason code in the style of
/// Bitcoin Core's reject reasons; the message says what was wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MempoolError {
    /// The transaction is already in the pool.
    #[error("transaction {0} is already in the mempool")]
    AlreadyInPool(TxId),
    /// The transaction breaks a chain rule.
    #[error("{0}")]
    Invalid(#[from] TxError),
    /// An output is below the dust limit.
    #[error("output {index} pays {amount}, below the dust limit of {limit}; send more or leave it to the fee")]
    Dust {
        /// The output's position.
        index: usize,
        /// Its amount.
        amount: Amount,
        /// The limit.
        limit: Amount,
    },
    /// An input is spent by a pool transaction, and this one does not pay enough to replace it.
    #[error(
        "{outpoint} is already spent by {existing} in the mempool; to replace it pay a higher fee ({required} or more) and a higher fee rate"
    )]
    InsufficientReplacementFee {
        /// The contested output.
        outpoint: OutPoint,
        /// The transaction now spending it.
        existing: TxId,
        /// The least fee that would replace it (and its descendants).
        required: Amount,
    },
    /// A replacement would evict too many transactions.
    #[error("replacing would evict {count} transactions, more than the limit of {limit}")]
    TooManyReplacements {
        /// How many.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A replacement spends an output of a transaction it replaces.
    #[error("transaction spends an output of {0}, which it would replace")]
    SpendsReplaced(TxId),
    /// The fee rate is below the pool's current minimum (raised while the pool is full).
    #[error("fee rate {rate} units/kB is below the mempool minimum of {required} units/kB")]
    MinFeeNotMet {
        /// What the transaction pays.
        rate: u64,
        /// What the pool asks now.
        required: u64,
    },
    /// Too many unconfirmed ancestors or descendants.
    #[error("chain of unconfirmed transactions is too long ({count}, limit {limit}); wait for a block")]
    TooLongChain {
        /// The chain length it would make.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A transaction it spends was refused in the same batch (its signature was invalid).
    #[error("transaction spends an output of {0}, which was refused")]
    ParentRejected(TxId),
    /// Another pool transaction already registers, updates, revokes or unlocks the same
    /// masternode, key, collateral or address.
    #[error(
        "masternode transaction {0} in the mempool claims the same masternode, key, collateral or address; wait for its block"
    )]
    MasternodeConflict(TxId),
    /// The pool is full and this transaction would be the first evicted.
    #[error("mempool is full and transaction {0} pays too little to stay; raise its fee rate")]
    Full(TxId),
}

impl MempoolError {
    /// The short reason code.
    pub fn code(&self) -> &'static str {
        match self {
            MempoolError::AlreadyInPool(_) => "txn-already-in-mempool",
            MempoolError::Invalid(error) => error.code(),
            MempoolError::Dust { .. } => "dust",
            MempoolError::InsufficientReplacementFee { .. } => "insufficient-fee",
            MempoolError::TooManyReplacements { .. } => "too-many-replacements",
            MempoolError::SpendsReplaced(_) => "bad-txns-spends-conflicting-tx",
            MempoolError::MinFeeNotMet { .. } => "mempool-min-fee-not-met",
            MempoolError::TooLongChain { .. } => "too-long-mempool-chain",
            MempoolError::ParentRejected(_) => "parent-rejected",
            MempoolError::MasternodeConflict(_) => "protx-dup",
            MempoolError::Full(_) => "mempool-full",
        }
    }
}

/// Renders a fee rate for messages.
pub(crate) fn rate(fee_rate: FeeRate) -> u64 {
    fee_rate.0
}
