//! TimeCoin's BFT consensus: the Tendermint algorithm ("The latest gossip on BFT consensus",
//! Buchman, Kwon and Milosevic) as a pure state machine.
//!
//! The [`Engine`] takes [`Input`]s — a height to start with its validator set, proposals
//! and votes whose signatures the host checked, the host's verdict on proposed values,
//! timeouts that fired — and returns [`Effect`]s for the host to carry out in order: persist
//! to the write-ahead log, broadcast, schedule a timeout, produce a value, decide, report
//! equivocation. It owns no clock, no randomness, no I/O and no async runtime, which is what
//! lets a simulator run thousands of seeded Byzantine scenarios (see `timecoin-test-utils`).
//!
//! Invariants a reader must keep:
//! - nothing the engine signed is ever contradicted: every signature is preceded by a
//!   [`Effect::PersistWal`] that the host makes durable before the broadcast, and on restart
//!   the engine re-sends what the log holds instead of signing anew;
//! - a decision needs precommits of more than 2/3 of the voting power for a value the host
//!   declared valid.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

mod ahead;
mod engine;
mod gate;
mod validators;
mod votes;
mod wal;

pub use ahead::{AheadWitnesses, DEFAULT_AHEAD_TTL_MS};
pub use engine::{Decision, Effect, Engine, EngineConfig, Input, Step, Timeout, TimeoutConfig, TimeoutKind};
pub use gate::{Arrival, ProposalAdmission, ProposalGate};
pub use validators::{Validator, ValidatorSet, ValidatorSetError};
pub use votes::{AddOutcome, RoundVotes, Tally, VoteKeeper};
pub use wal::{MemoryWal, Wal, WalEntry};
