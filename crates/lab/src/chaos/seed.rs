//! One seed of a chaos run: its network in namespaces behind the relay, its funded payments
//! and steady load, the faults injected on schedule, and the final checks and report.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use timecoin_chain::Genesis;
use timecoin_primitives::{Encode, Transaction};

use super::checks::final_checks;
use super::inject::Run;
use super::lab::Lab;
use super::observe::Observer;
use super::options::Options;
use super::relay::{Faults, Relay};
use super::report::{Report, draw_heights};
use super::schedule::{self, Event, Fault};
use super::signals::interrupted;
use crate::bench::nodes::{Launch, Nodes};
use crate::bench::{load, tracker::Tracker};

/// Where libfaketime may be installed (Debian's package `faketime`).
const FAKETIME: [&str; 3] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
];

/// The nodes' pacing: a block at least every 250 ms while transactions wait, an empty one
/// after a second.
pub(crate) const PACING: &str = "[consensus]\nmin_block_interval_ms = 250\nempty_block_interval_ms = 1000\n";

/// Seconds of load before the first fault.
pub(crate) const WARM_UP: Duration = Duration::from_secs(3);

/// Runs seed `seed` (`kinds` kinds of fault) in `dir`: sets up its network, load and faults,
/// checks what the nodes did and writes its report and chart.
pub(crate) fn run(options: &Options, seed: u64, kinds: usize, dir: &Path) -> Result<Report> {
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
    let args = if options.verbose_nodes {
        vec!["-v".to_owned()]
    } else {
        Vec::new()
    };
    let Network {
        mut nodes,
        relay,
        lab,
        node_ips,
        ports,
        net,
    } = Network::start(options, seed, dir, PACING, args)?;
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
    let observer = Observer::start(dirs.clone(), start, super::observe::POLL);
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

/// A network of masternodes in namespaces, dialling each other through the relay. Fields
/// drop in order: the nodes stop before the relay and the namespaces go.
pub(crate) struct Network {
    pub(crate) nodes: Nodes,
    pub(crate) relay: Relay,
    pub(crate) lab: Lab,
    pub(crate) node_ips: Vec<std::net::IpAddr>,
    pub(crate) ports: Vec<u16>,
    /// Where the nodes' directories and `genesis.toml` are.
    pub(crate) net: PathBuf,
}

impl Network {
    /// Writes a network of `options.nodes` masternodes under `dir/net` (each configuration
    /// ending with `config`), makes its namespaces and relay, starts the nodes (with `args`)
    /// and waits until each answers.
    pub(crate) fn start(options: &Options, seed: u64, dir: &Path, config: &str, args: Vec<String>) -> Result<Network> {
        Network::start_with(options, seed, dir, config, args, |text| text)
    }

    /// [`Network::start`], with each node's configuration passed through `edit` first.
    pub(crate) fn start_with(
        options: &Options,
        seed: u64,
        dir: &Path,
        config: &str,
        args: Vec<String>,
        edit: impl Fn(String) -> String,
    ) -> Result<Network> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let lab = Lab::create(options.nodes)?;
        let net = dir.join("net");
        let node_ips: Vec<_> = (0..options.nodes).map(|k| lab.node_ip(k)).collect();
        timecoin_node::localnet::write_network_placed(
            &net,
            options.nodes,
            0,
            options.base_port,
            config,
            Some(&timecoin_node::localnet::Placement {
                node_ips: node_ips.clone(),
                dial_ip: lab.relay_ip(),
            }),
        )?;
        for k in 0..options.nodes {
            let path = net.join(format!("node{k}")).join("config.toml");
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            std::fs::write(&path, edit(text)).with_context(|| format!("writing {}", path.display()))?;
        }
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
        let mut nodes = Nodes::start_with(&net, (0..options.nodes).map(launch).collect(), args)?;
        nodes.wait_ready(Duration::from_secs(60 + 2 * options.nodes as u64))?;
        Ok(Network {
            nodes,
            relay,
            lab,
            node_ips,
            ports,
            net,
        })
    }
}

/// Funds one key per payment from node 0's genesis allocation (before any fault) and signs
/// the payments.
pub(crate) fn prepare_payments(genesis: &Genesis, net: &Path, nodes: &Nodes, count: u64) -> Result<Vec<Transaction>> {
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
pub(crate) fn submit_load(
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
