//! What goes wrong, as a caller sees it: [`RpcError`], a Bitcoin Core error code from
//! [`codes`] and a message that says what was wrong and what to do.

use jsonrpsee::types::ErrorObjectOwned;

/// Bitcoin Core's error codes, where one fits.
pub mod codes {
    /// A failure no other code names (Dash Core answers the address methods' errors with it).
    pub const MISC_ERROR: i32 = -1;
    /// Invalid, missing or duplicate parameter.
    pub const INVALID_PARAMETER: i32 = -8;
    /// Invalid address or key, or an unknown block or transaction.
    pub const INVALID_ADDRESS_OR_KEY: i32 = -5;
    /// A transaction or block failed to decode.
    pub const DESERIALIZATION_ERROR: i32 = -22;
    /// A transaction was rejected by the network rules.
    pub const VERIFY_REJECTED: i32 = -26;
    /// A transaction is already in the chain.
    pub const VERIFY_ALREADY_IN_CHAIN: i32 = -27;
    /// An internal error.
    pub const INTERNAL_ERROR: i32 = -32603;
    /// The body is not JSON, or not a request object or an array of them.
    pub const PARSE_ERROR: i32 = -32700;
    /// The JSON is not a valid request object.
    pub const INVALID_REQUEST: i32 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// Unbanning something that was not banned.
    pub const CLIENT_NODE_NOT_BANNED: i32 = -30;
    /// A wallet error.
    pub const WALLET_ERROR: i32 = -4;
    /// An amount out of range or badly written.
    pub const INVALID_AMOUNT: i32 = -3;
    /// A value of the wrong type or form (the same code as [`INVALID_AMOUNT`], as in
    /// Bitcoin Core).
    pub const TYPE_ERROR: i32 = -3;
    /// Not enough funds in the wallet.
    pub const WALLET_INSUFFICIENT_FUNDS: i32 = -6;
    /// The wallet must be unlocked first.
    pub const WALLET_UNLOCK_NEEDED: i32 = -13;
    /// The wallet passphrase is wrong.
    pub const WALLET_PASSPHRASE_INCORRECT: i32 = -14;
    /// The command does not fit the wallet's encryption state.
    pub const WALLET_WRONG_ENC_STATE: i32 = -15;
    /// No wallet is loaded.
    pub const WALLET_NOT_FOUND: i32 = -18;
}

/// An error a backend reports: a code from [`codes`] and a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct RpcError {
    /// The code.
    pub code: i32,
    /// What went wrong and what to do.
    pub message: String,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: i32, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
        }
    }
}

impl From<RpcError> for ErrorObjectOwned {
    fn from(error: RpcError) -> Self {
        ErrorObjectOwned::owned(error.code, error.message, None::<()>)
    }
}
