//! Signing a transaction's inputs with the keys of their coins (`sign_inputs`), as a wallet
//! and an offline signer do.

use timecoin_primitives::{
    AddressPayload, Amount, BlockHash, Hash256, InputSignError, OutPoint, SecretKey, Transaction, TxId, TxInput,
    TxOutput, sign_inputs, signature_message,
};

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed([n; 32])
}

fn coin(owner: &SecretKey, time: u64) -> TxOutput {
    TxOutput {
        amount: Amount::from_time(time).unwrap(),
        address: AddressPayload::from_public_key(&owner.public_key()),
    }
}

fn outpoint(n: u8) -> OutPoint {
    OutPoint {
        txid: TxId(Hash256([n; 32])),
        index: u32::from(n),
    }
}

/// A payment spending one coin of key 1 and one of key 2.
fn two_party() -> (Transaction, Vec<Option<TxOutput>>) {
    let input = |n| TxInput {
        prevout: outpoint(n),
        public_key: Default::default(),
        signature: Default::default(),
    };
    let tx = Transaction {
        version: Transaction::VERSION,
        inputs: vec![input(1), input(2)],
        outputs: vec![coin(&key(3), 14)],
        lock_time: 0,
        memo: Vec::new(),
        payload: None,
    };
    (tx, vec![Some(coin(&key(1), 10)), Some(coin(&key(2), 5))])
}

const GENESIS: BlockHash = BlockHash(Hash256([7; 32]));

/// Every input's signature verifies, by the key its coin's address names.
fn verifies(tx: &Transaction, coins: &[Option<TxOutput>]) -> bool {
    let amounts: Vec<Amount> = coins.iter().map(|c| c.unwrap().amount).collect();
    let message = signature_message(&GENESIS, &tx.txid(), &amounts);
    tx.inputs.iter().zip(coins).all(|(input, coin)| {
        AddressPayload::from_public_key(&input.public_key) == coin.unwrap().address
            && input.public_key.verify(&message.0, &input.signature).is_ok()
    })
}

fn holding<'a>(keys: &'a [SecretKey]) -> impl FnMut(&AddressPayload) -> Option<SecretKey> + 'a {
    |address| {
        keys.iter()
            .find(|k| AddressPayload::from_public_key(&k.public_key()) == *address)
            .cloned()
    }
}

#[test]
fn all_keys_make_a_complete_transaction() {
    let (mut tx, coins) = two_party();
    let errors = sign_inputs(&mut tx, &GENESIS, &coins, holding(&[key(2), key(9), key(1)]));
    assert!(errors.is_empty(), "{errors:?}");
    assert!(verifies(&tx, &coins));
}

#[test]
fn an_unknown_coin_leaves_the_transaction_unsigned() {
    let (mut tx, mut coins) = two_party();
    coins[1] = None;
    let before = tx.clone();
    let errors = sign_inputs(&mut tx, &GENESIS, &coins, holding(&[key(1), key(2)]));
    assert_eq!(errors, vec![(1, InputSignError::UnknownCoin(outpoint(2)))]);
    assert_eq!(tx, before, "the message commits to every amount: nothing can be signed");
}

#[test]
fn signers_in_turn_complete_once_the_first_signs_after_the_last_key_was_filled() {
    let (mut tx, coins) = two_party();
    let first = sign_inputs(&mut tx, &GENESIS, &coins, holding(&[key(1)]));
    assert_eq!(first, vec![(1, InputSignError::Unsigned(outpoint(2)))]);
    // The second signer's public key changes the txid: the first signature no longer holds,
    // and is reported rather than passed off as complete.
    let second = sign_inputs(&mut tx, &GENESIS, &coins, holding(&[key(2)]));
    assert_eq!(second, vec![(0, InputSignError::Unsigned(outpoint(1)))]);
    let third = sign_inputs(&mut tx, &GENESIS, &coins, holding(&[key(1)]));
    assert!(third.is_empty(), "{third:?}");
    assert!(verifies(&tx, &coins));
}

#[test]
fn a_key_for_another_address_signs_nothing() {
    let (mut tx, coins) = two_party();
    let before = tx.clone();
    let errors = sign_inputs(&mut tx, &GENESIS, &coins, holding(&[key(3)]));
    assert_eq!(
        errors,
        vec![
            (0, InputSignError::Unsigned(outpoint(1))),
            (1, InputSignError::Unsigned(outpoint(2)))
        ]
    );
    assert_eq!(tx, before);
}
