//! Block assembly: a proposer keeps, of its candidates, exactly what `check_block` accepts
//! together, in order, after the block's evidence.

use std::net::SocketAddr;

use timecoin_chain::{
    BlockError, BlockExtras, CheckedBlock, MasternodeTxError, Proposal, Status, TxError, Utxo, check_block,
    check_transaction, propose_block,
};
use timecoin_primitives::{
    Amount, Block, Encode, Equivocation, OutPoint, Payload, PublicKey, Registration, SecretKey, SignedVote, Tier,
    Transaction, TxId, TxOutput, Vote, VoteKind,
};
use timecoin_test_utils::{ChainBuilder, genesis_toml, key, payload};

fn builder(count: usize, funded: usize) -> ChainBuilder {
    let text = genesis_toml(count, Tier::Bronze, funded, Amount::from_time(1_000).unwrap());
    ChainBuilder::from_genesis(timecoin_chain::Genesis::from_toml(&text).unwrap(), funded, count)
}

fn judge(chain: &ChainBuilder, block: &Block) -> Result<CheckedBlock, BlockError> {
    check_block(
        block,
        &chain.view(),
        &chain.block_context(chain.tip.timestamp_ms + 60_000),
    )
}

fn service(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The next block as a proposer builds it from `candidates`, with `evidence`.
fn propose(chain: &ChainBuilder, evidence: Vec<Equivocation>, candidates: Vec<Transaction>) -> Proposal {
    let timestamp = chain.tip.timestamp_ms + chain.block_interval_ms;
    let proposer: PublicKey = key("masternode", 0).public_key();
    let extras = BlockExtras {
        last_commit: chain.last_certificate.clone(),
        evidence,
    };
    propose_block(
        &chain.block_context(timestamp),
        &chain.view(),
        timestamp,
        &proposer,
        extras,
        candidates,
    )
    .unwrap()
}

/// The transactions of a proposal after its reward transaction.
fn kept(proposal: &Proposal) -> &[Transaction] {
    &proposal.block.transactions[1..]
}

/// A coin of the builder's that backs no masternode, other than `except`.
fn free_coin(chain: &ChainBuilder, except: &[OutPoint]) -> (OutPoint, Utxo) {
    chain
        .spendable()
        .into_iter()
        .find(|(o, _)| !except.contains(o) && chain.list.by_collateral(o).is_none())
        .unwrap()
}

/// `coin` back to its owner, less `fee` units.
fn spend_paying(chain: &ChainBuilder, coin: (OutPoint, Utxo), fee: u64) -> Transaction {
    let back = TxOutput {
        amount: coin.1.output.amount.checked_sub(Amount::from_units(fee)).unwrap(),
        address: coin.1.output.address,
    };
    chain.spend(&[coin], vec![back])
}

/// A Bronze registration naming `collateral` (an existing 1,000 TIME coin of the builder's)
/// as its collateral, its fee paid from another coin.
fn registration_of(chain: &ChainBuilder, collateral: (OutPoint, Utxo), operator: &SecretKey, port: u16) -> Transaction {
    let collateral_key = chain.key_for(&collateral.1.output.address).unwrap().clone();
    let owner = key("owner of", u64::from(port));
    let fee_coin = free_coin(chain, &[collateral.0]);
    let back = TxOutput {
        amount: fee_coin
            .1
            .output
            .amount
            .checked_sub(Amount::from_units(100_000))
            .unwrap(),
        address: fee_coin.1.output.address,
    };
    let registration = Payload::Register(Registration {
        tier: Tier::Bronze,
        collateral: collateral.0,
        collateral_key: collateral_key.public_key(),
        owner: owner.public_key(),
        operator: operator.public_key(),
        reward_address: payload(&owner),
        service: service(port),
        operator_proof: Default::default(),
        signature: Default::default(),
    });
    let mut tx = chain.special(&[fee_coin], vec![back], registration, Some(&collateral_key));
    chain.prove_registration(&mut tx, operator);
    tx
}

fn double_sign(chain: &ChainBuilder, key: &SecretKey, height: u64, byte: u8) -> Equivocation {
    let vote = |byte: u8| Vote {
        chain: chain.genesis_hash(),
        height,
        round: 0,
        kind: VoteKind::Prevote,
        block: Some(timecoin_primitives::BlockHash(timecoin_primitives::Hash256([byte; 32]))),
    };
    Equivocation::new(SignedVote::sign(vote(byte), key), SignedVote::sign(vote(byte + 1), key)).unwrap()
}

#[test]
fn a_spend_of_a_registration_s_collateral_leaves_the_registration_out() {
    let chain = builder(4, 6);
    let coin = free_coin(&chain, &[]);
    assert_eq!(coin.1.output.amount, Tier::Bronze.collateral());
    let registration = registration_of(&chain, coin, &key("operator", 1), 31_000);
    // The owner spends the coin too, paying more: the pool orders it first.
    let spend = spend_paying(&chain, coin, 200_000);
    for tx in [&registration, &spend] {
        check_transaction(tx, &chain.view(), &chain.tx_context()).unwrap();
    }

    let proposal = propose(&chain, vec![], vec![spend.clone(), registration.clone()]);
    assert_eq!(kept(&proposal), std::slice::from_ref(&spend));
    assert_eq!(proposal.fees, Amount::from_units(200_000));
    assert!(matches!(
        proposal.dropped.as_slice(),
        [(txid, BlockError::Transaction {
            error: TxError::Masternode(MasternodeTxError::CollateralMissing(c)),
            ..
        })] if *txid == registration.txid() && c == &coin.0
    ));
    judge(&chain, &proposal.block).unwrap();

    // The selection without evidence keeps its old name and signature.
    let selected =
        timecoin_chain::select_masternode_txs(vec![spend.clone(), registration], &chain.view(), &chain.tx_context());
    assert_eq!(selected, vec![spend]);
}

#[test]
fn evidence_in_the_block_leaves_out_the_offender_s_own_transactions() {
    let mut chain = builder(4, 8);
    let operator = key("twin", 3);
    let registration = chain.registration(Tier::Bronze, &operator, service(31_010));
    let id: TxId = registration.txid();
    let block = chain.build_block(vec![registration]);
    judge(&chain, &block).unwrap();
    chain.apply(&block);
    for _ in 0..chain.params().masternode_activation_blocks {
        let block = chain.build_block(vec![]);
        chain.apply(&block);
    }
    assert!(matches!(chain.list.get(&id).unwrap().status, Status::Active { .. }));

    // It revokes, double-signs at the revocation's height (its last votes), and asks to
    // unlock its collateral as soon as the rule allows: in the last block that may still
    // record the evidence.
    let revoke = chain.revocation(id, &operator);
    let block = chain.build_block(vec![revoke]);
    judge(&chain, &block).unwrap();
    chain.apply(&block);
    let revoked = block.header.height;
    while chain.tip.height + 1 < revoked + chain.params().max_evidence_age_blocks {
        let block = chain.build_block(vec![]);
        chain.apply(&block);
    }
    let evidence = double_sign(&chain, &operator, revoked, 1);
    let unlock = chain.unlock(id);
    let payment = spend_paying(&chain, free_coin(&chain, &[]), 1_000);
    check_transaction(&unlock, &chain.view(), &chain.tx_context()).unwrap();
    // A second proof against it, and one against no masternode, are left out as well.
    let again = double_sign(&chain, &operator, revoked, 5);
    let stranger = double_sign(&chain, &key("stranger", 0), revoked, 1);

    let proposal = propose(
        &chain,
        vec![evidence, again, stranger],
        vec![unlock.clone(), payment.clone()],
    );
    assert_eq!(proposal.block.evidence, vec![evidence]);
    assert_eq!(kept(&proposal), std::slice::from_ref(&payment));
    assert!(matches!(
        proposal.dropped.as_slice(),
        [(txid, BlockError::Transaction {
            error: TxError::Masternode(MasternodeTxError::Banned { .. }),
            ..
        })] if *txid == unlock.txid()
    ));
    judge(&chain, &proposal.block).unwrap();
}

#[test]
fn a_proposal_stays_within_the_block_s_size_and_count() {
    let mut chain = builder(4, 40);
    let payments = chain.payments(30);
    let all = propose(&chain, vec![], payments.clone());
    assert_eq!(kept(&all), payments.as_slice());

    // Room for a few of them: the first that fit are kept, and the block is valid.
    let size = payments[0].to_bytes().len();
    let empty = propose(&chain, vec![], vec![]).block.to_bytes().len();
    chain.genesis.params.max_block_bytes = empty + 40 /* the fee output */ + 5 * size + size / 2;
    let some = propose(&chain, vec![], payments.clone());
    assert_eq!(kept(&some), &payments[..5]);
    assert_eq!(some.dropped.len(), 25);
    assert!(some.block.to_bytes().len() <= chain.params().max_block_bytes);
    judge(&chain, &some.block).unwrap();

    chain.genesis.params.max_block_bytes = timecoin_primitives::limits::MAX_BLOCK_BYTES;
    chain.genesis.params.max_block_txs = 4;
    let few = propose(&chain, vec![], payments.clone());
    assert_eq!(kept(&few), &payments[..3]);
    judge(&chain, &few.block).unwrap();
}

/// The reward transaction pays 40 bytes a payee: with 600 masternodes it is about 24 KB, past
/// the flat 16 KB a proposer once kept free for it, so a template filled to the limit made
/// every block too large. The proposal is sized with the real reward and stays valid.
#[test]
fn a_reward_to_hundreds_of_payees_still_fits_a_full_block() {
    let mut chain = builder(600, 120);
    let payments = chain.payments(120);
    let empty = propose(&chain, vec![], vec![]).block.to_bytes().len();
    assert!(empty > 16 * 1024, "the reward alone passes 16 KB: {empty} bytes");
    let size = payments[0].to_bytes().len();
    chain.genesis.params.max_block_bytes = empty + 40 + 100 * size;
    let full = propose(&chain, vec![], payments);
    assert!(kept(&full).len() >= 99, "the block is filled: {}", kept(&full).len());
    assert!(full.block.to_bytes().len() <= chain.params().max_block_bytes);
    judge(&chain, &full.block).unwrap();
}
