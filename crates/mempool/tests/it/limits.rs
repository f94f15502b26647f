use proptest::prelude::*;
use timecoin_chain::FeeRate;
use timecoin_mempool::{MempoolConfig, MempoolError};
use timecoin_primitives::{Amount, OutPoint};
use timecoin_test_utils::ChainBuilder;

use crate::{NOW, output_of, pool, tx_with_fee};

#[test]
fn a_full_pool_evicts_the_lowest_rate_and_raises_its_minimum() {
    let chain = ChainBuilder::new(20);
    let config = MempoolConfig {
        max_transactions: 10,
        ..MempoolConfig::default()
    };
    let mut mempool = pool(&chain, config);
    let inputs = chain.spendable();
    let mut txs = Vec::new();
    for (i, input) in inputs.iter().take(10).enumerate() {
        let tx = tx_with_fee(&chain, &[*input], 1, 1_000 + 100 * i as u64);
        mempool.add(tx.clone(), &chain.utxos, NOW).unwrap();
        txs.push(tx);
    }
    assert_eq!(mempool.len(), 10);
    assert_eq!(mempool.min_fee_rate(NOW), chain.params().min_fee_rate);

    // A richer transaction pushes out the poorest one.
    let rich = tx_with_fee(&chain, &[inputs[10]], 1, 5_000);
    mempool.add(rich.clone(), &chain.utxos, NOW).unwrap();
    assert_eq!(mempool.len(), 10);
    assert!(!mempool.contains(&txs[0].txid()));
    let floor = mempool.min_fee_rate(NOW);
    assert!(
        floor > chain.params().min_fee_rate,
        "the rolling minimum must rise: {floor:?}"
    );

    // One that would be evicted right away is refused, and the pool is unchanged.
    let poor = tx_with_fee(&chain, &[inputs[11]], 1, 1_050);
    let err = mempool.add(poor, &chain.utxos, NOW).unwrap_err();
    assert!(matches!(err, MempoolError::MinFeeNotMet { .. }), "{err}");
    assert_eq!(mempool.len(), 10);
    mempool.check_invariants().unwrap();
}

#[test]
fn a_transaction_that_would_only_be_evicted_again_is_refused_as_full() {
    let chain = ChainBuilder::new(5);
    let config = MempoolConfig {
        max_transactions: 2,
        incremental_fee_rate: FeeRate(0),
        ..MempoolConfig::default()
    };
    let mut mempool = pool(&chain, config);
    let inputs = chain.spendable();
    mempool
        .add(tx_with_fee(&chain, &[inputs[0]], 1, 3_000), &chain.utxos, NOW)
        .unwrap();
    mempool
        .add(tx_with_fee(&chain, &[inputs[1]], 1, 3_000), &chain.utxos, NOW)
        .unwrap();
    let low = tx_with_fee(&chain, &[inputs[2]], 1, 400);
    assert_eq!(
        mempool.add(low.clone(), &chain.utxos, NOW),
        Err(MempoolError::Full(low.txid()))
    );
    assert_eq!(mempool.len(), 2);
}

#[test]
fn the_byte_limit_bounds_memory() {
    let chain = ChainBuilder::new(200);
    let config = MempoolConfig {
        max_bytes: 40_000,
        ..MempoolConfig::default()
    };
    let mut mempool = pool(&chain, config);
    for (i, input) in chain.spendable().into_iter().enumerate() {
        let _ = mempool.add(tx_with_fee(&chain, &[input], 1, 500 + i as u64), &chain.utxos, NOW);
        assert!(mempool.usage() <= 40_000);
    }
    assert!(mempool.len() > 10, "the pool still holds what fits ({})", mempool.len());
    mempool.check_invariants().unwrap();
}

#[test]
fn the_rolling_minimum_decays_after_blocks() {
    let mut chain = ChainBuilder::new(10);
    let config = MempoolConfig {
        max_transactions: 2,
        ..MempoolConfig::default()
    };
    let mut mempool = pool(&chain, config);
    let inputs = chain.spendable();
    for (i, input) in inputs.iter().take(3).enumerate() {
        let _ = mempool.add(
            tx_with_fee(&chain, &[*input], 1, 20_000 * (i as u64 + 1)),
            &chain.utxos,
            NOW,
        );
    }
    let raised = mempool.min_fee_rate(NOW);
    assert!(raised.0 > 50_000, "{raised:?}");
    // Without a block, no decay.
    assert_eq!(mempool.min_fee_rate(NOW + 3_600_000), raised);
    let block = chain.next_payment_block(1);
    mempool.block_connected(&block, &chain.utxos).unwrap();
    let later = mempool.min_fee_rate(NOW + 3 * 3_600_000);
    assert!(later < raised, "{later:?} should be below {raised:?}");
    assert_eq!(mempool.min_fee_rate(NOW + 100 * 3_600_000), chain.params().min_fee_rate);
}

#[test]
fn old_transactions_expire_with_their_descendants() {
    let chain = ChainBuilder::new(3);
    let mut mempool = pool(&chain, MempoolConfig::default());
    let inputs = chain.spendable();
    let old = tx_with_fee(&chain, &[inputs[0]], 1, 1_000);
    mempool.add(old.clone(), &chain.utxos, NOW).unwrap();
    let young_child = tx_with_fee(&chain, &[output_of(&old, 0)], 1, 1_000);
    let hours = 3_600_000;
    mempool
        .add(young_child.clone(), &chain.utxos, NOW + 10 * hours)
        .unwrap();
    let young = tx_with_fee(&chain, &[inputs[1]], 1, 1_000);
    mempool.add(young.clone(), &chain.utxos, NOW + 10 * hours).unwrap();
    let removed = mempool.expire(NOW + 72 * hours + 1);
    assert_eq!(removed.len(), 2);
    assert!(mempool.contains(&young.txid()) && mempool.len() == 1);
    mempool.check_invariants().unwrap();
}

#[test]
fn a_connected_block_removes_included_conflicting_and_invalidated_transactions() {
    let mut chain = ChainBuilder::new(6);
    let mut mempool = pool(&chain, MempoolConfig::default());
    let inputs = chain.spendable();
    let included = tx_with_fee(&chain, &[inputs[0]], 1, 1_000);
    let child_of_included = tx_with_fee(&chain, &[output_of(&included, 0)], 1, 1_000);
    let loser = tx_with_fee(&chain, &[inputs[1]], 1, 1_000);
    let loser_child = tx_with_fee(&chain, &[output_of(&loser, 0)], 1, 1_000);
    let bystander = tx_with_fee(&chain, &[inputs[2]], 1, 1_000);
    for tx in [&included, &child_of_included, &loser, &loser_child, &bystander] {
        mempool.add(tx.clone(), &chain.utxos, NOW).unwrap();
    }
    // The block confirms `included` and a different spend of `loser`'s input.
    let winner = tx_with_fee(&chain, &[inputs[1]], 2, 900);
    let block = chain.build_block(vec![included.clone(), winner]);
    chain.apply(&block);
    let removal = mempool.block_connected(&block, &chain.utxos).unwrap();
    assert_eq!(removal.included, vec![included.txid()]);
    let mut conflicted = removal.conflicted.clone();
    conflicted.sort();
    let mut expected = vec![loser.txid(), loser_child.txid()];
    expected.sort();
    assert_eq!(conflicted, expected);
    assert!(mempool.contains(&child_of_included.txid()) && mempool.contains(&bystander.txid()));
    assert_eq!(mempool.info(&child_of_included.txid()).unwrap().ancestors, 0);
    mempool.check_invariants().unwrap();

    // An input that vanished from the chain state (as after another node's block that this
    // pool never saw spend it) invalidates the spender on the next block.
    let stale_input = chain
        .spendable()
        .into_iter()
        .find(|(o, _)| o.txid != included.txid() && mempool.spender_of(o).is_none())
        .unwrap();
    let stale = tx_with_fee(&chain, &[stale_input], 1, 1_000);
    mempool.add(stale.clone(), &chain.utxos, NOW).unwrap();
    chain.utxos.remove(&stale_input.0);
    let empty = chain.build_block(vec![]);
    chain.apply(&empty);
    let removal = mempool.block_connected(&empty, &chain.utxos).unwrap();
    assert_eq!(removal.invalidated, vec![stale.txid()]);
    mempool.check_invariants().unwrap();
}

/// After each block only a window of the pool (1,000 entries for a small block) has its
/// confirmed inputs looked up again, so a large pool costs no more per block; the window
/// moves on, and a stale entry at the far end is still found within a few blocks.
#[test]
fn the_recheck_after_a_block_is_bounded_and_reaches_the_whole_pool_in_turn() {
    let mut chain = ChainBuilder::new(2_101);
    let mut mempool = pool(&chain, MempoolConfig::default());
    let inputs = chain.spendable();
    for (i, input) in inputs.iter().take(2_100).enumerate() {
        // Arrival order is time order: the last one arrives last.
        let tx = tx_with_fee(&chain, &[*input], 1, 1_000);
        mempool.add(tx, &chain.utxos, NOW + i as u64).unwrap();
    }
    let last = inputs[2_099];
    let stale = mempool.spender_of(&last.0).unwrap();
    chain.utxos.remove(&last.0);
    let mut found_after = None;
    for block_number in 1..=3 {
        let empty = chain.build_block(vec![]);
        chain.apply(&empty);
        let removal = mempool.block_connected(&empty, &chain.utxos).unwrap();
        if removal.invalidated == vec![stale] {
            found_after = Some(block_number);
            break;
        }
        assert!(removal.invalidated.is_empty(), "{removal:?}");
    }
    // Windows of 1,000: the 2,100th entry is looked at by the third block.
    assert_eq!(found_after, Some(3));
    assert_eq!(mempool.len(), 2_099);
    mempool.check_invariants().unwrap();
}

#[derive(Debug, Clone)]
enum Op {
    Pay { input: usize, fee: u64, outputs: usize },
    Child { parent: usize, fee: u64 },
    Replace { input: usize, fee: u64 },
    Expire { hours: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..40, 300u64..20_000, 1usize..4).prop_map(|(input, fee, outputs)| Op::Pay { input, fee, outputs }),
        (0usize..100, 300u64..20_000).prop_map(|(parent, fee)| Op::Child { parent, fee }),
        (0usize..40, 300u64..40_000).prop_map(|(input, fee)| Op::Replace { input, fee }),
        (0u64..30).prop_map(|hours| Op::Expire { hours }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever arrives, the pool keeps its bookkeeping exact, stays within its limits, and
    /// never holds two spends of one output.
    #[test]
    fn random_traffic_keeps_the_pool_consistent(ops in prop::collection::vec(op(), 1..60)) {
        let chain = ChainBuilder::new(40);
        let config = MempoolConfig { max_transactions: 15, max_bytes: 60_000, max_ancestors: 4, max_descendants: 4, ..MempoolConfig::default() };
        let mut mempool = pool(&chain, config);
        let inputs = chain.spendable();
        let mut seen = Vec::new();
        let mut now = NOW;
        for op in ops {
            let tx = match op {
                Op::Pay { input, fee, outputs } => tx_with_fee(&chain, &[inputs[input]], outputs, fee),
                Op::Replace { input, fee } => tx_with_fee(&chain, &[inputs[input]], 2, fee),
                Op::Child { parent, fee } => {
                    let Some(parent) = seen.get(parent % seen.len().max(1)).cloned() else { continue };
                    tx_with_fee(&chain, &[output_of(&parent, 0)], 1, fee)
                }
                Op::Expire { hours } => {
                    now += hours * 3_600_000;
                    mempool.expire(now);
                    continue;
                }
            };
            let _ = mempool.add(tx.clone(), &chain.utxos, now);
            seen.push(tx);
            prop_assert!(mempool.len() <= 15);
            prop_assert!(mempool.usage() <= 60_000);
            if let Err(e) = mempool.check_invariants() {
                return Err(TestCaseError::fail(e));
            }
            let mut spent: Vec<OutPoint> = mempool
                .txids()
                .iter()
                .flat_map(|id| mempool.get(id).unwrap().inputs.iter().map(|i| i.prevout).collect::<Vec<_>>())
                .collect();
            let count = spent.len();
            spent.sort();
            spent.dedup();
            prop_assert_eq!(spent.len(), count);
        }
        let template = mempool.block_template(usize::MAX, usize::MAX);
        prop_assert_eq!(template.transactions.len(), mempool.len());
        let fees: u64 = mempool.txids().iter().map(|id| mempool.info(id).unwrap().fee.units()).sum();
        prop_assert_eq!(template.fees, Amount::from_units(fees));
    }
}
