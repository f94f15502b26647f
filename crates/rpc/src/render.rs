//! The JSON shapes of the answers: blocks, headers, transactions, masternodes and wallet
//! entries as Bitcoin Core draws them, and amounts as numbers of TIME.

use serde_json::{Value, json};
use timecoin_primitives::{Address, Block, BlockHeader, Encode, Network, Transaction};

use crate::dto::{MasternodeSummary, OutputOwner, WalletTxInfo, WalletTxOutput};

/// The amount as a JSON number of TIME, as Bitcoin Core shows BTC.
pub(crate) fn time_value(units: u64) -> Value {
    json!(units as f64 / 100_000_000.0)
}

/// A decoded transaction, its addresses written for `network`.
pub(crate) fn transaction_json(tx: &Transaction, network: Network) -> Value {
    json!({
        "txid": tx.txid().to_string(),
        "hash": tx.witness_hash().to_string(),
        "version": tx.version,
        "size": tx.encoded_len(),
        "locktime": tx.lock_time,
        "vin": tx.inputs.iter().map(|i| json!({"txid": i.prevout.txid.to_string(), "vout": i.prevout.index})).collect::<Vec<_>>(),
        "vout": tx.outputs.iter().enumerate().map(|(n, o)| json!({
            "value": time_value(o.amount.units()),
            "n": n,
            "address": Address { network, payload: o.address }.to_string(),
        })).collect::<Vec<_>>(),
        "memo": hex::encode(&tx.memo),
        "masternode": tx.payload.as_ref().map(|p| payload_json(p, network)),
    })
}

/// A masternode payload's fields (its signature left out).
fn payload_json(payload: &timecoin_primitives::Payload, network: Network) -> Value {
    use timecoin_primitives::Payload;
    let address = |payload| Address { network, payload }.to_string();
    match payload {
        Payload::Register(r) => json!({
            "type": "register",
            "tier": r.tier.name(),
            "collateral": r.collateral.to_string(),
            "collateralkey": r.collateral_key.to_string(),
            "owner": r.owner.to_string(),
            "operator": r.operator.to_string(),
            "rewardaddress": address(r.reward_address),
            "address": r.service.to_string(),
        }),
        Payload::Update(u) => json!({
            "type": "update",
            "masternode": u.masternode.to_string(),
            "operator": u.operator.to_string(),
            "rewardaddress": address(u.reward_address),
            "address": u.service.to_string(),
        }),
        Payload::Revoke(r) => json!({"type": "revoke", "masternode": r.masternode.to_string()}),
        Payload::Unlock(u) => json!({"type": "unlock", "masternode": u.masternode.to_string()}),
    }
}

/// A block at `verbosity` 1 (txids) or 2 (decoded transactions), with `tip` for its
/// confirmations.
pub(crate) fn block_json(block: &Block, tip: u64, network: Network, verbosity: u8) -> Value {
    let txs: Vec<Value> = if verbosity >= 2 {
        block
            .transactions
            .iter()
            .map(|tx| transaction_json(tx, network))
            .collect()
    } else {
        block
            .transactions
            .iter()
            .map(|tx| json!(tx.txid().to_string()))
            .collect()
    };
    let mut object = header_json(&block.header, tip);
    extend(&mut object, "nTx", json!(block.transactions.len()));
    extend(&mut object, "size", json!(block.encoded_len()));
    extend(&mut object, "tx", json!(txs));
    extend(
        &mut object,
        "lastcommit",
        json!(block.last_commit.as_ref().map(|c| json!({
            "height": c.height,
            "round": c.round,
            "signers": c.signatures.iter().map(|s| s.validator.to_string()).collect::<Vec<_>>(),
        }))),
    );
    extend(
        &mut object,
        "evidence",
        json!(
            block
                .evidence
                .iter()
                .map(|e| json!({"masternode": e.validator().to_string(), "height": e.height()}))
                .collect::<Vec<_>>()
        ),
    );
    object
}

/// Adds a field to a JSON object (nothing happens to any other value).
pub(crate) fn extend(object: &mut Value, key: &str, value: Value) {
    if let Value::Object(map) = object {
        map.insert(key.to_owned(), value);
    }
}

/// A block header, with `tip` for its confirmations.
pub(crate) fn header_json(header: &BlockHeader, tip: u64) -> Value {
    json!({
        "hash": header.hash().to_string(),
        "confirmations": tip.saturating_sub(header.height) + 1,
        "height": header.height,
        "version": header.version,
        "merkleroot": header.merkle_root.to_string(),
        "time": header.timestamp_ms / 1_000,
        "time_ms": header.timestamp_ms,
        "previousblockhash": header.prev_hash.to_string(),
        "proposer": header.proposer.to_string(),
        "masternodesethash": header.masternode_set_hash.to_string(),
        "statehash": header.state_hash.to_string(),
        "lastcommithash": header.last_commit_hash.to_string(),
        "evidencehash": header.evidence_hash.to_string(),
    })
}

/// A masternode as `masternodelist` and `masternodestatus` show it.
pub(crate) fn masternode_json(m: &MasternodeSummary) -> Value {
    json!({
        "id": m.id,
        "operator": m.operator,
        "owner": m.owner,
        "tier": m.tier,
        "status": m.status,
        "power": m.power,
        "collateral": m.collateral,
        "rewardaddress": m.reward_address,
        "address": m.service,
        "registeredheight": m.registered_height,
        "lastpaidheight": m.last_paid,
        "posepenalty": m.pose_penalty,
        "banneduntil": m.banned_until,
        "connected": m.connected,
    })
}

/// A signed amount in units as a JSON number of TIME (a send is negative).
pub(crate) fn signed_time_value(units: i128) -> Value {
    json!(units as f64 / 100_000_000.0)
}

/// A wallet transaction's confirmations at the wallet's tip `tip` (0 in the mempool).
pub(crate) fn confirmations(tx: &WalletTxInfo, tip: u64) -> u64 {
    tx.block.map_or(0, |b| tip.saturating_sub(b.height).saturating_add(1))
}

/// Whether an answer shows an output paying `owner`: the wallet's own addresses always,
/// watched ones with `include_watchonly`.
fn shown(owner: OutputOwner, include_watchonly: bool) -> bool {
    match owner {
        OutputOwner::Receive | OutputOwner::Change => true,
        OutputOwner::WatchOnly => include_watchonly,
        OutputOwner::Other => false,
    }
}

/// Whether `tx` involves watched addresses: it paid one, or spent one's coin.
fn involves_watched(tx: &WalletTxInfo) -> bool {
    tx.spent_watched > 0 || tx.outputs.iter().any(|o| o.owner == OutputOwner::WatchOnly)
}

/// Whether a wallet answer shows `tx`: it touched the wallet's keys, or watched addresses
/// and the caller asked for those (`include_watchonly`, false by default as in Bitcoin Core
/// for a wallet with keys).
pub(crate) fn wallet_visible(tx: &WalletTxInfo, include_watchonly: bool) -> bool {
    let own = tx.spent > tx.spent_watched || tx.outputs.iter().any(|o| shown(o.owner, false));
    own || (include_watchonly && involves_watched(tx))
}

/// The fields every wallet answer gives a transaction (Bitcoin Core's `WalletTxToJSON`), and
/// `finalized`: whether its block is decided, which with TimeCoin's instant finality is
/// whether it has a block at all.
pub(crate) fn wallet_tx_fields(tx: &WalletTxInfo, tip: u64) -> serde_json::Map<String, Value> {
    let mut fields = serde_json::Map::new();
    fields.insert("confirmations".to_owned(), json!(confirmations(tx, tip)));
    if tx.reward {
        fields.insert("generated".to_owned(), json!(true));
    }
    if let Some(block) = &tx.block {
        fields.insert("blockhash".to_owned(), json!(block.hash.to_string()));
        fields.insert("blockheight".to_owned(), json!(block.height));
        fields.insert("blockindex".to_owned(), json!(block.index));
        fields.insert("blocktime".to_owned(), json!(block.time_ms / 1000));
    }
    fields.insert("txid".to_owned(), json!(tx.txid.to_string()));
    fields.insert("walletconflicts".to_owned(), json!([]));
    fields.insert("time".to_owned(), json!(tx.time_ms / 1000));
    fields.insert("timereceived".to_owned(), json!(tx.time_ms / 1000));
    fields.insert("bip125-replaceable".to_owned(), json!("no"));
    fields.insert("finalized".to_owned(), json!(tx.block.is_some()));
    fields
}

/// A wallet transaction's entries as `listtransactions`, `listsinceblock` and
/// `gettransaction`'s `details` give them (Bitcoin Core's `ListTransactions`): when the
/// wallet paid, a `send` for each output not to its change (negative, with the fee); a
/// `receive` (`generate` for a block reward) for each output to its addresses, change left
/// out of a payment the wallet made unless `include_change`. What watched addresses paid or
/// received only with `include_watchonly`, each such entry marked `involvesWatchonly`.
/// `details` leaves out the common fields.
pub(crate) fn wallet_entries(
    tx: &WalletTxInfo,
    tip: u64,
    include_change: bool,
    include_watchonly: bool,
    details: bool,
) -> Vec<Value> {
    let common = if details {
        serde_json::Map::new()
    } else {
        wallet_tx_fields(tx, tip)
    };
    let sent_watched = include_watchonly && tx.spent_watched > 0;
    let from_me = tx.spent > tx.spent_watched || sent_watched;
    let show_fee = tx.spent_watched == 0 || include_watchonly;
    let entry = |vout: usize, output: &WalletTxOutput, category: &str, amount: i128| {
        let mut entry = common.clone();
        entry.insert("address".to_owned(), json!(output.address));
        entry.insert("category".to_owned(), json!(category));
        entry.insert("amount".to_owned(), signed_time_value(amount));
        entry.insert("vout".to_owned(), json!(vout));
        if sent_watched || output.owner == OutputOwner::WatchOnly {
            entry.insert("involvesWatchonly".to_owned(), json!(true));
        }
        if category == "send" {
            if let Some(fee) = tx.fee.filter(|_| show_fee) {
                entry.insert("fee".to_owned(), signed_time_value(-i128::from(fee)));
            }
            entry.insert("abandoned".to_owned(), json!(false));
        }
        Value::Object(entry)
    };
    let listed = |output: &WalletTxOutput| !(from_me && output.owner == OutputOwner::Change) || include_change;
    let mut entries = Vec::new();
    if from_me {
        for (vout, output) in tx.outputs.iter().enumerate().filter(|(_, o)| listed(o)) {
            entries.push(entry(vout, output, "send", -i128::from(output.amount)));
        }
    }
    let category = if tx.reward { "generate" } else { "receive" };
    for (vout, output) in tx.outputs.iter().enumerate() {
        if shown(output.owner, include_watchonly) && listed(output) {
            entries.push(entry(vout, output, category, i128::from(output.amount)));
        }
    }
    entries
}

/// `gettransaction`'s answer (without `hex`): the amount to the wallet net of what it paid
/// (the fee apart), the fee it paid, the common fields and the entries as `details`; watched
/// addresses' part only with `include_watchonly`.
pub(crate) fn wallet_tx_json(tx: &WalletTxInfo, tip: u64, include_watchonly: bool) -> Value {
    let show_fee = tx.spent_watched == 0 || include_watchonly;
    let fee = tx.fee.filter(|_| show_fee);
    let received: u64 = tx
        .outputs
        .iter()
        .filter(|o| shown(o.owner, include_watchonly))
        .fold(0, |sum, o| sum.saturating_add(o.amount));
    let spent = if include_watchonly {
        tx.spent
    } else {
        tx.spent.saturating_sub(tx.spent_watched)
    };
    let mut object = wallet_tx_fields(tx, tip);
    object.insert(
        "amount".to_owned(),
        signed_time_value(i128::from(received) - i128::from(spent) + fee.map_or(0, i128::from)),
    );
    if let Some(fee) = fee {
        object.insert("fee".to_owned(), signed_time_value(-i128::from(fee)));
    }
    if include_watchonly && involves_watched(tx) {
        object.insert("involvesWatchonly".to_owned(), json!(true));
    }
    object.insert(
        "details".to_owned(),
        Value::Array(wallet_entries(tx, tip, false, include_watchonly, true)),
    );
    Value::Object(object)
}
