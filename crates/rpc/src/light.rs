//! The light client's own API: what it verified, answered locally with no node.
//!
//! `getblockcount` and `getbestblockhash` (its trusted block), `getblockheader` (of a block
//! it holds), `verifytxoutproof` (of a block it holds), and `getlightinfo`
//! (its sources and the conflict that stopped it, if any). Served over HTTP with the same
//! gate as the node's API (HTTP Basic with a cookie, a body limit).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use jsonrpsee::server::{BatchRequestConfig, RpcModule, Server, ServerConfig, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{Value, json};
use timecoin_light::{Conflict, Follower, TxProof};
use timecoin_primitives::Encode;

use crate::auth::Credentials;
use crate::codes;
use crate::error::RpcError;
use crate::gate::GateLayer;
use crate::params::{decode_hex, hash_param, optional, param};
use crate::render::header_json;

/// Largest request: a proof across many set changes fits.
const MAX_BODY: u32 = 8 * 1024 * 1024;

/// One node the light client follows, as last seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStatus {
    /// How the operator named it.
    pub name: String,
    /// Its last reported height.
    pub height: Option<u64>,
    /// Its last failure (a call that failed, a proof that did not verify).
    pub error: Option<String>,
}

/// What the light client shares with its API.
#[derive(Debug)]
pub struct LightState {
    /// The verified headers.
    pub follower: Follower,
    /// The sources.
    pub sources: Vec<SourceStatus>,
}

/// A conflict as `getlightinfo` shows it, evidence in hex.
pub fn conflict_json(conflict: &Conflict) -> Value {
    let side = |(source, header, certificate): &(
        String,
        timecoin_primitives::BlockHeader,
        timecoin_primitives::CommitCertificate,
    )| {
        json!({
            "source": source,
            "hash": header.hash().to_string(),
            "round": certificate.round,
            "header": hex::encode(header.to_bytes()),
            "certificate": hex::encode(certificate.to_bytes()),
        })
    };
    json!({
        "height": conflict.height,
        "first": side(&conflict.first),
        "second": side(&conflict.second),
        "doublesigners": conflict.double_signers.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "evidence": conflict.evidence.iter().map(|e| hex::encode(e.to_bytes())).collect::<Vec<_>>(),
    })
}

type Shared = Arc<Mutex<LightState>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, LightState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn module(state: Shared) -> Result<RpcModule<Shared>, jsonrpsee::core::RegisterMethodError> {
    let mut module = RpcModule::new(state);
    module.register_method("getblockcount", |_, state, _| {
        Ok::<_, ErrorObjectOwned>(lock(state).follower.trusted().height)
    })?;
    module.register_method("getbestblockhash", |_, state, _| {
        Ok::<_, ErrorObjectOwned>(lock(state).follower.trusted().block.to_string())
    })?;
    module.register_method("getblockheader", |params, state, _| {
        let hash = hash_param(&params, 0, "blockhash")?;
        let verbose: bool = optional(&params, 1, "verbose")?.unwrap_or(true);
        let state = lock(state);
        let header = *state.follower.header(&hash).ok_or_else(|| {
            RpcError::new(
                codes::INVALID_ADDRESS_OR_KEY,
                "Block not found among the verified headers",
            )
        })?;
        if !verbose {
            return Ok::<_, ErrorObjectOwned>(json!(hex::encode(header.to_bytes())));
        }
        Ok(header_json(&header, state.follower.trusted().height))
    })?;
    module.register_blocking_method("verifytxoutproof", |params, state, _| {
        let text: String = param(&params, 0, "proof")?;
        let proof: TxProof = decode_hex(&text, "proof")?;
        // Checked against a header the client verified: hashing only, no signature.
        let proven = lock(&state)
            .follower
            .verify_transactions(&proof)
            .map_err(|e| RpcError::new(codes::INVALID_ADDRESS_OR_KEY, format!("Invalid proof: {e}")))?;
        Ok::<_, ErrorObjectOwned>(json!(
            proven.txids().iter().map(ToString::to_string).collect::<Vec<_>>()
        ))
    })?;
    module.register_method("getlightinfo", |_, state, _| {
        let state = lock(state);
        let trusted = state.follower.trusted();
        let (held, lowest) = state.follower.held();
        Ok::<_, ErrorObjectOwned>(json!({
            "network": trusted.network.to_string(),
            "height": trusted.height,
            "bestblockhash": trusted.block.to_string(),
            "masternodesethash": trusted.set.hash().to_string(),
            "headers": held,
            "lowestheader": lowest,
            "sources": state.sources.iter().map(|s| json!({
                "name": s.name,
                "height": s.height,
                "error": s.error,
            })).collect::<Vec<_>>(),
            "conflict": state.follower.conflict().map(conflict_json),
        }))
    })?;
    Ok(module)
}

/// Serves the light client's API on `listen` to callers holding `credentials`.
pub async fn serve_light(
    listen: SocketAddr,
    state: Arc<Mutex<LightState>>,
    credentials: Credentials,
) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let config = ServerConfig::builder()
        .http_only()
        .max_request_body_size(MAX_BODY.saturating_mul(2))
        .max_connections(16)
        .set_batch_request_config(BatchRequestConfig::Limit(16))
        .build();
    let gate = tower::ServiceBuilder::new().layer(GateLayer::new(credentials, MAX_BODY as usize));
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(gate)
        .build(listen)
        .await?;
    let address = server.local_addr()?;
    let module = module(state).map_err(std::io::Error::other)?;
    Ok((address, server.start(module)))
}
