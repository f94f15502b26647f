//! Transaction verification against raw Ed25519 verification, measured in the same run.
//!
//! Run with `cargo bench -p timecoin-chain --bench verify`. Besides criterion's figures it
//! prints, at the end, each transaction path's rate as a share of the raw rate with the same
//! number of threads (the target: batched transaction verification ≥ 80% of raw
//! batched Ed25519).

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use timecoin_chain::{
    SigItem, SignatureCache, check_block, check_block_cached, check_transaction, check_tx_contextual,
    check_tx_stateless, verify_batch, verify_signatures,
};
use timecoin_primitives::{Block, Encode, Transaction};
use timecoin_test_utils::ChainBuilder;

const N: usize = 1_000;

struct Fixture {
    chain: ChainBuilder,
    txs: Vec<Transaction>,
    items: Vec<SigItem>,
    block: Block,
    /// Holds every signature of `block`, as after this node admitted its transactions.
    cache: SignatureCache,
}

fn fixture() -> Fixture {
    let mut chain = ChainBuilder::new(N);
    let txs = chain.payments(N);
    let items = chain.sig_items(&txs);
    let block = chain.build_block(txs.clone());
    let cache = SignatureCache::new(timecoin_chain::sigcache::DEFAULT_CAPACITY);
    cache.verify(&items).unwrap();
    Fixture {
        chain,
        txs,
        items,
        block,
        cache,
    }
}

fn raw_single(f: &Fixture) {
    for item in &f.items {
        item.key.verify(&item.message.0, &item.signature).unwrap();
    }
}

fn raw_batch_one_thread(f: &Fixture) {
    verify_batch(&f.items).unwrap();
}

fn raw_batch_all_threads(f: &Fixture) {
    verify_signatures(&f.items).unwrap();
}

fn tx_single(f: &Fixture) {
    let ctx = f.chain.tx_context();
    for tx in &f.txs {
        check_transaction(tx, &f.chain.utxos, &ctx).unwrap();
    }
}

/// Every transaction check, with the signatures verified in one batch on this thread.
fn tx_batch_one_thread(f: &Fixture) {
    let ctx = f.chain.tx_context();
    let mut items = Vec::with_capacity(f.txs.len());
    for tx in &f.txs {
        let size = tx.encoded_len();
        check_tx_stateless(tx, size, ctx.params).unwrap();
        items.extend(
            check_tx_contextual(tx, tx.txid(), size, &f.chain.utxos, &ctx)
                .unwrap()
                .sig_items,
        );
    }
    verify_batch(&items).unwrap();
}

/// A whole 1,000-transaction block, as a node validates it (all cores).
fn block_all_threads(f: &Fixture) {
    let ctx = f.chain.block_context(f.chain.tip.timestamp_ms + 60_000);
    check_block(&f.block, &f.chain.utxos, &ctx).unwrap();
}

/// The same block when this node admitted its transactions before: every signature cached.
fn block_cached(f: &Fixture) {
    let ctx = f.chain.block_context(f.chain.tip.timestamp_ms + 60_000);
    check_block_cached(&f.block, &f.chain.utxos, &ctx, &f.cache).unwrap();
}

type Case = (&'static str, fn(&Fixture));

const CASES: [Case; 7] = [
    ("raw_single", raw_single),
    ("raw_batch_1_thread", raw_batch_one_thread),
    ("raw_batch_all_threads", raw_batch_all_threads),
    ("tx_single", tx_single),
    ("tx_batch_1_thread", tx_batch_one_thread),
    ("block_1000_tx_all_threads", block_all_threads),
    ("block_1000_tx_signatures_cached", block_cached),
];

/// Seconds one call takes.
fn time_once(f: &Fixture, run: fn(&Fixture)) -> f64 {
    let start = Instant::now();
    run(black_box(f));
    start.elapsed().as_secs_f64()
}

fn main() {
    let f = fixture();
    let mut c = Criterion::default().configure_from_args();
    {
        let mut group = c.benchmark_group("verify_1000");
        group.throughput(Throughput::Elements(N as u64));
        group.sample_size(20);
        for (name, run) in CASES {
            group.bench_function(name, |b| b.iter(|| run(black_box(&f))));
        }
        group.finish();
    }
    c.final_summary();

    // The ratios the issue asks for, from interleaved runs so both sides see the same machine.
    let threads = rayon::current_num_threads();
    println!("\nsummary ({threads} rayon threads, {N} signatures per call, median of 15 interleaved runs):");
    let mut rates = std::collections::HashMap::new();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); CASES.len()];
    for _ in 0..15 {
        for (i, (_, run)) in CASES.iter().enumerate() {
            samples[i].push(time_once(&f, *run));
        }
    }
    for (i, (name, _)) in CASES.iter().enumerate() {
        samples[i].sort_by(f64::total_cmp);
        let rate = N as f64 / samples[i][samples[i].len() / 2];
        rates.insert(*name, rate);
        println!("  {name:<28} {rate:>10.0} /s");
    }
    let ratio = |a: &str, b: &str| 100.0 * rates[a] / rates[b];
    println!(
        "  tx_batch_1_thread / raw_batch_1_thread          = {:.1}%",
        ratio("tx_batch_1_thread", "raw_batch_1_thread")
    );
    println!(
        "  block_1000_tx_all_threads / raw_batch_all_threads = {:.1}%",
        ratio("block_1000_tx_all_threads", "raw_batch_all_threads")
    );
    println!(
        "  block_1000_tx_signatures_cached / block_1000_tx_all_threads = {:.2}x",
        rates["block_1000_tx_signatures_cached"] / rates["block_1000_tx_all_threads"]
    );
    println!(
        "  raw_batch_1_thread / raw_single                 = {:.2}x",
        rates["raw_batch_1_thread"] / rates["raw_single"]
    );
}
