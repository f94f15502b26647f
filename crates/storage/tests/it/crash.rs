//! Kills a child process that applies blocks, many times, at random moments, and checks that
//! the reopened store always holds a complete, consistent chain, and the UTXO set (and so
//! the commitment) of a store that never crashed: the child writes its in-memory coins every
//! few blocks, so kills land before, during and after those writes, and the reopened store
//! must replay what was not written (Bitcoin Core's `feature_dbcrash`). The address index,
//! on in the child, must equal a scan of the reopened chain each time.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use timecoin_consensus::Wal;
use timecoin_storage::Store;
use timecoin_test_utils::ChainBuilder;

use crate::assert_matches_model;

const ENV_DB: &str = "TIMECOIN_CRASH_TEST_DB";
const FUNDED: usize = 400;
const KILLS: usize = 30;
/// The child writes its in-memory coins every this many blocks.
const FLUSH_BLOCKS: usize = 3;

/// Rebuilds the in-memory model by replaying every stored block.
fn replay(store: &Store) -> ChainBuilder {
    let mut model = ChainBuilder::new(FUNDED);
    let tip = store.tip().unwrap();
    for height in 1..=tip.height {
        let block = store
            .block_by_height(height)
            .unwrap()
            .expect("every block up to the tip is stored");
        assert_eq!(block.header.prev_hash, model.tip.hash, "block {height} does not link");
        model.apply(&block);
    }
    model
}

/// Starts this test binary running the ignored test `child`, with `path` in `env`.
fn spawn_child(child: &str, env: &str, path: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([child, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(env, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A child's progress line: `writing H` or `applied H` (libtest may print its own text before
/// it on the same line).
fn event(line: &str) -> Option<(&str, u64)> {
    let mut words = line.split_whitespace().rev();
    let height = words.next()?.parse().ok()?;
    let word = words.next()?;
    matches!(word, "writing" | "applied" | "appended").then_some((word, height))
}

/// The child: applies blocks forever, announcing each write before and after.
#[test]
#[ignore = "run by kill_during_writes_never_leaves_a_mixed_state"]
fn crash_child() {
    let Ok(path) = std::env::var(ENV_DB) else {
        return;
    };
    let store = crate::open_flushing_every(Path::new(&path), &ChainBuilder::new(FUNDED).genesis, FLUSH_BLOCKS);
    // The address index is written with each block: it must survive the kills too.
    store.enable_address_index(|_, _| {}).unwrap();
    println!("indexing");
    let mut model = replay(&store);
    loop {
        let count = 50 + (model.tip.height as usize * 37) % 150;
        let spendable = model.spendable().len();
        let block = model.build_block(model.clone().payments(count.min(spendable)));
        println!("writing {}", block.header.height);
        store.apply_block(&block, None).unwrap();
        model.apply(&block);
        println!("applied {}", block.header.height);
    }
}

#[test]
fn kill_during_writes_never_leaves_a_mixed_state() {
    let seed: u64 = std::env::var("TIMECOIN_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x7133);
    println!("crash test seed {seed} (set TIMECOIN_CRASH_SEED to reproduce the kill schedule)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let mut killed_in_flight = 0;
    let mut replayed = 0;
    let mut last_height = 0;
    for round in 0..KILLS {
        let mut child = spawn_child("crash::crash_child", ENV_DB, &path);
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        // Let it finish a random number of writes, then kill it at a random moment.
        let writes = rng.random_range(1..4);
        let mut applied = 0;
        let mut in_flight = None;
        let mut indexing = false;
        for line in lines.by_ref() {
            let line = line.unwrap();
            indexing |= line.ends_with("indexing");
            match event(&line) {
                Some(("writing", h)) => {
                    in_flight = Some(h);
                    if applied >= writes {
                        break;
                    }
                }
                Some(("applied", h)) => {
                    assert_eq!(Some(h), in_flight);
                    in_flight = None;
                    applied += 1;
                }
                _ => {}
            }
        }
        // The child is now inside (or about to enter) a write; this delay picks the moment
        // of the kill within it.
        std::thread::sleep(Duration::from_micros(rng.random_range(0..20_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        // Anything it printed after our last read may show the write completed.
        for line in lines.map_while(Result::ok) {
            if let Some(("applied", _)) = event(&line) {
                in_flight = None;
            }
        }

        let store = Store::open(&path, &ChainBuilder::new(FUNDED).genesis)
            .unwrap_or_else(|e| panic!("round {round}: store does not reopen after kill: {e}"));
        let tip = store.tip().unwrap();
        if store.coins_cache().unflushed_blocks > 0 {
            replayed += 1;
        }
        let model = replay(&store);
        assert_matches_model(&store, &model);
        // Once the child had built it, the address index is at the tip whatever the kill
        // interrupted, and equals a scan of the chain.
        if indexing {
            assert_eq!(store.address_index_height().unwrap(), Some(tip.height), "round {round}");
        }
        store.enable_address_index(|_, _| {}).unwrap();
        crate::address::assert_index_matches_scan(&store);
        // The state hash the next block's header names is that of the set recomputed from
        // scratch (which `assert_matches_model` found equal to the model's) and the model's
        // masternode list: what a store that never crashed names.
        let recomputed = store.recompute_utxo_set_info().unwrap().commitment;
        assert_eq!(
            store.snapshot().unwrap().state_hash(),
            timecoin_primitives::chain_state_hash(&recomputed, &model.list.hash()),
            "round {round}"
        );
        assert!(tip.height >= last_height, "round {round}: the tip went backwards");
        if let Some(h) = in_flight
            && tip.height + 1 == h
        {
            killed_in_flight += 1;
        }
        last_height = tip.height;
    }
    println!(
        "{KILLS} kills, {killed_in_flight} during an unfinished write, {replayed} reopened with unwritten coins to replay, final height {last_height}"
    );
    assert!(
        killed_in_flight > 0,
        "no kill landed inside a write; the test proved nothing"
    );
    assert!(
        replayed > 0,
        "no kill left in-memory coins to replay; the test proved nothing of the cache"
    );
}

const ENV_WAL: &str = "TIMECOIN_CRASH_TEST_WAL";

/// The child: appends signed votes to the consensus WAL forever, announcing each one only
/// after `append` returned.
#[test]
#[ignore = "run by kill_during_wal_appends_loses_no_acknowledged_entry"]
fn wal_child() {
    let Ok(path) = std::env::var(ENV_WAL) else {
        return;
    };
    let store = Store::open(Path::new(&path), &ChainBuilder::new(FUNDED).genesis).unwrap();
    let mut wal = store.consensus_wal();
    let key = timecoin_primitives::SecretKey::from_seed([5; 32]);
    let start = wal.entries(1).unwrap().len() as u32;
    for round in start.. {
        wal.append(&crate::wal::entry(&key, 1, round)).unwrap();
        println!("appended {round}");
    }
}

#[test]
fn kill_during_wal_appends_loses_no_acknowledged_entry() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x3a1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let key = timecoin_primitives::SecretKey::from_seed([5; 32]);
    let mut acknowledged = 0u32;
    for round in 0..10 {
        let mut child = spawn_child("crash::wal_child", ENV_WAL, &path);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let target = acknowledged + rng.random_range(1..20);
        for line in lines.by_ref() {
            if let Some(("appended", n)) = event(&line.unwrap()) {
                acknowledged = acknowledged.max(n as u32 + 1);
                if acknowledged >= target {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..2_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        for line in lines.map_while(Result::ok) {
            if let Some(("appended", n)) = event(&line) {
                acknowledged = acknowledged.max(n as u32 + 1);
            }
        }
        let store = Store::open(&path, &ChainBuilder::new(FUNDED).genesis)
            .unwrap_or_else(|e| panic!("round {round}: store does not reopen: {e}"));
        let entries = store.consensus_wal().entries(1).unwrap();
        assert!(
            entries.len() as u32 >= acknowledged,
            "round {round}: {acknowledged} appends were acknowledged but only {} survived",
            entries.len()
        );
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(
                *e,
                crate::wal::entry(&key, 1, i as u32),
                "entry {i} is damaged or out of order"
            );
        }
    }
}

const ENV_UPGRADE: &str = "TIMECOIN_CRASH_TEST_UPGRADE";

/// The child: opens a store of schema 2 (upgrading it), applies blocks without writing its
/// in-memory coins, and dies as if killed (no destructor runs).
#[test]
#[ignore = "run by a_schema_2_store_upgraded_then_killed_replays_what_it_applied"]
fn upgrade_child() {
    let Ok(path) = std::env::var(ENV_UPGRADE) else {
        return;
    };
    let store = crate::open_flushing_every(Path::new(&path), &ChainBuilder::new(FUNDED).genesis, 1_000);
    let mut model = replay(&store);
    for _ in 0..3 {
        let block = model.next_payment_block(20);
        store.apply_block(&block, None).unwrap();
    }
    assert_eq!(store.coins_cache().unflushed_blocks, 3);
    println!("applied {}", model.tip.height);
    std::process::abort();
}

#[test]
fn a_schema_2_store_upgraded_then_killed_replays_what_it_applied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    {
        let store = Store::open(&path, &ChainBuilder::new(FUNDED).genesis).unwrap();
        let mut model = replay(&store);
        for _ in 0..2 {
            let block = model.next_payment_block(20);
            store.apply_block(&block, None).unwrap();
        }
    }
    // What a schema-2 store holds: its UTXO table as of its tip, and no coins tip.
    {
        use redb::{Database, TableDefinition};
        let db = Database::open(&path).unwrap();
        let write = db.begin_write().unwrap();
        {
            let mut meta = write.open_table(TableDefinition::<&str, &[u8]>::new("meta")).unwrap();
            meta.insert("schema_version", 2u32.to_le_bytes().as_slice()).unwrap();
            meta.remove("coins_tip").unwrap();
        }
        write.commit().unwrap();
    }
    let mut child = spawn_child("crash::upgrade_child", ENV_UPGRADE, &path);
    let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .collect();
    assert!(!child.wait().unwrap().success(), "the child must die, not exit");
    assert!(
        lines.iter().any(|l| event(l) == Some(("applied", 5))),
        "the child did not apply its blocks: {lines:?}"
    );
    let store = Store::open(&path, &ChainBuilder::new(FUNDED).genesis).unwrap();
    assert_eq!(store.tip().unwrap().height, 5);
    assert_eq!(
        store.coins_cache().unflushed_blocks,
        3,
        "the three unflushed blocks are replayed"
    );
    let model = replay(&store);
    assert_matches_model(&store, &model);
}
