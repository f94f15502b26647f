//! Signing a raw transaction with given keys (`signrawtransactionwithkey`), apart from any
//! node: the API runs it with the node's coins behind `prevtxs`, and `time-cli -offline`
//! runs it on a machine with no node, from `prevtxs` alone.
//!
//! Bitcoin Core's parameters and answer: the hex, the keys (here 64 hex characters, an
//! Ed25519 seed, as in a `*.key` file), the spent outputs (`prevtxs`, here each with the
//! `address` and `amount` of the coin, which the signature commits to), and
//! `{hex, complete, errors}`.

use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{Value, json};
use timecoin_primitives::{
    AddressPayload, BlockHash, Encode, InputSignError, Network, OutPoint, SecretKey, Transaction, TxOutput, sign_inputs,
};

use crate::codes;
use crate::error::RpcError;
use crate::params::{address_of, amount_value, arg, decode_hex, invalid, optional_arg};

/// One spent output as `prevtxs` describes it.
#[derive(serde::Deserialize)]
struct PrevTx {
    txid: String,
    vout: u32,
    address: String,
    amount: Value,
}

/// Keys given at most: more is no one's use, and each costs a derivation.
const MAX_KEYS: usize = 1_000;

/// `signrawtransactionwithkey` on its parameters (`hexstring`, `privkeys`, `prevtxs`,
/// `sighashtype`), for the network whose block 0 is `genesis`. `coin` looks up an outpoint
/// where `prevtxs` does not describe it (`None`: not known); a coin `prevtxs` describes and
/// `coin` knows must agree.
pub fn sign_with_keys(
    args: &[Value],
    genesis: &BlockHash,
    network: Network,
    mut coin: impl FnMut(&OutPoint) -> Result<Option<TxOutput>, ErrorObjectOwned>,
) -> Result<Value, ErrorObjectOwned> {
    let hex: String = arg(args, 0, "hexstring")?;
    let mut tx: Transaction = decode_hex(&hex, "TX")?;
    let texts: Vec<String> = arg(args, 1, "privkeys")?;
    if texts.len() > MAX_KEYS {
        return Err(invalid(format!("at most {MAX_KEYS} keys")));
    }
    let mut keys = std::collections::HashMap::with_capacity(texts.len());
    for text in &texts {
        let mut seed = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut seed).map_err(|_| {
            ErrorObjectOwned::from(RpcError::new(
                codes::INVALID_ADDRESS_OR_KEY,
                "Invalid private key: a key is 64 hex characters",
            ))
        })?;
        let key = SecretKey::from_seed(seed);
        keys.insert(AddressPayload::from_public_key(&key.public_key()), key);
    }
    let prevtxs: Vec<PrevTx> = optional_arg(args, 2, "prevtxs")?.unwrap_or_default();
    let mut described = std::collections::HashMap::with_capacity(prevtxs.len());
    for prev in prevtxs {
        let outpoint = OutPoint {
            txid: prev
                .txid
                .parse()
                .map_err(|e| invalid(format!("prevtxs: txid {}: {e}", prev.txid)))?,
            index: prev.vout,
        };
        let output = TxOutput {
            amount: timecoin_primitives::Amount::from_units(amount_value(&prev.amount, "prevtxs amount")?),
            address: address_of(&prev.address, network)?.payload,
        };
        described.insert(outpoint, output);
    }
    match optional_arg::<String>(args, 3, "sighashtype")?.as_deref() {
        None | Some("ALL" | "DEFAULT") => {}
        Some(other) => {
            return Err(invalid(format!(
                "Signature hash type {other} is not supported: every input signs the whole transaction (ALL)"
            )));
        }
    }
    let mut coins = Vec::with_capacity(tx.inputs.len());
    for input in &tx.inputs {
        let given = described.get(&input.prevout).copied();
        let known = coin(&input.prevout)?;
        if let (Some(given), Some(known)) = (given, known)
            && given != known
        {
            return Err(invalid(format!(
                "prevtxs: {} differs from the coin this node holds (address or amount)",
                input.prevout
            )));
        }
        coins.push(given.or(known));
    }
    let errors = sign_inputs(&mut tx, genesis, &coins, |address| keys.get(address).cloned());
    Ok(sign_result(&tx, &errors))
}

/// Bitcoin Core's answer to a signing method: the transaction as signed so far, whether every
/// input is signed, and why those that are not are not.
pub(crate) fn sign_result(tx: &Transaction, errors: &[(usize, InputSignError)]) -> Value {
    let errors: Vec<Value> = errors
        .iter()
        .filter_map(|(index, error)| {
            let input = tx.inputs.get(*index)?;
            Some(json!({
                "txid": input.prevout.txid.to_string(),
                "vout": input.prevout.index,
                "error": error.to_string(),
            }))
        })
        .collect();
    json!({
        "hex": hex::encode(tx.to_bytes()),
        "complete": errors.is_empty(),
        "errors": errors,
    })
}
