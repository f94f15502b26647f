//! Runs seeded consensus scenarios on demand: `simulate --scenarios 100000`, or one seed with
//! its trace: `simulate --seed 42`. `simulate --wan 4,16,32,64,100 --heights 1000` runs
//! honest networks of those sizes on a wide-area network (20–200 ms links, jitter, 1% loss,
//! the node's overlay and gossip) and prints commit latency and traffic per height and node.

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use timecoin_test_utils::sim::{Scenario, Wan, run};

/// Runs the consensus simulator.
#[derive(Debug, Parser)]
#[command(name = "simulate")]
struct Args {
    /// How many seeded scenarios to run (seeds FIRST, FIRST+1, ...).
    #[arg(long, default_value_t = 10_000)]
    scenarios: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// Run only this seed and print its trace.
    #[arg(long)]
    seed: Option<u64>,
    /// Run the adversarial family (maximal twins, long partitions, crashes).
    #[arg(long)]
    adversarial: bool,
    /// Run the negative control with twins holding half the power.
    #[arg(long)]
    unsafe_twins: bool,
    /// Run the negative control with amnesia validators holding half the power.
    #[arg(long)]
    unsafe_amnesia: bool,
    /// Network sizes to run on a wide-area network (comma-separated), instead of scenarios.
    #[arg(long, value_delimiter = ',')]
    wan: Vec<usize>,
    /// Heights each wide-area run decides.
    #[arg(long, default_value_t = 1_000)]
    heights: u64,
    /// With --wan: write the figures as CSV to this file too.
    #[arg(long)]
    csv: Option<std::path::PathBuf>,
}

fn scenario(args: &Args, seed: u64) -> Scenario {
    if args.unsafe_twins {
        Scenario::unsafe_twins(seed)
    } else if args.unsafe_amnesia {
        Scenario::unsafe_amnesia(seed)
    } else if args.adversarial {
        Scenario::adversarial(seed)
    } else {
        Scenario::random(seed)
    }
}

/// The value at quantile `q` of sorted `values`.
fn quantile(values: &[u64], q: f64) -> f64 {
    let index = ((values.len().saturating_sub(1)) as f64 * q).round() as usize;
    values.get(index).copied().unwrap_or(0) as f64
}

/// Runs each network size of `args.wan` and prints (and writes) its figures.
fn wan_sweep(args: &Args) -> ExitCode {
    let header = "validators,heights,p50_ms,p99_ms,max_ms,sim_seconds_per_height,msgs_sent_per_height_node,msgs_received_per_height_node,bytes_sent_per_height_node,bytes_received_per_height_node,max_round,violations";
    println!("{header}");
    let mut lines = vec![header.to_owned()];
    let mut failed = false;
    for &n in &args.wan {
        let started = Instant::now();
        let scenario = Scenario::wan(n, args.heights, args.seed.unwrap_or(1), Wan::internet());
        let outcome = run(&scenario);
        let mut latencies = outcome.commit_latencies_ms.clone();
        latencies.sort_unstable();
        let per = (args.heights.max(1) * outcome.traffic.len().max(1) as u64) as f64;
        let sum =
            |f: fn(&timecoin_test_utils::sim::Traffic) -> u64| outcome.traffic.iter().map(f).sum::<u64>() as f64 / per;
        let line = format!(
            "{n},{},{:.0},{:.0},{:.0},{:.3},{:.1},{:.1},{:.0},{:.0},{},{}",
            args.heights,
            quantile(&latencies, 0.5),
            quantile(&latencies, 0.99),
            latencies.last().copied().unwrap_or(0),
            outcome.end_ms as f64 / 1e3 / args.heights.max(1) as f64,
            sum(|t| t.sent),
            sum(|t| t.received),
            sum(|t| t.sent_bytes),
            sum(|t| t.received_bytes),
            outcome.max_round,
            outcome.violations.len()
        );
        println!("{line}");
        eprintln!(
            "  ({n} validators: {:.1} s of wall time)",
            started.elapsed().as_secs_f64()
        );
        if !outcome.violations.is_empty() {
            failed = true;
            eprintln!("{}", outcome.report());
        }
        lines.push(line);
    }
    if let Some(path) = &args.csv
        && let Err(error) = std::fs::write(path, lines.join("\n") + "\n")
    {
        eprintln!("writing {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.wan.is_empty() {
        return wan_sweep(&args);
    }
    if let Some(seed) = args.seed {
        let outcome = run(&scenario(&args, seed));
        println!("{}", outcome.report());
        return if outcome.violations.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let started = Instant::now();
    let mut failed = 0u64;
    let mut max_round = 0;
    for seed in args.first..args.first + args.scenarios {
        let outcome = run(&scenario(&args, seed));
        max_round = max_round.max(outcome.max_round);
        if !outcome.violations.is_empty() {
            failed += 1;
            if failed <= 3 {
                println!("{}", outcome.report());
            } else {
                println!("seed {seed}: {:?}", outcome.violations);
            }
        }
    }
    println!(
        "{} scenarios, {failed} with violations, highest round {max_round}, {:.1} s",
        args.scenarios,
        started.elapsed().as_secs_f64()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
