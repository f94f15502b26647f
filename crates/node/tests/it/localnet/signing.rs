//! Offline signing: an exchange's online machine builds a payment and reads the coin it
//! spends, `time-cli -offline` signs it on a machine with no node, and the node finalizes it;
//! then `getblockstats` of its block.

use serde_json::{Value, json};

use super::{Localnet, result, time_cli};

#[test]
fn time_cli_signs_offline_what_the_node_signs_and_finalizes() {
    let net = Localnet::running(3);
    let rpc = |node, method, params| result(net.rpc(node, method, params));
    // Online: block 0's hash, the coin (node 0's wallet.key holds the genesis allocation's
    // first output), and the unsigned payment.
    let genesis = rpc(0, "getblockhash", json!([0]));
    let coin_txid = net.genesis().block.transactions[0].txid().to_string();
    let coin = rpc(0, "gettxout", json!([coin_txid, 0]));
    let to = rpc(1, "getnewaddress", json!([]));
    let change = coin["address"].clone();
    let unsigned = rpc(
        1,
        "createrawtransaction",
        json!([[{"txid": coin_txid, "vout": 0}], {to.as_str().unwrap(): 100, change.as_str().unwrap(): 999_899.99}]),
    );
    let key = std::fs::read_to_string(net.path().join("node0/wallet.key")).unwrap();
    let keys = json!([key.trim()]).to_string();
    let prevtxs =
        json!([{"txid": coin_txid, "vout": 0, "address": coin["address"], "amount": coin["value"]}]).to_string();
    let genesis_arg = format!("-genesis={}", genesis.as_str().unwrap());
    let offline = |args: &[&str]| time_cli(&[&["-offline", "-local"], args].concat());

    // Offline: no data directory, no node; the key comes on standard input, out of the
    // process list.
    let mut child =
        std::process::Command::new(std::path::Path::new(env!("CARGO_BIN_EXE_timed")).with_file_name("time-cli"))
            .args([
                "-offline",
                "-local",
                "-stdin",
                &genesis_arg,
                "signrawtransactionwithkey",
            ])
            .arg(unsigned.as_str().unwrap())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        writeln!(input, "{keys}\n{prevtxs}").unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let signed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(signed["complete"], true, "{signed}");
    assert_eq!(signed["errors"], json!([]));
    // The node, reading the coin from its UTXO set, signs the same bytes (Ed25519 is
    // deterministic).
    let online = rpc(2, "signrawtransactionwithkey", json!([unsigned, [key.trim()]]));
    assert_eq!(online["hex"], signed["hex"]);
    assert_eq!(online["complete"], true);

    // Without the coin described the signer cannot sign: it says which input and why.
    let (ok, out, err) = offline(&[
        &genesis_arg,
        "signrawtransactionwithkey",
        unsigned.as_str().unwrap(),
        &keys,
    ]);
    assert!(ok, "{err}");
    let unsigned_answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(unsigned_answer["complete"], false);
    assert_eq!(unsigned_answer["errors"][0]["txid"], json!(coin_txid));
    assert!(
        unsigned_answer["errors"][0]["error"]
            .as_str()
            .unwrap()
            .contains("unknown"),
        "{unsigned_answer}"
    );
    // Without the network's block 0, nothing is signed; another method needs a node.
    let (ok, _, err) = offline(&["signrawtransactionwithkey", unsigned.as_str().unwrap(), &keys, &prevtxs]);
    assert!(!ok && err.contains("-genesis"), "{err}");
    let (ok, _, err) = offline(&[&genesis_arg, "getblockcount"]);
    assert!(!ok && err.contains("needs a node"), "{err}");
    // A bad key is Bitcoin Core's -5; a description that contradicts the node's coin, -8.
    let (ok, _, err) = offline(&[
        &genesis_arg,
        "signrawtransactionwithkey",
        unsigned.as_str().unwrap(),
        "[\"00\"]",
    ]);
    assert!(!ok && err.contains("error code: -5"), "{err}");
    let lie = json!([{"txid": coin_txid, "vout": 0, "address": coin["address"], "amount": 5}]);
    let refused = net.rpc(2, "signrawtransactionwithkey", json!([unsigned, [key.trim()], lie]));
    assert_eq!(refused["error"]["code"], json!(-8), "{refused}");

    // Signed for another network (another block 0), the node refuses it.
    let elsewhere = format!("-genesis={}", "11".repeat(32));
    let (ok, out, _) = offline(&[
        &elsewhere,
        "signrawtransactionwithkey",
        unsigned.as_str().unwrap(),
        &keys,
        &prevtxs,
    ]);
    assert!(ok);
    let foreign: Value = serde_json::from_str(&out).unwrap();
    let sent = net.rpc(0, "sendrawtransaction", json!([foreign["hex"]]));
    assert!(sent["error"].is_object(), "{sent}");

    // The offline signature is what the network takes.
    let txid = rpc(0, "sendrawtransaction", json!([signed["hex"]]));
    let finalized = rpc(1, "waitfortransaction", json!([txid, 120]));
    assert_eq!(finalized["finalized"], true, "{finalized}");
    let received = rpc(1, "getreceivedbyaddress", json!([to]));
    assert_eq!(received.as_f64(), Some(100.0), "{received}");

    // getblockstats of its block, the only payment in it: the fee the payment left, from
    // the coin it spent.
    let height = finalized["height"].as_u64().unwrap();
    let stats = rpc(1, "getblockstats", json!([height]));
    let size = signed["hex"].as_str().unwrap().len() as u64 / 2;
    let fee = 1_000_000u64; // 0.01 TIME
    let block = rpc(1, "getblock", json!([stats["blockhash"], 2]));
    let reward: f64 = block["tx"][0]["vout"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["value"].as_f64().unwrap())
        .sum();
    let expected = json!({
        "avgfee": fee, "avgfeerate": fee / size, "avgtxsize": size, "blockhash": block["hash"],
        "feerate_percentiles": vec![fee / size; 5], "height": height, "ins": 1,
        "maxfee": fee, "maxfeerate": fee / size, "maxtxsize": size, "medianfee": fee, "mediantxsize": size,
        "minfee": fee, "minfeerate": fee / size, "mintxsize": size,
        "outs": 2 + block["tx"][0]["vout"].as_array().unwrap().len(),
        "subsidy": (reward * 1e8).round() as u64 - fee, "time": block["time"],
        "total_out": 99_999_999_000_000u64, "total_size": size, "totalfee": fee, "txs": 2,
        "utxo_increase": 1 + block["tx"][0]["vout"].as_array().unwrap().len(),
    });
    assert_eq!(stats, expected);
    // By hash the same; a selection gives only what it names; Bitcoin Core's errors. (Node 1
    // is the node known to hold the block.)
    assert_eq!(rpc(1, "getblockstats", json!([block["hash"]])), expected);
    assert_eq!(
        rpc(1, "getblockstats", json!([height, ["totalfee", "txs"]])),
        json!({"totalfee": fee, "txs": 2})
    );
    let unknown = net.rpc(1, "getblockstats", json!([height, ["weight"]]));
    assert_eq!(unknown["error"]["code"], json!(-8), "{unknown}");
    let beyond = net.rpc(1, "getblockstats", json!([1u64 << 40]));
    assert_eq!(beyond["error"]["code"], json!(-8), "{beyond}");
}
