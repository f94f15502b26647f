//! The `Blockchain` methods: the finalized chain (blocks, headers, commit certificates),
//! its UTXO set, and the consensus engine extending it.

use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::server::RpcModule;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{Value, json};
use timecoin_primitives::{Address, Encode, OutPoint};

use super::Context;
use crate::codes;
use crate::error::RpcError;
use crate::params::{hash_param, invalid, not_found, optional, param, txid_param};
use crate::render::{block_json, extend, header_json, time_value};

/// Registers `getblockchaininfo`, `getblockcount`, `getbestblockhash`, `getblockhash`, `getblock`, `getblockheader`, `dumptxoutset`, `pruneblockchain`, `getcommit`, `gettxout`, `gettxoutsetinfo`, `getconsensusinfo`, `waitfortransaction`, `getblockstats` (see `blockstats`), and `gettxoutproof`, `verifytxoutproof` and `getheaderproof` (see `proofs`).
pub(super) fn register(module: &mut RpcModule<Context>) -> Result<(), RegisterMethodError> {
    super::blockstats::register(module)?;
    super::proofs::register(module)?;
    module.register_blocking_method("getblockchaininfo", |_, context, _| {
        let info = context.backend.chain_info()?;
        let mut answer = json!({
            "chain": info.network.name(),
            "blocks": info.blocks,
            "bestblockhash": info.best_block.to_string(),
            "time": info.time_ms / 1_000,
            "genesis": info.genesis.to_string(),
            "mempool": info.mempool_transactions,
            "pruned": false,
        });
        if let Some(storage) = context.backend.storage_info()? {
            extend(&mut answer, "size_on_disk", json!(storage.block_bytes));
            // Blocks below are missing when it prunes, or when it started from a chain state.
            if storage.prune_target.is_some() || storage.pruned_below > 1 {
                extend(&mut answer, "pruned", json!(true));
                extend(&mut answer, "pruneheight", json!(storage.pruned_below));
            }
            if let Some(target) = storage.prune_target {
                extend(&mut answer, "prune_target_size", json!(target));
            }
        }
        Ok::<_, ErrorObjectOwned>(answer)
    })?;
    module.register_blocking_method("getblockcount", |_, context, _| {
        Ok::<_, ErrorObjectOwned>(context.backend.chain_info()?.blocks)
    })?;
    module.register_blocking_method("getbestblockhash", |_, context, _| {
        Ok::<_, ErrorObjectOwned>(context.backend.chain_info()?.best_block.to_string())
    })?;
    module.register_blocking_method("getblockhash", |params, context, _| {
        let height: u64 = param(&params, 0, "height")?;
        match context.backend.block_hash(height)? {
            Some(hash) => Ok::<_, ErrorObjectOwned>(hash.to_string()),
            None => Err(invalid("Block height out of range")),
        }
    })?;
    module.register_blocking_method("getblock", |params, context, _| {
        let hash = hash_param(&params, 0, "blockhash")?;
        let verbosity: u8 = optional(&params, 1, "verbosity")?.unwrap_or(1);
        if verbosity > 2 {
            return Err(invalid("verbosity must be 0, 1 or 2"));
        }
        let info = context.backend.chain_info()?;
        let (block, _) = context
            .backend
            .block(&hash)?
            .ok_or_else(|| ErrorObjectOwned::from(RpcError::new(codes::INVALID_ADDRESS_OR_KEY, "Block not found")))?;
        if verbosity == 0 {
            return Ok(json!(hex::encode(block.to_bytes())));
        }
        Ok(block_json(&block, info.blocks, info.network, verbosity))
    })?;
    module.register_blocking_method("getblockheader", |params, context, _| {
        let hash = hash_param(&params, 0, "blockhash")?;
        let verbose: bool = optional(&params, 1, "verbose")?.unwrap_or(true);
        let tip = context.backend.chain_info()?.blocks;
        // A pruned block keeps its header; its transaction count went with its body.
        let (header, transactions) = match context.backend.block(&hash)? {
            Some((block, _)) => (block.header, Some(block.transactions.len())),
            None => (
                context
                    .backend
                    .header_by_hash(&hash)?
                    .ok_or_else(|| not_found("Block"))?,
                None,
            ),
        };
        if !verbose {
            return Ok::<_, ErrorObjectOwned>(json!(hex::encode(header.to_bytes())));
        }
        let mut answer = header_json(&header, tip);
        if let Some(count) = transactions {
            extend(&mut answer, "nTx", json!(count));
        }
        Ok(answer)
    })?;
    module.register_blocking_method("dumptxoutset", |params, context, _| {
        let path: String = param(&params, 0, "path")?;
        if path.is_empty() {
            return Err(invalid("path is empty"));
        }
        let dump = context.backend.dump_txoutset(&path)?;
        Ok::<_, ErrorObjectOwned>(json!({
            "coins_written": dump.coins,
            "base_hash": dump.hash.to_string(),
            "base_height": dump.height,
            "path": dump.path,
            "txoutset_hash": dump.commitment.to_string(),
            "statehash": dump.state_hash.to_string(),
        }))
    })?;
    module.register_blocking_method("pruneblockchain", |params, context, _| {
        let height: u64 = param(&params, 0, "height")?;
        let pruning = context.backend.storage_info()?.and_then(|s| s.prune_target).is_some();
        if !pruning {
            return Err(RpcError::new(
                codes::MISC_ERROR,
                "Cannot prune blocks because node is not in prune mode.",
            )
            .into());
        }
        if height > context.backend.chain_info()?.blocks {
            return Err(invalid("Blockchain is shorter than the attempted prune height."));
        }
        Ok::<_, ErrorObjectOwned>(context.backend.prune(height)?)
    })?;
    module.register_blocking_method("getcommit", |params, context, _| {
        let height: u64 = param(&params, 0, "height")?;
        let certificate = context
            .backend
            .certificate(height)?
            .ok_or_else(|| not_found("Commit"))?;
        Ok::<_, ErrorObjectOwned>(json!({
            "height": certificate.height,
            "round": certificate.round,
            "blockhash": certificate.block_hash.to_string(),
            "signatures": certificate.signatures.iter().map(|s| json!({
                "masternode": s.validator.to_string(),
                "signature": hex::encode(s.signature.0),
            })).collect::<Vec<_>>(),
            "hex": hex::encode(certificate.to_bytes()),
        }))
    })?;
    module.register_blocking_method("gettxout", |params, context, _| {
        let txid = txid_param(&params, 0)?;
        let index: u32 = param(&params, 1, "n")?;
        let include_mempool: bool = optional(&params, 2, "include_mempool")?.unwrap_or(true);
        let info = context.backend.chain_info()?;
        let Some(out) = context.backend.txout(&OutPoint { txid, index }, include_mempool)? else {
            return Ok::<_, ErrorObjectOwned>(Value::Null);
        };
        Ok(json!({
            "bestblock": info.best_block.to_string(),
            "confirmations": out.height.map_or(0, |h| info.blocks.saturating_sub(h) + 1),
            "value": time_value(out.value),
            "address": Address { network: info.network, payload: out.address }.to_string(),
            "coinbase": out.reward,
        }))
    })?;
    module.register_blocking_method("gettxoutsetinfo", |_, context, _| {
        let set = context.backend.utxo_set()?;
        Ok::<_, ErrorObjectOwned>(json!({
            "height": set.height,
            "bestblock": set.best_block.to_string(),
            "txouts": set.count,
            "total_amount": time_value(set.total),
            "hash_serialized": set.commitment.to_string(),
        }))
    })?;
    module.register_blocking_method("getconsensusinfo", |_, context, _| {
        let status = context.backend.consensus();
        let list = context.backend.masternodes()?;
        let total: u64 = list.iter().map(|m| m.power).sum();
        let info = context.backend.chain_info()?;
        let last = context.backend.certificate(info.blocks)?;
        Ok::<_, ErrorObjectOwned>(json!({
            "height": status.height,
            "round": status.round,
            "step": status.step,
            "syncing": status.syncing,
            "totalpower": total,
            "quorum": total * 2 / 3 + 1,
            "masternodes": list.iter().map(|m| json!({"operator": m.operator, "power": m.power})).collect::<Vec<_>>(),
            "lastcommit": last.map(|c| json!({
                "height": c.height,
                "round": c.round,
                "blockhash": c.block_hash.to_string(),
                "signatures": c.signatures.len(),
            })),
        }))
    })?;
    module.register_blocking_method("waitfortransaction", |params, context, _| {
        let txid = txid_param(&params, 0)?;
        let timeout: u64 = optional(&params, 1, "timeout")?.unwrap_or(60);
        if timeout > 3_600 {
            return Err(invalid("timeout is at most 3600 seconds"));
        }
        let height = context
            .backend
            .wait_for_transaction(&txid, std::time::Duration::from_secs(timeout))?;
        Ok::<_, ErrorObjectOwned>(json!({"txid": txid.to_string(), "finalized": height.is_some(), "height": height}))
    })?;
    Ok(())
}
