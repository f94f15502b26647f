//! Masternode special transactions: the payloads that register, update, revoke and unlock a
//! masternode on chain (Dash's DIP3 in TimeCoin's shape).
//!
//! A transaction carries at most one [`Payload`]; it then has version
//! [`Transaction::VERSION_SPECIAL`](crate::Transaction::VERSION_SPECIAL). A payload that must
//! be authorised by a key other than the inputs' carries that key's signature over
//! [`payload_signature_message`], which commits to the network and to the txid. A payload
//! that gives a masternode an operator key also carries that key's **operator proof**: its
//! signature over a message naming the network and the masternode, so that nobody can
//! register (and be paid for, or frame) a key whose holder did not agree. The txid leaves out
//! both signatures, as it leaves out the inputs' signatures.

use std::net::SocketAddr;

use crate::address::AddressPayload;
use crate::encoding::{Decode, DecodeError, Encode, Reader, socket_addr_len, write_socket_addr};
use crate::hash::{Domain, Hash256};
use crate::keys::{PublicKey, Signature};
use crate::masternode::Tier;
use crate::transaction::{BlockHash, OutPoint, TxId};

/// Registers a masternode: locks `collateral` (exactly the tier's amount) and names the keys
/// and addresses the masternode works with. Signed by `collateral_key`, the key that owns the
/// collateral output, and proved by `operator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    /// The tier; the collateral must hold exactly [`Tier::collateral`].
    pub tier: Tier,
    /// The locked output. A zero txid means an output of this same transaction.
    pub collateral: OutPoint,
    /// The key that owns the collateral output, and signs this payload.
    pub collateral_key: PublicKey,
    /// The owner's key: it signs updates.
    pub owner: PublicKey,
    /// The operator's consensus key: the masternode signs votes with it.
    pub operator: PublicKey,
    /// Where rewards are paid.
    pub reward_address: AddressPayload,
    /// The masternode's P2P address.
    pub service: SocketAddr,
    /// `operator`'s signature over [`Registration::operator_proof_message`]: its holder
    /// agrees to operate the masternode this collateral backs.
    pub operator_proof: Signature,
    /// `collateral_key`'s signature over [`payload_signature_message`].
    pub signature: Signature,
}

impl Registration {
    /// The collateral outpoint, with a zero txid resolved to `txid` (this transaction's).
    pub fn collateral_outpoint(&self, txid: TxId) -> OutPoint {
        if self.collateral.txid == TxId::default() {
            OutPoint {
                txid,
                index: self.collateral.index,
            }
        } else {
            self.collateral
        }
    }

    /// What `operator` signs as its proof: the network and the collateral outpoint, resolved
    /// with `txid` (this transaction's). A collateral backs one masternode at a time and is
    /// spent when it leaves, so the proof cannot serve another registration than the one
    /// its collateral key signs.
    pub fn operator_proof_message(&self, genesis: &BlockHash, txid: TxId) -> Hash256 {
        let collateral = self.collateral_outpoint(txid);
        let mut subject = [0u8; 36];
        let (id, index) = subject.split_at_mut(32);
        id.copy_from_slice(&collateral.txid.0.0);
        index.copy_from_slice(&collateral.index.to_le_bytes());
        operator_proof_message(genesis, OPERATOR_PROOF_REGISTRATION, &subject)
    }
}

/// Changes a registered masternode's operator key, reward address or P2P address; also its
/// re-announcement after a proof-of-service ban. Signed by the owner; a new operator key also
/// proves itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update {
    /// The masternode: its registration txid.
    pub masternode: TxId,
    /// The new operator key (the same one to keep it).
    pub operator: PublicKey,
    /// The new reward address.
    pub reward_address: AddressPayload,
    /// The new P2P address.
    pub service: SocketAddr,
    /// When `operator` replaces the masternode's key, and only then: its signature over
    /// [`Update::operator_proof_message`].
    pub operator_proof: Option<Signature>,
    /// The owner's signature over [`payload_signature_message`].
    pub signature: Signature,
}

impl Update {
    /// What a new operator key signs as its proof: the network and the masternode's id.
    pub fn operator_proof_message(&self, genesis: &BlockHash) -> Hash256 {
        operator_proof_message(genesis, OPERATOR_PROOF_UPDATE, &self.masternode.0.0)
    }
}

/// Takes a masternode out of the voting set, by its operator (a compromised or retired key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// The masternode.
    pub masternode: TxId,
    /// The operator's signature over [`payload_signature_message`].
    pub signature: Signature,
}

/// Marks a transaction that spends a masternode's collateral as its deregistration. The
/// inputs' signatures (by the collateral's key) authorise it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unlock {
    /// The masternode whose collateral the transaction spends.
    pub masternode: TxId,
}

/// The payload of a masternode special transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// A registration.
    Register(Registration),
    /// An owner's update.
    Update(Update),
    /// An operator's revocation.
    Revoke(Revocation),
    /// A deregistration by spending the collateral.
    Unlock(Unlock),
}

impl Payload {
    /// The largest encoded payload (a registration's).
    pub const MAX_ENCODED_LEN: usize = 1 + 1 + 36 + 32 * 3 + 32 + SERVICE_MAX_LEN + 64 + 64;

    /// The masternode an update, revocation or unlock names (a registration names none yet).
    pub fn masternode(&self) -> Option<TxId> {
        match self {
            Payload::Register(_) => None,
            Payload::Update(u) => Some(u.masternode),
            Payload::Revoke(r) => Some(r.masternode),
            Payload::Unlock(u) => Some(u.masternode),
        }
    }

    /// The payload's own signature, if its kind carries one.
    pub fn signature(&self) -> Option<&Signature> {
        match self {
            Payload::Register(r) => Some(&r.signature),
            Payload::Update(u) => Some(&u.signature),
            Payload::Revoke(r) => Some(&r.signature),
            Payload::Unlock(_) => None,
        }
    }

    /// Sets the payload's signature (no effect on an unlock).
    pub fn set_signature(&mut self, signature: Signature) {
        match self {
            Payload::Register(r) => r.signature = signature,
            Payload::Update(u) => u.signature = signature,
            Payload::Revoke(r) => r.signature = signature,
            Payload::Unlock(_) => {}
        }
    }

    /// The operator proof the payload carries, if any.
    pub fn operator_proof(&self) -> Option<&Signature> {
        match self {
            Payload::Register(r) => Some(&r.operator_proof),
            Payload::Update(u) => u.operator_proof.as_ref(),
            Payload::Revoke(_) | Payload::Unlock(_) => None,
        }
    }

    /// Sets the operator proof (no effect on a revocation or an unlock).
    pub fn set_operator_proof(&mut self, proof: Signature) {
        match self {
            Payload::Register(r) => r.operator_proof = proof,
            Payload::Update(u) => u.operator_proof = Some(proof),
            Payload::Revoke(_) | Payload::Unlock(_) => {}
        }
    }

    /// A short name for APIs and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Register(_) => "register",
            Payload::Update(_) => "update",
            Payload::Revoke(_) => "revoke",
            Payload::Unlock(_) => "unlock",
        }
    }

    /// Writes the payload, with or without its signatures: the txid leaves out the operator
    /// proof and the payload signature (an update's proof presence byte stays in).
    pub(crate) fn encode_parts(&self, out: &mut Vec<u8>, with_signature: bool) {
        match self {
            Payload::Register(r) => {
                out.push(1);
                out.push(r.tier.code());
                r.collateral.encode_to(out);
                r.collateral_key.encode_to(out);
                r.owner.encode_to(out);
                r.operator.encode_to(out);
                r.reward_address.encode_to(out);
                write_socket_addr(out, &r.service);
                if with_signature {
                    r.operator_proof.encode_to(out);
                }
            }
            Payload::Update(u) => {
                out.push(2);
                u.masternode.encode_to(out);
                u.operator.encode_to(out);
                u.reward_address.encode_to(out);
                write_socket_addr(out, &u.service);
                out.push(u8::from(u.operator_proof.is_some()));
                if with_signature && let Some(proof) = &u.operator_proof {
                    proof.encode_to(out);
                }
            }
            Payload::Revoke(r) => {
                out.push(3);
                r.masternode.encode_to(out);
            }
            Payload::Unlock(u) => {
                out.push(4);
                u.masternode.encode_to(out);
            }
        }
        if with_signature && let Some(signature) = self.signature() {
            signature.encode_to(out);
        }
    }

    pub(crate) fn encoded_len(&self) -> usize {
        let body = match self {
            Payload::Register(r) => 1 + 36 + 32 * 4 + socket_addr_len(&r.service) + 64,
            Payload::Update(u) => {
                32 * 3 + socket_addr_len(&u.service) + 1 + 64 * usize::from(u.operator_proof.is_some())
            }
            Payload::Revoke(_) | Payload::Unlock(_) => 32,
        };
        1 + body + if self.signature().is_some() { 64 } else { 0 }
    }
}

impl Decode for Payload {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match reader.read_u8()? {
            1 => Payload::Register(Registration {
                tier: Tier::from_code(reader.read_u8()?)?,
                collateral: OutPoint::decode_from(reader)?,
                collateral_key: PublicKey::decode_from(reader)?,
                owner: PublicKey::decode_from(reader)?,
                operator: PublicKey::decode_from(reader)?,
                reward_address: AddressPayload::decode_from(reader)?,
                service: reader.read_socket_addr()?,
                operator_proof: Signature::decode_from(reader)?,
                signature: Signature::decode_from(reader)?,
            }),
            2 => Payload::Update(Update {
                masternode: TxId::decode_from(reader)?,
                operator: PublicKey::decode_from(reader)?,
                reward_address: AddressPayload::decode_from(reader)?,
                service: reader.read_socket_addr()?,
                operator_proof: match reader.read_u8()? {
                    0 => None,
                    1 => Some(Signature::decode_from(reader)?),
                    _ => {
                        return Err(DecodeError::InvalidValue {
                            field: "operator proof",
                            reason: "expected presence byte 0 or 1",
                        });
                    }
                },
                signature: Signature::decode_from(reader)?,
            }),
            3 => Payload::Revoke(Revocation {
                masternode: TxId::decode_from(reader)?,
                signature: Signature::decode_from(reader)?,
            }),
            4 => Payload::Unlock(Unlock {
                masternode: TxId::decode_from(reader)?,
            }),
            _ => {
                return Err(DecodeError::InvalidValue {
                    field: "payload kind",
                    reason: "expected 1 (register), 2 (update), 3 (revoke) or 4 (unlock)",
                });
            }
        })
    }
}

const SERVICE_MAX_LEN: usize = 1 + 16 + 2;

/// The message a payload's signature signs: the network's genesis hash and the txid.
pub fn payload_signature_message(genesis: &BlockHash, txid: &TxId) -> Hash256 {
    let mut hasher = Domain::PayloadSigHash.hasher();
    hasher.update(&genesis.0.0);
    hasher.update(&txid.0.0);
    Hash256(*hasher.finalize().as_bytes())
}

/// An operator proof's message for a registration (`subject`: its collateral outpoint).
const OPERATOR_PROOF_REGISTRATION: u8 = 1;
/// An operator proof's message for an update (`subject`: the masternode's id).
const OPERATOR_PROOF_UPDATE: u8 = 2;

/// OperatorProof( genesis hash ‖ kind ‖ subject ): the kind byte keeps a registration's proof
/// from ever serving as an update's, and the genesis hash one network's from another's.
fn operator_proof_message(genesis: &BlockHash, kind: u8, subject: &[u8]) -> Hash256 {
    let mut hasher = Domain::OperatorProof.hasher();
    hasher.update(&genesis.0.0);
    hasher.update(&[kind]);
    hasher.update(subject);
    Hash256(*hasher.finalize().as_bytes())
}

/// The id of a masternode written in the genesis block: it has no registration txid.
pub fn genesis_masternode_id(operator: &PublicKey) -> TxId {
    TxId(Domain::GenesisMasternode.hash(&operator.0))
}
