//! WebSocket subscriptions, for app developers: finalized blocks (`subscribeblocks`), the
//! transactions of finalized blocks (`subscribetransactions`), and activity on chosen
//! addresses (`subscribeaddresses`). JSON-RPC 2.0 over a WebSocket on the API's own port,
//! authenticated at the upgrade as any request is; each has its `unsubscribe…` method.
//!
//! Finality is final, so every notification is: none is ever taken back. A subscriber that
//! falls [`FEED`](crate::backend::FEED) blocks behind, or does not take a notification within
//! [`SEND_TIMEOUT`], has its subscription ended with an error saying so; it subscribes again
//! and catches up with `getblock` (or `listsinceblock`). The node never waits for a
//! subscriber.

use std::time::Duration;

use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::core::SubscriptionError;
use jsonrpsee::server::{PendingSubscriptionSink, RpcModule, SubscriptionSink};
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{Value, json};
use timecoin_primitives::{Address, AddressPayload, Block, Network};
use tokio::sync::broadcast::error::RecvError;

use super::Context;
use crate::backend::BlockFeed;
use crate::codes;
use crate::error::RpcError;
use crate::params::{address_of, arg, invalid};
use crate::render::time_value;

/// How long one notification may wait for the subscriber to take it.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Addresses one `subscribeaddresses` follows at most.
const MAX_ADDRESSES: usize = 1_000;

/// Registers `subscribeblocks`, `subscribetransactions`, `subscribeaddresses` and their
/// `unsubscribe…` methods.
pub(super) fn register(module: &mut RpcModule<Context>) -> Result<(), RegisterMethodError> {
    module.register_subscription(
        "subscribeblocks",
        "block",
        "unsubscribeblocks",
        |_, pending, context, _| async move {
            let Some((sink, feed)) = open(pending, &context).await else {
                return Ok(());
            };
            follow(sink, feed, |block, _| {
                vec![json!({
                    "hash": block.hash().to_string(),
                    "height": block.header.height,
                    "time": block.header.timestamp_ms / 1_000,
                    "time_ms": block.header.timestamp_ms,
                    "nTx": block.transactions.len(),
                })]
            })
            .await
        },
    )?;
    module.register_subscription(
        "subscribetransactions",
        "transaction",
        "unsubscribetransactions",
        |_, pending, context, _| async move {
            let Some((sink, feed)) = open(pending, &context).await else {
                return Ok(());
            };
            follow(sink, feed, |block, _| {
                let blockhash = block.hash().to_string();
                block
                    .transactions
                    .iter()
                    .map(|tx| {
                        json!({
                            "txid": tx.txid().to_string(),
                            "blockhash": blockhash,
                            "height": block.header.height,
                            "finalized": true,
                        })
                    })
                    .collect()
            })
            .await
        },
    )?;
    module.register_subscription(
        "subscribeaddresses",
        "address",
        "unsubscribeaddresses",
        |params, pending, context, _| async move {
            let Some(feed) = context.backend.block_feed() else {
                pending.reject(unavailable()).await;
                return Ok(());
            };
            let values: Vec<Value> = params.parse().unwrap_or_default();
            let watched = match watched(&values, feed.network) {
                Ok(watched) => watched,
                Err(error) => {
                    pending.reject(error).await;
                    return Ok(());
                }
            };
            let Ok(sink) = pending.accept().await else {
                return Ok(());
            };
            follow(sink, feed, |block, network| activity(block, network, &watched)).await
        },
    )?;
    Ok(())
}

fn unavailable() -> ErrorObjectOwned {
    RpcError::new(codes::MISC_ERROR, "this node serves no subscriptions").into()
}

/// The block feed, with the subscription accepted; `None` if refused or gone.
async fn open(pending: PendingSubscriptionSink, context: &Context) -> Option<(SubscriptionSink, BlockFeed)> {
    let Some(feed) = context.backend.block_feed() else {
        pending.reject(unavailable()).await;
        return None;
    };
    let sink = pending.accept().await.ok()?;
    Some((sink, feed))
}

/// The addresses of `subscribeaddresses`' one parameter: a JSON array of at most
/// [`MAX_ADDRESSES`] addresses of `network`.
fn watched(values: &[Value], network: Network) -> Result<Vec<AddressPayload>, ErrorObjectOwned> {
    let texts: Vec<String> = arg(values, 0, "addresses")?;
    if texts.is_empty() || texts.len() > MAX_ADDRESSES {
        return Err(invalid(format!("addresses: 1 to {MAX_ADDRESSES} addresses")));
    }
    let mut watched = Vec::with_capacity(texts.len());
    for text in &texts {
        let payload = address_of(text, network)?.payload;
        if !watched.contains(&payload) {
            watched.push(payload);
        }
    }
    Ok(watched)
}

/// What happened to `watched` addresses in `block`: each output paying one (`receive`, with
/// its amount) and each input spending from one (`send`: the spender's key names the
/// address), in block order.
fn activity(block: &Block, network: Network, watched: &[AddressPayload]) -> Vec<Value> {
    let blockhash = block.hash().to_string();
    let mut found = Vec::new();
    for tx in &block.transactions {
        let txid = tx.txid().to_string();
        let entry = |address: AddressPayload, category: &str| {
            json!({
                "address": Address { network, payload: address }.to_string(),
                "txid": txid,
                "blockhash": blockhash,
                "height": block.header.height,
                "category": category,
            })
        };
        for (vin, input) in tx.inputs.iter().enumerate() {
            let from = AddressPayload::from_public_key(&input.public_key);
            if watched.contains(&from) {
                let mut sent = entry(from, "send");
                crate::render::extend(&mut sent, "vin", json!(vin));
                found.push(sent);
            }
        }
        for (vout, output) in tx.outputs.iter().enumerate() {
            if watched.contains(&output.address) {
                let mut received = entry(output.address, "receive");
                crate::render::extend(&mut received, "vout", json!(vout));
                crate::render::extend(&mut received, "amount", time_value(output.amount.units()));
                found.push(received);
            }
        }
    }
    found
}

/// Sends `sink` what `render` makes of each finalized block, until the subscriber leaves,
/// the node stops, or the subscriber falls behind (the subscription then ends with an error
/// saying so).
async fn follow(
    sink: SubscriptionSink,
    feed: BlockFeed,
    mut render: impl FnMut(&Block, Network) -> Vec<Value>,
) -> Result<(), SubscriptionError> {
    let BlockFeed { network, mut blocks } = feed;
    loop {
        let block = tokio::select! {
            () = sink.closed() => return Ok(()),
            next = blocks.recv() => match next {
                Ok(block) => block,
                Err(RecvError::Closed) => return Err("the node is stopping".into()),
                Err(RecvError::Lagged(missed)) => {
                    return Err(format!(
                        "{missed} blocks were missed: this subscriber read too slowly; subscribe again and catch up with getblock"
                    )
                    .into());
                }
            },
        };
        for item in render(&block, network) {
            let message = serde_json::value::to_raw_value(&item).map_err(|e| e.to_string())?;
            match sink.send_timeout(message, SEND_TIMEOUT).await {
                Ok(()) => {}
                Err(jsonrpsee::core::server::SendTimeoutError::Closed(_)) => return Ok(()),
                Err(jsonrpsee::core::server::SendTimeoutError::Timeout(_)) => {
                    return Err(format!(
                        "a notification waited {} s for this subscriber: subscribe again and catch up with getblock",
                        SEND_TIMEOUT.as_secs()
                    )
                    .into());
                }
            }
        }
    }
}
