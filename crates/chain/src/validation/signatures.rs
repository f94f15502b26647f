//! The signature checks validation leaves to the end ([`SigItem`]), verified in batches: one
//! batch on the calling thread, or many spread over the rayon thread pool.

use rayon::prelude::*;
use timecoin_primitives::{BatchVerifier, Hash256, PublicKey, Signature, SignatureError};

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

/// The owner (in `owners`, one per item) of the first item whose signature does not verify,
/// found after a batch failed.
pub(super) fn first_bad_signature(items: &[SigItem], owners: &[usize]) -> Option<usize> {
    items
        .par_iter()
        .zip(owners.par_iter())
        .filter(|(item, _)| item.key.verify(&item.message.0, &item.signature).is_err())
        .map(|(_, owner)| *owner)
        .min()
}
