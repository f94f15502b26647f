//! `timed`, the TimeCoin node.
//!
//! Without a subcommand it runs the daemon: the redb store, the P2P service, the mempool
//! and the consensus host, until SIGINT or SIGTERM. `timed localnet` writes and runs a local
//! network of masternodes as separate processes; `timed demo` runs the ledger alone in one
//! process; `timed --dev` runs a one-masternode chain for application developers; `timed
//! wallet restore` writes a wallet file from a recovery phrase. Log events
//! go to standard output as text or JSON lines (`--log-format`). Everything it runs lives in
//! the `timecoin_node` library; the benchmark and the chaos runner are `timelab`'s
//! (`crates/lab`).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use timecoin_node::logging::{self, LogFormat};
use timecoin_node::{daemon, demo, localnet};

/// jemalloc: under a full mempool it holds a node's resident memory lower than glibc's
/// per-thread arenas do (docs/adr/0005-jemalloc.md has the measurements).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The TimeCoin node.
#[derive(Debug, Parser)]
#[command(name = "timed", version, about = "The TimeCoin node")]
struct Cli {
    /// The configuration file (default ~/.timecoin/config.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// mainnet, testnet or local (overrides the configuration).
    #[arg(long, global = true)]
    network: Option<String>,
    /// The data directory (overrides the configuration).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Log debug events too (peers coming and going, sync requests).
    #[arg(long, short, global = true)]
    verbose: bool,
    /// `text` for people, `json` (one object a line) for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Runs a single-masternode local chain for application development (in the data
    /// directory, default ~/.timecoin/dev), with a funded key, JSON-RPC on port 24201.
    #[arg(long)]
    dev: bool,
    #[command(subcommand)]
    command: Option<Command>,
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
    /// The node's wallet, with the node stopped.
    Wallet {
        #[command(subcommand)]
        action: WalletAction,
    },
    /// A light client: trusts only the genesis file, follows the finalized headers of two
    /// or more nodes through their finality proofs, checks every proof itself, stops with
    /// evidence when nodes prove different final blocks, and answers getblockheader,
    /// verifytxoutproof and getlightinfo from what it verified (cookie in DATA_DIR/.cookie).
    Light {
        /// The network's genesis file.
        #[arg(long)]
        genesis: PathBuf,
        /// A node to follow, at least twice: ADDRESS:PORT,cookie=PATH or
        /// ADDRESS:PORT,user=USER,password=PASSWORD.
        #[arg(long = "node", required = true)]
        nodes: Vec<String>,
        /// Where its API listens.
        #[arg(long, default_value = "127.0.0.1:24301")]
        listen: std::net::SocketAddr,
        /// How many recent verified headers it holds.
        #[arg(long, default_value_t = 100_000)]
        keep: usize,
        /// Milliseconds between polls when caught up.
        #[arg(long, default_value_t = 1_000)]
        poll_ms: u64,
    },
    /// Makes the node's store (in an empty data directory) from a chain-state file that
    /// `dumptxoutset` wrote: checked against the final header that names its state, proven
    /// from the genesis alone. Start the node afterwards; it follows the chain from there.
    LoadState {
        /// The file.
        file: PathBuf,
    },
    /// A local network of masternodes, each a separate process on loopback.
    Localnet {
        #[command(subcommand)]
        action: Option<LocalnetAction>,
        /// Number of masternodes.
        #[arg(long, global = true, default_value_t = 4)]
        nodes: usize,
        /// Where to write the network.
        #[arg(long, global = true, default_value = "localnet")]
        dir: PathBuf,
        /// The first node's P2P port; the others follow.
        #[arg(long, global = true, default_value_t = 24200)]
        base_port: u16,
        /// Nodes to write besides the genesis masternodes: each has a masternode key but is
        /// not in the genesis, ready to be registered on chain (`masternoderegister`).
        #[arg(long, global = true, default_value_t = 0)]
        spare: usize,
    },
}

#[derive(Debug, Subcommand)]
enum WalletAction {
    /// Writes the node's wallet file from a recovery phrase read from standard input (never
    /// an existing file). The node finds the wallet's coins when it starts, deriving keys
    /// as it finds them in use (a gap of 100 unused keys ends the search).
    Restore {
        /// The first block that may pay the wallet: scanning starts there (0, the default,
        /// scans the whole chain).
        #[arg(long, default_value_t = 0)]
        birth_height: u64,
    },
}

#[derive(Debug, Subcommand)]
enum LocalnetAction {
    /// Only write the genesis, keys and configurations (start each node with
    /// `timed --config DIR/nodeK/config.toml`).
    Init,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.log_format);
    // Signature batches run on rayon's pool; named threads let `timelab bench` (and `top -H`)
    // tell verification's CPU from the rest. Only fails if a pool was already built.
    let _ = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("verify-{i}"))
        .build_global();
    let result = match cli.command {
        None if cli.dev => localnet::dev(cli.data_dir),
        None => daemon::run(daemon::Overrides {
            config: cli.config,
            network: cli.network,
            data_dir: cli.data_dir,
        }),
        Some(Command::Wallet {
            action: WalletAction::Restore { birth_height },
        }) => daemon::restore_wallet(
            &daemon::Overrides {
                config: cli.config,
                network: cli.network,
                data_dir: cli.data_dir,
            },
            birth_height,
        ),
        Some(Command::Demo {
            blocks,
            txs_per_block,
            data_dir,
        }) => demo::run(blocks, txs_per_block, data_dir.or(cli.data_dir)),
        Some(Command::LoadState { file }) => timecoin_node::state_file::load(
            &daemon::Overrides {
                config: cli.config,
                network: cli.network,
                data_dir: cli.data_dir,
            },
            &file,
        ),
        Some(Command::Light {
            genesis,
            nodes,
            listen,
            keep,
            poll_ms,
        }) => timecoin_node::light::run(timecoin_node::light::LightOptions {
            genesis,
            nodes,
            listen,
            data_dir: cli.data_dir,
            keep,
            poll: std::time::Duration::from_millis(poll_ms),
        }),
        Some(Command::Localnet {
            action,
            nodes,
            dir,
            base_port,
            spare,
        }) => match action {
            Some(LocalnetAction::Init) => localnet::init(&dir, nodes, spare, base_port),
            None => {
                let written = if dir.join("genesis.toml").exists() {
                    Ok(())
                } else {
                    localnet::init(&dir, nodes, spare, base_port)
                };
                written.and_then(|()| localnet::run(&dir))
            }
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
