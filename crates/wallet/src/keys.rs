//! Keys from a recovery phrase: a BIP39 mnemonic gives a 64-byte seed, and SLIP-0010 derives
//! Ed25519 keys from it along hardened paths (Ed25519 has no public derivation).
//!
//! TimeCoin's path is `m/44'/7777'/account'/change'/index'`: BIP44's layout, with 7777 as the
//! coin type (not registered in SLIP-0044) and every level hardened.

use hmac::{Hmac, Mac};
use sha2::Sha512;
use thiserror::Error;
use timecoin_primitives::SecretKey;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The coin type in TimeCoin's derivation path.
pub const COIN_TYPE: u32 = 7777;

/// Added to an index to harden it.
pub const HARDENED: u32 = 1 << 31;

/// A recovery phrase could not be read (or made from the given entropy); what bip39 found
/// wrong is the source.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid recovery phrase")]
pub struct MnemonicError(#[source] bip39::Error);

/// A BIP39 recovery phrase (English word list). Its words are wiped when it is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Mnemonic(bip39::Mnemonic);

/// `bip39::Mnemonic` wipes its word indexes on drop (its "zeroize" feature).
impl ZeroizeOnDrop for Mnemonic {}

impl std::fmt::Debug for Mnemonic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mnemonic(…)")
    }
}

impl Mnemonic {
    /// A new 24-word phrase from 32 random bytes.
    pub fn generate() -> Result<Mnemonic, MnemonicError> {
        let entropy = Zeroizing::new(rand::random::<[u8; 32]>());
        Mnemonic::from_entropy(entropy.as_slice())
    }

    /// The phrase for `entropy` (16, 20, 24, 28 or 32 bytes).
    pub fn from_entropy(entropy: &[u8]) -> Result<Mnemonic, MnemonicError> {
        bip39::Mnemonic::from_entropy(entropy)
            .map(Mnemonic)
            .map_err(MnemonicError)
    }

    /// Reads a phrase (words separated by spaces; the checksum is checked).
    pub fn parse(words: &str) -> Result<Mnemonic, MnemonicError> {
        bip39::Mnemonic::parse_normalized(words.trim())
            .map(Mnemonic)
            .map_err(MnemonicError)
    }

    /// The words, separated by single spaces.
    pub fn phrase(&self) -> String {
        self.0.to_string()
    }

    /// The entropy the words encode, wiped when dropped.
    pub fn entropy(&self) -> Zeroizing<Vec<u8>> {
        let (array, length) = self.0.to_entropy_array();
        let array = Zeroizing::new(array);
        Zeroizing::new(array.get(..length).unwrap_or_default().to_vec())
    }

    /// The BIP39 seed, with an optional extra passphrase (the "25th word"; empty: none).
    ///
    /// A plain array, so the caller decides where it lives; whoever keeps it should hold it
    /// in a `Zeroizing` (or wipe it) so that it does not outlive its use in freed memory.
    pub fn seed(&self, passphrase: &str) -> [u8; 64] {
        self.0.to_seed(passphrase)
    }
}

/// A SLIP-0010 Ed25519 node: a private key and its chain code, both wiped when it is dropped
/// (with the chain code, a node's key gives every key below it).
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct ExtendedKey {
    /// The 32-byte Ed25519 seed of the key.
    pub key: [u8; 32],
    /// The chain code.
    pub chain_code: [u8; 32],
}

impl std::fmt::Debug for ExtendedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExtendedKey(…)")
    }
}

/// The node whose key and chain code are the two halves of HMAC-SHA512(`key`, `parts`).
fn hmac_sha512(key: &[u8], parts: &[&[u8]]) -> ExtendedKey {
    let mut node = ExtendedKey {
        key: [0; 32],
        chain_code: [0; 32],
    };
    // HMAC takes keys of any length.
    if let Ok(mut mac) = Hmac::<Sha512>::new_from_slice(key) {
        for part in parts {
            mac.update(part);
        }
        let mut out = mac.finalize().into_bytes();
        let (left, right) = out.split_at(32);
        node.key.copy_from_slice(left);
        node.chain_code.copy_from_slice(right);
        out.as_mut_slice().zeroize();
    }
    node
}

impl ExtendedKey {
    /// The master node of `seed`.
    pub fn master(seed: &[u8]) -> ExtendedKey {
        hmac_sha512(b"ed25519 seed", &[seed])
    }

    /// The hardened child `index` (the hardening bit is set whatever `index` holds).
    pub fn child(&self, index: u32) -> ExtendedKey {
        let index = index | HARDENED;
        hmac_sha512(&self.chain_code, &[&[0], &self.key, &index.to_be_bytes()])
    }

    /// The node at `path` below this one.
    pub fn derive(&self, path: &[u32]) -> ExtendedKey {
        path.iter().fold(self.clone(), |node, index| node.child(*index))
    }

    /// The signing key.
    pub fn secret_key(&self) -> SecretKey {
        SecretKey::from_seed(self.key)
    }
}

/// Which chain of an account: addresses given out, or change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Chain {
    /// Addresses to receive payments.
    Receive,
    /// Addresses for change.
    Change,
}

/// The key at `m/44'/7777'/account'/chain'/index'` of `seed`.
pub fn derive_key(seed: &[u8], account: u32, chain: Chain, index: u32) -> SecretKey {
    let chain = match chain {
        Chain::Receive => 0,
        Chain::Change => 1,
    };
    ExtendedKey::master(seed)
        .derive(&[44, COIN_TYPE, account, chain, index])
        .secret_key()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SLIP-0010, "Test vector 1 for ed25519": (path, chain code, private key).
    const VECTOR_1: &[(&[u32], &str, &str)] = &[
        (
            &[],
            "90046a93de5380a72b5e45010748567d5ea02bbf6522f979e05c0d8d8ca9fffb",
            "2b4be7f19ee27bbf30c667b642d5f4aa69fd169872f8fc3059c08ebae2eb19e7",
        ),
        (
            &[0],
            "8b59aa11380b624e81507a27fedda59fea6d0b779a778918a2fd3590e16e9c69",
            "68e0fe46dfb67e368c75379acec591dad19df3cde26e63b93a8e704f1dade7a3",
        ),
        (
            &[0, 1],
            "a320425f77d1b5c2505a6b1b27382b37368ee640e3557c315416801243552f14",
            "b1d0bad404bf35da785a64ca1ac54b2617211d2777696fbffaf208f746ae84f2",
        ),
        (
            &[0, 1, 2],
            "2e69929e00b5ab250f49c3fb1c12f252de4fed2c1db88387094a0f8c4c9ccd6c",
            "92a5b23c0b8a99e37d07df3fb9966917f5d06e02ddbd909c7e184371463e9fc9",
        ),
        (
            &[0, 1, 2, 2],
            "8f6d87f93d750e0efccda017d662a1b31a266e4a6f5993b15f5c1f07f74dd5cc",
            "30d1dc7e5fc04c31219ab25a27ae00b50f6fd66622f6e9c913253d6511d1e662",
        ),
    ];

    #[test]
    fn slip10_ed25519_test_vector_1() {
        let master = ExtendedKey::master(&hex::decode("000102030405060708090a0b0c0d0e0f").unwrap());
        for (path, chain_code, key) in VECTOR_1 {
            let node = master.derive(path);
            assert_eq!(hex::encode(node.chain_code), *chain_code, "{path:?}");
            assert_eq!(hex::encode(node.key), *key, "{path:?}");
        }
    }

    #[test]
    fn bip39_vectors_with_the_trezor_passphrase() {
        // From BIP39's reference vectors (passphrase "TREZOR").
        let cases = [
            (
                "00000000000000000000000000000000",
                "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
                "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04",
            ),
            (
                "ffffffffffffffffffffffffffffffff",
                "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong",
                "ac27495480225222079d7be181583751e86f571027b0497b5b5d11218e0a8a13332572917f0f8e5a589620c6f15b11c61dee327651a14c34e18231052e48c069",
            ),
        ];
        for (entropy, phrase, seed) in cases {
            let mnemonic = Mnemonic::from_entropy(&hex::decode(entropy).unwrap()).unwrap();
            assert_eq!(mnemonic.phrase(), phrase);
            assert_eq!(Mnemonic::parse(phrase).unwrap(), mnemonic);
            assert_eq!(hex::encode(mnemonic.seed("TREZOR")), seed);
        }
        assert!(
            Mnemonic::parse("zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo").is_err(),
            "bad checksum"
        );
        assert!(Mnemonic::parse("abandon banana").is_err());
    }

    #[test]
    fn a_bad_phrase_keeps_what_bip39_found_as_the_source() {
        use std::error::Error as _;
        let Err(error) = Mnemonic::parse("zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo") else {
            panic!("a bad checksum parsed");
        };
        let source = error.source().and_then(|s| s.downcast_ref::<bip39::Error>());
        assert_eq!(source, Some(&bip39::Error::InvalidChecksum));
        assert!(!error.to_string().contains("checksum"), "{error}");
        let Err(error) = Mnemonic::from_entropy(&[0; 3]) else {
            panic!("3 bytes of entropy made a phrase");
        };
        let source = error.source().and_then(|s| s.downcast_ref::<bip39::Error>());
        assert_eq!(source, Some(&bip39::Error::BadEntropyBitCount(24)));
    }

    #[test]
    fn generated_phrases_are_24_words_and_keys_differ_by_path() {
        let mnemonic = Mnemonic::generate().unwrap();
        assert_eq!(mnemonic.phrase().split(' ').count(), 24);
        let seed = mnemonic.seed("");
        let a = derive_key(&seed, 0, Chain::Receive, 0).public_key();
        let b = derive_key(&seed, 0, Chain::Receive, 1).public_key();
        let c = derive_key(&seed, 0, Chain::Change, 0).public_key();
        assert!(a != b && a != c && b != c);
        assert_eq!(a, derive_key(&seed, 0, Chain::Receive, 0).public_key());
    }

    /// Compiles only if `T` wipes itself when dropped.
    fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}

    #[test]
    fn phrases_entropy_and_derived_keys_are_wiped_on_drop() {
        // The phrase's word indexes (bip39 with its "zeroize" feature) and our wrapper.
        wiped_on_drop::<bip39::Mnemonic>();
        wiped_on_drop::<Mnemonic>();
        // Every node of a derivation path, the chain codes included.
        wiped_on_drop::<ExtendedKey>();
        let mnemonic = Mnemonic::generate().unwrap();
        let entropy: zeroize::Zeroizing<Vec<u8>> = mnemonic.entropy();
        assert_eq!(entropy.len(), 32);
    }
}
