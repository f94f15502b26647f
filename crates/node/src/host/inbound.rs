//! What peers send the host: proposals and votes (admitted by membership before any
//! signature is checked), later heights' claims (the f+1 rule), late precommits, evidence,
//! transaction announcements and sync answers. Votes and proposals are passed on by the
//! overlay's rule (`gossip`).

use std::collections::HashSet;
use std::time::Instant;

use anyhow::{Result, anyhow};
use timecoin_chain::check_equivocation;
use timecoin_consensus::{Arrival, Input, ProposalAdmission, ValidatorSet};
use timecoin_network::{Message, NetworkEvent, Offense};
use timecoin_primitives::{BlockHash, Equivocation, PublicKey, SignedVote, Transaction};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::serve::Request;

use super::{Host, Internal, MAX_FUTURE_ROUNDS, State};

/// Most equivocations remembered; older heights are forgotten first.
pub(super) const MAX_EVIDENCE: usize = 10_000;

/// Most equivocations waiting for a block; more are dropped (each masternode needs one).
pub(super) const MAX_PENDING_EVIDENCE: usize = 256;

/// Keeps `evidence` for the next block this node proposes.
pub(super) fn queue_evidence(state: &mut State, evidence: Equivocation) {
    let offender = evidence.validator();
    if state.pending_evidence.len() < MAX_PENDING_EVIDENCE
        && !state.pending_evidence.iter().any(|e| e.validator() == offender)
    {
        state.pending_evidence.push(evidence);
    }
}

/// Records `evidence`; returns whether it is new (and so worth passing on).
pub(super) fn remember_evidence(state: &mut State, evidence: &timecoin_primitives::Equivocation) -> bool {
    if state.evidence.len() >= MAX_EVIDENCE {
        let floor = state.height.saturating_sub(100);
        state.evidence.retain(|(_, height)| *height >= floor);
        if state.evidence.len() >= MAX_EVIDENCE {
            state.evidence.clear();
        }
    }
    state.evidence.insert((evidence.validator(), evidence.height()))
}

impl Host {
    /// Notes that `peer` sent a message for `height` and `round`: in this node's round, it
    /// needs no more proposals; at the height this node just decided but in a later round
    /// than the decision's (so it lacks precommits), a masternode gets the block (once).
    pub(super) async fn heard_from(&self, state: &mut State, peer: PublicKey, height: u64, round: u32) {
        if state.connected.contains(&peer) {
            let heard = state.peer_heights.entry(peer).or_insert(height);
            *heard = (*heard).max(height);
        }
        if height == state.height && round == state.engine.round() {
            if state.heard.0 != round {
                state.heard = (round, HashSet::new());
            }
            state.heard.1.insert(peer);
        } else if height.checked_add(1) == Some(state.height)
            // Pushed only to a masternode (its identity is its operator key, proven in the
            // handshake): a stranger claiming to be one height behind cannot make this node
            // upload a block per identity it makes up; it asks with `GetBlocks` like any
            // peer.
            && (state.previous_validators.power(&peer) > 0 || state.validators.power(&peer) > 0)
            && let Some(last) = &state.last
            // Still in the deciding round it is about to decide too (its precommit is late,
            // not lost); one that moved to a later round lacks precommits.
            && round > last.1.round
            && state.caught_up.insert(peer)
        {
            metrics::counter!("timecoin_blocks_pushed_total", "to" => "one behind").increment(1);
            self.network.send(peer, &Message::Blocks(vec![last.clone()])).await;
        }
    }

    pub(super) async fn on_network(
        &self,
        state: &mut State,
        event: NetworkEvent,
        internal: &mpsc::Sender<Internal>,
    ) -> Result<()> {
        match event {
            NetworkEvent::Connected {
                peer,
                hello,
                address,
                outbound,
            } => {
                debug!(%peer, %address, outbound, best_height = hello.best_height, masternode = hello.masternode, "peer connected");
                state.connected.insert(peer);
                state.sync.peer_has(peer, hello.best_height);
                state.sync.peer_serves_from(peer, hello.lowest_height);
                self.request_blocks(state).await;
            }
            NetworkEvent::Message { peer, message } => self.on_message(state, peer, message, internal).await?,
            NetworkEvent::Disconnected { peer, reason } => {
                debug!(%peer, %reason, "peer disconnected");
                state.connected.remove(&peer);
                state.gossip.forget(&peer);
                state.peer_heights.remove(&peer);
                state.early.forget(&peer);
                state.sync.disconnected(&peer);
            }
            NetworkEvent::Refused {
                address,
                reason,
                banned,
            } => {
                if banned {
                    warn!(%address, %reason, "peer refused and banned");
                } else {
                    debug!(%address, %reason, "connection failed");
                }
            }
        }
        Ok(())
    }

    /// `validator` signed a message for `height`, above this node's, and `peer` relayed it:
    /// the peer is asked for the blocks it likely has, and the signer counts towards the f+1
    /// rule ([`State::is_behind`]); one signer alone never stops this node.
    pub(super) async fn saw_height(&self, state: &mut State, peer: PublicKey, validator: PublicKey, height: u64) {
        state.sync.peer_has(peer, height.saturating_sub(1));
        let now = state.now_ms();
        state
            .ahead
            .observe(validator, height, state.height, &state.validators, now);
        self.request_blocks(state).await;
    }

    /// A precommit for the block decided last, arriving after the decision, joins its
    /// certificate (if it can, from a member of the set that decided it, with a valid
    /// signature): the next block this node proposes credits its signer's service.
    pub(super) async fn late_precommit(&self, state: &mut State, peer: PublicKey, vote: SignedVote) {
        let chain = self.genesis.hash();
        let wanted = state
            .last
            .as_ref()
            .is_some_and(|(_, certificate)| certificate.wants_precommit(&chain, &vote.vote, &vote.validator));
        if !wanted
            || !self
                .admit_signed(
                    &state.previous_validators,
                    peer,
                    (chain, &vote.validator),
                    false,
                    || vote.verify().is_ok(),
                )
                .await
        {
            return;
        }
        if let Some((_, certificate)) = &mut state.last {
            certificate.add_late_precommit(&chain, &vote.vote, vote.validator, vote.signature);
        }
    }

    /// Whether a consensus message is worth acting on: it names this network, its signer is a
    /// validator of `validators` (checked first, so a stranger's message costs no
    /// signature check), and its signature verifies. What honest nodes never pass on is
    /// `peer`'s offense: a bad signature, another network's tag, and — when `members_only`
    /// (a message for this node's own height, whose set every honest node knows) — a signer
    /// outside the set.
    pub(super) async fn admit_signed(
        &self,
        validators: &ValidatorSet,
        peer: PublicKey,
        (chain, signer): (BlockHash, &PublicKey),
        members_only: bool,
        verify: impl FnOnce() -> bool,
    ) -> bool {
        let member = validators.power(signer) > 0;
        if chain != self.genesis.hash() || (members_only && !member) {
            metrics::counter!("timecoin_foreign_consensus_messages_total").increment(1);
            self.network.report(peer, Offense::ForeignSigner).await;
            return false;
        }
        if !member {
            return false;
        }
        if verify() {
            return true;
        }
        metrics::counter!("timecoin_invalid_signatures_total").increment(1);
        self.network.report(peer, Offense::InvalidSignature).await;
        false
    }

    pub(super) async fn on_message(
        &self,
        state: &mut State,
        peer: PublicKey,
        message: Message,
        internal: &mpsc::Sender<Internal>,
    ) -> Result<()> {
        match message {
            Message::Proposal(boxed) => {
                let (proposal, block) = *boxed;
                let height = proposal.proposal.height;
                if height.checked_add(1) == Some(state.height) {
                    self.heard_from(state, peer, height, proposal.proposal.round).await;
                }
                if height > state.height {
                    let (chain, signer) = (proposal.proposal.chain, proposal.proposer);
                    if self
                        .admit_signed(&state.validators, peer, (chain, &signer), false, || {
                            proposal.verify().is_ok()
                        })
                        .await
                    {
                        if height == state.height + 1 {
                            // Signed by a masternode: held for when the height starts.
                            state.early.proposal(height, peer, Box::new((proposal, block)));
                        }
                        self.saw_height(state, peer, signer, height).await;
                    }
                    return Ok(());
                }
                // Only the round's proposer may make this node validate a block, and only one
                // a round (`ProposalGate`, pure and tested alone).
                let round = proposal.proposal.round;
                let arrival = Arrival {
                    proposal: &proposal,
                    block_hash: block.hash(),
                    block_proposer: block.header.proposer,
                };
                let window = (state.engine.round(), MAX_FUTURE_ROUNDS);
                if state.gate.consider(&state.validators, state.height, window, arrival) == ProposalAdmission::Dropped {
                    debug!(%peer, height, round, "proposal dropped by the gate");
                    return Ok(());
                }
                let (chain, signer) = (proposal.proposal.chain, proposal.proposer);
                if !self
                    .admit_signed(&state.validators, peer, (chain, &signer), true, || {
                        proposal.verify().is_ok()
                    })
                    .await
                {
                    return Ok(());
                }
                // The header commits to every byte of the body, signatures included: a relay
                // that altered the body cannot take the honest body's place for this hash.
                // A copy of a body already held must be that body (cheaper to compare than to
                // hash); a new one must match its header.
                let altered = match state.blocks.get(&block.hash()) {
                    Some(held) => *held != block,
                    None => !block.matches_header(),
                };
                if altered {
                    warn!(%peer, height, round, "peer relayed a proposal whose body does not match its header");
                    self.network.report(peer, Offense::InvalidBlock).await;
                    return Ok(());
                }
                state.gate.record(round, block.hash());
                if state.is_behind() {
                    return Ok(());
                }
                if !state.started {
                    // A peer started this height: follow it.
                    self.start_height(state, internal).await?;
                }
                if let std::collections::hash_map::Entry::Vacant(slot) = state.blocks.entry(block.hash()) {
                    slot.insert(block.clone());
                    // A new proposal from its proposer goes on by the overlay's rule, once.
                    if let Some(own) = self.key.as_ref().map(|k| k.public_key()) {
                        let targets: Vec<PublicKey> = state
                            .connected
                            .iter()
                            .filter(|p| state.overlay.relays_to(&own, &signer, &peer, p))
                            .copied()
                            .collect();
                        let message = Message::Proposal(Box::new((proposal, block.clone())));
                        self.network.send_each(targets, &message).await;
                    }
                    self.validate(state, block, internal);
                }
                self.feed(state, Input::Proposal(proposal), internal).await?;
            }
            Message::Vote(vote) => {
                self.heard_from(state, peer, vote.vote.height, vote.vote.round).await;
                if vote.vote.height.checked_add(1) == Some(state.height) {
                    self.late_precommit(state, peer, vote).await;
                    return Ok(());
                }
                // Rounds past the window are dropped before any signature is checked, and so
                // is a later height's vote whose signer's claim was refreshed within the last
                // second (a replayed vote costs at most one check a signer and second).
                let in_window = vote.vote.round <= state.engine.round().saturating_add(MAX_FUTURE_ROUNDS);
                let current = vote.vote.height == state.height && !state.is_behind() && in_window;
                if vote.vote.height == state.height + 1 && in_window && state.validators.power(&vote.validator) > 0 {
                    // Held for the next height, within its signer's share.
                    state.early.vote(vote.vote.height, peer, vote);
                }
                let future = vote.vote.height > state.height
                    && !state
                        .ahead
                        .refreshed_within(&vote.validator, vote.vote.height, state.now_ms(), 1_000);
                if !current && !future {
                    return Ok(());
                }
                // A copy of a vote verified already costs no signature check; the verified
                // copy (never this one, whose signature was not checked) may still be passed
                // on, when this copy came from its signer and it was not passed on yet.
                if current && let Some(verified) = state.gossip.verified(state.height, &vote) {
                    state.gossip.record(state.height, &verified, Some(peer));
                    self.relay_vote(state, peer, &verified).await;
                    return Ok(());
                }
                if !self
                    .admit_signed(
                        &state.validators,
                        peer,
                        (vote.vote.chain, &vote.validator),
                        current,
                        || vote.verify().is_ok(),
                    )
                    .await
                {
                    return Ok(());
                }
                if future {
                    self.saw_height(state, peer, vote.validator, vote.vote.height).await;
                    return Ok(());
                }
                if !state.started {
                    self.start_height(state, internal).await?;
                }
                state.gossip.record(state.height, &vote, Some(peer));
                self.relay_vote(state, peer, &vote).await;
                self.feed(state, Input::Vote(vote), internal).await?;
            }
            // Served by a task of its own: the consensus loop never waits on a disk read
            // for a peer.
            Message::GetBlocks { from, count } => self.requests.submit(peer, Request::Blocks { from, count }),
            Message::Blocks(blocks) => {
                state.sync.received(peer, state.height, blocks);
                self.apply_synced(state).await?;
            }
            Message::Inventory(ids) => {
                let wanted = {
                    let mempool = self.mempool.lock().map_err(|_| anyhow!("mempool lock poisoned"))?;
                    state
                        .relay
                        .announced(peer, ids, |id| mempool.contains(id), Instant::now())
                };
                if !wanted.is_empty() {
                    self.network.send(peer, &Message::GetTransactions(wanted)).await;
                }
            }
            Message::GetTransactions(ids) => self.requests.submit(peer, Request::Transactions(ids)),
            Message::Transactions(txs) => {
                state
                    .relay
                    .received(txs.iter().map(Transaction::txid).collect::<Vec<_>>());
                // Admitted apart from this loop; what is admitted comes back to be announced
                // on (only what was new here, so each body crosses each link once).
                self.admission.relayed(peer, txs);
            }
            Message::Evidence(evidence) => {
                // Passed on once, and only if a block at the next height could record it (the
                // network, the age window, the key held at the offence, not banned yet, the
                // signatures): evidence no block would take could otherwise squat the
                // offender's slot in the queue while its real offence went unrecorded.
                if state.evidence.contains(&(evidence.validator(), evidence.height())) {
                    return Ok(());
                }
                let genesis_hash = self.genesis.hash();
                if evidence.votes().0.vote.chain != genesis_hash {
                    self.network.report(peer, Offense::ForeignSigner).await;
                    return Ok(());
                }
                // The check verifies the signatures last, after the cheap rules; refused
                // evidence costs nothing more (verifying it again to tell a forgery from
                // stale evidence would let a replayed pair of a stranger's votes cost two
                // checks each on this loop).
                if check_equivocation(&evidence, state.height, genesis_hash, &self.genesis.params, &state.list).is_err()
                {
                    return Ok(());
                }
                warn!(%peer, masternode = %evidence.validator(), height = evidence.height(), "equivocation evidence received");
                remember_evidence(state, &evidence);
                queue_evidence(state, *evidence);
                self.network.broadcast(&Message::Evidence(evidence)).await;
            }
            _ => {}
        }
        Ok(())
    }
}
