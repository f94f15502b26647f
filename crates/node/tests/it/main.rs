//! Runs the `timed` binary as real processes (`localnet`), and the node library in this
//! process (`inprocess`).

mod inprocess;
mod localnet;

use std::process::Command;

fn timed(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_timed")).args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_demo_finalizes_blocks_and_continues_from_its_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let (ok, out, err) = timed(&["demo", "--blocks", "3", "--txs-per-block", "50", "--data-dir", data]);
    assert!(ok, "{out}\n{err}");
    for height in 1..=3 {
        assert!(out.contains(&format!("block {height:>4} ")), "{out}");
    }
    assert!(out.contains("txs    50/50"), "{out}");
    assert!(
        out.contains("double spend refused as expected: insufficient-fee"),
        "{out}"
    );
    assert!(out.contains("utxo set at height 3"), "{out}");
    assert!(out.contains("supply invariant holds"), "{out}");

    // The same data directory continues the same chain.
    let (ok, out, err) = timed(&["demo", "--blocks", "2", "--txs-per-block", "20", "--data-dir", data]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("block    4 ") && out.contains("block    5 "), "{out}");
    assert!(out.contains("utxo set at height 5"), "{out}");
}

#[test]
fn a_damaged_store_is_reported_by_name_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    std::fs::write(dir.path().join("chain.redb"), [0x42; 4096]).unwrap();
    let (ok, out, err) = timed(&["demo", "--blocks", "1", "--data-dir", data]);
    assert!(!ok, "{out}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("chain.redb"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("chain.redb")).unwrap(), vec![0x42; 4096]);
}

#[test]
fn bad_arguments_get_usage_help() {
    let (ok, _, err) = timed(&["demo", "--blocks", "many"]);
    assert!(!ok);
    assert!(err.contains("invalid value 'many'"), "{err}");
}

#[test]
fn sigterm_stops_a_local_network_and_its_nodes() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let base = timecoin_test_utils::free_ports(6);
    let mut runner = Command::new(env!("CARGO_BIN_EXE_timed"))
        .args(["localnet", "--nodes", "3", "--base-port", &base.to_string(), "--dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Running: a node finalized a block.
    let stdout = runner.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    assert!(lines.by_ref().map_while(Result::ok).any(|l| l.contains("finalized")));
    let status = Command::new("kill")
        .args(["-TERM", &runner.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(runner.wait().unwrap().success());
    // Its nodes stopped with it: their ports are free again.
    for port in base..base + 6 {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} is still held: a node outlived the local network"
        );
    }
}
