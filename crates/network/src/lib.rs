//! TimeCoin's peer-to-peer layer: an authenticated, encrypted transport (Noise XX with the
//! node's Ed25519 identity bound to each session), the handshake that admits only peers of
//! the same network and genesis, and length-checked frames.
//!
//! The [`service`] runs the peers: listening, dialling, admission, per-peer reading and
//! writing tasks, rate limits and bans. This crate knows nothing of storage or the mempool;
//! the node connects them through typed messages and events. The [`overlay`] says which
//! masternodes link to which and who relays a consensus message, the same on every node.
//!
//! Invariants a reader must keep:
//! - no frame larger than the configured maximum is ever allocated: its announced size is
//!   checked first;
//! - a peer is known by the Ed25519 key it proved, never by its address.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod addrbook;
pub mod handshake;
pub mod limits;
pub mod overlay;
mod queue;
pub mod service;
pub mod transport;
pub mod wire;

pub use addrbook::AddressBook;
pub use handshake::{HandshakeError, Hello, PROTOCOL_VERSION, connect, keeps_outbound};
pub use limits::{BAN_THRESHOLD, BanList, Misbehaviour, Offense, PeerLimits, RateConfig};
pub use overlay::Overlay;
pub use service::{BanTarget, NetworkConfig, NetworkEvent, NetworkHandle, PeerInfo, start};
pub use transport::{FrameAssembler, SecureReader, SecureStream, SecureWriter, TransportError, secure};
pub use wire::{Message, MessageClass};
