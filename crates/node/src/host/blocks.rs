//! Blocks this node proposes and blocks it is asked to vote on: building a proposal from the
//! mempool, and checking a proposed block against the ledger on a blocking thread, with the
//! verdict fed back to the engine.

use std::sync::Arc;

use anyhow::{Result, anyhow};
use timecoin_chain::{BlockContext, BlockError, ChainTip, Genesis, SignatureCache, TxContext, check_block_cached};
use timecoin_primitives::{Block, SecretKey, Transaction};
use timecoin_storage::{Snapshot, Store};
use tokio::sync::mpsc;
use tracing::warn;

use super::{Host, Internal, State, blocking, now_ms};

/// Checks `block` against the chain rules on top of `tip` (blocking: reads the store).
/// `now_ms` is this node's clock for a proposal it votes on, `None` for a certified block.
pub(super) fn check_on_tip(
    store: &Store,
    genesis: &Genesis,
    signatures: &SignatureCache,
    tip: ChainTip,
    block: &Block,
    now_ms: Option<u64>,
) -> Result<()> {
    let snapshot = store.snapshot()?;
    if snapshot.tip() != tip {
        return Err(anyhow!(
            "the store moved past height {} while a block was checked",
            tip.height
        ));
    }
    let list = snapshot.masternode_list();
    let ctx = BlockContext {
        params: &genesis.params,
        genesis_hash: genesis.hash(),
        parent: tip,
        masternodes: &list,
        parent_state: snapshot.state_hash(),
        now_ms,
    };
    check_block_cached(block, &snapshot, &ctx, signatures)?;
    Ok(())
}

/// Verifies the signatures of `txs` that spend confirmed outputs into `signatures`, before
/// the mempool's lock is taken (blocking: parallel batches).
pub(crate) fn preverify(signatures: &SignatureCache, genesis: &Genesis, snapshot: &Snapshot, txs: &[Transaction]) {
    let ctx = TxContext {
        params: &genesis.params,
        genesis_hash: genesis.hash(),
        height: snapshot.tip().height + 1,
    };
    signatures.preverify(txs, snapshot, &ctx);
}

impl Host {
    pub(super) async fn build_block(&self, state: &State) -> Result<Block> {
        let proposer = self
            .key
            .as_ref()
            .map(SecretKey::public_key)
            .ok_or_else(|| anyhow!("asked to propose without a masternode key"))?;
        let (store, mempool, genesis, signatures, tip) = (
            Arc::clone(&self.store),
            Arc::clone(&self.mempool),
            Arc::clone(&self.genesis),
            Arc::clone(&self.signatures),
            state.tip,
        );
        let last_commit = state
            .last
            .as_ref()
            .filter(|(block, _)| block.header.height == tip.height && tip.height > 0)
            .map(|(_, certificate)| certificate.clone());
        let evidence = state.pending_evidence.clone();
        blocking(move || {
            let timer = crate::metrics::StageTimer::start("proposal");
            let proposal = crate::propose::build_proposal(crate::propose::ProposalInputs {
                store: &store,
                mempool: &mempool,
                genesis: &genesis,
                signatures: &signatures,
                tip,
                proposer,
                last_commit,
                evidence,
            });
            timer.finish();
            proposal
        })
        .await
    }

    /// Checks a proposed block against the tip on a blocking thread and reports the verdict.
    ///
    /// A block refused only because its timestamp is ahead of this node's clock is not
    /// refused for good: it is checked again once the clock has caught up (if that is within
    /// [`MAX_CLOCK_WAIT_MS`]), and no verdict is given meanwhile. The engine keeps a verdict
    /// for the whole height, and a proposal reaches nodes at different moments: a Byzantine
    /// proposer that stamps its block at the edge of the allowance could otherwise get some
    /// honest nodes to lock on it and the others to refuse it forever, and so halt the height.
    pub(super) fn validate(&self, state: &State, block: Block, internal: &mpsc::Sender<Internal>) {
        let (store, genesis, signatures, tip, height) = (
            Arc::clone(&self.store),
            Arc::clone(&self.genesis),
            Arc::clone(&self.signatures),
            state.tip,
            state.height,
        );
        let (sender, cancel, mut applied) = (internal.clone(), self.cancel.clone(), self.hello.subscribe());
        self.tracker.spawn(async move {
            let (value, proposer) = (block.hash(), block.header.proposer);
            let block = Arc::new(block);
            let valid = loop {
                let (store, genesis, signatures, block) = (
                    Arc::clone(&store),
                    Arc::clone(&genesis),
                    Arc::clone(&signatures),
                    Arc::clone(&block),
                );
                let now = now_ms();
                let verdict = blocking(move || {
                    let timer = crate::metrics::StageTimer::start("validation");
                    let verdict = check_on_tip(&store, &genesis, &signatures, tip, &block, Some(now));
                    timer.finish();
                    verdict
                })
                .await;
                let Err(error) = verdict else {
                    break true;
                };
                if applied.borrow().best_height != tip.height {
                    // The height was decided meanwhile (the store moved on): no verdict wanted.
                    return;
                }
                let Some(wait_ms) = clock_wait_ms(&error, now) else {
                    // A refused proposal makes this node prevote nil: say why (at most once a
                    // round, since the proposal gate lets one block a round through).
                    warn!(height, block = %value, %proposer, error = format!("{error:#}"), "proposed block refused");
                    break false;
                };
                warn!(height, block = %value, %proposer, wait_ms, "proposed block is ahead of this node's clock; checking it again then");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    // The height is over: no verdict is wanted any more.
                    _ = applied.wait_for(|hello| hello.best_height != tip.height) => return,
                    () = tokio::time::sleep(std::time::Duration::from_millis(wait_ms)) => {}
                }
            };
            let _ = sender.send(Internal::Validated { height, value, valid }).await;
        });
    }
}

/// The longest this node waits for its clock to reach a proposed block's timestamp; a block
/// further ahead is refused (honest clocks are seconds apart, not minutes).
pub(super) const MAX_CLOCK_WAIT_MS: u64 = 60_000;

/// How long to wait before checking again a block refused at local time `now` only for its
/// timestamp being too far ahead, if that is worth waiting for.
pub(super) fn clock_wait_ms(error: &anyhow::Error, now: u64) -> Option<u64> {
    error
        .chain()
        .find_map(|cause| match cause.downcast_ref::<BlockError>() {
            Some(BlockError::TimestampInFuture {
                found, max_ahead_ms, ..
            }) => {
                let wait = found.saturating_sub(max_ahead_ms.saturating_add(now)).saturating_add(1);
                (wait <= MAX_CLOCK_WAIT_MS).then_some(wait)
            }
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ahead(found: u64, now: u64) -> anyhow::Error {
        anyhow::Error::new(BlockError::TimestampInFuture {
            found,
            now,
            max_ahead_ms: 15_000,
        })
        .context("proposed block")
    }

    #[test]
    fn a_block_ahead_of_the_clock_is_checked_again_once_the_clock_catches_up() {
        let now = 1_000_000;
        // 2 s beyond the 15 s allowance: checked again 2 s (and a millisecond) later.
        assert_eq!(clock_wait_ms(&ahead(now + 17_000, now), now), Some(2_001));
        // At the limit of waiting, and past it.
        assert_eq!(clock_wait_ms(&ahead(now + 15_000 + 59_999, now), now), Some(60_000));
        assert_eq!(clock_wait_ms(&ahead(now + 15_000 + 60_000, now), now), None);
        // Any other refusal is final.
        let other = anyhow::Error::new(BlockError::TimestampNotIncreasing { parent: 5, found: 4 });
        assert_eq!(clock_wait_ms(&other, now), None);
        assert_eq!(clock_wait_ms(&anyhow::anyhow!("the store moved"), now), None);
    }
}
