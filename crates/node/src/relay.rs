//! Transaction relay by inventory: a node announces the ids of transactions its mempool newly
//! admitted, a peer asks for the bodies it lacks, and each body crosses each link at most once.
//!
//! This is bookkeeping only (no I/O): which ids were seen, which were asked for from whom and
//! when, and which wait to be announced. Every collection is bounded.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use timecoin_network::wire::MAX_INVENTORY;
use timecoin_primitives::{PublicKey, TxId};

/// Transaction ids remembered as seen (admitted, announced or rejected).
const SEEN_CAPACITY: usize = 200_000;
/// Requests in flight at once, over all peers.
const MAX_IN_FLIGHT: usize = 50_000;
/// Requests in flight at once to one peer: one announcer cannot take the whole budget (its
/// announcements past this are asked of other announcers, or once its requests are answered
/// or time out).
const MAX_IN_FLIGHT_PER_PEER: usize = 10_000;
/// Ids waiting to be announced; beyond this the oldest are not announced (peers still get
/// them in blocks or from other announcers).
const MAX_PENDING: usize = 50_000;
/// A request not answered within this time may be sent to another announcer.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A set that remembers the most recent `capacity` insertions.
#[derive(Debug)]
struct RecentSet {
    members: HashSet<TxId>,
    order: VecDeque<TxId>,
    capacity: usize,
}

impl RecentSet {
    fn new(capacity: usize) -> RecentSet {
        RecentSet {
            members: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    fn insert(&mut self, id: TxId) -> bool {
        if !self.members.insert(id) {
            return false;
        }
        self.order.push_back(id);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.members.remove(&old);
            }
        }
        true
    }

    fn contains(&self, id: &TxId) -> bool {
        self.members.contains(id)
    }
}

/// The relay's state.
#[derive(Debug)]
pub(crate) struct TxRelay {
    seen: RecentSet,
    /// Ids asked for, from whom and when.
    requested: HashMap<TxId, (PublicKey, Instant)>,
    /// Requests in flight per peer (the entries of `requested` by peer).
    per_peer: HashMap<PublicKey, usize>,
    /// Requests in the order they were made, to retire the unanswered ones without scanning
    /// `requested` (an entry whose request was answered or made again is skipped).
    order: VecDeque<(TxId, Instant)>,
    pending: VecDeque<TxId>,
}

impl TxRelay {
    pub(crate) fn new() -> TxRelay {
        TxRelay {
            seen: RecentSet::new(SEEN_CAPACITY),
            requested: HashMap::new(),
            per_peer: HashMap::new(),
            order: VecDeque::new(),
            pending: VecDeque::new(),
        }
    }

    /// A peer announced `ids`: the ones to ask it for (neither seen nor asked of another peer
    /// recently). `known` says whether the mempool already holds an id.
    pub(crate) fn announced(
        &mut self,
        peer: PublicKey,
        ids: Vec<TxId>,
        known: impl Fn(&TxId) -> bool,
        now: Instant,
    ) -> Vec<TxId> {
        let mut wanted = Vec::new();
        for id in ids {
            if self.seen.contains(&id) || known(&id) {
                continue;
            }
            let fresh = self
                .requested
                .get(&id)
                .is_none_or(|(_, at)| now.duration_since(*at) >= REQUEST_TIMEOUT);
            let room = self.requested.len() < MAX_IN_FLIGHT
                && self.per_peer.get(&peer).copied().unwrap_or(0) < MAX_IN_FLIGHT_PER_PEER;
            if fresh && room {
                self.forget_request(&id);
                self.requested.insert(id, (peer, now));
                self.order.push_back((id, now));
                *self.per_peer.entry(peer).or_insert(0) += 1;
                wanted.push(id);
            }
        }
        wanted
    }

    /// Bodies arrived (whatever the mempool made of them): they are not asked for again.
    pub(crate) fn received(&mut self, ids: impl IntoIterator<Item = TxId>) {
        for id in ids {
            self.forget_request(&id);
            self.seen.insert(id);
        }
    }

    fn forget_request(&mut self, id: &TxId) {
        if let Some((peer, _)) = self.requested.remove(id)
            && let Some(count) = self.per_peer.get_mut(&peer)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_peer.remove(&peer);
            }
        }
    }

    /// The mempool admitted `id`: announce it to peers once.
    pub(crate) fn admitted(&mut self, id: TxId) {
        self.forget_request(&id);
        self.seen.insert(id);
        self.pending.push_back(id);
        while self.pending.len() > MAX_PENDING {
            self.pending.pop_front();
        }
    }

    /// The announcements to send now, each at most [`MAX_INVENTORY`] ids.
    pub(crate) fn take_announcements(&mut self) -> Vec<Vec<TxId>> {
        let mut batches = Vec::new();
        while !self.pending.is_empty() {
            let take = self.pending.len().min(MAX_INVENTORY);
            batches.push(self.pending.drain(..take).collect());
        }
        batches
    }

    /// Forgets requests that went unanswered (their ids may be asked of another peer) and
    /// those made of a peer that left.
    ///
    /// Called every 100 ms: it walks only the requests old enough to retire, and scans the
    /// rest only when a peer with requests in flight has left.
    pub(crate) fn expire(&mut self, now: Instant, connected: impl Fn(&PublicKey) -> bool) {
        while let Some((id, at)) = self.order.front().copied() {
            if now.duration_since(at) < REQUEST_TIMEOUT {
                break;
            }
            self.order.pop_front();
            if self.requested.get(&id).is_some_and(|(_, made)| *made == at) {
                self.forget_request(&id);
            }
        }
        if self.per_peer.keys().any(|peer| !connected(peer)) {
            self.requested.retain(|_, (peer, _)| connected(peer));
            self.per_peer.retain(|peer, _| connected(peer));
        }
        // Answered requests stay in `order` until they would have timed out; a burst of them
        // is dropped here rather than held.
        if self.order.len() > 2 * MAX_IN_FLIGHT {
            let requested = &self.requested;
            self.order
                .retain(|(id, at)| requested.get(id).is_some_and(|(_, made)| made == at));
        }
    }

    /// Requests in flight.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.requested.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timecoin_primitives::{Hash256, SecretKey};

    fn txid(n: u8) -> TxId {
        TxId(Hash256([n; 32]))
    }

    fn peer(n: u8) -> PublicKey {
        SecretKey::from_seed([n; 32]).public_key()
    }

    #[test]
    fn a_body_is_asked_for_once_until_the_request_times_out() {
        let now = Instant::now();
        let mut relay = TxRelay::new();
        assert_eq!(
            relay.announced(peer(1), vec![txid(1), txid(2)], |_| false, now),
            vec![txid(1), txid(2)]
        );
        assert!(relay.announced(peer(2), vec![txid(1)], |_| false, now).is_empty());
        let later = now + REQUEST_TIMEOUT;
        assert_eq!(relay.announced(peer(2), vec![txid(1)], |_| false, later), vec![txid(1)]);
        relay.received([txid(1)]);
        assert!(
            relay
                .announced(peer(3), vec![txid(1)], |_| false, later + REQUEST_TIMEOUT)
                .is_empty()
        );
        assert!(
            relay
                .announced(peer(3), vec![txid(3)], |id| *id == txid(3), now)
                .is_empty()
        );
    }

    #[test]
    fn requests_to_a_departed_peer_are_dropped() {
        let now = Instant::now();
        let mut relay = TxRelay::new();
        relay.announced(peer(1), vec![txid(1)], |_| false, now);
        relay.expire(now, |p| *p != peer(1));
        assert_eq!(relay.in_flight(), 0);
        assert_eq!(relay.announced(peer(2), vec![txid(1)], |_| false, now), vec![txid(1)]);
    }

    #[test]
    fn an_unanswered_request_is_retired_after_the_timeout_and_a_newer_one_is_kept() {
        let now = Instant::now();
        let mut relay = TxRelay::new();
        relay.announced(peer(1), vec![txid(1), txid(2)], |_| false, now);
        // Asked again of another peer once the first request timed out.
        let later = now + REQUEST_TIMEOUT;
        assert_eq!(relay.announced(peer(2), vec![txid(1)], |_| false, later), vec![txid(1)]);
        relay.expire(later, |_| true);
        // txid(2)'s request is gone; txid(1)'s newer one is not.
        assert_eq!(relay.in_flight(), 1);
        assert_eq!(relay.per_peer.get(&peer(1)), None);
        assert_eq!(relay.per_peer.get(&peer(2)), Some(&1));
        assert!(relay.announced(peer(3), vec![txid(1)], |_| false, later).is_empty());
        relay.expire(later + REQUEST_TIMEOUT, |_| true);
        assert_eq!(relay.in_flight(), 0);
        assert!(relay.per_peer.is_empty() && relay.order.is_empty());
    }

    #[test]
    fn announcements_are_batched_within_the_inventory_limit() {
        let mut relay = TxRelay::new();
        for n in 0..(MAX_INVENTORY + 10) {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&(n as u64).to_le_bytes());
            relay.admitted(TxId(Hash256(bytes)));
        }
        let batches = relay.take_announcements();
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![MAX_INVENTORY, 10]
        );
        assert!(relay.take_announcements().is_empty());
    }

    #[test]
    fn one_announcer_cannot_take_every_request_slot() {
        let now = Instant::now();
        let mut relay = TxRelay::new();
        let ids = |from: u64, count: u64| -> Vec<TxId> {
            (from..from + count)
                .map(|n| {
                    let mut bytes = [0u8; 32];
                    bytes[..8].copy_from_slice(&n.to_le_bytes());
                    TxId(Hash256(bytes))
                })
                .collect()
        };
        let flood = ids(0, MAX_IN_FLIGHT as u64);
        let asked = relay.announced(peer(1), flood.clone(), |_| false, now).len();
        assert_eq!(asked, MAX_IN_FLIGHT_PER_PEER);
        // An honest announcer still gets its transactions asked for, the flooder's among them.
        let honest = relay.announced(peer(2), ids(0, 10), |_| false, now + REQUEST_TIMEOUT);
        assert_eq!(honest.len(), 10);
        let fresh = relay.announced(peer(2), ids(1_000_000, 10), |_| false, now);
        assert_eq!(fresh.len(), 10);
        // Answers free the flooder's slots.
        relay.received(flood[..100].iter().copied());
        relay.expire(now, |_| true);
        assert_eq!(relay.announced(peer(1), ids(2_000_000, 200), |_| false, now).len(), 100);
    }

    #[test]
    fn the_seen_set_is_bounded() {
        let mut set = RecentSet::new(3);
        for n in 0..5 {
            set.insert(txid(n));
        }
        assert_eq!(set.members.len(), 3);
        assert!(!set.contains(&txid(0)) && set.contains(&txid(4)));
    }
}
