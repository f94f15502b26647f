//! Runs seeded consensus scenarios on demand: `simulate --scenarios 100000`, or one seed with
//! its trace: `simulate --seed 42`.

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use timecoin_test_utils::sim::{Scenario, run};

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

fn main() -> ExitCode {
    let args = Args::parse();
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
