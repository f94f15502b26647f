//! The Tendermint state machine of one masternode, height by height.

use std::collections::{BTreeMap, HashMap, HashSet};

use timecoin_primitives::{
    BlockHash, CommitCertificate, CommitSignature, Equivocation, Proposal, PublicKey, SecretKey, SignedProposal,
    SignedVote, Vote, VoteKind,
};

use crate::validators::ValidatorSet;
use crate::votes::{AddOutcome, VoteKeeper};
use crate::wal::WalEntry;

/// Timeouts grow linearly with the round: `base + delta × round`, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutConfig {
    /// Waiting for a proposal.
    pub propose_ms: u64,
    /// Added per round.
    pub propose_delta_ms: u64,
    /// Waiting, after any 2/3 of prevotes, for 2/3 on one value.
    pub prevote_ms: u64,
    /// Added per round.
    pub prevote_delta_ms: u64,
    /// Waiting, after any 2/3 of precommits, for 2/3 on one value.
    pub precommit_ms: u64,
    /// Added per round.
    pub precommit_delta_ms: u64,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        TimeoutConfig {
            propose_ms: 3_000,
            propose_delta_ms: 500,
            prevote_ms: 1_000,
            prevote_delta_ms: 500,
            precommit_ms: 1_000,
            precommit_delta_ms: 500,
        }
    }
}

impl TimeoutConfig {
    /// The duration of a timeout of `kind` in `round`.
    pub fn duration_ms(&self, kind: TimeoutKind, round: u32) -> u64 {
        let (base, delta) = match kind {
            TimeoutKind::Propose => (self.propose_ms, self.propose_delta_ms),
            TimeoutKind::Prevote => (self.prevote_ms, self.prevote_delta_ms),
            TimeoutKind::Precommit => (self.precommit_ms, self.precommit_delta_ms),
        };
        base.saturating_add(delta.saturating_mul(u64::from(round)))
    }
}

/// The engine's fixed settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// The network's genesis hash; every signed message carries it.
    pub chain: BlockHash,
    /// Timeouts.
    pub timeouts: TimeoutConfig,
    /// Fewest validators with voting power for the engine to take part.
    pub min_validators: usize,
    /// Messages for rounds further ahead than this are dropped, which bounds memory.
    pub max_future_rounds: u32,
}

/// Where the engine is within a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// No height started, or too few validators: the engine does nothing.
    Idle,
    /// Waiting for the round's proposal.
    Propose,
    /// Prevoted; waiting for prevotes.
    Prevote,
    /// Precommitted; waiting for precommits.
    Precommit,
    /// The height is decided; waiting for the next one.
    Decided,
}

/// The three timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    /// No proposal came in time.
    Propose,
    /// Prevotes did not agree in time.
    Prevote,
    /// Precommits did not agree in time.
    Precommit,
}

/// A timeout the host must fire back as [`Input::TimeoutElapsed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeout {
    /// Height it belongs to.
    pub height: u64,
    /// Round it belongs to.
    pub round: u32,
    /// Which one.
    pub kind: TimeoutKind,
}

/// What the host tells the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Start deciding `height` with `validators`. `wal` holds what this masternode already
    /// signed at this height (empty unless the node restarted).
    StartHeight {
        /// The height.
        height: u64,
        /// Its validators.
        validators: ValidatorSet,
        /// Entries of this height from the write-ahead log.
        wal: Vec<WalEntry>,
    },
    /// A proposal whose signature the host checked.
    Proposal(SignedProposal),
    /// A vote whose signature the host checked.
    Vote(SignedVote),
    /// The host's verdict on a proposed value (it has the block and checked it).
    ValueValidated {
        /// Height of the proposal.
        height: u64,
        /// The value.
        value: BlockHash,
        /// Whether it is valid.
        valid: bool,
    },
    /// The value to propose, answering [`Effect::RequestValue`].
    ValueToPropose {
        /// Height asked for.
        height: u64,
        /// Round asked for.
        round: u32,
        /// The value (the host built and checked it).
        value: BlockHash,
    },
    /// A timeout fired.
    TimeoutElapsed(Timeout),
    /// A commit certificate learned from a peer (its signatures checked by the host), for a
    /// node that fell behind.
    Commit(CommitCertificate),
}

/// A height's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The height.
    pub height: u64,
    /// The round of the deciding precommits.
    pub round: u32,
    /// The decided value.
    pub value: BlockHash,
    /// The precommits that decided it.
    pub certificate: CommitCertificate,
}

/// What the engine asks the host to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Make this entry durable before carrying out any later effect.
    PersistWal(WalEntry),
    /// Send a proposal to the peers.
    BroadcastProposal(SignedProposal),
    /// Send a vote to the peers.
    BroadcastVote(SignedVote),
    /// Fire `timeout` after `after_ms`.
    ScheduleTimeout {
        /// The timeout.
        timeout: Timeout,
        /// Delay in milliseconds.
        after_ms: u64,
    },
    /// This node proposes: answer with [`Input::ValueToPropose`].
    RequestValue {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
    },
    /// The height is decided.
    Decide(Decision),
    /// A validator equivocated: gossip this and put it in a block.
    Evidence(Box<Equivocation>),
    /// Too few validators hold voting power: nothing will be produced at this height.
    Stalled {
        /// Height.
        height: u64,
        /// Validators with power.
        validators: usize,
        /// The minimum.
        required: usize,
    },
}

/// One masternode's consensus engine. It performs no I/O and reads no clock: the host feeds
/// [`Input`]s and carries out the returned [`Effect`]s. Signing is done here, with the
/// operator key, because Ed25519 signing is a pure function.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    key: Option<SecretKey>,
    me: Option<PublicKey>,
    height: u64,
    validators: ValidatorSet,
    round: u32,
    step: Step,
    locked: Option<(BlockHash, u32)>,
    valid: Option<(BlockHash, u32)>,
    proposals: BTreeMap<u32, SignedProposal>,
    proposers: HashMap<u32, Option<PublicKey>>,
    validity: HashMap<BlockHash, bool>,
    votes: VoteKeeper,
    signed_votes: HashMap<(u32, VoteKind), SignedVote>,
    signed_proposals: HashMap<u32, SignedProposal>,
    prevote_timeout_set: HashSet<u32>,
    precommit_timeout_set: HashSet<u32>,
    valid_updated: HashSet<u32>,
    awaiting_value: Option<u32>,
    decision: Option<Decision>,
    reported: HashSet<(PublicKey, u32, VoteKind)>,
}

impl Engine {
    /// An engine that signs with `key`, or only observes if `key` is `None`.
    pub fn new(config: EngineConfig, key: Option<SecretKey>) -> Engine {
        let me = key.as_ref().map(SecretKey::public_key);
        Engine {
            config,
            key,
            me,
            height: 0,
            validators: ValidatorSet::default(),
            round: 0,
            step: Step::Idle,
            locked: None,
            valid: None,
            proposals: BTreeMap::new(),
            proposers: HashMap::new(),
            validity: HashMap::new(),
            votes: VoteKeeper::default(),
            signed_votes: HashMap::new(),
            signed_proposals: HashMap::new(),
            prevote_timeout_set: HashSet::new(),
            precommit_timeout_set: HashSet::new(),
            valid_updated: HashSet::new(),
            awaiting_value: None,
            decision: None,
            reported: HashSet::new(),
        }
    }

    /// The current height.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The current round.
    pub fn round(&self) -> u32 {
        self.round
    }

    /// The current step.
    pub fn step(&self) -> Step {
        self.step
    }

    /// The locked value and round, if any.
    pub fn locked(&self) -> Option<(BlockHash, u32)> {
        self.locked
    }

    /// The decision of the current height, once made.
    pub fn decision(&self) -> Option<&Decision> {
        self.decision.as_ref()
    }

    /// The validators of the current height.
    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// What the host should re-send to peers now and then (and on a round change) so that a
    /// peer that missed messages catches up: the current round's proposal and votes — its
    /// own and those it received —, the previous round's precommits (which moved this node
    /// on, and move a peer still in that round on too, or, holding more than 1/3 of the
    /// power, pull a peer from any earlier round into it), and the prevotes that justify its
    /// valid and locked values (the proof a re-proposal needs).
    pub fn messages_to_gossip(&self) -> (Vec<SignedProposal>, Vec<SignedVote>) {
        if !self.is_active() {
            return (Vec::new(), Vec::new());
        }
        let mut proposals: Vec<SignedProposal> = self.proposals.get(&self.round).copied().into_iter().collect();
        let mut votes: Vec<SignedVote> = Vec::new();
        if let Some(round) = self.votes.round(self.round) {
            for kind in [VoteKind::Prevote, VoteKind::Precommit] {
                votes.extend(round.tally(kind).all_votes().copied());
            }
        }
        if let Some(previous) = self.round.checked_sub(1).and_then(|r| self.votes.round(r)) {
            votes.extend(previous.precommits.all_votes().copied());
        }
        let proofs = [self.valid, self.locked];
        for (value, round) in proofs.into_iter().flatten() {
            if round == self.round {
                continue;
            }
            if let Some(votes_of_round) = self.votes.round(round) {
                votes.extend(votes_of_round.prevotes.votes_for(&Some(value)).copied());
            }
            proposals.extend(self.proposals.get(&round).copied());
        }
        votes.sort_by_key(|v| (v.vote.round, v.vote.kind, v.validator));
        votes.dedup();
        proposals.dedup();
        (proposals, votes)
    }

    /// Handles one input and returns the effects, in the order the host must carry them out.
    pub fn handle(&mut self, input: Input) -> Vec<Effect> {
        let mut effects = Vec::new();
        match input {
            Input::StartHeight {
                height,
                validators,
                wal,
            } => self.start_height(height, validators, wal, &mut effects),
            Input::Proposal(proposal) => self.on_proposal(proposal),
            Input::Vote(vote) => self.on_vote(vote, &mut effects),
            Input::ValueValidated { height, value, valid } => {
                if height == self.height && self.is_active() {
                    self.validity.insert(value, valid);
                }
            }
            Input::ValueToPropose { height, round, value } => {
                if height == self.height
                    && round == self.round
                    && self.step == Step::Propose
                    && self.awaiting_value == Some(round)
                {
                    self.awaiting_value = None;
                    self.validity.insert(value, true);
                    self.propose(value, None, &mut effects);
                }
            }
            Input::TimeoutElapsed(timeout) => self.on_timeout(timeout, &mut effects),
            Input::Commit(certificate) => self.on_commit(certificate, &mut effects),
        }
        if self.is_active() {
            self.apply_rules(&mut effects);
        }
        effects
    }

    fn is_active(&self) -> bool {
        matches!(self.step, Step::Propose | Step::Prevote | Step::Precommit)
    }

    fn proposer(&mut self, round: u32) -> Option<PublicKey> {
        if let Some(cached) = self.proposers.get(&round) {
            return *cached;
        }
        let proposer = self.validators.proposer(round);
        self.proposers.insert(round, proposer);
        proposer
    }

    fn my_power(&self) -> u64 {
        self.me.map_or(0, |me| self.validators.power(&me))
    }

    fn start_height(&mut self, height: u64, validators: ValidatorSet, wal: Vec<WalEntry>, effects: &mut Vec<Effect>) {
        let key = self.key.take();
        *self = Engine::new(self.config.clone(), key);
        self.height = height;
        self.validators = validators;
        if self.validators.len() < self.config.min_validators {
            effects.push(Effect::Stalled {
                height,
                validators: self.validators.len(),
                required: self.config.min_validators,
            });
            return;
        }
        let mut start_round = 0;
        for entry in wal.into_iter().filter(|e| e.height() == height) {
            match entry {
                WalEntry::Vote(vote) => {
                    let round = vote.vote.round;
                    start_round = start_round.max(round);
                    if vote.vote.kind == VoteKind::Precommit
                        && let Some(value) = vote.vote.block
                        && self.locked.is_none_or(|(_, r)| r < round)
                    {
                        self.locked = Some((value, round));
                        self.valid = Some((value, round));
                    }
                    self.signed_votes.insert((round, vote.vote.kind), vote);
                    let power = self.my_power();
                    self.votes.add(vote, power);
                }
                WalEntry::Proposal(proposal) => {
                    start_round = start_round.max(proposal.proposal.round);
                    self.signed_proposals.insert(proposal.proposal.round, proposal);
                }
                WalEntry::LockProof { votes, .. } => {
                    for vote in votes {
                        let power = self.validators.power(&vote.validator);
                        if power > 0 && vote.vote.height == height && vote.vote.chain == self.config.chain {
                            self.votes.add(vote, power);
                        }
                    }
                }
            }
        }
        self.start_round(start_round, effects);
    }

    fn start_round(&mut self, round: u32, effects: &mut Vec<Effect>) {
        self.round = round;
        self.step = Step::Propose;
        self.awaiting_value = None;
        if self.me.is_some() && self.proposer(round) == self.me && self.my_power() > 0 {
            if let Some(existing) = self.signed_proposals.get(&round).copied() {
                effects.push(Effect::BroadcastProposal(existing));
                self.accept_proposal(existing);
            } else if let Some((value, valid_round)) = self.valid {
                self.propose(value, Some(valid_round), effects);
            } else {
                self.awaiting_value = Some(round);
                effects.push(Effect::RequestValue {
                    height: self.height,
                    round,
                });
            }
        }
        self.schedule(TimeoutKind::Propose, effects);
    }

    fn schedule(&self, kind: TimeoutKind, effects: &mut Vec<Effect>) {
        effects.push(Effect::ScheduleTimeout {
            timeout: Timeout {
                height: self.height,
                round: self.round,
                kind,
            },
            after_ms: self.config.timeouts.duration_ms(kind, self.round),
        });
    }

    fn propose(&mut self, value: BlockHash, valid_round: Option<u32>, effects: &mut Vec<Effect>) {
        let Some(key) = &self.key else {
            return;
        };
        let round = self.round;
        let signed = match self.signed_proposals.get(&round) {
            // Never sign a second proposal for a round, even after a restart.
            Some(existing) => *existing,
            None => {
                let signed = SignedProposal::sign(
                    Proposal {
                        chain: self.config.chain,
                        height: self.height,
                        round,
                        valid_round,
                        block: value,
                    },
                    key,
                );
                self.signed_proposals.insert(round, signed);
                effects.push(Effect::PersistWal(WalEntry::Proposal(signed)));
                signed
            }
        };
        effects.push(Effect::BroadcastProposal(signed));
        self.accept_proposal(signed);
    }

    fn cast_vote(&mut self, kind: VoteKind, block: Option<BlockHash>, effects: &mut Vec<Effect>) {
        let power = self.my_power();
        let Some(key) = &self.key else {
            return;
        };
        if power == 0 {
            return;
        }
        let round = self.round;
        let signed = match self.signed_votes.get(&(round, kind)) {
            // Signed before (before a restart, say): send that one again, never a different one.
            Some(existing) => *existing,
            None => {
                let vote = Vote {
                    chain: self.config.chain,
                    height: self.height,
                    round,
                    kind,
                    block,
                };
                let signed = SignedVote::sign(vote, key);
                self.signed_votes.insert((round, kind), signed);
                effects.push(Effect::PersistWal(WalEntry::Vote(signed)));
                signed
            }
        };
        effects.push(Effect::BroadcastVote(signed));
        self.votes.add(signed, power);
    }

    fn in_window(&self, round: u32) -> bool {
        round <= self.round.saturating_add(self.config.max_future_rounds)
    }

    fn on_proposal(&mut self, proposal: SignedProposal) {
        let p = &proposal.proposal;
        if !self.is_active() || p.chain != self.config.chain || p.height != self.height || !self.in_window(p.round) {
            return;
        }
        if self.proposer(p.round) != Some(proposal.proposer) {
            return;
        }
        self.accept_proposal(proposal);
    }

    fn accept_proposal(&mut self, proposal: SignedProposal) {
        let round = proposal.proposal.round;
        if self.proposals.contains_key(&round) {
            return;
        }
        let power = self.validators.power(&proposal.proposer);
        self.votes.note_sender(round, proposal.proposer, power);
        self.proposals.insert(round, proposal);
    }

    fn on_vote(&mut self, vote: SignedVote, effects: &mut Vec<Effect>) {
        let v = &vote.vote;
        if !self.is_active() || v.chain != self.config.chain || v.height != self.height || !self.in_window(v.round) {
            return;
        }
        let power = self.validators.power(&vote.validator);
        if power == 0 {
            return;
        }
        if let AddOutcome::Equivocation(evidence) = self.votes.add(vote, power)
            && self.reported.insert((vote.validator, v.round, v.kind))
        {
            effects.push(Effect::Evidence(evidence));
        }
    }

    fn on_timeout(&mut self, timeout: Timeout, effects: &mut Vec<Effect>) {
        if timeout.height != self.height || timeout.round != self.round || !self.is_active() {
            return;
        }
        match (timeout.kind, self.step) {
            (TimeoutKind::Propose, Step::Propose) => {
                self.cast_vote(VoteKind::Prevote, None, effects);
                self.step = Step::Prevote;
            }
            (TimeoutKind::Prevote, Step::Prevote) => {
                self.cast_vote(VoteKind::Precommit, None, effects);
                self.step = Step::Precommit;
            }
            (TimeoutKind::Precommit, _) => {
                let next = self.round.saturating_add(1);
                self.start_round(next, effects);
            }
            _ => {}
        }
    }

    fn on_commit(&mut self, certificate: CommitCertificate, effects: &mut Vec<Effect>) {
        if !self.is_active() || certificate.height != self.height {
            return;
        }
        for signature in &certificate.signatures {
            let vote = SignedVote {
                vote: Vote {
                    chain: self.config.chain,
                    height: certificate.height,
                    round: certificate.round,
                    kind: VoteKind::Precommit,
                    block: Some(certificate.block_hash),
                },
                validator: signature.validator,
                signature: signature.signature,
            };
            // Rounds far ahead are accepted here: a certificate is a finished decision.
            let power = self.validators.power(&vote.validator);
            if power > 0
                && let AddOutcome::Equivocation(evidence) = self.votes.add(vote, power)
                && self
                    .reported
                    .insert((vote.validator, certificate.round, VoteKind::Precommit))
            {
                effects.push(Effect::Evidence(evidence));
            }
        }
    }

    fn valid(&self, value: &BlockHash) -> Option<bool> {
        self.validity.get(value).copied()
    }

    fn has_quorum_for(&self, round: u32, kind: VoteKind, value: &Option<BlockHash>) -> bool {
        self.votes
            .round(round)
            .is_some_and(|r| self.validators.is_quorum(r.tally(kind).power_for(value)))
    }

    fn has_quorum_any(&self, round: u32, kind: VoteKind) -> bool {
        self.votes
            .round(round)
            .is_some_and(|r| self.validators.is_quorum(r.tally(kind).total()))
    }

    /// Applies Tendermint's "upon" rules until none fires.
    fn apply_rules(&mut self, effects: &mut Vec<Effect>) {
        // Every rule either changes the step, the round, or a "first time" set, so this ends;
        // the bound is a guard against a mistake turning into a hang.
        for _ in 0..64 {
            if !self.is_active() {
                return;
            }
            if self.try_decide(effects) {
                return;
            }
            if self.try_skip_round(effects) || self.step_rules(effects) {
                continue;
            }
            return;
        }
    }

    /// Decides on a quorum of precommits for a value known to be valid, in any round.
    fn try_decide(&mut self, effects: &mut Vec<Effect>) -> bool {
        let mut found = None;
        // Sorted, so that the outcome never depends on hash-map order.
        let mut candidates: Vec<BlockHash> = self
            .validity
            .iter()
            .filter(|(_, valid)| **valid)
            .map(|(value, _)| *value)
            .collect();
        candidates.sort();
        for (round, votes) in self.votes.rounds_descending() {
            for value in candidates.iter().copied() {
                if self.validators.is_quorum(votes.precommits.power_for(&Some(value))) {
                    found = Some((*round, value));
                    break;
                }
            }
            if found.is_some() {
                break;
            }
        }
        let Some((round, value)) = found else {
            return false;
        };
        let mut signatures: Vec<CommitSignature> = self
            .votes
            .round(round)
            .map(|r| {
                r.precommits
                    .votes_for(&Some(value))
                    .map(|v| CommitSignature {
                        validator: v.validator,
                        signature: v.signature,
                    })
                    .collect()
            })
            .unwrap_or_default();
        signatures.sort_by_key(|s| s.validator);
        let decision = Decision {
            height: self.height,
            round,
            value,
            certificate: CommitCertificate {
                height: self.height,
                round,
                block_hash: value,
                signatures,
            },
        };
        self.step = Step::Decided;
        self.decision = Some(decision.clone());
        effects.push(Effect::Decide(decision));
        true
    }

    /// Joins a higher round in which validators with more than 1/3 of the power are active.
    fn try_skip_round(&mut self, effects: &mut Vec<Effect>) -> bool {
        let target = self
            .votes
            .rounds_descending()
            .take_while(|(round, _)| **round > self.round)
            .find(|(_, votes)| self.validators.is_one_third(votes.sender_power()))
            .map(|(round, _)| *round);
        match target {
            Some(round) => {
                self.start_round(round, effects);
                true
            }
            None => false,
        }
    }

    fn step_rules(&mut self, effects: &mut Vec<Effect>) -> bool {
        let round = self.round;
        let mut progressed = false;
        if self.step == Step::Propose
            && let Some(proposal) = self.proposals.get(&round).map(|p| p.proposal)
            && let Some(valid) = self.valid(&proposal.block)
        {
            let value = proposal.block;
            let vote = match proposal.valid_round {
                None => {
                    let free = self.locked.is_none_or(|(locked, _)| locked == value);
                    Some(valid && free)
                }
                Some(valid_round) if valid_round < round => {
                    if self.has_quorum_for(valid_round, VoteKind::Prevote, &Some(value)) {
                        let free = self
                            .locked
                            .is_none_or(|(locked, locked_round)| locked_round <= valid_round || locked == value);
                        Some(valid && free)
                    } else {
                        None
                    }
                }
                Some(_) => Some(false),
            };
            if let Some(for_value) = vote {
                self.cast_vote(VoteKind::Prevote, for_value.then_some(value), effects);
                self.step = Step::Prevote;
                progressed = true;
            }
        }
        if self.step == Step::Prevote
            && self.has_quorum_any(round, VoteKind::Prevote)
            && self.prevote_timeout_set.insert(round)
        {
            self.schedule(TimeoutKind::Prevote, effects);
            progressed = true;
        }
        if matches!(self.step, Step::Prevote | Step::Precommit)
            && !self.valid_updated.contains(&round)
            && let Some(value) = self.proposals.get(&round).map(|p| p.proposal.block)
            && self.valid(&value) == Some(true)
            && self.has_quorum_for(round, VoteKind::Prevote, &Some(value))
        {
            self.valid_updated.insert(round);
            if self.step == Step::Prevote {
                self.locked = Some((value, round));
                if self.my_power() > 0 {
                    // The proof that lets this node justify its lock after a restart.
                    let mut votes: Vec<SignedVote> = self
                        .votes
                        .round(round)
                        .map(|r| r.prevotes.votes_for(&Some(value)).copied().collect())
                        .unwrap_or_default();
                    votes.sort_by_key(|v| v.validator);
                    effects.push(Effect::PersistWal(WalEntry::LockProof {
                        height: self.height,
                        votes,
                    }));
                }
                self.cast_vote(VoteKind::Precommit, Some(value), effects);
                self.step = Step::Precommit;
            }
            self.valid = Some((value, round));
            progressed = true;
        }
        if self.step == Step::Prevote && self.has_quorum_for(round, VoteKind::Prevote, &None) {
            self.cast_vote(VoteKind::Precommit, None, effects);
            self.step = Step::Precommit;
            progressed = true;
        }
        if self.has_quorum_any(round, VoteKind::Precommit) && self.precommit_timeout_set.insert(round) {
            self.schedule(TimeoutKind::Precommit, effects);
            progressed = true;
        }
        progressed
    }
}
