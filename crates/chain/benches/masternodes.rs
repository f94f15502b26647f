//! The masternode list's work per block, against one Ed25519 verification measured in the
//! same run: the store decodes the list, moves it past the block (proof of service from the
//! block's certificate of its parent, payments, activations) and encodes it again, all in
//! one write transaction, and hashes it for the next header.
//!
//! Run with `cargo bench -p timecoin-chain --bench masternodes`.

use std::hint::black_box;

use criterion::Criterion;
use timecoin_chain::{ChainParams, MasternodeList};
use timecoin_primitives::{
    AddressPayload, Block, BlockHash, BlockHeader, CommitCertificate, CommitSignature, Decode, Encode, Hash256,
    Masternode, MasternodeSet, Network, PublicKey, SecretKey, Signature, Tier,
};

/// A list of `count` Bronze masternodes, past one block, and the next (empty) block, whose
/// certificate of its parent every masternode signed.
fn fixture(count: usize) -> (MasternodeList, Block) {
    let members: Vec<Masternode> = (0..count)
        .map(|i| {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Masternode {
                operator: PublicKey(key),
                tier: Tier::Bronze,
                reward_address: AddressPayload(key),
            }
        })
        .collect();
    let set = MasternodeSet::new(members).unwrap();
    let block = |height: u64, signers: &MasternodeSet| Block {
        header: BlockHeader {
            version: 1,
            height,
            prev_hash: BlockHash::default(),
            timestamp_ms: 1_000 * height,
            merkle_root: Hash256::ZERO,
            proposer: PublicKey::default(),
            masternode_set_hash: Hash256::ZERO,
            state_hash: Hash256::ZERO,
            last_commit_hash: Hash256::ZERO,
            evidence_hash: Hash256::ZERO,
        },
        transactions: Vec::new(),
        last_commit: (height > 1).then(|| CommitCertificate {
            height: height - 1,
            round: 0,
            block_hash: BlockHash::default(),
            signatures: signers
                .members()
                .iter()
                .map(|m| CommitSignature {
                    validator: m.operator,
                    signature: Signature([0; 64]),
                })
                .collect(),
        }),
        evidence: Vec::new(),
    };
    let params = ChainParams::for_network(Network::Local);
    let mut list = MasternodeList::from_genesis(&set, 0);
    list.apply_block(&block(1, &set), &params);
    let next = block(2, list.signers());
    (list, next)
}

fn main() {
    let params = ChainParams::for_network(Network::Local);
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("masternode_list");
    for count in [100, 1_000, 4_096] {
        let (list, block) = fixture(count);
        let bytes = list.to_bytes();
        group.bench_function(format!("per_block_{count}_masternodes"), |b| {
            b.iter(|| {
                let mut list = MasternodeList::from_bytes(black_box(&bytes)).unwrap();
                list.apply_block(black_box(&block), &params);
                black_box((list.to_bytes(), list.hash()))
            });
        });
    }
    let key = SecretKey::from_seed([7; 32]);
    let message = [9u8; 32];
    let signature = key.sign(&message);
    let public = key.public_key();
    group.bench_function("baseline_one_ed25519_verification", |b| {
        b.iter(|| black_box(public.verify(black_box(&message), &signature)))
    });
    group.finish();
    c.final_summary();
}
