//! Integration tests of the chain store: application, undo, indexes, errors, crash safety.

mod address;
mod coins;
mod crash;
mod dump;
mod errors;
mod ledger;
mod prune;
mod wal;

use std::collections::HashMap;

use timecoin_chain::{Utxo, check_block};
use timecoin_primitives::OutPoint;
use timecoin_storage::{DEFAULT_CACHE_BYTES, FlushPolicy, Store};
use timecoin_test_utils::ChainBuilder;

/// Opens the store at `path` for `genesis`, writing its in-memory coins every `max_blocks`
/// blocks exactly (never for their size).
pub fn open_flushing_every(path: &std::path::Path, genesis: &timecoin_chain::Genesis, max_blocks: usize) -> Store {
    let flush = FlushPolicy {
        max_bytes: usize::MAX,
        max_blocks,
        stagger: false,
    };
    Store::open_with(path, genesis, DEFAULT_CACHE_BYTES, flush).unwrap()
}

/// Asserts that the store's UTXO set, summary and supply equal the in-memory model's.
pub fn assert_matches_model(store: &Store, model: &ChainBuilder) {
    let stored: HashMap<OutPoint, Utxo> = store.all_utxos().unwrap().into_iter().collect();
    assert_eq!(stored.len(), model.utxos.len());
    assert!(stored == model.utxos, "stored UTXO set differs from the model");
    let kept = store.utxo_set_info().unwrap();
    let recomputed = store.recompute_utxo_set_info().unwrap();
    assert_eq!(kept, recomputed);
    assert_eq!(kept.height, model.tip.height);
    assert_eq!(kept.best_block, model.tip.hash);
    assert_eq!(kept.total, model.utxo_total());
    assert_eq!(kept.minted, model.minted);
    assert_eq!(kept.total, kept.allocated.checked_add(kept.minted).unwrap());
    assert_eq!(store.tip().unwrap(), model.tip);
    assert_eq!(
        *store.masternodes().unwrap(),
        model.list,
        "stored masternode list differs from the model"
    );
}

/// Validates a block against the store like a node does, then applies it to both.
pub fn validate_and_apply(store: &Store, model: &mut ChainBuilder, block: &timecoin_primitives::Block) {
    let snapshot = store.snapshot().unwrap();
    assert_eq!(store.tip().unwrap(), model.tip);
    let ctx = model.block_context(block.header.timestamp_ms);
    check_block(block, &snapshot, &ctx).unwrap();
    store.apply_block(block, None).unwrap();
    model.apply(block);
}
