//! The in-memory coins above the UTXO table: snapshots stay consistent while blocks are
//! applied and written, and coins created and spent between two writes come out right.

use timecoin_chain::UtxoView;
use timecoin_primitives::OutPoint;
use timecoin_storage::Store;
use timecoin_test_utils::ChainBuilder;

use crate::assert_matches_model;

fn open(path: &std::path::Path, model: &ChainBuilder, max_blocks: usize) -> Store {
    crate::open_flushing_every(path, &model.genesis, max_blocks)
}

#[test]
fn a_snapshot_keeps_its_tip_s_coins_while_later_blocks_are_applied_and_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = ChainBuilder::new(40);
    let store = open(&dir.path().join("chain.redb"), &model, 2);
    let first = model.next_payment_block(5);
    store.apply_block(&first, None).unwrap();
    assert_eq!(store.coins_cache().unflushed_blocks, 1);
    let before = store.snapshot().unwrap();
    let second = model.next_payment_block(5);
    store.apply_block(&second, None).unwrap();
    // Two blocks: the policy wrote them to the table while `before` was held.
    assert_eq!(store.coins_cache().unflushed_blocks, 0);
    let now = store.snapshot().unwrap();
    let third = model.next_payment_block(5);
    store.apply_block(&third, None).unwrap();
    assert_eq!(store.coins_cache().unflushed_blocks, 1);

    let spent: Vec<OutPoint> = second
        .transactions
        .iter()
        .flat_map(|tx| tx.inputs.iter().map(|i| i.prevout))
        .collect();
    let created: Vec<OutPoint> = second
        .transactions
        .iter()
        .map(|tx| OutPoint {
            txid: tx.txid(),
            index: 0,
        })
        .collect();
    assert!(!spent.is_empty());
    assert_eq!(before.tip().height, first.header.height);
    assert_eq!(now.tip().height, second.header.height);
    for outpoint in &spent {
        assert!(
            before.utxo(outpoint).unwrap().is_some(),
            "the older snapshot lost {outpoint}"
        );
        assert!(now.utxo(outpoint).unwrap().is_none(), "{outpoint} is still unspent");
    }
    for outpoint in &created {
        assert!(
            before.utxo(outpoint).unwrap().is_none(),
            "the older snapshot sees {outpoint} early"
        );
        assert!(now.utxo(outpoint).unwrap().is_some(), "{outpoint} is missing");
    }
    assert_ne!(before.state_hash(), now.state_hash());
    assert_matches_model(&store, &model);
}

#[test]
fn coins_created_and_spent_between_writes_leave_the_same_set_as_writing_every_block() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = ChainBuilder::new(30);
    let batched = open(&dir.path().join("batched.redb"), &model, 4);
    let every_block = open(&dir.path().join("every.redb"), &model, 1);
    for round in 0..9 {
        // Payments that spend what recent blocks created (the model spends in key order),
        // and one spending the first one's change in the same block.
        let mut txs = model.clone().payments(3 + round % 3);
        let parent = txs[0].clone();
        let change = (
            OutPoint {
                txid: parent.txid(),
                index: 1,
            },
            timecoin_chain::Utxo {
                output: parent.outputs[1],
                height: model.tip.height + 1,
                is_reward: false,
            },
        );
        txs.push(model.payment(change));
        let block = model.build_block(txs);
        batched.apply_block(&block, None).unwrap();
        every_block.apply_block(&block, None).unwrap();
        model.apply(&block);
        assert_eq!(batched.utxo_set_info().unwrap(), every_block.utxo_set_info().unwrap());
    }
    assert!(batched.coins_cache().unflushed_blocks > 0);
    assert_matches_model(&batched, &model);
    batched.flush().unwrap();
    assert_eq!(batched.coins_cache().unflushed_blocks, 0);
    assert_matches_model(&batched, &model);
    assert_matches_model(&every_block, &model);
    drop(batched);
    let reopened = open(&dir.path().join("batched.redb"), &model, 4);
    assert_matches_model(&reopened, &model);
}

#[test]
fn a_coin_read_from_the_table_is_gone_once_spent_whether_or_not_a_write_came_between() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = ChainBuilder::new(40);
    // Written every third block: the reads below fall before, across and after writes.
    let store = open(&dir.path().join("chain.redb"), &model, 3);
    for round in 0..8 {
        let block = model.clone().next_payment_block(4);
        let spent: Vec<OutPoint> = block
            .transactions
            .iter()
            .flat_map(|tx| tx.inputs.iter().map(|i| i.prevout))
            .collect();
        assert!(!spent.is_empty());
        // Read (and so kept in memory) while unspent, as admission reads them...
        let before = store.snapshot().unwrap();
        for outpoint in &spent {
            assert!(
                before.utxo(outpoint).unwrap().is_some(),
                "round {round}: {outpoint} missing"
            );
        }
        // ...then a block spends them; every later reader finds them spent.
        let applied = model.next_payment_block(4);
        assert_eq!(applied.hash(), block.hash());
        store.apply_block(&applied, None).unwrap();
        for outpoint in &spent {
            assert!(
                before.utxo(outpoint).unwrap().is_some(),
                "round {round}: the older snapshot lost {outpoint}"
            );
            assert!(
                store.snapshot().unwrap().utxo(outpoint).unwrap().is_none(),
                "round {round}: {outpoint} is still unspent"
            );
        }
    }
    assert_matches_model(&store, &model);
}
