use std::io::Write;

use redb::{Database, TableDefinition};
use timecoin_primitives::{Amount, Tier};
use timecoin_storage::{SCHEMA_VERSION, StorageError, Store};
use timecoin_test_utils::{ChainBuilder, genesis_toml};

use crate::assert_matches_model;

#[test]
fn a_block_that_does_not_fit_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = ChainBuilder::new(10);
    let store = Store::open(&dir.path().join("chain.redb"), &model.genesis).unwrap();
    model.next_payment_block(2);
    let first = store.block_by_height(0).unwrap();
    assert!(first.is_some());
    let mut other = ChainBuilder::new(10);
    let ok = other.next_payment_block(2);
    store.apply_block(&ok, None).unwrap();
    let before = store.utxo_set_info().unwrap();

    // Not extending the tip.
    let stale = ChainBuilder::new(10).build_block(vec![]);
    assert!(matches!(
        store.apply_block(&stale, None),
        Err(StorageError::Inconsistent { height: 1, .. })
    ));

    // Spending an output that does not exist: the write transaction is abandoned half-way.
    let mut bad = other.build_block(other.clone().payments(3));
    bad.transactions[2].inputs[0].prevout.index = 77;
    assert!(matches!(
        store.apply_block(&bad, None),
        Err(StorageError::Inconsistent { height: 2, .. })
    ));
    assert_eq!(store.utxo_set_info().unwrap(), before);
    assert_eq!(store.block_by_height(2).unwrap(), None);
    for tx in &bad.transactions {
        assert_eq!(store.tx_location(&tx.txid()).unwrap(), None);
    }
    assert_matches_model(&store, &other);
}

#[test]
fn another_genesis_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let model = ChainBuilder::new(3);
    drop(Store::open(&path, &model.genesis).unwrap());
    let other = timecoin_chain::Genesis::from_toml(&genesis_toml(4, Tier::Gold, 3, Amount::COIN)).unwrap();
    let err = Store::open(&path, &other).unwrap_err();
    assert!(matches!(err, StorageError::GenesisMismatch { .. }), "{err}");
    assert!(err.to_string().contains("chain.redb"));
}

/// Overwrites the stored schema version (an older one: the next open upgrades).
fn set_schema(path: &std::path::Path, version: u32) {
    let db = Database::open(path).unwrap();
    let write = db.begin_write().unwrap();
    {
        let mut meta = write.open_table(TableDefinition::<&str, &[u8]>::new("meta")).unwrap();
        meta.insert("schema_version", version.to_le_bytes().as_slice()).unwrap();
    }
    write.commit().unwrap();
}

#[test]
fn a_newer_or_older_schema_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let model = ChainBuilder::new(3);
    drop(Store::open(&path, &model.genesis).unwrap());
    set_schema(&path, 99);
    let err = Store::open(&path, &model.genesis).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::SchemaTooNew {
                found: 99,
                supported: SCHEMA_VERSION,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade the node"));

    // A store of the first schema has no masternode list: the node says to resync.
    set_schema(&path, 1);
    let err = Store::open(&path, &model.genesis).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::SchemaTooOld {
                found: 1,
                supported: SCHEMA_VERSION,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("resync"), "{err}");
}

#[test]
fn a_schema_3_store_rebuilds_its_record_of_set_changes_from_its_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let mut model = ChainBuilder::new(6);
    let store = Store::open(&path, &model.genesis).unwrap();
    // A masternode registers and joins the voting set: one change.
    let operator = timecoin_test_utils::key("operator", 1);
    let registration = model.registration(Tier::Bronze, &operator, std::net::SocketAddr::from(([127, 0, 0, 1], 1)));
    let block = model.build_block(vec![registration]);
    store.apply_block(&block, None).unwrap();
    model.apply(&block);
    for _ in 0..4 {
        store.apply_block(&model.next_payment_block(1), None).unwrap();
    }
    let tip = store.tip().unwrap().height;
    let recorded = store.voting_set_changes(0, tip).unwrap();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    drop(store);

    // A schema-3 store has no record: the upgrade rebuilds the same one from the blocks.
    {
        let db = Database::open(&path).unwrap();
        let write = db.begin_write().unwrap();
        assert!(
            write
                .delete_table(TableDefinition::<u64, &[u8]>::new("voting_sets"))
                .unwrap()
        );
        write.commit().unwrap();
    }
    set_schema(&path, 3);
    let store = Store::open(&path, &model.genesis).unwrap();
    assert_eq!(store.voting_set_changes(0, tip).unwrap(), recorded);
    assert_eq!(store.voting_set_at(tip + 1).unwrap(), Some(recorded[0].1.clone()));
    assert_eq!(store.voting_set_at(recorded[0].0 - 1).unwrap(), None);
    drop(store);
    // Upgraded once: opening again changes nothing.
    let store = Store::open(&path, &model.genesis).unwrap();
    assert_eq!(store.voting_set_changes(0, tip).unwrap(), recorded);
}

#[test]
fn a_foreign_redb_file_is_not_taken_for_a_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.redb");
    {
        let db = Database::create(&path).unwrap();
        let write = db.begin_write().unwrap();
        write.open_table(TableDefinition::<u64, u64>::new("stuff")).unwrap();
        write.commit().unwrap();
    }
    let err = Store::open(&path, &ChainBuilder::new(3).genesis).unwrap_err();
    assert!(matches!(err, StorageError::Corrupted { .. }), "{err}");
}

#[test]
fn garbage_and_truncated_files_are_reported_by_name_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let model = ChainBuilder::new(3);

    let garbage = dir.path().join("garbage.redb");
    std::fs::File::create(&garbage)
        .unwrap()
        .write_all(&[0xA5; 8192])
        .unwrap();
    let err = Store::open(&garbage, &model.genesis).unwrap_err();
    assert!(err.to_string().contains("garbage.redb"), "{err}");
    assert_eq!(
        std::fs::read(&garbage).unwrap(),
        vec![0xA5; 8192],
        "the file must be left as it was"
    );

    let good = dir.path().join("good.redb");
    let mut builder = model.clone();
    {
        let store = Store::open(&good, &builder.genesis).unwrap();
        for _ in 0..3 {
            store.apply_block(&builder.next_payment_block(2), None).unwrap();
        }
    }
    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.path().join("truncated.redb");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    match Store::open(&truncated, &model.genesis) {
        Err(err) => assert!(err.to_string().contains("truncated.redb"), "{err}"),
        // redb may recover to its last durable commit; then the chain must be intact.
        Ok(store) => {
            let info = store.utxo_set_info().unwrap();
            assert_eq!(store.recompute_utxo_set_info().unwrap(), info);
        }
    }
    assert!(std::fs::metadata(&truncated).is_ok());
}
