//! What the nodes report over their JSON-RPC APIs during a chaos run, read by one thread per
//! node, and the agreement and durability violations visible in it as it happens: two block
//! hashes at one height, two UTXO-set commitments at one height, or a node that answers a
//! lower height than it reported before (unless it was wiped).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use serde_json::{Value, json};
use timecoin_rpc::Client;

/// How often each node is asked (by default).
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// Heights read from one node in one poll, at most.
const HEIGHTS_PER_POLL: u64 = 200;

/// Where one node's record stands.
#[derive(Default)]
struct NodeRecord {
    /// (seconds from the start, height) at each answer.
    heights: Vec<(f64, u64)>,
    /// The last height the node answered.
    tip: u64,
    /// Heights read block by block so far.
    read: u64,
    /// The highest height the node reported since it was last wiped.
    floor: u64,
    /// Counts wipes; an answer asked for before a wipe is not held against the node after it.
    epoch: u64,
}

impl NodeRecord {
    /// Notes that the node answered height `tip`; a violation if it reported a higher one
    /// before, since it was last wiped.
    fn answered(&mut self, tip: u64, node: usize) -> Option<String> {
        let lost = (tip < self.floor).then(|| {
            format!(
                "durability: node{node} answered height {tip} after reporting {} (and was not wiped)",
                self.floor
            )
        });
        self.floor = self.floor.max(tip);
        self.tip = tip;
        lost
    }

    /// The node was wiped: it starts again from the genesis.
    fn wiped(&mut self) {
        self.epoch += 1;
        self.floor = 0;
        self.read = 0;
        self.tip = 0;
    }
}

#[derive(Default)]
struct Record {
    nodes: Vec<NodeRecord>,
    /// The block hash each height has, as first reported.
    hashes: BTreeMap<u64, String>,
    /// The UTXO-set commitment each height has, as first reported.
    commitments: BTreeMap<u64, String>,
    /// Every transaction a node reported in a block: its height.
    transactions: HashMap<String, u64>,
    violations: Vec<String>,
}

/// The observers of every node.
pub(crate) struct Observer {
    start: Instant,
    record: Arc<Mutex<Record>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// What the observers saw, at the end.
pub(crate) struct Observed {
    pub(crate) heights: Vec<Vec<(f64, u64)>>,
    pub(crate) hashes: BTreeMap<u64, String>,
    pub(crate) commitments: BTreeMap<u64, String>,
    pub(crate) transactions: HashMap<String, u64>,
    pub(crate) violations: Vec<String>,
}

fn lock(record: &Mutex<Record>) -> MutexGuard<'_, Record> {
    record.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Observer {
    /// Starts one thread per node directory in `dirs`, each asking its node every `poll`.
    pub(crate) fn start(dirs: Vec<PathBuf>, start: Instant, every: Duration) -> Observer {
        let record = Arc::new(Mutex::new(Record {
            nodes: dirs.iter().map(|_| NodeRecord::default()).collect(),
            ..Record::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = dirs
            .into_iter()
            .enumerate()
            .map(|(node, dir)| {
                let (record, stop) = (Arc::clone(&record), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut client = None;
                    while !stop.load(Ordering::Relaxed) {
                        if client.is_none() {
                            client = timecoin_node::localnet::node_client(&dir);
                        }
                        if let Some(c) = &client
                            && poll(c, node, &record, start).is_err()
                        {
                            // The node may be down, or restarted with a new cookie.
                            client = None;
                        }
                        std::thread::sleep(every);
                    }
                })
            })
            .collect();
        Observer {
            start,
            record,
            stop,
            threads,
        }
    }

    /// The node was wiped: it starts again from the genesis.
    pub(crate) fn wiped(&self, node: usize) {
        if let Some(n) = lock(&self.record).nodes.get_mut(node) {
            n.wiped();
        }
    }

    /// Each node's last answered height.
    pub(crate) fn tips(&self) -> Vec<u64> {
        lock(&self.record).nodes.iter().map(|n| n.tip).collect()
    }

    /// Seconds since the start.
    pub(crate) fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Stops the threads and returns what they saw.
    pub(crate) fn finish(mut self) -> Observed {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        let mut record = lock(&self.record);
        Observed {
            heights: record
                .nodes
                .iter_mut()
                .map(|n| std::mem::take(&mut n.heights))
                .collect(),
            hashes: std::mem::take(&mut record.hashes),
            commitments: std::mem::take(&mut record.commitments),
            transactions: std::mem::take(&mut record.transactions),
            violations: std::mem::take(&mut record.violations),
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn number(value: &Value, what: &str) -> Result<u64> {
    value.as_u64().ok_or_else(|| anyhow!("{what} is not a number"))
}

fn text(value: &Value, what: &str) -> Result<String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("{what} is not a string"))
}

/// Notes `hash` for `height` in `seen`, or a violation if another is already there.
pub(crate) fn agree(
    seen: &mut BTreeMap<u64, String>,
    violations: &mut Vec<String>,
    what: &str,
    height: u64,
    hash: String,
    node: usize,
) {
    match seen.get(&height) {
        Some(known) if *known != hash => {
            violations.push(format!(
                "agreement: node{node} reports {what} {hash} at height {height}, another node reported {known}"
            ));
        }
        Some(_) => {}
        None => {
            seen.insert(height, hash);
        }
    }
}

/// One round of questions to `node`.
fn poll(client: &Client, node: usize, record: &Mutex<Record>, start: Instant) -> Result<()> {
    let epoch = lock(record).nodes.get(node).map_or(0, |n| n.epoch);
    let tip = number(&client.call("getblockcount", json!([]))?, "getblockcount")?;
    let utxo = client.call("gettxoutsetinfo", json!([]))?;
    let utxo_height = number(utxo.get("height").unwrap_or(&Value::Null), "gettxoutsetinfo height")?;
    let commitment = text(
        utxo.get("hash_serialized").unwrap_or(&Value::Null),
        "gettxoutsetinfo hash_serialized",
    )?;
    let from = {
        let mut guard = lock(record);
        let Record {
            nodes,
            commitments,
            violations,
            ..
        } = &mut *guard;
        let Some(n) = nodes.get_mut(node) else { return Ok(()) };
        if n.epoch != epoch {
            return Ok(());
        }
        violations.extend(n.answered(tip, node));
        n.heights.push((start.elapsed().as_secs_f64(), tip));
        agree(
            commitments,
            violations,
            "UTXO commitment",
            utxo_height,
            commitment,
            node,
        );
        n.read + 1
    };
    let to = tip.min(from.saturating_add(HEIGHTS_PER_POLL - 1));
    for height in from..=to {
        let hash = text(&client.call("getblockhash", json!([height]))?, "getblockhash")?;
        let known = lock(record).hashes.contains_key(&height);
        let txids = if known {
            Vec::new()
        } else {
            let block = client.call("getblock", json!([hash, 1]))?;
            block
                .get("tx")
                .and_then(Value::as_array)
                .map(|txs| txs.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        let mut guard = lock(record);
        let Record {
            nodes,
            hashes,
            transactions,
            violations,
            ..
        } = &mut *guard;
        let Some(n) = nodes.get_mut(node) else { return Ok(()) };
        if n.epoch != epoch {
            return Ok(());
        }
        agree(hashes, violations, "block", height, hash, node);
        for txid in txids {
            transactions.entry(txid).or_insert(height);
        }
        n.read = height;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lower_height_after_a_restart_is_a_violation_but_not_after_a_wipe() {
        let mut node = NodeRecord::default();
        assert_eq!(node.answered(10, 2), None);
        assert_eq!(node.answered(12, 2), None);
        let lost = node.answered(11, 2).unwrap();
        assert!(lost.contains("node2 answered height 11 after reporting 12"), "{lost}");
        node.wiped();
        assert_eq!(node.answered(0, 2), None);
        assert_eq!(node.answered(3, 2), None);
    }

    #[test]
    fn a_second_hash_at_a_height_is_a_violation() {
        let (mut seen, mut violations) = (BTreeMap::new(), Vec::new());
        agree(&mut seen, &mut violations, "block", 5, "aa".to_owned(), 0);
        agree(&mut seen, &mut violations, "block", 5, "aa".to_owned(), 1);
        assert!(violations.is_empty());
        agree(&mut seen, &mut violations, "block", 5, "bb".to_owned(), 3);
        assert_eq!(
            violations,
            ["agreement: node3 reports block bb at height 5, another node reported aa"]
        );
        assert_eq!(seen.get(&5).map(String::as_str), Some("aa"));
    }
}
