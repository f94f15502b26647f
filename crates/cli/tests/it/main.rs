//! `time-cli` as a process. (Its calls to a running node are tested with the node's local
//! network in `crates/node/tests/it/localnet.rs`.)

use std::process::Command;

fn time_cli(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_time-cli"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn rpcauth_prints_an_entry_the_server_accepts() {
    let (ok, out, err) = time_cli(&["rpcauth", "alice", "wonderland"]);
    assert!(ok, "{err}");
    let entry = out
        .trim()
        .strip_prefix("rpcauth = [\"")
        .and_then(|s| s.strip_suffix("\"]"))
        .unwrap_or_else(|| panic!("unexpected output {out:?}"));
    let credentials = timecoin_rpc::Credentials::new(None, vec![entry.parse().unwrap()]);
    let header = timecoin_rpc::auth::basic_header("alice", "wonderland");
    assert_eq!(credentials.check(&header).as_deref(), Some("alice"));
    // Without a password it makes one up and prints it.
    let (ok, out, _) = time_cli(&["rpcauth", "bob"]);
    assert!(ok && out.contains("password: "), "{out}");
}

#[test]
fn a_missing_cookie_or_server_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let datadir = format!("-datadir={}", dir.path().display());
    let (ok, _, err) = time_cli(&[&datadir, "getblockcount"]);
    assert!(!ok);
    assert!(err.contains(".cookie") && err.contains("is timed running"), "{err}");
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (ok, _, err) = time_cli(&[
        &datadir,
        "-rpcuser=u",
        "-rpcpassword=p",
        &format!("-rpcport={port}"),
        "getblockcount",
    ]);
    assert!(!ok);
    assert!(err.contains("could not connect"), "{err}");
    let (ok, _, err) = time_cli(&[&datadir, "-rpcuser=u", "getblockcount"]);
    assert!(!ok && err.contains("go together"), "{err}");
}
