//! The canonical encoding of the list (covered by the chain state hash, and stored): fixed
//! fields in order, and a decoder that accepts only what a valid chain can hold.

use std::collections::HashMap;

use timecoin_primitives::encoding::{Reader, compact_size_len, socket_addr_len, write_compact_size, write_socket_addr};
use timecoin_primitives::{
    AddressPayload, Decode, DecodeError, Encode, MasternodeSet, OutPoint, PublicKey, Tier, TxId,
};

use super::{Entry, FormerOperator, MasternodeList, Status};

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
