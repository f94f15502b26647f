//! Mempool admission with 10,000 transactions pending, against raw batched Ed25519
//! verification of the same signatures, measured in the same run.
//!
//! Run with `cargo bench -p timecoin-mempool --bench admission`. The UTXO view is an
//! in-memory map, so the figures are the pool's and the chain rules' cost, not a database's.

use std::hint::black_box;
use std::time::Instant;

use criterion::{BatchSize, Criterion, Throughput};
use timecoin_chain::{verify_batch, verify_signatures};
use timecoin_mempool::{Mempool, MempoolConfig};
use timecoin_primitives::Transaction;
use timecoin_test_utils::ChainBuilder;

const PENDING: usize = 10_000;
const INCOMING: usize = 1_000;
const NOW: u64 = 1_800_000_000_000;

fn main() {
    let mut chain = ChainBuilder::new(PENDING + INCOMING);
    // Fees vary so that the eviction and template indexes are exercised.
    let mut txs: Vec<Transaction> = Vec::with_capacity(PENDING + INCOMING);
    for (i, input) in chain.spendable().into_iter().enumerate() {
        chain.fee_multiplier = 1 + (i as u64 * 7) % 13;
        txs.push(chain.payment(input));
    }
    let incoming: Vec<Transaction> = txs.split_off(PENDING);
    let items = chain.sig_items(&incoming);

    let filled = |config: MempoolConfig| {
        let mut pool = Mempool::new(chain.params().clone(), chain.genesis_hash(), config, 0);
        for result in pool.add_batch(txs.clone(), &chain.utxos, NOW) {
            result.unwrap();
        }
        assert_eq!(pool.len(), PENDING);
        pool
    };
    let roomy = filled(MempoolConfig {
        max_transactions: 2 * PENDING,
        ..MempoolConfig::default()
    });
    let full = filled(MempoolConfig::default());

    let admit_batch = |mut pool: Mempool| {
        let results = pool.add_batch(incoming.clone(), &chain.utxos, NOW);
        black_box(results.len());
        pool
    };
    let admit_one_by_one = |mut pool: Mempool| {
        for tx in &incoming {
            let _ = black_box(pool.add(tx.clone(), &chain.utxos, NOW));
        }
        pool
    };

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("mempool_10000_pending");
    group.sample_size(10);
    group.throughput(Throughput::Elements(INCOMING as u64));
    group.bench_function("raw_batch_1_thread", |b| {
        b.iter(|| verify_batch(black_box(&items)).unwrap())
    });
    group.bench_function("raw_batch_all_threads", |b| {
        b.iter(|| verify_signatures(black_box(&items)).unwrap())
    });
    group.bench_function("admit_batch_of_1000", |b| {
        b.iter_batched(|| roomy.clone(), admit_batch, BatchSize::LargeInput)
    });
    group.bench_function("admit_batch_of_1000_full_pool_evicting", |b| {
        b.iter_batched(|| full.clone(), admit_batch, BatchSize::LargeInput)
    });
    group.bench_function("admit_one_by_one", |b| {
        b.iter_batched(|| roomy.clone(), admit_one_by_one, BatchSize::LargeInput)
    });
    group.finish();
    c.final_summary();

    // Interleaved repetitions for the ratios the issue asks for.
    let mut raw = Vec::new();
    let mut raw_all = Vec::new();
    let mut admit = Vec::new();
    for _ in 0..9 {
        let t = Instant::now();
        verify_batch(&items).unwrap();
        raw.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        verify_signatures(&items).unwrap();
        raw_all.push(t.elapsed().as_secs_f64());
        let pool = roomy.clone();
        let t = Instant::now();
        black_box(admit_batch(pool));
        admit.push(t.elapsed().as_secs_f64());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let rate = |secs: f64| INCOMING as f64 / secs;
    let (raw, raw_all, admit) = (
        rate(median(&mut raw)),
        rate(median(&mut raw_all)),
        rate(median(&mut admit)),
    );
    println!("\nsummary (median of 9 interleaved runs, {INCOMING} transactions into {PENDING} pending):");
    println!("  raw batched ed25519, 1 thread      {raw:>10.0} /s");
    println!("  raw batched ed25519, all threads   {raw_all:>10.0} /s");
    println!("  mempool batch admission            {admit:>10.0} /s");
    println!("  admission / raw batched (1 thread)    = {:.1}%", 100.0 * admit / raw);
    println!(
        "  admission / raw batched (all threads) = {:.1}%",
        100.0 * admit / raw_all
    );
}
