//! How long the blocking client takes against the stub server on loopback: many small
//! calls, many fresh clients (as `node_client` makes one per poll), and large batches of
//! `sendrawtransaction` (as the lab submits payments). Ignored by default; run with
//! `cargo test --release -p timecoin-rpc --test it timing -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use timecoin_primitives::{
    AddressPayload, Amount, Encode, Hash256, OutPoint, SecretKey, Transaction, TxId, TxInput, TxOutput,
};
use timecoin_rpc::Client;
use timecoin_rpc::auth::COOKIE_USER;

use crate::server::{Served, fixed};

const CALLS: usize = 2_000;
const FRESH_CLIENTS: usize = 500;
const BATCHES: usize = 20;
const BATCH: usize = 250;

/// A payment-sized transaction (one input, two outputs), distinct for each `n`.
fn payment(n: u32) -> String {
    let key = SecretKey::from_seed([7; 32]);
    let tx = Transaction {
        version: Transaction::VERSION,
        inputs: vec![TxInput {
            prevout: OutPoint {
                txid: TxId(Hash256([3; 32])),
                index: n,
            },
            public_key: key.public_key(),
            signature: key.sign(&n.to_le_bytes()),
        }],
        outputs: vec![
            TxOutput {
                amount: Amount::from_units(1_000 + u64::from(n)),
                address: AddressPayload([1; 32]),
            },
            TxOutput {
                amount: Amount::from_units(5_000),
                address: AddressPayload([2; 32]),
            },
        ],
        lock_time: 0,
        memo: Vec::new(),
        payload: None,
    };
    hex::encode(tx.to_bytes())
}

fn report(what: &str, count: usize, elapsed: Duration) {
    println!(
        "{what}: {count} in {:.1} ms, {:.1} µs each",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / count as f64
    );
}

#[test]
#[ignore = "timing, run by hand in release"]
fn timing_of_small_calls_fresh_clients_and_large_batches() {
    let mut backend = fixed();
    backend.judge = Box::new(|_| Ok((230, 1_000)));
    let served = Served::serving(backend, |_| {});
    let client = served.client();
    for _ in 0..50 {
        assert_eq!(client.call("getblockcount", json!([])).unwrap(), json!(7));
    }

    let start = Instant::now();
    for _ in 0..CALLS {
        assert_eq!(client.call("getblockcount", json!([])).unwrap(), json!(7));
    }
    report("getblockcount, one client", CALLS, start.elapsed());

    let start = Instant::now();
    for _ in 0..FRESH_CLIENTS {
        let fresh = Client::new(served.address(), COOKIE_USER, &served.cookie);
        assert_eq!(fresh.call("getblockcount", json!([])).unwrap(), json!(7));
    }
    report("getblockcount, a new client each", FRESH_CLIENTS, start.elapsed());

    let batches: Vec<Vec<(&str, Value)>> = (0..BATCHES)
        .map(|b| {
            (0..BATCH)
                .map(|i| ("sendrawtransaction", json!([payment((b * BATCH + i) as u32)])))
                .collect()
        })
        .collect();
    let bytes: usize = batches[0].iter().map(|(_, params)| params.to_string().len()).sum();
    let start = Instant::now();
    for calls in &batches {
        let outcomes = client.call_batch(calls).unwrap();
        assert_eq!(outcomes.len(), BATCH);
        assert!(outcomes.iter().all(Result::is_ok), "{:?}", outcomes.first());
    }
    report(
        &format!("call_batch of {BATCH} sendrawtransaction (~{} kB)", bytes / 1_000),
        BATCHES,
        start.elapsed(),
    );
}
