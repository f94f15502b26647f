//! Applying a finalized block: the store, the mempool, the wallet, the masternode list and
//! the next height's validator set, with the block's metrics.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use timecoin_chain::{MasternodeList, check_equivocation};
use timecoin_consensus::{Decision, Engine, ValidatorSet, Wal};
use timecoin_network::{Message, Overlay};
use timecoin_primitives::{Block, CommitCertificate, PublicKey, SecretKey};
use tracing::{info, warn};

use super::{Host, State, blocking};

/// The validator set of `height` under `list` (the list after `height - 1`): its voting set,
/// with proposer priorities advanced once per height since the set took effect.
pub(super) fn validators_at(list: &MasternodeList, height: u64) -> Result<ValidatorSet> {
    let mut set = ValidatorSet::from_masternodes(list.voting_set())?;
    for _ in list.set_since()..height {
        set = set.next_height();
    }
    Ok(set)
}

impl Host {
    /// Metrics of a block just applied: height, apply time, interval, and for a block this
    /// node decided, the commit latency and the masternodes whose precommit is missing.
    pub(super) fn record_block(
        &self,
        state: &State,
        block: &Block,
        certificate: &CommitCertificate,
        apply: Duration,
        decided_here: bool,
    ) {
        metrics::gauge!("timecoin_chain_height").set(block.header.height as f64);
        metrics::counter!("timecoin_blocks_finalized_total").increment(1);
        metrics::histogram!("timecoin_block_apply_seconds").record(apply.as_secs_f64());
        let coins = self.store.coins_cache();
        metrics::gauge!("timecoin_coins_cache_bytes").set(coins.bytes as f64);
        metrics::gauge!("timecoin_coins_unflushed_blocks").set(coins.unflushed_blocks as f64);
        let interval_ms = block.header.timestamp_ms.saturating_sub(state.tip.timestamp_ms);
        metrics::histogram!("timecoin_block_interval_seconds").record(interval_ms as f64 / 1_000.0);
        if !decided_here {
            metrics::counter!("timecoin_sync_blocks_applied_total").increment(1);
            return;
        }
        if let Some(started) = state.height_started {
            metrics::histogram!("timecoin_commit_latency_seconds").record(started.elapsed().as_secs_f64());
        }
        for validator in state.validators.validators() {
            if !certificate.signatures.iter().any(|s| s.validator == validator.key) {
                metrics::counter!("timecoin_votes_missed_total", "masternode" => validator.key.to_string())
                    .increment(1);
            }
        }
    }

    /// The overlay over `list`'s masternodes, as the peer service lays it out.
    pub(super) fn overlay_of(&self, list: &MasternodeList) -> Overlay {
        Overlay::new(list.entries().iter().map(|e| e.operator), self.masternode_peers)
    }

    /// Tells the peer service which identities are masternodes (their links are dialled and
    /// never evicted) and where the list says they listen. `previous` is the list before, to
    /// announce only what changed; returns whether anything did.
    pub(super) async fn announce_masternodes(&self, list: &MasternodeList, previous: Option<&MasternodeList>) -> bool {
        // Penalties and payment records change every block; only keys and addresses matter
        // to the peer service.
        let contacts = |l: &MasternodeList| -> Vec<(PublicKey, Option<std::net::SocketAddr>)> {
            l.entries().iter().map(|e| (e.operator, e.service)).collect()
        };
        let now = contacts(list);
        let before = previous.map(contacts);
        if before.as_ref() == Some(&now) {
            return false;
        }
        self.network
            .set_masternodes(now.iter().map(|(operator, _)| *operator))
            .await;
        let own = self.key.as_ref().map(SecretKey::public_key);
        for (operator, service) in &now {
            let known = before.as_ref().is_some_and(|b| b.contains(&(*operator, *service)));
            if let Some(service) = service
                && !known
                && Some(*operator) != own
            {
                self.network.add_address(*service).await;
            }
        }
        true
    }

    /// Tells peers of a block this node decided. Peers voting at its height or the one
    /// before gather the precommits as this node did and get nothing (the slowest third of a
    /// set is often not heard from yet when the fastest decide: pushing them the block cost
    /// more than all the votes); the others — peers outside the voting set (they follow by
    /// blocks), and masternodes two heights behind or not heard from yet — are sent the
    /// block with its certificate. A masternode still deciding this height when next heard
    /// from (Byzantine signers may have sent their precommits to this node alone) is sent it
    /// then, once (`heard_from`).
    async fn announce_decision(&self, state: &State, block: &Block, certificate: &CommitCertificate) {
        let height = block.header.height;
        let behind: Vec<PublicKey> = state
            .connected
            .iter()
            .filter(|peer| {
                state
                    .peer_heights
                    .get(*peer)
                    .is_none_or(|heard| heard.saturating_add(1) < height)
            })
            .copied()
            .collect();
        if !behind.is_empty() {
            metrics::counter!("timecoin_blocks_pushed_total", "to" => "behind").increment(behind.len() as u64);
            let message = Message::Blocks(vec![(block.clone(), certificate.clone())]);
            self.network.send_each(behind, &message).await;
        }
    }

    pub(super) async fn apply_decision(&self, state: &mut State, decision: Decision) -> Result<()> {
        let block = state
            .blocks
            .remove(&decision.value)
            .ok_or_else(|| anyhow!("decided block {} is not known", decision.value))?;
        self.apply_block(state, Arc::new(block), decision.certificate, true)
            .await
    }

    /// Applies a finalized block and moves to the next height. A block this node decided is
    /// `announce`d at once (see `announce_decision`); a synced one is not (a node catching up
    /// would otherwise send hundreds of them a second and be banned for exceeding the sync
    /// rate).
    pub(super) async fn apply_block(
        &self,
        state: &mut State,
        block: Arc<Block>,
        certificate: CommitCertificate,
        announce: bool,
    ) -> Result<()> {
        let (store, mempool) = (Arc::clone(&self.store), Arc::clone(&self.mempool));
        let wallet = self.wallet.clone();
        let applied_certificate = certificate.clone();
        let applying = Instant::now();
        // The block is shared with the blocking thread (a full one is 2 MB: not copied).
        let (applied, list, block, ours, served_from) = blocking(move || {
            let timer = crate::metrics::StageTimer::start("apply");
            let applied = store.apply_block(&block, Some(&applied_certificate))?;
            let snapshot = store.snapshot()?;
            let list = snapshot.masternode_list();
            mempool
                .lock()
                .map_err(|_| anyhow!("mempool lock poisoned"))?
                .block_connected(&block, &snapshot)?;
            let ours = match wallet {
                Some(wallet) => wallet
                    .lock()
                    .map_err(|_| anyhow!("wallet lock poisoned"))?
                    .scan_block(&block),
                None => Vec::new(),
            };
            store.consensus_wal().prune_below(block.header.height + 1)?;
            // The block is stored whatever pruning does: a failure is logged, and the next
            // block tries again. Only pruning moves the lowest block served.
            let served_from = match store.prune_target().map(|target| store.prune_to(target)) {
                Some(Ok(state)) => Some(state.served_from()),
                Some(Err(error)) => {
                    warn!(%error, "pruning old blocks failed");
                    None
                }
                None => None,
            };
            timer.finish();
            Ok((applied, list, block, ours, served_from))
        })
        .await
        .context("applying a finalized block")?;
        self.notifier.block(Arc::clone(&block), ours);
        self.record_block(state, &block, &certificate, applying.elapsed(), announce);
        info!(
            height = block.header.height,
            hash = %block.hash(),
            round = certificate.round,
            txs = block.transactions.len(),
            proposer = %block.header.proposer,
            block_time_ms = block.header.timestamp_ms,
            synced = !announce,
            "finalized"
        );
        state.tip = applied.tip;
        state.tip_seen = Instant::now();
        state.height = applied.tip.height + 1;
        let now = state.now_ms();
        state.ahead.advance(state.height, now);
        let next_validators = if list.set_since() == state.height {
            validators_at(&list, state.height)?
        } else {
            state.validators.next_height()
        };
        state.previous_validators = std::mem::replace(&mut state.validators, next_validators);
        // Evidence the block recorded, or that can no longer enter one, leaves the queue.
        let genesis_hash = self.genesis.hash();
        state.pending_evidence.retain(|e| {
            !block.evidence.contains(e)
                && check_equivocation(e, state.height, genesis_hash, &self.genesis.params, &list).is_ok()
        });
        for evidence in &block.evidence {
            warn!(masternode = %evidence.validator(), height = evidence.height(), "evidence recorded: masternode banned");
        }
        for status in ["pending", "active", "pose-banned", "banned", "revoked"] {
            let count = list.entries().iter().filter(|e| e.status.name() == status).count();
            metrics::gauge!("timecoin_masternodes", "status" => status).set(count as f64);
        }
        metrics::gauge!("timecoin_voting_power").set(list.voting_set().total_voting_power() as f64);
        let previous = std::mem::replace(&mut state.list, Arc::clone(&list));
        if self.announce_masternodes(&list, Some(&previous)).await {
            state.overlay = self.overlay_of(&list);
        }
        state.started = false;
        state.blocks.clear();
        state.heard = (0, HashSet::new());
        state.caught_up.clear();
        state.gate.clear();
        state.engine = Engine::new(self.engine_config(), self.key.clone());
        // The next height's messages that came early are handled now, as if they came again.
        let early = state.early.take(state.height);
        state.deferred.extend(early);
        self.hello.send_modify(|hello| {
            hello.best_height = applied.tip.height;
            hello.best_hash = applied.tip.hash;
            if let Some(lowest) = served_from {
                hello.set_lowest_height(lowest);
            }
        });
        if announce {
            self.announce_decision(state, &block, &certificate).await;
        }
        // Shared only while a sync's look-ahead still reads it (see `follow`).
        let block = Arc::try_unwrap(block).unwrap_or_else(|shared| (*shared).clone());
        state.last = Some((block, certificate));
        Ok(())
    }
}
