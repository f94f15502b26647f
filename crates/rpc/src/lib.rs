//! TimeCoin's JSON-RPC API, Bitcoin Core style: method names, parameters, result fields and
//! error codes follow Bitcoin Core where the concept exists.
//!
//! The server knows nothing of storage or the mempool: the node implements [`Backend`]
//! (its parts [`ChainBackend`], [`MempoolBackend`], [`NetworkBackend`], [`WalletBackend`]),
//! and every method runs on a blocking thread because backends read the store.
//!
//! Every request is authenticated ([`auth`]: the cookie file and `rpcauth` users, HTTP
//! Basic) and bounded ([`ServeOptions`]); JSON-RPC 2.0 and 1.0-style requests and batches
//! are accepted, and answered in Bitcoin Core's envelope exactly (`envelope`); a WebSocket
//! on the same port speaks JSON-RPC 2.0 and serves subscriptions to finalized blocks
//! (`methods/subscriptions`, fed by [`ChainBackend::block_feed`]). `signing` signs raw
//! transactions with given keys, for the API and for `time-cli -offline`. The methods
//! served are exactly those of [`methods::METHODS`], which also drives `help` and the
//! command-line client.
//!
//! Where things live: the backend traits in `backend`, the values they exchange in `dto`,
//! each help category's methods in `methods/`, parameter parsing in `params`, the JSON
//! shapes of answers in `render`, and the HTTP server in `server`. With the `test-stub`
//! feature, `stub` holds a backend over fixed data for tests and fuzzing.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod auth;
mod backend;
mod batch;
pub mod client;
mod dto;
mod envelope;
mod error;
mod gate;
pub mod light;
pub mod methods;
mod params;
mod render;
mod server;
pub mod signing;
#[cfg(feature = "test-stub")]
pub mod stub;

pub use auth::{Credentials, RpcAuth};
pub use backend::{
    Backend, BlockFeed, ChainBackend, FEED, FeedBlock, MempoolBackend, NetworkBackend, Pending, WalletBackend,
};
pub use client::{Client, ClientError};
pub use dto::{
    AddressDeltaInfo, AddressUtxoInfo, ChainInfo, ConsensusStatus, LockedCollateral, MasternodeSummary, MempoolEntry,
    MempoolInfo, OutputOwner, PeerSummary, RegisterRequest, StateDump, StorageInfo, TxOutInfo, UpdateRequest,
    UtxoSetSummary, WalletBalances, WalletCoinInfo, WalletHistory, WalletTxBlock, WalletTxInfo, WalletTxOutput,
};
pub use error::{RpcError, codes};
pub use server::{Dispatcher, RpcServer, ServeOptions, serve};
