//! The seeded schedule of perturbations: which faults a run injects, on which nodes, when and
//! for how long. The same seed and settings give the same schedule.

use std::fmt;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use timecoin_attacker::Behaviour;

/// One perturbation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    /// `kill -9`, restarted when the fault ends; it must keep every block it had.
    Kill { node: usize },
    /// SIGSTOP, then SIGCONT.
    Pause { node: usize },
    /// The node's link down, then up.
    LinkDown { node: usize },
    /// Latency and jitter on every link of the node (the relay).
    Delay {
        node: usize,
        latency_ms: u64,
        jitter_ms: u64,
    },
    /// Lost segments on every link of the node (the relay).
    Loss { node: usize, percent: u8 },
    /// The node's connections cut every `every_ms` (the relay).
    Cuts { node: usize, every_ms: u64 },
    /// What the node receives capped (a token bucket on its link).
    Bandwidth { node: usize, kbit: u64 },
    /// The nodes in `side` cannot reach the others (the relay).
    Partition { side: Vec<usize> },
    /// `kill -9`, the chain store removed, restarted: the node must resync from its peers.
    Wipe { node: usize },
    /// Restarted with its clock `offset_ms` off (libfaketime), and restarted at the true time
    /// when the fault ends.
    Clock { node: usize, offset_ms: i64 },
    /// `kill -9`, and the attacker in its place with its operator key running `behaviours`
    /// against the others; the node restarts when the fault ends.
    Byzantine { node: usize, behaviours: Vec<Behaviour> },
}

/// The kinds of fault, in the order a CI run with every kind takes them.
pub(crate) const KINDS: [&str; 11] = [
    "kill",
    "pause",
    "link-down",
    "delay",
    "loss",
    "cuts",
    "bandwidth",
    "partition",
    "wipe",
    "clock",
    "byzantine",
];

/// Behaviours a byzantine fault draws.
const BYZANTINE_BEHAVIOURS: usize = 3;

impl Fault {
    /// The nodes the fault acts on.
    pub(crate) fn nodes(&self) -> Vec<usize> {
        match self {
            Fault::Kill { node }
            | Fault::Pause { node }
            | Fault::LinkDown { node }
            | Fault::Delay { node, .. }
            | Fault::Loss { node, .. }
            | Fault::Cuts { node, .. }
            | Fault::Bandwidth { node, .. }
            | Fault::Wipe { node }
            | Fault::Clock { node, .. }
            | Fault::Byzantine { node, .. } => vec![*node],
            Fault::Partition { side } => side.clone(),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Kill { node } => write!(f, "kill -9 node{node}"),
            Fault::Pause { node } => write!(f, "SIGSTOP node{node}"),
            Fault::LinkDown { node } => write!(f, "link of node{node} down"),
            Fault::Delay {
                node,
                latency_ms,
                jitter_ms,
            } => write!(f, "node{node}'s links +{latency_ms} ms, jitter {jitter_ms} ms"),
            Fault::Loss { node, percent } => write!(f, "node{node}'s links lose {percent}% of segments"),
            Fault::Cuts { node, every_ms } => write!(f, "node{node}'s connections cut every {every_ms} ms"),
            Fault::Bandwidth { node, kbit } => write!(f, "node{node} receives at most {kbit} kbit/s"),
            Fault::Partition { side } => {
                let names: Vec<String> = side.iter().map(|n| format!("node{n}")).collect();
                write!(f, "partition: {{{}}} apart from the rest", names.join(", "))
            }
            Fault::Wipe { node } => write!(f, "kill -9 node{node} and wipe its chain"),
            Fault::Clock { node, offset_ms } => write!(f, "node{node}'s clock {offset_ms:+} ms off"),
            Fault::Byzantine { node, behaviours } => {
                let names: Vec<&str> = behaviours.iter().map(|b| b.name()).collect();
                write!(
                    f,
                    "node{node} replaced by an attacker with its key: {}",
                    names.join(", ")
                )
            }
        }
    }
}

/// A fault and when it acts, in milliseconds from the start of the chaos.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) start_ms: u64,
    pub(crate) duration_ms: u64,
    pub(crate) fault: Fault,
}

impl Event {
    pub(crate) fn end_ms(&self) -> u64 {
        self.start_ms + self.duration_ms
    }
}

/// The schedule for `seed`: `kinds` distinct kinds of fault (all of them in [`KINDS`]' order
/// when `kinds` covers them all, otherwise a seeded choice) on `nodes` nodes. A fault on a
/// node starts only when the node's previous fault has ended; faults on different nodes
/// may overlap.
pub(crate) fn plan(seed: u64, nodes: usize, kinds: usize) -> Vec<Event> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut chosen: Vec<&str> = KINDS.to_vec();
    if kinds < KINDS.len() {
        chosen.shuffle(&mut rng);
        chosen.truncate(kinds);
    }
    let mut busy_until = vec![0u64; nodes.max(1)];
    let mut events = Vec::new();
    let mut cursor = 0u64;
    for kind in chosen {
        let duration_ms = rng.random_range(3_000..=7_000);
        let node = {
            // The node free soonest; ties broken by the seed.
            let mut order: Vec<usize> = (0..busy_until.len()).collect();
            order.shuffle(&mut rng);
            order
                .into_iter()
                .min_by_key(|&n| busy_until.get(n).copied().unwrap_or(0).max(cursor))
                .unwrap_or(0)
        };
        let fault = match kind {
            "kill" => Fault::Kill { node },
            "pause" => Fault::Pause { node },
            "link-down" => Fault::LinkDown { node },
            "delay" => Fault::Delay {
                node,
                latency_ms: rng.random_range(20..=300),
                jitter_ms: rng.random_range(0..=200),
            },
            "loss" => Fault::Loss {
                node,
                percent: rng.random_range(5..=30),
            },
            "cuts" => Fault::Cuts {
                node,
                every_ms: rng.random_range(300..=1_500),
            },
            "bandwidth" => Fault::Bandwidth {
                node,
                kbit: rng.random_range(64..=1_024),
            },
            "partition" => {
                let mut all: Vec<usize> = (0..nodes).collect();
                all.shuffle(&mut rng);
                let size = rng.random_range(1..=(nodes / 2).max(1));
                let mut side: Vec<usize> = all.into_iter().take(size).collect();
                side.sort_unstable();
                Fault::Partition { side }
            }
            "wipe" => Fault::Wipe { node },
            "byzantine" => {
                let mut behaviours = Behaviour::ALL.to_vec();
                behaviours.shuffle(&mut rng);
                behaviours.truncate(BYZANTINE_BEHAVIOURS);
                behaviours.sort_by_key(|b| Behaviour::ALL.iter().position(|a| a == b));
                Fault::Byzantine { node, behaviours }
            }
            _ => {
                let magnitude = rng.random_range(1_000..=30_000i64);
                Fault::Clock {
                    node,
                    offset_ms: if rng.random_bool(0.5) { magnitude } else { -magnitude },
                }
            }
        };
        let involved = fault.nodes();
        let start_ms = involved
            .iter()
            .filter_map(|&n| busy_until.get(n).copied())
            .fold(cursor, u64::max);
        for &n in &involved {
            if let Some(until) = busy_until.get_mut(n) {
                *until = start_ms + duration_ms;
            }
        }
        events.push(Event {
            start_ms,
            duration_ms,
            fault,
        });
        cursor = start_ms + rng.random_range(1_000..=duration_ms);
    }
    events.sort_by_key(|e| e.start_ms);
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_schedule_and_another_seed_another() {
        assert_eq!(plan(42, 4, 5), plan(42, 4, 5));
        assert_ne!(plan(42, 4, 5), plan(43, 4, 5));
    }

    #[test]
    fn a_full_schedule_has_every_kind_once_and_faults_on_one_node_never_overlap() {
        for seed in 0..200 {
            let events = plan(seed, 4, KINDS.len());
            assert_eq!(events.len(), KINDS.len());
            let kill = events.iter().filter(|e| matches!(e.fault, Fault::Kill { .. })).count();
            let partitions: Vec<&Vec<usize>> = events
                .iter()
                .filter_map(|e| match &e.fault {
                    Fault::Partition { side } => Some(side),
                    _ => None,
                })
                .collect();
            assert_eq!((kill, partitions.len()), (1, 1));
            for side in partitions {
                assert!(
                    !side.is_empty() && side.len() <= 2,
                    "a partition of 4 leaves at least half: {side:?}"
                );
            }
            for (i, a) in events.iter().enumerate() {
                for b in events.iter().skip(i + 1) {
                    let shared = a.fault.nodes().iter().any(|n| b.fault.nodes().contains(n));
                    let overlap = a.start_ms < b.end_ms() && b.start_ms < a.end_ms();
                    assert!(!(shared && overlap), "seed {seed}: {a:?} overlaps {b:?} on a node");
                }
            }
        }
    }
}
