//! Storage errors. Each names the database file, so an operator knows which file is at fault.

use std::path::PathBuf;

use thiserror::Error;
use timecoin_primitives::{BlockHash, DecodeError};

/// Why a storage operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The file is not a readable redb database, or redb found it damaged.
    #[error(
        "database {path} is corrupted: {detail}; restore it from a backup or resync into an empty data directory (nothing was deleted)"
    )]
    Corrupted {
        /// The database file.
        path: PathBuf,
        /// What redb or the decoder reported.
        detail: String,
    },
    /// The database was written by a newer version of the node.
    #[error(
        "database {path} has schema version {found}, newer than the {supported} this node supports; upgrade the node"
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// The stored version.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The database was written by an older version of the node, in a format this one does
    /// not read.
    #[error(
        "database {path} has schema version {found}, older than the {supported} this node writes; move it aside and resync into an empty data directory"
    )]
    SchemaTooOld {
        /// The database file.
        path: PathBuf,
        /// The stored version.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The database belongs to another network.
    #[error(
        "database {path} holds the chain with genesis {stored}, but this node's genesis is {expected}; use another data directory"
    )]
    GenesisMismatch {
        /// The database file.
        path: PathBuf,
        /// The stored genesis hash.
        stored: BlockHash,
        /// The configured genesis hash.
        expected: BlockHash,
    },
    /// Another process holds the database.
    #[error("database {path} is already open in another process; stop the other node first")]
    InUse {
        /// The database file.
        path: PathBuf,
    },
    /// An I/O or other database failure.
    #[error("database {path} could not be read or written")]
    Database {
        /// The database file.
        path: PathBuf,
        /// What redb reported.
        #[source]
        source: redb::Error,
    },
    /// A block could not be applied because it does not fit the stored state (it was not
    /// validated against this state). Nothing was written.
    #[error("cannot apply block at height {height}: {detail}")]
    Inconsistent {
        /// The block's height.
        height: u64,
        /// What does not fit.
        detail: String,
    },
    /// A request the stored chain cannot answer (reverting the genesis block, say).
    #[error("{0}")]
    Refused(String),
    /// A chain-state file (`dumptxoutset`) could not be written or read, or does not hold
    /// a valid state.
    #[error("chain-state file: {0}")]
    StateFile(String),
}

impl StorageError {
    pub(crate) fn corrupt_record(path: &std::path::Path, what: &str, error: DecodeError) -> StorageError {
        StorageError::Corrupted {
            path: path.to_owned(),
            detail: format!("{what} does not decode: {error}"),
        }
    }
}
