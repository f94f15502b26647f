//! Ed25519 keys and signatures under ZIP-215 rules (ed25519-zebra).
//!
//! ZIP-215 fixes which signatures are valid so that single and batch verification agree on
//! every input: a block that one node accepts in a batch, another node accepts one by one.

use std::fmt;
use std::str::FromStr;

use ed25519_zebra::{SigningKey, VerificationKey, VerificationKeyBytes, batch};
use thiserror::Error;

use crate::encoding::{Decode, DecodeError, Encode, Reader};
use crate::hash::ParseHashError;

/// An Ed25519 public key as its 32 bytes. Whether the bytes are a valid point is checked
/// when a signature is verified, so decoding never fails on a key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PublicKey(pub [u8; 32]);

/// An Ed25519 signature as its 64 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl Default for Signature {
    fn default() -> Self {
        Signature([0; 64])
    }
}

/// A signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("invalid signature")]
pub struct SignatureError;

/// An Ed25519 signing key.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.public_key())
    }
}

impl SecretKey {
    /// A new random key.
    pub fn generate<R: rand_core::CryptoRng>(rng: R) -> Self {
        SecretKey(SigningKey::new(rng))
    }

    /// The key whose 32-byte seed is `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SecretKey(SigningKey::from(seed))
    }

    /// The 32-byte seed.
    pub fn to_seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(VerificationKeyBytes::from(&self.0).into())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

impl PublicKey {
    /// Verifies `signature` over `message` by this key.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
        let key = VerificationKey::try_from(self.0).map_err(|_| SignatureError)?;
        key.verify(&ed25519_zebra::Signature::from_bytes(&signature.0), message)
            .map_err(|_| SignatureError)
    }
}

/// Collects signatures and verifies them all at once, about twice as fast per signature as
/// one-by-one verification. The result equals verifying each one alone (ZIP-215).
#[derive(Default)]
pub struct BatchVerifier {
    inner: batch::Verifier,
    len: usize,
}

impl fmt::Debug for BatchVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchVerifier").field("len", &self.len).finish()
    }
}

impl BatchVerifier {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues one signature.
    pub fn queue(&mut self, key: &PublicKey, message: &[u8], signature: &Signature) {
        let item = batch::Item::from((
            VerificationKeyBytes::from(key.0),
            ed25519_zebra::Signature::from_bytes(&signature.0),
            message,
        ));
        self.inner.queue(item);
        self.len += 1;
    }

    /// The number of queued signatures.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Verifies every queued signature; fails if any one is invalid. `rng` supplies the
    /// random coefficients that make the batch equation sound; it must be unpredictable to
    /// whoever chose the signatures.
    pub fn verify<R: rand_core::CryptoRng>(self, rng: R) -> Result<(), SignatureError> {
        if self.len == 0 {
            return Ok(());
        }
        self.inner.verify(rng).map_err(|_| SignatureError)
    }
}

macro_rules! fixed_bytes_codec {
    ($ty:ident, $len:literal) => {
        impl Encode for $ty {
            fn encode_to(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.0);
            }
            fn encoded_len(&self) -> usize {
                $len
            }
        }

        impl Decode for $ty {
            fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok($ty(reader.read_array()?))
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($ty))
            }
        }

        impl FromStr for $ty {
            type Err = ParseHashError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                if s.len() != $len * 2 {
                    return Err(ParseHashError::WrongLength(s.len()));
                }
                let mut out = [0u8; $len];
                hex::decode_to_slice(s, &mut out).map_err(|_| ParseHashError::NotHex)?;
                Ok($ty(out))
            }
        }
    };
}

fixed_bytes_codec!(PublicKey, 32);
fixed_bytes_codec!(Signature, 64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_single_and_batch_agree() {
        let key = SecretKey::from_seed([7; 32]);
        let other = SecretKey::from_seed([8; 32]);
        let sig = key.sign(b"message");
        assert_eq!(key.public_key().verify(b"message", &sig), Ok(()));
        assert_eq!(key.public_key().verify(b"other", &sig), Err(SignatureError));
        assert_eq!(other.public_key().verify(b"message", &sig), Err(SignatureError));

        let mut good = BatchVerifier::new();
        good.queue(&key.public_key(), b"message", &sig);
        good.queue(&other.public_key(), b"m2", &other.sign(b"m2"));
        assert_eq!(good.verify(rand::rng()), Ok(()));

        let mut bad = BatchVerifier::new();
        bad.queue(&key.public_key(), b"message", &sig);
        bad.queue(&other.public_key(), b"m2", &sig);
        assert_eq!(bad.verify(rand::rng()), Err(SignatureError));
    }

    #[test]
    fn invalid_point_is_an_invalid_signature_not_a_panic() {
        // y = 2 is not on the curve.
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        let sig = SecretKey::from_seed([1; 32]).sign(b"m");
        assert_eq!(PublicKey(bytes).verify(b"m", &sig), Err(SignatureError));
        let mut batch = BatchVerifier::new();
        batch.queue(&PublicKey(bytes), b"m", &sig);
        assert_eq!(batch.verify(rand::rng()), Err(SignatureError));
    }

    #[test]
    fn seed_round_trip() {
        let key = SecretKey::from_seed([9; 32]);
        assert_eq!(key.to_seed(), [9; 32]);
        let text = key.public_key().to_string();
        assert_eq!(text.parse::<PublicKey>(), Ok(key.public_key()));
    }
}
