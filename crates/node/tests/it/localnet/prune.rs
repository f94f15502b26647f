//! A pruning node on real processes: it holds its block data under its limit while the
//! chain grows, keeps finalizing, and says what it pruned; peers sync around it.

use super::*;

const LIMIT_MEGABYTES: u64 = 1;
const BLOCKS: u64 = 5_000;

#[test]
fn a_pruned_node_stays_under_its_limit_through_five_thousand_blocks_and_keeps_finalizing() {
    // Three masternodes and a spare node that joins at the end.
    let mut net = Localnet::init_with_spare(3, 1);
    // Fast, but not as fast as consensus goes: unpaced, three nodes on two cores make blocks
    // faster than a fourth can fetch and check them.
    for node in 0..4 {
        net.edit_config(node, |text| {
            text.replace("min_block_interval_ms = 1000", "min_block_interval_ms = 20")
                .replace("empty_block_interval_ms = 2000", "empty_block_interval_ms = 20")
        });
    }
    // The wallet rebuilds its history from the blocks at each start: a pruning node has none.
    net.edit_config(0, |text| {
        format!("{text}\n[storage]\nprune_megabytes = {LIMIT_MEGABYTES}\n\n[wallet]\nenabled = false\n")
    });
    for node in 0..3 {
        net.start(node);
    }
    let limit = LIMIT_MEGABYTES * 1024 * 1024;
    let started = Instant::now();
    let mut samples = 0;
    let mut peak = 0;
    let mut largest_file = 0;
    let file = net.path().join("node0").join("chain.redb");
    let mut next = 250;
    while next <= BLOCKS {
        net.wait_until(&[0], next);
        let info = result(net.rpc(0, "getblockchaininfo", serde_json::json!([])));
        let held = info["size_on_disk"].as_u64().unwrap();
        assert!(
            held <= limit,
            "{held} bytes of blocks held at height {}: {info}",
            info["blocks"]
        );
        assert_eq!(info["pruned"], true, "{info}");
        peak = peak.max(held);
        largest_file = largest_file.max(std::fs::metadata(&file).unwrap().len());
        samples += 1;
        next += 250;
    }
    let info = result(net.rpc(0, "getblockchaininfo", serde_json::json!([])));
    let pruneheight = info["pruneheight"].as_u64().unwrap();
    println!(
        "{BLOCKS} blocks in {:.0} s; block data at most {peak} of {limit} bytes over {samples} samples; chain.redb at most {largest_file} bytes; pruned below {pruneheight}",
        started.elapsed().as_secs_f64()
    );
    assert!(pruneheight > 1_000, "{info}");
    assert_eq!(info["prune_target_size"], limit);

    // What it pruned: the body is gone, the header and hash stay; later blocks are served.
    let hash = result(net.rpc(0, "getblockhash", serde_json::json!([5])));
    assert_eq!(hash, result(net.rpc(1, "getblockhash", serde_json::json!([5]))));
    let header = result(net.rpc(0, "getblockheader", serde_json::json!([hash])));
    assert_eq!(header["height"], 5);
    assert!(header.get("nTx").is_none(), "{header}");
    assert_eq!(net.rpc(0, "getblock", serde_json::json!([hash]))["error"]["code"], -5);
    let tip_hash = result(net.rpc(0, "getbestblockhash", serde_json::json!([])));
    assert!(result(net.rpc(0, "getblock", serde_json::json!([tip_hash])))["tx"].is_array());
    // Pruning by hand goes no closer to the tip than the blocks it keeps.
    // (The chain goes on meanwhile: the tip is read after the call, and the height past it
    // is far past.)
    let asked = result(net.rpc(0, "getblockcount", serde_json::json!([])))
        .as_u64()
        .unwrap();
    let last_pruned = result(net.rpc(0, "pruneblockchain", serde_json::json!([asked])));
    let last_pruned = last_pruned.as_u64().unwrap();
    let tip = result(net.rpc(0, "getblockcount", serde_json::json!([])))
        .as_u64()
        .unwrap();
    assert!(
        last_pruned <= tip - 288 && last_pruned >= pruneheight,
        "{last_pruned} at {tip}"
    );
    assert!(
        result(net.rpc(
            0,
            "getblock",
            serde_json::json!([result(net.rpc(0, "getblockhash", serde_json::json!([tip - 287])))])
        ))["tx"]
            .is_array()
    );
    assert_eq!(
        net.rpc(0, "pruneblockchain", serde_json::json!([tip + 1_000_000]))["error"]["code"],
        -8
    );
    assert_eq!(
        net.rpc(1, "pruneblockchain", serde_json::json!([10]))["error"]["code"],
        -1
    );

    // It still finalizes with the others, and a node joining now syncs every block from
    // the peers that hold them, though it hears from the pruned one too.
    let top = net.top();
    net.wait_until(&[0, 1, 2], top + 20);
    net.start(3);
    let top = net.top();
    net.wait_until(&[3], top);
    let joined = result(net.rpc(3, "getblockchaininfo", serde_json::json!([])));
    assert_eq!(joined["pruned"], false, "{joined}");
    for height in [1, pruneheight - 1, top] {
        let hash = result(net.rpc(3, "getblockhash", serde_json::json!([height])));
        assert_eq!(
            hash,
            result(net.rpc(0, "getblockhash", serde_json::json!([height]))),
            "{height}"
        );
    }
}
