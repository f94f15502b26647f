//! This node's proposal: a template from the mempool sized around the real reward
//! transaction, of which `propose_block` keeps what passes the chain rules together after
//! the block's evidence, and then the same
//! `check_block` every peer runs. A node never proposes a block it would not accept: what
//! fails is left out and the block is checked again (CometBFT's `PrepareProposal` output is
//! checked by `ProcessProposal` on the proposer too).
//!
//! Blocking: reads the store and takes the mempool's lock; the host runs it on a blocking
//! thread.

use std::collections::HashSet;
use std::sync::Mutex;

use anyhow::{Result, anyhow};
use timecoin_chain::{
    BlockContext, BlockError, BlockExtras, ChainTip, Genesis, SignatureCache, assemble_block, build_reward_tx,
    check_block_cached, propose_block,
};
use timecoin_mempool::Mempool;
use timecoin_primitives::{
    Amount, Block, BlockHeader, CommitCertificate, Encode, Equivocation, PublicKey, Transaction, TxId,
};
use timecoin_storage::Store;
use tracing::{debug, warn};

use crate::host::now_ms;

/// Bytes a block spends on its own framing besides the header and the transactions: the
/// counts of transactions and evidence and the certificate's presence flag, with room.
const BLOCK_FRAMING: usize = 64;

/// Transactions dropped one at a time before the proposal falls back to an empty block.
const MAX_REPAIRS: usize = 16;

/// What a proposal is built from.
pub(crate) struct ProposalInputs<'a> {
    pub(crate) store: &'a Store,
    pub(crate) mempool: &'a Mutex<Mempool>,
    pub(crate) genesis: &'a Genesis,
    pub(crate) signatures: &'a SignatureCache,
    /// The block the proposal extends.
    pub(crate) tip: ChainTip,
    pub(crate) proposer: PublicKey,
    /// The certificate of the tip (none at genesis).
    pub(crate) last_commit: Option<CommitCertificate>,
    /// Evidence waiting to be recorded.
    pub(crate) evidence: Vec<Equivocation>,
}

/// Builds a block on `inputs.tip` that passes `check_block` on this node.
pub(crate) fn build_proposal(inputs: ProposalInputs<'_>) -> Result<Block> {
    let params = &inputs.genesis.params;
    let snapshot = inputs.store.snapshot()?;
    if snapshot.tip() != inputs.tip {
        return Err(anyhow!(
            "the store moved past height {} while a proposal was built",
            inputs.tip.height
        ));
    }
    let list = snapshot.masternode_list();
    let height = inputs.tip.height + 1;
    let timestamp = now_ms().max(inputs.tip.timestamp_ms + 1);
    let ctx = BlockContext {
        params,
        genesis_hash: inputs.genesis.hash(),
        parent: inputs.tip,
        masternodes: &list,
        parent_state: snapshot.state_hash(),
        now_ms: Some(timestamp),
    };
    let extras = BlockExtras {
        last_commit: inputs.last_commit,
        evidence: inputs.evidence,
    };
    // The template leaves room for the real reward transaction, which grows with the payees
    // (not with the fees); `propose_block` then keeps only what fits and passes the rules.
    let reward_size = build_reward_tx(&ctx, timestamp, Amount::ZERO, &inputs.proposer)?.encoded_len();
    let extras_size = extras.last_commit.as_ref().map_or(0, Encode::encoded_len)
        + extras.evidence.iter().map(Encode::encoded_len).sum::<usize>();
    let reserve = BlockHeader::ENCODED_LEN + BLOCK_FRAMING + reward_size + extras_size;
    let template = lock(inputs.mempool)?.block_template(
        params.max_block_bytes.saturating_sub(reserve),
        params.max_block_txs.saturating_sub(1),
    );
    let candidates: Vec<Transaction> = template.transactions.iter().map(|tx| (**tx).clone()).collect();
    let proposal = propose_block(&ctx, &snapshot, timestamp, &inputs.proposer, extras, candidates)?;
    if !proposal.dropped.is_empty() {
        debug!(
            height,
            dropped = proposal.dropped.len(),
            "template transactions left out of the proposal"
        );
    }
    let mut block = proposal.block;
    // The same check every peer runs, signatures included (cached from admission): what
    // fails is left out and the block is checked again.
    let mut repairs = 0;
    loop {
        let error = match check_block_cached(&block, &snapshot, &ctx, inputs.signatures) {
            Ok(_) => return Ok(block),
            Err(error) => error,
        };
        warn!(height, %error, transactions = block.transactions.len(), "own proposal fails the block rules; leaving out what fails");
        metrics::counter!("timecoin_proposal_repairs_total").increment(1);
        let mut transactions: Vec<Transaction> = block.transactions.iter().skip(1).cloned().collect();
        let mut extras = BlockExtras {
            last_commit: block.last_commit.clone(),
            evidence: block.evidence.clone(),
        };
        match error {
            // The reward transaction is at index 0; the mempool's start at 1.
            BlockError::Transaction { index, .. } if index >= 1 && repairs < MAX_REPAIRS => {
                repairs += 1;
                drop_with_descendants(&mut transactions, index - 1);
            }
            _ if !transactions.is_empty() => transactions.clear(),
            _ if !extras.evidence.is_empty() => extras.evidence.clear(),
            error => return Err(error.into()),
        }
        let fees = fees_of(inputs.mempool, &transactions)?;
        block = assemble_block(&ctx, timestamp, &inputs.proposer, extras, fees, transactions)?;
    }
}

/// Removes `transactions[index]` and every later transaction that spends what a removed one
/// created.
fn drop_with_descendants(transactions: &mut Vec<Transaction>, index: usize) {
    let mut removed: HashSet<TxId> = HashSet::new();
    let mut position = 0;
    transactions.retain(|tx| {
        let drop = position == index
            || (position > index && tx.inputs.iter().any(|input| removed.contains(&input.prevout.txid)));
        position += 1;
        if drop {
            removed.insert(tx.txid());
        }
        !drop
    });
}

/// What `transactions` pay, from the mempool's record of each.
fn fees_of(mempool: &Mutex<Mempool>, transactions: &[Transaction]) -> Result<Amount> {
    let pool = lock(mempool)?;
    Amount::checked_sum(
        transactions
            .iter()
            .map(|tx| pool.info(&tx.txid()).map_or(Amount::ZERO, |info| info.fee)),
    )
    .ok_or_else(|| anyhow!("the kept transactions' fees overflow"))
}

fn lock(mempool: &Mutex<Mempool>) -> Result<std::sync::MutexGuard<'_, Mempool>> {
    mempool.lock().map_err(|_| anyhow!("mempool lock poisoned"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use timecoin_primitives::{Hash256, OutPoint, PublicKey, Signature, TxInput};

    fn spending(parent: TxId, tag: u8) -> Transaction {
        Transaction {
            version: Transaction::VERSION,
            inputs: vec![TxInput {
                prevout: OutPoint { txid: parent, index: 0 },
                public_key: PublicKey::default(),
                signature: Signature([0; 64]),
            }],
            outputs: Vec::new(),
            lock_time: 0,
            memo: vec![tag],
            payload: None,
        }
    }

    #[test]
    fn dropping_a_transaction_drops_what_spends_it() {
        let root = spending(TxId(Hash256([1; 32])), 0);
        let child = spending(root.txid(), 1);
        let unrelated = spending(TxId(Hash256([2; 32])), 2);
        let grandchild = spending(child.txid(), 3);
        let mut txs = vec![root, unrelated.clone(), child, grandchild];
        drop_with_descendants(&mut txs, 0);
        assert_eq!(txs, vec![unrelated]);
    }
}
