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

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use thiserror::Error;
use timecoin_primitives::{
    AddressPayload, Amount, BatchVerifier, Block, BlockHash, BlockHeader, Encode, Hash256, MasternodeSet, OutPoint,
    PublicKey, Signature, SignatureError, Transaction, TxId, TxOutput, merkle_root, signature_message,
};

use crate::params::ChainParams;
use crate::reward::{RewardError, block_reward, reward_outputs};

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

/// Read access to a set of unspent outputs: the chain tip's, or that plus a block's or a
/// mempool's own outputs.
pub trait UtxoView {
    /// The unspent output at `outpoint`, if there is one.
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, ViewError>;
}

impl<T: UtxoView + ?Sized> UtxoView for &T {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, ViewError> {
        (**self).utxo(outpoint)
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

/// One signature still to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigItem {
    /// The signer.
    pub key: PublicKey,
    /// What was signed.
    pub message: Hash256,
    /// The signature.
    pub signature: Signature,
}

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
    if tx.version != Transaction::VERSION {
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
        .collect();
    Ok(CheckedTx {
        txid,
        size,
        fee,
        spent,
        sig_items,
    })
}

/// Signature batches smaller than this are not split across threads.
const MIN_PARALLEL_CHUNK: usize = 64;

/// Verifies one batch on the calling thread.
pub fn verify_batch(items: &[SigItem]) -> Result<(), SignatureError> {
    let mut batch = BatchVerifier::new();
    for item in items {
        batch.queue(&item.key, &item.message.0, &item.signature);
    }
    batch.verify(rand::rng())
}

/// Verifies every signature, in batches spread over the rayon thread pool (all cores).
pub fn verify_signatures(items: &[SigItem]) -> Result<(), SignatureError> {
    let threads = rayon::current_num_threads().max(1);
    if items.len() < MIN_PARALLEL_CHUNK * 2 || threads == 1 {
        return verify_batch(items);
    }
    let chunk = items.len().div_ceil(threads).max(MIN_PARALLEL_CHUNK);
    items.par_chunks(chunk).try_for_each(verify_batch)
}

/// Every check of one standalone transaction, signatures included.
pub fn check_transaction(tx: &Transaction, view: &impl UtxoView, ctx: &TxContext<'_>) -> Result<CheckedTx, TxError> {
    let size = tx.encoded_len();
    check_tx_stateless(tx, size, ctx.params)?;
    let checked = check_tx_contextual(tx, tx.txid(), size, view, ctx)?;
    verify_batch(&checked.sig_items).map_err(|_| TxError::BadSignature)?;
    Ok(checked)
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
    /// The masternode set that signs the new block.
    pub masternodes: &'a MasternodeSet,
    /// The judging node's clock, for the far-future rule.
    pub now_ms: u64,
}

/// Why a block is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BlockError {
    /// Unknown header version.
    #[error("unsupported block version {0}")]
    Version(u16),
    /// Not the next height.
    #[error("block height {found}, expected {expected}")]
    Height {
        /// The next height.
        expected: u64,
        /// The header's.
        found: u64,
    },
    /// Does not extend the tip.
    #[error("block extends {found}, not the tip {expected}")]
    PrevHash {
        /// The tip.
        expected: BlockHash,
        /// The header's parent.
        found: BlockHash,
    },
    /// The timestamp is not after the parent's.
    #[error("block timestamp {found} is not after its parent's {parent}")]
    TimestampNotIncreasing {
        /// The parent's timestamp.
        parent: u64,
        /// The header's.
        found: u64,
    },
    /// The timestamp is too far ahead of the validator's clock.
    #[error("block timestamp {found} is more than {max_ahead_ms} ms ahead of the local clock {now}")]
    TimestampInFuture {
        /// The header's.
        found: u64,
        /// The local clock.
        now: u64,
        /// The allowance.
        max_ahead_ms: u64,
    },
    /// Too large.
    #[error("block is {size} bytes, above the maximum of {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Too many transactions, or none.
    #[error("block holds {count} transactions; it needs 1 to {max}")]
    TransactionCount {
        /// The count.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The merkle root does not match the transactions.
    #[error("merkle root does not match the transactions")]
    MerkleRoot,
    /// The header names another masternode set.
    #[error("header names masternode set {found}, expected {expected}")]
    MasternodeSet {
        /// The set's hash.
        expected: Hash256,
        /// The header's.
        found: Hash256,
    },
    /// The first transaction is not a reward transaction, or another one is.
    #[error("transaction {0} is misplaced: the reward transaction must come first, and only once")]
    MisplacedReward(usize),
    /// The reward transaction is malformed or pays the wrong amounts.
    #[error("reward transaction is invalid: {0}")]
    Reward(String),
    /// The proposer cannot be paid.
    #[error(transparent)]
    Proposer(#[from] RewardError),
    /// Two transactions in the block spend one output.
    #[error("outpoint {0} is spent twice in the block")]
    DoubleSpend(OutPoint),
    /// A transaction is invalid.
    #[error("transaction {index} ({txid}): {error}")]
    Transaction {
        /// Its position.
        index: usize,
        /// Its id.
        txid: TxId,
        /// Why.
        error: TxError,
    },
    /// Fees overflowed.
    #[error("fees overflow")]
    FeeOverflow,
}

/// What a valid block's checks learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedBlock {
    /// The block hash.
    pub hash: BlockHash,
    /// The txids in block order.
    pub txids: Vec<TxId>,
    /// The sum of fees.
    pub fees: Amount,
    /// The coins minted.
    pub reward: Amount,
}

/// The block's own outputs over the chain state, refusing a second spend inside the block.
struct BlockOverlay<'v, V> {
    base: &'v V,
    created: HashMap<OutPoint, Utxo>,
    spent: HashSet<OutPoint>,
}

impl<V: UtxoView> BlockOverlay<'_, V> {
    fn lookup(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, ViewError> {
        if self.spent.contains(outpoint) {
            return Ok(None);
        }
        match self.created.get(outpoint) {
            Some(utxo) => Ok(Some(*utxo)),
            None => self.base.utxo(outpoint),
        }
    }
}

impl<V: UtxoView> UtxoView for BlockOverlay<'_, V> {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, ViewError> {
        self.lookup(outpoint)
    }
}

fn check_header(block: &Block, ctx: &BlockContext<'_>) -> Result<(), BlockError> {
    let header = &block.header;
    if header.version != BlockHeader::VERSION {
        return Err(BlockError::Version(header.version));
    }
    let expected = ctx.parent.height.saturating_add(1);
    if header.height != expected {
        return Err(BlockError::Height {
            expected,
            found: header.height,
        });
    }
    if header.prev_hash != ctx.parent.hash {
        return Err(BlockError::PrevHash {
            expected: ctx.parent.hash,
            found: header.prev_hash,
        });
    }
    if header.timestamp_ms <= ctx.parent.timestamp_ms {
        return Err(BlockError::TimestampNotIncreasing {
            parent: ctx.parent.timestamp_ms,
            found: header.timestamp_ms,
        });
    }
    if header.timestamp_ms > ctx.now_ms.saturating_add(ctx.params.max_future_block_ms) {
        return Err(BlockError::TimestampInFuture {
            found: header.timestamp_ms,
            now: ctx.now_ms,
            max_ahead_ms: ctx.params.max_future_block_ms,
        });
    }
    let set_hash = ctx.masternodes.hash();
    if header.masternode_set_hash != set_hash {
        return Err(BlockError::MasternodeSet {
            expected: set_hash,
            found: header.masternode_set_hash,
        });
    }
    Ok(())
}

/// Every check of a block against its parent and the chain state at the parent, signatures
/// included. `view` must show the UTXO set as of `ctx.parent`.
pub fn check_block(block: &Block, view: &impl UtxoView, ctx: &BlockContext<'_>) -> Result<CheckedBlock, BlockError> {
    check_header(block, ctx)?;
    let params = ctx.params;
    let count = block.transactions.len();
    if count == 0 || count > params.max_block_txs {
        return Err(BlockError::TransactionCount {
            count,
            max: params.max_block_txs,
        });
    }
    let size = block.encoded_len();
    if size > params.max_block_bytes {
        return Err(BlockError::TooLarge {
            size,
            max: params.max_block_bytes,
        });
    }
    let (txids, sizes): (Vec<TxId>, Vec<usize>) = block
        .transactions
        .par_iter()
        .map(|tx| (tx.txid(), tx.encoded_len()))
        .unzip();
    if merkle_root(&txids) != block.header.merkle_root {
        return Err(BlockError::MerkleRoot);
    }

    let height = block.header.height;
    let tx_ctx = TxContext {
        params,
        genesis_hash: ctx.genesis_hash,
        height,
    };
    let mut overlay = BlockOverlay {
        base: view,
        created: HashMap::new(),
        spent: HashSet::new(),
    };
    let mut fees = Amount::ZERO;
    let mut sig_items = Vec::new();
    let mut sig_owner = Vec::new();
    for (index, ((tx, txid), size)) in block.transactions.iter().zip(&txids).zip(&sizes).enumerate() {
        let is_first = index == 0;
        if tx.is_reward() != is_first {
            return Err(BlockError::MisplacedReward(index));
        }
        let tx_error = |error| BlockError::Transaction {
            index,
            txid: *txid,
            error,
        };
        if !is_first {
            check_tx_stateless(tx, *size, params).map_err(tx_error)?;
            for input in &tx.inputs {
                if overlay.spent.contains(&input.prevout) {
                    return Err(BlockError::DoubleSpend(input.prevout));
                }
            }
            let checked = check_tx_contextual(tx, *txid, *size, &overlay, &tx_ctx).map_err(tx_error)?;
            fees = fees.checked_add(checked.fee).ok_or(BlockError::FeeOverflow)?;
            sig_owner.extend(std::iter::repeat_n(index, checked.sig_items.len()));
            sig_items.extend(checked.sig_items);
            for input in &tx.inputs {
                overlay.created.remove(&input.prevout);
                overlay.spent.insert(input.prevout);
            }
        }
        overlay.created.extend(created_outputs(tx, *txid, height));
    }

    let reward = block_reward(params, ctx.parent.timestamp_ms, block.header.timestamp_ms);
    let reward_tx = block.transactions.first().ok_or(BlockError::TransactionCount {
        count: 0,
        max: params.max_block_txs,
    })?;
    check_reward_tx(reward_tx, height, reward, fees, &block.header.proposer, ctx.masternodes)?;

    if verify_signatures(&sig_items).is_err() {
        // Name the first transaction at fault.
        let index = first_bad_signature(&sig_items, &sig_owner).unwrap_or(0);
        let txid = txids.get(index).copied().unwrap_or_default();
        return Err(BlockError::Transaction {
            index,
            txid,
            error: TxError::BadSignature,
        });
    }
    Ok(CheckedBlock {
        hash: block.hash(),
        txids,
        fees,
        reward,
    })
}

fn first_bad_signature(items: &[SigItem], owners: &[usize]) -> Option<usize> {
    items
        .par_iter()
        .zip(owners.par_iter())
        .filter(|(item, _)| item.key.verify(&item.message.0, &item.signature).is_err())
        .map(|(_, owner)| *owner)
        .min()
}

fn check_reward_tx(
    tx: &Transaction,
    height: u64,
    reward: Amount,
    fees: Amount,
    proposer: &PublicKey,
    masternodes: &MasternodeSet,
) -> Result<(), BlockError> {
    if tx.version != Transaction::VERSION {
        return Err(BlockError::Reward(format!("version {}", tx.version)));
    }
    if tx.lock_time != height {
        return Err(BlockError::Reward(format!(
            "lock time {} must equal the block height {height}",
            tx.lock_time
        )));
    }
    let expected = reward_outputs(masternodes, reward, fees, proposer)?;
    if tx.outputs != expected {
        let paid = tx
            .output_total()
            .map_or_else(|| "an overflowing amount".to_owned(), |a| a.to_string());
        let due = Amount::checked_sum(expected.iter().map(|o| o.amount)).unwrap_or(Amount::ZERO);
        return Err(BlockError::Reward(format!(
            "pays {paid} in {} outputs; the rule requires {due} in {} outputs",
            tx.outputs.len(),
            expected.len()
        )));
    }
    Ok(())
}

/// The reward transaction a proposer puts first in a block at `height`.
pub fn build_reward_tx(
    params: &ChainParams,
    parent: &ChainTip,
    timestamp_ms: u64,
    fees: Amount,
    proposer: &PublicKey,
    masternodes: &MasternodeSet,
) -> Result<Transaction, RewardError> {
    let reward = block_reward(params, parent.timestamp_ms, timestamp_ms);
    Ok(Transaction {
        version: Transaction::VERSION,
        inputs: Vec::new(),
        outputs: reward_outputs(masternodes, reward, fees, proposer)?,
        lock_time: parent.height.saturating_add(1),
        memo: Vec::new(),
    })
}

/// A block for height `parent.height + 1`: the reward transaction for `fees` first, then
/// `transactions`, under a header naming `proposer` and `masternodes`.
pub fn assemble_block(
    params: &ChainParams,
    parent: &ChainTip,
    timestamp_ms: u64,
    proposer: &PublicKey,
    masternodes: &MasternodeSet,
    fees: Amount,
    transactions: Vec<Transaction>,
) -> Result<Block, RewardError> {
    let reward = build_reward_tx(params, parent, timestamp_ms, fees, proposer, masternodes)?;
    let mut all = Vec::with_capacity(transactions.len() + 1);
    all.push(reward);
    all.extend(transactions);
    let txids: Vec<TxId> = all.iter().map(Transaction::txid).collect();
    Ok(Block {
        header: BlockHeader {
            version: BlockHeader::VERSION,
            height: parent.height.saturating_add(1),
            prev_hash: parent.hash,
            timestamp_ms,
            merkle_root: merkle_root(&txids),
            proposer: *proposer,
            masternode_set_hash: masternodes.hash(),
        },
        transactions: all,
    })
}
