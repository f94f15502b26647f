//! `timed localnet`: a network of masternodes on this machine, each a separate process.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use timecoin_primitives::{Address, Network};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::keys;

/// Writes a genesis, keys and one configuration per node under `dir`: `nodes` genesis
/// masternodes, then `spare` nodes with masternode keys that are not in the genesis.
pub fn init(dir: &Path, nodes: usize, spare: usize, base_port: u16) -> Result<()> {
    if nodes < 3 {
        bail!("a local network needs at least 3 masternodes, got {nodes} (`timed --dev` runs one)");
    }
    write_network(dir, nodes, spare, base_port, LOCALNET_PACING)
}

/// Empty blocks every 2 s so that a local network visibly makes progress.
const LOCALNET_PACING: &str = "# Empty blocks every 2 s so that a local network visibly makes progress.\n\
     [consensus]\nmin_block_interval_ms = 1000\nempty_block_interval_ms = 2000\n";

/// A development chain makes a block when transactions wait (after 1 s), an empty one a
/// minute.
const DEV_PACING: &str = "[consensus]\nmin_block_interval_ms = 1000\nempty_block_interval_ms = 60000\n";

/// `timed --dev`: a one-masternode local chain in `data_dir` (default ~/.timecoin/dev),
/// written on first use, run in this process.
pub fn dev(data_dir: Option<PathBuf>) -> Result<()> {
    let dir = data_dir.unwrap_or_else(|| crate::daemon::home().join(".timecoin").join("dev"));
    let params = timecoin_chain::ChainParams::for_network(Network::Local);
    if !dir.join("genesis.toml").exists() {
        write_network(&dir, 1, 0, params.p2p_port, DEV_PACING)?;
    }
    let wallet = keys::load_or_create(&dir.join("node0").join("wallet.key"))?;
    println!(
        "development chain in {}: one masternode, JSON-RPC on 127.0.0.1:{}; the genesis funds the node's wallet and {} (key in {})",
        dir.display(),
        params.rpc_port,
        Address::from_public_key(Network::Local, &wallet.public_key()),
        dir.join("node0").join("wallet.key").display()
    );
    crate::daemon::run(crate::daemon::Overrides {
        config: Some(dir.join("node0").join("config.toml")),
        ..crate::daemon::Overrides::default()
    })
}

/// Writes a network of `masternodes` genesis masternodes and `spare` other nodes under `dir`;
/// `pacing` is appended to every node's configuration (its `[consensus]` and other sections
/// that the template leaves out).
pub fn write_network(dir: &Path, masternodes: usize, spare: usize, base_port: u16, pacing: &str) -> Result<()> {
    write_network_placed(dir, masternodes, spare, base_port, pacing, None)
}

/// Where the nodes of a network listen and where they dial each other, when not all on
/// loopback.
pub struct Placement {
    /// Node `k` listens (P2P and JSON-RPC) on `node_ips[k]`.
    pub node_ips: Vec<IpAddr>,
    /// Every node dials its peers' ports at this address (a relay's).
    pub dial_ip: IpAddr,
}

/// [`write_network`], with the nodes placed as `placement` says (all on 127.0.0.1 if none).
pub fn write_network_placed(
    dir: &Path,
    masternodes: usize,
    spare: usize,
    base_port: u16,
    pacing: &str,
    placement: Option<&Placement>,
) -> Result<()> {
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let listen_ip = |k: usize| placement.and_then(|p| p.node_ips.get(k).copied()).unwrap_or(loopback);
    let dial_ip = placement.map_or(loopback, |p| p.dial_ip);
    let nodes = masternodes.saturating_add(spare);
    if dir.join("genesis.toml").exists() {
        bail!(
            "{} already holds a local network; remove it or use another directory",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
    let wallet = keys::load_or_create(&dir.join("node0").join("wallet.key"))?;
    // Node 0's wallet (the one `timed` loads) gets the same again at its first address.
    let (mut node_wallet, _) =
        crate::wallet::NodeWallet::open_or_create(&dir.join("node0").join("wallet.json"), Network::Local, 0)?;
    let funded = node_wallet
        .new_address(timecoin_wallet::Chain::Receive)
        .map_err(|e| anyhow::anyhow!("node 0's wallet: {e}"))?;
    let mut genesis = format!("network = \"local\"\ntimestamp_ms = {now_ms}\nmessage = \"timecoin localnet\"\n");
    for address in [Address::from_public_key(Network::Local, &wallet.public_key()), funded] {
        let _ = write!(
            genesis,
            "\n[[allocation]]\naddress = \"{address}\"\namount = \"1000000\"\n"
        );
    }
    let ports: Vec<u16> = (0..nodes)
        .map(|i| base_port.saturating_add(u16::try_from(i).unwrap_or(u16::MAX)))
        .collect();
    for i in 0..nodes {
        let node_dir = dir.join(format!("node{i}"));
        let operator = keys::load_or_create(&node_dir.join("masternode.key"))?;
        let reward = keys::load_or_create(&node_dir.join("reward.key"))?;
        if i < masternodes {
            let _ = write!(
                genesis,
                "\n[[masternode]]\noperator_key = \"{}\"\ntier = \"bronze\"\nreward_address = \"{}\"\n",
                operator.public_key(),
                Address::from_public_key(Network::Local, &reward.public_key())
            );
        }
        let bootstrap: Vec<String> = ports
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, port)| format!("\"{}\"", SocketAddr::new(dial_ip, *port)))
            .collect();
        let port = ports.get(i).copied().unwrap_or(base_port);
        let rpc_port = port.saturating_add(u16::try_from(nodes).unwrap_or(u16::MAX));
        let config = format!(
            "# Node {i} of a local network written by `timed localnet init`.\n\
             [node]\nnetwork = \"local\"\ndata_dir = \".\"\ngenesis = \"../genesis.toml\"\n\n\
             [network]\nlisten = \"{}\"\nbootstrap = [{}]\n\n\
             [rpc]\nenabled = true\nlisten = \"{}\"\n\n\
             [masternode]\nenabled = true\nkey_file = \"masternode.key\"\ntier = \"bronze\"\n\n{pacing}",
            SocketAddr::new(listen_ip(i), port),
            bootstrap.join(", "),
            SocketAddr::new(listen_ip(i), rpc_port),
        );
        std::fs::write(node_dir.join("config.toml"), config)
            .with_context(|| format!("writing {}", node_dir.join("config.toml").display()))?;
    }
    std::fs::write(dir.join("genesis.toml"), genesis).with_context(|| format!("writing {}", dir.display()))?;
    let spares = if spare > 0 {
        format!(" and {spare} spare node(s) to register")
    } else {
        String::new()
    };
    println!(
        "local network of {masternodes} masternodes{spares} written to {} (P2P ports {}–{}, JSON-RPC ports {}–{})",
        dir.display(),
        base_port,
        ports.last().copied().unwrap_or(base_port),
        base_port.saturating_add(u16::try_from(nodes).unwrap_or(0)),
        ports
            .last()
            .copied()
            .unwrap_or(base_port)
            .saturating_add(u16::try_from(nodes).unwrap_or(0))
    );
    Ok(())
}

/// `height H, P peers, last block S s ago` for each node, read over its JSON-RPC API with
/// its cookie (blocking).
fn network_status(dirs: &[PathBuf]) -> String {
    let now_s = crate::host::now_ms() / 1_000;
    let parts: Vec<String> = dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let answer = node_client(dir).and_then(|client| {
                let info = client.call("getblockchaininfo", serde_json::json!([])).ok()?;
                let peers = client.call("getconnectioncount", serde_json::json!([])).ok()?;
                let field = |name: &str| info.get(name).and_then(serde_json::Value::as_u64).unwrap_or(0);
                Some(format!(
                    "node{i} height {} peers {} last block {} s ago",
                    field("blocks"),
                    peers,
                    now_s.saturating_sub(field("time"))
                ))
            });
            answer.unwrap_or_else(|| format!("node{i} not answering"))
        })
        .collect();
    format!("[network] {}", parts.join(" | "))
}

/// A JSON-RPC client of the node whose data directory (and configuration) is `dir`.
pub fn node_client(dir: &Path) -> Option<timecoin_rpc::Client> {
    let config = crate::config::Config::load(&dir.join("config.toml")).ok()?;
    let listen = config.rpc.listen?;
    timecoin_rpc::Client::with_cookie(listen, &dir.join(".cookie"))
        .ok()
        .map(|c| c.timeout(std::time::Duration::from_secs(2)))
}

/// The configuration of each node under `dir` (`node0/config.toml`, `node1/…`), at least one.
pub fn node_configs(dir: &Path) -> Result<Vec<PathBuf>> {
    let configs: Vec<PathBuf> = (0..)
        .map(|i| dir.join(format!("node{i}")).join("config.toml"))
        .take_while(|config| config.exists())
        .collect();
    if configs.is_empty() {
        bail!(
            "no node configurations under {}; run `timed localnet init` first",
            dir.display()
        );
    }
    Ok(configs)
}

/// Runs every node under `dir` as a child process, printing their output, until Ctrl-C.
pub fn run(dir: &Path) -> Result<()> {
    let configs = node_configs(dir)?;
    let exe = std::env::current_exe().context("locating the timed binary")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let mut children = Vec::new();
        let mut printers = Vec::new();
        for (i, config) in configs.iter().enumerate() {
            let mut child = tokio::process::Command::new(&exe)
                .arg("--config")
                .arg(config)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting node {i}"))?;
            for stream in [
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            ]
            .into_iter()
            .flatten()
            {
                printers.push(tokio::spawn(async move {
                    let mut lines = BufReader::new(stream).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        println!("[node{i}] {line}");
                    }
                }));
            }
            children.push(child);
        }
        // Every 5 s, one line with each node's height, peers and time since its last block.
        let dirs: Vec<PathBuf> = configs
            .iter()
            .filter_map(|c| c.parent().map(Path::to_path_buf))
            .collect();
        let mut status = tokio::time::interval(std::time::Duration::from_secs(5));
        status.tick().await;
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        // SIGTERM (a process manager's stop, `kill`) stops the nodes as Ctrl-C does: before,
        // it ended this process at once and left them running.
        #[cfg(unix)]
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            #[cfg(unix)]
            let terminated = async {
                match terminate.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let terminated = std::future::pending::<()>();
            tokio::select! {
                _ = &mut interrupted => break,
                () = terminated => break,
                _ = status.tick() => {
                    let dirs = dirs.clone();
                    if let Ok(line) = tokio::task::spawn_blocking(move || network_status(&dirs)).await {
                        println!("{line}");
                    }
                }
            }
        }
        for child in &children {
            if let Some(pid) = child.id() {
                // A graceful stop: each node flushes and exits on SIGTERM.
                let _ = tokio::process::Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status()
                    .await;
            }
        }
        for mut child in children {
            let _ = child.wait().await;
        }
        for printer in printers {
            let _ = printer.await;
        }
        Ok(())
    })
}
