//! The checks of one transaction: stateless ([`check_tx_stateless`]), contextual against a
//! chain state ([`check_tx_contextual`]), and all of them with its signatures
//! ([`check_transaction`]); and why a transaction is refused ([`TxError`]).

use std::collections::HashSet;

use thiserror::Error;
use timecoin_primitives::{AddressPayload, Amount, Encode, OutPoint, Transaction, TxId, signature_message};

use crate::params::ChainParams;

use super::{MasternodeTxError, SigItem, TxContext, Utxo, UtxoView, ViewError, check_masternode_rules, verify_batch};

/// Why a transaction is invalid. [`TxError::code`] gives a short, stable reason code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TxError {
    /// Unknown version.
    #[error("unsupported transaction version {0}")]
    Version(u16),
    /// A non-reward transaction without inputs.
    #[error("transaction has no inputs")]
    NoInputs,
    /// No outputs.
    #[error("transaction has no outputs")]
    NoOutputs,
    /// Larger than the network allows.
    #[error("transaction is {size} bytes, above the maximum of {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The same outpoint is spent twice inside the transaction.
    #[error("transaction spends {0} twice")]
    DuplicateInput(OutPoint),
    /// An output of zero.
    #[error("output {0} is zero")]
    ZeroOutput(usize),
    /// An output or the sum of outputs above the maximum amount.
    #[error("outputs exceed the maximum amount")]
    OutputsTooLarge,
    /// An input does not exist or is already spent.
    #[error("input {0} is missing or already spent")]
    MissingInput(OutPoint),
    /// An input's key does not own the output it spends.
    #[error("input {index}: public key does not match the spent output's address")]
    WrongKey {
        /// The input's position.
        index: usize,
    },
    /// The lock time is later than the height the transaction would be included at.
    #[error("transaction is locked until height {lock_time}; the next block is {height}")]
    NotFinal {
        /// The lock time.
        lock_time: u64,
        /// The height being built.
        height: u64,
    },
    /// Outputs exceed inputs.
    #[error("outputs total {outputs} but inputs only {inputs}")]
    InputsBelowOutputs {
        /// Sum of inputs.
        inputs: Amount,
        /// Sum of outputs.
        outputs: Amount,
    },
    /// The fee is below the network minimum.
    #[error("fee {fee} is below the minimum {required} for {size} bytes")]
    FeeTooLow {
        /// The fee paid.
        fee: Amount,
        /// The minimum.
        required: Amount,
        /// The transaction's size.
        size: usize,
    },
    /// A signature does not verify.
    #[error("invalid signature")]
    BadSignature,
    /// The transaction spends a registered masternode's collateral without deregistering it.
    #[error("input {outpoint} is the locked collateral of masternode {masternode}; spend it with masternodeunlock")]
    CollateralLocked {
        /// The collateral.
        outpoint: OutPoint,
        /// The masternode.
        masternode: TxId,
    },
    /// A masternode payload is invalid against the masternode list.
    #[error(transparent)]
    Masternode(#[from] MasternodeTxError),
    /// The chain state could not be read.
    #[error(transparent)]
    View(#[from] ViewError),
}

impl TxError {
    /// Whether the transaction is invalid in any chain state (malformed, or a signature or
    /// key that does not match): a peer relaying it misbehaves. A missing input, a lock time
    /// or a fee can be honest differences of view.
    pub fn is_invalid_in_any_state(&self) -> bool {
        matches!(
            self,
            TxError::Version(_)
                | TxError::NoInputs
                | TxError::NoOutputs
                | TxError::TooLarge { .. }
                | TxError::DuplicateInput(_)
                | TxError::ZeroOutput(_)
                | TxError::OutputsTooLarge
                | TxError::WrongKey { .. }
                | TxError::BadSignature
                | TxError::Masternode(MasternodeTxError::FreeTier)
        )
    }

    /// A short reason code, in the style of Bitcoin Core's reject reasons.
    pub fn code(&self) -> &'static str {
        match self {
            TxError::Version(_) => "bad-txns-version",
            TxError::NoInputs => "bad-txns-vin-empty",
            TxError::NoOutputs => "bad-txns-vout-empty",
            TxError::TooLarge { .. } => "bad-txns-oversize",
            TxError::DuplicateInput(_) => "bad-txns-inputs-duplicate",
            TxError::ZeroOutput(_) => "bad-txns-vout-zero",
            TxError::OutputsTooLarge => "bad-txns-vout-toolarge",
            TxError::MissingInput(_) => "bad-txns-inputs-missingorspent",
            TxError::WrongKey { .. } => "bad-txns-wrong-key",
            TxError::NotFinal { .. } => "bad-txns-nonfinal",
            TxError::InputsBelowOutputs { .. } => "bad-txns-in-belowout",
            TxError::FeeTooLow { .. } => "min-fee-not-met",
            TxError::BadSignature => "bad-txns-signature",
            TxError::CollateralLocked { .. } => "bad-txns-collateral-locked",
            TxError::Masternode(e) => match e {
                MasternodeTxError::FreeTier => "bad-protx-tier",
                MasternodeTxError::CollateralMissing(_)
                | MasternodeTxError::CollateralAmount { .. }
                | MasternodeTxError::CollateralKey(_) => "bad-protx-collateral",
                MasternodeTxError::CollateralInUse(_) => "bad-protx-collateral-dup",
                MasternodeTxError::DuplicateOperator(..) => "bad-protx-dup-key",
                MasternodeTxError::DuplicateService(..) => "bad-protx-dup-addr",
                MasternodeTxError::Unknown(_) => "bad-protx-hash",
                MasternodeTxError::CollateralNotSpent(_) => "bad-protx-unlock",
                MasternodeTxError::UnlockWhileServing(_) => "bad-protx-unlock-serving",
                MasternodeTxError::UnlockTooEarly { .. } => "bad-protx-unlock-early",
                MasternodeTxError::MissingOperatorProof { .. } => "bad-protx-operator-proof-missing",
                MasternodeTxError::UnneededOperatorProof(_) => "bad-protx-operator-proof-unneeded",
                MasternodeTxError::Banned { .. } => "bad-protx-banned",
                MasternodeTxError::PenaltyNotDecayed { .. } => "bad-protx-penalty",
                MasternodeTxError::AlreadyRevoked(_) => "bad-protx-revoked",
                MasternodeTxError::TooManyKeyRotations { .. } => "bad-protx-key-rotations",
                MasternodeTxError::ListFull { .. } => "bad-protx-list-full",
            },
            TxError::View(_) => "state-unavailable",
        }
    }
}

/// What the contextual checks learned about a valid transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedTx {
    /// The txid.
    pub txid: TxId,
    /// Encoded size in bytes.
    pub size: usize,
    /// Inputs minus outputs.
    pub fee: Amount,
    /// The spent outputs, in input order.
    pub spent: Vec<Utxo>,
    /// The signatures still to verify.
    pub sig_items: Vec<SigItem>,
}

fn check_outputs(tx: &Transaction) -> Result<Amount, TxError> {
    if tx.outputs.is_empty() {
        return Err(TxError::NoOutputs);
    }
    for (index, output) in tx.outputs.iter().enumerate() {
        if output.amount == Amount::ZERO {
            return Err(TxError::ZeroOutput(index));
        }
    }
    match tx.output_total() {
        Some(total) if total.is_in_range() => Ok(total),
        _ => Err(TxError::OutputsTooLarge),
    }
}

/// Stateless checks of a transaction that is not a reward transaction; `size` is its encoded
/// size.
pub fn check_tx_stateless(tx: &Transaction, size: usize, params: &ChainParams) -> Result<(), TxError> {
    if tx.version != Transaction::version_for(tx.payload.as_ref()) {
        return Err(TxError::Version(tx.version));
    }
    if size > params.max_tx_bytes {
        return Err(TxError::TooLarge {
            size,
            max: params.max_tx_bytes,
        });
    }
    if tx.inputs.is_empty() {
        return Err(TxError::NoInputs);
    }
    check_outputs(tx)?;
    let mut seen = HashSet::with_capacity(tx.inputs.len());
    for input in &tx.inputs {
        if !seen.insert(input.prevout) {
            return Err(TxError::DuplicateInput(input.prevout));
        }
    }
    Ok(())
}

/// Contextual checks of a transaction that passed [`check_tx_stateless`]. Signatures are not
/// verified here; they are returned in [`CheckedTx::sig_items`].
pub fn check_tx_contextual(
    tx: &Transaction,
    txid: TxId,
    size: usize,
    view: &impl UtxoView,
    ctx: &TxContext<'_>,
) -> Result<CheckedTx, TxError> {
    if tx.lock_time > ctx.height {
        return Err(TxError::NotFinal {
            lock_time: tx.lock_time,
            height: ctx.height,
        });
    }
    let mut spent = Vec::with_capacity(tx.inputs.len());
    for (index, input) in tx.inputs.iter().enumerate() {
        let utxo = view.utxo(&input.prevout)?.ok_or(TxError::MissingInput(input.prevout))?;
        if AddressPayload::from_public_key(&input.public_key) != utxo.output.address {
            return Err(TxError::WrongKey { index });
        }
        spent.push(utxo);
    }
    let inputs = Amount::checked_sum(spent.iter().map(|u| u.output.amount)).ok_or(TxError::OutputsTooLarge)?;
    let outputs = tx.output_total().ok_or(TxError::OutputsTooLarge)?;
    let fee = inputs
        .checked_sub(outputs)
        .ok_or(TxError::InputsBelowOutputs { inputs, outputs })?;
    let required = ctx.params.min_fee_rate.fee_for(size);
    if fee < required {
        return Err(TxError::FeeTooLow { fee, required, size });
    }
    let payload_sigs = check_masternode_rules(tx, txid, view, ctx)?;
    let amounts: Vec<Amount> = spent.iter().map(|u| u.output.amount).collect();
    let message = signature_message(&ctx.genesis_hash, &txid, &amounts);
    let sig_items = tx
        .inputs
        .iter()
        .map(|input| SigItem {
            key: input.public_key,
            message,
            signature: input.signature,
        })
        .chain(payload_sigs)
        .collect();
    Ok(CheckedTx {
        txid,
        size,
        fee,
        spent,
        sig_items,
    })
}

/// Every check of one standalone transaction, signatures included.
pub fn check_transaction(tx: &Transaction, view: &impl UtxoView, ctx: &TxContext<'_>) -> Result<CheckedTx, TxError> {
    let size = tx.encoded_len();
    check_tx_stateless(tx, size, ctx.params)?;
    let checked = check_tx_contextual(tx, tx.txid(), size, view, ctx)?;
    verify_batch(&checked.sig_items).map_err(|_| TxError::BadSignature)?;
    Ok(checked)
}
