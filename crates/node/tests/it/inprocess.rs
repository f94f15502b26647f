//! The node driven in this process through its library (`timecoin_node::daemon::Node`):
//! started, observed and stopped without a separate process, so that a test can arrange
//! state a process test cannot reach, such as what a masternode's write-ahead log holds.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use timecoin_chain::Genesis;
use timecoin_consensus::{Wal, WalEntry};
use timecoin_node::config::Config;
use timecoin_node::daemon::Node;
use timecoin_primitives::{BlockHash, SignedVote, Vote, VoteKind};
use timecoin_storage::Store;

/// Fast rounds and blocks, so that a test needs a few seconds.
const PACING: &str = "[consensus]\nmin_block_interval_ms = 100\nempty_block_interval_ms = 200\n\
    timeout_propose_ms = 1000\ntimeout_prevote_ms = 500\ntimeout_precommit_ms = 500\n";

/// A local network of `nodes` masternodes written to a temporary directory.
fn network(nodes: u16) -> (tempfile::TempDir, Genesis) {
    let dir = tempfile::tempdir().unwrap();
    let base = crate::localnet::free_ports(2 * nodes);
    timecoin_node::localnet::write_network(dir.path(), usize::from(nodes), 0, base, PACING).unwrap();
    let genesis = Genesis::from_toml(&std::fs::read_to_string(dir.path().join("genesis.toml")).unwrap()).unwrap();
    (dir, genesis)
}

fn node_dir(net: &Path, i: usize) -> PathBuf {
    net.join(format!("node{i}"))
}

async fn start(net: &Path, i: usize, genesis: &Genesis) -> Node {
    let dir = node_dir(net, i);
    let config = Config::load(&dir.join("config.toml")).unwrap();
    Node::start(config, genesis.clone(), dir).await.unwrap()
}

/// `work`, which must finish within two minutes (a bound on a hang, not a speed target).
async fn within<T>(what: &str, work: impl Future<Output = anyhow::Result<T>>) -> T {
    match tokio::time::timeout(Duration::from_secs(120), work).await {
        Ok(result) => result.unwrap(),
        Err(_) => panic!("{what} did not happen within two minutes"),
    }
}

fn block_hash(node: &Node, height: u64) -> BlockHash {
    node.store().block_by_height(height).unwrap().unwrap().hash()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_in_process_finalizes_keeps_its_chain_across_a_restart_and_stops_every_task() {
    let (dir, genesis) = network(1);
    let node = start(dir.path(), 0, &genesis).await;
    within("height 3", node.wait_for_height(3)).await;
    let third = block_hash(&node, 3);
    // `stop` fails if any task outlives the cancellation by 10 s.
    node.stop().await.unwrap();

    let node = start(dir.path(), 0, &genesis).await;
    let tip = node.tip_height();
    assert!(tip >= 3, "the restarted node starts at height {tip}");
    assert_eq!(block_hash(&node, 3), third);
    within("two more blocks", node.wait_for_height(tip + 2)).await;
    node.stop().await.unwrap();
}

/// The proposer's own block, the others locked on it: the proposer restarts before the
/// height is decided, and must vote for that block again. It holds the body from its WAL, so
/// the body never arrives "new" from a peer; unless the restart validates it, the engine never
/// learns the block is valid, prevotes nil in every round, and a network that needs its vote
/// halts (chaos seed 7017 did, with three validators left after a double-signer's ban).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposer_restarted_mid_height_votes_again_for_its_block_the_others_locked_on() {
    let (dir, genesis) = network(2);
    let net = dir.path();
    // Each node alone in turn, until one proposes at height 1 in round 0: its WAL then holds
    // the proposal, its prevote for the block and the block's body. (Alone, it cannot finish
    // the height: both votes are needed.)
    let mut proposer = None;
    for i in 0..2 {
        let node = start(net, i, &genesis).await;
        within(
            "the first prevote",
            node.wait_for_consensus(|s| s.height == 1 && s.step == "prevote"),
        )
        .await;
        node.stop().await.unwrap();
        let store = Store::open(&node_dir(net, i).join("chain.redb"), &genesis).unwrap();
        let entries = store.consensus_wal().entries(1).unwrap();
        let proposed = entries.iter().find_map(|entry| match entry {
            WalEntry::Proposal(p) if p.proposal.round == 0 => Some(p.proposal.block),
            _ => None,
        });
        let prevote = entries.iter().find_map(|entry| match entry {
            WalEntry::Vote(v) if v.vote.kind == VoteKind::Prevote && v.vote.round == 0 => Some(*v),
            _ => None,
        });
        drop(store);
        if let (Some(block), Some(prevote)) = (proposed, prevote) {
            assert_eq!(prevote.vote.block, Some(block));
            proposer = Some((i, block, prevote));
            break;
        }
        // Not the proposer: it prevoted nil. Its chain holds no block yet; start it afresh so
        // that it can vote for the proposer's block below without signing two prevotes.
        std::fs::remove_file(node_dir(net, i).join("chain.redb")).unwrap();
    }
    let (a, block, a_prevote) = proposer.expect("one of the two is the proposer of round 0");
    let b = 1 - a;

    // The other validator saw the proposal and both prevotes, and locked on the block: its
    // WAL holds its prevote, the lock's proof and its precommit, as its engine would write.
    {
        let key = timecoin_node::keys::load(&node_dir(net, b).join("masternode.key")).unwrap();
        let store = Store::open(&node_dir(net, b).join("chain.redb"), &genesis).unwrap();
        let vote = |kind| {
            let vote = Vote {
                chain: genesis.hash(),
                height: 1,
                round: 0,
                kind,
                block: Some(block),
            };
            SignedVote::sign(vote, &key)
        };
        let b_prevote = vote(VoteKind::Prevote);
        let mut wal = store.consensus_wal();
        wal.append(&WalEntry::Vote(b_prevote)).unwrap();
        wal.append(&WalEntry::LockProof {
            height: 1,
            votes: vec![a_prevote, b_prevote],
        })
        .unwrap();
        wal.append(&WalEntry::Vote(vote(VoteKind::Precommit))).unwrap();
    }

    // Both run: the height is decided, with the proposer's block.
    let node_a = start(net, a, &genesis).await;
    let node_b = start(net, b, &genesis).await;
    within("height 1 on the proposer", node_a.wait_for_height(1)).await;
    within("height 1 on the other", node_b.wait_for_height(1)).await;
    assert_eq!(block_hash(&node_a, 1), block);
    assert_eq!(block_hash(&node_b, 1), block);
    node_a.stop().await.unwrap();
    node_b.stop().await.unwrap();
}
