use timecoin_chain::TxError;
use timecoin_mempool::{MempoolConfig, MempoolError};
use timecoin_primitives::Amount;
use timecoin_test_utils::ChainBuilder;

use crate::{NOW, output_of, pool, tx_with_fee};

#[test]
fn admits_valid_payments_and_reports_them() {
    let mut chain = ChainBuilder::new(5);
    let mut mempool = pool(&chain, MempoolConfig::default());
    let txs = chain.payments(3);
    for tx in &txs {
        assert_eq!(mempool.add(tx.clone(), &chain.utxos, NOW), Ok(tx.txid()));
    }
    assert_eq!(mempool.len(), 3);
    let info = mempool.info(&txs[0].txid()).unwrap();
    assert_eq!(
        (info.size, info.fee, info.ancestors, info.descendants),
        (225, Amount::from_units(225), 0, 0)
    );
    assert_eq!(
        mempool.add(txs[0].clone(), &chain.utxos, NOW),
        Err(MempoolError::AlreadyInPool(txs[0].txid()))
    );
    mempool.check_invariants().unwrap();
}

#[test]
fn chain_rule_violations_are_refused_with_their_codes() {
    let mut chain = ChainBuilder::new(5);
    let mut mempool = pool(&chain, MempoolConfig::default());
    let mut tx = chain.payments(1).remove(0);
    tx.inputs[0].signature.0[3] ^= 1;
    let err = mempool.add(tx, &chain.utxos, NOW).unwrap_err();
    assert_eq!(err, MempoolError::Invalid(TxError::BadSignature));
    assert_eq!(err.code(), "bad-txns-signature");

    let input = chain.spendable()[0];
    let cheap = tx_with_fee(&chain, &[input], 1, 10);
    let err = mempool.add(cheap, &chain.utxos, NOW).unwrap_err();
    assert!(matches!(err, MempoolError::Invalid(TxError::FeeTooLow { .. })), "{err}");
    assert_eq!(err.code(), "min-fee-not-met");

    let mut dusty = tx_with_fee(&chain, &[input], 2, 300);
    let value = dusty.outputs[0].amount.units() + dusty.outputs[1].amount.units();
    dusty.outputs[1].amount = Amount::from_units(999);
    dusty.outputs[0].amount = Amount::from_units(value - 999);
    let dusty = chain.spend(&[input], dusty.outputs.clone());
    let err = mempool.add(dusty, &chain.utxos, NOW).unwrap_err();
    assert!(matches!(err, MempoolError::Dust { index: 1, .. }), "{err}");
    assert!(err.to_string().contains("dust limit"));

    let mut unknown = tx_with_fee(&chain, &[input], 1, 300);
    unknown.inputs[0].prevout.index = 42;
    let err = mempool.add(unknown, &chain.utxos, NOW).unwrap_err();
    assert_eq!(err.code(), "bad-txns-inputs-missingorspent");
    assert!(mempool.is_empty());
}

#[test]
fn unconfirmed_chains_are_allowed_up_to_the_limit() {
    let chain = ChainBuilder::new(2);
    let config = MempoolConfig {
        max_ancestors: 5,
        ..MempoolConfig::default()
    };
    let mut mempool = pool(&chain, config);
    let mut input = chain.spendable()[0];
    let mut admitted = Vec::new();
    for depth in 1..=6 {
        let tx = tx_with_fee(&chain, &[input], 1, 400);
        let result = mempool.add(tx.clone(), &chain.utxos, NOW);
        if depth <= 5 {
            assert_eq!(result, Ok(tx.txid()), "depth {depth}");
            admitted.push(tx.txid());
        } else {
            assert_eq!(result, Err(MempoolError::TooLongChain { count: 6, limit: 5 }));
        }
        input = output_of(&tx, 0);
    }
    let root = mempool.info(&admitted[0]).unwrap();
    assert_eq!(root.descendants, 4);
    assert_eq!(mempool.info(&admitted[4]).unwrap().ancestors, 4);
    mempool.check_invariants().unwrap();
}

#[test]
fn replace_by_fee_needs_a_higher_fee_and_rate() {
    let chain = ChainBuilder::new(3);
    let mut mempool = pool(&chain, MempoolConfig::default());
    let input = chain.spendable()[0];
    let original = tx_with_fee(&chain, &[input], 1, 1_000);
    mempool.add(original.clone(), &chain.utxos, NOW).unwrap();
    let child = tx_with_fee(&chain, &[output_of(&original, 0)], 1, 1_000);
    mempool.add(child.clone(), &chain.utxos, NOW).unwrap();

    // Same fee: refused, naming the conflict and the fee that would work.
    let same = tx_with_fee(&chain, &[input], 2, 1_000);
    let err = mempool.add(same, &chain.utxos, NOW).unwrap_err();
    assert!(
        matches!(err, MempoolError::InsufficientReplacementFee { existing, required, .. }
            if existing == original.txid() && required == Amount::from_units(2_001)),
        "{err}"
    );
    assert_eq!(err.code(), "insufficient-fee");

    // More fee than the original and its child together, but a lower rate (much larger).
    let bloated = tx_with_fee(&chain, &[input], 60, 2_600);
    assert!(matches!(
        mempool.add(bloated, &chain.utxos, NOW),
        Err(MempoolError::InsufficientReplacementFee { .. })
    ));

    // An invalid replacement evicts nothing.
    let mut forged = tx_with_fee(&chain, &[input], 1, 5_000);
    forged.inputs[0].signature.0[0] ^= 1;
    assert_eq!(
        mempool.add(forged, &chain.utxos, NOW),
        Err(MempoolError::Invalid(TxError::BadSignature))
    );
    assert!(mempool.contains(&original.txid()) && mempool.contains(&child.txid()));

    let better = tx_with_fee(&chain, &[input], 1, 2_001);
    assert_eq!(mempool.add(better.clone(), &chain.utxos, NOW), Ok(better.txid()));
    assert!(!mempool.contains(&original.txid()));
    assert!(
        !mempool.contains(&child.txid()),
        "the replaced transaction's child goes too"
    );
    assert_eq!(mempool.spender_of(&input.0), Some(better.txid()));
    mempool.check_invariants().unwrap();
}

#[test]
fn a_replacement_may_not_spend_what_it_replaces() {
    let chain = ChainBuilder::new(3);
    let mut mempool = pool(&chain, MempoolConfig::default());
    let inputs = chain.spendable();
    let parent = tx_with_fee(&chain, &[inputs[0]], 1, 1_000);
    mempool.add(parent.clone(), &chain.utxos, NOW).unwrap();
    let sneaky = tx_with_fee(&chain, &[inputs[0], output_of(&parent, 0)], 1, 50_000);
    let err = mempool.add(sneaky, &chain.utxos, NOW).unwrap_err();
    assert_eq!(err, MempoolError::SpendsReplaced(parent.txid()));
}

#[test]
fn batch_admission_verifies_together_and_rejects_only_the_guilty() {
    let mut chain = ChainBuilder::new(300);
    let mut mempool = pool(&chain, MempoolConfig::default());
    let mut txs = chain.payments(300);
    txs[123].inputs[0].signature.0[9] ^= 1;
    // A child of the bad transaction, in the same batch.
    let child = tx_with_fee(&chain, &[output_of(&txs[123], 1)], 1, 500);
    let bad = txs[123].txid();
    txs.push(child.clone());
    // And one that is fine but refers to nothing.
    let mut orphan = tx_with_fee(&chain, &[output_of(&txs[5], 1)], 1, 500);
    orphan.inputs[0].prevout.index = 9;
    txs.push(orphan);
    let results = mempool.add_batch(txs, &chain.utxos, NOW);
    assert_eq!(results.len(), 302);
    assert_eq!(results[123], Err(MempoolError::Invalid(TxError::BadSignature)));
    assert_eq!(results[300], Err(MempoolError::ParentRejected(bad)));
    assert_eq!(
        results[301].as_ref().unwrap_err().code(),
        "bad-txns-inputs-missingorspent"
    );
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 299);
    assert_eq!(mempool.len(), 299);
    mempool.check_invariants().unwrap();
}

/// Copies of one transaction in a batch share its verdict: an invalid one relayed many times
/// is refused each time (each counts against the peer), a valid one is admitted once.
#[test]
fn copies_in_one_batch_share_the_first_ones_verdict() {
    let mut chain = ChainBuilder::new(2);
    let mut mempool = pool(&chain, MempoolConfig::default());
    let mut txs = chain.payments(2);
    txs[0].inputs[0].signature.0[9] ^= 1;
    let (bad, good) = (txs[0].clone(), txs[1].clone());
    let results = mempool.add_batch(
        vec![bad.clone(), good.clone(), bad.clone(), good.clone(), bad],
        &chain.utxos,
        NOW,
    );
    let refused = Err(MempoolError::Invalid(TxError::BadSignature));
    assert_eq!(results[0], refused);
    assert_eq!(results[2], refused);
    assert_eq!(results[4], refused);
    assert_eq!(results[1], Ok(good.txid()));
    assert_eq!(results[3], Err(MempoolError::AlreadyInPool(good.txid())));
    assert_eq!(mempool.len(), 1);
    mempool.check_invariants().unwrap();
}

#[test]
fn checking_without_admitting_gives_the_verdict_admission_would() {
    let mut chain = ChainBuilder::new(5);
    let mut mempool = pool(&chain, MempoolConfig::default());
    let txs = chain.payments(2);
    let (txid, size, fee) = mempool.check(&txs[0], &chain.utxos, NOW).unwrap();
    assert_eq!((txid, size, fee), (txs[0].txid(), 225, Amount::from_units(225)));
    assert!(mempool.is_empty(), "a check admits nothing");
    let mut forged = txs[1].clone();
    forged.inputs[0].signature.0[0] ^= 1;
    assert_eq!(
        mempool.check(&forged, &chain.utxos, NOW),
        Err(MempoolError::Invalid(TxError::BadSignature))
    );
    mempool.add(txs[0].clone(), &chain.utxos, NOW).unwrap();
    assert_eq!(
        mempool.check(&txs[0], &chain.utxos, NOW),
        Err(MempoolError::AlreadyInPool(txs[0].txid()))
    );
    mempool.check_invariants().unwrap();
}

#[test]
fn masternode_transactions_that_conflict_or_spend_locked_collateral_are_refused() {
    let mut chain = ChainBuilder::new(12);
    let mut mempool = pool(&chain, MempoolConfig::default());
    let operator = timecoin_test_utils::key("operator", 3);
    let service = std::net::SocketAddr::from(([127, 0, 0, 1], 30_200));
    let first = chain.registration(timecoin_primitives::Tier::Bronze, &operator, service);
    let second = {
        let mut other = chain.clone();
        for input in &first.inputs {
            other.utxos.remove(&input.prevout);
        }
        other.registration(timecoin_primitives::Tier::Bronze, &operator, service)
    };
    assert_eq!(mempool.add(first.clone(), &chain.view(), NOW), Ok(first.txid()));
    // The same operator key (and address) in a second registration waits for nothing: it
    // could never enter a block beside the first.
    let refused = mempool.add(second, &chain.view(), NOW).unwrap_err();
    assert_eq!(refused, MempoolError::MasternodeConflict(first.txid()));
    assert_eq!(refused.code(), "protx-dup");
    mempool.check_invariants().unwrap();

    // Once registered, a plain spend of the collateral is refused, and so is its unlock while
    // the masternode serves (`collateral.rs` follows an unlock to the height it is valid).
    let block = chain.build_block(vec![first.clone()]);
    chain.apply(&block);
    mempool.block_connected(&block, &chain.view()).unwrap();
    let collateral = chain.list.get(&first.txid()).unwrap().collateral.unwrap();
    let utxo = chain.utxos[&collateral];
    let back = timecoin_primitives::TxOutput {
        amount: utxo.output.amount.checked_sub(Amount::from_units(100_000)).unwrap(),
        address: utxo.output.address,
    };
    let plain = chain.spend(&[(collateral, utxo)], vec![back]);
    let error = mempool.add(plain, &chain.view(), NOW).unwrap_err();
    assert_eq!(error.code(), "bad-txns-collateral-locked", "{error}");
    let unlock = chain.unlock(first.txid());
    let error = mempool.add(unlock, &chain.view(), NOW).unwrap_err();
    assert_eq!(error.code(), "bad-protx-unlock-serving", "{error}");
}
