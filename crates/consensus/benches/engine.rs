//! The engine alone: decisions per second with 4 and 100 validators, with signatures left
//! out (pre-signed input, an observing engine) and included (every incoming signature
//! verified one by one, and the engine signing its own votes); and the simulated commit
//! latency in message delays on a fault-free network.
//!
//! Run with `cargo bench -p timecoin-consensus --bench engine`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput};
use timecoin_consensus::{Effect, Engine, EngineConfig, Input, TimeoutConfig, Validator, ValidatorSet};
use timecoin_primitives::{BlockHash, Hash256, Proposal, SecretKey, SignedProposal, SignedVote, Vote, VoteKind};
use timecoin_test_utils::sim::{Scenario, run};

const CHAIN: BlockHash = BlockHash(Hash256([3; 32]));

struct Height {
    validators: ValidatorSet,
    me: SecretKey,
    value: BlockHash,
    proposal: SignedProposal,
    prevotes: Vec<SignedVote>,
    precommits: Vec<SignedVote>,
}

/// One height's messages from every validator but the last, who runs the engine.
fn height(n: usize) -> Height {
    let keys: Vec<SecretKey> = (0..n)
        .map(|i| timecoin_test_utils::key("bench validator", i as u64))
        .collect();
    let validators = ValidatorSet::new(
        keys.iter()
            .map(|k| Validator {
                key: k.public_key(),
                power: 1,
            })
            .collect(),
    )
    .unwrap_or_default();
    let proposer = validators.proposer(0).unwrap_or_default();
    let me = keys
        .iter()
        .find(|k| k.public_key() != proposer)
        .cloned()
        .unwrap_or_else(|| keys[0].clone());
    let others: Vec<&SecretKey> = keys.iter().filter(|k| k.public_key() != me.public_key()).collect();
    let value = BlockHash(Hash256([8; 32]));
    let proposer_key = keys.iter().find(|k| k.public_key() == proposer).unwrap_or(&keys[0]);
    let proposal = SignedProposal::sign(
        Proposal {
            chain: CHAIN,
            height: 1,
            round: 0,
            valid_round: None,
            block: value,
        },
        proposer_key,
    );
    let votes = |kind| {
        others
            .iter()
            .map(|k| {
                SignedVote::sign(
                    Vote {
                        chain: CHAIN,
                        height: 1,
                        round: 0,
                        kind,
                        block: Some(value),
                    },
                    k,
                )
            })
            .collect::<Vec<_>>()
    };
    Height {
        validators,
        prevotes: votes(VoteKind::Prevote),
        precommits: votes(VoteKind::Precommit),
        me,
        value,
        proposal,
    }
}

fn config() -> EngineConfig {
    EngineConfig {
        chain: CHAIN,
        timeouts: TimeoutConfig::default(),
        min_validators: 3,
        max_future_rounds: 64,
    }
}

/// Drives one engine through one height; returns whether it decided.
fn decide(h: &Height, sign: bool, verify: bool) -> bool {
    let mut engine = Engine::new(config(), sign.then(|| h.me.clone()));
    engine.handle(Input::StartHeight {
        height: 1,
        validators: h.validators.clone(),
        wal: Vec::new(),
    });
    engine.handle(Input::ValueValidated {
        height: 1,
        value: h.value,
        valid: true,
    });
    if verify {
        assert!(h.proposal.verify().is_ok());
    }
    engine.handle(Input::Proposal(h.proposal));
    let mut decided = false;
    for vote in h.prevotes.iter().chain(&h.precommits) {
        if verify {
            assert!(vote.verify().is_ok());
        }
        decided |= engine
            .handle(Input::Vote(*vote))
            .iter()
            .any(|e| matches!(e, Effect::Decide(_)));
    }
    decided
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    {
        let mut group = c.benchmark_group("engine_decisions");
        group.throughput(Throughput::Elements(1));
        for n in [4usize, 100] {
            let h = height(n);
            assert!(decide(&h, false, false) && decide(&h, true, true));
            group.bench_function(format!("{n}_validators_signatures_excluded"), |b| {
                b.iter_batched(|| (), |()| black_box(decide(&h, false, false)), BatchSize::SmallInput)
            });
            group.bench_function(format!("{n}_validators_signatures_included"), |b| {
                b.iter_batched(|| (), |()| black_box(decide(&h, true, true)), BatchSize::SmallInput)
            });
        }
        group.finish();
    }
    c.final_summary();

    println!("\nsimulated commit latency, fault-free network, every message 50 ms:");
    for n in [4usize, 7, 10, 31] {
        let outcome = run(&Scenario::fault_free(n, 20, 50));
        let times: Vec<(u64, u32)> = outcome.first_decisions.values().copied().collect();
        let intervals: Vec<u64> = times.windows(2).map(|w| w[1].0 - w[0].0).collect();
        let mean = intervals.iter().sum::<u64>() as f64 / intervals.len().max(1) as f64;
        let rounds = times.iter().filter(|(_, r)| *r > 0).count();
        println!(
            "  {n:>2} validators: first height decided at {} ms, then one every {mean:.0} ms = {:.1} message delays; {rounds} of {} heights needed more than one round",
            times.first().map_or(0, |t| t.0),
            mean / 50.0,
            times.len()
        );
    }
}
