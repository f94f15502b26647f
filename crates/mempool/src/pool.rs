//! The pool itself: entries linked to their in-pool parents and children, indexed by
//! descendant score (for eviction) and by arrival time (for expiry).

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use timecoin_chain::{
    ChainParams, FeeRate, SigItem, SignatureCache, TxContext, TxError, Utxo, UtxoView, ViewError, check_tx_contextual,
    check_tx_stateless, verify_batch, verify_signatures,
};
use timecoin_primitives::{Amount, Block, BlockHash, Encode, OutPoint, Transaction, TxId, TxInput, TxOutput};

use crate::error::{MempoolError, rate};

/// Entries whose confirmed inputs are looked up again after each block, at least (twice the
/// block's transaction count when larger).
const MIN_RECHECK_PER_BLOCK: usize = 1_000;

/// A template stops after this many packages in a row did not fit, once it is within
/// [`TEMPLATE_NEARLY_FULL`] bytes of its limit.
const MAX_TEMPLATE_MISSES: usize = 1_000;
/// See [`MAX_TEMPLATE_MISSES`].
const TEMPLATE_NEARLY_FULL: usize = 4_000;

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

/// A block's worth of transactions chosen by the pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockTemplate {
    /// Transactions in an order where parents precede children.
    pub transactions: Vec<Arc<Transaction>>,
    /// Their total fee.
    pub fees: Amount,
    /// Their total encoded size.
    pub size: usize,
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

/// The pool's outputs over the chain state.
struct PoolView<'a, V> {
    base: &'a V,
    entries: &'a HashMap<TxId, Entry>,
    height: u64,
}

impl<V: UtxoView> UtxoView for PoolView<'_, V> {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, ViewError> {
        match self.entries.get(&outpoint.txid) {
            Some(entry) => Ok(usize::try_from(outpoint.index)
                .ok()
                .and_then(|i| entry.tx.outputs.get(i))
                .map(|output| Utxo {
                    output: *output,
                    height: self.height,
                    is_reward: false,
                })),
            None => self.base.utxo(outpoint),
        }
    }

    fn masternodes(&self) -> &timecoin_chain::MasternodeList {
        self.base.masternodes()
    }
}

/// What a masternode transaction claims: two pool transactions may not claim the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Claim {
    Masternode(TxId),
    Operator(timecoin_primitives::PublicKey),
    Collateral(OutPoint),
    Service(std::net::SocketAddr),
}

fn claims(tx: &Transaction, txid: TxId) -> Vec<Claim> {
    use timecoin_primitives::Payload;
    match &tx.payload {
        None => Vec::new(),
        Some(Payload::Register(r)) => vec![
            Claim::Operator(r.operator),
            Claim::Collateral(r.collateral_outpoint(txid)),
            Claim::Service(r.service),
        ],
        Some(Payload::Update(u)) => vec![
            Claim::Masternode(u.masternode),
            Claim::Operator(u.operator),
            Claim::Service(u.service),
        ],
        Some(Payload::Revoke(r)) => vec![Claim::Masternode(r.masternode)],
        Some(Payload::Unlock(u)) => vec![Claim::Masternode(u.masternode)],
    }
}

/// The memory a pooled transaction is charged for: the transaction's heap data, its slot in
/// the entry table, its inputs' slots in the spend table, its keys in the two ordered indexes
/// and its links to parents and children.
///
/// Hash tables keep between 7/16 and 7/8 of their slots full, so each slot is charged 16/7
/// times (the emptiest case, just after a table grew); B-tree keys are charged twice their
/// size for node overhead. What the pool holds whatever its size (empty tables, the struct
/// itself) is not counted. A test compares this against the allocator's count.
fn usage_of(tx: &Transaction) -> usize {
    use std::mem::size_of;
    let hash_slot = |bytes: usize| (bytes + 1) * 16 / 7;
    let tree_key = |bytes: usize| 2 * bytes;
    let transaction = 2 * size_of::<usize>()
        + size_of::<Transaction>()
        + tx.inputs.len() * size_of::<TxInput>()
        + tx.outputs.len() * size_of::<TxOutput>()
        + tx.memo.len();
    let tables = hash_slot(size_of::<(TxId, Entry)>()) + tx.inputs.len() * hash_slot(size_of::<(OutPoint, TxId)>());
    let indexes = tree_key(size_of::<(Score, TxId)>()) + tree_key(size_of::<(u64, TxId)>());
    // Each input may make a parent link here and a child link in the parent.
    let links = tx.inputs.len() * (size_of::<TxId>() + tree_key(size_of::<TxId>()));
    transaction + tables + indexes + links
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

    /// Verifies `items` as one batch on this thread, through the cache if there is one.
    fn verify_one(&self, items: &[SigItem]) -> Result<(), TxError> {
        match &self.signatures {
            Some(cache) => cache.verify(items),
            None => verify_batch(items),
        }
        .map_err(|_| TxError::BadSignature)
    }

    /// Verifies `items` in parallel batches, through the cache if there is one.
    fn verify_all(&self, items: &[SigItem]) -> Result<(), TxError> {
        match &self.signatures {
            Some(cache) => cache.verify(items),
            None => verify_signatures(items),
        }
        .map_err(|_| TxError::BadSignature)
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

    /// The lowest fee rate a new transaction must pay now: the network minimum, or the
    /// rolling minimum that rises when the pool evicts and decays after blocks.
    pub fn min_fee_rate(&mut self, now_ms: u64) -> FeeRate {
        let incremental = self.config.incremental_fee_rate.0 as f64;
        if self.block_since_bump && self.rolling_min_fee > 0.0 && now_ms > self.rolling_updated_ms + 10_000 {
            let mut half_life = self.config.min_fee_half_life_ms.max(1) as f64;
            if self.usage < self.config.max_bytes / 4 {
                half_life /= 4.0;
            } else if self.usage < self.config.max_bytes / 2 {
                half_life /= 2.0;
            }
            let elapsed = now_ms.saturating_sub(self.rolling_updated_ms) as f64;
            self.rolling_min_fee /= (elapsed / half_life).exp2();
            self.rolling_updated_ms = now_ms;
            if self.rolling_min_fee < incremental / 2.0 {
                self.rolling_min_fee = 0.0;
            }
        }
        FeeRate(self.params.min_fee_rate.0.max(self.rolling_min_fee.ceil() as u64))
    }

    fn ancestors(&self, parents: &[TxId]) -> HashSet<TxId> {
        let mut seen: HashSet<TxId> = HashSet::new();
        let mut stack: Vec<TxId> = parents.to_vec();
        while let Some(txid) = stack.pop() {
            if let Some(entry) = self.entries.get(&txid)
                && seen.insert(txid)
            {
                stack.extend(entry.parents.iter().copied());
            }
        }
        seen
    }

    /// `txid` and every in-pool descendant of it.
    fn with_descendants(&self, txid: &TxId) -> HashSet<TxId> {
        let mut seen = HashSet::new();
        let mut stack = vec![*txid];
        while let Some(next) = stack.pop() {
            if let Some(entry) = self.entries.get(&next)
                && seen.insert(next)
            {
                stack.extend(entry.children.iter().copied());
            }
        }
        seen
    }

    /// Where pool transactions are judged: the block after the tip.
    fn next_block_context(&self) -> TxContext<'_> {
        TxContext {
            params: &self.params,
            genesis_hash: self.genesis_hash,
            height: self.tip_height.saturating_add(1),
        }
    }

    /// The pool's outputs over `view`.
    fn view_over<'a, V>(&'a self, view: &'a V) -> PoolView<'a, V> {
        PoolView {
            base: view,
            entries: &self.entries,
            height: self.tip_height.saturating_add(1),
        }
    }

    fn prepare(&mut self, tx: &Transaction, view: &impl UtxoView, now_ms: u64) -> Result<Prepared, MempoolError> {
        let txid = tx.txid();
        if self.entries.contains_key(&txid) {
            return Err(MempoolError::AlreadyInPool(txid));
        }
        let size = tx.encoded_len();
        check_tx_stateless(tx, size, &self.params)?;
        for (index, output) in tx.outputs.iter().enumerate() {
            if output.amount < self.params.dust_limit {
                return Err(MempoolError::Dust {
                    index,
                    amount: output.amount,
                    limit: self.params.dust_limit,
                });
            }
        }

        let mut conflicts: Vec<(OutPoint, TxId)> = Vec::new();
        for input in &tx.inputs {
            if let Some(existing) = self.spends.get(&input.prevout)
                && !conflicts.iter().any(|(_, c)| c == existing)
            {
                conflicts.push((input.prevout, *existing));
            }
        }
        // A registration's collateral counts as spent by it: no block holds a registration
        // beside a spend of its collateral (the collateral is missing, or locked).
        for input in &tx.inputs {
            let Some(registration) = self.claims.get(&Claim::Collateral(input.prevout)).copied() else {
                continue;
            };
            if registration == input.prevout.txid {
                // The registration's own output: locked from the block that includes it.
                return Err(TxError::CollateralLocked {
                    outpoint: input.prevout,
                    masternode: registration,
                }
                .into());
            }
            if !conflicts.iter().any(|(_, c)| *c == registration) {
                conflicts.push((input.prevout, registration));
            }
        }
        if let Some(timecoin_primitives::Payload::Register(r)) = &tx.payload {
            let collateral = r.collateral_outpoint(txid);
            if let Some(spender) = self.spends.get(&collateral).copied()
                && !conflicts.iter().any(|(_, c)| *c == spender)
            {
                conflicts.push((collateral, spender));
            }
        }
        let mut replaced: HashSet<TxId> = HashSet::new();
        for (_, conflict) in &conflicts {
            replaced.extend(self.with_descendants(conflict));
            if replaced.len() > self.config.max_replacements {
                return Err(MempoolError::TooManyReplacements {
                    count: replaced.len(),
                    limit: self.config.max_replacements,
                });
            }
        }
        for input in &tx.inputs {
            if replaced.contains(&input.prevout.txid) {
                return Err(MempoolError::SpendsReplaced(input.prevout.txid));
            }
        }

        for claim in claims(tx, txid) {
            if let Some(existing) = self.claims.get(&claim).filter(|id| !replaced.contains(id)) {
                return Err(MempoolError::MasternodeConflict(*existing));
            }
        }
        let ctx = self.next_block_context();
        let pool_view = self.view_over(view);
        let checked = check_tx_contextual(tx, txid, size, &pool_view, &ctx)?;
        let score = Score {
            fee: checked.fee.units(),
            size: size as u64,
        };

        let required = self.min_fee_rate(now_ms);
        if score.fee_rate() < required {
            return Err(MempoolError::MinFeeNotMet {
                rate: rate(score.fee_rate()),
                required: rate(required),
            });
        }

        if let Some((outpoint, existing)) = conflicts.first() {
            let replaced_fee = Amount::checked_sum(
                replaced
                    .iter()
                    .filter_map(|id| self.entries.get(id))
                    .map(|entry| entry.fee),
            )
            .unwrap_or(Amount::MAX_MONEY);
            // Pay more than everything evicted, at a higher rate than each direct conflict.
            let mut needed = replaced_fee.units().saturating_add(1);
            for (_, conflict) in &conflicts {
                if let Some(entry) = self.entries.get(conflict) {
                    let rate_floor = (u128::from(entry.fee.units()) * size as u128)
                        .checked_div(entry.size as u128)
                        .unwrap_or(0);
                    needed = needed.max(u64::try_from(rate_floor).unwrap_or(u64::MAX).saturating_add(1));
                }
            }
            if checked.fee.units() < needed {
                return Err(MempoolError::InsufficientReplacementFee {
                    outpoint: *outpoint,
                    existing: *existing,
                    required: Amount::from_units(needed),
                });
            }
        }

        let mut parents: Vec<TxId> = Vec::new();
        for input in &tx.inputs {
            if self.entries.contains_key(&input.prevout.txid) && !parents.contains(&input.prevout.txid) {
                parents.push(input.prevout.txid);
            }
        }
        let ancestors = self.ancestors(&parents);
        if ancestors.len() + 1 > self.config.max_ancestors {
            return Err(MempoolError::TooLongChain {
                count: ancestors.len() + 1,
                limit: self.config.max_ancestors,
            });
        }
        for ancestor in &ancestors {
            let count = self.entries.get(ancestor).map_or(0, |e| e.descendant_count) + 1;
            if count > self.config.max_descendants {
                return Err(MempoolError::TooLongChain {
                    count,
                    limit: self.config.max_descendants,
                });
            }
        }
        Ok(Prepared {
            txid,
            size,
            fee: checked.fee,
            parents,
            replaced,
            sig_items: checked.sig_items,
        })
    }

    fn insert(&mut self, tx: Arc<Transaction>, prepared: Prepared, now_ms: u64) {
        // Deepest first, so that every ancestor that stays stops counting what leaves.
        let mut replaced: Vec<TxId> = prepared.replaced.iter().copied().collect();
        replaced.sort();
        for txid in replaced {
            self.remove_with_descendants(&txid);
        }
        let txid = prepared.txid;
        let usage = usage_of(&tx);
        for input in &tx.inputs {
            self.spends.insert(input.prevout, txid);
        }
        for claim in claims(&tx, txid) {
            self.claims.insert(claim, txid);
        }
        for parent in &prepared.parents {
            if let Some(entry) = self.entries.get_mut(parent) {
                entry.children.insert(txid);
            }
        }
        let fee = prepared.fee.units();
        let size = prepared.size as u64;
        for ancestor in self.ancestors(&prepared.parents) {
            self.update_descendant_stats(&ancestor, |e| {
                e.descendant_fee = e.descendant_fee.saturating_add(fee);
                e.descendant_size = e.descendant_size.saturating_add(size);
                e.descendant_count += 1;
            });
        }
        let entry = Entry {
            tx,
            size: prepared.size,
            fee: prepared.fee,
            usage,
            time_ms: now_ms,
            parents: prepared.parents,
            children: BTreeSet::new(),
            descendant_fee: fee,
            descendant_size: size,
            descendant_count: 1,
        };
        self.by_descendant_score.insert((entry.descendant_score(), txid));
        self.by_time.insert((now_ms, txid));
        self.usage += usage;
        self.total_size += prepared.size;
        self.entries.insert(txid, entry);
    }

    fn update_descendant_stats(&mut self, txid: &TxId, change: impl FnOnce(&mut Entry)) {
        if let Some(entry) = self.entries.get_mut(txid) {
            self.by_descendant_score.remove(&(entry.descendant_score(), *txid));
            change(entry);
            self.by_descendant_score.insert((entry.descendant_score(), *txid));
        }
    }

    /// Removes one entry, unlinking it; its remaining ancestors stop counting it.
    fn remove_entry(&mut self, txid: &TxId) -> Option<Entry> {
        let entry = self.entries.remove(txid)?;
        self.by_descendant_score.remove(&(entry.descendant_score(), *txid));
        self.by_time.remove(&(entry.time_ms, *txid));
        for input in &entry.tx.inputs {
            if self.spends.get(&input.prevout) == Some(txid) {
                self.spends.remove(&input.prevout);
            }
        }
        for claim in claims(&entry.tx, *txid) {
            if self.claims.get(&claim) == Some(txid) {
                self.claims.remove(&claim);
            }
        }
        for parent in &entry.parents {
            if let Some(p) = self.entries.get_mut(parent) {
                p.children.remove(txid);
            }
        }
        for child in &entry.children {
            if let Some(c) = self.entries.get_mut(child) {
                c.parents.retain(|p| p != txid);
            }
        }
        let (fee, size) = (entry.fee.units(), entry.size as u64);
        for ancestor in self.ancestors(&entry.parents) {
            self.update_descendant_stats(&ancestor, |e| {
                e.descendant_fee = e.descendant_fee.saturating_sub(fee);
                e.descendant_size = e.descendant_size.saturating_sub(size);
                e.descendant_count = e.descendant_count.saturating_sub(1);
            });
        }
        self.usage = self.usage.saturating_sub(entry.usage);
        self.total_size = self.total_size.saturating_sub(entry.size);
        Some(entry)
    }

    /// Removes `txid` and all its descendants, deepest first; returns what was removed.
    pub fn remove_with_descendants(&mut self, txid: &TxId) -> Vec<TxId> {
        let family = self.with_descendants(txid);
        let mut ordered: Vec<(usize, TxId)> = family
            .iter()
            .map(|id| {
                let depth = self.entries.get(id).map_or(0, |e| self.ancestors(&e.parents).len());
                (depth, *id)
            })
            .collect();
        ordered.sort_by(|a, b| b.cmp(a));
        ordered
            .into_iter()
            .filter_map(|(_, id)| self.remove_entry(&id).map(|_| id))
            .collect()
    }

    /// Checks `tx` as [`Mempool::add`] would — chain rules against `view` and the pool,
    /// conflicts and replacement rules, fee and dust policy, signatures — without admitting
    /// it; returns its txid, size and fee. Eviction to make room is not simulated, so a
    /// transaction accepted here may still be refused by a full pool.
    pub fn check(
        &mut self,
        tx: &Transaction,
        view: &impl UtxoView,
        now_ms: u64,
    ) -> Result<(TxId, usize, Amount), MempoolError> {
        let prepared = self.prepare(tx, view, now_ms)?;
        self.verify_one(&prepared.sig_items)?;
        Ok((prepared.txid, prepared.size, prepared.fee))
    }

    /// Admits one transaction, checked against `view` (the chain tip's UTXO set) and the pool.
    pub fn add(&mut self, tx: Transaction, view: &impl UtxoView, now_ms: u64) -> Result<TxId, MempoolError> {
        // `add_batch` returns exactly one result per transaction.
        match self.add_batch(vec![tx], view, now_ms).pop() {
            Some(result) => result,
            None => Err(MempoolError::Invalid(TxError::NoInputs)),
        }
    }

    /// Admits many transactions at once, in order (a later one may spend an earlier one),
    /// verifying their signatures together in parallel batches. Returns one result per
    /// transaction, in order.
    ///
    /// A transaction that replaces pooled ones has its signatures verified before anything
    /// is evicted, so an invalid replacement can never push out a valid transaction.
    pub fn add_batch(
        &mut self,
        txs: Vec<Transaction>,
        view: &impl UtxoView,
        now_ms: u64,
    ) -> Vec<Result<TxId, MempoolError>> {
        let mut results: Vec<Result<TxId, MempoolError>> = Vec::with_capacity(txs.len());
        // Transactions admitted without their signatures checked yet.
        let mut unverified: Vec<(usize, TxId, Vec<SigItem>)> = Vec::new();
        // Where each transaction this batch inserted stands, and later copies of it: a copy
        // shares the verdict the first one ends with (a relayed invalid transaction sent
        // many times is refused as many times).
        let mut inserted_at: HashMap<TxId, usize> = HashMap::new();
        let mut copies: Vec<(usize, usize)> = Vec::new();
        for tx in txs {
            let prepared = match self.prepare(&tx, view, now_ms) {
                Ok(p) => p,
                Err(MempoolError::AlreadyInPool(txid)) if inserted_at.contains_key(&txid) => {
                    copies.push((results.len(), inserted_at.get(&txid).copied().unwrap_or(0)));
                    results.push(Err(MempoolError::AlreadyInPool(txid)));
                    continue;
                }
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            };
            let txid = prepared.txid;
            if !prepared.replaced.is_empty() {
                if self.verify_one(&prepared.sig_items).is_err() {
                    results.push(Err(TxError::BadSignature.into()));
                    continue;
                }
            } else {
                unverified.push((results.len(), txid, prepared.sig_items.clone()));
            }
            self.insert(Arc::new(tx), prepared, now_ms);
            inserted_at.insert(txid, results.len());
            results.push(Ok(txid));
        }

        let all: Vec<SigItem> = unverified
            .iter()
            .flat_map(|(_, _, items)| items.iter().copied())
            .collect();
        if self.verify_all(&all).is_err() {
            // Find the culprits one by one; their descendants in the batch go with them.
            for (index, txid, items) in &unverified {
                if !self.entries.contains_key(txid) || self.verify_one(items).is_ok() {
                    continue;
                }
                for removed in self.remove_with_descendants(txid) {
                    let slot = unverified.iter().find(|(_, id, _)| *id == removed).map(|(i, _, _)| *i);
                    if let Some(result) = slot.and_then(|i| results.get_mut(i)) {
                        *result = Err(MempoolError::ParentRejected(*txid));
                    }
                }
                if let Some(result) = results.get_mut(*index) {
                    *result = Err(TxError::BadSignature.into());
                }
            }
        }

        self.trim(now_ms);
        for result in &mut results {
            if let Ok(txid) = result
                && !self.entries.contains_key(txid)
            {
                *result = Err(MempoolError::Full(*txid));
            }
        }
        for (copy, first) in copies {
            let verdict = match results.get(first) {
                Some(Ok(txid)) => Err(MempoolError::AlreadyInPool(*txid)),
                Some(Err(error)) => Err(error.clone()),
                None => continue,
            };
            if let Some(result) = results.get_mut(copy) {
                *result = verdict;
            }
        }
        results
    }

    /// Drops expired transactions, then evicts the lowest descendant-score packages until the
    /// pool is within its limits, raising the rolling minimum fee rate past each evicted
    /// package's rate. Returns what was removed.
    pub fn trim(&mut self, now_ms: u64) -> Vec<TxId> {
        let mut removed = self.expire(now_ms);
        while self.entries.len() > self.config.max_transactions || self.usage > self.config.max_bytes {
            let Some(&(score, worst)) = self.by_descendant_score.first() else {
                break;
            };
            removed.extend(self.remove_with_descendants(&worst));
            let floor = score.fee_rate().0.saturating_add(self.config.incremental_fee_rate.0) as f64;
            if floor > self.rolling_min_fee {
                self.rolling_min_fee = floor;
            }
            self.rolling_updated_ms = now_ms;
            self.block_since_bump = false;
        }
        removed
    }

    /// Drops transactions older than the expiry, with their descendants.
    pub fn expire(&mut self, now_ms: u64) -> Vec<TxId> {
        let cutoff = now_ms.saturating_sub(self.config.expiry_ms);
        let mut removed = Vec::new();
        while let Some(&(time, txid)) = self.by_time.first() {
            if time >= cutoff {
                break;
            }
            removed.extend(self.remove_with_descendants(&txid));
        }
        removed
    }

    /// Updates the pool for a block applied to the chain: included transactions leave,
    /// transactions that spend what the block spent leave with their descendants, and every
    /// remaining transaction's confirmed inputs are re-checked against `view` (the UTXO set
    /// after the block).
    pub fn block_connected(&mut self, block: &Block, view: &impl UtxoView) -> Result<BlockRemoval, ViewError> {
        self.tip_height = block.header.height;
        self.block_since_bump = true;
        let mut removal = BlockRemoval::default();
        for tx in &block.transactions {
            let txid = tx.txid();
            if self.remove_entry(&txid).is_some() {
                removal.included.push(txid);
            }
            for input in &tx.inputs {
                if let Some(other) = self.spends.get(&input.prevout).copied() {
                    removal.conflicted.extend(self.remove_with_descendants(&other));
                }
                // A registration naming what the block spent as its collateral.
                if let Some(other) = self.claims.get(&Claim::Collateral(input.prevout)).copied() {
                    removal.conflicted.extend(self.remove_with_descendants(&other));
                }
            }
        }
        let mut stale = Vec::new();
        // A block that changed the masternode list can make a waiting masternode transaction
        // (or a spend of a newly registered collateral) invalid: every entry is checked. Its
        // evidence bans masternodes, whose updates and unlocks then wait in vain.
        let list_changed = !block.evidence.is_empty() || block.transactions.iter().any(|tx| tx.payload.is_some());
        if list_changed {
            let ctx = self.next_block_context();
            let pool_view = self.view_over(view);
            for (txid, entry) in &self.entries {
                if timecoin_chain::check_masternode_rules(&entry.tx, *txid, &pool_view, &ctx).is_err() {
                    stale.push(*txid);
                }
            }
        }
        // Spends of what the block spent were removed above. As a safety net against a chain
        // state the pool did not follow, a rolling window of entries has its confirmed inputs
        // looked up again: bounded work per block, the whole pool in turn.
        let window = (2 * block.transactions.len()).max(MIN_RECHECK_PER_BLOCK);
        for txid in self.next_recheck_window(window) {
            let Some(entry) = self.entries.get(&txid) else {
                continue;
            };
            for input in &entry.tx.inputs {
                if !self.entries.contains_key(&input.prevout.txid) && view.utxo(&input.prevout)?.is_none() {
                    stale.push(txid);
                    break;
                }
            }
        }
        for txid in stale {
            removal.invalidated.extend(self.remove_with_descendants(&txid));
        }
        Ok(removal)
    }

    /// The next `count` entries in arrival order after the recheck cursor, wrapping around
    /// once; moves the cursor past them.
    fn next_recheck_window(&mut self, count: usize) -> Vec<TxId> {
        use std::ops::Bound::{Excluded, Unbounded};
        let after = match self.recheck_cursor {
            Some(cursor) => self.by_time.range((Excluded(cursor), Unbounded)),
            None => self.by_time.range(..),
        };
        let mut window: Vec<(u64, TxId)> = after.take(count).copied().collect();
        if window.len() < count {
            let first = window.first().copied();
            window.extend(
                self.by_time
                    .iter()
                    .take_while(|key| Some(**key) != first)
                    .take(count - window.len())
                    .copied(),
            );
        }
        self.recheck_cursor = window.last().copied();
        window.into_iter().map(|(_, txid)| txid).collect()
    }

    /// The score of `txid` with its not-yet-included ancestors, and those ancestors.
    fn package(&self, txid: &TxId, included: &HashSet<TxId>) -> (Score, Vec<TxId>) {
        let mut members = vec![*txid];
        let Some(entry) = self.entries.get(txid) else {
            return (Score { fee: 0, size: 0 }, members);
        };
        if entry.parents.is_empty() {
            // Most transactions spend confirmed outputs only: their package is themselves.
            let score = Score {
                fee: entry.fee.units(),
                size: entry.size as u64,
            };
            return (score, members);
        }
        let mut stack: Vec<TxId> = entry.parents.to_vec();
        let mut seen: HashSet<TxId> = HashSet::new();
        while let Some(id) = stack.pop() {
            if included.contains(&id) || !seen.insert(id) {
                continue;
            }
            if let Some(entry) = self.entries.get(&id) {
                members.push(id);
                stack.extend(entry.parents.iter().copied());
            }
        }
        let mut score = Score { fee: 0, size: 0 };
        for id in &members {
            if let Some(entry) = self.entries.get(id) {
                score.fee = score.fee.saturating_add(entry.fee.units());
                score.size = score.size.saturating_add(entry.size as u64);
            }
        }
        (score, members)
    }

    /// Chooses transactions for a block: highest package fee rate first (a child paying for
    /// its parents counts with them), parents before children, within `max_bytes` and
    /// `max_txs`.
    pub fn block_template(&self, max_bytes: usize, max_txs: usize) -> BlockTemplate {
        let mut heap: BinaryHeap<(Score, Reverse<TxId>)> = self
            .entries
            .keys()
            .map(|txid| (self.package(txid, &HashSet::new()).0, Reverse(*txid)))
            .collect();
        let mut included: HashSet<TxId> = HashSet::new();
        let mut skipped: HashSet<TxId> = HashSet::new();
        let mut template = BlockTemplate::default();
        let mut misses = 0;
        while let Some((score, Reverse(txid))) = heap.pop() {
            // Once the block is (nearly) full, looking further only costs time (Bitcoin
            // Core's rule: stop after a run of misses within 4 kB of the limit).
            if template.transactions.len() >= max_txs
                || (misses >= MAX_TEMPLATE_MISSES && template.size + TEMPLATE_NEARLY_FULL >= max_bytes)
            {
                break;
            }
            if included.contains(&txid) || skipped.contains(&txid) {
                continue;
            }
            let (current, mut members) = self.package(&txid, &included);
            if current.fee != score.fee || current.size != score.size {
                // Some ancestors were included since this score was computed.
                heap.push((current, Reverse(txid)));
                continue;
            }
            let package_size = usize::try_from(current.size).unwrap_or(usize::MAX);
            if template.size.saturating_add(package_size) > max_bytes
                || template.transactions.len() + members.len() > max_txs
            {
                skipped.insert(txid);
                misses += 1;
                continue;
            }
            misses = 0;
            members.sort_by_cached_key(|id| self.entries.get(id).map_or(0, |e| self.ancestors(&e.parents).len()));
            for id in &members {
                if let Some(entry) = self.entries.get(id) {
                    template.transactions.push(Arc::clone(&entry.tx));
                    template.fees = template.fees.checked_add(entry.fee).unwrap_or(template.fees);
                    template.size += entry.size;
                    included.insert(*id);
                }
            }
            for id in &members {
                for child in self.entries.get(id).map(|e| e.children.iter()).into_iter().flatten() {
                    if !included.contains(child) {
                        heap.push((self.package(child, &included).0, Reverse(*child)));
                    }
                }
            }
        }
        template
    }

    /// Checks the pool's internal bookkeeping against a recomputation; for tests.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut usage = 0;
        let mut size = 0;
        for (txid, entry) in &self.entries {
            usage += entry.usage;
            size += entry.size;
            let family = self.with_descendants(txid);
            let fee: u64 = family
                .iter()
                .filter_map(|id| self.entries.get(id))
                .map(|e| e.fee.units())
                .sum();
            let bytes: u64 = family
                .iter()
                .filter_map(|id| self.entries.get(id))
                .map(|e| e.size as u64)
                .sum();
            if (fee, bytes, family.len()) != (entry.descendant_fee, entry.descendant_size, entry.descendant_count) {
                return Err(format!("descendant stats of {txid} are stale"));
            }
            if !self.by_descendant_score.contains(&(entry.descendant_score(), *txid)) {
                return Err(format!("{txid} missing from the eviction index"));
            }
            for input in &entry.tx.inputs {
                if self.spends.get(&input.prevout) != Some(txid) {
                    return Err(format!("spend of {} by {txid} not indexed", input.prevout));
                }
                let in_pool = self.entries.contains_key(&input.prevout.txid);
                if in_pool != entry.parents.contains(&input.prevout.txid) {
                    return Err(format!("parent links of {txid} are wrong"));
                }
            }
        }
        if usage != self.usage || size != self.total_size {
            return Err("usage totals are stale".to_owned());
        }
        if self.by_descendant_score.len() != self.entries.len() || self.by_time.len() != self.entries.len() {
            return Err("index sizes differ from the entry count".to_owned());
        }
        let spends: usize = self.entries.values().map(|e| e.tx.inputs.len()).sum();
        if spends != self.spends.len() {
            return Err("spend index size is wrong".to_owned());
        }
        Ok(())
    }
}
