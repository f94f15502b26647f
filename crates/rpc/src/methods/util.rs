//! The `Util` methods: checks that need no chain state beyond the network.

use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::server::RpcModule;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::json;
use timecoin_primitives::Address;

use super::Context;
use crate::params::param;

/// Registers `validateaddress`.
pub(super) fn register(module: &mut RpcModule<Context>) -> Result<(), RegisterMethodError> {
    module.register_blocking_method("validateaddress", |params, context, _| {
        let text: String = param(&params, 0, "address")?;
        let network = context.backend.chain_info()?.network;
        Ok::<_, ErrorObjectOwned>(match text.parse::<Address>() {
            Ok(address) if address.network == network => json!({"isvalid": true, "address": address.to_string()}),
            Ok(address) => {
                json!({"isvalid": false, "error": format!("address is for {}, not {network}", address.network)})
            }
            Err(e) => json!({"isvalid": false, "error": e.to_string()}),
        })
    })?;
    Ok(())
}
