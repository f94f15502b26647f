//! The on-chain masternode list: registration, activation, locked collateral, unlock,
//! evidence bans, proof of service, operator proofs, and rewards over the list.

use std::net::SocketAddr;

use timecoin_chain::{
    BlockError, MasternodeTxError, Status, TxError, check_block, check_transaction, reward::reward_shares,
};
use timecoin_primitives::{
    Amount, Block, Equivocation, Payload, PublicKey, SecretKey, SignedVote, Tier, TxId, TxOutput, Update, Vote,
    VoteKind,
};
use timecoin_test_utils::{ChainBuilder, genesis_toml, key};

fn judge(chain: &ChainBuilder, block: &Block) -> Result<timecoin_chain::CheckedBlock, BlockError> {
    let ctx = chain.block_context(chain.tip.timestamp_ms + 60_000);
    check_block(block, &chain.view(), &ctx)
}

fn service(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Builds, checks and applies a block of `txs`.
fn mine(chain: &mut ChainBuilder, txs: Vec<timecoin_primitives::Transaction>) -> Block {
    let block = chain.build_block(txs);
    judge(chain, &block).unwrap();
    chain.apply(&block);
    block
}

/// A builder over `count` Bronze genesis masternodes and `funded` keys of 1,000 TIME.
fn builder(count: usize, funded: usize) -> ChainBuilder {
    let text = genesis_toml(count, Tier::Bronze, funded, Amount::from_time(1_000).unwrap());
    ChainBuilder::from_genesis(timecoin_chain::Genesis::from_toml(&text).unwrap(), funded, count)
}

fn tx_error(chain: &ChainBuilder, tx: &timecoin_primitives::Transaction) -> TxError {
    check_transaction(tx, &chain.view(), &chain.tx_context()).unwrap_err()
}

#[test]
fn a_registration_votes_after_the_delay_its_collateral_is_locked_and_an_unlock_removes_it() {
    let mut chain = builder(4, 6);
    let operator = key("new operator", 0);
    let registration = chain.registration(Tier::Bronze, &operator, service(30_001));
    let id = registration.txid();
    let block = mine(&mut chain, vec![registration]);
    let height = block.header.height;
    let entry = *chain.list.get(&id).unwrap();
    let delay = chain.params().masternode_activation_blocks;
    assert_eq!(
        entry.status,
        Status::Pending {
            active_from: height + delay
        }
    );
    assert_eq!(entry.tier, Tier::Bronze);
    assert_eq!(chain.list.voting_set().members().len(), 4);

    // The set that signs block H is fixed by the list after H - 1.
    for _ in 1..delay {
        assert_eq!(chain.list.voting_set().voting_power(&operator.public_key()), 0);
        mine(&mut chain, vec![]);
    }
    assert_eq!(chain.list.voting_set().voting_power(&operator.public_key()), 1);
    let set_hash = chain.list.voting_set().hash();
    chain.add_masternode_key(operator.clone());
    let block = mine(&mut chain, vec![]);
    assert_eq!(block.header.masternode_set_hash, set_hash);
    assert_eq!(block.header.height, height + delay);
    assert!(
        chain
            .last_certificate
            .as_ref()
            .unwrap()
            .signatures
            .iter()
            .any(|s| s.validator == operator.public_key())
    );

    // The collateral is locked: a plain spend is refused, by the same rule blocks follow.
    let collateral = entry.collateral.unwrap();
    let utxo = chain.utxos[&collateral];
    let plain = chain.spend(
        &[(collateral, utxo)],
        vec![TxOutput {
            amount: Amount::from_time(999).unwrap(),
            address: utxo.output.address,
        }],
    );
    assert_eq!(
        tx_error(&chain, &plain),
        TxError::CollateralLocked {
            outpoint: collateral,
            masternode: id
        }
    );
    assert_eq!(tx_error(&chain, &plain).code(), "bad-txns-collateral-locked");
    let in_block = chain.build_block(vec![plain]);
    assert!(matches!(
        judge(&chain, &in_block),
        Err(BlockError::Transaction {
            error: TxError::CollateralLocked { .. },
            ..
        })
    ));

    // A revocation takes it out of the voting set. The block that does so is still signed
    // by the set that includes it, and the next block's certificate of it is checked against
    // that set.
    let revoke = chain.revocation(id, &operator);
    let signers = chain.list.voting_set().clone();
    let block = mine(&mut chain, vec![revoke]);
    assert_eq!(chain.list.signers(), &signers);
    assert_eq!(chain.list.voting_set().voting_power(&operator.public_key()), 0);
    assert_eq!(chain.list.voting_set().members().len(), 4);
    assert_eq!(chain.list.set_since(), block.header.height + 1);
    let next = mine(&mut chain, vec![]);
    assert!(
        next.last_commit
            .as_ref()
            .unwrap()
            .signatures
            .iter()
            .any(|s| s.validator == operator.public_key())
    );

    // An unlock a whole evidence window later spends the collateral and takes the masternode
    // off the list.
    let from = block.header.height + chain.params().max_evidence_age_blocks;
    while chain.tip.height + 1 < from {
        mine(&mut chain, vec![]);
    }
    let unlock = chain.unlock(id);
    mine(&mut chain, vec![unlock]);
    assert!(chain.list.get(&id).is_none());
    assert!(chain.list.by_collateral(&collateral).is_none());
}

#[test]
fn registrations_that_break_a_rule_are_refused_with_their_own_error() {
    let mut chain = builder(4, 12);
    let genesis_operator = key("masternode", 0);
    let reg = chain.registration(Tier::Bronze, &genesis_operator, service(30_002));
    assert!(matches!(
        tx_error(&chain, &reg),
        TxError::Masternode(MasternodeTxError::DuplicateOperator(k, _)) if k == genesis_operator.public_key()
    ));

    // A collateral that is not the tier's amount.
    let operator = key("operator", 1);
    let mut silver_claim = chain.registration(Tier::Bronze, &operator, service(30_003));
    if let Some(Payload::Register(r)) = silver_claim.payload.as_mut() {
        r.tier = Tier::Silver;
    }
    let error = tx_error(&chain, &silver_claim);
    assert!(
        matches!(
            error,
            TxError::Masternode(MasternodeTxError::CollateralAmount { tier: Tier::Silver, .. })
        ),
        "{error}"
    );

    // A registration whose payload signature is not the collateral key's.
    let mut forged = chain.registration(Tier::Bronze, &operator, service(30_004));
    if let Some(Payload::Register(r)) = forged.payload.as_mut() {
        r.signature = key("someone", 0).sign(b"anything");
    }
    assert_eq!(tx_error(&chain, &forged), TxError::BadSignature);

    // The free tier registers nothing.
    let mut free = chain.registration(Tier::Bronze, &operator, service(30_005));
    if let Some(Payload::Register(r)) = free.payload.as_mut() {
        r.tier = Tier::Free;
    }
    assert_eq!(
        tx_error(&chain, &free),
        TxError::Masternode(MasternodeTxError::FreeTier)
    );

    // Two registrations of one operator key in one block: the second is refused.
    let first = chain.registration(Tier::Bronze, &operator, service(30_006));
    let second = {
        // Funded from other coins than the first.
        let mut other = chain.clone();
        for input in &first.inputs {
            other.utxos.remove(&input.prevout);
        }
        other.registration(Tier::Bronze, &operator, service(30_007))
    };
    check_transaction(&second, &chain.view(), &chain.tx_context()).unwrap();
    let both = chain.build_block(vec![first, second]);
    assert!(matches!(
        judge(&chain, &both),
        Err(BlockError::Transaction {
            index: 2,
            error: TxError::Masternode(MasternodeTxError::DuplicateOperator(..)),
            ..
        })
    ));
}

/// Two conflicting prevotes by `key` at `height`.
fn double_sign(chain: &ChainBuilder, key: &SecretKey, height: u64) -> Equivocation {
    let vote = |byte: u8| Vote {
        chain: chain.genesis_hash(),
        height,
        round: 0,
        kind: VoteKind::Prevote,
        block: Some(timecoin_primitives::BlockHash(timecoin_primitives::Hash256([byte; 32]))),
    };
    Equivocation::new(SignedVote::sign(vote(1), key), SignedVote::sign(vote(2), key)).unwrap()
}

#[test]
fn evidence_in_a_block_bans_the_masternode_and_keeps_its_collateral_locked() {
    let mut chain = builder(4, 6);
    let operator = key("twin", 0);
    let registration = chain.registration(Tier::Bronze, &operator, service(30_010));
    let id = registration.txid();
    mine(&mut chain, vec![registration]);
    for _ in 0..chain.params().masternode_activation_blocks {
        mine(&mut chain, vec![]);
    }
    assert!(matches!(chain.list.get(&id).unwrap().status, Status::Active { .. }));

    let evidence = double_sign(&chain, &operator, chain.tip.height);
    // Evidence of another network, or of a key that is no masternode's, is refused.
    let foreign = {
        let mut other = chain.clone();
        other.genesis.block.header.timestamp_ms += 1;
        double_sign(&other, &operator, chain.tip.height)
    };
    let bad = chain.build_block_with(vec![], vec![foreign]);
    assert!(matches!(
        judge(&chain, &bad),
        Err(BlockError::Evidence { index: 0, .. })
    ));
    let stranger = double_sign(&chain, &key("stranger", 0), chain.tip.height);
    let bad = chain.build_block_with(vec![], vec![stranger]);
    assert!(matches!(
        judge(&chain, &bad),
        Err(BlockError::Evidence { index: 0, .. })
    ));

    let block = chain.build_block_with(vec![], vec![evidence]);
    judge(&chain, &block).unwrap();
    chain.apply(&block);
    let until = block.header.height + chain.params().evidence_ban_blocks;
    assert_eq!(chain.list.get(&id).unwrap().status, Status::Banned { until });
    assert_eq!(chain.list.voting_set().voting_power(&operator.public_key()), 0);

    // The same offender cannot be banned twice, and its collateral stays locked.
    let again = chain.build_block_with(vec![], vec![double_sign(&chain, &operator, chain.tip.height)]);
    assert!(matches!(
        judge(&chain, &again),
        Err(BlockError::Evidence { index: 0, .. })
    ));
    let unlock = chain.unlock(id);
    assert_eq!(
        tx_error(&chain, &unlock),
        TxError::Masternode(MasternodeTxError::Banned { masternode: id, until })
    );
}

#[test]
fn missed_precommits_exclude_a_masternode_but_never_a_third_of_the_power_and_it_returns_by_update() {
    let mut chain = builder(7, 4);
    chain.genesis.params.pose_ban_threshold = 10;
    let operators: Vec<SecretKey> = (0..7).map(|i| key("masternode", i)).collect();
    let id_of = |chain: &ChainBuilder, k: &SecretKey| chain.list.by_operator(&k.public_key()).unwrap().id;
    mine(&mut chain, vec![]);

    let status = |chain: &ChainBuilder, i: usize| chain.list.get(&id_of(chain, &operators[i])).unwrap().status;
    let update = |chain: &ChainBuilder, id: TxId| {
        let coin = chain.spendable().into_iter().next().unwrap();
        let entry = chain.list.get(&id).unwrap();
        let owner = operators.iter().find(|k| k.public_key() == entry.owner).unwrap();
        chain.special(
            &[coin],
            vec![TxOutput {
                amount: coin.1.output.amount.checked_sub(Amount::from_units(100_000)).unwrap(),
                address: coin.1.output.address,
            }],
            Payload::Update(Update {
                masternode: id,
                operator: entry.operator,
                reward_address: entry.reward_address,
                service: service(30_020),
                operator_proof: None,
                signature: Default::default(),
            }),
            Some(owner),
        )
    };
    // Masternodes 0 and 1 stop signing, then 2 as well. Two can go (2 of 7 is under a third
    // of the power); the third would leave the chain too close to halting, so it stays.
    let silent = |chain: &mut ChainBuilder, count: usize, blocks: usize| {
        for _ in 0..blocks {
            let mut certificate = chain.last_certificate.clone().unwrap();
            certificate
                .signatures
                .retain(|s| !operators[..count].iter().any(|k| k.public_key() == s.validator));
            chain.last_certificate = Some(certificate);
            mine(chain, vec![]);
        }
    };
    silent(&mut chain, 2, 6);
    let out = 0;
    let id = id_of(&chain, &operators[out]);
    assert!(matches!(status(&chain, out), Status::PoseBanned { .. }));
    assert!(matches!(
        tx_error(&chain, &update(&chain, id)),
        TxError::Masternode(MasternodeTxError::PenaltyNotDecayed { .. })
    ));
    silent(&mut chain, 3, 20);
    let banned = (0..3)
        .filter(|i| matches!(status(&chain, *i), Status::PoseBanned { .. }))
        .count();
    assert_eq!(banned, 2);
    assert_eq!(chain.list.voting_set().members().len(), 5);
    let kept = (0..3)
        .find(|i| matches!(status(&chain, *i), Status::Active { .. }))
        .unwrap();
    assert!(chain.list.by_operator(&operators[kept].public_key()).unwrap().penalty >= 10);

    // A banned masternode re-announces once its penalty has decayed, by an update its owner
    // signs (for a genesis masternode, the operator key).
    while chain.list.get(&id).unwrap().penalty > 0 {
        mine(&mut chain, vec![]);
    }
    let announcement = update(&chain, id);
    mine(&mut chain, vec![announcement]);
    for _ in 0..chain.params().masternode_activation_blocks {
        mine(&mut chain, vec![]);
    }
    assert!(matches!(chain.list.get(&id).unwrap().status, Status::Active { .. }));
    assert_eq!(chain.list.get(&id).unwrap().service, Some(service(30_020)));
}

#[test]
fn rewards_go_to_masternodes_active_a_whole_period_in_proportion_to_tier_weight() {
    let mut chain = builder(4, 12);
    chain.block_interval_ms = 10_000;
    let operator = key("silver", 0);
    let registration = chain.registration(Tier::Silver, &operator, service(30_030));
    let id = registration.txid();
    chain.add_masternode_key(operator.clone());
    mine(&mut chain, vec![registration]);
    let reward_address = chain.list.get(&id).unwrap().reward_address;
    let genesis_rewards: Vec<_> = (0..4)
        .map(|i| {
            chain
                .list
                .by_operator(&key("masternode", i).public_key())
                .unwrap()
                .reward_address
        })
        .collect();

    // Sums what each address receives from reward transactions over `blocks` blocks.
    let run = |chain: &mut ChainBuilder, blocks: usize| {
        let (mut silver, mut bronze, mut minted) = (0u64, vec![0u64; 4], 0u64);
        for _ in 0..blocks {
            let block = mine(chain, vec![]);
            for output in &block.transactions[0].outputs {
                minted += output.amount.units();
                if output.address == reward_address {
                    silver += output.amount.units();
                }
                if let Some(i) = genesis_rewards.iter().position(|a| *a == output.address) {
                    bronze[i] += output.amount.units();
                }
            }
        }
        (silver, bronze, minted)
    };
    // For the first reward period (600 s of chain time) the new masternode votes but is not
    // paid: the four Bronze genesis masternodes share everything.
    let (silver, bronze, minted) = run(&mut chain, 55);
    assert_eq!(silver, 0);
    assert!(chain.list.get(&id).unwrap().last_paid.is_none());
    for share in &bronze {
        // Rounding leaves at most 3 units a block, which go to one of them.
        assert!(share.abs_diff(minted / 4) <= 3 * 55, "{share} of {minted}");
    }
    // Past its first period it takes 10 of every 14 parts.
    run(&mut chain, 10);
    let blocks = 200;
    let (silver, bronze, minted) = run(&mut chain, blocks);
    assert!(minted > 0);
    // Rounding leaves fewer units than payees (5) a block; they go to the heaviest.
    let slack = 14 * 5 * blocks as u128;
    assert!(
        (u128::from(silver) * 14).abs_diff(u128::from(minted) * 10) <= slack,
        "silver {silver} of {minted}"
    );
    for share in &bronze {
        assert!((u128::from(*share) * 14).abs_diff(u128::from(minted)) <= slack);
    }
    assert_eq!(chain.list.get(&id).unwrap().last_paid, Some(chain.tip.height));
    // The split matches the rule's own shares.
    let shares = reward_shares(&chain.list.payees(chain.params()), Amount::from_units(1_400));
    assert_eq!(shares.iter().map(|(_, s)| s).sum::<u64>(), 1_400);
}

#[test]
fn the_list_round_trips_its_encoding_and_two_builders_agree() {
    let mut a = builder(4, 6);
    let registration = a.registration(Tier::Bronze, &key("operator", 9), service(30_040));
    let mut b = a.clone();
    for chain in [&mut a, &mut b] {
        mine(chain, vec![registration.clone()]);
        mine(chain, vec![]);
    }
    assert_eq!(a.list.hash(), b.list.hash());
    use timecoin_primitives::{Decode, Encode};
    let bytes = a.list.to_bytes();
    assert_eq!(bytes.len(), a.list.encoded_len());
    let decoded = timecoin_chain::MasternodeList::from_bytes(&bytes).unwrap();
    assert_eq!(decoded, a.list);
    let _: TxId = registration.txid();
}

#[test]
fn a_revoked_masternode_stops_voting_keeps_its_collateral_locked_and_returns_by_its_owners_update() {
    let mut chain = builder(4, 6);
    let operator = key("revoking", 0);
    let registration = chain.registration(Tier::Bronze, &operator, service(30_050));
    let id = registration.txid();
    mine(&mut chain, vec![registration]);
    for _ in 0..chain.params().masternode_activation_blocks {
        mine(&mut chain, vec![]);
    }
    assert_eq!(chain.list.voting_set().voting_power(&operator.public_key()), 1);
    chain.add_masternode_key(operator.clone());

    let fee_coin = |chain: &ChainBuilder| {
        let coin = chain
            .spendable()
            .into_iter()
            .find(|(o, _)| chain.list.by_collateral(o).is_none())
            .unwrap();
        let back = TxOutput {
            amount: coin.1.output.amount.checked_sub(Amount::from_units(100_000)).unwrap(),
            address: coin.1.output.address,
        };
        (coin, back)
    };
    // A revocation signed by another key is refused; the operator's is accepted.
    let (coin, back) = fee_coin(&chain);
    let revoke = |key: &SecretKey| {
        chain.special(
            &[coin],
            vec![back],
            Payload::Revoke(timecoin_primitives::Revocation {
                masternode: id,
                signature: Default::default(),
            }),
            Some(key),
        )
    };
    assert_eq!(tx_error(&chain, &revoke(&key("someone", 1))), TxError::BadSignature);
    let revocation = revoke(&operator);
    let block = mine(&mut chain, vec![revocation]);
    assert_eq!(
        chain.list.get(&id).unwrap().status,
        Status::Revoked {
            at: block.header.height
        }
    );
    assert_eq!(chain.list.voting_set().voting_power(&operator.public_key()), 0);
    let collateral = chain.list.get(&id).unwrap().collateral.unwrap();
    assert!(chain.list.by_collateral(&collateral).is_some());

    // Its owner brings it back (the owner key is the builder's).
    let entry = *chain.list.get(&id).unwrap();
    let owner = chain
        .key_for(&timecoin_primitives::AddressPayload::from_public_key(&entry.owner))
        .unwrap()
        .clone();
    let (coin, back) = fee_coin(&chain);
    let update = chain.special(
        &[coin],
        vec![back],
        Payload::Update(Update {
            masternode: id,
            operator: entry.operator,
            reward_address: entry.reward_address,
            service: service(30_051),
            operator_proof: None,
            signature: Default::default(),
        }),
        Some(&owner),
    );
    mine(&mut chain, vec![update]);
    for _ in 0..chain.params().masternode_activation_blocks {
        mine(&mut chain, vec![]);
    }
    assert!(matches!(chain.list.get(&id).unwrap().status, Status::Active { .. }));
}

#[test]
fn a_proposer_leaves_out_conflicting_masternode_transactions_and_what_spends_them() {
    let mut chain = builder(4, 12);
    let operator = key("operator", 7);
    let first = chain.registration(Tier::Bronze, &operator, service(30_060));
    let mut other = chain.clone();
    for input in &first.inputs {
        other.utxos.remove(&input.prevout);
    }
    let second = other.registration(Tier::Bronze, &operator, service(30_061));
    // A payment spending the second registration's change.
    let change = timecoin_primitives::OutPoint {
        txid: second.txid(),
        index: 1,
    };
    let utxo = timecoin_chain::Utxo {
        output: second.outputs[1],
        height: chain.tip.height + 1,
        is_reward: false,
    };
    let child = other.payment((change, utxo));
    // An ordinary payment from coins neither registration spends.
    for input in &second.inputs {
        other.utxos.remove(&input.prevout);
    }
    let ordinary = other.payments(1).remove(0);
    let kept = timecoin_chain::select_masternode_txs(
        vec![first.clone(), second, child, ordinary.clone()],
        &chain.view(),
        &chain.tx_context(),
    );
    assert_eq!(kept, vec![first, ordinary]);
    // And the block of what was kept is valid.
    mine(&mut chain, kept);
}

/// Registers a Bronze masternode operated by `operator` at `port` and mines blocks until it
/// votes; returns its id.
fn active_masternode(chain: &mut ChainBuilder, operator: &SecretKey, port: u16) -> TxId {
    let registration = chain.registration(Tier::Bronze, operator, service(port));
    let id = registration.txid();
    mine(chain, vec![registration]);
    for _ in 0..chain.params().masternode_activation_blocks {
        mine(chain, vec![]);
    }
    assert!(matches!(chain.list.get(&id).unwrap().status, Status::Active { .. }));
    id
}

/// A masternode transaction carrying `payload`, its fee paid from a coin that is no
/// collateral, the payload signed by `signer`.
fn special(chain: &ChainBuilder, payload: Payload, signer: &SecretKey) -> timecoin_primitives::Transaction {
    let coin = chain
        .spendable()
        .into_iter()
        .find(|(o, _)| chain.list.by_collateral(o).is_none())
        .unwrap();
    let back = TxOutput {
        amount: coin.1.output.amount.checked_sub(Amount::from_units(100_000)).unwrap(),
        address: coin.1.output.address,
    };
    chain.special(&[coin], vec![back], payload, Some(signer))
}

#[test]
fn a_masternode_banned_for_double_signing_cannot_revoke_its_way_out_of_the_ban() {
    let mut chain = builder(4, 6);
    let operator = key("revoking twin", 0);
    let id = active_masternode(&mut chain, &operator, 30_070);

    // Evidence and the offender's revocation in one block: the ban comes first, so the
    // revocation is refused.
    let evidence = double_sign(&chain, &operator, chain.tip.height);
    let revoke = chain.revocation(id, &operator);
    let both = chain.build_block_with(vec![revoke.clone()], vec![evidence]);
    let until = both.header.height + chain.params().evidence_ban_blocks;
    assert!(
        matches!(
            judge(&chain, &both),
            Err(BlockError::Transaction {
                index: 1,
                error: TxError::Masternode(MasternodeTxError::Banned { .. }),
                ..
            })
        ),
        "{:?}",
        judge(&chain, &both)
    );

    let block = chain.build_block_with(vec![], vec![evidence]);
    judge(&chain, &block).unwrap();
    chain.apply(&block);
    assert_eq!(chain.list.get(&id).unwrap().status, Status::Banned { until });

    // Once banned, a revocation is refused alone and in a block.
    let revoke = chain.revocation(id, &operator);
    assert_eq!(
        tx_error(&chain, &revoke),
        TxError::Masternode(MasternodeTxError::Banned { masternode: id, until })
    );
    assert_eq!(tx_error(&chain, &revoke).code(), "bad-protx-banned");
    let in_block = chain.build_block(vec![revoke.clone()]);
    assert!(matches!(
        judge(&chain, &in_block),
        Err(BlockError::Transaction {
            error: TxError::Masternode(MasternodeTxError::Banned { .. }),
            ..
        })
    ));

    // And the list itself never turns a ban into anything milder, whatever it is given.
    let mut list = chain.list.clone();
    list.apply_transaction(&revoke, revoke.txid(), chain.tip.height + 1, chain.params());
    assert_eq!(list.get(&id).unwrap().status, Status::Banned { until });
    let entry = *chain.list.get(&id).unwrap();
    let owner = chain
        .key_for(&timecoin_primitives::AddressPayload::from_public_key(&entry.owner))
        .unwrap()
        .clone();
    let update = special(
        &chain,
        Payload::Update(Update {
            masternode: id,
            operator: entry.operator,
            reward_address: entry.reward_address,
            service: service(30_071),
            operator_proof: None,
            signature: Default::default(),
        }),
        &owner,
    );
    assert_eq!(
        tx_error(&chain, &update),
        TxError::Masternode(MasternodeTxError::Banned { masternode: id, until })
    );
    list.apply_transaction(&update, update.txid(), chain.tip.height + 1, chain.params());
    assert_eq!(list.get(&id).unwrap().status, Status::Banned { until });
}

#[test]
fn registrations_stop_at_the_largest_list_a_voting_set_can_hold() {
    use timecoin_primitives::limits::MAX_MASTERNODES;
    // One place left: the genesis masternodes fill all the others.
    let mut chain = builder(MAX_MASTERNODES - 1, 6);
    let first = chain.registration(Tier::Bronze, &key("operator", 20), service(30_080));
    let mut other = chain.clone();
    for input in &first.inputs {
        other.utxos.remove(&input.prevout);
    }
    let second = other.registration(Tier::Bronze, &key("operator", 21), service(30_081));
    check_transaction(&second, &chain.view(), &chain.tx_context()).unwrap();

    // Both in one block: the second would take the list past the cap.
    let both = chain.build_block(vec![first.clone(), second.clone()]);
    let full = TxError::Masternode(MasternodeTxError::ListFull { max: MAX_MASTERNODES });
    assert!(
        matches!(
            judge(&chain, &both),
            Err(BlockError::Transaction { index: 2, ref error, .. }) if *error == full
        ),
        "{:?}",
        judge(&chain, &both)
    );

    // The first fills the list; then any further registration is refused alone.
    mine(&mut chain, vec![first]);
    assert_eq!(chain.list.entries().len(), MAX_MASTERNODES);
    let error = tx_error(&chain, &second);
    assert_eq!(error, full);
    assert_eq!(error.code(), "bad-protx-list-full");
    assert!(error.to_string().contains("4096"), "{error}");
}

/// The owner's update of masternode `id` giving it the operator key `operator`, with
/// `operator_proof`, at `port`.
fn update_of(
    chain: &ChainBuilder,
    id: TxId,
    operator: PublicKey,
    operator_proof: Option<timecoin_primitives::Signature>,
    port: u16,
) -> timecoin_primitives::Transaction {
    let entry = *chain.list.get(&id).unwrap();
    let owner = chain
        .key_for(&timecoin_primitives::AddressPayload::from_public_key(&entry.owner))
        .unwrap()
        .clone();
    let update = Update {
        masternode: id,
        operator,
        reward_address: entry.reward_address,
        service: service(port),
        operator_proof,
        signature: Default::default(),
    };
    special(chain, Payload::Update(update), &owner)
}

/// The owner's update of masternode `id` giving it the operator key `operator`, which proves
/// itself when it is new.
fn rotation(chain: &ChainBuilder, id: TxId, operator: &SecretKey, port: u16) -> timecoin_primitives::Transaction {
    let current = chain.list.get(&id).unwrap().operator;
    let proof = (operator.public_key() != current).then(|| {
        let message = Update {
            masternode: id,
            operator: operator.public_key(),
            reward_address: Default::default(),
            service: service(port),
            operator_proof: None,
            signature: Default::default(),
        }
        .operator_proof_message(&chain.genesis_hash());
        operator.sign(&message.0)
    });
    update_of(chain, id, operator.public_key(), proof, port)
}

#[test]
fn evidence_is_judged_against_the_key_a_masternode_held_at_the_offence() {
    let mut chain = builder(4, 8);
    let old = key("rotating", 0);
    let new = key("rotating", 1);
    let id = active_masternode(&mut chain, &old, 30_090);

    // It double-signs, then rotates its operator key away before the evidence lands; another
    // masternode registers the old key in the same block.
    let offence = chain.tip.height;
    let evidence = double_sign(&chain, &old, offence);
    let rotate = rotation(&chain, id, &new, 30_091);
    let mut other = chain.clone();
    for input in &rotate.inputs {
        other.utxos.remove(&input.prevout);
    }
    let taker = other.registration(Tier::Bronze, &old, service(30_092));
    let taker_id = taker.txid();
    let rotated = mine(&mut chain, vec![rotate, taker]).header.height;
    assert_eq!(chain.list.get(&id).unwrap().operator, new.public_key());
    assert_eq!(chain.list.get(&taker_id).unwrap().operator, old.public_key());

    // A key is its masternode's from the block after the one that set it: at the rotation's
    // height the new key was not yet its.
    let early = chain.build_block_with(vec![], vec![double_sign(&chain, &new, rotated)]);
    assert!(matches!(
        judge(&chain, &early),
        Err(BlockError::Evidence { index: 0, .. })
    ));
    mine(&mut chain, vec![]);
    // One masternode, two keys, two proofs: one ban, so one proof.
    let twice = chain.build_block_with(vec![], vec![evidence, double_sign(&chain, &new, rotated + 1)]);
    assert!(matches!(
        judge(&chain, &twice),
        Err(BlockError::Evidence { index: 1, .. })
    ));

    // The old key's offence bans the masternode that held it then, not its new holder.
    let block = chain.build_block_with(vec![], vec![evidence]);
    judge(&chain, &block).unwrap();
    chain.apply(&block);
    let until = block.header.height + chain.params().evidence_ban_blocks;
    assert_eq!(chain.list.get(&id).unwrap().status, Status::Banned { until });
    assert!(
        chain
            .list
            .get(&taker_id)
            .unwrap()
            .banned_until(chain.tip.height)
            .is_none()
    );
}

#[test]
fn replaced_operator_keys_are_kept_while_evidence_may_reach_them_and_rotations_are_bounded() {
    use timecoin_chain::MasternodeList;
    use timecoin_primitives::{Decode, Encode};
    let mut chain = builder(4, 8);
    let window = 20;
    chain.genesis.params.max_evidence_age_blocks = window;
    let first = key("rotating often", 0);
    let id = active_masternode(&mut chain, &first, 30_100);
    let registered = chain.list.get(&id).unwrap().operator_since;

    // As many rotations as the list keeps, one a block; then one more is refused.
    let max = MasternodeList::MAX_FORMER_OPERATORS;
    let keys: Vec<SecretKey> = (1..=max as u64 + 1).map(|i| key("rotating often", i)).collect();
    let mut heights = Vec::new();
    for (i, k) in keys[..max].iter().enumerate() {
        let rotate = rotation(&chain, id, k, 30_101 + i as u16);
        heights.push(mine(&mut chain, vec![rotate]).header.height);
    }
    let former = chain.list.former_operators(&id);
    assert_eq!(former.len(), max);
    assert_eq!(
        (former[0].operator, former[0].since, former[0].until),
        (first.public_key(), registered, heights[0])
    );
    let one_more = rotation(&chain, id, &keys[max], 30_120);
    let error = tx_error(&chain, &one_more);
    assert_eq!(
        error,
        TxError::Masternode(MasternodeTxError::TooManyKeyRotations { masternode: id, max })
    );
    assert_eq!(error.code(), "bad-protx-key-rotations");
    // An update that keeps the key is not a rotation.
    let keep = rotation(&chain, id, &keys[max - 1], 30_121);
    check_transaction(&keep, &chain.view(), &chain.tx_context()).unwrap();

    // The list round-trips its encoding with the replaced keys in it.
    let bytes = chain.list.to_bytes();
    assert_eq!(bytes.len(), chain.list.encoded_len());
    assert_eq!(MasternodeList::from_bytes(&bytes).unwrap(), chain.list);

    // The first key is kept while a block may still carry evidence of its last height...
    while chain.tip.height + 1 < heights[0] + window {
        mine(&mut chain, vec![]);
    }
    let evidence = double_sign(&chain, &first, heights[0]);
    judge(&chain, &chain.build_block_with(vec![], vec![evidence])).unwrap();
    // ...and forgotten after, which makes room for one more rotation.
    mine(&mut chain, vec![]);
    assert_eq!(chain.list.former_operators(&id).len(), max - 1);
    assert_eq!(chain.list.former_operators(&id)[0].operator, keys[0].public_key());
    let one_more = rotation(&chain, id, &keys[max], 30_122);
    let rotated = mine(&mut chain, vec![one_more]).header.height;
    // (The same block let the second key age out.)
    let former = chain.list.former_operators(&id);
    assert_eq!(former.len(), max - 1);
    let last = former[max - 2];
    assert_eq!((last.operator, last.until), (keys[max - 1].public_key(), rotated));

    // An unlock takes the masternode's replaced keys off the list with it. It comes a whole
    // evidence window after the revocation; only a key replaced in the revocation's own block
    // is still kept by then.
    let last = key("rotating often", 99);
    let rotate = rotation(&chain, id, &last, 30_123);
    let mut other = chain.clone();
    for input in &rotate.inputs {
        other.utxos.remove(&input.prevout);
    }
    let revoke = other.revocation(id, &last);
    let revoked = mine(&mut chain, vec![rotate, revoke]).header.height;
    assert_eq!(chain.list.get(&id).unwrap().status, Status::Revoked { at: revoked });
    while chain.tip.height + 1 < revoked + window {
        mine(&mut chain, vec![]);
    }
    let kept = chain.list.former_operators(&id);
    assert_eq!(kept.len(), 1);
    assert_eq!((kept[0].operator, kept[0].until), (keys[max].public_key(), revoked));
    let unlock = chain.unlock(id);
    mine(&mut chain, vec![unlock]);
    assert!(chain.list.former_operators(&id).is_empty());
    assert_eq!(MasternodeList::from_bytes(&chain.list.to_bytes()).unwrap(), chain.list);
}

#[test]
fn a_masternode_unlocks_only_once_evidence_of_its_last_votes_can_no_longer_arrive() {
    let mut chain = builder(4, 8);
    let operator = key("leaving", 0);
    let id = active_masternode(&mut chain, &operator, 30_130);
    let window = chain.params().max_evidence_age_blocks;

    // It double-signs, then asks for its collateral in the next block, before the evidence
    // lands: refused, it is still in the voting set.
    let offence = chain.tip.height;
    let evidence = double_sign(&chain, &operator, offence);
    let error = tx_error(&chain, &chain.unlock(id));
    assert_eq!(error, TxError::Masternode(MasternodeTxError::UnlockWhileServing(id)));
    assert_eq!(error.code(), "bad-protx-unlock-serving");

    // It revokes: it no longer votes from the next block on, but its collateral stays locked
    // for a whole evidence window after the last height it voted on.
    let revoke = chain.revocation(id, &operator);
    let revoked = mine(&mut chain, vec![revoke]).header.height;
    let from = revoked + window;
    let error = tx_error(&chain, &chain.unlock(id));
    assert_eq!(
        error,
        TxError::Masternode(MasternodeTxError::UnlockTooEarly { masternode: id, from })
    );
    assert_eq!(error.code(), "bad-protx-unlock-early");
    assert!(error.to_string().contains(&format!("height {from}")), "{error}");

    // Evidence of a vote it signed before the revocation still bans it, and the ban keeps
    // the collateral locked.
    let mut caught = chain.clone();
    let block = caught.build_block_with(vec![], vec![evidence]);
    judge(&caught, &block).unwrap();
    caught.apply(&block);
    let until = block.header.height + caught.params().evidence_ban_blocks;
    assert_eq!(caught.list.get(&id).unwrap().status, Status::Banned { until });
    assert_eq!(
        tx_error(&caught, &caught.unlock(id)),
        TxError::Masternode(MasternodeTxError::Banned { masternode: id, until })
    );

    // The unlock is valid from `from`, the last block that may still carry evidence of its
    // last votes (at the revocation's height); such evidence applies first and refuses it.
    while chain.tip.height + 1 < from {
        assert_eq!(
            tx_error(&chain, &chain.unlock(id)),
            TxError::Masternode(MasternodeTxError::UnlockTooEarly { masternode: id, from })
        );
        mine(&mut chain, vec![]);
    }
    let unlock = chain.unlock(id);
    check_transaction(&unlock, &chain.view(), &chain.tx_context()).unwrap();
    let last_votes = double_sign(&chain, &operator, revoked);
    let both = chain.build_block_with(vec![unlock.clone()], vec![last_votes]);
    assert!(
        matches!(
            judge(&chain, &both),
            Err(BlockError::Transaction {
                index: 1,
                error: TxError::Masternode(MasternodeTxError::Banned { .. }),
                ..
            })
        ),
        "{:?}",
        judge(&chain, &both)
    );
    // Evidence of its earlier offence is too old by then.
    let stale = chain.build_block_with(vec![], vec![evidence]);
    assert!(matches!(
        judge(&chain, &stale),
        Err(BlockError::Evidence { index: 0, .. })
    ));

    // Without evidence, it unlocks and leaves the list.
    let block = mine(&mut chain, vec![unlock]);
    assert_eq!(block.header.height, from);
    assert!(chain.list.get(&id).is_none());
}

#[test]
fn an_operator_key_is_registered_only_with_its_holder_s_proof() {
    let mut chain = builder(4, 8);
    // A key seen on the network (a new masternode shows it to its peers before it is
    // registered): someone else registers it, with his own collateral and reward address.
    let seen = key("seen on the network", 0);
    let thief = key("thief", 0);
    let theft = chain.registration_proved_by(Tier::Bronze, seen.public_key(), service(30_140), &thief);
    assert_eq!(tx_error(&chain, &theft), TxError::BadSignature);

    // Nor can he copy a proof its holder made: for another registration (it names that
    // registration's collateral), or on another network.
    let honest = chain.registration(Tier::Bronze, &seen, service(30_141));
    let proof_of = |tx: &timecoin_primitives::Transaction| *tx.payload.as_ref().unwrap().operator_proof().unwrap();
    let mut copied = theft.clone();
    copied.payload.as_mut().unwrap().set_operator_proof(proof_of(&honest));
    assert_eq!(copied.txid(), theft.txid());
    assert_eq!(tx_error(&chain, &copied), TxError::BadSignature);
    let mut foreign = chain.clone();
    foreign.genesis.block.header.timestamp_ms += 1;
    let mut elsewhere = theft.clone();
    foreign.prove_registration(&mut elsewhere, &seen);
    assert_eq!(tx_error(&chain, &elsewhere), TxError::BadSignature);
    // Proved on this network, the same registration is valid: only the proof was missing.
    let mut proved = theft.clone();
    chain.prove_registration(&mut proved, &seen);
    check_transaction(&proved, &chain.view(), &chain.tx_context()).unwrap();

    // The holder's own registration is valid.
    let id = honest.txid();
    mine(&mut chain, vec![honest]);
    assert_eq!(chain.list.get(&id).unwrap().operator, seen.public_key());

    // An update that hands a masternode a new key needs that key's proof too; one that keeps
    // its key carries none.
    let next = key("seen on the network", 1);
    let proof_by = |signer: &SecretKey| {
        let message = Update {
            masternode: id,
            operator: next.public_key(),
            reward_address: Default::default(),
            service: service(30_142),
            operator_proof: None,
            signature: Default::default(),
        }
        .operator_proof_message(&chain.genesis_hash());
        signer.sign(&message.0)
    };
    let error = tx_error(&chain, &update_of(&chain, id, next.public_key(), None, 30_142));
    assert_eq!(
        error,
        TxError::Masternode(MasternodeTxError::MissingOperatorProof {
            masternode: id,
            operator: next.public_key()
        })
    );
    assert_eq!(error.code(), "bad-protx-operator-proof-missing");
    let stolen = update_of(&chain, id, next.public_key(), Some(proof_by(&thief)), 30_142);
    assert_eq!(tx_error(&chain, &stolen), TxError::BadSignature);
    let kept = update_of(&chain, id, seen.public_key(), Some(proof_by(&seen)), 30_142);
    let error = tx_error(&chain, &kept);
    assert_eq!(error, TxError::Masternode(MasternodeTxError::UnneededOperatorProof(id)));
    assert_eq!(error.code(), "bad-protx-operator-proof-unneeded");
    let handover = update_of(&chain, id, next.public_key(), Some(proof_by(&next)), 30_142);
    mine(&mut chain, vec![handover]);
    assert_eq!(chain.list.get(&id).unwrap().operator, next.public_key());
}
