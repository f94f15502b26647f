//! Assembling proofs from a store: the fewest set changes a verifier needs.

use thiserror::Error;
use timecoin_primitives::{Block, BlockHeader, CommitCertificate, MasternodeSet, MerkleBranch, TxId};

use crate::proof::{CertifiedHeader, HeaderProof, MAX_PROOF_HEADERS, ProvenTransaction, TxProof};
use crate::verify::{TrustedState, trusts};

/// Where a prover reads the chain: a node's store, or a test's.
pub trait ChainSource {
    /// What reading can fail with.
    type Error;
    /// Each voting set that took over in `(after, upto]`, with the first height it
    /// finalizes, in ascending height. Consecutive entries differ.
    fn set_changes(&self, after: u64, upto: u64) -> Result<Vec<(u64, MasternodeSet)>, Self::Error>;
    /// The header at `height` and the certificate that finalized it.
    fn certified_header(&self, height: u64) -> Result<(BlockHeader, CommitCertificate), Self::Error>;
}

/// Why no proof could be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BuildError<E> {
    /// Reading the chain failed.
    #[error("{0}")]
    Source(E),
    /// The block is not above the trusted height.
    #[error("block {height} is not above the trusted height {trusted}")]
    NotAbove {
        /// The block's height.
        height: u64,
        /// The trusted height.
        trusted: u64,
    },
    /// No certificate after `from` carries more than 1/3 of the set trusted there: the set
    /// was replaced too fast for skipping verification to follow.
    #[error("no set change after height {from} is signed by more than 1/3 of the set trusted there")]
    NoTrustPath {
        /// The height trusted when the path broke.
        from: u64,
    },
    /// The proof would need more than [`MAX_PROOF_HEADERS`] headers.
    #[error(
        "a proof from height {from} would carry more than {MAX_PROOF_HEADERS} headers; start from a later trusted height"
    )]
    TooLong {
        /// The trusted height.
        from: u64,
    },
    /// The source's header at the block's height is not the block's.
    #[error("the chain's header at height {height} is not the block's")]
    Inconsistent {
        /// The block's height.
        height: u64,
    },
    /// The transactions are not all in the block.
    #[error("transaction {0} is not in the block")]
    NotInBlock(TxId),
}

/// The proof that the block at `height` is final, for a verifier trusting `trusted`: its
/// certified header, after the fewest set changes the verifier cannot skip (each chosen as
/// the latest one the set trusted so far signed more than 1/3 of).
pub fn prove_header<S: ChainSource>(
    source: &S,
    trusted: &TrustedState,
    height: u64,
) -> Result<HeaderProof, BuildError<S::Error>> {
    if height <= trusted.height {
        return Err(BuildError::NotAbove {
            height,
            trusted: trusted.height,
        });
    }
    let changes = source.set_changes(trusted.height, height).map_err(BuildError::Source)?;
    let (header, certificate) = source.certified_header(height).map_err(BuildError::Source)?;
    let mut headers = Vec::new();
    let mut current = trusted.set.clone();
    // Changes at or below `at` are behind the verifier.
    let mut at = trusted.height;
    loop {
        let pending: &[(u64, MasternodeSet)] = changes
            .iter()
            .position(|(h, _)| *h > at)
            .and_then(|first| changes.get(first..))
            .unwrap_or(&[]);
        let Some((_, target_set)) = pending.last() else {
            headers.push(CertifiedHeader {
                header,
                certificate,
                set: None,
            });
            break;
        };
        if target_set.hash() == current.hash() {
            headers.push(CertifiedHeader {
                header,
                certificate,
                set: None,
            });
            break;
        }
        if trusts(&current, &certificate) {
            headers.push(CertifiedHeader {
                header,
                certificate,
                set: Some(target_set.clone()),
            });
            break;
        }
        if headers.len() >= MAX_PROOF_HEADERS.saturating_sub(1) {
            return Err(BuildError::TooLong { from: trusted.height });
        }
        let mut advanced = false;
        for (change, set) in pending.iter().rev().filter(|(h, s)| *h < height && *s != current) {
            let (change_header, change_certificate) = source.certified_header(*change).map_err(BuildError::Source)?;
            if trusts(&current, &change_certificate) {
                headers.push(CertifiedHeader {
                    header: change_header,
                    certificate: change_certificate,
                    set: Some(set.clone()),
                });
                current = set.clone();
                at = *change;
                advanced = true;
                break;
            }
        }
        if !advanced {
            return Err(BuildError::NoTrustPath { from: at });
        }
    }
    Ok(HeaderProof {
        network: trusted.network,
        headers,
    })
}

/// The proof that `txids` (all in `block`, at `height`) are in a final block.
pub fn prove_transactions<S: ChainSource>(
    source: &S,
    trusted: &TrustedState,
    block: &Block,
    txids: &[TxId],
) -> Result<TxProof, BuildError<S::Error>> {
    let leaves: Vec<_> = block.transactions.iter().map(|tx| tx.witness_hash()).collect();
    let ids: std::collections::HashMap<TxId, usize> =
        block.txids().into_iter().enumerate().map(|(i, id)| (id, i)).collect();
    let mut positions = Vec::with_capacity(txids.len().min(ids.len()));
    for txid in txids {
        positions.push(*ids.get(txid).ok_or(BuildError::NotInBlock(*txid))?);
    }
    positions.sort_unstable();
    positions.dedup();
    let branches = MerkleBranch::of_each(&leaves, &positions).unwrap_or_default();
    let transactions = positions
        .iter()
        .zip(branches)
        .filter_map(|(position, branch)| {
            block.transactions.get(*position).map(|transaction| ProvenTransaction {
                transaction: transaction.clone(),
                branch,
            })
        })
        .collect();
    let headers = prove_header(source, trusted, block.header.height)?;
    if headers.target().map(|t| t.header.hash()) != Some(block.hash()) {
        return Err(BuildError::Inconsistent {
            height: block.header.height,
        });
    }
    Ok(TxProof { headers, transactions })
}
