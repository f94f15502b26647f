//! Integration tests of the chain rules: genesis, transaction and block validation, rewards,
//! and the masternode list.

mod blocks;
mod genesis;
mod masternodes;
mod proposal;
mod sigcache;
mod transactions;
