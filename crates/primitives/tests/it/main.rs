//! Integration tests of the primitives: encodings, hashes, golden vectors.

mod certificate;
mod encoding;
mod golden;
mod signing;
