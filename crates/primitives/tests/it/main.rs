//! Integration tests of the primitives: encodings, hashes, golden vectors.

mod encoding;
mod golden;
