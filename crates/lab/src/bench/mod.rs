//! `timelab bench`: the load generator and benchmark. It starts a local network of masternodes
//! as separate `timed` processes, funds one key per payment by a fan-out, signs every payment
//! beforehand, submits them over JSON-RPC batches at a target rate (or as fast as the nodes
//! accept them) to every node in turn, and measures finalized transactions per second,
//! submission-to-finality latency, block intervals, each node's CPU and peak memory, and
//! how fast a wiped node replays the chain. In the same run it measures this machine's raw
//! Ed25519 verification rate, the ceiling that every node verifying every transaction sets,
//! and breaks each node's CPU per finalized payment down by stage (`breakdown`).
//! It writes `report.json` and `chart.png`.

pub(crate) mod breakdown;
pub(crate) mod chart;
pub(crate) mod load;
pub(crate) mod nodes;
mod stats;
pub(crate) mod tracker;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::json;
use timecoin_chain::{Genesis, SigItem, verify_batch, verify_signatures};
use timecoin_primitives::{Encode, Hash256, Transaction};

use breakdown::Breakdown;
use chart::{Area, BLUE, Canvas, GREEN, ORANGE, RED, Series};
use nodes::Nodes;
use stats::Summary;
use tracker::Tracker;

/// What to run (the `timelab bench` options).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Options {
    /// Masternodes in the network.
    #[arg(long, default_value_t = 4)]
    pub(crate) nodes: usize,
    /// Payments per second to submit; 0 submits as fast as the nodes accept them.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) rate: u64,
    /// Seconds of submission.
    #[arg(long = "duration", default_value_t = 60)]
    pub(crate) duration_s: u64,
    /// Payments in all (default: rate × duration).
    #[arg(long)]
    pub(crate) payments: Option<usize>,
    /// Payments per JSON-RPC batch.
    #[arg(long, default_value_t = 250)]
    pub(crate) batch: usize,
    /// Where to write the network, its logs, report.json and chart.png (cleared first if an
    /// earlier run wrote it).
    #[arg(long, default_value = "bench-run")]
    pub(crate) dir: PathBuf,
    /// The first node's P2P port; the others follow, then the JSON-RPC ports, then the
    /// Prometheus ports.
    #[arg(long, default_value_t = 24300)]
    pub(crate) base_port: u16,
    /// Each node's `[consensus] min_block_interval_ms`.
    #[arg(long, default_value_t = 100)]
    pub(crate) min_block_interval_ms: u64,
    /// Each node's `[consensus] empty_block_interval_ms`.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) empty_block_interval_ms: u64,
    /// Each node's `[mempool] max_megabytes`.
    #[arg(long, default_value_t = 300)]
    pub(crate) mempool_megabytes: usize,
    /// Skip wiping a node after the load and timing its catch-up.
    #[arg(long)]
    pub(crate) no_catch_up: bool,
}

/// Marks a directory as the bench's own, so that a second run may clear it.
const MARKER: &str = ".timecoin-bench";

/// The figures of one run, as written to `report.json`.
#[derive(Debug, Serialize)]
struct Report {
    settings: serde_json::Value,
    machine: Machine,
    signature_verification: VerifyRates,
    submitted: usize,
    accepted: usize,
    rejected: usize,
    rejections: Vec<String>,
    finalized: usize,
    not_finalized: usize,
    submit_seconds: f64,
    /// Payments finalized while submitting, per second of submission.
    finalized_tx_per_second: f64,
    /// Payments finalized in all, per second from the first submission to the last
    /// finalization.
    overall_tx_per_second: f64,
    /// `finalized_tx_per_second` over the batched verification rate of all cores divided by
    /// the number of nodes (each node verifies each payment).
    share_of_verification_limit: f64,
    latency_ms: Summary,
    block_interval_ms: Summary,
    block_transactions: Summary,
    blocks: usize,
    nodes: Vec<nodes::Usage>,
    /// Each node's CPU per finalized payment, by stage.
    breakdown: Option<Breakdown>,
    catch_up: Option<CatchUp>,
    per_second: Vec<stats::Second>,
}

#[derive(Debug, Serialize)]
struct Machine {
    cores: usize,
    cpu: String,
}

/// Raw Ed25519 verification on this machine, signatures per second.
#[derive(Debug, Clone, Copy, Serialize)]
struct VerifyRates {
    single_one_core: f64,
    batched_one_core: f64,
    batched_all_cores: f64,
}

/// A wiped node replaying the chain from its peers.
#[derive(Debug, Serialize)]
struct CatchUp {
    blocks: u64,
    transactions: u64,
    seconds: f64,
    tx_per_second: f64,
    /// Over the batched verification rate of all cores.
    share_of_verification_rate: f64,
}

/// Runs the benchmark.
pub(crate) fn run(options: &Options) -> Result<()> {
    if options.nodes < 3 {
        bail!("the benchmark needs at least 3 masternodes, got {}", options.nodes);
    }
    let payments = match options.payments {
        Some(count) => count,
        None if options.rate > 0 => usize::try_from(options.rate.saturating_mul(options.duration_s))?,
        None => bail!("--rate 0 (as fast as accepted) needs --payments"),
    };
    if payments == 0 || options.batch == 0 {
        bail!("nothing to submit: --payments and --batch must be above 0");
    }
    prepare_dir(&options.dir, "timelab bench")?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("measuring raw Ed25519 verification on {cores} core(s)…");
    let rates = verification_rates();
    println!(
        "  single {:.0}/s, batched {:.0}/s on one core, {:.0}/s on all cores",
        rates.single_one_core, rates.batched_one_core, rates.batched_all_cores
    );

    let net = options.dir.join("net");
    let pacing = format!(
        "[consensus]\nmin_block_interval_ms = {}\nempty_block_interval_ms = {}\n\n\
         [mempool]\nmax_transactions = 1000000\nmax_megabytes = {}\n",
        options.min_block_interval_ms, options.empty_block_interval_ms, options.mempool_megabytes
    );
    timecoin_node::localnet::write_network(&net, options.nodes, 0, options.base_port, &pacing)?;
    let metrics = serve_metrics(&net, options)?;
    let genesis = Genesis::from_toml(&std::fs::read_to_string(net.join("genesis.toml"))?)?;
    let mut nodes = Nodes::start(&net)?;
    nodes.wait_ready(Duration::from_secs(60))?;
    let stop_watching = Arc::new(AtomicBool::new(false));
    let tracker = Arc::new(Tracker::new(nodes.client(0)?));
    let watcher = {
        let (tracker, stop) = (Arc::clone(&tracker), Arc::clone(&stop_watching));
        std::thread::spawn(move || tracker.watch(&stop))
    };
    let outcome = measure(options, &genesis, &mut nodes, &tracker, payments, rates, &metrics);
    stop_watching.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    nodes.stop();
    let (report, latencies) = outcome?;
    write_report(&options.dir, &report, &latencies)?;
    print_summary(&report, &options.dir);
    Ok(())
}

/// Turns on each node's Prometheus endpoint, on the ports after its P2P and JSON-RPC ones,
/// and returns where they listen.
fn serve_metrics(net: &Path, options: &Options) -> Result<Vec<SocketAddr>> {
    let configs = timecoin_node::localnet::node_configs(net)?;
    let first = usize::from(options.base_port).saturating_add(2 * configs.len());
    configs
        .iter()
        .enumerate()
        .map(|(k, config)| {
            let port = u16::try_from(first + k).context("the metrics ports run past 65535")?;
            let address = SocketAddr::from(([127, 0, 0, 1], port));
            let text = std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
            std::fs::write(
                config,
                format!("{text}\n[metrics]\nenabled = true\nlisten = \"{address}\"\n"),
            )
            .with_context(|| format!("writing {}", config.display()))?;
            Ok(address)
        })
        .collect()
}

/// Clears `dir` if a previous run of `owner` (`timelab bench`, `timelab chaos`) wrote it;
/// refuses any other non-empty directory.
pub(crate) fn prepare_dir(dir: &Path, owner: &str) -> Result<()> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)?.next().is_none();
        if !empty && !dir.join(MARKER).exists() {
            bail!(
                "{} exists and was not written by `{owner}`; name another --dir",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        format!("written by {owner}; the next run clears it\n"),
    )?;
    Ok(())
}

/// Funds, signs, submits and measures; the network is running.
fn measure(
    options: &Options,
    genesis: &Genesis,
    nodes: &mut Nodes,
    tracker: &Tracker,
    count: usize,
    rates: VerifyRates,
    metrics: &[SocketAddr],
) -> Result<(Report, Vec<f64>)> {
    let net = options.dir.join("net");
    let funding_key = timecoin_node::keys::load(&net.join("node0").join("wallet.key"))?;
    let funding_coin = load::genesis_coin(genesis, &funding_key)?;
    println!("funding {count} payer keys…");
    let started = Instant::now();
    let funding = load::fund(genesis, &funding_coin, count)?;
    let client = nodes.client(0)?;
    tracker.expect(&[funding.first.txid()], false);
    submit(&client, std::slice::from_ref(&funding.first), 1)?;
    tracker.wait_finalized(Duration::from_secs(60))?;
    tracker.expect(&funding.second.iter().map(Transaction::txid).collect::<Vec<_>>(), false);
    submit(&client, &funding.second, 8)?;
    tracker.wait_finalized(Duration::from_secs(300))?;
    println!(
        "  {} coins in {} fan-out transactions, finalized in {:.1} s",
        funding.coins.len(),
        funding.second.len() + 1,
        started.elapsed().as_secs_f64()
    );
    let signing = Instant::now();
    let payments = load::payments(genesis, &funding.coins)?;
    println!(
        "signed {} payments of {} bytes in {:.1} s",
        payments.len(),
        payments.first().map_or(0, Encode::encoded_len),
        signing.elapsed().as_secs_f64()
    );

    let rate = if options.rate == 0 {
        "as fast as accepted".to_owned()
    } else {
        format!("{} tx/s", options.rate)
    };
    println!("submitting to {} nodes, {rate}…", options.nodes);
    let cpu = nodes.cpu_mark();
    let stages_before = breakdown::scrape_all(metrics);
    let submission = tracker.submit_payments(nodes, &payments, options.rate, options.batch)?;
    println!(
        "  {} accepted, {} rejected in {:.1} s; waiting for finality…",
        submission.accepted, submission.rejected, submission.seconds
    );
    tracker.wait_finalized(Duration::from_secs(60)).ok();
    let usage = nodes.usage_since(&cpu);
    let stages_after = breakdown::scrape_all(metrics);
    let result = tracker.result();
    let breakdown = match (stages_before, stages_after) {
        (Ok(before), Ok(after)) => {
            let cpu_seconds: Vec<f64> = usage.iter().map(|u| u.cpu_seconds).collect();
            let verify_seconds: Vec<f64> = usage.iter().map(|u| u.verify_cpu_seconds).collect();
            Breakdown::new(
                &cpu_seconds,
                &verify_seconds,
                &before,
                &after,
                result.finalized.len(),
                1e6 / rates.batched_one_core.max(1e-9),
            )
            .ok()
        }
        (Err(error), _) | (_, Err(error)) => {
            println!("  no stage breakdown: {error:#}");
            None
        }
    };

    let catch_up = if !options.no_catch_up {
        Some(catch_up(nodes, tracker, rates)?)
    } else {
        None
    };

    let submit_seconds = submission.seconds.max(1e-9);
    let in_window = result
        .finalized
        .iter()
        .filter(|(at, _)| *at <= submission.seconds)
        .count();
    let last_finalized = result.finalized.iter().map(|(at, _)| *at).fold(0.0_f64, f64::max);
    let latencies: Vec<f64> = result.finalized.iter().map(|(_, latency)| *latency).collect();
    let finalized_tx_per_second = in_window as f64 / submit_seconds;
    let limit = rates.batched_all_cores / options.nodes as f64;
    let loaded_blocks: Vec<&tracker::BlockSeen> = result
        .blocks
        .iter()
        .filter(|b| b.at >= 0.0 && b.at <= last_finalized)
        .collect();
    let intervals: Vec<f64> = loaded_blocks
        .windows(2)
        .filter_map(|pair| match pair {
            [a, b] => Some(b.time_ms.saturating_sub(a.time_ms) as f64),
            _ => None,
        })
        .collect();
    let block_txs: Vec<f64> = loaded_blocks.iter().map(|b| b.transactions as f64).collect();
    let report = Report {
        settings: json!({
            "nodes": options.nodes,
            "rate": options.rate,
            "duration_s": options.duration_s,
            "payments": count,
            "batch": options.batch,
            "min_block_interval_ms": options.min_block_interval_ms,
            "empty_block_interval_ms": options.empty_block_interval_ms,
            "mempool_megabytes": options.mempool_megabytes,
            "payment_bytes": payments.first().map_or(0, Encode::encoded_len),
        }),
        machine: Machine {
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            cpu: cpu_model(),
        },
        signature_verification: rates,
        submitted: payments.len(),
        accepted: submission.accepted,
        rejected: submission.rejected,
        rejections: submission.reasons,
        finalized: result.finalized.len(),
        not_finalized: result.pending,
        submit_seconds: submission.seconds,
        finalized_tx_per_second,
        overall_tx_per_second: result.finalized.len() as f64 / last_finalized.max(1e-9),
        share_of_verification_limit: if limit > 0.0 {
            finalized_tx_per_second / limit
        } else {
            0.0
        },
        latency_ms: Summary::of(&latencies),
        block_interval_ms: Summary::of(&intervals),
        block_transactions: Summary::of(&block_txs),
        blocks: loaded_blocks.len(),
        nodes: usage,
        breakdown,
        catch_up,
        per_second: stats::per_second(&result.submitted, &result.finalized),
    };
    Ok((report, latencies))
}

/// Sends `txs` to `client` in batches of `batch`, each of which must be accepted.
pub(crate) fn submit(client: &timecoin_rpc::Client, txs: &[Transaction], batch: usize) -> Result<()> {
    for chunk in txs.chunks(batch) {
        let calls: Vec<(&str, serde_json::Value)> = chunk
            .iter()
            .map(|tx| ("sendrawtransaction", json!([hex::encode(tx.to_bytes())])))
            .collect();
        for outcome in client.call_batch(&calls)? {
            outcome.context("a funding transaction was refused")?;
        }
    }
    Ok(())
}

/// Stops the last node, wipes its chain, starts it again and times its catch-up to the
/// height the others had when it started.
fn catch_up(nodes: &mut Nodes, tracker: &Tracker, rates: VerifyRates) -> Result<CatchUp> {
    let last = nodes.len() - 1;
    nodes.stop_one(last)?;
    nodes.wipe_chain(last)?;
    let target = tracker.height();
    println!("wiped node {last}; it replays {target} blocks…");
    let started = Instant::now();
    nodes.start_one(last)?;
    let deadline = started + Duration::from_secs(600);
    loop {
        // The node writes its cookie once it has opened its store.
        let height = nodes
            .client(last)
            .ok()
            .and_then(|client| client.call("getblockcount", json!([])).ok())
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        if height >= target {
            break;
        }
        if Instant::now() > deadline {
            bail!("node {last} reached only height {height} of {target} in 600 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let seconds = started.elapsed().as_secs_f64();
    let transactions = tracker.transactions_up_to(target);
    let tx_per_second = transactions as f64 / seconds.max(1e-9);
    Ok(CatchUp {
        blocks: target,
        transactions,
        seconds,
        tx_per_second,
        share_of_verification_rate: tx_per_second / rates.batched_all_cores.max(1e-9),
    })
}

/// Signature checks from distinct keys over distinct messages.
fn sig_items(count: usize) -> Vec<SigItem> {
    use rayon::prelude::*;
    (0..count as u64)
        .into_par_iter()
        .map(|i| {
            let key = timecoin_node::keys::derived("timecoin bench", "verify", i);
            let message = Hash256(*blake3::hash(&i.to_le_bytes()).as_bytes());
            SigItem {
                key: key.public_key(),
                signature: key.sign(&message.0),
                message,
            }
        })
        .collect()
}

/// This machine's raw Ed25519 verification rates (best of three rounds each).
fn verification_rates() -> VerifyRates {
    let items = sig_items(16_384);
    let best_rate = |work: &dyn Fn() -> usize| {
        (0..3)
            .map(|_| {
                let started = Instant::now();
                let done = work();
                done as f64 / started.elapsed().as_secs_f64().max(1e-9)
            })
            .fold(0.0_f64, f64::max)
    };
    let single = best_rate(&|| {
        items
            .iter()
            .take(2_048)
            .filter(|item| item.key.verify(&item.message.0, &item.signature).is_ok())
            .count()
    });
    let batched = best_rate(&|| {
        items
            .chunks(1_024)
            .filter(|chunk| verify_batch(chunk).is_ok())
            .map(<[SigItem]>::len)
            .sum()
    });
    let all_cores = best_rate(&|| {
        if verify_signatures(&items).is_ok() {
            items.len()
        } else {
            0
        }
    });
    VerifyRates {
        single_one_core: single,
        batched_one_core: batched,
        batched_all_cores: all_cores,
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn write_report(dir: &Path, report: &Report, latencies: &[f64]) -> Result<()> {
    let path = dir.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    let mut canvas = Canvas::new(1_000, 1_050);
    let panel = |index: u32| Area {
        x: 0,
        y: index * 350,
        width: 1_000,
        height: 350,
    };
    let seconds = &report.per_second;
    let points = |value: &dyn Fn(&stats::Second) -> f64| -> Vec<(f64, f64)> {
        seconds.iter().map(|s| (s.second as f64, value(s))).collect()
    };
    canvas.lines(
        panel(0),
        "Transactions per second",
        "seconds since submission started",
        &[
            Series {
                name: "submitted",
                color: ORANGE,
                points: points(&|s| s.submitted as f64),
            },
            Series {
                name: "finalized",
                color: BLUE,
                points: points(&|s| s.finalized as f64),
            },
        ],
    )?;
    let finalizing: Vec<&stats::Second> = seconds.iter().filter(|s| s.finalized > 0).collect();
    let latency_points = |value: &dyn Fn(&stats::Second) -> f64| -> Vec<(f64, f64)> {
        finalizing.iter().map(|s| (s.second as f64, value(s))).collect()
    };
    canvas.lines(
        panel(1),
        "Finality latency (ms) of the payments finalized each second",
        "seconds since submission started",
        &[
            Series {
                name: "p50",
                color: GREEN,
                points: latency_points(&|s| s.latency_p50_ms),
            },
            Series {
                name: "p99",
                color: RED,
                points: latency_points(&|s| s.latency_p99_ms),
            },
        ],
    )?;
    // The histogram spans up to a little past the 99th percentile; slower ones fall in the
    // last bar.
    let upper = report.latency_ms.p99 * 1.25;
    canvas.bars(
        panel(2),
        "Latency histogram (payments)",
        "finality latency (ms)",
        &stats::histogram(latencies, upper, 50),
        upper,
        BLUE,
    )?;
    canvas.save(&dir.join("chart.png"))
}

fn print_summary(report: &Report, dir: &Path) {
    println!(
        "finalized {} of {} payments: {:.0} tx/s while submitting ({:.0}% of the verification limit), {:.0} tx/s overall",
        report.finalized,
        report.submitted,
        report.finalized_tx_per_second,
        report.share_of_verification_limit * 100.0,
        report.overall_tx_per_second
    );
    let l = report.latency_ms;
    println!(
        "latency p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {} blocks, interval p50 {:.0} ms, {:.0} payments a block on average",
        l.p50, l.p90, l.p99, l.max, report.blocks, report.block_interval_ms.p50, report.block_transactions.mean
    );
    for (i, node) in report.nodes.iter().enumerate() {
        println!(
            "node{i}: {:.2} cores, peak RSS {:.0} MB",
            node.cpu_cores,
            node.peak_rss_bytes as f64 / 1e6
        );
    }
    if let Some(b) = &report.breakdown {
        println!(
            "CPU per finalized payment per node: {:.1} µs = {:.2} batched verifications ({:.1} µs each)",
            b.cpu_us_per_tx, b.cpu_per_tx_in_verifications, b.verification_us
        );
        let stages: Vec<String> = b
            .stages
            .iter()
            .map(|s| format!("{} {:.1} µs ({:.2})", s.stage, s.us_per_tx, s.verifications_per_tx))
            .collect();
        println!("  by stage: {}", stages.join(", "));
    }
    if let Some(c) = &report.catch_up {
        println!(
            "catch-up: {} blocks, {} transactions in {:.1} s = {:.0} tx/s ({:.0}% of batched verification)",
            c.blocks,
            c.transactions,
            c.seconds,
            c.tx_per_second,
            c.share_of_verification_rate * 100.0
        );
    }
    println!(
        "report: {}, chart: {}",
        dir.join("report.json").display(),
        dir.join("chart.png").display()
    );
}
