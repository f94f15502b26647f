//! Block templates: the pool's transactions chosen by package fee rate (a child paying for
//! its parents counts with them), parents before children, within a size and count limit.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::sync::Arc;

use timecoin_chain::FeeRate;
use timecoin_primitives::{Amount, Transaction, TxId};

use super::{Mempool, Score};

/// A template stops after this many packages in a row did not fit, once it is within
/// [`TEMPLATE_NEARLY_FULL`] bytes of its limit.
const MAX_TEMPLATE_MISSES: usize = 1_000;
/// See [`MAX_TEMPLATE_MISSES`].
const TEMPLATE_NEARLY_FULL: usize = 4_000;

/// A block's worth of transactions chosen by the pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockTemplate {
    /// Transactions in an order where parents precede children.
    pub transactions: Vec<Arc<Transaction>>,
    /// Their total fee.
    pub fees: Amount,
    /// Their total encoded size.
    pub size: usize,
    /// The lowest package score chosen.
    pub lowest: Option<Score>,
    /// Whether waiting transactions were left out for lack of room.
    pub full: bool,
}

impl Mempool {
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
                template.full = true;
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
                template.full = true;
                misses += 1;
                continue;
            }
            misses = 0;
            template.lowest = Some(template.lowest.map_or(current, |lowest| lowest.min(current)));
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

    /// The fee rate a new transaction (one with no ancestor in the pool) needs to be chosen
    /// within the next `blocks` blocks of `max_bytes` and `max_txs` each, as the pool stands:
    /// just above the lowest package that would be chosen when the pool holds more than they
    /// take, else the lowest rate the pool admits now. What arrives later, or leaves, is not
    /// foreseen: it is the pool's state, not a history of blocks.
    pub fn fee_estimate(&mut self, blocks: usize, max_bytes: usize, max_txs: usize, now_ms: u64) -> FeeRate {
        let floor = self.min_fee_rate(now_ms);
        let (room, count) = (
            max_bytes.saturating_mul(blocks.max(1)),
            max_txs.saturating_mul(blocks.max(1)),
        );
        if self.total_size() <= room && self.len() <= count {
            // Everything waiting fits: no template needed.
            return floor;
        }
        let template = self.block_template(room, count);
        match template.lowest {
            Some(lowest) if template.full => FeeRate(lowest.fee_rate().0.saturating_add(1).max(floor.0)),
            _ => floor,
        }
    }
}
