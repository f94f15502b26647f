//! The proofs and their canonical encoding.
//!
//! A proof starts with a format byte ([`FORMAT`]) and the network's genesis hash, so that a
//! proof for another network is refused by name before any signature is checked.

use timecoin_primitives::encoding::{Decode, DecodeError, Encode, Reader, compact_size_len, write_compact_size};
use timecoin_primitives::limits::MAX_BLOCK_TXS;
use timecoin_primitives::{BlockHash, BlockHeader, CommitCertificate, MasternodeSet, MerkleBranch, Transaction};

/// The proof format this build writes and reads.
const FORMAT: u8 = 1;

/// The most certified headers one proof may carry: the proven block and the set changes
/// before it that a verifier could not skip.
pub const MAX_PROOF_HEADERS: usize = 1_024;

/// A header with the certificate that finalizes it and, when it names a set other than the
/// one trusted before it, that set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifiedHeader {
    /// The header.
    pub header: BlockHeader,
    /// Precommits for it from more than 2/3 of the power of the set it names.
    pub certificate: CommitCertificate,
    /// The set the header names, when it is not the set trusted before it.
    pub set: Option<MasternodeSet>,
}

impl Encode for CertifiedHeader {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.header.encode_to(out);
        self.certificate.encode_to(out);
        match &self.set {
            None => out.push(0),
            Some(set) => {
                out.push(1);
                set.encode_to(out);
            }
        }
    }
    fn encoded_len(&self) -> usize {
        self.header.encoded_len()
            + self.certificate.encoded_len()
            + 1
            + self.set.as_ref().map_or(0, Encode::encoded_len)
    }
}

impl Decode for CertifiedHeader {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let header = BlockHeader::decode_from(reader)?;
        let certificate = CommitCertificate::decode_from(reader)?;
        let set = match reader.read_u8()? {
            0 => None,
            1 => Some(MasternodeSet::decode_from(reader)?),
            _ => {
                return Err(DecodeError::InvalidValue {
                    field: "certified header",
                    reason: "expected 0 (the trusted set) or 1 (a new set)",
                });
            }
        };
        Ok(CertifiedHeader {
            header,
            certificate,
            set,
        })
    }
}

/// Proof that a block is final: certified headers, in ascending height, from a trusted
/// state to the block, which is the last of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderProof {
    /// The network's genesis hash.
    pub network: BlockHash,
    /// The headers; the last is the proven block.
    pub headers: Vec<CertifiedHeader>,
}

impl HeaderProof {
    /// The proven block's certified header.
    pub fn target(&self) -> Option<&CertifiedHeader> {
        self.headers.last()
    }
}

/// The smallest encoding of a certified header: a header, an empty certificate and a flag.
const MIN_CERTIFIED_HEADER: usize = BlockHeader::ENCODED_LEN + 8 + 4 + 32 + 1 + 1;

impl Encode for HeaderProof {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(FORMAT);
        self.network.encode_to(out);
        write_compact_size(out, self.headers.len() as u64);
        for header in &self.headers {
            header.encode_to(out);
        }
    }
    fn encoded_len(&self) -> usize {
        1 + 32
            + compact_size_len(self.headers.len() as u64)
            + self.headers.iter().map(Encode::encoded_len).sum::<usize>()
    }
}

impl Decode for HeaderProof {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if reader.read_u8()? != FORMAT {
            return Err(DecodeError::InvalidValue {
                field: "proof format",
                reason: "unknown proof format",
            });
        }
        let network = BlockHash::decode_from(reader)?;
        let count = reader.read_count("proof headers", MAX_PROOF_HEADERS, MIN_CERTIFIED_HEADER)?;
        let mut headers = Vec::with_capacity(count);
        for _ in 0..count {
            headers.push(CertifiedHeader::decode_from(reader)?);
        }
        Ok(HeaderProof { network, headers })
    }
}

/// A transaction and its branch to its block's merkle root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenTransaction {
    /// The whole transaction, signatures included (the tree's leaves are witness hashes).
    pub transaction: Transaction,
    /// Its branch.
    pub branch: MerkleBranch,
}

/// Proof that transactions are in a final block: the block's [`HeaderProof`] and each
/// transaction's branch, in block order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxProof {
    /// The block's finality.
    pub headers: HeaderProof,
    /// The transactions, in ascending position.
    pub transactions: Vec<ProvenTransaction>,
}

impl Encode for TxProof {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.headers.encode_to(out);
        write_compact_size(out, self.transactions.len() as u64);
        for proven in &self.transactions {
            proven.transaction.encode_to(out);
            proven.branch.encode_to(out);
        }
    }
    fn encoded_len(&self) -> usize {
        self.headers.encoded_len()
            + compact_size_len(self.transactions.len() as u64)
            + self
                .transactions
                .iter()
                .map(|p| p.transaction.encoded_len() + p.branch.encoded_len())
                .sum::<usize>()
    }
}

impl Decode for TxProof {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let headers = HeaderProof::decode_from(reader)?;
        let count = reader.read_count(
            "proven transactions",
            MAX_BLOCK_TXS,
            timecoin_primitives::transaction::MIN_TX_ENCODED_LEN + 9,
        )?;
        let mut transactions = Vec::with_capacity(count);
        for _ in 0..count {
            transactions.push(ProvenTransaction {
                transaction: Transaction::decode_from(reader)?,
                branch: MerkleBranch::decode_from(reader)?,
            });
        }
        Ok(TxProof { headers, transactions })
    }
}
