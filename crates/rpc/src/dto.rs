//! The values a backend hands the API: plain data, one type per answer (or request) shape,
//! turned into Bitcoin Core-style JSON by the methods. They carry no behaviour.

use std::net::SocketAddr;

use timecoin_primitives::{AddressPayload, BlockHash, Hash256, Network, OutPoint, TxId};

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

/// The stored block data and pruning, as `getblockchaininfo` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageInfo {
    /// Bytes of block data held (bodies, undo records, certificates).
    pub block_bytes: u64,
    /// The block data to keep at most, in bytes, if the node prunes.
    pub prune_target: Option<u64>,
    /// The lowest height above genesis whose block is held (1 when nothing was pruned).
    pub pruned_below: u64,
}

/// A chain-state file `dumptxoutset` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDump {
    /// Unspent outputs written.
    pub coins: u64,
    /// The block the state follows.
    pub height: u64,
    /// Its hash.
    pub hash: BlockHash,
    /// The UTXO-set commitment.
    pub commitment: Hash256,
    /// The state's hash, which the next header names.
    pub state_hash: Hash256,
    /// Where the file is.
    pub path: String,
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

/// A change of an address's balance, from the address index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressDeltaInfo {
    /// Whose balance.
    pub address: AddressPayload,
    /// The transaction.
    pub txid: TxId,
    /// The output's index (received) or the input's (spent).
    pub index: u32,
    /// Whether the address spent (else it received).
    pub spent: bool,
    /// How much, in units.
    pub amount: u64,
    /// The block's height.
    pub height: u64,
    /// The transaction's position in its block.
    pub block_index: u32,
}

/// An unspent output, from the address index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressUtxoInfo {
    /// Its address.
    pub address: AddressPayload,
    /// Where it is.
    pub outpoint: OutPoint,
    /// Its value in units.
    pub amount: u64,
    /// The height of its block.
    pub height: u64,
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
    /// What watched addresses hold, if the wallet watches any.
    pub watch_only: Option<u64>,
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
    /// Whether the wallet holds its key (a watched address's coin is not).
    pub spendable: bool,
}

/// The wallet's transactions as of its tip (the last block it scanned, which may be behind
/// the store's for a moment: answers built from this never skip a block).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalletHistory {
    /// The height of the last block the wallet scanned.
    pub tip: u64,
    /// Those in blocks up to `tip`, oldest first, then those in the mempool.
    pub transactions: Vec<WalletTxInfo>,
}

/// A transaction that touched the wallet, as `listtransactions`, `listsinceblock` and
/// `gettransaction` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletTxInfo {
    /// Its id.
    pub txid: TxId,
    /// Its block; `None` while it waits in the mempool.
    pub block: Option<WalletTxBlock>,
    /// When the wallet saw it: its block's time, or when it entered the mempool
    /// (milliseconds since the epoch).
    pub time_ms: u64,
    /// Units of the wallet's coins it spent, watched ones included.
    pub spent: u64,
    /// Its fee in units, when the wallet paid every input (and so the fee).
    pub fee: Option<u64>,
    /// A block reward (it spends nothing).
    pub reward: bool,
    /// Its outputs, in order (an output's index is its `vout`).
    pub outputs: Vec<WalletTxOutput>,
    /// Units of `spent` that were watched coins (`importaddress`).
    pub spent_watched: u64,
}

/// Where a wallet transaction is in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalletTxBlock {
    /// The block's height.
    pub height: u64,
    /// The block's hash.
    pub hash: BlockHash,
    /// The block's time, milliseconds since the epoch.
    pub time_ms: u64,
    /// The transaction's position in the block.
    pub index: u32,
}

/// One output of a wallet transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletTxOutput {
    /// Its address, written for the network.
    pub address: String,
    /// Its value in units.
    pub amount: u64,
    /// Whose address it is.
    pub owner: OutputOwner,
}

/// Whose address an output pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputOwner {
    /// One of the wallet's receiving addresses (given out by `getnewaddress`).
    Receive,
    /// One of the wallet's change addresses.
    Change,
    /// An address the wallet watches without its key (`importaddress`).
    WatchOnly,
    /// Not the wallet's.
    Other,
}
