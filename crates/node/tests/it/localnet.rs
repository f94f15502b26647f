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

mod index;
mod notify;
mod recovery;
mod signing;
mod subscriptions;
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

/// A peer of the right network that misbehaves, driven from this test with the network
/// crate's own transport.
#[test]
fn a_hostile_peer_is_disconnected_and_banned_while_the_network_finalizes() {
    use timecoin_network::{Message, connect};
    use timecoin_primitives::{BlockHash, Encode, Equivocation, Hash256, SecretKey, SignedVote, Vote, VoteKind};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    let mut net = Localnet::running(3);
    let genesis = net.genesis();
    let hello = net.stranger_hello();
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], net.p2p_port(0)));
    let operator = net.key(2, "masternode.key");
    // Evidence travels only if a block could record it: an offence at a height already
    // finalized, within the evidence window.
    let offence = net.top();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The friend stays connected until its message arrived (closing a socket with unread
    // data resets it, and the reset can discard what was sent just before).
    let _friend = runtime.block_on(async {
        let dial = |seed: u8| async move {
            let stream = TcpStream::connect(address).await.unwrap();
            connect(
                stream,
                &SecretKey::from_seed([seed; 32]),
                true,
                &hello,
                8_000_000,
                DEADLINE,
            )
            .await
            .map(|(secure, _)| secure)
        };
        // Reads until the node closes the connection; returns how many messages came first.
        let drain = |mut secure: timecoin_network::SecureStream<TcpStream>| async move {
            let mut received = 0;
            while tokio::time::timeout(DEADLINE, secure.receive()).await.unwrap().is_ok() {
                received += 1;
            }
            received
        };

        // Garbage instead of a handshake: the node hangs up.
        let mut raw = TcpStream::connect(address).await.unwrap();
        let _ = raw.write_all(&[0xAB; 4_096]).await;
        let mut buffer = [0u8; 64];
        let read = tokio::time::timeout(DEADLINE, raw.read(&mut buffer)).await.unwrap();
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "the node kept a garbage connection open"
        );

        // An undecodable message, an oversize frame, a flood of pings: each gets the peer
        // dropped, and banned, so that coming back with the same identity is refused at
        // once (no message at all, where an admitted peer gets votes every second).
        let mut undecodable = dial(1).await.unwrap();
        undecodable.send(&[0xff, 1, 2, 3]).await.unwrap();
        drain(undecodable).await;

        let mut oversize = dial(2).await.unwrap();
        let _ = oversize.send(&vec![0; 3_000_000]).await;
        drain(oversize).await;

        let mut flooder = dial(3).await.unwrap();
        for nonce in 0..2_000 {
            if flooder.send(&Message::Ping(nonce).to_bytes()).await.is_err() {
                break;
            }
        }
        drain(flooder).await;

        for seed in 1..=3 {
            let again = dial(seed).await;
            if let Ok(again) = again {
                assert_eq!(drain(again).await, 0, "peer {seed} was let back in");
            }
        }
        // A well-behaved peer is still served, and what it proves travels on: evidence that
        // node 2 voted twice, sent to node 0, reaches node 1.
        let mut friend = dial(4).await.unwrap();
        assert!(tokio::time::timeout(DEADLINE, friend.receive()).await.unwrap().is_ok());
        let vote = |n: u8| {
            SignedVote::sign(
                Vote {
                    chain: genesis.hash(),
                    height: offence,
                    round: 0,
                    kind: VoteKind::Prevote,
                    block: Some(BlockHash(Hash256([n; 32]))),
                },
                &operator,
            )
        };
        // Votes at the very end of the height and round ranges (unsigned by any masternode):
        // ignored, with no arithmetic on them overflowing.
        for height in [u64::MAX, u64::MAX - 1] {
            let far = SignedVote::sign(
                Vote {
                    chain: genesis.hash(),
                    height,
                    round: u32::MAX,
                    kind: VoteKind::Precommit,
                    block: None,
                },
                &SecretKey::from_seed([77; 32]),
            );
            friend.send(&Message::Vote(far).to_bytes()).await.unwrap();
        }
        let evidence = Equivocation::new(vote(1), vote(2)).unwrap();
        friend
            .send(&Message::Evidence(Box::new(evidence)).to_bytes())
            .await
            .unwrap();
        friend
    });
    let relayed = net.wait_for_event(1, |e| e["message"] == "equivocation evidence received");
    assert_eq!(
        relayed["masternode"],
        serde_json::json!(operator.public_key().to_string())
    );
    let top = net.top();
    net.wait_until(&[0, 1, 2], top + 3);
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
    assert!(value("timecoin_network_received_bytes_total") > 0.0);
    assert!(value("timecoin_network_sent_bytes_total") > 0.0);
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

#[test]
fn wallets_pay_each_other_and_an_encrypted_wallet_needs_its_passphrase() {
    use serde_json::json;
    let net = Localnet::running(3);
    // Node 0's wallet is funded by the genesis.
    assert_eq!(net.rpc(0, "getbalance", json!([]))["result"], json!(1_000_000.0));
    let to = net.rpc(1, "getnewaddress", json!([]))["result"]
        .as_str()
        .unwrap()
        .to_owned();
    // A deposit loop's cursor, before the payment.
    let cursor = net.rpc(1, "listsinceblock", json!([]))["result"]["lastblock"].clone();
    let sent = net.rpc(0, "sendtoaddress", json!([to, 12.5]));
    let txid = sent["result"].as_str().unwrap_or_else(|| panic!("{sent}")).to_owned();
    let waited = net.rpc(1, "waitfortransaction", json!([txid, 120]));
    assert_eq!(waited["result"]["finalized"], json!(true), "{waited}");
    // The payee sees the coin once it has the block; the payer paid the amount and a fee.
    let height = waited["result"]["height"].as_u64().unwrap();
    let mut net = net;
    net.wait_until(&[0, 1], height);
    // The deposit loop finds it once, in Bitcoin Core's fields, and moves its cursor on.
    let since = net.rpc(1, "listsinceblock", json!([cursor]))["result"].clone();
    let deposits: Vec<&serde_json::Value> = since["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["txid"] == json!(txid))
        .collect();
    assert_eq!(deposits.len(), 1, "{since}");
    let block_hash = net.rpc(1, "getblockhash", json!([height]))["result"].clone();
    let deposit = deposits[0];
    assert_eq!(
        (&deposit["category"], &deposit["address"], &deposit["amount"]),
        (&json!("receive"), &json!(to), &json!(12.5)),
        "{deposit}"
    );
    assert_eq!(
        (&deposit["blockhash"], &deposit["blockheight"]),
        (&block_hash, &json!(height))
    );
    assert!(deposit["confirmations"].as_u64().unwrap() >= 1 && deposit["finalized"] == json!(true));
    assert_eq!(since["removed"], json!([]));
    let next = net.rpc(1, "listsinceblock", json!([since["lastblock"]]))["result"].clone();
    assert!(
        next["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["txid"] != json!(txid)),
        "{next}"
    );
    // The payer's side: the payment as a send with its fee; its change only when asked for.
    let paid = net.rpc(0, "listsinceblock", json!([cursor]))["result"]["transactions"].clone();
    let entries = |list: &serde_json::Value, category: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["txid"] == json!(txid) && e["category"] == json!(category))
            .count()
    };
    assert_eq!((entries(&paid, "send"), entries(&paid, "receive")), (1, 0), "{paid}");
    let with_change =
        net.rpc(0, "listsinceblock", json!([cursor, 1, false, true, true]))["result"]["transactions"].clone();
    assert_eq!(
        (entries(&with_change, "send"), entries(&with_change, "receive")),
        (2, 1),
        "{with_change}"
    );
    // lastblock stays target_confirmations - 1 blocks below the wallet's tip; bad cursors are refused.
    let tip = net.rpc(1, "listsinceblock", json!(["", 3]))["result"]["lastblock"].clone();
    let at = net.rpc(1, "getblockheader", json!([tip]))["result"]["height"]
        .as_u64()
        .unwrap();
    assert!(at + 2 >= height, "{at} vs {height}");
    assert_eq!(
        net.rpc(1, "listsinceblock", json!(["00".repeat(32)]))["error"]["code"],
        json!(-5)
    );
    assert_eq!(
        net.rpc(1, "listsinceblock", json!([cursor, 0]))["error"]["code"],
        json!(-8)
    );
    assert_eq!(net.rpc(1, "getbalance", json!([]))["result"], json!(12.5));
    let unspent = net.rpc(1, "listunspent", json!([]));
    assert_eq!(unspent["result"][0]["txid"], json!(txid), "{unspent}");
    let left = net.rpc(0, "getbalance", json!([]))["result"].as_f64().unwrap();
    assert!(left < 1_000_000.0 - 12.5 && left > 1_000_000.0 - 12.5 - 0.01, "{left}");
    let history = net.rpc(0, "listtransactions", json!([]));
    let last = history["result"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["txid"].clone(), last["category"].clone()),
        (json!(txid), json!("send"))
    );
    // Encrypted, node 1's wallet cannot pay until unlocked with the right passphrase.
    assert!(net.rpc(1, "encryptwallet", json!(["open sesame"]))["result"].is_string());
    let back = net.rpc(0, "getnewaddress", json!([]))["result"].clone();
    let locked = net.rpc(1, "sendtoaddress", json!([back, 1]));
    assert_eq!(locked["error"]["code"], json!(-13), "{locked}");
    let wrong = net.rpc(1, "walletpassphrase", json!(["open sesam", 60]));
    assert_eq!(wrong["error"]["code"], json!(-14), "{wrong}");
    assert!(net.rpc(1, "walletpassphrase", json!(["open sesame", 60]))["error"].is_null());
    let paid = net.rpc(1, "sendtoaddress", json!([back, 1]));
    assert!(paid["result"].is_string(), "{paid}");
    let text = std::fs::read_to_string(net.path().join("node1").join("wallet.json")).unwrap();
    assert!(text.contains("argon2id"), "the wallet file is sealed");
    let broke = net.rpc(1, "sendtoaddress", json!([back, 100]));
    assert_eq!(broke["error"]["code"], json!(-6), "{broke}");
    // A raw transaction built by hand from node 0's coin, signed by its wallet, is accepted.
    let coin = net.rpc(0, "listunspent", json!([]))["result"][0].clone();
    let value = coin["amount"].as_f64().unwrap();
    let outputs = json!({ to.clone(): 1, back.as_str().unwrap(): ((value - 1.0 - 0.001) * 1e8).round() / 1e8 });
    let raw = net.rpc(
        0,
        "createrawtransaction",
        json!([[{"txid": coin["txid"], "vout": coin["vout"]}], outputs]),
    );
    let unsigned = raw["result"].as_str().unwrap_or_else(|| panic!("{raw}")).to_owned();
    let refused = net.rpc(0, "sendrawtransaction", json!([unsigned]));
    assert_eq!(refused["error"]["code"], json!(-26), "unsigned: {refused}");
    let signed = net.rpc(0, "signrawtransactionwithwallet", json!([unsigned]));
    assert_eq!(signed["result"]["complete"], json!(true), "{signed}");
    let accepted = net.rpc(0, "sendrawtransaction", json!([signed["result"]["hex"]]));
    assert!(accepted["result"].is_string(), "{accepted}");
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

/// The JSON-RPC error code of a call that must fail.
#[track_caller]
fn code(result: Result<serde_json::Value, timecoin_rpc::ClientError>) -> i64 {
    match result {
        Err(timecoin_rpc::ClientError::Rpc { code, .. }) => code,
        other => panic!("expected an RPC error, got {other:?}"),
    }
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

#[test]
fn a_masternode_registers_on_chain_votes_leaves_and_a_double_signing_twin_is_banned() {
    // Four genesis masternodes and a fifth node that is not in the genesis.
    let mut net = Localnet::init_with_spare(4, 1);
    for node in 0..5 {
        net.start(node);
    }
    net.wait_until(&[0, 1, 2, 3, 4], 2);
    let fifth = net.key(4, "masternode.key").public_key().to_string();
    let status = result(net.rpc(4, "masternodestatus", serde_json::json!([])));
    assert_eq!(status["status"], "not registered", "{status}");
    // A registration carries the operator key's proof, so another node's wallet cannot
    // register it.
    let service = format!("127.0.0.1:{}", net.p2p_port(4));
    let foreign = net.rpc(0, "masternoderegister", serde_json::json!(["bronze", fifth, service]));
    assert_eq!(foreign["error"]["code"], -8, "{foreign}");
    // Its own wallet gets the Bronze collateral and its fees from node 0's.
    let address = result(net.rpc(4, "getnewaddress", serde_json::json!([])));
    let funding = result(net.rpc(0, "sendtoaddress", serde_json::json!([address, 1_001])));
    let waited = result(net.rpc(4, "waitfortransaction", serde_json::json!([funding, 120])));
    assert_eq!(waited["finalized"], true, "{waited}");
    net.wait_until(&[4], waited["height"].as_u64().unwrap());

    // Its own wallet registers it with Bronze collateral.
    let id = result(net.rpc(4, "masternoderegister", serde_json::json!(["bronze", fifth, service])));
    let id = id.as_str().unwrap().to_owned();
    let list = net.wait_for_rpc(0, "masternodelist", serde_json::json!([]), |list| {
        listed(list, &fifth).is_some_and(|m| m["status"] == "active")
    });
    let entry = listed(&list, &fifth).unwrap();
    assert_eq!(entry["id"], id.as_str());
    assert_eq!(entry["tier"], "bronze");
    assert_eq!(entry["power"], 1);
    assert_eq!(entry["address"], service.as_str());
    let collateral = entry["collateral"].as_str().unwrap().to_owned();
    assert!(collateral.starts_with(&format!("{id}:")), "{collateral}");

    // The collateral is locked in the wallet that paid it.
    let balances = result(net.rpc(4, "getbalances", serde_json::json!([])));
    assert_eq!(balances["mine"]["locked"], serde_json::json!(1000.0), "{balances}");
    let locked = result(net.rpc(4, "listlockedcollaterals", serde_json::json!([])));
    assert_eq!(locked[0]["outpoint"], collateral.as_str(), "{locked}");
    assert_eq!(locked[0]["masternode"], id.as_str());

    // It votes: its precommit appears in a commit certificate, and it says it is active.
    let signed_height = {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let height = net.top();
            let commit = net.rpc(0, "getcommit", serde_json::json!([height]));
            let signers = commit["result"]["signatures"].as_array().cloned().unwrap_or_default();
            if signers.iter().any(|s| s["masternode"] == fifth.as_str()) {
                break height;
            }
            assert!(
                Instant::now() < deadline,
                "the fifth masternode never signed a certificate"
            );
            net.watch_for(Duration::from_millis(200));
        }
    };
    let status = result(net.rpc(4, "masternodestatus", serde_json::json!([])));
    assert_eq!(status["status"], "active", "{status}");

    // It revokes (signed by its operator key, paid by its own wallet). Its collateral unlocks
    // once evidence of its last votes can no longer enter a block (20 blocks later on a local
    // network); spending it then deregisters it.
    let revocation = result(net.rpc(4, "masternoderevoke", serde_json::json!([])));
    let revoked = result(net.rpc(4, "waitfortransaction", serde_json::json!([revocation, 120])));
    let from = revoked["height"].as_u64().unwrap() + 20;
    let early = net.rpc(4, "masternodeunlock", serde_json::json!([id]));
    assert!(!early["error"].is_null(), "{early}");
    net.wait_until(&[4], from - 1);
    net.wait_for_rpc(4, "masternodeunlock", serde_json::json!([id]), |answer| {
        answer["result"].is_string()
    });
    net.wait_for_rpc(4, "masternodelist", serde_json::json!([]), |list| {
        listed(list, &fifth).is_none()
    });
    let balances = result(net.rpc(4, "getbalances", serde_json::json!([])));
    assert_eq!(balances["mine"]["locked"], serde_json::json!(0.0), "{balances}");

    // A twin of node 3 (same operator key, another host) double-signs; the evidence lands
    // in a block and the masternode is banned.
    let third = net.key(3, "masternode.key").public_key().to_string();
    assert!(net.terminate(3));
    let twin = net.twin_of(3);
    net.start(3);
    net.start(twin);
    let recorded = net.wait_for_event(0, |event| {
        event["message"] == "evidence recorded: masternode banned" && event["masternode"] == third.as_str()
    });
    assert_eq!(recorded["masternode"], third.as_str());
    let list = result(net.rpc(0, "masternodelist", serde_json::json!([])));
    let banned = list
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["operator"] == third.as_str())
        .unwrap();
    assert_eq!(banned["status"], "banned", "{banned}");
    assert_eq!(banned["power"], 0);
    assert!(banned["banneduntil"].as_u64().is_some());

    // The other three go on without it: later certificates lack its key.
    let after = net.top() + 3;
    net.wait_until(&[0, 1, 2], after);
    let commit = result(net.rpc(0, "getcommit", serde_json::json!([after])));
    let signers: Vec<&str> = commit["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["masternode"].as_str().unwrap())
        .collect();
    assert!(!signers.contains(&third.as_str()) && signers.len() == 3, "{signers:?}");
    assert!(after > signed_height);

    // Every node agrees on every block, and so on the chain state each header names (the
    // UTXO-set commitment and the masternode list after its parent).
    let heights: Vec<u64> = (0..=after).collect();
    for node in [1, 2, 4] {
        net.wait_until(&[node], after);
    }
    for height in heights {
        let hashes: Vec<serde_json::Value> = [0, 1, 2, 4]
            .iter()
            .map(|node| {
                result(net.rpc(
                    *node,
                    "getblockheader",
                    serde_json::json!([result(net.rpc(*node, "getblockhash", serde_json::json!([height])))]),
                ))
            })
            .map(|header| serde_json::json!([header["hash"], header["statehash"]]))
            .collect();
        assert!(hashes.windows(2).all(|w| w[0] == w[1]), "height {height}: {hashes:?}");
    }
}

#[test]
fn floods_of_connections_slow_handshakes_and_invalid_signatures_do_not_stop_finalization() {
    use timecoin_network::{Message, connect};
    use timecoin_primitives::{Encode, SecretKey};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    // Node 0 takes at most 8 peers (4 of them inbound); it gets ten times that many
    // connections of each kind.
    const LIMIT: usize = 8;
    let mut net = Localnet::init(3);
    let text = std::fs::read_to_string(net.config(0)).unwrap();
    std::fs::write(
        net.config(0),
        text.replace(
            "[network]\n",
            &format!("[network]\nmax_peers = {LIMIT}\nmax_outbound = {}\n", LIMIT / 2),
        ),
    )
    .unwrap();
    for node in 0..3 {
        net.start(node);
    }
    net.wait_until(&[0, 1, 2], 2);
    let hello = net.stranger_hello();
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], net.p2p_port(0)));
    let mut bad = net.payment();
    bad.inputs[0].signature.0[0] ^= 1;
    let runtime = tokio::runtime::Runtime::new().unwrap();

    // A peer relaying transactions whose signature is invalid is cut off and banned. It
    // reads what the node sends meanwhile (a peer that does not is dropped as slow).
    runtime.block_on(async move {
        let stream = TcpStream::connect(address).await.unwrap();
        let key = SecretKey::from_seed([251; 32]);
        let (secure, _) = connect(stream, &key, true, &hello, 8_000_000, DEADLINE).await.unwrap();
        let (mut reader, mut writer) = secure.into_split();
        let drained =
            tokio::spawn(
                async move { while tokio::time::timeout(DEADLINE, reader.receive()).await.unwrap().is_ok() {} },
            );
        for _ in 0..200 {
            let message = Message::Transactions(vec![bad.clone()]).to_bytes();
            if writer.send(&message).await.is_err() {
                break;
            }
        }
        drained.await.unwrap();
    });
    // Slow-loris: connections that send one byte of a handshake and stall.
    let stalled: Vec<_> = (0..10 * LIMIT)
        .map(|_| {
            runtime.spawn(async move {
                let mut stream = TcpStream::connect(address).await.ok()?;
                stream.write_all(&[0]).await.ok()?;
                let mut buffer = [0u8; 16];
                // The node must hang up (its handshake time-out), not wait forever.
                let read = tokio::time::timeout(DEADLINE, stream.read(&mut buffer)).await;
                Some(matches!(read, Ok(Ok(0) | Err(_))))
            })
        })
        .collect();
    // Complete handshakes with fresh identities, each staying connected a while.
    let joiners: Vec<_> = (0..10 * LIMIT)
        .map(|i| {
            runtime.spawn(async move {
                let stream = TcpStream::connect(address).await.ok()?;
                let key = SecretKey::from_seed([(i % 250) as u8 + 1; 32]);
                let (mut secure, _) = connect(stream, &key, true, &hello, 8_000_000, DEADLINE).await.ok()?;
                let _ = tokio::time::timeout(Duration::from_secs(5), secure.receive()).await;
                Some(())
            })
        })
        .collect();
    // Meanwhile the network goes on finalizing.
    let from = net.top();
    net.wait_until(&[0, 1, 2], from + 5);
    let hung_up = stalled
        .into_iter()
        .filter_map(|task| runtime.block_on(task).unwrap())
        .filter(|closed| *closed)
        .count();
    assert_eq!(hung_up, 10 * LIMIT, "every stalled handshake is closed by the node");
    for task in joiners {
        runtime.block_on(task).unwrap();
    }
    // It kept its masternode links through the churn, and goes on.
    let peers = result(net.rpc(0, "getpeerinfo", serde_json::json!([])));
    let masternodes = peers
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["masternode"] == true)
        .count();
    assert_eq!(masternodes, 2, "{peers}");
    let banned = result(net.rpc(0, "listbanned", serde_json::json!([])));
    assert!(!banned.as_array().unwrap().is_empty(), "the liar is banned: {banned}");
    let now = net.top();
    net.wait_until(&[0, 1, 2], now + 2);
}

/// Peak resident memory of a running node, in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// One masternode of four is replaced by the attacker, which runs every Byzantine behaviour
/// at once with its operator key (a quarter of the power: votes for far heights, double
/// votes, equivocating proposals, forged signatures), beside attacker peers without a key
/// (swapped proposal bodies, floods of foreign votes, requests never read, every inbound slot
/// from one address, a registration and a richer spend of its collateral). The three honest
/// masternodes keep finalizing and agree on every hash (the harness fails on a conflict),
/// never build a block the pair breaks, their memory stays bounded, and they cut off and ban
/// the offenders.
#[test]
fn three_honest_masternodes_finalize_while_the_fourth_and_keyless_peers_attack() {
    use timecoin_attacker::{Attacker, Behaviour, Report};
    use timecoin_primitives::Encode;
    use tokio_util::sync::CancellationToken;

    let mut net = Localnet::init(4);
    for node in 0..3 {
        net.start(node);
    }
    net.wait_until(&[0, 1, 2], 2);
    // A payment, so that a block carries a signature for the swapped bodies to alter; it
    // funds the poison pair the keyless attackers relay.
    let (funding, registration, spend) = net.poison_pair();
    let registration_id = registration.txid();
    let sent = net.rpc(
        0,
        "sendrawtransaction",
        serde_json::json!([hex::encode(funding.to_bytes())]),
    );
    assert!(sent["error"].is_null(), "{sent}");
    let funded = result(net.rpc(
        0,
        "waitfortransaction",
        serde_json::json!([funding.txid().to_string(), 120]),
    ));
    assert_eq!(funded["finalized"], true, "{funded}");
    // Each of the pair is valid alone.
    for tx in [&registration, &spend] {
        let alone = result(net.rpc(
            0,
            "testmempoolaccept",
            serde_json::json!([[hex::encode(tx.to_bytes())]]),
        ));
        assert_eq!(alone[0]["allowed"], true, "{alone}");
    }
    let masternode = Attacker {
        hello: net.stranger_hello(),
        operator: Some(net.key(3, "masternode.key")),
        targets: (0..3)
            .map(|node| std::net::SocketAddr::from(([127, 0, 0, 1], net.p2p_port(node))))
            .collect(),
        max_frame: 8_000_000,
        poison: Vec::new(),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cancel = CancellationToken::new();
    let spawn = |attacker: Attacker, behaviours: Vec<Behaviour>| {
        let cancel = cancel.clone();
        runtime.spawn(async move { attacker.run(&behaviours, cancel).await })
    };
    // The poison pair goes first, from its own keyless attacker: the slot-holding behaviour
    // below fills every inbound slot loopback has, and a connection opened after it would
    // could wait for one until the test ends (on a loaded machine the spend was once never
    // finalized, which is how it would look).
    let poisoner = Attacker {
        operator: None,
        poison: vec![registration.clone(), spend.clone()],
        ..masternode.clone()
    };
    let poisoning = spawn(poisoner, vec![Behaviour::PoisonPairs]);
    let deadline = Instant::now() + DEADLINE;
    while net.rpc(0, "getrawtransaction", serde_json::json!([spend.txid().to_string()]))["error"].is_object() {
        assert!(
            Instant::now() < deadline,
            "the poison pair's spend never reached node 0"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let keyless = Attacker {
        operator: None,
        ..masternode.clone()
    };
    let attacks = [masternode, keyless].map(|attacker| spawn(attacker, Behaviour::ALL.to_vec()));
    // The double-signer's evidence is recorded: the masternode is banned on chain.
    let evidence = net.wait_for_event(0, |e| e["message"] == "evidence recorded: masternode banned");
    assert_eq!(
        evidence["masternode"],
        serde_json::json!(net.key(3, "masternode.key").public_key().to_string())
    );
    let start = net.top();
    net.wait_until(&[0, 1, 2], start + 8);
    for node in 0..3 {
        let pid = net.children[node].as_ref().unwrap().id();
        let peak = peak_rss(pid);
        assert!(peak < 1 << 30, "node {node} peaked at {peak} bytes under attack");
    }
    // Each honest node bans an offender. The attack goes on until all have: which node an
    // attacker's offences reach first varies, and 8 blocks were sometimes too few for one.
    for node in 0..3 {
        let deadline = Instant::now() + DEADLINE;
        while result(net.rpc(node, "listbanned", serde_json::json!([])))
            .as_array()
            .unwrap()
            .is_empty()
        {
            assert!(Instant::now() < deadline, "node {node} banned nobody");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    cancel.cancel();
    for attack in attacks {
        let report = runtime.block_on(attack).unwrap();
        assert!(Report::get(&report.sent) > 0, "{report:?}");
        assert!(Report::get(&report.cut_off) > 0, "nobody was cut off: {report:?}");
    }
    let poisoned = runtime.block_on(poisoning).unwrap();
    assert!(Report::get(&poisoned.sent) > 0, "{poisoned:?}");
    // Of the poison pair one was pending at a time, and the richer spend was finalized.
    let spent = result(net.rpc(
        0,
        "waitfortransaction",
        serde_json::json!([spend.txid().to_string(), 120]),
    ));
    if spent["finalized"] != true {
        let mut states = String::new();
        for node in 0..3 {
            for tx in [&registration_id, &spend.txid()] {
                let seen = net.rpc(node, "getrawtransaction", serde_json::json!([tx.to_string(), true]));
                let pooled = net.rpc(node, "getmempoolentry", serde_json::json!([tx.to_string()]));
                states.push_str(&format!("node {node} {tx}: {seen} / {pooled}\n"));
            }
        }
        panic!("the spend was not finalized: {spent}\n{states}{}", net.stderr_tails());
    }
    let now = net.top();
    net.wait_until(&[0, 1, 2], now + 2);
}
