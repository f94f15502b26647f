//! WebSocket subscriptions, heard by a stock client (jsonrpsee's WebSocket client, not this
//! project's code): finalized blocks, finalized transactions and an address's activity.

use std::time::Duration;

use base64::Engine;
use jsonrpsee_core::client::{ClientT, Error as ClientError, Subscription, SubscriptionClientT};
use jsonrpsee_ws_client::{HeaderMap, HeaderValue, WsClient, WsClientBuilder};
use serde_json::{Value, json};

use super::{DEADLINE, Localnet, result};

/// The next notification of `subscription` that `wanted` accepts (others are skipped).
async fn next_where(subscription: &mut Subscription<Value>, wanted: impl Fn(&Value) -> bool) -> Value {
    let waiting = async {
        loop {
            let item = subscription.next().await.expect("the subscription ended").unwrap();
            if wanted(&item) {
                return item;
            }
        }
    };
    tokio::time::timeout(DEADLINE, waiting)
        .await
        .expect("no such notification in time")
}

async fn subscribe(client: &WsClient, what: &str, params: Vec<Value>) -> Result<Subscription<Value>, ClientError> {
    client
        .subscribe(&format!("subscribe{what}"), params, &format!("unsubscribe{what}"))
        .await
}

#[test]
fn a_websocket_client_hears_finalized_blocks_transactions_and_address_activity() {
    let mut net = Localnet::init(3);
    // Node 1 serves subscriptions on a WebSocket listener of its own.
    let port = timecoin_test_utils::free_ports(1);
    let path = net.config(1);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("[rpc]\n", &format!("[rpc]\nwebsocket = \"127.0.0.1:{port}\"\n"));
    std::fs::write(&path, text).unwrap();
    for node in 0..3 {
        net.start(node);
    }
    net.wait_for_event(1, |e| e["message"] == "serving JSON-RPC subscriptions over WebSocket");
    net.wait_until(&[0, 1, 2], 1);
    let to = result(net.rpc(1, "getnewaddress", json!([])));
    // Node 0's wallet holds one coin (its genesis allocation): the payment spends it.
    let coins = result(net.rpc(0, "listunspent", json!([])));
    let payer = coins[0]["address"].clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = format!("ws://127.0.0.1:{port}");
    let cookie = std::fs::read_to_string(net.path().join("node1/.cookie")).unwrap();
    let basic = base64::engine::general_purpose::STANDARD.encode(cookie.trim());
    let (client, mut blocks, mut transactions, mut activity) = runtime.block_on(async {
        // Without the cookie the upgrade is refused, as any request is.
        assert!(WsClientBuilder::default().build(&url).await.is_err());
        let mut headers = HeaderMap::new();
        headers.insert(
            "Authorization",
            HeaderValue::from_str(&format!("Basic {basic}")).unwrap(),
        );
        let client = WsClientBuilder::default()
            .set_headers(headers)
            .build(&url)
            .await
            .unwrap();
        let blocks = subscribe(&client, "blocks", vec![]).await.unwrap();
        let transactions = subscribe(&client, "transactions", vec![]).await.unwrap();
        let activity = subscribe(&client, "addresses", vec![json!([to, payer])]).await.unwrap();
        // Only the subscription methods are served here.
        match client.request::<Value, _>("getblockcount", Vec::<Value>::new()).await {
            Err(ClientError::Call(error)) => assert_eq!(error.code(), -32601, "{error:?}"),
            other => panic!("{other:?}"),
        }
        // An address that is none is Bitcoin Core's -5; no addresses, -8.
        for (addresses, code) in [(json!(["nope"]), -5), (json!([]), -8)] {
            match subscribe(&client, "addresses", vec![addresses]).await {
                Err(ClientError::Call(error)) => assert_eq!(error.code(), code, "{error:?}"),
                other => panic!("{:?}", other.map(|_| ())),
            }
        }
        (client, blocks, transactions, activity)
    });

    // Not over HTTP: the JSON-RPC port serves every other method.
    assert_eq!(net.rpc(1, "subscribeblocks", json!([]))["error"]["code"], json!(-32601));
    let paid = result(net.rpc(0, "sendtoaddress", json!([to, 2.5])));
    let height = result(net.rpc(1, "waitfortransaction", json!([paid, 120])))["height"].clone();
    let hash = result(net.rpc(1, "getblockhash", json!([height])));

    runtime.block_on(async {
        let heard = next_where(&mut transactions, |n| n["txid"] == paid).await;
        assert_eq!(
            heard,
            json!({"txid": paid, "blockhash": hash, "height": height, "finalized": true})
        );
        let block = next_where(&mut blocks, |n| n["height"] == height).await;
        assert_eq!(block["hash"], hash);
        assert_eq!(block["nTx"], json!(2), "the reward and the payment");
        // The payer's spend, then the payment received.
        let sent = next_where(&mut activity, |n| n["txid"] == paid).await;
        assert_eq!(
            sent,
            json!({"address": payer, "txid": paid, "blockhash": hash, "height": height, "category": "send", "vin": 0})
        );
        let received = next_where(&mut activity, |n| n["txid"] == paid && n["category"] == "receive").await;
        assert_eq!((&received["address"], &received["amount"]), (&to, &json!(2.5)));
        // Unsubscribing is answered, and the other subscriptions go on.
        blocks.unsubscribe().await.unwrap();
        let later = next_where(&mut transactions, |n| n["height"].as_u64() > height.as_u64()).await;
        assert_eq!(later["finalized"], true);
        drop(client);
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
}
