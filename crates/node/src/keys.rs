//! Key files: a 32-byte Ed25519 seed in hex, created on first use with mode 0600.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use timecoin_primitives::SecretKey;

/// Reads the key at `path`, or creates one there (readable by the owner only).
pub fn load_or_create(path: &Path) -> Result<SecretKey> {
    if path.exists() {
        return load(path);
    }
    let mut seed = [0u8; 32];
    getrandom_seed(&mut seed)?;
    let key = SecretKey::from_seed(seed);
    write(path, &key)?;
    Ok(key)
}

/// Writes `key` to a new file at `path` with mode 0600; refuses to overwrite.
pub fn write(path: &Path, key: &SecretKey) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating key file {}", path.display()))?;
    writeln!(file, "{}", hex::encode(key.to_seed())).with_context(|| format!("writing {}", path.display()))?;
    file.sync_all()?;
    Ok(())
}

/// Reads a key file.
pub fn load(path: &Path) -> Result<SecretKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading key file {}", path.display()))?;
    let mut seed = [0u8; 32];
    if hex::decode_to_slice(text.trim(), &mut seed).is_err() {
        bail!("key file {} does not hold 64 hex characters", path.display());
    }
    Ok(SecretKey::from_seed(seed))
}

/// A key that is the same on every run: the `index`th of `role` under `context` (for demos
/// and benchmarks, never for real funds).
pub fn derived(context: &str, role: &str, index: u64) -> SecretKey {
    let mut hasher = timecoin_primitives::Domain::Address.hasher();
    hasher.update(context.as_bytes());
    hasher.update(role.as_bytes());
    hasher.update(&index.to_le_bytes());
    SecretKey::from_seed(*hasher.finalize().as_bytes())
}

fn getrandom_seed(seed: &mut [u8; 32]) -> Result<()> {
    use rand::TryRng;
    rand::rngs::SysRng
        .try_fill_bytes(seed)
        .map_err(|e| anyhow::anyhow!("no system randomness for a new key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/masternode.key");
        let key = load_or_create(&path).unwrap();
        assert_eq!(load_or_create(&path).unwrap().public_key(), key.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(write(&path, &key).is_err(), "an existing key is never overwritten");
        std::fs::write(dir.path().join("bad.key"), "not hex").unwrap();
        let error = load(&dir.path().join("bad.key")).unwrap_err();
        assert!(error.to_string().contains("bad.key"));
    }
}
