//! Which proposals a node takes up: only the round's proposer's, one block a round.

use proptest::prelude::*;
use timecoin_consensus::{Arrival, ProposalAdmission, ProposalGate, Validator, ValidatorSet};
use timecoin_primitives::{BlockHash, Hash256, Proposal, SecretKey, SignedProposal};

const CHAIN: BlockHash = BlockHash(Hash256([9; 32]));

fn keys(n: usize) -> Vec<SecretKey> {
    (0..n)
        .map(|i| timecoin_test_utils::key("validator", i as u64))
        .collect()
}

fn set(keys: &[SecretKey], powers: &[u64]) -> ValidatorSet {
    ValidatorSet::new(
        keys.iter()
            .zip(powers)
            .map(|(k, power)| Validator {
                key: k.public_key(),
                power: *power,
            })
            .collect(),
    )
    .unwrap()
}

fn signed(key: &SecretKey, height: u64, round: u32, block: u8) -> SignedProposal {
    SignedProposal::sign(
        Proposal {
            chain: CHAIN,
            height,
            round,
            valid_round: None,
            block: BlockHash(Hash256([block; 32])),
        },
        key,
    )
}

fn arrival(proposal: &SignedProposal) -> Arrival<'_> {
    Arrival {
        proposal,
        block_hash: proposal.proposal.block,
        block_proposer: proposal.proposer,
    }
}

#[test]
fn only_the_rounds_proposer_is_taken_up_once_a_round() {
    let keys = keys(4);
    let validators = set(&keys, &[1, 1, 1, 1]);
    let proposer = validators.proposer(0).unwrap();
    let key = keys.iter().find(|k| k.public_key() == proposer).unwrap();
    let other = keys.iter().find(|k| k.public_key() != proposer).unwrap();
    let mut gate = ProposalGate::default();
    let first = signed(key, 5, 0, 1);
    assert_eq!(
        gate.consider(&validators, 5, (0, 4), arrival(&first)),
        ProposalAdmission::New
    );
    gate.record(0, first.proposal.block);
    assert_eq!(
        gate.consider(&validators, 5, (0, 4), arrival(&first)),
        ProposalAdmission::Known
    );
    let second = signed(key, 5, 0, 2);
    assert_eq!(
        gate.consider(&validators, 5, (0, 4), arrival(&second)),
        ProposalAdmission::Dropped,
        "a second block a round"
    );
    let out_of_turn = signed(other, 5, 0, 3);
    assert_eq!(
        gate.consider(&validators, 5, (0, 4), arrival(&out_of_turn)),
        ProposalAdmission::Dropped
    );
    let stranger = signed(&SecretKey::from_seed([77; 32]), 5, 0, 4);
    assert_eq!(
        gate.consider(&validators, 5, (0, 4), arrival(&stranger)),
        ProposalAdmission::Dropped
    );
    // The header must name the signer, and the proposal must name the block it carries.
    let fresh = signed(key, 5, 0, 1);
    let mut gate = ProposalGate::default();
    let lying_header = Arrival {
        block_proposer: other.public_key(),
        ..arrival(&fresh)
    };
    assert_eq!(
        gate.consider(&validators, 5, (0, 4), lying_header),
        ProposalAdmission::Dropped
    );
    // A block re-proposed from an earlier round keeps the header of whoever built it: the
    // round's proposer may carry it (the engine follows it only with that round's polka).
    let round_one = validators.proposer(1).unwrap();
    let carrier = keys.iter().find(|k| k.public_key() == round_one).unwrap();
    let builder = keys.iter().find(|k| k.public_key() != round_one).unwrap();
    let mut reproposal = signed(carrier, 5, 1, 6).proposal;
    reproposal.valid_round = Some(0);
    let again = SignedProposal::sign(reproposal, carrier);
    let carried = Arrival {
        block_proposer: builder.public_key(),
        ..arrival(&again)
    };
    assert_eq!(gate.consider(&validators, 5, (0, 4), carried), ProposalAdmission::New);
    let swapped = Arrival {
        block_hash: BlockHash(Hash256([8; 32])),
        ..arrival(&fresh)
    };
    assert_eq!(
        gate.consider(&validators, 5, (0, 4), swapped),
        ProposalAdmission::Dropped
    );
    // Another height, a round past the window.
    assert_eq!(
        gate.consider(&validators, 6, (0, 4), arrival(&fresh)),
        ProposalAdmission::Dropped
    );
    let far = signed(key, 5, u32::MAX, 1);
    assert_eq!(
        gate.consider(&validators, 5, (0, 4), arrival(&far)),
        ProposalAdmission::Dropped
    );
    gate.record(0, fresh.proposal.block);
    gate.clear();
    assert_eq!(
        gate.consider(&validators, 5, (0, 4), arrival(&second)),
        ProposalAdmission::New,
        "a new height"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    /// Whatever Byzantine signers send — any signer, round or block — what a node takes up
    /// is at most one block a round, each from that round's proposer, within the window.
    #[test]
    fn a_node_takes_up_one_block_a_round_from_its_proposer(
        powers in prop::collection::vec(1u64..50, 1..10),
        arrivals in prop::collection::vec((0usize..12, 0u32..12, 0u8..4), 0..80),
        current in 0u32..4,
    ) {
        let keys = keys(12);
        let validators = set(&keys[..powers.len()], &powers);
        let mut gate = ProposalGate::default();
        let mut taken: std::collections::HashMap<u32, BlockHash> = std::collections::HashMap::new();
        for (signer, round, block) in arrivals {
            let proposal = signed(&keys[signer], 7, round, block);
            if gate.consider(&validators, 7, (current, 6), arrival(&proposal)) == ProposalAdmission::New {
                prop_assert_eq!(validators.proposer(round), Some(proposal.proposer));
                prop_assert!(round <= current + 6);
                prop_assert!(taken.insert(round, proposal.proposal.block).is_none(), "two blocks in round {}", round);
                gate.record(round, proposal.proposal.block);
            }
        }
    }
}
