//! `timed`, the TimeCoin node.
//!
//! Today it runs the ledger demo: a single process that wires the chain rules, the redb
//! store and the mempool together and finalizes blocks of real signed payments. The P2P
//! network, consensus and the JSON-RPC server arrive with later work; until then there is no
//! daemon mode.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

mod demo;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The TimeCoin node.
#[derive(Debug, Parser)]
#[command(name = "timed", version, about = "The TimeCoin node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the ledger end to end in one process: genesis, signed payments through the
    /// mempool, block templates, validation, atomic application to the store.
    Demo {
        /// Blocks to produce.
        #[arg(long, default_value_t = 10)]
        blocks: u64,
        /// Payments submitted before each block.
        #[arg(long, default_value_t = 500)]
        txs_per_block: usize,
        /// Where to keep the chain store; a temporary directory if absent. Running again
        /// with the same directory continues the same chain.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo {
            blocks,
            txs_per_block,
            data_dir,
        } => demo::run(blocks, txs_per_block, data_dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
