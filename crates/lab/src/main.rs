//! `timelab`, the TimeCoin lab: the tools that measure and attack local networks of `timed`
//! processes. `timelab bench` is the load generator and benchmark; `timelab chaos` runs a
//! network in network namespaces under seeded faults (crashes, network faults, clock offsets,
//! a Byzantine masternode) and checks agreement, durability and liveness.
//!
//! It starts the `timed` binary found beside its own (cargo builds both into one directory),
//! or the one `$TIMED` names. Operators never need this binary; `timed` links none of it.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

mod bench;
mod chaos;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use timecoin_node::logging::{self, LogFormat};

/// The TimeCoin lab.
#[derive(Debug, Parser)]
#[command(
    name = "timelab",
    version,
    about = "Benchmarks and fault injection for local TimeCoin networks"
)]
struct Cli {
    /// Log debug events too.
    #[arg(long, short, global = true)]
    verbose: bool,
    /// `text` for people, `json` (one object a line) for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The load generator and benchmark: starts a local network, submits signed payments and
    /// measures finalized transactions per second, finality latency, block intervals, CPU
    /// and memory per node and a wiped node's catch-up; writes report.json and chart.png.
    Bench(bench::Options),
    /// The chaos runner: a local network in network namespaces under load and a seeded
    /// schedule of faults (kills, pauses, link loss, latency, partitions, a wiped node, a
    /// clock offset, a Byzantine masternode); checks agreement, durability and liveness.
    /// Needs root.
    Chaos(chaos::Options),
    /// Draws docs/scaling.png from the simulator's CSV and steady runs' steady.json.
    ScalingChart(chaos::scaling_chart::Options),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.log_format);
    let result = match cli.command {
        Command::Bench(options) => bench::run(&options),
        Command::Chaos(options) => chaos::run(&options),
        Command::ScalingChart(options) => chaos::scaling_chart::run(&options),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
