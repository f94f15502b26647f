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

use std::collections::BTreeMap;
use std::fmt;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use timecoin_primitives::BlockHash;

mod run;
mod wan;

pub use run::run;
pub use wan::{FRAME_OVERHEAD, Traffic, Wan};

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
    /// A wide-area network with the node's overlay and gossip rules, instead of every
    /// message going to every node.
    pub wan: Option<Wan>,
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
            wan: None,
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
            wan: None,
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
            wan: None,
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
            wan: None,
        }
    }

    /// `n` equal, honest validators deciding `heights` heights on a wide-area network.
    pub fn wan(n: usize, heights: u64, seed: u64, wan: Wan) -> Scenario {
        Scenario {
            seed,
            wan: Some(wan),
            ..Scenario::fault_free(n, heights, 0)
        }
    }

    /// After healing, every honest node must decide every height within this much simulated
    /// time: [`LIVENESS_BOUND_MS`], or two seconds a height in a long run.
    pub fn liveness_bound_ms(&self) -> u64 {
        LIVENESS_BOUND_MS.max(self.heights.saturating_mul(2_000))
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
    /// Each honest node's commit latency for each height it decided: from when the first
    /// honest node started the height to when this node decided it, in milliseconds.
    pub commit_latencies_ms: Vec<u64>,
    /// What each node sent and received.
    pub traffic: Vec<Traffic>,
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
