//! Wallet recovery: a wallet restored from its recovery phrase (`timed wallet restore`) finds
//! its coins, keys beyond its first pool included; `backupwallet` writes the wallet file; a
//! new wallet is born at the tip and scans only from there.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::{Localnet, result};

/// `timed --config CONFIG wallet restore`, the phrase on standard input.
fn restore(config: &std::path::Path, phrase: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_timed"))
        .arg("--config")
        .arg(config)
        .args(["wallet", "restore"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{phrase}").unwrap();
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn a_wallet_restored_from_its_phrase_finds_its_coins_beyond_the_first_key_pool() {
    let mut net = Localnet::running(3);
    let phrase = result(net.rpc(1, "dumpmnemonic", json!([])));
    let addresses: Vec<Value> = (0..=151)
        .map(|_| result(net.rpc(1, "getnewaddress", json!([]))))
        .collect();
    // Keys 0, 150 and 60 are paid, in that order: a restored wallet starts with keys 0 to
    // 99, so it finds 150 only once it has found 60 and derived further, and 150's block
    // comes first.
    for (index, amount) in [(0, 1.0), (150, 2.0), (60, 3.0)] {
        // Node 0's wallet pays from finalized coins: the change of the last payment
        // becomes one when node 0's wallet has followed its block.
        let paid = net.wait_for_rpc(0, "sendtoaddress", json!([addresses[index], amount]), |a| {
            a["error"]["code"] != json!(-6)
        });
        let paid = result(paid);
        let done = result(net.rpc(1, "waitfortransaction", json!([paid, 120])));
        assert_eq!(done["finalized"], true, "{done}");
    }
    let balance = result(net.rpc(1, "getbalance", json!([])));
    assert_eq!(balance.as_f64(), Some(6.0), "{balance}");

    // A backup is the wallet file as it stands, readable by its owner only.
    let dir = net.path().join("node1");
    assert_eq!(result(net.rpc(1, "backupwallet", json!(["backup.json"]))), Value::Null);
    let read =
        |name: &str| -> Value { serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap() };
    assert_eq!(read("backup.json"), read("wallet.json"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("backup.json")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let itself = net.rpc(1, "backupwallet", json!([dir.join("wallet.json")]));
    assert_eq!(itself["error"]["code"], json!(-8), "{itself}");

    // Node 1 loses its wallet file; the phrase restores it, never over an existing file.
    assert!(net.terminate(1));
    let (ok, said) = restore(&net.config(1), phrase.as_str().unwrap());
    assert!(!ok && said.contains("exists"), "{said}");
    std::fs::remove_file(dir.join("wallet.json")).unwrap();
    let (ok, said) = restore(&net.config(1), "not a recovery phrase");
    assert!(!ok && said.contains("recovery phrase"), "{said}");
    let (ok, said) = restore(&net.config(1), phrase.as_str().unwrap());
    assert!(ok, "{said}");
    net.start(1);
    let loaded = net.wait_for_event(1, |e| e["message"] == "wallet loaded");
    // Found 0 and 60, then (with the keys 60 brought) 150, then nothing more.
    assert_eq!((&loaded["from"], &loaded["passes"]), (&json!(0), &json!(3)), "{loaded}");
    net.wait_for_event(1, |e| e["message"] == "serving JSON-RPC");
    let balance = result(net.rpc(1, "getbalance", json!([])));
    assert_eq!(balance.as_f64(), Some(6.0), "{balance}");
    assert_eq!(
        result(net.rpc(1, "listunspent", json!([]))).as_array().unwrap().len(),
        3
    );
    // It hands out the key after the last one found in use.
    assert_eq!(result(net.rpc(1, "getnewaddress", json!([]))), addresses[151]);

    // A new wallet is born after the tip: it scans from there, then and at every start.
    assert!(net.terminate(2));
    std::fs::remove_file(net.path().join("node2/wallet.json")).unwrap();
    let tip = net.top();
    net.start(2);
    let created = net.wait_for_event(2, |e| e["message"] == "wallet loaded");
    assert_eq!(created["created"], true);
    let born = created["from"].as_u64().unwrap();
    assert!(born > tip, "born at {born}, the tip was {tip}");
    // Running (a SIGTERM before the node has started ends it as a signal does).
    net.wait_for_event(2, |e| e["message"] == "finalized");
    assert!(net.terminate(2));
    net.start(2);
    let reopened = net.wait_for_event(2, |e| e["message"] == "wallet loaded");
    assert_eq!((&reopened["created"], &reopened["from"]), (&json!(false), &json!(born)));
}
