//! A registration's collateral counts as spent by the registration: the pool never holds a
//! registration beside a spend of its collateral, which no block could hold together. An
//! unlock enters the pool from the height a block may hold it, and leaves it when evidence
//! bans its masternode.

use std::net::SocketAddr;

use timecoin_chain::{MasternodeTxError, TxError, Utxo};
use timecoin_mempool::{Mempool, MempoolConfig, MempoolError};
use timecoin_primitives::{
    Amount, Block, Equivocation, OutPoint, Payload, Registration, SecretKey, SignedVote, Tier, Transaction, TxId,
    TxOutput, Vote, VoteKind,
};
use timecoin_test_utils::{ChainBuilder, key, payload};

use crate::{NOW, output_of, pool, tx_with_fee};

/// A Bronze registration naming `collateral` (a 1,000 TIME coin of the builder's) as its
/// collateral, paying `fee` units from `funding`.
fn registration_of(
    chain: &ChainBuilder,
    collateral: (OutPoint, Utxo),
    funding: (OutPoint, Utxo),
    fee: u64,
    port: u16,
) -> Transaction {
    let collateral_key = chain.key_for(&collateral.1.output.address).unwrap().clone();
    let owner = key("owner of", u64::from(port));
    let operator = key("operator of", u64::from(port));
    let back = TxOutput {
        amount: funding.1.output.amount.checked_sub(Amount::from_units(fee)).unwrap(),
        address: funding.1.output.address,
    };
    let registration = Payload::Register(Registration {
        tier: Tier::Bronze,
        collateral: collateral.0,
        collateral_key: collateral_key.public_key(),
        owner: owner.public_key(),
        operator: operator.public_key(),
        reward_address: payload(&owner),
        service: SocketAddr::from(([127, 0, 0, 1], port)),
        operator_proof: Default::default(),
        signature: Default::default(),
    });
    let mut tx = chain.special(&[funding], vec![back], registration, Some(&collateral_key));
    chain.prove_registration(&mut tx, &operator);
    tx
}

#[test]
fn a_spend_of_a_pooled_registration_s_collateral_is_a_conflict_either_way() {
    let chain = ChainBuilder::new(6);
    let coins = chain.spendable();
    let (collateral, funding) = (coins[0], coins[1]);
    assert_eq!(collateral.1.output.amount, Tier::Bronze.collateral());

    // The registration first: a spend of its collateral must outbid it, like a double spend.
    let mut mempool = pool(&chain, MempoolConfig::default());
    let registration = registration_of(&chain, collateral, funding, 100_000, 30_300);
    assert_eq!(
        mempool.add(registration.clone(), &chain.view(), NOW),
        Ok(registration.txid())
    );
    let cheap = tx_with_fee(&chain, &[collateral], 1, 50_000);
    assert!(
        matches!(
            mempool.add(cheap, &chain.view(), NOW),
            Err(MempoolError::InsufficientReplacementFee { outpoint, existing, .. })
                if outpoint == collateral.0 && existing == registration.txid()
        ),
        "a spend of the collateral waited beside the registration"
    );
    let outbids = tx_with_fee(&chain, &[collateral], 1, 200_000);
    assert_eq!(mempool.add(outbids.clone(), &chain.view(), NOW), Ok(outbids.txid()));
    assert!(!mempool.contains(&registration.txid()));
    mempool.check_invariants().unwrap();

    // The spend first: the registration must outbid it.
    let mut mempool = pool(&chain, MempoolConfig::default());
    let spend = tx_with_fee(&chain, &[collateral], 1, 200_000);
    mempool.add(spend.clone(), &chain.view(), NOW).unwrap();
    assert!(matches!(
        mempool.add(registration.clone(), &chain.view(), NOW),
        Err(MempoolError::InsufficientReplacementFee { outpoint, existing, .. })
            if outpoint == collateral.0 && existing == spend.txid()
    ));
    let generous = registration_of(&chain, collateral, funding, 600_000, 30_300);
    assert_eq!(mempool.add(generous.clone(), &chain.view(), NOW), Ok(generous.txid()));
    assert!(!mempool.contains(&spend.txid()));
    mempool.check_invariants().unwrap();

    // A block that spends the collateral takes the registration out of the pool with it.
    let mut chain = chain;
    let block = chain.build_block(vec![spend.clone()]);
    chain.apply(&block);
    let removal = mempool.block_connected(&block, &chain.view()).unwrap();
    assert_eq!(removal.conflicted, vec![generous.txid()]);
    assert!(mempool.is_empty());
}

#[test]
fn a_child_spending_a_pooled_registration_s_own_collateral_is_refused() {
    let mut chain = ChainBuilder::new(6);
    let mut mempool = pool(&chain, MempoolConfig::default());
    let operator = key("operator", 40);
    let registration = chain.registration(Tier::Bronze, &operator, SocketAddr::from(([127, 0, 0, 1], 30_310)));
    mempool.add(registration.clone(), &chain.view(), NOW).unwrap();
    // Output 0 is the collateral; once the registration is mined only an unlock spends it.
    let child = tx_with_fee(&chain, &[output_of(&registration, 0)], 1, 100_000);
    let error = mempool.add(child, &chain.view(), NOW).unwrap_err();
    assert_eq!(
        error,
        MempoolError::Invalid(TxError::CollateralLocked {
            outpoint: output_of(&registration, 0).0,
            masternode: registration.txid()
        })
    );
    // Its change is free to spend.
    let change = tx_with_fee(&chain, &[output_of(&registration, 1)], 1, 100_000);
    assert_eq!(mempool.add(change.clone(), &chain.view(), NOW), Ok(change.txid()));
    mempool.check_invariants().unwrap();
}

/// Registers a Bronze masternode operated by `operator` at `port` and mines blocks until it
/// votes; returns its id.
fn active_masternode(chain: &mut ChainBuilder, operator: &SecretKey, port: u16) -> TxId {
    let registration = chain.registration(Tier::Bronze, operator, SocketAddr::from(([127, 0, 0, 1], port)));
    let id = registration.txid();
    for txs in
        std::iter::once(vec![registration]).chain((0..chain.params().masternode_activation_blocks).map(|_| vec![]))
    {
        let block = chain.build_block(txs);
        chain.apply(&block);
    }
    id
}

/// Mines a block of `txs` and shows it to `mempool`.
fn mine(chain: &mut ChainBuilder, mempool: &mut Mempool, txs: Vec<Transaction>) -> Block {
    let block = chain.build_block(txs);
    chain.apply(&block);
    mempool.block_connected(&block, &chain.view()).unwrap();
    block
}

#[test]
fn the_pool_admits_an_unlock_from_the_height_a_block_may_hold_it() {
    let mut chain = ChainBuilder::new(6);
    let operator = key("operator", 42);
    let id = active_masternode(&mut chain, &operator, 30_330);
    let mut mempool = pool(&chain, MempoolConfig::default());
    let refusal = |chain: &ChainBuilder, mempool: &mut Mempool| {
        let unlock = chain.unlock(id);
        let error = mempool.add(unlock.clone(), &chain.view(), NOW).unwrap_err();
        // The pool refuses it exactly when the chain would refuse it in the next block.
        let block = chain.build_block(vec![unlock]);
        let ctx = chain.block_context(chain.tip.timestamp_ms + 60_000);
        assert!(timecoin_chain::check_block(&block, &chain.view(), &ctx).is_err());
        error
    };
    assert_eq!(
        refusal(&chain, &mut mempool),
        MempoolError::Invalid(TxError::Masternode(MasternodeTxError::UnlockWhileServing(id)))
    );

    let revoke = chain.revocation(id, &operator);
    let revoked = mine(&mut chain, &mut mempool, vec![revoke]).header.height;
    let from = revoked + chain.params().max_evidence_age_blocks;
    while chain.tip.height + 1 < from {
        assert_eq!(
            refusal(&chain, &mut mempool),
            MempoolError::Invalid(TxError::Masternode(MasternodeTxError::UnlockTooEarly {
                masternode: id,
                from
            }))
        );
        mine(&mut chain, &mut mempool, vec![]);
    }
    let unlock = chain.unlock(id);
    assert_eq!(mempool.add(unlock.clone(), &chain.view(), NOW), Ok(unlock.txid()));
    mempool.check_invariants().unwrap();
    let block = mine(&mut chain, &mut mempool, vec![unlock.clone()]);
    assert_eq!(block.header.height, from);
    assert!(mempool.is_empty());
    assert!(chain.list.get(&id).is_none());
}

#[test]
fn a_block_s_evidence_takes_the_banned_masternode_s_transactions_out_of_the_pool() {
    let mut chain = ChainBuilder::new(6);
    let operator = key("operator", 41);
    let id = active_masternode(&mut chain, &operator, 30_320);
    let mut mempool = pool(&chain, MempoolConfig::default());
    // It revokes, and its unlock waits in the pool for the first block that may hold it: the
    // last that may still record evidence of its votes at the revocation's height.
    let revoke = chain.revocation(id, &operator);
    let revoked = mine(&mut chain, &mut mempool, vec![revoke]).header.height;
    while chain.tip.height + 1 < revoked + chain.params().max_evidence_age_blocks {
        mine(&mut chain, &mut mempool, vec![]);
    }
    let unlock = chain.unlock(id);
    mempool.add(unlock.clone(), &chain.view(), NOW).unwrap();

    let vote = |byte: u8| Vote {
        chain: chain.genesis_hash(),
        height: revoked,
        round: 0,
        kind: VoteKind::Prevote,
        block: Some(timecoin_primitives::BlockHash(timecoin_primitives::Hash256([byte; 32]))),
    };
    let evidence = Equivocation::new(
        SignedVote::sign(vote(1), &operator),
        SignedVote::sign(vote(2), &operator),
    )
    .unwrap();
    let block = chain.build_block_with(vec![], vec![evidence]);
    chain.apply(&block);
    let removal = mempool.block_connected(&block, &chain.view()).unwrap();
    assert_eq!(removal.invalidated, vec![unlock.txid()]);
    assert!(mempool.is_empty());
}
