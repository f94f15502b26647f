//! Checking proofs against a trusted state.

use rand_core::CryptoRng;
use thiserror::Error;
use timecoin_chain::Genesis;
use timecoin_primitives::{
    BlockHash, BlockHeader, CertificateError, CommitCertificate, Hash256, MasternodeSet, MerkleError, Transaction, TxId,
};

use crate::proof::{HeaderProof, TxProof};

/// What a verifier trusts: a network, a height, the block there, and a masternode set it
/// trusts there: the set that finalized that block (for the genesis, the set that finalizes
/// block 1). Later headers are trusted from it: those naming it directly, those naming
/// another set when the certificate carries more than 1/3 of its power.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedState {
    /// The network's genesis hash.
    pub network: BlockHash,
    /// The trusted block's height.
    pub height: u64,
    /// The trusted block.
    pub block: BlockHash,
    /// Its timestamp (ms since the Unix epoch).
    pub timestamp_ms: u64,
    /// The set trusted there (see the type's description).
    pub set: MasternodeSet,
}

impl TrustedState {
    /// The state a genesis file alone establishes: the genesis block, and the voting set of
    /// its masternodes, which finalizes block 1.
    pub fn from_genesis(genesis: &Genesis) -> TrustedState {
        TrustedState {
            network: genesis.hash(),
            height: 0,
            block: genesis.hash(),
            timestamp_ms: genesis.block.header.timestamp_ms,
            set: genesis.masternode_list().voting_set().clone(),
        }
    }
}

/// Why a proof proves nothing to this verifier.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LightError {
    /// The proof is for another network.
    #[error("the proof is for the network of genesis {found}, not {expected}")]
    WrongNetwork {
        /// The verifier's network.
        expected: BlockHash,
        /// The proof's.
        found: BlockHash,
    },
    /// The proof carries no header.
    #[error("the proof carries no header")]
    Empty,
    /// Headers are not in ascending height above the trusted one.
    #[error("header at height {found} does not follow height {after}")]
    NotAscending {
        /// The height before it (the trusted one, or the previous header's).
        after: u64,
        /// Its height.
        found: u64,
    },
    /// A header right after the trusted block does not extend it.
    #[error("the header at height {height} extends {found}, not the trusted block {expected}")]
    Unlinked {
        /// The header's height.
        height: u64,
        /// The trusted block.
        expected: BlockHash,
        /// The parent it names.
        found: BlockHash,
    },
    /// A header names a set the verifier does not trust, and the proof does not carry it:
    /// the verifier's set is stale for that height (the proof skips a set change), or the
    /// header was certified by a set that never took over.
    #[error(
        "the header at height {height} names masternode set {named}, but the trusted set is {trusted} and the proof carries no change to it"
    )]
    StaleSet {
        /// The header's height.
        height: u64,
        /// The set its header names.
        named: Hash256,
        /// The set trusted at that point.
        trusted: Hash256,
    },
    /// A header before the proven one does not change the trusted set.
    #[error("the header at height {height} is not the last, yet changes no masternode set")]
    NotAChange {
        /// The header's height.
        height: u64,
    },
    /// A carried set is not the one its header names.
    #[error("the set carried with the header at height {height} is not the set it names")]
    SetMismatch {
        /// The header's height.
        height: u64,
    },
    /// A header naming a new set is signed by too little of the trusted set to trust it.
    #[error(
        "the change of masternode set at height {height} is signed by {signed} of the trusted set's {total} voting power; more than 1/3 is needed to trust it"
    )]
    UntrustedChange {
        /// The header's height.
        height: u64,
        /// Trusted power among its signers.
        signed: u64,
        /// The trusted set's power.
        total: u64,
    },
    /// A certificate does not finalize its header under the set it names.
    #[error("the certificate of height {height} does not finalize its block: {source}")]
    Certificate {
        /// The header's height.
        height: u64,
        /// Why.
        source: CertificateError,
    },
    /// The proof names no transaction.
    #[error("the proof names no transaction")]
    NoTransactions,
    /// Transactions are not in strictly ascending block position under one leaf count, or
    /// one appears twice.
    #[error("transactions are not each once, in ascending block position, in one tree")]
    Unordered,
    /// A transaction's branch is malformed.
    #[error("the branch of {txid} is malformed: {source}")]
    Branch {
        /// The transaction.
        txid: TxId,
        /// Why.
        source: MerkleError,
    },
    /// A proof is of another height than the one asked for.
    #[error("the proof is of height {found}, not {asked} as asked")]
    WrongTarget {
        /// The height asked for.
        asked: u64,
        /// The proof's.
        found: u64,
    },
    /// A light client holds no verified header at the proof's height.
    #[error(
        "no verified header is held at height {height} (trusted up to {trusted}, held from {lowest:?}); the client checks proofs of blocks it followed"
    )]
    NotHeld {
        /// The proof's height.
        height: u64,
        /// The client's trusted height.
        trusted: u64,
        /// The lowest height it holds.
        lowest: Option<u64>,
    },
    /// The proof's block is not the one verified before at its height.
    #[error("the proof's block {found} at height {height} is not {held}, the block verified there before")]
    Conflicts {
        /// The height.
        height: u64,
        /// The block verified before.
        held: BlockHash,
        /// The proof's.
        found: BlockHash,
    },
    /// A transaction's branch does not lead to the block's root.
    #[error("{txid} is not in block {block}: its branch leads to another root")]
    NotInBlock {
        /// The transaction.
        txid: TxId,
        /// The block.
        block: BlockHash,
    },
}

/// The power of `certificate`'s signers in `set`.
pub(crate) fn signed_power(set: &MasternodeSet, certificate: &CommitCertificate) -> u64 {
    certificate
        .signatures
        .iter()
        .map(|s| set.voting_power(&s.validator))
        .fold(0u64, u64::saturating_add)
}

/// Whether signers of `certificate` hold more than 1/3 of `set`'s power.
pub(crate) fn trusts(set: &MasternodeSet, certificate: &CommitCertificate) -> bool {
    u128::from(signed_power(set, certificate)) * 3 > u128::from(set.total_voting_power())
}

/// Checks `proof` from `trusted`; returns the state its last header establishes (the proven
/// block, and the set that finalizes the block after it as far as the proof shows).
///
/// Cheap checks (network, heights, set hashes, the trusted share of a set change) come
/// before any signature is checked, so that a malformed proof costs no verification.
pub fn verify_headers<R: CryptoRng>(
    trusted: &TrustedState,
    proof: &HeaderProof,
    rng: &mut R,
) -> Result<TrustedState, LightError> {
    if proof.network != trusted.network {
        return Err(LightError::WrongNetwork {
            expected: trusted.network,
            found: proof.network,
        });
    }
    if proof.headers.is_empty() {
        return Err(LightError::Empty);
    }
    let mut current = trusted.clone();
    let last = proof.headers.len().saturating_sub(1);
    for (position, item) in proof.headers.iter().enumerate() {
        let height = item.header.height;
        if height <= current.height {
            return Err(LightError::NotAscending {
                after: current.height,
                found: height,
            });
        }
        // A header before the last is there to change the set; anything else proves
        // nothing and would only cost verification.
        if position < last && item.set.as_ref().is_none_or(|set| *set == current.set) {
            return Err(LightError::NotAChange { height });
        }
        // A header right after the trusted one must extend it.
        if height == current.height.saturating_add(1) && item.header.prev_hash != current.block {
            return Err(LightError::Unlinked {
                height,
                expected: current.block,
                found: item.header.prev_hash,
            });
        }
        let set = match &item.set {
            None => {
                let trusted_hash = current.set.hash();
                if item.header.masternode_set_hash != trusted_hash {
                    return Err(LightError::StaleSet {
                        height,
                        named: item.header.masternode_set_hash,
                        trusted: trusted_hash,
                    });
                }
                &current.set
            }
            Some(set) => {
                if item.header.masternode_set_hash != set.hash() {
                    return Err(LightError::SetMismatch { height });
                }
                if !trusts(&current.set, &item.certificate) {
                    return Err(LightError::UntrustedChange {
                        height,
                        signed: signed_power(&current.set, &item.certificate),
                        total: current.set.total_voting_power(),
                    });
                }
                set
            }
        };
        let block = item.header.hash();
        item.certificate
            .verify(&proof.network, height, &block, set, &mut *rng)
            .map_err(|source| LightError::Certificate { height, source })?;
        current = TrustedState {
            network: proof.network,
            height,
            block,
            timestamp_ms: item.header.timestamp_ms,
            set: set.clone(),
        };
    }
    Ok(current)
}

/// What a transaction proof proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenBlock {
    /// The state the proof's headers establish (its block is the proven one).
    pub trusted: TrustedState,
    /// The final block's header.
    pub header: BlockHeader,
    /// The transactions in it, with their positions.
    pub transactions: Vec<(u32, Transaction)>,
}

impl ProvenBlock {
    /// The proven transactions' ids, in block order.
    pub fn txids(&self) -> Vec<TxId> {
        self.transactions.iter().map(|(_, tx)| tx.txid()).collect()
    }
}

/// The transactions a proof shows in `header`'s block, with their positions: each one's
/// branch leads to the header's merkle root. Every branch names one leaf count (so that no
/// transaction can be shown at two places of two differently shaped trees), in strictly
/// ascending position, each transaction once.
pub fn check_transactions(header: &BlockHeader, proof: &TxProof) -> Result<Vec<(u32, Transaction)>, LightError> {
    if proof.transactions.is_empty() {
        return Err(LightError::NoTransactions);
    }
    let leaves = proof.transactions.first().map(|p| p.branch.leaves);
    if proof
        .transactions
        .windows(2)
        .any(|w| matches!(w, [a, b] if a.branch.index >= b.branch.index))
        || proof.transactions.iter().any(|p| Some(p.branch.leaves) != leaves)
    {
        return Err(LightError::Unordered);
    }
    let block = header.hash();
    let mut transactions: Vec<(u32, Transaction)> = Vec::with_capacity(proof.transactions.len());
    let mut txids = std::collections::HashSet::with_capacity(proof.transactions.len());
    for proven in &proof.transactions {
        let txid = proven.transaction.txid();
        if !txids.insert(txid) {
            return Err(LightError::Unordered);
        }
        let root = proven
            .branch
            .root(&proven.transaction.witness_hash())
            .map_err(|source| LightError::Branch { txid, source })?;
        if root != header.merkle_root {
            return Err(LightError::NotInBlock { txid, block });
        }
        transactions.push((proven.branch.index, proven.transaction.clone()));
    }
    Ok(transactions)
}

/// Checks a transaction proof from `trusted`: the block is final ([`verify_headers`]) and
/// each transaction is in it ([`check_transactions`]).
pub fn verify_transactions<R: CryptoRng>(
    trusted: &TrustedState,
    proof: &TxProof,
    rng: &mut R,
) -> Result<ProvenBlock, LightError> {
    let header = proof.headers.target().ok_or(LightError::Empty)?.header;
    let transactions = check_transactions(&header, proof)?;
    let trusted = verify_headers(trusted, &proof.headers, rng)?;
    Ok(ProvenBlock {
        trusted,
        header,
        transactions,
    })
}
