//! Admission: a transaction is checked against the chain rules (over the tip's UTXO set and
//! the pool's own outputs), the pool's conflicts and replacement rules, the dust and fee
//! policy and the chain limits, then its signatures are verified (in batches) and it enters
//! the pool.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use timecoin_chain::{
    SigItem, TxContext, TxError, Utxo, UtxoView, ViewError, check_tx_contextual, check_tx_stateless, verify_batch,
    verify_signatures,
};
use timecoin_primitives::{Amount, Encode, OutPoint, Transaction, TxId};

use super::claims::{Claim, claims};
use super::{Entry, Mempool, Prepared, Score};
use crate::error::{MempoolError, rate};

/// The pool's outputs over the chain state.
pub(super) struct PoolView<'a, V> {
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

impl Mempool {
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

    /// Where pool transactions are judged: the block after the tip.
    pub(super) fn next_block_context(&self) -> TxContext<'_> {
        TxContext {
            params: &self.params,
            genesis_hash: self.genesis_hash,
            height: self.tip_height.saturating_add(1),
        }
    }

    /// The pool's outputs over `view`.
    pub(super) fn view_over<'a, V>(&'a self, view: &'a V) -> PoolView<'a, V> {
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
}
