//! The pool's memory estimate, against what the allocator really hands out.
//!
//! A binary of its own: the counting allocator is process-wide, so no other test may run
//! beside this one.

use std::alloc::System;

use cap::Cap;
use timecoin_chain::Utxo;
use timecoin_mempool::{Mempool, MempoolConfig};
use timecoin_primitives::{Amount, OutPoint, TxOutput};
use timecoin_test_utils::ChainBuilder;

/// Counts the live heap bytes of this test binary.
#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

#[test]
fn the_usage_estimate_covers_the_real_heap() {
    let chain = ChainBuilder::new(3_000);
    let inputs = chain.spendable();
    // Sizes on both sides of the hash tables' growth steps.
    for pairs in [10, 100, 450, 900, 1_700, 3_000] {
        let mut txs = Vec::with_capacity(2 * pairs);
        for (i, input) in inputs.iter().take(pairs).enumerate() {
            let parent = chain.spend(&[*input], split(input.1.output, 2, 1_000 + i as u64));
            let change = (
                OutPoint {
                    txid: parent.txid(),
                    index: 1,
                },
                Utxo {
                    output: parent.outputs[1],
                    height: 1,
                    is_reward: false,
                },
            );
            txs.push(parent);
            txs.push(chain.spend(&[change], split(change.1.output, 1, 1_000)));
        }
        let config = MempoolConfig {
            max_transactions: 100_000,
            ..MempoolConfig::default()
        };
        let before = ALLOCATOR.allocated() as isize;
        let mut mempool = Mempool::new(chain.params().clone(), chain.genesis_hash(), config, 0);
        for result in mempool.add_batch(txs, &chain.utxos, 1_800_000_000_000) {
            result.unwrap();
        }
        let real = ALLOCATOR.allocated() as isize - before;
        let estimate = mempool.usage() as isize;
        println!(
            "{} transactions: real heap {real} bytes, estimate {estimate} bytes",
            mempool.len()
        );
        // The estimate leaves out what an empty pool already holds.
        let fixed = 64 * 1024;
        assert!(
            real <= estimate + fixed,
            "real heap {real} exceeds the estimate {estimate}"
        );
    }
}

/// `outputs` outputs back to the same owner, paying `fee` units.
fn split(output: TxOutput, outputs: u64, fee: u64) -> Vec<TxOutput> {
    let each = (output.amount.units() - fee) / outputs;
    let mut outs = vec![
        TxOutput {
            amount: Amount::from_units(each),
            address: output.address,
        };
        outputs as usize
    ];
    outs[0].amount = Amount::from_units(output.amount.units() - fee - each * (outputs - 1));
    outs
}
