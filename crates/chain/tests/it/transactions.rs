use std::collections::HashMap;

use proptest::prelude::*;
use timecoin_chain::{ChainParams, TxContext, TxError, Utxo, check_transaction, verify_batch, verify_signatures};
use timecoin_primitives::{Amount, BlockHash, Hash256, Network, OutPoint, Transaction, TxOutput};
use timecoin_test_utils::{ChainBuilder, sign};

fn one_payment() -> (ChainBuilder, Transaction) {
    let mut chain = ChainBuilder::new(4);
    let tx = chain.payments(1).remove(0);
    (chain, tx)
}

#[test]
fn a_signed_payment_is_valid_and_its_fee_is_reported() {
    let (chain, tx) = one_payment();
    let checked = check_transaction(&tx, &chain.utxos, &chain.tx_context()).unwrap();
    assert_eq!(checked.fee, Amount::from_units(225));
    assert_eq!(checked.size, 225);
    assert_eq!(checked.txid, tx.txid());
}

/// Re-signs a modified payment so that only the intended rule is broken.
fn resign(chain: &ChainBuilder, tx: &mut Transaction) {
    let keys: Vec<_> = tx
        .inputs
        .iter()
        .map(|i| chain.key_for(&chain.utxos[&i.prevout].output.address).unwrap().clone())
        .collect();
    let amounts: Vec<_> = tx
        .inputs
        .iter()
        .map(|i| chain.utxos[&i.prevout].output.amount)
        .collect();
    let refs: Vec<_> = keys.iter().collect();
    sign(tx, &chain.genesis_hash(), &refs, &amounts);
}

#[test]
fn every_rule_has_its_own_error_and_code() {
    let (chain, tx) = one_payment();
    let check = |tx: &Transaction| check_transaction(tx, &chain.utxos, &chain.tx_context()).unwrap_err();

    let mut t = tx.clone();
    t.version = 2;
    assert_eq!(check(&t), TxError::Version(2));

    let mut t = tx.clone();
    t.inputs.clear();
    assert_eq!(check(&t), TxError::NoInputs);

    let mut t = tx.clone();
    t.outputs.clear();
    assert_eq!(check(&t), TxError::NoOutputs);

    let mut t = tx.clone();
    t.inputs.push(t.inputs[0]);
    assert_eq!(check(&t), TxError::DuplicateInput(t.inputs[0].prevout));

    let mut t = tx.clone();
    t.outputs[0].amount = Amount::ZERO;
    assert_eq!(check(&t), TxError::ZeroOutput(0));

    let mut t = tx.clone();
    t.outputs[0].amount = Amount::from_units(u64::MAX);
    assert_eq!(check(&t), TxError::OutputsTooLarge);

    let mut t = tx.clone();
    t.inputs[0].prevout.index = 99;
    assert_eq!(check(&t), TxError::MissingInput(t.inputs[0].prevout));

    let mut t = tx.clone();
    t.inputs[0].public_key = timecoin_test_utils::key("stranger", 0).public_key();
    assert_eq!(check(&t), TxError::WrongKey { index: 0 });

    let mut t = tx.clone();
    t.lock_time = 5;
    resign(&chain, &mut t);
    assert_eq!(
        check(&t),
        TxError::NotFinal {
            lock_time: 5,
            height: 1
        }
    );

    let mut t = tx.clone();
    t.outputs[1].amount = Amount::from_time(999).unwrap();
    resign(&chain, &mut t);
    assert!(matches!(check(&t), TxError::InputsBelowOutputs { .. }));

    let mut t = tx.clone();
    t.outputs[1].amount = t.outputs[1].amount.checked_add(Amount::from_units(1)).unwrap();
    resign(&chain, &mut t);
    assert_eq!(
        check(&t),
        TxError::FeeTooLow {
            fee: Amount::from_units(224),
            required: Amount::from_units(225),
            size: 225
        }
    );

    let mut t = tx.clone();
    t.memo = b"changed after signing".to_vec();
    t.outputs[1].amount = t.outputs[1].amount.checked_sub(Amount::from_units(100)).unwrap();
    assert_eq!(check(&t), TxError::BadSignature);

    let mut t = tx.clone();
    t.memo = vec![0; 300];
    let small = ChainParams {
        max_tx_bytes: 400,
        ..chain.params().clone()
    };
    let small_ctx = TxContext {
        params: &small,
        ..chain.tx_context()
    };
    assert_eq!(
        check_transaction(&t, &chain.utxos, &small_ctx).unwrap_err(),
        TxError::TooLarge { size: 527, max: 400 }
    );

    let codes: std::collections::HashSet<_> = [
        TxError::Version(2),
        TxError::NoInputs,
        TxError::NoOutputs,
        TxError::BadSignature,
        TxError::FeeTooLow {
            fee: Amount::ZERO,
            required: Amount::ZERO,
            size: 0,
        },
    ]
    .iter()
    .map(TxError::code)
    .collect();
    assert_eq!(codes.len(), 5);
}

#[test]
fn a_signature_for_another_network_is_invalid() {
    let (chain, tx) = one_payment();
    let other_net = TxContext {
        genesis_hash: BlockHash(Hash256([9; 32])),
        ..chain.tx_context()
    };
    assert_eq!(
        check_transaction(&tx, &chain.utxos, &other_net).unwrap_err(),
        TxError::BadSignature
    );
    assert_eq!(ChainParams::for_network(Network::Local).network, Network::Local);
}

#[test]
fn a_signature_commits_to_the_spent_amount() {
    // The same outpoint with a different amount (as on a fork the signer did not see).
    let (chain, tx) = one_payment();
    let mut utxos: HashMap<OutPoint, Utxo> = chain.utxos.clone();
    let u = utxos.get_mut(&tx.inputs[0].prevout).unwrap();
    u.output.amount = u.output.amount.checked_add(Amount::COIN).unwrap();
    assert_eq!(
        check_transaction(&tx, &utxos, &chain.tx_context()).unwrap_err(),
        TxError::BadSignature
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20))]

    /// Batch and parallel verification agree with one-by-one verification on every mix of
    /// valid and corrupted signatures.
    #[test]
    fn batch_agrees_with_single(corrupt in prop::collection::vec(any::<bool>(), 1..300)) {
        let mut chain = ChainBuilder::new(corrupt.len());
        let mut items = Vec::new();
        for (tx, bad) in chain.payments(corrupt.len()).into_iter().zip(&corrupt) {
            let checked = timecoin_chain::check_tx_contextual(&tx, tx.txid(), 225, &chain.utxos, &chain.tx_context()).unwrap();
            let mut item = checked.sig_items[0];
            if *bad {
                item.signature.0[5] ^= 1;
            }
            items.push(item);
        }
        let single_ok = items.iter().all(|i| i.key.verify(&i.message.0, &i.signature).is_ok());
        prop_assert_eq!(verify_batch(&items).is_ok(), single_ok);
        prop_assert_eq!(verify_signatures(&items).is_ok(), single_ok);
    }
}

#[test]
fn outputs_are_summed_with_overflow_checks() {
    let (chain, mut tx) = one_payment();
    tx.outputs = vec![
        TxOutput {
            amount: Amount::MAX_MONEY,
            address: tx.outputs[0].address,
        },
        TxOutput {
            amount: Amount::from_units(1),
            address: tx.outputs[0].address,
        },
    ];
    assert_eq!(
        check_transaction(&tx, &chain.utxos, &chain.tx_context()).unwrap_err(),
        TxError::OutputsTooLarge
    );
}

/// A transaction naming one coin a thousand times, each input signed, must cost no signature
/// check before its duplicate inputs are found: the stateless checks come first.
#[test]
fn preverifying_a_transaction_with_duplicate_inputs_checks_no_signature() {
    let (chain, tx) = one_payment();
    let mut flood = tx.clone();
    for _ in 0..1_000 {
        flood.inputs.push(tx.inputs[0]);
    }
    resign(&chain, &mut flood);
    let cache = timecoin_chain::SignatureCache::new(10_000);
    cache.preverify(std::slice::from_ref(&flood), &chain.utxos, &chain.tx_context());
    assert_eq!(
        cache.len(),
        0,
        "no signature of a transaction with duplicate inputs is checked"
    );
    // The honest payment's is.
    cache.preverify(std::slice::from_ref(&tx), &chain.utxos, &chain.tx_context());
    assert_eq!(cache.len(), 1);
}
