//! TimeCoin's primitive types and their canonical encoding.
//!
//! This crate owns the values every other crate passes around — [`Amount`], hashes,
//! Ed25519 keys and signatures, [`Address`]es, [`Transaction`]s, [`Block`]s, votes and
//! [`CommitCertificate`]s, masternodes and their sets — and the one byte encoding that is
//! hashed and signed for each of them.
//!
//! It deliberately knows nothing about chain rules (what makes a transaction valid in
//! context: see `timecoin-chain`), storage, networking or time. It does no I/O.
//!
//! Invariants a reader must keep:
//! - every consensus object has exactly one encoding: `encode(decode(b)) == b` for every
//!   accepted `b`, decoding consumes all input, and non-canonical forms are rejected;
//! - every hash is taken under its own [`Domain`] tag.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod address;
pub mod amount;
pub mod block;
pub mod consensus;
pub mod encoding;
pub mod hash;
pub mod keys;
pub mod limits;
pub mod masternode;
pub mod merkle;
pub mod message;
pub mod payload;
pub mod transaction;

pub use address::{Address, AddressError, AddressPayload, Network};
pub use amount::{Amount, ParseAmountError};
pub use block::{
    Block, BlockHeader, CertificateError, CommitCertificate, CommitSignature, Vote, VoteKind, chain_state_hash,
    evidence_hash, last_commit_hash, transactions_root,
};
pub use consensus::{Equivocation, EvidenceError, Proposal, SignedProposal, SignedVote};
pub use encoding::{Decode, DecodeError, Encode};
pub use hash::{Domain, Hash256};
pub use keys::{BatchVerifier, PublicKey, SecretKey, Signature, SignatureError};
pub use masternode::{Masternode, MasternodeSet, Tier};
pub use merkle::{MerkleBranch, MerkleError, merkle_root};
pub use message::{MESSAGE_PROOF_LEN, sign_message, verify_message};
pub use payload::{
    Payload, Registration, Revocation, Unlock, Update, genesis_masternode_id, payload_signature_message,
};
pub use transaction::{
    BlockHash, InputSignError, OutPoint, Transaction, TxId, TxInput, TxOutput, sign_inputs, sign_transaction,
    signature_message,
};
