use proptest::prelude::*;
use timecoin_light::{
    BuildError, HeaderProof, LightError, TrustedState, TxProof, prove_header, prove_transactions, verify_headers,
    verify_transactions,
};
use timecoin_primitives::{CertificateError, CommitCertificate, Decode, Encode, Signature};

use crate::{Chain, keys_of, set_of};

const A: &[u64] = &[0, 1, 2, 3];
const B: &[u64] = &[0, 1, 2, 3, 4];
const C: &[u64] = &[1, 2, 3, 4, 5];
const D: &[u64] = &[3, 4, 5, 6, 7, 8];
const E: &[u64] = &[6, 7, 8, 9, 10, 11];

fn rng() -> rand::rngs::ThreadRng {
    rand::rng()
}

/// Sets change at 3 (B), 5 (C), 7 (D), 9 (E); A to D share only 1 of 4 and D to E 3 of 6.
fn changing() -> Chain {
    Chain::new(7, A, &[A, A, B, B, C, C, D, D, E, E, E])
}

#[test]
fn a_proof_skips_every_set_change_the_trusted_set_signed_a_third_of() {
    let chain = changing();
    let trusted = chain.genesis();
    // Block 2: no change since genesis, one header.
    let proof = prove_header(&chain, &trusted, 2).unwrap();
    assert_eq!(proof.headers.len(), 1);
    assert!(proof.headers[0].set.is_none());
    assert_eq!(verify_headers(&trusted, &proof, &mut rng()).unwrap().height, 2);

    // Block 6 (set C): A's members 1, 2, 3 signed it, 3 of A's 4: one header carrying C.
    let proof = prove_header(&chain, &trusted, 6).unwrap();
    assert_eq!(proof.headers.len(), 1);
    assert_eq!(proof.headers[0].set, Some(set_of(C)));
    let state = verify_headers(&trusted, &proof, &mut rng()).unwrap();
    assert_eq!(
        (state.height, state.block, state.set),
        (6, chain.block(6).hash(), set_of(C))
    );

    // Block 10 (set E): A signed none of it, nor of D's first block (only 3, a quarter of
    // A); C's first block carries A's 1, 2, 3, and D's first C's 3, 4, 5; E shares 3 of
    // D's 6 (half). So: C at 5, D at 7, then block 10.
    let proof = prove_header(&chain, &trusted, 10).unwrap();
    let heights: Vec<u64> = proof.headers.iter().map(|h| h.header.height).collect();
    assert_eq!(heights, [5, 7, 10]);
    let state = verify_headers(&trusted, &proof, &mut rng()).unwrap();
    assert_eq!((state.height, &state.set), (10, &set_of(E)));

    // A header that changes no set proves nothing before the last: refused unverified.
    let mut padded = prove_header(&chain, &trusted, 10).unwrap();
    let (block, certificate, _) = chain.blocks[1].clone();
    padded.headers.insert(
        0,
        timecoin_light::CertifiedHeader {
            header: block.header,
            certificate,
            set: None,
        },
    );
    assert_eq!(
        verify_headers(&trusted, &padded, &mut rng()),
        Err(LightError::NotAChange { height: 2 })
    );

    // From a later trusted state the proof is shorter.
    let proof = prove_header(&chain, &state, 11).unwrap();
    assert_eq!(proof.headers.len(), 1);
    verify_headers(&state, &proof, &mut rng()).unwrap();

    // The encoding round-trips exactly.
    let bytes = proof.to_bytes();
    assert_eq!(HeaderProof::from_bytes(&bytes).unwrap(), proof);
    assert!(HeaderProof::from_bytes(&bytes[..bytes.len() - 1]).is_err());
}

#[test]
fn a_proof_without_its_set_change_is_refused_as_stale() {
    let chain = changing();
    let trusted = chain.genesis();
    let mut proof = prove_header(&chain, &trusted, 10).unwrap();
    // Dropping the changes: the block names E, the verifier trusts A.
    proof.headers.drain(..2);
    proof.headers[0].set = None;
    let refused = verify_headers(&trusted, &proof, &mut rng()).unwrap_err();
    assert_eq!(
        refused,
        LightError::StaleSet {
            height: 10,
            named: set_of(E).hash(),
            trusted: set_of(A).hash(),
        }
    );
    // Carrying E directly: A signed none of block 10.
    proof.headers[0].set = Some(set_of(E));
    assert!(matches!(
        verify_headers(&trusted, &proof, &mut rng()),
        Err(LightError::UntrustedChange {
            height: 10,
            signed: 0,
            total: 4
        })
    ));
    // A set other than the one the header names.
    proof.headers[0].set = Some(set_of(D));
    assert_eq!(
        verify_headers(&trusted, &proof, &mut rng()),
        Err(LightError::SetMismatch { height: 10 })
    );
}

#[test]
fn a_set_of_strangers_with_one_trusted_signer_cannot_take_over() {
    // Block 2 names a set of four new keys plus 0: it carries 1 of A's 4 (a quarter).
    let chain = Chain::new(7, A, &[A, &[0, 20, 21, 22, 23]]);
    let trusted = chain.genesis();
    assert_eq!(
        prove_header(&chain, &trusted, 2),
        Err(BuildError::NoTrustPath { from: 0 })
    );
    let mut proof = prove_header(&chain, &trusted, 1).unwrap();
    let (block, certificate, set) = chain.blocks[1].clone();
    proof.headers = vec![timecoin_light::CertifiedHeader {
        header: block.header,
        certificate,
        set: Some(set),
    }];
    assert!(matches!(
        verify_headers(&trusted, &proof, &mut rng()),
        Err(LightError::UntrustedChange {
            height: 2,
            signed: 1,
            total: 4
        })
    ));
}

#[test]
fn forged_certificates_are_refused() {
    let chain = changing();
    let trusted = chain.genesis();
    let good = prove_header(&chain, &trusted, 4).unwrap();
    verify_headers(&trusted, &good, &mut rng()).unwrap();
    let certify = |proof: &HeaderProof| verify_headers(&trusted, proof, &mut rng());

    // One altered signature.
    let mut forged = good.clone();
    forged.headers[0].certificate.signatures[1].signature = Signature([7; 64]);
    assert!(matches!(
        certify(&forged),
        Err(LightError::Certificate {
            height: 4,
            source: CertificateError::BadSignature
        })
    ));
    // Signed by 3 of B's 5: not more than 2/3.
    let mut forged = good.clone();
    let header = forged.headers[0].header;
    let keys = keys_of(&[0, 1, 2]);
    let signers: Vec<_> = keys.iter().collect();
    forged.headers[0].certificate = CommitCertificate::sign(&chain.network, 4, 0, &header.hash(), &signers);
    assert!(matches!(
        certify(&forged),
        Err(LightError::Certificate {
            source: CertificateError::InsufficientPower { signed: 3, total: 5 },
            ..
        })
    ));
    // Signed by every member and a stranger.
    let mut forged = good.clone();
    let keys = keys_of(&[0, 1, 2, 3, 4, 30]);
    let signers: Vec<_> = keys.iter().collect();
    forged.headers[0].certificate = CommitCertificate::sign(&chain.network, 4, 0, &header.hash(), &signers);
    assert!(matches!(
        certify(&forged),
        Err(LightError::Certificate {
            source: CertificateError::UnknownSigner(_),
            ..
        })
    ));
    // A valid certificate of another block at that height, under this header.
    let mut forged = good.clone();
    forged.headers[0].header.timestamp_ms += 1;
    assert!(matches!(
        certify(&forged),
        Err(LightError::Certificate {
            source: CertificateError::WrongBlock { .. },
            ..
        })
    ));
    // The set's own keys signing for another round of the same block are fine; the same
    // signatures moved to another round are not.
    let mut forged = good;
    forged.headers[0].certificate.round = 1;
    assert!(matches!(
        certify(&forged),
        Err(LightError::Certificate {
            source: CertificateError::BadSignature,
            ..
        })
    ));
}

#[test]
fn a_proof_for_another_network_is_refused() {
    let ours = changing();
    let theirs = Chain::new(8, A, &[A, A, B, B]);
    let proof = prove_header(&theirs, &theirs.genesis(), 4).unwrap();
    assert_eq!(
        verify_headers(&ours.genesis(), &proof, &mut rng()),
        Err(LightError::WrongNetwork {
            expected: ours.network,
            found: theirs.network,
        })
    );
    // Relabelled as ours, its votes were signed for the other network.
    let mut relabelled = proof;
    relabelled.network = ours.network;
    let state = TrustedState {
        set: theirs.genesis_set.clone(),
        ..ours.genesis()
    };
    assert!(matches!(
        verify_headers(&state, &relabelled, &mut rng()),
        Err(LightError::Certificate {
            source: CertificateError::BadSignature,
            ..
        })
    ));
}

#[test]
fn headers_must_climb_above_the_trusted_height() {
    let chain = changing();
    let trusted = chain.genesis();
    let mut proof = prove_header(&chain, &trusted, 10).unwrap();
    let repeated = proof.headers[0].clone();
    proof.headers.insert(1, repeated);
    assert_eq!(
        verify_headers(&trusted, &proof, &mut rng()),
        Err(LightError::NotAscending { after: 5, found: 5 })
    );
    let later = verify_headers(&trusted, &prove_header(&chain, &trusted, 6).unwrap(), &mut rng()).unwrap();
    let earlier = prove_header(&chain, &trusted, 4).unwrap();
    assert!(matches!(
        verify_headers(&later, &earlier, &mut rng()),
        Err(LightError::NotAscending { after: 6, found: 4 })
    ));
    assert_eq!(
        prove_header(&chain, &later, 6),
        Err(BuildError::NotAbove { height: 6, trusted: 6 })
    );
    proof.headers.clear();
    assert_eq!(verify_headers(&trusted, &proof, &mut rng()), Err(LightError::Empty));

    // The block right after the trusted one must extend it: here block 5 of another chain
    // signed by the same keys, after this chain's block 4.
    let fork = Chain::salted(7, 1, A, &[A, A, B, B, C, C, D, D, E, E, E]);
    let at_four = verify_headers(&trusted, &prove_header(&chain, &trusted, 4).unwrap(), &mut rng()).unwrap();
    let next = prove_header(&fork, &at_four, 5).unwrap();
    assert!(matches!(
        verify_headers(&at_four, &next, &mut rng()),
        Err(LightError::Unlinked { height: 5, .. })
    ));
}

#[test]
fn transaction_proofs_name_the_transactions_of_a_final_block() {
    let chain = changing();
    let trusted = chain.genesis();
    let block = chain.block(9).clone();
    let wanted = [block.transactions[4].txid(), block.transactions[1].txid()];
    let proof = prove_transactions(&chain, &trusted, &block, &wanted).unwrap();
    let bytes = proof.to_bytes();
    let proof = TxProof::from_bytes(&bytes).unwrap();
    let proven = verify_transactions(&trusted, &proof, &mut rng()).unwrap();
    assert_eq!(proven.header, block.header);
    assert_eq!(proven.txids(), [wanted[1], wanted[0]]);
    assert_eq!(proven.trusted.height, 9);

    // A transaction changed after proving (here, its memo) is not in the block.
    let mut altered = proof.clone();
    altered.transactions[0].transaction.memo = b"altered".to_vec();
    assert!(matches!(
        verify_transactions(&trusted, &altered, &mut rng()),
        Err(LightError::NotInBlock { .. })
    ));
    // Nor is one at another position.
    let mut moved = proof.clone();
    moved.transactions[0].branch.index = 0;
    assert!(verify_transactions(&trusted, &moved, &mut rng()).is_err());
    let mut unordered = proof.clone();
    unordered.transactions.swap(0, 1);
    assert_eq!(
        verify_transactions(&trusted, &unordered, &mut rng()),
        Err(LightError::Unordered)
    );
    // The last transaction of a block of 5 moves up alone twice, so its branch (one sibling,
    // on the left) is also that of the second leaf of a tree of 2: the same transaction
    // shown at two places. A proof must name one leaf count and each transaction once.
    let last = block.transactions[4].txid();
    let mut twice = prove_transactions(&chain, &trusted, &block, &[last]).unwrap();
    let mut again = twice.transactions[0].clone();
    assert_eq!((again.branch.index, again.branch.leaves), (4, 5));
    again.branch.index = 1;
    again.branch.leaves = 2;
    assert_eq!(
        again.branch.root(&again.transaction.witness_hash()),
        Ok(block.header.merkle_root)
    );
    twice.transactions.insert(0, again);
    assert_eq!(
        verify_transactions(&trusted, &twice, &mut rng()),
        Err(LightError::Unordered)
    );
    let mut empty = proof;
    empty.transactions.clear();
    assert_eq!(
        verify_transactions(&trusted, &empty, &mut rng()),
        Err(LightError::NoTransactions)
    );
    let stranger = chain.block(8).transactions[0].txid();
    assert_eq!(
        prove_transactions(&chain, &trusted, &block, &[stranger]),
        Err(BuildError::NotInBlock(stranger))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Decoding arbitrary bytes, or a real proof with one byte changed, never panics, and
    /// whatever decodes re-encodes to the same bytes.
    #[test]
    fn decoding_is_total_and_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..2_000),
                                       at in any::<proptest::sample::Index>(), byte in any::<u8>()) {
        if let Ok(proof) = TxProof::from_bytes(&bytes) {
            prop_assert_eq!(proof.to_bytes(), bytes);
        }
        let chain = Chain::new(7, A, &[A, B]);
        let block = chain.block(2).clone();
        let mut real = prove_transactions(&chain, &chain.genesis(), &block, &[block.transactions[2].txid()])
            .unwrap()
            .to_bytes();
        let index = at.index(real.len());
        real[index] = byte;
        if let Ok(proof) = TxProof::from_bytes(&real) {
            prop_assert_eq!(proof.to_bytes(), real);
        }
    }
}
