//! Merkle trees over a block's transactions: the root a header names, and the branch that
//! proves one leaf is under it.
//!
//! Leaves and inner nodes hash under different tags, so a node can never pass for a leaf.
//! An odd node at the end of a level moves up unchanged (it is not paired with itself, which
//! would let two different lists share a root, as in Bitcoin's CVE-2012-2459). A branch
//! names its leaf's index and the number of leaves, so the shape of the tree, and so which
//! levels have a sibling on which side, follows from the two numbers alone: a branch has
//! exactly one encoding for one leaf of one tree.

use thiserror::Error;

use crate::encoding::{Decode, DecodeError, Encode, Reader, compact_size_len, write_compact_size};
use crate::hash::{Domain, Hash256};
use crate::limits::MAX_BLOCK_TXS;

/// The merkle root of a list of leaves (witness hashes for a block, see
/// [`crate::transactions_root`]). The root of an empty list is zero.
pub fn merkle_root(leaves: &[Hash256]) -> Hash256 {
    let mut level: Vec<Hash256> = leaves.iter().map(leaf_hash).collect();
    if level.is_empty() {
        return Hash256::ZERO;
    }
    while level.len() > 1 {
        level = next_level(&level);
    }
    level.first().copied().unwrap_or(Hash256::ZERO)
}

/// The level above `level`: neighbours paired, an unpaired last node moved up unchanged.
fn next_level(level: &[Hash256]) -> Vec<Hash256> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [left, right] => node_hash(left, right),
            [single] => *single,
            _ => Hash256::ZERO,
        })
        .collect()
}

fn leaf_hash(leaf: &Hash256) -> Hash256 {
    Domain::MerkleLeaf.hash(&leaf.0)
}

fn node_hash(left: &Hash256, right: &Hash256) -> Hash256 {
    let mut hasher = Domain::MerkleNode.hasher();
    hasher.update(&left.0);
    hasher.update(&right.0);
    Hash256(*hasher.finalize().as_bytes())
}

/// The siblings a leaf at `index` of a tree of `leaves` leaves needs at each level, from the
/// bottom: `Some(true)` for a sibling on the right, `Some(false)` on the left, `None` where
/// the node moves up alone.
fn shape(mut index: u32, mut leaves: u32) -> impl Iterator<Item = Option<bool>> {
    std::iter::from_fn(move || {
        if leaves <= 1 {
            return None;
        }
        let side = if index % 2 == 1 {
            Some(false)
        } else if index.saturating_add(1) < leaves {
            Some(true)
        } else {
            None
        };
        index /= 2;
        leaves = leaves.div_ceil(2);
        Some(side)
    })
}

/// Why a merkle branch proves nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MerkleError {
    /// The index is not below the leaf count.
    #[error("leaf {index} of a tree of {leaves} leaves")]
    IndexOutOfRange {
        /// The index named.
        index: u32,
        /// The leaf count named.
        leaves: u32,
    },
    /// The branch holds more or fewer siblings than the tree's shape needs.
    #[error("the branch holds {found} hashes; a leaf {index} of {leaves} needs {needed}")]
    WrongLength {
        /// The index named.
        index: u32,
        /// The leaf count named.
        leaves: u32,
        /// Hashes the shape needs.
        needed: usize,
        /// Hashes the branch holds.
        found: usize,
    },
}

/// The path from one leaf to the root: the leaf's position, the number of leaves, and the
/// sibling hashes from the bottom up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleBranch {
    /// The leaf's index (a transaction's position in its block).
    pub index: u32,
    /// How many leaves the tree has.
    pub leaves: u32,
    /// The siblings, from the leaf's level up.
    pub siblings: Vec<Hash256>,
}

impl MerkleBranch {
    /// The branch of the leaf at `index` in `leaves`, or `None` if there is no such leaf.
    pub fn new(leaves: &[Hash256], index: usize) -> Option<MerkleBranch> {
        MerkleBranch::of_each(leaves, &[index])?.pop()
    }

    /// The branches of the leaves at `indexes` in `leaves` (the tree built once), or `None`
    /// if one of them is not a leaf.
    pub fn of_each(leaves: &[Hash256], indexes: &[usize]) -> Option<Vec<MerkleBranch>> {
        let count = u32::try_from(leaves.len()).ok()?;
        let mut levels = vec![leaves.iter().map(leaf_hash).collect::<Vec<_>>()];
        while levels.last().is_some_and(|level| level.len() > 1) {
            let above = next_level(levels.last()?);
            levels.push(above);
        }
        indexes
            .iter()
            .map(|&index| {
                if index >= leaves.len() {
                    return None;
                }
                let position = u32::try_from(index).ok()?;
                let mut at = index;
                let mut siblings = Vec::new();
                for (side, level) in shape(position, count).zip(&levels) {
                    match side {
                        Some(true) => siblings.push(*level.get(at.checked_add(1)?)?),
                        Some(false) => siblings.push(*level.get(at.checked_sub(1)?)?),
                        None => {}
                    }
                    at /= 2;
                }
                Some(MerkleBranch {
                    index: position,
                    leaves: count,
                    siblings,
                })
            })
            .collect()
    }

    /// The root this branch leads to from `leaf`, if its shape is consistent.
    pub fn root(&self, leaf: &Hash256) -> Result<Hash256, MerkleError> {
        if self.index >= self.leaves {
            return Err(MerkleError::IndexOutOfRange {
                index: self.index,
                leaves: self.leaves,
            });
        }
        let needed = shape(self.index, self.leaves).filter(Option::is_some).count();
        if needed != self.siblings.len() {
            return Err(MerkleError::WrongLength {
                index: self.index,
                leaves: self.leaves,
                needed,
                found: self.siblings.len(),
            });
        }
        // The count matches the shape, so every `next` below finds a sibling.
        let mut siblings = self.siblings.iter();
        let mut node = leaf_hash(leaf);
        for side in shape(self.index, self.leaves) {
            node = match side {
                Some(true) => node_hash(&node, siblings.next().unwrap_or(&Hash256::ZERO)),
                Some(false) => node_hash(siblings.next().unwrap_or(&Hash256::ZERO), &node),
                None => node,
            };
        }
        Ok(node)
    }
}

/// A tree of a block has at most [`MAX_BLOCK_TXS`] leaves, so at most 32 levels.
const MAX_SIBLINGS: usize = 32;

impl Encode for MerkleBranch {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.index.to_le_bytes());
        out.extend_from_slice(&self.leaves.to_le_bytes());
        write_compact_size(out, self.siblings.len() as u64);
        for sibling in &self.siblings {
            sibling.encode_to(out);
        }
    }
    fn encoded_len(&self) -> usize {
        4 + 4 + compact_size_len(self.siblings.len() as u64) + 32 * self.siblings.len()
    }
}

impl Decode for MerkleBranch {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let index = reader.read_u32()?;
        let leaves = reader.read_u32()?;
        if leaves as usize > MAX_BLOCK_TXS {
            return Err(DecodeError::InvalidValue {
                field: "merkle branch",
                reason: "more leaves than a block holds",
            });
        }
        let count = reader.read_count("merkle siblings", MAX_SIBLINGS, 32)?;
        let mut siblings = Vec::with_capacity(count);
        for _ in 0..count {
            siblings.push(Hash256::decode_from(reader)?);
        }
        Ok(MerkleBranch {
            index,
            leaves,
            siblings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash256> {
        (0..n).map(|i| Hash256([i as u8; 32])).collect()
    }

    #[test]
    fn every_leaf_of_every_small_tree_leads_to_the_root() {
        for n in 1..40 {
            let list = leaves(n);
            let root = merkle_root(&list);
            for (i, leaf) in list.iter().enumerate() {
                let branch = MerkleBranch::new(&list, i).unwrap();
                assert_eq!(branch.root(leaf), Ok(root), "leaf {i} of {n}");
                assert_eq!(MerkleBranch::from_bytes(&branch.to_bytes()), Ok(branch.clone()));
                // Another leaf, another position or another count does not.
                assert_ne!(branch.root(&Hash256([0xee; 32])), Ok(root));
                let mut moved = branch.clone();
                moved.index = (moved.index + 1) % moved.leaves;
                if n > 1 {
                    assert_ne!(moved.root(leaf), Ok(root), "moved leaf {i} of {n}");
                }
            }
            assert!(MerkleBranch::new(&list, n).is_none());
        }
    }

    #[test]
    fn a_branch_of_the_wrong_shape_is_refused() {
        let list = leaves(5);
        let mut branch = MerkleBranch::new(&list, 4).unwrap();
        branch.siblings.push(Hash256::ZERO);
        assert!(matches!(branch.root(&list[4]), Err(MerkleError::WrongLength { .. })));
        branch.index = 5;
        assert!(matches!(
            branch.root(&list[4]),
            Err(MerkleError::IndexOutOfRange { .. })
        ));
    }
}
