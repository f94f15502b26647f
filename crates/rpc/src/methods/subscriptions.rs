//! WebSocket subscriptions, for app developers: finalized blocks (`subscribeblocks`), the
//! transactions of finalized blocks (`subscribetransactions`), and activity on chosen
//! addresses (`subscribeaddresses`). JSON-RPC 2.0 over a WebSocket listener of its own
//! (`[rpc] websocket`), authenticated at the upgrade with the API's credentials; each has its
//! `unsubscribe…` method. What a block holds for a subscriber (its hashes, and which inputs
//! and outputs touch its addresses) is worked out on a blocking thread, once per block for
//! the hashes; each notification is then written as it is sent, so a subscriber holds at
//! most one written notification.
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
use serde_json::json;
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

/// What a subscription follows.
enum Follows {
    Blocks,
    Transactions,
    Addresses(HashSet<AddressPayload>),
}

/// One notification a block makes for a subscription, by position.
enum Note {
    Block,
    Transaction(usize),
    /// `input`: the input's position among all the block's inputs.
    Sent {
        tx: usize,
        vin: usize,
        input: usize,
    },
    Received {
        tx: usize,
        vout: usize,
    },
}

/// Registers `subscribeblocks`, `subscribetransactions`, `subscribeaddresses` and their
/// `unsubscribe…` methods.
pub(super) fn register(module: &mut RpcModule<Context>) -> Result<(), RegisterMethodError> {
    module.register_subscription(
        "subscribeblocks",
        "block",
        "unsubscribeblocks",
        |_, pending, context, _| async move { subscribe(pending, &context, Ok(Follows::Blocks)).await },
    )?;
    module.register_subscription(
        "subscribetransactions",
        "transaction",
        "unsubscribetransactions",
        |_, pending, context, _| async move { subscribe(pending, &context, Ok(Follows::Transactions)).await },
    )?;
    module.register_subscription(
        "subscribeaddresses",
        "address",
        "unsubscribeaddresses",
        |params, pending, context, _| async move {
            let values: Vec<serde_json::Value> = params.parse().unwrap_or_default();
            let follows = context
                .backend
                .block_feed()
                .map(|feed| watched(&values, feed.network).map(Follows::Addresses))
                .unwrap_or(Err(unavailable()));
            subscribe(pending, &context, follows).await
        },
    )?;
    Ok(())
}

fn unavailable() -> ErrorObjectOwned {
    RpcError::new(codes::MISC_ERROR, "this node serves no subscriptions").into()
}

/// Accepts the subscription (or refuses it with `follows`' error, or when the node has no
/// feed), then follows the feed.
async fn subscribe(
    pending: PendingSubscriptionSink,
    context: &Context,
    follows: Result<Follows, ErrorObjectOwned>,
) -> Result<(), SubscriptionError> {
    let (feed, follows) = match (context.backend.block_feed(), follows) {
        (Some(feed), Ok(follows)) => (feed, follows),
        (None, _) => {
            pending.reject(unavailable()).await;
            return Ok(());
        }
        (_, Err(error)) => {
            pending.reject(error).await;
            return Ok(());
        }
    };
    let Ok(sink) = pending.accept().await else {
        return Ok(());
    };
    follow(sink, feed, Arc::new(follows)).await
}

/// The addresses of `subscribeaddresses`' one parameter: a JSON array of at most
/// [`MAX_ADDRESSES`] addresses of `network`.
fn watched(values: &[serde_json::Value], network: Network) -> Result<HashSet<AddressPayload>, ErrorObjectOwned> {
    let texts: Vec<String> = arg(values, 0, "addresses")?;
    if texts.is_empty() || texts.len() > MAX_ADDRESSES {
        return Err(invalid(format!("addresses: 1 to {MAX_ADDRESSES} addresses")));
    }
    texts
        .iter()
        .map(|text| address_of(text, network).map(|a| a.payload))
        .collect()
}

/// The notifications `item` makes for what `follows`, in block order: for addresses, each
/// input spending from one (the spender's key names the address) and each output paying
/// one. Runs on a blocking thread: it computes the block's hashes.
fn plan(item: &FeedBlock, follows: &Follows) -> Vec<Note> {
    // The hashes every notification names, computed here, off the runtime.
    let _ = item.ids();
    match follows {
        Follows::Blocks => vec![Note::Block],
        Follows::Transactions => (0..item.block().transactions.len()).map(Note::Transaction).collect(),
        Follows::Addresses(watched) => {
            let mut notes = Vec::new();
            let mut spenders = item.spenders().iter().enumerate();
            for (tx, body) in item.block().transactions.iter().enumerate() {
                for vin in 0..body.inputs.len() {
                    if let Some((input, from)) = spenders.next()
                        && watched.contains(from)
                    {
                        notes.push(Note::Sent { tx, vin, input });
                    }
                }
                for (vout, output) in body.outputs.iter().enumerate() {
                    if watched.contains(&output.address) {
                        notes.push(Note::Received { tx, vout });
                    }
                }
            }
            notes
        }
    }
}

/// The notification `note` stands for (`None` if it names nothing: never, for a plan of the
/// same block).
fn render(item: &FeedBlock, note: &Note, network: Network) -> Option<serde_json::Value> {
    let block = item.block();
    let (hash, txids) = item.ids();
    let height = block.header.height;
    let address = |payload| Address { network, payload }.to_string();
    Some(match *note {
        Note::Block => json!({
            "hash": hash.to_string(),
            "height": height,
            "time": block.header.timestamp_ms / 1_000,
            "time_ms": block.header.timestamp_ms,
            "nTx": block.transactions.len(),
        }),
        Note::Transaction(tx) => json!({
            "txid": txids.get(tx)?.to_string(),
            "blockhash": hash.to_string(),
            "height": height,
            "finalized": true,
        }),
        Note::Sent { tx, vin, input } => {
            json!({
                "address": address(*item.spenders().get(input)?),
                "txid": txids.get(tx)?.to_string(),
                "blockhash": hash.to_string(),
                "height": height,
                "category": "send",
                "vin": vin,
            })
        }
        Note::Received { tx, vout } => {
            let output = block.transactions.get(tx)?.outputs.get(vout)?;
            json!({
                "address": address(output.address),
                "txid": txids.get(tx)?.to_string(),
                "blockhash": hash.to_string(),
                "height": height,
                "category": "receive",
                "vout": vout,
                "amount": time_value(output.amount.units()),
            })
        }
    })
}

/// Sends `sink` the notifications of each finalized block, until the subscriber leaves,
/// the node stops, or the subscriber falls behind (the subscription then ends with an error
/// saying so).
async fn follow(sink: SubscriptionSink, feed: BlockFeed, follows: Arc<Follows>) -> Result<(), SubscriptionError> {
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
        let (planned, follows_again) = (Arc::clone(&item), Arc::clone(&follows));
        let notes = tokio::task::spawn_blocking(move || plan(&planned, &follows_again))
            .await
            .map_err(|e| e.to_string())?;
        for note in &notes {
            let Some(notification) = render(&item, note, network) else {
                continue;
            };
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
