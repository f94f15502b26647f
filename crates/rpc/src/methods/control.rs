//! The `Control` methods: the server and the process (uptime, memory, stop, help).

use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::server::RpcModule;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::json;

use super::Context;
use crate::params::{invalid, optional};

/// Registers `getmemoryinfo`, `uptime`, `stop`, `help`.
pub(super) fn register(module: &mut RpcModule<Context>) -> Result<(), RegisterMethodError> {
    module.register_blocking_method("getmemoryinfo", |_, context, _| {
        let mempool = context.backend.mempool_info()?;
        Ok::<_, ErrorObjectOwned>(json!({
            "rss": resident_bytes(),
            "mempool": {"usage": mempool.usage, "max": mempool.max_usage},
        }))
    })?;
    module.register_blocking_method("uptime", |_, context, _| {
        Ok::<_, ErrorObjectOwned>(context.started.elapsed().as_secs())
    })?;
    module.register_blocking_method("stop", |_, context, _| {
        context.backend.stop();
        Ok::<_, ErrorObjectOwned>("TimeCoin server stopping")
    })?;
    module.register_method("help", |params, _, _| {
        let command: Option<String> = optional(&params, 0, "command")?;
        super::help(command.as_deref()).map_err(invalid)
    })?;
    Ok(())
}

/// The process's resident memory in bytes, where the system tells it (Linux).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4_096)
}
