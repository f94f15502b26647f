//! Block sync bookkeeping: which finalized heights each peer has, which ranges are asked of
//! whom, and the blocks that arrived ahead of the next height to apply.
//!
//! A node behind asks up to [`WINDOWS`] ranges of up to [`BATCH`] blocks at once, each of a
//! different peer that has them, from the first height it lacks; the ranges start as far
//! apart as the last answer ran (an answer holds what fits in a frame: a hundred small
//! blocks, or one full one, so that full blocks come from several peers at once). A request unanswered for [`STALL_TIMEOUT`] is taken back
//! and asked of another peer; a peer that stalls is asked last. Blocks are applied strictly
//! in height order, after their certificate verifies, so progress is monotonic: ranges below
//! the tip are never asked again and nothing finalized is rolled back. No I/O here.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use timecoin_primitives::{Block, CommitCertificate, Encode, PublicKey};

/// Blocks asked for in one request.
pub(crate) const BATCH: u64 = 100;
/// Ranges in flight at once (each from a different peer).
pub(crate) const WINDOWS: u64 = 4;
/// A request unanswered for this long is asked of another peer.
pub(crate) const STALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How often sync progress is reported.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);
/// Bytes of blocks held ahead of the next height.
const MAX_BUFFER_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Default)]
struct PeerSync {
    /// Highest finalized height it claims (in its hello, by sending blocks, or by relaying
    /// a masternode's message for a later height); only used to choose whom to ask, since a
    /// claim costs nothing. Whether this node is behind is decided by the f+1 rule
    /// (`timecoin_consensus::AheadWitnesses`), never by one peer.
    best: u64,
    /// The range asked of it: first height and when.
    request: Option<(u64, Instant)>,
    /// The lowest block it serves, past genesis (from its hello; 0: all): it pruned those
    /// below, or started from a snapshot, and is not asked for them.
    lowest: u64,
    /// Requests it let time out or answered with nothing.
    stalls: u32,
    /// Requests it answered with blocks.
    delivered: u32,
}

/// The sync state.
#[derive(Debug, Default)]
pub(crate) struct BlockSync {
    peers: HashMap<PublicKey, PeerSync>,
    /// Blocks ahead of the next height, with the peer that sent each.
    buffer: BTreeMap<u64, (Arc<Block>, CommitCertificate, PublicKey)>,
    buffered_bytes: usize,
    /// When progress was last reported, at which height.
    reported: Option<(Instant, u64)>,
    /// Blocks the last answer to a request held (0 before the first: a whole batch is
    /// assumed); the next requests are that far apart.
    answer_span: u64,
}

impl BlockSync {
    /// `peer` says it has finalized `height`.
    pub(crate) fn peer_has(&mut self, peer: PublicKey, height: u64) {
        let entry = self.peers.entry(peer).or_default();
        entry.best = entry.best.max(height);
    }

    /// `peer` serves blocks from `lowest` up (0: every block).
    pub(crate) fn peer_serves_from(&mut self, peer: PublicKey, lowest: u64) {
        self.peers.entry(peer).or_default().lowest = lowest;
    }

    /// `peer` left.
    pub(crate) fn disconnected(&mut self, peer: &PublicKey) {
        self.peers.remove(peer);
    }

    /// The highest height any peer is known to have.
    pub(crate) fn best_known(&self) -> u64 {
        self.peers.values().map(|p| p.best).max().unwrap_or(0)
    }

    /// Ranges to ask for now, as (peer, first height): the windows from `next` that are
    /// neither buffered nor in flight, each given to an idle peer that has it (the one that
    /// stalled least, then the least advanced, first). Requests that timed out are taken back first.
    pub(crate) fn requests(&mut self, next: u64, now: Instant) -> Vec<(PublicKey, u64)> {
        for peer in self.peers.values_mut() {
            if let Some((from, at)) = peer.request
                && (now.duration_since(at) >= STALL_TIMEOUT || from + BATCH <= next)
            {
                if from + BATCH > next {
                    // It did not deliver: its claim is void until it shows blocks again.
                    peer.stalls = peer.stalls.saturating_add(1);
                    peer.best = peer.best.min(from.saturating_sub(1));
                }
                peer.request = None;
            }
        }
        // Where answers are expected: a range asked, as long as answers lately ran (an
        // answer holds as many blocks as fit in a frame: a hundred small ones, one full one).
        let span = if self.answer_span == 0 {
            BATCH
        } else {
            self.answer_span.min(BATCH)
        };
        let mut expected: Vec<u64> = self.peers.values().filter_map(|p| p.request.map(|(f, _)| f)).collect();
        let end = next + WINDOWS * BATCH;
        let mut out = Vec::new();
        let mut from = next;
        while expected.len() < WINDOWS as usize && from < end {
            if self.buffer.contains_key(&from) {
                from += 1;
                continue;
            }
            if let Some(asked) = expected.iter().find(|f| (**f..**f + span).contains(&from)) {
                from = asked + span;
                continue;
            }
            // Past the next height, only while the buffer has room (the next one always fits).
            if from != next && self.buffered_bytes >= MAX_BUFFER_BYTES {
                break;
            }
            let chosen = self
                .peers
                .iter()
                .filter(|(_, p)| p.request.is_none() && p.best >= from && p.lowest <= from)
                // Peers that delivered more than they stalled first, then those that
                // delivered at all (a new identity costs nothing, a record of answers does),
                // then the fewest stalls; among equals the least advanced peer that has the
                // range, so that peers further ahead stay free for the ranges only they have.
                .min_by_key(|(key, p)| (p.stalls > p.delivered, p.delivered == 0, p.stalls, p.best, **key))
                .map(|(key, _)| *key);
            let Some(peer) = chosen else {
                break;
            };
            if let Some(state) = self.peers.get_mut(&peer) {
                state.request = Some((from, now));
            }
            out.push((peer, from));
            expected.push(from);
            from += span;
        }
        out
    }

    /// Blocks arrived from `peer` (an answer or an announcement). Those in the window ahead
    /// of `next` are kept, within the byte budget; an empty answer means the peer has less
    /// than it said.
    pub(crate) fn received(&mut self, peer: PublicKey, next: u64, blocks: Vec<(Block, CommitCertificate)>) {
        let state = self.peers.entry(peer).or_default();
        // The range this answers, if it answers the peer's request.
        let asked = match blocks.first() {
            None => {
                if let Some((from, _)) = state.request.take() {
                    // Less than it claimed: a claim it does not serve counts as a stall.
                    state.best = state.best.min(from.saturating_sub(1));
                    state.stalls = state.stalls.saturating_add(1);
                }
                None
            }
            Some((first, _)) => {
                let asked = state
                    .request
                    .map(|(from, _)| from)
                    .filter(|from| *from == first.header.height);
                if asked.is_some() {
                    state.request = None;
                    state.delivered = state.delivered.saturating_add(1);
                    self.answer_span = u64::try_from(blocks.len()).unwrap_or(BATCH);
                }
                asked
            }
        };
        let end = next + WINDOWS * BATCH;
        for (block, certificate) in blocks {
            let height = block.header.height;
            self.peer_has(peer, height);
            // Only the range asked of this peer is buffered, and the next block from anyone
            // (a decided block is announced): a peer cannot fill the buffer with blocks
            // nobody asked it for, ahead of honest answers.
            let requested = asked.is_some_and(|from| (from..from + BATCH).contains(&height));
            if height < next || height >= end || self.buffer.contains_key(&height) || !(requested || height == next) {
                continue;
            }
            let size = block.encoded_len() + certificate.encoded_len();
            if self.buffered_bytes + size > MAX_BUFFER_BYTES {
                if height != next {
                    break;
                }
                // The next block is always kept, the highest ones making room (they are asked
                // again): a buffer full of later blocks must not leave the node waiting for a
                // height it cannot hold.
                while self.buffered_bytes + size > MAX_BUFFER_BYTES
                    && let Some(highest) = self.buffer.last_key_value().map(|(h, _)| *h)
                {
                    self.remove(highest);
                }
            }
            self.buffered_bytes += size;
            self.buffer.insert(height, (Arc::new(block), certificate, peer));
        }
    }

    /// The block for height `next`, if it arrived.
    pub(crate) fn take(&mut self, next: u64) -> Option<(Arc<Block>, CommitCertificate, PublicKey)> {
        self.prune_below(next);
        self.remove(next)
    }

    /// Up to `count` consecutive blocks buffered from height `from` (shared, not copied).
    pub(crate) fn buffered_from(&self, from: u64, count: u64) -> Vec<(Arc<Block>, CommitCertificate)> {
        (from..from.saturating_add(count))
            .map_while(|height| self.buffer.get(&height))
            .map(|(block, certificate, _)| (Arc::clone(block), certificate.clone()))
            .collect()
    }

    fn remove(&mut self, height: u64) -> Option<(Arc<Block>, CommitCertificate, PublicKey)> {
        let entry = self.buffer.remove(&height)?;
        let size = entry.0.encoded_len() + entry.1.encoded_len();
        self.buffered_bytes = self.buffered_bytes.saturating_sub(size);
        Some(entry)
    }

    /// `peer` sent a block that does not verify: everything it sent is dropped (and asked of
    /// others), and it is forgotten.
    pub(crate) fn lied(&mut self, peer: &PublicKey) {
        let from_liar: Vec<u64> = self
            .buffer
            .iter()
            .filter(|(_, (_, _, sender))| sender == peer)
            .map(|(height, _)| *height)
            .collect();
        for height in from_liar {
            self.remove(height);
        }
        self.peers.remove(peer);
    }

    /// A progress line when [`PROGRESS_INTERVAL`] passed since the last one while catching up
    /// (the node applied `height`).
    pub(crate) fn progress(&mut self, height: u64, now: Instant) -> Option<String> {
        let Some((at, from)) = self.reported else {
            self.reported = Some((now, height));
            return None;
        };
        let elapsed = now.duration_since(at);
        if elapsed < PROGRESS_INTERVAL {
            return None;
        }
        self.reported = Some((now, height));
        let rate = (height.saturating_sub(from)) as f64 / elapsed.as_secs_f64();
        let target = self.best_known().max(height);
        let left = target - height;
        if left == 0 {
            // At the tip: blocks arrive one at a time from peers that decided first.
            return None;
        }
        let eta = if rate > 0.0 {
            format!("{:.0} s", left as f64 / rate)
        } else {
            "unknown".to_owned()
        };
        Some(format!(
            "syncing: height {height} of {target} ({rate:.0} blocks/s, {left} left, eta {eta})"
        ))
    }

    fn prune_below(&mut self, next: u64) {
        while let Some(height) = self.buffer.first_key_value().map(|(h, _)| *h).filter(|h| *h < next) {
            self.remove(height);
        }
    }

    /// Bytes of blocks held.
    #[cfg(test)]
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timecoin_primitives::{BlockHash, BlockHeader, Hash256, SecretKey};

    fn peer(n: u8) -> PublicKey {
        SecretKey::from_seed([n; 32]).public_key()
    }

    fn block(height: u64) -> (Block, CommitCertificate) {
        let header = BlockHeader {
            version: BlockHeader::VERSION,
            height,
            prev_hash: BlockHash::default(),
            timestamp_ms: height,
            merkle_root: Hash256::default(),
            proposer: PublicKey::default(),
            masternode_set_hash: Hash256::default(),
            state_hash: Hash256::default(),
            last_commit_hash: Hash256::default(),
            evidence_hash: Hash256::default(),
        };
        let certificate = CommitCertificate {
            height,
            round: 0,
            block_hash: header.hash(),
            signatures: Vec::new(),
        };
        (
            Block {
                header,
                transactions: Vec::new(),
                last_commit: None,
                evidence: Vec::new(),
            },
            certificate,
        )
    }

    fn blocks(range: std::ops::Range<u64>) -> Vec<(Block, CommitCertificate)> {
        range.map(block).collect()
    }

    /// A sync state that knows peers `ids`, each claiming `best`.
    fn with_peers(ids: std::ops::RangeInclusive<u8>, best: u64) -> BlockSync {
        let mut sync = BlockSync::default();
        for n in ids {
            sync.peer_has(peer(n), best);
        }
        sync
    }

    /// The first heights of `requests`.
    fn froms(requests: &[(PublicKey, u64)]) -> Vec<u64> {
        requests.iter().map(|(_, from)| *from).collect()
    }

    #[test]
    fn ranges_go_to_different_peers_in_parallel() {
        let now = Instant::now();
        let mut sync = with_peers(1..=3, 1_000);
        sync.peer_has(peer(4), 50);
        let requests = sync.requests(1, now);
        assert_eq!(froms(&requests), vec![1, 101, 201, 301]);
        let mut asked: Vec<PublicKey> = requests.iter().map(|(p, _)| *p).collect();
        asked.sort();
        asked.dedup();
        assert_eq!(asked.len(), 4, "every range from a different peer");
        assert!(
            requests.iter().all(|(p, from)| *p != peer(4) || *from == 1),
            "only a peer that has a range is asked for it"
        );
        assert!(sync.requests(1, now).is_empty(), "nothing is asked twice");
    }

    #[test]
    fn a_peer_that_pruned_is_not_asked_for_blocks_below_its_lowest() {
        let now = Instant::now();
        let mut sync = with_peers(1..=2, 1_000);
        sync.peer_serves_from(peer(1), 500);
        sync.peer_serves_from(peer(2), 500);
        assert!(sync.requests(1, now).is_empty(), "no peer serves block 1");
        sync.peer_has(peer(3), 1_000);
        let requests = sync.requests(1, now);
        assert_eq!(requests, vec![(peer(3), 1)]);
        assert_eq!(froms(&sync.requests(1, now)), Vec::<u64>::new());
        // Above its lowest, a pruned peer is asked like any.
        let mut sync = with_peers(1..=1, 1_000);
        sync.peer_serves_from(peer(1), 500);
        assert_eq!(sync.requests(500, now), vec![(peer(1), 500)]);
    }

    #[test]
    fn when_answers_hold_one_block_the_next_heights_are_asked_of_several_peers_at_once() {
        let now = Instant::now();
        let mut sync = with_peers(1..=3, 1_000);
        let first = sync.requests(1, now);
        assert_eq!(froms(&first), vec![1, 101, 201]);
        // Each answer held one block (a full block fills a frame).
        for (peer, from) in first {
            sync.received(peer, 1, blocks(from..from + 1));
        }
        // Height 1 is applied; 2, 3 and 4 are asked next, of the three peers.
        assert!(sync.take(1).is_some());
        let next = sync.requests(2, now);
        assert_eq!(froms(&next), vec![2, 3, 4]);
        let mut asked: Vec<PublicKey> = next.iter().map(|(p, _)| *p).collect();
        asked.sort();
        asked.dedup();
        assert_eq!(asked.len(), 3);
        // Blocks already here are not asked again.
        for (peer, from) in next {
            sync.received(peer, 2, blocks(from..from + 1));
        }
        assert_eq!(froms(&sync.requests(2, now)), vec![5, 6, 7]);
    }

    #[test]
    fn a_buffer_full_of_later_blocks_still_takes_the_next_one() {
        let now = Instant::now();
        let mut sync = with_peers(1..=2, 1_000);
        let first = sync.requests(1, now);
        assert_eq!(froms(&first), vec![1, 101]);
        // Height 101's answer arrives and the buffer is full (as full blocks from fast peers
        // would leave it) while height 1 is late.
        let (fast, _) = first[1];
        sync.received(fast, 1, blocks(101..102));
        sync.buffered_bytes = MAX_BUFFER_BYTES;
        // The next height is still asked for once its request times out, and nothing else is...
        let again = sync.requests(1, now + STALL_TIMEOUT);
        assert_eq!(froms(&again), vec![1]);
        // ...and it is kept when it comes, the highest block making room.
        sync.received(again[0].0, 1, blocks(1..2));
        assert!(sync.take(1).is_some(), "the next block was dropped");
        assert!(sync.take(101).is_none());
        assert!(sync.buffered_bytes() <= MAX_BUFFER_BYTES);
    }

    #[test]
    fn a_stalled_range_moves_to_another_peer_and_the_stallers_claim_is_void() {
        let now = Instant::now();
        let mut sync = BlockSync::default();
        sync.peer_has(peer(1), 1_000);
        let first = sync.requests(1, now);
        assert_eq!(first, vec![(peer(1), 1)]);
        sync.peer_has(peer(2), 1_000);
        let later = now + STALL_TIMEOUT;
        let second = sync.requests(1, later);
        assert_eq!(
            second[0],
            (peer(2), 1),
            "the stalled range goes to the peer that did not stall"
        );
        assert!(
            second.iter().all(|(p, _)| *p != peer(1)),
            "the staller is not asked again"
        );
        // Once it shows blocks again it is asked, after peers that never stalled.
        sync.peer_has(peer(1), 1_000);
        sync.peer_has(peer(3), 1_000);
        let third = sync.requests(1, later);
        assert_eq!(third.first().map(|(p, _)| *p), Some(peer(3)));
    }

    #[test]
    fn blocks_are_taken_in_order_and_a_liars_blocks_are_dropped() {
        let now = Instant::now();
        let mut sync = with_peers(1..=2, 300);
        let requests = sync.requests(1, now);
        let (first_peer, second_peer) = (requests[0].0, requests[1].0);
        sync.received(second_peer, 1, blocks(101..201));
        assert!(sync.take(1).is_none(), "height 1 has not arrived");
        sync.received(first_peer, 1, blocks(1..101));
        for height in 1..=100 {
            assert_eq!(sync.take(height).map(|(b, _, _)| b.header.height), Some(height));
        }
        assert!(sync.take(101).is_some());
        sync.lied(&second_peer);
        assert!(sync.take(102).is_none(), "the liar's blocks are gone");
        assert_eq!(sync.buffered_bytes(), 0);
        assert!(!sync.peers.contains_key(&second_peer));
        assert_eq!(sync.best_known(), 300, "the honest peer still has more");
    }

    #[test]
    fn an_empty_answer_lowers_what_the_peer_is_believed_to_have() {
        let now = Instant::now();
        let mut sync = BlockSync::default();
        sync.peer_has(peer(1), 500);
        sync.requests(201, now);
        sync.received(peer(1), 201, Vec::new());
        assert_eq!(sync.best_known(), 200);
        assert!(sync.requests(201, now).is_empty());
    }

    #[test]
    fn blocks_nobody_asked_for_are_not_buffered_but_the_next_one_is() {
        let now = Instant::now();
        let mut sync = BlockSync::default();
        sync.peer_has(peer(1), 300);
        let requests = sync.requests(1, now);
        assert_eq!(requests.first(), Some(&(peer(1), 1)));
        // A stranger pushes the heights after the next: none is kept.
        sync.received(peer(9), 1, blocks(2..101));
        assert_eq!(sync.buffered_bytes(), 0);
        // The next block is kept from anyone; the asked peer's range in full.
        sync.received(peer(9), 1, blocks(1..2));
        assert!(sync.take(1).is_some());
        sync.received(peer(1), 2, blocks(1..101));
        for height in 2..=100 {
            assert!(sync.take(height).is_some(), "height {height} was asked for");
        }
    }

    #[test]
    fn a_peer_that_answers_nothing_loses_the_next_range_to_one_that_delivered() {
        let now = Instant::now();
        let mut sync = BlockSync::default();
        let (liar, honest, newcomer) = (peer(1), peer(2), peer(3));
        sync.peer_has(honest, 100);
        sync.peer_has(liar, 50);
        // The least advanced peer gets the first range; it answers nothing.
        assert_eq!(sync.requests(1, now), vec![(liar, 1)]);
        sync.received(liar, 1, Vec::new());
        sync.peer_has(liar, 100);
        let next = sync.requests(1, now);
        assert!(next.contains(&(honest, 1)), "{next:?}");
        sync.received(honest, 1, blocks(1..101));
        // A fresh identity claiming little does not take the next range from the peer that
        // delivered.
        sync.peer_has(honest, 300);
        sync.peer_has(newcomer, 101);
        for height in 1..=100 {
            assert!(sync.take(height).is_some());
        }
        let after = sync.requests(101, now);
        assert_eq!(after.first(), Some(&(honest, 101)), "{after:?}");
    }

    #[test]
    fn only_the_window_ahead_is_buffered() {
        let mut sync = BlockSync::default();
        sync.received(peer(1), 10, blocks(1..10));
        sync.received(peer(1), 10, blocks(10 + WINDOWS * BATCH..10 + WINDOWS * BATCH + 5));
        assert_eq!(sync.buffered_bytes(), 0);
        assert_eq!(sync.best_known(), 14 + WINDOWS * BATCH);
    }
}
