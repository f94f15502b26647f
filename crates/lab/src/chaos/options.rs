//! The `timelab chaos` options, and the profiles that preset how many seeds run and how many
//! kinds of fault each seed draws.

use std::path::PathBuf;

use anyhow::{Result, bail};

use super::schedule;

/// A preset of seeds and faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Profile {
    /// One seed with every kind of fault (about two minutes).
    Ci,
    /// 50 seeds, five kinds of fault each, drawn by the seed.
    Long,
}

/// What to run (the `timelab chaos` options).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Options {
    /// ci: one seed, every kind of fault; long: 50 seeds, five kinds each.
    #[arg(long, value_enum, default_value_t = Profile::Ci)]
    pub(crate) profile: Profile,
    /// The first seed (default: drawn from the clock, and printed).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Seeds to run, one after another from the first (overrides the profile).
    #[arg(long)]
    pub(crate) seeds: Option<u64>,
    /// Kinds of fault per seed, 1 to 11 (overrides the profile).
    #[arg(long)]
    pub(crate) kinds: Option<usize>,
    /// Masternodes in the network.
    #[arg(long, default_value_t = 4)]
    pub(crate) nodes: usize,
    /// Payments per second submitted throughout.
    #[arg(long, default_value_t = 100)]
    pub(crate) rate: u64,
    /// Seconds within which every node must reach a new common height after the last heal.
    #[arg(long, default_value_t = 60)]
    pub(crate) liveness_s: u64,
    /// Where to write each seed's network, logs, report.json and heights.png (cleared first
    /// if an earlier run wrote it). A passing seed keeps only its report and chart.
    #[arg(long, default_value = "chaos-run")]
    pub(crate) dir: PathBuf,
    /// The first node's P2P port; the others follow, then the JSON-RPC ports.
    #[arg(long, default_value_t = 24500)]
    pub(crate) base_port: u16,
    /// No faults: every link is delayed by --latency-ms each way under a light load (--rate),
    /// and for this many seconds the run measures finality, messages and bytes per height,
    /// CPU and memory per node (writes steady.json).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) steady: Option<u64>,
    /// With --steady: each link's one-way delay through the relay, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub(crate) latency_ms: u64,
    /// With --steady: the nodes' `[network] masternode_peers` (a set larger than this plus
    /// one links by the overlay's grid: a small value puts a small network on the grid).
    #[arg(long)]
    pub(crate) masternode_peers: Option<usize>,
    /// With --steady: the nodes' `[network] max_outbound` (few ordinary connections leave
    /// masternodes that are not linked to reach each other through relays).
    #[arg(long)]
    pub(crate) max_outbound: Option<usize>,
    /// The nodes log debug events too (rounds, timeouts, peers), and a passing seed keeps its
    /// logs: for finding out what a seed did.
    #[arg(long)]
    pub(crate) verbose_nodes: bool,
}

impl Options {
    /// The seeds to run and the kinds of fault per seed: the profile's, unless overridden.
    pub(crate) fn seeds_and_kinds(&self) -> Result<(u64, usize)> {
        let (default_seeds, default_kinds) = match self.profile {
            Profile::Ci => (1, schedule::KINDS.len()),
            Profile::Long => (50, 5),
        };
        let kinds = self.kinds.unwrap_or(default_kinds);
        if !(1..=schedule::KINDS.len()).contains(&kinds) {
            bail!("--kinds must be 1 to {}, got {kinds}", schedule::KINDS.len());
        }
        Ok((self.seeds.unwrap_or(default_seeds), kinds))
    }
}
