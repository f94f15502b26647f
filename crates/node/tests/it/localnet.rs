//! A local network of real `timed` processes on loopback.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(90);

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
            .stderr(Stdio::null())
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
            let (node, line) = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("nodes {nodes:?} did not all finalize height {height} in time"));
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

impl Drop for Localnet {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
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
