//! What a proposer builds: the reward transaction, the block around its transactions, and
//! [`propose_block`], which keeps of the candidate evidence and transactions only what
//! [`check_block`](super::check_block) accepts (signatures aside), by running the same checks on them.

use std::collections::{HashMap, HashSet};

use timecoin_primitives::encoding::compact_size_len;
use timecoin_primitives::limits::MAX_BLOCK_EVIDENCE;
use timecoin_primitives::{
    Amount, Block, BlockHeader, CommitCertificate, Encode, Equivocation, PublicKey, Transaction, TxId, evidence_hash,
    last_commit_hash, transactions_root,
};

use crate::reward::{RewardError, block_reward, reward_outputs};

use super::block::{BlockOverlay, equivocation_offender};
use super::{BlockContext, BlockError, TxContext, UtxoView};

/// The reward transaction a proposer puts first in the block `ctx` describes.
pub fn build_reward_tx(
    ctx: &BlockContext<'_>,
    timestamp_ms: u64,
    fees: Amount,
    proposer: &PublicKey,
) -> Result<Transaction, RewardError> {
    let reward = block_reward(ctx.params, ctx.parent.timestamp_ms, timestamp_ms);
    let list = ctx.masternodes;
    Ok(Transaction {
        version: Transaction::VERSION,
        inputs: Vec::new(),
        outputs: reward_outputs(list.voting_set(), &list.payees(ctx.params), reward, fees, proposer)?,
        lock_time: ctx.parent.height.saturating_add(1),
        memo: Vec::new(),
        payload: None,
    })
}

/// What a proposer puts in a block besides its transactions.
#[derive(Debug, Clone, Default)]
pub struct BlockExtras {
    /// The certificate that finalized the parent (none when the parent is genesis).
    pub last_commit: Option<CommitCertificate>,
    /// Evidence of double-signing to record.
    pub evidence: Vec<Equivocation>,
}

/// A block for the height after `ctx.parent`: the reward transaction for `fees` first, then
/// `transactions`, under a header naming `proposer`, the voting set and the parent's state.
pub fn assemble_block(
    ctx: &BlockContext<'_>,
    timestamp_ms: u64,
    proposer: &PublicKey,
    extras: BlockExtras,
    fees: Amount,
    transactions: Vec<Transaction>,
) -> Result<Block, RewardError> {
    let reward = build_reward_tx(ctx, timestamp_ms, fees, proposer)?;
    let mut all = Vec::with_capacity(transactions.len() + 1);
    all.push(reward);
    all.extend(transactions);
    Ok(Block {
        header: BlockHeader {
            version: BlockHeader::VERSION,
            height: ctx.parent.height.saturating_add(1),
            prev_hash: ctx.parent.hash,
            timestamp_ms,
            merkle_root: transactions_root(&all),
            proposer: *proposer,
            masternode_set_hash: ctx.masternodes.voting_set().hash(),
            state_hash: ctx.parent_state,
            last_commit_hash: last_commit_hash(extras.last_commit.as_ref()),
            evidence_hash: evidence_hash(&extras.evidence),
        },
        transactions: all,
        last_commit: extras.last_commit,
        evidence: extras.evidence,
    })
}

/// The transactions of a block template that pass the block's per-transaction rules
/// together, in order, on `view` (the tip's state and masternode list): each one is judged
/// by the check `check_block` runs, signatures aside, after the ones kept before it, so a
/// transaction that conflicts with an earlier one (spends what it spent, registers its key,
/// or names as collateral what it spent) is left out, and so is whatever spends its outputs.
///
/// It cannot see the block's evidence, which bans before any transaction applies, nor the
/// block's size: [`propose_block`] does the whole job and is what a proposer should call.
pub fn select_masternode_txs(
    transactions: Vec<Transaction>,
    view: &impl UtxoView,
    ctx: &TxContext<'_>,
) -> Vec<Transaction> {
    let mut overlay = BlockOverlay {
        base: view,
        created: HashMap::new(),
        spent: HashSet::new(),
        list: view.masternodes().clone(),
    };
    let mut kept = Vec::with_capacity(transactions.len());
    for tx in transactions {
        let txid = tx.txid();
        let index = kept.len().saturating_add(1);
        if overlay.check_next(index, &tx, txid, tx.encoded_len(), ctx).is_ok() {
            overlay.apply_next(&tx, txid, ctx);
            kept.push(tx);
        }
    }
    kept
}

/// A block a proposer built ([`propose_block`]) and what it left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The block.
    pub block: Block,
    /// What its transactions pay, which its reward transaction gives the proposer.
    pub fees: Amount,
    /// The candidate transactions left out, each with the rule it would have broken at the
    /// place it would have taken.
    pub dropped: Vec<(TxId, BlockError)>,
}

/// The block a proposer builds on `ctx.parent` at `timestamp_ms`: of `extras.evidence`, the
/// proofs [`check_block`](super::check_block) accepts (one per masternode, at most [`MAX_BLOCK_EVIDENCE`]); of
/// `candidates` (a mempool template, parents before children), in order, each transaction
/// that passes the block's rules after the evidence and the transactions kept before it,
/// within the block's size and transaction count. `view` shows the UTXO set after the
/// parent; `ctx.masternodes` is the list after it.
///
/// The block passes `check_block` on that state, apart from signatures: those of pooled
/// transactions were verified on admission, and this does not verify them again.
pub fn propose_block(
    ctx: &BlockContext<'_>,
    view: &impl UtxoView,
    timestamp_ms: u64,
    proposer: &PublicKey,
    extras: BlockExtras,
    candidates: Vec<Transaction>,
) -> Result<Proposal, RewardError> {
    let params = ctx.params;
    let height = ctx.parent.height.saturating_add(1);
    let mut offenders = HashSet::new();
    let evidence: Vec<Equivocation> = extras
        .evidence
        .into_iter()
        .filter(|e| {
            equivocation_offender(e, height, ctx.genesis_hash, params, ctx.masternodes)
                .is_ok_and(|offender| offenders.insert(offender))
        })
        .take(MAX_BLOCK_EVIDENCE)
        .collect();
    let extras = BlockExtras {
        last_commit: extras.last_commit,
        evidence,
    };
    // The block without transactions, its reward paying some fee (an output more than with
    // none): the evidence moves the list before any transaction, and its size is what the
    // transactions add to.
    let bare = assemble_block(
        ctx,
        timestamp_ms,
        proposer,
        extras.clone(),
        Amount::from_units(1),
        Vec::new(),
    )?;
    let mut list = ctx.masternodes.clone();
    list.begin_block(&bare, params);
    let mut overlay = BlockOverlay {
        base: view,
        created: HashMap::new(),
        spent: HashSet::new(),
        list,
    };
    let tx_ctx = TxContext {
        params,
        genesis_hash: ctx.genesis_hash,
        height,
    };
    // All but the transaction count's own prefix, the reward transaction included.
    let framing = bare.encoded_len().saturating_sub(compact_size_len(1));
    let mut body = 0usize;
    let mut fees = Amount::ZERO;
    let mut kept: Vec<Transaction> = Vec::with_capacity(candidates.len());
    let mut dropped = Vec::new();
    for tx in candidates {
        let txid = tx.txid();
        let tx_size = tx.encoded_len();
        let index = kept.len().saturating_add(1);
        let count = index.saturating_add(1);
        let size = framing
            .saturating_add(compact_size_len(count as u64))
            .saturating_add(body)
            .saturating_add(tx_size);
        let verdict = if count > params.max_block_txs {
            Err(BlockError::TransactionCount {
                count,
                max: params.max_block_txs,
            })
        } else if size > params.max_block_bytes {
            Err(BlockError::TooLarge {
                size,
                max: params.max_block_bytes,
            })
        } else {
            overlay
                .check_next(index, &tx, txid, tx_size, &tx_ctx)
                .and_then(|checked| fees.checked_add(checked.fee).ok_or(BlockError::FeeOverflow))
        };
        match verdict {
            Ok(total) => {
                overlay.apply_next(&tx, txid, &tx_ctx);
                fees = total;
                body = body.saturating_add(tx_size);
                kept.push(tx);
            }
            Err(error) => dropped.push((txid, error)),
        }
    }
    let block = assemble_block(ctx, timestamp_ms, proposer, extras, fees, kept)?;
    Ok(Proposal { block, fees, dropped })
}
