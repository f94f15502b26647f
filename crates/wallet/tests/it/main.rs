//! Payments built by the wallet, judged by the real mempool (chain rules, fee and dust
//! policy, signatures).

use timecoin_mempool::{Mempool, MempoolConfig};
use timecoin_primitives::{Address, Amount, Encode, Network};
use timecoin_test_utils::ChainBuilder;
use timecoin_wallet::{Coin, SendContext, SendError, pay};

const NOW: u64 = 1_790_000_100_000;

fn coins(chain: &ChainBuilder) -> Vec<Coin> {
    chain
        .spendable()
        .into_iter()
        .map(|(outpoint, utxo)| Coin {
            outpoint,
            value: utxo.output.amount,
        })
        .collect()
}

/// The key of a coin the builder made.
fn key_of(chain: &ChainBuilder) -> impl Fn(&Coin) -> Option<timecoin_primitives::SecretKey> + '_ {
    |coin| {
        let utxo = chain.utxos.get(&coin.outpoint)?;
        chain.key_for(&utxo.output.address).cloned()
    }
}

fn pool(chain: &ChainBuilder) -> Mempool {
    Mempool::new(
        chain.params().clone(),
        chain.genesis_hash(),
        MempoolConfig::default(),
        chain.tip.height,
    )
}

fn context(chain: &ChainBuilder) -> SendContext {
    SendContext {
        genesis: chain.genesis_hash(),
        fee_rate: chain.params().min_fee_rate,
        dust: chain.params().dust_limit,
    }
}

/// A fresh address to pay and a fresh change address.
fn recipient_and_change(chain: &mut ChainBuilder) -> (Address, timecoin_primitives::AddressPayload) {
    let to = Address {
        network: Network::Local,
        payload: chain.fresh_key(),
    };
    (to, chain.fresh_key())
}

fn time(n: u64) -> Amount {
    Amount::from_time(n).unwrap()
}

#[test]
fn payments_with_change_are_admitted_and_balance_exactly() {
    let mut chain = ChainBuilder::new(3);
    let coins = coins(&chain);
    let (to, change) = recipient_and_change(&mut chain);
    let payment = pay(
        &coins,
        &[(to, time(7))],
        change,
        b"rent",
        &context(&chain),
        key_of(&chain),
    )
    .unwrap();
    let tx = &payment.tx;
    assert_eq!(tx.outputs[0].amount, time(7));
    let change_index = payment.change.expect("a large coin leaves change");
    assert_eq!(tx.outputs[change_index].address, change);
    let spent: Vec<Amount> = tx
        .inputs
        .iter()
        .map(|i| chain.utxos[&i.prevout].output.amount)
        .collect();
    let inputs = Amount::checked_sum(spent).unwrap();
    let outputs = Amount::checked_sum(tx.outputs.iter().map(|o| o.amount)).unwrap();
    assert_eq!(inputs.checked_sub(outputs), Some(payment.fee));
    assert_eq!(payment.fee, chain.fee_of(tx, &Default::default()));
    let mut mempool = pool(&chain);
    assert_eq!(mempool.add(tx.clone(), &chain.utxos, NOW), Ok(tx.txid()));
}

#[test]
fn a_remainder_below_the_dust_limit_goes_to_the_fee() {
    let mut chain = ChainBuilder::new(1);
    let all = coins(&chain);
    let coin = all[0];
    let ctx = context(&chain);
    let (to, change) = recipient_and_change(&mut chain);
    // Find the fee of a one-in, one-out payment, then pay everything but the fee and 500
    // units (below the 1,000-unit dust limit).
    let probe = pay(
        std::slice::from_ref(&coin),
        &[(to, time(1))],
        change,
        b"",
        &ctx,
        key_of(&chain),
    )
    .unwrap();
    let change_size = probe.tx.outputs[1].encoded_len();
    let one_output_fee = ctx.fee_rate.fee_for(ChainBuilder::size_of(&probe.tx) - change_size);
    let amount = Amount::from_units(coin.value.units() - one_output_fee.units() - 500);
    let payment = pay(
        std::slice::from_ref(&coin),
        &[(to, amount)],
        change,
        b"",
        &ctx,
        key_of(&chain),
    )
    .unwrap();
    assert_eq!(payment.change, None);
    assert_eq!(payment.tx.outputs.len(), 1);
    assert_eq!(payment.fee.units(), one_output_fee.units() + 500);
    let mut mempool = pool(&chain);
    assert!(mempool.add(payment.tx.clone(), &chain.utxos, NOW).is_ok());
}

#[test]
fn insufficient_funds_and_dust_payments_are_refused_with_the_figures() {
    let mut chain = ChainBuilder::new(2);
    let coins = coins(&chain);
    let (to, change) = recipient_and_change(&mut chain);
    let total = Amount::checked_sum(coins.iter().map(|c| c.value)).unwrap();
    let error = pay(&coins, &[(to, total)], change, b"", &context(&chain), key_of(&chain)).unwrap_err();
    assert!(
        matches!(error, SendError::InsufficientFunds { available, needed } if available == total && needed > total),
        "{error}"
    );
    let error = pay(
        &coins,
        &[(to, Amount::from_units(999))],
        change,
        b"",
        &context(&chain),
        key_of(&chain),
    )
    .unwrap_err();
    assert!(matches!(error, SendError::Dust { .. }), "{error}");
    assert_eq!(
        pay(&coins, &[], change, b"", &context(&chain), key_of(&chain)),
        Err(SendError::NoPayments)
    );
}
