//! The sync follower: asking peers for the blocks this node lacks, verifying their
//! certificates, applying them in order, and showing a progress bar in a terminal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use timecoin_network::Message;
use timecoin_primitives::{Block, CommitCertificate};
use tracing::{info, warn};

use crate::sync::BATCH;

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
    /// content verify; a peer whose block does not is banned and its blocks dropped.
    pub(super) async fn apply_synced(&self, state: &mut State) -> Result<()> {
        while let Some((block, certificate, peer)) = state.sync.take(state.height) {
            if !self.verify_synced(state, &block, &certificate).await {
                warn!(%peer, height = block.header.height, "peer sent a block with an invalid certificate or content; banned");
                state.sync.lied(&peer);
                self.network.disconnect(peer, Some(Duration::from_secs(3_600))).await;
                continue;
            }
            self.apply_block(state, block, certificate, false).await?;
            if let Some(line) = state.sync.progress(state.tip.height, Instant::now()) {
                info!("{line}");
            }
            self.draw_bar(state);
        }
        self.request_blocks(state).await;
        Ok(())
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
    /// it, then its content.
    pub(super) async fn verify_synced(&self, state: &State, block: &Block, certificate: &CommitCertificate) -> bool {
        let (store, genesis, tip) = (Arc::clone(&self.store), Arc::clone(&self.genesis), state.tip);
        let signatures = Arc::clone(&self.signatures);
        let (block, certificate, list) = (block.clone(), certificate.clone(), Arc::clone(&state.list));
        blocking(move || {
            certificate.verify(
                &genesis.hash(),
                block.header.height,
                &block.hash(),
                list.voting_set(),
                rand::rng(),
            )?;
            // Certified: the clock rule is for proposals, not for what is final.
            check_on_tip(&store, &genesis, &signatures, tip, &block, None)
        })
        .await
        .is_ok()
    }
}
