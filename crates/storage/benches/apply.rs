//! Block application: 1,000-transaction blocks written to redb with their fsync, and their
//! share of writing the in-memory coins to the UTXO table, against a bare durable redb commit
//! (one fsync, no data) measured in the same run; and one durable consensus WAL append (which
//! includes signing the vote).
//!
//! Run with `cargo bench -p timecoin-storage --bench apply`.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use redb::{Database, TableDefinition};
use timecoin_consensus::{Wal, WalEntry};
use timecoin_primitives::Block;
use timecoin_storage::Store;
use timecoin_test_utils::ChainBuilder;

const TXS_PER_BLOCK: usize = 1_000;
const BLOCKS: usize = 12;

fn main() {
    // Blocks that each spend outputs of the previous ones, as a real chain does.
    let mut model = ChainBuilder::new(TXS_PER_BLOCK);
    let genesis = model.genesis.clone();
    let blocks: Vec<Block> = (0..BLOCKS).map(|_| model.next_payment_block(TXS_PER_BLOCK)).collect();
    let dir = tempfile::tempdir().unwrap();

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("storage");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    group.bench_function("apply_block_1000_tx", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut store_index = 0;
            let mut done = 0;
            while done < iters {
                let path = dir.path().join(format!("apply-{store_index}.redb"));
                store_index += 1;
                let store = Store::open(&path, &genesis).unwrap();
                for block in blocks.iter().take((iters - done) as usize) {
                    let start = Instant::now();
                    store.apply_block(block, None).unwrap();
                    total += start.elapsed();
                    done += 1;
                }
                // The UTXO changes the blocks left in memory are written too, and counted:
                // the figure is a block's whole cost, its share of a flush included.
                let start = Instant::now();
                store.flush().unwrap();
                total += start.elapsed();
                drop(store);
                std::fs::remove_file(&path).unwrap();
            }
            total
        });
    });
    let table: TableDefinition<u64, u64> = TableDefinition::new("t");
    let db = Database::create(dir.path().join("bare.redb")).unwrap();
    group.bench_function("baseline_durable_empty_commit", |b| {
        let mut n = 0u64;
        b.iter(|| {
            let write = db.begin_write().unwrap();
            write.open_table(table).unwrap().insert(n, n).unwrap();
            write.commit().unwrap();
            n += 1;
        });
    });
    let wal_store = Store::open(&dir.path().join("wal.redb"), &genesis).unwrap();
    let key = timecoin_primitives::SecretKey::from_seed([6; 32]);
    group.bench_function("consensus_wal_append_durable", |b| {
        let mut wal = wal_store.consensus_wal();
        let mut round = 0u32;
        b.iter(|| {
            let vote = timecoin_primitives::SignedVote::sign(
                timecoin_primitives::Vote {
                    chain: genesis.hash(),
                    height: 1,
                    round,
                    kind: timecoin_primitives::VoteKind::Prevote,
                    block: None,
                },
                &key,
            );
            wal.append(&WalEntry::Vote(vote)).unwrap();
            round += 1;
        });
    });
    group.finish();
    c.final_summary();
}
