//! The light verifier against synthetic chains: certified headers signed by test keys, with
//! masternode sets that change as a test says.

mod follow;
mod proofs;

use std::convert::Infallible;

use timecoin_light::{ChainSource, TrustedState};
use timecoin_primitives::{
    Amount, Block, BlockHash, BlockHeader, CommitCertificate, Hash256, Masternode, MasternodeSet, SecretKey, Tier,
    Transaction, TxOutput, transactions_root,
};
use timecoin_test_utils::{key, payload};

/// A chain of blocks 1..=n whose set at each height a test chose, each finalized by all of
/// its set's keys.
pub struct Chain {
    /// Its genesis hash.
    pub network: BlockHash,
    /// The set that finalizes block 1.
    pub genesis_set: MasternodeSet,
    /// Blocks 1..=n, each with its certificate and the set it names.
    pub blocks: Vec<(Block, CommitCertificate, MasternodeSet)>,
}

/// The set of the masternodes with these key indexes, all Bronze.
pub fn set_of(indexes: &[u64]) -> MasternodeSet {
    MasternodeSet::new(
        indexes
            .iter()
            .map(|i| Masternode {
                operator: key("light", *i).public_key(),
                tier: Tier::Bronze,
                reward_address: payload(&key("light", *i)),
            })
            .collect(),
    )
    .unwrap()
}

/// The keys of the masternodes with these key indexes.
pub fn keys_of(indexes: &[u64]) -> Vec<SecretKey> {
    indexes.iter().map(|i| key("light", *i)).collect()
}

/// A few payments, so that blocks have trees worth proving into.
fn transactions(height: u64, salt: u8) -> Vec<Transaction> {
    (0..5u8)
        .map(|i| Transaction {
            version: Transaction::VERSION,
            inputs: Vec::new(),
            outputs: vec![TxOutput {
                amount: Amount::from_units(u64::from(i) + 1),
                address: payload(&key("payee", height)),
            }],
            lock_time: height,
            memo: vec![i, salt],
            payload: None,
        })
        .collect()
}

impl Chain {
    /// Blocks 1..=`sets.len()`, block `h` finalized by the keys `sets[h - 1]` names.
    pub fn new(network_seed: u8, genesis: &[u64], sets: &[&[u64]]) -> Chain {
        Chain::salted(network_seed, 0, genesis, sets)
    }

    /// [`Chain::new`] with other transactions (`salt` in their memos): another chain of the
    /// same network, signed by the same keys.
    pub fn salted(network_seed: u8, salt: u8, genesis: &[u64], sets: &[&[u64]]) -> Chain {
        let network = BlockHash(Hash256([network_seed; 32]));
        let mut prev = network;
        let mut blocks = Vec::new();
        for (i, members) in sets.iter().enumerate() {
            let height = i as u64 + 1;
            let set = set_of(members);
            let txs = transactions(height, salt);
            let header = BlockHeader {
                version: BlockHeader::VERSION,
                height,
                prev_hash: prev,
                timestamp_ms: 1_000 * height,
                merkle_root: transactions_root(&txs),
                proposer: key("light", members[0]).public_key(),
                masternode_set_hash: set.hash(),
                state_hash: Hash256::ZERO,
                last_commit_hash: Hash256::ZERO,
                evidence_hash: Hash256::ZERO,
            };
            let block = Block {
                header,
                transactions: txs,
                last_commit: None,
                evidence: Vec::new(),
            };
            let keys = keys_of(members);
            let signers: Vec<&SecretKey> = keys.iter().collect();
            let certificate = CommitCertificate::sign(&network, height, 0, &block.hash(), &signers);
            prev = block.hash();
            blocks.push((block, certificate, set));
        }
        Chain {
            network,
            genesis_set: set_of(genesis),
            blocks,
        }
    }

    /// What a verifier with only the genesis trusts.
    pub fn genesis(&self) -> TrustedState {
        TrustedState {
            network: self.network,
            height: 0,
            block: self.network,
            timestamp_ms: 0,
            set: self.genesis_set.clone(),
        }
    }

    /// The block at `height`.
    pub fn block(&self, height: u64) -> &Block {
        &self.blocks[height as usize - 1].0
    }
}

impl ChainSource for Chain {
    type Error = Infallible;
    fn set_changes(&self, after: u64, upto: u64) -> Result<Vec<(u64, MasternodeSet)>, Infallible> {
        let mut changes = Vec::new();
        let mut previous = self.genesis_set.hash();
        for (block, _, set) in &self.blocks {
            let height = block.header.height;
            if set.hash() != previous && height > after && height <= upto {
                changes.push((height, set.clone()));
            }
            previous = set.hash();
        }
        Ok(changes)
    }
    fn certified_header(&self, height: u64) -> Result<(BlockHeader, CommitCertificate), Infallible> {
        let (block, certificate, _) = &self.blocks[height as usize - 1];
        Ok((block.header, certificate.clone()))
    }
}
