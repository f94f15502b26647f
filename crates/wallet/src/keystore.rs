//! The wallet file: the recovery phrase's entropy, encrypted at rest when a passphrase is set
//! (Argon2id stretches the passphrase into a key; XChaCha20-Poly1305 seals the entropy, so a
//! wrong passphrase or a changed byte is detected), plus the next unused address indexes.
//! The Argon2id costs and salt stored with the seal are bound to the key by Argon2 itself and
//! bounded when read, so an edited file cannot make an unlock take gigabytes or for ever.
//! The file is JSON, written through a temporary file and a rename, readable by its owner
//! only.

use std::ops::RangeInclusive;
use std::path::Path;

use argon2::{Algorithm, Argon2, Block, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::{Zeroize, Zeroizing};

use crate::keys::{Chain, Mnemonic, MnemonicError, derive_key};

/// The file format's version.
const VERSION: u32 = 1;

/// Argon2id cost: 64 MiB, 3 passes, one lane (OWASP's recommended minimum is 19 MiB, 2 passes).
const MEMORY_KIB: u32 = 64 * 1024;
const PASSES: u32 = 3;

/// The Argon2id costs accepted from a file. They are authenticated (Argon2 hashes them and the
/// salt into the key, so a changed one yields another key and the seal does not open), but
/// they are used before the passphrase can be checked: unbounded, a file could make an unlock
/// allocate gigabytes or run for ever. The floor is OWASP's recommended minimum.
const MEMORY_KIB_ACCEPTED: RangeInclusive<u32> = 19 * 1024..=1024 * 1024;
const PASSES_ACCEPTED: RangeInclusive<u32> = 2..=10;
const SALT_BYTES: usize = 16;
const NONCE_BYTES: usize = 24;

/// Why the wallet file could not be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// Reading or writing the file failed.
    #[error("wallet file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a wallet file of a version this build reads.
    #[error("wallet file {path} is damaged or of another version: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The passphrase is wrong (or the encrypted part was changed).
    #[error("wrong wallet passphrase")]
    WrongPassphrase,
    /// The wallet is encrypted and no passphrase was given.
    #[error("the wallet is encrypted: unlock it with its passphrase (walletpassphrase)")]
    Locked,
    /// The key derivation or encryption could not run.
    #[error("wallet encryption failed: {0}")]
    Crypto(String),
    /// The wallet's secret or its parameters are damaged.
    #[error("the wallet's secret is damaged: {0}")]
    Damaged(String),
    /// The stored phrase does not decode.
    #[error(transparent)]
    Mnemonic(#[from] MnemonicError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Encryption {
    kdf: String,
    memory_kib: u32,
    passes: u32,
    salt: String,
    nonce: String,
}

/// The wallet file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keystore {
    version: u32,
    /// The network the wallet's addresses are for.
    pub network: String,
    encryption: Option<Encryption>,
    /// The entropy, hex; sealed when `encryption` is set.
    secret: String,
    /// The next receiving address index.
    pub next_receive: u32,
    /// The next change address index.
    pub next_change: u32,
    /// Public keys derived ahead (hex), receiving chain, from index 0: addresses are not
    /// secret, so a locked wallet can still hand them out and recognise payments to them.
    #[serde(default)]
    pub receive_keys: Vec<String>,
    /// The same for the change chain.
    #[serde(default)]
    pub change_keys: Vec<String>,
    /// The first block that may pay the wallet: a node scans from here, not from the genesis.
    /// Absent in files written before it was kept (the whole chain is scanned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_height: Option<u64>,
    /// Addresses watched without their keys (`importaddress`), as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch_only: Vec<String>,
}

/// A wallet without a passphrase holds its entropy in `secret` in clear: wiped when the
/// keystore is dropped (as when `encryptwallet` replaces it with a sealed one).
impl Drop for Keystore {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl Encryption {
    /// The salt and nonce, if this build accepts the parameters; else what is wrong.
    fn checked(&self) -> Result<([u8; SALT_BYTES], [u8; NONCE_BYTES]), String> {
        if self.kdf != "argon2id" {
            return Err(format!(
                "unknown key derivation {:?} (this build uses argon2id)",
                self.kdf
            ));
        }
        if !MEMORY_KIB_ACCEPTED.contains(&self.memory_kib) {
            return Err(format!(
                "argon2id memory of {} KiB is outside {}..={} KiB",
                self.memory_kib,
                MEMORY_KIB_ACCEPTED.start(),
                MEMORY_KIB_ACCEPTED.end()
            ));
        }
        if !PASSES_ACCEPTED.contains(&self.passes) {
            return Err(format!(
                "argon2id pass count {} is outside {}..={}",
                self.passes,
                PASSES_ACCEPTED.start(),
                PASSES_ACCEPTED.end()
            ));
        }
        let mut salt = [0u8; SALT_BYTES];
        hex::decode_to_slice(&self.salt, &mut salt)
            .map_err(|_| format!("the salt is not {} hex characters", 2 * SALT_BYTES))?;
        let mut nonce = [0u8; NONCE_BYTES];
        hex::decode_to_slice(&self.nonce, &mut nonce)
            .map_err(|_| format!("the nonce is not {} hex characters", 2 * NONCE_BYTES))?;
        Ok((salt, nonce))
    }
}

/// The key sealing the entropy. It and Argon2's working memory (every block of which derives
/// from the passphrase) are wiped when dropped.
fn stretch(passphrase: &str, salt: &[u8], memory_kib: u32, passes: u32) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    let params = Params::new(memory_kib, passes, 1, Some(32)).map_err(|e| KeystoreError::Crypto(e.to_string()))?;
    let mut memory = Zeroizing::new(vec![Block::default(); params.block_count()]);
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into_with_memory(passphrase.as_bytes(), salt, key.as_mut_slice(), memory.as_mut_slice())
        .map_err(|e| KeystoreError::Crypto(e.to_string()))?;
    Ok(key)
}

impl Keystore {
    /// A wallet for `network` holding `mnemonic`, sealed with `passphrase` if given.
    pub fn new(network: &str, mnemonic: &Mnemonic, passphrase: Option<&str>) -> Result<Keystore, KeystoreError> {
        let entropy = mnemonic.entropy();
        let (encryption, secret) = match passphrase {
            None => (None, hex::encode(entropy.as_slice())),
            Some(passphrase) => {
                let salt: [u8; SALT_BYTES] = rand::random();
                let nonce: [u8; NONCE_BYTES] = rand::random();
                let key = stretch(passphrase, &salt, MEMORY_KIB, PASSES)?;
                let cipher = XChaCha20Poly1305::new((&*key).into());
                let sealed = cipher
                    .encrypt(XNonce::from_slice(&nonce), entropy.as_slice())
                    .map_err(|e| KeystoreError::Crypto(e.to_string()))?;
                let encryption = Encryption {
                    kdf: "argon2id".to_owned(),
                    memory_kib: MEMORY_KIB,
                    passes: PASSES,
                    salt: hex::encode(salt),
                    nonce: hex::encode(nonce),
                };
                (Some(encryption), hex::encode(sealed))
            }
        };
        Ok(Keystore {
            version: VERSION,
            network: network.to_owned(),
            encryption,
            secret,
            next_receive: 0,
            next_change: 0,
            receive_keys: Vec::new(),
            change_keys: Vec::new(),
            birth_height: None,
            watch_only: Vec::new(),
        })
    }

    /// Derives public keys from `seed` until each chain holds `ahead` beyond its next index.
    pub fn fill_pool(&mut self, seed: &[u8], ahead: u32) {
        for (chain, keys, next) in [
            (Chain::Receive, &mut self.receive_keys, self.next_receive),
            (Chain::Change, &mut self.change_keys, self.next_change),
        ] {
            let want = next.saturating_add(ahead);
            while (keys.len() as u64) < u64::from(want) {
                let index = u32::try_from(keys.len()).unwrap_or(u32::MAX);
                keys.push(derive_key(seed, 0, chain, index).public_key().to_string());
            }
        }
    }

    /// The same secret under a new passphrase (or none), keeping indexes and pools.
    pub fn resealed(&self, mnemonic: &Mnemonic, passphrase: Option<&str>) -> Result<Keystore, KeystoreError> {
        let mut sealed = Keystore::new(&self.network, mnemonic, passphrase)?;
        sealed.next_receive = self.next_receive;
        sealed.next_change = self.next_change;
        sealed.receive_keys = self.receive_keys.clone();
        sealed.change_keys = self.change_keys.clone();
        sealed.birth_height = self.birth_height;
        sealed.watch_only = self.watch_only.clone();
        Ok(sealed)
    }

    /// Whether a passphrase is needed to use the keys.
    pub fn is_encrypted(&self) -> bool {
        self.encryption.is_some()
    }

    /// The recovery phrase, opening the seal with `passphrase` when the wallet is encrypted.
    pub fn mnemonic(&self, passphrase: Option<&str>) -> Result<Mnemonic, KeystoreError> {
        Ok(Mnemonic::from_entropy(&self.entropy(passphrase)?)?)
    }

    /// The phrase's entropy (the seal opened with `passphrase` when the wallet is encrypted),
    /// wiped when dropped.
    fn entropy(&self, passphrase: Option<&str>) -> Result<Zeroizing<Vec<u8>>, KeystoreError> {
        let secret = Zeroizing::new(
            hex::decode(&self.secret).map_err(|_| KeystoreError::Damaged("secret is not hex".to_owned()))?,
        );
        match (&self.encryption, passphrase) {
            (None, _) => Ok(secret),
            (Some(_), None) => Err(KeystoreError::Locked),
            (Some(encryption), Some(passphrase)) => {
                let (salt, nonce) = encryption.checked().map_err(KeystoreError::Damaged)?;
                let key = stretch(passphrase, &salt, encryption.memory_kib, encryption.passes)?;
                XChaCha20Poly1305::new((&*key).into())
                    .decrypt(XNonce::from_slice(&nonce), secret.as_slice())
                    .map(Zeroizing::new)
                    .map_err(|_| KeystoreError::WrongPassphrase)
            }
        }
    }

    /// Reads a wallet file.
    pub fn load(path: &Path) -> Result<Keystore, KeystoreError> {
        // A wallet without a passphrase holds its entropy in clear.
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| KeystoreError::Io {
            path: path.display().to_string(),
            source,
        })?);
        let keystore: Keystore = serde_json::from_str(&text).map_err(|e| KeystoreError::Corrupt {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        if keystore.version != VERSION {
            return Err(KeystoreError::Corrupt {
                path: path.display().to_string(),
                reason: format!("version {} (this build reads {VERSION})", keystore.version),
            });
        }
        if let Some(encryption) = &keystore.encryption {
            encryption.checked().map_err(|reason| KeystoreError::Corrupt {
                path: path.display().to_string(),
                reason: format!("{reason}; restore the file from a backup or the wallet from its phrase"),
            })?;
        }
        Ok(keystore)
    }

    /// Writes the wallet file (mode 0600), replacing the old one only once the new one is
    /// complete on disk. The new file gets a fresh random name beside the old one, opened
    /// with `create_new` (`O_CREAT | O_EXCL`, which never follows a symlink), so the wallet is
    /// neither written through a link nor left in a file with an older, looser mode, and two
    /// saves at once (the wallet's own and a backup beside it) never touch each other's file.
    pub fn save(&self, path: &Path) -> Result<(), KeystoreError> {
        let io = |source| KeystoreError::Io {
            path: path.display().to_string(),
            source,
        };
        let text =
            Zeroizing::new(serde_json::to_string_pretty(self).map_err(|e| KeystoreError::Crypto(e.to_string()))?);
        // A name of its own each time: two saves at once (the wallet's, and a backup beside
        // it) never write, or remove, each other's temporary file.
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary = path.with_file_name(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temporary).map_err(io)?;
        let written = std::io::Write::write_all(&mut file, text.as_bytes()).and_then(|()| file.sync_all());
        drop(file);
        if let Err(error) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(io(error));
        }
        std::fs::rename(&temporary, path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encrypted_wallet_opens_only_with_its_passphrase_and_detects_tampering() {
        let mnemonic = Mnemonic::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.json");
        let keystore = Keystore::new("local", &mnemonic, Some("correct horse")).unwrap();
        keystore.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(&hex::encode(mnemonic.entropy())),
            "the entropy is not stored in clear"
        );
        let read = Keystore::load(&path).unwrap();
        assert!(read.is_encrypted());
        assert_eq!(read.mnemonic(Some("correct horse")).unwrap(), mnemonic);
        assert!(matches!(
            read.mnemonic(Some("wrong horse")),
            Err(KeystoreError::WrongPassphrase)
        ));
        assert!(matches!(read.mnemonic(None), Err(KeystoreError::Locked)));
        let mut tampered = read.clone();
        let mut bytes = hex::decode(&tampered.secret).unwrap();
        bytes[0] ^= 1;
        tampered.secret = hex::encode(bytes);
        assert!(matches!(
            tampered.mnemonic(Some("correct horse")),
            Err(KeystoreError::WrongPassphrase)
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn a_plain_wallet_round_trips_and_damage_is_named() {
        let mnemonic = Mnemonic::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.json");
        let mut keystore = Keystore::new("testnet", &mnemonic, None).unwrap();
        keystore.next_receive = 7;
        keystore.save(&path).unwrap();
        let read = Keystore::load(&path).unwrap();
        assert_eq!(read, keystore);
        assert_eq!(read.mnemonic(None).unwrap(), mnemonic);
        std::fs::write(&path, "{\"version\": 1}").unwrap();
        let error = Keystore::load(&path).unwrap_err();
        assert!(matches!(error, KeystoreError::Corrupt { .. }), "{error}");
        assert!(error.to_string().contains("wallet.json"));
    }

    /// As the RPC cookie: a symlink or a loose old file beside the wallet (where an earlier
    /// version put its temporary file; a plain wallet's file holds its secret) must neither
    /// receive the wallet nor lend it its mode, and a save leaves no temporary file.
    #[cfg(unix)]
    #[test]
    fn saving_follows_no_symlink_and_makes_a_fresh_private_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.json");
        let temporary = dir.path().join("wallet.tmp");
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "untouched").unwrap();
        std::os::unix::fs::symlink(&target, &temporary).unwrap();
        let keystore = Keystore::new("local", &Mnemonic::generate().unwrap(), None).unwrap();
        keystore.save(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
        assert!(!std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
        assert_eq!(Keystore::load(&path).unwrap(), keystore);

        std::fs::write(&temporary, "stale").unwrap();
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o644)).unwrap();
        keystore.save(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::read_to_string(&temporary).unwrap(),
            "stale",
            "not written through"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".tmp") && name != "wallet.tmp")
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }

    /// An edit to a wallet file's encryption parameters.
    type Change = fn(&mut Encryption);

    /// The wallet file is not authenticated as a whole, and its Argon2 costs are read before
    /// the passphrase can be checked: costs a build would not write are refused on read,
    /// before any key derivation runs.
    #[test]
    fn absurd_key_derivation_costs_are_refused_before_any_derivation() {
        let mnemonic = Mnemonic::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.json");
        let sealed = Keystore::new("local", &mnemonic, Some("pw")).unwrap();
        let cases: [(&str, Change, &str); 6] = [
            ("4 TiB", |e| e.memory_kib = u32::MAX, "4294967295 KiB"),
            ("2 GiB", |e| e.memory_kib = 2 * 1024 * 1024, "2097152 KiB"),
            ("8 KiB", |e| e.memory_kib = 8, "8 KiB"),
            ("endless", |e| e.passes = u32::MAX, "pass count 4294967295"),
            ("one pass", |e| e.passes = 1, "pass count 1 "),
            ("long salt", |e| e.salt = "00".repeat(4096), "salt"),
        ];
        for (name, change, named) in cases {
            let mut keystore = sealed.clone();
            change(keystore.encryption.as_mut().unwrap());
            keystore.save(&path).unwrap();
            let error = Keystore::load(&path).expect_err(name);
            assert!(matches!(error, KeystoreError::Corrupt { .. }), "{name}: {error}");
            let message = error.to_string();
            assert!(
                message.contains(named) && message.contains("wallet.json"),
                "{name}: {message}"
            );
            // A keystore that did not come from `load` is refused as well.
            let error = keystore.mnemonic(Some("pw")).unwrap_err();
            assert!(matches!(error, KeystoreError::Damaged(_)), "{name}: {error}");
        }
    }

    /// Argon2 hashes its costs and the salt into the key, so a changed one gives another key
    /// and the seal does not open: the parameters are authenticated without a format change.
    #[test]
    fn a_changed_key_derivation_parameter_fails_decryption() {
        let mnemonic = Mnemonic::generate().unwrap();
        let sealed = Keystore::new("local", &mnemonic, Some("pw")).unwrap();
        assert_eq!(sealed.mnemonic(Some("pw")).unwrap(), mnemonic);
        let changes: [Change; 3] = [
            |e| e.memory_kib = 32 * 1024,
            |e| e.passes = 2,
            |e| e.salt = hex::encode([7u8; 16]),
        ];
        for change in changes {
            let mut keystore = sealed.clone();
            change(keystore.encryption.as_mut().unwrap());
            assert!(matches!(
                keystore.mnemonic(Some("pw")),
                Err(KeystoreError::WrongPassphrase)
            ));
        }
    }

    /// Compiles only if `T` wipes itself when dropped.
    fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}

    #[test]
    fn the_passphrase_key_and_the_opened_secret_are_wiped_on_drop() {
        // The cipher wipes its copy of the key; the key and Argon2's memory are ours to wipe.
        wiped_on_drop::<XChaCha20Poly1305>();
        fn zeroizable<T: zeroize::Zeroize>() {}
        zeroizable::<argon2::Block>();
        let key: zeroize::Zeroizing<[u8; 32]> = stretch("pw", &[1; SALT_BYTES], MEMORY_KIB, PASSES).unwrap();
        assert_ne!(*key, [0; 32]);
        let mnemonic = Mnemonic::generate().unwrap();
        for passphrase in [None, Some("pw")] {
            let keystore = Keystore::new("local", &mnemonic, passphrase).unwrap();
            let entropy: zeroize::Zeroizing<Vec<u8>> = keystore.entropy(passphrase).unwrap();
            assert_eq!(*entropy, *mnemonic.entropy());
        }
    }

    /// A version 1 file written before the costs were bounded (64 MiB, 3 passes) still opens.
    #[test]
    fn an_existing_version_1_wallet_file_still_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.json");
        std::fs::write(&path, VERSION_1_FILE).unwrap();
        let keystore = Keystore::load(&path).unwrap();
        assert_eq!(
            keystore.mnemonic(Some("correct horse")).unwrap().phrase(),
            VERSION_1_PHRASE
        );
    }

    /// A wallet file written by the first release (entropy 0011…eeff twice, passphrase
    /// "correct horse"): later builds must keep opening it.
    const VERSION_1_FILE: &str = r#"{
  "version": 1,
  "network": "local",
  "encryption": {
    "kdf": "argon2id",
    "memory_kib": 65536,
    "passes": 3,
    "salt": "4a9e733956ad6da55fe22f5efc1cacea",
    "nonce": "c693ba5b3a06931a2577729f1a50806dbf1f558373b4900c"
  },
  "secret": "321e981e6a20d6355b4c10af84148ca4a2bab6093723beff48eb1821e22ef5c0afae46a17dab7fa6bc37ef19ab884a96",
  "next_receive": 1,
  "next_change": 0,
  "receive_keys": [
    "6c5002a6f9847daea7120c71360681089ee78ef17875c2f8168f02e4570cba1a"
  ],
  "change_keys": [
    "40402875c9797a14bc1ee0e3ca48717b649014dc5d3c2a98cd50497650c9d2fb"
  ]
}"#;
    const VERSION_1_PHRASE: &str = "abandon math mimic master filter design carbon crystal rookie group knife wrap absurd \
        much snack melt grid rough chapter fever rubber humble room trophy";
}
