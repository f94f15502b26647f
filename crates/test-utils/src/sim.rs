//! A deterministic simulator of a masternode network running the consensus engine.
//!
//! N engines run in one process. A seeded scheduler delivers, delays, reorders, duplicates
//! and drops messages, splits the network into partitions (reshuffled over time) and heals
//! it, crashes nodes and restarts them from their write-ahead log, and fires timeouts by
//! simulated time. Byzantine behaviour comes from **twins** (two copies of one validator,
//! same key, correct code, usually on opposite sides of a partition), **amnesia** (a copy
//! that restarts without its WAL) and proposers of invalid values.
//!
//! Every run checks agreement (no two honest nodes decide differently at a height),
//! validity (a decided value was proposed and is valid), liveness (after the network heals,
//! every honest node decides every height within a bound) and that no honest validator is
//! ever accused of equivocation. A run is reproducible from its seed; a failure carries the
//! seed and a readable trace.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::fmt;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use timecoin_consensus::{
    Decision, Effect, Engine, EngineConfig, Input, MemoryWal, Timeout, TimeoutConfig, Validator, ValidatorSet, Wal,
};
use timecoin_primitives::{BlockHash, Domain, Hash256, SecretKey, SignedProposal, SignedVote};

/// How messages misbehave before the network heals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// Probability that a message is lost.
    pub drop: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Longest delay of a message, in milliseconds (the shortest is 1).
    pub max_delay_ms: u64,
}

/// One simulated run's set-up.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// The seed everything random derives from.
    pub seed: u64,
    /// Voting power of each validator.
    pub powers: Vec<u64>,
    /// Validators that run as two copies with the same key.
    pub twins: Vec<usize>,
    /// Validators that crash often and restart without their WAL.
    pub amnesia: Vec<usize>,
    /// Validators that propose invalid values.
    pub invalid_proposers: Vec<usize>,
    /// Whether honest nodes crash and restart (with their WAL) before the network heals.
    pub crashes: bool,
    /// Whether the network is split (and re-split) before it heals.
    pub partitions: bool,
    /// When the network heals: from then on messages arrive within 100 ms and nothing fails.
    pub heal_ms: u64,
    /// Heights to decide.
    pub heights: u64,
    /// Message faults before healing.
    pub faults: Faults,
    /// Every message takes exactly this long, before and after healing (for latency
    /// measurements); `None` draws delays at random.
    pub fixed_delay_ms: Option<u64>,
}

/// After healing, every honest node must decide every height within this much simulated time.
pub const LIVENESS_BOUND_MS: u64 = 120_000;
const GOSSIP_INTERVAL_MS: u64 = 1_000;
const HEALED_MAX_DELAY_MS: u64 = 100;
const TRACE_LINES: usize = 400;

impl Scenario {
    /// A random scenario in which the faulty validators hold less than 1/3 of the power, so
    /// every invariant must hold.
    pub fn random(seed: u64) -> Scenario {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = [4usize, 7, 10][rng.random_range(0..3)];
        let powers: Vec<u64> = if rng.random_bool(0.5) {
            vec![1; n]
        } else {
            (0..n).map(|_| rng.random_range(1..=10)).collect()
        };
        let total: u64 = powers.iter().sum();
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        let (mut twins, mut amnesia, mut invalid_proposers) = (Vec::new(), Vec::new(), Vec::new());
        let mut faulty_power = 0;
        for v in order {
            if (faulty_power + powers[v]) * 3 >= total {
                continue;
            }
            faulty_power += powers[v];
            match rng.random_range(0..6) {
                0 => amnesia.push(v),
                1 => invalid_proposers.push(v),
                _ => twins.push(v),
            }
        }
        Scenario {
            seed,
            powers,
            twins,
            amnesia,
            invalid_proposers,
            crashes: rng.random_bool(0.5),
            partitions: rng.random_bool(0.6),
            heal_ms: rng.random_range(0..20_000),
            heights: 4,
            faults: Faults {
                drop: rng.random_range(0.0..0.3),
                duplicate: rng.random_range(0.0..0.2),
                max_delay_ms: rng.random_range(10..1_500),
            },
            fixed_delay_ms: None,
        }
    }

    /// A harsher safe scenario: as much power as allowed (just under 1/3) runs as twins, the
    /// network is split and re-split for 10 to 20 seconds with long delays, and honest nodes
    /// crash. This is where a broken lock rule shows.
    pub fn adversarial(seed: u64) -> Scenario {
        let mut scenario = Scenario::random(seed);
        let mut rng = StdRng::seed_from_u64(seed ^ 0xad7e_75a1);
        scenario.twins.append(&mut scenario.amnesia);
        scenario.twins.append(&mut scenario.invalid_proposers);
        scenario.partitions = true;
        scenario.crashes = true;
        scenario.heal_ms = rng.random_range(10_000..20_000);
        scenario.faults.max_delay_ms = rng.random_range(200..1_500);
        scenario
    }

    /// A negative control: twins of validators holding half the power, on both sides of a
    /// partition. Agreement is not guaranteed; the simulator should find runs that break it.
    pub fn unsafe_twins(seed: u64) -> Scenario {
        Scenario {
            seed,
            powers: vec![1; 4],
            twins: vec![2, 3],
            amnesia: Vec::new(),
            invalid_proposers: Vec::new(),
            crashes: false,
            partitions: true,
            heal_ms: 15_000,
            heights: 3,
            faults: Faults {
                drop: 0.0,
                duplicate: 0.0,
                max_delay_ms: 300,
            },
            fixed_delay_ms: None,
        }
    }

    /// A negative control: validators holding half the power lose their WAL on every restart.
    pub fn unsafe_amnesia(seed: u64) -> Scenario {
        Scenario {
            seed,
            powers: vec![1; 4],
            twins: Vec::new(),
            amnesia: vec![2, 3],
            invalid_proposers: Vec::new(),
            crashes: true,
            partitions: true,
            heal_ms: 20_000,
            heights: 3,
            faults: Faults {
                drop: 0.05,
                duplicate: 0.0,
                max_delay_ms: 800,
            },
            fixed_delay_ms: None,
        }
    }

    /// A fault-free network of `n` equal validators where every message takes `delay_ms`:
    /// for measuring commit latency.
    pub fn fault_free(n: usize, heights: u64, delay_ms: u64) -> Scenario {
        Scenario {
            seed: 0,
            powers: vec![1; n],
            twins: Vec::new(),
            amnesia: Vec::new(),
            invalid_proposers: Vec::new(),
            crashes: false,
            partitions: false,
            heal_ms: 0,
            heights,
            faults: Faults {
                drop: 0.0,
                duplicate: 0.0,
                max_delay_ms: delay_ms,
            },
            fixed_delay_ms: Some(delay_ms),
        }
    }

    /// The power held by faulty validators.
    pub fn faulty_power(&self) -> u64 {
        let mut faulty: Vec<usize> = self
            .twins
            .iter()
            .chain(&self.amnesia)
            .chain(&self.invalid_proposers)
            .copied()
            .collect();
        faulty.sort_unstable();
        faulty.dedup();
        faulty.iter().filter_map(|v| self.powers.get(*v)).sum()
    }

    fn is_faulty(&self, validator: usize) -> bool {
        self.twins.contains(&validator)
            || self.amnesia.contains(&validator)
            || self.invalid_proposers.contains(&validator)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} powers {:?} twins {:?} amnesia {:?} invalid-proposers {:?} crashes {} partitions {} heal {} ms drop {:.2} dup {:.2} delay ≤{} ms",
            self.seed,
            self.powers,
            self.twins,
            self.amnesia,
            self.invalid_proposers,
            self.crashes,
            self.partitions,
            self.heal_ms,
            self.faults.drop,
            self.faults.duplicate,
            self.faults.max_delay_ms
        )
    }
}

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Two honest nodes decided different values at one height.
    Agreement {
        /// The height.
        height: u64,
        /// One node and its value.
        first: (usize, BlockHash),
        /// Another node and its different value.
        second: (usize, BlockHash),
    },
    /// An honest node decided a value nobody proposed, or an invalid one.
    Validity {
        /// The node.
        node: usize,
        /// The height.
        height: u64,
    },
    /// An honest node had not decided every height by the bound after healing.
    Liveness {
        /// The node.
        node: usize,
        /// Heights it decided.
        decided: u64,
    },
    /// Evidence of equivocation named an honest validator.
    HonestAccused {
        /// The validator.
        validator: usize,
    },
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The scenario.
    pub scenario: Scenario,
    /// Broken invariants (empty when all held).
    pub violations: Vec<Violation>,
    /// The last events, for reading a failure.
    pub trace: Vec<String>,
    /// Simulated time when the run ended.
    pub end_ms: u64,
    /// Highest round any honest node reached.
    pub max_round: u32,
    /// Messages delivered.
    pub deliveries: u64,
    /// Equivocation evidence produced.
    pub evidence: usize,
    /// For each height, when the first honest node decided it and in which round.
    pub first_decisions: BTreeMap<u64, (u64, u32)>,
}

impl Outcome {
    /// The failure report: scenario, violations and the trace.
    pub fn report(&self) -> String {
        let mut text = format!(
            "scenario: {}\nreproduce: cargo run --release -p timecoin-test-utils --bin simulate -- --seed {}{}\nviolations: {:?}\ntrace (last {} events):\n",
            self.scenario,
            self.scenario.seed,
            self.control_flag(),
            self.violations,
            self.trace.len()
        );
        for line in &self.trace {
            text.push_str("  ");
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    fn control_flag(&self) -> &'static str {
        if self.scenario == Scenario::unsafe_twins(self.scenario.seed) {
            " --unsafe-twins"
        } else if self.scenario == Scenario::unsafe_amnesia(self.scenario.seed) {
            " --unsafe-amnesia"
        } else {
            ""
        }
    }
}

#[derive(Debug, Clone)]
enum Msg {
    Proposal(SignedProposal),
    Vote(SignedVote),
    Commit(Decision),
}

#[derive(Debug)]
enum Event {
    Deliver { to: usize, msg: Msg },
    Timeout { node: usize, epoch: u32, timeout: Timeout },
    Gossip { node: usize },
    Crash { node: usize },
    Restart { node: usize },
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
}

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
            timeouts: TimeoutConfig {
                propose_ms: 1_000,
                propose_delta_ms: 200,
                prevote_ms: 500,
                prevote_delta_ms: 100,
                precommit_ms: 500,
                precommit_delta_ms: 100,
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
                });
            }
        }
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
        let deadline = self.scenario.heal_ms + LIVENESS_BOUND_MS;
        while let Some(Reverse((time, seq))) = self.queue.pop() {
            if time > deadline || self.all_done() {
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
            if node.honest && (node.decided.len() as u64) < self.scenario.heights {
                self.violations.push(Violation::Liveness {
                    node: index,
                    decided: node.decided.len() as u64,
                });
            }
        }
    }

    fn all_done(&self) -> bool {
        self.nodes
            .iter()
            .filter(|n| n.honest)
            .all(|n| n.decided.len() as u64 >= self.scenario.heights)
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

    fn broadcast(&mut self, from: usize, msg: &Msg) {
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
            if self.rng.random_bool(drop) {
                continue;
            }
            let copies = if self.rng.random_bool(duplicate) { 2 } else { 1 };
            for _ in 0..copies {
                let delay = match self.scenario.fixed_delay_ms {
                    Some(fixed) => fixed,
                    None => self.rng.random_range(1..=max_delay.max(1)),
                };
                self.at(self.now + delay, Event::Deliver { to, msg: msg.clone() });
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Deliver { to, msg } => self.deliver(to, msg),
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
        msgs.extend(self.nodes[node].decided.values().cloned().map(Msg::Commit));
        for msg in msgs {
            self.broadcast(node, &msg);
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
        if height > self.scenario.heights {
            return;
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
    }

    fn deliver(&mut self, to: usize, msg: Msg) {
        if !self.nodes[to].alive {
            return;
        }
        self.deliveries += 1;
        let height = self.nodes[to].engine.height();
        let validity =
            |values: &HashMap<BlockHash, bool>, value: BlockHash| values.get(&value).copied().unwrap_or(false);
        let inputs = match msg {
            Msg::Proposal(p) if p.proposal.height == height => vec![
                Input::ValueValidated {
                    height,
                    value: p.proposal.block,
                    valid: validity(&self.values, p.proposal.block),
                },
                Input::Proposal(p),
            ],
            Msg::Vote(v) if v.vote.height == height => vec![Input::Vote(v)],
            Msg::Commit(d) if d.height == height && self.nodes[to].engine.decision().is_none() => vec![
                Input::ValueValidated {
                    height,
                    value: d.value,
                    valid: validity(&self.values, d.value),
                },
                Input::Commit(d.certificate),
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
            Effect::BroadcastProposal(p) => {
                self.broadcast(node, &Msg::Proposal(p));
            }
            Effect::BroadcastVote(v) => {
                self.broadcast(node, &Msg::Vote(v));
            }
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
        self.nodes[node].decided.insert(height, decision.clone());
        self.broadcast(node, &Msg::Commit(decision));
        self.start_height(node, height + 1);
    }
}
