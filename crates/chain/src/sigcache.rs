//! A bounded cache of signatures already found valid, so that a node verifies each
//! transaction's signatures once: at mempool admission, and not again when the transaction
//! arrives in a proposed block (as Bitcoin Core's signature cache does).
//!
//! Entries are salted hashes of the whole check (key, message, signature), so only a check
//! that passed is ever skipped, and nobody outside the process can aim collisions at it. The
//! cache keeps two generations of at most `capacity` entries each: when the newer one is
//! full the older one is dropped, so memory stays bounded whatever the load.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rand::RngExt;
use rayon::prelude::*;
use timecoin_primitives::{Block, BlockHash, Encode, OutPoint, SignatureError, Transaction};

use crate::masternodes::MasternodeList;
use crate::params::ChainParams;
use crate::validation::{
    SigItem, TxContext, Utxo, UtxoView, ViewError, check_tx_contextual, check_tx_stateless, created_outputs,
    verify_batch, verify_signatures,
};

/// After a failed batch, its checks are verified again in sub-batches of this many (and one
/// by one inside a sub-batch that fails), so that the valid ones are still remembered.
const RECOVERY_BATCH: usize = 64;

/// Entries per generation by default: 45 s of signatures at 10,000 a second. A generation
/// this full fits in 524,288 hash-set slots of 33 bytes (the set keeps at most 7/8 of its
/// slots full), so the two take at most about 35 MB.
pub const DEFAULT_CAPACITY: usize = 450_000;

type Entry = [u8; 32];

struct Generations {
    current: HashSet<Entry>,
    previous: HashSet<Entry>,
}

/// Signatures known to be valid. Shared by the mempool and block validation.
pub struct SignatureCache {
    salt: [u8; 32],
    capacity: usize,
    generations: Mutex<Generations>,
}

impl std::fmt::Debug for SignatureCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

impl SignatureCache {
    /// An empty cache keeping up to `capacity` entries in each of its two generations.
    pub fn new(capacity: usize) -> SignatureCache {
        SignatureCache {
            salt: rand::rng().random(),
            capacity: capacity.max(1),
            generations: Mutex::new(Generations {
                current: HashSet::new(),
                previous: HashSet::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Generations> {
        // The sets stay consistent whatever panicked while holding them.
        self.generations.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn entry(&self, item: &SigItem) -> Entry {
        let mut hasher = blake3::Hasher::new_keyed(&self.salt);
        hasher.update(&item.key.0);
        hasher.update(&item.message.0);
        hasher.update(&item.signature.0);
        *hasher.finalize().as_bytes()
    }

    /// How many checks are remembered.
    pub fn len(&self) -> usize {
        let generations = self.lock();
        generations.current.len() + generations.previous.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Verifies the checks among `items` not known to pass (in parallel batches, outside the
    /// cache's lock) and remembers those that pass. When one fails, the others are still
    /// remembered: a caller looking for the culprit (the mempool checks each transaction of a
    /// failed batch again) then verifies only it, so one invalid signature cannot make a
    /// node verify a whole batch of honest ones twice.
    pub fn verify(&self, items: &[SigItem]) -> Result<(), SignatureError> {
        let entries: Vec<Entry> = items.iter().map(|item| self.entry(item)).collect();
        let unknown: Vec<(SigItem, Entry)> = {
            let generations = self.lock();
            // One check once, however often the items repeat it.
            let mut queued = HashSet::with_capacity(entries.len());
            items
                .iter()
                .zip(&entries)
                .filter(|(_, e)| !generations.current.contains(*e) && !generations.previous.contains(*e))
                .filter(|(_, e)| queued.insert(**e))
                .map(|(item, e)| (*item, *e))
                .collect()
        };
        if unknown.is_empty() {
            return Ok(());
        }
        let checks: Vec<SigItem> = unknown.iter().map(|(item, _)| *item).collect();
        if verify_signatures(&checks).is_ok() {
            self.remember(unknown.into_iter().map(|(_, entry)| entry));
            return Ok(());
        }
        let passed: Vec<Vec<Entry>> = unknown
            .par_chunks(RECOVERY_BATCH)
            .map(|chunk| {
                let items: Vec<SigItem> = chunk.iter().map(|(item, _)| *item).collect();
                if verify_batch(&items).is_ok() {
                    return chunk.iter().map(|(_, entry)| *entry).collect();
                }
                chunk
                    .iter()
                    .filter(|(item, _)| item.key.verify(&item.message.0, &item.signature).is_ok())
                    .map(|(_, entry)| *entry)
                    .collect()
            })
            .collect();
        self.remember(passed.into_iter().flatten());
        Err(SignatureError)
    }

    fn remember(&self, entries: impl Iterator<Item = Entry>) {
        let mut generations = self.lock();
        for entry in entries {
            if generations.current.len() >= self.capacity {
                generations.previous = std::mem::take(&mut generations.current);
            }
            generations.current.insert(entry);
        }
    }

    /// Verifies, in one parallel batch and remembering them, the signatures of those `txs`
    /// whose inputs `view` holds; the others (spending unconfirmed outputs, or invalid) are
    /// left for the full checks, which also give the verdict. Lets a caller verify before
    /// taking the mempool's lock.
    pub fn preverify(&self, txs: &[Transaction], view: &impl UtxoView, ctx: &TxContext<'_>) {
        // The stateless checks come first, as in the full checks: a transaction that names
        // one coin thousands of times must not cost thousands of verifications before its
        // duplicate inputs are found.
        let items: Vec<SigItem> = txs
            .iter()
            .filter(|tx| check_tx_stateless(tx, tx.encoded_len(), ctx.params).is_ok())
            .filter_map(|tx| check_tx_contextual(tx, tx.txid(), tx.encoded_len(), view, ctx).ok())
            .flat_map(|checked| checked.sig_items)
            .collect();
        // A failure is found again, and reported, by the full checks.
        let _ = self.verify(&items);
    }

    /// Verifies ahead, in one parallel batch, the signatures of `block`, one of the blocks
    /// that follow the state `view` holds, and remembers those that pass: a node catching up
    /// verifies the next blocks while it applies one, and finds the work done when it checks
    /// them. `ahead` holds the outputs of the blocks between `view`'s state and `block`
    /// (added with [`OutputsAhead::add_block`]); `block`'s own are added to it here. An
    /// output those blocks create counts as unspent, and what does not check out is skipped:
    /// the block's full checks decide, as for [`Self::preverify`]; `ahead` may hold outputs
    /// of blocks not checked at all, which can only waste or miss a verification, since only
    /// checks that pass are remembered. The caller checks `block`'s certificate, and that its
    /// body matches its certified header, first: a peer's made-up blocks then cost no
    /// signature checks.
    pub fn preverify_block(
        &self,
        block: &Block,
        ahead: &mut OutputsAhead,
        view: &impl UtxoView,
        params: &ChainParams,
        genesis_hash: BlockHash,
    ) {
        let ctx = TxContext {
            params,
            genesis_hash,
            height: block.header.height,
        };
        let mut items = Vec::new();
        for tx in &block.transactions {
            let txid = tx.txid();
            if !tx.is_reward() {
                let size = tx.encoded_len();
                let overlay = Overlay {
                    base: view,
                    created: &ahead.created,
                };
                if check_tx_stateless(tx, size, params).is_ok()
                    && let Ok(checked) = check_tx_contextual(tx, txid, size, &overlay, &ctx)
                {
                    items.extend(checked.sig_items);
                }
            }
            ahead.created.extend(created_outputs(tx, txid, block.header.height));
        }
        let _ = self.verify(&items);
    }
}

/// The outputs of blocks not yet applied, for [`SignatureCache::preverify_block`]; what
/// those blocks spend is not taken out.
#[derive(Debug, Default)]
pub struct OutputsAhead {
    created: HashMap<OutPoint, Utxo>,
}

impl OutputsAhead {
    /// Adds the outputs `block` creates.
    pub fn add_block(&mut self, block: &Block) {
        for tx in &block.transactions {
            self.created.extend(created_outputs(tx, tx.txid(), block.header.height));
        }
    }
}

/// Outputs ahead over the state at the tip.
struct Overlay<'v, V> {
    base: &'v V,
    created: &'v HashMap<OutPoint, Utxo>,
}

impl<V: UtxoView> UtxoView for Overlay<'_, V> {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, ViewError> {
        match self.created.get(outpoint) {
            Some(utxo) => Ok(Some(*utxo)),
            None => self.base.utxo(outpoint),
        }
    }

    fn masternodes(&self) -> &MasternodeList {
        self.base.masternodes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timecoin_primitives::{Hash256, SecretKey};

    fn item(seed: u8, message: u8) -> SigItem {
        let key = SecretKey::from_seed([seed; 32]);
        let message = Hash256([message; 32]);
        SigItem {
            key: key.public_key(),
            signature: key.sign(&message.0),
            message,
        }
    }

    #[test]
    fn only_checks_that_passed_are_remembered() {
        let cache = SignatureCache::new(100);
        let good = [item(1, 1), item(2, 2)];
        cache.verify(&good).unwrap();
        assert_eq!(cache.len(), 2);
        // A valid key and signature over another message is a different check, and fails.
        let mut forged = item(1, 1);
        forged.message = Hash256([9; 32]);
        assert!(cache.verify(&[good[0], forged]).is_err());
        assert_eq!(cache.len(), 2);
        assert!(cache.verify(&good).is_ok());
    }

    #[test]
    fn a_failed_batch_still_remembers_its_valid_checks() {
        let cache = SignatureCache::new(1_000);
        let mut items: Vec<SigItem> = (0..200).map(|i| item(i, i)).collect();
        items[150].message = Hash256([255; 32]);
        assert!(cache.verify(&items).is_err());
        assert_eq!(cache.len(), 199);
        // The 199 are known now; only the forged one is checked again, and fails again.
        assert!(cache.verify(&items[..150]).is_ok());
        assert!(cache.verify(&items[150..151]).is_err());
        assert_eq!(cache.len(), 199);
    }

    #[test]
    fn a_full_default_generation_fits_the_documented_slots() {
        let cache = SignatureCache::new(DEFAULT_CAPACITY);
        let mut generations = cache.lock();
        for i in 0..DEFAULT_CAPACITY as u64 {
            let mut entry = [0u8; 32];
            entry[..8].copy_from_slice(&i.to_le_bytes());
            generations.current.insert(entry);
        }
        // 524,288 slots hold at most 7/8 of that many entries.
        assert!(
            generations.current.capacity() <= 524_288 * 7 / 8,
            "{}",
            generations.current.capacity()
        );
    }

    #[test]
    fn memory_is_bounded_by_two_generations() {
        let cache = SignatureCache::new(3);
        for i in 0..10 {
            cache.verify(&[item(i, i)]).unwrap();
        }
        assert!(cache.len() <= 6, "{}", cache.len());
        // The newest entries survive.
        assert!(cache.len() >= 3);
    }
}
