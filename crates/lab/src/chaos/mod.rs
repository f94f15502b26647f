//! `timelab chaos`: the chaos runner. It starts a network of masternodes as real `timed`
//! processes, each in its own network namespace joined by a veth pair to a bridge, every
//! node dialling its peers through a fault-injecting TCP relay; puts the network under a
//! steady load of signed payments; and injects a seeded schedule of faults (kill -9 and
//! restart, SIGSTOP/SIGCONT, link down, latency and jitter, loss, connection cuts, a bandwidth
//! cap, a partition, a wiped node, a clock offset, a node replaced by a Byzantine attacker
//! holding its key). Then it checks that the nodes agree on
//! every block and UTXO-set commitment, that every transaction a node's API reported in a
//! block is in every node's chain, that no node lost a block it had reported, and that after
//! the last heal every node reaches a new common height within a bound. It prints the seed
//! and a timeline, and writes `report.json` and `heights.png` per seed.

mod byzantine;
mod lab;
mod observe;
mod relay;
mod schedule;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};
use timecoin_chain::Genesis;
use timecoin_primitives::{Encode, Transaction};

use crate::bench::chart::{Area, Canvas, Rgb, Series};
use crate::bench::nodes::{Launch, Nodes};
use crate::bench::{load, tracker::Tracker};
use lab::Lab;
use observe::{Observed, Observer};
use relay::{Faults, Relay};
use schedule::{Event, Fault};

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
    /// The nodes log debug events too (rounds, timeouts, peers), and a passing seed keeps its
    /// logs: for finding out what a seed did.
    #[arg(long)]
    pub(crate) verbose_nodes: bool,
}

/// Where libfaketime may be installed (Debian's package `faketime`).
const FAKETIME: [&str; 3] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
];

/// Seconds of load before the first fault.
const WARM_UP: Duration = Duration::from_secs(3);

/// Heights every node must gain after the last heal.
const NEW_HEIGHTS: u64 = 2;

/// Transactions whose place is checked on every node's API at the end, at most.
const SPOT_CHECKS: usize = 100;

/// One seed's outcome, as written to its `report.json`.
#[derive(Debug, Serialize)]
struct Report {
    seed: u64,
    nodes: usize,
    rate: u64,
    schedule: Vec<String>,
    timeline: Vec<(f64, String)>,
    submitted: u64,
    accepted: u64,
    /// Transactions the nodes' APIs reported in blocks.
    reported_in_blocks: usize,
    /// Each node's height at the end.
    heights: Vec<u64>,
    /// Seconds from the last heal until every node had the new common height.
    recovery_s: Option<f64>,
    violations: Vec<String>,
}

/// Set when the runner gets SIGINT or SIGTERM: the run stops at once, and stops its nodes and
/// removes its namespaces on the way out.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Sleeps until `until`, or fails when the runner is interrupted.
fn sleep_until(until: Instant) -> Result<()> {
    loop {
        if interrupted() {
            bail!("interrupted");
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Sets [`INTERRUPTED`] on SIGINT or SIGTERM, from a thread of its own.
fn watch_signals() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal watcher")?;
    let (mut interrupt, mut terminate) = runtime.block_on(async {
        Ok::<_, std::io::Error>((signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?))
    })?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        });
        println!("interrupted: stopping the nodes and removing the namespaces…");
        INTERRUPTED.store(true, Ordering::Relaxed);
    });
    Ok(())
}

/// Runs the seeds the options name; fails if any seed saw a violation.
pub(crate) fn run(options: &Options) -> Result<()> {
    watch_signals()?;
    if options.nodes < 3 {
        bail!("the chaos runner needs at least 3 masternodes, got {}", options.nodes);
    }
    let (default_seeds, default_kinds) = match options.profile {
        Profile::Ci => (1, schedule::KINDS.len()),
        Profile::Long => (50, 5),
    };
    let seeds = options.seeds.unwrap_or(default_seeds);
    let kinds = options.kinds.unwrap_or(default_kinds);
    if !(1..=schedule::KINDS.len()).contains(&kinds) {
        bail!("--kinds must be 1 to {}, got {kinds}", schedule::KINDS.len());
    }
    let first = options.seed.unwrap_or_else(|| timecoin_node::now_ms() % 1_000_000);
    crate::bench::prepare_dir(&options.dir, "timelab chaos")?;
    let mut failed = Vec::new();
    for seed in first..first.saturating_add(seeds) {
        let dir = options.dir.join(format!("seed-{seed}"));
        println!("== seed {seed}");
        let report = run_seed(options, seed, kinds, &dir).with_context(|| format!("seed {seed}"))?;
        if report.violations.is_empty() {
            println!(
                "seed {seed}: passed ({} blocks, {} transactions reported in blocks, recovered {:.1} s after the last heal)",
                report.heights.iter().min().copied().unwrap_or(0),
                report.reported_in_blocks,
                report.recovery_s.unwrap_or(0.0)
            );
            // A passing seed keeps its report and chart, not its chains and logs (unless the
            // logs were asked for).
            if !options.verbose_nodes {
                let _ = std::fs::remove_dir_all(dir.join("net"));
            }
        } else {
            println!("seed {seed}: {} violation(s):", report.violations.len());
            for violation in &report.violations {
                println!("  {violation}");
            }
            println!("  logs and chains kept in {}", dir.join("net").display());
            failed.push(seed);
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {seeds} seed(s) saw violations: {failed:?} (rerun one with --seed S --seeds 1 --kinds {kinds})",
            failed.len()
        );
    }
    println!("all {seeds} seed(s) passed: no agreement, durability or liveness violation");
    Ok(())
}

/// Everything a run acts on.
struct Run<'a> {
    lab: &'a Lab,
    relay: &'a Relay,
    nodes: &'a mut Nodes,
    observer: &'a Observer,
    /// Whether each node's process is up and not stopped (the load skips the others).
    up: &'a [AtomicBool],
    /// Faults of each node's links, combined per link with the partition.
    link_faults: Vec<Faults>,
    partition: Option<Vec<usize>>,
    faketime: Option<PathBuf>,
    timeline: Vec<(f64, String)>,
    /// The genesis, for an attacker's introduction.
    genesis: &'a Genesis,
    /// Where each node listens, reached over the bridge (an attacker dials these).
    listening: Vec<SocketAddr>,
    /// Attackers running in place of nodes, by node.
    impostors: std::collections::HashMap<usize, byzantine::Impostor>,
}

fn run_seed(options: &Options, seed: u64, kinds: usize, dir: &Path) -> Result<Report> {
    let events = schedule::plan(seed, options.nodes, kinds);
    let faketime = FAKETIME.iter().map(PathBuf::from).find(|p| p.exists());
    if faketime.is_none() && events.iter().any(|e| matches!(e.fault, Fault::Clock { .. })) {
        bail!("the clock fault needs libfaketime: apt-get install faketime");
    }
    println!("schedule:");
    for event in &events {
        println!(
            "  {:>5.1} s  {:>4.1} s  {}",
            event.start_ms as f64 / 1e3,
            event.duration_ms as f64 / 1e3,
            event.fault
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let lab = Lab::create(options.nodes)?;
    let net = dir.join("net");
    let pacing = "[consensus]\nmin_block_interval_ms = 250\nempty_block_interval_ms = 1000\n";
    let node_ips: Vec<_> = (0..options.nodes).map(|k| lab.node_ip(k)).collect();
    timecoin_node::localnet::write_network_placed(
        &net,
        options.nodes,
        0,
        options.base_port,
        pacing,
        Some(&timecoin_node::localnet::Placement {
            node_ips: node_ips.clone(),
            dial_ip: lab.relay_ip(),
        }),
    )?;
    let ports: Vec<u16> = (0..options.nodes)
        .map(|k| options.base_port.saturating_add(u16::try_from(k).unwrap_or(u16::MAX)))
        .collect();
    let relay = Relay::start(
        &ports
            .iter()
            .map(|p| SocketAddr::new(lab.relay_ip(), *p))
            .collect::<Vec<_>>(),
        &ports
            .iter()
            .zip(&node_ips)
            .map(|(p, ip)| SocketAddr::new(*ip, *p))
            .collect::<Vec<_>>(),
        &node_ips,
        seed,
    )?;
    let launch = |k: usize| Launch {
        netns: Some(lab.namespace(k)),
        env: Vec::new(),
    };
    let args = if options.verbose_nodes {
        vec!["-v".to_owned()]
    } else {
        Vec::new()
    };
    let mut nodes = Nodes::start_with(&net, (0..options.nodes).map(launch).collect(), args)?;
    nodes.wait_ready(Duration::from_secs(60))?;
    let genesis = Genesis::from_toml(&std::fs::read_to_string(net.join("genesis.toml"))?)?;
    let chaos_ms = events.iter().map(Event::end_ms).max().unwrap_or(0);
    let payments = prepare_payments(
        &genesis,
        &net,
        &nodes,
        options
            .rate
            .saturating_mul(WARM_UP.as_secs() + chaos_ms / 1_000 + options.liveness_s + 10),
    )?;

    let start = Instant::now();
    let dirs = (0..options.nodes)
        .map(|k| nodes.dir(k).map(Path::to_path_buf))
        .collect::<Result<Vec<_>>>()?;
    let observer = Observer::start(dirs.clone(), start);
    let up: Vec<AtomicBool> = (0..options.nodes).map(|_| AtomicBool::new(true)).collect();
    let load_stop = AtomicBool::new(false);
    let (submitted, accepted) = (AtomicU64::new(0), AtomicU64::new(0));
    let mut run = Run {
        lab: &lab,
        relay: &relay,
        nodes: &mut nodes,
        observer: &observer,
        up: &up,
        link_faults: vec![Faults::default(); options.nodes],
        partition: None,
        faketime,
        timeline: Vec::new(),
        genesis: &genesis,
        listening: ports
            .iter()
            .zip(&node_ips)
            .map(|(p, ip)| SocketAddr::new(*ip, *p))
            .collect(),
        impostors: std::collections::HashMap::new(),
    };
    let outcome = std::thread::scope(|scope| {
        let load = scope.spawn(|| {
            submit_load(
                &dirs,
                &payments,
                options.rate,
                seed,
                &up,
                &load_stop,
                (&submitted, &accepted),
            )
        });
        let outcome = run.execute(&events, start + WARM_UP, options.liveness_s);
        load_stop.store(true, Ordering::Relaxed);
        let _ = load.join();
        outcome
    });
    let timeline = std::mem::take(&mut run.timeline);
    let recovery_s = outcome?;
    let observed = observer.finish();
    let (heights, mut violations) = final_checks(&nodes, &observed, seed, lab.relay_ip())?;
    violations.extend(observed.violations.iter().cloned());
    if recovery_s.is_none() {
        violations.push(format!(
            "liveness: not every node reached a new common height within {} s of the last heal (heights {heights:?})",
            options.liveness_s
        ));
    }
    nodes.stop();
    drop(relay);
    drop(lab);
    let report = Report {
        seed,
        nodes: options.nodes,
        rate: options.rate,
        schedule: events
            .iter()
            .map(|e| {
                format!(
                    "{:.1}–{:.1} s {}",
                    e.start_ms as f64 / 1e3,
                    e.end_ms() as f64 / 1e3,
                    e.fault
                )
            })
            .collect(),
        timeline,
        submitted: submitted.load(Ordering::Relaxed),
        accepted: accepted.load(Ordering::Relaxed),
        reported_in_blocks: observed.transactions.len(),
        heights,
        recovery_s,
        violations,
    };
    std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(&report)?)?;
    draw_heights(&dir.join("heights.png"), &observed, &report, &events)?;
    Ok(report)
}

/// Funds one key per payment from node 0's genesis allocation (before any fault) and signs
/// the payments.
fn prepare_payments(genesis: &Genesis, net: &Path, nodes: &Nodes, count: u64) -> Result<Vec<Transaction>> {
    let count = usize::try_from(count.max(1))?;
    let key = timecoin_node::keys::load(&net.join("node0").join("wallet.key"))?;
    let funding = load::fund(genesis, &load::genesis_coin(genesis, &key)?, count)?;
    let client = nodes.client(0)?;
    let tracker = Tracker::new(nodes.client(0)?);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| tracker.watch(&stop));
        let funded = (|| {
            tracker.expect(&[funding.first.txid()], false);
            crate::bench::submit(&client, std::slice::from_ref(&funding.first), 1)?;
            tracker.wait_finalized(Duration::from_secs(60))?;
            tracker.expect(&funding.second.iter().map(Transaction::txid).collect::<Vec<_>>(), false);
            crate::bench::submit(&client, &funding.second, 8)?;
            tracker.wait_finalized(Duration::from_secs(120))
        })();
        stop.store(true, Ordering::Relaxed);
        funded
    })?;
    let payments = load::payments(genesis, &funding.coins)?;
    println!(
        "funded and signed {} payments of {} bytes",
        payments.len(),
        payments.first().map_or(0, Encode::encoded_len)
    );
    Ok(payments)
}

/// Submits `rate` payments a second in ten batches, each to a node drawn by the seed among
/// those up, until `stop` (or the payments run out).
fn submit_load(
    dirs: &[PathBuf],
    payments: &[Transaction],
    rate: u64,
    seed: u64,
    up: &[AtomicBool],
    stop: &AtomicBool,
    (submitted, accepted): (&AtomicU64, &AtomicU64),
) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x10ad);
    let per_batch = usize::try_from(rate.div_ceil(10).max(1)).unwrap_or(1);
    let mut next = Instant::now();
    for batch in payments.chunks(per_batch) {
        if stop.load(Ordering::Relaxed) || interrupted() {
            break;
        }
        let live: Vec<usize> = (0..dirs.len())
            .filter(|&k| up.get(k).is_some_and(|u| u.load(Ordering::Relaxed)))
            .collect();
        if let Some(dir) = live
            .get(rng.random_range(0..live.len().max(1)))
            .and_then(|&k| dirs.get(k))
            && let Some(client) = timecoin_node::localnet::node_client(dir)
        {
            let calls: Vec<(&str, Value)> = batch
                .iter()
                .map(|tx| ("sendrawtransaction", json!([hex::encode(tx.to_bytes())])))
                .collect();
            submitted.fetch_add(batch.len() as u64, Ordering::Relaxed);
            if let Ok(answers) = client.call_batch(&calls) {
                accepted.fetch_add(answers.iter().filter(|a| a.is_ok()).count() as u64, Ordering::Relaxed);
            }
        }
        next += Duration::from_millis(100);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
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
    fn execute(&mut self, events: &[Event], chaos_start: Instant, liveness_s: u64) -> Result<Option<f64>> {
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

/// What the final checks read from one node.
struct NodeEnd {
    /// Block hashes from height 0 up.
    chain: Vec<String>,
    /// `gettxoutsetinfo`: height and commitment.
    utxo: Option<(u64, String)>,
    /// Its peers' addresses (`getpeerinfo`).
    peers: Vec<String>,
    /// For each sampled transaction, the block hash `getrawtransaction` names, if any.
    sampled: Vec<Option<String>>,
}

/// Reads node `k`'s whole chain, UTXO summary and peers, and looks up `sample`.
fn read_node(nodes: &Nodes, k: usize, sample: &[(&String, &u64)]) -> Result<NodeEnd> {
    let client = nodes.client(k)?;
    let tip = client
        .call("getblockcount", json!([]))?
        .as_u64()
        .ok_or_else(|| anyhow!("node{k}: getblockcount answered no number"))?;
    let mut chain = Vec::new();
    for chunk in (0..=tip).collect::<Vec<u64>>().chunks(500) {
        let calls: Vec<(&str, Value)> = chunk.iter().map(|h| ("getblockhash", json!([h]))).collect();
        for (height, answer) in chunk.iter().zip(client.call_batch(&calls)?) {
            chain.push(
                answer?
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| anyhow!("node{k}: getblockhash {height} answered no string"))?,
            );
        }
    }
    let utxo = client.call("gettxoutsetinfo", json!([]))?;
    let utxo = utxo
        .get("height")
        .and_then(Value::as_u64)
        .zip(utxo.get("hash_serialized").and_then(Value::as_str).map(str::to_owned));
    let peers = client
        .call("getpeerinfo", json!([]))?
        .as_array()
        .map(|peers| {
            peers
                .iter()
                .map(|p| p.get("addr").and_then(Value::as_str).unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    let calls: Vec<(&str, Value)> = sample
        .iter()
        .map(|(txid, _)| ("getrawtransaction", json!([txid, true])))
        .collect();
    let sampled = if calls.is_empty() {
        Vec::new()
    } else {
        client
            .call_batch(&calls)?
            .into_iter()
            .map(|answer| {
                answer
                    .ok()
                    .and_then(|tx| tx.get("blockhash").and_then(Value::as_str).map(str::to_owned))
            })
            .collect()
    };
    Ok(NodeEnd {
        chain,
        utxo,
        peers,
        sampled,
    })
}

/// Reads every node's whole chain and checks it against what the observers saw. Returns
/// each node's height and the violations ([`judge`]).
fn final_checks(nodes: &Nodes, observed: &Observed, seed: u64, relay_ip: IpAddr) -> Result<(Vec<u64>, Vec<String>)> {
    // A sample of the transactions reported in blocks, looked up on every node.
    let mut reported: Vec<(&String, &u64)> = observed.transactions.iter().collect();
    reported.sort();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5907);
    let sample: Vec<(&String, &u64)> = (0..SPOT_CHECKS.min(reported.len()))
        .filter_map(|_| reported.get(rng.random_range(0..reported.len())).copied())
        .collect();
    let mut unanswered = Vec::new();
    let ends: Vec<Option<NodeEnd>> = (0..nodes.len())
        .map(|k| match read_node(nodes, k, &sample) {
            Ok(end) => Some(end),
            Err(error) => {
                // A node that crashed or hangs is a finding, not a failure of the run.
                unanswered.push(format!("liveness: node{k} did not answer at the end: {error:#}"));
                None
            }
        })
        .collect();
    let heights = ends
        .iter()
        .map(|end| {
            end.as_ref().map_or(0, |e| {
                u64::try_from(e.chain.len().saturating_sub(1)).unwrap_or(u64::MAX)
            })
        })
        .collect();
    let mut violations = judge(observed, &ends, &sample, relay_ip);
    violations.extend(unanswered);
    Ok((heights, violations))
}

/// The violations in what the nodes answered at the end (`ends`) and what the observers saw:
/// two block hashes at one height, across nodes and time; a height reported finalized that
/// a node lacks; a sampled transaction that a node does not place in the block reported;
/// two UTXO commitments at one height; a node without peers, or with a peer not reached
/// through the relay at `relay_ip`. A node that did not answer (`None`) is left out: that is
/// a violation of its own.
fn judge(observed: &Observed, ends: &[Option<NodeEnd>], sample: &[(&String, &u64)], relay_ip: IpAddr) -> Vec<String> {
    let mut violations = Vec::new();
    let mut hashes = observed.hashes.clone();
    let mut commitments = observed.commitments.clone();
    for (k, end) in ends.iter().enumerate() {
        let Some(end) = end else { continue };
        if end.peers.is_empty() {
            violations.push(format!("harness: node{k} has no peers at the end"));
        }
        for address in &end.peers {
            if address.parse::<SocketAddr>().map(|a| a.ip()).ok() != Some(relay_ip) {
                violations.push(format!(
                    "harness: node{k} has a peer at {address}, not through the relay"
                ));
            }
        }
        for (height, hash) in (0u64..).zip(&end.chain) {
            observe::agree(&mut hashes, &mut violations, "block", height, hash.clone(), k);
        }
        if let Some((height, commitment)) = &end.utxo {
            observe::agree(
                &mut commitments,
                &mut violations,
                "UTXO commitment",
                *height,
                commitment.clone(),
                k,
            );
        }
        // Every height a node's API reported a block at exists on this node.
        if let Some((height, _)) = observed.hashes.last_key_value()
            && (end.chain.len() as u64) <= *height
        {
            violations.push(format!(
                "durability: node{k} ends at height {}, below height {height}, which was reported finalized",
                end.chain.len().saturating_sub(1)
            ));
        }
        for ((txid, height), found) in sample.iter().zip(&end.sampled) {
            let expected = observed.hashes.get(height);
            if found.as_ref() != expected {
                violations.push(format!(
                    "durability: node{k} does not have transaction {txid} in block {} at height {height} (it answered {found:?})",
                    expected.map_or("?", String::as_str)
                ));
            }
        }
    }
    violations
}

/// Node colours for the chart.
const COLORS: [Rgb; 8] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
];

/// A node's heights as points to draw: a wiped node's fall to its new height is vertical,
/// at its first answer after the wipe.
fn steps(heights: &[(f64, u64)]) -> Vec<(f64, f64)> {
    let mut points = Vec::with_capacity(heights.len());
    let mut last: Option<u64> = None;
    for &(t, h) in heights {
        if let Some(previous) = last
            && h < previous
        {
            points.push((t, previous as f64));
        }
        points.push((t, h as f64));
        last = Some(h);
    }
    points
}

/// `heights.png`: each node's height over time, and below it when each node was under a
/// fault (a raised line per node).
fn draw_heights(path: &Path, observed: &Observed, report: &Report, events: &[Event]) -> Result<()> {
    let names: Vec<String> = (0..report.nodes).map(|k| format!("NODE{k}")).collect();
    let mut canvas = Canvas::new(1_000, 700);
    let series: Vec<Series<'_>> = observed
        .heights
        .iter()
        .enumerate()
        .map(|(k, points)| Series {
            name: names.get(k).map_or("", String::as_str),
            color: COLORS.get(k % COLORS.len()).copied().unwrap_or([0, 0, 0]),
            points: steps(points),
        })
        .collect();
    canvas.lines(
        Area {
            x: 0,
            y: 0,
            width: 1_000,
            height: 400,
        },
        &format!("HEIGHT PER NODE, SEED {}", report.seed),
        "SECONDS",
        &series,
    );
    // The chaos starts after the warm-up; the observers' clock starts with the load.
    let offset = WARM_UP.as_secs_f64();
    let end = observed
        .heights
        .iter()
        .flat_map(|p| p.last().map(|(t, _)| *t))
        .fold(0.0_f64, f64::max);
    let faults: Vec<Series<'_>> = (0..report.nodes)
        .map(|k| {
            let base = k as f64;
            let mut points = vec![(0.0, base)];
            let mut spans: Vec<(f64, f64)> = events
                .iter()
                .filter(|e| e.fault.nodes().contains(&k))
                .map(|e| (offset + e.start_ms as f64 / 1e3, offset + e.end_ms() as f64 / 1e3))
                .collect();
            spans.sort_by(|a, b| a.0.total_cmp(&b.0));
            for (from, to) in spans {
                points.extend([(from, base), (from, base + 0.7), (to, base + 0.7), (to, base)]);
            }
            points.push((end, base));
            Series {
                name: names.get(k).map_or("", String::as_str),
                color: COLORS.get(k % COLORS.len()).copied().unwrap_or([0, 0, 0]),
                points,
            }
        })
        .collect();
    canvas.lines(
        Area {
            x: 0,
            y: 400,
            width: 1_000,
            height: 300,
        },
        "FAULTS (RAISED WHILE A NODE IS UNDER ONE)",
        "SECONDS",
        &faults,
    );
    canvas.save(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    fn end(chain: &[&str], peer: &str, sampled: Option<&str>) -> NodeEnd {
        NodeEnd {
            chain: chain.iter().map(|h| (*h).to_owned()).collect(),
            utxo: Some((u64::try_from(chain.len()).unwrap() - 1, format!("u{}", chain.len()))),
            peers: vec![peer.to_owned()],
            sampled: vec![sampled.map(str::to_owned)],
        }
    }

    #[test]
    fn the_judge_finds_each_kind_of_violation_and_nothing_in_agreeing_chains() {
        let observed = Observed {
            heights: Vec::new(),
            hashes: BTreeMap::from([(0, "a".to_owned()), (1, "b".to_owned()), (2, "c".to_owned())]),
            commitments: BTreeMap::from([(2, "u3".to_owned())]),
            transactions: HashMap::from([("t".to_owned(), 2)]),
            violations: Vec::new(),
        };
        let relay: IpAddr = "10.0.0.1".parse().unwrap();
        let txid = "t".to_owned();
        let sample = [(&txid, &2u64)];
        let good = end(&["a", "b", "c"], "10.0.0.1:24500", Some("c"));
        assert!(judge(&observed, &[Some(good), None], &sample, relay).is_empty());

        let ends = [
            end(&["a", "b", "c"], "10.0.0.1:24500", Some("c")),
            end(&["a", "b", "x"], "10.0.0.1:24501", Some("c")),
            end(&["a", "b"], "10.0.0.1:24502", Some("c")),
            end(&["a", "b", "c"], "10.0.0.12:24500", None),
        ];
        let mut ends = ends;
        ends[0].utxo = Some((2, "other".to_owned()));
        ends[3].peers.push(String::new());
        let found = judge(&observed, &ends.map(Some), &sample, relay);
        let expected = [
            "agreement: node0 reports UTXO commitment other at height 2, another node reported u3",
            "agreement: node1 reports block x at height 2, another node reported c",
            "durability: node2 ends at height 1, below height 2, which was reported finalized",
            "harness: node3 has a peer at 10.0.0.12:24500, not through the relay",
            "harness: node3 has a peer at , not through the relay",
            "durability: node3 does not have transaction t in block c at height 2 (it answered None)",
        ];
        for violation in expected {
            assert!(
                found.iter().any(|f| f == violation),
                "missing {violation:?} in {found:#?}"
            );
        }
        assert_eq!(found.len(), expected.len(), "{found:#?}");
    }
}
