//! Protocol-wide size limits that every decoder enforces.
//!
//! Chain parameters may set lower limits per network; none may set higher ones, because these
//! bound what a node will ever allocate for one object.

/// The largest encoded transaction, in bytes.
pub const MAX_TX_BYTES: usize = 1_000_000;
/// The largest encoded block, in bytes.
pub const MAX_BLOCK_BYTES: usize = 2_000_000;
/// The most transactions one block may hold.
pub const MAX_BLOCK_TXS: usize = 10_000;
/// The longest memo a transaction may carry, in bytes.
pub const MAX_MEMO_BYTES: usize = 256;
/// The most masternodes a set (and so a commit certificate) may hold.
pub const MAX_MASTERNODES: usize = 4_096;
/// The most equivocation proofs one block may carry.
pub const MAX_BLOCK_EVIDENCE: usize = 64;
