use timecoin_consensus::{
    Effect, Engine, EngineConfig, Input, Step, Timeout, TimeoutConfig, TimeoutKind, Validator, ValidatorSet, WalEntry,
};
use timecoin_primitives::{
    AddressPayload, BlockHash, Hash256, Masternode, MasternodeSet, SecretKey, SignedProposal, SignedVote, Tier, Vote,
    VoteKind,
};

const CHAIN: BlockHash = BlockHash(Hash256([9; 32]));

fn keys(n: usize) -> Vec<SecretKey> {
    (0..n)
        .map(|i| timecoin_test_utils::key("validator", i as u64))
        .collect()
}

fn config() -> EngineConfig {
    EngineConfig {
        chain: CHAIN,
        timeouts: TimeoutConfig::default(),
        min_validators: 3,
        max_future_rounds: 16,
    }
}

fn set(keys: &[SecretKey]) -> ValidatorSet {
    ValidatorSet::new(
        keys.iter()
            .map(|k| Validator {
                key: k.public_key(),
                power: 1,
            })
            .collect(),
    )
    .unwrap()
}

fn value(n: u8) -> BlockHash {
    BlockHash(Hash256([n; 32]))
}

fn start(engine: &mut Engine, validators: &ValidatorSet, wal: Vec<WalEntry>) -> Vec<Effect> {
    engine.handle(Input::StartHeight {
        height: 1,
        validators: validators.clone(),
        wal,
    })
}

fn vote(key: &SecretKey, round: u32, kind: VoteKind, block: Option<BlockHash>) -> SignedVote {
    SignedVote::sign(
        Vote {
            chain: CHAIN,
            height: 1,
            round,
            kind,
            block,
        },
        key,
    )
}

fn proposal(key: &SecretKey, round: u32, valid_round: Option<u32>, block: BlockHash) -> SignedProposal {
    SignedProposal::sign(
        timecoin_primitives::Proposal {
            chain: CHAIN,
            height: 1,
            round,
            valid_round,
            block,
        },
        key,
    )
}

/// The key of the proposer of `round`.
fn proposer_of<'a>(keys: &'a [SecretKey], validators: &ValidatorSet, round: u32) -> &'a SecretKey {
    let proposer = validators.proposer(round).unwrap();
    keys.iter().find(|k| k.public_key() == proposer).unwrap()
}

/// Tells the engine whether `value(n)` is valid.
fn validated(engine: &mut Engine, n: u8, valid: bool) -> Vec<Effect> {
    engine.handle(Input::ValueValidated {
        height: 1,
        value: value(n),
        valid,
    })
}

/// Every key but `me`'s.
fn others(keys: &[SecretKey], me: usize) -> Vec<&SecretKey> {
    keys.iter()
        .enumerate()
        .filter(|(i, _)| *i != me)
        .map(|(_, k)| k)
        .collect()
}

fn broadcast_votes(effects: &[Effect]) -> Vec<SignedVote> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::BroadcastVote(v) => Some(*v),
            _ => None,
        })
        .collect()
}

/// An engine that is not the round-0 proposer, with the keys and the proposer's index.
fn follower() -> (Engine, Vec<SecretKey>, ValidatorSet, usize) {
    let keys = keys(4);
    let validators = set(&keys);
    let proposer = validators.proposer(0).unwrap();
    let proposer_index = keys.iter().position(|k| k.public_key() == proposer).unwrap();
    let me = (proposer_index + 1) % 4;
    let mut engine = Engine::new(config(), Some(keys[me].clone()));
    let effects = start(&mut engine, &validators, vec![]);
    assert!(effects.contains(&Effect::ScheduleTimeout {
        timeout: Timeout {
            height: 1,
            round: 0,
            kind: TimeoutKind::Propose
        },
        after_ms: 3_000
    }));
    assert!(!effects.iter().any(|e| matches!(e, Effect::RequestValue { .. })));
    (engine, keys, validators, me)
}

#[test]
fn the_proposer_asks_for_a_value_and_signs_it_after_the_wal() {
    let keys = keys(4);
    let validators = set(&keys);
    let proposer = validators.proposer(0).unwrap();
    let key = keys.iter().find(|k| k.public_key() == proposer).unwrap().clone();
    let mut engine = Engine::new(config(), Some(key));
    let effects = start(&mut engine, &validators, vec![]);
    assert!(effects.contains(&Effect::RequestValue { height: 1, round: 0 }));
    let effects = engine.handle(Input::ValueToPropose {
        height: 1,
        round: 0,
        value: value(1),
    });
    // WAL, broadcast of the proposal, then its own prevote (WAL first again).
    assert!(matches!(effects[0], Effect::PersistWal(WalEntry::Proposal(_))));
    assert!(matches!(effects[1], Effect::BroadcastProposal(p) if p.proposal.block == value(1)));
    assert!(matches!(effects[2], Effect::PersistWal(WalEntry::Vote(v)) if v.vote.kind == VoteKind::Prevote));
    assert!(matches!(effects[3], Effect::BroadcastVote(v) if v.vote.block == Some(value(1))));
    assert_eq!(engine.step(), Step::Prevote);
}

#[test]
fn a_round_decides_with_two_thirds_of_precommits_and_yields_a_verifiable_certificate() {
    let (mut engine, keys, validators, me) = follower();
    let pkey = proposer_of(&keys, &validators, 0);
    validated(&mut engine, 5, true);
    let effects = engine.handle(Input::Proposal(proposal(pkey, 0, None, value(5))));
    assert_eq!(broadcast_votes(&effects)[0].vote.block, Some(value(5)));
    let others = others(&keys, me);
    let mut effects = Vec::new();
    for k in &others[..2] {
        effects.extend(engine.handle(Input::Vote(vote(k, 0, VoteKind::Prevote, Some(value(5))))));
    }
    // Three prevotes for the value: lock and precommit.
    assert_eq!(engine.locked(), Some((value(5), 0)));
    assert!(
        broadcast_votes(&effects)
            .iter()
            .any(|v| v.vote.kind == VoteKind::Precommit)
    );
    let mut decided = None;
    for k in &others[..2] {
        for effect in engine.handle(Input::Vote(vote(k, 0, VoteKind::Precommit, Some(value(5))))) {
            if let Effect::Decide(d) = effect {
                decided = Some(d);
            }
        }
    }
    let decision = decided.expect("three precommits decide");
    assert_eq!((decision.height, decision.round, decision.value), (1, 0, value(5)));
    assert_eq!(engine.step(), Step::Decided);
    let masternodes = MasternodeSet::new(
        keys.iter()
            .map(|k| Masternode {
                operator: k.public_key(),
                tier: Tier::Bronze,
                reward_address: AddressPayload::default(),
            })
            .collect(),
    )
    .unwrap();
    assert_eq!(decision.certificate.signatures.len(), 3);
    decision
        .certificate
        .verify(&CHAIN, 1, &value(5), &masternodes, rand::rng())
        .unwrap();
}

#[test]
fn an_invalid_or_unlocked_conflicting_proposal_gets_a_nil_prevote() {
    let (mut engine, keys, validators, _) = follower();
    let pkey = proposer_of(&keys, &validators, 0);
    validated(&mut engine, 6, false);
    let effects = engine.handle(Input::Proposal(proposal(pkey, 0, None, value(6))));
    assert_eq!(broadcast_votes(&effects)[0].vote.block, None);
}

#[test]
fn a_proposal_from_the_wrong_proposer_or_network_is_ignored() {
    let (mut engine, keys, validators, _) = follower();
    let wrong = keys
        .iter()
        .find(|k| k.public_key() != validators.proposer(0).unwrap())
        .unwrap();
    validated(&mut engine, 7, true);
    assert!(
        engine
            .handle(Input::Proposal(proposal(wrong, 0, None, value(7))))
            .is_empty()
    );
    let right = proposer_of(&keys, &validators, 0);
    let mut other_chain = proposal(right, 0, None, value(7));
    other_chain.proposal.chain = BlockHash(Hash256([1; 32]));
    assert!(engine.handle(Input::Proposal(other_chain)).is_empty());
    assert_eq!(engine.step(), Step::Propose);
}

#[test]
fn timeouts_move_through_nil_votes_to_the_next_round() {
    let (mut engine, keys, _, me) = follower();
    let effects = engine.handle(Input::TimeoutElapsed(Timeout {
        height: 1,
        round: 0,
        kind: TimeoutKind::Propose,
    }));
    assert_eq!(broadcast_votes(&effects)[0].vote.block, None);
    assert_eq!(engine.step(), Step::Prevote);
    // A stale timeout does nothing.
    assert!(
        engine
            .handle(Input::TimeoutElapsed(Timeout {
                height: 1,
                round: 5,
                kind: TimeoutKind::Prevote
            }))
            .is_empty()
    );
    let others = others(&keys, me);
    let mut effects = Vec::new();
    for k in &others[..2] {
        effects.extend(engine.handle(Input::Vote(vote(k, 0, VoteKind::Prevote, None))));
    }
    // 2/3 prevoted nil: precommit nil at once.
    assert_eq!(engine.step(), Step::Precommit);
    for k in &others[..2] {
        effects.extend(engine.handle(Input::Vote(vote(k, 0, VoteKind::Precommit, None))));
    }
    let scheduled: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::ScheduleTimeout { timeout, after_ms } => Some((timeout.kind, *after_ms)),
            _ => None,
        })
        .collect();
    assert!(scheduled.contains(&(TimeoutKind::Precommit, 1_000)));
    engine.handle(Input::TimeoutElapsed(Timeout {
        height: 1,
        round: 0,
        kind: TimeoutKind::Precommit,
    }));
    assert_eq!((engine.round(), engine.step()), (1, Step::Propose));
    // Timeouts grow with the round.
    assert_eq!(TimeoutConfig::default().duration_ms(TimeoutKind::Propose, 4), 5_000);
}

#[test]
fn more_than_a_third_in_a_higher_round_pulls_the_node_forward() {
    let (mut engine, keys, _, me) = follower();
    let others = others(&keys, me);
    engine.handle(Input::Vote(vote(others[0], 3, VoteKind::Prevote, None)));
    assert_eq!(engine.round(), 0, "one validator of four is not more than 1/3");
    engine.handle(Input::Vote(vote(others[1], 3, VoteKind::Precommit, None)));
    assert_eq!(engine.round(), 3);
    // Far-future rounds are dropped (memory bound).
    engine.handle(Input::Vote(vote(others[0], 100, VoteKind::Prevote, None)));
    engine.handle(Input::Vote(vote(others[1], 100, VoteKind::Prevote, None)));
    assert_eq!(engine.round(), 3);
}

#[test]
fn two_different_votes_from_one_validator_are_evidence() {
    let (mut engine, keys, _, me) = follower();
    let cheat = &keys[(me + 1) % 4];
    assert!(
        engine
            .handle(Input::Vote(vote(cheat, 0, VoteKind::Prevote, Some(value(1)))))
            .is_empty()
    );
    // The same vote again is a duplicate, not evidence.
    assert!(
        engine
            .handle(Input::Vote(vote(cheat, 0, VoteKind::Prevote, Some(value(1)))))
            .is_empty()
    );
    let effects = engine.handle(Input::Vote(vote(cheat, 0, VoteKind::Prevote, Some(value(2)))));
    let evidence = effects
        .iter()
        .find_map(|e| match e {
            Effect::Evidence(ev) => Some(ev.clone()),
            _ => None,
        })
        .expect("evidence");
    assert_eq!(evidence.validator(), cheat.public_key());
    evidence.verify().unwrap();
    // Reported once.
    let again = engine.handle(Input::Vote(vote(cheat, 0, VoteKind::Prevote, Some(value(3)))));
    assert!(!again.iter().any(|e| matches!(e, Effect::Evidence(_))));
}

#[test]
fn too_few_validators_stall_the_height() {
    let keys = keys(2);
    let mut engine = Engine::new(config(), Some(keys[0].clone()));
    let effects = start(&mut engine, &set(&keys), vec![]);
    assert_eq!(
        effects,
        vec![Effect::Stalled {
            height: 1,
            validators: 2,
            required: 3
        }]
    );
    assert_eq!(engine.step(), Step::Idle);
    assert!(
        engine
            .handle(Input::TimeoutElapsed(Timeout {
                height: 1,
                round: 0,
                kind: TimeoutKind::Propose
            }))
            .is_empty()
    );
}

#[test]
fn after_a_restart_the_wal_is_resent_never_contradicted_and_the_lock_restored() {
    let (mut engine, keys, validators, me) = follower();
    let pkey = proposer_of(&keys, &validators, 0);
    validated(&mut engine, 5, true);
    let mut wal = Vec::new();
    let mut collect = |effects: Vec<Effect>| {
        for e in effects {
            if let Effect::PersistWal(entry) = e {
                wal.push(entry);
            }
        }
    };
    collect(engine.handle(Input::Proposal(proposal(pkey, 0, None, value(5)))));
    let others = others(&keys, me);
    for k in &others[..2] {
        collect(engine.handle(Input::Vote(vote(k, 0, VoteKind::Prevote, Some(value(5))))));
    }
    // The prevote, the proof of the lock (three prevotes), and the precommit.
    assert_eq!(wal.len(), 3);
    assert!(matches!(&wal[1], WalEntry::LockProof { votes, .. } if votes.len() == 3));

    // The node crashes and restarts with only its WAL.
    let mut restarted = Engine::new(config(), Some(keys[me].clone()));
    let effects = start(&mut restarted, &validators, wal.clone());
    assert_eq!(restarted.locked(), Some((value(5), 0)));
    // It can still show peers the prevotes that justify its lock.
    let (_, gossip) = restarted.messages_to_gossip();
    let proof = gossip
        .iter()
        .filter(|v| v.vote.kind == VoteKind::Prevote && v.vote.block == Some(value(5)))
        .count();
    assert_eq!(proof, 3);
    // Another proposal for round 0 cannot make it prevote differently: the logged prevote
    // is re-sent, and nothing new is written to the WAL for it.
    assert!(!effects.iter().any(|e| matches!(e, Effect::PersistWal(_))));
    validated(&mut restarted, 8, true);
    let effects = restarted.handle(Input::Proposal(proposal(pkey, 0, None, value(8))));
    let votes = broadcast_votes(&effects);
    assert_eq!(votes.len(), 1);
    assert_eq!(
        votes[0],
        match &wal[0] {
            WalEntry::Vote(v) => *v,
            other => panic!("the first entry is the prevote, not {other:?}"),
        }
    );
    assert!(!effects.iter().any(|e| matches!(e, Effect::PersistWal(_))));
    // In a later round, locked on 5, it prevotes nil on a fresh proposal of 8.
    restarted.handle(Input::TimeoutElapsed(Timeout {
        height: 1,
        round: 0,
        kind: TimeoutKind::Precommit,
    }));
    assert_eq!(restarted.round(), 1);
    let proposer1 = proposer_of(&keys, &validators, 1);
    if proposer1.public_key() != keys[me].public_key() {
        let effects = restarted.handle(Input::Proposal(proposal(proposer1, 1, None, value(8))));
        assert_eq!(broadcast_votes(&effects)[0].vote.block, None);
    }
}

#[test]
fn a_commit_certificate_from_a_peer_decides_a_lagging_node() {
    let (mut engine, keys, _, _) = follower();
    let signatures = {
        let mut s: Vec<_> = keys
            .iter()
            .take(3)
            .map(|k| {
                let v = vote(k, 2, VoteKind::Precommit, Some(value(4)));
                timecoin_primitives::CommitSignature {
                    validator: v.validator,
                    signature: v.signature,
                }
            })
            .collect();
        s.sort_by_key(|s| s.validator);
        s
    };
    let certificate = timecoin_primitives::CommitCertificate {
        height: 1,
        round: 2,
        block_hash: value(4),
        signatures,
    };
    // Without the value validated, nothing is decided.
    assert!(
        !engine
            .handle(Input::Commit(certificate.clone()))
            .iter()
            .any(|e| matches!(e, Effect::Decide(_)))
    );
    let effects = validated(&mut engine, 4, true);
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Decide(d) if d.value == value(4) && d.round == 2))
    );
}
