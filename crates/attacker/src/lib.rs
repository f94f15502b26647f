//! A Byzantine peer that runs for real, for process tests and the chaos runner: it speaks
//! the real Noise transport, handshake and messages, with or without a masternode's operator
//! key, and does what a hostile masternode or peer would ([`Behaviour`]).
//!
//! It owns nothing a node runs: no store, no mempool, no consensus engine. What it knows of
//! the chain it learns from what its targets send (the heights of their votes and
//! proposals, their proposals' blocks). Every loop is bounded in rate and stops on its
//! cancellation token; it never dials an address it was not given.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::RngExt;
use timecoin_network::{Hello, Message, SecureReader, SecureWriter, connect};
use timecoin_primitives::{
    Block, BlockHash, Decode, Encode, Hash256, Proposal, SecretKey, Signature, SignedProposal, SignedVote, Transaction,
    Vote, VoteKind,
};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What the attacker does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Behaviour {
    /// Signs votes for heights far ahead (a node must not take one masternode's word that
    /// the network moved on).
    FutureVotes,
    /// Signs two different prevotes in one round (double-signing: evidence must ban it).
    ConflictingVotes,
    /// Signs two proposals for each round it sees, with different blocks.
    EquivocatingProposals,
    /// Relays honest proposals with one byte of their body changed.
    SwappedBodies,
    /// Sends votes of a masternode whose signature does not verify.
    InvalidSignatures,
    /// Floods votes signed by keys of no masternode.
    ForeignVotes,
    /// Asks for blocks again and again and never reads the answers.
    RequestsWithoutReading,
    /// Opens as many connections from one address as a node takes.
    InboundSlots,
    /// Stays connected and silent (a masternode that withholds its votes).
    Withholding,
    /// Relays [`Attacker::poison`], transactions valid alone but never together (a
    /// registration naming a coin as its collateral and a richer spend of that coin), to
    /// every target; does nothing without them, so it is not among [`Behaviour::ALL`].
    PoisonPairs,
}

impl Behaviour {
    /// Every behaviour that needs nothing but a key: the chaos runner draws from these.
    pub const ALL: [Behaviour; 9] = [
        Behaviour::FutureVotes,
        Behaviour::ConflictingVotes,
        Behaviour::EquivocatingProposals,
        Behaviour::SwappedBodies,
        Behaviour::InvalidSignatures,
        Behaviour::ForeignVotes,
        Behaviour::RequestsWithoutReading,
        Behaviour::InboundSlots,
        Behaviour::Withholding,
    ];

    /// Whether it signs as a masternode (needs an operator key).
    pub fn needs_key(self) -> bool {
        matches!(
            self,
            Behaviour::FutureVotes
                | Behaviour::ConflictingVotes
                | Behaviour::EquivocatingProposals
                | Behaviour::InvalidSignatures
        )
    }

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::FutureVotes => "future-votes",
            Behaviour::ConflictingVotes => "conflicting-votes",
            Behaviour::EquivocatingProposals => "equivocating-proposals",
            Behaviour::SwappedBodies => "swapped-bodies",
            Behaviour::InvalidSignatures => "invalid-signatures",
            Behaviour::ForeignVotes => "foreign-votes",
            Behaviour::RequestsWithoutReading => "requests-without-reading",
            Behaviour::InboundSlots => "inbound-slots",
            Behaviour::Withholding => "withholding",
            Behaviour::PoisonPairs => "poison-pairs",
        }
    }
}

/// What a run did, counted over all its connections.
#[derive(Debug, Default)]
pub struct Report {
    /// Handshakes that completed.
    pub connections: AtomicU64,
    /// Dials or handshakes that failed (refused, banned, over a limit).
    pub refused: AtomicU64,
    /// Messages written.
    pub sent: AtomicU64,
    /// Connections the target closed while the attacker still used them.
    pub cut_off: AtomicU64,
}

impl Report {
    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A counter's value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Paces every loop that sends on its own.
const TICK: Duration = Duration::from_millis(250);
/// Waits before dialling again after a refusal.
const RETRY: Duration = Duration::from_millis(500);
/// Foreign votes per tick and connection.
const FLOOD: usize = 50;
/// Connections one inbound-slot task holds to a target at most.
const MAX_HELD: usize = 64;
/// The handshake's deadline.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// How long the tasks have to end after cancellation before they are aborted.
const STOP: Duration = Duration::from_secs(5);

type Reader = SecureReader<ReadHalf<TcpStream>>;
type Writer = SecureWriter<WriteHalf<TcpStream>>;

/// The attacker: whom it attacks and as whom.
#[derive(Debug, Clone)]
pub struct Attacker {
    /// How it introduces itself (the network's magic, version and genesis).
    pub hello: Hello,
    /// The masternode operator key it signs with, if it holds one.
    pub operator: Option<SecretKey>,
    /// The nodes it attacks.
    pub targets: Vec<SocketAddr>,
    /// The largest frame it reads.
    pub max_frame: usize,
    /// Signed transactions that are valid alone but not together, for
    /// [`Behaviour::PoisonPairs`] (they need funded coins, which the caller holds).
    pub poison: Vec<Transaction>,
}

/// What a reading task learned: the highest height seen, and the proposals (with the index
/// of the target that sent them) for behaviours that use them.
struct Seen {
    height: AtomicU64,
    proposals: Option<mpsc::Sender<(usize, SignedProposal, Block)>>,
}

impl Attacker {
    /// Runs `behaviours` against every target until `cancel`; returns what it did.
    pub async fn run(&self, behaviours: &[Behaviour], cancel: CancellationToken) -> Arc<Report> {
        let report = Arc::new(Report::default());
        let mut tasks = JoinSet::new();
        for behaviour in behaviours {
            if (behaviour.needs_key() && self.operator.is_none())
                || (*behaviour == Behaviour::PoisonPairs && self.poison.is_empty())
            {
                continue;
            }
            if *behaviour == Behaviour::SwappedBodies {
                tasks.spawn(self.clone().swap_bodies(Arc::clone(&report), cancel.clone()));
                continue;
            }
            for target in 0..self.targets.len() {
                let (me, report, cancel) = (self.clone(), Arc::clone(&report), cancel.clone());
                tasks.spawn(me.per_target(*behaviour, target, report, cancel));
            }
        }
        cancel.cancelled().await;
        // Every task watches `cancel`, but one may be waiting on a node whose link is down;
        // after `STOP` the rest are aborted, so the attacker always stops.
        let drained = tokio::time::timeout(STOP, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tasks.shutdown().await;
        }
        report
    }

    async fn open(&self, target: usize, report: &Report) -> Option<(Reader, Writer)> {
        let address = *self.targets.get(target)?;
        let identity = SecretKey::from_seed(rand::rng().random());
        let stream = match tokio::time::timeout(HANDSHAKE, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(_)) | Err(_) => {
                Report::count(&report.refused);
                return None;
            }
        };
        match connect(stream, &identity, true, &self.hello, self.max_frame, HANDSHAKE).await {
            Ok((secure, _)) => {
                Report::count(&report.connections);
                Some(secure.into_split())
            }
            Err(_) => {
                Report::count(&report.refused);
                None
            }
        }
    }

    /// Reads until the connection ends, noting heights (and proposals, for `seen`'s
    /// channel); counts the end as a cut-off.
    fn read(mut reader: Reader, target: usize, seen: Arc<Seen>, report: Arc<Report>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            while let Ok(frame) = reader.receive().await {
                let height = match Message::from_bytes(&frame) {
                    Ok(Message::Vote(vote)) => vote.vote.height,
                    Ok(Message::Proposal(boxed)) => {
                        let height = boxed.0.proposal.height;
                        if let Some(proposals) = &seen.proposals {
                            let (proposal, block) = *boxed;
                            let _ = proposals.try_send((target, proposal, block));
                        }
                        height
                    }
                    Ok(Message::Blocks(blocks)) => blocks.last().map_or(0, |(b, _)| b.header.height + 1),
                    _ => 0,
                };
                seen.height.fetch_max(height, Ordering::Relaxed);
            }
            Report::count(&report.cut_off);
        })
    }

    fn vote(&self, height: u64, round: u32, kind: VoteKind, block: Option<BlockHash>, key: &SecretKey) -> SignedVote {
        SignedVote::sign(
            Vote {
                chain: self.hello.genesis,
                height,
                round,
                kind,
                block,
            },
            key,
        )
    }

    /// Frames to send now for a behaviour that speaks on its own at `height` (the highest
    /// seen).
    fn frames(&self, behaviour: Behaviour, height: u64) -> Vec<Vec<u8>> {
        let block = |n: u8| Some(BlockHash(Hash256([n; 32])));
        let votes: Vec<SignedVote> = match (behaviour, &self.operator) {
            (Behaviour::FutureVotes, Some(key)) => [2, 50, 1_000_000]
                .into_iter()
                .flat_map(|ahead| {
                    let h = height.saturating_add(ahead);
                    [
                        self.vote(h, 0, VoteKind::Prevote, block(1), key),
                        self.vote(h, 7, VoteKind::Precommit, block(2), key),
                    ]
                })
                .collect(),
            (Behaviour::ConflictingVotes, Some(key)) => (0..3)
                .flat_map(|round| {
                    [
                        self.vote(height, round, VoteKind::Prevote, block(3), key),
                        self.vote(height, round, VoteKind::Prevote, block(4), key),
                    ]
                })
                .collect(),
            (Behaviour::InvalidSignatures, Some(key)) => {
                let mut vote = self.vote(height.saturating_add(1), 0, VoteKind::Prevote, block(5), key);
                vote.signature = Signature(rand::rng().random());
                vec![vote]
            }
            (Behaviour::ForeignVotes, _) => (0..FLOOD)
                .map(|_| {
                    let stranger = SecretKey::from_seed(rand::rng().random());
                    self.vote(height, 0, VoteKind::Prevote, block(6), &stranger)
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut frames: Vec<Vec<u8>> = votes.into_iter().map(|v| Message::Vote(v).to_bytes()).collect();
        match behaviour {
            Behaviour::RequestsWithoutReading => frames.push(Message::GetBlocks { from: 1, count: 100 }.to_bytes()),
            Behaviour::PoisonPairs => frames.push(Message::Transactions(self.poison.clone()).to_bytes()),
            _ => {}
        }
        frames
    }

    async fn per_target(self, behaviour: Behaviour, target: usize, report: Arc<Report>, cancel: CancellationToken) {
        if behaviour == Behaviour::InboundSlots {
            return self.hold_slots(target, report, cancel).await;
        }
        let (proposals, mut proposed) = if behaviour == Behaviour::EquivocatingProposals {
            let (sender, receiver) = mpsc::channel(64);
            (Some(sender), Some(receiver))
        } else {
            (None, None)
        };
        while !cancel.is_cancelled() {
            let Some((reader, mut writer)) = self.open(target, &report).await else {
                sleep_or_cancel(RETRY, &cancel).await;
                continue;
            };
            let seen = Arc::new(Seen {
                height: AtomicU64::new(self.hello.best_height),
                proposals: proposals.clone(),
            });
            // A reader that never reads is the behaviour: the node must drop it as slow.
            let reading = (behaviour != Behaviour::RequestsWithoutReading)
                .then(|| Self::read(reader, target, Arc::clone(&seen), Arc::clone(&report)));
            // The poison goes once a connection: relayed again, it would only be a replay.
            let mut poisoned = false;
            'connected: while !cancel.is_cancelled() {
                let height = seen.height.load(Ordering::Relaxed);
                let mut frames = if behaviour == Behaviour::PoisonPairs && poisoned {
                    Vec::new()
                } else {
                    self.frames(behaviour, height)
                };
                poisoned = true;
                if let Some(receiver) = proposed.as_mut() {
                    while let Ok((_, proposal, block)) = receiver.try_recv() {
                        frames.extend(self.equivocate(&proposal, &block));
                    }
                }
                for frame in &frames {
                    let sent = tokio::time::timeout(TICK * 4, writer.send(frame)).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        Report::count(&report.cut_off);
                        break 'connected;
                    }
                    Report::count(&report.sent);
                }
                if reading.as_ref().is_some_and(|r| r.is_finished()) {
                    break;
                }
                sleep_or_cancel(TICK, &cancel).await;
            }
            if let Some(reading) = reading {
                reading.abort();
            }
        }
    }

    /// Two proposals with different blocks for the honest proposal's height, in its round
    /// and the next few (the target follows one only where this key is the round's
    /// proposer, and only one a round).
    fn equivocate(&self, honest: &SignedProposal, block: &Block) -> Vec<Vec<u8>> {
        let Some(key) = &self.operator else {
            return Vec::new();
        };
        let mut frames = Vec::new();
        for round in honest.proposal.round..honest.proposal.round.saturating_add(4) {
            for shift in 1..=2u64 {
                let mut twin = block.clone();
                twin.header.timestamp_ms = twin.header.timestamp_ms.saturating_add(shift);
                twin.header.proposer = key.public_key();
                let proposal = Proposal {
                    round,
                    block: twin.hash(),
                    ..honest.proposal
                };
                let signed = SignedProposal::sign(proposal, key);
                frames.push(Message::Proposal(Box::new((signed, twin))).to_bytes());
            }
        }
        frames
    }

    /// Holds as many connections to `target` as it lets in, reading from each, and tries
    /// again for those it drops.
    async fn hold_slots(self, target: usize, report: Arc<Report>, cancel: CancellationToken) {
        let mut held: Vec<(tokio::task::JoinHandle<()>, Writer)> = Vec::new();
        while !cancel.is_cancelled() {
            held.retain(|(reading, _)| !reading.is_finished());
            while held.len() < MAX_HELD && !cancel.is_cancelled() {
                let Some((reader, writer)) = self.open(target, &report).await else {
                    break;
                };
                let seen = Arc::new(Seen {
                    height: AtomicU64::new(0),
                    proposals: None,
                });
                held.push((Self::read(reader, target, seen, Arc::clone(&report)), writer));
            }
            sleep_or_cancel(RETRY, &cancel).await;
        }
        for (reading, _) in held {
            reading.abort();
        }
    }

    /// Connects to every target and relays each honest proposal to the others with one
    /// byte of its body changed (the header, and so the hash every vote signs, unchanged).
    async fn swap_bodies(self, report: Arc<Report>, cancel: CancellationToken) {
        while !cancel.is_cancelled() {
            let (sender, mut proposals) = mpsc::channel(64);
            let mut writers: Vec<Option<Writer>> = Vec::new();
            let mut readers = Vec::new();
            for target in 0..self.targets.len() {
                let Some((reader, writer)) = self.open(target, &report).await else {
                    writers.push(None);
                    continue;
                };
                let seen = Arc::new(Seen {
                    height: AtomicU64::new(0),
                    proposals: Some(sender.clone()),
                });
                readers.push(Self::read(reader, target, seen, Arc::clone(&report)));
                writers.push(Some(writer));
            }
            drop(sender);
            loop {
                let next = tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(TICK * 8) => None,
                    next = proposals.recv() => next,
                };
                let Some((from, proposal, mut block)) = next else {
                    break;
                };
                if !alter_body(&mut block) {
                    continue;
                }
                let frame = Message::Proposal(Box::new((proposal, block))).to_bytes();
                for (index, slot) in writers.iter_mut().enumerate() {
                    if index == from {
                        continue;
                    }
                    if let Some(writer) = slot {
                        if matches!(tokio::time::timeout(TICK * 4, writer.send(&frame)).await, Ok(Ok(()))) {
                            Report::count(&report.sent);
                        } else {
                            Report::count(&report.cut_off);
                            *slot = None;
                        }
                    }
                }
            }
            for reader in readers {
                reader.abort();
            }
            sleep_or_cancel(RETRY, &cancel).await;
        }
    }
}

/// Changes one byte of a block's body that its header commits to: a signature of a
/// transaction that has inputs, else the reward transaction's memo. Whether it changed one.
pub fn alter_body(block: &mut Block) -> bool {
    if let Some(input) = block.transactions.iter_mut().flat_map(|tx| tx.inputs.iter_mut()).next()
        && let Some(byte) = input.signature.0.first_mut()
    {
        *byte ^= 0x01;
        return true;
    }
    if let Some(tx) = block.transactions.first_mut() {
        match tx.memo.first_mut() {
            Some(byte) => *byte ^= 0x01,
            None => tx.memo.push(0),
        }
        return true;
    }
    false
}

async fn sleep_or_cancel(duration: Duration, cancel: &CancellationToken) {
    tokio::select! {
        () = cancel.cancelled() => {}
        () = tokio::time::sleep(duration) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_altered_body_keeps_its_header_but_no_longer_matches_it() {
        let header = timecoin_primitives::BlockHeader {
            version: timecoin_primitives::BlockHeader::VERSION,
            height: 1,
            prev_hash: BlockHash::default(),
            timestamp_ms: 1,
            merkle_root: Hash256::ZERO,
            proposer: timecoin_primitives::PublicKey::default(),
            masternode_set_hash: Hash256::ZERO,
            state_hash: Hash256::ZERO,
            last_commit_hash: Hash256::ZERO,
            evidence_hash: Hash256::ZERO,
        };
        let reward = timecoin_primitives::Transaction {
            version: timecoin_primitives::Transaction::VERSION,
            inputs: Vec::new(),
            outputs: Vec::new(),
            lock_time: 1,
            memo: Vec::new(),
            payload: None,
        };
        let mut block = Block {
            header,
            transactions: vec![reward],
            last_commit: None,
            evidence: Vec::new(),
        };
        block.header.merkle_root = timecoin_primitives::transactions_root(&block.transactions);
        assert!(block.matches_header());
        let hash = block.hash();
        assert!(alter_body(&mut block));
        assert_eq!(block.hash(), hash);
        assert!(!block.matches_header());
        let decoded = Block::from_bytes(&block.to_bytes());
        assert!(decoded.is_ok(), "the altered block still decodes: {decoded:?}");
    }
}
