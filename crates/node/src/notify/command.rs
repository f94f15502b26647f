//! `blocknotify` and `walletnotify` commands: Bitcoin Core's placeholders, and running one.

use std::process::Stdio;

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// `blocknotify`'s command line for the block `hash` (hex): `%s` replaced.
pub(crate) fn block(template: &str, hash: &str) -> String {
    template.replace("%s", hash)
}

/// `walletnotify`'s command line for the transaction `txid` (hex) of the wallet `wallet`,
/// in the block `(hash, height)` or in the mempool: `%s`, `%b` (`unconfirmed` in the
/// mempool), `%h` (`-1`) and, last, `%w` (shell-quoted, as Bitcoin Core does; a wallet's
/// name is the one value here that is not hex or a number).
pub(crate) fn wallet(template: &str, txid: &str, wallet: &str, block: Option<(&str, u64)>) -> String {
    let (hash, height) = match block {
        Some((hash, height)) => (hash.to_owned(), height.to_string()),
        None => ("unconfirmed".to_owned(), "-1".to_owned()),
    };
    template
        .replace("%s", txid)
        .replace("%b", &hash)
        .replace("%h", &height)
        .replace("%w", &shell_quote(wallet))
}

/// `text` as one word for `sh`: in single quotes, each single quote written `'"'"'`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r#"'"'"'"#))
}

/// Runs `line` with `sh -c` and waits for it (killed if the node stops first); a failure
/// is logged, never returned: a notification command cannot stop the node.
pub(crate) async fn run(line: &str, cancel: &CancellationToken) {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(line)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => {
            warn!(command = line, %error, "a notification command could not start");
            return;
        }
    };
    tokio::select! {
        () = cancel.cancelled() => {}
        status = child.wait() => match status {
            Ok(status) if status.success() => debug!(command = line, "notification command ran"),
            Ok(status) => warn!(command = line, %status, "a notification command failed"),
            Err(error) => warn!(command = line, %error, "a notification command could not be waited for"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_bitcoin_cores() {
        assert_eq!(block("notify.sh %s %s", "ab"), "notify.sh ab ab");
        assert_eq!(
            wallet("w %s %w %b %h", "01", "main", Some(("ff", 7))),
            "w 01 'main' ff 7"
        );
        assert_eq!(wallet("w %s %b %h", "01", "main", None), "w 01 unconfirmed -1");
        // A wallet's name cannot break out of its quotes, nor be read as a placeholder of
        // its own: `%w` is replaced last.
        assert_eq!(
            wallet("w %w %s", "01", "it's %s; rm -rf /", None),
            r#"w 'it'"'"'s %s; rm -rf /' 01"#
        );
    }
}
