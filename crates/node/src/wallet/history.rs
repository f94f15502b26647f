//! The wallet's transactions: those in blocks, kept as each block is scanned, and those
//! waiting in the mempool, read from it when asked. Each keeps what Bitcoin Core's wallet
//! answers show of it: its block and position, its outputs and whose they are, what the
//! wallet received and spent, and the fee when the wallet paid it.

use timecoin_mempool::Mempool;
use timecoin_primitives::{AddressPayload, Amount, BlockHash, Transaction, TxId};

use super::NodeWallet;
use super::ledger::Owner;

/// Where a transaction is in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placed {
    pub(crate) height: u64,
    pub(crate) hash: BlockHash,
    /// The block's time, milliseconds since the epoch.
    pub(crate) time_ms: u64,
    /// The transaction's position in the block.
    pub(crate) index: u32,
}

/// One output of a transaction that touched the wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HistoryOutput {
    pub(crate) address: AddressPayload,
    pub(crate) amount: Amount,
    /// Whose the address is, if the wallet's (a key, or watched).
    pub(crate) owner: Option<Owner>,
}

/// A transaction that touched the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HistoryEntry {
    pub(crate) txid: TxId,
    /// Its block; `None` while it waits in the mempool.
    pub(crate) block: Option<Placed>,
    /// Its block's time, or when it entered the mempool (milliseconds since the epoch).
    pub(crate) time_ms: u64,
    /// Spent from the wallet's coins (watched ones included).
    pub(crate) spent: Amount,
    /// The fee, when every input spent one of the wallet's coins (so the wallet paid it).
    pub(crate) fee: Option<Amount>,
    /// A block reward (no inputs).
    pub(crate) reward: bool,
    pub(crate) outputs: Vec<HistoryOutput>,
    /// What of `spent` were watched coins.
    pub(crate) spent_watched: Amount,
}

impl NodeWallet {
    /// Whether `tx` pays the wallet or spends one of its finalized coins.
    pub(crate) fn touches(&self, tx: &Transaction) -> bool {
        self.ledger.touches(&self.keys, tx)
    }

    /// The height of the last block the wallet scanned: its answers are as of that block.
    pub(crate) fn tip(&self) -> Option<u64> {
        self.ledger.scanned
    }

    /// The transactions in blocks that touched the wallet, oldest first.
    pub(crate) fn history(&self) -> &[HistoryEntry] {
        &self.ledger.history
    }

    /// The transactions waiting in `mempool` that pay the wallet or spend its finalized
    /// coins, oldest first. (The whole pool is read: the wallet does not follow admissions.)
    pub(crate) fn pending(&self, mempool: &Mempool) -> Vec<HistoryEntry> {
        let mut pending: Vec<HistoryEntry> = mempool
            .txids()
            .iter()
            .filter_map(|txid| {
                let tx = mempool.get(txid)?;
                let mut entry = self.ledger.describe_pending(&self.keys, &tx, *txid)?;
                entry.time_ms = mempool.info(txid).map_or(0, |info| info.time_ms);
                Some(entry)
            })
            .collect();
        pending.sort_by_key(|entry| entry.time_ms);
        pending
    }
}
