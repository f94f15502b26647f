//! The wide-area network model: a latency for every link, jitter and loss, the masternode
//! overlay the nodes keep (`timecoin_network::Overlay`, the same function the node dials by)
//! and the gossip rules the node follows — a message goes from its signer to its links, a
//! copy that came straight from its signer is relayed by the overlay's rule, duplicates are
//! dropped, and a round standing still for three ticks re-sends each vote to the links not known
//! to hold it; a node heard from at a lower height is sent the decision it lacks (the node's
//! block sync, one round trip). It also counts what each node sends and receives.

use std::collections::{HashMap, HashSet};

use rand::RngExt;
use rand::rngs::StdRng;
use timecoin_network::Overlay;
use timecoin_primitives::{BlockHash, PublicKey};

/// A wide-area network: per-link latency, jitter, loss and the overlay's link budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wan {
    /// The shortest one-way latency of a link, in milliseconds.
    pub min_latency_ms: u64,
    /// The longest one-way latency of a link.
    pub max_latency_ms: u64,
    /// Up to this much more, drawn per message.
    pub jitter_ms: u64,
    /// Probability that a message is lost.
    pub loss: f64,
    /// The overlay's full-mesh bound (`[network] masternode_peers`).
    pub max_links: usize,
    /// How long a node waits after a decision before it starts the next height (the node's
    /// `min_block_interval_ms`).
    pub min_interval_ms: u64,
}

impl Wan {
    /// Links of 20–200 ms, up to 20 ms of jitter, 1% loss, the node's default link budget
    /// (32) and its default minimum block interval (250 ms).
    pub fn internet() -> Wan {
        Wan {
            min_latency_ms: 20,
            max_latency_ms: 200,
            jitter_ms: 20,
            loss: 0.01,
            max_links: 32,
            min_interval_ms: 250,
        }
    }
}

/// What a lost segment costs beyond its second crossing (Linux's least retransmission
/// timeout).
const RETRANSMIT_MS: u64 = 200;

/// Bytes a message costs on the wire beyond its encoding: the message tag, the frame's
/// length prefix and the Noise tag.
pub const FRAME_OVERHEAD: u64 = 1 + 4 + 16;

/// A message by what it says: kind (0 proposal, 1 prevote, 2 precommit), signer, round and
/// value. Two copies of one message have one key.
pub(super) type MsgKey = (u8, PublicKey, u32, Option<BlockHash>);

/// The links between nodes and their latencies.
pub(super) struct Links {
    /// Each node's links (node indices).
    pub(super) of: Vec<Vec<usize>>,
    /// The overlay the nodes keep (the node's own).
    pub(super) overlay: Overlay,
    /// One-way latency of each pair of nodes, in milliseconds.
    latency: Vec<Vec<u64>>,
    wan: Wan,
}

impl Links {
    /// The overlay over `keys` (one per validator), laid over `node_validator` (the validator
    /// each node runs), with latencies drawn from `rng`.
    pub(super) fn new(wan: Wan, keys: &[PublicKey], node_validator: &[usize], rng: &mut StdRng) -> Links {
        let overlay = Overlay::new(keys.iter().copied(), wan.max_links);
        let linked: Vec<Vec<bool>> = keys
            .iter()
            .map(|a| keys.iter().map(|b| overlay.linked(a, b)).collect())
            .collect();
        let n = node_validator.len();
        let is_linked = |i: usize, j: usize| {
            let (vi, vj) = (node_validator.get(i), node_validator.get(j));
            matches!((vi, vj), (Some(a), Some(b)) if linked.get(*a).and_then(|row| row.get(*b)).copied().unwrap_or(false))
        };
        let of = (0..n)
            .map(|i| (0..n).filter(|&j| j != i && is_linked(i, j)).collect())
            .collect();
        let mut latency = vec![vec![0; n]; n];
        for (i, j) in (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))) {
            let ms = rng.random_range(wan.min_latency_ms..=wan.max_latency_ms.max(wan.min_latency_ms));
            for (a, b) in [(i, j), (j, i)] {
                if let Some(cell) = latency.get_mut(a).and_then(|row| row.get_mut(b)) {
                    *cell = ms;
                }
            }
        }
        Links {
            of,
            overlay,
            latency,
            wan,
        }
    }

    /// This message's delay from `from` to `to`. The nodes speak TCP, so a lost segment is
    /// not a lost message: it arrives a retransmission timeout (200 ms, Linux's least) and
    /// another crossing later, as the chaos lab's relay models it.
    pub(super) fn delay(&self, from: usize, to: usize, rng: &mut StdRng) -> u64 {
        let base = self.latency(from, to);
        let lost = rng.random_bool(self.wan.loss);
        base + rng.random_range(0..=self.wan.jitter_ms) + if lost { RETRANSMIT_MS + base } else { 0 }
    }

    /// The one-way latency between two nodes.
    pub(super) fn latency(&self, from: usize, to: usize) -> u64 {
        self.latency.get(from).and_then(|row| row.get(to)).copied().unwrap_or(0)
    }
}

/// What one node knows of its height's messages.
#[derive(Default)]
pub(super) struct Known {
    height: u64,
    /// Messages it holds.
    seen: HashSet<MsgKey>,
    /// Messages each link is known to hold (it sent them, or was sent them).
    by_peer: HashMap<usize, HashSet<MsgKey>>,
    /// Decisions sent to peers heard from at a lower height: (peer, height).
    caught_up: HashSet<(usize, u64)>,
    /// The height and round the last gossip tick saw, and for how many ticks in a row.
    last_tick: (u64, u32),
    still: u32,
}

/// Ticks a round stands still before the node repairs it (the node's `REPAIR_AFTER_TICKS`).
const REPAIR_AFTER_TICKS: u32 = 3;

impl Known {
    fn at(&mut self, height: u64) -> &mut Self {
        if self.height != height {
            self.height = height;
            self.seen.clear();
            self.by_peer.clear();
            self.caught_up.clear();
        }
        self
    }

    /// Notes `key` held (and by `from`); returns whether it is new here.
    pub(super) fn receive(&mut self, height: u64, key: MsgKey, from: Option<usize>) -> bool {
        let this = self.at(height);
        if let Some(peer) = from {
            this.by_peer.entry(peer).or_default().insert(key);
        }
        this.seen.insert(key)
    }

    /// Whether `peer` is to be sent `key` (not known to hold it); it is counted as holding it.
    pub(super) fn send_to(&mut self, height: u64, key: MsgKey, peer: usize) -> bool {
        self.at(height).by_peer.entry(peer).or_default().insert(key)
    }

    /// Whether `peer`, heard from at `behind` (below this node's `height`), is still to be
    /// sent the decision of `behind`.
    pub(super) fn catch_up(&mut self, height: u64, peer: usize, behind: u64) -> bool {
        self.at(height).caught_up.insert((peer, behind))
    }

    /// Whether the round has stood still for [`REPAIR_AFTER_TICKS`] ticks (and notes this one).
    pub(super) fn stalled(&mut self, height: u64, round: u32) -> bool {
        if self.last_tick == (height, round) {
            self.still = self.still.saturating_add(1);
        } else {
            self.last_tick = (height, round);
            self.still = 0;
        }
        self.still >= REPAIR_AFTER_TICKS
    }
}

/// Messages and bytes a node sent and received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Messages sent.
    pub sent: u64,
    /// Messages received (duplicates included).
    pub received: u64,
    /// Bytes sent.
    pub sent_bytes: u64,
    /// Bytes received.
    pub received_bytes: u64,
}
