//! The node's wallet: the wallet file (`wallet.json` in the data directory, created on first
//! start unless `[wallet] enabled = false`), the coins it owns, followed block by block, and
//! payments from them.
//!
//! Coins are rebuilt at start by scanning the stored blocks (the file keeps keys, not
//! coins), then kept up to date as each block is applied. Every block is final, so a coin in
//! a block is spendable at once; a coin still in the mempool is pending.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use timecoin_chain::MasternodeList;
use timecoin_mempool::Mempool;
use timecoin_primitives::{
    Address, AddressPayload, Amount, Block, Network, OutPoint, Payload, PublicKey, SecretKey, Transaction, TxId,
    TxOutput,
};
use timecoin_wallet::{
    Chain, Coin, Keystore, KeystoreError, Mnemonic, PayRequest, SendContext, SendError, build, derive_key,
};

mod history;
mod ledger;
mod locks;
mod watch;

pub(crate) use history::HistoryEntry;
pub(crate) use ledger::Owner;
use ledger::{Keys, Ledger};
pub(crate) use watch::import_address;

/// Addresses derived ahead of the last one given out.
const POOL: u32 = 100;

/// A coin the wallet owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OwnedCoin {
    pub(crate) value: Amount,
    pub(crate) address: AddressPayload,
    pub(crate) height: u64,
    /// Paid to a watched address: listed and counted apart, never spent.
    pub(crate) watch_only: bool,
}

/// Why a wallet operation failed, in terms the API maps to Bitcoin Core's codes.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WalletError {
    #[error("Error: Please enter the wallet passphrase with walletpassphrase first.")]
    Locked,
    #[error("Error: The wallet passphrase entered was incorrect.")]
    WrongPassphrase,
    #[error("Error: running with an unencrypted wallet, but walletpassphrase was called.")]
    NotEncrypted,
    #[error("Error: the wallet is already encrypted.")]
    AlreadyEncrypted,
    #[error("{0}")]
    Funds(String),
    #[error("{0}")]
    Other(String),
    /// A parameter that names no suitable coin or key (Bitcoin Core's `-8`).
    #[error("{0}")]
    Parameter(String),
}

impl From<KeystoreError> for WalletError {
    fn from(error: KeystoreError) -> WalletError {
        match error {
            KeystoreError::WrongPassphrase => WalletError::WrongPassphrase,
            KeystoreError::Locked => WalletError::Locked,
            other => WalletError::Other(other.to_string()),
        }
    }
}

/// What a transaction carries besides payments: coins it must spend, a masternode payload
/// and the key that signs it, and where change goes.
#[derive(Default)]
pub(crate) struct Transact {
    pub(crate) required: Vec<OutPoint>,
    pub(crate) payload: Option<Payload>,
    pub(crate) payload_key: Option<SecretKey>,
    /// The operator key a registration or an update gives, which proves itself.
    pub(crate) operator_key: Option<SecretKey>,
    pub(crate) change_to: Option<AddressPayload>,
}

pub(crate) struct NodeWallet {
    path: PathBuf,
    keystore: Keystore,
    network: Network,
    /// The seed while the keys may be used; with the time it must be forgotten.
    seed: Option<([u8; 64], Option<Instant>)>,
    /// The addresses it recognises: its keys' and those it watches.
    keys: Keys,
    /// Its coins and transactions, as of the last block scanned (the wallet's tip, which
    /// its answers are as of).
    ledger: Ledger,
    /// Coins `lockunspent` keeps out of coin selection and `listunspent` (in memory only,
    /// as Bitcoin Core's default: a restart unlocks them).
    locked: std::collections::BTreeSet<OutPoint>,
    /// The phrase of an encrypted wallet while it is unlocked.
    unlocked_phrase: Option<String>,
}

fn payload_of(hex_key: &str) -> Option<AddressPayload> {
    hex_key
        .parse::<PublicKey>()
        .ok()
        .map(|key| AddressPayload::from_public_key(&key))
}

impl NodeWallet {
    /// Opens the wallet file at `path`, or creates one with a new recovery phrase, born at
    /// height `birth` (no earlier block can pay keys made now).
    pub(crate) fn open_or_create(path: &Path, network: Network, birth: u64) -> Result<(NodeWallet, bool)> {
        let created = !path.exists();
        let (keystore, seed) = if created {
            let mnemonic = Mnemonic::generate()?;
            let seed = mnemonic.seed("");
            (write_new(path, network, &mnemonic, &seed, birth)?, Some((seed, None)))
        } else {
            let keystore = Keystore::load(path)?;
            if keystore.network != network.name() {
                anyhow::bail!(
                    "wallet file {} is for {}, but the node runs on {network}",
                    path.display(),
                    keystore.network
                );
            }
            let seed = if keystore.is_encrypted() {
                None
            } else {
                Some((keystore.mnemonic(None)?.seed(""), None))
            };
            (keystore, seed)
        };
        let mut wallet = NodeWallet {
            path: path.to_owned(),
            keystore,
            network,
            seed,
            keys: Keys::default(),
            ledger: Ledger::default(),
            locked: std::collections::BTreeSet::new(),
            unlocked_phrase: None,
        };
        if let Some((seed, _)) = wallet.seed {
            wallet.keystore.fill_pool(&seed, POOL);
        }
        wallet.index_pool();
        wallet.load_watched()?;
        Ok((wallet, created))
    }

    /// The keys derived so far, of both chains: what a scan that finds a payment to a key
    /// near the end of the pool adds to.
    fn pool_size(&self) -> (usize, usize) {
        (self.keystore.receive_keys.len(), self.keystore.change_keys.len())
    }

    /// A payment to the key `index` of `chain` was found: keys up to it count as given out,
    /// and the pool reaches [`POOL`] beyond it (the gap limit) when the seed is at hand.
    fn mark_used(&mut self, chain: Chain, index: u32) {
        let next = match chain {
            Chain::Receive => &mut self.keystore.next_receive,
            Chain::Change => &mut self.keystore.next_change,
        };
        if index < *next {
            return;
        }
        *next = index.saturating_add(1);
        if let Some(seed) = self.seed() {
            self.keystore.fill_pool(&seed, POOL);
            self.index_pool();
        }
        if let Err(error) = self.save() {
            tracing::warn!(%error, "the wallet file could not record a key found in use");
        }
    }

    fn index_pool(&mut self) {
        for (chain, keys) in [
            (Chain::Receive, &self.keystore.receive_keys),
            (Chain::Change, &self.keystore.change_keys),
        ] {
            for (index, key) in keys.iter().enumerate() {
                if let Some(payload) = payload_of(key) {
                    self.keys
                        .owned
                        .insert(payload, (chain, u32::try_from(index).unwrap_or(u32::MAX)));
                }
            }
        }
    }

    fn save(&self) -> Result<(), WalletError> {
        Ok(self.keystore.save(&self.path)?)
    }

    /// The seed, if unlocked (an expired unlock is forgotten here).
    fn seed(&mut self) -> Option<[u8; 64]> {
        if let Some((_, Some(until))) = self.seed
            && Instant::now() >= until
        {
            self.seed = None;
            self.unlocked_phrase = None;
        }
        self.seed.map(|(seed, _)| seed)
    }

    /// Follows a finalized block: coins paid to the wallet, coins it spent. Returns the
    /// wallet's transactions in it.
    pub(crate) fn scan_block(&mut self, block: &Block) -> Vec<TxId> {
        let scanned = self.ledger.scan_block(&self.keys, block);
        for (chain, index) in scanned.used {
            self.mark_used(chain, index);
        }
        scanned.txids
    }

    /// Hands out the next address of `chain`, deriving more ahead when unlocked.
    pub(crate) fn new_address(&mut self, chain: Chain) -> Result<Address, WalletError> {
        let (next, pool) = match chain {
            Chain::Receive => (self.keystore.next_receive, self.keystore.receive_keys.len()),
            Chain::Change => (self.keystore.next_change, self.keystore.change_keys.len()),
        };
        if usize::try_from(next).unwrap_or(usize::MAX) >= pool {
            let seed = self.seed().ok_or(WalletError::Locked)?;
            self.keystore.fill_pool(&seed, POOL);
            self.index_pool();
        }
        let keys = match chain {
            Chain::Receive => &self.keystore.receive_keys,
            Chain::Change => &self.keystore.change_keys,
        };
        let payload = keys
            .get(usize::try_from(next).unwrap_or(usize::MAX))
            .and_then(|k| payload_of(k))
            .ok_or_else(|| WalletError::Other("the wallet file's key pool is damaged".to_owned()))?;
        match chain {
            Chain::Receive => self.keystore.next_receive += 1,
            Chain::Change => self.keystore.next_change += 1,
        }
        if let Some(seed) = self.seed() {
            self.keystore.fill_pool(&seed, POOL);
            self.index_pool();
        }
        self.save()?;
        Ok(Address {
            network: self.network,
            payload,
        })
    }

    /// Coins not spent by a waiting transaction and not locked as a masternode's collateral.
    /// (`lockunspent` coins excluded: they are neither listed nor chosen.)
    pub(crate) fn unspent(&self, mempool: &Mempool, list: &MasternodeList) -> Vec<(OutPoint, OwnedCoin)> {
        self.free(mempool, list)
            .filter(|(outpoint, _)| !self.locked.contains(outpoint))
            .collect()
    }

    /// Coins not spent by a waiting transaction and not collateral, locked by `lockunspent`
    /// or not.
    fn free<'a>(
        &'a self,
        mempool: &'a Mempool,
        list: &'a MasternodeList,
    ) -> impl Iterator<Item = (OutPoint, OwnedCoin)> + 'a {
        self.ledger
            .coins
            .iter()
            .filter(|(_, coin)| !coin.watch_only)
            .filter(|(outpoint, _)| mempool.spender_of(outpoint).is_none() && list.by_collateral(outpoint).is_none())
            .map(|(o, c)| (*o, *c))
    }

    /// The wallet's coins that are collateral of a masternode in `list`.
    pub(crate) fn collaterals<'l>(
        &self,
        list: &'l MasternodeList,
    ) -> Vec<(OutPoint, OwnedCoin, &'l timecoin_chain::Entry)> {
        self.ledger
            .coins
            .iter()
            .filter(|(_, coin)| !coin.watch_only)
            .filter_map(|(outpoint, coin)| list.by_collateral(outpoint).map(|entry| (*outpoint, *coin, entry)))
            .collect()
    }

    /// (available, pending, locked): finalized coins free to spend (those `lockunspent`
    /// locked included, as Bitcoin Core counts them), what waiting transactions pay the
    /// wallet, and coins locked as masternode collateral.
    pub(crate) fn balances(&self, mempool: &Mempool, list: &MasternodeList) -> (Amount, Amount, Amount) {
        let available = Amount::checked_sum(self.free(mempool, list).map(|(_, c)| c.value)).unwrap_or(Amount::ZERO);
        let locked =
            Amount::checked_sum(self.collaterals(list).iter().map(|(_, c, _)| c.value)).unwrap_or(Amount::ZERO);
        let pending = Amount::checked_sum(mempool.txids().iter().filter_map(|id| mempool.get(id)).flat_map(|tx| {
            tx.outputs
                .iter()
                .filter(|o| self.keys.owned.contains_key(&o.address))
                .map(|o| o.amount)
                .collect::<Vec<_>>()
        }))
        .unwrap_or(Amount::ZERO);
        (available, pending, locked)
    }

    /// The key of one of the wallet's addresses.
    pub(crate) fn key_for(&mut self, address: &AddressPayload) -> Result<SecretKey, WalletError> {
        let (chain, index) = *self
            .keys
            .owned
            .get(address)
            .ok_or_else(|| WalletError::Other("the key is not in this wallet".to_owned()))?;
        let seed = self.seed().ok_or(WalletError::Locked)?;
        Ok(derive_key(&seed, 0, chain, index))
    }

    /// A new receiving address and its key.
    pub(crate) fn new_key(&mut self) -> Result<(Address, SecretKey), WalletError> {
        let address = self.new_address(Chain::Receive)?;
        let key = self.key_for(&address.payload)?;
        Ok((address, key))
    }

    /// A signed transaction paying `payments` from `unspent` (see [`NodeWallet::unspent`];
    /// keys are derived for the chosen coins only), spending the wallet's coins
    /// `extra.required` first, carrying `extra.payload` (signed by `extra.payload_key`);
    /// change to `extra.change_to` or a new change address.
    pub(crate) fn transact(
        &mut self,
        extra: &Transact,
        payments: &[(Address, Amount)],
        unspent: &[(OutPoint, OwnedCoin)],
        context: &SendContext,
    ) -> Result<Transaction, WalletError> {
        let seed = self.seed().ok_or(WalletError::Locked)?;
        let as_coin = |(outpoint, coin): &(OutPoint, OwnedCoin)| Coin {
            outpoint: *outpoint,
            value: coin.value,
        };
        let coins: Vec<Coin> = unspent.iter().map(as_coin).collect();
        let required_owned: Vec<(OutPoint, OwnedCoin)> = extra
            .required
            .iter()
            .map(|outpoint| {
                self.ledger
                    .coins
                    .get(outpoint)
                    .filter(|coin| !coin.watch_only)
                    .map(|coin| (*outpoint, *coin))
                    .ok_or_else(|| WalletError::Other(format!("coin {outpoint} is not this wallet's")))
            })
            .collect::<Result<_, _>>()?;
        let required: Vec<Coin> = required_owned.iter().map(as_coin).collect();
        let change = match extra.change_to {
            Some(address) => address,
            None => self.new_address(Chain::Change)?.payload,
        };
        let owners: HashMap<OutPoint, (Chain, u32)> = unspent
            .iter()
            .chain(&required_owned)
            .filter_map(|(outpoint, coin)| self.keys.owned.get(&coin.address).map(|owner| (*outpoint, *owner)))
            .collect();
        let key_of = |coin: &Coin| {
            owners
                .get(&coin.outpoint)
                .map(|(chain, index)| derive_key(&seed, 0, *chain, *index))
        };
        let request = PayRequest {
            payments,
            required: &required,
            change_to: change,
            memo: b"",
            payload: extra.payload,
            payload_key: extra.payload_key.as_ref(),
            operator_key: extra.operator_key.as_ref(),
        };
        build(&coins, &request, context, key_of)
            .map(|payment| payment.tx)
            .map_err(|e| match e {
                SendError::MissingKey(_) => WalletError::Other(e.to_string()),
                _ => WalletError::Funds(e.to_string()),
            })
    }

    /// The keys of the wallet's addresses among `coins`' (to sign the inputs spending them
    /// after the wallet is released: verifying a large transaction's other signatures takes
    /// long).
    pub(crate) fn signing_keys(
        &mut self,
        coins: &[Option<TxOutput>],
    ) -> Result<HashMap<AddressPayload, SecretKey>, WalletError> {
        let seed = self.seed().ok_or(WalletError::Locked)?;
        let mut keys = HashMap::new();
        for coin in coins.iter().flatten() {
            if let Some((chain, index)) = self.keys.owned.get(&coin.address) {
                keys.entry(coin.address)
                    .or_insert_with(|| derive_key(&seed, 0, *chain, *index));
            }
        }
        Ok(keys)
    }

    /// The recovery phrase (needs the wallet unlocked when it is encrypted).
    pub(crate) fn recovery_phrase(&mut self) -> Result<String, WalletError> {
        if self.seed().is_none() {
            return Err(WalletError::Locked);
        }
        // While unlocked the phrase is readable: unencrypted, or opened by `unlock`.
        let mnemonic = match &self.unlocked_phrase {
            Some(phrase) => phrase.clone(),
            None => self.keystore.mnemonic(None)?.phrase(),
        };
        Ok(mnemonic)
    }

    /// Seals the wallet with `passphrase` and locks it.
    pub(crate) fn encrypt(&mut self, passphrase: &str) -> Result<(), WalletError> {
        if self.keystore.is_encrypted() {
            return Err(WalletError::AlreadyEncrypted);
        }
        let mnemonic = self.keystore.mnemonic(None)?;
        self.keystore = self.keystore.resealed(&mnemonic, Some(passphrase))?;
        self.save()?;
        self.seed = None;
        self.unlocked_phrase = None;
        Ok(())
    }

    /// Unlocks an encrypted wallet for `seconds`.
    pub(crate) fn unlock(&mut self, passphrase: &str, seconds: u64) -> Result<(), WalletError> {
        if !self.keystore.is_encrypted() {
            return Err(WalletError::NotEncrypted);
        }
        let mnemonic = self.keystore.mnemonic(Some(passphrase))?;
        let until = Instant::now().checked_add(std::time::Duration::from_secs(seconds));
        self.seed = Some((mnemonic.seed(""), until));
        self.unlocked_phrase = Some(mnemonic.phrase());
        Ok(())
    }

    /// Where a backup to `destination` goes (into a directory under the wallet file's own
    /// name; a relative path from the wallet file's directory) and the wallet file's content
    /// to write there, so that the write happens with the wallet released. The wallet file
    /// itself is refused.
    pub(crate) fn backup(&self, destination: &Path) -> Result<(PathBuf, Keystore), WalletError> {
        let directory = self.path.parent().unwrap_or_else(|| Path::new("."));
        let mut target = directory.join(destination);
        if target.is_dir()
            && let Some(name) = self.path.file_name()
        {
            target = target.join(name);
        }
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if same(&target, &self.path) {
            return Err(WalletError::Parameter(
                "the destination is the wallet file itself".to_owned(),
            ));
        }
        Ok((target, self.keystore.clone()))
    }

    /// Forgets the seed of an encrypted wallet.
    pub(crate) fn lock(&mut self) -> Result<(), WalletError> {
        if !self.keystore.is_encrypted() {
            return Err(WalletError::NotEncrypted);
        }
        self.seed = None;
        self.unlocked_phrase = None;
        Ok(())
    }
}

/// Writes a new wallet file at `path` holding `mnemonic` (whose seed is `seed`), born at
/// height `birth`, with its key pool.
fn write_new(path: &Path, network: Network, mnemonic: &Mnemonic, seed: &[u8], birth: u64) -> Result<Keystore> {
    let mut keystore = Keystore::new(network.name(), mnemonic, None)?;
    keystore.fill_pool(seed, POOL);
    keystore.birth_height = Some(birth);
    keystore.save(path)?;
    Ok(keystore)
}

/// Writes a wallet file at `path` from a recovery phrase, born at height `birth` (0 when
/// unknown: the whole chain is scanned); an existing file is never replaced. The node scans
/// for its coins when it starts, deriving keys as it finds them in use.
pub(crate) fn restore(path: &Path, network: Network, phrase: &str, birth: u64) -> Result<()> {
    if path.exists() {
        anyhow::bail!(
            "{} exists: a wallet file is never replaced (move it away first)",
            path.display()
        );
    }
    let mnemonic = Mnemonic::parse(phrase.trim()).context("the recovery phrase")?;
    let seed = mnemonic.seed("");
    write_new(path, network, &mnemonic, &seed, birth).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// How a wallet was loaded.
pub(crate) struct Loaded {
    pub(crate) created: bool,
    /// The first height scanned (the wallet's birth).
    pub(crate) from: u64,
    /// Scans of the chain: more than one when keys beyond the pool were found in use (a
    /// restored wallet), since earlier blocks may pay keys derived after them.
    pub(crate) passes: u32,
}

/// Opens the wallet (a new one is born after the stored tip) and scans the stored chain from
/// its birth for its coins (blocking). A scan that finds keys in use near the end of the pool
/// derives more (the gap limit) and scans again, until no more are found.
pub(crate) fn load(path: &Path, network: Network, store: &timecoin_storage::Store) -> Result<(NodeWallet, Loaded)> {
    let tip = store.tip()?;
    let (mut wallet, created) = NodeWallet::open_or_create(path, network, tip.height.saturating_add(1))
        .with_context(|| format!("wallet file {}", path.display()))?;
    let from = wallet.keystore.birth_height.unwrap_or(0);
    // Its history is rebuilt from the blocks at each start: every block since its birth
    // must be here.
    let lowest = store.served_from()?;
    if lowest > 0 && from < lowest {
        anyhow::bail!(
            "the wallet's history starts at block {from}, but this node holds blocks from {lowest} only (it loaded a chain state there): start it with a wallet born later ([wallet] file naming a new one, or `timed wallet restore --birth-height`), or without a wallet"
        );
    }
    let mut passes = 0;
    loop {
        passes += 1;
        let pool = wallet.pool_size();
        wallet.ledger = Ledger::default();
        for height in from..=tip.height {
            if let Some(block) = store.block_by_height(height)? {
                let _ = wallet.scan_block(&block);
            }
        }
        if wallet.pool_size() == pool {
            break;
        }
    }
    wallet.ledger.scanned = Some(tip.height);
    Ok((wallet, Loaded { created, from, passes }))
}
