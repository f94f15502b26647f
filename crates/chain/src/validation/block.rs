//! The checks of a block against its parent and the chain state after it ([`check_block`]):
//! the header, the parent's commit certificate, the evidence, the reward transaction, and
//! every other transaction against the block's state so far (`BlockOverlay`, which the
//! proposer's assembly runs too); and why a block is refused ([`BlockError`]).

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use thiserror::Error;
use timecoin_primitives::limits::MAX_BLOCK_EVIDENCE;
use timecoin_primitives::{
    Amount, Block, BlockHash, BlockHeader, Encode, Equivocation, Hash256, OutPoint, PublicKey, Transaction, TxId,
    evidence_hash, last_commit_hash, merkle_root,
};

use crate::masternodes::MasternodeList;
use crate::params::ChainParams;
use crate::reward::{RewardError, block_reward, reward_outputs};
use crate::sigcache::SignatureCache;

use super::signatures::first_bad_signature;
use super::{
    BlockContext, CheckedTx, TxContext, TxError, Utxo, UtxoView, ViewError, check_tx_contextual, check_tx_stateless,
    created_outputs, verify_signatures,
};

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
    /// The header names another chain state than the parent's.
    #[error("header names chain state {found}, but the state after the parent is {expected}")]
    State {
        /// The state after the parent.
        expected: Hash256,
        /// The header's.
        found: Hash256,
    },
    /// The certificate of the parent is missing, unexpected, or invalid.
    #[error("last commit: {0}")]
    LastCommit(String),
    /// An evidence item is invalid.
    #[error("evidence {index}: {reason}")]
    Evidence {
        /// Its position.
        index: usize,
        /// Why.
        reason: String,
    },
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

/// The block's own outputs over the chain state, refusing a second spend inside the block,
/// and the masternode list as the block's transactions so far change it.
pub(super) struct BlockOverlay<'v, V> {
    pub(super) base: &'v V,
    pub(super) created: HashMap<OutPoint, Utxo>,
    pub(super) spent: HashSet<OutPoint>,
    pub(super) list: MasternodeList,
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

impl<V: UtxoView> BlockOverlay<'_, V> {
    /// Every check `check_block` makes of the transaction at `index` of a block (not the
    /// reward transaction), signatures aside, against the block's state so far.
    pub(super) fn check_next(
        &self,
        index: usize,
        tx: &Transaction,
        txid: TxId,
        size: usize,
        ctx: &TxContext<'_>,
    ) -> Result<CheckedTx, BlockError> {
        if tx.is_reward() {
            return Err(BlockError::MisplacedReward(index));
        }
        let tx_error = |error| BlockError::Transaction { index, txid, error };
        check_tx_stateless(tx, size, ctx.params).map_err(tx_error)?;
        if let Some(input) = tx.inputs.iter().find(|input| self.spent.contains(&input.prevout)) {
            return Err(BlockError::DoubleSpend(input.prevout));
        }
        check_tx_contextual(tx, txid, size, self, ctx).map_err(tx_error)
    }

    /// Moves the block's state past a transaction [`Self::check_next`] accepted: its inputs
    /// are spent, its outputs created, and the masternode list applies it.
    pub(super) fn apply_next(&mut self, tx: &Transaction, txid: TxId, ctx: &TxContext<'_>) {
        for input in &tx.inputs {
            self.created.remove(&input.prevout);
            self.spent.insert(input.prevout);
        }
        self.list.apply_transaction(tx, txid, ctx.height, ctx.params);
        self.created.extend(created_outputs(tx, txid, ctx.height));
    }
}

impl<V: UtxoView> UtxoView for BlockOverlay<'_, V> {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, ViewError> {
        self.lookup(outpoint)
    }

    fn masternodes(&self) -> &MasternodeList {
        &self.list
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
    if let Some(now) = ctx.now_ms
        && header.timestamp_ms > now.saturating_add(ctx.params.max_future_block_ms)
    {
        return Err(BlockError::TimestampInFuture {
            found: header.timestamp_ms,
            now,
            max_ahead_ms: ctx.params.max_future_block_ms,
        });
    }
    let set_hash = ctx.masternodes.voting_set().hash();
    if header.masternode_set_hash != set_hash {
        return Err(BlockError::MasternodeSet {
            expected: set_hash,
            found: header.masternode_set_hash,
        });
    }
    if header.state_hash != ctx.parent_state {
        return Err(BlockError::State {
            expected: ctx.parent_state,
            found: header.state_hash,
        });
    }
    check_last_commit(block, ctx)?;
    check_evidence(block, ctx)
}

/// Block 1 carries no certificate of its parent (genesis has none); every later block
/// carries one that finalizes its parent under the set that signed it.
fn check_last_commit(block: &Block, ctx: &BlockContext<'_>) -> Result<(), BlockError> {
    if block.header.last_commit_hash != last_commit_hash(block.last_commit.as_ref()) {
        return Err(BlockError::LastCommit("does not match the header's hash".to_owned()));
    }
    match (&block.last_commit, ctx.parent.height) {
        (None, 0) => Ok(()),
        (Some(_), 0) => Err(BlockError::LastCommit("block 1 must not carry one".to_owned())),
        (None, _) => Err(BlockError::LastCommit("missing".to_owned())),
        (Some(certificate), parent_height) => certificate
            .verify(
                &ctx.genesis_hash,
                parent_height,
                &ctx.parent.hash,
                ctx.masternodes.signers(),
                rand::rng(),
            )
            .map_err(|e| BlockError::LastCommit(e.to_string())),
    }
}

/// Each proof names a masternode of the list, not already banned, that held the key at the
/// offence; it is recent, on this network, and signed; one proof per masternode.
fn check_evidence(block: &Block, ctx: &BlockContext<'_>) -> Result<(), BlockError> {
    if block.header.evidence_hash != evidence_hash(&block.evidence) {
        return Err(BlockError::Evidence {
            index: 0,
            reason: "the list does not match the header's hash".to_owned(),
        });
    }
    let height = block.header.height;
    let mut offenders = HashSet::new();
    for (index, evidence) in block.evidence.iter().enumerate() {
        let invalid = |reason: String| BlockError::Evidence { index, reason };
        if index >= MAX_BLOCK_EVIDENCE {
            return Err(invalid(format!("more than {MAX_BLOCK_EVIDENCE} proofs")));
        }
        let offender =
            equivocation_offender(evidence, height, ctx.genesis_hash, ctx.params, ctx.masternodes).map_err(invalid)?;
        // Two proofs may name one masternode through two of its keys.
        if !offenders.insert(offender) {
            return Err(invalid("a second proof against the same masternode".to_owned()));
        }
    }
    Ok(())
}

/// Whether `evidence` may enter a block at `height` on top of `list`: the rule blocks
/// follow, and the check a proposer makes before including it.
pub fn check_equivocation(
    evidence: &Equivocation,
    height: u64,
    genesis_hash: BlockHash,
    params: &ChainParams,
    list: &MasternodeList,
) -> Result<(), String> {
    equivocation_offender(evidence, height, genesis_hash, params, list).map(|_| ())
}

/// [`check_equivocation`], naming the masternode the evidence bans: the one whose operator
/// key signed the votes at their height, even if it has replaced the key since.
pub(super) fn equivocation_offender(
    evidence: &Equivocation,
    height: u64,
    genesis_hash: BlockHash,
    params: &ChainParams,
    list: &MasternodeList,
) -> Result<TxId, String> {
    let (first, _) = evidence.votes();
    if first.vote.chain != genesis_hash {
        return Err("the votes are for another network".to_owned());
    }
    let offence = evidence.height();
    if offence >= height || height - offence > params.max_evidence_age_blocks {
        return Err(format!(
            "offence at height {offence} is not within the {} blocks before {height}",
            params.max_evidence_age_blocks
        ));
    }
    let offender = evidence.validator();
    let entry = list
        .by_operator_at(&offender, offence)
        .ok_or_else(|| format!("{offender} was no masternode's operator key at height {offence}"))?;
    if let Some(until) = entry.banned_until(height) {
        return Err(format!("masternode {} is already banned until {until}", entry.id));
    }
    evidence.verify().map_err(|e| e.to_string())?;
    Ok(entry.id)
}

/// Every check of a block against its parent and the chain state at the parent, signatures
/// included. `view` must show the UTXO set as of `ctx.parent`.
pub fn check_block(block: &Block, view: &impl UtxoView, ctx: &BlockContext<'_>) -> Result<CheckedBlock, BlockError> {
    check_block_with(block, view, ctx, None)
}

/// [`check_block`], skipping the signature checks `signatures` already passed (those of the
/// transactions this node admitted to its mempool) and remembering the rest.
pub fn check_block_cached(
    block: &Block,
    view: &impl UtxoView,
    ctx: &BlockContext<'_>,
    signatures: &SignatureCache,
) -> Result<CheckedBlock, BlockError> {
    check_block_with(block, view, ctx, Some(signatures))
}

fn check_block_with(
    block: &Block,
    view: &impl UtxoView,
    ctx: &BlockContext<'_>,
    signatures: Option<&SignatureCache>,
) -> Result<CheckedBlock, BlockError> {
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
    let hashed: Vec<(TxId, usize, Hash256)> = block
        .transactions
        .par_iter()
        .map(|tx| (tx.txid(), tx.encoded_len(), tx.witness_hash()))
        .collect();
    let txids: Vec<TxId> = hashed.iter().map(|(txid, _, _)| *txid).collect();
    let sizes: Vec<usize> = hashed.iter().map(|(_, size, _)| *size).collect();
    let witnesses: Vec<Hash256> = hashed.iter().map(|(_, _, witness)| *witness).collect();
    // The root covers every byte of every transaction, signatures included.
    if merkle_root(&witnesses) != block.header.merkle_root {
        return Err(BlockError::MerkleRoot);
    }

    let height = block.header.height;
    let tx_ctx = TxContext {
        params,
        genesis_hash: ctx.genesis_hash,
        height,
    };
    let mut list = ctx.masternodes.clone();
    list.begin_block(block, params);
    let mut overlay = BlockOverlay {
        base: view,
        created: HashMap::new(),
        spent: HashSet::new(),
        list,
    };
    let mut fees = Amount::ZERO;
    let mut sig_items = Vec::new();
    let mut sig_owner = Vec::new();
    for (index, ((tx, txid), size)) in block.transactions.iter().zip(&txids).zip(&sizes).enumerate() {
        if index == 0 {
            if !tx.is_reward() {
                return Err(BlockError::MisplacedReward(index));
            }
            overlay.created.extend(created_outputs(tx, *txid, height));
            continue;
        }
        let checked = overlay.check_next(index, tx, *txid, *size, &tx_ctx)?;
        overlay.apply_next(tx, *txid, &tx_ctx);
        fees = fees.checked_add(checked.fee).ok_or(BlockError::FeeOverflow)?;
        sig_owner.extend(std::iter::repeat_n(index, checked.sig_items.len()));
        sig_items.extend(checked.sig_items);
    }

    let reward = block_reward(params, ctx.parent.timestamp_ms, block.header.timestamp_ms);
    let reward_tx = block.transactions.first().ok_or(BlockError::TransactionCount {
        count: 0,
        max: params.max_block_txs,
    })?;
    check_reward_tx(reward_tx, height, reward, fees, &block.header.proposer, ctx)?;

    let verified = match signatures {
        Some(cache) => cache.verify(&sig_items),
        None => verify_signatures(&sig_items),
    };
    if verified.is_err() {
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

fn check_reward_tx(
    tx: &Transaction,
    height: u64,
    reward: Amount,
    fees: Amount,
    proposer: &PublicKey,
    ctx: &BlockContext<'_>,
) -> Result<(), BlockError> {
    if tx.version != Transaction::VERSION || tx.payload.is_some() {
        return Err(BlockError::Reward(format!("version {}", tx.version)));
    }
    if tx.lock_time != height {
        return Err(BlockError::Reward(format!(
            "lock time {} must equal the block height {height}",
            tx.lock_time
        )));
    }
    let list = ctx.masternodes;
    let expected = reward_outputs(list.voting_set(), &list.payees(ctx.params), reward, fees, proposer)?;
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
