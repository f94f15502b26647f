//! The masternode rules of a transaction ([`check_masternode_rules`]): a registered
//! collateral is spent only by its masternode's unlock, and a payload (register, update,
//! revoke, unlock) is valid against the masternode list; and why one is refused
//! ([`MasternodeTxError`]).

use std::net::SocketAddr;

use thiserror::Error;
use timecoin_primitives::{
    AddressPayload, Amount, OutPoint, Payload, PublicKey, Signature, Tier, Transaction, TxId, payload_signature_message,
};

use crate::masternodes::{MasternodeList, Status};

use super::{SigItem, TxContext, TxError, UtxoView};

/// Why a masternode special transaction is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MasternodeTxError {
    /// Free-tier masternodes run without registration.
    #[error("the free tier has no collateral to register; run a free masternode without registering")]
    FreeTier,
    /// The collateral output does not exist (or the transaction spends it).
    #[error("collateral {0} is missing, spent, or spent by the registration itself")]
    CollateralMissing(OutPoint),
    /// The collateral is not the tier's exact amount.
    #[error("collateral holds {found}; the {tier} tier needs exactly {expected}")]
    CollateralAmount {
        /// The tier.
        tier: Tier,
        /// What it holds.
        found: Amount,
        /// What the tier needs.
        expected: Amount,
    },
    /// The collateral key does not own the collateral output.
    #[error("the collateral key does not own collateral {0}")]
    CollateralKey(OutPoint),
    /// The collateral already backs a masternode.
    #[error("collateral {0} already backs a masternode")]
    CollateralInUse(OutPoint),
    /// Another masternode uses the operator key.
    #[error("operator key {0} is already used by masternode {1}")]
    DuplicateOperator(PublicKey, TxId),
    /// Another masternode announces the P2P address.
    #[error("service address {0} is already announced by masternode {1}")]
    DuplicateService(SocketAddr, TxId),
    /// No masternode has this id.
    #[error("no masternode {0}")]
    Unknown(TxId),
    /// An unlock that does not spend the masternode's collateral.
    #[error("the unlock does not spend the collateral of masternode {0}")]
    CollateralNotSpent(TxId),
    /// An unlock of a masternode that is still in the voting set or about to join it.
    #[error(
        "masternode {0} is active or pending: revoke it first (masternoderevoke); its collateral unlocks once evidence of its last votes can no longer enter a block"
    )]
    UnlockWhileServing(TxId),
    /// An unlock before evidence of the masternode's last votes stops being accepted.
    #[error(
        "masternode {masternode} may unlock its collateral from height {from}, once evidence of its last votes can no longer enter a block"
    )]
    UnlockTooEarly {
        /// The masternode.
        masternode: TxId,
        /// The first height whose block may hold the unlock.
        from: u64,
    },
    /// The masternode is banned for double-signing.
    #[error("masternode {masternode} is banned for double-signing until height {until}")]
    Banned {
        /// The masternode.
        masternode: TxId,
        /// When the ban ends.
        until: u64,
    },
    /// A proof-of-service penalty must decay before the masternode re-announces.
    #[error("masternode {masternode} still has a proof-of-service penalty of {penalty}; it decays by 1 per block")]
    PenaltyNotDecayed {
        /// The masternode.
        masternode: TxId,
        /// The remaining penalty.
        penalty: u32,
    },
    /// Revoked already.
    #[error("masternode {0} is already revoked")]
    AlreadyRevoked(TxId),
    /// An update gives a masternode a new operator key without that key's proof.
    #[error(
        "the update gives masternode {masternode} the operator key {operator} without its proof: the key must sign the update's operator proof message"
    )]
    MissingOperatorProof {
        /// The masternode.
        masternode: TxId,
        /// The new key.
        operator: PublicKey,
    },
    /// An update that keeps the operator key carries an operator proof, which nothing checks.
    #[error("the update keeps the operator key of masternode {0}: it must carry no operator proof")]
    UnneededOperatorProof(TxId),
    /// The masternode replaced its operator key as often as the evidence window allows.
    #[error(
        "masternode {masternode} replaced its operator key {max} times within the evidence window; keep the current key until the oldest ages out"
    )]
    TooManyKeyRotations {
        /// The masternode.
        masternode: TxId,
        /// The most replaced keys the list keeps per masternode.
        max: usize,
    },
    /// The list holds as many masternodes as a voting set may: a registration waits until
    /// one leaves (by an unlock).
    #[error("the masternode list is full ({max} masternodes); a registration waits until one unlocks its collateral")]
    ListFull {
        /// The most masternodes the list may hold.
        max: usize,
    },
}

/// The masternode rules of a transaction against the list `view` holds: a registered
/// collateral is spent only by its masternode's unlock, and a payload is valid against the
/// list. Returns the payload's signature checks: its own signature's and, for a payload that
/// gives a masternode an operator key, that key's proof (part of [`check_tx_contextual`](super::check_tx_contextual);
/// public so that a pool can re-check after the list changes).
pub fn check_masternode_rules(
    tx: &Transaction,
    txid: TxId,
    view: &impl UtxoView,
    ctx: &TxContext<'_>,
) -> Result<Vec<SigItem>, TxError> {
    let list = view.masternodes();
    let unlocking = match &tx.payload {
        Some(Payload::Unlock(u)) => Some(u.masternode),
        _ => None,
    };
    let mut unlocked = false;
    for input in &tx.inputs {
        if let Some(entry) = list.by_collateral(&input.prevout) {
            if unlocking != Some(entry.id) {
                return Err(TxError::CollateralLocked {
                    outpoint: input.prevout,
                    masternode: entry.id,
                });
            }
            unlocked = true;
        }
    }
    let Some(payload) = &tx.payload else {
        return Ok(Vec::new());
    };
    let message = payload_signature_message(&ctx.genesis_hash, &txid);
    let signed_by = |key: PublicKey, signature: &Signature| SigItem {
        key,
        message,
        signature: *signature,
    };
    let known = |id: &TxId| list.get(id).ok_or(MasternodeTxError::Unknown(*id));
    let not_banned = |entry: &crate::masternodes::Entry| match entry.banned_until(ctx.height) {
        Some(until) => Err(MasternodeTxError::Banned {
            masternode: entry.id,
            until,
        }),
        None => Ok(()),
    };
    match payload {
        Payload::Unlock(u) => {
            let entry = known(&u.masternode)?;
            if !unlocked {
                return Err(MasternodeTxError::CollateralNotSpent(u.masternode).into());
            }
            not_banned(entry)?;
            // A masternode that could unlock at once would take its collateral out of reach
            // of the evidence of its last votes: it leaves the voting set first, and the
            // collateral stays locked while that evidence may still enter a block.
            match entry.unlockable_from(ctx.params) {
                None => Err(MasternodeTxError::UnlockWhileServing(entry.id).into()),
                Some(from) if ctx.height < from => Err(MasternodeTxError::UnlockTooEarly {
                    masternode: entry.id,
                    from,
                }
                .into()),
                Some(_) => Ok(Vec::new()),
            }
        }
        Payload::Register(r) => {
            if r.tier == Tier::Free {
                return Err(MasternodeTxError::FreeTier.into());
            }
            // Past the limit the voting set could not hold every masternode.
            if list.is_full() {
                return Err(MasternodeTxError::ListFull {
                    max: MasternodeList::MAX_LEN,
                }
                .into());
            }
            let outpoint = r.collateral_outpoint(txid);
            let output = if r.collateral.txid == TxId::default() {
                usize::try_from(outpoint.index)
                    .ok()
                    .and_then(|i| tx.outputs.get(i))
                    .copied()
            } else if tx.inputs.iter().any(|input| input.prevout == outpoint) {
                None
            } else {
                view.utxo(&outpoint)?.map(|u| u.output)
            };
            let output = output.ok_or(MasternodeTxError::CollateralMissing(outpoint))?;
            if output.amount != r.tier.collateral() {
                return Err(MasternodeTxError::CollateralAmount {
                    tier: r.tier,
                    found: output.amount,
                    expected: r.tier.collateral(),
                }
                .into());
            }
            if output.address != AddressPayload::from_public_key(&r.collateral_key) {
                return Err(MasternodeTxError::CollateralKey(outpoint).into());
            }
            if list.by_collateral(&outpoint).is_some() {
                return Err(MasternodeTxError::CollateralInUse(outpoint).into());
            }
            if let Some(other) = list.by_operator(&r.operator) {
                return Err(MasternodeTxError::DuplicateOperator(r.operator, other.id).into());
            }
            if let Some(other) = list.by_service(&r.service) {
                return Err(MasternodeTxError::DuplicateService(r.service, other.id).into());
            }
            // Without the operator's proof, anyone could register a key seen on the network
            // and be paid for its votes, or have it banned for a twin it never ran.
            let proof = SigItem {
                key: r.operator,
                message: r.operator_proof_message(&ctx.genesis_hash, txid),
                signature: r.operator_proof,
            };
            Ok(vec![signed_by(r.collateral_key, &r.signature), proof])
        }
        Payload::Update(u) => {
            let entry = known(&u.masternode)?;
            not_banned(entry)?;
            if matches!(entry.status, Status::PoseBanned { .. }) && entry.penalty > 0 {
                return Err(MasternodeTxError::PenaltyNotDecayed {
                    masternode: entry.id,
                    penalty: entry.penalty,
                }
                .into());
            }
            if let Some(other) = list.by_operator(&u.operator).filter(|o| o.id != entry.id) {
                return Err(MasternodeTxError::DuplicateOperator(u.operator, other.id).into());
            }
            // The list keeps each replaced key while evidence may name it, so that a new
            // key does not escape a ban; rotations are bounded so that this stays small.
            if u.operator != entry.operator
                && list.former_operators(&entry.id).len() >= MasternodeList::MAX_FORMER_OPERATORS
            {
                return Err(MasternodeTxError::TooManyKeyRotations {
                    masternode: entry.id,
                    max: MasternodeList::MAX_FORMER_OPERATORS,
                }
                .into());
            }
            if let Some(other) = list.by_service(&u.service).filter(|o| o.id != entry.id) {
                return Err(MasternodeTxError::DuplicateService(u.service, other.id).into());
            }
            let owner = signed_by(entry.owner, &u.signature);
            // A new key proves itself, as a registered one does; a kept key has proved itself
            // already, and a proof nothing checks would be bytes anyone relaying could change.
            match (u.operator != entry.operator, u.operator_proof) {
                (true, Some(proof)) => Ok(vec![
                    owner,
                    SigItem {
                        key: u.operator,
                        message: u.operator_proof_message(&ctx.genesis_hash),
                        signature: proof,
                    },
                ]),
                (true, None) => Err(MasternodeTxError::MissingOperatorProof {
                    masternode: entry.id,
                    operator: u.operator,
                }
                .into()),
                (false, Some(_)) => Err(MasternodeTxError::UnneededOperatorProof(entry.id).into()),
                (false, None) => Ok(vec![owner]),
            }
        }
        Payload::Revoke(r) => {
            let entry = known(&r.masternode)?;
            // A revocation would replace the ban, and a revoked masternode may update or
            // unlock: a banned one serves its ban first.
            not_banned(entry)?;
            if matches!(entry.status, Status::Revoked { .. }) {
                return Err(MasternodeTxError::AlreadyRevoked(entry.id).into());
            }
            Ok(vec![signed_by(entry.operator, &r.signature)])
        }
    }
}
