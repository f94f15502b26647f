//! The consensus host: drives the engine for this node, persists its WAL, builds proposals
//! from the mempool, validates proposals against the ledger, applies decided blocks with
//! their certificates, serves and follows block sync, and paces blocks (a block when
//! transactions wait, after the minimum interval; an empty one after the empty-block
//! interval).
//!
//! Blocking work — the store, block validation, signature batches — runs on blocking
//! threads; no lock is held across an `.await`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use timecoin_chain::{
    BlockContext, ChainTip, Genesis, MasternodeList, SignatureCache, TxContext, check_block_cached, check_equivocation,
};
use timecoin_consensus::{
    AheadWitnesses, Arrival, Decision, Effect, Engine, EngineConfig, Input, ProposalAdmission, ProposalGate, Step,
    Timeout, TimeoutConfig, ValidatorSet, Wal,
};
use timecoin_mempool::Mempool;
use timecoin_network::{Message, NetworkEvent, NetworkHandle, Offense};
use timecoin_primitives::{
    Block, BlockHash, CommitCertificate, Equivocation, PublicKey, SecretKey, SignedVote, Transaction, TxId,
};
use timecoin_rpc::ConsensusStatus;
use timecoin_storage::{Snapshot, Store};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::config::ConsensusSection;
use crate::relay::TxRelay;
use crate::serve::{Request, Requests};
use crate::sync::{BATCH, BlockSync};

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
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Checks `block` against the chain rules on top of `tip` (blocking: reads the store).
/// `now_ms` is this node's clock for a proposal it votes on, `None` for a certified block.
fn check_on_tip(
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

/// The validator set of `height` under `list` (the list after `height - 1`): its voting set,
/// with proposer priorities advanced once per height since the set took effect.
fn validators_at(list: &MasternodeList, height: u64) -> Result<ValidatorSet> {
    let mut set = ValidatorSet::from_masternodes(list.voting_set())?;
    for _ in list.set_since()..height {
        set = set.next_height();
    }
    Ok(set)
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
    /// When the sync progress bar was last drawn (a terminal only).
    bar_drawn: Option<Instant>,
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

/// Most equivocations remembered; older heights are forgotten first.
const MAX_EVIDENCE: usize = 10_000;

/// Most equivocations waiting for a block; more are dropped (each masternode needs one).
const MAX_PENDING_EVIDENCE: usize = 256;

/// Keeps `evidence` for the next block this node proposes.
fn queue_evidence(state: &mut State, evidence: Equivocation) {
    let offender = evidence.validator();
    if state.pending_evidence.len() < MAX_PENDING_EVIDENCE
        && !state.pending_evidence.iter().any(|e| e.validator() == offender)
    {
        state.pending_evidence.push(evidence);
    }
}

/// Records `evidence`; returns whether it is new (and so worth passing on).
fn remember_evidence(state: &mut State, evidence: &timecoin_primitives::Equivocation) -> bool {
    if state.evidence.len() >= MAX_EVIDENCE {
        let floor = state.height.saturating_sub(100);
        state.evidence.retain(|(_, height)| *height >= floor);
        if state.evidence.len() >= MAX_EVIDENCE {
            state.evidence.clear();
        }
    }
    state.evidence.insert((evidence.validator(), evidence.height()))
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
    pub(crate) async fn run(mut self, mut events: mpsc::Receiver<NetworkEvent>) -> Result<()> {
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
        self.announce_masternodes(&list, None).await;
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
            heard: (0, HashSet::new()),
            caught_up: HashSet::new(),
            evidence: HashSet::new(),
            pending_evidence: Vec::new(),
            list,
            height_started: None,
            bar_drawn: None,
        };
        let (internal_tx, mut internal) = mpsc::channel::<Internal>(1_024);
        let mut pacing = tokio::time::interval(Duration::from_millis(100));
        let mut gossip = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return Ok(()),
                _ = pacing.tick() => self.tick(&mut state).await,
                _ = gossip.tick() => self.gossip(&state).await,
                Some(ids) = self.relay.recv() => {
                    // An admission batch is announced at once: each id waits no tick.
                    ids.into_iter().for_each(|id| state.relay.admitted(id));
                    self.announce(&mut state).await;
                }
                event = events.recv() => match event {
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

    /// Metrics of a block just applied: height, apply time, interval, and for a block this
    /// node decided, the commit latency and the masternodes whose precommit is missing.
    fn record_block(
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
        // Blocks this node proposed at this height before it restarted: the engine re-sends
        // their logged proposals, which need the bodies. Each is checked again, as a peer's
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
                let store = Arc::clone(&self.store);
                blocking(move || Ok(store.consensus_wal().append(&entry)?)).await?;
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

    async fn build_block(&self, state: &State) -> Result<Block> {
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
            crate::propose::build_proposal(crate::propose::ProposalInputs {
                store: &store,
                mempool: &mempool,
                genesis: &genesis,
                signatures: &signatures,
                tip,
                proposer,
                last_commit,
                evidence,
            })
        })
        .await
    }

    /// Tells the peer service which identities are masternodes (they are dialled first and
    /// never evicted) and where the list says they listen. `previous` is the list before, to
    /// announce only what changed.
    async fn announce_masternodes(&self, list: &MasternodeList, previous: Option<&MasternodeList>) {
        // Penalties and payment records change every block; only keys and addresses matter
        // to the peer service.
        let contacts = |l: &MasternodeList| -> Vec<(PublicKey, Option<std::net::SocketAddr>)> {
            l.entries().iter().map(|e| (e.operator, e.service)).collect()
        };
        let now = contacts(list);
        let before = previous.map(contacts);
        if before.as_ref() == Some(&now) {
            return;
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
    }

    /// Checks a proposed block against the tip on a blocking thread and reports the verdict.
    fn validate(&self, state: &State, block: Block, internal: &mpsc::Sender<Internal>) {
        let (store, genesis, signatures, tip, height) = (
            Arc::clone(&self.store),
            Arc::clone(&self.genesis),
            Arc::clone(&self.signatures),
            state.tip,
            state.height,
        );
        let sender = internal.clone();
        self.tracker.spawn(async move {
            let value = block.hash();
            let proposer = block.header.proposer;
            let verdict =
                blocking(move || check_on_tip(&store, &genesis, &signatures, tip, &block, Some(now_ms()))).await;
            // A refused proposal makes this node prevote nil: say why (at most once a round,
            // since the proposal gate lets one block a round through).
            let valid = match verdict {
                Ok(()) => true,
                Err(error) => {
                    warn!(height, block = %value, %proposer, error = format!("{error:#}"), "proposed block refused");
                    false
                }
            };
            let _ = sender.send(Internal::Validated { height, value, valid }).await;
        });
    }

    async fn apply_decision(&self, state: &mut State, decision: Decision) -> Result<()> {
        let block = state
            .blocks
            .remove(&decision.value)
            .ok_or_else(|| anyhow!("decided block {} is not known", decision.value))?;
        self.apply_block(state, block, decision.certificate, true).await
    }

    /// Applies a finalized block and moves to the next height. A block this node decided is
    /// `announce`d to peers at once; a synced one is not (a node catching up would otherwise
    /// send hundreds of them a second and be banned for exceeding the sync rate).
    async fn apply_block(
        &self,
        state: &mut State,
        block: Block,
        certificate: CommitCertificate,
        announce: bool,
    ) -> Result<()> {
        let (store, mempool) = (Arc::clone(&self.store), Arc::clone(&self.mempool));
        let wallet = self.wallet.clone();
        let (applied_block, applied_certificate) = (block.clone(), certificate.clone());
        let applying = Instant::now();
        let (applied, list) = blocking(move || {
            let applied = store.apply_block(&applied_block, Some(&applied_certificate))?;
            let snapshot = store.snapshot()?;
            let list = snapshot.masternode_list();
            mempool
                .lock()
                .map_err(|_| anyhow!("mempool lock poisoned"))?
                .block_connected(&applied_block, &snapshot)?;
            if let Some(wallet) = wallet {
                wallet
                    .lock()
                    .map_err(|_| anyhow!("wallet lock poisoned"))?
                    .scan_block(&applied_block);
            }
            store.consensus_wal().prune_below(applied_block.header.height + 1)?;
            Ok((applied, list))
        })
        .await
        .context("applying a finalized block")?;
        self.record_block(state, &block, &certificate, applying.elapsed(), announce);
        info!(
            height = block.header.height,
            hash = %block.hash(),
            round = certificate.round,
            txs = block.transactions.len(),
            proposer = %block.header.proposer,
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
        self.announce_masternodes(&list, Some(&previous)).await;
        state.started = false;
        state.blocks.clear();
        state.heard = (0, HashSet::new());
        state.caught_up.clear();
        state.gate.clear();
        state.engine = Engine::new(self.engine_config(), self.key.clone());
        self.hello.send_modify(|hello| {
            hello.best_height = applied.tip.height;
            hello.best_hash = applied.tip.hash;
        });
        if announce {
            self.network
                .broadcast(&Message::Blocks(vec![(block.clone(), certificate.clone())]))
                .await;
        }
        state.last = Some((block, certificate));
        Ok(())
    }

    /// Every second: mempool gauges, and the engine's messages again for peers that may have
    /// missed them — votes to all, the round's proposal (with its block) only to peers not
    /// heard from in this round.
    async fn gossip(&self, state: &State) {
        if let Ok(mempool) = self.mempool.lock() {
            metrics::gauge!("timecoin_mempool_transactions").set(mempool.len() as f64);
            metrics::gauge!("timecoin_mempool_bytes").set(mempool.total_size() as f64);
            metrics::gauge!("timecoin_mempool_usage_bytes").set(mempool.usage() as f64);
        }
        let (proposals, votes) = state.engine.messages_to_gossip();
        let (heard_round, heard) = &state.heard;
        let silent: Vec<PublicKey> = state
            .connected
            .iter()
            .filter(|peer| *heard_round != state.engine.round() || !heard.contains(*peer))
            .copied()
            .collect();
        for proposal in proposals {
            if let Some(block) = state.blocks.get(&proposal.proposal.block) {
                let message = Message::Proposal(Box::new((proposal, block.clone())));
                for peer in &silent {
                    self.network.send(*peer, &message).await;
                }
            }
        }
        for vote in votes {
            self.network.broadcast(&Message::Vote(vote)).await;
        }
    }

    /// Notes that `peer` sent a message for `height` and `round`: in this node's round, it
    /// needs no more proposals; one height behind, a masternode gets the block it is missing
    /// (once).
    async fn heard_from(&self, state: &mut State, peer: PublicKey, height: u64, round: u32) {
        if height == state.height && round == state.engine.round() {
            if state.heard.0 != round {
                state.heard = (round, HashSet::new());
            }
            state.heard.1.insert(peer);
        } else if height.checked_add(1) == Some(state.height)
            // Pushed only to a masternode (its identity is its operator key, proven in the
            // handshake): a stranger claiming to be one height behind cannot make this node
            // upload a block per identity it makes up; it asks with `GetBlocks` like any
            // peer.
            && (state.previous_validators.power(&peer) > 0 || state.validators.power(&peer) > 0)
            && let Some(last) = &state.last
            && state.caught_up.insert(peer)
        {
            self.network.send(peer, &Message::Blocks(vec![last.clone()])).await;
        }
    }

    async fn on_network(
        &self,
        state: &mut State,
        event: NetworkEvent,
        internal: &mpsc::Sender<Internal>,
    ) -> Result<()> {
        match event {
            NetworkEvent::Connected {
                peer,
                hello,
                address,
                outbound,
            } => {
                debug!(%peer, %address, outbound, best_height = hello.best_height, masternode = hello.masternode, "peer connected");
                state.connected.insert(peer);
                state.sync.peer_has(peer, hello.best_height);
                self.request_blocks(state).await;
            }
            NetworkEvent::Message { peer, message } => self.on_message(state, peer, message, internal).await?,
            NetworkEvent::Disconnected { peer, reason } => {
                debug!(%peer, %reason, "peer disconnected");
                state.connected.remove(&peer);
                state.sync.disconnected(&peer);
            }
            NetworkEvent::Refused {
                address,
                reason,
                banned,
            } => {
                if banned {
                    warn!(%address, %reason, "peer refused and banned");
                } else {
                    debug!(%address, %reason, "connection failed");
                }
            }
        }
        Ok(())
    }

    /// Asks peers for the block ranges the node lacks (several peers at once; see `sync`).
    async fn request_blocks(&self, state: &mut State) {
        for (peer, from) in state.sync.requests(state.height, Instant::now()) {
            let request = Message::GetBlocks {
                from,
                count: BATCH as u32,
            };
            self.network.send(peer, &request).await;
        }
    }

    /// `validator` signed a message for `height`, above this node's, and `peer` relayed it:
    /// the peer is asked for the blocks it likely has, and the signer counts towards the f+1
    /// rule ([`State::is_behind`]); one signer alone never stops this node.
    async fn saw_height(&self, state: &mut State, peer: PublicKey, validator: PublicKey, height: u64) {
        state.sync.peer_has(peer, height.saturating_sub(1));
        let now = state.now_ms();
        state
            .ahead
            .observe(validator, height, state.height, &state.validators, now);
        self.request_blocks(state).await;
    }

    /// A precommit for the block decided last, arriving after the decision, joins its
    /// certificate (if it can, from a member of the set that decided it, with a valid
    /// signature): the next block this node proposes credits its signer's service.
    async fn late_precommit(&self, state: &mut State, peer: PublicKey, vote: SignedVote) {
        let chain = self.genesis.hash();
        let wanted = state
            .last
            .as_ref()
            .is_some_and(|(_, certificate)| certificate.wants_precommit(&chain, &vote.vote, &vote.validator));
        if !wanted
            || !self
                .admit_signed(
                    &state.previous_validators,
                    peer,
                    (chain, &vote.validator),
                    false,
                    || vote.verify().is_ok(),
                )
                .await
        {
            return;
        }
        if let Some((_, certificate)) = &mut state.last {
            certificate.add_late_precommit(&chain, &vote.vote, vote.validator, vote.signature);
        }
    }

    /// Whether a consensus message is worth acting on: it names this network, its signer is a
    /// validator of `validators` (checked first, so a stranger's message costs no
    /// signature check), and its signature verifies. What honest nodes never pass on is
    /// `peer`'s offense: a bad signature, another network's tag, and — when `members_only`
    /// (a message for this node's own height, whose set every honest node knows) — a signer
    /// outside the set.
    async fn admit_signed(
        &self,
        validators: &ValidatorSet,
        peer: PublicKey,
        (chain, signer): (BlockHash, &PublicKey),
        members_only: bool,
        verify: impl FnOnce() -> bool,
    ) -> bool {
        let member = validators.power(signer) > 0;
        if chain != self.genesis.hash() || (members_only && !member) {
            metrics::counter!("timecoin_foreign_consensus_messages_total").increment(1);
            self.network.report(peer, Offense::ForeignSigner).await;
            return false;
        }
        if !member {
            return false;
        }
        if verify() {
            return true;
        }
        metrics::counter!("timecoin_invalid_signatures_total").increment(1);
        self.network.report(peer, Offense::InvalidSignature).await;
        false
    }

    async fn on_message(
        &self,
        state: &mut State,
        peer: PublicKey,
        message: Message,
        internal: &mpsc::Sender<Internal>,
    ) -> Result<()> {
        match message {
            Message::Proposal(boxed) => {
                let (proposal, block) = *boxed;
                let height = proposal.proposal.height;
                if height.checked_add(1) == Some(state.height) {
                    self.heard_from(state, peer, height, proposal.proposal.round).await;
                }
                if height > state.height {
                    let (chain, signer) = (proposal.proposal.chain, proposal.proposer);
                    if self
                        .admit_signed(&state.validators, peer, (chain, &signer), false, || {
                            proposal.verify().is_ok()
                        })
                        .await
                    {
                        self.saw_height(state, peer, signer, height).await;
                    }
                    return Ok(());
                }
                // Only the round's proposer may make this node validate a block, and only one
                // a round (`ProposalGate`, pure and tested alone).
                let round = proposal.proposal.round;
                let arrival = Arrival {
                    proposal: &proposal,
                    block_hash: block.hash(),
                    block_proposer: block.header.proposer,
                };
                let window = (state.engine.round(), MAX_FUTURE_ROUNDS);
                if state.gate.consider(&state.validators, state.height, window, arrival) == ProposalAdmission::Dropped {
                    debug!(%peer, height, round, "proposal dropped by the gate");
                    return Ok(());
                }
                let (chain, signer) = (proposal.proposal.chain, proposal.proposer);
                if !self
                    .admit_signed(&state.validators, peer, (chain, &signer), true, || {
                        proposal.verify().is_ok()
                    })
                    .await
                {
                    return Ok(());
                }
                // The header commits to every byte of the body, signatures included: a relay
                // that altered the body cannot take the honest body's place for this hash.
                // A copy of a body already held must be that body (cheaper to compare than to
                // hash); a new one must match its header.
                let altered = match state.blocks.get(&block.hash()) {
                    Some(held) => *held != block,
                    None => !block.matches_header(),
                };
                if altered {
                    warn!(%peer, height, round, "peer relayed a proposal whose body does not match its header");
                    self.network.report(peer, Offense::InvalidBlock).await;
                    return Ok(());
                }
                state.gate.record(round, block.hash());
                if state.is_behind() {
                    return Ok(());
                }
                if !state.started {
                    // A peer started this height: follow it.
                    self.start_height(state, internal).await?;
                }
                if let std::collections::hash_map::Entry::Vacant(slot) = state.blocks.entry(block.hash()) {
                    slot.insert(block.clone());
                    self.validate(state, block, internal);
                }
                self.feed(state, Input::Proposal(proposal), internal).await?;
            }
            Message::Vote(vote) => {
                self.heard_from(state, peer, vote.vote.height, vote.vote.round).await;
                if vote.vote.height.checked_add(1) == Some(state.height) {
                    self.late_precommit(state, peer, vote).await;
                    return Ok(());
                }
                // Rounds past the window are dropped before any signature is checked, and so
                // is a later height's vote whose signer's claim was refreshed within the last
                // second (a replayed vote costs at most one check a signer and second).
                let in_window = vote.vote.round <= state.engine.round().saturating_add(MAX_FUTURE_ROUNDS);
                let current = vote.vote.height == state.height && !state.is_behind() && in_window;
                let future = vote.vote.height > state.height
                    && !state
                        .ahead
                        .refreshed_within(&vote.validator, vote.vote.height, state.now_ms(), 1_000);
                if !current && !future {
                    return Ok(());
                }
                if !self
                    .admit_signed(
                        &state.validators,
                        peer,
                        (vote.vote.chain, &vote.validator),
                        current,
                        || vote.verify().is_ok(),
                    )
                    .await
                {
                    return Ok(());
                }
                if future {
                    self.saw_height(state, peer, vote.validator, vote.vote.height).await;
                    return Ok(());
                }
                if !state.started {
                    self.start_height(state, internal).await?;
                }
                self.feed(state, Input::Vote(vote), internal).await?;
            }
            // Served by a task of its own: the consensus loop never waits on a disk read
            // for a peer.
            Message::GetBlocks { from, count } => self.requests.submit(peer, Request::Blocks { from, count }),
            Message::Blocks(blocks) => {
                state.sync.received(peer, state.height, blocks);
                self.apply_synced(state).await?;
            }
            Message::Inventory(ids) => {
                let wanted = {
                    let mempool = self.mempool.lock().map_err(|_| anyhow!("mempool lock poisoned"))?;
                    state
                        .relay
                        .announced(peer, ids, |id| mempool.contains(id), Instant::now())
                };
                if !wanted.is_empty() {
                    self.network.send(peer, &Message::GetTransactions(wanted)).await;
                }
            }
            Message::GetTransactions(ids) => self.requests.submit(peer, Request::Transactions(ids)),
            Message::Transactions(txs) => {
                state
                    .relay
                    .received(txs.iter().map(Transaction::txid).collect::<Vec<_>>());
                // Admitted apart from this loop; what is admitted comes back to be announced
                // on (only what was new here, so each body crosses each link once).
                self.admission.relayed(peer, txs);
            }
            Message::Evidence(evidence) => {
                // Passed on once, and only if a block at the next height could record it (the
                // network, the age window, the key held at the offence, not banned yet, the
                // signatures): evidence no block would take could otherwise squat the
                // offender's slot in the queue while its real offence went unrecorded.
                if state.evidence.contains(&(evidence.validator(), evidence.height())) {
                    return Ok(());
                }
                let genesis_hash = self.genesis.hash();
                if evidence.votes().0.vote.chain != genesis_hash {
                    self.network.report(peer, Offense::ForeignSigner).await;
                    return Ok(());
                }
                // The check verifies the signatures last, after the cheap rules; refused
                // evidence costs nothing more (verifying it again to tell a forgery from
                // stale evidence would let a replayed pair of a stranger's votes cost two
                // checks each on this loop).
                if check_equivocation(&evidence, state.height, genesis_hash, &self.genesis.params, &state.list).is_err()
                {
                    return Ok(());
                }
                warn!(%peer, masternode = %evidence.validator(), height = evidence.height(), "equivocation evidence received");
                remember_evidence(state, &evidence);
                queue_evidence(state, *evidence);
                self.network.broadcast(&Message::Evidence(evidence)).await;
            }
            _ => {}
        }
        Ok(())
    }

    /// Applies the buffered blocks that follow the tip, each after its certificate and
    /// content verify; a peer whose block does not is banned and its blocks dropped.
    async fn apply_synced(&self, state: &mut State) -> Result<()> {
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

    /// In a terminal, redraws the sync progress bar on standard error (at most 4 times a
    /// second), and ends its line once caught up.
    fn draw_bar(&self, state: &mut State) {
        use std::io::{IsTerminal, Write};
        let mut stderr = std::io::stderr();
        if !stderr.is_terminal() {
            return;
        }
        let now = Instant::now();
        match state.sync.bar(state.tip.height, now) {
            Some(bar)
                if state
                    .bar_drawn
                    .is_none_or(|at| now.duration_since(at) >= Duration::from_millis(250)) =>
            {
                let _ = write!(stderr, "\r{bar}");
                state.bar_drawn = Some(now);
            }
            None if state.bar_drawn.take().is_some() => {
                let _ = writeln!(stderr);
            }
            _ => {}
        }
    }

    /// Checks a block from sync: its certificate against the voting set the list fixed for
    /// it, then its content.
    async fn verify_synced(&self, state: &State, block: &Block, certificate: &CommitCertificate) -> bool {
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
