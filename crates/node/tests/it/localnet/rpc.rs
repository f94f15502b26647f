//! The API of real `timed` processes: `time-cli`, every JSON-RPC method through the typed
//! client, a stock Python client, and the Prometheus endpoint.

use super::*;

#[test]
fn time_cli_finds_a_node_by_its_data_directory_and_reports_results_and_errors() {
    let mut net = Localnet::running(3);
    let datadir = format!("-datadir={}", net.path().join("node0").display());
    // The cookie and the RPC port come from the data directory.
    let (ok, out, err) = time_cli(&[&datadir, "getblockcount"]);
    assert!(ok, "{err}");
    let count: u64 = out.trim().parse().unwrap();
    assert!(count >= 2);
    let (ok, hash, _) = time_cli(&[&datadir, "getblockhash", "1"]);
    assert!(ok);
    let hash = hash.trim();
    assert_eq!(hash.len(), 64, "strings print bare");
    let (ok, block, _) = time_cli(&[
        &datadir,
        "-named",
        "getblock",
        &format!("blockhash={hash}"),
        "verbosity=1",
    ]);
    assert!(ok);
    let block: serde_json::Value = serde_json::from_str(&block).unwrap();
    assert_eq!(block["height"], serde_json::json!(1));
    // Errors: the server's code and message, and a non-zero exit.
    let (ok, _, err) = time_cli(&[&datadir, "getblockhash", "999999"]);
    assert!(!ok);
    assert!(err.contains("error code: -8") && err.contains("out of range"), "{err}");
    let (ok, _, err) = time_cli(&[&datadir, "-rpcuser=x", "-rpcpassword=y", "getblockcount"]);
    assert!(!ok && err.contains("incorrect rpcuser or rpcpassword"), "{err}");
    let (ok, help, _) = time_cli(&[&datadir, "help", "getblock"]);
    assert!(ok && help.starts_with("getblock blockhash ( verbosity )"), "{help}");
    // Bans: node 0 drops node 1 and lists the ban until it is lifted.
    let node1 = net.key(1, "masternode.key").public_key().to_string();
    let (ok, _, err) = time_cli(&[&datadir, "setban", &node1, "add", "600"]);
    assert!(ok, "{err}");
    let (_, listed, _) = time_cli(&[&datadir, "listbanned"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["address"] == serde_json::json!(node1)),
        "{listed}"
    );
    let (_, peers, _) = time_cli(&[&datadir, "getpeerinfo"]);
    assert!(!peers.contains(&node1), "the banned node is still connected: {peers}");
    let (ok, _, err) = time_cli(&[&datadir, "setban", &node1, "remove"]);
    assert!(ok, "{err}");
    let (ok, _, err) = time_cli(&[&datadir, "setban", &node1, "remove"]);
    assert!(!ok && err.contains("error code: -30"), "{err}");
    // `stop` stops the node gracefully.
    let (ok, out, _) = time_cli(&[&datadir, "stop"]);
    assert!(ok && out.contains("stopping"), "{out}");
    let status = net.children[0].take().unwrap().wait().unwrap();
    assert!(status.success(), "the node exited with {status}");
}

/// Parses the Prometheus text exposition format strictly enough to catch malformed output:
/// every sample line is `name{labels} value` with a valid metric name and a number, every
/// `# TYPE` names a known kind. Returns the samples by their full name with labels.
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    let valid_name = |name: &str| {
        !name.is_empty()
            && name
                .chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()))
    };
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(valid_name(name), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        assert!(valid_name(name), "bad metric name in {line:?}");
        assert!(series.contains('{') == series.ends_with('}'), "{line}");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        samples.insert(series.to_owned(), value);
    }
    samples
}

#[test]
fn metrics_are_served_in_the_prometheus_format() {
    let mut net = Localnet::init(3);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = net.config(0);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{text}\n[metrics]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    for node in 0..3 {
        net.start(node);
    }
    net.wait_until(&[0, 1, 2], 3);
    let scrape = || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        parse_exposition(body)
    };
    let samples = scrape();
    let value = |name: &str| {
        *samples
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing: {samples:?}"))
    };
    assert!(value("timecoin_chain_height") >= 3.0);
    assert!(value("timecoin_blocks_finalized_total") >= 3.0);
    assert_eq!(value("timecoin_peers"), 2.0);
    // Traffic is counted by message: the votes that finalized those blocks are there.
    for series in [
        "timecoin_network_received_bytes_total",
        "timecoin_network_sent_bytes_total",
        "timecoin_network_received_messages_total",
        "timecoin_network_sent_messages_total",
    ] {
        assert!(value(&format!("{series}{{kind=\"vote\"}}")) > 0.0, "{series}");
    }
    assert!(value("timecoin_block_apply_seconds_count") >= 3.0);
    assert!(
        samples
            .keys()
            .any(|k| k.starts_with("timecoin_commit_latency_seconds_bucket{"))
    );
    assert!(samples.contains_key("timecoin_mempool_transactions"));
    assert_eq!(value("timecoin_sync_behind"), 0.0);
    assert_eq!(value("timecoin_masternodes{status=\"active\"}"), 3.0, "{samples:?}");
    assert_eq!(value("timecoin_masternodes{status=\"banned\"}"), 0.0);
    assert_eq!(value("timecoin_voting_power"), 3.0);
    // Height moves on between scrapes.
    let before = value("timecoin_chain_height");
    net.wait_until(&[0], before as u64 + 1);
    assert!(scrape()["timecoin_chain_height"] > before);
}

/// Every method of the API, through the typed client, against a running network — with the
/// error cases a user meets. The test fails if a method of the table is left out.
#[test]
fn every_rpc_method_answers_through_the_client_including_errors() {
    use serde_json::{Value, json};
    use timecoin_rpc::{Client, ClientError};

    let net = Localnet::running(3);
    let client = |node: usize| {
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], net.rpc_port(node)));
        Client::with_cookie(address, &net.path().join(format!("node{node}")).join(".cookie")).unwrap()
    };
    let called = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let call = |node: usize, method: &str, params: Value| {
        called.borrow_mut().insert(method.to_owned());
        client(node).call(method, params)
    };
    let ok = |node: usize, method: &str, params: Value| {
        call(node, method, params.clone()).unwrap_or_else(|e| panic!("{method} {params}: {e}"))
    };

    // Chain.
    let info = ok(0, "getblockchaininfo", json!([]));
    assert_eq!(info["chain"], json!("local"));
    let count = ok(0, "getblockcount", json!([])).as_u64().unwrap();
    let best = ok(0, "getbestblockhash", json!([]));
    let hash = ok(0, "getblockhash", json!([1]));
    assert_eq!(code(call(0, "getblockhash", json!([count + 1000]))), -8);
    assert!(best.is_string());
    let header = ok(0, "getblockheader", json!([hash]));
    assert_eq!(header["height"], json!(1));
    let unknown = "00".repeat(32);
    assert_eq!(code(call(0, "getblock", json!([unknown]))), -5, "unknown block");
    let block = ok(0, "getblock", json!([hash, 2]));
    let reward_tx = block["tx"][0]["txid"].clone();
    assert_eq!(ok(0, "getcommit", json!([1]))["blockhash"], hash);
    // Not pruning (localnet/prune.rs runs a pruning node).
    assert_eq!(ok(0, "getblockchaininfo", json!([]))["pruned"], json!(false));
    assert_eq!(code(call(0, "pruneblockchain", json!([1]))), -1);
    // localnet/state.rs loads a dumped state into a new node.
    assert_eq!(code(call(0, "dumptxoutset", json!([""]))), -8, "no path");
    let dumped = ok(0, "dumptxoutset", json!(["every-method-state.dat"]));
    assert!(dumped["coins_written"].as_u64().unwrap() > 0, "{dumped}");
    assert_eq!(
        code(call(0, "dumptxoutset", json!(["every-method-state.dat"]))),
        -1,
        "exists"
    );
    let utxos = ok(0, "gettxoutsetinfo", json!([]));
    assert!(utxos["txouts"].as_u64().unwrap() > 0);
    let reward_out = ok(0, "gettxout", json!([reward_tx, 0]));
    assert!(reward_out["coinbase"].as_bool().unwrap(), "{reward_out}");
    let consensus = ok(0, "getconsensusinfo", json!([]));
    assert_eq!(consensus["masternodes"].as_array().unwrap().len(), 3);
    // Block 1 holds its reward alone (localnet/signing.rs checks the figures of a payment).
    let stats = ok(0, "getblockstats", json!([1, ["txs", "ins", "totalfee"]]));
    assert_eq!(stats, json!({"txs": 1, "ins": 0, "totalfee": 0}));
    assert_eq!(code(call(0, "signrawtransactionwithkey", json!(["zz", []]))), -22);
    assert_eq!(code(call(0, "importaddress", json!(["time1qqq"]))), -5);
    let backup = net.path().join("every-method-backup.json");
    assert_eq!(ok(0, "backupwallet", json!([backup])), Value::Null);
    assert!(backup.exists());

    // The wallet and raw transactions.
    let to = ok(1, "getnewaddress", json!([]));
    let change = ok(1, "getrawchangeaddress", json!([]));
    assert_ne!(to, change);
    assert_eq!(ok(0, "validateaddress", json!([to]))["isvalid"], json!(true));
    assert_eq!(ok(0, "validateaddress", json!(["time1qqq"]))["isvalid"], json!(false));
    assert_eq!(
        code(call(0, "sendtoaddress", json!(["nonsense", 1]))),
        -5,
        "bad address"
    );
    assert_eq!(
        code(call(0, "sendtoaddress", json!([to, 10_000_000]))),
        -6,
        "insufficient funds"
    );
    let txid = ok(
        0,
        "sendmany",
        json!(["", { to.as_str().unwrap(): 2, change.as_str().unwrap(): 3 }]),
    );
    let pending = ok(0, "getrawmempool", json!([]));
    if pending.as_array().unwrap().contains(&txid) {
        assert!(ok(0, "getmempoolentry", json!([txid]))["vsize"].as_u64().unwrap() > 0);
    } else {
        assert_eq!(code(call(0, "getmempoolentry", json!([txid]))), -5);
    }
    assert!(ok(0, "getmempoolinfo", json!([]))["size"].is_u64());
    let raw = ok(0, "getrawtransaction", json!([txid]));
    let decoded = ok(0, "decoderawtransaction", json!([raw]));
    assert_eq!(decoded["txid"], txid);
    assert_eq!(code(call(0, "sendrawtransaction", json!(["00"]))), -22);
    let accept = ok(0, "testmempoolaccept", json!([[raw]]));
    assert_eq!(accept[0]["allowed"], json!(false), "a double spend of itself: {accept}");
    // Both nodes have the block before anything depends on it.
    for node in [0, 1] {
        assert_eq!(
            ok(node, "waitfortransaction", json!([txid, 120]))["finalized"],
            json!(true)
        );
    }
    let twice = call(0, "sendrawtransaction", json!([raw]));
    assert_eq!(code(twice), -27, "already in the chain");
    // Finality proofs (localnet/proofs.rs checks them offline across set changes).
    let proof = ok(0, "gettxoutproof", json!([[txid]]));
    assert_eq!(ok(1, "verifytxoutproof", json!([proof])), json!([txid]));
    assert_eq!(code(call(0, "gettxoutproof", json!([[]]))), -8, "no txid");
    assert_eq!(code(call(0, "gettxoutproof", json!([["zz"]]))), -8, "not a txid");
    assert_eq!(code(call(0, "gettxoutproof", json!([[txid, txid]]))), -8, "twice");
    assert_eq!(code(call(0, "gettxoutproof", json!([[unknown]]))), -5, "unknown");
    assert_eq!(
        code(call(0, "gettxoutproof", json!([[txid], hash]))),
        -5,
        "not in block 1"
    );
    assert_eq!(code(call(0, "gettxoutproof", json!([[txid], null, 1_000_000]))), -8);
    assert_eq!(code(call(0, "verifytxoutproof", json!(["zz"]))), -22);
    let header_proof = ok(0, "getheaderproof", json!([2, 1]));
    assert!(header_proof.as_str().unwrap().len() > 500, "{header_proof}");
    assert_eq!(code(call(0, "getheaderproof", json!([2, 2]))), -1, "not above");
    assert_eq!(
        code(call(0, "getheaderproof", json!([1_000_000]))),
        -5,
        "above the chain"
    );
    let balances = ok(1, "getbalances", json!([]));
    assert_eq!(balances["mine"]["trusted"], json!(5.0), "{balances}");
    assert_eq!(ok(1, "getbalance", json!([])), json!(5.0));
    assert_eq!(ok(1, "listunspent", json!([])).as_array().unwrap().len(), 2);
    assert_eq!(
        ok(1, "gettransaction", json!([txid]))["details"][0]["category"],
        json!("receive")
    );
    assert_eq!(ok(0, "listtransactions", json!(["*", 1]))[0]["txid"], txid);
    let since = ok(1, "listsinceblock", json!([hash]));
    assert!(
        since["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["txid"] == txid),
        "{since}"
    );
    assert_eq!(code(call(1, "listtransactions", json!(["savings"]))), -8);
    let coin = &ok(1, "listunspent", json!([]))[0];
    let back = ok(0, "getnewaddress", json!([]));
    let unsigned = ok(
        1,
        "createrawtransaction",
        json!([[{"txid": coin["txid"], "vout": coin["vout"]}], {back.as_str().unwrap(): 1}]),
    );
    let signed = ok(1, "signrawtransactionwithwallet", json!([unsigned]));
    assert_eq!(signed["complete"], json!(true));
    // A locked coin leaves listunspent (and coin selection), not the balance.
    let outpoint = json!([{"txid": coin["txid"], "vout": coin["vout"]}]);
    assert_eq!(ok(1, "lockunspent", json!([false, outpoint])), json!(true));
    assert_eq!(
        code(call(1, "lockunspent", json!([false, outpoint]))),
        -8,
        "locked already"
    );
    assert_eq!(ok(1, "listlockunspent", json!([])), outpoint);
    assert_eq!(ok(1, "listunspent", json!([])).as_array().unwrap().len(), 1);
    assert_eq!(ok(1, "getbalance", json!([])), json!(5.0));
    assert_eq!(ok(1, "lockunspent", json!([true])), json!(true));
    assert_eq!(ok(1, "listlockunspent", json!([])), json!([]));
    assert_eq!(code(call(1, "lockunspent", json!([true, outpoint]))), -8, "not locked");
    let stranger = json!([{"txid": "00".repeat(32), "vout": 0}]);
    assert_eq!(
        code(call(1, "lockunspent", json!([false, stranger]))),
        -8,
        "not the wallet's"
    );
    // What an address received; a message its key signed.
    // The receiving address (node 1 also holds a coin on its change address, which
    // listreceivedbyaddress leaves out, as Bitcoin Core does).
    let mine = to.clone();
    let received = ok(1, "getreceivedbyaddress", json!([mine])).as_f64().unwrap();
    assert!(received > 0.0, "{received}");
    assert_eq!(
        code(call(1, "getreceivedbyaddress", json!([back]))),
        -4,
        "node 0's address"
    );
    let by_address = ok(1, "listreceivedbyaddress", json!([1, false, false, mine]));
    assert_eq!(by_address.as_array().unwrap().len(), 1, "{by_address}");
    assert_eq!(by_address[0]["amount"].as_f64().unwrap(), received);
    assert!(
        by_address[0]["txids"].as_array().unwrap().contains(&txid),
        "{by_address}"
    );
    let unused = ok(1, "getnewaddress", json!([]));
    let all = ok(1, "listreceivedbyaddress", json!([1, true]));
    let fresh = all.as_array().unwrap().iter().find(|e| e["address"] == unused).cloned();
    assert_eq!(
        fresh.map(|e| (e["amount"].clone(), e["txids"].clone())),
        Some((json!(0.0), json!([]))),
        "{all}"
    );
    let proof = ok(1, "signmessage", json!([mine, "pay me here"]));
    assert_eq!(ok(0, "verifymessage", json!([mine, proof, "pay me here"])), json!(true));
    assert_eq!(
        ok(0, "verifymessage", json!([mine, proof, "pay me there"])),
        json!(false)
    );
    assert_eq!(
        ok(0, "verifymessage", json!([back, proof, "pay me here"])),
        json!(false)
    );
    assert_eq!(code(call(0, "verifymessage", json!([mine, "%%%", "pay me here"]))), -3);
    assert_eq!(code(call(0, "signmessage", json!([mine, "not node 0's"]))), -8);
    // The fee estimate: the mempool's floor while little waits.
    let estimate = ok(0, "estimatesmartfee", json!([6]));
    assert_eq!(estimate["blocks"], json!(6));
    assert!(estimate["feerate"].as_f64().unwrap() > 0.0, "{estimate}");
    assert_eq!(code(call(0, "estimatesmartfee", json!([0]))), -8);
    assert_eq!(code(call(1, "walletlock", json!([]))), -15, "not encrypted");
    let phrase = ok(1, "dumpmnemonic", json!([]));
    assert_eq!(phrase.as_str().unwrap().split(' ').count(), 24);
    ok(1, "encryptwallet", json!(["pw"]));
    assert_eq!(code(call(1, "dumpmnemonic", json!([]))), -13, "locked");
    assert_eq!(
        code(call(1, "walletpassphrase", json!(["PW", 10]))),
        -14,
        "wrong password"
    );
    assert!(ok(1, "walletpassphrase", json!(["pw", 10])).is_null());
    assert_eq!(
        ok(1, "dumpmnemonic", json!([])),
        phrase,
        "the same phrase, sealed and opened"
    );
    assert!(ok(1, "walletlock", json!([])).is_null());

    // Network, masternodes, control.
    assert_eq!(ok(0, "getconnectioncount", json!([])), json!(2));
    assert_eq!(ok(0, "getpeerinfo", json!([])).as_array().unwrap().len(), 2);
    assert_eq!(ok(0, "getnetworkinfo", json!([]))["connections"], json!(2));
    assert!(ok(0, "addnode", json!([format!("127.0.0.1:{}", net.p2p_port(2)), "add"])).is_null());
    assert_eq!(code(call(0, "addnode", json!(["nowhere", "add"]))), -8);
    let other = net.key(2, "masternode.key").public_key().to_string();
    assert!(ok(0, "setban", json!([other, "add", 60])).is_null());
    assert_eq!(ok(0, "listbanned", json!([])).as_array().unwrap().len(), 1);
    assert!(ok(0, "setban", json!([other, "remove"])).is_null());
    let masternodes = ok(0, "masternodelist", json!([]));
    assert_eq!(masternodes.as_array().unwrap().len(), 3);
    let own = ok(0, "masternodestatus", json!([]));
    assert_eq!(own["status"], json!("active"));
    // The masternode transactions' refusals (the process test of registration covers the
    // successes): a free tier, a bad key, an unknown id, a genesis masternode without
    // collateral, another node's masternode.
    let operator = own["operator"].as_str().unwrap().to_owned();
    let genesis_id = own["id"].as_str().unwrap().to_owned();
    assert_eq!(
        code(call(0, "masternoderegister", json!(["free", operator, "127.0.0.1:1"]))),
        -8
    );
    assert_eq!(
        code(call(0, "masternoderegister", json!(["bronze", "beef", "127.0.0.1:1"]))),
        -8
    );
    assert_eq!(code(call(0, "masternodeupdate", json!(["00".repeat(32)]))), -8);
    assert_eq!(code(call(0, "masternodeunlock", json!([genesis_id]))), -8);
    let other = masternodes
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["operator"] != operator.as_str())
        .unwrap();
    assert_eq!(code(call(0, "masternoderevoke", json!([other["id"]]))), -8);
    assert_eq!(ok(0, "listlockedcollaterals", json!([])), json!([]));
    assert!(ok(0, "getmemoryinfo", json!([]))["rss"].as_u64().unwrap() > 0);
    assert!(ok(0, "uptime", json!([])).is_u64());
    assert_eq!(
        ok(0, "getzmqnotifications", json!([])),
        json!([]),
        "no [zmq] in a local network"
    );
    // No [index] either: Dash Core's answer for each address method (localnet/index.rs has the rest).
    for method in [
        "getaddressbalance",
        "getaddressutxos",
        "getaddresstxids",
        "getaddressdeltas",
    ] {
        assert_eq!(code(call(0, method, json!([{"addresses": [back]}]))), -1, "{method}");
    }
    assert!(ok(0, "help", json!([])).as_str().unwrap().contains("sendtoaddress"));
    // An oversized request is refused before it is read: the client sees the 413, or, when
    // the server closed the connection before the body was all sent, a reset; either way
    // the server goes on serving.
    let huge = format!(r#"{{"method":"getblockcount","id":1,"pad":"{}"}}"#, "x".repeat(5 << 20));
    let refused = client(0).post(&huge);
    assert!(
        matches!(
            refused,
            Err(ClientError::Http { status: 413, .. } | ClientError::Connect { .. })
        ),
        "{refused:?}"
    );
    assert!(ok(0, "getblockcount", json!([])).is_u64());
    assert!(ok(0, "stop", json!([])).as_str().unwrap().contains("stopping"));

    // The WebSocket listener's methods are called in localnet/subscriptions.rs.
    let missing: Vec<&str> = timecoin_rpc::methods::METHODS
        .iter()
        .filter(|m| m.category != timecoin_rpc::methods::WEBSOCKET_CATEGORY)
        .map(|m| m.name)
        .filter(|name| !called.borrow().contains(*name))
        .collect();
    assert!(missing.is_empty(), "methods not exercised: {missing:?}");
}

/// A Python client written for Bitcoin Core — python-bitcoinrpc's AuthServiceProxy,
/// installed from PyPI here — reads the chain, sends coins and sees them finalized, with
/// nothing but each node's cookie file.
#[test]
fn a_bitcoin_core_python_client_works_with_only_the_cookie() {
    let net = Localnet::running(3);
    let packages = tempfile::tempdir().unwrap();
    let installed = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(packages.path())
        .arg("python-bitcoinrpc==1.0")
        .status()
        .expect("python3 with pip is needed for this test");
    assert!(installed.success(), "pip could not install python-bitcoinrpc");
    let script = r#"
import sys
from decimal import Decimal
from bitcoinrpc.authproxy import AuthServiceProxy

def proxy(cookie, port):
    with open(cookie) as f:
        credentials = f.read().strip()
    return AuthServiceProxy("http://%s@127.0.0.1:%s" % (credentials, port), timeout=180)

payer = proxy(sys.argv[1], sys.argv[2])
payee = proxy(sys.argv[3], sys.argv[4])
height = payer.getblockcount()
assert height >= 2, height
assert payer.getblockchaininfo()["chain"] == "local"
block = payer.getblock(payer.getblockhash(1))
assert block["height"] == 1
address = payee.getnewaddress()
txid = payer.sendtoaddress(address, Decimal("3.25"))
done = payee.waitfortransaction(txid, 120)
assert done["finalized"], done
assert payee.getbalance() == Decimal("3.25"), payee.getbalance()
print("ok", txid)
"#;
    let cookie = |node: usize| net.path().join(format!("node{node}")).join(".cookie");
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(cookie(0))
        .arg(net.rpc_port(0).to_string())
        .arg(cookie(1))
        .arg(net.rpc_port(1).to_string())
        .env("PYTHONPATH", packages.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.starts_with("ok "),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
