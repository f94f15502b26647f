use proptest::prelude::*;
use timecoin_network::wire::{MAX_ADDRESSES, MAX_BLOCKS_PER_MESSAGE};
use timecoin_network::{Message, MessageClass};
use timecoin_primitives::encoding::write_compact_size;
use timecoin_primitives::{
    BlockHash, CommitCertificate, Decode, DecodeError, Encode, Equivocation, Hash256, Proposal, SecretKey,
    SignedProposal, SignedVote, Vote, VoteKind,
};
use timecoin_test_utils::ChainBuilder;

fn samples() -> Vec<Message> {
    let mut chain = ChainBuilder::new(10);
    let txs = chain.payments(3);
    let block = chain.build_block(txs.clone());
    let key = SecretKey::from_seed([4; 32]);
    let vote = |block: u8| {
        SignedVote::sign(
            Vote {
                chain: chain.genesis_hash(),
                height: 1,
                round: 0,
                kind: VoteKind::Precommit,
                block: Some(BlockHash(Hash256([block; 32]))),
            },
            &key,
        )
    };
    let proposal = SignedProposal::sign(
        Proposal {
            chain: chain.genesis_hash(),
            height: 1,
            round: 0,
            valid_round: None,
            block: block.hash(),
        },
        &key,
    );
    let certificate = CommitCertificate {
        height: 1,
        round: 0,
        block_hash: block.hash(),
        signatures: Vec::new(),
    };
    vec![
        Message::Ping(7),
        Message::Pong(u64::MAX),
        Message::GetPeers,
        Message::Peers(vec!["127.0.0.1:24200".parse().unwrap(), "[::1]:24000".parse().unwrap()]),
        Message::Inventory(txs.iter().map(|t| t.txid()).collect()),
        Message::GetTransactions(vec![txs[0].txid()]),
        Message::Transactions(txs),
        Message::Proposal(Box::new((proposal, block.clone()))),
        Message::Vote(vote(1)),
        Message::Evidence(Box::new(Equivocation::new(vote(1), vote(2)).unwrap())),
        Message::GetBlocks { from: 5, count: 100 },
        Message::Blocks(vec![(block, certificate)]),
        Message::GetMasternodes,
        Message::Masternodes(vec![(
            chain.masternodes().members()[0].operator,
            "10.0.0.1:24000".parse().unwrap(),
        )]),
    ]
}

#[test]
fn every_message_round_trips_and_nothing_else_decodes() {
    let messages = samples();
    let mut tags = std::collections::HashSet::new();
    for message in &messages {
        let bytes = message.to_bytes();
        assert_eq!(bytes.len(), message.encoded_len(), "{message:?}");
        assert_eq!(Message::from_bytes(&bytes).as_ref(), Ok(message));
        assert!(tags.insert(bytes[0]), "tags are distinct");
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Message::from_bytes(&longer), Err(DecodeError::TrailingBytes(1)));
        assert!(Message::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }
    assert!(matches!(
        Message::from_bytes(&[0]),
        Err(DecodeError::InvalidValue {
            field: "message tag",
            ..
        })
    ));
    assert!(matches!(
        Message::from_bytes(&[99]),
        Err(DecodeError::InvalidValue { .. })
    ));
}

#[test]
fn lists_and_requests_are_bounded() {
    let mut too_many = vec![4u8];
    write_compact_size(&mut too_many, MAX_ADDRESSES as u64 + 1);
    assert!(matches!(
        Message::from_bytes(&too_many),
        Err(DecodeError::TooLong { .. })
    ));
    let ask = Message::GetBlocks {
        from: 1,
        count: MAX_BLOCKS_PER_MESSAGE as u32 + 1,
    };
    assert!(matches!(
        Message::from_bytes(&ask.to_bytes()),
        Err(DecodeError::TooLong { .. })
    ));
}

#[test]
fn every_message_has_a_rate_limit_class() {
    let classes: Vec<MessageClass> = samples().iter().map(Message::class).collect();
    assert_eq!(classes[0], MessageClass::Control);
    assert_eq!(classes[6], MessageClass::Transactions);
    assert_eq!(classes[8], MessageClass::Consensus);
    assert_eq!(classes[11], MessageClass::Sync);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Hostile bytes never panic, and whatever decodes re-encodes to the same bytes.
    #[test]
    fn arbitrary_frames_decode_only_canonically(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(message) = Message::from_bytes(&bytes) {
            prop_assert_eq!(message.to_bytes(), bytes);
        }
    }

    #[test]
    fn mutated_messages_decode_only_canonically(index in 0usize..14, at in any::<prop::sample::Index>(), byte: u8) {
        let mut bytes = samples()[index].to_bytes();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        if let Ok(message) = Message::from_bytes(&bytes) {
            prop_assert_eq!(message.to_bytes(), bytes);
        }
    }
}
