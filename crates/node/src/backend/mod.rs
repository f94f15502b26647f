//! The node's side of the JSON-RPC API: chain and UTXO queries from the store, the mempool,
//! peers from the network service, the consensus position from the host, and transactions
//! into the mempool and out to peers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use timecoin_chain::{Genesis, MasternodeList, Status, UtxoView};
use timecoin_light::TrustedState;
use timecoin_mempool::Mempool;
use timecoin_network::{BanTarget, Hello, NetworkHandle};
use timecoin_primitives::{
    Address, AddressPayload, Amount, Block, BlockHash, BlockHeader, CommitCertificate, MasternodeSet, OutPoint,
    PublicKey, SecretKey, Transaction, TxId, TxOutput,
};
use timecoin_rpc::{
    AddressDeltaInfo, AddressUtxoInfo, BlockFeed, ChainBackend, ChainInfo, ConsensusStatus, MasternodeSummary,
    MempoolBackend, MempoolEntry, MempoolInfo, NetworkBackend, PeerSummary, Pending, RpcError, StateDump, StorageInfo,
    TxOutInfo, UtxoSetSummary, codes,
};
use timecoin_wallet::SendContext;

use crate::admission::Admission;
use crate::wallet::{NodeWallet, Transact, WalletError};
use timecoin_storage::Store;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

mod wallet;

/// Serves the API from the node's store and mempool.
pub(crate) struct NodeBackend {
    pub(crate) store: Arc<Store>,
    pub(crate) genesis: Arc<Genesis>,
    pub(crate) mempool: Arc<Mutex<Mempool>>,
    /// Where submitted transactions wait to be admitted.
    pub(crate) admission: Admission,
    pub(crate) network: NetworkHandle,
    /// The runtime, to reach the network service from the blocking threads methods run on.
    pub(crate) runtime: tokio::runtime::Handle,
    /// Cancelled by `stop`.
    pub(crate) shutdown: CancellationToken,
    /// The best block, as the node introduces itself to peers (changes with each block).
    pub(crate) tip: watch::Receiver<Hello>,
    /// The consensus engine's position, published by the host.
    pub(crate) consensus: watch::Receiver<ConsensusStatus>,
    /// This node's operator key, if it is a masternode.
    pub(crate) operator: Option<PublicKey>,
    /// Its secret, to sign a revocation.
    pub(crate) operator_key: Option<SecretKey>,
    /// The wallet, unless disabled.
    pub(crate) wallet: Option<Arc<Mutex<NodeWallet>>>,
    /// The notifications, for `getzmqnotifications`.
    pub(crate) notifier: crate::notify::Notifier,
    /// The data directory, which relative paths (`dumptxoutset`) are resolved against.
    pub(crate) data_dir: std::path::PathBuf,
}

fn wallet_error(error: WalletError) -> RpcError {
    let code = match error {
        WalletError::Locked => codes::WALLET_UNLOCK_NEEDED,
        WalletError::WrongPassphrase => codes::WALLET_PASSPHRASE_INCORRECT,
        WalletError::NotEncrypted | WalletError::AlreadyEncrypted => codes::WALLET_WRONG_ENC_STATE,
        WalletError::Funds(_) => codes::WALLET_INSUFFICIENT_FUNDS,
        WalletError::Other(_) => codes::WALLET_ERROR,
        WalletError::Parameter(_) => codes::INVALID_PARAMETER,
    };
    RpcError::new(code, error.to_string())
}

/// An address-index or set-record read's error: a refusal ("not enabled", "not recorded
/// here") as Dash Core's `-1`, the rest internal.
fn index_error(error: timecoin_storage::StorageError) -> RpcError {
    match error {
        timecoin_storage::StorageError::Refused(message) => RpcError::new(codes::MISC_ERROR, message),
        other => internal(other),
    }
}

fn internal(error: impl std::fmt::Display) -> RpcError {
    RpcError::new(codes::INTERNAL_ERROR, error.to_string())
}

/// A ban's target as the API takes it: a peer identity (64 hex) or an address (IP:port).
fn ban_target(text: &str) -> Result<BanTarget, RpcError> {
    if let Ok(key) = text.parse::<PublicKey>() {
        return Ok(BanTarget::Identity(key));
    }
    text.parse::<std::net::SocketAddr>()
        .map(BanTarget::Address)
        .map_err(|_| {
            RpcError::new(
                codes::INVALID_PARAMETER,
                format!("{text:?} is neither a peer identity (64 hex) nor an address (IP:port)"),
            )
        })
}

impl NodeBackend {
    fn wallet(&self) -> Result<std::sync::MutexGuard<'_, NodeWallet>, RpcError> {
        self.wallet
            .as_ref()
            .ok_or_else(|| {
                RpcError::new(
                    codes::WALLET_NOT_FOUND,
                    "No wallet is loaded ([wallet] enabled = false)",
                )
            })?
            .lock()
            .map_err(|_| internal("wallet lock poisoned"))
    }

    fn mempool(&self) -> Result<std::sync::MutexGuard<'_, Mempool>, RpcError> {
        self.mempool.lock().map_err(|_| internal("mempool lock poisoned"))
    }

    /// The masternode list at the tip.
    fn list(&self) -> Result<Arc<MasternodeList>, RpcError> {
        self.store.masternodes().map_err(internal)
    }

    /// An address of this network.
    fn address(&self, text: &str) -> Result<Address, RpcError> {
        let network = self.genesis.params.network;
        let address: Address = text
            .parse()
            .map_err(|e| RpcError::new(codes::INVALID_ADDRESS_OR_KEY, format!("Invalid address {text}: {e}")))?;
        if address.network != network {
            return Err(RpcError::new(
                codes::INVALID_ADDRESS_OR_KEY,
                format!("Invalid address {text}: it is for {}, not {network}", address.network),
            ));
        }
        Ok(address)
    }

    /// The masternode `text` names, from `list`.
    fn masternode<'l>(&self, list: &'l MasternodeList, text: &str) -> Result<&'l timecoin_chain::Entry, RpcError> {
        let id: TxId = text
            .parse()
            .map_err(|_| invalid_parameter(format!("{text:?} is not a masternode id")))?;
        list.get(&id)
            .ok_or_else(|| invalid_parameter(format!("No masternode {id}: see masternodelist")))
    }

    /// Builds, signs and submits a wallet transaction: `plan` says what it pays and carries
    /// (it may derive wallet keys); `other_coins` whether coins beyond the required ones may
    /// pay for it.
    fn wallet_transact(
        &self,
        other_coins: bool,
        plan: impl FnOnce(&mut NodeWallet) -> Result<(Transact, Vec<(Address, Amount)>), RpcError>,
    ) -> Result<TxId, RpcError> {
        let list = self.list()?;
        let tx = {
            let mut wallet = self.wallet()?;
            let (extra, payments) = plan(&mut wallet)?;
            // The mempool is held only to see which coins are being spent and the fee rate.
            let (unspent, fee_rate) = {
                let mut mempool = self.mempool()?;
                let rate = mempool
                    .min_fee_rate(crate::host::now_ms())
                    .max(self.genesis.params.min_fee_rate);
                let unspent = if other_coins {
                    wallet.unspent(&mempool, &list)
                } else {
                    Vec::new()
                };
                (unspent, rate)
            };
            let context = SendContext {
                genesis: self.genesis.hash(),
                fee_rate,
                dust: self.genesis.params.dust_limit,
            };
            wallet
                .transact(&extra, &payments, &unspent, &context)
                .map_err(wallet_error)?
        };
        self.admission.submit_blocking(tx)
    }

    /// This node's operator key, if it is `operator`: `what` carries the key's proof, which
    /// only its holder can sign.
    fn own_operator_key(&self, operator: &PublicKey, what: &str) -> Result<SecretKey, RpcError> {
        self.operator_key
            .clone()
            .filter(|key| key.public_key() == *operator)
            .ok_or_else(|| {
                invalid_parameter(format!(
                    "operator key {operator} is not this node's: {what} carries the operator key's proof, \
                     so run it on the masternode that holds the key (masternodestatus shows it)"
                ))
            })
    }
}

fn invalid_parameter(message: String) -> RpcError {
    RpcError::new(codes::INVALID_PARAMETER, message)
}

fn parse_service(text: &str) -> Result<std::net::SocketAddr, RpcError> {
    text.parse::<std::net::SocketAddr>()
        .map(|s| std::net::SocketAddr::new(s.ip().to_canonical(), s.port()))
        .map_err(|_| invalid_parameter(format!("address must be IP:port, got {text:?}")))
}

fn parse_key(text: &str) -> Result<PublicKey, RpcError> {
    text.parse()
        .map_err(|_| invalid_parameter(format!("{text:?} is not a public key (64 hex characters)")))
}

impl ChainBackend for NodeBackend {
    fn chain_info(&self) -> Result<ChainInfo, RpcError> {
        let tip = self.store.tip().map_err(internal)?;
        let waiting = self.mempool()?.len();
        Ok(ChainInfo {
            network: self.genesis.params.network,
            blocks: tip.height,
            best_block: tip.hash,
            time_ms: tip.timestamp_ms,
            genesis: self.genesis.hash(),
            mempool_transactions: waiting,
        })
    }

    fn block_hash(&self, height: u64) -> Result<Option<BlockHash>, RpcError> {
        Ok(self.store.header(height).map_err(internal)?.map(|h| h.hash()))
    }

    fn header_by_hash(&self, hash: &BlockHash) -> Result<Option<BlockHeader>, RpcError> {
        match self.store.height_of(hash).map_err(internal)? {
            Some(height) => self.store.header(height).map_err(internal),
            None => Ok(None),
        }
    }

    fn storage_info(&self) -> Result<Option<StorageInfo>, RpcError> {
        let state = self.store.prune_state().map_err(internal)?;
        Ok(Some(StorageInfo {
            block_bytes: state.block_bytes,
            prune_target: self.store.prune_target(),
            pruned_below: state.pruned_below,
        }))
    }

    fn dump_txoutset(&self, path: &str) -> Result<StateDump, RpcError> {
        let path = self.data_dir.join(path);
        let mut tip = self.tip.clone();
        let wait = |height: u64, timeout: Duration| {
            let reached = self.runtime.block_on(tokio::time::timeout(
                timeout,
                tip.wait_for(|hello| hello.best_height >= height),
            ));
            matches!(reached, Ok(Ok(_)))
        };
        let info = crate::state_file::dump(&self.store, &self.genesis, &path, wait)
            .map_err(|e| RpcError::new(codes::MISC_ERROR, format!("{e:#}")))?;
        Ok(StateDump {
            coins: info.coins,
            height: info.tip.height,
            hash: info.tip.hash,
            commitment: info.commitment,
            state_hash: info.state_hash,
            path: path.display().to_string(),
        })
    }

    fn prune(&self, height: u64) -> Result<u64, RpcError> {
        let state = self.store.prune_below(height).map_err(index_error)?;
        Ok(state.pruned_below.saturating_sub(1))
    }

    fn block(&self, hash: &BlockHash) -> Result<Option<(Block, u64)>, RpcError> {
        let block = self.store.block_by_hash(hash).map_err(internal)?;
        Ok(block.map(|b| {
            let height = b.header.height;
            (b, height)
        }))
    }

    fn certificate(&self, height: u64) -> Result<Option<CommitCertificate>, RpcError> {
        self.store.certificate(height).map_err(internal)
    }

    fn header(&self, height: u64) -> Result<Option<BlockHeader>, RpcError> {
        self.store.header(height).map_err(internal)
    }

    fn genesis_trust(&self) -> Result<TrustedState, RpcError> {
        Ok(TrustedState::from_genesis(&self.genesis))
    }

    fn voting_set_changes(&self, after: u64, upto: u64) -> Result<Vec<(u64, MasternodeSet)>, RpcError> {
        self.store.voting_set_changes(after, upto).map_err(index_error)
    }

    fn voting_set_at(&self, height: u64) -> Result<Option<MasternodeSet>, RpcError> {
        self.store.voting_set_at(height).map_err(index_error)
    }

    fn block_feed(&self) -> Option<BlockFeed> {
        Some(BlockFeed {
            network: self.genesis.params.network,
            blocks: self.notifier.blocks(),
        })
    }

    fn spent_coins(&self, height: u64) -> Result<Option<Vec<TxOutput>>, RpcError> {
        Ok(self
            .store
            .spent_coins(height)
            .map_err(internal)?
            .map(|coins| coins.into_iter().map(|coin| coin.output).collect()))
    }

    fn transaction(&self, txid: &TxId) -> Result<Option<(Transaction, Option<u64>)>, RpcError> {
        if let Some(tx) = self.mempool()?.get(txid) {
            return Ok(Some(((*tx).clone(), None)));
        }
        Ok(self
            .store
            .transaction(txid)
            .map_err(internal)?
            .map(|(tx, height)| (tx, Some(height))))
    }

    fn wait_for_transaction(&self, txid: &TxId, timeout: Duration) -> Result<Option<u64>, RpcError> {
        let deadline = Instant::now() + timeout;
        let mut tip = self.tip.clone();
        loop {
            // Marked seen before the lookup, so a block applied in between wakes the wait.
            tip.borrow_and_update();
            if let Some((height, _)) = self.store.tx_location(txid).map_err(internal)? {
                return Ok(Some(height));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let changed = self.runtime.block_on(tokio::time::timeout(left, tip.changed()));
            if matches!(changed, Ok(Err(_))) {
                // The node is stopping.
                return Ok(None);
            }
        }
    }

    fn txout(&self, outpoint: &OutPoint, include_mempool: bool) -> Result<Option<TxOutInfo>, RpcError> {
        let mempool = self.mempool()?;
        if include_mempool && mempool.spender_of(outpoint).is_some() {
            return Ok(None);
        }
        let snapshot = self.store.snapshot().map_err(internal)?;
        if let Some(utxo) = snapshot.utxo(outpoint).map_err(internal)? {
            return Ok(Some(TxOutInfo {
                value: utxo.output.amount.units(),
                address: utxo.output.address,
                height: Some(utxo.height),
                reward: utxo.is_reward,
            }));
        }
        if !include_mempool {
            return Ok(None);
        }
        let index = usize::try_from(outpoint.index).unwrap_or(usize::MAX);
        Ok(mempool.get(&outpoint.txid).and_then(|tx| {
            tx.outputs.get(index).map(|output| TxOutInfo {
                value: output.amount.units(),
                address: output.address,
                height: None,
                reward: false,
            })
        }))
    }

    fn utxo_set(&self) -> Result<UtxoSetSummary, RpcError> {
        let info = self.store.utxo_set_info().map_err(internal)?;
        Ok(UtxoSetSummary {
            height: info.height,
            best_block: info.best_block,
            count: info.count,
            total: info.total.units(),
            commitment: info.commitment,
        })
    }

    fn address_deltas(&self, address: &AddressPayload, from: u64, to: u64) -> Result<Vec<AddressDeltaInfo>, RpcError> {
        let (deltas, _) = self.store.address_deltas(address, from, to).map_err(index_error)?;
        Ok(deltas
            .into_iter()
            .map(|d| AddressDeltaInfo {
                address: d.address,
                txid: d.txid,
                index: d.index,
                spent: d.spent,
                amount: d.amount.units(),
                height: d.height,
                block_index: d.block_index,
            })
            .collect())
    }

    fn address_utxos(&self, address: &AddressPayload) -> Result<Vec<AddressUtxoInfo>, RpcError> {
        let (utxos, _) = self.store.address_utxos(address).map_err(index_error)?;
        Ok(utxos
            .into_iter()
            .map(|u| AddressUtxoInfo {
                address: u.address,
                outpoint: u.outpoint,
                amount: u.amount.units(),
                height: u.height,
            })
            .collect())
    }

    fn masternodes(&self) -> Result<Vec<MasternodeSummary>, RpcError> {
        let connected: Vec<PublicKey> = self
            .runtime
            .block_on(self.network.peers())
            .into_iter()
            .map(|p| p.peer)
            .collect();
        let network = self.genesis.params.network;
        let list = self.list()?;
        let tip = self.store.tip().map_err(internal)?.height;
        Ok(list
            .entries()
            .iter()
            .map(|m| MasternodeSummary {
                id: m.id.to_string(),
                operator: m.operator.to_string(),
                owner: m.owner.to_string(),
                tier: m.tier.to_string(),
                status: m.status.name().to_owned(),
                power: if matches!(m.status, Status::Active { .. }) {
                    m.tier.weight()
                } else {
                    0
                },
                collateral: m.collateral.map(|c| c.to_string()),
                reward_address: Address {
                    network,
                    payload: m.reward_address,
                }
                .to_string(),
                service: m.service.map(|s| s.to_string()),
                registered_height: m.registered_height,
                last_paid: m.last_paid,
                pose_penalty: m.penalty,
                banned_until: m.banned_until(tip),
                connected: connected.contains(&m.operator) || self.operator == Some(m.operator),
            })
            .collect())
    }

    fn own_masternode(&self) -> Option<String> {
        self.operator.map(|key| key.to_string())
    }

    fn consensus(&self) -> ConsensusStatus {
        self.consensus.borrow().clone()
    }
}

impl MempoolBackend for NodeBackend {
    fn mempool_txids(&self) -> Result<Vec<TxId>, RpcError> {
        Ok(self.mempool()?.txids())
    }

    fn mempool_info(&self) -> Result<MempoolInfo, RpcError> {
        let mut mempool = self.mempool()?;
        Ok(MempoolInfo {
            size: mempool.len(),
            bytes: mempool.total_size(),
            usage: mempool.usage(),
            max_usage: mempool.config().max_bytes,
            min_fee_rate: mempool.min_fee_rate(crate::host::now_ms()).0,
        })
    }

    fn mempool_entry(&self, txid: &TxId) -> Result<Option<MempoolEntry>, RpcError> {
        Ok(self.mempool()?.info(txid).map(|info| MempoolEntry {
            size: info.size,
            fee: info.fee.units(),
            time_ms: info.time_ms,
            ancestors: info.ancestors,
            descendants: info.descendants,
        }))
    }

    fn test_accept(&self, tx: &Transaction) -> Result<Result<(usize, u64), String>, RpcError> {
        if self.store.tx_location(&tx.txid()).map_err(internal)?.is_some() {
            return Ok(Err("txn-already-known".to_owned()));
        }
        let snapshot = self.store.snapshot().map_err(internal)?;
        Ok(match self.mempool()?.check(tx, &snapshot, crate::host::now_ms()) {
            Ok((_, size, fee)) => Ok((size, fee.units())),
            Err(error) => Err(error.code().to_owned()),
        })
    }

    fn fee_estimate(&self, blocks: u32) -> Result<u64, RpcError> {
        let params = &self.genesis.params;
        let blocks = usize::try_from(blocks).unwrap_or(usize::MAX);
        // A block also holds its header and reward: what proposals leave for transactions
        // is a little less, which a conservative estimate can ignore.
        let rate = self.mempool()?.fee_estimate(
            blocks,
            params.max_block_bytes,
            params.max_block_txs.saturating_sub(1),
            crate::host::now_ms(),
        );
        Ok(rate.0)
    }

    fn submit_transaction(&self, tx: Transaction) -> Pending<TxId> {
        let admission = self.admission.clone();
        Box::pin(async move { admission.submit_async(tx).await })
    }
}

impl NetworkBackend for NodeBackend {
    fn peers(&self) -> Result<Vec<PeerSummary>, RpcError> {
        // Methods run on blocking threads, where waiting on the runtime is allowed.
        let peers = self.runtime.block_on(self.network.peers());
        Ok(peers
            .into_iter()
            .map(|p| PeerSummary {
                id: p.peer.to_string(),
                address: p.address,
                inbound: !p.outbound,
                starting_height: p.hello.best_height,
                masternode: p.hello.masternode,
            })
            .collect())
    }

    fn add_node(&self, address: std::net::SocketAddr) {
        self.runtime.block_on(self.network.add_address(address));
    }

    fn ban(&self, target: &str, seconds: u64) -> Result<(), RpcError> {
        let target = ban_target(target)?;
        self.runtime
            .block_on(self.network.ban(target, Duration::from_secs(seconds)));
        Ok(())
    }

    fn unban(&self, target: &str) -> Result<bool, RpcError> {
        let target = ban_target(target)?;
        Ok(self.runtime.block_on(self.network.unban(target)))
    }

    fn bans(&self) -> Vec<(String, u64)> {
        self.runtime
            .block_on(self.network.bans())
            .into_iter()
            .map(|(target, left)| (target.to_string(), left.as_secs()))
            .collect()
    }

    fn stop(&self) {
        self.shutdown.cancel();
    }

    fn zmq_notifications(&self) -> Vec<(String, String)> {
        self.notifier.zmq_notifications()
    }
}
