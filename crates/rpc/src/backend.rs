//! What the node provides to the API, one trait per concern: the chain and the consensus
//! that extends it ([`ChainBackend`]), the mempool ([`MempoolBackend`]), the node's peers
//! and its life ([`NetworkBackend`]), and the wallet ([`WalletBackend`]). [`Backend`] is all
//! four, and is what the server takes.
//!
//! Calls may block: every method runs on a blocking thread, because backends read the store.

use std::net::SocketAddr;
use std::time::Duration;

use timecoin_light::TrustedState;
use timecoin_primitives::{
    AddressPayload, Block, BlockHash, BlockHeader, CommitCertificate, InputSignError, MasternodeSet, OutPoint,
    Transaction, TxId, TxOutput,
};

use crate::codes;
use crate::dto::{
    AddressDeltaInfo, AddressUtxoInfo, ChainInfo, ConsensusStatus, LockedCollateral, MasternodeSummary, MempoolEntry,
    MempoolInfo, PeerSummary, RegisterRequest, StateDump, StorageInfo, TxOutInfo, UpdateRequest, UtxoSetSummary,
    WalletBalances, WalletCoinInfo, WalletHistory,
};
use crate::error::RpcError;

/// Finalized blocks a subscription may fall behind by before it is ended: what the node's
/// block feed keeps (a full block is 2 MB, so at most 32 MB).
pub const FEED: usize = 16;

/// A finalized block as the feed carries it to every subscriber: its hash and txids are
/// computed once, by the first subscriber that needs them.
pub struct FeedBlock {
    block: std::sync::Arc<Block>,
    ids: std::sync::OnceLock<(BlockHash, Vec<TxId>)>,
    spenders: std::sync::OnceLock<Vec<AddressPayload>>,
}

impl FeedBlock {
    /// `block`, its ids not computed yet.
    pub fn new(block: std::sync::Arc<Block>) -> FeedBlock {
        FeedBlock {
            block,
            ids: std::sync::OnceLock::new(),
            spenders: std::sync::OnceLock::new(),
        }
    }

    /// The block.
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// Its hash and its transactions' ids, in order (CPU: call off the async runtime).
    pub fn ids(&self) -> &(BlockHash, Vec<TxId>) {
        self.ids.get_or_init(|| {
            (
                self.block.hash(),
                self.block.transactions.iter().map(Transaction::txid).collect(),
            )
        })
    }

    /// The address each input spends from (its key's), every transaction's inputs in block
    /// order (CPU: call off the async runtime).
    pub fn spenders(&self) -> &[AddressPayload] {
        self.spenders.get_or_init(|| {
            self.block
                .transactions
                .iter()
                .flat_map(|tx| &tx.inputs)
                .map(|input| AddressPayload::from_public_key(&input.public_key))
                .collect()
        })
    }
}

/// Finalized blocks as they come, for WebSocket subscriptions, and the network whose
/// addresses they pay.
pub struct BlockFeed {
    /// The network.
    pub network: timecoin_primitives::Network,
    /// Each finalized block, in order; a receiver [`FEED`] blocks behind is told it lagged.
    pub blocks: tokio::sync::broadcast::Receiver<std::sync::Arc<FeedBlock>>,
}

/// An answer a backend gives later (without holding a thread while it waits).
pub type Pending<T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, RpcError>> + Send>>;

/// Everything the API needs from the node. Implement the four traits it is made of; this
/// one comes with them.
pub trait Backend: ChainBackend + MempoolBackend + NetworkBackend + WalletBackend {}

impl<T: ChainBackend + MempoolBackend + NetworkBackend + WalletBackend + ?Sized> Backend for T {}

/// The finalized chain, its UTXO set and masternode set, and the consensus engine
/// extending it.
pub trait ChainBackend: Send + Sync + 'static {
    /// The chain's state.
    fn chain_info(&self) -> Result<ChainInfo, RpcError>;
    /// The hash of the block at `height`, if there is one.
    fn block_hash(&self, height: u64) -> Result<Option<BlockHash>, RpcError>;
    /// The block with `hash` and its height, if known.
    fn block(&self, hash: &BlockHash) -> Result<Option<(Block, u64)>, RpcError>;
    /// The commit certificate of the block at `height`, if finalized.
    fn certificate(&self, height: u64) -> Result<Option<CommitCertificate>, RpcError>;
    /// The stored block data and pruning; `None` if this node does not say.
    fn storage_info(&self) -> Result<Option<StorageInfo>, RpcError> {
        Ok(None)
    }
    /// Writes the chain state at the tip to `path` (relative to the node's data directory),
    /// with the proof of the next block once it is final.
    fn dump_txoutset(&self, _path: &str) -> Result<StateDump, RpcError> {
        Err(RpcError::new(
            codes::MISC_ERROR,
            "this node does not dump its chain state",
        ))
    }
    /// Prunes the blocks below `height` (as far as the node allows); the height of the last
    /// block pruned. Called only when [`ChainBackend::storage_info`] names a prune target.
    fn prune(&self, _height: u64) -> Result<u64, RpcError> {
        Err(RpcError::new(codes::MISC_ERROR, "this node does not prune"))
    }
    /// The header of the block with `hash` and its height, if known (pruned or not).
    fn header_by_hash(&self, hash: &BlockHash) -> Result<Option<BlockHeader>, RpcError> {
        Ok(self.block(hash)?.map(|(block, _)| block.header))
    }
    /// The header of the block at `height`, if there is one.
    fn header(&self, height: u64) -> Result<Option<BlockHeader>, RpcError> {
        let Some(hash) = self.block_hash(height)? else {
            return Ok(None);
        };
        Ok(self.block(&hash)?.map(|(block, _)| block.header))
    }
    /// What a verifier holding only the genesis file trusts; finality proofs start there.
    fn genesis_trust(&self) -> Result<TrustedState, RpcError> {
        Err(no_proofs())
    }
    /// Each voting set that took over in `(after, upto]`, with the first height it
    /// finalizes, in ascending height.
    fn voting_set_changes(&self, _after: u64, _upto: u64) -> Result<Vec<(u64, MasternodeSet)>, RpcError> {
        Err(no_proofs())
    }
    /// The voting set that finalizes the block at `height`; `None` when it is the genesis
    /// set.
    fn voting_set_at(&self, _height: u64) -> Result<Option<MasternodeSet>, RpcError> {
        Err(no_proofs())
    }
    /// A transaction from the chain (with its block's height) or the mempool (`None`).
    fn transaction(&self, txid: &TxId) -> Result<Option<(Transaction, Option<u64>)>, RpcError>;
    /// The coins the block at `height` spent, one per input in the block's order.
    fn spent_coins(&self, height: u64) -> Result<Option<Vec<TxOutput>>, RpcError>;
    /// Finalized blocks from now on, for a subscription; `None` if this node has no feed.
    /// Called on the runtime: it must not block.
    fn block_feed(&self) -> Option<BlockFeed> {
        None
    }
    /// Waits up to `timeout` for `txid` to be in a finalized block; its height if it is.
    fn wait_for_transaction(&self, txid: &TxId, timeout: Duration) -> Result<Option<u64>, RpcError>;
    /// The unspent output at `outpoint`; with `include_mempool`, outputs created by waiting
    /// transactions count and those they spend do not.
    fn txout(&self, outpoint: &OutPoint, include_mempool: bool) -> Result<Option<TxOutInfo>, RpcError>;
    /// The UTXO set's summary.
    fn utxo_set(&self) -> Result<UtxoSetSummary, RpcError>;
    /// The address index's balance changes of `address` in blocks `from..=to`, oldest first.
    fn address_deltas(
        &self,
        _address: &AddressPayload,
        _from: u64,
        _to: u64,
    ) -> Result<Vec<AddressDeltaInfo>, RpcError> {
        Err(no_address_index())
    }
    /// The address index's unspent outputs of `address`.
    fn address_utxos(&self, _address: &AddressPayload) -> Result<Vec<AddressUtxoInfo>, RpcError> {
        Err(no_address_index())
    }
    /// The masternode set.
    fn masternodes(&self) -> Result<Vec<MasternodeSummary>, RpcError>;
    /// This node's masternode operator key, if it is one.
    fn own_masternode(&self) -> Option<String>;
    /// The consensus engine's position.
    fn consensus(&self) -> ConsensusStatus;
}

/// The transactions waiting to be finalized.
pub trait MempoolBackend: Send + Sync + 'static {
    /// The txids in the mempool.
    fn mempool_txids(&self) -> Result<Vec<TxId>, RpcError>;
    /// The mempool's state.
    fn mempool_info(&self) -> Result<MempoolInfo, RpcError>;
    /// A mempool entry.
    fn mempool_entry(&self, txid: &TxId) -> Result<Option<MempoolEntry>, RpcError>;
    /// Whether the mempool would admit `tx` now: its size and fee in units, or the reason
    /// code it would be refused with.
    fn test_accept(&self, tx: &Transaction) -> Result<Result<(usize, u64), String>, RpcError>;
    /// The fee rate, in units per 1,000 bytes, that a new transaction needs to be in one of
    /// the next `blocks` blocks as the mempool stands.
    fn fee_estimate(&self, _blocks: u32) -> Result<u64, RpcError> {
        Err(RpcError::new(codes::MISC_ERROR, "Fee estimation is not available here"))
    }
    /// Admits a transaction to the mempool and relays it; resolves to its txid once judged.
    /// A node queues it, so that concurrent submissions are verified as one batch.
    fn submit_transaction(&self, tx: Transaction) -> Pending<TxId>;
}

/// The node among its peers: connections, bans, and leaving (`stop`).
pub trait NetworkBackend: Send + Sync + 'static {
    /// The connected peers.
    fn peers(&self) -> Result<Vec<PeerSummary>, RpcError>;
    /// Adds a peer address to dial.
    fn add_node(&self, address: SocketAddr);
    /// Bans a peer identity (64 hex) or address (IP:port) for `seconds`, disconnecting it.
    fn ban(&self, target: &str, seconds: u64) -> Result<(), RpcError>;
    /// Lifts a ban; whether there was one.
    fn unban(&self, target: &str) -> Result<bool, RpcError>;
    /// The bans in force: (identity or address, seconds left).
    fn bans(&self) -> Vec<(String, u64)>;
    /// Asks the node to stop gracefully.
    fn stop(&self);
    /// The ZMQ notifiers: (type such as `pubhashblock`, address).
    fn zmq_notifications(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// The address methods' answer when the index is off.
fn no_proofs() -> RpcError {
    RpcError::new(codes::MISC_ERROR, "this node does not serve finality proofs")
}

pub(crate) fn no_address_index() -> RpcError {
    RpcError::new(
        codes::MISC_ERROR,
        "Address index not enabled: set [index] address = true and restart",
    )
}

fn no_wallet() -> RpcError {
    RpcError::new(
        codes::WALLET_NOT_FOUND,
        "No wallet is loaded ([wallet] enabled = false)",
    )
}

/// The node's wallet. Every method answers "no wallet" unless the node has one, so a node
/// without a wallet implements none of them.
pub trait WalletBackend: Send + Sync + 'static {
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
    /// The wallet's transactions: those in blocks, oldest first, then those waiting in the
    /// mempool; and the wallet's tip, which they are as of.
    fn wallet_history(&self) -> Result<WalletHistory, RpcError> {
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
    /// Watches `address` (no key: its coins are listed and counted apart, never spent);
    /// with `rescan`, finds its past in the chain first.
    fn wallet_import_address(&self, _address: &str, _rescan: bool) -> Result<(), RpcError> {
        Err(no_wallet())
    }
    /// Writes a copy of the wallet file to `destination` (a directory gets the file's own
    /// name; a relative path is taken from the data directory).
    fn wallet_backup(&self, _destination: &str) -> Result<(), RpcError> {
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
    /// Signs the inputs of `tx` whose coins (`coins`, in input order) the wallet's keys
    /// own; the inputs left without a valid signature.
    fn wallet_sign(
        &self,
        _tx: &mut Transaction,
        _coins: &[Option<TxOutput>],
    ) -> Result<Vec<(usize, InputSignError)>, RpcError> {
        Err(no_wallet())
    }
    /// Locks `outpoints` out of coin selection and `listunspent`, or with `unlock` unlocks
    /// them; `None` with `unlock` unlocks all.
    fn wallet_lock_coins(&self, _unlock: bool, _outpoints: Option<Vec<OutPoint>>) -> Result<(), RpcError> {
        Err(no_wallet())
    }
    /// The coins `wallet_lock_coins` locked.
    fn wallet_locked_coins(&self) -> Result<Vec<OutPoint>, RpcError> {
        Err(no_wallet())
    }
    /// The receiving addresses the wallet handed out, oldest first.
    fn wallet_receive_addresses(&self) -> Result<Vec<AddressPayload>, RpcError> {
        Err(no_wallet())
    }
    /// Whether `address` is one of the wallet's, or one it watches.
    fn wallet_is_mine(&self, _address: &AddressPayload) -> Result<bool, RpcError> {
        Err(no_wallet())
    }
    /// The proof (public key, then signature) that the wallet's key for `address` signed
    /// `message`.
    fn wallet_sign_message(&self, _address: &AddressPayload, _message: &str) -> Result<Vec<u8>, RpcError> {
        Err(no_wallet())
    }
}
