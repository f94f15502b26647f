//! The simulator's event loop: the nodes, the message queue, faults, and the invariants
//! checked as decisions come. On a [`Wan`](super::Wan) the nodes talk over the overlay with
//! the node's gossip rules (`wan`); otherwise every message goes to every node.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::rc::Rc;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use timecoin_consensus::{
    Decision, Effect, Engine, EngineConfig, Input, MemoryWal, Timeout, TimeoutConfig, Validator, ValidatorSet, Wal,
};
use timecoin_primitives::{
    BlockHash, Domain, Encode, Hash256, PublicKey, SecretKey, SignedProposal, SignedVote, VoteKind,
};

use super::wan::{FRAME_OVERHEAD, Known, Links, MsgKey, Traffic};
use super::{GOSSIP_INTERVAL_MS, HEALED_MAX_DELAY_MS, Outcome, Scenario, TRACE_LINES, Violation};

#[derive(Debug, Clone)]
enum Msg {
    Proposal(SignedProposal),
    Vote(SignedVote),
    Commit(Decision),
}

impl Msg {
    fn height(&self) -> u64 {
        match self {
            Msg::Proposal(p) => p.proposal.height,
            Msg::Vote(v) => v.vote.height,
            Msg::Commit(d) => d.height,
        }
    }

    /// Its signer and key (a commit has neither: it is never relayed).
    fn key(&self) -> Option<(PublicKey, MsgKey)> {
        match self {
            Msg::Proposal(p) => Some((p.proposer, (0, p.proposer, p.proposal.round, Some(p.proposal.block)))),
            Msg::Vote(v) => {
                let kind = if v.vote.kind == VoteKind::Prevote { 1 } else { 2 };
                Some((v.validator, (kind, v.validator, v.vote.round, v.vote.block)))
            }
            Msg::Commit(_) => None,
        }
    }

    /// Bytes on the wire (the proposal without its block, which the simulator does not model).
    fn wire_len(&self) -> u64 {
        let payload = match self {
            Msg::Proposal(p) => p.encoded_len(),
            Msg::Vote(v) => v.encoded_len(),
            Msg::Commit(d) => d.certificate.encoded_len(),
        };
        payload as u64 + FRAME_OVERHEAD
    }
}

#[derive(Debug)]
enum Event {
    Deliver {
        to: usize,
        from: usize,
        msg: Rc<Msg>,
    },
    Timeout {
        node: usize,
        epoch: u32,
        timeout: Timeout,
    },
    Gossip {
        node: usize,
    },
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
    /// A node starts a height after the pacing wait (on a WAN).
    Start {
        node: usize,
        epoch: u32,
        height: u64,
    },
    Reshuffle,
    Heal,
}

struct Node {
    validator: usize,
    honest: bool,
    amnesia: bool,
    side: bool,
    engine: Engine,
    wal: MemoryWal,
    alive: bool,
    epoch: u32,
    decided: BTreeMap<u64, Decision>,
    inbox: VecDeque<Input>,
    /// What it knows of its height's messages (on a WAN).
    known: Known,
    /// The next height's messages that came early, with who sent them (on a WAN).
    early: Vec<(usize, Rc<Msg>)>,
    traffic: Traffic,
}

struct Sim<'a> {
    scenario: &'a Scenario,
    rng: StdRng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Event>,
    nodes: Vec<Node>,
    keys: Vec<SecretKey>,
    sets: Vec<ValidatorSet>,
    config: EngineConfig,
    values: HashMap<BlockHash, bool>,
    honest_decisions: BTreeMap<u64, (usize, BlockHash)>,
    healed: bool,
    violations: Vec<Violation>,
    trace: VecDeque<String>,
    deliveries: u64,
    evidence: usize,
    max_round: u32,
    first_decisions: BTreeMap<u64, (u64, u32)>,
    /// The overlay and its latencies, on a WAN.
    links: Option<Links>,
    /// Each validator's public key.
    public: Vec<PublicKey>,
    /// When the first honest node started each height.
    height_started: HashMap<u64, u64>,
    /// Each honest node's commit latency for each height it decided, in milliseconds.
    commit_latencies: Vec<u64>,
    /// Honest nodes that decided every height.
    done: usize,
    honest_nodes: usize,
}

/// The next height's messages a node holds (the node holds a share per peer).
const EARLY_LIMIT: usize = 4_096;

/// Decisions a node keeps in a long run.
const KEEP_DECISIONS: u64 = 64;

/// Runs one scenario to its end and checks every invariant.
pub fn run(scenario: &Scenario) -> Outcome {
    let mut sim = Sim::new(scenario);
    sim.run();
    Outcome {
        scenario: scenario.clone(),
        violations: sim.violations,
        trace: sim.trace.into_iter().collect(),
        end_ms: sim.now,
        max_round: sim.max_round,
        deliveries: sim.deliveries,
        evidence: sim.evidence,
        first_decisions: sim.first_decisions,
        commit_latencies_ms: sim.commit_latencies,
        traffic: sim.nodes.iter().map(|n| n.traffic).collect(),
    }
}

impl<'a> Sim<'a> {
    fn new(scenario: &'a Scenario) -> Sim<'a> {
        let mut rng = StdRng::seed_from_u64(scenario.seed ^ 0x5eed_5eed);
        let keys: Vec<SecretKey> = (0..scenario.powers.len())
            .map(|v| {
                let mut hasher = Domain::Address.hasher();
                hasher.update(b"simulated validator");
                hasher.update(&scenario.seed.to_le_bytes());
                hasher.update(&(v as u64).to_le_bytes());
                SecretKey::from_seed(*hasher.finalize().as_bytes())
            })
            .collect();
        let base = ValidatorSet::new(
            keys.iter()
                .zip(&scenario.powers)
                .map(|(k, p)| Validator {
                    key: k.public_key(),
                    power: *p,
                })
                .collect(),
        )
        .unwrap_or_default();
        let mut sets = vec![base.clone(), base];
        for _ in 1..=scenario.heights {
            let next = sets.last().map(ValidatorSet::next_height).unwrap_or_default();
            sets.push(next);
        }
        let config = EngineConfig {
            chain: BlockHash(Hash256([7; 32])),
            timeouts: if scenario.wan.is_some() {
                // The node's defaults (`[consensus]`).
                TimeoutConfig {
                    propose_ms: 3_000,
                    propose_delta_ms: 500,
                    prevote_ms: 1_000,
                    prevote_delta_ms: 500,
                    precommit_ms: 1_000,
                    precommit_delta_ms: 500,
                }
            } else {
                TimeoutConfig {
                    propose_ms: 1_000,
                    propose_delta_ms: 200,
                    prevote_ms: 500,
                    prevote_delta_ms: 100,
                    precommit_ms: 500,
                    precommit_delta_ms: 100,
                }
            },
            min_validators: 3,
            max_future_rounds: 64,
        };
        let mut nodes = Vec::new();
        for validator in 0..scenario.powers.len() {
            let copies = if scenario.twins.contains(&validator) { 2 } else { 1 };
            for copy in 0..copies {
                nodes.push(Node {
                    validator,
                    honest: !scenario.is_faulty(validator),
                    amnesia: scenario.amnesia.contains(&validator),
                    side: if copies == 2 { copy == 1 } else { rng.random_bool(0.5) },
                    engine: Engine::new(config.clone(), keys.get(validator).cloned()),
                    wal: MemoryWal::default(),
                    alive: true,
                    epoch: 0,
                    decided: BTreeMap::new(),
                    inbox: VecDeque::new(),
                    known: Known::default(),
                    early: Vec::new(),
                    traffic: Traffic::default(),
                });
            }
        }
        let public: Vec<PublicKey> = keys.iter().map(SecretKey::public_key).collect();
        let node_validator: Vec<usize> = nodes.iter().map(|n| n.validator).collect();
        let links = scenario
            .wan
            .map(|wan| Links::new(wan, &public, &node_validator, &mut rng));
        let honest_nodes = nodes.iter().filter(|n| n.honest).count();
        Sim {
            scenario,
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            nodes,
            keys,
            sets,
            config,
            values: HashMap::new(),
            honest_decisions: BTreeMap::new(),
            healed: false,
            violations: Vec::new(),
            trace: VecDeque::new(),
            deliveries: 0,
            evidence: 0,
            max_round: 0,
            first_decisions: BTreeMap::new(),
            links,
            public,
            height_started: HashMap::new(),
            commit_latencies: Vec::new(),
            done: 0,
            honest_nodes,
        }
    }

    fn log(&mut self, line: String) {
        if self.trace.len() == TRACE_LINES {
            self.trace.pop_front();
        }
        self.trace.push_back(format!("{:>7} ms  {line}", self.now));
    }

    fn at(&mut self, time: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((time, self.seq)));
        self.events.insert(self.seq, event);
    }

    fn run(&mut self) {
        let n = self.nodes.len();
        for node in 0..n {
            self.start_height(node, 1);
            let offset = self.rng.random_range(0..GOSSIP_INTERVAL_MS);
            self.at(offset, Event::Gossip { node });
        }
        self.schedule_faults();
        self.at(self.scenario.heal_ms, Event::Heal);
        let deadline = self.scenario.heal_ms + self.scenario.liveness_bound_ms();
        while let Some(Reverse((time, seq))) = self.queue.pop() {
            if time > deadline || self.done >= self.honest_nodes {
                break;
            }
            self.now = time;
            let Some(event) = self.events.remove(&seq) else {
                continue;
            };
            self.on_event(event);
        }
        for index in 0..self.nodes.len() {
            let n = &self.nodes[index];
            let line = format!(
                "end: node {index} (validator {}) alive {} height {} round {} step {:?} locked {:?}",
                n.validator,
                n.alive,
                n.engine.height(),
                n.engine.round(),
                n.engine.step(),
                n.engine.locked().map(|(v, r)| (v.to_string()[..8].to_owned(), r))
            );
            self.log(line);
        }
        for (index, node) in self.nodes.iter().enumerate() {
            let decided = node.decided.keys().last().copied().unwrap_or(0);
            if node.honest && decided < self.scenario.heights {
                self.violations.push(Violation::Liveness { node: index, decided });
            }
        }
    }

    fn schedule_faults(&mut self) {
        let heal = self.scenario.heal_ms;
        for node in 0..self.nodes.len() {
            let (honest, amnesia) = (self.nodes[node].honest, self.nodes[node].amnesia);
            let crashes = if amnesia {
                heal / 2500
            } else if honest && self.scenario.crashes {
                self.rng.random_range(0..3)
            } else {
                0
            };
            for _ in 0..crashes {
                let time = self.rng.random_range(0..heal.max(1));
                self.at(time, Event::Crash { node });
            }
        }
        if self.scenario.partitions {
            let mut time = 0;
            while time < heal {
                time += self.rng.random_range(500..4_000);
                self.at(time.min(heal), Event::Reshuffle);
            }
        }
    }

    fn connected(&self, from: usize, to: usize) -> bool {
        self.healed || !self.scenario.partitions || self.nodes[from].side == self.nodes[to].side
    }

    /// Sends `msg` from `from`: on a WAN to its links (and it holds it), otherwise to every
    /// node with the scenario's faults.
    fn broadcast(&mut self, from: usize, msg: Msg) {
        let msg = Rc::new(msg);
        if let Some(links) = &self.links {
            let targets = links.of.get(from).cloned().unwrap_or_default();
            let height = msg.height();
            if let Some((_, key)) = msg.key() {
                self.nodes[from].known.receive(height, key, None);
                for &to in &targets {
                    self.nodes[from].known.send_to(height, key, to);
                }
            }
            for to in targets {
                self.send(from, to, &msg);
            }
            return;
        }
        for to in 0..self.nodes.len() {
            if to == from || !self.connected(from, to) {
                continue;
            }
            let (drop, duplicate, max_delay) = if self.healed {
                (0.0, 0.0, HEALED_MAX_DELAY_MS)
            } else {
                (
                    self.scenario.faults.drop,
                    self.scenario.faults.duplicate,
                    self.scenario.faults.max_delay_ms,
                )
            };
            self.count_sent(from, &msg);
            if self.rng.random_bool(drop) {
                continue;
            }
            let copies = if self.rng.random_bool(duplicate) { 2 } else { 1 };
            for _ in 0..copies {
                let delay = match self.scenario.fixed_delay_ms {
                    Some(fixed) => fixed,
                    None => self.rng.random_range(1..=max_delay.max(1)),
                };
                let msg = Rc::clone(&msg);
                self.at(self.now + delay, Event::Deliver { to, from, msg });
            }
        }
    }

    fn count_sent(&mut self, from: usize, msg: &Msg) {
        let traffic = &mut self.nodes[from].traffic;
        traffic.sent += 1;
        traffic.sent_bytes += msg.wire_len();
    }

    /// One message over one WAN link, after `after` ms and the link's delay.
    fn send_after(&mut self, from: usize, to: usize, msg: &Rc<Msg>, after: u64) {
        if !self.connected(from, to) {
            return;
        }
        self.count_sent(from, msg);
        let delay = self.links.as_ref().map_or(0, |l| l.delay(from, to, &mut self.rng));
        let msg = Rc::clone(msg);
        self.at(self.now + after + delay, Event::Deliver { to, from, msg });
    }

    fn send(&mut self, from: usize, to: usize, msg: &Rc<Msg>) {
        self.send_after(from, to, msg, 0);
    }

    /// `behind`, heard from at height `lacking`, is sent that height's decision by `ahead`
    /// (once), after the round trip of the node's block sync.
    fn sync(&mut self, ahead: usize, behind: usize, lacking: u64) {
        let height = self.nodes[ahead].engine.height();
        let Some(decision) = self.nodes[ahead].decided.get(&lacking).cloned() else {
            return;
        };
        if self.nodes[ahead].known.catch_up(height, behind, lacking) {
            let request = self.links.as_ref().map_or(0, |l| l.latency(behind, ahead));
            self.send_after(ahead, behind, &Rc::new(Msg::Commit(decision)), request);
        }
    }

    /// The node's gossip rules for a message `to` got from `from` on a WAN; returns whether
    /// the engine is to see it. Between nodes at different heights, the one behind gets the
    /// decision it lacks (block sync); a duplicate goes no further; a copy straight from its
    /// signer goes on to `to`'s links the signer does not link to, unless they hold it.
    fn wan_receive(&mut self, to: usize, from: usize, msg: &Rc<Msg>) -> bool {
        let height = self.nodes[to].engine.height();
        let msg_height = msg.height();
        if matches!(**msg, Msg::Commit(_)) {
            return true;
        }
        if msg_height > height {
            if msg_height == height + 1 && self.nodes[to].early.len() < EARLY_LIMIT {
                self.nodes[to].early.push((from, Rc::clone(msg)));
            }
            self.sync(from, to, height);
            return false;
        }
        if msg_height < height {
            self.sync(to, from, msg_height);
            return false;
        }
        let Some((signer, key)) = msg.key() else {
            return true;
        };
        let new = self.nodes[to].known.receive(height, key, Some(from));
        // The node's own rule decides who passes it on (`Overlay::relays_to`).
        let key_of = |node: usize| self.public.get(self.nodes[node].validator).copied();
        if let (Some(own), Some(sender)) = (key_of(to), key_of(from)) {
            let targets: Vec<usize> = self
                .links
                .as_ref()
                .and_then(|links| {
                    let of = links.of.get(to)?;
                    Some(
                        of.iter()
                            .copied()
                            .filter(|&t| {
                                key_of(t).is_some_and(|peer| links.overlay.relays_to(&own, &signer, &sender, &peer))
                            })
                            .collect(),
                    )
                })
                .unwrap_or_default();
            for t in targets {
                if self.nodes[to].known.send_to(height, key, t) {
                    self.send(to, t, msg);
                }
            }
        }
        new
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Deliver { to, from, msg } => self.deliver(to, from, &msg),
            Event::Timeout { node, epoch, timeout } => {
                if self.nodes[node].alive && self.nodes[node].epoch == epoch {
                    self.nodes[node].inbox.push_back(Input::TimeoutElapsed(timeout));
                    self.process(node);
                }
            }
            Event::Gossip { node } => {
                if self.nodes[node].alive {
                    self.gossip(node);
                }
                self.at(self.now + GOSSIP_INTERVAL_MS, Event::Gossip { node });
            }
            Event::Crash { node } => {
                if self.nodes[node].alive {
                    self.nodes[node].alive = false;
                    self.nodes[node].epoch += 1;
                    self.log(format!(
                        "node {node} (validator {}) crashes",
                        self.nodes[node].validator
                    ));
                    let back = self.now + self.rng.random_range(100..2_000);
                    self.at(back, Event::Restart { node });
                }
            }
            Event::Restart { node } => self.restart(node),
            Event::Start { node, epoch, height } => {
                if self.nodes[node].alive && self.nodes[node].epoch == epoch {
                    self.start_height(node, height);
                }
            }
            Event::Reshuffle => {
                if !self.healed {
                    for i in 0..self.nodes.len() {
                        let twin_copy = i > 0 && self.nodes[i - 1].validator == self.nodes[i].validator;
                        self.nodes[i].side = if twin_copy {
                            !self.nodes[i - 1].side
                        } else {
                            self.rng.random_bool(0.5)
                        };
                    }
                    let sides: Vec<u8> = self.nodes.iter().map(|n| u8::from(n.side)).collect();
                    self.log(format!("partition {sides:?}"));
                }
            }
            Event::Heal => {
                self.healed = true;
                self.log("network heals".to_owned());
                for node in 0..self.nodes.len() {
                    if self.nodes[node].alive {
                        self.gossip(node);
                    }
                }
            }
        }
    }

    fn gossip(&mut self, node: usize) {
        let (proposals, votes) = self.nodes[node].engine.messages_to_gossip();
        let mut msgs: Vec<Msg> = proposals.into_iter().map(Msg::Proposal).collect();
        msgs.extend(votes.into_iter().map(Msg::Vote));
        if let Some(links) = &self.links {
            // The node's repair: only a round stalled for a whole tick, only what a link is
            // not known to hold.
            let targets = links.of.get(node).cloned().unwrap_or_default();
            let (height, round) = (self.nodes[node].engine.height(), self.nodes[node].engine.round());
            if !self.nodes[node].known.stalled(height, round) {
                return;
            }
            for msg in msgs {
                let Some((_, key)) = msg.key() else { continue };
                let msg = Rc::new(msg);
                for &to in &targets {
                    if self.nodes[node].known.send_to(height, key, to) {
                        self.send(node, to, &msg);
                    }
                }
            }
            return;
        }
        msgs.extend(self.nodes[node].decided.values().cloned().map(Msg::Commit));
        for msg in msgs {
            self.broadcast(node, msg);
        }
    }

    fn restart(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        n.alive = true;
        n.epoch += 1;
        n.engine = Engine::new(self.config.clone(), self.keys.get(n.validator).cloned());
        n.inbox.clear();
        if n.amnesia {
            n.wal = MemoryWal::default();
        }
        if self.nodes[node].amnesia {
            // A Byzantine node that forgets on purpose: it drops its log and every decision
            // the slowest honest node has not made yet, and rejoins there.
            let slowest = self
                .nodes
                .iter()
                .filter(|n| n.honest)
                .map(|n| n.decided.keys().last().map_or(1, |h| h + 1))
                .min()
                .unwrap_or(1);
            self.nodes[node].decided.retain(|h, _| *h < slowest);
        }
        let height = self.nodes[node].decided.keys().last().map_or(1, |h| h + 1);
        self.log(format!(
            "node {node} restarts at height {height}{}",
            if self.nodes[node].amnesia {
                " without its WAL"
            } else {
                ""
            }
        ));
        self.start_height(node, height);
    }

    fn start_height(&mut self, node: usize, height: u64) {
        // On a WAN the nodes go one height past the last (unmeasured), as a real network
        // goes on: a node still deciding the last height is synced by its peers.
        let last = self.scenario.heights + u64::from(self.links.is_some());
        if height > last {
            return;
        }
        if self.nodes[node].honest {
            self.height_started.entry(height).or_insert(self.now);
        }
        let set = self.sets.get(height as usize).cloned().unwrap_or_default();
        let n = &mut self.nodes[node];
        let wal = n.wal.entries(height).unwrap_or_default();
        let _ = n.wal.prune_below(height);
        n.inbox.push_back(Input::StartHeight {
            height,
            validators: set,
            wal,
        });
        self.process(node);
        // The node's messages of this height that came early are handled now (`Early`).
        let early = std::mem::take(&mut self.nodes[node].early);
        for (from, msg) in early {
            if msg.height() == height {
                self.handle(node, from, &msg);
            }
        }
    }

    fn deliver(&mut self, to: usize, from: usize, msg: &Rc<Msg>) {
        if !self.nodes[to].alive {
            return;
        }
        self.deliveries += 1;
        let traffic = &mut self.nodes[to].traffic;
        traffic.received += 1;
        traffic.received_bytes += msg.wire_len();
        self.handle(to, from, msg);
    }

    /// What a node does with a message it received (or held for its height).
    fn handle(&mut self, to: usize, from: usize, msg: &Rc<Msg>) {
        if self.links.is_some() && !self.wan_receive(to, from, msg) {
            return;
        }
        let height = self.nodes[to].engine.height();
        let validity =
            |values: &HashMap<BlockHash, bool>, value: BlockHash| values.get(&value).copied().unwrap_or(false);
        let inputs = match &**msg {
            Msg::Proposal(p) if p.proposal.height == height => vec![
                Input::ValueValidated {
                    height,
                    value: p.proposal.block,
                    valid: validity(&self.values, p.proposal.block),
                },
                Input::Proposal(*p),
            ],
            Msg::Vote(v) if v.vote.height == height => vec![Input::Vote(*v)],
            Msg::Commit(d) if d.height == height && self.nodes[to].engine.decision().is_none() => vec![
                Input::ValueValidated {
                    height,
                    value: d.value,
                    valid: validity(&self.values, d.value),
                },
                Input::Commit(d.certificate.clone()),
            ],
            _ => Vec::new(),
        };
        self.nodes[to].inbox.extend(inputs);
        self.process(to);
    }

    fn process(&mut self, node: usize) {
        while let Some(input) = self.nodes[node].inbox.pop_front() {
            let effects = self.nodes[node].engine.handle(input);
            for effect in effects {
                self.on_effect(node, effect);
            }
            if self.nodes[node].honest {
                self.max_round = self.max_round.max(self.nodes[node].engine.round());
            }
        }
    }

    fn on_effect(&mut self, node: usize, effect: Effect) {
        match effect {
            Effect::PersistWal(entry) => {
                let _ = self.nodes[node].wal.append(&entry);
            }
            Effect::BroadcastProposal(p) => self.broadcast(node, Msg::Proposal(p)),
            Effect::BroadcastVote(v) => self.broadcast(node, Msg::Vote(v)),
            Effect::ScheduleTimeout { timeout, after_ms } => {
                let epoch = self.nodes[node].epoch;
                self.at(self.now + after_ms, Event::Timeout { node, epoch, timeout });
            }
            Effect::RequestValue { height, round } => {
                let validator = self.nodes[node].validator;
                let mut hasher = Domain::BlockHeader.hasher();
                hasher.update(&self.scenario.seed.to_le_bytes());
                hasher.update(&(node as u64).to_le_bytes());
                hasher.update(&height.to_le_bytes());
                hasher.update(&round.to_le_bytes());
                let value = BlockHash(Hash256(*hasher.finalize().as_bytes()));
                let valid = !self.scenario.invalid_proposers.contains(&validator);
                self.values.insert(value, valid);
                self.nodes[node]
                    .inbox
                    .push_back(Input::ValueToPropose { height, round, value });
            }
            Effect::Decide(decision) => self.on_decide(node, decision),
            Effect::Evidence(evidence) => {
                self.evidence += 1;
                let offender = self.keys.iter().position(|k| k.public_key() == evidence.validator());
                if let Some(validator) = offender
                    && !self.scenario.is_faulty(validator)
                {
                    self.violations.push(Violation::HonestAccused { validator });
                }
            }
            Effect::Stalled { height, .. } => self.log(format!("node {node} stalled at height {height}")),
        }
    }

    fn on_decide(&mut self, node: usize, decision: Decision) {
        let height = decision.height;
        let value = decision.value;
        self.log(format!(
            "node {node} (validator {}) decides height {height} round {} value {}",
            self.nodes[node].validator,
            decision.round,
            &value.to_string()[..8]
        ));
        if self.nodes[node].honest {
            self.first_decisions.entry(height).or_insert((self.now, decision.round));
            if let Some(started) = self.height_started.get(&height) {
                self.commit_latencies.push(self.now.saturating_sub(*started));
            }
            if height == self.scenario.heights {
                self.done += 1;
            }
            if self.values.get(&value) != Some(&true) {
                self.violations.push(Violation::Validity { node, height });
            }
            match self.honest_decisions.get(&height) {
                Some((other, decided)) if *decided != value => {
                    let violation = Violation::Agreement {
                        height,
                        first: (*other, *decided),
                        second: (node, value),
                    };
                    self.log(format!("AGREEMENT VIOLATED at height {height}"));
                    self.violations.push(violation);
                }
                Some(_) => {}
                None => {
                    self.honest_decisions.insert(height, (node, value));
                }
            }
        }
        if self.links.is_none() {
            self.broadcast(node, Msg::Commit(decision.clone()));
        }
        let decided = &mut self.nodes[node].decided;
        decided.insert(height, decision);
        if self.scenario.heights > KEEP_DECISIONS {
            // Long runs keep the last few decisions (catch-up needs the last), not a
            // certificate per height per node.
            while decided.len() as u64 > KEEP_DECISIONS {
                decided.pop_first();
            }
        }
        match self.scenario.wan {
            // The node waits its minimum block interval before the next height.
            Some(wan) => {
                let epoch = self.nodes[node].epoch;
                let at = self.now + wan.min_interval_ms;
                self.at(
                    at,
                    Event::Start {
                        node,
                        epoch,
                        height: height + 1,
                    },
                );
            }
            None => self.start_height(node, height + 1),
        }
    }
}
