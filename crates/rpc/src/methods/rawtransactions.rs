//! The `Rawtransactions` methods: transactions as hex, looked up, decoded, tested against
//! the mempool's rules and submitted to it.

use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::server::RpcModule;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{Value, json};
use timecoin_primitives::{Amount, Encode, OutPoint, Transaction, TxOutput};

use super::Context;
use crate::codes;
use crate::error::RpcError;
use crate::params::{decode_hex, invalid, param, txid_param};
use crate::render::{extend, time_value, transaction_json};

/// Registers `getrawtransaction`, `sendrawtransaction`, `decoderawtransaction`, `testmempoolaccept`,
/// `signrawtransactionwithkey`.
pub(super) fn register(module: &mut RpcModule<Context>) -> Result<(), RegisterMethodError> {
    module.register_blocking_method("signrawtransactionwithkey", |params, context, _| {
        let args: Vec<Value> = params.parse().unwrap_or_default();
        let genesis = context
            .backend
            .block_hash(0)?
            .ok_or_else(|| invalid("this node has no block 0"))?;
        let network = context.backend.chain_info()?.network;
        crate::signing::sign_with_keys(&args, &genesis, network, |outpoint| coin(&context, outpoint))
    })?;
    module.register_blocking_method("getrawtransaction", |params, context, _| {
        let txid = txid_param(&params, 0)?;
        let verbose = match params.parse::<Vec<Value>>().ok().and_then(|v| v.get(1).cloned()) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(flag)) => flag,
            Some(Value::Number(n)) => n.as_u64().is_some_and(|n| n > 0),
            Some(_) => return Err(invalid("verbose must be a boolean or a number")),
        };
        let (tx, height) = context.backend.transaction(&txid)?.ok_or_else(|| {
            ErrorObjectOwned::from(RpcError::new(
                codes::INVALID_ADDRESS_OR_KEY,
                "No such mempool or blockchain transaction",
            ))
        })?;
        if !verbose {
            return Ok::<_, ErrorObjectOwned>(json!(hex::encode(tx.to_bytes())));
        }
        let info = context.backend.chain_info()?;
        let mut object = transaction_json(&tx, info.network);
        extend(&mut object, "hex", json!(hex::encode(tx.to_bytes())));
        if let Some(height) = height {
            if let Some(hash) = context.backend.block_hash(height)? {
                extend(&mut object, "blockhash", json!(hash.to_string()));
            }
            extend(
                &mut object,
                "confirmations",
                json!(info.blocks.saturating_sub(height) + 1),
            );
        }
        Ok(object)
    })?;
    module.register_async_method("sendrawtransaction", |params, context, _| async move {
        let text: String = param(&params, 0, "hexstring")?;
        let tx: Transaction = decode_hex(&text, "TX")?;
        Ok::<_, ErrorObjectOwned>(context.backend.submit_transaction(tx).await?.to_string())
    })?;
    module.register_blocking_method("decoderawtransaction", |params, context, _| {
        let text: String = param(&params, 0, "hexstring")?;
        let tx: Transaction = decode_hex(&text, "TX")?;
        Ok::<_, ErrorObjectOwned>(transaction_json(&tx, context.backend.chain_info()?.network))
    })?;
    module.register_blocking_method("testmempoolaccept", |params, context, _| {
        let rawtxs: Vec<String> = param(&params, 0, "rawtxs")?;
        if rawtxs.len() > 25 {
            return Err(invalid("at most 25 transactions at once"));
        }
        let mut answers = Vec::with_capacity(rawtxs.len());
        for text in rawtxs {
            let tx: Transaction = decode_hex(&text, "TX")?;
            let txid = tx.txid().to_string();
            answers.push(match context.backend.test_accept(&tx)? {
                Ok((size, fee)) => {
                    json!({"txid": txid, "allowed": true, "vsize": size, "fees": {"base": time_value(fee)}})
                }
                Err(reason) => json!({"txid": txid, "allowed": false, "reject-reason": reason}),
            });
        }
        Ok::<_, ErrorObjectOwned>(answers)
    })?;
    Ok(())
}

/// The unspent output at `outpoint` as the mempool sees it (outputs of waiting transactions
/// count, those they spend do not), as a signer needs it.
pub(super) fn coin(context: &Context, outpoint: &OutPoint) -> Result<Option<TxOutput>, ErrorObjectOwned> {
    Ok(context.backend.txout(outpoint, true)?.map(|info| TxOutput {
        amount: Amount::from_units(info.value),
        address: info.address,
    }))
}
