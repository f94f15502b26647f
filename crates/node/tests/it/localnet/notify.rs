//! Notifications from real processes: `blocknotify`, `walletnotify` and ZMQ for a payment,
//! read by a stock ZMQ subscriber (the `zeromq` crate's SUB socket), while other
//! subscribers stall or leave.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use timecoin_primitives::{Block, Decode, TxId};
use zeromq::{Socket, SocketRecv, SubSocket, ZmqMessage};

use super::{DEADLINE, Localnet, free_ports};

/// Appends `text` to node `node`'s configuration.
pub(super) fn configure(net: &Localnet, node: usize, text: &str) {
    let mut file = std::fs::OpenOptions::new().append(true).open(net.config(node)).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// The file a notification command appends to, once `done` holds for its text (a command is
/// another process: its file is read until then).
fn wait_for_file(path: &Path, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{}: {text:?}", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Topic, body and sequence number: Bitcoin Core's three frames.
fn frames(message: &ZmqMessage) -> (String, Vec<u8>, u32) {
    let frames: Vec<Vec<u8>> = message.iter().map(|f| f.to_vec()).collect();
    assert_eq!(frames.len(), 3, "topic, body and sequence number");
    let sequence = u32::from_le_bytes(frames[2].as_slice().try_into().unwrap());
    (
        String::from_utf8(frames[0].clone()).unwrap(),
        frames[1].clone(),
        sequence,
    )
}

#[test]
fn a_payment_is_notified_by_command_and_zmq_while_other_subscribers_stall_or_leave() {
    let mut net = Localnet::init(3);
    let out = net.path().join("notified");
    std::fs::create_dir(&out).unwrap();
    let zmq = free_ports(2);
    let (address, blocks_address) = (format!("tcp://127.0.0.1:{zmq}"), format!("tcp://127.0.0.1:{}", zmq + 1));
    // The payer (node 0) and the payee (node 1) run walletnotify; node 1 also blocknotify
    // and the ZMQ publisher, one address for three topics and one for the fourth.
    for node in [0, 1] {
        configure(
            &net,
            node,
            &format!(
                "\n[notify]\nwalletnotify = \"echo %s %w %b %h >> {}/wallet{node}\"\n",
                out.display()
            ),
        );
    }
    configure(
        &net,
        1,
        &format!(
            "blocknotify = \"echo %s >> {}/blocks\"\n[zmq]\npubhashtx = \"{address}\"\npubrawblock = \"{address}\"\npubsequence = \"{address}\"\npubhashblock = \"{blocks_address}\"\n",
            out.display()
        ),
    );
    for node in 0..3 {
        net.start(node);
    }
    net.wait_until(&[0, 1, 2], 2);
    let listed = net.rpc(1, "getzmqnotifications", json!([]))["result"].clone();
    assert_eq!(
        listed,
        json!([
            {"type": "pubhashblock", "address": blocks_address},
            {"type": "pubhashtx", "address": address},
            {"type": "pubrawblock", "address": address},
            {"type": "pubsequence", "address": address},
        ])
    );
    assert_eq!(net.rpc(0, "getzmqnotifications", json!([]))["result"], json!([]));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    // A connection that never says a word, a subscriber that never reads, one that leaves,
    // and one that reads.
    let silent = std::net::TcpStream::connect(("127.0.0.1", zmq)).unwrap();
    let (mut live, slow) = runtime.block_on(async {
        let mut slow = SubSocket::new();
        slow.connect(&address).await.unwrap();
        slow.subscribe("").await.unwrap();
        let mut gone = SubSocket::new();
        gone.connect(&address).await.unwrap();
        gone.subscribe("").await.unwrap();
        let _ = gone.close().await;
        let mut live = SubSocket::new();
        live.connect(&address).await.unwrap();
        live.subscribe("hashtx").await.unwrap();
        live.subscribe("rawblock").await.unwrap();
        // A subscriber misses what came before its subscription: the first block (and its
        // reward transaction) it hears, one every 2 s, shows it is in place.
        let first = tokio::time::timeout(DEADLINE, live.recv()).await.unwrap().unwrap();
        let topic = frames(&first).0;
        assert!(topic == "hashtx" || topic == "rawblock", "{topic}");
        (live, slow)
    });

    let to = net.rpc(1, "getnewaddress", json!([]))["result"].clone();
    let sent = net.rpc(0, "sendtoaddress", json!([to, 3.5]));
    let txid_hex = sent["result"].as_str().unwrap_or_else(|| panic!("{sent}")).to_owned();
    let txid: TxId = txid_hex.parse().unwrap();
    // ZMQ: the transaction's hash (at admission and in its block), and the raw block that
    // holds it, each numbered in its topic.
    let (block_hash, height) = runtime.block_on(async {
        let mut heard_tx = false;
        let mut found = None;
        let mut last_sequence: Vec<(String, u32)> = Vec::new();
        while !(heard_tx && found.is_some()) {
            let message = tokio::time::timeout(DEADLINE, live.recv()).await.unwrap().unwrap();
            let (topic, body, sequence) = frames(&message);
            if let Some((_, last)) = last_sequence.iter_mut().find(|(t, _)| *t == topic) {
                assert_eq!(sequence, *last + 1, "{topic}: numbered one by one");
                *last = sequence;
            } else {
                last_sequence.push((topic.clone(), sequence));
            }
            match topic.as_str() {
                "hashtx" => heard_tx |= body == txid.0.0,
                "rawblock" => {
                    let block = Block::from_bytes(&body).unwrap();
                    if block.transactions.iter().any(|tx| tx.txid() == txid) {
                        found = Some((block.hash(), block.header.height));
                    }
                }
                other => panic!("subscribed to hashtx and rawblock, got {other}"),
            }
        }
        found.unwrap()
    });
    assert_eq!(
        net.rpc(1, "getblockhash", json!([height]))["result"],
        json!(block_hash.to_string())
    );
    // blocknotify: the block's hash. walletnotify: the payer's transaction when admitted and
    // when finalized; the payee's when finalized (it may see the block before the relay).
    let line = format!("{txid_hex} wallet {block_hash} {height}");
    wait_for_file(&out.join("blocks"), |text| {
        text.lines().any(|l| l == block_hash.to_string())
    });
    let payer = wait_for_file(&out.join("wallet0"), |text| text.contains(&line));
    assert!(
        payer.lines().any(|l| l == format!("{txid_hex} wallet unconfirmed -1")),
        "{payer}"
    );
    wait_for_file(&out.join("wallet1"), |text| text.lines().any(|l| l == line));

    // With the silent connection and the slow subscriber still there, every node goes on.
    net.wait_until(&[0, 1, 2], height + 3);
    let waited = net.rpc(1, "waitfortransaction", json!([txid_hex, 120]));
    assert_eq!(waited["result"]["finalized"], json!(true));
    drop((silent, slow));
}
