//! The `Network` methods: peers, addresses to dial, and bans.

use std::net::SocketAddr;

use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::server::RpcModule;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{Value, json};

use super::Context;
use crate::codes;
use crate::error::RpcError;
use crate::params::{invalid, optional, param};

/// Registers `getnetworkinfo`, `addnode`, `getconnectioncount`, `getpeerinfo`, `setban`, `listbanned`.
pub(super) fn register(module: &mut RpcModule<Context>) -> Result<(), RegisterMethodError> {
    module.register_blocking_method("getnetworkinfo", |_, context, _| {
        let peers = context.backend.peers()?;
        let inbound = peers.iter().filter(|p| p.inbound).count();
        Ok::<_, ErrorObjectOwned>(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "subversion": format!("/timed:{}/", env!("CARGO_PKG_VERSION")),
            "protocolversion": 1,
            "connections": peers.len(),
            "connections_in": inbound,
            "connections_out": peers.len() - inbound,
            "networkactive": true,
        }))
    })?;
    module.register_blocking_method("addnode", |params, context, _| {
        let node: String = param(&params, 0, "node")?;
        let command: String = param(&params, 1, "command")?;
        if !matches!(command.as_str(), "add" | "onetry") {
            return Err(invalid("command must be add or onetry"));
        }
        let address: SocketAddr = node
            .parse()
            .map_err(|_| invalid(format!("node must be IP:port, got {node:?}")))?;
        context.backend.add_node(address);
        Ok::<_, ErrorObjectOwned>(Value::Null)
    })?;
    module.register_blocking_method("getconnectioncount", |_, context, _| {
        Ok::<_, ErrorObjectOwned>(context.backend.peers()?.len())
    })?;
    module.register_blocking_method("getpeerinfo", |_, context, _| {
        let peers = context.backend.peers()?;
        Ok::<_, ErrorObjectOwned>(
            peers
                .iter()
                .map(|p| {
                    json!({
                        "id": p.id,
                        "addr": p.address.to_string(),
                        "inbound": p.inbound,
                        "startingheight": p.starting_height,
                        "masternode": p.masternode,
                    })
                })
                .collect::<Vec<_>>(),
        )
    })?;
    module.register_blocking_method("setban", |params, context, _| {
        let target: String = param(&params, 0, "target")?;
        let command: String = param(&params, 1, "command")?;
        match command.as_str() {
            "add" => {
                let seconds: u64 = optional(&params, 2, "bantime")?.unwrap_or(86_400);
                if seconds == 0 || seconds > 365 * 86_400 {
                    return Err(invalid("bantime is 1 second to 365 days"));
                }
                context.backend.ban(&target, seconds)?;
            }
            "remove" => {
                if !context.backend.unban(&target)? {
                    return Err(RpcError::new(
                        codes::CLIENT_NODE_NOT_BANNED,
                        "Error: Unban failed. Requested address/identity was not previously banned.",
                    )
                    .into());
                }
            }
            _ => return Err(invalid("command must be add or remove")),
        }
        Ok::<_, ErrorObjectOwned>(Value::Null)
    })?;
    module.register_blocking_method("listbanned", |_, context, _| {
        Ok::<_, ErrorObjectOwned>(
            context
                .backend
                .bans()
                .into_iter()
                .map(|(target, left)| json!({"address": target, "ban_remaining": left}))
                .collect::<Vec<_>>(),
        )
    })?;
    Ok(())
}
