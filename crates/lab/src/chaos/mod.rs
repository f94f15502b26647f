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
//! and a timeline, and writes `report.json` and `heights.png` per seed. With `--steady` it
//! injects nothing and measures the network at scale instead (`steady`); `scaling_chart`
//! draws what such runs and the simulator measured.

mod byzantine;
mod checks;
mod inject;
mod lab;
mod observe;
mod options;
mod relay;
mod report;
pub(crate) mod scaling_chart;
mod schedule;
mod seed;
mod signals;
mod steady;

use anyhow::{Context, Result, bail};

pub(crate) use options::Options;

/// Runs the seeds the options name; fails if any seed saw a violation.
pub(crate) fn run(options: &Options) -> Result<()> {
    signals::watch()?;
    if options.nodes < 3 {
        bail!("the chaos runner needs at least 3 masternodes, got {}", options.nodes);
    }
    if let Some(seconds) = options.steady {
        crate::bench::prepare_dir(&options.dir, "timelab chaos")?;
        let report = steady::run(options, seconds, options.latency_ms, &options.dir)?;
        println!(
            "{} masternodes, {} ms links: {} blocks in {:.0} s (one every {:.2} s); finality p50 {:.3} s, p99 {:.3} s, max {:.3} s",
            report.nodes,
            report.latency_ms,
            report.heights,
            report.seconds,
            report.block_interval_s,
            report.finality_p50_s,
            report.finality_p99_s,
            report.finality_max_s
        );
        println!(
            "per node and height: {:.0} messages sent, {:.0} received, {:.0} bytes sent, {:.0} received, {:.1} votes relayed; {:.2} cores, {:.0} MB peak RSS, {} peers (means)",
            report.mean.sent_messages_per_height,
            report.mean.received_messages_per_height,
            report.mean.sent_bytes_per_height,
            report.mean.received_bytes_per_height,
            report.mean.relayed_votes_per_height,
            report.mean.cpu_cores,
            report.mean.peak_rss_bytes as f64 / 1e6,
            report.mean.peers
        );
        if !report.violations.is_empty() {
            for violation in &report.violations {
                println!("  {violation}");
            }
            bail!("{} violation(s) in the steady run", report.violations.len());
        }
        return Ok(());
    }
    let (seeds, kinds) = options.seeds_and_kinds()?;
    let first = options.seed.unwrap_or_else(|| timecoin_node::now_ms() % 1_000_000);
    crate::bench::prepare_dir(&options.dir, "timelab chaos")?;
    let mut failed = Vec::new();
    for seed in first..first.saturating_add(seeds) {
        let dir = options.dir.join(format!("seed-{seed}"));
        println!("== seed {seed}");
        let report = seed::run(options, seed, kinds, &dir).with_context(|| format!("seed {seed}"))?;
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
