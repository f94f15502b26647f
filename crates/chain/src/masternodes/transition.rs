//! A block's transition of the list, in the three steps block validation also follows:
//! [`MasternodeList::begin_block`], [`MasternodeList::apply_transaction`] for each
//! transaction, and [`MasternodeList::end_block`].

use std::collections::HashMap;

use timecoin_primitives::{Block, Payload, PublicKey, Transaction, TxId};

use crate::params::ChainParams;
use crate::reward::{block_reward, reward_shares};

use super::{Entry, FormerOperator, MasternodeList, Status};

impl MasternodeList {
    /// Step one of a block's transition: the proof-of-service record from the block's
    /// certificate of its parent, and bans from its evidence.
    pub fn begin_block(&mut self, block: &Block, params: &ChainParams) {
        let height = block.header.height;
        if let Some(certificate) = &block.last_commit {
            let signed: std::collections::HashSet<PublicKey> =
                certificate.signatures.iter().map(|s| s.validator).collect();
            let position = operator_positions(&self.entries);
            let cap = params.pose_ban_threshold.saturating_mul(2);
            for member in self.signers.members() {
                let operator = member.operator;
                let entry = position
                    .get(&operator)
                    .and_then(|i| self.entries.get_mut(*i))
                    .filter(|e| e.is_active());
                if let Some(entry) = entry {
                    entry.penalty = if signed.contains(&operator) {
                        entry.penalty.saturating_sub(1)
                    } else {
                        entry.penalty.saturating_add(params.pose_miss_penalty).min(cap)
                    };
                }
            }
        }
        for entry in &mut self.entries {
            if matches!(entry.status, Status::PoseBanned { .. }) {
                entry.penalty = entry.penalty.saturating_sub(1);
            }
        }
        for evidence in &block.evidence {
            let offender = self
                .by_operator_at(&evidence.validator(), evidence.height())
                .map(|e| e.id);
            if let Some(entry) = offender.and_then(|id| self.get_mut(&id)) {
                entry.status = Status::Banned {
                    until: height.saturating_add(params.evidence_ban_blocks),
                };
            }
        }
    }

    /// Step two: the effect of one valid transaction (its payload, and the removal of a
    /// masternode whose collateral it spends).
    pub fn apply_transaction(&mut self, tx: &Transaction, txid: TxId, height: u64, params: &ChainParams) {
        let delay = params.masternode_activation_blocks.max(1);
        match &tx.payload {
            Some(Payload::Register(r)) => {
                let entry = Entry {
                    id: txid,
                    operator: r.operator,
                    owner: r.owner,
                    tier: r.tier,
                    collateral: Some(r.collateral_outpoint(txid)),
                    reward_address: r.reward_address,
                    service: Some(r.service),
                    registered_height: height,
                    operator_since: height,
                    status: Status::Pending {
                        active_from: height.saturating_add(delay),
                    },
                    penalty: 0,
                    last_paid: None,
                };
                if let Err(at) = self.entries.binary_search_by_key(&txid, |e| e.id) {
                    self.entries.insert(at, entry);
                }
            }
            Some(Payload::Update(u)) => {
                // Validation refuses an update or a revocation during a double-signing
                // ban; the list never lifts a ban early whatever it is given.
                let mut replaced = None;
                if let Some(entry) = self.get_mut(&u.masternode).filter(|e| e.banned_until(height).is_none()) {
                    if entry.operator != u.operator {
                        replaced = Some(FormerOperator {
                            masternode: entry.id,
                            operator: entry.operator,
                            since: entry.operator_since,
                            until: height,
                        });
                        entry.operator = u.operator;
                        entry.operator_since = height;
                    }
                    entry.reward_address = u.reward_address;
                    entry.service = Some(u.service);
                    if !matches!(entry.status, Status::Active { .. } | Status::Pending { .. }) {
                        entry.penalty = 0;
                        entry.status = Status::Pending {
                            active_from: height.saturating_add(delay),
                        };
                    }
                }
                // A key set and replaced in one block never signed for it.
                if let Some(former) = replaced.filter(|f| f.since < f.until) {
                    let at = self
                        .former
                        .partition_point(|f| (f.masternode, f.until) < (former.masternode, former.until));
                    self.former.insert(at, former);
                }
            }
            Some(Payload::Revoke(r)) => {
                if let Some(entry) = self.get_mut(&r.masternode).filter(|e| e.banned_until(height).is_none()) {
                    entry.status = Status::Revoked { at: height };
                }
            }
            Some(Payload::Unlock(_)) | None => {}
        }
        if tx.payload.is_some() {
            self.index_collaterals();
        }
        // Spending a collateral removes its masternode (validation allows it only in an
        // unlock transaction).
        if !self.collaterals.is_empty() {
            let spent: Vec<TxId> = tx
                .inputs
                .iter()
                .filter_map(|input| self.by_collateral(&input.prevout).map(|e| e.id))
                .collect();
            if !spent.is_empty() {
                self.entries.retain(|e| !spent.contains(&e.id));
                self.former.retain(|f| !spent.contains(&f.masternode));
                self.index_collaterals();
            }
        }
    }

    /// Step three: payment records, proof-of-service exclusions and activations; fixes the
    /// voting set of the next block.
    pub fn end_block(&mut self, block: &Block, params: &ChainParams) {
        let height = block.header.height;
        let reward = block_reward(params, self.tip_timestamp_ms, block.header.timestamp_ms);
        let payees = self.payees(params);
        let position = operator_positions(&self.entries);
        for (payee, share) in reward_shares(&payees, reward) {
            if share > 0
                && let Some(entry) = position.get(&payee.operator).and_then(|i| self.entries.get_mut(*i))
            {
                entry.last_paid = Some(height);
            }
        }
        self.exclude_for_missed_service(height, params);
        for entry in &mut self.entries {
            if let Status::Pending { active_from } = entry.status
                && active_from <= height.saturating_add(1)
            {
                entry.status = Status::Active {
                    since_ms: block.header.timestamp_ms,
                };
            }
        }
        let previous = std::mem::take(&mut self.voting);
        self.reindex();
        if self.voting != previous {
            self.set_since = height.saturating_add(1);
        }
        self.signers = previous;
        self.tip_timestamp_ms = block.header.timestamp_ms;
        // Evidence in the next block reaches back `max_evidence_age_blocks`; a key replaced
        // before that can no longer be named.
        let oldest_offence = height.saturating_add(1).saturating_sub(params.max_evidence_age_blocks);
        self.former.retain(|f| f.until >= oldest_offence);
    }

    /// Excludes active masternodes whose penalty reached the threshold, highest penalty
    /// first, but never so many that the chain could halt: the excluded power stays below a
    /// third of the power that would vote without exclusions, and the voting set keeps at
    /// least the network's minimum number of masternodes.
    fn exclude_for_missed_service(&mut self, height: u64, params: &ChainParams) {
        let mut candidates: Vec<(u32, TxId)> = self
            .entries
            .iter()
            .filter(|e| e.is_active() && e.penalty >= params.pose_ban_threshold)
            .map(|e| (e.penalty, e.id))
            .collect();
        if candidates.is_empty() {
            return;
        }
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let power = |e: &Entry| e.tier.weight();
        let eligible: u64 = self
            .entries
            .iter()
            .filter(|e| e.is_active() || matches!(e.status, Status::PoseBanned { .. }))
            .map(power)
            .sum();
        let mut excluded: u64 = self
            .entries
            .iter()
            .filter(|e| matches!(e.status, Status::PoseBanned { .. }))
            .map(power)
            .sum();
        let mut voting = self.entries.iter().filter(|e| e.is_active() && power(e) > 0).count();
        for (_, id) in candidates {
            let Some(entry) = self.get_mut(&id) else { continue };
            let weight = entry.tier.weight();
            let after = excluded.saturating_add(weight);
            let keeps_quorum = u128::from(after) * 3 < u128::from(eligible);
            let keeps_minimum = voting.saturating_sub(usize::from(weight > 0)) >= params.min_masternodes;
            if keeps_quorum && keeps_minimum {
                entry.status = Status::PoseBanned { since: height };
                excluded = after;
                voting = voting.saturating_sub(usize::from(weight > 0));
            }
        }
    }

    /// The whole transition of `block` (already validated against this list).
    pub fn apply_block(&mut self, block: &Block, params: &ChainParams) {
        self.begin_block(block, params);
        for tx in &block.transactions {
            self.apply_transaction(tx, tx.txid(), block.header.height, params);
        }
        self.end_block(block, params);
    }
}

/// Each entry's position by operator key (keys are unique in the list).
fn operator_positions(entries: &[Entry]) -> HashMap<PublicKey, usize> {
    entries.iter().enumerate().map(|(i, e)| (e.operator, i)).collect()
}
