//! A local network of real `timed` processes on loopback.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// An upper bound for any awaited event; tests go on as soon as it arrives.
const DEADLINE: Duration = Duration::from_secs(180);

pub(crate) use timecoin_test_utils::free_ports;

mod attack;
mod chain;
mod index;
mod light;
mod notify;
mod proofs;
mod prune;
mod recovery;
mod rpc;
mod signing;
mod state;
mod subscriptions;
mod wallet;
mod watch;

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
        Localnet::init_with_spare(nodes, 0)
    }

    /// `nodes` genesis masternodes, then `spare` nodes not in the genesis.
    fn init_with_spare(genesis_nodes: usize, spare: usize) -> Localnet {
        let nodes = genesis_nodes + spare;
        let dir = tempfile::tempdir().unwrap();
        // Two ports a node (P2P and JSON-RPC).
        let base = free_ports(2 * nodes as u16);
        let status = Command::new(env!("CARGO_BIN_EXE_timed"))
            .args([
                "localnet",
                "init",
                "--nodes",
                &genesis_nodes.to_string(),
                "--spare",
                &spare.to_string(),
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

    /// A network of `nodes` masternodes, all started, past its first two blocks.
    fn running(nodes: usize) -> Localnet {
        let mut net = Localnet::init(nodes);
        for node in 0..nodes {
            net.start(node);
        }
        let all: Vec<usize> = (0..nodes).collect();
        net.wait_until(&all, 2);
        net
    }

    /// Makes `node` propose blocks as fast as consensus goes (no wait for transactions).
    fn unpace(&self, node: usize) {
        self.edit_config(node, |text| {
            text.replace("min_block_interval_ms = 1000", "min_block_interval_ms = 0")
                .replace("empty_block_interval_ms = 2000", "empty_block_interval_ms = 0")
        });
    }

    /// Rewrites `node`'s configuration with `edit`.
    fn edit_config(&self, node: usize, edit: impl FnOnce(String) -> String) {
        let path = self.config(node);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, edit(text)).unwrap();
    }

    fn config(&self, node: usize) -> PathBuf {
        self.dir.path().join(format!("node{node}")).join("config.toml")
    }

    fn start(&mut self, node: usize) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_timed"))
            .args(["--log-format", "json", "--config"])
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

    /// Reads one JSON log line (`--log-format json`).
    fn parse(node: usize, line: &str) -> Line {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            panic!("node {node} wrote a line that is not JSON: {line:?}");
        };
        match (
            event["message"].as_str(),
            event["height"].as_u64(),
            event["hash"].as_str(),
        ) {
            (Some("finalized"), Some(height), Some(hash)) => Line::Finalized {
                node,
                height,
                hash: hash.to_owned(),
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
                let logs = self.stderr_tails();
                let reached: Vec<(usize, u64)> = (0..self.children.len()).map(|n| (n, self.height_of(n))).collect();
                panic!("nodes {nodes:?} did not all finalize height {height} in time; reached {reached:?}\n{logs}");
            };
            self.record(node, &line);
        }
    }

    /// The last lines each node wrote to standard error, for failure messages.
    fn stderr_tails(&self) -> String {
        let mut logs = String::new();
        for n in 0..self.children.len() {
            let text = std::fs::read_to_string(self.dir.path().join(format!("node{n}.stderr"))).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(10).collect();
            logs.push_str(&format!("node {n} stderr (last lines, newest first): {tail:?}\n"));
        }
        logs
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

impl Localnet {
    /// The port `node` listens on in configuration `section`.
    fn port(&self, node: usize, section: &str) -> u16 {
        let text = std::fs::read_to_string(self.config(node)).unwrap();
        let line = text
            .lines()
            .skip_while(|l| *l != section)
            .find(|l| l.starts_with("listen"))
            .unwrap();
        line.rsplit(':').next().unwrap().trim_end_matches('"').parse().unwrap()
    }

    /// A key file `name` of `node`.
    fn key(&self, node: usize, name: &str) -> timecoin_primitives::SecretKey {
        let seed = std::fs::read_to_string(self.path().join(format!("node{node}")).join(name)).unwrap();
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(seed.trim(), &mut bytes).unwrap();
        timecoin_primitives::SecretKey::from_seed(bytes)
    }

    /// The JSON-RPC port of `node`.
    fn rpc_port(&self, node: usize) -> u16 {
        self.port(node, "[rpc]")
    }

    /// Calls `method` on `node`'s JSON-RPC server with its cookie; the answer is the whole
    /// JSON-RPC response (`result` or `error`).
    fn rpc(&self, node: usize, method: &str, params: serde_json::Value) -> serde_json::Value {
        let cookie = self.path().join(format!("node{node}")).join(".cookie");
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], self.rpc_port(node)));
        let client = timecoin_rpc::Client::with_cookie(address, &cookie).unwrap();
        let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        serde_json::from_str(&client.post(&body.to_string()).unwrap()).unwrap()
    }

    /// The P2P port of `node`.
    fn p2p_port(&self, node: usize) -> u16 {
        self.port(node, "[network]")
    }

    /// Reads output until `node` logs an event matching `wanted`, and returns it.
    fn wait_for_event(&mut self, node: usize, wanted: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + DEADLINE;
        let mut recent: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok((from, line)) = self.lines.recv_timeout(left) else {
                panic!(
                    "node {node} did not log the awaited event in time; its last lines: {recent:#?}\n{}",
                    self.stderr_tails()
                );
            };
            self.record(from, &line);
            if from == node {
                if recent.len() == 20 {
                    recent.pop_front();
                }
                recent.push_back(line.clone());
                let event: serde_json::Value = serde_json::from_str(&line).unwrap();
                if wanted(&event) {
                    return event;
                }
            }
        }
    }

    /// The highest height `node` was seen to finalize.
    fn height_of(&self, node: usize) -> u64 {
        self.finalized
            .iter()
            .filter(|(_, by_node)| by_node.contains_key(&node))
            .map(|(height, _)| *height)
            .max()
            .unwrap_or(0)
    }

    /// The network's genesis.
    fn genesis(&self) -> timecoin_chain::Genesis {
        timecoin_chain::Genesis::from_toml(&std::fs::read_to_string(self.path().join("genesis.toml")).unwrap()).unwrap()
    }

    /// How a node that is not a masternode and holds no block introduces itself.
    fn stranger_hello(&self) -> timecoin_network::Hello {
        let genesis = self.genesis();
        timecoin_network::Hello {
            magic: genesis.params.magic,
            version: timecoin_network::PROTOCOL_VERSION,
            genesis: genesis.hash(),
            best_height: 0,
            best_hash: genesis.hash(),
            listen_port: 0,
            masternode: false,
            lowest_height: 0,
        }
    }

    /// A signed payment of 100 TIME from node 0's funded wallet, spending the genesis
    /// allocation.
    fn payment(&self) -> timecoin_primitives::Transaction {
        use timecoin_primitives::{AddressPayload, Amount, OutPoint, SecretKey, Transaction, TxInput, TxOutput};
        let genesis = self.genesis();
        let wallet = self.key(0, "wallet.key");
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
            payload: None,
        };
        timecoin_primitives::sign_transaction(&mut tx, &genesis.hash(), &[&wallet], &[funds]);
        tx
    }

    /// Transactions valid alone but never together, and the payment that funds them from
    /// node 0's genesis allocation: `(funding, registration, spend)`. The registration names
    /// the funding's 1,000-TIME output 0 as its Bronze collateral; the spend takes that same
    /// coin with a far higher fee.
    fn poison_pair(
        &self,
    ) -> (
        timecoin_primitives::Transaction,
        timecoin_primitives::Transaction,
        timecoin_primitives::Transaction,
    ) {
        use timecoin_primitives::{
            AddressPayload, Amount, OutPoint, Payload, Registration, SecretKey, Tier, Transaction, TxInput, TxOutput,
            payload_signature_message, sign_transaction,
        };
        let genesis = self.genesis();
        let chain = genesis.hash();
        let wallet = self.key(0, "wallet.key");
        let (collateral_key, owner, operator) = (
            SecretKey::from_seed([61; 32]),
            SecretKey::from_seed([62; 32]),
            SecretKey::from_seed([63; 32]),
        );
        let to = |key: &SecretKey| AddressPayload::from_public_key(&key.public_key());
        let time = |n: u64| Amount::from_time(n).unwrap();
        let input = |txid, index, key: &SecretKey| TxInput {
            prevout: OutPoint { txid, index },
            public_key: key.public_key(),
            signature: Default::default(),
        };
        let allocation = &genesis.block.transactions[0];
        let funds = allocation.outputs[0].amount;
        let mut funding = Transaction {
            version: Transaction::VERSION,
            inputs: vec![input(allocation.txid(), 0, &wallet)],
            outputs: vec![
                TxOutput {
                    amount: Tier::Bronze.collateral(),
                    address: to(&collateral_key),
                },
                TxOutput {
                    amount: time(10),
                    address: to(&wallet),
                },
                TxOutput {
                    amount: funds
                        .checked_sub(Tier::Bronze.collateral())
                        .and_then(|a| a.checked_sub(time(10)))
                        .and_then(|a| a.checked_sub(Amount::from_units(10_000)))
                        .unwrap(),
                    address: allocation.outputs[0].address,
                },
            ],
            lock_time: 0,
            memo: Vec::new(),
            payload: None,
        };
        sign_transaction(&mut funding, &chain, &[&wallet], &[funds]);
        let coin = funding.txid();
        let mut registration = Transaction {
            version: Transaction::VERSION_SPECIAL,
            inputs: vec![input(coin, 1, &wallet)],
            outputs: vec![TxOutput {
                amount: time(10).checked_sub(Amount::from_units(100_000)).unwrap(),
                address: to(&wallet),
            }],
            lock_time: 0,
            memo: Vec::new(),
            payload: Some(Payload::Register(Registration {
                tier: Tier::Bronze,
                collateral: OutPoint { txid: coin, index: 0 },
                collateral_key: collateral_key.public_key(),
                owner: owner.public_key(),
                operator: operator.public_key(),
                reward_address: to(&owner),
                service: "127.0.0.1:1".parse().unwrap(),
                operator_proof: Default::default(),
                signature: Default::default(),
            })),
        };
        let txid = registration.txid();
        if let Some(Payload::Register(r)) = registration.payload.as_mut() {
            r.operator_proof = operator.sign(&r.operator_proof_message(&chain, txid).0);
            r.signature = collateral_key.sign(&payload_signature_message(&chain, &txid).0);
        }
        sign_transaction(&mut registration, &chain, &[&wallet], &[time(10)]);
        let mut spend = Transaction {
            version: Transaction::VERSION,
            inputs: vec![input(coin, 0, &collateral_key)],
            outputs: vec![TxOutput {
                amount: Tier::Bronze.collateral().checked_sub(time(1)).unwrap(),
                address: to(&collateral_key),
            }],
            lock_time: 0,
            memo: Vec::new(),
            payload: None,
        };
        sign_transaction(&mut spend, &chain, &[&collateral_key], &[Tier::Bronze.collateral()]);
        (funding, registration, spend)
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

/// `time-cli`, built beside `timed` by `cargo test --workspace` (the cli package's own
/// integration tests make cargo build the binary).
fn time_cli(args: &[&str]) -> (bool, String, String) {
    let path = Path::new(env!("CARGO_BIN_EXE_timed")).with_file_name("time-cli");
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (or `cargo build -p timecoin-cli` first)",
        path.display()
    );
    let output = Command::new(path).args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The JSON-RPC error code of a call that must fail.
#[track_caller]
fn code(result: Result<serde_json::Value, timecoin_rpc::ClientError>) -> i64 {
    match result {
        Err(timecoin_rpc::ClientError::Rpc { code, .. }) => code,
        other => panic!("expected an RPC error, got {other:?}"),
    }
}

impl Localnet {
    /// Calls `method` on `node` until `done` holds for its answer, reading the nodes' output
    /// in between; returns the answer.
    fn wait_for_rpc(
        &mut self,
        node: usize,
        method: &str,
        params: serde_json::Value,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let answer = self.rpc(node, method, params.clone());
            if done(&answer) {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "node {node}: {method} never answered as awaited; last {answer}"
            );
            self.watch_for(Duration::from_millis(200));
        }
    }

    /// A copy of `node`'s directory (keys, wallet, chain) as a new node listening on fresh
    /// ports with its own peer identity; `node` must be stopped. Returns the new node's
    /// number.
    fn twin_of(&mut self, node: usize) -> usize {
        let twin = self.children.len();
        let from = self.path().join(format!("node{node}"));
        let to = self.path().join(format!("node{twin}"));
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
        let ports = free_ports(2);
        let text = std::fs::read_to_string(self.config(twin)).unwrap();
        let text = text
            .replace(
                &format!("listen = \"127.0.0.1:{}\"", self.p2p_port(node)),
                &format!("listen = \"127.0.0.1:{ports}\""),
            )
            .replace(
                &format!("listen = \"127.0.0.1:{}\"", self.rpc_port(node)),
                &format!("listen = \"127.0.0.1:{}\"", ports + 1),
            )
            // Its own peer identity, as on another host with a copied operator key: peers
            // take it for a different node, so both copies take part in consensus.
            .replace("[network]\n", "[network]\nidentity_file = \"twin-identity.key\"\n");
        std::fs::write(self.config(twin), text).unwrap();
        self.children.push(None);
        twin
    }
}

/// The `result` of a JSON-RPC answer, which must not be an error.
fn result(answer: serde_json::Value) -> serde_json::Value {
    assert!(answer["error"].is_null(), "{answer}");
    answer["result"].clone()
}

/// The masternode with this operator key in a `masternodelist` answer.
fn listed<'a>(list: &'a serde_json::Value, operator: &str) -> Option<&'a serde_json::Value> {
    list["result"]
        .as_array()
        .and_then(|all| all.iter().find(|m| m["operator"] == operator))
}

/// Peak resident memory of a running node, in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}
