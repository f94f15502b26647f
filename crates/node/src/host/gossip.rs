//! Who holds which vote of this node's height, so that each vote crosses each link once: a
//! copy already held is not verified again, a vote is passed on (by the overlay's rule) only
//! to peers not known to hold it, and the once-a-second repair sends a stalled round's votes
//! only to peers not known to hold them.

use std::collections::{HashMap, HashSet};

use timecoin_network::{Message, NetworkEvent};
use timecoin_primitives::{Block, BlockHash, PublicKey, SignedProposal, SignedVote, VoteKind};

use super::{Host, State};

/// A vote by what it says (two signatures over the same vote are the same vote).
type VoteId = (PublicKey, u32, VoteKind, Option<BlockHash>);

fn id(vote: &SignedVote) -> VoteId {
    (vote.validator, vote.vote.round, vote.vote.kind, vote.vote.block)
}

/// Votes of one height: those verified here, and those each peer is known to hold (it sent
/// them, or was sent them). Everything is dropped when the height moves and a peer's record
/// when it disconnects; only verified votes are recorded, so a peer cannot grow it with
/// votes of its own making.
#[derive(Default)]
pub(super) struct VoteGossip {
    height: u64,
    /// Each verified vote as it was verified: a copy that says the same with another
    /// signature (or network tag) is never passed on in its place.
    verified: HashMap<VoteId, SignedVote>,
    known: HashMap<PublicKey, HashSet<VoteId>>,
    /// The height and round the last repair tick saw, and for how many ticks in a row.
    last_tick: (u64, u32),
    still: u32,
}

/// Ticks a round must stand still before its votes are sent again: a round that is merely
/// slow (a busy machine, a long link) is no reason to re-send every vote.
const REPAIR_AFTER_TICKS: u32 = 3;

impl VoteGossip {
    fn at(&mut self, height: u64) -> &mut Self {
        if self.height != height {
            self.height = height;
            self.verified.clear();
            self.known.clear();
        }
        self
    }

    /// The copy of `vote` (of `height`) verified here already, if any.
    pub(super) fn verified(&mut self, height: u64, vote: &SignedVote) -> Option<SignedVote> {
        self.at(height).verified.get(&id(vote)).copied()
    }

    /// `vote` (of `height`) verified, or cast here; `from` holds it.
    pub(super) fn record(&mut self, height: u64, vote: &SignedVote, from: Option<PublicKey>) {
        let key = id(vote);
        let this = self.at(height);
        this.verified.entry(key).or_insert(*vote);
        if let Some(peer) = from {
            this.known.entry(peer).or_default().insert(key);
        }
    }

    /// The peers of `peers` not known to hold `vote` (of `height`), now counted as holding it
    /// (they are about to be sent it).
    pub(super) fn take_lacking(
        &mut self,
        height: u64,
        vote: &SignedVote,
        peers: impl IntoIterator<Item = PublicKey>,
    ) -> Vec<PublicKey> {
        let vote = id(vote);
        let this = self.at(height);
        peers
            .into_iter()
            .filter(|peer| this.known.entry(*peer).or_default().insert(vote))
            .collect()
    }

    /// `peer` disconnected: what it held is forgotten (it may reconnect without it).
    pub(super) fn forget(&mut self, peer: &PublicKey) {
        self.known.remove(peer);
    }

    /// Whether the round at `height` has stood still for [`REPAIR_AFTER_TICKS`] ticks (and
    /// notes this tick): a round that moves needs no repair, and re-sending it would cost
    /// every vote on every link.
    fn stalled(&mut self, height: u64, round: u32) -> bool {
        if self.last_tick == (height, round) {
            self.still = self.still.saturating_add(1);
        } else {
            self.last_tick = (height, round);
            self.still = 0;
        }
        self.still >= REPAIR_AFTER_TICKS
    }
}

/// Proposals held for the next height, from all peers together.
const EARLY_PROPOSALS: usize = 3;

/// Votes held for the next height per signer, from all peers together (a prevote and a
/// precommit in each of two rounds).
const EARLY_VOTES_PER_SIGNER: usize = 4;

/// Proposals and votes of the next height that came before this node finished its own, held
/// and handled as if they came again once the height starts: without them a node that
/// decides a moment after the others would drop the next proposal and wait out a timeout.
/// Proposals are held once their signature verified (one a peer, three in all). Votes are
/// held unverified, only from members of the current set and at most
/// [`EARLY_VOTES_PER_SIGNER`] a signer whoever relays them, so what the replay can cost in
/// signature checks is bounded by the set, not by the peers; a forged one costs its sender a
/// misbehaviour report when it is handled, as it would have on arrival.
#[derive(Default)]
pub(super) struct Early {
    height: u64,
    votes: HashMap<PublicKey, Vec<(PublicKey, SignedVote)>>,
    proposals: Vec<(PublicKey, Box<(SignedProposal, Block)>)>,
}

impl Early {
    fn at(&mut self, height: u64) -> &mut Self {
        if self.height != height {
            self.height = height;
            self.votes.clear();
            self.proposals.clear();
        }
        self
    }

    /// Holds `vote` of `height` from `peer` (its signer a member of the current set), unless
    /// its signer's share is full or the same vote is held.
    pub(super) fn vote(&mut self, height: u64, peer: PublicKey, vote: SignedVote) {
        let held = self.at(height).votes.entry(vote.validator).or_default();
        if held.len() < EARLY_VOTES_PER_SIGNER && !held.iter().any(|(_, v)| id(v) == id(&vote)) {
            held.push((peer, vote));
        }
    }

    /// Holds a proposal of `height` from `peer` (one a peer, a few in all).
    pub(super) fn proposal(&mut self, height: u64, peer: PublicKey, proposal: Box<(SignedProposal, Block)>) {
        let this = self.at(height);
        if this.proposals.len() < EARLY_PROPOSALS && !this.proposals.iter().any(|(p, _)| *p == peer) {
            this.proposals.push((peer, proposal));
        }
    }

    /// What was held for `height`, as the messages they came in (proposals first).
    pub(super) fn take(&mut self, height: u64) -> Vec<NetworkEvent> {
        if self.height != height {
            return Vec::new();
        }
        let mut events: Vec<NetworkEvent> = std::mem::take(&mut self.proposals)
            .into_iter()
            .map(|(peer, proposal)| NetworkEvent::Message {
                peer,
                message: Message::Proposal(proposal),
            })
            .collect();
        for (peer, vote) in std::mem::take(&mut self.votes).into_values().flatten() {
            events.push(NetworkEvent::Message {
                peer,
                message: Message::Vote(vote),
            });
        }
        events
    }

    /// `peer` disconnected: what it brought is dropped.
    pub(super) fn forget(&mut self, peer: &PublicKey) {
        for held in self.votes.values_mut() {
            held.retain(|(p, _)| p != peer);
        }
        self.proposals.retain(|(p, _)| p != peer);
    }
}

impl Host {
    /// `vote`, verified (or a copy of one verified) and fed to the engine, came from `peer`:
    /// it goes on to this node's peers the overlay says it relays to, and that do not hold it.
    pub(super) async fn relay_vote(&self, state: &mut State, peer: PublicKey, vote: &SignedVote) {
        let Some(own) = self.key.as_ref().map(|k| k.public_key()) else {
            return;
        };
        let targets: Vec<PublicKey> = state
            .connected
            .iter()
            .filter(|p| state.overlay.relays_to(&own, &vote.validator, &peer, p))
            .copied()
            .collect();
        let lacking = state.gossip.take_lacking(state.height, vote, targets);
        if !lacking.is_empty() {
            metrics::counter!("timecoin_votes_relayed_total").increment(lacking.len() as u64);
            self.network.send_each(lacking, &Message::Vote(*vote)).await;
        }
    }

    /// Every second: mempool gauges, and — only when the round has stood still for a few
    /// ticks — the engine's messages again for this node's overlay links that may lack them:
    /// each vote to the links not known to hold it, the round's proposal (with its block) only
    /// to links not heard from in this round. A link that gets a vote this way passes it on
    /// no further; the signer's other links repair theirs.
    pub(super) async fn gossip(&self, state: &mut State) {
        if let Ok(mempool) = self.mempool.lock() {
            metrics::gauge!("timecoin_mempool_transactions").set(mempool.len() as f64);
            metrics::gauge!("timecoin_mempool_bytes").set(mempool.total_size() as f64);
            metrics::gauge!("timecoin_mempool_usage_bytes").set(mempool.usage() as f64);
        }
        if !state.gossip.stalled(state.height, state.engine.round()) {
            return;
        }
        let Some(own) = self.key.as_ref().map(|k| k.public_key()) else {
            return;
        };
        let links: Vec<PublicKey> = state
            .connected
            .iter()
            .filter(|peer| state.overlay.linked(&own, peer))
            .copied()
            .collect();
        let (proposals, votes) = state.engine.messages_to_gossip();
        let (heard_round, heard) = &state.heard;
        let silent: Vec<PublicKey> = links
            .iter()
            .filter(|peer| *heard_round != state.engine.round() || !heard.contains(*peer))
            .copied()
            .collect();
        for proposal in proposals.into_iter().filter(|_| !silent.is_empty()) {
            if let Some(block) = state.blocks.get(&proposal.proposal.block) {
                let message = Message::Proposal(Box::new((proposal, block.clone())));
                self.network.send_each(silent.iter().copied(), &message).await;
            }
        }
        for vote in votes {
            let lacking = state.gossip.take_lacking(state.height, &vote, links.iter().copied());
            if !lacking.is_empty() {
                metrics::counter!("timecoin_votes_regossiped_total").increment(lacking.len() as u64);
                self.network.send_each(lacking, &Message::Vote(vote)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use timecoin_primitives::{Hash256, SecretKey, Vote};

    use super::*;

    fn vote(signer: u8, height: u64, round: u32) -> SignedVote {
        let vote = Vote {
            chain: BlockHash(Hash256([1; 32])),
            height,
            round,
            kind: VoteKind::Prevote,
            block: Some(BlockHash(Hash256([2; 32]))),
        };
        SignedVote::sign(vote, &SecretKey::from_seed([signer; 32]))
    }

    fn peer(n: u8) -> PublicKey {
        SecretKey::from_seed([100 + n; 32]).public_key()
    }

    #[test]
    fn each_vote_goes_to_each_peer_once_and_a_new_height_starts_afresh() {
        let mut gossip = VoteGossip::default();
        let v = vote(1, 5, 0);
        assert_eq!(gossip.verified(5, &v), None);
        gossip.record(5, &v, Some(peer(0)));
        assert_eq!(gossip.verified(5, &v), Some(v));
        // A copy saying the same with a broken signature is answered with the verified one.
        let mut forged = v;
        forged.signature = SecretKey::from_seed([9; 32]).sign(b"something else");
        assert_eq!(gossip.verified(5, &forged), Some(v));
        // The sender holds it; the others are sent it once.
        let lacking = gossip.take_lacking(5, &v, [peer(0), peer(1), peer(2)]);
        assert_eq!(lacking, vec![peer(1), peer(2)]);
        assert!(gossip.take_lacking(5, &v, [peer(0), peer(1), peer(2)]).is_empty());
        // Another round's vote is another vote.
        assert_eq!(gossip.take_lacking(5, &vote(1, 5, 1), [peer(1)]), vec![peer(1)]);
        // A peer that reconnects is sent it again.
        gossip.forget(&peer(1));
        assert_eq!(gossip.take_lacking(5, &v, [peer(1)]), vec![peer(1)]);
        // The next height forgets the last.
        assert_eq!(gossip.verified(6, &v), None);
        assert_eq!(gossip.take_lacking(6, &v, [peer(0)]), vec![peer(0)]);
    }

    #[test]
    fn the_next_heights_votes_are_held_within_each_signers_share_and_handed_back_once() {
        let mut early = Early::default();
        // However many peers relay them, a signer's share is four votes.
        for round in 0..5 {
            early.vote(6, peer(round as u8), vote(1, 6, round));
        }
        early.vote(6, peer(0), vote(1, 6, 0));
        early.vote(6, peer(1), vote(2, 6, 0));
        // Another height's votes replace what was held.
        assert!(early.take(7).is_empty());
        let held = early.take(6);
        assert_eq!(held.len(), 5, "four of the first signer's, one of the second's");
        assert!(early.take(6).is_empty(), "handed back once");
        early.vote(8, peer(2), vote(3, 8, 0));
        early.forget(&peer(2));
        assert!(
            early.take(8).is_empty(),
            "a peer that left takes what it brought with it"
        );
    }

    #[test]
    fn only_a_round_that_stood_still_for_three_ticks_is_repaired() {
        let mut gossip = VoteGossip::default();
        let ticks = |gossip: &mut VoteGossip, height, round, n| {
            (0..n).map(|_| gossip.stalled(height, round)).collect::<Vec<_>>()
        };
        assert_eq!(ticks(&mut gossip, 3, 0, 5), [false, false, false, true, true]);
        assert_eq!(ticks(&mut gossip, 3, 1, 4), [false, false, false, true]);
        assert_eq!(ticks(&mut gossip, 4, 1, 2), [false, false]);
    }
}
