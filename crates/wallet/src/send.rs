//! Paying: choosing coins, the fee from the network's fee rate, change, and signing.
//!
//! Coins are taken largest first (fewest inputs, so the smallest fee). Change is an output
//! only when it is at least the dust limit; a smaller remainder goes to the fee rather than
//! creating an output nobody can spend at a profit. Sizes are exact, not estimated: every
//! input carries a 32-byte key and a 64-byte signature, so a transaction's size is known
//! before it is signed.

use thiserror::Error;
use timecoin_chain::FeeRate;
use timecoin_primitives::{
    Address, AddressPayload, Amount, BlockHash, Encode, OutPoint, Payload, SecretKey, Transaction, TxInput, TxOutput,
    payload_signature_message, sign_transaction,
};

/// An output the wallet can spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coin {
    /// Where it is.
    pub outpoint: OutPoint,
    /// Its value.
    pub value: Amount,
}

/// Why a payment could not be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SendError {
    /// Not enough spendable coins.
    #[error("insufficient funds: {needed} needed (payments and fee), {available} spendable")]
    InsufficientFunds {
        /// What the payments and fee need.
        needed: Amount,
        /// What the wallet can spend.
        available: Amount,
    },
    /// A payment is below the dust limit or zero.
    #[error("payment of {amount} is below the dust limit of {limit}")]
    Dust {
        /// The payment.
        amount: Amount,
        /// The limit.
        limit: Amount,
    },
    /// No payment was asked for.
    #[error("no payments given")]
    NoPayments,
    /// The amounts overflow.
    #[error("amounts out of range")]
    Overflow,
    /// The key of a chosen coin is not available.
    #[error("no key for coin {0}")]
    MissingKey(OutPoint),
}

/// A signed payment and what it costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The signed transaction.
    pub tx: Transaction,
    /// Its fee.
    pub fee: Amount,
    /// The change output's index, if there is one.
    pub change: Option<usize>,
}

/// What a payment needs: the chain (for signatures), its fee rate and dust limit.
#[derive(Debug, Clone, Copy)]
pub struct SendContext {
    /// The network's genesis hash, which signatures commit to.
    pub genesis: BlockHash,
    /// The fee rate to pay.
    pub fee_rate: FeeRate,
    /// The smallest output to create.
    pub dust: Amount,
}

fn sum(amounts: impl IntoIterator<Item = Amount>) -> Result<Amount, SendError> {
    Amount::checked_sum(amounts).ok_or(SendError::Overflow)
}

/// An input as it will be once signed (the signature's bytes do not change the size).
fn placeholder_input() -> TxInput {
    TxInput {
        prevout: OutPoint {
            txid: Default::default(),
            index: 0,
        },
        public_key: Default::default(),
        signature: Default::default(),
    }
}

/// The exact size of a transaction with `inputs` inputs and these outputs, memo and payload.
fn size_of(inputs: usize, outputs: &[TxOutput], memo: &[u8], payload: Option<&Payload>) -> usize {
    Transaction {
        version: Transaction::version_for(payload),
        inputs: vec![placeholder_input(); inputs],
        outputs: outputs.to_vec(),
        lock_time: 0,
        memo: memo.to_vec(),
        payload: payload.copied(),
    }
    .encoded_len()
}

/// A transaction to build: payments, coins that must be spent, a masternode payload.
#[derive(Debug, Clone, Copy)]
pub struct PayRequest<'a> {
    /// Outputs to pay, in order (a registration's collateral is one of them).
    pub payments: &'a [(Address, Amount)],
    /// Coins the transaction must spend, before any other (a collateral being unlocked).
    pub required: &'a [Coin],
    /// Where change goes.
    pub change_to: AddressPayload,
    /// The memo.
    pub memo: &'a [u8],
    /// A masternode payload; its signature is made with `payload_key`.
    pub payload: Option<Payload>,
    /// The key that signs the payload, when its kind carries a signature.
    pub payload_key: Option<&'a SecretKey>,
    /// The operator key a registration or an update gives the masternode, which signs its
    /// operator proof (none for an update that keeps the key).
    pub operator_key: Option<&'a SecretKey>,
}

/// Pays `payments` from `coins`, sending change to `change_to`, and signs the result with
/// the keys `key_of` gives for the coins chosen (only those are asked for).
pub fn pay(
    coins: &[Coin],
    payments: &[(Address, Amount)],
    change_to: AddressPayload,
    memo: &[u8],
    context: &SendContext,
    key_of: impl Fn(&Coin) -> Option<SecretKey>,
) -> Result<Payment, SendError> {
    let request = PayRequest {
        payments,
        required: &[],
        change_to,
        memo,
        payload: None,
        payload_key: None,
        operator_key: None,
    };
    build(coins, &request, context, key_of)
}

/// Builds and signs the transaction `request` describes from `coins` (plus the required
/// ones): coins largest first until payments and fee are covered, change above dust.
pub fn build(
    coins: &[Coin],
    request: &PayRequest<'_>,
    context: &SendContext,
    key_of: impl Fn(&Coin) -> Option<SecretKey>,
) -> Result<Payment, SendError> {
    let PayRequest {
        payments,
        required,
        change_to,
        memo,
        payload,
        payload_key,
        operator_key,
    } = *request;
    // The proof's place counts toward the size, and so the fee, before it is made (and an
    // update's txid covers whether it carries one).
    let payload = payload.map(|mut payload| {
        if operator_key.is_some() {
            payload.set_operator_proof(Default::default());
        }
        payload
    });
    // A masternode payload alone is a transaction worth making (it pays only the fee).
    if payments.is_empty() && required.is_empty() && payload.is_none() {
        return Err(SendError::NoPayments);
    }
    if let Some((_, amount)) = payments.iter().find(|(_, a)| *a < context.dust || *a == Amount::ZERO) {
        return Err(SendError::Dust {
            amount: *amount,
            limit: context.dust,
        });
    }
    let mut outputs: Vec<TxOutput> = payments
        .iter()
        .map(|(address, amount)| TxOutput {
            amount: *amount,
            address: address.payload,
        })
        .collect();
    let target = sum(payments.iter().map(|(_, a)| *a))?;
    let available = sum(coins.iter().chain(required).map(|c| c.value))?;
    let mut ordered: Vec<&Coin> = coins
        .iter()
        .filter(|c| !required.iter().any(|r| r.outpoint == c.outpoint))
        .collect();
    ordered.sort_by_key(|coin| std::cmp::Reverse(coin.value));
    let ordered: Vec<&Coin> = required.iter().chain(ordered).collect();
    let payload_ref = payload.as_ref();
    let change_output = TxOutput {
        amount: Amount::ZERO,
        address: change_to,
    };
    let with_change: Vec<TxOutput> = outputs.iter().copied().chain([change_output]).collect();
    let mut chosen: Vec<&Coin> = Vec::new();
    let mut gathered = Amount::ZERO;
    for (position, coin) in ordered.iter().enumerate() {
        chosen.push(coin);
        gathered = gathered.checked_add(coin.value).ok_or(SendError::Overflow)?;
        // Every required coin is in before the sums are judged.
        if position + 1 < required.len() {
            continue;
        }
        let fee_with_change = context
            .fee_rate
            .fee_for(size_of(chosen.len(), &with_change, memo, payload_ref));
        let fee_alone = context
            .fee_rate
            .fee_for(size_of(chosen.len(), &outputs, memo, payload_ref));
        let needed_with_change = target.checked_add(fee_with_change).ok_or(SendError::Overflow)?;
        let needed_alone = target.checked_add(fee_alone).ok_or(SendError::Overflow)?;
        let (fee, change) = match gathered.checked_sub(needed_with_change) {
            Some(change) if change >= context.dust => (fee_with_change, Some(change)),
            // Too little left for a change output worth having: it goes to the fee (a
            // transaction needs at least one output, though).
            _ if gathered >= needed_alone && !outputs.is_empty() => {
                (gathered.checked_sub(target).ok_or(SendError::Overflow)?, None)
            }
            _ => continue,
        };
        let change_index = change.map(|amount| {
            outputs.push(TxOutput {
                amount,
                address: change_output.address,
            });
            outputs.len() - 1
        });
        let keys: Vec<SecretKey> = chosen
            .iter()
            .map(|coin| key_of(coin).ok_or(SendError::MissingKey(coin.outpoint)))
            .collect::<Result<_, _>>()?;
        let mut tx = Transaction {
            version: Transaction::VERSION,
            inputs: chosen
                .iter()
                .zip(&keys)
                .map(|(coin, key)| TxInput {
                    prevout: coin.outpoint,
                    public_key: key.public_key(),
                    signature: Default::default(),
                })
                .collect(),
            outputs,
            lock_time: 0,
            memo: memo.to_vec(),
            payload,
        };
        tx.version = Transaction::version_for(tx.payload.as_ref());
        if let Some(key) = operator_key {
            let txid = tx.txid();
            let message = match &tx.payload {
                Some(Payload::Register(r)) => Some(r.operator_proof_message(&context.genesis, txid)),
                Some(Payload::Update(u)) => Some(u.operator_proof_message(&context.genesis)),
                _ => None,
            };
            if let (Some(message), Some(payload)) = (message, tx.payload.as_mut()) {
                payload.set_operator_proof(key.sign(&message.0));
            }
        }
        if let Some(key) = payload_key {
            let message = payload_signature_message(&context.genesis, &tx.txid());
            if let Some(payload) = tx.payload.as_mut() {
                payload.set_signature(key.sign(&message.0));
            }
        }
        let keys: Vec<&SecretKey> = keys.iter().collect();
        let amounts: Vec<Amount> = chosen.iter().map(|c| c.value).collect();
        sign_transaction(&mut tx, &context.genesis, &keys, &amounts);
        return Ok(Payment {
            tx,
            fee,
            change: change_index,
        });
    }
    let fee = context
        .fee_rate
        .fee_for(size_of(coins.len().max(1), &with_change, memo, payload_ref));
    Err(SendError::InsufficientFunds {
        needed: target.checked_add(fee).ok_or(SendError::Overflow)?,
        available,
    })
}
