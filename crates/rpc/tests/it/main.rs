//! The JSON-RPC server over real HTTP on loopback, serving the stub backend
//! (`timecoin_rpc::stub`, feature `test-stub`).

mod server;
