//! The JSON-RPC server over real HTTP on loopback, serving the stub backend
//! (`timecoin_rpc::stub`, feature `test-stub`), and the blocking client against it and
//! against canned servers.

mod client;
mod envelope;
mod server;
mod timing;
