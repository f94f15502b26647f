//! Transactions: inputs that spend earlier outputs, outputs that pay addresses.
//!
//! The **txid** is the hash of the transaction without its signatures, so that what is
//! signed does not contain the signature itself; the **witness hash** covers everything.
//! Each input signs [`signature_message`], which commits to the network (its genesis hash),
//! to the txid, and to the amounts of every spent output.

use std::fmt;
use std::str::FromStr;

use crate::address::AddressPayload;
use crate::amount::Amount;
use crate::encoding::{Decode, DecodeError, Encode, Reader, var_bytes_len, write_compact_size, write_var_bytes};
use crate::hash::{Domain, Hash256, ParseHashError};
use crate::keys::{PublicKey, SecretKey, Signature};
use crate::limits::{MAX_MEMO_BYTES, MAX_TX_BYTES};
use crate::payload::Payload;

macro_rules! hash_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub Hash256);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = ParseHashError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }

        impl Encode for $name {
            fn encode_to(&self, out: &mut Vec<u8>) {
                self.0.encode_to(out)
            }
            fn encoded_len(&self) -> usize {
                32
            }
        }

        impl Decode for $name {
            fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Hash256::decode_from(reader).map($name)
            }
        }
    };
}

hash_newtype!(
    /// A transaction id: the hash of a transaction without its signatures.
    TxId
);
hash_newtype!(
    /// A block hash: the hash of a block header.
    BlockHash
);

/// A reference to one output of an earlier transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutPoint {
    /// The transaction that created the output.
    pub txid: TxId,
    /// The output's position in that transaction.
    pub index: u32,
}

impl OutPoint {
    /// Encoded size in bytes.
    pub const ENCODED_LEN: usize = 36;
}

impl fmt::Display for OutPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.txid, self.index)
    }
}

impl Encode for OutPoint {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.txid.encode_to(out);
        out.extend_from_slice(&self.index.to_le_bytes());
    }
    fn encoded_len(&self) -> usize {
        Self::ENCODED_LEN
    }
}

impl Decode for OutPoint {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(OutPoint {
            txid: TxId::decode_from(reader)?,
            index: reader.read_u32()?,
        })
    }
}

/// An input: the output it spends, the key that owns it, and that key's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxInput {
    /// The spent output.
    pub prevout: OutPoint,
    /// The owner's key; its address payload must equal the spent output's.
    pub public_key: PublicKey,
    /// The owner's signature over [`signature_message`].
    pub signature: Signature,
}

impl TxInput {
    /// Encoded size in bytes.
    pub const ENCODED_LEN: usize = OutPoint::ENCODED_LEN + 32 + 64;
}

/// An output: an amount paid to an address payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxOutput {
    /// What the output is worth.
    pub amount: Amount,
    /// Who may spend it.
    pub address: AddressPayload,
}

impl TxOutput {
    /// Encoded size in bytes.
    pub const ENCODED_LEN: usize = 8 + 32;
}

impl Encode for TxOutput {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.amount.encode_to(out);
        self.address.encode_to(out);
    }
    fn encoded_len(&self) -> usize {
        Self::ENCODED_LEN
    }
}

impl Decode for TxOutput {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TxOutput {
            amount: Amount::decode_from(reader)?,
            address: AddressPayload::decode_from(reader)?,
        })
    }
}

/// A transaction. One with no inputs is a block's reward transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// Format version; only [`Transaction::VERSION`] is valid today.
    pub version: u16,
    /// Spent outputs. Empty only in a block's reward transaction.
    pub inputs: Vec<TxInput>,
    /// Created outputs.
    pub outputs: Vec<TxOutput>,
    /// The lowest block height that may include this transaction (0: any). In a reward
    /// transaction it is the block's height, which makes every reward txid unique.
    pub lock_time: u64,
    /// Free-form data, at most [`MAX_MEMO_BYTES`].
    pub memo: Vec<u8>,
    /// A masternode special transaction's payload; present exactly when `version` is
    /// [`Transaction::VERSION_SPECIAL`].
    pub payload: Option<Payload>,
}

/// The smallest possible encoded transaction: version, two empty counts, lock time, empty memo.
pub const MIN_TX_ENCODED_LEN: usize = 2 + 1 + 1 + 8 + 1;

impl Transaction {
    /// The version of an ordinary transaction.
    pub const VERSION: u16 = 1;
    /// The version of a masternode special transaction: it carries a [`Payload`].
    pub const VERSION_SPECIAL: u16 = 2;

    /// The version a transaction with this payload (or none) must have.
    pub fn version_for(payload: Option<&Payload>) -> u16 {
        if payload.is_some() {
            Self::VERSION_SPECIAL
        } else {
            Self::VERSION
        }
    }

    /// The id: the hash of the transaction without signatures.
    pub fn txid(&self) -> TxId {
        let mut buf = Vec::with_capacity(self.encoded_len());
        self.encode_parts(&mut buf, false);
        TxId(Domain::TxId.hash(&buf))
    }

    /// The hash of the whole transaction, signatures included.
    pub fn witness_hash(&self) -> Hash256 {
        Domain::WitnessHash.hash_encoded(self)
    }

    /// Whether this is a reward transaction (it has no inputs).
    pub fn is_reward(&self) -> bool {
        self.inputs.is_empty()
    }

    /// The sum of the outputs, or `None` on overflow.
    pub fn output_total(&self) -> Option<Amount> {
        Amount::checked_sum(self.outputs.iter().map(|o| o.amount))
    }

    fn encode_parts(&self, out: &mut Vec<u8>, with_signatures: bool) {
        out.extend_from_slice(&self.version.to_le_bytes());
        write_compact_size(out, self.inputs.len() as u64);
        for input in &self.inputs {
            input.prevout.encode_to(out);
            input.public_key.encode_to(out);
            if with_signatures {
                input.signature.encode_to(out);
            }
        }
        write_compact_size(out, self.outputs.len() as u64);
        for output in &self.outputs {
            output.encode_to(out);
        }
        out.extend_from_slice(&self.lock_time.to_le_bytes());
        write_var_bytes(out, &self.memo);
        if let Some(payload) = &self.payload {
            payload.encode_parts(out, with_signatures);
        }
    }
}

impl Encode for Transaction {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.encode_parts(out, true);
    }

    fn encoded_len(&self) -> usize {
        2 + crate::encoding::compact_size_len(self.inputs.len() as u64)
            + self.inputs.len() * TxInput::ENCODED_LEN
            + crate::encoding::compact_size_len(self.outputs.len() as u64)
            + self.outputs.len() * TxOutput::ENCODED_LEN
            + 8
            + var_bytes_len(self.memo.len())
            + self.payload.as_ref().map_or(0, Payload::encoded_len)
    }
}

impl Decode for Transaction {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = reader.read_u16()?;
        let input_count = reader.read_count("inputs", MAX_TX_BYTES / TxInput::ENCODED_LEN, TxInput::ENCODED_LEN)?;
        let mut inputs = Vec::with_capacity(input_count);
        for _ in 0..input_count {
            inputs.push(TxInput {
                prevout: OutPoint::decode_from(reader)?,
                public_key: PublicKey::decode_from(reader)?,
                signature: Signature::decode_from(reader)?,
            });
        }
        let output_count = reader.read_count("outputs", MAX_TX_BYTES / TxOutput::ENCODED_LEN, TxOutput::ENCODED_LEN)?;
        let mut outputs = Vec::with_capacity(output_count);
        for _ in 0..output_count {
            outputs.push(TxOutput::decode_from(reader)?);
        }
        let lock_time = reader.read_u64()?;
        let memo = reader.read_var_bytes("memo", MAX_MEMO_BYTES)?.to_vec();
        // Only the special version carries a payload, so every version has one encoding.
        let payload = if version == Transaction::VERSION_SPECIAL {
            Some(Payload::decode_from(reader)?)
        } else {
            None
        };
        Ok(Transaction {
            version,
            inputs,
            outputs,
            lock_time,
            memo,
            payload,
        })
    }
}

/// The message every input of a transaction signs: the network's genesis hash (replay
/// protection across networks), the txid (the whole transaction but its signatures), and the
/// amounts of the spent outputs in input order (so a signer cannot be misled about the fee).
pub fn signature_message(genesis: &BlockHash, txid: &TxId, spent_amounts: &[Amount]) -> Hash256 {
    let mut hasher = Domain::SigHash.hasher();
    hasher.update(&genesis.0.0);
    hasher.update(&txid.0.0);
    hasher.update(&(spent_amounts.len() as u64).to_le_bytes());
    for amount in spent_amounts {
        hasher.update(&amount.units().to_le_bytes());
    }
    Hash256(*hasher.finalize().as_bytes())
}

/// Signs every input of `tx`: input `i` with `keys[i]`. `spent_amounts` are the amounts of the
/// outputs the inputs spend, in input order.
pub fn sign_transaction(tx: &mut Transaction, genesis: &BlockHash, keys: &[&SecretKey], spent_amounts: &[Amount]) {
    let message = signature_message(genesis, &tx.txid(), spent_amounts);
    for (input, key) in tx.inputs.iter_mut().zip(keys) {
        input.signature = key.sign(&message.0);
    }
}

/// Why [`sign_inputs`] left an input without a valid signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputSignError {
    /// The coin the input spends is unknown to the signer (missing, spent, or not described),
    /// so no input can be signed: the message commits to every spent amount.
    #[error("input {0}: its coin is unknown (missing, spent, or not described)")]
    UnknownCoin(OutPoint),
    /// No key was given for the coin's address, and the input holds no valid signature.
    #[error("input {0}: no key for its coin's address, and no valid signature")]
    Unsigned(OutPoint),
}

/// Signs every input of `tx` whose coin's address `key_for` holds a key for, filling in the
/// input's public key first. `coins` are the outputs the inputs spend, in input order
/// (`None` where unknown). Inputs signed before are kept, and reported unless their signature
/// still verifies: the message covers the txid, which covers every input's public key, so a
/// key filled in here voids signatures made before it was. Returns the inputs left without a
/// valid signature, by index; empty means the transaction is complete.
pub fn sign_inputs(
    tx: &mut Transaction,
    genesis: &BlockHash,
    coins: &[Option<TxOutput>],
    mut key_for: impl FnMut(&AddressPayload) -> Option<SecretKey>,
) -> Vec<(usize, InputSignError)> {
    let mut amounts = Vec::with_capacity(tx.inputs.len());
    let mut unknown = Vec::new();
    for (index, input) in tx.inputs.iter().enumerate() {
        match coins.get(index).copied().flatten() {
            Some(coin) => amounts.push(coin.amount),
            None => unknown.push((index, InputSignError::UnknownCoin(input.prevout))),
        }
    }
    if !unknown.is_empty() {
        return unknown;
    }
    let mut keys = Vec::with_capacity(tx.inputs.len());
    for (input, coin) in tx.inputs.iter_mut().zip(coins.iter().flatten()) {
        let key = key_for(&coin.address);
        if let Some(key) = &key {
            input.public_key = key.public_key();
        }
        keys.push(key);
    }
    let message = signature_message(genesis, &tx.txid(), &amounts);
    let mut errors = Vec::new();
    for (index, ((input, key), coin)) in tx.inputs.iter_mut().zip(&keys).zip(coins.iter().flatten()).enumerate() {
        match key {
            Some(key) => input.signature = key.sign(&message.0),
            None => {
                let signed = AddressPayload::from_public_key(&input.public_key) == coin.address
                    && input.public_key.verify(&message.0, &input.signature).is_ok();
                if !signed {
                    errors.push((index, InputSignError::Unsigned(input.prevout)));
                }
            }
        }
    }
    errors
}
