//! The benchmark's transactions: sender keys funded from the genesis allocation by a two-level
//! fan-out, then one signed 1-input, 2-output payment per funded coin.
//!
//! Every payment spends a coin of its own key, so a block's signatures come from as many
//! keys as it has payments (batch verification gains nothing from repeated keys).

use anyhow::{Result, anyhow, bail};
use rayon::prelude::*;
use timecoin_chain::Genesis;
use timecoin_primitives::{
    AddressPayload, Amount, BlockHash, Encode, OutPoint, SecretKey, Transaction, TxInput, TxOutput, sign_transaction,
};

use timecoin_node::keys;

/// The context that the bench's keys are derived under.
const KEY_CONTEXT: &str = "timecoin bench";

/// What each payment coin holds: 0.1 TIME.
const COIN_UNITS: u64 = 10_000_000;
/// What each payment pays its recipient: 0.01 TIME (the rest, less the fee, is change).
const PAYMENT_UNITS: u64 = 1_000_000;
/// Payment coins created by one fan-out transaction (about 160 kB).
const COINS_PER_FANOUT: usize = 4_000;
/// Recipients that payments go to, in turn.
const RECIPIENTS: u64 = 64;

/// An output the bench can spend, with its key.
#[derive(Clone)]
pub(crate) struct Coin {
    pub(crate) outpoint: OutPoint,
    pub(crate) amount: Amount,
    pub(crate) key: SecretKey,
}

/// The fan-out: one transaction from the funding coin to intermediate keys, then one per
/// intermediate key to the payment coins.
pub(crate) struct Funding {
    pub(crate) first: Transaction,
    pub(crate) second: Vec<Transaction>,
    pub(crate) coins: Vec<Coin>,
}

/// The fee a transaction of `size` bytes pays: twice the minimum rate.
fn fee(genesis: &Genesis, size: usize) -> u64 {
    genesis.params.min_fee_rate.fee_for(size).units().saturating_mul(2)
}

/// A transaction spending `coin` to `outputs`, signed.
fn spend(genesis_hash: &BlockHash, coin: &Coin, outputs: Vec<TxOutput>) -> Transaction {
    let mut tx = Transaction {
        version: Transaction::VERSION,
        inputs: vec![TxInput {
            prevout: coin.outpoint,
            public_key: coin.key.public_key(),
            signature: Default::default(),
        }],
        outputs,
        lock_time: 0,
        memo: Vec::new(),
        payload: None,
    };
    sign_transaction(&mut tx, genesis_hash, &[&coin.key], &[coin.amount]);
    tx
}

fn output(key: &SecretKey, units: u64) -> TxOutput {
    TxOutput {
        amount: Amount::from_units(units),
        address: AddressPayload::from_public_key(&key.public_key()),
    }
}

/// The genesis output that pays `key`, as a coin.
pub(crate) fn genesis_coin(genesis: &Genesis, key: &SecretKey) -> Result<Coin> {
    let reward = genesis
        .block
        .transactions
        .first()
        .ok_or_else(|| anyhow!("the genesis block has no transaction"))?;
    let address = AddressPayload::from_public_key(&key.public_key());
    let (index, found) = reward
        .outputs
        .iter()
        .enumerate()
        .find(|(_, o)| o.address == address)
        .ok_or_else(|| anyhow!("the genesis allocates nothing to the funding key"))?;
    Ok(Coin {
        outpoint: OutPoint {
            txid: reward.txid(),
            index: u32::try_from(index)?,
        },
        amount: found.amount,
        key: key.clone(),
    })
}

/// Plans and signs the fan-out from `funding` to `count` payment coins.
pub(crate) fn fund(genesis: &Genesis, funding: &Coin, count: usize) -> Result<Funding> {
    let genesis_hash = genesis.hash();
    let intermediates = count.div_ceil(COINS_PER_FANOUT);
    let coin_keys: Vec<SecretKey> = (0..count as u64)
        .into_par_iter()
        .map(|i| keys::derived(KEY_CONTEXT, "payer", i))
        .collect();
    // Each second-level transaction creates its share of coins and pays its own fee.
    let shares: Vec<&[SecretKey]> = coin_keys.chunks(COINS_PER_FANOUT).collect();
    let fanout_fee = |outputs: usize| {
        let size = Transaction {
            version: Transaction::VERSION,
            inputs: vec![TxInput {
                prevout: funding.outpoint,
                public_key: funding.key.public_key(),
                signature: Default::default(),
            }],
            outputs: vec![output(&funding.key, 0); outputs],
            lock_time: 0,
            memo: Vec::new(),
            payload: None,
        }
        .encoded_len();
        fee(genesis, size)
    };
    let intermediate_keys: Vec<SecretKey> = (0..intermediates as u64)
        .map(|j| keys::derived(KEY_CONTEXT, "fan-out", j))
        .collect();
    let mut first_outputs: Vec<TxOutput> = shares
        .iter()
        .zip(&intermediate_keys)
        .map(|(share, key)| output(key, share.len() as u64 * COIN_UNITS + fanout_fee(share.len())))
        .collect();
    let needed: u64 = first_outputs.iter().map(|o| o.amount.units()).sum::<u64>() + fanout_fee(intermediates + 1);
    let change = funding.amount.units().checked_sub(needed).ok_or_else(|| {
        anyhow!(
            "{count} payments need {} TIME, the funding key holds {}",
            Amount::from_units(needed),
            funding.amount
        )
    })?;
    first_outputs.push(output(&funding.key, change));
    let first = spend(&genesis_hash, funding, first_outputs);
    let first_txid = first.txid();
    let second: Vec<Transaction> = shares
        .par_iter()
        .zip(&intermediate_keys)
        .enumerate()
        .map(|(j, (share, key))| {
            let coin = Coin {
                outpoint: OutPoint {
                    txid: first_txid,
                    index: j as u32,
                },
                amount: first.outputs.get(j).map_or(Amount::ZERO, |o| o.amount),
                key: key.clone(),
            };
            spend(
                &genesis_hash,
                &coin,
                share.iter().map(|k| output(k, COIN_UNITS)).collect(),
            )
        })
        .collect();
    let coins = second
        .iter()
        .zip(&shares)
        .flat_map(|(tx, share)| {
            let txid = tx.txid();
            share.iter().enumerate().map(move |(index, key)| Coin {
                outpoint: OutPoint {
                    txid,
                    index: index as u32,
                },
                amount: Amount::from_units(COIN_UNITS),
                key: key.clone(),
            })
        })
        .collect();
    Ok(Funding { first, second, coins })
}

/// One signed payment per coin: 0.01 TIME to one of the recipients, the rest back as change.
pub(crate) fn payments(genesis: &Genesis, coins: &[Coin]) -> Result<Vec<Transaction>> {
    let genesis_hash = genesis.hash();
    let recipients: Vec<SecretKey> = (0..RECIPIENTS)
        .map(|i| keys::derived(KEY_CONTEXT, "recipient", i))
        .collect();
    let first = coins.first().ok_or_else(|| anyhow!("no coins to pay from"))?;
    let template = spend(&genesis_hash, first, vec![output(&first.key, 0), output(&first.key, 0)]);
    let change = COIN_UNITS
        .checked_sub(PAYMENT_UNITS + fee(genesis, template.encoded_len()))
        .filter(|c| *c >= genesis.params.dust_limit.units());
    let Some(change) = change else {
        bail!("a payment's fee leaves no change above the dust limit");
    };
    Ok(coins
        .par_iter()
        .enumerate()
        .map(|(i, coin)| {
            let recipient = recipients.get(i % recipients.len()).unwrap_or(&coin.key);
            spend(
                &genesis_hash,
                coin,
                vec![output(recipient, PAYMENT_UNITS), output(&coin.key, change)],
            )
        })
        .collect())
}
