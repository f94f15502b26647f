//! The TimeCoin node as a library: what the `timed` binary runs, and what tests and the lab
//! (`crates/lab`) drive.
//!
//! It owns the daemon's assembly and its moving parts: the configuration ([`config`]), the
//! daemon that opens the store and starts the network, the JSON-RPC server and the consensus
//! host ([`daemon`]); the host itself, which drives the pure consensus engine, proposes,
//! applies decided blocks and follows peers when behind; transaction admission and relay;
//! the server of peers' block and transaction requests; the JSON-RPC backend; metrics; the
//! wallet's index of the chain; the light client ([`light`]); and the local-network tools a
//! developer runs ([`localnet`], [`demo`]). It does not own consensus rules (`timecoin-chain`), the engine
//! (`timecoin-consensus`), storage, the P2P protocol or the RPC surface: those crates do, and
//! this one wires them together.
//!
//! Invariants a reader must keep: the consensus loop never waits on a disk read for a peer
//! (peers' requests are served by a task of their own), blocking storage I/O and CPU-heavy
//! checks run on blocking threads, and every task is owned by the daemon's tracker and stopped
//! by its cancellation token.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

mod admission;
mod backend;
pub mod config;
pub mod daemon;
pub mod demo;
mod host;
pub mod keys;
pub mod light;
pub mod localnet;
pub mod logging;
mod metrics;
mod notify;
mod propose;
mod relay;
mod serve;
pub mod state_file;
mod sync;
mod wallet;

pub use host::now_ms;
