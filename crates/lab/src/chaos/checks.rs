//! The checks at the end of a seed: every node's whole chain, UTXO-set commitment, peers and
//! a seeded sample of transactions, judged against each other and against what the observers
//! saw during the run.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Result, anyhow};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use super::observe::{self, Observed};
use crate::bench::nodes::Nodes;

/// Transactions whose place is checked on every node's API at the end, at most.
const SPOT_CHECKS: usize = 100;

/// What the final checks read from one node.
struct NodeEnd {
    /// Block hashes from height 0 up.
    chain: Vec<String>,
    /// `gettxoutsetinfo`: height and commitment.
    utxo: Option<(u64, String)>,
    /// Its peers' addresses (`getpeerinfo`).
    peers: Vec<String>,
    /// For each sampled transaction, the block hash `getrawtransaction` names, if any.
    sampled: Vec<Option<String>>,
}

/// Reads node `k`'s whole chain, UTXO summary and peers, and looks up `sample`.
fn read_node(nodes: &Nodes, k: usize, sample: &[(&String, &u64)]) -> Result<NodeEnd> {
    let client = nodes.client(k)?;
    let tip = client
        .call("getblockcount", json!([]))?
        .as_u64()
        .ok_or_else(|| anyhow!("node{k}: getblockcount answered no number"))?;
    let mut chain = Vec::new();
    for chunk in (0..=tip).collect::<Vec<u64>>().chunks(500) {
        let calls: Vec<(&str, Value)> = chunk.iter().map(|h| ("getblockhash", json!([h]))).collect();
        for (height, answer) in chunk.iter().zip(client.call_batch(&calls)?) {
            chain.push(
                answer?
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| anyhow!("node{k}: getblockhash {height} answered no string"))?,
            );
        }
    }
    let utxo = client.call("gettxoutsetinfo", json!([]))?;
    let utxo = utxo
        .get("height")
        .and_then(Value::as_u64)
        .zip(utxo.get("hash_serialized").and_then(Value::as_str).map(str::to_owned));
    let peers = client
        .call("getpeerinfo", json!([]))?
        .as_array()
        .map(|peers| {
            peers
                .iter()
                .map(|p| p.get("addr").and_then(Value::as_str).unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    let calls: Vec<(&str, Value)> = sample
        .iter()
        .map(|(txid, _)| ("getrawtransaction", json!([txid, true])))
        .collect();
    let sampled = if calls.is_empty() {
        Vec::new()
    } else {
        client
            .call_batch(&calls)?
            .into_iter()
            .map(|answer| {
                answer
                    .ok()
                    .and_then(|tx| tx.get("blockhash").and_then(Value::as_str).map(str::to_owned))
            })
            .collect()
    };
    Ok(NodeEnd {
        chain,
        utxo,
        peers,
        sampled,
    })
}

/// Reads every node's whole chain and checks it against what the observers saw. Returns
/// each node's height and the violations ([`judge`]).
pub(crate) fn final_checks(
    nodes: &Nodes,
    observed: &Observed,
    seed: u64,
    relay_ip: IpAddr,
) -> Result<(Vec<u64>, Vec<String>)> {
    // A sample of the transactions reported in blocks, looked up on every node.
    let mut reported: Vec<(&String, &u64)> = observed.transactions.iter().collect();
    reported.sort();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5907);
    let sample: Vec<(&String, &u64)> = (0..SPOT_CHECKS.min(reported.len()))
        .filter_map(|_| reported.get(rng.random_range(0..reported.len())).copied())
        .collect();
    let mut unanswered = Vec::new();
    let ends: Vec<Option<NodeEnd>> = (0..nodes.len())
        .map(|k| match read_node(nodes, k, &sample) {
            Ok(end) => Some(end),
            Err(error) => {
                // A node that crashed or hangs is a finding, not a failure of the run.
                unanswered.push(format!("liveness: node{k} did not answer at the end: {error:#}"));
                None
            }
        })
        .collect();
    let heights = ends
        .iter()
        .map(|end| {
            end.as_ref().map_or(0, |e| {
                u64::try_from(e.chain.len().saturating_sub(1)).unwrap_or(u64::MAX)
            })
        })
        .collect();
    let mut violations = judge(observed, &ends, &sample, relay_ip);
    violations.extend(unanswered);
    Ok((heights, violations))
}

/// The violations in what the nodes answered at the end (`ends`) and what the observers saw:
/// two block hashes at one height, across nodes and time; a height reported finalized that
/// a node lacks; a sampled transaction that a node does not place in the block reported;
/// two UTXO commitments at one height; a node without peers, or with a peer not reached
/// through the relay at `relay_ip`. A node that did not answer (`None`) is left out: that is
/// a violation of its own.
fn judge(observed: &Observed, ends: &[Option<NodeEnd>], sample: &[(&String, &u64)], relay_ip: IpAddr) -> Vec<String> {
    let mut violations = Vec::new();
    let mut hashes = observed.hashes.clone();
    let mut commitments = observed.commitments.clone();
    for (k, end) in ends.iter().enumerate() {
        let Some(end) = end else { continue };
        if end.peers.is_empty() {
            violations.push(format!("harness: node{k} has no peers at the end"));
        }
        for address in &end.peers {
            if address.parse::<SocketAddr>().map(|a| a.ip()).ok() != Some(relay_ip) {
                violations.push(format!(
                    "harness: node{k} has a peer at {address}, not through the relay"
                ));
            }
        }
        for (height, hash) in (0u64..).zip(&end.chain) {
            observe::agree(&mut hashes, &mut violations, "block", height, hash.clone(), k);
        }
        if let Some((height, commitment)) = &end.utxo {
            observe::agree(
                &mut commitments,
                &mut violations,
                "UTXO commitment",
                *height,
                commitment.clone(),
                k,
            );
        }
        // Every height a node's API reported a block at exists on this node.
        if let Some((height, _)) = observed.hashes.last_key_value()
            && (end.chain.len() as u64) <= *height
        {
            violations.push(format!(
                "durability: node{k} ends at height {}, below height {height}, which was reported finalized",
                end.chain.len().saturating_sub(1)
            ));
        }
        for ((txid, height), found) in sample.iter().zip(&end.sampled) {
            let expected = observed.hashes.get(height);
            if found.as_ref() != expected {
                violations.push(format!(
                    "durability: node{k} does not have transaction {txid} in block {} at height {height} (it answered {found:?})",
                    expected.map_or("?", String::as_str)
                ));
            }
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    fn end(chain: &[&str], peer: &str, sampled: Option<&str>) -> NodeEnd {
        NodeEnd {
            chain: chain.iter().map(|h| (*h).to_owned()).collect(),
            utxo: Some((u64::try_from(chain.len()).unwrap() - 1, format!("u{}", chain.len()))),
            peers: vec![peer.to_owned()],
            sampled: vec![sampled.map(str::to_owned)],
        }
    }

    #[test]
    fn the_judge_finds_each_kind_of_violation_and_nothing_in_agreeing_chains() {
        let observed = Observed {
            heights: Vec::new(),
            hashes: BTreeMap::from([(0, "a".to_owned()), (1, "b".to_owned()), (2, "c".to_owned())]),
            commitments: BTreeMap::from([(2, "u3".to_owned())]),
            transactions: HashMap::from([("t".to_owned(), 2)]),
            violations: Vec::new(),
        };
        let relay: IpAddr = "10.0.0.1".parse().unwrap();
        let txid = "t".to_owned();
        let sample = [(&txid, &2u64)];
        let good = end(&["a", "b", "c"], "10.0.0.1:24500", Some("c"));
        assert!(judge(&observed, &[Some(good), None], &sample, relay).is_empty());

        let ends = [
            end(&["a", "b", "c"], "10.0.0.1:24500", Some("c")),
            end(&["a", "b", "x"], "10.0.0.1:24501", Some("c")),
            end(&["a", "b"], "10.0.0.1:24502", Some("c")),
            end(&["a", "b", "c"], "10.0.0.12:24500", None),
        ];
        let mut ends = ends;
        ends[0].utxo = Some((2, "other".to_owned()));
        ends[3].peers.push(String::new());
        let found = judge(&observed, &ends.map(Some), &sample, relay);
        let expected = [
            "agreement: node0 reports UTXO commitment other at height 2, another node reported u3",
            "agreement: node1 reports block x at height 2, another node reported c",
            "durability: node2 ends at height 1, below height 2, which was reported finalized",
            "harness: node3 has a peer at 10.0.0.12:24500, not through the relay",
            "harness: node3 has a peer at , not through the relay",
            "durability: node3 does not have transaction t in block c at height 2 (it answered None)",
        ];
        for violation in expected {
            assert!(
                found.iter().any(|f| f == violation),
                "missing {violation:?} in {found:#?}"
            );
        }
        assert_eq!(found.len(), expected.len(), "{found:#?}");
    }
}
