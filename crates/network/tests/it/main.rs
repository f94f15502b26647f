//! Tests of the P2P layer: the transport and handshake over loopback TCP, and the messages.

mod service;
mod transport;
mod wire;
