//! TimeCoin's JSON-RPC API, Bitcoin Core style: method names, parameters, result fields and
//! error codes follow Bitcoin Core where the concept exists.
//!
//! The server knows nothing of storage or the mempool: the node implements [`Backend`], and
//! every method runs on a blocking thread because backends read the store.
//!
//! Every request is authenticated ([`auth`]: the cookie file and `rpcauth` users, HTTP
//! Basic) and bounded ([`ServeOptions`]); JSON-RPC 2.0 and 1.0-style requests and batches
//! are accepted. The methods served are exactly those of [`methods::METHODS`], which also
//! drives `help` and the command-line client.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod auth;
mod batch;
pub mod client;
mod gate;
pub mod methods;

use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::server::{BatchRequestConfig, RpcModule, Server, ServerConfig, ServerHandle};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde_json::{Value, json};
use timecoin_primitives::{
    Address, AddressPayload, Block, BlockHash, BlockHeader, CommitCertificate, Decode, Encode, Hash256, Network,
    OutPoint, Transaction, TxId,
};

pub use auth::{Credentials, RpcAuth};
pub use client::{Client, ClientError};
use gate::GateLayer;

/// Bitcoin Core's error codes, where one fits.
pub mod codes {
    /// Invalid, missing or duplicate parameter.
    pub const INVALID_PARAMETER: i32 = -8;
    /// Invalid address or key, or an unknown block or transaction.
    pub const INVALID_ADDRESS_OR_KEY: i32 = -5;
    /// A transaction or block failed to decode.
    pub const DESERIALIZATION_ERROR: i32 = -22;
    /// A transaction was rejected by the network rules.
    pub const VERIFY_REJECTED: i32 = -26;
    /// A transaction is already in the chain.
    pub const VERIFY_ALREADY_IN_CHAIN: i32 = -27;
    /// An internal error.
    pub const INTERNAL_ERROR: i32 = -32603;
    /// Unbanning something that was not banned.
    pub const CLIENT_NODE_NOT_BANNED: i32 = -30;
    /// A wallet error.
    pub const WALLET_ERROR: i32 = -4;
    /// An amount out of range or badly written.
    pub const INVALID_AMOUNT: i32 = -3;
    /// Not enough funds in the wallet.
    pub const WALLET_INSUFFICIENT_FUNDS: i32 = -6;
    /// The wallet must be unlocked first.
    pub const WALLET_UNLOCK_NEEDED: i32 = -13;
    /// The wallet passphrase is wrong.
    pub const WALLET_PASSPHRASE_INCORRECT: i32 = -14;
    /// The command does not fit the wallet's encryption state.
    pub const WALLET_WRONG_ENC_STATE: i32 = -15;
    /// No wallet is loaded.
    pub const WALLET_NOT_FOUND: i32 = -18;
}

/// An answer a backend gives later (without holding a thread while it waits).
pub type Pending<T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, RpcError>> + Send>>;

/// An error a backend reports: a code from [`codes`] and a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct RpcError {
    /// The code.
    pub code: i32,
    /// What went wrong and what to do.
    pub message: String,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: i32, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
        }
    }
}

impl From<RpcError> for ErrorObjectOwned {
    fn from(error: RpcError) -> Self {
        ErrorObjectOwned::owned(error.code, error.message, None::<()>)
    }
}

/// The chain's state as `getblockchaininfo` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInfo {
    /// The network.
    pub network: Network,
    /// The tip's height.
    pub blocks: u64,
    /// The tip's hash.
    pub best_block: BlockHash,
    /// The tip's time, milliseconds since the epoch.
    pub time_ms: u64,
    /// The genesis hash.
    pub genesis: BlockHash,
    /// Transactions waiting in the mempool.
    pub mempool_transactions: usize,
}

/// The mempool as `getmempoolinfo` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MempoolInfo {
    /// Transactions waiting.
    pub size: usize,
    /// Their encoded bytes.
    pub bytes: usize,
    /// Estimated memory they use.
    pub usage: usize,
    /// The memory limit.
    pub max_usage: usize,
    /// The lowest fee rate admitted now, in units per 1,000 bytes.
    pub min_fee_rate: u64,
}

/// A connected peer as `getpeerinfo` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSummary {
    /// Its identity key.
    pub id: String,
    /// Its address.
    pub address: SocketAddr,
    /// Whether it dialled us.
    pub inbound: bool,
    /// Its best height when it connected.
    pub starting_height: u64,
    /// Whether it says it is a masternode.
    pub masternode: bool,
}

/// An unspent output as `gettxout` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxOutInfo {
    /// Its value in units.
    pub value: u64,
    /// Who may spend it.
    pub address: AddressPayload,
    /// The height of the block that created it, `None` while in the mempool.
    pub height: Option<u64>,
    /// Whether a reward (or the genesis) transaction created it.
    pub reward: bool,
}

/// The UTXO set as `gettxoutsetinfo` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UtxoSetSummary {
    /// The tip's height.
    pub height: u64,
    /// The tip's hash.
    pub best_block: BlockHash,
    /// Unspent outputs.
    pub count: u64,
    /// Their total value in units.
    pub total: u64,
    /// The incremental commitment to the whole set.
    pub commitment: Hash256,
}

/// A mempool entry as `getmempoolentry` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MempoolEntry {
    /// Encoded size.
    pub size: usize,
    /// Fee in units.
    pub fee: u64,
    /// When it entered, milliseconds since the epoch.
    pub time_ms: u64,
    /// In-pool ancestors, itself excluded.
    pub ancestors: usize,
    /// In-pool descendants, itself excluded.
    pub descendants: usize,
}

/// The consensus engine's position, as `getconsensusinfo` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsensusStatus {
    /// The height being decided.
    pub height: u64,
    /// The round.
    pub round: u32,
    /// The step, lower case (`propose`, `prevote`, …).
    pub step: String,
    /// Whether the node is catching up (it does not vote meanwhile).
    pub syncing: bool,
}

/// A masternode as `masternodelist` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasternodeSummary {
    /// Its id: the registration txid.
    pub id: String,
    /// Its operator key.
    pub operator: String,
    /// Its owner key.
    pub owner: String,
    /// Its tier.
    pub tier: String,
    /// pending, active, pose-banned, banned or revoked.
    pub status: String,
    /// Its voting power now (0 unless active).
    pub power: u64,
    /// Its collateral outpoint (none for genesis masternodes).
    pub collateral: Option<String>,
    /// Where its rewards go.
    pub reward_address: String,
    /// Its announced P2P address.
    pub service: Option<String>,
    /// The height of its registration (0 for genesis masternodes).
    pub registered_height: u64,
    /// The last height whose reward paid it.
    pub last_paid: Option<u64>,
    /// Its proof-of-service penalty.
    pub pose_penalty: u32,
    /// When a double-signing ban ends.
    pub banned_until: Option<u64>,
    /// Whether this node is connected to it (or is it).
    pub connected: bool,
}

/// A wallet coin locked as a masternode's collateral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedCollateral {
    /// The coin.
    pub outpoint: String,
    /// Its value in units.
    pub amount: u64,
    /// The masternode's id.
    pub masternode: String,
    /// The masternode's status.
    pub status: String,
    /// When a double-signing ban ends (the coin stays locked until then).
    pub banned_until: Option<u64>,
}

/// What `masternoderegister` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterRequest {
    /// bronze, silver or gold.
    pub tier: String,
    /// The operator's public key, hex.
    pub operator: String,
    /// The P2P address, IP:port.
    pub service: String,
    /// The reward address (a new wallet address when none).
    pub reward_address: Option<String>,
}

/// What `masternodeupdate` changes (left out: unchanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateRequest {
    /// The masternode's id.
    pub id: String,
    /// A new operator key, hex.
    pub operator: Option<String>,
    /// A new P2P address.
    pub service: Option<String>,
    /// A new reward address.
    pub reward_address: Option<String>,
}

/// The wallet's balances in units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WalletBalances {
    /// Finalized coins not being spent: what can be sent now.
    pub available: u64,
    /// Paid to the wallet by transactions still waiting in the mempool.
    pub pending: u64,
    /// Locked as masternode collateral.
    pub locked: u64,
}

/// A wallet coin as `listunspent` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletCoinInfo {
    /// Where it is.
    pub outpoint: OutPoint,
    /// Its owner.
    pub address: String,
    /// Its value in units.
    pub amount: u64,
    /// The height of its block.
    pub height: u64,
}

/// A wallet transaction as `listtransactions` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletTxInfo {
    /// Its id.
    pub txid: TxId,
    /// The height of its block.
    pub height: u64,
    /// Units paid to the wallet.
    pub received: u64,
    /// Units of the wallet's coins it spent.
    pub spent: u64,
}

fn no_wallet() -> RpcError {
    RpcError::new(
        codes::WALLET_NOT_FOUND,
        "No wallet is loaded ([wallet] enabled = false)",
    )
}

/// What the node provides to the API. Calls may block (they run on blocking threads).
/// The wallet methods answer "no wallet" unless the node has one.
pub trait Backend: Send + Sync + 'static {
    /// A new address of the wallet (a change address if `change`).
    fn wallet_new_address(&self, _change: bool) -> Result<String, RpcError> {
        Err(no_wallet())
    }
    /// The wallet's balances.
    fn wallet_balances(&self) -> Result<WalletBalances, RpcError> {
        Err(no_wallet())
    }
    /// The wallet's spendable coins.
    fn wallet_unspent(&self) -> Result<Vec<WalletCoinInfo>, RpcError> {
        Err(no_wallet())
    }
    /// The wallet's finalized transactions, oldest first.
    fn wallet_history(&self) -> Result<Vec<WalletTxInfo>, RpcError> {
        Err(no_wallet())
    }
    /// Pays `payments` (address, units) from the wallet, submits and relays the
    /// transaction; its txid.
    fn wallet_send(&self, _payments: Vec<(String, u64)>) -> Result<TxId, RpcError> {
        Err(no_wallet())
    }
    /// Unlocks an encrypted wallet for `seconds`.
    fn wallet_passphrase(&self, _passphrase: &str, _seconds: u64) -> Result<(), RpcError> {
        Err(no_wallet())
    }
    /// Locks an encrypted wallet.
    fn wallet_lock(&self) -> Result<(), RpcError> {
        Err(no_wallet())
    }
    /// Encrypts the wallet with `passphrase` (and locks it).
    fn wallet_encrypt(&self, _passphrase: &str) -> Result<(), RpcError> {
        Err(no_wallet())
    }
    /// The wallet's recovery phrase (the wallet must be unlocked).
    fn wallet_mnemonic(&self) -> Result<String, RpcError> {
        Err(no_wallet())
    }
    /// Registers a masternode from the wallet; returns its id.
    fn wallet_masternode_register(&self, _request: RegisterRequest) -> Result<TxId, RpcError> {
        Err(no_wallet())
    }

    /// Updates a masternode whose owner key is the wallet's; returns the txid.
    fn wallet_masternode_update(&self, _request: UpdateRequest) -> Result<TxId, RpcError> {
        Err(no_wallet())
    }

    /// Revokes this node's masternode (or `id`), paid by the wallet; returns the txid.
    fn wallet_masternode_revoke(&self, _id: Option<String>) -> Result<TxId, RpcError> {
        Err(no_wallet())
    }

    /// Spends a masternode's collateral held by the wallet; returns the txid.
    fn wallet_masternode_unlock(&self, _id: &str, _address: Option<String>) -> Result<TxId, RpcError> {
        Err(no_wallet())
    }

    /// The wallet's coins locked as collateral.
    fn wallet_locked_collaterals(&self) -> Result<Vec<LockedCollateral>, RpcError> {
        Err(no_wallet())
    }

    /// Signs the inputs of `tx` that spend the wallet's coins; the errors of inputs left
    /// unsigned.
    fn wallet_sign(&self, _tx: &mut Transaction) -> Result<Vec<String>, RpcError> {
        Err(no_wallet())
    }
    /// The unspent output at `outpoint`; with `include_mempool`, outputs created by waiting
    /// transactions count and those they spend do not.
    fn txout(&self, outpoint: &OutPoint, include_mempool: bool) -> Result<Option<TxOutInfo>, RpcError>;
    /// The UTXO set's summary.
    fn utxo_set(&self) -> Result<UtxoSetSummary, RpcError>;
    /// A transaction from the chain (with its block's height) or the mempool (`None`).
    fn transaction(&self, txid: &TxId) -> Result<Option<(Transaction, Option<u64>)>, RpcError>;
    /// A mempool entry.
    fn mempool_entry(&self, txid: &TxId) -> Result<Option<MempoolEntry>, RpcError>;
    /// Adds a peer address to dial.
    fn add_node(&self, address: SocketAddr);
    /// Waits up to `timeout` for `txid` to be in a finalized block; its height if it is.
    fn wait_for_transaction(&self, txid: &TxId, timeout: std::time::Duration) -> Result<Option<u64>, RpcError>;
    /// The masternode set.
    fn masternodes(&self) -> Result<Vec<MasternodeSummary>, RpcError>;
    /// This node's masternode operator key, if it is one.
    fn own_masternode(&self) -> Option<String>;
    /// The consensus engine's position.
    fn consensus(&self) -> ConsensusStatus;
    /// Whether the mempool would admit `tx` now: its size and fee in units, or the reason
    /// code it would be refused with.
    fn test_accept(&self, tx: &Transaction) -> Result<Result<(usize, u64), String>, RpcError>;
    /// Bans a peer identity (64 hex) or address (IP:port) for `seconds`, disconnecting it.
    fn ban(&self, target: &str, seconds: u64) -> Result<(), RpcError>;
    /// Lifts a ban; whether there was one.
    fn unban(&self, target: &str) -> Result<bool, RpcError>;
    /// The bans in force: (identity or address, seconds left).
    fn bans(&self) -> Vec<(String, u64)>;
    /// The commit certificate of the block at `height`, if finalized.
    fn certificate(&self, height: u64) -> Result<Option<CommitCertificate>, RpcError>;
    /// The txids in the mempool.
    fn mempool_txids(&self) -> Result<Vec<TxId>, RpcError>;
    /// The mempool's state.
    fn mempool_info(&self) -> Result<MempoolInfo, RpcError>;
    /// The connected peers.
    fn peers(&self) -> Result<Vec<PeerSummary>, RpcError>;
    /// Asks the node to stop gracefully.
    fn stop(&self);
    /// The chain's state.
    fn chain_info(&self) -> Result<ChainInfo, RpcError>;
    /// The hash of the block at `height`, if there is one.
    fn block_hash(&self, height: u64) -> Result<Option<BlockHash>, RpcError>;
    /// The block with `hash` and its height, if known.
    fn block(&self, hash: &BlockHash) -> Result<Option<(Block, u64)>, RpcError>;
    /// Admits a transaction to the mempool and relays it; resolves to its txid once judged.
    /// A node queues it, so that concurrent submissions are verified as one batch.
    fn submit_transaction(&self, tx: Transaction) -> Pending<TxId>;
}

fn invalid(message: impl Into<String>) -> ErrorObjectOwned {
    RpcError::new(codes::INVALID_PARAMETER, message).into()
}

fn param<T: serde::de::DeserializeOwned>(params: &Params<'_>, index: usize, name: &str) -> Result<T, ErrorObjectOwned> {
    let values: Vec<Value> = params.parse().unwrap_or_default();
    let value = values
        .get(index)
        .cloned()
        .ok_or_else(|| invalid(format!("missing parameter {name}")))?;
    serde_json::from_value(value).map_err(|e| invalid(format!("parameter {name}: {e}")))
}

fn optional<T: serde::de::DeserializeOwned>(
    params: &Params<'_>,
    index: usize,
    name: &str,
) -> Result<Option<T>, ErrorObjectOwned> {
    let values: Vec<Value> = params.parse().unwrap_or_default();
    match values.get(index) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| invalid(format!("parameter {name}: {e}"))),
    }
}

fn hash_param(params: &Params<'_>, index: usize, name: &str) -> Result<BlockHash, ErrorObjectOwned> {
    let text: String = param(params, index, name)?;
    text.parse()
        .map_err(|e| invalid(format!("parameter {name} must be a 64-character hex hash: {e}")))
}

/// The amount as a JSON number of TIME, as Bitcoin Core shows BTC.
fn time_value(units: u64) -> Value {
    json!(units as f64 / 100_000_000.0)
}

fn transaction_json(tx: &Transaction, network: Network) -> Value {
    json!({
        "txid": tx.txid().to_string(),
        "hash": tx.witness_hash().to_string(),
        "version": tx.version,
        "size": tx.encoded_len(),
        "locktime": tx.lock_time,
        "vin": tx.inputs.iter().map(|i| json!({"txid": i.prevout.txid.to_string(), "vout": i.prevout.index})).collect::<Vec<_>>(),
        "vout": tx.outputs.iter().enumerate().map(|(n, o)| json!({
            "value": time_value(o.amount.units()),
            "n": n,
            "address": Address { network, payload: o.address }.to_string(),
        })).collect::<Vec<_>>(),
        "memo": hex::encode(&tx.memo),
        "masternode": tx.payload.as_ref().map(|p| payload_json(p, network)),
    })
}

/// A masternode payload's fields (its signature left out).
fn payload_json(payload: &timecoin_primitives::Payload, network: Network) -> Value {
    use timecoin_primitives::Payload;
    let address = |payload| Address { network, payload }.to_string();
    match payload {
        Payload::Register(r) => json!({
            "type": "register",
            "tier": r.tier.name(),
            "collateral": r.collateral.to_string(),
            "collateralkey": r.collateral_key.to_string(),
            "owner": r.owner.to_string(),
            "operator": r.operator.to_string(),
            "rewardaddress": address(r.reward_address),
            "address": r.service.to_string(),
        }),
        Payload::Update(u) => json!({
            "type": "update",
            "masternode": u.masternode.to_string(),
            "operator": u.operator.to_string(),
            "rewardaddress": address(u.reward_address),
            "address": u.service.to_string(),
        }),
        Payload::Revoke(r) => json!({"type": "revoke", "masternode": r.masternode.to_string()}),
        Payload::Unlock(u) => json!({"type": "unlock", "masternode": u.masternode.to_string()}),
    }
}

fn block_json(block: &Block, tip: u64, network: Network, verbosity: u8) -> Value {
    let txs: Vec<Value> = if verbosity >= 2 {
        block
            .transactions
            .iter()
            .map(|tx| transaction_json(tx, network))
            .collect()
    } else {
        block
            .transactions
            .iter()
            .map(|tx| json!(tx.txid().to_string()))
            .collect()
    };
    let mut object = header_json(&block.header, tip);
    extend(&mut object, "nTx", json!(block.transactions.len()));
    extend(&mut object, "size", json!(block.encoded_len()));
    extend(&mut object, "tx", json!(txs));
    extend(
        &mut object,
        "lastcommit",
        json!(block.last_commit.as_ref().map(|c| json!({
            "height": c.height,
            "round": c.round,
            "signers": c.signatures.iter().map(|s| s.validator.to_string()).collect::<Vec<_>>(),
        }))),
    );
    extend(
        &mut object,
        "evidence",
        json!(
            block
                .evidence
                .iter()
                .map(|e| json!({"masternode": e.validator().to_string(), "height": e.height()}))
                .collect::<Vec<_>>()
        ),
    );
    object
}

/// Adds a field to a JSON object (nothing happens to any other value).
fn extend(object: &mut Value, key: &str, value: Value) {
    if let Value::Object(map) = object {
        map.insert(key.to_owned(), value);
    }
}

fn header_json(header: &BlockHeader, tip: u64) -> Value {
    json!({
        "hash": header.hash().to_string(),
        "confirmations": tip.saturating_sub(header.height) + 1,
        "height": header.height,
        "version": header.version,
        "merkleroot": header.merkle_root.to_string(),
        "time": header.timestamp_ms / 1_000,
        "time_ms": header.timestamp_ms,
        "previousblockhash": header.prev_hash.to_string(),
        "proposer": header.proposer.to_string(),
        "masternodesethash": header.masternode_set_hash.to_string(),
        "statehash": header.state_hash.to_string(),
        "lastcommithash": header.last_commit_hash.to_string(),
        "evidencehash": header.evidence_hash.to_string(),
    })
}

/// An amount of TIME given as a JSON number (or a decimal string), as Bitcoin Core takes BTC.
fn amount_value(value: &Value, name: &str) -> Result<u64, ErrorObjectOwned> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return Err(invalid(format!("parameter {name}: an amount is a number of TIME"))),
    };
    text.parse::<timecoin_primitives::Amount>()
        .map(|a| a.units())
        .map_err(|e| RpcError::new(codes::INVALID_AMOUNT, format!("Invalid amount {text}: {e}")).into())
}

fn amount_param(params: &Params<'_>, index: usize, name: &str) -> Result<u64, ErrorObjectOwned> {
    let value: Value = param(params, index, name)?;
    amount_value(&value, name)
}

fn masternode_json(m: &MasternodeSummary) -> Value {
    json!({
        "id": m.id,
        "operator": m.operator,
        "owner": m.owner,
        "tier": m.tier,
        "status": m.status,
        "power": m.power,
        "collateral": m.collateral,
        "rewardaddress": m.reward_address,
        "address": m.service,
        "registeredheight": m.registered_height,
        "lastpaidheight": m.last_paid,
        "posepenalty": m.pose_penalty,
        "banneduntil": m.banned_until,
        "connected": m.connected,
    })
}

fn wallet_tx_json(entry: &WalletTxInfo, tip: u64) -> Value {
    let net = i128::from(entry.received) - i128::from(entry.spent);
    json!({
        "txid": entry.txid.to_string(),
        "category": if net >= 0 { "receive" } else { "send" },
        "amount": net as f64 / 100_000_000.0,
        "blockheight": entry.height,
        "confirmations": tip.saturating_sub(entry.height) + 1,
    })
}

fn txid_param(params: &Params<'_>, index: usize) -> Result<TxId, ErrorObjectOwned> {
    let text: String = param(params, index, "txid")?;
    text.parse()
        .map_err(|e| invalid(format!("parameter txid must be a 64-character hex hash: {e}")))
}

/// The process's resident memory in bytes, where the system tells it (Linux).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4_096)
}

fn not_found(what: &str) -> ErrorObjectOwned {
    RpcError::new(codes::INVALID_ADDRESS_OR_KEY, format!("{what} not found")).into()
}

fn decode_hex<T: Decode>(text: &str, what: &str) -> Result<T, ErrorObjectOwned> {
    let bytes = hex::decode(text.trim()).map_err(|_| {
        ErrorObjectOwned::from(RpcError::new(
            codes::DESERIALIZATION_ERROR,
            format!("{what} decode failed: not hex"),
        ))
    })?;
    T::from_bytes(&bytes).map_err(|e| {
        ErrorObjectOwned::from(RpcError::new(
            codes::DESERIALIZATION_ERROR,
            format!("{what} decode failed: {e}"),
        ))
    })
}

/// What every method sees: the backend and when the server started.
struct Context {
    backend: Arc<dyn Backend>,
    started: std::time::Instant,
}

fn build(backend: Arc<dyn Backend>) -> Result<RpcModule<Context>, jsonrpsee::core::RegisterMethodError> {
    let mut module = RpcModule::new(Context {
        backend,
        started: std::time::Instant::now(),
    });
    module.register_blocking_method("getblockchaininfo", |_, context, _| {
        let info = context.backend.chain_info()?;
        Ok::<_, ErrorObjectOwned>(json!({
            "chain": info.network.name(),
            "blocks": info.blocks,
            "bestblockhash": info.best_block.to_string(),
            "time": info.time_ms / 1_000,
            "genesis": info.genesis.to_string(),
            "mempool": info.mempool_transactions,
        }))
    })?;
    module.register_blocking_method("getblockcount", |_, context, _| {
        Ok::<_, ErrorObjectOwned>(context.backend.chain_info()?.blocks)
    })?;
    module.register_blocking_method("getbestblockhash", |_, context, _| {
        Ok::<_, ErrorObjectOwned>(context.backend.chain_info()?.best_block.to_string())
    })?;
    module.register_blocking_method("getblockhash", |params, context, _| {
        let height: u64 = param(&params, 0, "height")?;
        match context.backend.block_hash(height)? {
            Some(hash) => Ok::<_, ErrorObjectOwned>(hash.to_string()),
            None => Err(invalid("Block height out of range")),
        }
    })?;
    module.register_blocking_method("getblock", |params, context, _| {
        let hash = hash_param(&params, 0, "blockhash")?;
        let verbosity: u8 = optional(&params, 1, "verbosity")?.unwrap_or(1);
        if verbosity > 2 {
            return Err(invalid("verbosity must be 0, 1 or 2"));
        }
        let info = context.backend.chain_info()?;
        let (block, _) = context
            .backend
            .block(&hash)?
            .ok_or_else(|| ErrorObjectOwned::from(RpcError::new(codes::INVALID_ADDRESS_OR_KEY, "Block not found")))?;
        if verbosity == 0 {
            return Ok(json!(hex::encode(block.to_bytes())));
        }
        Ok(block_json(&block, info.blocks, info.network, verbosity))
    })?;
    module.register_async_method("sendrawtransaction", |params, context, _| async move {
        let text: String = param(&params, 0, "hexstring")?;
        let tx: Transaction = decode_hex(&text, "TX")?;
        Ok::<_, ErrorObjectOwned>(context.backend.submit_transaction(tx).await?.to_string())
    })?;
    module.register_blocking_method("decoderawtransaction", |params, context, _| {
        let text: String = param(&params, 0, "hexstring")?;
        let tx: Transaction = decode_hex(&text, "TX")?;
        Ok::<_, ErrorObjectOwned>(transaction_json(&tx, context.backend.chain_info()?.network))
    })?;
    module.register_blocking_method("getblockheader", |params, context, _| {
        let hash = hash_param(&params, 0, "blockhash")?;
        let verbose: bool = optional(&params, 1, "verbose")?.unwrap_or(true);
        let tip = context.backend.chain_info()?.blocks;
        let (block, _) = context.backend.block(&hash)?.ok_or_else(|| not_found("Block"))?;
        if !verbose {
            return Ok::<_, ErrorObjectOwned>(json!(hex::encode(block.header.to_bytes())));
        }
        let mut header = header_json(&block.header, tip);
        extend(&mut header, "nTx", json!(block.transactions.len()));
        Ok(header)
    })?;
    module.register_blocking_method("getcommit", |params, context, _| {
        let height: u64 = param(&params, 0, "height")?;
        let certificate = context
            .backend
            .certificate(height)?
            .ok_or_else(|| not_found("Commit"))?;
        Ok::<_, ErrorObjectOwned>(json!({
            "height": certificate.height,
            "round": certificate.round,
            "blockhash": certificate.block_hash.to_string(),
            "signatures": certificate.signatures.iter().map(|s| json!({
                "masternode": s.validator.to_string(),
                "signature": hex::encode(s.signature.0),
            })).collect::<Vec<_>>(),
            "hex": hex::encode(certificate.to_bytes()),
        }))
    })?;
    module.register_blocking_method("getrawmempool", |_, context, _| {
        let txids = context.backend.mempool_txids()?;
        Ok::<_, ErrorObjectOwned>(txids.iter().map(ToString::to_string).collect::<Vec<_>>())
    })?;
    module.register_blocking_method("getmempoolinfo", |_, context, _| {
        let info = context.backend.mempool_info()?;
        Ok::<_, ErrorObjectOwned>(json!({
            "loaded": true,
            "size": info.size,
            "bytes": info.bytes,
            "usage": info.usage,
            "maxmempool": info.max_usage,
            "mempoolminfee": time_value(info.min_fee_rate),
        }))
    })?;
    module.register_blocking_method("getconnectioncount", |_, context, _| {
        Ok::<_, ErrorObjectOwned>(context.backend.peers()?.len())
    })?;
    module.register_blocking_method("getpeerinfo", |_, context, _| {
        let peers = context.backend.peers()?;
        Ok::<_, ErrorObjectOwned>(
            peers
                .iter()
                .map(|p| {
                    json!({
                        "id": p.id,
                        "addr": p.address.to_string(),
                        "inbound": p.inbound,
                        "startingheight": p.starting_height,
                        "masternode": p.masternode,
                    })
                })
                .collect::<Vec<_>>(),
        )
    })?;
    module.register_blocking_method("validateaddress", |params, context, _| {
        let text: String = param(&params, 0, "address")?;
        let network = context.backend.chain_info()?.network;
        Ok::<_, ErrorObjectOwned>(match text.parse::<Address>() {
            Ok(address) if address.network == network => json!({"isvalid": true, "address": address.to_string()}),
            Ok(address) => {
                json!({"isvalid": false, "error": format!("address is for {}, not {network}", address.network)})
            }
            Err(e) => json!({"isvalid": false, "error": e.to_string()}),
        })
    })?;
    module.register_blocking_method("uptime", |_, context, _| {
        Ok::<_, ErrorObjectOwned>(context.started.elapsed().as_secs())
    })?;
    module.register_blocking_method("stop", |_, context, _| {
        context.backend.stop();
        Ok::<_, ErrorObjectOwned>("TimeCoin server stopping")
    })?;
    module.register_blocking_method("gettxout", |params, context, _| {
        let txid = txid_param(&params, 0)?;
        let index: u32 = param(&params, 1, "n")?;
        let include_mempool: bool = optional(&params, 2, "include_mempool")?.unwrap_or(true);
        let info = context.backend.chain_info()?;
        let Some(out) = context.backend.txout(&OutPoint { txid, index }, include_mempool)? else {
            return Ok::<_, ErrorObjectOwned>(Value::Null);
        };
        Ok(json!({
            "bestblock": info.best_block.to_string(),
            "confirmations": out.height.map_or(0, |h| info.blocks.saturating_sub(h) + 1),
            "value": time_value(out.value),
            "address": Address { network: info.network, payload: out.address }.to_string(),
            "coinbase": out.reward,
        }))
    })?;
    module.register_blocking_method("gettxoutsetinfo", |_, context, _| {
        let set = context.backend.utxo_set()?;
        Ok::<_, ErrorObjectOwned>(json!({
            "height": set.height,
            "bestblock": set.best_block.to_string(),
            "txouts": set.count,
            "total_amount": time_value(set.total),
            "hash_serialized": set.commitment.to_string(),
        }))
    })?;
    module.register_blocking_method("getrawtransaction", |params, context, _| {
        let txid = txid_param(&params, 0)?;
        let verbose = match params.parse::<Vec<Value>>().ok().and_then(|v| v.get(1).cloned()) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(flag)) => flag,
            Some(Value::Number(n)) => n.as_u64().is_some_and(|n| n > 0),
            Some(_) => return Err(invalid("verbose must be a boolean or a number")),
        };
        let (tx, height) = context.backend.transaction(&txid)?.ok_or_else(|| {
            ErrorObjectOwned::from(RpcError::new(
                codes::INVALID_ADDRESS_OR_KEY,
                "No such mempool or blockchain transaction",
            ))
        })?;
        if !verbose {
            return Ok::<_, ErrorObjectOwned>(json!(hex::encode(tx.to_bytes())));
        }
        let info = context.backend.chain_info()?;
        let mut object = transaction_json(&tx, info.network);
        extend(&mut object, "hex", json!(hex::encode(tx.to_bytes())));
        if let Some(height) = height {
            if let Some(hash) = context.backend.block_hash(height)? {
                extend(&mut object, "blockhash", json!(hash.to_string()));
            }
            extend(
                &mut object,
                "confirmations",
                json!(info.blocks.saturating_sub(height) + 1),
            );
        }
        Ok(object)
    })?;
    module.register_blocking_method("testmempoolaccept", |params, context, _| {
        let rawtxs: Vec<String> = param(&params, 0, "rawtxs")?;
        if rawtxs.len() > 25 {
            return Err(invalid("at most 25 transactions at once"));
        }
        let mut answers = Vec::with_capacity(rawtxs.len());
        for text in rawtxs {
            let tx: Transaction = decode_hex(&text, "TX")?;
            let txid = tx.txid().to_string();
            answers.push(match context.backend.test_accept(&tx)? {
                Ok((size, fee)) => {
                    json!({"txid": txid, "allowed": true, "vsize": size, "fees": {"base": time_value(fee)}})
                }
                Err(reason) => json!({"txid": txid, "allowed": false, "reject-reason": reason}),
            });
        }
        Ok::<_, ErrorObjectOwned>(answers)
    })?;
    module.register_blocking_method("setban", |params, context, _| {
        let target: String = param(&params, 0, "target")?;
        let command: String = param(&params, 1, "command")?;
        match command.as_str() {
            "add" => {
                let seconds: u64 = optional(&params, 2, "bantime")?.unwrap_or(86_400);
                if seconds == 0 || seconds > 365 * 86_400 {
                    return Err(invalid("bantime is 1 second to 365 days"));
                }
                context.backend.ban(&target, seconds)?;
            }
            "remove" => {
                if !context.backend.unban(&target)? {
                    return Err(RpcError::new(
                        codes::CLIENT_NODE_NOT_BANNED,
                        "Error: Unban failed. Requested address/identity was not previously banned.",
                    )
                    .into());
                }
            }
            _ => return Err(invalid("command must be add or remove")),
        }
        Ok::<_, ErrorObjectOwned>(Value::Null)
    })?;
    module.register_blocking_method("listbanned", |_, context, _| {
        Ok::<_, ErrorObjectOwned>(
            context
                .backend
                .bans()
                .into_iter()
                .map(|(target, left)| json!({"address": target, "ban_remaining": left}))
                .collect::<Vec<_>>(),
        )
    })?;
    module.register_blocking_method("getmempoolentry", |params, context, _| {
        let txid = txid_param(&params, 0)?;
        let entry = context.backend.mempool_entry(&txid)?.ok_or_else(|| {
            ErrorObjectOwned::from(RpcError::new(
                codes::INVALID_ADDRESS_OR_KEY,
                "Transaction not in mempool",
            ))
        })?;
        Ok::<_, ErrorObjectOwned>(json!({
            "vsize": entry.size,
            "fees": {"base": time_value(entry.fee)},
            "time": entry.time_ms / 1_000,
            "ancestorcount": entry.ancestors + 1,
            "descendantcount": entry.descendants + 1,
        }))
    })?;
    module.register_blocking_method("getnetworkinfo", |_, context, _| {
        let peers = context.backend.peers()?;
        let inbound = peers.iter().filter(|p| p.inbound).count();
        Ok::<_, ErrorObjectOwned>(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "subversion": format!("/timed:{}/", env!("CARGO_PKG_VERSION")),
            "protocolversion": 1,
            "connections": peers.len(),
            "connections_in": inbound,
            "connections_out": peers.len() - inbound,
            "networkactive": true,
        }))
    })?;
    module.register_blocking_method("addnode", |params, context, _| {
        let node: String = param(&params, 0, "node")?;
        let command: String = param(&params, 1, "command")?;
        if !matches!(command.as_str(), "add" | "onetry") {
            return Err(invalid("command must be add or onetry"));
        }
        let address: SocketAddr = node
            .parse()
            .map_err(|_| invalid(format!("node must be IP:port, got {node:?}")))?;
        context.backend.add_node(address);
        Ok::<_, ErrorObjectOwned>(Value::Null)
    })?;
    module.register_blocking_method("masternodelist", |_, context, _| {
        let list = context.backend.masternodes()?;
        Ok::<_, ErrorObjectOwned>(list.iter().map(masternode_json).collect::<Vec<_>>())
    })?;
    module.register_blocking_method("masternodestatus", |_, context, _| {
        let Some(own) = context.backend.own_masternode() else {
            return Err(ErrorObjectOwned::from(RpcError::new(
                codes::INTERNAL_ERROR,
                "This node is not a masternode ([masternode] enabled = false)",
            )));
        };
        let list = context.backend.masternodes()?;
        Ok::<_, ErrorObjectOwned>(match list.iter().find(|m| m.operator == own) {
            Some(entry) => masternode_json(entry),
            None => json!({
                "operator": own,
                "status": "not registered",
                "power": 0,
            }),
        })
    })?;
    module.register_blocking_method("masternoderegister", |params, context, _| {
        let request = RegisterRequest {
            tier: param(&params, 0, "tier")?,
            operator: param(&params, 1, "operatorkey")?,
            service: param(&params, 2, "address")?,
            reward_address: optional(&params, 3, "rewardaddress")?,
        };
        Ok::<_, ErrorObjectOwned>(context.backend.wallet_masternode_register(request)?.to_string())
    })?;
    module.register_blocking_method("masternodeupdate", |params, context, _| {
        let request = UpdateRequest {
            id: param(&params, 0, "id")?,
            operator: optional(&params, 1, "operatorkey")?,
            service: optional(&params, 2, "address")?,
            reward_address: optional(&params, 3, "rewardaddress")?,
        };
        Ok::<_, ErrorObjectOwned>(context.backend.wallet_masternode_update(request)?.to_string())
    })?;
    module.register_blocking_method("masternoderevoke", |params, context, _| {
        let id: Option<String> = optional(&params, 0, "id")?;
        Ok::<_, ErrorObjectOwned>(context.backend.wallet_masternode_revoke(id)?.to_string())
    })?;
    module.register_blocking_method("masternodeunlock", |params, context, _| {
        let id: String = param(&params, 0, "id")?;
        let address: Option<String> = optional(&params, 1, "address")?;
        Ok::<_, ErrorObjectOwned>(context.backend.wallet_masternode_unlock(&id, address)?.to_string())
    })?;
    module.register_blocking_method("listlockedcollaterals", |_, context, _| {
        let locked = context.backend.wallet_locked_collaterals()?;
        Ok::<_, ErrorObjectOwned>(
            locked
                .iter()
                .map(|c| {
                    json!({
                        "outpoint": c.outpoint,
                        "amount": time_value(c.amount),
                        "masternode": c.masternode,
                        "status": c.status,
                        "banneduntil": c.banned_until,
                    })
                })
                .collect::<Vec<_>>(),
        )
    })?;
    module.register_blocking_method("getconsensusinfo", |_, context, _| {
        let status = context.backend.consensus();
        let list = context.backend.masternodes()?;
        let total: u64 = list.iter().map(|m| m.power).sum();
        let info = context.backend.chain_info()?;
        let last = context.backend.certificate(info.blocks)?;
        Ok::<_, ErrorObjectOwned>(json!({
            "height": status.height,
            "round": status.round,
            "step": status.step,
            "syncing": status.syncing,
            "totalpower": total,
            "quorum": total * 2 / 3 + 1,
            "masternodes": list.iter().map(|m| json!({"operator": m.operator, "power": m.power})).collect::<Vec<_>>(),
            "lastcommit": last.map(|c| json!({
                "height": c.height,
                "round": c.round,
                "blockhash": c.block_hash.to_string(),
                "signatures": c.signatures.len(),
            })),
        }))
    })?;
    module.register_blocking_method("waitfortransaction", |params, context, _| {
        let txid = txid_param(&params, 0)?;
        let timeout: u64 = optional(&params, 1, "timeout")?.unwrap_or(60);
        if timeout > 3_600 {
            return Err(invalid("timeout is at most 3600 seconds"));
        }
        let height = context
            .backend
            .wait_for_transaction(&txid, std::time::Duration::from_secs(timeout))?;
        Ok::<_, ErrorObjectOwned>(json!({"txid": txid.to_string(), "finalized": height.is_some(), "height": height}))
    })?;
    module.register_blocking_method("getmemoryinfo", |_, context, _| {
        let mempool = context.backend.mempool_info()?;
        Ok::<_, ErrorObjectOwned>(json!({
            "rss": resident_bytes(),
            "mempool": {"usage": mempool.usage, "max": mempool.max_usage},
        }))
    })?;
    module.register_blocking_method("getnewaddress", |_, context, _| {
        Ok::<_, ErrorObjectOwned>(context.backend.wallet_new_address(false)?)
    })?;
    module.register_blocking_method("getrawchangeaddress", |_, context, _| {
        Ok::<_, ErrorObjectOwned>(context.backend.wallet_new_address(true)?)
    })?;
    module.register_blocking_method("getbalance", |_, context, _| {
        Ok::<_, ErrorObjectOwned>(time_value(context.backend.wallet_balances()?.available))
    })?;
    module.register_blocking_method("getbalances", |_, context, _| {
        let balances = context.backend.wallet_balances()?;
        Ok::<_, ErrorObjectOwned>(json!({"mine": {
            "trusted": time_value(balances.available),
            "untrusted_pending": time_value(balances.pending),
            "locked": time_value(balances.locked),
        }}))
    })?;
    module.register_blocking_method("listunspent", |_, context, _| {
        let tip = context.backend.chain_info()?.blocks;
        let coins = context.backend.wallet_unspent()?;
        Ok::<_, ErrorObjectOwned>(
            coins
                .iter()
                .map(|c| {
                    json!({
                        "txid": c.outpoint.txid.to_string(),
                        "vout": c.outpoint.index,
                        "address": c.address,
                        "amount": time_value(c.amount),
                        "confirmations": tip.saturating_sub(c.height) + 1,
                        "spendable": true,
                    })
                })
                .collect::<Vec<_>>(),
        )
    })?;
    module.register_blocking_method("listtransactions", |params, context, _| {
        let count: usize = optional(&params, 1, "count")?.unwrap_or(10);
        let skip: usize = optional(&params, 2, "skip")?.unwrap_or(0);
        let tip = context.backend.chain_info()?.blocks;
        let history = context.backend.wallet_history()?;
        let end = history.len().saturating_sub(skip);
        let start = end.saturating_sub(count);
        Ok::<_, ErrorObjectOwned>(
            history
                .get(start..end)
                .unwrap_or_default()
                .iter()
                .map(|t| wallet_tx_json(t, tip))
                .collect::<Vec<_>>(),
        )
    })?;
    module.register_blocking_method("gettransaction", |params, context, _| {
        let txid = txid_param(&params, 0)?;
        let tip = context.backend.chain_info()?.blocks;
        let history = context.backend.wallet_history()?;
        let entry = history.iter().find(|t| t.txid == txid).ok_or_else(|| {
            ErrorObjectOwned::from(RpcError::new(
                codes::INVALID_ADDRESS_OR_KEY,
                "Invalid or non-wallet transaction id",
            ))
        })?;
        let mut object = wallet_tx_json(entry, tip);
        if let Some((tx, _)) = context.backend.transaction(&txid)? {
            extend(&mut object, "hex", json!(hex::encode(tx.to_bytes())));
        }
        Ok::<_, ErrorObjectOwned>(object)
    })?;
    module.register_blocking_method("sendtoaddress", |params, context, _| {
        let address: String = param(&params, 0, "address")?;
        let amount = amount_param(&params, 1, "amount")?;
        Ok::<_, ErrorObjectOwned>(context.backend.wallet_send(vec![(address, amount)])?.to_string())
    })?;
    module.register_blocking_method("sendmany", |params, context, _| {
        // Bitcoin Core's first parameter is a dummy account name.
        let amounts: serde_json::Map<String, Value> = param(&params, 1, "amounts")?;
        if amounts.is_empty() {
            return Err(invalid("amounts is empty"));
        }
        let mut payments = Vec::with_capacity(amounts.len());
        for (address, value) in amounts {
            payments.push((address, amount_value(&value, "amounts")?));
        }
        Ok::<_, ErrorObjectOwned>(context.backend.wallet_send(payments)?.to_string())
    })?;
    module.register_blocking_method("walletpassphrase", |params, context, _| {
        let passphrase: String = param(&params, 0, "passphrase")?;
        let seconds: u64 = param(&params, 1, "timeout")?;
        if seconds == 0 || seconds > 100_000_000 {
            return Err(invalid("timeout is 1 to 100,000,000 seconds"));
        }
        context.backend.wallet_passphrase(&passphrase, seconds)?;
        Ok::<_, ErrorObjectOwned>(Value::Null)
    })?;
    module.register_blocking_method("walletlock", |_, context, _| {
        context.backend.wallet_lock()?;
        Ok::<_, ErrorObjectOwned>(Value::Null)
    })?;
    module.register_blocking_method("createrawtransaction", |params, context, _| {
        #[derive(serde::Deserialize)]
        struct Input {
            txid: String,
            vout: u32,
        }
        let inputs: Vec<Input> = param(&params, 0, "inputs")?;
        let outputs: serde_json::Map<String, Value> = param(&params, 1, "outputs")?;
        let lock_time: u64 = optional(&params, 2, "locktime")?.unwrap_or(0);
        if inputs.is_empty() || outputs.is_empty() {
            return Err(invalid("inputs and outputs must not be empty"));
        }
        let network = context.backend.chain_info()?.network;
        let mut tx = Transaction {
            version: Transaction::VERSION,
            inputs: Vec::with_capacity(inputs.len()),
            outputs: Vec::with_capacity(outputs.len()),
            lock_time,
            memo: Vec::new(),
            payload: None,
        };
        for input in inputs {
            let txid: TxId = input
                .txid
                .parse()
                .map_err(|e| invalid(format!("txid {}: {e}", input.txid)))?;
            tx.inputs.push(timecoin_primitives::TxInput {
                prevout: OutPoint {
                    txid,
                    index: input.vout,
                },
                public_key: Default::default(),
                signature: Default::default(),
            });
        }
        for (text, value) in outputs {
            let address: Address = text.parse().map_err(|e| {
                ErrorObjectOwned::from(RpcError::new(
                    codes::INVALID_ADDRESS_OR_KEY,
                    format!("Invalid address {text}: {e}"),
                ))
            })?;
            if address.network != network {
                return Err(RpcError::new(
                    codes::INVALID_ADDRESS_OR_KEY,
                    format!("Invalid address {text}: not for {network}"),
                )
                .into());
            }
            tx.outputs.push(timecoin_primitives::TxOutput {
                amount: timecoin_primitives::Amount::from_units(amount_value(&value, "outputs")?),
                address: address.payload,
            });
        }
        Ok::<_, ErrorObjectOwned>(hex::encode(tx.to_bytes()))
    })?;
    module.register_blocking_method("signrawtransactionwithwallet", |params, context, _| {
        let text: String = param(&params, 0, "hexstring")?;
        let mut tx: Transaction = decode_hex(&text, "TX")?;
        let errors = context.backend.wallet_sign(&mut tx)?;
        Ok::<_, ErrorObjectOwned>(json!({
            "hex": hex::encode(tx.to_bytes()),
            "complete": errors.is_empty(),
            "errors": errors.iter().map(|e| json!({"error": e})).collect::<Vec<_>>(),
        }))
    })?;
    module.register_blocking_method("dumpmnemonic", |_, context, _| {
        Ok::<_, ErrorObjectOwned>(context.backend.wallet_mnemonic()?)
    })?;
    module.register_blocking_method("encryptwallet", |params, context, _| {
        let passphrase: String = param(&params, 0, "passphrase")?;
        if passphrase.is_empty() {
            return Err(invalid("the passphrase must not be empty"));
        }
        context.backend.wallet_encrypt(&passphrase)?;
        Ok::<_, ErrorObjectOwned>("wallet encrypted and locked; unlock it with walletpassphrase")
    })?;
    module.register_method("help", |params, _, _| {
        let command: Option<String> = optional(&params, 0, "command")?;
        methods::help(command.as_deref()).map_err(invalid)
    })?;
    Ok(module)
}

/// A running server.
#[derive(Debug)]
pub struct RpcServer {
    /// Where it listens.
    pub address: SocketAddr,
    handle: ServerHandle,
}

impl RpcServer {
    /// Stops the server and waits until it has stopped.
    pub async fn stop(self) {
        if self.handle.stop().is_ok() {
            self.handle.stopped().await;
        }
    }
}

/// How the server admits requests.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Who may call.
    pub credentials: Credentials,
    /// Largest request body, in bytes.
    pub max_body: u32,
    /// Most requests in one batch.
    pub max_batch: u32,
    /// Most connections at once.
    pub max_connections: u32,
}

impl ServeOptions {
    /// Defaults around `credentials`: 4 MiB bodies, batches of 1,000, 64 connections.
    pub fn new(credentials: Credentials) -> ServeOptions {
        ServeOptions {
            credentials,
            max_body: 4 * 1024 * 1024,
            max_batch: 1_000,
            max_connections: 64,
        }
    }
}

/// The API without its HTTP transport: what the server does with one authenticated request
/// body (normalization, parameter parsing, the method). For tests and fuzzing; batches and
/// HTTP-level limits belong to the server.
pub struct Dispatcher {
    module: RpcModule<Context>,
}

impl Dispatcher {
    /// The methods over `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Result<Dispatcher, jsonrpsee::core::RegisterMethodError> {
        Ok(Dispatcher {
            module: build(backend)?,
        })
    }

    /// The answer to one request body (a JSON-RPC object), or `None` when the body is not a
    /// request at all. Must run inside a tokio runtime (methods run on its blocking pool).
    pub async fn call(&self, body: &[u8]) -> Option<String> {
        let normalized = gate::normalize_body(body);
        let text = std::str::from_utf8(&normalized).ok()?;
        let (answer, _) = self.module.raw_json_request(text, 1).await.ok()?;
        Some(answer.get().to_owned())
    }
}

/// Starts serving `backend` on `listen`: JSON-RPC 2.0 and 1.0-style requests and batches
/// over HTTP POST, each authenticated with HTTP Basic.
pub async fn serve(listen: SocketAddr, backend: Arc<dyn Backend>, options: ServeOptions) -> std::io::Result<RpcServer> {
    let config = ServerConfig::builder()
        .http_only()
        .max_request_body_size(options.max_body)
        .max_connections(options.max_connections)
        .max_response_body_size(batch::MAX_RESPONSE_BYTES)
        .set_batch_request_config(BatchRequestConfig::Limit(options.max_batch))
        .build();
    let gate = tower::ServiceBuilder::new().layer(GateLayer::new(options.credentials, options.max_body as usize));
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(gate)
        .set_rpc_middleware(
            jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new()
                .layer_fn(|service| batch::ConcurrentBatches { service }),
        )
        .build(listen)
        .await?;
    let address = server.local_addr()?;
    let module = build(backend).map_err(std::io::Error::other)?;
    let mut served: Vec<&str> = module.method_names().collect();
    served.sort_unstable();
    let mut listed: Vec<&str> = methods::METHODS.iter().map(|m| m.name).collect();
    listed.sort_unstable();
    if served != listed {
        return Err(std::io::Error::other(format!(
            "the method table and the served methods differ: {listed:?} vs {served:?}"
        )));
    }
    let handle = server.start(module);
    Ok(RpcServer { address, handle })
}
