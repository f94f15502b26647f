//! The `Addressindex` methods, as Dash Core names and shapes them (`getaddressbalance`,
//! `getaddressutxos`, `getaddresstxids`, `getaddressdeltas`), over the node's address index
//! (`[index] address = true`). Amounts are integers of the smallest unit, as Dash's duffs.
//! Each takes `{"addresses": [...]}` (with `start` and `end` heights where Dash takes them)
//! or one address as a string.

use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::server::RpcModule;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde_json::{Value, json};
use timecoin_primitives::{Address, AddressPayload};

use super::Context;
use crate::dto::AddressDeltaInfo;
use crate::params::{address_of, invalid, param};

/// Addresses one call may name at most (each is a range read of the index).
const MAX_ADDRESSES: usize = 1_000;

/// What a call asks about: its addresses (their payloads) and its height range.
struct Query {
    addresses: Vec<AddressPayload>,
    from: u64,
    to: u64,
}

/// Reads the first parameter: `{"addresses": [...], "start": h, "end": h}` or an address.
fn query(params: &Params<'_>, context: &Context) -> Result<Query, ErrorObjectOwned> {
    let value: Value = param(params, 0, "addresses")?;
    let (texts, from, to) = match &value {
        Value::String(text) => (vec![text.clone()], 0, u64::MAX),
        Value::Object(object) => {
            let texts: Vec<String> = serde_json::from_value(object.get("addresses").cloned().unwrap_or(Value::Null))
                .map_err(|_| invalid("addresses must be an array of address strings"))?;
            let height = |key: &str, default: u64| match object.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(value) => value
                    .as_u64()
                    .ok_or_else(|| invalid(format!("{key} must be a block height"))),
            };
            (texts, height("start", 0)?, height("end", u64::MAX)?)
        }
        _ => return Err(invalid("expected {\"addresses\": [...]} or an address")),
    };
    if texts.is_empty() || texts.len() > MAX_ADDRESSES {
        return Err(invalid(format!("name 1 to {MAX_ADDRESSES} addresses")));
    }
    if from > to {
        return Err(invalid("start is above end"));
    }
    let network = context.backend.chain_info()?.network;
    let mut addresses = Vec::with_capacity(texts.len());
    for text in texts {
        let payload = address_of(&text, network)?.payload;
        // One address named twice is read (and counted) once.
        if !addresses.contains(&payload) {
            addresses.push(payload);
        }
    }
    Ok(Query { addresses, from, to })
}

/// Every delta of the query's addresses, ordered by height, then transaction position.
fn deltas(context: &Context, query: &Query) -> Result<Vec<AddressDeltaInfo>, ErrorObjectOwned> {
    let mut all = Vec::new();
    for address in &query.addresses {
        all.extend(context.backend.address_deltas(address, query.from, query.to)?);
    }
    all.sort_by_key(|d| (d.height, d.block_index, d.spent, d.index));
    Ok(all)
}

/// Registers `getaddressbalance`, `getaddressutxos`, `getaddresstxids`, `getaddressdeltas`.
pub(super) fn register(module: &mut RpcModule<Context>) -> Result<(), RegisterMethodError> {
    module.register_blocking_method("getaddressbalance", |params, context, _| {
        let query = query(&params, &context)?;
        let all = deltas(
            &context,
            &Query {
                from: 0,
                to: u64::MAX,
                ..query
            },
        )?;
        let total = |spent: bool| {
            all.iter()
                .filter(|d| d.spent == spent)
                .fold(0u64, |sum, d| sum.saturating_add(d.amount))
        };
        let (received, spent) = (total(false), total(true));
        let balance = received.saturating_sub(spent);
        Ok::<_, ErrorObjectOwned>(json!({
            "balance": balance,
            "balance_immature": 0,
            "balance_spendable": balance,
            "received": received,
        }))
    })?;
    module.register_blocking_method("getaddressutxos", |params, context, _| {
        let query = query(&params, &context)?;
        let network = context.backend.chain_info()?.network;
        let mut utxos = Vec::new();
        for address in &query.addresses {
            utxos.extend(context.backend.address_utxos(address)?);
        }
        utxos.sort_by_key(|u| u.height);
        Ok::<_, ErrorObjectOwned>(Value::from(
            utxos
                .iter()
                .map(|u| {
                    json!({
                        "address": Address { network, payload: u.address }.to_string(),
                        "txid": u.outpoint.txid.to_string(),
                        "outputIndex": u.outpoint.index,
                        "satoshis": u.amount,
                        "height": u.height,
                    })
                })
                .collect::<Vec<_>>(),
        ))
    })?;
    module.register_blocking_method("getaddresstxids", |params, context, _| {
        let query = query(&params, &context)?;
        let mut seen = std::collections::HashSet::new();
        let txids: Vec<String> = deltas(&context, &query)?
            .iter()
            .filter(|d| seen.insert(d.txid))
            .map(|d| d.txid.to_string())
            .collect();
        Ok::<_, ErrorObjectOwned>(txids)
    })?;
    module.register_blocking_method("getaddressdeltas", |params, context, _| {
        let query = query(&params, &context)?;
        let network = context.backend.chain_info()?.network;
        Ok::<_, ErrorObjectOwned>(Value::from(
            deltas(&context, &query)?
                .iter()
                .map(|d| {
                    // No amount reaches i64::MAX (the supply is far below it).
                    let amount = i64::try_from(d.amount).unwrap_or(i64::MAX);
                    let satoshis = if d.spent { -amount } else { amount };
                    json!({
                        "satoshis": satoshis,
                        "txid": d.txid.to_string(),
                        "index": d.index,
                        "blockindex": d.block_index,
                        "height": d.height,
                        "address": Address { network, payload: d.address }.to_string(),
                    })
                })
                .collect::<Vec<_>>(),
        ))
    })?;
    Ok(())
}
