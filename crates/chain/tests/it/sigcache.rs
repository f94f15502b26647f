//! Verifying ahead: the signatures of blocks above the tip, some spending what the block being
//! applied creates, are remembered, and nothing that fails is.

use std::collections::HashMap;

use timecoin_chain::{OutputsAhead, SignatureCache, Utxo};
use timecoin_primitives::{Block, OutPoint, Signature};
use timecoin_test_utils::ChainBuilder;

/// Two blocks above the state `tip`: the first (being applied) and one spending its outputs.
fn two_blocks() -> (ChainBuilder, HashMap<OutPoint, Utxo>, Block, Block) {
    let mut chain = ChainBuilder::new(10);
    let tip = chain.utxos.clone();
    let applying = chain.next_payment_block(3);
    let txids: Vec<_> = applying.transactions.iter().map(|tx| tx.txid()).collect();
    let inputs: Vec<_> = chain
        .spendable()
        .into_iter()
        .filter(|(outpoint, utxo)| txids.contains(&outpoint.txid) && utxo.output.amount.units() > 100_000)
        .take(2)
        .collect();
    assert_eq!(inputs.len(), 2);
    let txs = inputs.into_iter().map(|input| chain.payment(input)).collect();
    let next = chain.build_block(txs);
    (chain, tip, applying, next)
}

fn outputs_of(block: &Block) -> OutputsAhead {
    let mut ahead = OutputsAhead::default();
    ahead.add_block(block);
    ahead
}

#[test]
fn the_next_blocks_signatures_are_verified_with_the_outputs_of_the_block_being_applied() {
    let (chain, tip, applying, next) = two_blocks();
    let (params, genesis_hash) = (chain.params(), chain.genesis_hash());

    // Without the applied block's outputs, the spends of them cannot be checked.
    let cache = SignatureCache::new(1_000);
    cache.preverify_block(&next, &mut OutputsAhead::default(), &tip, params, genesis_hash);
    assert_eq!(cache.len(), 0);

    // With them, both are verified and remembered; a second pass verifies nothing again.
    cache.preverify_block(&next, &mut outputs_of(&applying), &tip, params, genesis_hash);
    assert_eq!(cache.len(), 2);
    let spends: Vec<_> = next.transactions.iter().filter(|tx| !tx.is_reward()).cloned().collect();
    assert!(cache.verify(&chain.sig_items(&spends)).is_ok());
    assert_eq!(cache.len(), 2);
}

#[test]
fn a_forged_signature_ahead_is_not_remembered_and_the_valid_ones_are() {
    let (chain, tip, applying, mut next) = two_blocks();
    let forged = next.transactions.iter().position(|tx| !tx.is_reward()).unwrap();
    next.transactions[forged].inputs[0].signature = Signature([7; 64]);
    let cache = SignatureCache::new(1_000);
    cache.preverify_block(
        &next,
        &mut outputs_of(&applying),
        &tip,
        chain.params(),
        chain.genesis_hash(),
    );
    assert_eq!(cache.len(), 1);
    assert!(
        cache
            .verify(&chain.sig_items(&next.transactions[forged..=forged]))
            .is_err()
    );
}
