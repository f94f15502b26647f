//! The address book: peer addresses this node has heard of, with what it learned dialling
//! them, bounded in size and kept in a text file between runs.
//!
//! An address comes from the configuration, from a connected peer's own listening address,
//! or from another peer's `Peers` / `Masternodes` answer. Nothing in it is trusted: dialling
//! an address proves who is there, and an address that keeps failing is dropped.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use timecoin_primitives::PublicKey;

/// Failed dials after which an address never reached is forgotten.
const FORGET_AFTER_FAILURES: u32 = 5;

/// Longest wait before an address that keeps failing is dialled again.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
struct Entry {
    /// The identity last proven (or claimed, for masternodes) at this address.
    identity: Option<PublicKey>,
    /// Whether a dial ever succeeded.
    reached: bool,
    /// Failed dials since the last success.
    failures: u32,
    /// Not dialled before this.
    retry_at: Option<Instant>,
    /// Insertion order, to evict the oldest unreached entry first.
    order: u64,
}

/// Known peer addresses.
#[derive(Debug, Clone)]
pub struct AddressBook {
    entries: HashMap<SocketAddr, Entry>,
    capacity: usize,
    next_order: u64,
}

impl AddressBook {
    /// An empty book holding at most `capacity` addresses.
    pub fn new(capacity: usize) -> AddressBook {
        AddressBook {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            next_order: 0,
        }
    }

    /// Number of addresses held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the book is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `address` could be a peer's: a concrete IP and a non-zero port.
    pub fn is_dialable(address: &SocketAddr) -> bool {
        address.port() != 0 && !address.ip().is_unspecified() && !address.ip().is_multicast()
    }

    /// Adds an address heard of (no-op when known or not dialable). When the book is full,
    /// the oldest address never reached makes room; if every address was reached, the new
    /// one is dropped.
    pub fn add(&mut self, address: SocketAddr) -> bool {
        if !Self::is_dialable(&address) || self.entries.contains_key(&address) {
            return false;
        }
        if self.entries.len() >= self.capacity {
            let oldest_unreached = self
                .entries
                .iter()
                .filter(|(_, entry)| !entry.reached)
                .min_by_key(|(_, entry)| entry.order)
                .map(|(address, _)| *address);
            match oldest_unreached {
                Some(victim) => {
                    self.entries.remove(&victim);
                }
                None => return false,
            }
        }
        self.next_order += 1;
        self.entries.insert(
            address,
            Entry {
                identity: None,
                reached: false,
                failures: 0,
                retry_at: None,
                order: self.next_order,
            },
        );
        true
    }

    /// Records that `identity` is said to be at `address` (a hint: dialling proves it).
    pub fn add_with_identity(&mut self, address: SocketAddr, identity: PublicKey) {
        self.add(address);
        if let Some(entry) = self.entries.get_mut(&address)
            && !entry.reached
        {
            entry.identity = Some(identity);
        }
    }

    /// Records a successful connection to `identity` at `address`.
    pub fn reached(&mut self, address: SocketAddr, identity: PublicKey) {
        self.add(address);
        // An identity lives at one address: an older address of it is stale.
        self.entries
            .retain(|a, entry| *a == address || entry.identity != Some(identity));
        if let Some(entry) = self.entries.get_mut(&address) {
            entry.identity = Some(identity);
            entry.reached = true;
            entry.failures = 0;
            entry.retry_at = None;
        }
    }

    /// Records a failed dial: the address waits longer each time, and one never reached is
    /// forgotten after a few failures.
    pub fn failed(&mut self, address: SocketAddr, now: Instant, base: Duration) {
        let Some(entry) = self.entries.get_mut(&address) else {
            return;
        };
        entry.failures = entry.failures.saturating_add(1);
        if !entry.reached && entry.failures >= FORGET_AFTER_FAILURES {
            self.entries.remove(&address);
            return;
        }
        let backoff = base.saturating_mul(1 << entry.failures.min(10)).min(MAX_BACKOFF);
        entry.retry_at = Some(now + backoff);
    }

    /// Forgets `address` (it turned out to be this node, or banned).
    pub fn remove(&mut self, address: &SocketAddr) {
        self.entries.remove(address);
    }

    /// Addresses that may be dialled at `now`, those reached before first.
    pub fn candidates(&self, now: Instant) -> Vec<SocketAddr> {
        let mut ready: Vec<(&SocketAddr, &Entry)> = self
            .entries
            .iter()
            .filter(|(_, entry)| entry.retry_at.is_none_or(|at| at <= now))
            .collect();
        ready.sort_by_key(|(_, entry)| (!entry.reached, entry.failures, entry.order));
        ready.into_iter().map(|(address, _)| *address).collect()
    }

    /// The address `identity` was last reached (or said to be) at.
    pub fn address_of(&self, identity: &PublicKey) -> Option<SocketAddr> {
        self.entries
            .iter()
            .filter(|(_, entry)| entry.identity.as_ref() == Some(identity))
            .max_by_key(|(_, entry)| entry.reached)
            .map(|(address, _)| *address)
    }

    /// Up to `max` addresses to share with a peer, those reached first.
    pub fn share(&self, max: usize) -> Vec<SocketAddr> {
        let mut all: Vec<(&SocketAddr, &Entry)> = self.entries.iter().collect();
        all.sort_by_key(|(_, entry)| (!entry.reached, entry.failures, entry.order));
        all.into_iter().take(max).map(|(address, _)| *address).collect()
    }

    /// The identities with known addresses (reached, or said by the peer itself or another),
    /// among `wanted`.
    pub fn located(&self, wanted: impl Fn(&PublicKey) -> bool, max: usize) -> Vec<(PublicKey, SocketAddr)> {
        let mut out: Vec<(PublicKey, SocketAddr)> = self
            .entries
            .iter()
            .filter_map(|(address, entry)| entry.identity.filter(|id| wanted(id)).map(|id| (id, *address)))
            .collect();
        out.sort();
        out.truncate(max);
        out
    }

    /// The book as text: one address a line, followed by the identity last reached there.
    pub fn to_text(&self) -> String {
        let mut entries: Vec<(&SocketAddr, &Entry)> = self.entries.iter().collect();
        entries.sort_by_key(|(_, entry)| entry.order);
        let mut text = String::from("# TimeCoin address book: address [identity of a node reached there]\n");
        for (address, entry) in entries {
            let _ = match entry.identity.filter(|_| entry.reached) {
                Some(identity) => writeln!(text, "{address} {identity}"),
                None => writeln!(text, "{address}"),
            };
        }
        text
    }

    /// Reads a book written by [`AddressBook::to_text`]; lines that do not parse are skipped
    /// and counted.
    pub fn from_text(text: &str, capacity: usize) -> (AddressBook, usize) {
        let mut book = AddressBook::new(capacity);
        let mut skipped = 0;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let address = fields.next().and_then(|a| a.parse::<SocketAddr>().ok());
            let identity = fields.next().map(str::parse::<PublicKey>);
            match (address, identity, fields.next()) {
                (Some(address), None, None) => {
                    book.add(address);
                }
                (Some(address), Some(Ok(identity)), None) => book.reached(address, identity),
                _ => skipped += 1,
            }
        }
        (book, skipped)
    }

    /// Loads the book from `path` (blocking); a missing file is an empty book.
    pub fn load(path: &Path, capacity: usize) -> std::io::Result<(AddressBook, usize)> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(AddressBook::from_text(&text, capacity)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok((AddressBook::new(capacity), 0)),
            Err(error) => Err(error),
        }
    }

    /// Writes the book to `path` (blocking), through a temporary file so that a crash leaves
    /// the old or the new book, never half of one.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, self.to_text())?;
        std::fs::rename(&temporary, path)
    }
}

/// How far an address reaches: what a peer may tell us of depends on where the peer itself
/// is, so a stranger on the internet cannot point this node at its own loopback or private
/// network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    /// Never dialled: unspecified, multicast, broadcast, documentation ranges.
    Unusable,
    /// This host only.
    Loopback,
    /// A private or link-local network.
    Private,
    /// The internet.
    Global,
}

fn scope(ip: IpAddr) -> Scope {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            let documentation = (a, b, c) == (192, 0, 2) || (a, b, c) == (198, 51, 100) || (a, b, c) == (203, 0, 113);
            if v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast() || documentation {
                Scope::Unusable
            } else if v4.is_loopback() {
                Scope::Loopback
            } else if v4.is_private() || v4.is_link_local() || (a == 100 && (64..128).contains(&b)) {
                Scope::Private
            } else {
                Scope::Global
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return scope(IpAddr::V4(v4));
            }
            let first = v6.segments().first().copied().unwrap_or(0);
            if v6.is_unspecified() || v6.is_multicast() || first == 0x2001 && v6.segments().get(1) == Some(&0x0db8) {
                Scope::Unusable
            } else if v6.is_loopback() {
                Scope::Loopback
            } else if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80 {
                Scope::Private
            } else {
                Scope::Global
            }
        }
    }
}

/// Whether an address a peer at `source` told us of is worth keeping: a usable address with
/// a port, reaching at least as far as the peer itself (a peer on the internet may name
/// internet addresses only; one on a private network, private or internet ones; one on
/// loopback, any).
pub fn learnable_from(address: &SocketAddr, source: IpAddr) -> bool {
    let reach = scope(address.ip());
    address.port() != 0 && reach != Scope::Unusable && reach >= scope(source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use timecoin_primitives::SecretKey;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn id(seed: u8) -> PublicKey {
        SecretKey::from_seed([seed; 32]).public_key()
    }

    #[test]
    fn full_book_replaces_the_oldest_unreached_address_and_keeps_reached_ones() {
        let mut book = AddressBook::new(3);
        book.add(addr(1));
        book.reached(addr(2), id(2));
        book.add(addr(3));
        assert!(book.add(addr(4)));
        assert_eq!(book.len(), 3);
        assert!(!book.candidates(Instant::now()).contains(&addr(1)));
        book.reached(addr(3), id(3));
        book.reached(addr(4), id(4));
        assert!(!book.add(addr(5)), "every entry was reached: the newcomer is dropped");
        assert!(
            !book.add(SocketAddr::from(([0, 0, 0, 0], 9))),
            "unspecified addresses are refused"
        );
    }

    #[test]
    fn failing_addresses_back_off_and_unreached_ones_are_forgotten() {
        let now = Instant::now();
        let mut book = AddressBook::new(10);
        book.add(addr(1));
        book.reached(addr(2), id(2));
        book.failed(addr(1), now, Duration::from_secs(1));
        book.failed(addr(2), now, Duration::from_secs(1));
        assert!(book.candidates(now).is_empty());
        assert_eq!(book.candidates(now + Duration::from_secs(3)).len(), 2);
        for _ in 0..FORGET_AFTER_FAILURES {
            book.failed(addr(1), now, Duration::from_secs(1));
            book.failed(addr(2), now, Duration::from_secs(1));
        }
        assert_eq!(book.len(), 1, "a reached address is kept");
        assert_eq!(book.address_of(&id(2)), Some(addr(2)));
    }

    #[test]
    fn an_identity_moves_with_its_latest_address() {
        let mut book = AddressBook::new(10);
        book.reached(addr(1), id(1));
        book.reached(addr(2), id(1));
        assert_eq!(book.address_of(&id(1)), Some(addr(2)));
        assert_eq!(book.len(), 1);
        assert_eq!(book.located(|_| true, 10), vec![(id(1), addr(2))]);
    }

    #[test]
    fn text_round_trips_and_bad_lines_are_skipped() {
        let mut book = AddressBook::new(10);
        book.add(addr(1));
        book.reached(addr(2), id(2));
        let mut text = book.to_text();
        text.push_str("not an address\n127.0.0.1:9 not-a-key\n");
        let (read, skipped) = AddressBook::from_text(&text, 10);
        assert_eq!(skipped, 2);
        assert_eq!(read.to_text(), book.to_text());
        assert_eq!(read.address_of(&id(2)), Some(addr(2)));
    }

    #[test]
    fn a_peer_may_name_only_addresses_that_reach_as_far_as_itself() {
        let at = |text: &str| -> SocketAddr { text.parse().unwrap() };
        let ip = |text: &str| -> IpAddr { text.parse().unwrap() };
        let internet = ip("8.8.8.8");
        assert!(learnable_from(&at("1.2.3.4:24000"), internet));
        for refused in [
            "127.0.0.1:24000",
            "10.0.0.5:24000",
            "192.168.1.2:24000",
            "0.0.0.0:24000",
            "1.2.3.4:0",
            "[::1]:24000",
            "[fe80::1]:24000",
            "224.0.0.1:24000",
            "192.0.2.7:24000",
        ] {
            assert!(!learnable_from(&at(refused), internet), "{refused} from the internet");
        }
        let lan = ip("10.1.2.3");
        assert!(learnable_from(&at("10.0.0.5:24000"), lan));
        assert!(learnable_from(&at("1.2.3.4:24000"), lan));
        assert!(!learnable_from(&at("127.0.0.1:24000"), lan));
        let local = ip("127.0.0.1");
        assert!(learnable_from(&at("127.0.0.1:24000"), local));
        assert!(learnable_from(&at("[::ffff:10.0.0.1]:24000"), local));
        assert!(!learnable_from(&at("[::ffff:0.0.0.0]:24000"), local));
    }
}
