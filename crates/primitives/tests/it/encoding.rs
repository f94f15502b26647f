//! Round-trip and non-canonical-rejection tests for every encoded type.

use proptest::prelude::*;
use timecoin_primitives::encoding::write_compact_size;
use timecoin_primitives::{
    AddressPayload, Amount, Block, BlockHash, BlockHeader, CommitCertificate, CommitSignature, Decode, DecodeError,
    Encode, Equivocation, Hash256, Masternode, MasternodeSet, OutPoint, Payload, Proposal, PublicKey, Registration,
    Revocation, SecretKey, Signature, SignedProposal, SignedVote, Tier, Transaction, TxId, TxInput, TxOutput, Unlock,
    Update, Vote, VoteKind, merkle_root, signature_message, transactions_root,
};

fn hash() -> impl Strategy<Value = Hash256> {
    any::<[u8; 32]>().prop_map(Hash256)
}

fn input() -> impl Strategy<Value = TxInput> {
    (
        hash(),
        any::<u32>(),
        any::<[u8; 32]>(),
        prop::collection::vec(any::<u8>(), 64),
    )
        .prop_map(|(txid, index, key, sig)| {
            let mut signature = [0u8; 64];
            signature.copy_from_slice(&sig);
            TxInput {
                prevout: OutPoint {
                    txid: TxId(txid),
                    index,
                },
                public_key: PublicKey(key),
                signature: Signature(signature),
            }
        })
}

fn output() -> impl Strategy<Value = TxOutput> {
    (any::<u64>(), any::<[u8; 32]>()).prop_map(|(units, address)| TxOutput {
        amount: Amount::from_units(units),
        address: AddressPayload(address),
    })
}

fn service() -> impl Strategy<Value = std::net::SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| (std::net::Ipv4Addr::from(ip), port).into()),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| {
            let ip = std::net::Ipv6Addr::from(ip);
            // A mapped address is written as IPv4; keep the generated value canonical.
            std::net::SocketAddr::new(ip.to_canonical(), port)
        }),
    ]
}

fn signature() -> impl Strategy<Value = Signature> {
    any::<[u8; 32]>().prop_map(|b| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&b);
        Signature(s)
    })
}

fn payload() -> impl Strategy<Value = Payload> {
    (
        0usize..4,
        hash(),
        any::<u32>(),
        any::<[[u8; 32]; 4]>(),
        service(),
        signature(),
        prop::option::of(signature()),
        1usize..4,
    )
        .prop_map(|(kind, h, index, keys, service, signature, proof, tier)| {
            let id = TxId(h);
            match kind {
                0 => Payload::Register(Registration {
                    tier: Tier::ALL[tier],
                    collateral: OutPoint { txid: id, index },
                    collateral_key: PublicKey(keys[0]),
                    owner: PublicKey(keys[1]),
                    operator: PublicKey(keys[2]),
                    reward_address: AddressPayload(keys[3]),
                    service,
                    operator_proof: proof.unwrap_or(signature),
                    signature,
                }),
                1 => Payload::Update(Update {
                    masternode: id,
                    operator: PublicKey(keys[0]),
                    reward_address: AddressPayload(keys[1]),
                    service,
                    operator_proof: proof,
                    signature,
                }),
                2 => Payload::Revoke(Revocation {
                    masternode: id,
                    signature,
                }),
                _ => Payload::Unlock(Unlock { masternode: id }),
            }
        })
}

fn transaction() -> impl Strategy<Value = Transaction> {
    (
        any::<u16>(),
        prop::collection::vec(input(), 0..4),
        prop::collection::vec(output(), 0..300),
        any::<u64>(),
        prop::collection::vec(any::<u8>(), 0..=256),
        prop::option::of(payload()),
    )
        .prop_map(|(version, inputs, outputs, lock_time, memo, payload)| {
            // The special version carries a payload and no other does.
            let version = match (&payload, version) {
                (Some(_), _) => Transaction::VERSION_SPECIAL,
                (None, Transaction::VERSION_SPECIAL) => Transaction::VERSION,
                (None, v) => v,
            };
            Transaction {
                version,
                inputs,
                outputs,
                lock_time,
                memo,
                payload,
            }
        })
}

fn header() -> impl Strategy<Value = BlockHeader> {
    (
        any::<u16>(),
        any::<u64>(),
        hash(),
        any::<u64>(),
        hash(),
        any::<[u8; 32]>(),
        hash(),
        (hash(), hash(), hash()),
    )
        .prop_map(
            |(version, height, prev, timestamp_ms, merkle_root, proposer, set, (state, commit, evidence))| {
                BlockHeader {
                    version,
                    height,
                    prev_hash: BlockHash(prev),
                    timestamp_ms,
                    merkle_root,
                    proposer: PublicKey(proposer),
                    masternode_set_hash: set,
                    state_hash: state,
                    last_commit_hash: commit,
                    evidence_hash: evidence,
                }
            },
        )
}

fn vote() -> impl Strategy<Value = Vote> {
    (
        hash(),
        any::<u64>(),
        any::<u32>(),
        any::<bool>(),
        prop::option::of(hash()),
    )
        .prop_map(|(chain, height, round, pre, block)| Vote {
            chain: BlockHash(chain),
            height,
            round,
            kind: if pre { VoteKind::Prevote } else { VoteKind::Precommit },
            block: block.map(BlockHash),
        })
}

fn certificate() -> impl Strategy<Value = CommitCertificate> {
    (
        any::<u64>(),
        any::<u32>(),
        hash(),
        prop::collection::btree_set(any::<[u8; 32]>(), 0..20),
    )
        .prop_map(|(height, round, block, keys)| CommitCertificate {
            height,
            round,
            block_hash: BlockHash(block),
            signatures: keys
                .into_iter()
                .map(|k| CommitSignature {
                    validator: PublicKey(k),
                    signature: Signature([k[0]; 64]),
                })
                .collect(),
        })
}

fn masternode_set() -> impl Strategy<Value = MasternodeSet> {
    prop::collection::btree_map(any::<[u8; 32]>(), (0usize..4, any::<[u8; 32]>()), 0..20).prop_map(|members| {
        let members = members
            .into_iter()
            .map(|(operator, (tier, address))| Masternode {
                operator: PublicKey(operator),
                tier: Tier::ALL[tier],
                reward_address: AddressPayload(address),
            })
            .collect();
        MasternodeSet::new(members).unwrap_or_default()
    })
}

/// Asserts the round trip, the length accounting, and that truncation and trailing bytes are
/// refused.
fn check_canonical<T: Encode + Decode + PartialEq + std::fmt::Debug>(value: &T) -> Result<(), TestCaseError> {
    let bytes = value.to_bytes();
    prop_assert_eq!(bytes.len(), value.encoded_len());
    let decoded = T::from_bytes(&bytes);
    prop_assert_eq!(decoded.as_ref(), Ok(value));
    let mut longer = bytes.clone();
    longer.push(0);
    prop_assert_eq!(T::from_bytes(&longer).err(), Some(DecodeError::TrailingBytes(1)));
    if !bytes.is_empty() {
        prop_assert!(T::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }
    Ok(())
}

/// Any byte string that decodes must re-encode to itself.
fn check_reencode<T: Encode + Decode>(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(value) = T::from_bytes(bytes) {
        prop_assert_eq!(value.to_bytes(), bytes);
    }
    Ok(())
}

fn proposal() -> impl Strategy<Value = Proposal> {
    (
        hash(),
        any::<u64>(),
        any::<u32>(),
        prop::option::of(any::<u32>()),
        hash(),
    )
        .prop_map(|(chain, height, round, valid_round, block)| Proposal {
            chain: BlockHash(chain),
            height,
            round,
            valid_round,
            block: BlockHash(block),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn signed_messages_and_evidence_round_trip(v in vote(), p in proposal(), seed in any::<[u8; 32]>(), other in hash()) {
        let key = SecretKey::from_seed(seed);
        let signed = SignedVote::sign(v, &key);
        prop_assert!(signed.verify().is_ok());
        check_canonical(&signed)?;
        let proposal = SignedProposal::sign(p, &key);
        prop_assert!(proposal.verify().is_ok());
        check_canonical(&proposal)?;
        let conflicting = SignedVote::sign(Vote { block: Some(BlockHash(other)), ..v }, &key);
        prop_assume!(conflicting.vote != v);
        let evidence = Equivocation::new(signed, conflicting).unwrap();
        prop_assert_eq!(Equivocation::new(conflicting, signed).unwrap(), evidence);
        prop_assert!(evidence.verify().is_ok());
        check_canonical(&evidence)?;
        // The same pair in the other order is not the canonical encoding.
        let (a, b) = evidence.votes();
        let mut swapped = b.to_bytes();
        swapped.extend_from_slice(&a.to_bytes());
        prop_assert!(Equivocation::from_bytes(&swapped).is_err());
    }

    #[test]
    fn transactions_round_trip(tx in transaction()) {
        check_canonical(&tx)?;
    }

    #[test]
    fn headers_round_trip(h in header()) {
        check_canonical(&h)?;
    }

    #[test]
    fn blocks_round_trip(
        h in header(),
        txs in prop::collection::vec(transaction(), 0..4),
        last_commit in prop::option::of(certificate()),
        evidence in prop::collection::vec((vote(), hash(), hash()), 0..3),
    ) {
        let key = SecretKey::from_seed([7; 32]);
        let evidence = evidence
            .into_iter()
            .filter_map(|(vote, a, b)| {
                let first = SignedVote::sign(Vote { block: Some(BlockHash(a)), ..vote }, &key);
                let second = SignedVote::sign(Vote { block: Some(BlockHash(b)), ..vote }, &key);
                Equivocation::new(first, second).ok()
            })
            .collect();
        check_canonical(&Block { header: h, transactions: txs, last_commit, evidence })?;
    }

    #[test]
    fn votes_round_trip(v in vote()) {
        check_canonical(&v)?;
    }

    #[test]
    fn certificates_round_trip(c in certificate()) {
        check_canonical(&c)?;
    }

    #[test]
    fn masternode_sets_round_trip(s in masternode_set()) {
        check_canonical(&s)?;
    }

    #[test]
    fn outpoints_and_outputs_round_trip(i in input(), o in output()) {
        check_canonical(&i.prevout)?;
        check_canonical(&o)?;
    }

    #[test]
    fn arbitrary_bytes_decode_only_canonically(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        check_reencode::<Transaction>(&bytes)?;
        check_reencode::<Block>(&bytes)?;
        check_reencode::<BlockHeader>(&bytes)?;
        check_reencode::<Vote>(&bytes)?;
        check_reencode::<CommitCertificate>(&bytes)?;
        check_reencode::<MasternodeSet>(&bytes)?;
        check_reencode::<SignedVote>(&bytes)?;
        check_reencode::<SignedProposal>(&bytes)?;
        check_reencode::<Equivocation>(&bytes)?;
    }

    #[test]
    fn mutated_encodings_decode_only_canonically(tx in transaction(), at in any::<prop::sample::Index>(), byte: u8) {
        let mut bytes = tx.to_bytes();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        check_reencode::<Transaction>(&bytes)?;
    }

    #[test]
    fn txid_ignores_signatures_witness_hash_does_not(mut tx in transaction(), sig in any::<u8>()) {
        prop_assume!(!tx.inputs.is_empty());
        let (txid, witness) = (tx.txid(), tx.witness_hash());
        tx.inputs[0].signature.0[0] = tx.inputs[0].signature.0[0].wrapping_add(sig | 1);
        prop_assert_eq!(tx.txid(), txid);
        prop_assert_ne!(tx.witness_hash(), witness);
    }

    /// A relay that flips one byte of a signature in a block's body no longer has the body
    /// the header (and so the block hash every vote signs) commits to.
    #[test]
    fn a_header_commits_to_every_signature_of_its_body(
        txs in prop::collection::vec(transaction(), 1..6),
        which in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        prop_assume!(txs.iter().any(|tx| !tx.inputs.is_empty()));
        let mut block = Block {
            header: BlockHeader {
                version: BlockHeader::VERSION,
                height: 1,
                prev_hash: BlockHash::default(),
                timestamp_ms: 0,
                merkle_root: transactions_root(&txs),
                proposer: PublicKey::default(),
                masternode_set_hash: Hash256::ZERO,
                state_hash: Hash256::ZERO,
                last_commit_hash: Hash256::ZERO,
                evidence_hash: Hash256::ZERO,
            },
            transactions: txs,
            last_commit: None,
            evidence: Vec::new(),
        };
        prop_assert!(block.matches_header());
        let hash = block.hash();
        let signed: Vec<usize> = (0..block.transactions.len()).filter(|i| !block.transactions[*i].inputs.is_empty()).collect();
        let tx = &mut block.transactions[signed[which.index(signed.len())]];
        tx.inputs[0].signature.0[0] ^= flip;
        prop_assert_eq!(block.hash(), hash, "the header is unchanged");
        prop_assert!(!block.matches_header(), "but the body no longer matches it");
    }
}

#[test]
fn non_minimal_counts_are_rejected() {
    // A transaction with zero inputs written with a 3-byte count.
    let mut bytes = 1u16.to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0xfd, 0, 0]);
    write_compact_size(&mut bytes, 0);
    bytes.extend_from_slice(&0u64.to_le_bytes());
    write_compact_size(&mut bytes, 0);
    assert_eq!(Transaction::from_bytes(&bytes), Err(DecodeError::NonCanonicalLength(0)));
}

#[test]
fn oversize_memo_is_rejected() {
    let tx = Transaction {
        version: 1,
        inputs: vec![],
        outputs: vec![],
        lock_time: 0,
        memo: vec![0; 257],
        payload: None,
    };
    assert!(matches!(
        Transaction::from_bytes(&tx.to_bytes()),
        Err(DecodeError::TooLong {
            field: "memo",
            len: 257,
            max: 256
        })
    ));
}

#[test]
fn unsorted_or_duplicate_certificate_signers_are_rejected() {
    let sig = |k: u8| CommitSignature {
        validator: PublicKey([k; 32]),
        signature: Signature([0; 64]),
    };
    for signatures in [vec![sig(2), sig(1)], vec![sig(1), sig(1)]] {
        let cert = CommitCertificate {
            height: 1,
            round: 0,
            block_hash: BlockHash::default(),
            signatures,
        };
        assert!(matches!(
            CommitCertificate::from_bytes(&cert.to_bytes()),
            Err(DecodeError::InvalidValue {
                field: "signatures",
                ..
            })
        ));
    }
}

#[test]
fn unknown_vote_kind_and_tier_are_rejected() {
    let vote = Vote {
        chain: BlockHash::default(),
        height: 1,
        round: 0,
        kind: VoteKind::Precommit,
        block: None,
    };
    let mut bytes = vote.to_bytes();
    bytes[44] = 3;
    assert!(matches!(
        Vote::from_bytes(&bytes),
        Err(DecodeError::InvalidValue { field: "vote kind", .. })
    ));
    bytes[44] = 2;
    bytes[45] = 2;
    assert!(matches!(
        Vote::from_bytes(&bytes),
        Err(DecodeError::InvalidValue {
            field: "vote value",
            ..
        })
    ));

    let mut set = vec![1u8];
    set.extend_from_slice(&[1; 32]);
    set.push(9);
    set.extend_from_slice(&[0; 32]);
    assert!(matches!(
        MasternodeSet::from_bytes(&set),
        Err(DecodeError::InvalidValue { field: "tier", .. })
    ));
}

#[test]
fn huge_counts_do_not_allocate() {
    // A block header followed by a claimed 10,000 transactions and nothing else.
    let mut bytes = vec![0u8; BlockHeader::ENCODED_LEN];
    write_compact_size(&mut bytes, 10_000);
    assert!(matches!(
        Block::from_bytes(&bytes),
        Err(DecodeError::UnexpectedEnd { .. })
    ));
    let mut bytes = vec![0u8; BlockHeader::ENCODED_LEN];
    write_compact_size(&mut bytes, 10_001);
    assert!(matches!(
        Block::from_bytes(&bytes),
        Err(DecodeError::TooLong {
            field: "transactions",
            ..
        })
    ));
}

#[test]
fn merkle_root_commits_to_order_and_count() {
    let ids: Vec<Hash256> = (0u8..7).map(|i| Hash256([i; 32])).collect();
    let roots: Vec<Hash256> = (0..=ids.len()).map(|n| merkle_root(&ids[..n])).collect();
    assert_eq!(roots[0], Hash256::ZERO);
    for (i, a) in roots.iter().enumerate() {
        for b in &roots[i + 1..] {
            assert_ne!(a, b);
        }
    }
    let mut swapped = ids.clone();
    swapped.swap(0, 1);
    assert_ne!(merkle_root(&swapped), merkle_root(&ids));
    // Duplicating the last leaf changes the root (no CVE-2012-2459 ambiguity).
    let mut dup = ids[..3].to_vec();
    dup.push(ids[2]);
    assert_ne!(merkle_root(&dup), merkle_root(&ids[..3]));
}

#[test]
fn signature_message_commits_to_network_txid_and_amounts() {
    let txid = TxId(Hash256([1; 32]));
    let a = BlockHash(Hash256([2; 32]));
    let b = BlockHash(Hash256([3; 32]));
    let base = signature_message(&a, &txid, &[Amount::from_units(5)]);
    assert_ne!(base, signature_message(&b, &txid, &[Amount::from_units(5)]));
    assert_ne!(
        base,
        signature_message(&a, &TxId(Hash256([9; 32])), &[Amount::from_units(5)])
    );
    assert_ne!(base, signature_message(&a, &txid, &[Amount::from_units(6)]));
    assert_ne!(
        base,
        signature_message(&a, &txid, &[Amount::from_units(5), Amount::ZERO])
    );
}

#[test]
fn an_operator_proof_names_the_network_and_the_masternode_and_stays_out_of_the_txid() {
    let genesis = BlockHash(Hash256([2; 32]));
    let other_network = BlockHash(Hash256([3; 32]));
    let this_tx = TxId(Hash256([4; 32]));
    let registration = Registration {
        tier: Tier::Bronze,
        collateral: OutPoint {
            txid: TxId::default(),
            index: 0,
        },
        collateral_key: PublicKey([5; 32]),
        owner: PublicKey([6; 32]),
        operator: PublicKey([7; 32]),
        reward_address: AddressPayload([8; 32]),
        service: "192.0.2.1:24000".parse().unwrap(),
        operator_proof: Signature([9; 64]),
        signature: Signature([10; 64]),
    };
    // A collateral of this transaction is named by this transaction's txid: another
    // registration with its own output 0 needs a proof of its own.
    let message = registration.operator_proof_message(&genesis, this_tx);
    assert_ne!(message, registration.operator_proof_message(&other_network, this_tx));
    assert_ne!(
        message,
        registration.operator_proof_message(&genesis, TxId(Hash256([1; 32])))
    );
    let external = Registration {
        collateral: OutPoint {
            txid: this_tx,
            index: 0,
        },
        ..registration
    };
    assert_eq!(
        external.operator_proof_message(&genesis, TxId(Hash256([1; 32]))),
        message
    );
    // An update's proof names the masternode, never a collateral.
    let update = Update {
        masternode: this_tx,
        operator: PublicKey([7; 32]),
        reward_address: AddressPayload([8; 32]),
        service: "192.0.2.1:24000".parse().unwrap(),
        operator_proof: Some(Signature([9; 64])),
        signature: Signature([10; 64]),
    };
    assert_ne!(update.operator_proof_message(&genesis), message);

    // The txid leaves the proof out, but not whether an update carries one.
    let special = |payload: Payload| Transaction {
        version: Transaction::VERSION_SPECIAL,
        inputs: Vec::new(),
        outputs: Vec::new(),
        lock_time: 0,
        memo: Vec::new(),
        payload: Some(payload),
    };
    let tx = special(Payload::Register(registration));
    let mut reproved = tx.clone();
    if let Some(payload) = reproved.payload.as_mut() {
        payload.set_operator_proof(Signature([11; 64]));
    }
    assert_eq!(reproved.txid(), tx.txid());
    assert_ne!(reproved.witness_hash(), tx.witness_hash());
    let unproved = special(Payload::Update(Update {
        operator_proof: None,
        ..update
    }));
    assert_ne!(unproved.txid(), special(Payload::Update(update)).txid());
    for tx in [tx, unproved, special(Payload::Update(update))] {
        let bytes = tx.to_bytes();
        assert_eq!(bytes.len(), tx.encoded_len());
        assert_eq!(Transaction::from_bytes(&bytes).unwrap(), tx);
    }
    // The presence byte is 0 or 1.
    let mut bytes = special(Payload::Update(update)).to_bytes();
    let at = bytes.len() - 64 - 64 - 1;
    assert_eq!(bytes[at], 1);
    bytes[at] = 2;
    assert!(Transaction::from_bytes(&bytes).is_err());
}
