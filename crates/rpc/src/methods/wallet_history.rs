//! The `Wallet` methods that read its history, as a deposit loop reads Bitcoin Core's:
//! `listtransactions`, `listsinceblock`, `getreceivedbyaddress`, `listreceivedbyaddress`,
//! `gettransaction`. Every answer is as of the
//! wallet's tip (the last block it scanned), so a `lastblock` never names a block whose
//! transactions the answer left out.

use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::server::RpcModule;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;

use timecoin_primitives::{Address, Encode};

use super::Context;
use crate::codes;
use crate::dto::OutputOwner;
use crate::error::RpcError;
use crate::params::{address_of, hash_param, invalid, not_found, optional, param, txid_param};
use crate::render::{confirmations, extend, time_value, wallet_entries, wallet_tx_json, wallet_visible};

/// Registers `listtransactions`, `listsinceblock`, `getreceivedbyaddress`,
/// `listreceivedbyaddress` and `gettransaction`.
pub(super) fn register(module: &mut RpcModule<Context>) -> Result<(), RegisterMethodError> {
    module.register_blocking_method("listtransactions", |params, context, _| {
        let label: Option<String> = optional(&params, 0, "label")?;
        if label.as_deref().is_some_and(|l| l != "*") {
            return Err(invalid("the wallet has no labels: label must be \"*\""));
        }
        let count: usize = optional(&params, 1, "count")?.unwrap_or(10);
        let skip: usize = optional(&params, 2, "skip")?.unwrap_or(0);
        let include_watchonly: bool = optional(&params, 3, "include_watchonly")?.unwrap_or(false);
        let history = context.backend.wallet_history()?;
        let entries: Vec<Value> = history
            .transactions
            .iter()
            .flat_map(|t| wallet_entries(t, history.tip, false, include_watchonly, false))
            .collect();
        let end = entries.len().saturating_sub(skip);
        let start = end.saturating_sub(count);
        Ok::<_, ErrorObjectOwned>(Value::from(entries.get(start..end).unwrap_or_default().to_vec()))
    })?;
    module.register_blocking_method("listsinceblock", |params, context, _| {
        let since = match optional::<String>(&params, 0, "blockhash")? {
            Some(text) if !text.is_empty() => {
                let hash = hash_param(&params, 0, "blockhash")?;
                let (_, height) = context.backend.block(&hash)?.ok_or_else(|| not_found("Block"))?;
                Some(height)
            }
            _ => None,
        };
        let target: u64 = optional(&params, 1, "target_confirmations")?.unwrap_or(1);
        if target < 1 {
            return Err(invalid("Invalid parameter: target_confirmations must be at least 1"));
        }
        let include_watchonly: bool = optional(&params, 2, "include_watchonly")?.unwrap_or(false);
        let include_removed: bool = optional(&params, 3, "include_removed")?.unwrap_or(true);
        let include_change: bool = optional(&params, 4, "include_change")?.unwrap_or(false);
        let history = context.backend.wallet_history()?;
        let transactions: Vec<Value> = history
            .transactions
            .iter()
            .filter(|t| match (t.block, since) {
                (Some(block), Some(since)) => block.height > since,
                _ => true,
            })
            .flat_map(|t| wallet_entries(t, history.tip, include_change, include_watchonly, false))
            .collect();
        let last = history.tip.saturating_add(1).saturating_sub(target);
        let lastblock = context.backend.block_hash(last)?.ok_or_else(|| {
            ErrorObjectOwned::from(RpcError::new(
                codes::INTERNAL_ERROR,
                format!("the block at the wallet's height {last} is not stored"),
            ))
        })?;
        let mut answer = json!({"transactions": transactions, "lastblock": lastblock.to_string()});
        if include_removed {
            extend(&mut answer, "removed", json!([]));
        }
        Ok::<_, ErrorObjectOwned>(answer)
    })?;
    module.register_blocking_method("getreceivedbyaddress", |params, context, _| {
        let text: String = param(&params, 0, "address")?;
        let minconf: u64 = optional(&params, 1, "minconf")?.unwrap_or(1);
        let network = context.backend.chain_info()?.network;
        let address = address_of(&text, network)?;
        if !context.backend.wallet_is_mine(&address.payload)? {
            return Err(RpcError::new(codes::WALLET_ERROR, "Address not found in wallet").into());
        }
        let written = address.to_string();
        let history = context.backend.wallet_history()?;
        // As Bitcoin Core: outputs of transactions with at least minconf confirmations,
        // block rewards left out.
        let received = history
            .transactions
            .iter()
            .filter(|t| !t.reward && confirmations(t, history.tip) >= minconf)
            .flat_map(|t| t.outputs.iter())
            .filter(|o| o.address == written)
            .fold(0u64, |sum, o| sum.saturating_add(o.amount));
        Ok::<_, ErrorObjectOwned>(time_value(received))
    })?;
    module.register_blocking_method("listreceivedbyaddress", |params, context, _| {
        let minconf: u64 = optional(&params, 0, "minconf")?.unwrap_or(1);
        let include_empty: bool = optional(&params, 1, "include_empty")?.unwrap_or(false);
        let filter: Option<String> = optional(&params, 3, "address_filter")?;
        let network = context.backend.chain_info()?.network;
        let filter = filter.map(|text| address_of(&text, network)).transpose()?;
        let history = context.backend.wallet_history()?;
        // Per receiving address: its receipts (rewards left out, as Bitcoin Core leaves out
        // coinbase outputs), with the fewest confirmations among them and their txids.
        let mut received: BTreeMap<&str, (u64, u64, Vec<String>)> = BTreeMap::new();
        for tx in history.transactions.iter().filter(|t| !t.reward) {
            let depth = confirmations(tx, history.tip);
            if depth < minconf {
                continue;
            }
            for output in tx.outputs.iter().filter(|o| o.owner == OutputOwner::Receive) {
                let entry = received
                    .entry(output.address.as_str())
                    .or_insert((0, u64::MAX, Vec::new()));
                entry.0 = entry.0.saturating_add(output.amount);
                entry.1 = entry.1.min(depth);
                let txid = tx.txid.to_string();
                if !entry.2.contains(&txid) {
                    entry.2.push(txid);
                }
            }
        }
        let given: Vec<String> = context
            .backend
            .wallet_receive_addresses()?
            .into_iter()
            .map(|payload| Address { network, payload }.to_string())
            .collect();
        let wanted = |address: &str| filter.as_ref().is_none_or(|f| f.to_string() == address);
        let mut listed = Vec::new();
        for address in given.iter().filter(|a| wanted(a)) {
            let (amount, depth, txids) = match received.remove(address.as_str()) {
                Some(found) => found,
                None if include_empty => (0, 0, Vec::new()),
                None => continue,
            };
            listed.push(json!({
                "address": address,
                "amount": time_value(amount),
                "confirmations": if depth == u64::MAX { 0 } else { depth },
                "label": "",
                "txids": txids,
            }));
        }
        Ok::<_, ErrorObjectOwned>(Value::from(listed))
    })?;
    module.register_blocking_method("gettransaction", |params, context, _| {
        let txid = txid_param(&params, 0)?;
        let include_watchonly: bool = optional(&params, 1, "include_watchonly")?.unwrap_or(false);
        let history = context.backend.wallet_history()?;
        let found = history
            .transactions
            .iter()
            .find(|t| t.txid == txid && wallet_visible(t, include_watchonly));
        let entry = found.ok_or_else(|| {
            ErrorObjectOwned::from(RpcError::new(
                codes::INVALID_ADDRESS_OR_KEY,
                "Invalid or non-wallet transaction id",
            ))
        })?;
        let mut object = wallet_tx_json(entry, history.tip, include_watchonly);
        if let Some((tx, _)) = context.backend.transaction(&txid)? {
            extend(&mut object, "hex", json!(hex::encode(tx.to_bytes())));
        }
        Ok::<_, ErrorObjectOwned>(object)
    })?;
    Ok(())
}
