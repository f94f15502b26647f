use timecoin_primitives::{BlockHash, CommitCertificate, CommitSignature, Signature};
use timecoin_storage::Store;
use timecoin_test_utils::ChainBuilder;

use crate::{assert_matches_model, validate_and_apply};

#[test]
fn genesis_is_stored_and_reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let mut model = ChainBuilder::new(30);
    {
        let store = Store::open(&path, &model.genesis).unwrap();
        assert_eq!(store.genesis_hash().unwrap(), model.genesis_hash());
        assert_eq!(store.block_by_height(0).unwrap().unwrap(), model.genesis.block);
        assert_matches_model(&store, &model);
        for _ in 0..5 {
            let block = model.next_payment_block(3);
            store.apply_block(&block, None).unwrap();
        }
    }
    let store = Store::open(&path, &model.genesis).unwrap();
    assert_matches_model(&store, &model);
}

#[test]
fn blocks_indexes_and_certificates_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = ChainBuilder::new(40);
    let store = Store::open(&dir.path().join("chain.redb"), &model.genesis).unwrap();
    let mut blocks = Vec::new();
    for i in 0..10 {
        let block = model.build_block(model.clone().payments(1 + i % 4));
        let certificate = CommitCertificate {
            height: block.header.height,
            round: 0,
            block_hash: block.hash(),
            signatures: vec![CommitSignature {
                validator: model.masternodes().members()[0].operator,
                signature: Signature([7; 64]),
            }],
        };
        store.apply_block(&block, Some(&certificate)).unwrap();
        model.apply(&block);
        blocks.push((block, certificate));
    }
    for (block, certificate) in &blocks {
        let h = block.header.height;
        assert_eq!(store.block_by_height(h).unwrap().as_ref(), Some(block));
        assert_eq!(store.block_by_hash(&block.hash()).unwrap().as_ref(), Some(block));
        assert_eq!(store.height_of(&block.hash()).unwrap(), Some(h));
        assert_eq!(store.certificate(h).unwrap().as_ref(), Some(certificate));
        for (i, tx) in block.transactions.iter().enumerate() {
            assert_eq!(store.tx_location(&tx.txid()).unwrap(), Some((h, i as u32)));
            assert_eq!(store.transaction(&tx.txid()).unwrap(), Some((tx.clone(), h)));
        }
    }
    assert_eq!(store.block_by_height(11).unwrap(), None);
    assert_eq!(store.block_by_hash(&BlockHash::default()).unwrap(), None);
    assert_eq!(store.certificate(0).unwrap(), None);
    assert_matches_model(&store, &model);
}

#[test]
fn supply_invariant_holds_over_many_validated_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = ChainBuilder::new(60);
    let store = Store::open(&dir.path().join("chain.redb"), &model.genesis).unwrap();
    for i in 0..40 {
        model.block_interval_ms = 500 + (i * 7919) % 900_000;
        let txs = model.clone().payments(1 + i as usize % 6);
        let block = model.build_block(txs);
        validate_and_apply(&store, &mut model, &block);
        let info = store.utxo_set_info().unwrap();
        assert_eq!(info.total, info.allocated.checked_add(info.minted).unwrap());
    }
    assert_matches_model(&store, &model);
}

#[test]
fn revert_restores_the_previous_state_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = ChainBuilder::new(20);
    let store = Store::open(&dir.path().join("chain.redb"), &model.genesis).unwrap();
    let mut history = vec![(model.clone(), store.utxo_set_info().unwrap())];
    for _ in 0..6 {
        let block = model.next_payment_block(3);
        store.apply_block(&block, None).unwrap();
        history.push((model.clone(), store.utxo_set_info().unwrap()));
    }
    history.pop();
    while let Some((before, info)) = history.pop() {
        let reverted = store.revert_tip().unwrap();
        assert_eq!(reverted.header.height, before.tip.height + 1);
        assert_eq!(store.utxo_set_info().unwrap(), info);
        assert_matches_model(&store, &before);
        for tx in &reverted.transactions {
            assert_eq!(store.tx_location(&tx.txid()).unwrap(), None);
        }
    }
    assert!(store.revert_tip().is_err(), "genesis must not be reverted");
    // The chain can grow again from the reverted state.
    let mut fresh = ChainBuilder::new(20);
    let block = fresh.next_payment_block(2);
    store.apply_block(&block, None).unwrap();
    assert_matches_model(&store, &fresh);
}

#[test]
fn the_masternode_list_follows_blocks_survives_reopening_and_reverts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let mut model = ChainBuilder::new(6);
    let store = Store::open(&path, &model.genesis).unwrap();
    let operator_key = timecoin_test_utils::key("operator", 1);
    let operator = operator_key.public_key();
    let registration = model.registration(
        timecoin_primitives::Tier::Bronze,
        &operator_key,
        std::net::SocketAddr::from(([127, 0, 0, 1], 30_100)),
    );
    let id = registration.txid();
    let block = model.build_block(vec![registration]);
    validate_and_apply(&store, &mut model, &block);
    let registered = store.masternodes().unwrap();
    assert!(registered.get(&id).is_some());
    for _ in 0..3 {
        let block = model.build_block(vec![]);
        validate_and_apply(&store, &mut model, &block);
    }
    assert_eq!(store.masternodes().unwrap().voting_set().voting_power(&operator), 1);
    // It revokes, and may unlock once evidence of its last votes can no longer arrive.
    let block = model.build_block(vec![model.revocation(id, &operator_key)]);
    validate_and_apply(&store, &mut model, &block);
    while model.tip.height + 1 < block.header.height + model.params().max_evidence_age_blocks {
        let block = model.build_block(vec![]);
        validate_and_apply(&store, &mut model, &block);
    }
    let before_unlock = model.clone();
    let unlock = model.unlock(id);
    let block = model.build_block(vec![unlock]);
    validate_and_apply(&store, &mut model, &block);
    assert!(store.masternodes().unwrap().get(&id).is_none());
    assert_matches_model(&store, &model);

    // The voting set changed twice: the masternode joined, and left when it revoked. Each
    // change is recorded at the first header that names the new set.
    let tip = store.tip().unwrap().height;
    let changes = store.voting_set_changes(0, tip).unwrap();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(changes[0].1.voting_power(&operator), 1);
    assert_eq!(changes[1].1, *model.masternodes());
    for (height, set) in &changes {
        assert_eq!(store.header(*height).unwrap().unwrap().masternode_set_hash, set.hash());
        assert_ne!(
            store.header(height - 1).unwrap().unwrap().masternode_set_hash,
            set.hash()
        );
    }
    assert_eq!(store.voting_set_changes(changes[0].0, tip).unwrap().len(), 1);
    assert_eq!(store.voting_set_at(changes[0].0 - 1).unwrap(), None, "the genesis set");
    assert_eq!(
        store.voting_set_at(changes[1].0 - 1).unwrap().as_ref(),
        Some(&changes[0].1)
    );
    assert_eq!(store.voting_set_at(tip + 1).unwrap().as_ref(), Some(&changes[1].1));
    assert!(store.header(tip + 1).unwrap().is_none());

    // The list is part of the stored state: it survives reopening, and reverting the unlock
    // brings the masternode back exactly.
    drop(store);
    let store = Store::open(&path, &model.genesis).unwrap();
    assert_matches_model(&store, &model);
    store.revert_tip().unwrap();
    assert_matches_model(&store, &before_unlock);
}

/// Stores written when the index and UTXO tables were declared with owned arrays
/// (`[u8; N]`) must open and read the same after the switch to borrowed arrays: redb gives
/// both the same type name and encoding. Reading this build's tables through the owned
/// declarations shows they still agree.
#[test]
fn tables_keep_the_format_of_owned_array_keys() {
    use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let mut model = ChainBuilder::new(20);
    let mut blocks = Vec::new();
    {
        let store = Store::open(&path, &model.genesis).unwrap();
        for _ in 0..3 {
            let block = model.next_payment_block(4);
            store.apply_block(&block, None).unwrap();
            blocks.push(block);
        }
    }
    let expected = Store::open(&path, &model.genesis).unwrap().all_utxos().unwrap();
    let db = Database::open(&path).unwrap();
    let read = db.begin_read().unwrap();
    let utxos = read
        .open_table(TableDefinition::<[u8; 36], [u8; 49]>::new("utxos"))
        .unwrap();
    assert_eq!(utxos.len().unwrap(), expected.len() as u64);
    let first = utxos.first().unwrap().unwrap().0.value();
    assert_eq!(&first[..32], &expected[0].0.txid.0.0);
    assert_eq!(first[32..], expected[0].0.index.to_le_bytes());
    let heights = read
        .open_table(TableDefinition::<[u8; 32], u64>::new("block_heights"))
        .unwrap();
    let locations = read
        .open_table(TableDefinition::<[u8; 32], (u64, u32)>::new("tx_locations"))
        .unwrap();
    for block in &blocks {
        assert_eq!(
            heights.get(block.hash().0.0).unwrap().unwrap().value(),
            block.header.height
        );
        let last = block.transactions.len() - 1;
        let txid = block.transactions[last].txid();
        assert_eq!(
            locations.get(txid.0.0).unwrap().unwrap().value(),
            (block.header.height, last as u32)
        );
    }
}
