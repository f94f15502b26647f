//! The `Util` methods: checks that need no chain state beyond the network, and the fee
//! estimate.

use base64::Engine;
use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::server::RpcModule;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::json;
use timecoin_primitives::{Address, verify_message};

use super::Context;
use crate::codes;
use crate::error::RpcError;
use crate::params::{address_of, invalid, param};
use crate::render::time_value;

/// Fee-estimate targets, in blocks, as Bitcoin Core takes them.
const TARGETS: std::ops::RangeInclusive<u32> = 1..=1_008;

/// Registers `validateaddress`, `verifymessage`, `estimatesmartfee`.
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
    module.register_blocking_method("verifymessage", |params, context, _| {
        let text: String = param(&params, 0, "address")?;
        let signature: String = param(&params, 1, "signature")?;
        let message: String = param(&params, 2, "message")?;
        let network = context.backend.chain_info()?.network;
        let address = address_of(&text, network)?;
        let proof = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|_| ErrorObjectOwned::from(RpcError::new(codes::TYPE_ERROR, "Malformed base64 encoding")))?;
        Ok::<_, ErrorObjectOwned>(verify_message(&address.payload, &proof, &message))
    })?;
    module.register_blocking_method("estimatesmartfee", |params, context, _| {
        let target: u32 = param(&params, 0, "conf_target")?;
        if !TARGETS.contains(&target) {
            return Err(invalid(format!(
                "Invalid conf_target, must be between {} and {}",
                TARGETS.start(),
                TARGETS.end()
            )));
        }
        let rate = context.backend.fee_estimate(target)?;
        Ok::<_, ErrorObjectOwned>(json!({"feerate": time_value(rate), "blocks": target}))
    })?;
    Ok(())
}
