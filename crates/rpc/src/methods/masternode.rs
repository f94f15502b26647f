//! The `Masternode` methods: the masternode set, this node's place in it, and the
//! wallet's registrations, updates, revocations and collateral.

use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::server::RpcModule;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::json;

use super::Context;
use crate::codes;
use crate::dto::{RegisterRequest, UpdateRequest};
use crate::error::RpcError;
use crate::params::{optional, param};
use crate::render::{masternode_json, time_value};

/// Registers `masternodelist`, `masternodestatus`, `masternoderegister`, `masternodeupdate`, `masternoderevoke`, `masternodeunlock`, `listlockedcollaterals`.
pub(super) fn register(module: &mut RpcModule<Context>) -> Result<(), RegisterMethodError> {
    module.register_blocking_method("masternodelist", |_, context, _| {
        let list = context.backend.masternodes()?;
        Ok::<_, ErrorObjectOwned>(list.iter().map(masternode_json).collect::<Vec<_>>())
    })?;
    module.register_blocking_method("masternodestatus", |_, context, _| {
        let Some(own) = context.backend.own_masternode() else {
            return Err(ErrorObjectOwned::from(RpcError::new(
                codes::INTERNAL_ERROR,
                "This node is not a masternode ([masternode] enabled = false)",
            )));
        };
        let list = context.backend.masternodes()?;
        Ok::<_, ErrorObjectOwned>(match list.iter().find(|m| m.operator == own) {
            Some(entry) => masternode_json(entry),
            None => json!({
                "operator": own,
                "status": "not registered",
                "power": 0,
            }),
        })
    })?;
    module.register_blocking_method("masternoderegister", |params, context, _| {
        let request = RegisterRequest {
            tier: param(&params, 0, "tier")?,
            operator: param(&params, 1, "operatorkey")?,
            service: param(&params, 2, "address")?,
            reward_address: optional(&params, 3, "rewardaddress")?,
        };
        Ok::<_, ErrorObjectOwned>(context.backend.wallet_masternode_register(request)?.to_string())
    })?;
    module.register_blocking_method("masternodeupdate", |params, context, _| {
        let request = UpdateRequest {
            id: param(&params, 0, "id")?,
            operator: optional(&params, 1, "operatorkey")?,
            service: optional(&params, 2, "address")?,
            reward_address: optional(&params, 3, "rewardaddress")?,
        };
        Ok::<_, ErrorObjectOwned>(context.backend.wallet_masternode_update(request)?.to_string())
    })?;
    module.register_blocking_method("masternoderevoke", |params, context, _| {
        let id: Option<String> = optional(&params, 0, "id")?;
        Ok::<_, ErrorObjectOwned>(context.backend.wallet_masternode_revoke(id)?.to_string())
    })?;
    module.register_blocking_method("masternodeunlock", |params, context, _| {
        let id: String = param(&params, 0, "id")?;
        let address: Option<String> = optional(&params, 1, "address")?;
        Ok::<_, ErrorObjectOwned>(context.backend.wallet_masternode_unlock(&id, address)?.to_string())
    })?;
    module.register_blocking_method("listlockedcollaterals", |_, context, _| {
        let locked = context.backend.wallet_locked_collaterals()?;
        Ok::<_, ErrorObjectOwned>(
            locked
                .iter()
                .map(|c| {
                    json!({
                        "outpoint": c.outpoint,
                        "amount": time_value(c.amount),
                        "masternode": c.masternode,
                        "status": c.status,
                        "banneduntil": c.banned_until,
                    })
                })
                .collect::<Vec<_>>(),
        )
    })?;
    Ok(())
}
