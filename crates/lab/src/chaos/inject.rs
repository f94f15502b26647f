//! Carrying out a seed's faults on schedule: each fault's start and end on the nodes, the
//! namespaces and the relay, the timeline of what happened when, and the wait for every node
//! to reach a new common height after the last heal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use timecoin_chain::Genesis;

use super::byzantine;
use super::lab::Lab;
use super::observe::Observer;
use super::relay::{Faults, Relay};
use super::schedule::{Event, Fault};
use super::signals::sleep_until;
use crate::bench::nodes::{Launch, Nodes};

/// Heights every node must gain after the last heal.
const NEW_HEIGHTS: u64 = 2;

/// Everything a run acts on.
pub(crate) struct Run<'a> {
    pub(crate) lab: &'a Lab,
    pub(crate) relay: &'a Relay,
    pub(crate) nodes: &'a mut Nodes,
    pub(crate) observer: &'a Observer,
    /// Whether each node's process is up and not stopped (the load skips the others).
    pub(crate) up: &'a [AtomicBool],
    /// Faults of each node's links, combined per link with the partition.
    pub(crate) link_faults: Vec<Faults>,
    pub(crate) partition: Option<Vec<usize>>,
    pub(crate) faketime: Option<PathBuf>,
    pub(crate) timeline: Vec<(f64, String)>,
    /// The genesis, for an attacker's introduction.
    pub(crate) genesis: &'a Genesis,
    /// Where each node listens, reached over the bridge (an attacker dials these).
    pub(crate) listening: Vec<SocketAddr>,
    /// Attackers running in place of nodes, by node.
    pub(crate) impostors: std::collections::HashMap<usize, byzantine::Impostor>,
}

/// A fault starting or ending, or one cut of a node's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Start,
    Cut,
    End,
}

impl Run<'_> {
    fn note(&mut self, what: String) {
        let at = self.observer.elapsed();
        println!("  {at:>6.1} s  {what}");
        self.timeline.push((at, what));
    }

    /// Injects `events` from `chaos_start`, then waits for every node to reach a new common
    /// height. Returns the seconds that took, or none if it did not happen within
    /// `liveness_s`.
    pub(crate) fn execute(&mut self, events: &[Event], chaos_start: Instant, liveness_s: u64) -> Result<Option<f64>> {
        let mut steps: Vec<(u64, Step, usize)> = Vec::new();
        for (index, event) in events.iter().enumerate() {
            steps.push((event.start_ms, Step::Start, index));
            steps.push((event.end_ms(), Step::End, index));
            if let Fault::Cuts { every_ms, .. } = event.fault {
                let mut at = event.start_ms + every_ms;
                while at < event.end_ms() {
                    steps.push((at, Step::Cut, index));
                    at += every_ms.max(1);
                }
            }
        }
        steps.sort();
        self.note("load running; faults start".to_owned());
        for (at_ms, step, index) in steps {
            let Some(event) = events.get(index) else { continue };
            sleep_until(chaos_start + Duration::from_millis(at_ms))?;
            match step {
                Step::Start => {
                    self.note(format!("start: {}", event.fault));
                    self.start(&event.fault)?;
                }
                Step::Cut => {
                    if let Fault::Cuts { node, .. } = event.fault {
                        self.relay.cut_node(node);
                    }
                }
                Step::End => {
                    self.end(&event.fault)?;
                    self.note(format!("healed: {}", event.fault));
                }
            }
        }
        let healed = Instant::now();
        let target = self.observer.tips().into_iter().max().unwrap_or(0) + NEW_HEIGHTS;
        self.note(format!("all healed; waiting for every node to reach height {target}"));
        let deadline = healed + Duration::from_secs(liveness_s);
        loop {
            let tips = self.observer.tips();
            if tips.iter().all(|&t| t >= target) {
                let seconds = healed.elapsed().as_secs_f64();
                self.note(format!("every node at height {target} or above: {tips:?}"));
                return Ok(Some(seconds));
            }
            if Instant::now() > deadline {
                self.note(format!("after {liveness_s} s the heights are {tips:?}"));
                return Ok(None);
            }
            sleep_until(Instant::now() + Duration::from_millis(100))?;
        }
    }

    fn set_up(&self, node: usize, up: bool) {
        if let Some(flag) = self.up.get(node) {
            flag.store(up, Ordering::Relaxed);
        }
    }

    /// Sets every link's faults from the per-node faults and the partition.
    fn apply_links(&self) {
        let n = self.link_faults.len();
        let apart = |a: usize, b: usize| {
            self.partition
                .as_ref()
                .is_some_and(|side| side.contains(&a) != side.contains(&b))
        };
        for from in 0..n {
            for to in 0..n {
                let (Some(a), Some(b)) = (self.link_faults.get(from), self.link_faults.get(to)) else {
                    continue;
                };
                self.relay.set(
                    from,
                    to,
                    Faults {
                        latency_ms: a.latency_ms + b.latency_ms,
                        jitter_ms: a.jitter_ms + b.jitter_ms,
                        loss_percent: a.loss_percent.max(b.loss_percent),
                        blocked: apart(from, to),
                    },
                );
            }
        }
    }

    fn set_link_faults(&mut self, node: usize, faults: Faults) {
        if let Some(slot) = self.link_faults.get_mut(node) {
            *slot = faults;
        }
        self.apply_links();
    }

    fn start(&mut self, fault: &Fault) -> Result<()> {
        match fault {
            Fault::Kill { node } | Fault::Wipe { node } => {
                self.set_up(*node, false);
                self.nodes.signal(*node, "KILL")?;
                if matches!(fault, Fault::Wipe { .. }) {
                    self.nodes.wipe_chain(*node)?;
                    self.observer.wiped(*node);
                }
            }
            Fault::Pause { node } => {
                self.set_up(*node, false);
                self.nodes.signal(*node, "STOP")?;
            }
            Fault::LinkDown { node } => self.lab.set_link(*node, false)?,
            Fault::Delay {
                node,
                latency_ms,
                jitter_ms,
            } => self.set_link_faults(
                *node,
                Faults {
                    latency_ms: *latency_ms,
                    jitter_ms: *jitter_ms,
                    ..Faults::default()
                },
            ),
            Fault::Loss { node, percent } => self.set_link_faults(
                *node,
                Faults {
                    loss_percent: *percent,
                    ..Faults::default()
                },
            ),
            Fault::Cuts { node, .. } => self.relay.cut_node(*node),
            Fault::Bandwidth { node, kbit } => self.lab.set_bandwidth(*node, Some(*kbit))?,
            Fault::Partition { side } => {
                self.partition = Some(side.clone());
                self.apply_links();
            }
            Fault::Byzantine { node, behaviours } => {
                self.set_up(*node, false);
                self.nodes.signal(*node, "KILL")?;
                let targets = self
                    .listening
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| k != node)
                    .map(|(_, address)| *address)
                    .collect();
                let impostor =
                    byzantine::Impostor::start(self.nodes.dir(*node)?, self.genesis, targets, behaviours.clone())?;
                self.impostors.insert(*node, impostor);
            }
            Fault::Clock { node, offset_ms } => {
                let faketime = self
                    .faketime
                    .clone()
                    .ok_or_else(|| anyhow!("libfaketime is not installed"))?;
                self.restart(
                    *node,
                    vec![
                        ("LD_PRELOAD".to_owned(), faketime.display().to_string()),
                        ("FAKETIME".to_owned(), format!("{:+}", offset_ms / 1_000)),
                        ("FAKETIME_DONT_FAKE_MONOTONIC".to_owned(), "1".to_owned()),
                    ],
                )?;
            }
        }
        Ok(())
    }

    fn end(&mut self, fault: &Fault) -> Result<()> {
        match fault {
            Fault::Kill { node } | Fault::Wipe { node } => {
                self.nodes.start_one(*node)?;
                self.set_up(*node, true);
            }
            Fault::Pause { node } => {
                self.nodes.signal(*node, "CONT")?;
                self.set_up(*node, true);
            }
            Fault::LinkDown { node } => self.lab.set_link(*node, true)?,
            Fault::Delay { node, .. } | Fault::Loss { node, .. } => self.set_link_faults(*node, Faults::default()),
            Fault::Cuts { .. } => {}
            Fault::Bandwidth { node, .. } => self.lab.set_bandwidth(*node, None)?,
            Fault::Partition { .. } => {
                self.partition = None;
                self.apply_links();
            }
            Fault::Clock { node, .. } => self.restart(*node, Vec::new())?,
            Fault::Byzantine { node, .. } => {
                if let Some(impostor) = self.impostors.remove(node) {
                    let line = impostor.stop()?;
                    self.note(line);
                }
                self.nodes.start_one(*node)?;
                self.set_up(*node, true);
            }
        }
        Ok(())
    }

    /// Stops node `node` (SIGTERM) and starts it again with `env`.
    fn restart(&mut self, node: usize, env: Vec<(String, String)>) -> Result<()> {
        self.set_up(node, false);
        self.nodes.stop_one(node)?;
        self.nodes.set_launch(
            node,
            Launch {
                netns: Some(self.lab.namespace(node)),
                env,
            },
        );
        self.nodes.start_one(node)?;
        self.set_up(node, true);
        Ok(())
    }
}
