//! The `Wallet` methods: addresses, balances, history, payments, signing and the wallet's
//! encryption. Each answers "no wallet" when the node runs without one.

use base64::Engine;
use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::server::RpcModule;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{Value, json};
use timecoin_primitives::{Encode, OutPoint, Transaction, TxId};

use super::Context;
use crate::params::{address_of, amount_param, amount_value, decode_hex, invalid, optional, param};
use crate::render::time_value;

/// Registers `getnewaddress`, `getrawchangeaddress`, `getbalance`, `getbalances`, `listunspent`, the history's methods (`listtransactions`, `gettransaction`, `listsinceblock`: see `wallet_history`), `sendtoaddress`, `sendmany`, `createrawtransaction`, `signrawtransactionwithwallet`, `lockunspent`, `listlockunspent`, `signmessage`, `walletpassphrase`, `walletlock`, `importaddress`, `backupwallet`, `dumpmnemonic`, `encryptwallet`.
pub(super) fn register(module: &mut RpcModule<Context>) -> Result<(), RegisterMethodError> {
    super::wallet_history::register(module)?;
    module.register_blocking_method("getnewaddress", |_, context, _| {
        Ok::<_, ErrorObjectOwned>(context.backend.wallet_new_address(false)?)
    })?;
    module.register_blocking_method("getrawchangeaddress", |_, context, _| {
        Ok::<_, ErrorObjectOwned>(context.backend.wallet_new_address(true)?)
    })?;
    module.register_blocking_method("getbalance", |_, context, _| {
        Ok::<_, ErrorObjectOwned>(time_value(context.backend.wallet_balances()?.available))
    })?;
    module.register_blocking_method("getbalances", |_, context, _| {
        let balances = context.backend.wallet_balances()?;
        let mut answer = json!({"mine": {
            "trusted": time_value(balances.available),
            "untrusted_pending": time_value(balances.pending),
            "locked": time_value(balances.locked),
        }});
        if let Some(watched) = balances.watch_only {
            crate::render::extend(&mut answer, "watchonly", json!({"trusted": time_value(watched)}));
        }
        Ok::<_, ErrorObjectOwned>(answer)
    })?;
    module.register_blocking_method("listunspent", |_, context, _| {
        let tip = context.backend.chain_info()?.blocks;
        let coins = context.backend.wallet_unspent()?;
        Ok::<_, ErrorObjectOwned>(
            coins
                .iter()
                .map(|c| {
                    json!({
                        "txid": c.outpoint.txid.to_string(),
                        "vout": c.outpoint.index,
                        "address": c.address,
                        "amount": time_value(c.amount),
                        "confirmations": tip.saturating_sub(c.height) + 1,
                        "spendable": c.spendable,
                        "solvable": c.spendable,
                    })
                })
                .collect::<Vec<_>>(),
        )
    })?;
    module.register_blocking_method("sendtoaddress", |params, context, _| {
        let address: String = param(&params, 0, "address")?;
        let amount = amount_param(&params, 1, "amount")?;
        Ok::<_, ErrorObjectOwned>(context.backend.wallet_send(vec![(address, amount)])?.to_string())
    })?;
    module.register_blocking_method("sendmany", |params, context, _| {
        // Bitcoin Core's first parameter is a dummy account name.
        let amounts: serde_json::Map<String, Value> = param(&params, 1, "amounts")?;
        if amounts.is_empty() {
            return Err(invalid("amounts is empty"));
        }
        let mut payments = Vec::with_capacity(amounts.len());
        for (address, value) in amounts {
            payments.push((address, amount_value(&value, "amounts")?));
        }
        Ok::<_, ErrorObjectOwned>(context.backend.wallet_send(payments)?.to_string())
    })?;
    module.register_blocking_method("createrawtransaction", |params, context, _| {
        #[derive(serde::Deserialize)]
        struct Input {
            txid: String,
            vout: u32,
        }
        let inputs: Vec<Input> = param(&params, 0, "inputs")?;
        let outputs: serde_json::Map<String, Value> = param(&params, 1, "outputs")?;
        let lock_time: u64 = optional(&params, 2, "locktime")?.unwrap_or(0);
        if inputs.is_empty() || outputs.is_empty() {
            return Err(invalid("inputs and outputs must not be empty"));
        }
        let network = context.backend.chain_info()?.network;
        let mut tx = Transaction {
            version: Transaction::VERSION,
            inputs: Vec::with_capacity(inputs.len()),
            outputs: Vec::with_capacity(outputs.len()),
            lock_time,
            memo: Vec::new(),
            payload: None,
        };
        for input in inputs {
            let txid: TxId = input
                .txid
                .parse()
                .map_err(|e| invalid(format!("txid {}: {e}", input.txid)))?;
            tx.inputs.push(timecoin_primitives::TxInput {
                prevout: OutPoint {
                    txid,
                    index: input.vout,
                },
                public_key: Default::default(),
                signature: Default::default(),
            });
        }
        for (text, value) in outputs {
            let address = address_of(&text, network)?;
            tx.outputs.push(timecoin_primitives::TxOutput {
                amount: timecoin_primitives::Amount::from_units(amount_value(&value, "outputs")?),
                address: address.payload,
            });
        }
        Ok::<_, ErrorObjectOwned>(hex::encode(tx.to_bytes()))
    })?;
    module.register_blocking_method("signrawtransactionwithwallet", |params, context, _| {
        let text: String = param(&params, 0, "hexstring")?;
        let mut tx: Transaction = decode_hex(&text, "TX")?;
        let mut coins = Vec::with_capacity(tx.inputs.len());
        for input in &tx.inputs {
            coins.push(super::rawtransactions::coin(&context, &input.prevout)?);
        }
        let errors = context.backend.wallet_sign(&mut tx, &coins)?;
        Ok::<_, ErrorObjectOwned>(crate::signing::sign_result(&tx, &errors))
    })?;
    module.register_blocking_method("walletpassphrase", |params, context, _| {
        let passphrase: String = param(&params, 0, "passphrase")?;
        let seconds: u64 = param(&params, 1, "timeout")?;
        if seconds == 0 || seconds > 100_000_000 {
            return Err(invalid("timeout is 1 to 100,000,000 seconds"));
        }
        context.backend.wallet_passphrase(&passphrase, seconds)?;
        Ok::<_, ErrorObjectOwned>(Value::Null)
    })?;
    module.register_blocking_method("lockunspent", |params, context, _| {
        #[derive(serde::Deserialize)]
        struct Output {
            txid: String,
            vout: u32,
        }
        let unlock: bool = param(&params, 0, "unlock")?;
        let outputs: Option<Vec<Output>> = optional(&params, 1, "transactions")?;
        if outputs.is_none() && !unlock {
            return Err(invalid("Invalid parameter, locking needs the outputs to lock"));
        }
        let outpoints = outputs
            .map(|outputs| {
                outputs
                    .into_iter()
                    .map(|o| {
                        let txid: TxId = o.txid.parse().map_err(|e| invalid(format!("txid {}: {e}", o.txid)))?;
                        Ok(OutPoint { txid, index: o.vout })
                    })
                    .collect::<Result<Vec<_>, ErrorObjectOwned>>()
            })
            .transpose()?;
        context.backend.wallet_lock_coins(unlock, outpoints)?;
        Ok::<_, ErrorObjectOwned>(true)
    })?;
    module.register_blocking_method("listlockunspent", |_, context, _| {
        Ok::<_, ErrorObjectOwned>(
            context
                .backend
                .wallet_locked_coins()?
                .iter()
                .map(|o| json!({"txid": o.txid.to_string(), "vout": o.index}))
                .collect::<Vec<_>>(),
        )
    })?;
    module.register_blocking_method("signmessage", |params, context, _| {
        let text: String = param(&params, 0, "address")?;
        let message: String = param(&params, 1, "message")?;
        let network = context.backend.chain_info()?.network;
        let address = address_of(&text, network)?;
        let proof = context.backend.wallet_sign_message(&address.payload, &message)?;
        Ok::<_, ErrorObjectOwned>(base64::engine::general_purpose::STANDARD.encode(proof))
    })?;
    module.register_blocking_method("importaddress", |params, context, _| {
        let address: String = param(&params, 0, "address")?;
        // Bitcoin Core's label is taken and not kept: this wallet has no labels.
        let _label: Option<String> = optional(&params, 1, "label")?;
        let rescan: bool = optional(&params, 2, "rescan")?.unwrap_or(true);
        if optional::<bool>(&params, 3, "p2sh")?.unwrap_or(false) {
            return Err(invalid("p2sh: an address here pays a key, never a script"));
        }
        context.backend.wallet_import_address(&address, rescan)?;
        Ok::<_, ErrorObjectOwned>(Value::Null)
    })?;
    module.register_blocking_method("backupwallet", |params, context, _| {
        let destination: String = param(&params, 0, "destination")?;
        if destination.is_empty() {
            return Err(invalid("destination is empty"));
        }
        context.backend.wallet_backup(&destination)?;
        Ok::<_, ErrorObjectOwned>(Value::Null)
    })?;
    module.register_blocking_method("walletlock", |_, context, _| {
        context.backend.wallet_lock()?;
        Ok::<_, ErrorObjectOwned>(Value::Null)
    })?;
    module.register_blocking_method("dumpmnemonic", |_, context, _| {
        Ok::<_, ErrorObjectOwned>(context.backend.wallet_mnemonic()?)
    })?;
    module.register_blocking_method("encryptwallet", |params, context, _| {
        let passphrase: String = param(&params, 0, "passphrase")?;
        if passphrase.is_empty() {
            return Err(invalid("the passphrase must not be empty"));
        }
        context.backend.wallet_encrypt(&passphrase)?;
        Ok::<_, ErrorObjectOwned>("wallet encrypted and locked; unlock it with walletpassphrase")
    })?;
    Ok(())
}
