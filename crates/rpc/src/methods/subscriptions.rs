//! WebSocket subscriptions, for app developers: finalized blocks (`subscribeblocks`), the
//! transactions of finalized blocks (`subscribetransactions`), and activity on chosen
//! addresses (`subscribeaddresses`). JSON-RPC 2.0 over a WebSocket listener of its own
//! (`[rpc] websocket`), authenticated at the upgrade with the API's credentials; each has its
//! `unsubscribe…` method. Notifications are rendered on a blocking thread.
//!
//! Finality is final, so every notification is: none is ever taken back. A subscriber that
//! falls [`FEED`](crate::backend::FEED) blocks behind, or does not take a notification within
//! [`SEND_TIMEOUT`], has its subscription ended with an error saying so; it subscribes again
//! and catches up with `getblock` (or `listsinceblock`). The node never waits for a
//! subscriber.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::core::SubscriptionError;
use jsonrpsee::core::server::SendTimeoutError;
use jsonrpsee::server::{PendingSubscriptionSink, RpcModule, SubscriptionSink};
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{Value, json};
use timecoin_primitives::{Address, AddressPayload, Network};
use tokio::sync::broadcast::error::RecvError;

use super::Context;
use crate::backend::{BlockFeed, FeedBlock};
use crate::codes;
use crate::error::RpcError;
use crate::params::{address_of, arg, invalid};
use crate::render::time_value;

/// How long one notification may wait for the subscriber to take it.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Addresses one `subscribeaddresses` follows at most.
const MAX_ADDRESSES: usize = 1_000;

/// What a subscription makes of one finalized block: its notifications, in order. Runs on a
/// blocking thread (a full block's transactions are many).
type Render = Arc<dyn Fn(&FeedBlock, Network) -> Vec<Value> + Send + Sync>;

/// Registers `subscribeblocks`, `subscribetransactions`, `subscribeaddresses` and their
/// `unsubscribe…` methods.
pub(super) fn register(module: &mut RpcModule<Context>) -> Result<(), RegisterMethodError> {
    module.register_subscription(
        "subscribeblocks",
        "block",
        "unsubscribeblocks",
        |_, pending, context, _| async move {
            let render: Render = Arc::new(|item, _| {
                let block = item.block();
                vec![json!({
                    "hash": item.ids().0.to_string(),
                    "height": block.header.height,
                    "time": block.header.timestamp_ms / 1_000,
                    "time_ms": block.header.timestamp_ms,
                    "nTx": block.transactions.len(),
                })]
            });
            match open(pending, &context).await {
                Some((sink, feed)) => follow(sink, feed, render).await,
                None => Ok(()),
            }
        },
    )?;
    module.register_subscription(
        "subscribetransactions",
        "transaction",
        "unsubscribetransactions",
        |_, pending, context, _| async move {
            let render: Render = Arc::new(|item, _| {
                let (hash, txids) = item.ids();
                let blockhash = hash.to_string();
                let height = item.block().header.height;
                txids
                    .iter()
                    .map(|txid| {
                        json!({
                            "txid": txid.to_string(),
                            "blockhash": blockhash,
                            "height": height,
                            "finalized": true,
                        })
                    })
                    .collect()
            });
            match open(pending, &context).await {
                Some((sink, feed)) => follow(sink, feed, render).await,
                None => Ok(()),
            }
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
                Ok(watched) => Arc::new(watched),
                Err(error) => {
                    pending.reject(error).await;
                    return Ok(());
                }
            };
            let Ok(sink) = pending.accept().await else {
                return Ok(());
            };
            let render: Render = Arc::new(move |item, network| activity(item, network, &watched));
            follow(sink, feed, render).await
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
fn watched(values: &[Value], network: Network) -> Result<HashSet<AddressPayload>, ErrorObjectOwned> {
    let texts: Vec<String> = arg(values, 0, "addresses")?;
    if texts.is_empty() || texts.len() > MAX_ADDRESSES {
        return Err(invalid(format!("addresses: 1 to {MAX_ADDRESSES} addresses")));
    }
    texts
        .iter()
        .map(|text| address_of(text, network).map(|a| a.payload))
        .collect()
}

/// What happened to `watched` addresses in the block: each output paying one (`receive`,
/// with its amount) and each input spending from one (`send`: the spender's key names the
/// address), in block order.
fn activity(item: &FeedBlock, network: Network, watched: &HashSet<AddressPayload>) -> Vec<Value> {
    let block = item.block();
    let (hash, txids) = item.ids();
    let blockhash = hash.to_string();
    let mut found = Vec::new();
    for (tx, txid) in block.transactions.iter().zip(txids) {
        let entry = |address: AddressPayload, category: &str, field: &str, index: usize| {
            json!({
                "address": Address { network, payload: address }.to_string(),
                "txid": txid.to_string(),
                "blockhash": blockhash,
                "height": block.header.height,
                "category": category,
                field: index,
            })
        };
        for (vin, input) in tx.inputs.iter().enumerate() {
            let from = AddressPayload::from_public_key(&input.public_key);
            if watched.contains(&from) {
                found.push(entry(from, "send", "vin", vin));
            }
        }
        for (vout, output) in tx.outputs.iter().enumerate() {
            if watched.contains(&output.address) {
                let mut received = entry(output.address, "receive", "vout", vout);
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
async fn follow(sink: SubscriptionSink, feed: BlockFeed, render: Render) -> Result<(), SubscriptionError> {
    let BlockFeed { network, mut blocks } = feed;
    loop {
        let item = tokio::select! {
            () = sink.closed() => return Ok(()),
            next = blocks.recv() => match next {
                Ok(item) => item,
                Err(RecvError::Closed) => return Err("the node is stopping".into()),
                Err(RecvError::Lagged(missed)) => {
                    return Err(format!(
                        "{missed} blocks were missed: this subscriber read too slowly; subscribe again and catch up with getblock"
                    )
                    .into());
                }
            },
        };
        let render = Arc::clone(&render);
        let notifications = tokio::task::spawn_blocking(move || render(&item, network))
            .await
            .map_err(|e| e.to_string())?;
        for notification in notifications {
            let message = serde_json::value::to_raw_value(&notification).map_err(|e| e.to_string())?;
            match sink.send_timeout(message, SEND_TIMEOUT).await {
                Ok(()) => {}
                Err(SendTimeoutError::Closed(_)) => return Ok(()),
                Err(SendTimeoutError::Timeout(_)) => {
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
