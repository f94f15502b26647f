//! `getblockstats`: Bitcoin Core's per-block statistics, computed from the block and the coins
//! it spent (its undo record), so that fees are exact.
//!
//! Amounts are in units (1e-8 TIME, as Bitcoin Core's satoshis), sizes in bytes of the
//! canonical encoding, fee rates in units per byte. The reward transaction (the one with no
//! inputs) is left out of the fee, size and input statistics, as Bitcoin Core leaves out the
//! coinbase; its outputs count in `outs` and `utxo_increase`. Fields of segwit, weight and
//! median time past have no meaning here and are not given.

use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::server::RpcModule;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{Map, Value, json};
use timecoin_primitives::{Amount, Block, BlockHash, Encode, TxOutput};

use super::Context;
use crate::params::{invalid, not_found, optional, param};

/// Bitcoin Core's `feerate_percentiles`: the fee rates at these shares of the block's bytes.
const PERCENTILES: [u64; 5] = [10, 25, 50, 75, 90];

/// The statistics a caller may select, in Bitcoin Core's order.
const FIELDS: [&str; 23] = [
    "avgfee",
    "avgfeerate",
    "avgtxsize",
    "blockhash",
    "feerate_percentiles",
    "height",
    "ins",
    "maxfee",
    "maxfeerate",
    "maxtxsize",
    "medianfee",
    "mediantxsize",
    "minfee",
    "minfeerate",
    "mintxsize",
    "outs",
    "subsidy",
    "time",
    "total_out",
    "total_size",
    "totalfee",
    "txs",
    "utxo_increase",
];

/// Registers `getblockstats`.
pub(super) fn register(module: &mut RpcModule<Context>) -> Result<(), RegisterMethodError> {
    module.register_blocking_method("getblockstats", |params, context, _| {
        let target: Value = param(&params, 0, "hash_or_height")?;
        let selected: Option<Vec<String>> = optional(&params, 1, "stats")?;
        if let Some(unknown) = selected.iter().flatten().find(|s| !FIELDS.contains(&s.as_str())) {
            return Err(invalid(format!("Invalid selected statistic '{unknown}'")));
        }
        let hash = match &target {
            Value::Number(n) => {
                let height = n
                    .as_u64()
                    .ok_or_else(|| invalid("Target block height is not a block height"))?;
                let tip = context.backend.chain_info()?.blocks;
                context
                    .backend
                    .block_hash(height)?
                    .ok_or_else(|| invalid(format!("Target block height {height} after current tip {tip}")))?
            }
            Value::String(text) => text.parse::<BlockHash>().map_err(|e| {
                invalid(format!(
                    "hash_or_height must be a height or a 64-character hex hash: {e}"
                ))
            })?,
            _ => return Err(invalid("hash_or_height must be a height or a 64-character hex hash")),
        };
        let (block, height) = context.backend.block(&hash)?.ok_or_else(|| not_found("Block"))?;
        let spent = context
            .backend
            .spent_coins(height)?
            .ok_or_else(|| not_found("Undo data of the block"))?;
        let mut stats =
            block_stats(&block, &spent).ok_or_else(|| invalid("the block's spent coins do not match its inputs"))?;
        if let Some(selected) = selected {
            stats.retain(|name, _| selected.iter().any(|s| s == name));
        }
        Ok::<_, ErrorObjectOwned>(Value::Object(stats))
    })?;
    Ok(())
}

/// The statistics of `block`, whose inputs spent `spent` (one coin per input, in order);
/// `None` if `spent` does not match the inputs.
fn block_stats(block: &Block, spent: &[TxOutput]) -> Option<Map<String, Value>> {
    let mut coins = spent.iter();
    // (fee, size) of each transaction but the reward's.
    let mut paid: Vec<(u64, u64)> = Vec::with_capacity(block.transactions.len());
    let (mut ins, mut outs, mut total_out, mut minted) = (0u64, 0u64, 0u64, 0u64);
    for tx in &block.transactions {
        let out = Amount::checked_sum(tx.outputs.iter().map(|o| o.amount))?.units();
        outs += tx.outputs.len() as u64;
        if tx.is_reward() {
            minted = minted.checked_add(out)?;
            continue;
        }
        let mut input = 0u64;
        for _ in &tx.inputs {
            input = input.checked_add(coins.next()?.amount.units())?;
        }
        ins += tx.inputs.len() as u64;
        total_out = total_out.checked_add(out)?;
        paid.push((input.checked_sub(out)?, tx.encoded_len() as u64));
    }
    if coins.next().is_some() {
        return None;
    }
    let count = paid.len() as u64;
    let totalfee: u64 = paid.iter().map(|(fee, _)| fee).sum();
    let total_size: u64 = paid.iter().map(|(_, size)| size).sum();
    let mut fees: Vec<u64> = paid.iter().map(|(fee, _)| *fee).collect();
    let mut sizes: Vec<u64> = paid.iter().map(|(_, size)| *size).collect();
    // (rate, size), by rate: the percentiles weigh each rate by its bytes.
    let mut rates: Vec<(u64, u64)> = paid.iter().map(|(fee, size)| (*fee / (*size).max(1), *size)).collect();
    rates.sort_unstable();
    let mut stats = Map::new();
    let mut put = |name: &str, value: Value| {
        stats.insert(name.to_owned(), value);
    };
    put("avgfee", json!(totalfee.checked_div(count).unwrap_or(0)));
    put("avgfeerate", json!(totalfee.checked_div(total_size).unwrap_or(0)));
    put("avgtxsize", json!(total_size.checked_div(count).unwrap_or(0)));
    put("blockhash", json!(block.hash().to_string()));
    put("feerate_percentiles", json!(percentiles(&rates, total_size)));
    put("height", json!(block.header.height));
    put("ins", json!(ins));
    put("maxfee", json!(fees.iter().max().copied().unwrap_or(0)));
    put("maxfeerate", json!(rates.last().map_or(0, |r| r.0)));
    put("maxtxsize", json!(sizes.iter().max().copied().unwrap_or(0)));
    put("medianfee", json!(median(&mut fees)));
    put("mediantxsize", json!(median(&mut sizes)));
    put("minfee", json!(fees.iter().min().copied().unwrap_or(0)));
    put("minfeerate", json!(rates.first().map_or(0, |r| r.0)));
    put("mintxsize", json!(sizes.iter().min().copied().unwrap_or(0)));
    put("outs", json!(outs));
    // The reward transaction pays the minted amount and the fees.
    put("subsidy", json!(minted.saturating_sub(totalfee)));
    put("time", json!(block.header.timestamp_ms / 1_000));
    put("total_out", json!(total_out));
    put("total_size", json!(total_size));
    put("totalfee", json!(totalfee));
    put("txs", json!(block.transactions.len()));
    put("utxo_increase", json!(i128::from(outs) - i128::from(ins)));
    Some(stats)
}

/// Bitcoin Core's truncated median: the middle value, or the mean of the middle two.
fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    let middle = values.len() / 2;
    match (values.len() % 2, values.get(middle.wrapping_sub(1)), values.get(middle)) {
        (0, Some(low), Some(high)) => low / 2 + high / 2 + (low % 2 + high % 2) / 2,
        (_, _, Some(value)) => *value,
        _ => 0,
    }
}

/// The fee rate at each of [`PERCENTILES`] of the block's bytes, from `rates` sorted by rate
/// (Bitcoin Core's `CalculatePercentilesByWeight`, with bytes for weight).
fn percentiles(rates: &[(u64, u64)], total_size: u64) -> [u64; 5] {
    let mut result = [0u64; 5];
    let mut next = 0;
    let mut cumulative = 0u64;
    for (rate, size) in rates {
        cumulative += size;
        while let Some(share) = PERCENTILES.get(next) {
            if u128::from(cumulative) * 100 < u128::from(total_size) * u128::from(*share) {
                break;
            }
            if let Some(slot) = result.get_mut(next) {
                *slot = *rate;
            }
            next += 1;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_is_bitcoin_cores_truncated_median() {
        assert_eq!(median(&mut []), 0);
        assert_eq!(median(&mut [7]), 7);
        assert_eq!(median(&mut [9, 1, 4]), 4);
        assert_eq!(median(&mut [5, 1, 4, 9]), 4);
        assert_eq!(median(&mut [u64::MAX, u64::MAX]), u64::MAX);
    }

    #[test]
    fn percentiles_weigh_rates_by_bytes() {
        // 100 bytes at rate 1, 300 at rate 5, 600 at rate 9.
        let rates = [(1, 100), (5, 300), (9, 600)];
        assert_eq!(percentiles(&rates, 1_000), [1, 5, 9, 9, 9]);
        assert_eq!(percentiles(&[], 0), [0; 5]);
    }
}
