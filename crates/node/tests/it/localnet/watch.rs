//! Watch-only addresses: `importaddress` finds an address's past, follows it from then on,
//! lists and counts its coins apart, never spends them, and keeps it across restarts.

use serde_json::{Value, json};

use super::{Localnet, result};

/// Pays `amount` from node `from`'s wallet to `to` once the wallet has a finalized coin for
/// it, and waits until node `seen` has the payment in a block.
fn pay(net: &mut Localnet, from: usize, to: &Value, amount: f64, seen: usize) -> Value {
    let paid = net.wait_for_rpc(from, "sendtoaddress", json!([to, amount]), |a| {
        a["error"]["code"] != json!(-6)
    });
    let txid = result(paid);
    let done = result(net.rpc(seen, "waitfortransaction", json!([txid, 120])));
    assert_eq!(done["finalized"], true, "{done}");
    txid
}

/// Waits until node 1's watched balance is `amount`.
fn watched_balance(net: &mut Localnet, amount: f64) -> Value {
    net.wait_for_rpc(1, "getbalances", json!([]), |a| {
        a["result"]["watchonly"]["trusted"].as_f64() == Some(amount)
    })["result"]
        .clone()
}

#[test]
fn an_imported_address_is_watched_from_its_past_on_and_its_coins_are_never_spent() {
    let mut net = Localnet::running(3);
    // A cold address: its key is node 2's; node 1 only watches it.
    let cold = result(net.rpc(2, "getnewaddress", json!([])));
    let before = pay(&mut net, 0, &cold, 4.0, 1);
    assert_eq!(
        result(net.rpc(1, "importaddress", json!([cold, "", true]))),
        Value::Null
    );
    // The rescan found the payment made before the import.
    let balances = watched_balance(&mut net, 4.0);
    assert_eq!(balances["mine"]["trusted"].as_f64(), Some(0.0), "{balances}");
    let coins = result(net.rpc(1, "listunspent", json!([])));
    assert_eq!(
        (
            &coins[0]["txid"],
            &coins[0]["address"],
            &coins[0]["spendable"],
            &coins[0]["solvable"]
        ),
        (&before, &cold, &json!(false), &json!(false)),
        "{coins}"
    );
    // A deposit to a watched address is shown only when asked for: an exchange's deposit
    // loop, which does not ask, never credits what a watched address received.
    let plain = result(net.rpc(1, "listsinceblock", json!([])));
    assert_eq!(plain["transactions"], json!([]), "{plain}");
    let hidden = net.rpc(1, "gettransaction", json!([before]));
    assert_eq!(hidden["error"]["code"], json!(-5), "{hidden}");
    let shown = result(net.rpc(1, "gettransaction", json!([before, true])));
    assert_eq!(
        (&shown["amount"], &shown["involvesWatchonly"]),
        (&json!(4.0), &json!(true))
    );
    let listed = result(net.rpc(1, "listsinceblock", json!(["", 1, true])));
    let entry = &listed["transactions"][0];
    assert_eq!(
        (
            &entry["txid"],
            &entry["category"],
            &entry["involvesWatchonly"],
            &entry["amount"]
        ),
        (&before, &json!("receive"), &json!(true), &json!(4.0)),
        "{listed}"
    );
    assert_eq!(result(net.rpc(1, "getreceivedbyaddress", json!([cold]))), json!(4.0));
    // Followed from then on.
    pay(&mut net, 0, &cold, 1.5, 1);
    watched_balance(&mut net, 5.5);
    // Never spent by the watching wallet: it holds no key.
    let refused = net.rpc(1, "sendtoaddress", json!([cold, 1.0]));
    assert_eq!(refused["error"]["code"], json!(-6), "{refused}");
    // The key's owner spends the coins: the watching wallet sees them go.
    let back = result(net.rpc(0, "getnewaddress", json!([])));
    let spent = pay(&mut net, 2, &back, 5.0, 1);
    watched_balance(&mut net, 0.0);
    let history = result(net.rpc(1, "listtransactions", json!(["*", 100, 0, true])));
    assert!(
        history
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["txid"] == spent && e["category"] == "send" && e["involvesWatchonly"] == true),
        "{history}"
    );

    // Refused: the wallet's own address, another network's or no address, a script.
    let own = result(net.rpc(1, "getnewaddress", json!([])));
    assert_eq!(net.rpc(1, "importaddress", json!([own]))["error"]["code"], json!(-4));
    assert_eq!(net.rpc(1, "importaddress", json!(["nope"]))["error"]["code"], json!(-5));
    assert_eq!(
        net.rpc(1, "importaddress", json!([cold, "", false, true]))["error"]["code"],
        json!(-8)
    );

    // Kept in the wallet file, with the wallet's birth moved to the genesis, which the
    // rescan searched from: after a restart it is watched and its past found again.
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(net.path().join("node1/wallet.json")).unwrap()).unwrap();
    assert_eq!(
        (&file["watch_only"], &file["birth_height"]),
        (&json!([cold]), &json!(0))
    );
    let paid_again = pay(&mut net, 0, &cold, 2.25, 1);
    assert!(net.terminate(1));
    net.start(1);
    net.wait_for_event(1, |e| e["message"] == "serving JSON-RPC");
    let balances = watched_balance(&mut net, 2.25);
    assert_eq!(balances["mine"]["trusted"].as_f64(), Some(0.0), "{balances}");
    let coins = result(net.rpc(1, "listunspent", json!([])));
    assert_eq!(coins[0]["txid"], paid_again, "{coins}");
}
