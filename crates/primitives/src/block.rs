//! Block headers, blocks, their merkle trees, precommit votes and commit certificates.

use thiserror::Error;

use crate::consensus::Equivocation;
use crate::encoding::{Decode, DecodeError, Encode, Reader, compact_size_len, write_compact_size};
use crate::hash::{Domain, Hash256};
use crate::keys::{BatchVerifier, PublicKey, Signature};
use crate::limits::{MAX_BLOCK_EVIDENCE, MAX_BLOCK_TXS, MAX_MASTERNODES};
use crate::masternode::MasternodeSet;
use crate::merkle::merkle_root;
use crate::transaction::{BlockHash, MIN_TX_ENCODED_LEN, Transaction, TxId};

/// A block header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    /// Format version; only [`BlockHeader::VERSION`] is valid today.
    pub version: u16,
    /// Distance from genesis (genesis is 0).
    pub height: u64,
    /// The hash of the block at `height - 1` (zero for genesis).
    pub prev_hash: BlockHash,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// [`transactions_root`] of the block's transactions: the merkle root of their witness
    /// hashes, so the header (and so the hash every vote signs) commits to every byte of
    /// every transaction, signatures included.
    pub merkle_root: Hash256,
    /// The operator key of the masternode that proposed the block.
    pub proposer: PublicKey,
    /// The hash of the masternode set whose precommits finalize this block.
    pub masternode_set_hash: Hash256,
    /// The chain state this block is applied to ([`chain_state_hash`] of the parent's UTXO
    /// set and masternode list): two nodes holding a block agree on the state before it.
    pub state_hash: Hash256,
    /// [`last_commit_hash`] of the block's certificate of its parent.
    pub last_commit_hash: Hash256,
    /// [`evidence_hash`] of the block's equivocation evidence.
    pub evidence_hash: Hash256,
}

impl BlockHeader {
    /// The current header version.
    pub const VERSION: u16 = 1;
    /// Encoded size in bytes.
    pub const ENCODED_LEN: usize = 2 + 8 + 32 + 8 + 32 + 32 + 32 * 4;

    /// The block hash.
    pub fn hash(&self) -> BlockHash {
        BlockHash(Domain::BlockHeader.hash_encoded(self))
    }
}

impl Encode for BlockHeader {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.height.to_le_bytes());
        self.prev_hash.encode_to(out);
        out.extend_from_slice(&self.timestamp_ms.to_le_bytes());
        self.merkle_root.encode_to(out);
        self.proposer.encode_to(out);
        self.masternode_set_hash.encode_to(out);
        self.state_hash.encode_to(out);
        self.last_commit_hash.encode_to(out);
        self.evidence_hash.encode_to(out);
    }
    fn encoded_len(&self) -> usize {
        Self::ENCODED_LEN
    }
}

impl Decode for BlockHeader {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(BlockHeader {
            version: reader.read_u16()?,
            height: reader.read_u64()?,
            prev_hash: BlockHash::decode_from(reader)?,
            timestamp_ms: reader.read_u64()?,
            merkle_root: Hash256::decode_from(reader)?,
            proposer: PublicKey::decode_from(reader)?,
            masternode_set_hash: Hash256::decode_from(reader)?,
            state_hash: Hash256::decode_from(reader)?,
            last_commit_hash: Hash256::decode_from(reader)?,
            evidence_hash: Hash256::decode_from(reader)?,
        })
    }
}

/// A block: a header, its transactions (the reward transaction first), the certificate that
/// finalized its parent, and evidence of equivocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transactions.
    pub transactions: Vec<Transaction>,
    /// The parent's commit certificate (none in blocks 0 and 1): every node reads the same
    /// precommits from it, which makes proof of service deterministic.
    pub last_commit: Option<CommitCertificate>,
    /// Proofs that masternodes double-signed, at most [`MAX_BLOCK_EVIDENCE`].
    pub evidence: Vec<Equivocation>,
}

/// The root a header names for a block's transactions: the merkle root of their witness
/// hashes ([`Transaction::witness_hash`]), so that no byte of a body, not even a signature,
/// can change under the same block hash.
pub fn transactions_root(transactions: &[Transaction]) -> Hash256 {
    let leaves: Vec<Hash256> = transactions.iter().map(Transaction::witness_hash).collect();
    merkle_root(&leaves)
}

/// The hash a header names for a block's last commit (zero when there is none).
pub fn last_commit_hash(certificate: Option<&CommitCertificate>) -> Hash256 {
    certificate.map_or(Hash256::ZERO, |c| Domain::LastCommit.hash_encoded(c))
}

/// The hash a header names for a block's evidence list (zero when it is empty).
pub fn evidence_hash(evidence: &[Equivocation]) -> Hash256 {
    if evidence.is_empty() {
        return Hash256::ZERO;
    }
    let mut hasher = Domain::Evidence.hasher();
    for item in evidence {
        hasher.update(&item.to_bytes());
    }
    Hash256(*hasher.finalize().as_bytes())
}

/// The hash of a chain state: its UTXO-set commitment and its masternode list's hash.
pub fn chain_state_hash(utxo_commitment: &Hash256, masternode_list: &Hash256) -> Hash256 {
    let mut hasher = Domain::ChainState.hasher();
    hasher.update(&utxo_commitment.0);
    hasher.update(&masternode_list.0);
    Hash256(*hasher.finalize().as_bytes())
}

impl Block {
    /// The block hash.
    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }

    /// Whether the body is the one the header commits to: its transactions with their
    /// signatures, its certificate of the parent and its evidence. A structural check, cheap
    /// next to validation, that a relay cannot pass with an altered body.
    pub fn matches_header(&self) -> bool {
        self.header.merkle_root == transactions_root(&self.transactions)
            && self.header.last_commit_hash == last_commit_hash(self.last_commit.as_ref())
            && self.header.evidence_hash == evidence_hash(&self.evidence)
    }

    /// The txids in block order.
    pub fn txids(&self) -> Vec<TxId> {
        self.transactions.iter().map(Transaction::txid).collect()
    }
}

impl Encode for Block {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.header.encode_to(out);
        write_compact_size(out, self.transactions.len() as u64);
        for tx in &self.transactions {
            tx.encode_to(out);
        }
        match &self.last_commit {
            None => out.push(0),
            Some(certificate) => {
                out.push(1);
                certificate.encode_to(out);
            }
        }
        write_compact_size(out, self.evidence.len() as u64);
        for item in &self.evidence {
            item.encode_to(out);
        }
    }
    fn encoded_len(&self) -> usize {
        BlockHeader::ENCODED_LEN
            + compact_size_len(self.transactions.len() as u64)
            + self.transactions.iter().map(Encode::encoded_len).sum::<usize>()
            + 1
            + self.last_commit.as_ref().map_or(0, Encode::encoded_len)
            + compact_size_len(self.evidence.len() as u64)
            + self.evidence.iter().map(Encode::encoded_len).sum::<usize>()
    }
}

impl Decode for Block {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let header = BlockHeader::decode_from(reader)?;
        let count = reader.read_count("transactions", MAX_BLOCK_TXS, MIN_TX_ENCODED_LEN)?;
        let mut transactions = Vec::with_capacity(count);
        for _ in 0..count {
            transactions.push(Transaction::decode_from(reader)?);
        }
        let last_commit = match reader.read_u8()? {
            0 => None,
            1 => Some(CommitCertificate::decode_from(reader)?),
            _ => {
                return Err(DecodeError::InvalidValue {
                    field: "last commit",
                    reason: "expected 0 (none) or 1 (a certificate)",
                });
            }
        };
        // An equivocation is two signed votes of at least 141 bytes each.
        let evidence_count = reader.read_count("evidence", MAX_BLOCK_EVIDENCE, 282)?;
        let mut evidence = Vec::with_capacity(evidence_count);
        for _ in 0..evidence_count {
            evidence.push(Equivocation::decode_from(reader)?);
        }
        Ok(Block {
            header,
            transactions,
            last_commit,
            evidence,
        })
    }
}

/// The two kinds of consensus vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VoteKind {
    /// First-round vote.
    Prevote,
    /// Second-round vote; more than 2/3 of power precommitting a block finalizes it.
    Precommit,
}

/// A vote, as signed. `chain` is the network's genesis hash, so a vote cannot be replayed on
/// another network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vote {
    /// The network's genesis hash.
    pub chain: BlockHash,
    /// The height voted on.
    pub height: u64,
    /// The consensus round.
    pub round: u32,
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// The block voted for, or `None` for a nil vote.
    pub block: Option<BlockHash>,
}

impl Vote {
    /// The message a masternode signs for this vote.
    pub fn signing_message(&self) -> Hash256 {
        Domain::Vote.hash_encoded(self)
    }
}

impl Encode for Vote {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.chain.encode_to(out);
        out.extend_from_slice(&self.height.to_le_bytes());
        out.extend_from_slice(&self.round.to_le_bytes());
        out.push(match self.kind {
            VoteKind::Prevote => 1,
            VoteKind::Precommit => 2,
        });
        match &self.block {
            None => out.push(0),
            Some(hash) => {
                out.push(1);
                hash.encode_to(out);
            }
        }
    }
    fn encoded_len(&self) -> usize {
        32 + 8 + 4 + 1 + 1 + if self.block.is_some() { 32 } else { 0 }
    }
}

impl Decode for Vote {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let chain = BlockHash::decode_from(reader)?;
        let height = reader.read_u64()?;
        let round = reader.read_u32()?;
        let kind = match reader.read_u8()? {
            1 => VoteKind::Prevote,
            2 => VoteKind::Precommit,
            _ => {
                return Err(DecodeError::InvalidValue {
                    field: "vote kind",
                    reason: "expected 1 (prevote) or 2 (precommit)",
                });
            }
        };
        let block = match reader.read_u8()? {
            0 => None,
            1 => Some(BlockHash::decode_from(reader)?),
            _ => {
                return Err(DecodeError::InvalidValue {
                    field: "vote value",
                    reason: "expected 0 (nil) or 1 (block)",
                });
            }
        };
        Ok(Vote {
            chain,
            height,
            round,
            kind,
            block,
        })
    }
}

/// One masternode's precommit signature in a commit certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitSignature {
    /// The signer's operator key.
    pub validator: PublicKey,
    /// Its signature over the precommit for the certified block.
    pub signature: Signature,
}

/// The proof that a block is final: precommits for it from more than 2/3 of the voting power
/// of the masternode set its header names. Signatures are sorted by validator key, one each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitCertificate {
    /// The certified block's height.
    pub height: u64,
    /// The round in which it was decided.
    pub round: u32,
    /// The certified block.
    pub block_hash: BlockHash,
    /// The precommit signatures.
    pub signatures: Vec<CommitSignature>,
}

/// Why a commit certificate does not prove a block final.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// It certifies another block.
    #[error("certificate is for block {found} at height {found_height}, expected {expected} at {expected_height}")]
    WrongBlock {
        /// The block expected.
        expected: BlockHash,
        /// Its height.
        expected_height: u64,
        /// The block certified.
        found: BlockHash,
        /// Its height.
        found_height: u64,
    },
    /// A signer is not a voting member of the set.
    #[error("signer {0} holds no voting power in the masternode set")]
    UnknownSigner(PublicKey),
    /// Signers are not strictly sorted (a duplicate, or a non-canonical order).
    #[error("certificate signers are not strictly sorted by key")]
    Unsorted,
    /// The signers hold too little power.
    #[error("certificate carries {signed} of {total} voting power; more than 2/3 is needed")]
    InsufficientPower {
        /// Power that signed.
        signed: u64,
        /// Total power of the set.
        total: u64,
    },
    /// At least one signature is invalid.
    #[error("certificate holds an invalid signature")]
    BadSignature,
}

impl CommitCertificate {
    /// Adds a precommit that arrived after the decision, if it is for this certificate's
    /// block and round on `chain` and its signer is not in yet; returns whether it was added.
    /// The caller checks the signature and the signer's membership first. A proposer puts
    /// every precommit it received into its block's last commit (as CometBFT does), so that
    /// proof of service credits the slowest honest masternodes too, not only the first
    /// more than 2/3.
    pub fn add_late_precommit(
        &mut self,
        chain: &BlockHash,
        vote: &Vote,
        validator: PublicKey,
        signature: Signature,
    ) -> bool {
        if !self.wants_precommit(chain, vote, &validator) {
            return false;
        }
        match self.signatures.binary_search_by_key(&validator, |s| s.validator) {
            Ok(_) => false,
            Err(position) => {
                self.signatures
                    .insert(position, CommitSignature { validator, signature });
                true
            }
        }
    }

    /// Whether a precommit by `validator` would join this certificate: it is for the
    /// certificate's block and round on `chain`, and `validator` did not sign yet. Checked
    /// before the signature, so that what cannot join costs no verification.
    pub fn wants_precommit(&self, chain: &BlockHash, vote: &Vote, validator: &PublicKey) -> bool {
        vote.chain == *chain
            && vote.kind == VoteKind::Precommit
            && vote.height == self.height
            && vote.round == self.round
            && vote.block == Some(self.block_hash)
            && !self.is_signed_by(validator)
    }

    /// Whether `validator` signed this certificate.
    pub fn is_signed_by(&self, validator: &PublicKey) -> bool {
        self.signatures.binary_search_by_key(validator, |s| s.validator).is_ok()
    }

    /// A certificate of `block_hash` at `height`, decided in `round`, signed by `signers`
    /// (for tools and tests that hold every key; nodes assemble certificates from votes).
    pub fn sign(
        chain: &BlockHash,
        height: u64,
        round: u32,
        block_hash: &BlockHash,
        signers: &[&crate::keys::SecretKey],
    ) -> CommitCertificate {
        let message = Vote {
            chain: *chain,
            height,
            round,
            kind: VoteKind::Precommit,
            block: Some(*block_hash),
        }
        .signing_message();
        let mut signatures: Vec<CommitSignature> = signers
            .iter()
            .map(|key| CommitSignature {
                validator: key.public_key(),
                signature: key.sign(&message.0),
            })
            .collect();
        signatures.sort_by_key(|s| s.validator);
        signatures.dedup_by_key(|s| s.validator);
        CommitCertificate {
            height,
            round,
            block_hash: *block_hash,
            signatures,
        }
    }

    /// Checks that this certificate finalizes `block_hash` at `height` on the network whose
    /// genesis is `chain`, under `set`.
    pub fn verify<R: rand_core::CryptoRng>(
        &self,
        chain: &BlockHash,
        height: u64,
        block_hash: &BlockHash,
        set: &MasternodeSet,
        rng: R,
    ) -> Result<(), CertificateError> {
        if self.block_hash != *block_hash || self.height != height {
            return Err(CertificateError::WrongBlock {
                expected: *block_hash,
                expected_height: height,
                found: self.block_hash,
                found_height: self.height,
            });
        }
        if self
            .signatures
            .windows(2)
            .any(|w| matches!(w, [a, b] if a.validator >= b.validator))
        {
            return Err(CertificateError::Unsorted);
        }
        let message = Vote {
            chain: *chain,
            height,
            round: self.round,
            kind: VoteKind::Precommit,
            block: Some(*block_hash),
        }
        .signing_message();
        let mut signed = 0u64;
        let mut batch = BatchVerifier::new();
        for sig in &self.signatures {
            let power = set.voting_power(&sig.validator);
            if power == 0 {
                return Err(CertificateError::UnknownSigner(sig.validator));
            }
            signed = signed.saturating_add(power);
            batch.queue(&sig.validator, &message.0, &sig.signature);
        }
        let total = set.total_voting_power();
        if u128::from(signed) * 3 <= u128::from(total) * 2 {
            return Err(CertificateError::InsufficientPower { signed, total });
        }
        batch.verify(rng).map_err(|_| CertificateError::BadSignature)
    }
}

impl Encode for CommitCertificate {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.height.to_le_bytes());
        out.extend_from_slice(&self.round.to_le_bytes());
        self.block_hash.encode_to(out);
        write_compact_size(out, self.signatures.len() as u64);
        for sig in &self.signatures {
            sig.validator.encode_to(out);
            sig.signature.encode_to(out);
        }
    }
    fn encoded_len(&self) -> usize {
        8 + 4 + 32 + compact_size_len(self.signatures.len() as u64) + self.signatures.len() * 96
    }
}

impl Decode for CommitCertificate {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let height = reader.read_u64()?;
        let round = reader.read_u32()?;
        let block_hash = BlockHash::decode_from(reader)?;
        let count = reader.read_count("signatures", MAX_MASTERNODES, 96)?;
        let mut signatures: Vec<CommitSignature> = Vec::with_capacity(count);
        for _ in 0..count {
            let validator = PublicKey::decode_from(reader)?;
            let signature = Signature::decode_from(reader)?;
            if signatures.last().is_some_and(|last| last.validator >= validator) {
                return Err(DecodeError::InvalidValue {
                    field: "signatures",
                    reason: "not strictly sorted by validator key",
                });
            }
            signatures.push(CommitSignature { validator, signature });
        }
        Ok(CommitCertificate {
            height,
            round,
            block_hash,
            signatures,
        })
    }
}
