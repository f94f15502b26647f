use timecoin_storage::{MIN_KEPT_BLOCKS, StorageError, Store};
use timecoin_test_utils::ChainBuilder;

use crate::{assert_matches_model, open_flushing_every};

#[test]
fn a_pruning_store_holds_its_block_data_under_the_target_and_keeps_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let mut model = ChainBuilder::new(20);
    let store = open_flushing_every(&path, &model.genesis, 16);
    const TARGET: u64 = 600_000;
    store.set_prune_target(Some(TARGET));
    let mut first_payments = Vec::new();
    let mut pruned_once = false;
    for height in 1..=700u64 {
        let block = model.next_payment_block(2);
        if height == 1 {
            first_payments = block.txids();
        }
        store.apply_block(&block, None).unwrap();
        // As the node does after each block.
        let state = store.prune_to(TARGET).unwrap();
        assert_eq!(state, store.prune_state().unwrap());
        // Under the target, unless only the blocks it must keep are left.
        assert!(
            state.block_bytes <= TARGET || state.pruned_below + MIN_KEPT_BLOCKS > height,
            "height {height}: {state:?}"
        );
        pruned_once |= state.pruned_below > 1;
    }
    assert!(pruned_once, "700 blocks of payments never passed {TARGET} bytes");
    let state = store.prune_state().unwrap();
    assert!(
        state.pruned_below > 1 && state.pruned_below < 700 - MIN_KEPT_BLOCKS,
        "{state:?}"
    );

    // The bodies below are gone, their headers and hashes stay; the state is whole.
    assert!(store.block_by_height(1).unwrap().is_none());
    assert!(store.block_by_height(0).unwrap().is_some(), "the genesis block is kept");
    let header = store.header(1).unwrap().unwrap();
    assert_eq!(header.height, 1);
    assert_eq!(store.height_of(&header.hash()).unwrap(), Some(1));
    assert!(store.certificate(1).unwrap().is_none());
    assert_eq!(store.tx_location(&first_payments[1]).unwrap(), None);
    assert!(store.block_by_height(state.pruned_below).unwrap().is_some());
    assert_matches_model(&store, &model);

    // Pruning by hand never reaches the blocks kept at the tip.
    store.set_prune_target(None);
    let after = store.prune_below(u64::MAX).unwrap();
    assert_eq!(after.pruned_below, 700 + 1 - MIN_KEPT_BLOCKS);
    assert!(store.block_by_height(700 - MIN_KEPT_BLOCKS).unwrap().is_none());
    assert!(store.block_by_height(700 + 1 - MIN_KEPT_BLOCKS).unwrap().is_some());
    // The tip can still be reverted.
    let before_revert = store.prune_state().unwrap();
    let reverted = store.revert_tip().unwrap();
    assert_eq!(reverted.header.height, 700);
    assert!(store.prune_state().unwrap().block_bytes < before_revert.block_bytes);
    store.apply_block(&reverted, None).unwrap();

    // The count kept equals a recount of the tables; reopening keeps everything.
    let counted = store.prune_state().unwrap();
    drop(store);
    {
        use redb::{ReadableDatabase, ReadableTable};
        let db = redb::Database::open(&path).unwrap();
        let read = db.begin_read().unwrap();
        let mut bytes = 0;
        for name in ["blocks", "undo", "certificates"] {
            let table = read.open_table(redb::TableDefinition::<u64, &[u8]>::new(name)).unwrap();
            for entry in table.iter().unwrap() {
                bytes += entry.unwrap().1.value().len() as u64;
            }
        }
        assert_eq!(bytes, counted.block_bytes);
    }
    let store = Store::open(&path, &model.genesis).unwrap();
    assert_eq!(store.prune_state().unwrap(), counted);
    assert_matches_model(&store, &model);

    // The address index needs every block.
    let refused = store.enable_address_index(|_, _| {}).unwrap_err();
    assert!(matches!(refused, StorageError::Refused(_)), "{refused}");
}
