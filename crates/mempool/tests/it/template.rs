use std::collections::HashSet;

use timecoin_chain::check_block;
use timecoin_mempool::MempoolConfig;
use timecoin_primitives::TxId;
use timecoin_test_utils::ChainBuilder;

use crate::{NOW, output_of, pool, tx_with_fee};

#[test]
fn highest_rate_first_and_a_child_pays_for_its_parent() {
    let chain = ChainBuilder::new(5);
    let mut mempool = pool(&chain, MempoolConfig::default());
    let inputs = chain.spendable();
    let medium = tx_with_fee(&chain, &[inputs[0]], 1, 5_000);
    let high = tx_with_fee(&chain, &[inputs[1]], 1, 9_000);
    let poor_parent = tx_with_fee(&chain, &[inputs[2]], 1, 300);
    let rich_child = tx_with_fee(&chain, &[output_of(&poor_parent, 0)], 1, 20_000);
    for tx in [&medium, &high, &poor_parent, &rich_child] {
        mempool.add(tx.clone(), &chain.utxos, NOW).unwrap();
    }
    let template = mempool.block_template(usize::MAX, usize::MAX);
    let order: Vec<TxId> = template.transactions.iter().map(|t| t.txid()).collect();
    assert_eq!(
        order,
        vec![poor_parent.txid(), rich_child.txid(), high.txid(), medium.txid()]
    );
    assert_eq!(template.fees.units(), 5_000 + 9_000 + 300 + 20_000);
    assert_eq!(template.size, 4 * 185);
}

#[test]
fn limits_are_respected_and_the_template_makes_a_valid_block() {
    let mut chain = ChainBuilder::new(120);
    let mut mempool = pool(&chain, MempoolConfig::default());
    let mut parents = Vec::new();
    for (i, input) in chain.spendable().into_iter().enumerate() {
        let tx = tx_with_fee(&chain, &[input], 2, 400 + 37 * i as u64);
        mempool.add(tx.clone(), &chain.utxos, NOW).unwrap();
        parents.push(tx);
    }
    for (i, parent) in parents.iter().enumerate().take(60) {
        let child = tx_with_fee(&chain, &[output_of(parent, 1)], 1, 300 + 91 * i as u64);
        mempool.add(child, &chain.utxos, NOW).unwrap();
    }
    for (max_bytes, max_txs) in [(5_000, 1_000), (usize::MAX, 17), (12_345, 40), (usize::MAX, usize::MAX)] {
        let template = mempool.block_template(max_bytes, max_txs);
        assert!(template.size <= max_bytes && template.transactions.len() <= max_txs);
        let mut seen: HashSet<TxId> = HashSet::new();
        for tx in &template.transactions {
            for input in &tx.inputs {
                if mempool.contains(&input.prevout.txid) {
                    assert!(seen.contains(&input.prevout.txid), "a child precedes its parent");
                }
            }
            seen.insert(tx.txid());
        }
        // The chain rules accept the block the template makes.
        let block = chain.build_block(template.transactions.iter().map(|t| (**t).clone()).collect());
        let ctx = chain.block_context(block.header.timestamp_ms);
        let checked = check_block(&block, &chain.utxos, &ctx).unwrap();
        assert_eq!(checked.fees, template.fees);
    }
    let full = mempool.block_template(usize::MAX, usize::MAX);
    assert_eq!(full.transactions.len(), 180);
    let block = chain.build_block(full.transactions.iter().map(|t| (**t).clone()).collect());
    chain.apply(&block);
    mempool.block_connected(&block, &chain.utxos).unwrap();
    assert!(mempool.is_empty());
}

#[test]
fn the_fee_estimate_is_just_above_what_the_next_blocks_would_leave_out() {
    let chain = ChainBuilder::new(10);
    let mut mempool = pool(&chain, MempoolConfig::default());
    let floor = mempool.min_fee_rate(NOW);
    // Nothing waits: the pool's floor, for any target.
    assert_eq!(mempool.fee_estimate(1, 1_000, 100, NOW), floor);
    // Ten one-output payments of 185 bytes paying 1,000 to 10,000 units.
    for (i, input) in chain.spendable().into_iter().enumerate() {
        let tx = tx_with_fee(&chain, &[input], 1, 1_000 * (i as u64 + 1));
        mempool.add(tx, &chain.utxos, NOW).unwrap();
    }
    // Blocks of 4 payments: the next block takes the four best (10,000 down to 7,000 units
    // for 185 bytes); a new payment must beat the fourth.
    let fourth = timecoin_chain::FeeRate::of(timecoin_primitives::Amount::from_units(7_000), 185);
    assert_eq!(mempool.fee_estimate(1, 4 * 185, 100, NOW).0, fourth.0 + 1);
    // Two blocks take eight: it must beat the eighth (3,000 units).
    let eighth = timecoin_chain::FeeRate::of(timecoin_primitives::Amount::from_units(3_000), 185);
    assert_eq!(mempool.fee_estimate(2, 4 * 185, 100, NOW).0, eighth.0 + 1);
    // Three blocks take all ten: the floor again.
    assert_eq!(mempool.fee_estimate(3, 4 * 185, 100, NOW), floor);
}
