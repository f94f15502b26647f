//! Certificates grow with precommits that arrive after the decision.

use timecoin_primitives::{BlockHash, CommitCertificate, Hash256, SecretKey, Vote, VoteKind};

const CHAIN: BlockHash = BlockHash(Hash256([7; 32]));

fn precommit(certificate: &CommitCertificate) -> Vote {
    Vote {
        chain: CHAIN,
        height: certificate.height,
        round: certificate.round,
        kind: VoteKind::Precommit,
        block: Some(certificate.block_hash),
    }
}

#[test]
fn a_late_precommit_for_the_decided_block_joins_the_certificate_in_order() {
    let keys: Vec<SecretKey> = (0u8..5).map(|i| SecretKey::from_seed([i; 32])).collect();
    let block = BlockHash(Hash256([1; 32]));
    let first: Vec<&SecretKey> = keys[..3].iter().collect();
    let mut certificate = CommitCertificate::sign(&CHAIN, 9, 2, &block, &first);
    let vote = precommit(&certificate);
    let late = &keys[4];
    let signature = late.sign(&vote.signing_message().0);
    assert!(!certificate.is_signed_by(&late.public_key()));
    assert!(certificate.add_late_precommit(&CHAIN, &vote, late.public_key(), signature));
    assert!(certificate.is_signed_by(&late.public_key()));
    assert_eq!(certificate.signatures.len(), 4);
    assert!(
        certificate
            .signatures
            .windows(2)
            .all(|w| w[0].validator < w[1].validator),
        "signers stay strictly sorted"
    );
    assert!(
        !certificate.add_late_precommit(&CHAIN, &vote, late.public_key(), signature),
        "one signature a signer"
    );
    // Votes for anything else stay out.
    let other = &keys[3];
    for wrong in [
        Vote { block: None, ..vote },
        Vote {
            block: Some(BlockHash(Hash256([2; 32]))),
            ..vote
        },
        Vote { round: 3, ..vote },
        Vote { height: 10, ..vote },
        Vote {
            kind: VoteKind::Prevote,
            ..vote
        },
        Vote {
            chain: BlockHash(Hash256([8; 32])),
            ..vote
        },
    ] {
        let signature = other.sign(&wrong.signing_message().0);
        assert!(!certificate.add_late_precommit(&CHAIN, &wrong, other.public_key(), signature));
    }
    assert_eq!(certificate.signatures.len(), 4);
}
