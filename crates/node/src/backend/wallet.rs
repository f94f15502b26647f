//! The wallet methods of the node's API: the node's wallet, over the store, the mempool and
//! the masternode list.

use timecoin_primitives::{
    Address, AddressPayload, Amount, InputSignError, OutPoint, Payload, Registration, Revocation, Tier, Transaction,
    TxId, TxOutput, Unlock, Update,
};
use timecoin_rpc::{
    LockedCollateral, OutputOwner, RegisterRequest, RpcError, UpdateRequest, WalletBackend, WalletBalances,
    WalletCoinInfo, WalletHistory, WalletTxBlock, WalletTxInfo, WalletTxOutput, codes,
};
use timecoin_wallet::Chain;

use super::{NodeBackend, internal, invalid_parameter, parse_key, parse_service, wallet_error};
use crate::wallet::{HistoryEntry, Owner, Transact, WalletError};

impl WalletBackend for NodeBackend {
    fn wallet_new_address(&self, change: bool) -> Result<String, RpcError> {
        let chain = if change { Chain::Change } else { Chain::Receive };
        Ok(self.wallet()?.new_address(chain).map_err(wallet_error)?.to_string())
    }

    fn wallet_balances(&self) -> Result<WalletBalances, RpcError> {
        let list = self.list()?;
        let wallet = self.wallet()?;
        let mempool = self.mempool()?;
        let (available, pending, locked) = wallet.balances(&mempool, &list);
        Ok(WalletBalances {
            available: available.units(),
            pending: pending.units(),
            locked: locked.units(),
            watch_only: wallet.watches_any().then(|| wallet.watched_balance(&mempool).units()),
        })
    }

    fn wallet_unspent(&self) -> Result<Vec<WalletCoinInfo>, RpcError> {
        let list = self.list()?;
        let wallet = self.wallet()?;
        let network = self.genesis.params.network;
        let mempool = self.mempool()?;
        let mut coins = wallet.unspent(&mempool, &list);
        coins.extend(wallet.watched_coins(&mempool));
        Ok(coins
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
                spendable: !coin.watch_only,
            })
            .collect())
    }

    fn wallet_history(&self) -> Result<WalletHistory, RpcError> {
        let network = self.genesis.params.network;
        let wallet = self.wallet()?;
        let pending = wallet.pending(&*self.mempool()?);
        let info = |entry: &HistoryEntry| WalletTxInfo {
            txid: entry.txid,
            block: entry.block.map(|b| WalletTxBlock {
                height: b.height,
                hash: b.hash,
                time_ms: b.time_ms,
                index: b.index,
            }),
            time_ms: entry.time_ms,
            spent: entry.spent.units(),
            fee: entry.fee.map(Amount::units),
            reward: entry.reward,
            outputs: entry
                .outputs
                .iter()
                .map(|o| WalletTxOutput {
                    address: Address {
                        network,
                        payload: o.address,
                    }
                    .to_string(),
                    amount: o.amount.units(),
                    owner: match o.owner {
                        Some(Owner::Key(Chain::Receive, _)) => OutputOwner::Receive,
                        Some(Owner::Key(Chain::Change, _)) => OutputOwner::Change,
                        Some(Owner::Watched) => OutputOwner::WatchOnly,
                        None => OutputOwner::Other,
                    },
                })
                .collect(),
            spent_watched: entry.spent_watched.units(),
        };
        Ok(WalletHistory {
            tip: wallet.tip().unwrap_or(0),
            transactions: wallet.history().iter().chain(&pending).map(info).collect(),
        })
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

    fn wallet_import_address(&self, address: &str, rescan: bool) -> Result<(), RpcError> {
        let address = self.address(address)?;
        let wallet = self.wallet.as_ref().ok_or_else(|| {
            RpcError::new(
                codes::WALLET_NOT_FOUND,
                "No wallet is loaded ([wallet] enabled = false)",
            )
        })?;
        crate::wallet::import_address(wallet, &self.store, address.payload, rescan).map_err(wallet_error)
    }

    fn wallet_backup(&self, destination: &str) -> Result<(), RpcError> {
        let (target, content) = self
            .wallet()?
            .backup(std::path::Path::new(destination))
            .map_err(wallet_error)?;
        content
            .save(&target)
            .map_err(|e| RpcError::new(codes::WALLET_ERROR, format!("Error: Wallet backup failed: {e}")))
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

    fn wallet_sign(
        &self,
        tx: &mut Transaction,
        coins: &[Option<TxOutput>],
    ) -> Result<Vec<(usize, InputSignError)>, RpcError> {
        let keys = self.wallet()?.signing_keys(coins).map_err(wallet_error)?;
        Ok(timecoin_primitives::sign_inputs(
            tx,
            &self.genesis.hash(),
            coins,
            |address| keys.get(address).cloned(),
        ))
    }

    fn wallet_lock_coins(&self, unlock: bool, outpoints: Option<Vec<OutPoint>>) -> Result<(), RpcError> {
        let mut wallet = self.wallet()?;
        match outpoints {
            Some(outpoints) => wallet.lock_coins(unlock, &outpoints).map_err(wallet_error),
            None => {
                wallet.unlock_all();
                Ok(())
            }
        }
    }

    fn wallet_locked_coins(&self) -> Result<Vec<OutPoint>, RpcError> {
        Ok(self.wallet()?.locked_coins())
    }

    fn wallet_receive_addresses(&self) -> Result<Vec<AddressPayload>, RpcError> {
        Ok(self.wallet()?.receive_addresses())
    }

    fn wallet_is_mine(&self, address: &AddressPayload) -> Result<bool, RpcError> {
        let wallet = self.wallet()?;
        Ok(wallet.is_mine(address) || wallet.watches(address))
    }

    fn wallet_sign_message(&self, address: &AddressPayload, message: &str) -> Result<Vec<u8>, RpcError> {
        let proof = self.wallet()?.sign_message(address, message).map_err(wallet_error)?;
        Ok(proof.to_vec())
    }
}
