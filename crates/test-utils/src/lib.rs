//! Test helpers shared by every crate's tests, benchmarks and the ledger demo: deterministic
//! keys, local-network genesis files, and a [`ChainBuilder`] that produces valid, signed
//! blocks while keeping an in-memory model of the UTXO set to compare real storage against.
//!
//! Nothing here is used by the node in production. [`sim`] is the consensus simulator.

pub mod sim;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;

use timecoin_chain::{
    BlockContext, BlockExtras, ChainParams, ChainTip, Genesis, MasternodeList, SigItem, TxContext, Utxo, UtxoView,
    ViewError, assemble_block, check_tx_contextual, created_outputs,
};
use timecoin_primitives::{
    Address, AddressPayload, Amount, Block, BlockHash, CommitCertificate, Domain, Encode, Equivocation, Hash256,
    MasternodeSet, Network, OutPoint, Payload, PublicKey, Registration, Revocation, SecretKey, Tier, Transaction, TxId,
    TxInput, TxOutput, Unlock, chain_state_hash, payload_signature_message,
};

/// The first of `n` consecutive loopback ports that were free a moment ago, for a test's
/// nodes. Below Linux's ephemeral range (32768 and up), where the kernel picks the local port
/// of every outgoing connection, so a node's dial cannot take one; each call in a process
/// starts elsewhere, so tests running at once do not pick the same range before their nodes
/// bind it.
///
/// # Panics
///
/// When no range is free after a thousand tries (a test helper).
pub fn free_ports(n: u16) -> u16 {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let seed = u64::from(std::process::id()) * 7919 + call * 1_009;
    for attempt in 0..1_000u64 {
        let base = 20_000 + ((seed + attempt * 104_729) % 12_000) as u16;
        let held: Vec<_> = (0..n)
            .map_while(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == usize::from(n) {
            return base;
        }
    }
    panic!("no {n} free loopback ports in a row");
}

/// The key derived from `label` and `index`, the same on every run.
pub fn key(label: &str, index: u64) -> SecretKey {
    let mut hasher = Domain::Address.hasher();
    hasher.update(label.as_bytes());
    hasher.update(&index.to_le_bytes());
    SecretKey::from_seed(*hasher.finalize().as_bytes())
}

/// The address payload owned by `key`.
pub fn payload(key: &SecretKey) -> AddressPayload {
    AddressPayload::from_public_key(&key.public_key())
}

/// The genesis file of a local network with `masternodes` masternodes (all `tier`) and
/// `funded` keys holding `amount` each.
pub fn genesis_toml(masternodes: usize, tier: Tier, funded: usize, amount: Amount) -> String {
    let mut text = String::from("network = \"local\"\ntimestamp_ms = 1790000000000\nmessage = \"test network\"\n");
    for i in 0..funded {
        let address = Address::from_public_key(Network::Local, &key("funded", i as u64).public_key());
        let _ = write!(
            text,
            "\n[[allocation]]\naddress = \"{address}\"\namount = \"{amount}\"\n"
        );
    }
    for i in 0..masternodes {
        let operator = key("masternode", i as u64);
        let reward = Address::from_public_key(Network::Local, &key("reward", i as u64).public_key());
        let _ = write!(
            text,
            "\n[[masternode]]\noperator_key = \"{}\"\ntier = \"{tier}\"\nreward_address = \"{reward}\"\n",
            operator.public_key()
        );
    }
    text
}

/// Signs every input of `tx` (all inputs are signed by the keys given, in input order).
pub use timecoin_primitives::sign_transaction as sign;

/// Builds a chain of valid blocks on top of a genesis, keeping the UTXO set in memory.
#[derive(Debug, Clone)]
pub struct ChainBuilder {
    /// The network's genesis.
    pub genesis: Genesis,
    /// The UTXO set after the last block.
    pub utxos: HashMap<OutPoint, Utxo>,
    /// The last block.
    pub tip: ChainTip,
    /// Milliseconds between blocks.
    pub block_interval_ms: u64,
    /// Fee rate multiplier over the minimum for generated payments.
    pub fee_multiplier: u64,
    keys: HashMap<AddressPayload, SecretKey>,
    masternode_keys: Vec<SecretKey>,
    funded: usize,
    next_key: u64,
    /// Total coins minted by rewards so far.
    pub minted: Amount,
    /// The masternode list after the last block.
    pub list: MasternodeList,
    /// The certificate of the last block, which the next block carries.
    pub last_certificate: Option<CommitCertificate>,
}

/// A builder's chain state as a [`UtxoView`]: its UTXO set and its masternode list.
#[derive(Debug, Clone, Copy)]
pub struct StateView<'a> {
    /// The unspent outputs.
    pub utxos: &'a HashMap<OutPoint, Utxo>,
    /// The masternode list.
    pub list: &'a MasternodeList,
}

impl UtxoView for StateView<'_> {
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<Utxo>, ViewError> {
        Ok(self.utxos.get(outpoint).copied())
    }

    fn masternodes(&self) -> &MasternodeList {
        self.list
    }
}

impl ChainBuilder {
    /// A local network with 4 Bronze masternodes and `funded` keys of 1,000 TIME each.
    pub fn new(funded: usize) -> ChainBuilder {
        let amount = Amount::from_time(1_000).unwrap_or(Amount::ZERO);
        let text = genesis_toml(4, Tier::Bronze, funded, amount);
        match Genesis::from_toml(&text) {
            Ok(genesis) => ChainBuilder::from_genesis(genesis, funded, 4),
            Err(e) => panic!("test genesis is invalid: {e}"),
        }
    }

    /// A builder over `genesis`, whose funded and masternode keys are those of [`genesis_toml`].
    pub fn from_genesis(genesis: Genesis, funded: usize, masternodes: usize) -> ChainBuilder {
        let utxos = genesis
            .block
            .transactions
            .iter()
            .flat_map(|tx| created_outputs(tx, tx.txid(), 0).collect::<Vec<_>>())
            .collect();
        let mut keys = HashMap::new();
        for i in 0..funded {
            let k = key("funded", i as u64);
            keys.insert(payload(&k), k);
        }
        let masternode_keys: Vec<SecretKey> = (0..masternodes).map(|i| key("masternode", i as u64)).collect();
        for i in 0..masternodes {
            let k = key("reward", i as u64);
            keys.insert(payload(&k), k);
        }
        ChainBuilder {
            tip: ChainTip::of(&genesis.block.header),
            list: genesis.masternode_list(),
            last_certificate: None,
            genesis,
            utxos,
            block_interval_ms: 1_000,
            fee_multiplier: 1,
            keys,
            masternode_keys,
            funded,
            next_key: 0,
            minted: Amount::ZERO,
        }
    }

    /// The network parameters.
    pub fn params(&self) -> &ChainParams {
        &self.genesis.params
    }

    /// Where a transaction for the next block is judged.
    pub fn tx_context(&self) -> TxContext<'_> {
        TxContext {
            params: self.params(),
            genesis_hash: self.genesis_hash(),
            height: self.tip.height + 1,
        }
    }

    /// Where the next block is judged, by a node whose clock reads `now_ms`.
    pub fn block_context(&self, now_ms: u64) -> BlockContext<'_> {
        BlockContext {
            params: self.params(),
            genesis_hash: self.genesis_hash(),
            parent: self.tip,
            masternodes: &self.list,
            parent_state: self.state_hash(),
            now_ms: Some(now_ms),
        }
    }

    /// The chain state as a view: UTXO set and masternode list.
    pub fn view(&self) -> StateView<'_> {
        StateView {
            utxos: &self.utxos,
            list: &self.list,
        }
    }

    /// The builder's stand-in for the chain state hash: it keeps no UTXO commitment, so it
    /// hashes only the masternode list (storage does not check it; nodes compute the real
    /// one).
    pub fn state_hash(&self) -> Hash256 {
        chain_state_hash(&Hash256::ZERO, &self.list.hash())
    }

    /// A certificate for `block` signed by every masternode key the builder holds that is
    /// in the set the block names.
    pub fn certify(&self, block: &Block) -> CommitCertificate {
        let signers: Vec<&SecretKey> = self
            .masternode_keys
            .iter()
            .filter(|k| self.list.voting_set().voting_power(&k.public_key()) > 0)
            .collect();
        CommitCertificate::sign(&self.genesis_hash(), block.header.height, 0, &block.hash(), &signers)
    }

    /// The signatures of `txs` (each judged alone against this builder's UTXO set) still
    /// to verify, as the chain's contextual checks return them.
    pub fn sig_items(&self, txs: &[Transaction]) -> Vec<SigItem> {
        let ctx = self.tx_context();
        txs.iter()
            .flat_map(
                |tx| match check_tx_contextual(tx, tx.txid(), tx.encoded_len(), &self.view(), &ctx) {
                    Ok(checked) => checked.sig_items,
                    Err(e) => panic!("{} is not valid: {e}", tx.txid()),
                },
            )
            .collect()
    }

    /// The genesis hash.
    pub fn genesis_hash(&self) -> BlockHash {
        self.genesis.hash()
    }

    /// The set whose precommits finalize the next block.
    pub fn masternodes(&self) -> &MasternodeSet {
        self.list.voting_set()
    }

    /// A fresh key whose outputs this builder can spend.
    pub fn fresh_key(&mut self) -> AddressPayload {
        let k = key("fresh", self.keys.len() as u64);
        let p = payload(&k);
        self.keys.insert(p, k);
        p
    }

    /// Unspent outputs this builder holds the keys of, in a stable order.
    pub fn spendable(&self) -> Vec<(OutPoint, Utxo)> {
        let ordered: BTreeMap<OutPoint, Utxo> = self
            .utxos
            .iter()
            .filter(|(_, u)| self.keys.contains_key(&u.output.address))
            .map(|(o, u)| (*o, *u))
            .collect();
        ordered.into_iter().collect()
    }

    /// The key that owns `address`, if this builder made it.
    pub fn key_for(&self, address: &AddressPayload) -> Option<&SecretKey> {
        self.keys.get(address)
    }

    /// A signed transaction spending `inputs` into `outputs` (no change, fee is the rest).
    pub fn spend(&self, inputs: &[(OutPoint, Utxo)], outputs: Vec<TxOutput>) -> Transaction {
        let mut tx = Transaction {
            version: Transaction::VERSION,
            inputs: Vec::with_capacity(inputs.len()),
            outputs,
            lock_time: 0,
            memo: Vec::new(),
            payload: None,
        };
        let mut keys = Vec::with_capacity(inputs.len());
        for (outpoint, utxo) in inputs {
            let Some(k) = self.keys.get(&utxo.output.address) else {
                panic!("builder does not own {outpoint}");
            };
            tx.inputs.push(TxInput {
                prevout: *outpoint,
                public_key: k.public_key(),
                signature: Default::default(),
            });
            keys.push(k);
        }
        let amounts: Vec<Amount> = inputs.iter().map(|(_, u)| u.output.amount).collect();
        sign(&mut tx, &self.genesis_hash(), &keys, &amounts);
        tx
    }

    /// Lets the builder sign certificates and propose with `key` once its masternode votes.
    pub fn add_masternode_key(&mut self, key: SecretKey) {
        self.masternode_keys.push(key);
    }

    /// A masternode transaction spending `inputs` into `outputs` with `payload`, the payload
    /// signed by `payload_key` (when its kind carries a signature) and the inputs by their
    /// owners.
    pub fn special(
        &self,
        inputs: &[(OutPoint, Utxo)],
        outputs: Vec<TxOutput>,
        payload: Payload,
        payload_key: Option<&SecretKey>,
    ) -> Transaction {
        let mut tx = self.spend(inputs, outputs);
        tx.version = Transaction::VERSION_SPECIAL;
        tx.payload = Some(payload);
        if let Some(key) = payload_key {
            let message = payload_signature_message(&self.genesis_hash(), &tx.txid());
            if let Some(p) = tx.payload.as_mut() {
                p.set_signature(key.sign(&message.0));
            }
        }
        let keys: Vec<&SecretKey> = inputs
            .iter()
            .filter_map(|(_, u)| self.keys.get(&u.output.address))
            .collect();
        let amounts: Vec<Amount> = inputs.iter().map(|(_, u)| u.output.amount).collect();
        sign(&mut tx, &self.genesis_hash(), &keys, &amounts);
        tx
    }

    /// A registration of a `tier` masternode with operator key `operator` (which proves
    /// itself) at `service`, funded from the builder's coins. Its collateral is output 0 of
    /// the registration itself, owned by a fresh key; the owner key is fresh too. Both keys
    /// are the builder's.
    pub fn registration(&mut self, tier: Tier, operator: &SecretKey, service: SocketAddr) -> Transaction {
        self.registration_proved_by(tier, operator.public_key(), service, operator)
    }

    /// [`Self::registration`] naming `operator`, its operator proof signed by `prover`: the
    /// registration of a key by someone who does not hold it when `prover` is not its key.
    pub fn registration_proved_by(
        &mut self,
        tier: Tier,
        operator: PublicKey,
        service: SocketAddr,
        prover: &SecretKey,
    ) -> Transaction {
        let collateral_key = key("collateral", self.keys.len() as u64);
        let owner = key("owner", self.keys.len() as u64);
        self.keys.insert(payload(&collateral_key), collateral_key.clone());
        self.keys.insert(payload(&owner), owner.clone());
        let fee = Amount::from_units(100_000);
        let needed = tier.collateral().checked_add(fee).unwrap_or(Amount::MAX_MONEY);
        let mut inputs = Vec::new();
        let mut gathered = Amount::ZERO;
        for coin in self.spendable() {
            if gathered >= needed {
                break;
            }
            if self.list.by_collateral(&coin.0).is_some() {
                continue;
            }
            gathered = gathered.checked_add(coin.1.output.amount).unwrap_or(gathered);
            inputs.push(coin);
        }
        assert!(
            gathered >= needed,
            "the builder holds too little for a {tier} collateral"
        );
        let mut outputs = vec![TxOutput {
            amount: tier.collateral(),
            address: payload(&collateral_key),
        }];
        let change = gathered.checked_sub(needed).unwrap_or(Amount::ZERO);
        if change > Amount::ZERO {
            outputs.push(TxOutput {
                amount: change,
                address: inputs[0].1.output.address,
            });
        }
        let registration = Payload::Register(Registration {
            tier,
            collateral: OutPoint {
                txid: Default::default(),
                index: 0,
            },
            collateral_key: collateral_key.public_key(),
            owner: owner.public_key(),
            operator,
            reward_address: payload(&owner),
            service,
            operator_proof: Default::default(),
            signature: Default::default(),
        });
        let mut tx = self.special(&inputs, outputs, registration, Some(&collateral_key));
        self.prove_registration(&mut tx, prover);
        tx
    }

    /// Signs the operator proof of `tx`'s registration with `operator`. Neither the txid nor
    /// any other signature covers the proof, so it may be made last.
    pub fn prove_registration(&self, tx: &mut Transaction, operator: &SecretKey) {
        let txid = tx.txid();
        if let Some(Payload::Register(r)) = tx.payload.as_mut() {
            let message = r.operator_proof_message(&self.genesis_hash(), txid);
            r.operator_proof = operator.sign(&message.0);
        }
    }

    /// The revocation of masternode `id`, signed by its operator key `operator`, its fee paid
    /// from the first of the builder's coins that backs no masternode.
    pub fn revocation(&self, id: TxId, operator: &SecretKey) -> Transaction {
        let Some(coin) = self
            .spendable()
            .into_iter()
            .find(|(outpoint, _)| self.list.by_collateral(outpoint).is_none())
        else {
            panic!("the builder holds no coin to pay the revocation's fee");
        };
        let back = TxOutput {
            amount: coin
                .1
                .output
                .amount
                .checked_sub(Amount::from_units(100_000))
                .unwrap_or(Amount::ZERO),
            address: coin.1.output.address,
        };
        let payload = Payload::Revoke(Revocation {
            masternode: id,
            signature: Default::default(),
        });
        self.special(&[coin], vec![back], payload, Some(operator))
    }

    /// The unlock of masternode `id`: its collateral, less a fee, back to the collateral's key.
    pub fn unlock(&self, id: TxId) -> Transaction {
        let Some(outpoint) = self.list.get(&id).and_then(|e| e.collateral) else {
            panic!("masternode {id} has no collateral");
        };
        let Some(utxo) = self.utxos.get(&outpoint).copied() else {
            panic!("collateral {outpoint} is not unspent");
        };
        let outputs = vec![TxOutput {
            amount: utxo
                .output
                .amount
                .checked_sub(Amount::from_units(100_000))
                .unwrap_or(Amount::ZERO),
            address: utxo.output.address,
        }];
        self.special(
            &[(outpoint, utxo)],
            outputs,
            Payload::Unlock(Unlock { masternode: id }),
            None,
        )
    }

    /// A payment of a tenth of `input`'s value to one of the funded keys (round-robin), with
    /// change back to the input's owner, paying the minimum fee times `fee_multiplier`. Every
    /// output goes to a key known from the genesis file, so a builder that replays stored
    /// blocks can spend them all.
    pub fn payment(&mut self, input: (OutPoint, Utxo)) -> Transaction {
        let to = payload(&key("funded", self.next_key % self.funded.max(1) as u64));
        self.next_key += 1;
        let change = input.1.output.address;
        let value = input.1.output.amount.units();
        // A 1-input, 2-output transaction has a fixed size.
        let size = 2 + 1 + TxInput::ENCODED_LEN + 1 + 2 * TxOutput::ENCODED_LEN + 8 + 1;
        let fee = self.params().min_fee_rate.fee_for(size).units() * self.fee_multiplier;
        let pay = value / 10;
        let outputs = vec![
            TxOutput {
                amount: Amount::from_units(pay),
                address: to,
            },
            TxOutput {
                amount: Amount::from_units(value - pay - fee),
                address: change,
            },
        ];
        self.spend(&[input], outputs)
    }

    /// `count` independent payments, each spending a different spendable output.
    pub fn payments(&mut self, count: usize) -> Vec<Transaction> {
        let inputs: Vec<_> = self
            .spendable()
            .into_iter()
            .filter(|(_, u)| u.output.amount.units() > 100_000)
            .take(count)
            .collect();
        assert_eq!(inputs.len(), count, "not enough spendable outputs");
        inputs.into_iter().map(|i| self.payment(i)).collect()
    }

    /// The fee `tx` pays against this builder's UTXO set (0 if an input is unknown).
    pub fn fee_of(&self, tx: &Transaction, extra: &HashMap<OutPoint, Utxo>) -> Amount {
        let inputs = tx
            .inputs
            .iter()
            .filter_map(|i| self.utxos.get(&i.prevout).or_else(|| extra.get(&i.prevout)))
            .map(|u| u.output.amount);
        Amount::checked_sum(inputs)
            .and_then(|i| i.checked_sub(tx.output_total()?))
            .unwrap_or(Amount::ZERO)
    }

    /// The next block holding `txs` after its reward transaction, proposed by the voting
    /// masternode (of those whose keys the builder holds) chosen round-robin by height. The builder's state is not changed: see [`Self::apply`].
    pub fn build_block(&self, txs: Vec<Transaction>) -> Block {
        self.build_block_with(txs, Vec::new())
    }

    /// [`Self::build_block`], with `evidence` recorded in the block.
    pub fn build_block_with(&self, txs: Vec<Transaction>, evidence: Vec<Equivocation>) -> Block {
        let mut created = HashMap::new();
        let mut fees = Amount::ZERO;
        let height = self.tip.height + 1;
        for tx in &txs {
            fees = fees.checked_add(self.fee_of(tx, &created)).unwrap_or(fees);
            created.extend(created_outputs(tx, tx.txid(), height));
        }
        let voting: Vec<_> = self
            .masternode_keys
            .iter()
            .map(SecretKey::public_key)
            .filter(|k| self.list.voting_set().voting_power(k) > 0)
            .collect();
        let proposer = voting
            .get(height as usize % voting.len().max(1))
            .copied()
            .unwrap_or_default();
        let timestamp_ms = self.tip.timestamp_ms + self.block_interval_ms;
        let extras = BlockExtras {
            last_commit: self.last_certificate.clone(),
            evidence,
        };
        match assemble_block(
            &self.block_context(timestamp_ms),
            timestamp_ms,
            &proposer,
            extras,
            fees,
            txs,
        ) {
            Ok(block) => block,
            Err(e) => panic!("cannot build reward: {e}"),
        }
    }

    /// Applies a block (assumed valid) to the in-memory state.
    pub fn apply(&mut self, block: &Block) {
        let height = block.header.height;
        for tx in &block.transactions {
            for input in &tx.inputs {
                self.utxos.remove(&input.prevout);
            }
            self.utxos.extend(created_outputs(tx, tx.txid(), height));
        }
        self.minted = self
            .minted
            .checked_add(timecoin_chain::reward::block_reward(
                self.params(),
                self.tip.timestamp_ms,
                block.header.timestamp_ms,
            ))
            .unwrap_or(self.minted);
        // The certificate is made under the set that signs this block, before the list moves.
        self.last_certificate = Some(self.certify(block));
        self.list.apply_block(block, &self.genesis.params);
        self.tip = ChainTip::of(&block.header);
    }

    /// Builds a block of `count` payments and applies it.
    pub fn next_payment_block(&mut self, count: usize) -> Block {
        let txs = self.payments(count);
        let block = self.build_block(txs);
        self.apply(&block);
        block
    }

    /// The sum of the in-memory UTXO set.
    pub fn utxo_total(&self) -> Amount {
        Amount::checked_sum(self.utxos.values().map(|u| u.output.amount)).unwrap_or(Amount::ZERO)
    }

    /// The encoded size of a transaction.
    pub fn size_of(tx: &Transaction) -> usize {
        tx.encoded_len()
    }
}
