//! The entry graph: entries linked to their in-pool parents and children, the spend, claim,
//! score and time indexes kept with them, the descendant statistics of every ancestor, and
//! the memory each entry is charged for.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use timecoin_primitives::{OutPoint, Transaction, TxId, TxInput, TxOutput};

use super::claims::claims;
use super::{Entry, Mempool, Prepared, Score};

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

impl Mempool {
    pub(super) fn ancestors(&self, parents: &[TxId]) -> HashSet<TxId> {
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
    pub(super) fn with_descendants(&self, txid: &TxId) -> HashSet<TxId> {
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

    pub(super) fn insert(&mut self, tx: Arc<Transaction>, prepared: Prepared, now_ms: u64) {
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
    pub(super) fn remove_entry(&mut self, txid: &TxId) -> Option<Entry> {
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
