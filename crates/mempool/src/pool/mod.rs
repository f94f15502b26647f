//! The pool itself: entries linked to their in-pool parents and children, indexed by
//! descendant score (for eviction) and by arrival time (for expiry).
//!
//! Its parts: `admission` (checking a transaction against the chain rules, the pool's
//! conflicts and the fee policy, then admitting it), `claims` (what masternode transactions
//! claim, so that two conflicting ones never wait together), `entries` (the entry graph and
//! its indexes), `eviction` (trimming to the limits, expiry, connected blocks and the rolling
//! minimum fee rate) and `template` (choosing a block's transactions).

mod admission;
mod claims;
mod entries;
mod eviction;
mod template;

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use timecoin_chain::{ChainParams, FeeRate, SigItem, SignatureCache};
use timecoin_primitives::{Amount, BlockHash, OutPoint, Transaction, TxId};

pub use template::BlockTemplate;

use claims::Claim;

/// The pool's limits and policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Most transactions held.
    pub max_transactions: usize,
    /// Most memory held, as estimated by [`Mempool::usage`].
    pub max_bytes: usize,
    /// How long a transaction may wait before it is dropped.
    pub expiry_ms: u64,
    /// Most in-pool ancestors of a transaction, itself included.
    pub max_ancestors: usize,
    /// Most in-pool descendants of a transaction, itself included.
    pub max_descendants: usize,
    /// Most transactions one replacement may evict.
    pub max_replacements: usize,
    /// What the rolling minimum fee rate rises by above an evicted package's rate.
    pub incremental_fee_rate: FeeRate,
    /// Half-life of the rolling minimum fee rate's decay (shorter while the pool is emptier).
    pub min_fee_half_life_ms: u64,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            max_transactions: 10_000,
            max_bytes: 300 * 1024 * 1024,
            expiry_ms: 72 * 3600 * 1000,
            max_ancestors: 25,
            max_descendants: 25,
            max_replacements: 100,
            incremental_fee_rate: FeeRate(1_000),
            min_fee_half_life_ms: 12 * 3600 * 1000,
        }
    }
}

/// A fee over a size, ordered by rate (compared exactly, by cross-multiplication).
#[derive(Debug, Clone, Copy)]
pub struct Score {
    /// Total fee in units.
    pub fee: u64,
    /// Total size in bytes.
    pub size: u64,
}

impl Score {
    /// The rate in units per 1,000 bytes, rounded down.
    pub fn fee_rate(&self) -> FeeRate {
        FeeRate::of(
            Amount::from_units(self.fee),
            usize::try_from(self.size).unwrap_or(usize::MAX),
        )
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        (u128::from(self.fee) * u128::from(other.size)).cmp(&(u128::from(other.fee) * u128::from(self.size)))
    }
}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Score {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Score {}

#[derive(Debug, Clone)]
struct Entry {
    tx: Arc<Transaction>,
    size: usize,
    fee: Amount,
    usage: usize,
    time_ms: u64,
    parents: Vec<TxId>,
    children: BTreeSet<TxId>,
    /// Fee, size and count of this entry and all its in-pool descendants.
    descendant_fee: u64,
    descendant_size: u64,
    descendant_count: usize,
}

impl Entry {
    fn descendant_score(&self) -> Score {
        Score {
            fee: self.descendant_fee,
            size: self.descendant_size,
        }
    }
}

/// What is known of a pooled transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// The transaction.
    pub tx: Arc<Transaction>,
    /// Encoded size.
    pub size: usize,
    /// Fee paid.
    pub fee: Amount,
    /// When it entered the pool.
    pub time_ms: u64,
    /// In-pool ancestors, itself excluded.
    pub ancestors: usize,
    /// In-pool descendants, itself excluded.
    pub descendants: usize,
}

/// What a connected block removed from the pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockRemoval {
    /// Transactions the block included.
    pub included: Vec<TxId>,
    /// Transactions that conflicted with the block, and their descendants.
    pub conflicted: Vec<TxId>,
    /// Transactions no longer valid against the new tip, and their descendants.
    pub invalidated: Vec<TxId>,
}

/// A transaction that passed every check but the signatures.
struct Prepared {
    txid: TxId,
    size: usize,
    fee: Amount,
    parents: Vec<TxId>,
    replaced: HashSet<TxId>,
    sig_items: Vec<SigItem>,
}

/// The mempool. Not thread-safe by itself: the node owns it behind one lock.
#[derive(Debug, Clone)]
pub struct Mempool {
    params: ChainParams,
    genesis_hash: BlockHash,
    config: MempoolConfig,
    tip_height: u64,
    entries: HashMap<TxId, Entry>,
    spends: HashMap<OutPoint, TxId>,
    by_descendant_score: BTreeSet<(Score, TxId)>,
    by_time: BTreeSet<(u64, TxId)>,
    usage: usize,
    total_size: usize,
    rolling_min_fee: f64,
    rolling_updated_ms: u64,
    block_since_bump: bool,
    /// Masternode transactions' claims, so that two conflicting ones never wait together.
    claims: HashMap<Claim, TxId>,
    /// Signature checks already passed (shared with block validation), if the node keeps one.
    signatures: Option<Arc<SignatureCache>>,
    /// Where the next block's recheck of confirmed inputs starts (in `by_time` order).
    recheck_cursor: Option<(u64, TxId)>,
}

impl Mempool {
    /// An empty pool for a chain whose tip is at `tip_height`.
    pub fn new(params: ChainParams, genesis_hash: BlockHash, config: MempoolConfig, tip_height: u64) -> Mempool {
        Mempool {
            params,
            genesis_hash,
            config,
            tip_height,
            entries: HashMap::new(),
            spends: HashMap::new(),
            by_descendant_score: BTreeSet::new(),
            by_time: BTreeSet::new(),
            claims: HashMap::new(),
            usage: 0,
            total_size: 0,
            rolling_min_fee: 0.0,
            rolling_updated_ms: 0,
            block_since_bump: false,
            signatures: None,
            recheck_cursor: None,
        }
    }

    /// Verifies signatures through `cache`: checks it already passed are skipped, and those
    /// this pool verifies are remembered there (for block validation to skip).
    pub fn with_signature_cache(mut self, cache: Arc<SignatureCache>) -> Mempool {
        self.signatures = Some(cache);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &MempoolConfig {
        &self.config
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Estimated memory held, the quantity `max_bytes` limits.
    pub fn usage(&self) -> usize {
        self.usage
    }

    /// Sum of the encoded sizes of the pooled transactions.
    pub fn total_size(&self) -> usize {
        self.total_size
    }

    /// Whether `txid` is pooled.
    pub fn contains(&self, txid: &TxId) -> bool {
        self.entries.contains_key(txid)
    }

    /// The pooled transaction `txid`.
    pub fn get(&self, txid: &TxId) -> Option<Arc<Transaction>> {
        self.entries.get(txid).map(|e| Arc::clone(&e.tx))
    }

    /// The ids of all pooled transactions.
    pub fn txids(&self) -> Vec<TxId> {
        self.entries.keys().copied().collect()
    }

    /// Which pooled transaction spends `outpoint`.
    pub fn spender_of(&self, outpoint: &OutPoint) -> Option<TxId> {
        self.spends.get(outpoint).copied()
    }

    /// Details of a pooled transaction.
    pub fn info(&self, txid: &TxId) -> Option<EntryInfo> {
        let entry = self.entries.get(txid)?;
        Some(EntryInfo {
            tx: Arc::clone(&entry.tx),
            size: entry.size,
            fee: entry.fee,
            time_ms: entry.time_ms,
            ancestors: self.ancestors(&entry.parents).len(),
            descendants: entry.descendant_count.saturating_sub(1),
        })
    }
}
