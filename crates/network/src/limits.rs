//! Per-peer rate limits by message class, misbehaviour scores, and timed bans.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use timecoin_primitives::PublicKey;

use crate::wire::MessageClass;

/// Messages per second and burst allowed for each class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateConfig {
    /// Pings, peer exchange, masternode lists.
    pub control: (u32, u32),
    /// Transaction relay.
    pub transactions: (u32, u32),
    /// Proposals, votes, evidence.
    pub consensus: (u32, u32),
    /// Block sync.
    pub sync: (u32, u32),
}

impl Default for RateConfig {
    fn default() -> Self {
        RateConfig {
            control: (10, 50),
            transactions: (2_000, 10_000),
            consensus: (1_000, 5_000),
            sync: (50, 200),
        }
    }
}

type Limiter<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One peer's rate limiters.
pub struct PeerLimits<C: Clock = DefaultClock> {
    control: Limiter<C>,
    transactions: Limiter<C>,
    consensus: Limiter<C>,
    sync: Limiter<C>,
}

impl<C: Clock> std::fmt::Debug for PeerLimits<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerLimits")
    }
}

fn quota((per_second, burst): (u32, u32)) -> Quota {
    let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(rate);
    Quota::per_second(rate).allow_burst(burst)
}

impl PeerLimits<DefaultClock> {
    /// Limits on the real clock.
    pub fn new(config: &RateConfig) -> Self {
        PeerLimits::with_clock(config, &DefaultClock::default())
    }
}

impl<C: Clock + Clone> PeerLimits<C> {
    /// Limits on `clock` (a fake one in tests).
    pub fn with_clock(config: &RateConfig, clock: &C) -> Self {
        let limiter = |rate| RateLimiter::direct_with_clock(quota(rate), clock.clone());
        PeerLimits {
            control: limiter(config.control),
            transactions: limiter(config.transactions),
            consensus: limiter(config.consensus),
            sync: limiter(config.sync),
        }
    }

    /// Whether one more message of `class` is allowed now.
    pub fn allow(&self, class: MessageClass) -> bool {
        let limiter = match class {
            MessageClass::Control => &self.control,
            MessageClass::Transactions => &self.transactions,
            MessageClass::Consensus => &self.consensus,
            MessageClass::Sync => &self.sync,
        };
        limiter.check().is_ok()
    }
}

/// Things a peer can do wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offense {
    /// A frame that does not decode.
    Undecodable,
    /// A frame over the size limit.
    OversizeFrame,
    /// A message over its class's rate.
    RateExceeded,
    /// A transaction that breaks a chain rule.
    InvalidTransaction,
    /// A block, proposal or certificate that does not verify.
    InvalidBlock,
    /// A reply nobody asked for.
    Unsolicited,
    /// A vote, proposal or evidence of a masternode whose signature does not verify (honest
    /// nodes pass on only what they verified).
    InvalidSignature,
    /// A consensus message for another network, or for the receiver's own height signed by
    /// no member of that height's set (which every honest node knows alike).
    ForeignSigner,
}

impl Offense {
    /// Points the offense costs; at [`BAN_THRESHOLD`] the peer is banned.
    pub fn penalty(self) -> u32 {
        match self {
            Offense::Undecodable | Offense::OversizeFrame | Offense::InvalidBlock | Offense::InvalidSignature => {
                BAN_THRESHOLD
            }
            Offense::RateExceeded => 5,
            Offense::InvalidTransaction | Offense::ForeignSigner => 10,
            Offense::Unsolicited => 20,
        }
    }
}

/// The score at which a peer is disconnected and banned.
pub const BAN_THRESHOLD: u32 = 100;

/// A peer's accumulated misbehaviour, shared by the task reading from it (protocol
/// offenses) and the peer manager (offenses the node finds in what it sent).
#[derive(Debug, Default)]
pub struct Misbehaviour {
    score: AtomicU32,
}

impl Misbehaviour {
    /// Adds an offense; returns whether the peer must now be banned.
    pub fn record(&self, offense: Offense) -> bool {
        let before = self.score.fetch_add(offense.penalty(), Ordering::Relaxed);
        before.saturating_add(offense.penalty()) >= BAN_THRESHOLD
    }

    /// The current score.
    pub fn score(&self) -> u32 {
        self.score.load(Ordering::Relaxed)
    }
}

/// Banned node identities (or, with another key type, addresses) with their expiry, bounded
/// in size.
#[derive(Debug, Clone)]
pub struct BanList<K = PublicKey> {
    until: HashMap<K, Instant>,
    capacity: usize,
}

impl<K: Copy + Eq + std::hash::Hash> BanList<K> {
    /// An empty list holding at most `capacity` bans (the soonest to expire go first).
    pub fn new(capacity: usize) -> BanList<K> {
        BanList {
            until: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Bans `peer` for `duration` from `now` (extending an existing ban, never shortening it).
    pub fn ban(&mut self, peer: K, now: Instant, duration: Duration) {
        let expiry = now + duration;
        self.prune(now);
        if !self.until.contains_key(&peer)
            && self.until.len() >= self.capacity
            && let Some(soonest) = self.until.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k)
        {
            self.until.remove(&soonest);
        }
        let slot = self.until.entry(peer).or_insert(expiry);
        *slot = (*slot).max(expiry);
    }

    /// Whether `peer` is banned at `now`.
    pub fn is_banned(&self, peer: &K, now: Instant) -> bool {
        self.until.get(peer).is_some_and(|t| *t > now)
    }

    /// Lifts `peer`'s ban; returns whether there was one in force.
    pub fn unban(&mut self, peer: &K, now: Instant) -> bool {
        self.until.remove(peer).is_some_and(|t| t > now)
    }

    /// The bans in force at `now`, with the time left.
    pub fn entries(&self, now: Instant) -> Vec<(K, Duration)> {
        self.until
            .iter()
            .filter(|(_, t)| **t > now)
            .map(|(peer, t)| (*peer, t.duration_since(now)))
            .collect()
    }

    /// Forgets expired bans.
    pub fn prune(&mut self, now: Instant) {
        self.until.retain(|_, t| *t > now);
    }

    /// Number of bans held.
    pub fn len(&self) -> usize {
        self.until.len()
    }

    /// Whether no ban is held.
    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn each_class_has_its_own_budget_that_refills() {
        let clock = FakeRelativeClock::default();
        let config = RateConfig {
            control: (1, 3),
            transactions: (10, 10),
            consensus: (1, 1),
            sync: (1, 1),
        };
        let limits = PeerLimits::with_clock(&config, &clock);
        assert!((0..3).all(|_| limits.allow(MessageClass::Control)));
        assert!(!limits.allow(MessageClass::Control));
        // Another class is unaffected.
        assert!((0..10).all(|_| limits.allow(MessageClass::Transactions)));
        assert!(!limits.allow(MessageClass::Transactions));
        clock.advance(Duration::from_secs(1));
        assert!(limits.allow(MessageClass::Control));
        assert!(!limits.allow(MessageClass::Control));
    }

    #[test]
    fn offenses_add_up_to_a_ban() {
        let peer = Misbehaviour::default();
        for _ in 0..19 {
            assert!(!peer.record(Offense::RateExceeded));
        }
        assert!(peer.record(Offense::RateExceeded));
        let garbage = Misbehaviour::default();
        assert!(garbage.record(Offense::Undecodable));
    }

    #[test]
    fn bans_expire_extend_and_stay_bounded() {
        let now = Instant::now();
        let mut bans = BanList::new(2);
        let (a, b, c) = (PublicKey([1; 32]), PublicKey([2; 32]), PublicKey([3; 32]));
        bans.ban(a, now, Duration::from_secs(10));
        assert!(bans.is_banned(&a, now + Duration::from_secs(9)));
        assert!(!bans.is_banned(&a, now + Duration::from_secs(10)));
        bans.ban(a, now, Duration::from_secs(1));
        assert!(
            bans.is_banned(&a, now + Duration::from_secs(5)),
            "a shorter ban does not shorten"
        );
        bans.ban(b, now, Duration::from_secs(20));
        bans.ban(c, now, Duration::from_secs(30));
        assert_eq!(bans.len(), 2);
        assert!(!bans.is_banned(&a, now), "the soonest-expiring ban made room");
        bans.prune(now + Duration::from_secs(25));
        assert_eq!(bans.len(), 1);
    }
}
