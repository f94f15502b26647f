//! The sync follower: asking peers for the blocks this node lacks, verifying their
//! certificates, applying them in order, and showing a progress bar in a terminal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use timecoin_chain::OutputsAhead;
use timecoin_network::{Message, NetworkEvent};
use timecoin_primitives::{Block, CommitCertificate, Encode};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::sync::BATCH;

/// Blocks after the one being applied whose signatures a node catching up verifies meanwhile,
/// at most (a flush of the coins pauses the applier for most of a second: enough for several).
const VERIFY_AHEAD: u64 = 8;

/// Synced blocks whose signatures a task verifies ahead of their checks, one after another.
pub(super) struct VerifyingAhead {
    /// The last height the task was given.
    last: u64,
    /// The highest height it verified, or at first the height of the block being applied
    /// when it started (closed when the task ends: it stops at a block it cannot check).
    verified: watch::Receiver<u64>,
    /// Owned by the host's tracker, so shutdown waits for it.
    task: tokio::task::JoinHandle<()>,
}

impl VerifyingAhead {
    /// The height of a block the task stopped at, unable to check it, if it did.
    fn refused(&self) -> Option<u64> {
        let verified = *self.verified.borrow();
        (self.task.is_finished() && verified < self.last).then_some(verified + 1)
    }
}

/// Events a node catching up sets aside while it looks for the blocks that arrived; with this
/// many waiting, it stops to handle them.
pub(super) const MAX_DEFERRED: usize = 1_024;

use super::{Host, State, blocking, check_on_tip};

impl Host {
    /// Asks peers for the block ranges the node lacks (several peers at once; see `sync`).
    pub(super) async fn request_blocks(&self, state: &mut State) {
        for (peer, from) in state.sync.requests(state.height, Instant::now()) {
            let request = Message::GetBlocks {
                from,
                count: BATCH as u32,
            };
            self.network.send(peer, &request).await;
        }
    }

    /// Applies the buffered blocks that follow the tip, each after its certificate and
    /// content verify; a peer whose block does not is banned and its blocks dropped. While a
    /// block is checked and applied, a task verifies the signatures of the next ones: see
    /// [`Host::verify_ahead`].
    pub(super) async fn apply_synced(&self, state: &mut State) -> Result<()> {
        loop {
            if self.cancel.is_cancelled() {
                return Ok(());
            }
            // The next block's signatures may be being verified ahead: its check waits for
            // that rather than doing it again.
            wait_for_verified_ahead(state).await;
            let Some((block, certificate, peer)) = state.sync.take(state.height) else {
                break;
            };
            // Blocks that arrived while the last one was applied join the buffer now, so that
            // they are verified while this one is applied.
            collect_arrived_blocks(state);
            self.verify_ahead(state, &block);
            let block = match self.verify_synced(state, block, &certificate).await {
                Ok(block) => block,
                Err(error) => {
                    warn!(%peer, height = state.height, error = format!("{error:#}"), "peer sent a block with an invalid certificate or content; banned");
                    state.sync.lied(&peer);
                    self.network.disconnect(peer, Some(Duration::from_secs(3_600))).await;
                    continue;
                }
            };
            self.apply_block(state, block, certificate, false).await?;
            // Peers that answered are asked again at once, not once the buffer runs dry.
            self.request_blocks(state).await;
            if let Some(line) = state.sync.progress(state.tip.height, Instant::now()) {
                info!("{line}");
            }
            self.draw_bar(state);
        }
        self.request_blocks(state).await;
        Ok(())
    }

    /// Verifies, on the blocking pool and while `applying` is checked and applied, the
    /// signatures of up to [`VERIFY_AHEAD`] blocks buffered after it, one block after another,
    /// and remembers them in the signature cache; it stops at the first block whose body does
    /// not match its header or whose certificate does not verify against the voting set of
    /// the tip (a block a later set certified is left to its own check). One such task at a
    /// time; the check of a block it was given waits until it is done with that block.
    fn verify_ahead(&self, state: &mut State, applying: &Arc<Block>) {
        let first = applying.header.height + 1;
        // Blocks the last task verified need only their outputs now; a block it could not
        // check is not tried again (each try costs a certificate check) before its turn.
        let (mut verified, mut refused) = (0, 0);
        if let Some(ahead) = &state.verifying_ahead {
            verified = *ahead.verified.borrow();
            // Still working on blocks not yet applied: it goes on.
            if verified < ahead.last && ahead.last >= first && !ahead.task.is_finished() {
                return;
            }
            refused = ahead.refused().unwrap_or(0);
        }
        let mut blocks = state.sync.buffered_from(first, VERIFY_AHEAD);
        if refused >= first {
            blocks.retain(|(block, _)| block.header.height < refused);
        }
        let Some(last) = blocks.last().map(|(block, _)| block.header.height) else {
            return;
        };
        if last <= verified {
            return;
        }
        let (store, genesis, signatures, list) = (
            Arc::clone(&self.store),
            Arc::clone(&self.genesis),
            Arc::clone(&self.signatures),
            Arc::clone(&state.list),
        );
        let (progress, receiver) = watch::channel(applying.header.height);
        let applying = Arc::clone(applying);
        let task = self.tracker.spawn_blocking(move || {
            let (genesis_hash, params) = (genesis.hash(), &genesis.params);
            // The outputs of the block being applied, which the next ones may spend; it is let
            // go at once, so that its application need not copy it.
            let mut ahead = OutputsAhead::default();
            ahead.add_block(&applying);
            drop(applying);
            // At the tip before or after `applying`: its outputs are in `ahead` either way.
            let Ok(snapshot) = store.snapshot() else {
                return;
            };
            for (block, certificate) in &blocks {
                let height = block.header.height;
                if height <= verified {
                    ahead.add_block(block);
                    continue;
                }
                // A body that matches the certified header within the limits, and a quorum's
                // certificate, first: a peer's made-up blocks cost no signature checks.
                let certified = block.transactions.len() <= params.max_block_txs
                    && block.encoded_len() <= params.max_block_bytes
                    && block.matches_header()
                    && certificate
                        .verify(&genesis_hash, height, &block.hash(), list.voting_set(), rand::rng())
                        .is_ok();
                if !certified {
                    return;
                }
                signatures.preverify_block(block, &mut ahead, &snapshot, params, genesis_hash);
                if progress.send(height).is_err() {
                    return;
                }
            }
        });
        state.verifying_ahead = Some(VerifyingAhead {
            last,
            verified: receiver,
            task,
        });
    }

    /// While catching up, a progress bar on standard error (drawn only in a terminal, by
    /// indicatif, which limits its redraws and estimates the time left); cleared at the tip.
    pub(super) fn draw_bar(&self, state: &mut State) {
        let (height, target) = (state.tip.height, state.sync.best_known());
        if target <= height {
            if let Some(bar) = state.bar.take() {
                bar.finish_and_clear();
            }
            return;
        }
        let bar = state.bar.get_or_insert_with(|| {
            let bar = indicatif::ProgressBar::new(target);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("syncing [{bar:30}] {percent:>3}% {pos}/{len} eta {eta}")
            {
                bar.set_style(style.progress_chars("#>."));
            }
            bar.set_position(height);
            bar.reset_eta();
            bar
        });
        bar.set_length(target);
        bar.set_position(height);
    }

    /// Checks a block from sync: its certificate against the voting set the list fixed for
    /// it, then its content; the block is given back.
    pub(super) async fn verify_synced(
        &self,
        state: &State,
        block: Arc<Block>,
        certificate: &CommitCertificate,
    ) -> Result<Arc<Block>> {
        let (store, genesis, tip) = (Arc::clone(&self.store), Arc::clone(&self.genesis), state.tip);
        let signatures = Arc::clone(&self.signatures);
        let (certificate, list) = (certificate.clone(), Arc::clone(&state.list));
        blocking(move || {
            certificate.verify(
                &genesis.hash(),
                block.header.height,
                &block.hash(),
                list.voting_set(),
                rand::rng(),
            )?;
            // Certified: the clock rule is for proposals, not for what is final.
            check_on_tip(&store, &genesis, &signatures, tip, &block, None)?;
            Ok(block)
        })
        .await
    }
}

/// Moves the blocks that peers sent meanwhile from the event queue to the sync buffer; every
/// other event is set aside, in order, for the main loop (which handles those first). Stops
/// at [`MAX_DEFERRED`] events set aside.
fn collect_arrived_blocks(state: &mut State) {
    while state.deferred.len() < MAX_DEFERRED {
        let Ok(event) = state.events.try_recv() else {
            break;
        };
        match event {
            NetworkEvent::Message {
                peer,
                message: Message::Blocks(blocks),
                // The block at `state.height` is in hand: the next one is the one after it.
            } => state.sync.received(peer, state.height + 1, blocks),
            other => state.deferred.push_back(other),
        }
    }
}

/// Waits until the task verifying ahead is done with the next block to check, if it was given
/// that block.
async fn wait_for_verified_ahead(state: &mut State) {
    let height = state.height;
    if let Some(ahead) = state.verifying_ahead.as_mut()
        && ahead.last >= height
    {
        // An error: the task ended without it (it stopped at a block it could not check).
        let _ = ahead.verified.wait_for(|verified| *verified >= height).await;
    }
}
