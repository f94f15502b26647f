//! Messages signed with an address's key, as Bitcoin Core's `signmessage` and
//! `verifymessage` use them: to show that whoever controls an address agrees to a text.
//!
//! An address is the hash of a public key, and an Ed25519 signature does not recover its key,
//! so a signed message carries both: the public key (32 bytes), then the signature (64 bytes)
//! of the message's SignedMessage-domain hash. The domain keeps such a signature from ever
//! standing for a transaction's, a vote's or a proposal's.

use crate::address::AddressPayload;
use crate::hash::Domain;
use crate::keys::{PublicKey, SecretKey, Signature};

/// The length of a signed message's proof: public key and signature.
pub const MESSAGE_PROOF_LEN: usize = 32 + 64;

/// The proof that the holder of `key` signed `message`.
pub fn sign_message(key: &SecretKey, message: &str) -> [u8; MESSAGE_PROOF_LEN] {
    let digest = Domain::SignedMessage.hash(message.as_bytes());
    let signature = key.sign(&digest.0);
    let mut proof = [0u8; MESSAGE_PROOF_LEN];
    let (public, signed) = proof.split_at_mut(32);
    public.copy_from_slice(&key.public_key().0);
    signed.copy_from_slice(&signature.0);
    proof
}

/// Whether `proof` shows that the holder of `address`'s key signed `message`.
pub fn verify_message(address: &AddressPayload, proof: &[u8], message: &str) -> bool {
    let (Some(public), Some(signature)) = (proof.get(..32), proof.get(32..)) else {
        return false;
    };
    let (Ok(public), Ok(signature)) = (<[u8; 32]>::try_from(public), <[u8; 64]>::try_from(signature)) else {
        return false;
    };
    let key = PublicKey(public);
    if AddressPayload::from_public_key(&key) != *address {
        return false;
    }
    let digest = Domain::SignedMessage.hash(message.as_bytes());
    key.verify(&digest.0, &Signature(signature)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_verifies_only_with_its_text_its_address_and_its_proof() {
        let key = SecretKey::from_seed([7; 32]);
        let other = SecretKey::from_seed([8; 32]);
        let address = AddressPayload::from_public_key(&key.public_key());
        let proof = sign_message(&key, "I own this");
        assert!(verify_message(&address, &proof, "I own this"));
        assert!(!verify_message(&address, &proof, "I own that"));
        let elsewhere = AddressPayload::from_public_key(&other.public_key());
        assert!(!verify_message(&elsewhere, &proof, "I own this"));
        // Another key's proof names that key: not the address's.
        assert!(!verify_message(
            &address,
            &sign_message(&other, "I own this"),
            "I own this"
        ));
        let mut bent = proof;
        bent[40] ^= 1;
        assert!(!verify_message(&address, &bent, "I own this"));
        assert!(!verify_message(&address, &proof[..95], "I own this"));
        assert!(!verify_message(
            &address,
            &[proof.as_slice(), &[0]].concat(),
            "I own this"
        ));
    }
}
