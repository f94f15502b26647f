//! Watch-only addresses (`importaddress`): coins and transactions of addresses the wallet
//! holds no key for, followed as its own are but never spent, listed and counted apart; and
//! the rescan that finds their past without holding the wallet while it reads the chain.

use std::sync::Mutex;

use timecoin_mempool::Mempool;
use timecoin_primitives::{Address, AddressPayload, Amount, OutPoint};

use super::ledger::{Keys, Ledger};
use super::{NodeWallet, OwnedCoin, WalletError};

/// Addresses a wallet watches at most (each import rewrites the wallet file).
const MAX_WATCHED: usize = 10_000;

/// One import at a time: a rescan reads the whole chain, and two at once would each miss
/// what the other adds.
static IMPORTS: Mutex<()> = Mutex::new(());

impl NodeWallet {
    /// Whether `address` may be watched: not one of the wallet's own, and within
    /// [`MAX_WATCHED`].
    fn check_watchable(&self, address: &AddressPayload) -> Result<(), WalletError> {
        if self.keys.owned.contains_key(address) {
            return Err(WalletError::Other(
                "The wallet already contains the private key for this address or script".to_owned(),
            ));
        }
        if !self.keys.watched.contains(address) && self.keys.watched.len() >= MAX_WATCHED {
            return Err(WalletError::Parameter(format!(
                "the wallet watches {MAX_WATCHED} addresses already"
            )));
        }
        Ok(())
    }

    /// The wallet's keys with `address` watched too.
    fn keys_watching(&self, address: AddressPayload) -> Keys {
        let mut keys = self.keys.clone();
        keys.watched.insert(address);
        keys
    }

    /// Starts watching `address`: written to the wallet file first (with the birth moved to
    /// 0 when `from_genesis`: its past was searched from block 0, so that a restart finds it
    /// too), then followed, with `ledger` (if given) as the wallet's ledger. Nothing changes
    /// if the file cannot be written.
    fn start_watching(
        &mut self,
        address: AddressPayload,
        from_genesis: bool,
        ledger: Option<Ledger>,
    ) -> Result<(), WalletError> {
        let text = Address {
            network: self.network,
            payload: address,
        }
        .to_string();
        let mut keystore = self.keystore.clone();
        if !keystore.watch_only.contains(&text) {
            keystore.watch_only.push(text);
        }
        if from_genesis {
            keystore.birth_height = Some(0);
        }
        keystore.save(&self.path)?;
        self.keystore = keystore;
        self.keys.watched.insert(address);
        if let Some(ledger) = ledger {
            self.ledger = ledger;
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
/// address without holding the wallet (blocks keep being followed meanwhile), catching up
/// until it is at most [`CLOSE`] blocks behind the wallet; then, holding it, scans those,
/// writes the address to the wallet file and swaps the ledger in. Until then the wallet does
/// not follow the address, so an import that fails leaves it as it was.
pub(crate) fn import_address(
    wallet: &Mutex<NodeWallet>,
    store: &timecoin_storage::Store,
    address: AddressPayload,
    rescan: bool,
) -> Result<(), WalletError> {
    let _one_at_a_time = IMPORTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let lock = || {
        wallet
            .lock()
            .map_err(|_| WalletError::Other("wallet lock poisoned".to_owned()))
    };
    lock()?.check_watchable(&address)?;
    if !rescan {
        return lock()?.start_watching(address, false, None);
    }
    let storage = |e: timecoin_storage::StorageError| WalletError::Other(format!("rescan: {e}"));
    let mut ledger = Ledger::default();
    // Without the wallet: from the genesis up to close behind the wallet's tip, with its
    // keys as they are when each stretch begins (a key handed out later is paid by no block
    // finalized before).
    loop {
        let (keys, tip) = {
            let wallet = lock()?;
            (wallet.keys_watching(address), wallet.ledger.scanned)
        };
        let next = ledger.scanned.map_or(0, |s| s.saturating_add(1));
        match tip {
            Some(tip) if tip >= next.saturating_add(CLOSE) => {
                ledger.scan_range(&keys, store, next, tip).map_err(storage)?;
            }
            _ => break,
        }
    }
    let mut wallet = lock()?;
    if let Some(now) = wallet.ledger.scanned {
        let next = ledger.scanned.map_or(0, |s| s.saturating_add(1));
        let keys = wallet.keys_watching(address);
        ledger.scan_range(&keys, store, next, now).map_err(storage)?;
    }
    ledger.scanned = wallet.ledger.scanned;
    wallet.start_watching(address, true, Some(ledger))
}

/// Blocks behind the wallet the unlocked rescan may stop at: the rest are scanned holding it.
const CLOSE: u64 = 2;
