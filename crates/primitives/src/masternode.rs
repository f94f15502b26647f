//! Masternodes, their tiers, and the sets that sign blocks.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::address::AddressPayload;
use crate::amount::Amount;
use crate::encoding::{Decode, DecodeError, Encode, Reader, compact_size_len, write_compact_size};
use crate::hash::{Domain, Hash256};
use crate::keys::PublicKey;
use crate::limits::MAX_MASTERNODES;

/// A masternode's tier, fixed by the collateral it locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// No collateral, no voting power, no reward.
    Free,
    /// 1,000 TIME of collateral.
    Bronze,
    /// 10,000 TIME of collateral.
    Silver,
    /// 100,000 TIME of collateral.
    Gold,
}

impl Tier {
    /// Every tier.
    pub const ALL: [Tier; 4] = [Tier::Free, Tier::Bronze, Tier::Silver, Tier::Gold];

    /// The collateral this tier locks.
    pub const fn collateral(self) -> Amount {
        Amount::from_units(
            match self {
                Tier::Free => 0,
                Tier::Bronze => 1_000,
                Tier::Silver => 10_000,
                Tier::Gold => 100_000,
            } * Amount::COIN.units(),
        )
    }

    /// Voting power and reward weight: proportional to the collateral, one per 1,000 TIME.
    pub const fn weight(self) -> u64 {
        match self {
            Tier::Free => 0,
            Tier::Bronze => 1,
            Tier::Silver => 10,
            Tier::Gold => 100,
        }
    }

    /// The lower-case name used in files and APIs.
    pub const fn name(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Bronze => "bronze",
            Tier::Silver => "silver",
            Tier::Gold => "gold",
        }
    }

    /// The tier with this collateral, if any tier locks exactly `amount`.
    pub fn of_collateral(amount: Amount) -> Option<Tier> {
        Tier::ALL
            .into_iter()
            .find(|t| *t != Tier::Free && t.collateral() == amount)
    }

    /// The tier of a one-byte code (as [`Tier::code`] writes it).
    pub fn from_code(code: u8) -> Result<Tier, DecodeError> {
        match code {
            0 => Ok(Tier::Free),
            1 => Ok(Tier::Bronze),
            2 => Ok(Tier::Silver),
            3 => Ok(Tier::Gold),
            _ => Err(DecodeError::InvalidValue {
                field: "tier",
                reason: "unknown tier code",
            }),
        }
    }

    /// The tier's one-byte code in encodings.
    pub const fn code(self) -> u8 {
        match self {
            Tier::Free => 0,
            Tier::Bronze => 1,
            Tier::Silver => 2,
            Tier::Gold => 3,
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The string names no tier.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown tier {0:?}; expected free, bronze, silver or gold")]
pub struct UnknownTier(pub String);

impl FromStr for Tier {
    type Err = UnknownTier;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tier::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| UnknownTier(s.to_owned()))
    }
}

/// One masternode as the chain knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Masternode {
    /// The key it signs consensus messages with, and is known by.
    pub operator: PublicKey,
    /// Its tier.
    pub tier: Tier,
    /// Where its rewards are paid.
    pub reward_address: AddressPayload,
}

impl Masternode {
    const ENCODED_LEN: usize = 32 + 1 + 32;
}

/// Why a list of masternodes is not a valid set.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MasternodeSetError {
    /// One operator key appears twice.
    #[error("masternode {0} appears more than once")]
    Duplicate(PublicKey),
    /// More masternodes than the protocol allows.
    #[error("{0} masternodes, above the maximum of {MAX_MASTERNODES}")]
    TooMany(usize),
}

/// A set of masternodes, kept sorted by operator key so that it has one encoding and one hash.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MasternodeSet {
    members: Vec<Masternode>,
}

impl MasternodeSet {
    /// A set from masternodes in any order.
    pub fn new(mut members: Vec<Masternode>) -> Result<Self, MasternodeSetError> {
        if members.len() > MAX_MASTERNODES {
            return Err(MasternodeSetError::TooMany(members.len()));
        }
        members.sort_by_key(|m| m.operator);
        for pair in members.windows(2) {
            if let [a, b] = pair
                && a.operator == b.operator
            {
                return Err(MasternodeSetError::Duplicate(a.operator));
            }
        }
        Ok(MasternodeSet { members })
    }

    /// The members, sorted by operator key.
    pub fn members(&self) -> &[Masternode] {
        &self.members
    }

    /// The member with this operator key.
    pub fn get(&self, operator: &PublicKey) -> Option<&Masternode> {
        self.members
            .binary_search_by_key(operator, |m| m.operator)
            .ok()
            .and_then(|i| self.members.get(i))
    }

    /// The voting power of `operator` (0 if it is not a member).
    pub fn voting_power(&self, operator: &PublicKey) -> u64 {
        self.get(operator).map_or(0, |m| m.tier.weight())
    }

    /// The sum of all members' voting power.
    pub fn total_voting_power(&self) -> u64 {
        self.members.iter().map(|m| m.tier.weight()).sum()
    }

    /// How many members hold voting power.
    pub fn voting_members(&self) -> usize {
        self.members.iter().filter(|m| m.tier.weight() > 0).count()
    }

    /// The hash a block header commits to.
    pub fn hash(&self) -> Hash256 {
        Domain::MasternodeSet.hash_encoded(self)
    }
}

impl Encode for MasternodeSet {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write_compact_size(out, self.members.len() as u64);
        for m in &self.members {
            m.operator.encode_to(out);
            out.push(m.tier.code());
            m.reward_address.encode_to(out);
        }
    }
    fn encoded_len(&self) -> usize {
        compact_size_len(self.members.len() as u64) + self.members.len() * Masternode::ENCODED_LEN
    }
}

impl Decode for MasternodeSet {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = reader.read_count("masternodes", MAX_MASTERNODES, Masternode::ENCODED_LEN)?;
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            let operator = PublicKey::decode_from(reader)?;
            let tier = Tier::from_code(reader.read_u8()?)?;
            let reward_address = AddressPayload::decode_from(reader)?;
            if let Some(last) = members.last().map(|m: &Masternode| m.operator)
                && last >= operator
            {
                return Err(DecodeError::InvalidValue {
                    field: "masternodes",
                    reason: "not strictly sorted by operator key",
                });
            }
            members.push(Masternode {
                operator,
                tier,
                reward_address,
            });
        }
        Ok(MasternodeSet { members })
    }
}
