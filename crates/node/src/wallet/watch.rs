//! Watch-only addresses (`importaddress`): coins and transactions of addresses the wallet
//! holds no key for, followed as its own are but never spent, listed and counted apart; and
//! the rescan that finds their past without holding the wallet while it reads the chain.

use std::sync::Mutex;

use timecoin_mempool::Mempool;
use timecoin_primitives::{Address, AddressPayload, Amount, OutPoint};

use super::ledger::Ledger;
use super::{NodeWallet, OwnedCoin, WalletError};

/// Rescans tried before `importaddress` gives up (another import changed the watched
/// addresses each time).
const ATTEMPTS: usize = 3;
/// Addresses a wallet watches at most (each import rewrites the wallet file).
const MAX_WATCHED: usize = 10_000;

impl NodeWallet {
    /// Starts following `address` as watched (in memory: [`NodeWallet::keep_watching`]
    /// writes it to the file); `false` if it already is. Refused for one of the wallet's own
    /// addresses, and past [`MAX_WATCHED`].
    fn watch(&mut self, address: AddressPayload) -> Result<bool, WalletError> {
        if self.keys.owned.contains_key(&address) {
            return Err(WalletError::Other(
                "The wallet already contains the private key for this address or script".to_owned(),
            ));
        }
        if self.keys.watched.contains(&address) {
            return Ok(false);
        }
        if self.keys.watched.len() >= MAX_WATCHED {
            return Err(WalletError::Parameter(format!(
                "the wallet watches {MAX_WATCHED} addresses already"
            )));
        }
        self.keys.watched.insert(address);
        Ok(true)
    }

    /// Writes the watched `address` to the wallet file; with `from_genesis` (its past was
    /// searched from block 0) the wallet's birth moves to 0, so that a restart finds that
    /// past too.
    fn keep_watching(&mut self, address: AddressPayload, from_genesis: bool) -> Result<(), WalletError> {
        let text = Address {
            network: self.network,
            payload: address,
        }
        .to_string();
        if !self.keystore.watch_only.contains(&text) {
            self.keystore.watch_only.push(text);
        }
        if from_genesis {
            self.keystore.birth_height = Some(0);
        }
        self.save()
    }

    /// Stops following `address` (an import that failed): its coins leave the ledger.
    fn unwatch(&mut self, address: &AddressPayload) {
        self.keys.watched.remove(address);
        self.ledger.coins.retain(|_, coin| coin.address != *address);
    }

    /// Reads the watched addresses the wallet file keeps.
    pub(super) fn load_watched(&mut self) -> anyhow::Result<()> {
        for text in &self.keystore.watch_only {
            let address: Address = text
                .parse()
                .map_err(|e| anyhow::anyhow!("watched address {text}: {e}"))?;
            if address.network != self.network {
                anyhow::bail!(
                    "watched address {text} is for {}, not {}",
                    address.network,
                    self.network
                );
            }
            self.keys.watched.insert(address.payload);
        }
        Ok(())
    }

    /// Whether the wallet watches `address`.
    pub(crate) fn watches(&self, address: &AddressPayload) -> bool {
        self.keys.watched.contains(address)
    }

    /// Whether the wallet watches any address.
    pub(crate) fn watches_any(&self) -> bool {
        !self.keys.watched.is_empty()
    }

    /// Watched coins not being spent by a waiting transaction.
    pub(crate) fn watched_coins(&self, mempool: &Mempool) -> Vec<(OutPoint, OwnedCoin)> {
        self.ledger
            .coins
            .iter()
            .filter(|(outpoint, coin)| coin.watch_only && mempool.spender_of(outpoint).is_none())
            .map(|(o, c)| (*o, *c))
            .collect()
    }

    /// What the watched coins hold, those being spent left out.
    pub(crate) fn watched_balance(&self, mempool: &Mempool) -> Amount {
        Amount::checked_sum(self.watched_coins(mempool).iter().map(|(_, c)| c.value)).unwrap_or(Amount::ZERO)
    }
}

/// `importaddress`: watches `address` from the next block on and, with `rescan`, finds its
/// past. The rescan builds a new ledger from the genesis with the wallet's keys and the new
/// address without holding the wallet (blocks keep being followed meanwhile), catching up
/// until it is at most [`CLOSE`] blocks behind the wallet; then, holding it, scans those
/// and swaps the ledger in. Only then is the address written to the wallet file: an import
/// that fails leaves the wallet as it was.
pub(crate) fn import_address(
    wallet: &Mutex<NodeWallet>,
    store: &timecoin_storage::Store,
    address: AddressPayload,
    rescan: bool,
) -> Result<(), WalletError> {
    let lock = || {
        wallet
            .lock()
            .map_err(|_| WalletError::Other("wallet lock poisoned".to_owned()))
    };
    let added = lock()?.watch(address)?;
    let outcome = if rescan { rescan_with(store, &lock) } else { Ok(()) };
    let mut wallet = lock()?;
    match outcome.and_then(|()| wallet.keep_watching(address, rescan)) {
        Ok(()) => Ok(()),
        Err(error) => {
            if added {
                wallet.unwatch(&address);
            }
            Err(error)
        }
    }
}

/// Blocks behind the wallet the unlocked rescan may stop at: the rest are scanned holding it.
const CLOSE: u64 = 2;

/// Rebuilds the wallet's ledger from the genesis with its current keys (see
/// [`import_address`]).
fn rescan_with<'w>(
    store: &timecoin_storage::Store,
    lock: &dyn Fn() -> Result<std::sync::MutexGuard<'w, NodeWallet>, WalletError>,
) -> Result<(), WalletError> {
    let storage = |e: timecoin_storage::StorageError| WalletError::Other(format!("rescan: {e}"));
    for _ in 0..ATTEMPTS {
        let keys = lock()?.keys.clone();
        let mut ledger = Ledger::default();
        // Without the wallet: from the genesis up to close behind the wallet's tip.
        loop {
            let tip = lock()?.ledger.scanned;
            let (Some(tip), next) = (tip, ledger.scanned.map_or(0, |s| s.saturating_add(1))) else {
                break;
            };
            if tip < next.saturating_add(CLOSE) {
                break;
            }
            ledger.scan_range(&keys, store, next, tip).map_err(storage)?;
        }
        let mut wallet = lock()?;
        // Another import changed what is watched: its coins would be missing. (Keys added
        // to the pool meanwhile are new: no block before now pays them.)
        if wallet.keys.watched != keys.watched {
            continue;
        }
        if let Some(now) = wallet.ledger.scanned {
            let next = ledger.scanned.map_or(0, |s| s.saturating_add(1));
            if next <= now {
                ledger.scan_range(&wallet.keys, store, next, now).map_err(storage)?;
            }
        }
        ledger.scanned = wallet.ledger.scanned;
        wallet.ledger = ledger;
        return Ok(());
    }
    Err(WalletError::Other(
        "the watched addresses kept changing during the rescan: import again".to_owned(),
    ))
}
