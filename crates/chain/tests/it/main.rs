//! Integration tests of the chain rules: genesis, transaction and block validation, rewards.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod blocks;
mod genesis;
mod transactions;
