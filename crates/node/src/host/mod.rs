//! The consensus host: drives the engine for this node, persists its WAL, and paces blocks
//! (a block when transactions wait, after the minimum interval; an empty one after the
//! empty-block interval). This module holds the loop and the engine's effects; the rest is
//! split by concern:
//!
//! - `blocks`: building this node's proposals, and checking proposed blocks against the ledger;
//! - `apply`: applying a finalized block and moving to the next height;
//! - `inbound`: what peers send (proposals, votes, evidence, announcements) and the gossip
//!   that re-sends the engine's messages;
//! - `follow`: the sync follower, for a node that fell behind.
//!
//! Peers' requests for blocks and transactions are served by a task of their own
//! (`crate::serve`), never by this loop. Blocking work (the store, block validation,
//! signature batches) runs on blocking threads; no lock is held across an `.await`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, anyhow};
use timecoin_chain::{ChainTip, Genesis, MasternodeList, SignatureCache};
use timecoin_consensus::{
    AheadWitnesses, Effect, Engine, EngineConfig, Input, ProposalGate, Step, Timeout, TimeoutConfig, ValidatorSet, Wal,
    WalEntry,
};
use timecoin_mempool::Mempool;
use timecoin_network::{Message, NetworkEvent, NetworkHandle};
use timecoin_primitives::{Block, BlockHash, CommitCertificate, Equivocation, PublicKey, SecretKey, TxId, VoteKind};
use timecoin_rpc::ConsensusStatus;
use timecoin_storage::Store;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::config::ConsensusSection;
use crate::relay::TxRelay;
use crate::serve::Requests;
use crate::sync::BlockSync;

mod apply;
mod blocks;
mod follow;
mod gossip;
mod inbound;

use apply::validators_at;
use blocks::check_on_tip;
pub(crate) use blocks::preverify;
use inbound::{queue_evidence, remember_evidence};

/// Rounds ahead of the current one for which messages are considered.
const MAX_FUTURE_ROUNDS: u32 = 64;

/// The pieces the host works with.
pub(crate) struct Host {
    pub(crate) store: Arc<Store>,
    pub(crate) genesis: Arc<Genesis>,
    pub(crate) mempool: Arc<Mutex<Mempool>>,
    /// Signatures verified already (shared with the mempool).
    pub(crate) signatures: Arc<SignatureCache>,
    /// Where relayed transactions go to be admitted.
    pub(crate) admission: crate::admission::Admission,
    pub(crate) network: NetworkHandle,
    pub(crate) hello: watch::Sender<timecoin_network::Hello>,
    pub(crate) key: Option<SecretKey>,
    pub(crate) pacing: ConsensusSection,
    /// The peer service's `masternode_peers`: the overlay's full-mesh bound.
    pub(crate) masternode_peers: usize,
    pub(crate) cancel: CancellationToken,
    pub(crate) tracker: TaskTracker,
    /// Ids of admitted transactions (from the API or peers), a batch at a time, to announce.
    pub(crate) relay: mpsc::Receiver<Vec<TxId>>,
    /// Where peers' requests for blocks and transactions are served, apart from this loop.
    pub(crate) requests: Requests,
    /// Where the engine is, for `getconsensusinfo`.
    pub(crate) status: watch::Sender<ConsensusStatus>,
    /// The wallet, which follows every applied block.
    pub(crate) wallet: Option<Arc<Mutex<crate::wallet::NodeWallet>>>,
    /// Told of every finalized block (`blocknotify`, `walletnotify`, ZMQ).
    pub(crate) notifier: crate::notify::Notifier,
}

fn step_name(step: Step) -> &'static str {
    match step {
        Step::Idle => "idle",
        Step::Propose => "propose",
        Step::Prevote => "prevote",
        Step::Precommit => "precommit",
        Step::Decided => "decided",
    }
}

enum Internal {
    Timeout(Timeout),
    Validated { height: u64, value: BlockHash, valid: bool },
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Runs a blocking closure on the blocking pool.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| anyhow!("blocking task failed: {e}"))?
}

struct State {
    engine: Engine,
    /// Height being decided (tip + 1).
    height: u64,
    /// Validators of `height`.
    validators: ValidatorSet,
    /// Validators of `height - 1`, whose late precommits join `last`'s certificate (empty
    /// until this node applied a block).
    previous_validators: ValidatorSet,
    /// Whether the engine was started for `height` (it waits for the pacing rule first).
    started: bool,
    tip: ChainTip,
    /// When this node learned of the tip (applied it, or started with it).
    tip_seen: Instant,
    /// Blocks proposed at `height`, by hash.
    blocks: HashMap<BlockHash, Block>,
    /// The block taken up in each round of `height`: one per round, so that a proposer
    /// signing many blocks cannot make this node store and validate them all.
    gate: ProposalGate,
    /// The last decision, re-sent to peers that fall behind.
    last: Option<(Block, CommitCertificate)>,
    sync: BlockSync,
    /// Validators seen signing for later heights: the f+1 rule that says this node is behind.
    ahead: AheadWitnesses,
    /// The origin of the monotonic milliseconds `ahead` is given.
    epoch: Instant,
    relay: TxRelay,
    connected: HashSet<PublicKey>,
    /// Which masternodes link to which, and who relays a vote (the same as the peer
    /// service's).
    overlay: timecoin_network::Overlay,
    /// Who holds which vote of this height.
    gossip: gossip::VoteGossip,
    /// The next height's proposals and votes that came early.
    early: gossip::Early,
    /// The highest height each connected peer sent a proposal or vote for.
    peer_heights: HashMap<PublicKey, u64>,
    /// Peers heard from (a vote) in the current round, by round: they no longer need the
    /// round's proposal re-sent.
    heard: (u32, HashSet<PublicKey>),
    /// Peers sent the last decided block since it was decided (each gets it once).
    caught_up: HashSet<PublicKey>,
    /// Equivocations already passed on, by masternode and height.
    evidence: HashSet<(PublicKey, u64)>,
    /// Verified equivocations waiting to be recorded in a block this node proposes.
    pending_evidence: Vec<Equivocation>,
    /// The masternode list after the tip.
    list: Arc<MasternodeList>,
    /// When this node started deciding `height`.
    height_started: Option<Instant>,
    /// The sync progress bar while catching up (drawn in a terminal only).
    bar: Option<indicatif::ProgressBar>,
    /// Synced blocks whose signatures are being verified ahead of their checks.
    verifying_ahead: Option<follow::VerifyingAhead>,
    /// What the peer service reports.
    events: mpsc::Receiver<NetworkEvent>,
    /// Events taken from `events` while synced blocks were looked for, and handled next, in
    /// the order they came (at most [`follow::MAX_DEFERRED`]).
    deferred: VecDeque<NetworkEvent>,
}

impl State {
    /// Monotonic milliseconds since this host started.
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether validators holding more than a third of the power signed for later heights:
    /// the network finalized this node's height without it, so it syncs instead of voting.
    fn is_behind(&self) -> bool {
        self.ahead.is_behind(self.height, &self.validators, self.now_ms())
    }
}

impl Host {
    fn engine_config(&self) -> EngineConfig {
        let p = &self.pacing;
        EngineConfig {
            chain: self.genesis.hash(),
            timeouts: TimeoutConfig {
                propose_ms: p.timeout_propose_ms,
                propose_delta_ms: p.timeout_propose_delta_ms,
                prevote_ms: p.timeout_prevote_ms,
                prevote_delta_ms: p.timeout_prevote_delta_ms,
                precommit_ms: p.timeout_precommit_ms,
                precommit_delta_ms: p.timeout_precommit_delta_ms,
            },
            min_validators: self.genesis.params.min_masternodes,
            max_future_rounds: MAX_FUTURE_ROUNDS,
        }
    }

    /// Runs until cancelled.
    pub(crate) async fn run(mut self, events: mpsc::Receiver<NetworkEvent>) -> Result<()> {
        let store = Arc::clone(&self.store);
        let (tip, list, last) = blocking(move || {
            let snapshot = store.snapshot()?;
            let tip = snapshot.tip();
            // The tip's certificate goes into the next block this node proposes.
            let last = match (store.block_by_height(tip.height)?, store.certificate(tip.height)?) {
                (Some(block), Some(certificate)) => Some((block, certificate)),
                _ => None,
            };
            Ok((tip, snapshot.masternode_list(), last))
        })
        .await?;
        let _ = self.announce_masternodes(&list, None).await;
        let mut state = State {
            engine: Engine::new(self.engine_config(), self.key.clone()),
            height: tip.height + 1,
            validators: validators_at(&list, tip.height + 1)?,
            previous_validators: ValidatorSet::default(),
            started: false,
            tip,
            tip_seen: Instant::now(),
            blocks: HashMap::new(),
            gate: ProposalGate::default(),
            last,
            sync: BlockSync::default(),
            ahead: AheadWitnesses::default(),
            epoch: Instant::now(),
            relay: TxRelay::new(),
            connected: HashSet::new(),
            overlay: self.overlay_of(&list),
            gossip: gossip::VoteGossip::default(),
            peer_heights: HashMap::new(),
            early: gossip::Early::default(),
            heard: (0, HashSet::new()),
            caught_up: HashSet::new(),
            evidence: HashSet::new(),
            pending_evidence: Vec::new(),
            list,
            height_started: None,
            bar: None,
            verifying_ahead: None,
            events,
            deferred: VecDeque::new(),
        };
        let (internal_tx, mut internal) = mpsc::channel::<Internal>(1_024);
        let mut pacing = tokio::time::interval(Duration::from_millis(100));
        let mut gossip = tokio::time::interval(Duration::from_secs(1));
        loop {
            // Events set aside while synced blocks were taken first (see `follow`).
            while let Some(event) = state.deferred.pop_front() {
                self.on_network(&mut state, event, &internal_tx).await?;
            }
            tokio::select! {
                () = self.cancel.cancelled() => return Ok(()),
                _ = pacing.tick() => self.tick(&mut state).await,
                _ = gossip.tick() => self.gossip(&mut state).await,
                Some(ids) = self.relay.recv() => {
                    // An admission batch is announced at once: each id waits no tick.
                    ids.into_iter().for_each(|id| state.relay.admitted(id));
                    self.announce(&mut state).await;
                }
                event = state.events.recv() => match event {
                    Some(event) => self.on_network(&mut state, event, &internal_tx).await?,
                    None => return Ok(()),
                },
                Some(input) = internal.recv() => match input {
                    Internal::Timeout(timeout) => {
                        self.feed(&mut state, Input::TimeoutElapsed(timeout), &internal_tx).await?;
                    }
                    Internal::Validated { height, value, valid } => {
                        self.feed(&mut state, Input::ValueValidated { height, value, valid }, &internal_tx).await?;
                    }
                },
            }
            // Checked after every event, so that a height starts as soon as the pacing rule
            // allows (the 100 ms tick only covers the passage of time).
            if !state.started && self.ready_for_next_block(&state) {
                self.start_height(&mut state, &internal_tx).await?;
            }
            self.publish_status(&state);
        }
    }

    fn publish_status(&self, state: &State) {
        let (height, round, step) = (state.height, state.engine.round(), step_name(state.engine.step()));
        let syncing = state.is_behind();
        metrics::gauge!("timecoin_consensus_round").set(f64::from(round));
        metrics::gauge!("timecoin_sync_behind").set(if syncing { 1.0 } else { 0.0 });
        metrics::gauge!("timecoin_sync_target_height").set(state.sync.best_known().max(state.tip.height) as f64);
        metrics::gauge!("timecoin_peers").set(state.connected.len() as f64);
        self.status.send_if_modified(|status| {
            let same =
                status.height == height && status.round == round && status.step == step && status.syncing == syncing;
            if !same {
                if status.syncing != syncing {
                    debug!(height, syncing, "sync state");
                }
                *status = ConsensusStatus {
                    height,
                    round,
                    step: step.to_owned(),
                    syncing,
                };
            }
            !same
        });
    }

    /// Every 100 ms: announce admitted transactions not yet announced, retire stale requests,
    /// and ask for blocks when behind.
    async fn tick(&self, state: &mut State) {
        self.announce(state).await;
        let connected = &state.connected;
        state.relay.expire(Instant::now(), |peer| connected.contains(peer));
        self.request_blocks(state).await;
    }

    /// Announces the transactions admitted since the last announcement.
    async fn announce(&self, state: &mut State) {
        for ids in state.relay.take_announcements() {
            self.network.broadcast(&Message::Inventory(ids)).await;
        }
    }

    /// Whether the next height may start: not while peers prove the network is ahead; then
    /// when the pacing rule says the next block is due ([`ConsensusSection::next_block_due`]).
    fn ready_for_next_block(&self, state: &State) -> bool {
        if state.is_behind() {
            return false;
        }
        if state.tip.height == 0 {
            // The first block needs no transactions: it starts the chain.
            return true;
        }
        let waiting = self.mempool.lock().map(|m| !m.is_empty()).unwrap_or(false);
        let seen_ms_ago = u64::try_from(state.tip_seen.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.pacing
            .next_block_due(state.tip.timestamp_ms, now_ms(), seen_ms_ago, waiting)
    }

    async fn start_height(&self, state: &mut State, internal: &mpsc::Sender<Internal>) -> Result<()> {
        state.started = true;
        state.height_started = Some(Instant::now());
        let store = Arc::clone(&self.store);
        let height = state.height;
        let (wal, proposed) = blocking(move || {
            let wal = store.consensus_wal();
            Ok((wal.entries(height)?, wal.proposed(height)?))
        })
        .await?;
        // Blocks this node proposed or precommitted at this height before it restarted: the
        // engine re-sends its logged proposals, and may propose the block it is locked on,
        // which need the bodies. Each is checked again, as a peer's
        // would be: the engine votes for a block only once it knows the block is valid, and
        // a body already held is never validated on arrival, so without this verdict a
        // re-proposal of this node's own block (the others locked on it) would get a nil
        // prevote from it in every round, and a network that needs its vote would halt.
        let restored: Vec<Block> = proposed
            .into_iter()
            .filter(|block| !state.blocks.contains_key(&block.hash()))
            .collect();
        for block in &restored {
            state.blocks.insert(block.hash(), block.clone());
        }
        let input = Input::StartHeight {
            height,
            validators: state.validators.clone(),
            wal,
        };
        self.feed(state, input, internal).await?;
        // After `StartHeight`: the engine takes verdicts for its current height only.
        for block in restored {
            self.validate(state, block, internal);
        }
        Ok(())
    }

    async fn feed(&self, state: &mut State, input: Input, internal: &mpsc::Sender<Internal>) -> Result<()> {
        let mut queue = vec![input];
        while let Some(input) = queue.pop() {
            let before = (state.engine.height(), state.engine.round(), state.engine.step());
            if let Input::TimeoutElapsed(timeout) = &input {
                debug!(height = timeout.height, round = timeout.round, kind = ?timeout.kind, "timeout elapsed");
            }
            let effects = state.engine.handle(input);
            let (height, round, step) = (state.engine.height(), state.engine.round(), state.engine.step());
            if before != (height, round, step) {
                debug!(height, round, step = step_name(step), "consensus step");
            }
            for effect in effects {
                if let Some(next) = self.on_effect(state, effect, internal).await? {
                    queue.push(next);
                }
            }
        }
        Ok(())
    }

    async fn on_effect(
        &self,
        state: &mut State,
        effect: Effect,
        internal: &mpsc::Sender<Internal>,
    ) -> Result<Option<Input>> {
        match effect {
            Effect::PersistWal(entry) => {
                // A precommit keeps the body it names with it (in the same durable write):
                // after a restart this node is locked on that block, and must be able to check
                // it and to propose it again even if whoever built it is gone.
                let body = match &entry {
                    WalEntry::Vote(vote) if vote.vote.kind == VoteKind::Precommit => {
                        vote.vote.block.and_then(|value| state.blocks.get(&value).cloned())
                    }
                    _ => None,
                };
                let store = Arc::clone(&self.store);
                blocking(move || Ok(store.consensus_wal().append_with_body(&entry, body.as_ref())?)).await?;
            }
            Effect::BroadcastProposal(proposal) => {
                if let Some(block) = state.blocks.get(&proposal.proposal.block) {
                    let message = Message::Proposal(Box::new((proposal, block.clone())));
                    self.network.broadcast(&message).await;
                }
            }
            Effect::BroadcastVote(vote) => {
                let v = &vote.vote;
                debug!(height = v.height, round = v.round, kind = ?v.kind, block = ?v.block, "voting");
                // Every peer is sent it now: the repair tick need not send it again.
                state.gossip.record(v.height, &vote, None);
                let _ = state
                    .gossip
                    .take_lacking(v.height, &vote, state.connected.iter().copied());
                self.network.broadcast(&Message::Vote(vote)).await;
            }
            Effect::ScheduleTimeout { timeout, after_ms } => {
                let sender = internal.clone();
                let cancel = self.cancel.clone();
                self.tracker.spawn(async move {
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        () = tokio::time::sleep(Duration::from_millis(after_ms)) => {
                            let _ = sender.send(Internal::Timeout(timeout)).await;
                        }
                    }
                });
            }
            Effect::RequestValue { height, round } => {
                // A block this node cannot build is a round without its proposal (the others
                // time out and move on), not a reason to stop the node.
                let block = match self.build_block(state).await {
                    Ok(block) => block,
                    Err(error) => {
                        warn!(height, round, %error, "cannot build a proposal");
                        return Ok(None);
                    }
                };
                let value = block.hash();
                // The body is kept before the proposal is signed and logged: a proposer that
                // restarts in this height sends its logged proposal again with its block.
                let (store, kept) = (Arc::clone(&self.store), block.clone());
                blocking(move || Ok(store.consensus_wal().save_proposed(height, &kept)?)).await?;
                state.blocks.insert(value, block);
                return Ok(Some(Input::ValueToPropose { height, round, value }));
            }
            Effect::Decide(decision) => self.apply_decision(state, decision).await?,
            Effect::Evidence(evidence) => {
                warn!(masternode = %evidence.validator(), height = evidence.height(), "equivocation");
                if remember_evidence(state, &evidence) {
                    queue_evidence(state, *evidence);
                    self.network.broadcast(&Message::Evidence(evidence)).await;
                }
            }
            Effect::Stalled {
                height,
                validators,
                required,
            } => {
                warn!(
                    height,
                    validators, required, "stalled: too few masternodes hold voting power"
                );
            }
        }
        Ok(None)
    }
}
