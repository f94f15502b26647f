//! The sets the list derives: the voting set of the next block, the set that signed the tip,
//! and the masternodes a block's reward pays.

use timecoin_primitives::MasternodeSet;
use timecoin_primitives::limits::MAX_MASTERNODES;

use crate::params::ChainParams;

use super::{Entry, MasternodeList, Status};

impl MasternodeList {
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

    /// The masternodes a block extending this state pays: active ones, active for a whole
    /// reward period of chain time before the block's parent.
    pub fn payees(&self, params: &ChainParams) -> MasternodeSet {
        set_of(self.entries.iter().filter(|e| match e.status {
            Status::Active { since_ms } => since_ms.saturating_add(params.reward_period_ms) <= self.tip_timestamp_ms,
            _ => false,
        }))
    }
}

pub(super) fn voting_set_of(entries: &[Entry]) -> MasternodeSet {
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
