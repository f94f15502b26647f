//! TimeCoin's wallet: keys from a BIP39 recovery phrase by SLIP-0010 Ed25519 derivation, the
//! wallet file (encrypted at rest with Argon2id and XChaCha20-Poly1305 when a passphrase is
//! set), and payments (coin selection that avoids dust, the fee from the network's rate,
//! change, signing). It keeps no chain state: the node tells it which coins are spendable.
//!
//! Invariant: every secret this crate makes (the phrase, its entropy, derivation nodes, the
//! passphrase's key and Argon2's memory, an opened seal) is wiped when dropped (`zeroize`).
//! The BIP39 seed and the signing keys leave the crate as plain values: their holders wipe them.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod keys;
pub mod keystore;
pub mod send;

pub use keys::{COIN_TYPE, Chain, ExtendedKey, Mnemonic, MnemonicError, derive_key};
pub use keystore::{Keystore, KeystoreError};
pub use send::{Coin, PayRequest, Payment, SendContext, SendError, build, pay};
