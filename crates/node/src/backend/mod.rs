//! The node's side of the JSON-RPC API: chain and UTXO queries from the store, the mempool,
//! peers from the network service, the consensus position from the host, and transactions
//! into the mempool and out to peers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use timecoin_chain::{Genesis, MasternodeList, Status, UtxoView};
use timecoin_mempool::Mempool;
use timecoin_network::{BanTarget, Hello, NetworkHandle};
use timecoin_primitives::{
    Address, AddressPayload, Amount, Block, BlockHash, CommitCertificate, OutPoint, Payload, PublicKey, Registration,
    Revocation, SecretKey, Tier, Transaction, TxId, Unlock, Update,
};
use timecoin_rpc::{
    ChainBackend, ChainInfo, ConsensusStatus, LockedCollateral, MasternodeSummary, MempoolBackend, MempoolEntry,
    MempoolInfo, NetworkBackend, PeerSummary, Pending, RegisterRequest, RpcError, TxOutInfo, UpdateRequest,
    UtxoSetSummary, WalletBackend, WalletBalances, WalletCoinInfo, WalletTxInfo, codes,
};
use timecoin_wallet::{Chain, SendContext};

use crate::admission::Admission;
use crate::wallet::{NodeWallet, Transact, WalletError};
use timecoin_storage::Store;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

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
}

fn wallet_error(error: WalletError) -> RpcError {
    let code = match error {
        WalletError::Locked => codes::WALLET_UNLOCK_NEEDED,
        WalletError::WrongPassphrase => codes::WALLET_PASSPHRASE_INCORRECT,
        WalletError::NotEncrypted | WalletError::AlreadyEncrypted => codes::WALLET_WRONG_ENC_STATE,
        WalletError::Funds(_) => codes::WALLET_INSUFFICIENT_FUNDS,
        WalletError::Other(_) => codes::WALLET_ERROR,
    };
    RpcError::new(code, error.to_string())
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
        Ok(self.store.block_by_height(height).map_err(internal)?.map(|b| b.hash()))
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
}

impl WalletBackend for NodeBackend {
    fn wallet_new_address(&self, change: bool) -> Result<String, RpcError> {
        let chain = if change { Chain::Change } else { Chain::Receive };
        Ok(self.wallet()?.new_address(chain).map_err(wallet_error)?.to_string())
    }

    fn wallet_balances(&self) -> Result<WalletBalances, RpcError> {
        let list = self.list()?;
        let wallet = self.wallet()?;
        let (available, pending, locked) = wallet.balances(&*self.mempool()?, &list);
        Ok(WalletBalances {
            available: available.units(),
            pending: pending.units(),
            locked: locked.units(),
        })
    }

    fn wallet_unspent(&self) -> Result<Vec<WalletCoinInfo>, RpcError> {
        let list = self.list()?;
        let wallet = self.wallet()?;
        let network = self.genesis.params.network;
        Ok(wallet
            .unspent(&*self.mempool()?, &list)
            .into_iter()
            .map(|(outpoint, coin)| WalletCoinInfo {
                outpoint,
                address: Address {
                    network,
                    payload: coin.address,
                }
                .to_string(),
                amount: coin.value.units(),
                height: coin.height,
            })
            .collect())
    }

    fn wallet_history(&self) -> Result<Vec<WalletTxInfo>, RpcError> {
        Ok(self
            .wallet()?
            .history()
            .iter()
            .map(|entry| WalletTxInfo {
                txid: entry.txid,
                height: entry.height,
                received: entry.received.units(),
                spent: entry.spent.units(),
            })
            .collect())
    }

    fn wallet_send(&self, payments: Vec<(String, u64)>) -> Result<TxId, RpcError> {
        let mut parsed = Vec::with_capacity(payments.len());
        for (text, units) in payments {
            parsed.push((self.address(&text)?, Amount::from_units(units)));
        }
        self.wallet_transact(true, |_| Ok((Transact::default(), parsed)))
    }

    fn wallet_masternode_register(&self, request: RegisterRequest) -> Result<TxId, RpcError> {
        let tier: Tier = request.tier.parse().map_err(|e| invalid_parameter(format!("{e}")))?;
        if tier == Tier::Free {
            return Err(invalid_parameter(
                "The free tier has no collateral and no vote: a free masternode runs without registering".to_owned(),
            ));
        }
        let operator = parse_key(&request.operator)?;
        let operator_key = self.own_operator_key(&operator, "a registration")?;
        let service = parse_service(&request.service)?;
        let reward = request.reward_address.as_deref().map(|a| self.address(a)).transpose()?;
        self.wallet_transact(true, |wallet| {
            let (collateral_address, collateral_key) = wallet.new_key().map_err(wallet_error)?;
            let (_, owner_key) = wallet.new_key().map_err(wallet_error)?;
            let reward = match reward {
                Some(address) => address,
                None => wallet.new_address(Chain::Receive).map_err(wallet_error)?,
            };
            // The collateral is the first output: the registration locks its own output 0.
            let payload = Payload::Register(Registration {
                tier,
                collateral: OutPoint {
                    txid: TxId::default(),
                    index: 0,
                },
                collateral_key: collateral_key.public_key(),
                owner: owner_key.public_key(),
                operator,
                reward_address: reward.payload,
                service,
                operator_proof: Default::default(),
                signature: Default::default(),
            });
            let extra = Transact {
                payload: Some(payload),
                payload_key: Some(collateral_key),
                operator_key: Some(operator_key),
                ..Transact::default()
            };
            Ok((extra, vec![(collateral_address, tier.collateral())]))
        })
    }

    fn wallet_masternode_update(&self, request: UpdateRequest) -> Result<TxId, RpcError> {
        let list = self.list()?;
        let entry = *self.masternode(&list, &request.id)?;
        let operator = request
            .operator
            .as_deref()
            .map(parse_key)
            .transpose()?
            .unwrap_or(entry.operator);
        let operator_key = if operator == entry.operator {
            None
        } else {
            Some(self.own_operator_key(&operator, "an update that changes the operator key")?)
        };
        let service = match (request.service.as_deref(), entry.service) {
            (Some(text), _) => parse_service(text)?,
            (None, Some(service)) => service,
            (None, None) => {
                return Err(invalid_parameter(
                    "this masternode has no address yet: give one".to_owned(),
                ));
            }
        };
        let reward = match request.reward_address.as_deref() {
            Some(text) => self.address(text)?.payload,
            None => entry.reward_address,
        };
        self.wallet_transact(true, |wallet| {
            let owner_key = wallet
                .key_for(&AddressPayload::from_public_key(&entry.owner))
                .map_err(|e| match e {
                    WalletError::Locked => wallet_error(e),
                    _ => RpcError::new(
                        codes::WALLET_ERROR,
                        format!("The owner key of masternode {} is not in this wallet", entry.id),
                    ),
                })?;
            let payload = Payload::Update(Update {
                masternode: entry.id,
                operator,
                reward_address: reward,
                service,
                operator_proof: None,
                signature: Default::default(),
            });
            let extra = Transact {
                payload: Some(payload),
                payload_key: Some(owner_key),
                operator_key,
                ..Transact::default()
            };
            Ok((extra, Vec::new()))
        })
    }

    fn wallet_masternode_revoke(&self, id: Option<String>) -> Result<TxId, RpcError> {
        let key = self.operator_key.clone().ok_or_else(|| {
            RpcError::new(
                codes::INTERNAL_ERROR,
                "This node is not a masternode: a revocation is signed by the operator key",
            )
        })?;
        let list = self.list()?;
        let entry = match id.as_deref() {
            Some(text) => *self.masternode(&list, text)?,
            None => *list
                .by_operator(&key.public_key())
                .ok_or_else(|| invalid_parameter("This node's operator key is not registered".to_owned()))?,
        };
        if entry.operator != key.public_key() {
            return Err(invalid_parameter(format!(
                "Masternode {} is operated by {}, not by this node",
                entry.id, entry.operator
            )));
        }
        self.wallet_transact(true, |_| {
            let extra = Transact {
                payload: Some(Payload::Revoke(Revocation {
                    masternode: entry.id,
                    signature: Default::default(),
                })),
                payload_key: Some(key),
                ..Transact::default()
            };
            Ok((extra, Vec::new()))
        })
    }

    fn wallet_masternode_unlock(&self, id: &str, address: Option<String>) -> Result<TxId, RpcError> {
        let list = self.list()?;
        let entry = *self.masternode(&list, id)?;
        let collateral = entry.collateral.ok_or_else(|| {
            invalid_parameter(format!(
                "Masternode {} is written in the genesis block and has no collateral",
                entry.id
            ))
        })?;
        let destination = address.as_deref().map(|a| self.address(a)).transpose()?;
        // The collateral pays its own fee; the rest goes to the destination.
        self.wallet_transact(false, |wallet| {
            let change_to = match destination {
                Some(address) => address.payload,
                None => wallet.new_address(Chain::Receive).map_err(wallet_error)?.payload,
            };
            let extra = Transact {
                required: vec![collateral],
                payload: Some(Payload::Unlock(Unlock { masternode: entry.id })),
                payload_key: None,
                operator_key: None,
                change_to: Some(change_to),
            };
            Ok((extra, Vec::new()))
        })
    }

    fn wallet_locked_collaterals(&self) -> Result<Vec<LockedCollateral>, RpcError> {
        let list = self.list()?;
        let wallet = self.wallet()?;
        let tip = self.store.tip().map_err(internal)?.height;
        Ok(wallet
            .collaterals(&list)
            .into_iter()
            .map(|(outpoint, coin, entry)| LockedCollateral {
                outpoint: outpoint.to_string(),
                amount: coin.value.units(),
                masternode: entry.id.to_string(),
                status: entry.status.name().to_owned(),
                banned_until: entry.banned_until(tip),
            })
            .collect())
    }

    fn wallet_passphrase(&self, passphrase: &str, seconds: u64) -> Result<(), RpcError> {
        self.wallet()?.unlock(passphrase, seconds).map_err(wallet_error)
    }

    fn wallet_lock(&self) -> Result<(), RpcError> {
        self.wallet()?.lock().map_err(wallet_error)
    }

    fn wallet_encrypt(&self, passphrase: &str) -> Result<(), RpcError> {
        self.wallet()?.encrypt(passphrase).map_err(wallet_error)
    }

    fn wallet_mnemonic(&self) -> Result<String, RpcError> {
        self.wallet()?.recovery_phrase().map_err(wallet_error)
    }

    fn wallet_sign(&self, tx: &mut Transaction) -> Result<Vec<String>, RpcError> {
        let snapshot = self.store.snapshot().map_err(internal)?;
        let mut amounts = Vec::with_capacity(tx.inputs.len());
        for input in &tx.inputs {
            amounts.push(
                snapshot
                    .utxo(&input.prevout)
                    .map_err(internal)?
                    .map(|u| u.output.amount),
            );
        }
        self.wallet()?
            .sign(tx, &amounts, self.genesis.hash())
            .map_err(wallet_error)
    }
}
