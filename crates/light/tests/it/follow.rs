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
    let mut follower = Follower::new(chain.genesis(), 5);
    for height in 1..=8 {
        let proofs = proofs(&follower, height, &[("a", &chain), ("b", &chain)]);
        assert_eq!(
            follower.advance(proofs, &mut rng()),
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

    // A transaction proof of a held block is checked, as one from the genesis.
    let block = chain.block(7).clone();
    let proof = prove_transactions(&chain, &chain.genesis(), &block, &[block.transactions[3].txid()]).unwrap();
    assert_eq!(
        follower.verify_transactions(&proof, &mut rng()).unwrap().txids(),
        [block.transactions[3].txid()]
    );
}

#[test]
fn a_source_whose_proof_fails_is_named_and_the_others_carry_on() {
    let chain = chain();
    let elsewhere = Chain::new(8, A, &[A, A]);
    let mut follower = Follower::new(chain.genesis(), 100);
    let mut sent = proofs(&follower, 2, &[("a", &chain)]);
    sent.push((
        "other network".to_string(),
        prove_header(&elsewhere, &elsewhere.genesis(), 2).unwrap(),
    ));
    let Advance::Trusted { height: 2, refused } = follower.advance(sent, &mut rng()) else {
        panic!("the honest source was not followed");
    };
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].0, "other network");
    assert!(matches!(refused[0].1, LightError::WrongNetwork { .. }));
    // With only the bad source, nothing moves.
    let sent = vec![(
        "other network".to_string(),
        prove_header(&elsewhere, &elsewhere.genesis(), 2).unwrap(),
    )];
    assert!(matches!(follower.advance(sent, &mut rng()), Advance::Refused(r) if r.len() == 1));
    assert_eq!(follower.trusted().height, 2);
}

#[test]
fn two_final_blocks_at_one_height_are_a_conflict_with_the_double_signers_as_evidence() {
    let chain = chain();
    // The same keys finalize other blocks from height 1: a fork signed by all of A.
    let fork = Chain::salted(7, 1, A, &[A, A, B, B, C, C, C, C]);
    let mut follower = Follower::new(chain.genesis(), 100);
    let sent = proofs(&follower, 1, &[("honest", &chain), ("lying", &fork)]);
    let Advance::Conflict(conflict) = follower.advance(sent, &mut rng()) else {
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
    let sent = proofs(&follower, 1, &[("honest", &chain)]);
    assert!(matches!(follower.advance(sent, &mut rng()), Advance::Conflict(_)));
    assert!(follower.conflict().is_some());
}

#[test]
fn a_proof_that_skips_past_a_disagreement_is_checked_where_it_overlaps() {
    let chain = chain();
    let fork = Chain::salted(7, 1, A, &[A, A, B, B, C, C, C, C]);
    let mut follower = Follower::new(chain.genesis(), 100);
    // One source proves 6 in one skip (its header at 6 carries C); the other proves 6 on
    // the fork: they overlap at 6 and differ.
    let sent = proofs(&follower, 6, &[("a", &chain), ("b", &fork)]);
    assert!(matches!(follower.advance(sent, &mut rng()), Advance::Conflict(c) if c.height == 6));

    // A held block is not replaced by a transaction proof of another block there.
    let mut follower = Follower::new(chain.genesis(), 100);
    let sent = proofs(&follower, 3, &[("a", &chain)]);
    assert!(matches!(
        follower.advance(sent, &mut rng()),
        Advance::Trusted { height: 3, .. }
    ));
    let block = fork.block(3).clone();
    let proof = prove_transactions(&fork, &fork.genesis(), &block, &[block.transactions[0].txid()]).unwrap();
    assert!(matches!(
        follower.verify_transactions(&proof, &mut rng()),
        Err(LightError::Conflicts { height: 3, .. })
    ));
}
