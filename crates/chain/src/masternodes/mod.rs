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
//!
//! The parts: this module holds the list's types and its look-ups; `voting` derives the
//! voting set and the payees from it; `transition` moves it through a block; `encoding` is
//! its canonical encoding, which the chain state hash covers.

mod encoding;
mod transition;
mod voting;

use std::collections::HashMap;
use std::net::SocketAddr;

use timecoin_primitives::limits::MAX_MASTERNODES;
use timecoin_primitives::{
    AddressPayload, Domain, Hash256, Masternode, MasternodeSet, OutPoint, PublicKey, Tier, TxId, genesis_masternode_id,
};

use crate::params::ChainParams;

use voting::voting_set_of;

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

    /// The hash a block header's state hash covers.
    pub fn hash(&self) -> Hash256 {
        Domain::MasternodeList.hash_encoded(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timecoin_primitives::{Decode, Encode, Hash256};

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
