//! The address index over JSON-RPC, on a node that turned it on after blocks were stored.

use serde_json::json;

use super::Localnet;
use super::notify::configure;

#[test]
fn the_address_index_answers_dash_cores_methods_once_turned_on_later() {
    let mut net = Localnet::running(3);
    let to = net.rpc(1, "getnewaddress", json!([]))["result"].clone();
    let query = json!([{"addresses": [to]}]);
    assert_eq!(
        net.rpc(1, "getaddressbalance", query.clone())["error"]["code"],
        json!(-1),
        "off by default"
    );
    let paid = net.rpc(0, "sendtoaddress", json!([to, 3.25]))["result"].clone();
    let height = net.rpc(1, "waitfortransaction", json!([paid, 120]))["result"]["height"]
        .as_u64()
        .unwrap();
    // Turned on later: built from the stored blocks when the node starts again.
    assert!(net.terminate(1));
    configure(&net, 1, "\n[index]\naddress = true\n");
    net.start(1);
    net.wait_until(&[0, 1, 2], height + 2);
    let balance = net.rpc(1, "getaddressbalance", query.clone())["result"].clone();
    assert_eq!(
        balance,
        json!({"balance": 325_000_000u64, "balance_immature": 0, "balance_spendable": 325_000_000u64, "received": 325_000_000u64})
    );
    let utxos = net.rpc(1, "getaddressutxos", query.clone())["result"].clone();
    assert_eq!(utxos.as_array().unwrap().len(), 1, "{utxos}");
    assert_eq!(
        (
            &utxos[0]["txid"],
            &utxos[0]["satoshis"],
            &utxos[0]["height"],
            &utxos[0]["address"]
        ),
        (&paid, &json!(325_000_000u64), &json!(height), &to)
    );
    assert_eq!(net.rpc(1, "getaddresstxids", query.clone())["result"], json!([paid]));
    let deltas = net.rpc(
        1,
        "getaddressdeltas",
        json!([{"addresses": [to], "start": height, "end": height}]),
    )["result"]
        .clone();
    assert_eq!(
        deltas,
        json!([{"satoshis": 325_000_000u64, "txid": paid, "index": utxos[0]["outputIndex"], "blockindex": deltas[0]["blockindex"], "height": height, "address": to}])
    );
    assert_eq!(
        net.rpc(1, "getaddressdeltas", json!([{"addresses": [to], "start": height + 1}]))["result"],
        json!([])
    );
    // Node 2 has no index: Dash Core's error.
    assert_eq!(net.rpc(2, "getaddresstxids", query)["error"]["code"], json!(-1));
    assert_eq!(
        net.rpc(1, "getaddressbalance", json!(["nonsense"]))["error"]["code"],
        json!(-5)
    );
}
