//! `time-cli`, the command-line client of a TimeCoin node, used like `bitcoin-cli`:
//! `time-cli [options] <method> [params…]`. It finds the node's cookie (and RPC address, from
//! `config.toml`) in the data directory, sends one JSON-RPC call, prints the result (strings
//! bare, everything else as JSON) and exits non-zero with the server's message on error.
//! `time-cli rpcauth USER [PASSWORD]` prints an `rpcauth` entry for the node's configuration.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use serde_json::Value;
use timecoin_chain::ChainParams;
use timecoin_node::config::Config;
use timecoin_node::daemon::default_data_dir;
use timecoin_primitives::{BlockHash, Network};
use timecoin_rpc::{Client, ClientError, methods};

/// Options as `bitcoin-cli` spells them (`-datadir=DIR`); `--datadir DIR` works too.
#[derive(Debug, Parser)]
#[command(name = "time-cli", version, about = "Calls a TimeCoin node's JSON-RPC API")]
struct Cli {
    /// The node's data directory (default ~/.timecoin, ~/.timecoin/testnet with -testnet,
    /// ~/.timecoin/local with -local); its .cookie and config.toml are read.
    #[arg(long)]
    datadir: Option<PathBuf>,
    /// Use the test network's defaults.
    #[arg(long)]
    testnet: bool,
    /// Use the local network's defaults.
    #[arg(long)]
    local: bool,
    /// The node's RPC address (default from config.toml, else 127.0.0.1).
    #[arg(long)]
    rpcconnect: Option<IpAddr>,
    /// The node's RPC port (default from config.toml, else 24001, 24101 or 24201).
    #[arg(long)]
    rpcport: Option<u16>,
    /// A user from the node's rpcauth entries (instead of the cookie).
    #[arg(long)]
    rpcuser: Option<String>,
    /// That user's password.
    #[arg(long)]
    rpcpassword: Option<String>,
    /// The cookie file (default DATADIR/.cookie).
    #[arg(long)]
    rpccookiefile: Option<PathBuf>,
    /// Parameters are name=value pairs.
    #[arg(long)]
    named: bool,
    /// Reads more parameters from standard input, one a line, after those on the command
    /// line (keep keys and passphrases out of the process list and the shell's history).
    #[arg(long)]
    stdin: bool,
    /// Runs the method here, with no node: `signrawtransactionwithkey` (which then needs
    /// -genesis and a prevtxs entry for every input) or `verifytxoutproof` (which needs
    /// -genesisfile).
    #[arg(long)]
    offline: bool,
    /// The hash of the network's block 0 (`time-cli getblockhash 0` on one of its nodes):
    /// what an offline signature commits to, so that it is valid on that network only.
    #[arg(long)]
    genesis: Option<String>,
    /// The network's genesis file: where an offline proof check starts its trust.
    #[arg(long)]
    genesisfile: Option<PathBuf>,
    /// The method, then its parameters.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// `-name` and `-name=value` become `--name` and `--name=value`, as bitcoin-cli accepts them.
fn bitcoin_style(args: impl Iterator<Item = String>) -> Vec<String> {
    let mut options = true;
    args.enumerate()
        .map(|(index, arg)| {
            if index == 0 || !options {
                return arg;
            }
            if !arg.starts_with('-') {
                // The method: everything after it is a parameter, dashes included.
                options = false;
                return arg;
            }
            if arg.starts_with("--") || arg.len() == 2 {
                arg
            } else {
                format!("-{arg}")
            }
        })
        .collect()
}

/// The `[rpc] listen` address of the node's `config.toml` in `datadir`, if it says one: read
/// and checked by the node's own configuration code. A file this user cannot read, or one
/// the node's code refuses, is reported and the defaults are used, as if it were absent.
fn configured_address(datadir: &Path) -> Option<SocketAddr> {
    let path = datadir.join("config.toml");
    if !path.exists() {
        return None;
    }
    match Config::load(&path) {
        Ok(config) => config.rpc_listen(),
        Err(error) => {
            eprintln!("time-cli: not using {}: {error:#}", path.display());
            None
        }
    }
}

fn network(cli: &Cli) -> Result<Network> {
    Ok(match (cli.testnet, cli.local) {
        (true, true) => bail!("-testnet and -local exclude each other"),
        (true, false) => Network::Testnet,
        (false, true) => Network::Local,
        (false, false) => Network::Mainnet,
    })
}

/// Checks a `gettxoutproof` proof with no node, trusting only the genesis file: the txids
/// it proves, as `verifytxoutproof` answers (the node also checks that the block is in its
/// chain; a proof is final whatever a node holds).
fn verify_offline(cli: &Cli, params: &Value) -> Result<Result<Value, ClientError>> {
    let path = cli
        .genesisfile
        .as_deref()
        .ok_or_else(|| anyhow!("-offline verifytxoutproof needs -genesisfile=PATH, the network's genesis file"))?;
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let genesis =
        timecoin_chain::Genesis::from_toml(&text).with_context(|| format!("genesis file {}", path.display()))?;
    let failed = |code: i32, message: String| ClientError::Rpc {
        code: i64::from(code),
        message,
    };
    let Some(proof) = params.get(0).and_then(Value::as_str) else {
        return Ok(Err(failed(
            timecoin_rpc::codes::INVALID_PARAMETER,
            "usage: verifytxoutproof PROOF".to_owned(),
        )));
    };
    let proof = match hex::decode(proof.trim()).map_err(|e| e.to_string()).and_then(|bytes| {
        <timecoin_light::TxProof as timecoin_primitives::Decode>::from_bytes(&bytes).map_err(|e| e.to_string())
    }) {
        Ok(proof) => proof,
        Err(e) => {
            return Ok(Err(failed(
                timecoin_rpc::codes::DESERIALIZATION_ERROR,
                format!("proof decode failed: {e}"),
            )));
        }
    };
    let trusted = timecoin_light::TrustedState::from_genesis(&genesis);
    Ok(
        match timecoin_light::verify_transactions(&trusted, &proof, &mut rand::rng()) {
            Ok(proven) => Ok(Value::from(
                proven.txids().iter().map(ToString::to_string).collect::<Vec<_>>(),
            )),
            Err(e) => Err(failed(
                timecoin_rpc::codes::INVALID_ADDRESS_OR_KEY,
                format!("Invalid proof: {e}"),
            )),
        },
    )
}

/// Runs `method` with no node (`-offline`): signing with given keys, or checking a proof.
fn offline(cli: &Cli, method: &str, params: &Value) -> Result<Result<Value, ClientError>> {
    if method == "verifytxoutproof" {
        return verify_offline(cli, params);
    }
    if method != "signrawtransactionwithkey" {
        bail!("-offline runs signrawtransactionwithkey and verifytxoutproof only; {method} needs a node");
    }
    let genesis: BlockHash = cli
        .genesis
        .as_deref()
        .ok_or_else(|| {
            anyhow!(
                "-offline needs -genesis=HASH, the hash of block 0 (time-cli getblockhash 0 on a node of the network)"
            )
        })?
        .parse()
        .map_err(|e| anyhow!("-genesis: {e}"))?;
    let args = params.as_array().map_or(&[][..], Vec::as_slice);
    Ok(
        timecoin_rpc::signing::sign_with_keys(args, &genesis, network(cli)?, |_| Ok(None)).map_err(|e| {
            ClientError::Rpc {
                code: i64::from(e.code()),
                message: e.message().to_owned(),
            }
        }),
    )
}

fn client(cli: &Cli) -> Result<Client> {
    let network = network(cli)?;
    // The node's defaults, from the node's and the chain's own code.
    let default_port = ChainParams::for_network(network).rpc_port;
    let datadir = cli.datadir.clone().unwrap_or_else(|| default_data_dir(network));
    // Read only when an address or port is not given.
    let configured = if cli.rpcconnect.is_some() && cli.rpcport.is_some() {
        None
    } else {
        configured_address(&datadir)
    };
    let ip = cli
        .rpcconnect
        .or(configured.map(|a| a.ip()))
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    // A node listening on every interface is reached on loopback.
    let ip = if ip.is_unspecified() {
        IpAddr::from([127, 0, 0, 1])
    } else {
        ip
    };
    let port = cli.rpcport.or(configured.map(|a| a.port())).unwrap_or(default_port);
    let address = SocketAddr::new(ip, port);
    match (&cli.rpcuser, &cli.rpcpassword) {
        (Some(user), Some(password)) => Ok(Client::new(address, user, password)),
        (Some(_), None) | (None, Some(_)) => bail!("-rpcuser and -rpcpassword go together"),
        (None, None) => {
            let cookie = cli.rpccookiefile.clone().unwrap_or_else(|| datadir.join(".cookie"));
            Client::with_cookie(address, &cookie).with_context(|| {
                format!(
                    "reading the cookie {} (is timed running with this data directory? use -datadir, or -rpcuser and -rpcpassword)",
                    cookie.display()
                )
            })
        }
    }
}

/// Prints a result: strings bare, null as nothing, anything else as indented JSON.
fn print(result: &Value) {
    match result {
        Value::String(text) => println!("{text}"),
        Value::Null => {}
        other => println!("{}", serde_json::to_string_pretty(other).unwrap_or_default()),
    }
}

fn run(cli: &Cli) -> Result<ExitCode> {
    let (method, words) = cli.command.split_first().ok_or_else(|| anyhow!("no method given"))?;
    let mut words = words.to_vec();
    if cli.stdin {
        for line in std::io::stdin().lines() {
            words.push(line.context("reading parameters from standard input")?);
        }
    }
    let words = words.as_slice();
    if method == "rpcauth" {
        let user = words
            .first()
            .ok_or_else(|| anyhow!("usage: time-cli rpcauth USER [PASSWORD]"))?;
        let password = words
            .get(1)
            .cloned()
            .unwrap_or_else(timecoin_rpc::auth::random_password);
        println!("rpcauth = [\"{}\"]", timecoin_rpc::RpcAuth::generate(user, &password));
        if words.get(1).is_none() {
            println!("password: {password}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let params = match methods::method(method) {
        Some(spec) => Value::Array(spec.arguments(words, cli.named).map_err(|e| anyhow!("{method}: {e}"))?),
        // A method this client does not know: the server decides (parameters as JSON where
        // they parse, strings otherwise).
        None => Value::Array(
            words
                .iter()
                .map(|w| serde_json::from_str(w).unwrap_or_else(|_| Value::String(w.clone())))
                .collect(),
        ),
    };
    let answer = if cli.offline {
        offline(cli, method, &params)?
    } else {
        client(cli)?.call(method, params)
    };
    match answer {
        Ok(result) => {
            print(&result);
            Ok(ExitCode::SUCCESS)
        }
        Err(ClientError::Rpc { code, message }) => {
            eprintln!("error code: {code}\nerror message:\n{message}");
            Ok(ExitCode::FAILURE)
        }
        // Its message names its cause already: printed as a chain, the cause would repeat.
        Err(error) => {
            eprintln!("error: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(bitcoin_style(std::env::args()));
    match run(&cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitcoin_cli_spellings_are_accepted() {
        let args = ["time-cli", "-datadir=/x", "-named", "getblock", "-1", "--verbose"].map(String::from);
        assert_eq!(
            bitcoin_style(args.into_iter()),
            ["time-cli", "--datadir=/x", "--named", "getblock", "-1", "--verbose"]
        );
        let cli = Cli::parse_from(bitcoin_style(
            ["time-cli", "-testnet", "-rpcport=5", "getblockhash", "3"]
                .map(String::from)
                .into_iter(),
        ));
        assert!(cli.testnet);
        assert_eq!(cli.rpcport, Some(5));
        assert_eq!(cli.command, ["getblockhash", "3"]);
    }
}
