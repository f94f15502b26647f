//! The `Zmq` method: which ZMQ notifications the node publishes.

use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::server::RpcModule;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{Value, json};

use super::Context;

/// Registers `getzmqnotifications`. Bitcoin Core also reports each notifier's high-water mark
/// (`hwm`, in messages); it is left out here, because the publisher counts no messages: it
/// drops what a subscriber's connection cannot take at once.
pub(super) fn register(module: &mut RpcModule<Context>) -> Result<(), RegisterMethodError> {
    module.register_blocking_method("getzmqnotifications", |_, context, _| {
        Ok::<_, ErrorObjectOwned>(Value::from(
            context
                .backend
                .zmq_notifications()
                .into_iter()
                .map(|(kind, address)| json!({"type": kind, "address": address}))
                .collect::<Vec<_>>(),
        ))
    })?;
    Ok(())
}
