//! The node's configuration file (TOML). Unknown keys are errors that name the key; every
//! key has a default, so an empty file is a valid configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[node]`
    pub(crate) node: NodeSection,
    /// `[network]`
    pub(crate) network: NetworkSection,
    /// `[rpc]`
    pub(crate) rpc: RpcSection,
    /// `[storage]`
    pub(crate) storage: StorageSection,
    /// `[consensus]`
    pub(crate) consensus: ConsensusSection,
    /// `[masternode]`
    pub(crate) masternode: MasternodeSection,
    /// `[mempool]`
    pub(crate) mempool: MempoolSection,
    /// `[metrics]`
    pub(crate) metrics: MetricsSection,
    /// `[wallet]`
    pub(crate) wallet: WalletSection,
    /// `[notify]`
    pub(crate) notify: crate::notify::NotifySection,
    /// `[zmq]`
    pub(crate) zmq: crate::notify::ZmqSection,
    /// `[index]`
    pub(crate) index: IndexSection,
}

/// `[index]`: optional indexes of the chain.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct IndexSection {
    /// Dash Core's `-addressindex`: each address's balance changes and unspent outputs,
    /// written with each block; built from the stored blocks at start when turned on later.
    pub(crate) address: bool,
}

/// `[wallet]`: the node's wallet.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct WalletSection {
    /// Whether to load (and on first start create) the wallet.
    pub(crate) enabled: bool,
    /// The wallet file, relative to the data directory.
    pub(crate) file: PathBuf,
}

impl Default for WalletSection {
    fn default() -> Self {
        WalletSection {
            enabled: true,
            file: PathBuf::from("wallet.json"),
        }
    }
}

/// `[node]`: where the node keeps its data and which chain it follows.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct NodeSection {
    /// `mainnet`, `testnet` or `local`; the command line's `--network` wins.
    pub(crate) network: Option<String>,
    /// The data directory; relative paths are relative to the config file.
    pub(crate) data_dir: Option<PathBuf>,
    /// The genesis file; relative to the config file.
    pub(crate) genesis: Option<PathBuf>,
}

/// `[network]`: the P2P service.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct NetworkSection {
    /// Where to accept peers; the port defaults to the network's.
    pub(crate) listen: Option<SocketAddr>,
    /// The address peers should dial (advertised).
    pub(crate) external_address: Option<SocketAddr>,
    /// Peers to dial at start and keep connected.
    pub(crate) bootstrap: Vec<SocketAddr>,
    /// Most connections in all.
    pub(crate) max_peers: usize,
    /// Of which at most this many we dial.
    pub(crate) max_outbound: usize,
    /// A masternode keeps links to this many other masternodes (all when fewer), evicting
    /// ordinary peers to make room.
    pub(crate) masternode_peers: usize,
    /// Most inbound connections from one IP address (a quarter of it, at least one, in
    /// handshakes at once).
    pub(crate) max_inbound_per_ip: usize,
    /// The address book, relative to the data directory.
    pub(crate) address_book: PathBuf,
    /// The key that identifies this node to peers, relative to the data directory (created
    /// when missing). Unset: a masternode shows its operator key (so peers recognise it and
    /// keep a link to it), another node `node.key`.
    pub(crate) identity_file: Option<PathBuf>,
}

impl Default for NetworkSection {
    fn default() -> Self {
        NetworkSection {
            listen: None,
            external_address: None,
            bootstrap: Vec::new(),
            max_peers: 50,
            max_outbound: 10,
            masternode_peers: 32,
            max_inbound_per_ip: 8,
            address_book: PathBuf::from("peers.txt"),
            identity_file: None,
        }
    }
}

/// `[rpc]`: the JSON-RPC server.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RpcSection {
    /// Whether to serve JSON-RPC.
    pub(crate) enabled: bool,
    /// Where; loopback and the network's port by default.
    pub(crate) listen: Option<SocketAddr>,
    /// Users besides the cookie, as `user:salt$hmac` (`time-cli rpcauth USER` makes one).
    pub(crate) rpcauth: Vec<String>,
    /// Largest request body, in bytes.
    pub(crate) max_body_bytes: u32,
    /// Most requests in one batch.
    pub(crate) max_batch: u32,
    /// Most connections at once.
    pub(crate) max_connections: u32,
    /// Where to serve WebSocket subscriptions (the same credentials); off when absent.
    pub(crate) websocket: Option<SocketAddr>,
}

impl Default for RpcSection {
    fn default() -> Self {
        RpcSection {
            enabled: true,
            listen: None,
            rpcauth: Vec::new(),
            max_body_bytes: 4 * 1024 * 1024,
            max_batch: 1_000,
            max_connections: 64,
            websocket: None,
        }
    }
}

/// `[storage]`: the chain store.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StorageSection {
    /// The most memory the store's page cache holds, in MiB.
    pub(crate) cache_megabytes: usize,
    /// The UTXO changes kept in memory before they are written to the UTXO table, in MiB.
    pub(crate) coins_megabytes: usize,
    /// The most blocks whose UTXO changes are kept in memory (what a restart after a crash
    /// replays).
    pub(crate) coins_flush_blocks: usize,
    /// Bitcoin Core's `prune`: the block data (bodies, undo records, certificates) kept at
    /// most, in MiB; 0 keeps every block.
    pub(crate) prune_megabytes: u64,
}

impl StorageSection {
    /// When the store writes its in-memory coins.
    pub(crate) fn flush_policy(&self) -> timecoin_storage::FlushPolicy {
        timecoin_storage::FlushPolicy {
            max_bytes: self.coins_megabytes.saturating_mul(1024 * 1024),
            max_blocks: self.coins_flush_blocks,
            stagger: true,
        }
    }

    /// The block data to keep at most, in bytes, if the node prunes.
    pub(crate) fn prune_target(&self) -> Option<u64> {
        Some(self.prune_megabytes.saturating_mul(1024 * 1024)).filter(|bytes| *bytes > 0)
    }
}

impl Default for StorageSection {
    fn default() -> Self {
        let flush = timecoin_storage::FlushPolicy::default();
        StorageSection {
            cache_megabytes: timecoin_storage::DEFAULT_CACHE_BYTES / (1024 * 1024),
            coins_megabytes: flush.max_bytes / (1024 * 1024),
            coins_flush_blocks: flush.max_blocks,
            prune_megabytes: 0,
        }
    }
}

/// `[consensus]`: timeouts and block pacing, in milliseconds.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ConsensusSection {
    /// Propose timeout of round 0.
    pub(crate) timeout_propose_ms: u64,
    /// Added per round.
    pub(crate) timeout_propose_delta_ms: u64,
    /// Prevote timeout of round 0.
    pub(crate) timeout_prevote_ms: u64,
    /// Added per round.
    pub(crate) timeout_prevote_delta_ms: u64,
    /// Precommit timeout of round 0.
    pub(crate) timeout_precommit_ms: u64,
    /// Added per round.
    pub(crate) timeout_precommit_delta_ms: u64,
    /// Least time between blocks when transactions wait.
    pub(crate) min_block_interval_ms: u64,
    /// Time after which an empty block is proposed anyway.
    pub(crate) empty_block_interval_ms: u64,
}

impl Default for ConsensusSection {
    fn default() -> Self {
        ConsensusSection {
            timeout_propose_ms: 3_000,
            timeout_propose_delta_ms: 500,
            timeout_prevote_ms: 1_000,
            timeout_prevote_delta_ms: 500,
            timeout_precommit_ms: 1_000,
            timeout_precommit_delta_ms: 500,
            min_block_interval_ms: 1_000,
            empty_block_interval_ms: 60_000,
        }
    }
}

impl ConsensusSection {
    /// Whether the next block is due: after the minimum interval when transactions wait,
    /// after the empty-block interval otherwise. The interval runs from the tip's timestamp
    /// or from when this node learned of the tip (`seen_ms_ago`), whichever is earlier: a
    /// tip stamped in the future (its proposer's clock ahead, within what validation allows)
    /// must not hold the chain until this node's clock reaches it.
    pub(crate) fn next_block_due(&self, tip_timestamp_ms: u64, now_ms: u64, seen_ms_ago: u64, waiting: bool) -> bool {
        let since = now_ms.saturating_sub(tip_timestamp_ms).max(seen_ms_ago);
        (waiting && since >= self.min_block_interval_ms) || since >= self.empty_block_interval_ms
    }
}

/// `[masternode]`: whether this node votes, and with which key.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct MasternodeSection {
    /// Whether to take part in consensus.
    pub(crate) enabled: bool,
    /// The operator key file (created with mode 0600 on first start); relative to the data
    /// directory.
    pub(crate) key_file: PathBuf,
    /// Informational only: the chain's registration decides a masternode's tier.
    pub(crate) tier: String,
}

impl Default for MasternodeSection {
    fn default() -> Self {
        MasternodeSection {
            enabled: false,
            key_file: PathBuf::from("masternode.key"),
            tier: "bronze".to_owned(),
        }
    }
}

/// `[mempool]`: limits.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct MempoolSection {
    /// Most transactions.
    pub(crate) max_transactions: usize,
    /// Most memory, in MiB.
    pub(crate) max_megabytes: usize,
    /// Hours before a waiting transaction is dropped.
    pub(crate) expiry_hours: u64,
}

impl Default for MempoolSection {
    fn default() -> Self {
        MempoolSection {
            max_transactions: 10_000,
            max_megabytes: 300,
            expiry_hours: 72,
        }
    }
}

/// `[metrics]`: the Prometheus endpoint (off by default).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct MetricsSection {
    /// Whether to serve metrics.
    pub(crate) enabled: bool,
    /// Where; loopback by default.
    pub(crate) listen: SocketAddr,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 24_002)),
        }
    }
}

impl Config {
    /// Parses a configuration's text and [`validate`](Config::validate)s it; `origin` names
    /// it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Config> {
        let config: Config =
            toml::from_str(text).with_context(|| format!("invalid configuration {}", origin.display()))?;
        config
            .validate()
            .with_context(|| format!("invalid configuration {}", origin.display()))?;
        Ok(config)
    }

    /// Refuses values that parse but make no sense, naming the key: a zero timeout, limit or
    /// batch size, more outbound connections than connections in all, an empty-block interval
    /// shorter than the minimum interval. (Zero intervals are allowed: blocks as fast as the
    /// network decides them, which tests and benchmarks use.)
    pub fn validate(&self) -> Result<()> {
        let c = &self.consensus;
        let positive: [(&str, u64); 14] = [
            ("[consensus] timeout_propose_ms", c.timeout_propose_ms),
            ("[consensus] timeout_prevote_ms", c.timeout_prevote_ms),
            ("[consensus] timeout_precommit_ms", c.timeout_precommit_ms),
            ("[network] max_peers", self.network.max_peers as u64),
            ("[network] max_inbound_per_ip", self.network.max_inbound_per_ip as u64),
            ("[rpc] max_body_bytes", u64::from(self.rpc.max_body_bytes)),
            ("[rpc] max_batch", u64::from(self.rpc.max_batch)),
            ("[rpc] max_connections", u64::from(self.rpc.max_connections)),
            ("[storage] cache_megabytes", self.storage.cache_megabytes as u64),
            ("[storage] coins_megabytes", self.storage.coins_megabytes as u64),
            ("[storage] coins_flush_blocks", self.storage.coins_flush_blocks as u64),
            ("[mempool] max_transactions", self.mempool.max_transactions as u64),
            ("[mempool] max_megabytes", self.mempool.max_megabytes as u64),
            ("[mempool] expiry_hours", self.mempool.expiry_hours),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, value)| *value == 0) {
            bail!("{key} is 0; it must be at least 1");
        }
        self.zmq.validate()?;
        if self.network.max_outbound > self.network.max_peers {
            bail!(
                "[network] max_outbound ({}) is above max_peers ({}), which counts every connection",
                self.network.max_outbound,
                self.network.max_peers
            );
        }
        if self.storage.prune_megabytes > 0 && self.index.address {
            bail!(
                "[storage] prune_megabytes and [index] address exclude each other: the address index needs every block"
            );
        }
        if self.storage.prune_megabytes > 0 && self.wallet.enabled {
            bail!(
                "[storage] prune_megabytes needs [wallet] enabled = false: the wallet rebuilds its history from the stored blocks at each start"
            );
        }
        if c.empty_block_interval_ms < c.min_block_interval_ms {
            bail!(
                "[consensus] empty_block_interval_ms ({}) is below min_block_interval_ms ({})",
                c.empty_block_interval_ms,
                c.min_block_interval_ms
            );
        }
        // Memory sizes are turned into bytes; a value past what that holds would silently
        // mean "no limit".
        for (key, megabytes) in [
            ("[storage] cache_megabytes", self.storage.cache_megabytes),
            ("[storage] coins_megabytes", self.storage.coins_megabytes),
            ("[mempool] max_megabytes", self.mempool.max_megabytes),
        ] {
            if megabytes.checked_mul(1024 * 1024).is_none() {
                bail!("{key} is {megabytes}; it must be below {}", usize::MAX / (1024 * 1024));
            }
        }
        Ok(())
    }

    /// `[rpc] listen`, where the JSON-RPC server listens if the file says.
    pub fn rpc_listen(&self) -> Option<SocketAddr> {
        self.rpc.listen
    }

    /// Reads a configuration file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Config::parse(&text, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_due_after_the_interval_even_when_the_tip_is_stamped_in_the_future() {
        let pacing = ConsensusSection {
            min_block_interval_ms: 250,
            empty_block_interval_ms: 1_000,
            ..ConsensusSection::default()
        };
        let now = 1_000_000;
        // The tip's proposer ran 14 s ahead; this node applied the tip 1.1 s ago.
        assert!(pacing.next_block_due(now + 14_000, now, 1_100, false));
        assert!(!pacing.next_block_due(now + 14_000, now, 900, false));
        assert!(pacing.next_block_due(now + 14_000, now, 300, true));
        assert!(!pacing.next_block_due(now + 14_000, now, 200, true));
        // A node that restarts with an old tip need not wait: the timestamp says it is due.
        assert!(pacing.next_block_due(now - 5_000, now, 0, false));
    }

    #[test]
    fn an_empty_file_is_all_defaults() {
        let config = Config::parse("", Path::new("c.toml")).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.network.max_peers, 50);
        assert_eq!(config.consensus.empty_block_interval_ms, 60_000);
        assert!(!config.metrics.enabled && config.rpc.enabled && !config.masternode.enabled);
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let error = Config::parse("[network]\nmax_peer = 3\n", Path::new("node.toml")).unwrap_err();
        let text = format!("{error:#}");
        assert!(text.contains("node.toml") && text.contains("max_peer"), "{text}");
        let error = Config::parse("[nework]\n", Path::new("node.toml")).unwrap_err();
        assert!(format!("{error:#}").contains("nework"));
    }

    #[test]
    fn nonsensical_values_are_refused_naming_the_key() {
        for (text, named) in [
            (
                "[consensus]\ntimeout_propose_ms = 0\n",
                "[consensus] timeout_propose_ms is 0",
            ),
            ("[rpc]\nmax_batch = 0\n", "[rpc] max_batch is 0"),
            ("[mempool]\nmax_megabytes = 0\n", "[mempool] max_megabytes is 0"),
            (
                "[network]\nmax_peers = 5\nmax_outbound = 8\n",
                "max_outbound (8) is above max_peers (5)",
            ),
            (
                "[consensus]\nmin_block_interval_ms = 2000\nempty_block_interval_ms = 1000\n",
                "empty_block_interval_ms (1000) is below min_block_interval_ms (2000)",
            ),
            (
                "[storage]\ncoins_flush_blocks = 0\n",
                "[storage] coins_flush_blocks is 0",
            ),
            (
                "[storage]\ncoins_megabytes = 18446744073709551615\n",
                "[storage] coins_megabytes is 18446744073709551615; it must be below",
            ),
            (
                "[storage]\nprune_megabytes = 550\n",
                "[storage] prune_megabytes needs [wallet] enabled = false",
            ),
            (
                "[storage]\nprune_megabytes = 550\n[wallet]\nenabled = false\n[index]\naddress = true\n",
                "[storage] prune_megabytes and [index] address exclude each other",
            ),
        ] {
            let error = Config::parse(text, Path::new("node.toml")).unwrap_err();
            let message = format!("{error:#}");
            assert!(
                message.contains("node.toml") && message.contains(named),
                "{text}: {message}"
            );
        }
        // The defaults and what `localnet`, the bench and the chaos runner write are valid.
        Config::default().validate().unwrap();
        // A node that only accepts connections dials none.
        Config::parse("[network]\nmax_outbound = 0\n", Path::new("c")).unwrap();
        Config::parse(
            "[consensus]\nmin_block_interval_ms = 100\nempty_block_interval_ms = 1000\n",
            Path::new("c"),
        )
        .unwrap();
    }

    #[test]
    fn sections_parse() {
        let config = Config::parse(
            "[node]\nnetwork = \"local\"\n[network]\nlisten = \"127.0.0.1:24200\"\nbootstrap = [\"127.0.0.1:24201\"]\n[masternode]\nenabled = true\ntier = \"gold\"\n[consensus]\nmin_block_interval_ms = 250\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(config.node.network.as_deref(), Some("local"));
        assert_eq!(config.network.bootstrap.len(), 1);
        assert!(config.masternode.enabled);
        assert_eq!(config.consensus.min_block_interval_ms, 250);
        assert_eq!(config.consensus.timeout_propose_ms, 3_000);
    }
}
