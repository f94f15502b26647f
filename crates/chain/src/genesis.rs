//! The genesis block, built deterministically from a genesis file.
//!
//! The file names the network, the genesis time, the initial allocations and the initial
//! masternodes. The genesis block holds one transaction without inputs that creates the
//! allocations, with a memo naming the network; its header commits to the masternode set.
//! The genesis block's hash identifies the network: two nodes given the same file get the
//! same hash, byte for byte.

use serde::Deserialize;
use thiserror::Error;
use timecoin_primitives::{
    Address, Amount, Block, BlockHash, BlockHeader, Hash256, Masternode, MasternodeSet, Network, PublicKey, Tier,
    Transaction, TxOutput, transactions_root,
};

use crate::params::ChainParams;

/// A genesis file as written in TOML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisFile {
    /// `mainnet`, `testnet` or `local`.
    pub network: String,
    /// The genesis block's timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Free text placed in the genesis transaction's memo.
    #[serde(default)]
    pub message: String,
    /// Initial coins.
    #[serde(default, rename = "allocation")]
    pub allocations: Vec<AllocationEntry>,
    /// Initial masternodes.
    #[serde(default, rename = "masternode")]
    pub masternodes: Vec<MasternodeEntry>,
}

/// One initial allocation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocationEntry {
    /// A bech32m address of the genesis network.
    pub address: String,
    /// Decimal TIME, as a string ("1000.5").
    pub amount: String,
}

/// One initial masternode.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasternodeEntry {
    /// The operator's Ed25519 public key, 64 hex characters.
    pub operator_key: String,
    /// `free`, `bronze`, `silver` or `gold`.
    pub tier: String,
    /// Where its rewards are paid.
    pub reward_address: String,
}

/// Why a genesis file cannot make a genesis block.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GenesisError {
    /// The TOML is malformed or has unknown keys (the toml crate's error, with the line and
    /// the key, is the source).
    #[error("genesis file does not parse")]
    Toml(#[source] toml::de::Error),
    /// The network name is unknown.
    #[error("genesis file: {0}")]
    Network(String),
    /// An address is malformed or of another network.
    #[error("genesis file: {field} {value:?}: {reason}")]
    Address {
        /// Which entry.
        field: String,
        /// The text given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// An amount is malformed, zero or too large.
    #[error("genesis file: allocation {index}: amount {value:?}: {reason}")]
    Amount {
        /// The allocation's position.
        index: usize,
        /// The text given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// The allocations add up to more than the maximum amount.
    #[error("genesis file: allocations add up to more than the maximum amount")]
    TooMuchMoney,
    /// A masternode entry is invalid.
    #[error("genesis file: masternode {index}: {reason}")]
    Masternode {
        /// The entry's position.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// Too few masternodes hold voting power for the chain to produce blocks.
    #[error("genesis file: {found} masternodes hold voting power, the network needs at least {needed}")]
    TooFewMasternodes {
        /// Voting masternodes in the file.
        found: usize,
        /// The network's `min_masternodes`.
        needed: usize,
    },
    /// The message does not fit the memo.
    #[error("genesis file: message is {0} bytes; it must fit in {MAX} bytes with the network name", MAX = timecoin_primitives::limits::MAX_MEMO_BYTES)]
    MessageTooLong(usize),
}

/// A network's starting point: parameters, genesis block and initial masternode set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    /// The network's parameters.
    pub params: ChainParams,
    /// The genesis block.
    pub block: Block,
    /// The masternodes that sign block 1.
    pub masternodes: MasternodeSet,
}

impl Genesis {
    /// Parses a genesis file's text.
    pub fn from_toml(text: &str) -> Result<Genesis, GenesisError> {
        let file: GenesisFile = toml::from_str(text).map_err(GenesisError::Toml)?;
        Genesis::from_file(&file)
    }

    /// Builds the genesis from a parsed file.
    pub fn from_file(file: &GenesisFile) -> Result<Genesis, GenesisError> {
        let network: Network = file
            .network
            .parse()
            .map_err(|e| GenesisError::Network(format!("{e}")))?;
        let params = ChainParams::for_network(network);
        let parse_address = |field: String, value: &str| {
            Address::parse_for(value, network)
                .map(|a| a.payload)
                .map_err(|e| GenesisError::Address {
                    field,
                    value: value.to_owned(),
                    reason: e.to_string(),
                })
        };

        let mut outputs = Vec::with_capacity(file.allocations.len());
        for (index, entry) in file.allocations.iter().enumerate() {
            let amount: Amount = entry
                .amount
                .parse()
                .map_err(|e: timecoin_primitives::ParseAmountError| GenesisError::Amount {
                    index,
                    value: entry.amount.clone(),
                    reason: e.to_string(),
                })?;
            if amount == Amount::ZERO {
                return Err(GenesisError::Amount {
                    index,
                    value: entry.amount.clone(),
                    reason: "an allocation must be positive".to_owned(),
                });
            }
            outputs.push(TxOutput {
                amount,
                address: parse_address(format!("allocation {index}"), &entry.address)?,
            });
        }
        match Amount::checked_sum(outputs.iter().map(|o| o.amount)) {
            Some(total) if total.is_in_range() => {}
            _ => return Err(GenesisError::TooMuchMoney),
        }

        let mut members = Vec::with_capacity(file.masternodes.len());
        for (index, entry) in file.masternodes.iter().enumerate() {
            let operator: PublicKey = entry.operator_key.parse().map_err(|e| GenesisError::Masternode {
                index,
                reason: format!("operator_key: {e}"),
            })?;
            let tier: Tier = entry.tier.parse().map_err(|e| GenesisError::Masternode {
                index,
                reason: format!("{e}"),
            })?;
            members.push(Masternode {
                operator,
                tier,
                reward_address: parse_address(format!("masternode {index} reward_address"), &entry.reward_address)?,
            });
        }
        let masternodes = MasternodeSet::new(members).map_err(|e| GenesisError::Masternode {
            index: 0,
            reason: e.to_string(),
        })?;
        if masternodes.voting_members() < params.min_masternodes {
            return Err(GenesisError::TooFewMasternodes {
                found: masternodes.voting_members(),
                needed: params.min_masternodes,
            });
        }

        let memo = format!("timecoin genesis {}: {}", network.name(), file.message).into_bytes();
        if memo.len() > timecoin_primitives::limits::MAX_MEMO_BYTES {
            return Err(GenesisError::MessageTooLong(file.message.len()));
        }
        let tx = Transaction {
            version: Transaction::VERSION,
            inputs: Vec::new(),
            outputs,
            lock_time: 0,
            memo,
            payload: None,
        };
        let header = BlockHeader {
            version: BlockHeader::VERSION,
            height: 0,
            prev_hash: BlockHash(Hash256::ZERO),
            timestamp_ms: file.timestamp_ms,
            merkle_root: transactions_root(std::slice::from_ref(&tx)),
            proposer: PublicKey::default(),
            masternode_set_hash: masternodes.hash(),
            state_hash: Hash256::ZERO,
            last_commit_hash: Hash256::ZERO,
            evidence_hash: Hash256::ZERO,
        };
        Ok(Genesis {
            params,
            block: Block {
                header,
                transactions: vec![tx],
                last_commit: None,
                evidence: Vec::new(),
            },
            masternodes,
        })
    }

    /// The masternode list of the chain state the genesis block makes.
    pub fn masternode_list(&self) -> crate::MasternodeList {
        crate::MasternodeList::from_genesis(&self.masternodes, self.block.header.timestamp_ms)
    }

    /// The genesis block's hash, which identifies the network.
    pub fn hash(&self) -> BlockHash {
        self.block.hash()
    }

    /// The coins the genesis block creates.
    pub fn allocated(&self) -> Amount {
        Amount::checked_sum(
            self.block
                .transactions
                .iter()
                .flat_map(|t| t.outputs.iter().map(|o| o.amount)),
        )
        .unwrap_or(Amount::ZERO)
    }
}
