//! Who may call the API, as in Bitcoin Core: a cookie file written at start (user
//! `__cookie__`, a random password) and `rpcauth` users from the configuration, whose
//! passwords are stored only as a salted HMAC-SHA256. Callers send HTTP Basic credentials;
//! every comparison takes the same time whatever the input.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

/// The user name of the cookie credentials.
pub const COOKIE_USER: &str = "__cookie__";

/// An `rpcauth` entry: `user:salt$hmac` with `hmac` = hex HMAC-SHA256(key = salt, password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcAuth {
    user: String,
    salt: String,
    hmac: [u8; 32],
}

/// An `rpcauth` entry does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("rpcauth entry {entry:?}: {reason}; expected user:salt$hmac (see `time-cli rpcauth`)")]
pub struct RpcAuthError {
    /// The entry, with its hash.
    pub entry: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl std::str::FromStr for RpcAuth {
    type Err = RpcAuthError;

    fn from_str(entry: &str) -> Result<RpcAuth, RpcAuthError> {
        let error = |reason| RpcAuthError {
            entry: entry.to_owned(),
            reason,
        };
        let (user, rest) = entry.split_once(':').ok_or_else(|| error("no ':' after the user"))?;
        let (salt, hash) = rest.split_once('$').ok_or_else(|| error("no '$' after the salt"))?;
        if user.is_empty() || salt.is_empty() {
            return Err(error("empty user or salt"));
        }
        let mut hmac = [0u8; 32];
        hex::decode_to_slice(hash, &mut hmac).map_err(|_| error("the hmac is not 64 hex characters"))?;
        Ok(RpcAuth {
            user: user.to_owned(),
            salt: salt.to_owned(),
            hmac,
        })
    }
}

impl RpcAuth {
    /// The entry for `user` with `password` and a fresh random salt (what `rpcauth.py`
    /// prints in Bitcoin Core).
    pub fn generate(user: &str, password: &str) -> String {
        let salt = hex::encode(rand::random::<[u8; 16]>());
        format!("{user}:{salt}${}", hex::encode(salted(&salt, password)))
    }
}

fn salted(salt: &str, password: &str) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(salt.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return [0; 32],
    };
    mac.update(password.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Equality whose time depends only on the lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The credentials the server accepts.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    cookie: Option<String>,
    users: Vec<RpcAuth>,
}

impl Credentials {
    /// Accepts the cookie `password` (if any) and the `rpcauth` users.
    pub fn new(cookie: Option<String>, users: Vec<RpcAuth>) -> Credentials {
        Credentials { cookie, users }
    }

    /// The user an `Authorization` header value authenticates, if any.
    pub fn check(&self, header: &str) -> Option<String> {
        let encoded = header.strip_prefix("Basic ")?.trim();
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        let mut found = None;
        // Every entry is compared, so the time does not tell which user exists.
        if let Some(cookie) = &self.cookie
            && same(user.as_bytes(), COOKIE_USER.as_bytes()) & same(password.as_bytes(), cookie.as_bytes())
        {
            found = Some(COOKIE_USER.to_owned());
        }
        for entry in &self.users {
            let matches =
                same(user.as_bytes(), entry.user.as_bytes()) & same(&salted(&entry.salt, password), &entry.hmac);
            if matches {
                found = Some(entry.user.clone());
            }
        }
        found
    }
}

/// A fresh random cookie password (64 hex characters).
pub fn random_password() -> String {
    let mut text = String::with_capacity(64);
    for byte in rand::random::<[u8; 32]>() {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// Writes `__cookie__:<password>` to `path`, readable by the owner only (0600 on Unix).
///
/// The cookie is written to a fresh `path.tmp` and renamed over `path`. Whatever was at
/// `path.tmp` (a file left by a crash, or a symlink someone planted) is removed first and the
/// new file is opened with `create_new` (`O_CREAT | O_EXCL`, which never follows a symlink), so
/// the password can neither be written through a link nor land in a file with an older,
/// looser mode. The rename replaces a symlink at `path` itself, never its target.
pub fn write_cookie(path: &Path, password: &str) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    match std::fs::remove_file(&temporary) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary)?;
    let written = write!(file, "{COOKIE_USER}:{password}").and_then(|()| file.sync_all());
    drop(file);
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(error);
    }
    std::fs::rename(&temporary, path)
}

/// Reads a cookie file: the `(user, password)` it holds.
pub fn read_cookie(path: &Path) -> std::io::Result<(String, String)> {
    let text = std::fs::read_to_string(path)?;
    let (user, password) = text
        .trim()
        .split_once(':')
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "a cookie file holds user:password"))?;
    Ok((user.to_owned(), password.to_owned()))
}

/// The `Authorization` header value for `user` and `password`.
pub fn basic_header(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_and_rpcauth_users_are_accepted_and_nothing_else() {
        let entry = RpcAuth::generate("alice", "secret");
        let credentials = Credentials::new(Some("c00kie".into()), vec![entry.parse().unwrap()]);
        assert_eq!(
            credentials.check(&basic_header("alice", "secret")).as_deref(),
            Some("alice")
        );
        assert_eq!(
            credentials.check(&basic_header(COOKIE_USER, "c00kie")).as_deref(),
            Some(COOKIE_USER)
        );
        for (user, password) in [("alice", "Secret"), ("bob", "secret"), (COOKIE_USER, "c00ki"), ("", "")] {
            assert_eq!(
                credentials.check(&basic_header(user, password)),
                None,
                "{user}:{password}"
            );
        }
        assert_eq!(credentials.check("Bearer abc"), None);
        assert_eq!(credentials.check("Basic !!!"), None);
    }

    #[test]
    fn rpcauth_entries_match_bitcoin_cores_format() {
        // Computed as Bitcoin Core's share/rpcauth/rpcauth.py does, with Python's hmac:
        // hmac.new(salt, password, 'SHA256') for salt "cb77f0957de88ff388cf817ddbc7273", "pw".
        let entry: RpcAuth =
            "u:cb77f0957de88ff388cf817ddbc7273$1084503bdc6cfb4b9a16a60ced24f81bf7e3e0ef89954b89a0c33f349f4220a3"
                .parse()
                .unwrap();
        let credentials = Credentials::new(None, vec![entry]);
        assert!(credentials.check(&basic_header("u", "pw")).is_some());
        assert!(credentials.check(&basic_header("u", "pW")).is_none());
        assert!("u:salt".parse::<RpcAuth>().is_err());
        assert!("u:salt$zz".parse::<RpcAuth>().is_err());
    }

    #[test]
    fn the_cookie_file_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".cookie");
        let password = random_password();
        write_cookie(&path, &password).unwrap();
        assert_eq!(read_cookie(&path).unwrap(), (COOKIE_USER.to_owned(), password));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    /// Whoever can write the data directory (another user, with a shared or loose directory)
    /// must not be able to redirect the cookie, nor keep it readable through a file they made.
    #[cfg(unix)]
    #[test]
    fn writing_the_cookie_follows_no_symlink_and_makes_a_fresh_private_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".cookie");
        let temporary = dir.path().join(".cookie.tmp");
        let mode = |path: &Path| std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777;
        let world_readable = std::fs::Permissions::from_mode(0o644);

        // A symlink at the temporary path to a file the attacker wants overwritten, and an old
        // cookie readable by everyone.
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "untouched").unwrap();
        std::os::unix::fs::symlink(&target, &temporary).unwrap();
        std::fs::write(&path, "__cookie__:old").unwrap();
        std::fs::set_permissions(&path, world_readable.clone()).unwrap();
        let password = random_password();
        write_cookie(&path, &password).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
        assert!(!std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
        assert_eq!(read_cookie(&path).unwrap(), (COOKIE_USER.to_owned(), password));
        assert_eq!(mode(&path), 0o600);
        assert!(!temporary.exists());

        // A stale temporary file readable by everyone (a crash between create and rename, or
        // planted) is not reused with its mode.
        std::fs::write(&temporary, "stale").unwrap();
        std::fs::set_permissions(&temporary, world_readable).unwrap();
        write_cookie(&path, &random_password()).unwrap();
        assert_eq!(mode(&path), 0o600);

        // A symlink at the cookie path itself is replaced, not written through.
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let password = random_password();
        write_cookie(&path, &password).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
        assert!(!std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
        assert_eq!(read_cookie(&path).unwrap(), (COOKIE_USER.to_owned(), password));
        assert_eq!(mode(&path), 0o600);
    }
}
