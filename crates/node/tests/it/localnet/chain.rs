//! A network of `timed` processes finalizing, crashing, restarting, syncing and stopping:
//! the chain's life on real processes.

use super::*;

/// Found by this test: a node syncing hundreds of blocks used to announce each one to its
/// peers, exceeded their sync rate and got itself banned by all of them.
#[test]
fn a_wiped_node_syncs_a_thousand_blocks_then_takes_part() {
    let mut net = Localnet::init(4);
    // Blocks as fast as consensus goes.
    for node in 0..4 {
        net.unpace(node);
    }
    for node in 0..4 {
        net.start(node);
    }
    net.wait_until(&[0, 1, 2, 3], 1_000);
    // Node 3 loses its chain and comes back: it syncs everything (batches of 100) from its
    // peers, verifying each certificate, then takes part again.
    net.kill(3);
    std::fs::remove_file(net.path().join("node3").join("chain.redb")).unwrap();
    for by_node in net.finalized.values_mut() {
        by_node.remove(&3);
    }
    net.start(3);
    let started = Instant::now();
    let top = net.top();
    net.wait_until(&[3], top);
    println!("node 3 synced {top} blocks in {:.1} s", started.elapsed().as_secs_f64());
    let top = net.top();
    net.wait_until(&[0, 1, 2, 3], top + 10);
}

#[test]
fn four_masternodes_finalize_survive_crashes_and_restarts_and_a_late_node_catches_up() {
    let mut net = Localnet::init(4);
    assert!(net.path().join("genesis.toml").exists());
    // Three start; more than 2/3 of the power is there, so they finalize.
    for node in 0..3 {
        net.start(node);
    }
    net.wait_until(&[0, 1, 2], 3);

    // The fourth starts late, syncs the finalized blocks, then takes part.
    net.start(3);
    let top = net.top();
    net.wait_until(&[3], top);
    net.wait_until(&[0, 1, 2, 3], top + 2);

    // A payment sent to node 1 over JSON-RPC is relayed, proposed and finalized, and node 3
    // serves the block that holds it.
    use timecoin_primitives::Encode;
    let tx = net.payment();
    let tested = net.rpc(
        1,
        "testmempoolaccept",
        serde_json::json!([[hex::encode(tx.to_bytes())]]),
    );
    assert_eq!(tested["result"][0]["allowed"], serde_json::json!(true), "{tested}");
    let answer = net.rpc(1, "sendrawtransaction", serde_json::json!([hex::encode(tx.to_bytes())]));
    assert_eq!(answer["result"], serde_json::json!(tx.txid().to_string()), "{answer}");
    let again = net.rpc(2, "sendrawtransaction", serde_json::json!([hex::encode(tx.to_bytes())]));
    // Node 3 waits for the payment to be finalized, and the block it names holds it.
    let txid = serde_json::json!(tx.txid().to_string());
    let waited = net.rpc(3, "waitfortransaction", serde_json::json!([txid, 120]));
    assert_eq!(waited["result"]["finalized"], serde_json::json!(true), "{waited}");
    let included = waited["result"]["height"].as_u64().unwrap();
    let hash = net.rpc(3, "getblockhash", serde_json::json!([included]))["result"].clone();
    let block = net.rpc(3, "getblock", serde_json::json!([hash, 1]));
    assert!(block["result"]["tx"].as_array().unwrap().contains(&txid), "{block}");
    let raw = net.rpc(3, "getrawtransaction", serde_json::json!([txid, true]));
    assert_eq!(raw["result"]["blockhash"], hash, "{raw}");
    // The payment's output is unspent; the allocation it spent is not.
    let paid = net.rpc(3, "gettxout", serde_json::json!([txid, 0]));
    assert_eq!(paid["result"]["value"], serde_json::json!(100.0), "{paid}");
    let spent = tx.inputs[0].prevout;
    let gone = net.rpc(3, "gettxout", serde_json::json!([spent.txid.to_string(), spent.index]));
    assert!(gone["result"].is_null(), "{gone}");
    // Once node 0 has that block too, the transaction is in its chain.
    net.wait_until(&[0], included);
    // Node 2 had it already (relayed) or accepted it; spending it twice is refused now.
    assert!(again.get("result").is_some() || again.get("error").is_some());
    let twice = net.rpc(0, "sendrawtransaction", serde_json::json!([hex::encode(tx.to_bytes())]));
    assert_eq!(twice["error"]["code"], serde_json::json!(-27), "{twice}");
    let known = net.rpc(
        0,
        "testmempoolaccept",
        serde_json::json!([[hex::encode(tx.to_bytes())]]),
    );
    assert_eq!(
        known["result"][0]["reject-reason"],
        serde_json::json!("txn-already-known"),
        "{known}"
    );
    // The masternode set and the consensus position as node 0 sees them.
    let consensus = net.rpc(0, "getconsensusinfo", serde_json::json!([]));
    assert_eq!(
        consensus["result"]["masternodes"].as_array().unwrap().len(),
        4,
        "{consensus}"
    );
    assert_eq!(consensus["result"]["quorum"], serde_json::json!(3));
    assert!(consensus["result"]["height"].as_u64().unwrap() > included);
    // Three precommits decide; the fourth, arriving after, still joins the certificate the
    // next block carries, so proof of service credits the slowest masternode too.
    net.wait_until(&[0], included + 3);
    let all_four = (top + 3..=included + 3).any(|height| {
        let hash = net.rpc(0, "getblockhash", serde_json::json!([height]))["result"].clone();
        let block = net.rpc(0, "getblock", serde_json::json!([hash, 1]));
        block["result"]["lastcommit"]["signers"].as_array().map(Vec::len) == Some(4)
    });
    assert!(
        all_four,
        "no block from {} to {} carries all four precommits",
        top + 3,
        included + 3
    );
    let list = net.rpc(0, "masternodelist", serde_json::json!([]));
    let connected = list["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["connected"] == true)
        .count();
    assert_eq!(connected, 4, "node 0 and its three peers: {list}");
    let own = net.rpc(0, "masternodestatus", serde_json::json!([]));
    assert_eq!(own["result"]["status"], serde_json::json!("active"), "{own}");
    let info = net.rpc(0, "getblockchaininfo", serde_json::json!([]));
    assert_eq!(info["result"]["chain"], serde_json::json!("local"));

    // One killed: the other three keep finalizing.
    net.kill(3);
    let top = net.top();
    net.wait_until(&[0, 1, 2], top + 2);

    // Two down: the chain halts (no conflicting commit), and resumes when one returns.
    net.kill(2);
    let halted_at = net.watch_for(Duration::from_secs(1));
    let later = net.watch_for(Duration::from_secs(6));
    assert!(
        later <= halted_at + 1,
        "with half the power down the chain went from {halted_at} to {later}"
    );
    net.start(2);
    net.wait_until(&[0, 1, 2], later + 2);

    // A graceful stop exits 0 and removes the RPC cookie (private while it exists), and every
    // node restarted continues the same chain.
    let cookie = net.path().join("node0").join(".cookie");
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&cookie).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert!(net.terminate(0), "SIGTERM must exit 0");
    assert!(!cookie.exists(), "the cookie outlived the node");
    let top = net.top();
    net.start(0);
    net.start(3);
    net.wait_until(&[0, 1, 2, 3], top + 2);
}

#[test]
fn a_node_of_another_genesis_is_refused_with_the_reason_while_the_network_goes_on() {
    let mut net = Localnet::running(3);
    // Another local network (another genesis) whose node 0 dials our node 0.
    let mut stranger = Localnet::init(3);
    let path = stranger.config(0);
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "bootstrap = [",
        &format!("bootstrap = [\"127.0.0.1:{}\", ", net.p2p_port(0)),
    );
    std::fs::write(&path, text).unwrap();
    stranger.start(0);
    let theirs = stranger.wait_for_event(0, |e| e["message"] == "peer refused and banned");
    assert!(theirs["reason"].as_str().unwrap().contains("genesis"), "{theirs}");
    let ours = net.wait_for_event(0, |e| e["message"] == "peer refused and banned");
    assert!(ours["reason"].as_str().unwrap().contains("genesis"), "{ours}");
    let top = net.top();
    net.wait_until(&[0, 1, 2], top + 2);
}

#[test]
fn sigkill_at_random_moments_loses_no_finalized_block() {
    let mut net = Localnet::running(4);
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    println!("kill schedule seed {seed}");
    for _ in 0..6 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // Let the network run for a random 0–2.5 s, then kill node 1 wherever it is.
        net.watch_for(Duration::from_millis((seed >> 33) % 2_500));
        let finalized = net.height_of(1);
        net.kill(1);
        net.start(1);
        let started = net.wait_for_event(1, |e| e["message"] == "started");
        let height = started["height"].as_u64().unwrap();
        assert!(
            height >= finalized,
            "node 1 finalized {finalized} but restarted at {height}"
        );
    }
    let top = net.top();
    net.wait_until(&[0, 1, 2, 3], top + 2);
    for height in 1..=top {
        let ours = net.rpc(1, "getblockhash", serde_json::json!([height]));
        let theirs = net.rpc(0, "getblockhash", serde_json::json!([height]));
        assert_eq!(ours["result"], theirs["result"], "height {height}");
    }
}

/// The README's main job: `timed localnet` writes a network, runs it, prints each node's
/// finalized blocks and a status line, and stops every node on Ctrl-C.
#[test]
fn timed_localnet_runs_a_network_shows_it_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_ports(6);
    let mut child = Command::new(env!("CARGO_BIN_EXE_timed"))
        .args(["localnet", "--nodes", "3", "--base-port", &base.to_string(), "--dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let status = lines
        .by_ref()
        .find(|line| line.starts_with("[network]") && !line.contains("height 0") && !line.contains("not answering"))
        .expect("a status line with every node past height 0");
    assert_eq!(status.matches("peers 2").count(), 3, "{status}");
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let rest: Vec<String> = lines.collect();
    assert!(child.wait().unwrap().success());
    let stopped = rest.iter().filter(|l| l.contains("stopped")).count();
    assert_eq!(stopped, 3, "every node stops gracefully: {rest:?}");
}
