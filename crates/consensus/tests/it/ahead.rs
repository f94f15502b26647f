//! The f+1 rule for heights: what makes a node stop voting and sync.

use proptest::prelude::*;
use timecoin_consensus::{AheadWitnesses, Validator, ValidatorSet};
use timecoin_primitives::PublicKey;

fn key(n: u64) -> PublicKey {
    timecoin_test_utils::key("validator", n).public_key()
}

fn set(powers: &[u64]) -> ValidatorSet {
    ValidatorSet::new(
        powers
            .iter()
            .enumerate()
            .map(|(i, power)| Validator {
                key: key(i as u64),
                power: *power,
            })
            .collect(),
    )
    .unwrap()
}

#[test]
fn one_validators_vote_for_a_far_height_does_not_make_a_node_behind() {
    let validators = set(&[1, 1, 1, 1]);
    let mut witnesses = AheadWitnesses::default();
    witnesses.observe(key(3), u64::MAX, 5, &validators, 0);
    witnesses.observe(key(3), 7, 5, &validators, 0);
    assert!(
        !witnesses.is_behind(5, &validators, 0),
        "a quarter of the power proves nothing"
    );
    witnesses.observe(key(2), 6, 5, &validators, 0);
    assert!(
        witnesses.is_behind(5, &validators, 0),
        "half of the power: an honest one is past 5"
    );
    assert!(!witnesses.is_behind(6, &validators, 0), "only one of them is past 6");
}

#[test]
fn strangers_and_the_current_height_do_not_count() {
    let validators = set(&[1, 1, 1]);
    let mut witnesses = AheadWitnesses::default();
    for n in 10..1_000 {
        witnesses.observe(key(n), 9, 5, &validators, 0);
    }
    witnesses.observe(key(0), 5, 5, &validators, 0);
    witnesses.observe(key(1), 4, 5, &validators, 0);
    assert!(witnesses.is_empty(), "only members' later heights are remembered");
    assert!(!witnesses.is_behind(5, &validators, 0));
}

#[test]
fn a_claim_never_served_expires() {
    let validators = set(&[1, 1, 1, 1]);
    let mut witnesses = AheadWitnesses::new(1_000);
    witnesses.observe(key(0), 9, 5, &validators, 0);
    witnesses.observe(key(1), 9, 5, &validators, 500);
    assert!(witnesses.is_behind(5, &validators, 1_000));
    assert!(!witnesses.is_behind(5, &validators, 1_001), "the first claim is stale");
    // Seen again (honest validators keep re-sending their votes): it counts again.
    witnesses.observe(key(0), 9, 5, &validators, 1_400);
    assert!(witnesses.is_behind(5, &validators, 1_450));
    witnesses.advance(5, 10_000);
    assert!(witnesses.is_empty(), "expired claims are forgotten");
}

#[test]
fn a_claim_refreshed_recently_covers_lower_heights_only() {
    let validators = set(&[1, 1, 1]);
    let mut witnesses = AheadWitnesses::default();
    witnesses.observe(key(0), 9, 5, &validators, 1_000);
    assert!(witnesses.refreshed_within(&key(0), 9, 1_500, 1_000));
    assert!(witnesses.refreshed_within(&key(0), 7, 1_500, 1_000));
    assert!(
        !witnesses.refreshed_within(&key(0), 10, 1_500, 1_000),
        "a higher height is news"
    );
    assert!(
        !witnesses.refreshed_within(&key(0), 9, 2_000, 1_000),
        "a second later it is checked again"
    );
    assert!(!witnesses.refreshed_within(&key(1), 6, 1_500, 1_000));
}

#[test]
fn reaching_the_claimed_height_retires_the_claims() {
    let validators = set(&[1, 1, 1]);
    let mut witnesses = AheadWitnesses::default();
    witnesses.observe(key(0), 6, 5, &validators, 0);
    witnesses.observe(key(1), 8, 5, &validators, 0);
    witnesses.advance(6, 0);
    assert_eq!(witnesses.len(), 1);
    assert!(!witnesses.is_behind(6, &validators, 0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Byzantine validators holding at most a third of the power, signing any heights at
    /// any times, never make an honest node stop voting; honest ones above a third that
    /// are really ahead always do.
    #[test]
    fn at_most_a_third_never_silences_and_more_always_does(
        powers in prop::collection::vec(1u64..100, 1..40),
        claims in prop::collection::vec((0usize..40, 0u64..1_000, 0u64..20_000), 0..200),
        next in 0u64..500,
    ) {
        let validators = set(&powers);
        // The Byzantine ones: the largest prefix whose power is at most a third.
        let mut byzantine = 0;
        let mut power = 0u64;
        for p in &powers {
            if (power + p) * 3 > validators.total_power() {
                break;
            }
            power += p;
            byzantine += 1;
        }
        let mut witnesses = AheadWitnesses::new(5_000);
        for (who, height, at) in claims.iter().filter(|_| byzantine > 0) {
            witnesses.observe(key((*who % byzantine) as u64), *height, next, &validators, *at);
        }
        witnesses.observe(key(999), next + 1, next, &validators, 0);
        prop_assert!(!witnesses.is_behind(next, &validators, 20_000));
        // The others are ahead, and say so now.
        for i in byzantine..powers.len() {
            witnesses.observe(key(i as u64), next + 1, next, &validators, 20_000);
        }
        prop_assert!(witnesses.is_behind(next, &validators, 20_000), "at least two thirds are ahead");
    }
}
