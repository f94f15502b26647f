use std::collections::HashMap;

use timecoin_chain::{BlockError, TxError, check_block};
use timecoin_primitives::{Amount, Block, BlockHash, Hash256, Tier, transactions_root};
use timecoin_test_utils::ChainBuilder;

fn judge(chain: &ChainBuilder, block: &Block) -> Result<timecoin_chain::CheckedBlock, BlockError> {
    let ctx = chain.block_context(chain.tip.timestamp_ms + 60_000);
    check_block(block, &chain.utxos, &ctx)
}

/// Recomputes the merkle root after a test edits the transactions.
fn remerkle(block: &mut Block) {
    block.header.merkle_root = transactions_root(&block.transactions);
}

#[test]
fn built_blocks_are_valid_and_supply_is_conserved() {
    let mut chain = ChainBuilder::new(50);
    let allocated = chain.genesis.allocated();
    for round in 0..20 {
        let txs = chain.payments(1 + round % 5);
        let block = chain.build_block(txs);
        let checked = judge(&chain, &block).unwrap();
        assert_eq!(checked.hash, block.hash());
        assert!(checked.fees > Amount::ZERO);
        chain.apply(&block);
        assert_eq!(chain.utxo_total(), allocated.checked_add(chain.minted).unwrap());
    }
    assert!(chain.minted > Amount::ZERO);
}

#[test]
fn transactions_may_spend_outputs_created_earlier_in_the_block() {
    let mut chain = ChainBuilder::new(2);
    let first = chain.payments(1).remove(0);
    let txid = first.txid();
    let change = (
        timecoin_primitives::OutPoint { txid, index: 1 },
        timecoin_chain::Utxo {
            output: first.outputs[1],
            height: 1,
            is_reward: false,
        },
    );
    let second = chain.payment(change);
    let block = chain.build_block(vec![first.clone(), second.clone()]);
    judge(&chain, &block).unwrap();
    // In the other order the child comes before its parent.
    let wrong = chain.build_block(vec![second, first]);
    assert!(matches!(
        judge(&chain, &wrong),
        Err(BlockError::Transaction {
            index: 1,
            error: TxError::MissingInput(_),
            ..
        })
    ));
}

#[test]
fn header_rules() {
    let mut chain = ChainBuilder::new(3);
    let block = chain.build_block(chain.clone().payments(1));

    let mut b = block.clone();
    b.header.version = 9;
    assert_eq!(judge(&chain, &b), Err(BlockError::Version(9)));

    let mut b = block.clone();
    b.header.height = 5;
    assert_eq!(judge(&chain, &b), Err(BlockError::Height { expected: 1, found: 5 }));

    let mut b = block.clone();
    b.header.prev_hash = BlockHash(Hash256([1; 32]));
    assert!(matches!(judge(&chain, &b), Err(BlockError::PrevHash { .. })));

    let mut b = block.clone();
    b.header.timestamp_ms = chain.tip.timestamp_ms;
    assert!(matches!(
        judge(&chain, &b),
        Err(BlockError::TimestampNotIncreasing { .. })
    ));

    let mut b = block.clone();
    b.header.timestamp_ms = chain.tip.timestamp_ms + 60_000 + 15_001;
    assert!(matches!(judge(&chain, &b), Err(BlockError::TimestampInFuture { .. })));
    // A certified block is not judged by the local clock: a node whose clock lags must still
    // accept what more than 2/3 of the power finalized.
    let certified = timecoin_chain::BlockContext {
        now_ms: None,
        ..chain.block_context(0)
    };
    let ahead = chain.build_block(Vec::new());
    assert!(ahead.header.timestamp_ms > chain.params().max_future_block_ms);
    assert!(matches!(
        check_block(&ahead, &chain.utxos, &chain.block_context(0)),
        Err(BlockError::TimestampInFuture { .. })
    ));
    check_block(&ahead, &chain.utxos, &certified).unwrap();

    let mut b = block.clone();
    b.header.merkle_root = Hash256([3; 32]);
    assert_eq!(judge(&chain, &b), Err(BlockError::MerkleRoot));

    let mut b = block.clone();
    b.header.masternode_set_hash = Hash256([4; 32]);
    assert!(matches!(judge(&chain, &b), Err(BlockError::MasternodeSet { .. })));

    let mut b = block.clone();
    b.header.proposer = timecoin_test_utils::key("stranger", 1).public_key();
    assert!(matches!(judge(&chain, &b), Err(BlockError::Proposer(_))));

    chain.apply(&block);
}

#[test]
fn reward_rules() {
    let chain = ChainBuilder::new(3);
    let block = chain.build_block(chain.clone().payments(2));

    let mut b = block.clone();
    b.transactions[0].outputs[0].amount = b.transactions[0].outputs[0]
        .amount
        .checked_add(Amount::ONE_UNIT)
        .unwrap();
    remerkle(&mut b);
    assert!(matches!(judge(&chain, &b), Err(BlockError::Reward(_))));

    let mut b = block.clone();
    b.transactions[0].lock_time = 0;
    remerkle(&mut b);
    assert!(matches!(judge(&chain, &b), Err(BlockError::Reward(_))));

    let mut b = block.clone();
    b.transactions.swap(0, 1);
    remerkle(&mut b);
    assert_eq!(judge(&chain, &b), Err(BlockError::MisplacedReward(0)));

    let mut b = block.clone();
    let extra = b.transactions[0].clone();
    b.transactions.push(extra);
    remerkle(&mut b);
    assert_eq!(judge(&chain, &b), Err(BlockError::MisplacedReward(3)));

    let mut b = block.clone();
    b.transactions.clear();
    remerkle(&mut b);
    assert!(matches!(
        judge(&chain, &b),
        Err(BlockError::TransactionCount { count: 0, .. })
    ));
}

#[test]
fn double_spends_and_bad_signatures_inside_a_block() {
    let mut chain = ChainBuilder::new(3);
    let input = chain.spendable()[0];
    let a = chain.payment(input);
    let b = chain.payment(input);
    let block = chain.build_block(vec![a, b]);
    assert_eq!(judge(&chain, &block), Err(BlockError::DoubleSpend(input.0)));

    let mut txs = chain.payments(3);
    txs[2].inputs[0].signature.0[0] ^= 1;
    let bad_txid = txs[2].txid();
    let block = chain.build_block(txs);
    assert_eq!(
        judge(&chain, &block),
        Err(BlockError::Transaction {
            index: 3,
            txid: bad_txid,
            error: TxError::BadSignature
        })
    );
}

#[test]
fn a_large_block_is_checked_with_parallel_batches_and_names_the_bad_transaction() {
    let mut chain = ChainBuilder::new(600);
    let mut txs = chain.payments(600);
    txs[417].inputs[0].signature.0[10] ^= 0x40;
    let block = chain.build_block(txs);
    match judge(&chain, &block) {
        Err(BlockError::Transaction {
            index: 418,
            error: TxError::BadSignature,
            ..
        }) => {}
        other => panic!("expected a bad signature at 418, got {other:?}"),
    }
}

#[test]
fn oversize_blocks_are_refused() {
    let mut chain = ChainBuilder::new(20);
    chain.genesis.params.max_block_bytes = 2_000;
    let block = chain.build_block(chain.clone().payments(20));
    assert!(matches!(judge(&chain, &block), Err(BlockError::TooLarge { .. })));
    chain.genesis.params.max_block_txs = 5;
    chain.genesis.params.max_block_bytes = 2_000_000;
    assert!(matches!(
        judge(&chain, &block),
        Err(BlockError::TransactionCount { count: 21, max: 5 })
    ));
}

/// Over many blocks, each masternode's reward share matches its tier weight.
#[test]
fn rewards_follow_tier_weight_over_many_blocks() {
    let text = timecoin_test_utils::genesis_toml(3, Tier::Bronze, 1, Amount::COIN)
        .replacen("tier = \"bronze\"", "tier = \"gold\"", 1)
        .replacen("tier = \"bronze\"", "tier = \"silver\"", 1);
    let genesis = timecoin_chain::Genesis::from_toml(&text).unwrap();
    let mut chain = ChainBuilder::from_genesis(genesis, 1, 3);
    chain.block_interval_ms = 1_337;
    let mut paid: HashMap<_, u64> = HashMap::new();
    for _ in 0..200 {
        let block = chain.build_block(vec![]);
        judge(&chain, &block).unwrap();
        for out in &block.transactions[0].outputs {
            *paid.entry(out.address).or_default() += out.amount.units();
        }
        chain.apply(&block);
    }
    let total: u64 = paid.values().sum();
    assert_eq!(total, chain.minted.units());
    for member in chain.masternodes().members() {
        let share = paid[&member.reward_address] as f64 / total as f64;
        let expected = member.tier.weight() as f64 / 111.0;
        assert!(
            (share - expected).abs() < 1e-6,
            "{:?}: {share} vs {expected}",
            member.tier
        );
    }
}
