//! Transaction and block validation, in three stages (as Zebra splits them):
//!
//! 1. **stateless** checks need only the object and the parameters: sizes, counts,
//!    duplicates, amount ranges;
//! 2. **contextual** checks need the chain state through a [`UtxoView`]: inputs exist and are
//!    unspent, belong to the signing key, cover the outputs and the minimum fee, and the lock
//!    time has passed. They produce the signature checks still to be done as [`SigItem`]s;
//! 3. **signatures** are verified in batches, split across all cores ([`verify_signatures`]).
//!
//! Nothing here reads a clock: the caller passes the time a block is judged at.

use std::collections::{HashMap, HashSet};

use std::net::SocketAddr;

use rayon::prelude::*;
use thiserror::Error;
use timecoin_primitives::encoding::compact_size_len;
use timecoin_primitives::limits::MAX_BLOCK_EVIDENCE;
use timecoin_primitives::{
    AddressPayload, Amount, BatchVerifier, Block, BlockHash, BlockHeader, CommitCertificate, Encode, Equivocation,
    Hash256, OutPoint, Payload, PublicKey, Signature, SignatureError, Tier, Transaction, TxId, TxOutput, evidence_hash,
    last_commit_hash, merkle_root, payload_signature_message, signature_message, transactions_root,
};

use crate::masternodes::{EMPTY_LIST, MasternodeList, Status};
use crate::params::ChainParams;
use crate::reward::{RewardError, block_reward, reward_outputs};
use crate::sigcache::SignatureCache;

/// An unspent output as the chain state holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Utxo {
    /// The output.
    pub output: TxOutput,
    /// The height of the block that created it.
    pub height: u64,
    /// Whether a reward (or genesis) transaction created it.
    pub is_reward: bool,
}

/// The chain state could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("utxo lookup failed: {0}")]
pub struct ViewError(pub String);

/// Read access to a chain state: its unspent outputs (the tip's, or those plus a block's or
/// a mempool's own outputs) and its masternode list.
pub trait UtxoView {
    /// The unspent output at `outpoint`, if there is one.
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, ViewError>;

    /// The masternode list of the same state (empty for a view that holds none).
    fn masternodes(&self) -> &MasternodeList {
        &EMPTY_LIST
    }
}

impl<T: UtxoView + ?Sized> UtxoView for &T {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, ViewError> {
        (**self).utxo(outpoint)
    }

    fn masternodes(&self) -> &MasternodeList {
        (**self).masternodes()
    }
}

impl UtxoView for HashMap<OutPoint, Utxo> {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, ViewError> {
        Ok(self.get(outpoint).copied())
    }
}

/// The unspent outputs `tx` creates when a block at `height` includes it.
pub fn created_outputs(tx: &Transaction, txid: TxId, height: u64) -> impl Iterator<Item = (OutPoint, Utxo)> + '_ {
    let is_reward = tx.is_reward();
    (0u32..).zip(&tx.outputs).map(move |(index, output)| {
        (
            OutPoint { txid, index },
            Utxo {
                output: *output,
                height,
                is_reward,
            },
        )
    })
}

/// One signature still to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigItem {
    /// The signer.
    pub key: PublicKey,
    /// What was signed.
    pub message: Hash256,
    /// The signature.
    pub signature: Signature,
}

/// Why a transaction is invalid. [`TxError::code`] gives a short, stable reason code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TxError {
    /// Unknown version.
    #[error("unsupported transaction version {0}")]
    Version(u16),
    /// A non-reward transaction without inputs.
    #[error("transaction has no inputs")]
    NoInputs,
    /// No outputs.
    #[error("transaction has no outputs")]
    NoOutputs,
    /// Larger than the network allows.
    #[error("transaction is {size} bytes, above the maximum of {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The same outpoint is spent twice inside the transaction.
    #[error("transaction spends {0} twice")]
    DuplicateInput(OutPoint),
    /// An output of zero.
    #[error("output {0} is zero")]
    ZeroOutput(usize),
    /// An output or the sum of outputs above the maximum amount.
    #[error("outputs exceed the maximum amount")]
    OutputsTooLarge,
    /// An input does not exist or is already spent.
    #[error("input {0} is missing or already spent")]
    MissingInput(OutPoint),
    /// An input's key does not own the output it spends.
    #[error("input {index}: public key does not match the spent output's address")]
    WrongKey {
        /// The input's position.
        index: usize,
    },
    /// The lock time is later than the height the transaction would be included at.
    #[error("transaction is locked until height {lock_time}; the next block is {height}")]
    NotFinal {
        /// The lock time.
        lock_time: u64,
        /// The height being built.
        height: u64,
    },
    /// Outputs exceed inputs.
    #[error("outputs total {outputs} but inputs only {inputs}")]
    InputsBelowOutputs {
        /// Sum of inputs.
        inputs: Amount,
        /// Sum of outputs.
        outputs: Amount,
    },
    /// The fee is below the network minimum.
    #[error("fee {fee} is below the minimum {required} for {size} bytes")]
    FeeTooLow {
        /// The fee paid.
        fee: Amount,
        /// The minimum.
        required: Amount,
        /// The transaction's size.
        size: usize,
    },
    /// A signature does not verify.
    #[error("invalid signature")]
    BadSignature,
    /// The transaction spends a registered masternode's collateral without deregistering it.
    #[error("input {outpoint} is the locked collateral of masternode {masternode}; spend it with masternodeunlock")]
    CollateralLocked {
        /// The collateral.
        outpoint: OutPoint,
        /// The masternode.
        masternode: TxId,
    },
    /// A masternode payload is invalid against the masternode list.
    #[error(transparent)]
    Masternode(#[from] MasternodeTxError),
    /// The chain state could not be read.
    #[error(transparent)]
    View(#[from] ViewError),
}

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

impl TxError {
    /// Whether the transaction is invalid in any chain state (malformed, or a signature or
    /// key that does not match): a peer relaying it misbehaves. A missing input, a lock time
    /// or a fee can be honest differences of view.
    pub fn is_invalid_in_any_state(&self) -> bool {
        matches!(
            self,
            TxError::Version(_)
                | TxError::NoInputs
                | TxError::NoOutputs
                | TxError::TooLarge { .. }
                | TxError::DuplicateInput(_)
                | TxError::ZeroOutput(_)
                | TxError::OutputsTooLarge
                | TxError::WrongKey { .. }
                | TxError::BadSignature
                | TxError::Masternode(MasternodeTxError::FreeTier)
        )
    }

    /// A short reason code, in the style of Bitcoin Core's reject reasons.
    pub fn code(&self) -> &'static str {
        match self {
            TxError::Version(_) => "bad-txns-version",
            TxError::NoInputs => "bad-txns-vin-empty",
            TxError::NoOutputs => "bad-txns-vout-empty",
            TxError::TooLarge { .. } => "bad-txns-oversize",
            TxError::DuplicateInput(_) => "bad-txns-inputs-duplicate",
            TxError::ZeroOutput(_) => "bad-txns-vout-zero",
            TxError::OutputsTooLarge => "bad-txns-vout-toolarge",
            TxError::MissingInput(_) => "bad-txns-inputs-missingorspent",
            TxError::WrongKey { .. } => "bad-txns-wrong-key",
            TxError::NotFinal { .. } => "bad-txns-nonfinal",
            TxError::InputsBelowOutputs { .. } => "bad-txns-in-belowout",
            TxError::FeeTooLow { .. } => "min-fee-not-met",
            TxError::BadSignature => "bad-txns-signature",
            TxError::CollateralLocked { .. } => "bad-txns-collateral-locked",
            TxError::Masternode(e) => match e {
                MasternodeTxError::FreeTier => "bad-protx-tier",
                MasternodeTxError::CollateralMissing(_)
                | MasternodeTxError::CollateralAmount { .. }
                | MasternodeTxError::CollateralKey(_) => "bad-protx-collateral",
                MasternodeTxError::CollateralInUse(_) => "bad-protx-collateral-dup",
                MasternodeTxError::DuplicateOperator(..) => "bad-protx-dup-key",
                MasternodeTxError::DuplicateService(..) => "bad-protx-dup-addr",
                MasternodeTxError::Unknown(_) => "bad-protx-hash",
                MasternodeTxError::CollateralNotSpent(_) => "bad-protx-unlock",
                MasternodeTxError::UnlockWhileServing(_) => "bad-protx-unlock-serving",
                MasternodeTxError::UnlockTooEarly { .. } => "bad-protx-unlock-early",
                MasternodeTxError::MissingOperatorProof { .. } => "bad-protx-operator-proof-missing",
                MasternodeTxError::UnneededOperatorProof(_) => "bad-protx-operator-proof-unneeded",
                MasternodeTxError::Banned { .. } => "bad-protx-banned",
                MasternodeTxError::PenaltyNotDecayed { .. } => "bad-protx-penalty",
                MasternodeTxError::AlreadyRevoked(_) => "bad-protx-revoked",
                MasternodeTxError::TooManyKeyRotations { .. } => "bad-protx-key-rotations",
                MasternodeTxError::ListFull { .. } => "bad-protx-list-full",
            },
            TxError::View(_) => "state-unavailable",
        }
    }
}

/// What the contextual checks learned about a valid transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedTx {
    /// The txid.
    pub txid: TxId,
    /// Encoded size in bytes.
    pub size: usize,
    /// Inputs minus outputs.
    pub fee: Amount,
    /// The spent outputs, in input order.
    pub spent: Vec<Utxo>,
    /// The signatures still to verify.
    pub sig_items: Vec<SigItem>,
}

/// Where a transaction is judged: the network and the height of the block it would enter.
#[derive(Debug, Clone, Copy)]
pub struct TxContext<'a> {
    /// The network's parameters.
    pub params: &'a ChainParams,
    /// The network's genesis hash (signed by every input).
    pub genesis_hash: BlockHash,
    /// The height of the block being built or checked.
    pub height: u64,
}

fn check_outputs(tx: &Transaction) -> Result<Amount, TxError> {
    if tx.outputs.is_empty() {
        return Err(TxError::NoOutputs);
    }
    for (index, output) in tx.outputs.iter().enumerate() {
        if output.amount == Amount::ZERO {
            return Err(TxError::ZeroOutput(index));
        }
    }
    match tx.output_total() {
        Some(total) if total.is_in_range() => Ok(total),
        _ => Err(TxError::OutputsTooLarge),
    }
}

/// Stateless checks of a transaction that is not a reward transaction; `size` is its encoded
/// size.
pub fn check_tx_stateless(tx: &Transaction, size: usize, params: &ChainParams) -> Result<(), TxError> {
    if tx.version != Transaction::version_for(tx.payload.as_ref()) {
        return Err(TxError::Version(tx.version));
    }
    if size > params.max_tx_bytes {
        return Err(TxError::TooLarge {
            size,
            max: params.max_tx_bytes,
        });
    }
    if tx.inputs.is_empty() {
        return Err(TxError::NoInputs);
    }
    check_outputs(tx)?;
    let mut seen = HashSet::with_capacity(tx.inputs.len());
    for input in &tx.inputs {
        if !seen.insert(input.prevout) {
            return Err(TxError::DuplicateInput(input.prevout));
        }
    }
    Ok(())
}

/// Contextual checks of a transaction that passed [`check_tx_stateless`]. Signatures are not
/// verified here; they are returned in [`CheckedTx::sig_items`].
pub fn check_tx_contextual(
    tx: &Transaction,
    txid: TxId,
    size: usize,
    view: &impl UtxoView,
    ctx: &TxContext<'_>,
) -> Result<CheckedTx, TxError> {
    if tx.lock_time > ctx.height {
        return Err(TxError::NotFinal {
            lock_time: tx.lock_time,
            height: ctx.height,
        });
    }
    let mut spent = Vec::with_capacity(tx.inputs.len());
    for (index, input) in tx.inputs.iter().enumerate() {
        let utxo = view.utxo(&input.prevout)?.ok_or(TxError::MissingInput(input.prevout))?;
        if AddressPayload::from_public_key(&input.public_key) != utxo.output.address {
            return Err(TxError::WrongKey { index });
        }
        spent.push(utxo);
    }
    let inputs = Amount::checked_sum(spent.iter().map(|u| u.output.amount)).ok_or(TxError::OutputsTooLarge)?;
    let outputs = tx.output_total().ok_or(TxError::OutputsTooLarge)?;
    let fee = inputs
        .checked_sub(outputs)
        .ok_or(TxError::InputsBelowOutputs { inputs, outputs })?;
    let required = ctx.params.min_fee_rate.fee_for(size);
    if fee < required {
        return Err(TxError::FeeTooLow { fee, required, size });
    }
    let payload_sigs = check_masternode_rules(tx, txid, view, ctx)?;
    let amounts: Vec<Amount> = spent.iter().map(|u| u.output.amount).collect();
    let message = signature_message(&ctx.genesis_hash, &txid, &amounts);
    let sig_items = tx
        .inputs
        .iter()
        .map(|input| SigItem {
            key: input.public_key,
            message,
            signature: input.signature,
        })
        .chain(payload_sigs)
        .collect();
    Ok(CheckedTx {
        txid,
        size,
        fee,
        spent,
        sig_items,
    })
}

/// The masternode rules of a transaction against the list `view` holds: a registered
/// collateral is spent only by its masternode's unlock, and a payload is valid against the
/// list. Returns the payload's signature checks: its own signature's and, for a payload that
/// gives a masternode an operator key, that key's proof (part of [`check_tx_contextual`];
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

/// Signature batches smaller than this are not split across threads.
const MIN_PARALLEL_CHUNK: usize = 64;

/// Verifies one batch on the calling thread.
pub fn verify_batch(items: &[SigItem]) -> Result<(), SignatureError> {
    let mut batch = BatchVerifier::new();
    for item in items {
        batch.queue(&item.key, &item.message.0, &item.signature);
    }
    batch.verify(rand::rng())
}

/// Verifies every signature, in batches spread over the rayon thread pool (all cores).
pub fn verify_signatures(items: &[SigItem]) -> Result<(), SignatureError> {
    let threads = rayon::current_num_threads().max(1);
    if items.len() < MIN_PARALLEL_CHUNK * 2 || threads == 1 {
        return verify_batch(items);
    }
    let chunk = items.len().div_ceil(threads).max(MIN_PARALLEL_CHUNK);
    items.par_chunks(chunk).try_for_each(verify_batch)
}

/// Every check of one standalone transaction, signatures included.
pub fn check_transaction(tx: &Transaction, view: &impl UtxoView, ctx: &TxContext<'_>) -> Result<CheckedTx, TxError> {
    let size = tx.encoded_len();
    check_tx_stateless(tx, size, ctx.params)?;
    let checked = check_tx_contextual(tx, tx.txid(), size, view, ctx)?;
    verify_batch(&checked.sig_items).map_err(|_| TxError::BadSignature)?;
    Ok(checked)
}

/// The block a new block must extend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainTip {
    /// Its height.
    pub height: u64,
    /// Its hash.
    pub hash: BlockHash,
    /// Its timestamp.
    pub timestamp_ms: u64,
}

impl ChainTip {
    /// The tip that `header` makes.
    pub fn of(header: &BlockHeader) -> ChainTip {
        ChainTip {
            height: header.height,
            hash: header.hash(),
            timestamp_ms: header.timestamp_ms,
        }
    }
}

/// Where a block is judged.
#[derive(Debug, Clone, Copy)]
pub struct BlockContext<'a> {
    /// The network's parameters.
    pub params: &'a ChainParams,
    /// The network's genesis hash.
    pub genesis_hash: BlockHash,
    /// The block the new one must extend.
    pub parent: ChainTip,
    /// The masternode list after the parent: it fixes the set that signs the new block.
    pub masternodes: &'a MasternodeList,
    /// The chain state after the parent ([`timecoin_primitives::chain_state_hash`]).
    pub parent_state: Hash256,
    /// The judging node's clock, for the far-future rule on a proposal it votes on; `None`
    /// for a block whose commit certificate verified: more than 2/3 of the voting power
    /// accepted its timestamp, and a node whose clock lags has no say over what is final.
    pub now_ms: Option<u64>,
}

/// Why a block is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BlockError {
    /// Unknown header version.
    #[error("unsupported block version {0}")]
    Version(u16),
    /// Not the next height.
    #[error("block height {found}, expected {expected}")]
    Height {
        /// The next height.
        expected: u64,
        /// The header's.
        found: u64,
    },
    /// Does not extend the tip.
    #[error("block extends {found}, not the tip {expected}")]
    PrevHash {
        /// The tip.
        expected: BlockHash,
        /// The header's parent.
        found: BlockHash,
    },
    /// The timestamp is not after the parent's.
    #[error("block timestamp {found} is not after its parent's {parent}")]
    TimestampNotIncreasing {
        /// The parent's timestamp.
        parent: u64,
        /// The header's.
        found: u64,
    },
    /// The timestamp is too far ahead of the validator's clock.
    #[error("block timestamp {found} is more than {max_ahead_ms} ms ahead of the local clock {now}")]
    TimestampInFuture {
        /// The header's.
        found: u64,
        /// The local clock.
        now: u64,
        /// The allowance.
        max_ahead_ms: u64,
    },
    /// Too large.
    #[error("block is {size} bytes, above the maximum of {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Too many transactions, or none.
    #[error("block holds {count} transactions; it needs 1 to {max}")]
    TransactionCount {
        /// The count.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The merkle root does not match the transactions.
    #[error("merkle root does not match the transactions")]
    MerkleRoot,
    /// The header names another masternode set.
    #[error("header names masternode set {found}, expected {expected}")]
    MasternodeSet {
        /// The set's hash.
        expected: Hash256,
        /// The header's.
        found: Hash256,
    },
    /// The first transaction is not a reward transaction, or another one is.
    #[error("transaction {0} is misplaced: the reward transaction must come first, and only once")]
    MisplacedReward(usize),
    /// The reward transaction is malformed or pays the wrong amounts.
    #[error("reward transaction is invalid: {0}")]
    Reward(String),
    /// The proposer cannot be paid.
    #[error(transparent)]
    Proposer(#[from] RewardError),
    /// Two transactions in the block spend one output.
    #[error("outpoint {0} is spent twice in the block")]
    DoubleSpend(OutPoint),
    /// A transaction is invalid.
    #[error("transaction {index} ({txid}): {error}")]
    Transaction {
        /// Its position.
        index: usize,
        /// Its id.
        txid: TxId,
        /// Why.
        error: TxError,
    },
    /// Fees overflowed.
    #[error("fees overflow")]
    FeeOverflow,
    /// The header names another chain state than the parent's.
    #[error("header names chain state {found}, but the state after the parent is {expected}")]
    State {
        /// The state after the parent.
        expected: Hash256,
        /// The header's.
        found: Hash256,
    },
    /// The certificate of the parent is missing, unexpected, or invalid.
    #[error("last commit: {0}")]
    LastCommit(String),
    /// An evidence item is invalid.
    #[error("evidence {index}: {reason}")]
    Evidence {
        /// Its position.
        index: usize,
        /// Why.
        reason: String,
    },
}

/// What a valid block's checks learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedBlock {
    /// The block hash.
    pub hash: BlockHash,
    /// The txids in block order.
    pub txids: Vec<TxId>,
    /// The sum of fees.
    pub fees: Amount,
    /// The coins minted.
    pub reward: Amount,
}

/// The block's own outputs over the chain state, refusing a second spend inside the block,
/// and the masternode list as the block's transactions so far change it.
struct BlockOverlay<'v, V> {
    base: &'v V,
    created: HashMap<OutPoint, Utxo>,
    spent: HashSet<OutPoint>,
    list: MasternodeList,
}

impl<V: UtxoView> BlockOverlay<'_, V> {
    fn lookup(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, ViewError> {
        if self.spent.contains(outpoint) {
            return Ok(None);
        }
        match self.created.get(outpoint) {
            Some(utxo) => Ok(Some(*utxo)),
            None => self.base.utxo(outpoint),
        }
    }
}

impl<V: UtxoView> BlockOverlay<'_, V> {
    /// Every check `check_block` makes of the transaction at `index` of a block (not the
    /// reward transaction), signatures aside, against the block's state so far.
    fn check_next(
        &self,
        index: usize,
        tx: &Transaction,
        txid: TxId,
        size: usize,
        ctx: &TxContext<'_>,
    ) -> Result<CheckedTx, BlockError> {
        if tx.is_reward() {
            return Err(BlockError::MisplacedReward(index));
        }
        let tx_error = |error| BlockError::Transaction { index, txid, error };
        check_tx_stateless(tx, size, ctx.params).map_err(tx_error)?;
        if let Some(input) = tx.inputs.iter().find(|input| self.spent.contains(&input.prevout)) {
            return Err(BlockError::DoubleSpend(input.prevout));
        }
        check_tx_contextual(tx, txid, size, self, ctx).map_err(tx_error)
    }

    /// Moves the block's state past a transaction [`Self::check_next`] accepted: its inputs
    /// are spent, its outputs created, and the masternode list applies it.
    fn apply_next(&mut self, tx: &Transaction, txid: TxId, ctx: &TxContext<'_>) {
        for input in &tx.inputs {
            self.created.remove(&input.prevout);
            self.spent.insert(input.prevout);
        }
        self.list.apply_transaction(tx, txid, ctx.height, ctx.params);
        self.created.extend(created_outputs(tx, txid, ctx.height));
    }
}

impl<V: UtxoView> UtxoView for BlockOverlay<'_, V> {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, ViewError> {
        self.lookup(outpoint)
    }

    fn masternodes(&self) -> &MasternodeList {
        &self.list
    }
}

fn check_header(block: &Block, ctx: &BlockContext<'_>) -> Result<(), BlockError> {
    let header = &block.header;
    if header.version != BlockHeader::VERSION {
        return Err(BlockError::Version(header.version));
    }
    let expected = ctx.parent.height.saturating_add(1);
    if header.height != expected {
        return Err(BlockError::Height {
            expected,
            found: header.height,
        });
    }
    if header.prev_hash != ctx.parent.hash {
        return Err(BlockError::PrevHash {
            expected: ctx.parent.hash,
            found: header.prev_hash,
        });
    }
    if header.timestamp_ms <= ctx.parent.timestamp_ms {
        return Err(BlockError::TimestampNotIncreasing {
            parent: ctx.parent.timestamp_ms,
            found: header.timestamp_ms,
        });
    }
    if let Some(now) = ctx.now_ms
        && header.timestamp_ms > now.saturating_add(ctx.params.max_future_block_ms)
    {
        return Err(BlockError::TimestampInFuture {
            found: header.timestamp_ms,
            now,
            max_ahead_ms: ctx.params.max_future_block_ms,
        });
    }
    let set_hash = ctx.masternodes.voting_set().hash();
    if header.masternode_set_hash != set_hash {
        return Err(BlockError::MasternodeSet {
            expected: set_hash,
            found: header.masternode_set_hash,
        });
    }
    if header.state_hash != ctx.parent_state {
        return Err(BlockError::State {
            expected: ctx.parent_state,
            found: header.state_hash,
        });
    }
    check_last_commit(block, ctx)?;
    check_evidence(block, ctx)
}

/// Block 1 carries no certificate of its parent (genesis has none); every later block
/// carries one that finalizes its parent under the set that signed it.
fn check_last_commit(block: &Block, ctx: &BlockContext<'_>) -> Result<(), BlockError> {
    if block.header.last_commit_hash != last_commit_hash(block.last_commit.as_ref()) {
        return Err(BlockError::LastCommit("does not match the header's hash".to_owned()));
    }
    match (&block.last_commit, ctx.parent.height) {
        (None, 0) => Ok(()),
        (Some(_), 0) => Err(BlockError::LastCommit("block 1 must not carry one".to_owned())),
        (None, _) => Err(BlockError::LastCommit("missing".to_owned())),
        (Some(certificate), parent_height) => certificate
            .verify(
                &ctx.genesis_hash,
                parent_height,
                &ctx.parent.hash,
                ctx.masternodes.signers(),
                rand::rng(),
            )
            .map_err(|e| BlockError::LastCommit(e.to_string())),
    }
}

/// Each proof names a masternode of the list, not already banned, that held the key at the
/// offence; it is recent, on this network, and signed; one proof per masternode.
fn check_evidence(block: &Block, ctx: &BlockContext<'_>) -> Result<(), BlockError> {
    if block.header.evidence_hash != evidence_hash(&block.evidence) {
        return Err(BlockError::Evidence {
            index: 0,
            reason: "the list does not match the header's hash".to_owned(),
        });
    }
    let height = block.header.height;
    let mut offenders = HashSet::new();
    for (index, evidence) in block.evidence.iter().enumerate() {
        let invalid = |reason: String| BlockError::Evidence { index, reason };
        if index >= MAX_BLOCK_EVIDENCE {
            return Err(invalid(format!("more than {MAX_BLOCK_EVIDENCE} proofs")));
        }
        let offender =
            equivocation_offender(evidence, height, ctx.genesis_hash, ctx.params, ctx.masternodes).map_err(invalid)?;
        // Two proofs may name one masternode through two of its keys.
        if !offenders.insert(offender) {
            return Err(invalid("a second proof against the same masternode".to_owned()));
        }
    }
    Ok(())
}

/// Whether `evidence` may enter a block at `height` on top of `list`: the rule blocks
/// follow, and the check a proposer makes before including it.
pub fn check_equivocation(
    evidence: &Equivocation,
    height: u64,
    genesis_hash: BlockHash,
    params: &ChainParams,
    list: &MasternodeList,
) -> Result<(), String> {
    equivocation_offender(evidence, height, genesis_hash, params, list).map(|_| ())
}

/// [`check_equivocation`], naming the masternode the evidence bans: the one whose operator
/// key signed the votes at their height, even if it has replaced the key since.
fn equivocation_offender(
    evidence: &Equivocation,
    height: u64,
    genesis_hash: BlockHash,
    params: &ChainParams,
    list: &MasternodeList,
) -> Result<TxId, String> {
    let (first, _) = evidence.votes();
    if first.vote.chain != genesis_hash {
        return Err("the votes are for another network".to_owned());
    }
    let offence = evidence.height();
    if offence >= height || height - offence > params.max_evidence_age_blocks {
        return Err(format!(
            "offence at height {offence} is not within the {} blocks before {height}",
            params.max_evidence_age_blocks
        ));
    }
    let offender = evidence.validator();
    let entry = list
        .by_operator_at(&offender, offence)
        .ok_or_else(|| format!("{offender} was no masternode's operator key at height {offence}"))?;
    if let Some(until) = entry.banned_until(height) {
        return Err(format!("masternode {} is already banned until {until}", entry.id));
    }
    evidence.verify().map_err(|e| e.to_string())?;
    Ok(entry.id)
}

/// Every check of a block against its parent and the chain state at the parent, signatures
/// included. `view` must show the UTXO set as of `ctx.parent`.
pub fn check_block(block: &Block, view: &impl UtxoView, ctx: &BlockContext<'_>) -> Result<CheckedBlock, BlockError> {
    check_block_with(block, view, ctx, None)
}

/// [`check_block`], skipping the signature checks `signatures` already passed (those of the
/// transactions this node admitted to its mempool) and remembering the rest.
pub fn check_block_cached(
    block: &Block,
    view: &impl UtxoView,
    ctx: &BlockContext<'_>,
    signatures: &SignatureCache,
) -> Result<CheckedBlock, BlockError> {
    check_block_with(block, view, ctx, Some(signatures))
}

fn check_block_with(
    block: &Block,
    view: &impl UtxoView,
    ctx: &BlockContext<'_>,
    signatures: Option<&SignatureCache>,
) -> Result<CheckedBlock, BlockError> {
    check_header(block, ctx)?;
    let params = ctx.params;
    let count = block.transactions.len();
    if count == 0 || count > params.max_block_txs {
        return Err(BlockError::TransactionCount {
            count,
            max: params.max_block_txs,
        });
    }
    let size = block.encoded_len();
    if size > params.max_block_bytes {
        return Err(BlockError::TooLarge {
            size,
            max: params.max_block_bytes,
        });
    }
    let hashed: Vec<(TxId, usize, Hash256)> = block
        .transactions
        .par_iter()
        .map(|tx| (tx.txid(), tx.encoded_len(), tx.witness_hash()))
        .collect();
    let txids: Vec<TxId> = hashed.iter().map(|(txid, _, _)| *txid).collect();
    let sizes: Vec<usize> = hashed.iter().map(|(_, size, _)| *size).collect();
    let witnesses: Vec<Hash256> = hashed.iter().map(|(_, _, witness)| *witness).collect();
    // The root covers every byte of every transaction, signatures included.
    if merkle_root(&witnesses) != block.header.merkle_root {
        return Err(BlockError::MerkleRoot);
    }

    let height = block.header.height;
    let tx_ctx = TxContext {
        params,
        genesis_hash: ctx.genesis_hash,
        height,
    };
    let mut list = ctx.masternodes.clone();
    list.begin_block(block, params);
    let mut overlay = BlockOverlay {
        base: view,
        created: HashMap::new(),
        spent: HashSet::new(),
        list,
    };
    let mut fees = Amount::ZERO;
    let mut sig_items = Vec::new();
    let mut sig_owner = Vec::new();
    for (index, ((tx, txid), size)) in block.transactions.iter().zip(&txids).zip(&sizes).enumerate() {
        if index == 0 {
            if !tx.is_reward() {
                return Err(BlockError::MisplacedReward(index));
            }
            overlay.created.extend(created_outputs(tx, *txid, height));
            continue;
        }
        let checked = overlay.check_next(index, tx, *txid, *size, &tx_ctx)?;
        overlay.apply_next(tx, *txid, &tx_ctx);
        fees = fees.checked_add(checked.fee).ok_or(BlockError::FeeOverflow)?;
        sig_owner.extend(std::iter::repeat_n(index, checked.sig_items.len()));
        sig_items.extend(checked.sig_items);
    }

    let reward = block_reward(params, ctx.parent.timestamp_ms, block.header.timestamp_ms);
    let reward_tx = block.transactions.first().ok_or(BlockError::TransactionCount {
        count: 0,
        max: params.max_block_txs,
    })?;
    check_reward_tx(reward_tx, height, reward, fees, &block.header.proposer, ctx)?;

    let verified = match signatures {
        Some(cache) => cache.verify(&sig_items),
        None => verify_signatures(&sig_items),
    };
    if verified.is_err() {
        // Name the first transaction at fault.
        let index = first_bad_signature(&sig_items, &sig_owner).unwrap_or(0);
        let txid = txids.get(index).copied().unwrap_or_default();
        return Err(BlockError::Transaction {
            index,
            txid,
            error: TxError::BadSignature,
        });
    }
    Ok(CheckedBlock {
        hash: block.hash(),
        txids,
        fees,
        reward,
    })
}

fn first_bad_signature(items: &[SigItem], owners: &[usize]) -> Option<usize> {
    items
        .par_iter()
        .zip(owners.par_iter())
        .filter(|(item, _)| item.key.verify(&item.message.0, &item.signature).is_err())
        .map(|(_, owner)| *owner)
        .min()
}

fn check_reward_tx(
    tx: &Transaction,
    height: u64,
    reward: Amount,
    fees: Amount,
    proposer: &PublicKey,
    ctx: &BlockContext<'_>,
) -> Result<(), BlockError> {
    if tx.version != Transaction::VERSION || tx.payload.is_some() {
        return Err(BlockError::Reward(format!("version {}", tx.version)));
    }
    if tx.lock_time != height {
        return Err(BlockError::Reward(format!(
            "lock time {} must equal the block height {height}",
            tx.lock_time
        )));
    }
    let list = ctx.masternodes;
    let expected = reward_outputs(list.voting_set(), &list.payees(ctx.params), reward, fees, proposer)?;
    if tx.outputs != expected {
        let paid = tx
            .output_total()
            .map_or_else(|| "an overflowing amount".to_owned(), |a| a.to_string());
        let due = Amount::checked_sum(expected.iter().map(|o| o.amount)).unwrap_or(Amount::ZERO);
        return Err(BlockError::Reward(format!(
            "pays {paid} in {} outputs; the rule requires {due} in {} outputs",
            tx.outputs.len(),
            expected.len()
        )));
    }
    Ok(())
}

/// The reward transaction a proposer puts first in the block `ctx` describes.
pub fn build_reward_tx(
    ctx: &BlockContext<'_>,
    timestamp_ms: u64,
    fees: Amount,
    proposer: &PublicKey,
) -> Result<Transaction, RewardError> {
    let reward = block_reward(ctx.params, ctx.parent.timestamp_ms, timestamp_ms);
    let list = ctx.masternodes;
    Ok(Transaction {
        version: Transaction::VERSION,
        inputs: Vec::new(),
        outputs: reward_outputs(list.voting_set(), &list.payees(ctx.params), reward, fees, proposer)?,
        lock_time: ctx.parent.height.saturating_add(1),
        memo: Vec::new(),
        payload: None,
    })
}

/// What a proposer puts in a block besides its transactions.
#[derive(Debug, Clone, Default)]
pub struct BlockExtras {
    /// The certificate that finalized the parent (none when the parent is genesis).
    pub last_commit: Option<CommitCertificate>,
    /// Evidence of double-signing to record.
    pub evidence: Vec<Equivocation>,
}

/// A block for the height after `ctx.parent`: the reward transaction for `fees` first, then
/// `transactions`, under a header naming `proposer`, the voting set and the parent's state.
pub fn assemble_block(
    ctx: &BlockContext<'_>,
    timestamp_ms: u64,
    proposer: &PublicKey,
    extras: BlockExtras,
    fees: Amount,
    transactions: Vec<Transaction>,
) -> Result<Block, RewardError> {
    let reward = build_reward_tx(ctx, timestamp_ms, fees, proposer)?;
    let mut all = Vec::with_capacity(transactions.len() + 1);
    all.push(reward);
    all.extend(transactions);
    Ok(Block {
        header: BlockHeader {
            version: BlockHeader::VERSION,
            height: ctx.parent.height.saturating_add(1),
            prev_hash: ctx.parent.hash,
            timestamp_ms,
            merkle_root: transactions_root(&all),
            proposer: *proposer,
            masternode_set_hash: ctx.masternodes.voting_set().hash(),
            state_hash: ctx.parent_state,
            last_commit_hash: last_commit_hash(extras.last_commit.as_ref()),
            evidence_hash: evidence_hash(&extras.evidence),
        },
        transactions: all,
        last_commit: extras.last_commit,
        evidence: extras.evidence,
    })
}

/// The transactions of a block template that pass the block's per-transaction rules
/// together, in order, on `view` (the tip's state and masternode list): each one is judged
/// by the check `check_block` runs, signatures aside, after the ones kept before it, so a
/// transaction that conflicts with an earlier one (spends what it spent, registers its key,
/// or names as collateral what it spent) is left out, and so is whatever spends its outputs.
///
/// It cannot see the block's evidence, which bans before any transaction applies, nor the
/// block's size: [`propose_block`] does the whole job and is what a proposer should call.
pub fn select_masternode_txs(
    transactions: Vec<Transaction>,
    view: &impl UtxoView,
    ctx: &TxContext<'_>,
) -> Vec<Transaction> {
    let mut overlay = BlockOverlay {
        base: view,
        created: HashMap::new(),
        spent: HashSet::new(),
        list: view.masternodes().clone(),
    };
    let mut kept = Vec::with_capacity(transactions.len());
    for tx in transactions {
        let txid = tx.txid();
        let index = kept.len().saturating_add(1);
        if overlay.check_next(index, &tx, txid, tx.encoded_len(), ctx).is_ok() {
            overlay.apply_next(&tx, txid, ctx);
            kept.push(tx);
        }
    }
    kept
}

/// A block a proposer built ([`propose_block`]) and what it left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The block.
    pub block: Block,
    /// What its transactions pay, which its reward transaction gives the proposer.
    pub fees: Amount,
    /// The candidate transactions left out, each with the rule it would have broken at the
    /// place it would have taken.
    pub dropped: Vec<(TxId, BlockError)>,
}

/// The block a proposer builds on `ctx.parent` at `timestamp_ms`: of `extras.evidence`, the
/// proofs [`check_block`] accepts (one per masternode, at most [`MAX_BLOCK_EVIDENCE`]); of
/// `candidates` (a mempool template, parents before children), in order, each transaction
/// that passes the block's rules after the evidence and the transactions kept before it,
/// within the block's size and transaction count. `view` shows the UTXO set after the
/// parent; `ctx.masternodes` is the list after it.
///
/// The block passes `check_block` on that state, apart from signatures: those of pooled
/// transactions were verified on admission, and this does not verify them again.
pub fn propose_block(
    ctx: &BlockContext<'_>,
    view: &impl UtxoView,
    timestamp_ms: u64,
    proposer: &PublicKey,
    extras: BlockExtras,
    candidates: Vec<Transaction>,
) -> Result<Proposal, RewardError> {
    let params = ctx.params;
    let height = ctx.parent.height.saturating_add(1);
    let mut offenders = HashSet::new();
    let evidence: Vec<Equivocation> = extras
        .evidence
        .into_iter()
        .filter(|e| {
            equivocation_offender(e, height, ctx.genesis_hash, params, ctx.masternodes)
                .is_ok_and(|offender| offenders.insert(offender))
        })
        .take(MAX_BLOCK_EVIDENCE)
        .collect();
    let extras = BlockExtras {
        last_commit: extras.last_commit,
        evidence,
    };
    // The block without transactions, its reward paying some fee (an output more than with
    // none): the evidence moves the list before any transaction, and its size is what the
    // transactions add to.
    let bare = assemble_block(
        ctx,
        timestamp_ms,
        proposer,
        extras.clone(),
        Amount::from_units(1),
        Vec::new(),
    )?;
    let mut list = ctx.masternodes.clone();
    list.begin_block(&bare, params);
    let mut overlay = BlockOverlay {
        base: view,
        created: HashMap::new(),
        spent: HashSet::new(),
        list,
    };
    let tx_ctx = TxContext {
        params,
        genesis_hash: ctx.genesis_hash,
        height,
    };
    // All but the transaction count's own prefix, the reward transaction included.
    let framing = bare.encoded_len().saturating_sub(compact_size_len(1));
    let mut body = 0usize;
    let mut fees = Amount::ZERO;
    let mut kept: Vec<Transaction> = Vec::with_capacity(candidates.len());
    let mut dropped = Vec::new();
    for tx in candidates {
        let txid = tx.txid();
        let tx_size = tx.encoded_len();
        let index = kept.len().saturating_add(1);
        let count = index.saturating_add(1);
        let size = framing
            .saturating_add(compact_size_len(count as u64))
            .saturating_add(body)
            .saturating_add(tx_size);
        let verdict = if count > params.max_block_txs {
            Err(BlockError::TransactionCount {
                count,
                max: params.max_block_txs,
            })
        } else if size > params.max_block_bytes {
            Err(BlockError::TooLarge {
                size,
                max: params.max_block_bytes,
            })
        } else {
            overlay
                .check_next(index, &tx, txid, tx_size, &tx_ctx)
                .and_then(|checked| fees.checked_add(checked.fee).ok_or(BlockError::FeeOverflow))
        };
        match verdict {
            Ok(total) => {
                overlay.apply_next(&tx, txid, &tx_ctx);
                fees = total;
                body = body.saturating_add(tx_size);
                kept.push(tx);
            }
            Err(error) => dropped.push((txid, error)),
        }
    }
    let block = assemble_block(ctx, timestamp_ms, proposer, extras, fees, kept)?;
    Ok(Proposal { block, fees, dropped })
}
