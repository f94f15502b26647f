//! A light client's state: the headers it verified, from more than one source, and the
//! conflicts it found between them.
//!
//! [`Follower::advance`] takes one proof per source for the same next height, verifies each
//! from the follower's trusted state, and moves on only when every proof that verifies
//! names the same block. Two verified proofs naming different blocks at one height mean more
//! than 1/3 of a trusted set signed two blocks: a [`Conflict`], with the double signers'
//! votes as [`Equivocation`] evidence where they signed in the same round. The follower then
//! stops: it cannot tell which fork to trust, and says so until its operator decides.

use std::collections::{BTreeMap, HashMap};

use rand_core::CryptoRng;
use timecoin_primitives::{
    BlockHash, BlockHeader, CommitCertificate, Equivocation, PublicKey, SignedVote, Vote, VoteKind,
};

use crate::proof::{HeaderProof, TxProof};
use crate::verify::{LightError, ProvenBlock, TrustedState, verify_headers, verify_transactions};

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
    /// Verified proofs name different blocks: the follower stops.
    Conflict(Box<Conflict>),
}

/// The headers a light client verified, and where it stands.
#[derive(Debug, Clone)]
pub struct Follower {
    trusted: TrustedState,
    genesis: TrustedState,
    /// Verified headers with their certificates, by height (the most recent `keep`).
    headers: BTreeMap<u64, (BlockHeader, CommitCertificate)>,
    heights: HashMap<BlockHash, u64>,
    keep: usize,
    conflict: Option<Box<Conflict>>,
}

impl Follower {
    /// A follower trusting `genesis`, keeping the most recent `keep` verified headers.
    pub fn new(genesis: TrustedState, keep: usize) -> Follower {
        Follower {
            trusted: genesis.clone(),
            genesis,
            headers: BTreeMap::new(),
            heights: HashMap::new(),
            keep: keep.max(1),
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
        self.heights
            .get(hash)
            .and_then(|height| self.headers.get(height))
            .map(|(header, _)| header)
    }

    /// The verified header at `height`, if it is held.
    pub fn header_at(&self, height: u64) -> Option<&BlockHeader> {
        self.headers.get(&height).map(|(header, _)| header)
    }

    /// How many verified headers it holds, and the lowest.
    pub fn held(&self) -> (usize, Option<u64>) {
        (self.headers.len(), self.headers.keys().next().copied())
    }

    /// Verifies one proof per source (`(source, proof)`) of the same next block from the
    /// trusted state, and trusts that block if every proof that verifies names it.
    pub fn advance<R: CryptoRng>(&mut self, proofs: Vec<(String, HeaderProof)>, rng: &mut R) -> Advance {
        if let Some(conflict) = &self.conflict {
            return Advance::Conflict(conflict.clone());
        }
        let mut refused = Vec::new();
        let mut verified: Vec<(String, HeaderProof, TrustedState)> = Vec::new();
        for (source, proof) in proofs {
            match verify_headers(&self.trusted, &proof, rng) {
                Ok(state) => verified.push((source, proof, state)),
                Err(error) => refused.push((source, error)),
            }
        }
        // Proofs of different heights are compared where they overlap: at the lowest.
        let Some(height) = verified.iter().map(|(_, _, state)| state.height).min() else {
            return Advance::Refused(refused);
        };
        let at = |proof: &HeaderProof| {
            proof
                .headers
                .iter()
                .find(|h| h.header.height == height)
                .map(|h| (h.header, h.certificate.clone()))
        };
        let mut named: Option<(String, BlockHeader, CommitCertificate)> = None;
        for (source, proof, _) in &verified {
            let Some((header, certificate)) = at(proof) else {
                // It skipped the height others stopped at: it is checked when they pass it.
                continue;
            };
            match &named {
                None => named = Some((source.clone(), header, certificate)),
                Some(first) if first.1.hash() != header.hash() => {
                    let conflict = Box::new(Conflict::between(
                        &self.trusted.network,
                        first.clone(),
                        (source.clone(), header, certificate),
                    ));
                    self.conflict = Some(conflict.clone());
                    return Advance::Conflict(conflict);
                }
                Some(_) => {}
            }
        }
        let Some((_, proof, state)) = verified.into_iter().find(|(_, _, state)| state.height == height) else {
            return Advance::Refused(refused);
        };
        for item in proof.headers {
            self.hold(item.header, item.certificate);
        }
        self.trusted = state;
        Advance::Trusted { height, refused }
    }

    /// What it trusted first (the genesis).
    pub fn genesis(&self) -> &TrustedState {
        &self.genesis
    }

    /// Checks a transaction proof: from the genesis, and against the held header at its
    /// block's height, if one is held (a proof of another block there is refused).
    pub fn verify_transactions<R: CryptoRng>(&self, proof: &TxProof, rng: &mut R) -> Result<ProvenBlock, LightError> {
        let proven = verify_transactions(&self.genesis, proof, rng)?;
        self.check_held(&proven)?;
        Ok(proven)
    }

    /// Whether `proven`'s block agrees with the header held at its height, if any: for a
    /// caller that verified from [`Follower::genesis`] without holding the follower.
    pub fn check_held(&self, proven: &ProvenBlock) -> Result<(), LightError> {
        match self.header_at(proven.header.height) {
            Some(held) if held.hash() != proven.header.hash() => Err(LightError::Conflicts {
                height: held.height,
                held: held.hash(),
                found: proven.header.hash(),
            }),
            _ => Ok(()),
        }
    }

    fn hold(&mut self, header: BlockHeader, certificate: CommitCertificate) {
        self.heights.insert(header.hash(), header.height);
        self.headers.insert(header.height, (header, certificate));
        while self.headers.len() > self.keep {
            let Some((_, (oldest, _))) = self.headers.pop_first() else {
                break;
            };
            self.heights.remove(&oldest.hash());
        }
    }
}
