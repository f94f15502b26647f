//! Integration tests of the chain rules: genesis, transaction and block validation, rewards.

mod blocks;
mod genesis;
mod transactions;
