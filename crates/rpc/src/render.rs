//! The JSON shapes of the answers: blocks, headers, transactions, masternodes and wallet
//! entries as Bitcoin Core draws them, and amounts as numbers of TIME.

use serde_json::{Value, json};
use timecoin_primitives::{Address, Block, BlockHeader, Encode, Network, Transaction};

use crate::dto::{MasternodeSummary, WalletTxInfo};

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

/// A wallet transaction, its amount the net change to the wallet.
pub(crate) fn wallet_tx_json(entry: &WalletTxInfo, tip: u64) -> Value {
    let net = i128::from(entry.received) - i128::from(entry.spent);
    json!({
        "txid": entry.txid.to_string(),
        "category": if net >= 0 { "receive" } else { "send" },
        "amount": net as f64 / 100_000_000.0,
        "blockheight": entry.height,
        "confirmations": tip.saturating_sub(entry.height) + 1,
    })
}
