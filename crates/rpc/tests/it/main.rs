//! The JSON-RPC server over real HTTP on loopback, with a small in-memory backend.

mod server;
