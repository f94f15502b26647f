//! Watch-only addresses (`importaddress`): coins and transactions of addresses the wallet
//! holds no key for, followed as its own are but never spent, listed and counted apart; and
//! the rescan that finds their past without holding the wallet while it reads the chain.

use std::sync::Mutex;

use timecoin_mempool::Mempool;
use timecoin_primitives::{Address, AddressPayload, Amount, OutPoint};

use super::ledger::Ledger;
use super::{NodeWallet, OwnedCoin, WalletError};

/// Rescans tried before `importaddress` gives up (another import changed the keys each time).
const ATTEMPTS: usize = 3;

impl NodeWallet {
    /// Starts watching `address`, kept in the wallet file; refused for one of the wallet's own
    /// addresses. Watching it again changes nothing.
    fn watch(&mut self, address: AddressPayload) -> Result<(), WalletError> {
        if self.keys.owned.contains_key(&address) {
            return Err(WalletError::Other(
                "The wallet already contains the private key for this address or script".to_owned(),
            ));
        }
        if self.keys.watched.insert(address) {
            let text = Address {
                network: self.network,
                payload: address,
            }
            .to_string();
            self.keystore.watch_only.push(text);
            self.save()?;
        }
        Ok(())
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
/// address, up to the wallet's tip when it began, without holding the wallet (blocks keep
/// being followed meanwhile); then, holding it, scans the few blocks followed since and swaps
/// the ledger in. If the keys changed meanwhile (another import), it starts again.
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
    let storage = |e: timecoin_storage::StorageError| WalletError::Other(format!("rescan: {e}"));
    lock()?.watch(address)?;
    if !rescan {
        return Ok(());
    }
    for _ in 0..ATTEMPTS {
        let (keys, began) = {
            let wallet = lock()?;
            (wallet.keys.clone(), wallet.ledger.scanned)
        };
        let mut ledger = Ledger::default();
        if let Some(began) = began {
            ledger.scan_range(&keys, store, 0, began).map_err(storage)?;
        }
        let mut wallet = lock()?;
        if wallet.keys != keys {
            continue;
        }
        if let Some(now) = wallet.ledger.scanned {
            let next = began.map_or(0, |b| b.saturating_add(1));
            ledger.scan_range(&wallet.keys, store, next, now).map_err(storage)?;
        }
        ledger.scanned = wallet.ledger.scanned;
        wallet.ledger = ledger;
        return Ok(());
    }
    Err(WalletError::Other(
        "the wallet's addresses kept changing during the rescan: import again".to_owned(),
    ))
}
