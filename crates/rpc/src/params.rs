//! Reading a method's parameters: positional JSON values turned into typed ones, and the
//! errors a caller gets for a missing or malformed one (Bitcoin Core's codes and wording).

use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde_json::Value;
use timecoin_primitives::{Address, BlockHash, Decode, Network, TxId};

use crate::codes;
use crate::error::RpcError;

/// An invalid-parameter error (`-8`) saying what was wrong.
pub(crate) fn invalid(message: impl Into<String>) -> ErrorObjectOwned {
    RpcError::new(codes::INVALID_PARAMETER, message).into()
}

/// The parameter at `index`, called `name` in errors; missing or mistyped is an error.
pub(crate) fn param<T: serde::de::DeserializeOwned>(
    params: &Params<'_>,
    index: usize,
    name: &str,
) -> Result<T, ErrorObjectOwned> {
    arg(&params.parse::<Vec<Value>>().unwrap_or_default(), index, name)
}

/// The parameter at `index` if given and not null.
pub(crate) fn optional<T: serde::de::DeserializeOwned>(
    params: &Params<'_>,
    index: usize,
    name: &str,
) -> Result<Option<T>, ErrorObjectOwned> {
    optional_arg(&params.parse::<Vec<Value>>().unwrap_or_default(), index, name)
}

/// [`param`] over parameters already read as values.
pub(crate) fn arg<T: serde::de::DeserializeOwned>(
    values: &[Value],
    index: usize,
    name: &str,
) -> Result<T, ErrorObjectOwned> {
    let value = values
        .get(index)
        .cloned()
        .ok_or_else(|| invalid(format!("missing parameter {name}")))?;
    serde_json::from_value(value).map_err(|e| invalid(format!("parameter {name}: {e}")))
}

/// [`optional`] over parameters already read as values.
pub(crate) fn optional_arg<T: serde::de::DeserializeOwned>(
    values: &[Value],
    index: usize,
    name: &str,
) -> Result<Option<T>, ErrorObjectOwned> {
    match values.get(index) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| invalid(format!("parameter {name}: {e}"))),
    }
}

/// A block hash parameter: 64 hex characters.
pub(crate) fn hash_param(params: &Params<'_>, index: usize, name: &str) -> Result<BlockHash, ErrorObjectOwned> {
    let text: String = param(params, index, name)?;
    text.parse()
        .map_err(|e| invalid(format!("parameter {name} must be a 64-character hex hash: {e}")))
}

/// The txid parameter at `index`: 64 hex characters.
pub(crate) fn txid_param(params: &Params<'_>, index: usize) -> Result<TxId, ErrorObjectOwned> {
    let text: String = param(params, index, "txid")?;
    text.parse()
        .map_err(|e| invalid(format!("parameter txid must be a 64-character hex hash: {e}")))
}

/// An amount of TIME given as a JSON number (or a decimal string), as Bitcoin Core takes BTC.
pub(crate) fn amount_value(value: &Value, name: &str) -> Result<u64, ErrorObjectOwned> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return Err(invalid(format!("parameter {name}: an amount is a number of TIME"))),
    };
    text.parse::<timecoin_primitives::Amount>()
        .map(|a| a.units())
        .map_err(|e| RpcError::new(codes::INVALID_AMOUNT, format!("Invalid amount {text}: {e}")).into())
}

/// An amount of TIME parameter, in units.
pub(crate) fn amount_param(params: &Params<'_>, index: usize, name: &str) -> Result<u64, ErrorObjectOwned> {
    let value: Value = param(params, index, name)?;
    amount_value(&value, name)
}

/// An address of `network` written as `text`; another network's, or text that is no
/// address, is `-5`.
pub(crate) fn address_of(text: &str, network: Network) -> Result<Address, ErrorObjectOwned> {
    let address: Address = text.parse().map_err(|e| {
        ErrorObjectOwned::from(RpcError::new(
            codes::INVALID_ADDRESS_OR_KEY,
            format!("Invalid address {text}: {e}"),
        ))
    })?;
    if address.network != network {
        return Err(RpcError::new(
            codes::INVALID_ADDRESS_OR_KEY,
            format!("Invalid address {text}: not for {network}"),
        )
        .into());
    }
    Ok(address)
}

/// `what` (a block, a commit) is not known here (`-5`).
pub(crate) fn not_found(what: &str) -> ErrorObjectOwned {
    RpcError::new(codes::INVALID_ADDRESS_OR_KEY, format!("{what} not found")).into()
}

/// A hex-encoded object (`what` names it in errors); bad hex or bytes are `-22`.
pub(crate) fn decode_hex<T: Decode>(text: &str, what: &str) -> Result<T, ErrorObjectOwned> {
    let bytes = hex::decode(text.trim()).map_err(|_| {
        ErrorObjectOwned::from(RpcError::new(
            codes::DESERIALIZATION_ERROR,
            format!("{what} decode failed: not hex"),
        ))
    })?;
    T::from_bytes(&bytes).map_err(|e| {
        ErrorObjectOwned::from(RpcError::new(
            codes::DESERIALIZATION_ERROR,
            format!("{what} decode failed: {e}"),
        ))
    })
}
