//! A light client's state: the headers it verified, from more than one source, and the
//! conflicts it found between them.
//!
//! [`Follower::advance`] takes one proof per source for the same height, verifies each from
//! the follower's trusted state, and moves on only when enough of them verify and every
//! proof that verifies names the same block at every height they share. Two verified proofs naming different blocks at one height mean more
//! than 1/3 of a trusted set signed two blocks: a [`Conflict`], with the double signers'
//! votes as [`Equivocation`] evidence where they signed in the same round. The follower then
//! stops: it cannot tell which fork to trust, and says so until its operator decides.

use std::collections::{BTreeMap, HashMap};

use rand_core::CryptoRng;
use timecoin_primitives::{
    BlockHash, BlockHeader, CommitCertificate, Equivocation, PublicKey, SignedVote, Vote, VoteKind,
};

use crate::proof::{HeaderProof, TxProof};
use crate::verify::{LightError, ProvenBlock, TrustedState, check_transactions, verify_headers};

/// Two verified blocks at one height.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The height.
    pub height: u64,
    /// The first source's header and certificate.
    pub first: (String, BlockHeader, CommitCertificate),
    /// The other source's.
    pub second: (String, BlockHeader, CommitCertificate),
    /// Masternodes that signed both certificates.
    pub double_signers: Vec<PublicKey>,
    /// Proof of each double signer that signed both in the same round.
    pub evidence: Vec<Equivocation>,
}

impl Conflict {
    fn between(
        network: &BlockHash,
        first: (String, BlockHeader, CommitCertificate),
        second: (String, BlockHeader, CommitCertificate),
    ) -> Conflict {
        let precommit = |certificate: &CommitCertificate| Vote {
            chain: *network,
            height: certificate.height,
            round: certificate.round,
            kind: VoteKind::Precommit,
            block: Some(certificate.block_hash),
        };
        let mut double_signers = Vec::new();
        let mut evidence = Vec::new();
        for a in &first.2.signatures {
            let Some(b) = second.2.signatures.iter().find(|b| b.validator == a.validator) else {
                continue;
            };
            double_signers.push(a.validator);
            let signed = |certificate: &CommitCertificate, signature| SignedVote {
                vote: precommit(certificate),
                validator: a.validator,
                signature,
            };
            if let Ok(proof) = Equivocation::new(signed(&first.2, a.signature), signed(&second.2, b.signature)) {
                evidence.push(proof);
            }
        }
        Conflict {
            height: first.1.height,
            first,
            second,
            double_signers,
            evidence,
        }
    }
}

/// What [`Follower::advance`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Advance {
    /// Every verified proof named this block, now trusted; the sources whose proofs did not
    /// verify are listed with why.
    Trusted {
        /// The new trusted height.
        height: u64,
        /// Sources whose proofs failed, and why.
        refused: Vec<(String, LightError)>,
    },
    /// No proof verified.
    Refused(Vec<(String, LightError)>),
    /// Fewer sources than needed proved the block (the others failed, as listed): it is not
    /// trusted yet.
    Unconfirmed {
        /// The block's height.
        height: u64,
        /// Sources whose proofs verified.
        agreeing: usize,
        /// Sources whose proofs failed, and why.
        refused: Vec<(String, LightError)>,
    },
    /// Verified proofs name different blocks: the follower stops.
    Conflict(Box<Conflict>),
}

/// The headers a light client verified, and where it stands.
#[derive(Debug, Clone)]
pub struct Follower {
    trusted: TrustedState,
    /// Verified headers with their certificates, by height (the most recent `keep`).
    headers: BTreeMap<u64, BlockHeader>,
    heights: HashMap<BlockHash, u64>,
    keep: usize,
    /// Sources whose proofs must verify and agree before a block is trusted.
    agreeing: usize,
    conflict: Option<Box<Conflict>>,
}

impl Follower {
    /// A follower trusting `genesis`, keeping the most recent `keep` verified headers, and
    /// trusting a block once `agreeing` sources (at least 1) proved it.
    pub fn new(genesis: TrustedState, keep: usize, agreeing: usize) -> Follower {
        Follower {
            trusted: genesis,
            headers: BTreeMap::new(),
            heights: HashMap::new(),
            keep: keep.max(1),
            agreeing: agreeing.max(1),
            conflict: None,
        }
    }

    /// What it trusts now.
    pub fn trusted(&self) -> &TrustedState {
        &self.trusted
    }

    /// The conflict that stopped it, if any.
    pub fn conflict(&self) -> Option<&Conflict> {
        self.conflict.as_deref()
    }

    /// A verified header by hash.
    pub fn header(&self, hash: &BlockHash) -> Option<&BlockHeader> {
        self.heights.get(hash).and_then(|height| self.headers.get(height))
    }

    /// The verified header at `height`, if it is held.
    pub fn header_at(&self, height: u64) -> Option<&BlockHeader> {
        self.headers.get(&height)
    }

    /// How many verified headers it holds, and the lowest.
    pub fn held(&self) -> (usize, Option<u64>) {
        (self.headers.len(), self.headers.keys().next().copied())
    }

    /// Verifies one proof per source (`(source, proof)`) of the block at `height` from the
    /// trusted state, and trusts that block when at least `agreeing` of them (as
    /// [`Follower::new`] was told) verify and every proof that verifies agrees with them at
    /// every height they share.
    pub fn advance<R: CryptoRng>(&mut self, height: u64, proofs: Vec<(String, HeaderProof)>, rng: &mut R) -> Advance {
        if let Some(conflict) = &self.conflict {
            return Advance::Conflict(conflict.clone());
        }
        let mut refused = Vec::new();
        let mut verified: Vec<(String, HeaderProof, TrustedState)> = Vec::new();
        for (source, proof) in proofs {
            match verify_headers(&self.trusted, &proof, rng) {
                Ok(state) if state.height == height => verified.push((source, proof, state)),
                Ok(state) => refused.push((
                    source,
                    LightError::WrongTarget {
                        asked: height,
                        found: state.height,
                    },
                )),
                Err(error) => refused.push((source, error)),
            }
        }
        // Every height any two proofs share must hold one block.
        let mut seen: BTreeMap<u64, (String, BlockHeader, CommitCertificate)> = BTreeMap::new();
        for (source, proof, _) in &verified {
            for item in &proof.headers {
                match seen.get(&item.header.height) {
                    None => {
                        seen.insert(
                            item.header.height,
                            (source.clone(), item.header, item.certificate.clone()),
                        );
                    }
                    Some(first) if first.1.hash() != item.header.hash() => {
                        let conflict = Box::new(Conflict::between(
                            &self.trusted.network,
                            first.clone(),
                            (source.clone(), item.header, item.certificate.clone()),
                        ));
                        self.conflict = Some(conflict.clone());
                        return Advance::Conflict(conflict);
                    }
                    Some(_) => {}
                }
            }
        }
        if verified.len() < self.agreeing {
            return Advance::Unconfirmed {
                height,
                agreeing: verified.len(),
                refused,
            };
        }
        let Some((_, proof, state)) = verified.into_iter().next() else {
            return Advance::Refused(refused);
        };
        for item in &proof.headers {
            self.hold(item.header);
        }
        self.trusted = state;
        Advance::Trusted { height, refused }
    }

    /// Checks a transaction proof against the headers it verified: the proof's block must be
    /// one it holds (its finality was checked, and cross-checked, when it was followed); a
    /// block it does not hold is refused, not trusted from the genesis alone.
    pub fn verify_transactions(&self, proof: &TxProof) -> Result<ProvenBlock, LightError> {
        let header = proof.headers.target().ok_or(LightError::Empty)?.header;
        let block = header.hash();
        if self.header(&block).is_none() {
            return Err(match self.header_at(header.height) {
                Some(held) => LightError::Conflicts {
                    height: header.height,
                    held: held.hash(),
                    found: block,
                },
                None => LightError::NotHeld {
                    height: header.height,
                    trusted: self.trusted.height,
                    lowest: self.held().1,
                },
            });
        }
        Ok(ProvenBlock {
            trusted: self.trusted.clone(),
            header,
            transactions: check_transactions(&header, proof)?,
        })
    }

    fn hold(&mut self, header: BlockHeader) {
        self.heights.insert(header.hash(), header.height);
        self.headers.insert(header.height, header);
        while self.headers.len() > self.keep {
            let Some((_, oldest)) = self.headers.pop_first() else {
                break;
            };
            self.heights.remove(&oldest.hash());
        }
    }
}
