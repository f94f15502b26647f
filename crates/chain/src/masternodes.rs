//! The deterministic masternode list: derived from the chain alone, block by block.
//!
//! The list after block `h` is a pure function of the list after `h - 1` and block `h`, so
//! every node computes the same list at every height. It holds every registered masternode
//! (its keys, tier, collateral, status and proof-of-service penalty), the operator keys
//! masternodes held before an update replaced them, for as long as evidence signed with them
//! may enter a block (so that rotating a key does not escape a ban), the set that signed the
//! tip (to verify the next block's certificate of it), and when the voting set last changed
//! (where proposer priorities restart).
//!
//! A block's transition runs in three steps, which block validation also follows on a copy:
//! [`MasternodeList::begin_block`] (proof of service from the block's certificate of its
//! parent, bans from its evidence), [`MasternodeList::apply_transaction`] for each
//! transaction in order, and [`MasternodeList::end_block`] (payment records, proof-of-service
//! exclusions, activations). The voting set the next block's certificate needs is fixed
//! when `end_block` returns.

use std::collections::HashMap;
use std::net::SocketAddr;

use timecoin_primitives::encoding::{Reader, compact_size_len, socket_addr_len, write_compact_size, write_socket_addr};
use timecoin_primitives::limits::MAX_MASTERNODES;
use timecoin_primitives::{
    AddressPayload, Block, Decode, DecodeError, Domain, Encode, Hash256, Masternode, MasternodeSet, OutPoint, Payload,
    PublicKey, Tier, Transaction, TxId, genesis_masternode_id,
};

use crate::params::ChainParams;
use crate::reward::{block_reward, reward_shares};

/// Where a masternode stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Registered (or re-announced); joins the voting set for block `active_from`.
    Pending {
        /// The first height it votes on.
        active_from: u64,
    },
    /// In the voting set.
    Active {
        /// Chain time (ms) since which it has been active; 0 for genesis masternodes.
        since_ms: u64,
    },
    /// Excluded for missing precommits; returns by an update once its penalty is zero.
    PoseBanned {
        /// The height it was excluded at.
        since: u64,
    },
    /// Excluded for double-signing until `until`; until then its collateral stays locked
    /// and it can neither update nor revoke (a revocation would end the ban early).
    Banned {
        /// The first height at which it may re-announce or unlock.
        until: u64,
    },
    /// Revoked by its operator; returns by an owner's update, or leaves by an unlock a whole
    /// evidence window later ([`Entry::unlockable_from`]).
    Revoked {
        /// The height of the revocation.
        at: u64,
    },
}

impl Status {
    /// The name APIs show.
    pub fn name(&self) -> &'static str {
        match self {
            Status::Pending { .. } => "pending",
            Status::Active { .. } => "active",
            Status::PoseBanned { .. } => "pose-banned",
            Status::Banned { .. } => "banned",
            Status::Revoked { .. } => "revoked",
        }
    }
}

/// One masternode of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Its id: the registration txid (for genesis masternodes, [`genesis_masternode_id`]).
    pub id: TxId,
    /// The consensus key.
    pub operator: PublicKey,
    /// The key that signs updates (the operator key for genesis masternodes).
    pub owner: PublicKey,
    /// The tier.
    pub tier: Tier,
    /// The locked output (none for genesis masternodes).
    pub collateral: Option<OutPoint>,
    /// Where rewards go.
    pub reward_address: AddressPayload,
    /// The announced P2P address (none for genesis masternodes).
    pub service: Option<SocketAddr>,
    /// The height of its registration (0 for genesis masternodes).
    pub registered_height: u64,
    /// The height of the block that gave it `operator` (its registration's, or an update's):
    /// the key signs for it from the next height on, so evidence at that height or before is
    /// not its ([`MasternodeList::former_operators`] keeps the keys it held before).
    pub operator_since: u64,
    /// Its status.
    pub status: Status,
    /// The proof-of-service penalty.
    pub penalty: u32,
    /// The last height whose reward paid it.
    pub last_paid: Option<u64>,
}

impl Entry {
    fn masternode(&self) -> Masternode {
        Masternode {
            operator: self.operator,
            tier: self.tier,
            reward_address: self.reward_address,
        }
    }

    fn is_active(&self) -> bool {
        matches!(self.status, Status::Active { .. })
    }

    /// When it may re-announce or unlock, if a double-signing ban still holds at `height`.
    pub fn banned_until(&self, height: u64) -> Option<u64> {
        match self.status {
            Status::Banned { until } if until > height => Some(until),
            _ => None,
        }
    }

    /// The first height at which its collateral may be unlocked: `max_evidence_age_blocks`
    /// after the last height it voted on, and not before a double-signing ban ends. The last
    /// block that may carry evidence of its last votes is that height itself, and a block's
    /// evidence applies before its transactions, so every offence it committed while voting
    /// can still ban it before its collateral is free. `None` while it is active or pending:
    /// it must leave the voting set first (a revocation).
    pub fn unlockable_from(&self, params: &ChainParams) -> Option<u64> {
        // The height it left the voting set at: the set of the next block no longer held it.
        let left = match self.status {
            Status::Active { .. } | Status::Pending { .. } => return None,
            // Revoked while pending, it last voted before that: waiting from here is longer.
            Status::Revoked { at } => at,
            Status::PoseBanned { since } => since,
            Status::Banned { until } => until.saturating_sub(params.evidence_ban_blocks),
        };
        let after_evidence = left.saturating_add(params.max_evidence_age_blocks);
        Some(match self.status {
            Status::Banned { until } => after_evidence.max(until),
            _ => after_evidence,
        })
    }

    /// Whether its current operator key signed for it at `height`.
    fn operator_at(&self, operator: &PublicKey, height: u64) -> bool {
        self.operator == *operator && height > self.operator_since
    }
}

/// An operator key a masternode held before an update replaced it, kept while evidence
/// signed with it may still enter a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FormerOperator {
    /// The masternode.
    pub masternode: TxId,
    /// The key.
    pub operator: PublicKey,
    /// The height of the block that gave it the key.
    pub since: u64,
    /// The height of the block that replaced it: the last height the key signed for it.
    pub until: u64,
}

impl FormerOperator {
    const ENCODED_LEN: usize = 32 + 32 + 8 + 8;

    /// Whether the key signed for its masternode at `height`.
    fn held_at(&self, height: u64) -> bool {
        self.since < height && height <= self.until
    }
}

/// The masternode list of one chain state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MasternodeList {
    /// Sorted by id.
    entries: Vec<Entry>,
    /// The voting set that signed the tip block.
    signers: MasternodeSet,
    /// The first height of the current voting set.
    set_since: u64,
    /// The tip block's timestamp.
    tip_timestamp_ms: u64,
    /// Replaced operator keys evidence may still name, sorted by (masternode, until).
    former: Vec<FormerOperator>,
    /// Derived: the voting set of the next block.
    voting: MasternodeSet,
    /// Derived: collateral outpoint → index in `entries`.
    collaterals: HashMap<OutPoint, usize>,
}

/// The empty list, for views that hold no chain state.
pub static EMPTY_LIST: std::sync::LazyLock<MasternodeList> = std::sync::LazyLock::new(MasternodeList::default);

impl MasternodeList {
    /// The most masternodes the list may hold, every status counted: as many as one voting
    /// set may hold, so that every masternode of the list can vote at once. Validation
    /// refuses a registration into a full list ([`MasternodeList::is_full`]).
    pub const MAX_LEN: usize = MAX_MASTERNODES;

    /// The most replaced operator keys one masternode may have within the evidence window
    /// (`max_evidence_age_blocks`): validation refuses a further key rotation until the
    /// oldest ages out, which bounds what the list keeps.
    pub const MAX_FORMER_OPERATORS: usize = 8;

    /// The list of a chain whose genesis block names `set`, made at `timestamp_ms`: every
    /// member is active from the first block and eligible for rewards at once.
    pub fn from_genesis(set: &MasternodeSet, timestamp_ms: u64) -> MasternodeList {
        let mut entries: Vec<Entry> = set
            .members()
            .iter()
            .map(|m| Entry {
                id: genesis_masternode_id(&m.operator),
                operator: m.operator,
                owner: m.operator,
                tier: m.tier,
                collateral: None,
                reward_address: m.reward_address,
                service: None,
                registered_height: 0,
                operator_since: 0,
                status: Status::Active { since_ms: 0 },
                penalty: 0,
                last_paid: None,
            })
            .collect();
        entries.sort_by_key(|e| e.id);
        let mut list = MasternodeList {
            entries,
            signers: MasternodeSet::default(),
            set_since: 1,
            tip_timestamp_ms: timestamp_ms,
            former: Vec::new(),
            voting: MasternodeSet::default(),
            collaterals: HashMap::new(),
        };
        list.reindex();
        list
    }

    /// Recomputes both derived indexes (after decoding, and at the end of a block).
    fn reindex(&mut self) {
        self.voting = voting_set_of(&self.entries);
        self.index_collaterals();
    }

    /// Recomputes the collateral index only: inside a block, transactions change which
    /// outputs are locked at once, but the voting set stays the one that signs the block
    /// until [`MasternodeList::end_block`].
    fn index_collaterals(&mut self) {
        self.collaterals = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.collateral.map(|c| (c, i)))
            .collect();
    }

    /// Every masternode, sorted by id.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Whether the list holds [`MasternodeList::MAX_LEN`] masternodes: a registration must
    /// wait until one leaves.
    pub fn is_full(&self) -> bool {
        self.entries.len() >= Self::MAX_LEN
    }

    /// The set whose precommits finalize the next block.
    pub fn voting_set(&self) -> &MasternodeSet {
        &self.voting
    }

    /// The set that signed the tip block (empty at genesis).
    pub fn signers(&self) -> &MasternodeSet {
        &self.signers
    }

    /// The first height of the current voting set: proposer priorities start there.
    pub fn set_since(&self) -> u64 {
        self.set_since
    }

    /// The masternode with this id.
    pub fn get(&self, id: &TxId) -> Option<&Entry> {
        self.entries
            .binary_search_by_key(id, |e| e.id)
            .ok()
            .and_then(|i| self.entries.get(i))
    }

    fn get_mut(&mut self, id: &TxId) -> Option<&mut Entry> {
        self.entries
            .binary_search_by_key(id, |e| e.id)
            .ok()
            .and_then(|i| self.entries.get_mut(i))
    }

    /// The masternode whose operator key is `operator`.
    pub fn by_operator(&self, operator: &PublicKey) -> Option<&Entry> {
        self.entries.iter().find(|e| e.operator == *operator)
    }

    /// The masternode for which `operator` signed at `height`: the one whose key it is now
    /// (set by a block before `height`), or the one that held it then and has replaced it
    /// since. Keys are unique in the list after every block, so at most one masternode held
    /// a key at a height.
    pub fn by_operator_at(&self, operator: &PublicKey, height: u64) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.operator_at(operator, height))
            .or_else(|| {
                self.former
                    .iter()
                    .find(|f| f.operator == *operator && f.held_at(height))
                    .and_then(|f| self.get(&f.masternode))
            })
    }

    /// The operator keys masternode `id` held before its current one, oldest first, as far
    /// back as evidence may still reach.
    pub fn former_operators(&self, id: &TxId) -> &[FormerOperator] {
        let start = self.former.partition_point(|f| f.masternode < *id);
        let end = self.former.partition_point(|f| f.masternode <= *id);
        self.former.get(start..end).unwrap_or_default()
    }

    /// The masternode whose collateral is `outpoint`.
    pub fn by_collateral(&self, outpoint: &OutPoint) -> Option<&Entry> {
        self.collaterals.get(outpoint).and_then(|i| self.entries.get(*i))
    }

    /// The masternode announcing `service`.
    pub fn by_service(&self, service: &SocketAddr) -> Option<&Entry> {
        self.entries.iter().find(|e| e.service == Some(*service))
    }

    /// The masternodes a block extending this state pays: active ones, active for a whole
    /// reward period of chain time before the block's parent.
    pub fn payees(&self, params: &ChainParams) -> MasternodeSet {
        set_of(self.entries.iter().filter(|e| match e.status {
            Status::Active { since_ms } => since_ms.saturating_add(params.reward_period_ms) <= self.tip_timestamp_ms,
            _ => false,
        }))
    }

    /// The hash a block header's state hash covers.
    pub fn hash(&self) -> Hash256 {
        Domain::MasternodeList.hash_encoded(self)
    }

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

fn voting_set_of(entries: &[Entry]) -> MasternodeSet {
    set_of(entries.iter().filter(|e| e.is_active()))
}

/// The members with voting power among `entries` (in id order), as a set.
///
/// Validation keeps operator keys unique and the list within [`MasternodeList::MAX_LEN`],
/// so every one of them is a member. A list that broke those rules (a bug, a damaged store)
/// must still not come out with an empty set, which would halt the chain for good: a key
/// shared by several masternodes votes for the first by id, and past the limit the
/// heaviest vote (the first by id among equals).
fn set_of<'a>(entries: impl Iterator<Item = &'a Entry>) -> MasternodeSet {
    let mut keys = std::collections::HashSet::new();
    let mut voters: Vec<&Entry> = entries
        .filter(|e| e.tier.weight() > 0 && keys.insert(e.operator))
        .collect();
    if voters.len() > MAX_MASTERNODES {
        voters.sort_by(|a, b| b.tier.weight().cmp(&a.tier.weight()).then(a.id.cmp(&b.id)));
        voters.truncate(MAX_MASTERNODES);
    }
    // Unique keys, within the limit: `new` cannot fail.
    MasternodeSet::new(voters.into_iter().map(Entry::masternode).collect()).unwrap_or_default()
}

const STATUS_PENDING: u8 = 0;
const STATUS_ACTIVE: u8 = 1;
const STATUS_POSE_BANNED: u8 = 2;
const STATUS_BANNED: u8 = 3;
const STATUS_REVOKED: u8 = 4;

/// An optional field: a presence byte (0 or 1), then the value.
fn write_option<T>(out: &mut Vec<u8>, value: Option<&T>, write: impl FnOnce(&mut Vec<u8>, &T)) {
    match value {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            write(out, v);
        }
    }
}

fn read_option<'r, 'a, T>(
    reader: &'r mut Reader<'a>,
    field: &'static str,
    read: impl FnOnce(&'r mut Reader<'a>) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    match reader.read_u8()? {
        0 => Ok(None),
        1 => read(reader).map(Some),
        _ => Err(DecodeError::InvalidValue {
            field,
            reason: "expected presence byte 0 or 1",
        }),
    }
}

impl Encode for Entry {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.id.encode_to(out);
        self.operator.encode_to(out);
        self.owner.encode_to(out);
        out.push(self.tier.code());
        write_option(out, self.collateral.as_ref(), |out, c| c.encode_to(out));
        self.reward_address.encode_to(out);
        write_option(out, self.service.as_ref(), write_socket_addr);
        out.extend_from_slice(&self.registered_height.to_le_bytes());
        out.extend_from_slice(&self.operator_since.to_le_bytes());
        let (code, value) = match self.status {
            Status::Pending { active_from } => (STATUS_PENDING, active_from),
            Status::Active { since_ms } => (STATUS_ACTIVE, since_ms),
            Status::PoseBanned { since } => (STATUS_POSE_BANNED, since),
            Status::Banned { until } => (STATUS_BANNED, until),
            Status::Revoked { at } => (STATUS_REVOKED, at),
        };
        out.push(code);
        out.extend_from_slice(&value.to_le_bytes());
        out.extend_from_slice(&self.penalty.to_le_bytes());
        write_option(out, self.last_paid.as_ref(), |out, h| {
            out.extend_from_slice(&h.to_le_bytes())
        });
    }

    fn encoded_len(&self) -> usize {
        let collateral = 1 + if self.collateral.is_some() { 36 } else { 0 };
        let service = 1 + self.service.as_ref().map_or(0, socket_addr_len);
        let last_paid = 1 + if self.last_paid.is_some() { 8 } else { 0 };
        32 * 3 + 1 + collateral + 32 + service + 8 + 8 + 1 + 8 + 4 + last_paid
    }
}

impl Decode for Entry {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = TxId::decode_from(reader)?;
        let operator = PublicKey::decode_from(reader)?;
        let owner = PublicKey::decode_from(reader)?;
        let tier = Tier::from_code(reader.read_u8()?)?;
        let collateral = read_option(reader, "collateral", OutPoint::decode_from)?;
        let reward_address = AddressPayload::decode_from(reader)?;
        let service = read_option(reader, "service", Reader::read_socket_addr)?;
        let registered_height = reader.read_u64()?;
        let operator_since = reader.read_u64()?;
        let code = reader.read_u8()?;
        let value = reader.read_u64()?;
        let status = match code {
            STATUS_PENDING => Status::Pending { active_from: value },
            STATUS_ACTIVE => Status::Active { since_ms: value },
            STATUS_POSE_BANNED => Status::PoseBanned { since: value },
            STATUS_BANNED => Status::Banned { until: value },
            STATUS_REVOKED => Status::Revoked { at: value },
            _ => {
                return Err(DecodeError::InvalidValue {
                    field: "masternode status",
                    reason: "unknown status code",
                });
            }
        };
        let penalty = reader.read_u32()?;
        let last_paid = read_option(reader, "last paid", Reader::read_u64)?;
        Ok(Entry {
            id,
            operator,
            owner,
            tier,
            collateral,
            reward_address,
            service,
            registered_height,
            operator_since,
            status,
            penalty,
            last_paid,
        })
    }
}

impl Encode for MasternodeList {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write_compact_size(out, self.entries.len() as u64);
        for entry in &self.entries {
            entry.encode_to(out);
        }
        self.signers.encode_to(out);
        out.extend_from_slice(&self.set_since.to_le_bytes());
        out.extend_from_slice(&self.tip_timestamp_ms.to_le_bytes());
        write_compact_size(out, self.former.len() as u64);
        for former in &self.former {
            former.masternode.encode_to(out);
            former.operator.encode_to(out);
            out.extend_from_slice(&former.since.to_le_bytes());
            out.extend_from_slice(&former.until.to_le_bytes());
        }
    }

    fn encoded_len(&self) -> usize {
        compact_size_len(self.entries.len() as u64)
            + self.entries.iter().map(Encode::encoded_len).sum::<usize>()
            + self.signers.encoded_len()
            + 16
            + compact_size_len(self.former.len() as u64)
            + self.former.len() * FormerOperator::ENCODED_LEN
    }
}

impl Decode for MasternodeList {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        // No valid chain holds more (registrations into a full list are refused), so a
        // longer list is damaged.
        let count = reader.read_count("masternode list", MasternodeList::MAX_LEN, 150)?;
        let mut entries: Vec<Entry> = Vec::with_capacity(count);
        for _ in 0..count {
            let entry = Entry::decode_from(reader)?;
            if entries.last().is_some_and(|last| last.id >= entry.id) {
                return Err(DecodeError::InvalidValue {
                    field: "masternode list",
                    reason: "not strictly sorted by id",
                });
            }
            entries.push(entry);
        }
        let signers = MasternodeSet::decode_from(reader)?;
        let set_since = reader.read_u64()?;
        let tip_timestamp_ms = reader.read_u64()?;
        let former = decode_former_operators(reader, &entries)?;
        let mut list = MasternodeList {
            entries,
            signers,
            set_since,
            tip_timestamp_ms,
            former,
            voting: MasternodeSet::default(),
            collaterals: HashMap::new(),
        };
        list.reindex();
        Ok(list)
    }
}

/// The replaced keys of a stored list: strictly sorted by (masternode, until), each of a
/// listed masternode, each held for at least one height, at most
/// [`MasternodeList::MAX_FORMER_OPERATORS`] per masternode.
fn decode_former_operators(reader: &mut Reader<'_>, entries: &[Entry]) -> Result<Vec<FormerOperator>, DecodeError> {
    let max = MasternodeList::MAX_LEN.saturating_mul(MasternodeList::MAX_FORMER_OPERATORS);
    let count = reader.read_count("former operator keys", max, FormerOperator::ENCODED_LEN)?;
    let invalid = |reason| DecodeError::InvalidValue {
        field: "former operator keys",
        reason,
    };
    let mut former: Vec<FormerOperator> = Vec::with_capacity(count);
    let mut run = 0;
    for _ in 0..count {
        let item = FormerOperator {
            masternode: TxId::decode_from(reader)?,
            operator: PublicKey::decode_from(reader)?,
            since: reader.read_u64()?,
            until: reader.read_u64()?,
        };
        match former.last() {
            Some(last) if (last.masternode, last.until) >= (item.masternode, item.until) => {
                return Err(invalid("not strictly sorted by masternode and height"));
            }
            Some(last) if last.masternode == item.masternode => run += 1,
            _ => run = 1,
        }
        if run > MasternodeList::MAX_FORMER_OPERATORS {
            return Err(invalid("more keys for one masternode than the rules allow"));
        }
        if item.since >= item.until {
            return Err(invalid("a key replaced in the block that set it"));
        }
        if entries.binary_search_by_key(&item.masternode, |e| e.id).is_err() {
            return Err(invalid("a key of a masternode not in the list"));
        }
        former.push(item);
    }
    Ok(former)
}

#[cfg(test)]
mod tests {
    use super::*;
    use timecoin_primitives::Hash256;

    fn active(i: u32, tier: Tier) -> Entry {
        let mut bytes = [7u8; 32];
        bytes[..4].copy_from_slice(&i.to_be_bytes());
        Entry {
            id: TxId(Hash256(bytes)),
            operator: PublicKey(bytes),
            owner: PublicKey(bytes),
            tier,
            collateral: None,
            reward_address: AddressPayload(bytes),
            service: None,
            registered_height: 0,
            operator_since: 0,
            status: Status::Active { since_ms: 0 },
            penalty: 0,
            last_paid: None,
        }
    }

    fn list_of(entries: Vec<Entry>) -> MasternodeList {
        let mut list = MasternodeList {
            entries,
            // Long enough after genesis for every active masternode to be paid.
            tip_timestamp_ms: 1_000_000_000,
            ..MasternodeList::default()
        };
        list.entries.sort_by_key(|e| e.id);
        list.reindex();
        list
    }

    #[test]
    fn a_list_past_the_set_limit_still_votes_with_its_heaviest_members() {
        // Validation keeps the list within the limit; were it ever past it, the chain must
        // not lose its whole voting set (it would halt for good).
        let count = u32::try_from(MAX_MASTERNODES).unwrap() + 1;
        let mut entries: Vec<Entry> = (0..count).map(|i| active(i, Tier::Bronze)).collect();
        entries.push(active(count, Tier::Silver));
        let list = list_of(entries);
        let set = list.voting_set();
        assert_eq!(set.members().len(), MAX_MASTERNODES);
        let silver = active(count, Tier::Silver).operator;
        assert_eq!(set.voting_power(&silver), Tier::Silver.weight());
        // Among equals the first by id votes, so the last two Bronze ones are left out.
        assert_eq!(set.voting_power(&active(0, Tier::Bronze).operator), 1);
        assert_eq!(set.voting_power(&active(count - 1, Tier::Bronze).operator), 0);
        assert_eq!(
            list.payees(&ChainParams::for_network(timecoin_primitives::Network::Local))
                .members()
                .len(),
            MAX_MASTERNODES
        );
    }

    #[test]
    fn a_collateral_unlocks_a_whole_evidence_window_after_its_masternode_stopped_voting() {
        let mut params = ChainParams::for_network(timecoin_primitives::Network::Mainnet);
        params.max_evidence_age_blocks = 1_000;
        params.evidence_ban_blocks = 100_000;
        let with = |status| Entry {
            status,
            ..active(0, Tier::Bronze)
        };
        assert_eq!(with(Status::Active { since_ms: 5 }).unlockable_from(&params), None);
        assert_eq!(with(Status::Pending { active_from: 7 }).unlockable_from(&params), None);
        assert_eq!(with(Status::Revoked { at: 50 }).unlockable_from(&params), Some(1_050));
        assert_eq!(
            with(Status::PoseBanned { since: 60 }).unlockable_from(&params),
            Some(1_060)
        );
        // Banned at 70: the ban outlasts the window.
        let banned = with(Status::Banned { until: 100_070 });
        assert_eq!(banned.unlockable_from(&params), Some(100_070));
        // A ban shorter than the window: the window still counts from the ban's block.
        params.evidence_ban_blocks = 10;
        assert_eq!(banned.unlockable_from(&params), Some(101_060));
    }

    #[test]
    fn a_shared_operator_key_leaves_one_member_not_an_empty_set() {
        let mut twin = active(1, Tier::Bronze);
        twin.operator = active(0, Tier::Bronze).operator;
        let list = list_of(vec![active(0, Tier::Bronze), twin, active(2, Tier::Bronze)]);
        assert_eq!(list.voting_set().members().len(), 2);
    }

    #[test]
    fn replaced_keys_decode_only_in_their_one_canonical_form() {
        let list = list_of((0..3).map(|i| active(i, Tier::Bronze)).collect());
        let [a, b, _] = [0, 1, 2].map(|i| list.entries[i].id);
        let former = |masternode: TxId, since: u64, until: u64| FormerOperator {
            masternode,
            operator: PublicKey([9; 32]),
            since,
            until,
        };
        let with = |records: Vec<FormerOperator>| MasternodeList {
            former: records,
            ..list.clone()
        };
        let valid = with(vec![former(a, 0, 3), former(a, 3, 7), former(b, 1, 2)]);
        let bytes = valid.to_bytes();
        assert_eq!(bytes.len(), valid.encoded_len());
        assert_eq!(MasternodeList::from_bytes(&bytes).unwrap(), valid);
        assert_eq!(valid.former_operators(&a).len(), 2);
        assert_eq!(valid.former_operators(&b), &[former(b, 1, 2)]);
        let too_many = (0..=MasternodeList::MAX_FORMER_OPERATORS as u64)
            .map(|i| former(a, i, i + 1))
            .collect();
        for invalid in [
            vec![former(a, 3, 7), former(a, 0, 3)],
            vec![former(a, 0, 3), former(a, 1, 3)],
            vec![former(a, 3, 3)],
            vec![former(TxId(Hash256([1; 32])), 0, 3)],
            too_many,
        ] {
            assert!(MasternodeList::from_bytes(&with(invalid).to_bytes()).is_err());
        }
        // A list stored before replaced keys were kept does not decode (it lacks their count).
        let old = list.to_bytes();
        assert!(MasternodeList::from_bytes(old.get(..old.len() - 1).unwrap()).is_err());
    }

    #[test]
    fn a_decoded_list_never_holds_more_than_a_set_can() {
        let count = u32::try_from(MAX_MASTERNODES).unwrap();
        let within = list_of((0..count).map(|i| active(i, Tier::Bronze)).collect());
        assert_eq!(MasternodeList::from_bytes(&within.to_bytes()).unwrap(), within);
        let past = list_of((0..=count).map(|i| active(i, Tier::Bronze)).collect());
        assert!(MasternodeList::from_bytes(&past.to_bytes()).is_err());
    }
}
