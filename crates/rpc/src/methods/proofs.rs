//! Finality proofs: `gettxoutproof`, `verifytxoutproof` and `getheaderproof`, assembled and
//! checked by `timecoin-light` over the backend's headers, certificates and set changes.

use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::server::RpcModule;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{Value, json};
use timecoin_light::{BuildError, ChainSource, TrustedState, TxProof};
use timecoin_primitives::{BlockHeader, CommitCertificate, Encode, MasternodeSet, TxId};

use super::Context;
use crate::backend::Backend;
use crate::codes;
use crate::error::RpcError;
use crate::params::{decode_hex, hash_param, invalid, optional, param};

/// The backend as a proof's source of headers, certificates and sets.
struct Source<'a>(&'a dyn Backend);

impl ChainSource for Source<'_> {
    type Error = RpcError;
    fn set_changes(&self, after: u64, upto: u64) -> Result<Vec<(u64, MasternodeSet)>, RpcError> {
        self.0.voting_set_changes(after, upto)
    }
    fn certified_header(&self, height: u64) -> Result<(BlockHeader, CommitCertificate), RpcError> {
        let missing = || {
            RpcError::new(
                codes::INVALID_ADDRESS_OR_KEY,
                format!("Block {height} is not final here"),
            )
        };
        let header = self.0.header(height)?.ok_or_else(missing)?;
        let certificate = self.0.certificate(height)?.ok_or_else(missing)?;
        Ok((header, certificate))
    }
}

fn build_error(error: BuildError<RpcError>) -> ErrorObjectOwned {
    match error {
        BuildError::Source(error) => error.into(),
        BuildError::NotInBlock(_) => RpcError::new(
            codes::INVALID_ADDRESS_OR_KEY,
            "Not all transactions found in specified or retrieved block",
        )
        .into(),
        other => RpcError::new(codes::MISC_ERROR, other.to_string()).into(),
    }
}

/// What a verifier trusting the block at `height` trusts: the block, and the set that
/// finalized it (the set its header names), as `timecoin_light::verify_headers` leaves a
/// verifier after that block.
fn trust_at(backend: &dyn Backend, height: u64) -> Result<TrustedState, ErrorObjectOwned> {
    let genesis = backend.genesis_trust()?;
    if height == 0 {
        return Ok(genesis);
    }
    let header = backend
        .header(height)?
        .ok_or_else(|| invalid(format!("trustedheight {height} is above the chain")))?;
    let set = backend.voting_set_at(height)?.unwrap_or(genesis.set);
    Ok(TrustedState {
        network: genesis.network,
        height,
        block: header.hash(),
        timestamp_ms: header.timestamp_ms,
        set,
    })
}

/// Registers `gettxoutproof`, `verifytxoutproof` and `getheaderproof`.
pub(super) fn register(module: &mut RpcModule<Context>) -> Result<(), RegisterMethodError> {
    module.register_blocking_method("gettxoutproof", |params, context, _| {
        let backend = &*context.backend;
        let words: Vec<String> = param(&params, 0, "txids")?;
        if words.is_empty() {
            return Err(invalid("Parameter 'txids' cannot be empty"));
        }
        let mut txids = Vec::with_capacity(words.len());
        let mut seen = std::collections::HashSet::with_capacity(words.len());
        for word in &words {
            let txid: TxId = word.parse().map_err(|e| invalid(format!("Invalid txid {word}: {e}")))?;
            if !seen.insert(txid) {
                return Err(invalid(format!("Invalid parameter, duplicated txid: {word}")));
            }
            txids.push(txid);
        }
        let hash = match optional::<Value>(&params, 1, "blockhash")? {
            None | Some(Value::Null) => {
                let first = txids
                    .first()
                    .copied()
                    .unwrap_or(TxId(timecoin_primitives::Hash256::ZERO));
                let height = match backend.transaction(&first)? {
                    Some((_, Some(height))) => height,
                    _ => {
                        return Err(
                            RpcError::new(codes::INVALID_ADDRESS_OR_KEY, "Transaction not yet in block").into(),
                        );
                    }
                };
                backend
                    .block_hash(height)?
                    .ok_or_else(|| RpcError::new(codes::INTERNAL_ERROR, "Block not found"))?
            }
            Some(_) => hash_param(&params, 1, "blockhash")?,
        };
        let (block, _) = backend
            .block(&hash)?
            .ok_or_else(|| RpcError::new(codes::INVALID_ADDRESS_OR_KEY, "Block not found"))?;
        let trusted = trust_at(backend, optional(&params, 2, "trustedheight")?.unwrap_or(0))?;
        let proof =
            timecoin_light::prove_transactions(&Source(backend), &trusted, &block, &txids).map_err(build_error)?;
        Ok::<_, ErrorObjectOwned>(json!(hex::encode(proof.to_bytes())))
    })?;
    module.register_blocking_method("verifytxoutproof", |params, context, _| {
        let backend = &*context.backend;
        let text: String = param(&params, 0, "proof")?;
        let proof: TxProof = decode_hex(&text, "proof")?;
        let invalid_proof = |e: timecoin_light::LightError| {
            ErrorObjectOwned::from(RpcError::new(
                codes::INVALID_ADDRESS_OR_KEY,
                format!("Invalid proof: {e}"),
            ))
        };
        let header = proof
            .headers
            .target()
            .ok_or_else(|| invalid_proof(timecoin_light::LightError::Empty))?
            .header;
        // A block of this node's chain is final here: only the branches need checking,
        // whatever set changes the proof carries or starts from.
        let transactions = if backend.block_hash(header.height)? == Some(header.hash()) {
            timecoin_light::check_transactions(&header, &proof).map_err(invalid_proof)?
        } else {
            // Checked from the genesis, to say whether it proves anything; final or not,
            // it is not in this chain.
            timecoin_light::verify_transactions(&backend.genesis_trust()?, &proof, &mut rand::rng())
                .map_err(invalid_proof)?;
            return Ok(json!([]));
        };
        Ok::<_, ErrorObjectOwned>(json!(
            transactions
                .iter()
                .map(|(_, tx)| tx.txid().to_string())
                .collect::<Vec<_>>()
        ))
    })?;
    module.register_blocking_method("getheaderproof", |params, context, _| {
        let backend = &*context.backend;
        let height: u64 = param(&params, 0, "height")?;
        let trusted = trust_at(backend, optional(&params, 1, "trustedheight")?.unwrap_or(0))?;
        let proof = timecoin_light::prove_header(&Source(backend), &trusted, height).map_err(build_error)?;
        Ok::<_, ErrorObjectOwned>(json!(hex::encode(proof.to_bytes())))
    })?;
    Ok(())
}
