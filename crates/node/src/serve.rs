//! Serving peers' requests for blocks and transactions, apart from the consensus host: a
//! peer's request never makes the consensus loop wait on a disk read (Zebra answers block
//! requests from its state service, apart from the syncer and the verifier).
//!
//! Requests wait in a bounded queue, at most [`MAX_PENDING_PER_PEER`] per peer; what does
//! not fit is dropped (the peer asks again, or asks another peer). Each answer fits one
//! frame, and the network bounds what waits for each peer in bytes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Result, anyhow};
use timecoin_mempool::Mempool;
use timecoin_network::{Message, NetworkHandle};
use timecoin_primitives::{Encode, PublicKey, Transaction, TxId};
use timecoin_storage::Store;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

/// Room kept in a frame for a message's own fields around the blocks or transactions it
/// carries.
const FRAME_OVERHEAD: usize = 1_024;

/// Requests waiting to be served, from all peers.
const MAX_PENDING: usize = 256;

/// Requests waiting to be served from one peer; more are dropped.
const MAX_PENDING_PER_PEER: usize = 2;

/// A peer's request.
#[derive(Debug)]
pub(crate) enum Request {
    /// Finalized blocks with their certificates from a height on.
    Blocks { from: u64, count: u32 },
    /// Pending transactions by id.
    Transactions(Vec<TxId>),
}

/// Where the host hands requests over.
#[derive(Debug, Clone)]
pub(crate) struct Requests {
    queue: mpsc::Sender<(PublicKey, Request)>,
    pending: Arc<Mutex<HashMap<PublicKey, usize>>>,
}

impl Requests {
    /// Queues `request` from `peer`, or drops it when the queue, or the peer's share of it,
    /// is full. Never waits.
    pub(crate) fn submit(&self, peer: PublicKey, request: Request) {
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        // A peer has an entry only while it has requests waiting, so the map is bounded by
        // the queue, however many identities ask while it is full.
        if pending.get(&peer).is_some_and(|count| *count >= MAX_PENDING_PER_PEER)
            || self.queue.try_send((peer, request)).is_err()
        {
            metrics::counter!("timecoin_requests_dropped_total").increment(1);
            return;
        }
        *pending.entry(peer).or_insert(0) += 1;
    }

    /// Peers with requests waiting.
    #[cfg(test)]
    fn waiting_peers(&self) -> usize {
        self.pending.lock().map_or(0, |pending| pending.len())
    }

    fn served(&self, peer: &PublicKey) {
        if let Ok(mut pending) = self.pending.lock()
            && let Some(count) = pending.get_mut(peer)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                pending.remove(peer);
            }
        }
    }
}

/// What answers requests.
pub(crate) struct Server {
    pub(crate) store: Arc<Store>,
    pub(crate) mempool: Arc<Mutex<Mempool>>,
    pub(crate) network: NetworkHandle,
    /// The largest frame peers accept: answers are cut to fit.
    pub(crate) max_frame: usize,
}

impl Server {
    /// Starts serving on `tracker` until `cancel`; returns where requests go.
    pub(crate) fn spawn(self, tracker: &TaskTracker, cancel: CancellationToken) -> Requests {
        let (queue, mut incoming) = mpsc::channel(MAX_PENDING);
        let requests = Requests {
            queue,
            pending: Arc::new(Mutex::new(HashMap::new())),
        };
        let handle = requests.clone();
        tracker.spawn(async move {
            loop {
                let (peer, request) = tokio::select! {
                    () = cancel.cancelled() => return,
                    next = incoming.recv() => match next {
                        Some(next) => next,
                        None => return,
                    },
                };
                let answer = self.answer(request).await;
                handle.served(&peer);
                match answer {
                    Ok(Some(message)) => self.network.send(peer, &message).await,
                    Ok(None) => {}
                    Err(error) => debug!(%peer, %error, "cannot serve a request"),
                }
            }
        });
        requests
    }

    fn budget(&self) -> usize {
        self.max_frame.saturating_sub(FRAME_OVERHEAD)
    }

    async fn answer(&self, request: Request) -> Result<Option<Message>> {
        match request {
            Request::Blocks { from, count } => {
                let (store, budget) = (Arc::clone(&self.store), self.budget());
                let blocks = tokio::task::spawn_blocking(move || -> Result<_> {
                    let mut out = Vec::new();
                    let mut bytes = 0;
                    for height in from..from.saturating_add(u64::from(count)) {
                        let (Some(block), Some(certificate)) =
                            (store.block_by_height(height)?, store.certificate(height)?)
                        else {
                            break;
                        };
                        bytes += block.encoded_len() + certificate.encoded_len();
                        if bytes > budget && !out.is_empty() {
                            break;
                        }
                        out.push((block, certificate));
                    }
                    Ok(out)
                })
                .await
                .map_err(|e| anyhow!("blocking task failed: {e}"))??;
                metrics::counter!("timecoin_blocks_served_total").increment(blocks.len() as u64);
                // An empty answer tells the peer at once that this node has less than it hoped.
                Ok(Some(Message::Blocks(blocks)))
            }
            Request::Transactions(ids) => {
                let found = self.transactions(&ids)?;
                Ok((!found.is_empty()).then_some(Message::Transactions(found)))
            }
        }
    }

    /// The mempool's transactions among `ids`, as many as fit in one frame.
    fn transactions(&self, ids: &[TxId]) -> Result<Vec<Transaction>> {
        let mempool = self.mempool.lock().map_err(|_| anyhow!("mempool lock poisoned"))?;
        let budget = self.budget();
        let mut bytes = 0;
        let mut found = Vec::new();
        for tx in ids.iter().filter_map(|id| mempool.get(id)) {
            bytes += tx.encoded_len();
            if bytes > budget {
                break;
            }
            found.push((*tx).clone());
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timecoin_primitives::SecretKey;

    fn requests(capacity: usize) -> (Requests, mpsc::Receiver<(PublicKey, Request)>) {
        let (queue, incoming) = mpsc::channel(capacity);
        let requests = Requests {
            queue,
            pending: Arc::new(Mutex::new(HashMap::new())),
        };
        (requests, incoming)
    }

    #[test]
    fn a_peer_waits_in_line_at_most_twice_and_refused_peers_leave_no_trace() {
        let (requests, mut incoming) = requests(4);
        let peer = |n: u8| SecretKey::from_seed([n; 32]).public_key();
        let blocks = || Request::Blocks { from: 1, count: 100 };
        for _ in 0..5 {
            requests.submit(peer(1), blocks());
        }
        assert_eq!(requests.waiting_peers(), 1);
        requests.submit(peer(2), blocks());
        requests.submit(peer(3), blocks());
        // The queue is full: hundreds of other identities are refused and remembered nowhere.
        for n in 10..=255 {
            requests.submit(peer(n), blocks());
        }
        assert_eq!(requests.waiting_peers(), 3);
        let mut served = Vec::new();
        while let Ok((who, _)) = incoming.try_recv() {
            requests.served(&who);
            served.push(who);
        }
        assert_eq!(served, vec![peer(1), peer(1), peer(2), peer(3)]);
        assert_eq!(requests.waiting_peers(), 0);
    }
}
