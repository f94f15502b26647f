//! The `Mempool` methods: what is waiting to be finalized.

use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::server::RpcModule;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::json;

use super::Context;
use crate::codes;
use crate::error::RpcError;
use crate::params::txid_param;
use crate::render::time_value;

/// Registers `getrawmempool`, `getmempoolinfo`, `getmempoolentry`.
pub(super) fn register(module: &mut RpcModule<Context>) -> Result<(), RegisterMethodError> {
    module.register_blocking_method("getrawmempool", |_, context, _| {
        let txids = context.backend.mempool_txids()?;
        Ok::<_, ErrorObjectOwned>(txids.iter().map(ToString::to_string).collect::<Vec<_>>())
    })?;
    module.register_blocking_method("getmempoolinfo", |_, context, _| {
        let info = context.backend.mempool_info()?;
        Ok::<_, ErrorObjectOwned>(json!({
            "loaded": true,
            "size": info.size,
            "bytes": info.bytes,
            "usage": info.usage,
            "maxmempool": info.max_usage,
            "mempoolminfee": time_value(info.min_fee_rate),
        }))
    })?;
    module.register_blocking_method("getmempoolentry", |params, context, _| {
        let txid = txid_param(&params, 0)?;
        let entry = context.backend.mempool_entry(&txid)?.ok_or_else(|| {
            ErrorObjectOwned::from(RpcError::new(
                codes::INVALID_ADDRESS_OR_KEY,
                "Transaction not in mempool",
            ))
        })?;
        Ok::<_, ErrorObjectOwned>(json!({
            "vsize": entry.size,
            "fees": {"base": time_value(entry.fee)},
            "time": entry.time_ms / 1_000,
            "ancestorcount": entry.ancestors + 1,
            "descendantcount": entry.descendants + 1,
        }))
    })?;
    Ok(())
}
