//! Integration tests of the primitives: encodings, hashes, golden vectors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod encoding;
mod golden;
