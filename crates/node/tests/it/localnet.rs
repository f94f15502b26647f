//! A local network of real `timed` processes on loopback.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// An upper bound for any awaited event; tests go on as soon as it arrives.
const DEADLINE: Duration = Duration::from_secs(180);

/// A free run of `n` consecutive loopback ports.
fn free_ports(n: u16) -> u16 {
    let seed = std::process::id() as u64 * 7919 + Instant::now().elapsed().subsec_nanos() as u64;
    for attempt in 0..1_000u64 {
        let base = 20_000 + ((seed + attempt * 104_729) % 40_000) as u16;
        let held: Vec<_> = (0..n)
            .map_while(|i| TcpListener::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == usize::from(n) {
            return base;
        }
    }
    panic!("no free ports");
}

enum Line {
    Finalized { node: usize, height: u64, hash: String },
    Other,
}

struct Localnet {
    dir: tempfile::TempDir,
    children: Vec<Option<Child>>,
    lines: mpsc::Receiver<(usize, String)>,
    sender: mpsc::Sender<(usize, String)>,
    /// Every height's hash as each node finalized it.
    finalized: BTreeMap<u64, BTreeMap<usize, String>>,
}

impl Localnet {
    fn init(nodes: usize) -> Localnet {
        let dir = tempfile::tempdir().unwrap();
        let base = free_ports(nodes as u16);
        let status = Command::new(env!("CARGO_BIN_EXE_timed"))
            .args([
                "localnet",
                "init",
                "--nodes",
                &nodes.to_string(),
                "--base-port",
                &base.to_string(),
                "--dir",
            ])
            .arg(dir.path())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let (sender, lines) = mpsc::channel();
        Localnet {
            dir,
            children: (0..nodes).map(|_| None).collect(),
            lines,
            sender,
            finalized: BTreeMap::new(),
        }
    }

    fn config(&self, node: usize) -> PathBuf {
        self.dir.path().join(format!("node{node}")).join("config.toml")
    }

    fn start(&mut self, node: usize) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_timed"))
            .arg("--config")
            .arg(self.config(node))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(self.dir.path().join(format!("node{node}.stderr"))).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let sender = self.sender.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send((node, line)).is_err() {
                    return;
                }
            }
        });
        self.children[node] = Some(child);
    }

    fn kill(&mut self, node: usize) {
        if let Some(mut child) = self.children[node].take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Sends SIGTERM and returns whether the node exited successfully.
    fn terminate(&mut self, node: usize) -> bool {
        let mut child = self.children[node].take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        child.wait().unwrap().success()
    }

    fn parse(node: usize, line: &str) -> Line {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["finalized", "height", height, "hash", hash, ..] => Line::Finalized {
                node,
                height: height.parse().unwrap(),
                hash: (*hash).to_owned(),
            },
            _ => Line::Other,
        }
    }

    /// Reads output until every node in `nodes` has finalized `height`, checking agreement.
    fn wait_until(&mut self, nodes: &[usize], height: u64) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let done = nodes.iter().all(|n| {
                self.finalized
                    .get(&height)
                    .is_some_and(|by_node| by_node.contains_key(n))
            });
            if done {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok((node, line)) = self.lines.recv_timeout(left) else {
                let mut logs = String::new();
                for n in 0..self.children.len() {
                    let text =
                        std::fs::read_to_string(self.dir.path().join(format!("node{n}.stderr"))).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(10).collect();
                    logs.push_str(&format!("node {n} stderr (last lines, newest first): {tail:?}\n"));
                }
                let reached: Vec<(usize, u64)> = (0..self.children.len())
                    .map(|n| {
                        (
                            n,
                            self.finalized
                                .iter()
                                .filter(|(_, b)| b.contains_key(&n))
                                .map(|(h, _)| *h)
                                .max()
                                .unwrap_or(0),
                        )
                    })
                    .collect();
                panic!("nodes {nodes:?} did not all finalize height {height} in time; reached {reached:?}\n{logs}");
            };
            self.record(node, &line);
        }
    }

    fn record(&mut self, node: usize, line: &str) {
        if let Line::Finalized { node, height, hash } = Self::parse(node, line) {
            let by_node = self.finalized.entry(height).or_default();
            if let Some((other, theirs)) = by_node.iter().find(|(_, h)| **h != hash) {
                panic!("conflicting commits at height {height}: node {node} has {hash}, node {other} has {theirs}");
            }
            by_node.insert(node, hash);
        }
    }

    /// The highest height any node finalized.
    fn top(&self) -> u64 {
        self.finalized.keys().last().copied().unwrap_or(0)
    }

    /// Reads output for `window`; returns the top height seen.
    fn watch_for(&mut self, window: Duration) -> u64 {
        let until = Instant::now() + window;
        while let Ok((node, line)) = self.lines.recv_timeout(until.saturating_duration_since(Instant::now())) {
            self.record(node, &line);
        }
        self.top()
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// One JSON-RPC call over plain HTTP/1.1, as any client would make it.
fn rpc(port: u16, method: &str, params: serde_json::Value) -> serde_json::Value {
    use std::io::{Read, Write};
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let json = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad response {response:?}: {e}"))
}

impl Localnet {
    /// The JSON-RPC port of `node`.
    fn rpc_port(&self, node: usize) -> u16 {
        let text = std::fs::read_to_string(self.config(node)).unwrap();
        let line = text
            .lines()
            .skip_while(|l| *l != "[rpc]")
            .find(|l| l.starts_with("listen"))
            .unwrap();
        line.rsplit(':').next().unwrap().trim_end_matches('"').parse().unwrap()
    }

    /// A signed payment of 100 TIME from node 0's funded wallet, spending the genesis
    /// allocation.
    fn payment(&self) -> timecoin_primitives::Transaction {
        use timecoin_primitives::{AddressPayload, Amount, OutPoint, SecretKey, Transaction, TxInput, TxOutput};
        let genesis =
            timecoin_chain::Genesis::from_toml(&std::fs::read_to_string(self.path().join("genesis.toml")).unwrap())
                .unwrap();
        let seed = std::fs::read_to_string(self.path().join("node0").join("wallet.key")).unwrap();
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(seed.trim(), &mut bytes).unwrap();
        let wallet = SecretKey::from_seed(bytes);
        let allocation = &genesis.block.transactions[0];
        let funds = allocation.outputs[0].amount;
        let pay = Amount::from_time(100).unwrap();
        let fee = Amount::from_units(1_000);
        let mut tx = Transaction {
            version: Transaction::VERSION,
            inputs: vec![TxInput {
                prevout: OutPoint {
                    txid: allocation.txid(),
                    index: 0,
                },
                public_key: wallet.public_key(),
                signature: Default::default(),
            }],
            outputs: vec![
                TxOutput {
                    amount: pay,
                    address: AddressPayload::from_public_key(&SecretKey::from_seed([42; 32]).public_key()),
                },
                TxOutput {
                    amount: funds.checked_sub(pay).and_then(|a| a.checked_sub(fee)).unwrap(),
                    address: allocation.outputs[0].address,
                },
            ],
            lock_time: 0,
            memo: b"localnet test".to_vec(),
        };
        timecoin_primitives::sign_transaction(&mut tx, &genesis.hash(), &[&wallet], &[funds]);
        tx
    }
}

impl Drop for Localnet {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Found by this test: a node syncing hundreds of blocks used to announce each one to its
/// peers, exceeded their sync rate and got itself banned by all of them.
#[test]
fn a_wiped_node_syncs_a_thousand_blocks_then_takes_part() {
    let mut net = Localnet::init(4);
    // Blocks as fast as consensus goes.
    for node in 0..4 {
        let path = net.config(node);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("min_block_interval_ms = 1000", "min_block_interval_ms = 0")
            .replace("empty_block_interval_ms = 2000", "empty_block_interval_ms = 0");
        std::fs::write(&path, text).unwrap();
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
    let answer = rpc(
        net.rpc_port(1),
        "sendrawtransaction",
        serde_json::json!([hex::encode(tx.to_bytes())]),
    );
    assert_eq!(answer["result"], serde_json::json!(tx.txid().to_string()), "{answer}");
    let again = rpc(
        net.rpc_port(2),
        "sendrawtransaction",
        serde_json::json!([hex::encode(tx.to_bytes())]),
    );
    let start = net.top();
    let mut included = None;
    for height in start..start + 10 {
        net.wait_until(&[3], height + 1);
        let hash = rpc(net.rpc_port(3), "getblockhash", serde_json::json!([height + 1]))["result"].clone();
        let block = rpc(net.rpc_port(3), "getblock", serde_json::json!([hash, 1]));
        let txids = block["result"]["tx"].as_array().unwrap().clone();
        if txids.contains(&serde_json::json!(tx.txid().to_string())) {
            included = Some(height + 1);
            break;
        }
    }
    let included = included.expect("the payment was not finalized within 10 blocks");
    // Once node 0 has that block too, the transaction is in its chain.
    net.wait_until(&[0], included);
    // Node 2 had it already (relayed) or accepted it; spending it twice is refused now.
    assert!(again.get("result").is_some() || again.get("error").is_some());
    let twice = rpc(
        net.rpc_port(0),
        "sendrawtransaction",
        serde_json::json!([hex::encode(tx.to_bytes())]),
    );
    assert_eq!(twice["error"]["code"], serde_json::json!(-27), "{twice}");
    let info = rpc(net.rpc_port(0), "getblockchaininfo", serde_json::json!([]));
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

    // A graceful stop exits 0, and every node restarted continues the same chain.
    assert!(net.terminate(0), "SIGTERM must exit 0");
    let top = net.top();
    net.start(0);
    net.start(3);
    net.wait_until(&[0, 1, 2, 3], top + 2);
}
