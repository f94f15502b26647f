//! Which masternodes link to which, and who passes a consensus message on: pure functions of
//! the masternode set, the same on every node.
//!
//! A set small enough for every masternode to link to every other (at most
//! `masternode_peers + 1` members) is a full mesh: each message goes straight from its
//! signer to everyone and nobody relays it. A larger set is laid out on a grid in key order,
//! `⌈√N⌉` columns wide; a masternode links to the others in its row and its column, about
//! `2(√N − 1)` links. Any two masternodes share a row or a column, or are joined through the
//! masternode at (their row, the other's column) or at (the other's row, their column): two
//! hops, by two disjoint paths when both exist. A message a masternode receives from its
//! signer is passed on to its own peers that are not the signer's links, so it reaches every
//! masternode in two hops and crosses each link about once.

use std::collections::HashMap;

use timecoin_primitives::PublicKey;

/// The links of a masternode set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overlay {
    /// Each member's place in key order.
    index: HashMap<PublicKey, usize>,
    /// Members in key order.
    members: Vec<PublicKey>,
    /// Grid width; `None` for a full mesh.
    columns: Option<usize>,
}

impl Overlay {
    /// The overlay of `members`: a full mesh when each can link to all the others within
    /// `max_links` links, a grid otherwise.
    pub fn new(members: impl IntoIterator<Item = PublicKey>, max_links: usize) -> Overlay {
        let mut members: Vec<PublicKey> = members.into_iter().collect();
        members.sort_unstable();
        members.dedup();
        let n = members.len();
        let columns = (n.saturating_sub(1) > max_links).then(|| ceil_sqrt(n));
        Overlay {
            index: members.iter().enumerate().map(|(i, key)| (*key, i)).collect(),
            members,
            columns,
        }
    }

    /// Members of the set.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Whether the overlay is a full mesh.
    pub fn is_full_mesh(&self) -> bool {
        self.columns.is_none()
    }

    /// Whether `key` is a member.
    pub fn contains(&self, key: &PublicKey) -> bool {
        self.index.contains_key(key)
    }

    /// Whether members `a` and `b` (two different ones) keep a link.
    pub fn linked(&self, a: &PublicKey, b: &PublicKey) -> bool {
        let (Some(&i), Some(&j)) = (self.index.get(a), self.index.get(b)) else {
            return false;
        };
        if i == j {
            return false;
        }
        match self.columns {
            None => true,
            Some(columns) => i / columns == j / columns || i % columns == j % columns,
        }
    }

    /// The members `own` keeps links to (none if it is not a member).
    pub fn links(&self, own: &PublicKey) -> Vec<PublicKey> {
        self.members.iter().filter(|m| self.linked(own, m)).copied().collect()
    }

    /// Whether `own`, holding a message signed by `signer` that came from `from`, passes it
    /// on to `peer`: only a copy that came straight from a signer `own` links to goes on, and
    /// only to `own`'s links that are not the signer's own links (nor the signer). A copy
    /// from a signer connected otherwise (an ordinary connection) is the signer's links' to
    /// pass on. A node outside the set relays nothing.
    pub fn relays_to(&self, own: &PublicKey, signer: &PublicKey, from: &PublicKey, peer: &PublicKey) -> bool {
        from == signer
            && peer != signer
            && self.linked(own, signer)
            && self.linked(own, peer)
            && !self.linked(signer, peer)
    }
}

/// The least `c` with `c * c >= n`.
fn ceil_sqrt(n: usize) -> usize {
    let mut c = (n as f64).sqrt() as usize;
    while c.saturating_mul(c) < n {
        c += 1;
    }
    while c > 1 && (c - 1).saturating_mul(c - 1) >= n {
        c -= 1;
    }
    c.max(1)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use timecoin_primitives::SecretKey;

    use super::*;

    fn keys(n: usize) -> Vec<PublicKey> {
        (0..n)
            .map(|i| {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
                SecretKey::from_seed(seed).public_key()
            })
            .collect()
    }

    /// Hops from `from` to every member over the overlay's links (breadth first).
    fn hops(overlay: &Overlay, members: &[PublicKey], from: &PublicKey) -> HashMap<PublicKey, usize> {
        let mut seen = HashMap::from([(*from, 0)]);
        let mut frontier = vec![*from];
        let mut depth = 0;
        while !frontier.is_empty() {
            depth += 1;
            let mut next = Vec::new();
            for node in &frontier {
                for peer in overlay.links(node) {
                    if let std::collections::hash_map::Entry::Vacant(slot) = seen.entry(peer) {
                        slot.insert(depth);
                        next.push(peer);
                    }
                }
            }
            frontier = next;
        }
        assert_eq!(seen.len(), members.len());
        seen
    }

    #[test]
    fn a_small_set_is_a_full_mesh() {
        let members = keys(33);
        let overlay = Overlay::new(members.clone(), 32);
        assert!(overlay.is_full_mesh());
        for m in &members {
            assert_eq!(overlay.links(m).len(), 32);
        }
        assert!(!Overlay::new(keys(34), 32).is_full_mesh());
    }

    #[test]
    fn every_member_is_within_two_hops_with_about_two_root_n_links() {
        for n in [34, 48, 49, 50, 64, 99, 100, 101, 250] {
            let members = keys(n);
            let overlay = Overlay::new(members.clone(), 32);
            let columns = ceil_sqrt(n);
            for m in &members {
                let links = overlay.links(m);
                assert!(links.len() <= 2 * (columns - 1), "n {n}: {} links", links.len());
                assert!(links.iter().all(|l| overlay.linked(l, m)), "links are symmetric");
                let far = hops(&overlay, &members, m).into_values().max().unwrap();
                assert!(far <= 2, "n {n}: a member {far} hops away");
            }
        }
    }

    #[test]
    fn relaying_from_the_signer_reaches_every_member_and_nobody_relays_twice() {
        for n in [10, 48, 100] {
            let members = keys(n);
            let overlay = Overlay::new(members.clone(), 8);
            for signer in &members {
                // The signer sends to its links; each that got it from the signer passes it on.
                let mut reached: HashSet<PublicKey> = overlay.links(signer).into_iter().collect();
                let mut sent = reached.len();
                for first in overlay.links(signer) {
                    for peer in overlay.links(&first) {
                        if overlay.relays_to(&first, signer, signer, &peer) {
                            reached.insert(peer);
                            sent += 1;
                        }
                        // A copy from anyone but the signer goes no further.
                        assert!(!overlay.relays_to(&peer, signer, &first, &members[0]));
                    }
                }
                // A signer that is not a link (an ordinary connection) is not relayed for.
                for other in members.iter().filter(|m| *m != signer && !overlay.linked(signer, m)) {
                    for peer in overlay.links(other) {
                        assert!(!overlay.relays_to(other, signer, signer, &peer));
                    }
                }
                reached.insert(*signer);
                assert_eq!(reached.len(), n, "n {n}: not every member reached");
                // Each member gets about two copies, never more than the signer's links.
                assert!(sent <= 2 * n, "n {n}: {sent} copies");
            }
        }
    }

    #[test]
    fn a_stranger_has_no_links_and_relays_nothing() {
        let members = keys(40);
        let overlay = Overlay::new(members.clone(), 32);
        let stranger = keys(41)[40];
        assert!(overlay.links(&stranger).is_empty());
        assert!(!overlay.relays_to(&stranger, &members[1], &members[1], &members[0]));
    }

    #[test]
    fn square_roots_round_up() {
        for (n, c) in [
            (0, 1),
            (1, 1),
            (2, 2),
            (4, 2),
            (5, 3),
            (48, 7),
            (49, 7),
            (50, 8),
            (1000, 32),
        ] {
            assert_eq!(ceil_sqrt(n), c, "n {n}");
        }
    }
}
