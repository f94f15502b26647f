use timecoin_light::{Advance, Follower, LightError, prove_header, prove_transactions};

use crate::Chain;

const A: &[u64] = &[0, 1, 2, 3];
const B: &[u64] = &[0, 1, 2, 3, 4];
const C: &[u64] = &[1, 2, 3, 4, 5];

fn rng() -> rand::rngs::ThreadRng {
    rand::rng()
}

fn chain() -> Chain {
    Chain::new(7, A, &[A, A, B, B, C, C, C, C])
}

/// One proof of `height` from the follower's trusted state, from each of `sources`.
fn proofs(follower: &Follower, height: u64, sources: &[(&str, &Chain)]) -> Vec<(String, timecoin_light::HeaderProof)> {
    sources
        .iter()
        .map(|(name, chain)| {
            (
                name.to_string(),
                prove_header(*chain, follower.trusted(), height).unwrap(),
            )
        })
        .collect()
}

#[test]
fn two_agreeing_sources_move_the_follower_block_by_block_and_across_set_changes() {
    let chain = chain();
    let mut follower = Follower::new(chain.genesis(), 5, 2);
    for height in 1..=8 {
        let proofs = proofs(&follower, height, &[("a", &chain), ("b", &chain)]);
        assert_eq!(
            follower.advance(height, proofs, &mut rng()),
            Advance::Trusted {
                height,
                refused: vec![]
            }
        );
        assert_eq!(follower.header_at(height), Some(&chain.block(height).header));
    }
    assert_eq!(follower.trusted().set, crate::set_of(C));
    // Only the most recent 5 are held; each is found by hash.
    assert_eq!(follower.held(), (5, Some(4)));
    assert!(follower.header(&chain.block(3).hash()).is_none());
    assert_eq!(follower.header(&chain.block(6).hash()), Some(&chain.block(6).header));

    // A transaction proof of a held block is checked against it; one of a block it does not
    // hold (too old, or not followed yet) is refused, not trusted from the genesis alone.
    let block = chain.block(7).clone();
    let proof = prove_transactions(&chain, &chain.genesis(), &block, &[block.transactions[3].txid()]).unwrap();
    assert_eq!(
        follower.verify_transactions(&proof).unwrap().txids(),
        [block.transactions[3].txid()]
    );
    let old = chain.block(2).clone();
    let proof = prove_transactions(&chain, &chain.genesis(), &old, &[old.transactions[0].txid()]).unwrap();
    assert!(matches!(
        follower.verify_transactions(&proof),
        Err(LightError::NotHeld {
            height: 2,
            trusted: 8,
            lowest: Some(4)
        })
    ));
}

#[test]
fn a_source_whose_proof_fails_is_named_and_the_others_carry_on() {
    let chain = chain();
    let elsewhere = Chain::new(8, A, &[A, A]);
    let bad = || {
        (
            "other network".to_string(),
            prove_header(&elsewhere, &elsewhere.genesis(), 2).unwrap(),
        )
    };
    let mut follower = Follower::new(chain.genesis(), 100, 2);
    let mut sent = proofs(&follower, 2, &[("a", &chain), ("b", &chain)]);
    sent.push(bad());
    let Advance::Trusted { height: 2, refused } = follower.advance(2, sent, &mut rng()) else {
        panic!("the honest sources were not followed");
    };
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].0, "other network");
    assert!(matches!(refused[0].1, LightError::WrongNetwork { .. }));
    // One honest proof is not enough when two must agree; a bad one alone moves nothing.
    let mut sent = proofs(&follower, 3, &[("a", &chain)]);
    sent.push(bad());
    assert!(matches!(
        follower.advance(3, sent, &mut rng()),
        Advance::Unconfirmed {
            height: 3,
            agreeing: 1,
            ..
        }
    ));
    assert!(matches!(
        follower.advance(3, vec![bad()], &mut rng()),
        Advance::Unconfirmed { agreeing: 0, .. }
    ));
    assert_eq!(follower.trusted().height, 2);
    // A proof of another height than asked is refused.
    let sent = proofs(&follower, 4, &[("a", &chain), ("b", &chain)]);
    let Advance::Unconfirmed { refused, .. } = follower.advance(3, sent, &mut rng()) else {
        panic!("proofs of height 4 were taken for 3");
    };
    assert!(matches!(refused[0].1, LightError::WrongTarget { asked: 3, found: 4 }));
}

#[test]
fn two_final_blocks_at_one_height_are_a_conflict_with_the_double_signers_as_evidence() {
    let chain = chain();
    // The same keys finalize other blocks from height 1: a fork signed by all of A.
    let fork = Chain::salted(7, 1, A, &[A, A, B, B, C, C, C, C]);
    let mut follower = Follower::new(chain.genesis(), 100, 2);
    let sent = proofs(&follower, 1, &[("honest", &chain), ("lying", &fork)]);
    let Advance::Conflict(conflict) = follower.advance(1, sent, &mut rng()) else {
        panic!("the fork was not seen");
    };
    assert_eq!(conflict.height, 1);
    assert_eq!(conflict.first.0, "honest");
    assert_eq!(conflict.second.0, "lying");
    assert_eq!(conflict.double_signers.len(), 4);
    assert_eq!(conflict.evidence.len(), 4);
    for evidence in &conflict.evidence {
        evidence.verify().unwrap();
        assert_eq!(evidence.height(), 1);
    }
    // The follower stops there: it trusts neither block.
    assert_eq!(follower.trusted().height, 0);
    let sent = proofs(&follower, 1, &[("honest", &chain), ("honest too", &chain)]);
    assert!(matches!(follower.advance(1, sent, &mut rng()), Advance::Conflict(_)));
    assert!(follower.conflict().is_some());
}

#[test]
fn proofs_that_disagree_at_a_shared_height_are_a_conflict() {
    let chain = chain();
    let fork = Chain::salted(7, 1, A, &[A, A, B, B, C, C, C, C]);
    let mut follower = Follower::new(chain.genesis(), 100, 2);
    // Both prove 6 in one skip (their header at 6 carries C), one on the fork.
    let sent = proofs(&follower, 6, &[("a", &chain), ("b", &fork)]);
    assert!(matches!(follower.advance(6, sent, &mut rng()), Advance::Conflict(c) if c.height == 6));

    // A held block is not replaced by a transaction proof of another block there.
    let mut follower = Follower::new(chain.genesis(), 100, 1);
    let sent = proofs(&follower, 3, &[("a", &chain)]);
    assert!(matches!(
        follower.advance(3, sent, &mut rng()),
        Advance::Trusted { height: 3, .. }
    ));
    let block = fork.block(3).clone();
    let proof = prove_transactions(&fork, &fork.genesis(), &block, &[block.transactions[0].txid()]).unwrap();
    assert!(matches!(
        follower.verify_transactions(&proof),
        Err(LightError::Conflicts { height: 3, .. })
    ));
}
