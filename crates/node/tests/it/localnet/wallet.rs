//! The nodes' wallets paying each other, encrypted and unlocked.

use super::*;

#[test]
fn wallets_pay_each_other_and_an_encrypted_wallet_needs_its_passphrase() {
    use serde_json::json;
    let net = Localnet::running(3);
    // Node 0's wallet is funded by the genesis.
    assert_eq!(net.rpc(0, "getbalance", json!([]))["result"], json!(1_000_000.0));
    let to = net.rpc(1, "getnewaddress", json!([]))["result"]
        .as_str()
        .unwrap()
        .to_owned();
    // A deposit loop's cursor, before the payment.
    let cursor = net.rpc(1, "listsinceblock", json!([]))["result"]["lastblock"].clone();
    let sent = net.rpc(0, "sendtoaddress", json!([to, 12.5]));
    let txid = sent["result"].as_str().unwrap_or_else(|| panic!("{sent}")).to_owned();
    let waited = net.rpc(1, "waitfortransaction", json!([txid, 120]));
    assert_eq!(waited["result"]["finalized"], json!(true), "{waited}");
    // The payee sees the coin once it has the block; the payer paid the amount and a fee.
    let height = waited["result"]["height"].as_u64().unwrap();
    let mut net = net;
    net.wait_until(&[0, 1], height);
    // The deposit loop finds it once, in Bitcoin Core's fields, and moves its cursor on.
    let since = net.rpc(1, "listsinceblock", json!([cursor]))["result"].clone();
    let deposits: Vec<&serde_json::Value> = since["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["txid"] == json!(txid))
        .collect();
    assert_eq!(deposits.len(), 1, "{since}");
    let block_hash = net.rpc(1, "getblockhash", json!([height]))["result"].clone();
    let deposit = deposits[0];
    assert_eq!(
        (&deposit["category"], &deposit["address"], &deposit["amount"]),
        (&json!("receive"), &json!(to), &json!(12.5)),
        "{deposit}"
    );
    assert_eq!(
        (&deposit["blockhash"], &deposit["blockheight"]),
        (&block_hash, &json!(height))
    );
    assert!(deposit["confirmations"].as_u64().unwrap() >= 1 && deposit["finalized"] == json!(true));
    assert_eq!(since["removed"], json!([]));
    let next = net.rpc(1, "listsinceblock", json!([since["lastblock"]]))["result"].clone();
    assert!(
        next["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["txid"] != json!(txid)),
        "{next}"
    );
    // The payer's side: the payment as a send with its fee; its change only when asked for.
    let paid = net.rpc(0, "listsinceblock", json!([cursor]))["result"]["transactions"].clone();
    let entries = |list: &serde_json::Value, category: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["txid"] == json!(txid) && e["category"] == json!(category))
            .count()
    };
    assert_eq!((entries(&paid, "send"), entries(&paid, "receive")), (1, 0), "{paid}");
    let with_change =
        net.rpc(0, "listsinceblock", json!([cursor, 1, false, true, true]))["result"]["transactions"].clone();
    assert_eq!(
        (entries(&with_change, "send"), entries(&with_change, "receive")),
        (2, 1),
        "{with_change}"
    );
    // lastblock stays target_confirmations - 1 blocks below the wallet's tip; bad cursors are refused.
    let tip = net.rpc(1, "listsinceblock", json!(["", 3]))["result"]["lastblock"].clone();
    let at = net.rpc(1, "getblockheader", json!([tip]))["result"]["height"]
        .as_u64()
        .unwrap();
    assert!(at + 2 >= height, "{at} vs {height}");
    assert_eq!(
        net.rpc(1, "listsinceblock", json!(["00".repeat(32)]))["error"]["code"],
        json!(-5)
    );
    assert_eq!(
        net.rpc(1, "listsinceblock", json!([cursor, 0]))["error"]["code"],
        json!(-8)
    );
    assert_eq!(net.rpc(1, "getbalance", json!([]))["result"], json!(12.5));
    let unspent = net.rpc(1, "listunspent", json!([]));
    assert_eq!(unspent["result"][0]["txid"], json!(txid), "{unspent}");
    let left = net.rpc(0, "getbalance", json!([]))["result"].as_f64().unwrap();
    assert!(left < 1_000_000.0 - 12.5 && left > 1_000_000.0 - 12.5 - 0.01, "{left}");
    let history = net.rpc(0, "listtransactions", json!([]));
    let last = history["result"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["txid"].clone(), last["category"].clone()),
        (json!(txid), json!("send"))
    );
    // Encrypted, node 1's wallet cannot pay until unlocked with the right passphrase.
    assert!(net.rpc(1, "encryptwallet", json!(["open sesame"]))["result"].is_string());
    let back = net.rpc(0, "getnewaddress", json!([]))["result"].clone();
    let locked = net.rpc(1, "sendtoaddress", json!([back, 1]));
    assert_eq!(locked["error"]["code"], json!(-13), "{locked}");
    let wrong = net.rpc(1, "walletpassphrase", json!(["open sesam", 60]));
    assert_eq!(wrong["error"]["code"], json!(-14), "{wrong}");
    assert!(net.rpc(1, "walletpassphrase", json!(["open sesame", 60]))["error"].is_null());
    let paid = net.rpc(1, "sendtoaddress", json!([back, 1]));
    assert!(paid["result"].is_string(), "{paid}");
    let text = std::fs::read_to_string(net.path().join("node1").join("wallet.json")).unwrap();
    assert!(text.contains("argon2id"), "the wallet file is sealed");
    let broke = net.rpc(1, "sendtoaddress", json!([back, 100]));
    assert_eq!(broke["error"]["code"], json!(-6), "{broke}");
    // A raw transaction built by hand from node 0's coin, signed by its wallet, is accepted.
    let coin = net.rpc(0, "listunspent", json!([]))["result"][0].clone();
    let value = coin["amount"].as_f64().unwrap();
    let outputs = json!({ to.clone(): 1, back.as_str().unwrap(): ((value - 1.0 - 0.001) * 1e8).round() / 1e8 });
    let raw = net.rpc(
        0,
        "createrawtransaction",
        json!([[{"txid": coin["txid"], "vout": coin["vout"]}], outputs]),
    );
    let unsigned = raw["result"].as_str().unwrap_or_else(|| panic!("{raw}")).to_owned();
    let refused = net.rpc(0, "sendrawtransaction", json!([unsigned]));
    assert_eq!(refused["error"]["code"], json!(-26), "unsigned: {refused}");
    let signed = net.rpc(0, "signrawtransactionwithwallet", json!([unsigned]));
    assert_eq!(signed["result"]["complete"], json!(true), "{signed}");
    let accepted = net.rpc(0, "sendrawtransaction", json!([signed["result"]["hex"]]));
    assert!(accepted["result"].is_string(), "{accepted}");
}
