//! The ledger demo: every component of the ledger working together in one process.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use timecoin_chain::{BlockContext, BlockExtras, ChainTip, Genesis, Utxo, assemble_block, check_block};
use timecoin_mempool::{Mempool, MempoolConfig};
use timecoin_primitives::{
    Address, AddressPayload, Amount, BlockHeader, CommitCertificate, Encode, Network, OutPoint, SecretKey, Transaction,
    TxInput, TxOutput, sign_transaction,
};
use timecoin_storage::Store;

use crate::now_ms;

const MASTERNODES: u64 = 4;
const FUNDED: u64 = 2_000;

/// A demo key, the same on every run.
fn demo_key(role: &str, index: u64) -> SecretKey {
    crate::keys::derived("timecoin ledger demo", role, index)
}

/// The demo network's genesis file: four Bronze masternodes and 2,000 funded keys.
fn genesis_toml() -> String {
    let mut text =
        String::from("network = \"local\"\ntimestamp_ms = 1790000000000\nmessage = \"timecoin ledger demo\"\n");
    for i in 0..FUNDED {
        let address = Address::from_public_key(Network::Local, &demo_key("funded", i).public_key());
        let _ = write!(text, "\n[[allocation]]\naddress = \"{address}\"\namount = \"1000\"\n");
    }
    for i in 0..MASTERNODES {
        let operator = demo_key("operator", i).public_key();
        let reward = Address::from_public_key(Network::Local, &demo_key("reward", i).public_key());
        let _ = write!(
            text,
            "\n[[masternode]]\noperator_key = \"{operator}\"\ntier = \"bronze\"\nreward_address = \"{reward}\"\n"
        );
    }
    text
}

/// Signed payments from outputs the demo owns: a tenth to another demo key, the rest back
/// as change, at twice the minimum fee.
fn payments(
    genesis: &Genesis,
    keys: &HashMap<AddressPayload, SecretKey>,
    spendable: &[(OutPoint, Utxo)],
    count: usize,
    round: u64,
) -> Vec<Transaction> {
    let genesis_hash = genesis.hash();
    let size = 2 + 1 + TxInput::ENCODED_LEN + 1 + 2 * TxOutput::ENCODED_LEN + 8 + 1;
    let fee = genesis.params.min_fee_rate.fee_for(size).units() * 2;
    let mut txs = Vec::with_capacity(count);
    for (i, (outpoint, utxo)) in spendable.iter().take(count).enumerate() {
        let Some(key) = keys.get(&utxo.output.address) else {
            continue;
        };
        let value = utxo.output.amount.units();
        let to = AddressPayload::from_public_key(&demo_key("funded", (round * 7 + i as u64) % FUNDED).public_key());
        let pay = value / 10;
        let Some(change) = value.checked_sub(pay + fee) else {
            continue;
        };
        let mut tx = Transaction {
            version: Transaction::VERSION,
            inputs: vec![TxInput {
                prevout: *outpoint,
                public_key: key.public_key(),
                signature: Default::default(),
            }],
            outputs: vec![
                TxOutput {
                    amount: Amount::from_units(pay),
                    address: to,
                },
                TxOutput {
                    amount: Amount::from_units(change),
                    address: utxo.output.address,
                },
            ],
            lock_time: 0,
            memo: Vec::new(),
            payload: None,
        };
        sign_transaction(&mut tx, &genesis_hash, &[key], &[utxo.output.amount]);
        txs.push(tx);
    }
    txs
}

/// `timed demo`: the ledger end to end in one process — genesis, signed payments through the
/// mempool, block templates, validation and atomic application to the store — for `blocks`
/// blocks of `txs_per_block` payments, in `data_dir` (a temporary directory if `None`).
pub fn run(blocks: u64, txs_per_block: usize, data_dir: Option<PathBuf>) -> Result<()> {
    let temporary;
    let dir = match data_dir {
        Some(dir) => dir,
        None => {
            temporary = tempfile::tempdir().context("creating a temporary data directory")?;
            temporary.path().to_owned()
        }
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let genesis_path = dir.join("genesis.toml");
    std::fs::write(&genesis_path, genesis_toml()).with_context(|| format!("writing {}", genesis_path.display()))?;
    let text = std::fs::read_to_string(&genesis_path)?;
    let genesis = Genesis::from_toml(&text).with_context(|| format!("reading {}", genesis_path.display()))?;
    let store_path = dir.join("chain.redb");
    let store = Store::open(&store_path, &genesis)?;
    let params = genesis.params.clone();
    println!("ledger demo on the {} network", params.network);
    println!(
        "  genesis  {}  ({} masternodes)",
        genesis.hash(),
        genesis.masternodes.members().len()
    );
    println!("  store    {}", store_path.display());

    let mut keys: HashMap<AddressPayload, SecretKey> = HashMap::new();
    for i in 0..FUNDED {
        let key = demo_key("funded", i);
        keys.insert(AddressPayload::from_public_key(&key.public_key()), key);
    }
    let operators: Vec<SecretKey> = (0..MASTERNODES).map(|i| demo_key("operator", i)).collect();
    let mut mempool = Mempool::new(
        params.clone(),
        genesis.hash(),
        MempoolConfig::default(),
        store.tip()?.height,
    );

    // A demo continuing from its store carries the tip's certificate into the next block.
    let mut last_certificate = store.certificate(store.tip()?.height)?;
    for _ in 0..blocks {
        let tip = store.tip()?;
        let height = tip.height + 1;
        let mut spendable: Vec<(OutPoint, Utxo)> = store
            .all_utxos()?
            .into_iter()
            .filter(|(outpoint, utxo)| {
                keys.contains_key(&utxo.output.address) && mempool.spender_of(outpoint).is_none()
            })
            .collect();
        spendable.sort_by_key(|(_, utxo)| std::cmp::Reverse(utxo.output.amount));
        let txs = payments(&genesis, &keys, &spendable, txs_per_block, height);

        let started = Instant::now();
        let snapshot = store.snapshot()?;
        let submitted = txs.len();
        let results = mempool.add_batch(txs.clone(), &snapshot, now_ms());
        let accepted = results.iter().filter(|r| r.is_ok()).count();
        if let Some(Err(error)) = results.iter().find(|r| r.is_err()) {
            println!("  a payment was refused: {} ({error})", error.code());
        }
        // A second spend of an output already spent in the pool, at the same fee, is refused.
        if let Some(first) = txs.first() {
            let mut double = first.clone();
            double.outputs.swap(0, 1);
            if let (Some(input), Some(utxo)) = (first.inputs.first(), spendable.first().map(|(_, u)| u))
                && let Some(key) = keys.get(&utxo.output.address)
            {
                double.inputs = vec![TxInput {
                    signature: Default::default(),
                    ..*input
                }];
                sign_transaction(&mut double, &genesis.hash(), &[key], &[utxo.output.amount]);
                if let Err(error) = mempool.add(double, &snapshot, now_ms()) {
                    if height == 1 {
                        println!("  double spend refused as expected: {} ({error})", error.code());
                    }
                } else {
                    bail!("a double spend was admitted to the mempool");
                }
            }
        }
        let admitted = started.elapsed();

        let header_reserve = BlockHeader::ENCODED_LEN + 16 * 1024;
        let template = mempool.block_template(params.max_block_bytes - header_reserve, params.max_block_txs - 1);
        let proposer = operators
            .get(usize::try_from(height % MASTERNODES).unwrap_or(0))
            .map(SecretKey::public_key)
            .unwrap_or_default();
        let timestamp_ms = now_ms().max(tip.timestamp_ms + 1);
        let list = snapshot.masternode_list();
        let ctx = BlockContext {
            params: &params,
            genesis_hash: genesis.hash(),
            parent: tip,
            masternodes: &list,
            parent_state: snapshot.state_hash(),
            now_ms: Some(timestamp_ms),
        };
        let extras = BlockExtras {
            last_commit: last_certificate.take(),
            evidence: Vec::new(),
        };
        let block = assemble_block(
            &ctx,
            timestamp_ms,
            &proposer,
            extras,
            template.fees,
            template.transactions.iter().map(|tx| (**tx).clone()).collect(),
        )?;

        let validation = Instant::now();
        let checked = check_block(&block, &snapshot, &ctx).context("the demo built an invalid block")?;
        drop(snapshot);
        let validated = validation.elapsed();
        // Every masternode of this one-process demo signs the block.
        let signers: Vec<&SecretKey> = operators.iter().collect();
        let certificate = CommitCertificate::sign(&genesis.hash(), height, 0, &checked.hash, &signers);
        let write = Instant::now();
        let applied = store.apply_block(&block, Some(&certificate))?;
        last_certificate = Some(certificate);
        let written = write.elapsed();
        mempool.block_connected(&block, &store.snapshot()?)?;
        println!(
            "block {height:>4} {}  txs {:>5}/{submitted:<5} {:>8} bytes  fees {:>12}  minted {:>12}  admit {:>4} ms  validate {:>4} ms  write {:>4} ms",
            short(&checked.hash.to_string()),
            accepted,
            block.encoded_len(),
            checked.fees.to_string(),
            applied.minted.to_string(),
            admitted.as_millis(),
            validated.as_millis(),
            written.as_millis(),
        );
        if ChainTip::of(&block.header) != store.tip()? {
            bail!("the store's tip is not the block just applied");
        }
    }

    let kept = store.utxo_set_info()?;
    let recomputed = store.recompute_utxo_set_info()?;
    println!(
        "utxo set at height {}: {} outputs, {} TIME",
        kept.height, kept.count, kept.total
    );
    println!(
        "  commitment {} (recomputed from scratch: {})",
        kept.commitment, recomputed.commitment
    );
    println!(
        "  genesis allocations {} + minted {} = {}",
        kept.allocated, kept.minted, kept.total
    );
    if kept != recomputed {
        bail!("the kept UTXO summary differs from the recomputed one");
    }
    if kept.allocated.checked_add(kept.minted) != Some(kept.total) {
        bail!("supply invariant broken");
    }
    println!("supply invariant holds");
    Ok(())
}

fn short(hash: &str) -> String {
    format!("{}…", hash.get(..12).unwrap_or(hash))
}
