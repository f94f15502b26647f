use timecoin_consensus::{Wal, WalEntry};
use timecoin_primitives::{BlockHash, Hash256, Proposal, SecretKey, SignedProposal, SignedVote, Vote, VoteKind};
use timecoin_storage::Store;
use timecoin_test_utils::ChainBuilder;

/// A signed vote that differs for each (height, round).
pub(crate) fn entry(key: &SecretKey, height: u64, round: u32) -> WalEntry {
    WalEntry::Vote(SignedVote::sign(
        Vote {
            chain: BlockHash(Hash256([1; 32])),
            height,
            round,
            kind: VoteKind::Prevote,
            block: Some(BlockHash(Hash256([round as u8; 32]))),
        },
        key,
    ))
}

#[test]
fn entries_come_back_per_height_in_order_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let genesis = ChainBuilder::new(2).genesis;
    let key = SecretKey::from_seed([4; 32]);
    let proposal = WalEntry::Proposal(SignedProposal::sign(
        Proposal {
            chain: BlockHash(Hash256([1; 32])),
            height: 5,
            round: 0,
            valid_round: None,
            block: BlockHash(Hash256([2; 32])),
        },
        &key,
    ));
    {
        let store = Store::open(&path, &genesis).unwrap();
        let mut wal = store.consensus_wal();
        wal.append(&proposal).unwrap();
        for round in 0..3 {
            wal.append(&entry(&key, 5, round)).unwrap();
            wal.append(&entry(&key, 6, round)).unwrap();
        }
        wal.append(&entry(&key, 4, 0)).unwrap();
    }
    let store = Store::open(&path, &genesis).unwrap();
    let mut wal = store.consensus_wal();
    let five = wal.entries(5).unwrap();
    assert_eq!(five.len(), 4);
    assert_eq!(five[0], proposal);
    assert_eq!(&five[1..], &[entry(&key, 5, 0), entry(&key, 5, 1), entry(&key, 5, 2)]);
    assert_eq!(wal.entries(6).unwrap().len(), 3);
    assert_eq!(wal.entries(4).unwrap().len(), 1);
    assert!(wal.entries(7).unwrap().is_empty());
    wal.prune_below(6).unwrap();
    assert!(wal.entries(4).unwrap().is_empty() && wal.entries(5).unwrap().is_empty());
    assert_eq!(wal.entries(6).unwrap().len(), 3);
}

#[test]
fn proposed_blocks_come_back_per_height_after_reopening_and_are_pruned_with_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let mut chain = ChainBuilder::new(4);
    let genesis = chain.genesis.clone();
    let first = chain.next_payment_block(2);
    let payments = chain.payments(1);
    let second = chain.build_block(payments);
    {
        let store = Store::open(&path, &genesis).unwrap();
        let wal = store.consensus_wal();
        assert!(wal.proposed(1).unwrap().is_empty());
        wal.save_proposed(1, &first).unwrap();
        wal.save_proposed(2, &second).unwrap();
    }
    let store = Store::open(&path, &genesis).unwrap();
    let mut wal = store.consensus_wal();
    assert_eq!(wal.proposed(1).unwrap(), vec![first]);
    assert_eq!(wal.proposed(2).unwrap(), vec![second.clone()]);
    wal.prune_below(2).unwrap();
    assert!(wal.proposed(1).unwrap().is_empty());
    assert_eq!(wal.proposed(2).unwrap(), vec![second]);
}

/// A precommit is logged with the body it names, in one durable write: a node restarted
/// while locked on another proposer's block still holds that block. A body held already
/// (this node's own proposal) is kept once.
#[test]
fn a_precommit_is_logged_with_the_body_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let mut chain = ChainBuilder::new(4);
    let genesis = chain.genesis.clone();
    let block = chain.next_payment_block(2);
    let precommit = SignedVote::sign(
        Vote {
            chain: genesis.hash(),
            height: 1,
            round: 0,
            kind: VoteKind::Precommit,
            block: Some(block.hash()),
        },
        &SecretKey::from_seed([9; 32]),
    );
    {
        let store = Store::open(&path, &genesis).unwrap();
        let mut wal = store.consensus_wal();
        wal.append_with_body(&WalEntry::Vote(precommit), Some(&block)).unwrap();
        wal.append_with_body(&WalEntry::Vote(precommit), Some(&block)).unwrap();
    }
    let store = Store::open(&path, &genesis).unwrap();
    let wal = store.consensus_wal();
    assert_eq!(wal.proposed(1).unwrap(), vec![block]);
    assert_eq!(
        wal.entries(1).unwrap(),
        vec![WalEntry::Vote(precommit), WalEntry::Vote(precommit)]
    );
}
