//! What the wallet knows of the chain: the addresses it recognises ([`Keys`]: its keys, and
//! the addresses it watches without keys), and its [`Ledger`]: the coins they hold and the
//! transactions that touched them, as of the last block scanned.
//!
//! A ledger is rebuilt by scanning blocks in order. The node's wallet scans each finalized
//! block; `importaddress` builds a new ledger aside, from the genesis, and swaps it in (so a
//! rescan never holds the wallet while it reads the chain).

use std::collections::{BTreeMap, HashMap, HashSet};

use timecoin_primitives::{AddressPayload, Amount, Block, OutPoint, Transaction, TxId};
use timecoin_wallet::Chain;

use super::OwnedCoin;
use super::history::{HistoryEntry, HistoryOutput, Placed};

/// Whose an address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// The wallet's key on `chain` at `index`.
    Key(Chain, u32),
    /// An address the wallet watches (`importaddress`) without its key.
    Watched,
}

/// The addresses a wallet recognises.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Keys {
    /// Its keys' addresses: given out, and the pool derived ahead.
    pub(crate) owned: HashMap<AddressPayload, (Chain, u32)>,
    /// Addresses it watches.
    pub(crate) watched: HashSet<AddressPayload>,
}

impl Keys {
    pub(crate) fn owner(&self, address: &AddressPayload) -> Option<Owner> {
        match self.owned.get(address) {
            Some((chain, index)) => Some(Owner::Key(*chain, *index)),
            None => self.watched.contains(address).then_some(Owner::Watched),
        }
    }
}

/// The wallet's coins and transactions as of `scanned`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ledger {
    pub(crate) coins: BTreeMap<OutPoint, OwnedCoin>,
    /// Transactions in blocks that touched the wallet, oldest first.
    pub(crate) history: Vec<HistoryEntry>,
    /// The height of the last block scanned.
    pub(crate) scanned: Option<u64>,
}

/// What one block did to a ledger.
pub(crate) struct Scanned {
    /// The wallet's transactions in it.
    pub(crate) txids: Vec<TxId>,
    /// The keys it paid.
    pub(crate) used: Vec<(Chain, u32)>,
}

impl Ledger {
    /// Follows a finalized block: coins paid to `keys`' addresses, coins it spent.
    pub(crate) fn scan_block(&mut self, keys: &Keys, block: &Block) -> Scanned {
        let mut scanned = Scanned {
            txids: Vec::new(),
            used: Vec::new(),
        };
        let height = block.header.height;
        let mut hash = None;
        for (index, tx) in block.transactions.iter().enumerate() {
            let txid = tx.txid();
            let mut spent = Amount::ZERO;
            let mut mine = 0;
            let mut watched = Amount::ZERO;
            for input in &tx.inputs {
                if let Some(coin) = self.coins.remove(&input.prevout) {
                    spent = spent.checked_add(coin.value).unwrap_or(spent);
                    mine += 1;
                    if coin.watch_only {
                        watched = watched.checked_add(coin.value).unwrap_or(watched);
                    }
                }
            }
            for (vout, output) in tx.outputs.iter().enumerate() {
                let Some(owner) = keys.owner(&output.address) else {
                    continue;
                };
                if let Owner::Key(chain, key) = owner {
                    scanned.used.push((chain, key));
                }
                let outpoint = OutPoint {
                    txid,
                    index: u32::try_from(vout).unwrap_or(u32::MAX),
                };
                let coin = OwnedCoin {
                    value: output.amount,
                    address: output.address,
                    height,
                    watch_only: owner == Owner::Watched,
                };
                self.coins.insert(outpoint, coin);
            }
            if let Some(mut entry) = describe(keys, tx, txid, spent, mine, watched) {
                entry.block = Some(Placed {
                    height,
                    hash: *hash.get_or_insert_with(|| block.hash()),
                    time_ms: block.header.timestamp_ms,
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                });
                entry.time_ms = block.header.timestamp_ms;
                scanned.txids.push(txid);
                self.history.push(entry);
            }
        }
        self.scanned = Some(height);
        scanned
    }

    /// Scans the stored blocks `from..=to` in order.
    pub(crate) fn scan_range(
        &mut self,
        keys: &Keys,
        store: &timecoin_storage::Store,
        from: u64,
        to: u64,
    ) -> Result<(), timecoin_storage::StorageError> {
        for height in from..=to {
            if let Some(block) = store.block_by_height(height)? {
                let _ = self.scan_block(keys, &block);
            }
        }
        Ok(())
    }

    /// What waiting `tx` would do to the wallet; `None` if nothing.
    pub(crate) fn describe_pending(&self, keys: &Keys, tx: &Transaction, txid: TxId) -> Option<HistoryEntry> {
        let coins: Vec<&OwnedCoin> = tx.inputs.iter().filter_map(|i| self.coins.get(&i.prevout)).collect();
        let spent = Amount::checked_sum(coins.iter().map(|c| c.value)).unwrap_or(Amount::ZERO);
        let watched =
            Amount::checked_sum(coins.iter().filter(|c| c.watch_only).map(|c| c.value)).unwrap_or(Amount::ZERO);
        describe(keys, tx, txid, spent, coins.len(), watched)
    }

    /// Whether `tx` pays `keys`' addresses or spends one of the ledger's coins.
    pub(crate) fn touches(&self, keys: &Keys, tx: &Transaction) -> bool {
        tx.outputs.iter().any(|o| keys.owner(&o.address).is_some())
            || tx.inputs.iter().any(|i| self.coins.contains_key(&i.prevout))
    }
}

/// What `tx` did to the wallet, given the value of the wallet's coins it spent (watched ones
/// included), how many of its inputs spent them and the value of the watched ones among
/// them; `None` if it did nothing. The caller places it.
fn describe(
    keys: &Keys,
    tx: &Transaction,
    txid: TxId,
    spent: Amount,
    mine: usize,
    spent_watched: Amount,
) -> Option<HistoryEntry> {
    let outputs: Vec<HistoryOutput> = tx
        .outputs
        .iter()
        .map(|o| HistoryOutput {
            address: o.address,
            amount: o.amount,
            owner: keys.owner(&o.address),
        })
        .collect();
    let paid = outputs.iter().any(|o| o.owner.is_some());
    if !paid && spent == Amount::ZERO {
        return None;
    }
    let paid_out = Amount::checked_sum(outputs.iter().map(|o| o.amount));
    let fee = match paid_out {
        Some(out) if mine > 0 && mine == tx.inputs.len() => spent.checked_sub(out),
        _ => None,
    };
    Some(HistoryEntry {
        txid,
        block: None,
        time_ms: 0,
        spent,
        fee,
        reward: tx.inputs.is_empty(),
        outputs,
        spent_watched,
    })
}
