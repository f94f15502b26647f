//! `lockunspent`: coins the operator keeps out of coin selection (an exchange reserving
//! coins for a payout it builds by hand); the wallet's addresses; a message signed with a
//! wallet key.

use timecoin_primitives::{AddressPayload, MESSAGE_PROOF_LEN, OutPoint, sign_message};

use super::{NodeWallet, WalletError};

impl NodeWallet {
    /// Locks `outpoints` (each must be a coin the wallet holds and has not locked), or, with
    /// `unlock`, unlocks them (each must be locked); all or none.
    pub(crate) fn lock_coins(&mut self, unlock: bool, outpoints: &[OutPoint]) -> Result<(), WalletError> {
        for outpoint in outpoints {
            if unlock && !self.locked.contains(outpoint) {
                return Err(WalletError::Parameter(format!(
                    "Invalid parameter, expected locked output: {outpoint}"
                )));
            }
            if !unlock && !self.ledger.coins.contains_key(outpoint) {
                return Err(WalletError::Parameter(format!(
                    "Invalid parameter, expected unspent output: {outpoint}"
                )));
            }
            if !unlock && self.locked.contains(outpoint) {
                return Err(WalletError::Parameter(format!(
                    "Invalid parameter, output already locked: {outpoint}"
                )));
            }
        }
        for outpoint in outpoints {
            if unlock {
                self.locked.remove(outpoint);
            } else {
                self.locked.insert(*outpoint);
            }
        }
        Ok(())
    }

    /// Unlocks every locked coin.
    pub(crate) fn unlock_all(&mut self) {
        self.locked.clear();
    }

    /// The locked coins that still exist (a locked coin spent since is forgotten).
    pub(crate) fn locked_coins(&mut self) -> Vec<OutPoint> {
        let coins = &self.ledger.coins;
        self.locked.retain(|outpoint| coins.contains_key(outpoint));
        self.locked.iter().copied().collect()
    }

    /// The receiving addresses handed out so far (by `getnewaddress`), oldest first.
    pub(crate) fn receive_addresses(&self) -> Vec<AddressPayload> {
        let given = usize::try_from(self.keystore.next_receive).unwrap_or(usize::MAX);
        self.keystore
            .receive_keys
            .iter()
            .take(given)
            .filter_map(|key| super::payload_of(key))
            .collect()
    }

    /// Whether `address` is one of the wallet's (given out or in its pool).
    pub(crate) fn is_mine(&self, address: &AddressPayload) -> bool {
        self.keys.owned.contains_key(address)
    }

    /// The proof that this wallet's key for `address` signed `message`.
    pub(crate) fn sign_message(
        &mut self,
        address: &AddressPayload,
        message: &str,
    ) -> Result<[u8; MESSAGE_PROOF_LEN], WalletError> {
        if !self.is_mine(address) {
            return Err(WalletError::Parameter(
                "Address does not refer to a key of this wallet".to_owned(),
            ));
        }
        let key = self.key_for(address)?;
        Ok(sign_message(&key, message))
    }
}
