//! `timed` as a daemon: load the configuration, open the store, start the network and the
//! consensus host, and stop cleanly on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use timecoin_chain::{Genesis, SignatureCache};
use timecoin_mempool::{Mempool, MempoolConfig};
use timecoin_network::{Hello, NetworkConfig, PROTOCOL_VERSION};
use timecoin_primitives::Network;
use timecoin_storage::Store;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use timecoin_rpc::{ConsensusStatus, Credentials, RpcAuth, RpcServer, ServeOptions, auth};

use crate::admission::{Admission, Admitter};
use crate::config::Config;
use crate::host::Host;
use crate::keys;

/// Command-line overrides of the configuration.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The configuration file (default `~/.timecoin/config.toml`, or the network's).
    pub config: Option<PathBuf>,
    /// `mainnet`, `testnet` or `local`, over `[node] network`.
    pub network: Option<String>,
    /// The data directory, over `[node] data_dir`.
    pub data_dir: Option<PathBuf>,
}

pub(crate) fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// The default data directory of a network: `~/.timecoin`, `~/.timecoin/testnet`,
/// `~/.timecoin/local`. `time-cli` looks for the cookie and the configuration there too.
pub fn default_data_dir(network: Network) -> PathBuf {
    let base = home().join(".timecoin");
    match network {
        Network::Mainnet => base,
        Network::Testnet => base.join("testnet"),
        Network::Local => base.join("local"),
    }
}

/// Resolves `path` against the directory of the configuration file.
fn relative_to(config_path: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        config_path.parent().unwrap_or_else(|| Path::new(".")).join(path)
    }
}

/// The configuration a command runs with, and where it puts things.
struct Resolved {
    config: Config,
    config_path: PathBuf,
    network: Network,
    data_dir: PathBuf,
}

/// Reads the configuration the overrides name (or the network's default) and works out the
/// network and the data directory, as the daemon does.
fn resolve(overrides: &Overrides) -> Result<Resolved> {
    // Without --config: the network's default directory (~/.timecoin, or
    // ~/.timecoin/testnet with --network testnet) holds config.toml.
    let default_network: Option<Network> = overrides.network.as_deref().map(str::parse).transpose()?;
    let config_path = overrides
        .config
        .clone()
        .unwrap_or_else(|| default_data_dir(default_network.unwrap_or(Network::Mainnet)).join("config.toml"));
    let config = if config_path.exists() || overrides.config.is_some() {
        Config::load(&config_path)?
    } else {
        Config::default()
    };
    let network: Network = overrides
        .network
        .clone()
        .or_else(|| config.node.network.clone())
        .unwrap_or_else(|| "mainnet".to_owned())
        .parse()?;
    let data_dir = match (&overrides.data_dir, &config.node.data_dir) {
        (Some(dir), _) => dir.clone(),
        (None, Some(dir)) => relative_to(&config_path, dir),
        (None, None) => default_data_dir(network),
    };
    Ok(Resolved {
        config,
        config_path,
        network,
        data_dir,
    })
}

/// `timed wallet restore`: writes the wallet file the configuration names from a recovery
/// phrase read from standard input (not the command line, which other users can read), born
/// at `birth` (0: the whole chain is scanned). The node finds the wallet's coins when it
/// starts.
pub fn restore_wallet(overrides: &Overrides, birth: u64) -> Result<()> {
    let Resolved {
        config,
        network,
        data_dir,
        ..
    } = resolve(overrides)?;
    let path = data_dir.join(&config.wallet.file);
    let mut phrase = String::new();
    std::io::stdin()
        .read_line(&mut phrase)
        .context("reading the recovery phrase from standard input")?;
    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    crate::wallet::restore(&path, network, &phrase, birth)?;
    println!(
        "restored the wallet into {}: start the node to find its coins (from height {birth}); encryptwallet seals it",
        path.display()
    );
    Ok(())
}

/// The configuration, data directory and genesis the daemon runs with.
pub(crate) fn load_setup(overrides: &Overrides) -> Result<(Config, PathBuf, Genesis)> {
    let Resolved {
        config,
        config_path,
        network,
        data_dir,
    } = resolve(overrides)?;
    let genesis_path = config
        .node
        .genesis
        .as_ref()
        .map_or_else(|| data_dir.join("genesis.toml"), |p| relative_to(&config_path, p));
    if !genesis_path.exists() {
        bail!(
            "no genesis file at {}; set [node] genesis in the configuration (mainnet and testnet have no published genesis yet)",
            genesis_path.display()
        );
    }
    let genesis = Genesis::from_toml(
        &std::fs::read_to_string(&genesis_path).with_context(|| format!("reading {}", genesis_path.display()))?,
    )
    .with_context(|| format!("genesis file {}", genesis_path.display()))?;
    if genesis.params.network != network {
        bail!(
            "genesis file {} is for {}, but the node runs on {network}",
            genesis_path.display(),
            genesis.params.network
        );
    }
    Ok((config, data_dir, genesis))
}

/// Runs the daemon until a signal stops it.
pub fn run(overrides: Overrides) -> Result<()> {
    let (config, data_dir, genesis) = load_setup(&overrides)?;
    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let node = Node::start(config, genesis, data_dir).await?;
        let reason = wait_for_stop(&node).await;
        info!(reason, "stopping");
        node.stop().await
    })
}

/// How long a stopping node waits for the JSON-RPC server, and a failed start for its tasks.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A node running in this process: the store, the P2P service, admission, the JSON-RPC
/// server, the metrics endpoint, peers' request server and the consensus host, every task on
/// one tracker under one cancellation token. `timed` runs one until a signal; tests run
/// several in one process (only one of them with `[metrics] enabled`: the recorder is the
/// process's). A node is stopped by [`Node::stop`], not by dropping it.
pub struct Node {
    cancel: CancellationToken,
    stop_request: CancellationToken,
    tracker: TaskTracker,
    host_task: tokio::task::JoinHandle<Result<()>>,
    rpc: Option<(RpcServer, PathBuf)>,
    store: Arc<Store>,
    p2p_address: SocketAddr,
    tip: watch::Receiver<Hello>,
    status: watch::Receiver<ConsensusStatus>,
}

impl Node {
    /// Opens the store in `data_dir` and starts every part of the node.
    pub async fn start(config: Config, genesis: Genesis, data_dir: PathBuf) -> Result<Node> {
        let (cancel, tracker) = (CancellationToken::new(), TaskTracker::new());
        match Node::assemble(config, genesis, data_dir, cancel.clone(), tracker.clone()).await {
            Ok(node) => Ok(node),
            Err(error) => {
                // What had started stops: a caller that goes on after a failed start must not
                // keep a listener and tasks of a node that does not exist.
                cancel.cancel();
                tracker.close();
                let _ = tokio::time::timeout(STOP_TIMEOUT, tracker.wait()).await;
                Err(error)
            }
        }
    }

    /// Everything [`Node::start`] starts, on `tracker` under `cancel`. The JSON-RPC server is
    /// the last part that can fail, so that an error leaves no server or cookie behind.
    async fn assemble(
        config: Config,
        genesis: Genesis,
        data_dir: PathBuf,
        cancel: CancellationToken,
        tracker: TaskTracker,
    ) -> Result<Node> {
        let genesis = Arc::new(genesis);
        let store_path = data_dir.join("chain.redb");
        let store = {
            let genesis = Arc::clone(&genesis);
            let cache = config.storage.cache_megabytes.saturating_mul(1024 * 1024);
            let flush = config.storage.flush_policy();
            tokio::task::spawn_blocking(move || Store::open_with(&store_path, &genesis, cache, flush)).await??
        };
        let store = Arc::new(store);
        if config.index.address {
            let indexing = Arc::clone(&store);
            let caught_up = tokio::task::spawn_blocking(move || {
                indexing.enable_address_index(|height, tip| {
                    info!(height, tip, "building the address index from the stored blocks");
                })
            })
            .await??;
            info!(caught_up, "address index on");
        }
        if let Some(target) = config.storage.prune_target() {
            store.set_prune_target(Some(target));
            let pruning = Arc::clone(&store);
            let state = tokio::task::spawn_blocking(move || pruning.prune_to(target)).await??;
            info!(
                target,
                pruned_below = state.pruned_below,
                block_bytes = state.block_bytes,
                "pruning old blocks"
            );
        }
        let key_path = data_dir.join(if config.masternode.enabled {
            &config.masternode.key_file
        } else {
            Path::new("node.key")
        });
        // The operator key signs consensus messages; peers know the node by `identity`, the
        // same key unless `[network] identity_file` names another.
        let operator = keys::load_or_create(&key_path)?;
        let identity = match &config.network.identity_file {
            Some(file) => keys::load_or_create(&data_dir.join(file))?,
            None => operator.clone(),
        };
        let tip = store.tip()?;
        let params = genesis.params.clone();
        let listen = config
            .network
            .listen
            .unwrap_or_else(|| ([0, 0, 0, 0], params.p2p_port).into());
        let mut hello = Hello {
            magic: params.magic,
            version: PROTOCOL_VERSION,
            genesis: genesis.hash(),
            best_height: tip.height,
            best_hash: tip.hash,
            listen_port: config.network.external_address.map_or(listen.port(), |a| a.port()),
            masternode: config.masternode.enabled,
            lowest_height: 0,
        };
        hello.set_lowest_height(store.served_from()?);
        let (hello_tx, hello_rx) = watch::channel(hello);
        let mut network_config = NetworkConfig::new(listen);
        network_config.bootstrap = config.network.bootstrap.clone();
        // `Config::validate` keeps it within `max_peers`.
        network_config.max_outbound = config.network.max_outbound;
        network_config.max_inbound = config.network.max_peers.saturating_sub(network_config.max_outbound);
        network_config.max_frame = max_frame(&params);
        network_config.masternode_peers = config.network.masternode_peers;
        network_config.max_inbound_per_ip = config.network.max_inbound_per_ip;
        network_config.address_book = Some(data_dir.join(&config.network.address_book));
        let (network, events) =
            timecoin_network::start(network_config, identity.clone(), hello_rx, cancel.clone(), &tracker)
                .await
                .with_context(|| format!("listening on {listen}"))?;
        let mempool_config = MempoolConfig {
            max_transactions: config.mempool.max_transactions,
            max_bytes: config.mempool.max_megabytes.saturating_mul(1024 * 1024),
            expiry_ms: config.mempool.expiry_hours.saturating_mul(3_600_000),
            ..MempoolConfig::default()
        };
        // Signatures verified at admission are not verified again in a proposed block.
        let signatures = Arc::new(SignatureCache::new(timecoin_chain::sigcache::DEFAULT_CAPACITY));
        let mempool = Arc::new(Mutex::new(
            Mempool::new(params.clone(), genesis.hash(), mempool_config, tip.height)
                .with_signature_cache(Arc::clone(&signatures)),
        ));
        info!(
            network = %params.network,
            genesis = %genesis.hash(),
            height = tip.height,
            listen = %network.local_address(),
            masternode = config.masternode.enabled,
            identity = %identity.public_key(),
            "started"
        );
        let wallet = if config.wallet.enabled {
            let path = data_dir.join(&config.wallet.file);
            let (network, store) = (params.network, Arc::clone(&store));
            let shown = path.display().to_string();
            let (wallet, loaded) =
                tokio::task::spawn_blocking(move || crate::wallet::load(&path, network, &store)).await??;
            info!(
                path = %shown,
                created = loaded.created,
                from = loaded.from,
                passes = loaded.passes,
                "wallet loaded"
            );
            Some(Arc::new(Mutex::new(wallet)))
        } else {
            None
        };
        let wallet_name = config
            .wallet
            .file
            .file_stem()
            .map_or_else(String::new, |stem| stem.to_string_lossy().into_owned());
        let notifier = crate::notify::Notifier::start(
            &config.notify,
            &config.zmq,
            crate::notify::Sources {
                wallet: wallet.clone(),
                wallet_name,
            },
            cancel.clone(),
            &tracker,
        )
        .await?;
        // Admitted transactions' ids, a batch a message, for the host to announce.
        let (relay_tx, relay_rx) = tokio::sync::mpsc::channel(1_024);
        // Cancelled by the `stop` RPC.
        let stop_request = CancellationToken::new();
        let (status_tx, status_rx) = watch::channel(ConsensusStatus::default());
        let admission = Admission::start(
            Admitter {
                store: Arc::clone(&store),
                genesis: Arc::clone(&genesis),
                mempool: Arc::clone(&mempool),
                signatures: Arc::clone(&signatures),
                relay: relay_tx,
                network: network.clone(),
                notifier: notifier.clone(),
            },
            cancel.clone(),
            &tracker,
        );
        if config.metrics.enabled {
            let handle = crate::metrics::install()?;
            let address = crate::metrics::serve(config.metrics.listen, handle, cancel.clone(), &tracker).await?;
            info!(address = %address, "serving Prometheus metrics on /metrics");
        }
        let rpc = if config.rpc.enabled {
            let listen = config
                .rpc
                .listen
                .unwrap_or_else(|| ([127, 0, 0, 1], params.rpc_port).into());
            let backend = crate::backend::NodeBackend {
                store: Arc::clone(&store),
                genesis: Arc::clone(&genesis),
                mempool: Arc::clone(&mempool),
                admission: admission.clone(),
                network: network.clone(),
                runtime: tokio::runtime::Handle::current(),
                shutdown: stop_request.clone(),
                tip: hello_tx.subscribe(),
                consensus: status_rx,
                operator: config.masternode.enabled.then(|| operator.public_key()),
                operator_key: config.masternode.enabled.then(|| operator.clone()),
                wallet: wallet.clone(),
                notifier: notifier.clone(),
                data_dir: data_dir.clone(),
            };
            let users = config
                .rpc
                .rpcauth
                .iter()
                .map(|entry| entry.parse::<RpcAuth>())
                .collect::<Result<Vec<_>, _>>()
                .context("[rpc] rpcauth")?;
            // Like Bitcoin Core: a fresh cookie each start, readable by the owner only.
            let password = auth::random_password();
            let cookie = data_dir.join(".cookie");
            auth::write_cookie(&cookie, &password).with_context(|| format!("writing {}", cookie.display()))?;
            let options = ServeOptions {
                credentials: Credentials::new(Some(password), users),
                max_body: config.rpc.max_body_bytes,
                max_batch: config.rpc.max_batch,
                max_connections: config.rpc.max_connections,
                websocket: config.rpc.websocket,
            };
            let server = timecoin_rpc::serve(listen, Arc::new(backend), options)
                .await
                .with_context(|| format!("serving JSON-RPC on {listen}"))?;
            info!(address = %server.address, cookie = %cookie.display(), "serving JSON-RPC");
            if let Some(websocket) = server.websocket {
                info!(address = %websocket, "serving JSON-RPC subscriptions over WebSocket");
            }
            Some((server, cookie))
        } else {
            None
        };
        let requests = crate::serve::Server {
            store: Arc::clone(&store),
            mempool: Arc::clone(&mempool),
            network: network.clone(),
            max_frame: max_frame(&params),
        }
        .spawn(&tracker, cancel.clone());
        let host = Host {
            store: Arc::clone(&store),
            genesis: Arc::clone(&genesis),
            mempool: Arc::clone(&mempool),
            signatures,
            admission,
            network,
            hello: hello_tx,
            key: config.masternode.enabled.then(|| operator.clone()),
            pacing: config.consensus.clone(),
            masternode_peers: config.network.masternode_peers,
            cancel: cancel.clone(),
            tracker: tracker.clone(),
            relay: relay_rx,
            requests,
            status: status_tx,
            wallet,
            notifier,
        };
        let (tip_rx, status_watch) = (host.hello.subscribe(), host.status.subscribe());
        let p2p_address = host.network.local_address();
        let host_cancel = cancel.clone();
        let host_task = tracker.spawn(async move {
            let result = host.run(events).await;
            if result.is_err() {
                host_cancel.cancel();
            }
            result
        });
        Ok(Node {
            cancel,
            stop_request,
            tracker,
            host_task,
            p2p_address,
            rpc,
            store,
            tip: tip_rx,
            status: status_watch,
        })
    }

    /// Where the node accepts peers.
    pub fn p2p_address(&self) -> SocketAddr {
        self.p2p_address
    }

    /// Where the node serves JSON-RPC, if it does, and its cookie file.
    pub fn rpc(&self) -> Option<(SocketAddr, &Path)> {
        self.rpc
            .as_ref()
            .map(|(server, cookie)| (server.address, cookie.as_path()))
    }

    /// The height of the node's tip (its last finalized block).
    pub fn tip_height(&self) -> u64 {
        self.tip.borrow().best_height
    }

    /// Where the consensus engine is: height, round, step, and whether the node is syncing.
    pub fn consensus(&self) -> ConsensusStatus {
        self.status.borrow().clone()
    }

    /// Waits until the node's tip reaches `height`; fails if the node stops first.
    pub async fn wait_for_height(&self, height: u64) -> Result<()> {
        let mut tip = self.tip.clone();
        tokio::select! {
            reached = tip.wait_for(|hello| hello.best_height >= height) => {
                reached.map(|_| ()).map_err(|_| anyhow::anyhow!("the node stopped before height {height}"))
            }
            () = self.cancel.cancelled() => bail!("the node stopped before height {height}"),
        }
    }

    /// Waits until the consensus status satisfies `done`; fails if the node stops first.
    pub async fn wait_for_consensus(&self, done: impl Fn(&ConsensusStatus) -> bool) -> Result<ConsensusStatus> {
        let mut status = self.status.clone();
        tokio::select! {
            reached = status.wait_for(|s| done(s)) => {
                reached.map(|s| s.clone()).map_err(|_| anyhow::anyhow!("the node stopped"))
            }
            () = self.cancel.cancelled() => bail!("the node stopped"),
        }
    }

    /// The store, for reading the chain the node keeps.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Waits until the node must stop on its own: a task failed, or the `stop` RPC was called.
    pub async fn stopping(&self) -> &'static str {
        tokio::select! {
            () = self.cancel.cancelled() => "a task failed",
            () = self.stop_request.cancelled() => "the stop RPC",
        }
    }

    /// Stops every task (the RPC server first, then the rest through the cancellation token),
    /// waits for them, at most 10 s, and reports the consensus host's failure if it failed.
    pub async fn stop(self) -> Result<()> {
        if let Some((server, cookie)) = self.rpc {
            // The server waits for calls in flight; a long `waitfortransaction` is cut short.
            if tokio::time::timeout(STOP_TIMEOUT, server.stop()).await.is_err() {
                tracing::warn!("JSON-RPC calls still running after 5 s; stopping anyway");
            }
            let _ = std::fs::remove_file(cookie);
        }
        self.cancel.cancel();
        self.tracker.close();
        if tokio::time::timeout(Duration::from_secs(10), self.tracker.wait())
            .await
            .is_err()
        {
            bail!("tasks did not stop within 10 s");
        }
        let host = self.host_task.await;
        // The in-memory coins are written now, on a blocking thread, so that the next start
        // replays nothing (dropping the store would write them too, but on this thread).
        let store = self.store;
        let flushed = tokio::task::spawn_blocking(move || store.flush()).await;
        if let Ok(Err(error)) = host {
            return Err(error.context("the consensus host failed"));
        }
        match flushed {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "writing the in-memory coins at shutdown failed; the next start replays the blocks they came from")
            }
            Err(error) => tracing::warn!(%error, "writing the in-memory coins at shutdown failed"),
        }
        info!("stopped");
        Ok(())
    }
}

/// Waits for SIGINT or SIGTERM, or until the node must stop on its own.
async fn wait_for_stop(node: &Node) -> &'static str {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return "SIGINT";
            }
        };
        tokio::select! {
            _ = interrupt => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
            reason = node.stopping() => reason,
        }
    }
    #[cfg(not(unix))]
    {
        tokio::select! {
            _ = interrupt => "interrupt",
            reason = node.stopping() => reason,
        }
    }
}

/// The largest frame a node sends or accepts: a whole block with the largest commit
/// certificate a set can sign (96 bytes a signer, every masternode of the cap), and room for
/// the message around them. A full block with a large certificate must travel in one
/// `Blocks` message, or every link that carries it breaks and the block cannot be synced.
pub fn max_frame(params: &timecoin_chain::ChainParams) -> usize {
    const SIGNATURE: usize = 32 + 64;
    params.max_block_bytes + timecoin_primitives::limits::MAX_MASTERNODES * SIGNATURE + 100_000
}
