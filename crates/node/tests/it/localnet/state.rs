//! Joining by chain state on real processes: one node dumps its state, a new node loads it
//! (trusting only the genesis) and follows the chain; another new node replays the whole
//! chain; both end with the same UTXO commitment. `TIMECOIN_STATE_HEIGHT` sets how long the
//! chain grows first (300 blocks by default; the closing note's figures are at 10,000).

use super::*;

fn load_state(net: &Localnet, node: usize, file: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_timed"))
        .arg("--config")
        .arg(net.config(node))
        .arg("load-state")
        .arg(file)
        .output()
        .unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn a_node_joins_from_a_dumped_state_and_agrees_with_one_that_replayed_the_chain() {
    let height: u64 = std::env::var("TIMECOIN_STATE_HEIGHT")
        .ok()
        .map_or(300, |v| v.parse().unwrap());
    // Three masternodes; node 3 joins by replaying, node 4 from the state.
    let mut net = Localnet::init_with_spare(3, 2);
    for node in 0..5 {
        net.unpace(node);
    }
    for node in 0..3 {
        net.start(node);
    }
    // A payment, so that the state holds more than rewards and allocations.
    net.wait_until(&[0, 1, 2], 2);
    let payee = result(net.rpc(1, "getnewaddress", serde_json::json!([])));
    let txid = result(net.rpc(0, "sendtoaddress", serde_json::json!([payee, 7])));
    let grown = Instant::now();
    // In steps, each well within the harness's deadline.
    for step in (500..height).step_by(500).chain([height]) {
        net.wait_until(&[0, 1, 2], step);
    }
    println!("{height} blocks made in {:.0} s", grown.elapsed().as_secs_f64());

    let dumped = result(net.rpc(0, "dumptxoutset", serde_json::json!(["state.dat"])));
    let base = dumped["base_height"].as_u64().unwrap();
    assert!(base >= height, "{dumped}");
    let file = PathBuf::from(dumped["path"].as_str().unwrap());
    assert!(file.exists());
    assert_eq!(
        net.rpc(0, "dumptxoutset", serde_json::json!(["state.dat"]))["error"]["code"],
        -1,
        "an existing file is not overwritten"
    );

    // A file with one coin changed is refused, and leaves no store.
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let tampered = net.path().join("tampered.dat");
    std::fs::write(&tampered, &bytes).unwrap();
    let (ok, said) = load_state(&net, 4, &tampered);
    assert!(!ok, "{said}");
    assert!(said.contains("chain-state file"), "{said}");
    assert!(!net.path().join("node4").join("chain.redb").exists());

    // Node 4 joins from the state: load, start, catch up.
    let joining = Instant::now();
    let (ok, said) = load_state(&net, 4, &file);
    assert!(ok, "{said}");
    let loaded_in = joining.elapsed();
    net.start(4);
    // It logs the blocks it applies, from the one after the state's.
    let top = net.top().max(base + 1);
    net.wait_until(&[4], top);
    let by_state = joining.elapsed();

    // Node 3 joins by replaying every block.
    let replaying = Instant::now();
    net.start(3);
    let top = net.top();
    net.wait_until(&[3], top);
    let by_replay = replaying.elapsed();
    println!(
        "joined at height {top}: from the state at {base} in {:.1} s (loading {:.1} s), by replaying in {:.1} s",
        by_state.as_secs_f64(),
        loaded_in.as_secs_f64(),
        by_replay.as_secs_f64()
    );

    // The chain halts (two of three masternodes stop); the three remaining nodes end at one
    // height with one UTXO set.
    net.kill(1);
    net.kill(2);
    let halted = net.rpc(0, "getblockcount", serde_json::json!([]));
    let last = net.top().max(halted["result"].as_u64().unwrap());
    net.wait_until(&[3, 4], last);
    let sets: Vec<serde_json::Value> = [0, 3, 4]
        .iter()
        .map(|node| result(net.rpc(*node, "gettxoutsetinfo", serde_json::json!([]))))
        .collect();
    assert_eq!(sets[0]["height"], serde_json::json!(last), "{sets:?}");
    for set in &sets[1..] {
        for field in ["height", "bestblock", "txouts", "total_amount", "hash_serialized"] {
            assert_eq!(set[field], sets[0][field], "{field}: {sets:?}");
        }
    }
    // The node from the state says where its blocks begin, proves finality from there (not
    // from the genesis), and holds the payment's coin.
    let info = result(net.rpc(4, "getblockchaininfo", serde_json::json!([])));
    assert_eq!(info["pruneheight"], serde_json::json!(base), "{info}");
    assert!(result(net.rpc(4, "getheaderproof", serde_json::json!([last, base]))).is_string());
    let refused = net.rpc(4, "getheaderproof", serde_json::json!([last]));
    assert_eq!(refused["error"]["code"], -1, "{refused}");
    let paid = result(net.rpc(3, "getrawtransaction", serde_json::json!([txid, true])));
    let vout = paid["vout"]
        .as_array()
        .unwrap()
        .iter()
        .position(|out| out["value"] == serde_json::json!(7.0))
        .unwrap();
    let coin = result(net.rpc(4, "gettxout", serde_json::json!([txid, vout])));
    assert_eq!(coin["value"], serde_json::json!(7.0), "{coin}");
}
