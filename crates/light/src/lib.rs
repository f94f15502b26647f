//! Finality proofs, and their verification with no node: the light client's core.
//!
//! A block is final when more than 2/3 of the voting power of the masternode set its header
//! names precommitted it (its [`CommitCertificate`]). To check that with no node, a verifier
//! needs to know which set that is. It starts from a set it trusts (the genesis file's, or
//! one it verified before: a [`TrustedState`]) and moves to later sets the way CometBFT's
//! light client skips: a header naming a new set is trusted when its certificate carries
//! more than 1/3 of the *trusted* set's power (so at least one honest member of the trusted
//! set signed it, while fewer than 1/3 are faulty) and more than 2/3 of the new set's.
//!
//! The parts: `proof` holds the proofs and their canonical encoding ([`HeaderProof`]: the
//! certified headers from a trusted state to a block; [`TxProof`]: that, and merkle branches
//! of transactions in the block); `verify` checks them ([`verify_headers`],
//! [`verify_transactions`]); `build` assembles the shortest chain of set changes a proof
//! needs from any store of headers, certificates and sets ([`ChainSource`],
//! [`prove_header`]); `follow` is a light client's state ([`Follower`]: the headers it
//! verified from several sources, cross-checked, and the [`Conflict`] that stops it).
//!
//! Like CometBFT's, this trust is weakly subjective: once the masternodes of an old set have
//! all left, they could sign a different history that a verifier starting from that set
//! would accept. A verifier should start from a recent trusted state (a light client keeps
//! its own, and cross-checks more than one node), not only from genesis.
//!
//! The crate does no I/O and holds no clock; verification draws batch-verification
//! randomness from the caller's RNG.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

mod build;
mod follow;
mod proof;
mod verify;

pub use build::{BuildError, ChainSource, prove_header, prove_transactions};
pub use follow::{Advance, Conflict, Follower};
pub use proof::{CertifiedHeader, HeaderProof, MAX_PROOF_HEADERS, ProvenTransaction, TxProof};
pub use verify::{LightError, ProvenBlock, TrustedState, check_transactions, verify_headers, verify_transactions};

#[doc(no_inline)]
pub use timecoin_primitives::CommitCertificate;
