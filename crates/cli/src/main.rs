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

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// The `[rpc] listen` address of the node's `config.toml` in `datadir`, if it says one.
fn configured_address(datadir: &Path) -> Result<Option<SocketAddr>> {
    let path = datadir.join("config.toml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let config: toml::Table = text.parse().with_context(|| format!("reading {}", path.display()))?;
    let listen = config
        .get("rpc")
        .and_then(|rpc| rpc.get("listen"))
        .and_then(|listen| listen.as_str());
    match listen {
        None => Ok(None),
        Some(text) => {
            let address: SocketAddr = text
                .parse()
                .with_context(|| format!("{}: [rpc] listen = {text:?}", path.display()))?;
            Ok(Some(address))
        }
    }
}

fn client(cli: &Cli) -> Result<Client> {
    let (subdir, default_port) = match (cli.testnet, cli.local) {
        (true, true) => bail!("-testnet and -local exclude each other"),
        (true, false) => (Some("testnet"), 24101),
        (false, true) => (Some("local"), 24201),
        (false, false) => (None, 24001),
    };
    let datadir = cli.datadir.clone().unwrap_or_else(|| {
        let base = home().join(".timecoin");
        subdir.map_or_else(|| base.clone(), |s| base.join(s))
    });
    let configured = configured_address(&datadir)?;
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
    match client(cli)?.call(method, params) {
        Ok(result) => {
            print(&result);
            Ok(ExitCode::SUCCESS)
        }
        Err(ClientError::Rpc { code, message }) => {
            eprintln!("error code: {code}\nerror message:\n{message}");
            Ok(ExitCode::FAILURE)
        }
        Err(error) => Err(error.into()),
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
