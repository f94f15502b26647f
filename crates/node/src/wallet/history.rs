//! The wallet's transactions: those in blocks, kept as each block is scanned, and those
//! waiting in the mempool, read from it when asked. Each keeps what Bitcoin Core's wallet
//! answers show of it: its block and position, its outputs and whose they are, what the
//! wallet received and spent, and the fee when the wallet paid it.

use timecoin_mempool::Mempool;
use timecoin_primitives::{AddressPayload, Amount, BlockHash, Transaction, TxId};
use timecoin_wallet::Chain;

use super::NodeWallet;

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
    /// The wallet's chain the address is on, if it is the wallet's.
    pub(crate) owner: Option<Chain>,
}

/// A transaction that touched the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HistoryEntry {
    pub(crate) txid: TxId,
    /// Its block; `None` while it waits in the mempool.
    pub(crate) block: Option<Placed>,
    /// Its block's time, or when it entered the mempool (milliseconds since the epoch).
    pub(crate) time_ms: u64,
    /// Paid to the wallet's addresses.
    pub(crate) received: Amount,
    /// Spent from the wallet's coins.
    pub(crate) spent: Amount,
    /// The fee, when every input spent one of the wallet's coins (so the wallet paid it).
    pub(crate) fee: Option<Amount>,
    /// A block reward (no inputs).
    pub(crate) reward: bool,
    pub(crate) outputs: Vec<HistoryOutput>,
}

impl NodeWallet {
    /// What `tx` did to the wallet, given the value of the wallet's coins it spent and how
    /// many of its inputs spent them; `None` if it did nothing. The caller places it.
    pub(super) fn describe(&self, tx: &Transaction, txid: TxId, spent: Amount, mine: usize) -> Option<HistoryEntry> {
        let owner = |address: &AddressPayload| self.owned.get(address).map(|(chain, _)| *chain);
        let paid = tx.outputs.iter().any(|o| owner(&o.address).is_some());
        if !paid && spent == Amount::ZERO {
            return None;
        }
        let outputs: Vec<HistoryOutput> = tx
            .outputs
            .iter()
            .map(|o| HistoryOutput {
                address: o.address,
                amount: o.amount,
                owner: owner(&o.address),
            })
            .collect();
        let received =
            Amount::checked_sum(outputs.iter().filter(|o| o.owner.is_some()).map(|o| o.amount)).unwrap_or(Amount::ZERO);
        let paid_out = Amount::checked_sum(outputs.iter().map(|o| o.amount));
        let fee = match paid_out {
            Some(out) if mine > 0 && mine == tx.inputs.len() => spent.checked_sub(out),
            _ => None,
        };
        Some(HistoryEntry {
            txid,
            block: None,
            time_ms: 0,
            received,
            spent,
            fee,
            reward: tx.inputs.is_empty(),
            outputs,
        })
    }

    /// Whether `tx` pays the wallet or spends one of its finalized coins.
    pub(crate) fn touches(&self, tx: &Transaction) -> bool {
        tx.outputs.iter().any(|o| self.owned.contains_key(&o.address))
            || tx.inputs.iter().any(|i| self.coins.contains_key(&i.prevout))
    }

    /// The height of the last block the wallet scanned: its answers are as of that block.
    pub(crate) fn tip(&self) -> Option<u64> {
        self.scanned
    }

    /// The transactions in blocks that touched the wallet, oldest first.
    pub(crate) fn history(&self) -> &[HistoryEntry] {
        &self.history
    }

    /// The transactions waiting in `mempool` that pay the wallet or spend its finalized
    /// coins, oldest first. (The whole pool is read: the wallet does not follow admissions.)
    pub(crate) fn pending(&self, mempool: &Mempool) -> Vec<HistoryEntry> {
        let mut pending: Vec<HistoryEntry> = mempool
            .txids()
            .iter()
            .filter_map(|txid| {
                let tx = mempool.get(txid)?;
                let coins: Vec<Amount> = tx
                    .inputs
                    .iter()
                    .filter_map(|i| self.coins.get(&i.prevout).map(|c| c.value))
                    .collect();
                let spent = Amount::checked_sum(coins.iter().copied()).unwrap_or(Amount::ZERO);
                let mut entry = self.describe(&tx, *txid, spent, coins.len())?;
                entry.time_ms = mempool.info(txid).map_or(0, |info| info.time_ms);
                Some(entry)
            })
            .collect();
        pending.sort_by_key(|entry| entry.time_ms);
        pending
    }
}
