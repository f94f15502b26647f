use timecoin_storage::{StorageError, Store};
use timecoin_test_utils::ChainBuilder;

use crate::{assert_matches_model, validate_and_apply};

/// A store of `blocks` blocks of payments, its tip certified, and the model beside it.
fn chain(dir: &std::path::Path, blocks: usize) -> (Store, ChainBuilder) {
    let mut model = ChainBuilder::new(10);
    let store = Store::open(&dir.join("source.redb"), &model.genesis).unwrap();
    for _ in 0..blocks {
        let block = model.next_payment_block(3);
        let certificate = model.certify(&block);
        store.apply_block(&block, Some(&certificate)).unwrap();
    }
    (store, model)
}

#[test]
fn a_store_made_from_a_dumped_state_holds_the_same_state_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (source, mut model) = chain(dir.path(), 40);
    let mut file = Vec::new();
    let dumped = source.dump_chain_state(&mut file).unwrap();
    file.extend_from_slice(&3u64.to_le_bytes());
    file.extend_from_slice(b"end");
    assert_eq!(dumped.tip, model.tip);
    assert_eq!(dumped.state_hash, source.snapshot().unwrap().state_hash());

    let path = dir.path().join("loaded.redb");
    let (loaded, info) = Store::create_from_chain_state(&path, &model.genesis, &mut file.as_slice(), |state| {
        assert_eq!(state.trailer, b"end");
        assert_eq!(state.block.header.height, 40);
        if state.state_hash == dumped.state_hash {
            Ok(())
        } else {
            Err("another state".to_owned())
        }
    })
    .unwrap();
    assert_eq!(info, dumped);
    assert_matches_model(&loaded, &model);
    assert_eq!(loaded.snapshot().unwrap().state_hash(), dumped.state_hash);
    assert_eq!(loaded.served_from().unwrap(), 40);
    assert!(loaded.block_by_height(39).unwrap().is_none());
    assert!(loaded.certificate(40).unwrap().is_some());
    // It goes on from there, and keeps what it applied across a reopening.
    for _ in 0..3 {
        let block = model.build_block(model.clone().payments(2));
        validate_and_apply(&loaded, &mut model, &block);
    }
    drop(loaded);
    let loaded = Store::open(&path, &model.genesis).unwrap();
    assert_matches_model(&loaded, &model);
}

#[test]
fn a_damaged_or_foreign_state_file_leaves_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let (source, model) = chain(dir.path(), 5);
    let mut file = Vec::new();
    let dumped = source.dump_chain_state(&mut file).unwrap();
    file.extend_from_slice(&0u64.to_le_bytes());
    let path = dir.path().join("loaded.redb");
    let check = |state: &timecoin_storage::LoadedState<'_>| {
        if state.state_hash == dumped.state_hash {
            Ok(())
        } else {
            Err("the state is not the one the header names".to_owned())
        }
    };
    let load = |bytes: &[u8]| Store::create_from_chain_state(&path, &model.genesis, &mut &bytes[..], check);

    // One coin's value changed: the state's hash differs.
    let mut altered = file.clone();
    let at = altered.len() - 8 - 10;
    altered[at] ^= 1;
    let refused = load(&altered).unwrap_err();
    assert!(matches!(refused, StorageError::StateFile(_)), "{refused}");
    assert!(!path.exists() && !path.with_extension("loading").exists());
    // Cut short.
    let refused = load(&file[..file.len() - 30]).unwrap_err();
    assert!(refused.to_string().contains("chain-state file"), "{refused}");
    assert!(!path.exists());
    // Another network.
    let other = ChainBuilder::new(3);
    let refused = Store::create_from_chain_state(&path, &other.genesis, &mut file.as_slice(), check).unwrap_err();
    assert!(refused.to_string().contains("network of genesis"), "{refused}");
    // Not a state file at all.
    assert!(load(b"TIMECOIN but not a state").is_err());
    assert!(!path.exists());
    // Into an existing store: refused.
    let (_, _) = load(&file).unwrap();
    assert!(matches!(load(&file), Err(StorageError::Refused(_))));
}
