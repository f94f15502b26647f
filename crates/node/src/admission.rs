//! The admission queue: every transaction submitted through the API (and the wallet) waits
//! here, and a single task admits whatever has gathered as one batch — one pass of signature
//! verification in parallel batches before the mempool's lock is taken, then one
//! [`Mempool::add_batch`] under it. Concurrent callers (a JSON-RPC batch, many clients) so
//! share the cost of verification and of the lock, while a lone caller waits no longer than
//! its own admission.

use std::sync::{Arc, Mutex};

use anyhow::anyhow;
use timecoin_chain::{Genesis, SignatureCache};
use timecoin_mempool::{Mempool, MempoolError};
use timecoin_primitives::{Transaction, TxId};
use timecoin_rpc::{RpcError, codes};
use timecoin_storage::Store;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Submissions waiting at most; more are refused until the queue drains.
const QUEUE: usize = 65_536;
/// Most transactions admitted in one batch.
const MAX_BATCH: usize = 4_096;

type Reply = oneshot::Sender<Result<TxId, RpcError>>;

/// Where submissions go.
#[derive(Clone)]
pub(crate) struct Admission {
    sender: mpsc::Sender<(Transaction, Reply)>,
}

/// What admitting needs.
pub(crate) struct Admitter {
    pub(crate) store: Arc<Store>,
    pub(crate) genesis: Arc<Genesis>,
    pub(crate) mempool: Arc<Mutex<Mempool>>,
    pub(crate) signatures: Arc<SignatureCache>,
    /// Ids of admitted transactions, a batch a message, for the host to relay.
    pub(crate) relay: mpsc::Sender<Vec<TxId>>,
}

fn stopped() -> RpcError {
    RpcError::new(codes::INTERNAL_ERROR, "the node is shutting down")
}

impl Admission {
    /// Starts the admitting task, owned by `tracker` and stopped by `cancel`.
    pub(crate) fn start(admitter: Admitter, cancel: CancellationToken, tracker: &TaskTracker) -> Admission {
        let (sender, mut queue) = mpsc::channel::<(Transaction, Reply)>(QUEUE);
        let admitter = Arc::new(admitter);
        tracker.spawn(async move {
            loop {
                let first = tokio::select! {
                    () = cancel.cancelled() => return,
                    first = queue.recv() => match first {
                        Some(first) => first,
                        None => return,
                    },
                };
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match queue.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let (txs, replies): (Vec<Transaction>, Vec<Reply>) = batch.into_iter().unzip();
                let admitter = Arc::clone(&admitter);
                let results = tokio::task::spawn_blocking(move || admitter.admit(txs))
                    .await
                    .map_err(|e| anyhow!("admission failed: {e}"));
                match results {
                    Ok(results) => {
                        for (reply, result) in replies.into_iter().zip(results) {
                            let _ = reply.send(result);
                        }
                    }
                    Err(error) => {
                        for reply in replies {
                            let _ = reply.send(Err(RpcError::new(codes::INTERNAL_ERROR, error.to_string())));
                        }
                    }
                }
            }
        });
        Admission { sender }
    }

    /// Queues `tx`; the receiver gets its verdict.
    pub(crate) fn submit(&self, tx: Transaction) -> Result<oneshot::Receiver<Result<TxId, RpcError>>, RpcError> {
        let (reply, verdict) = oneshot::channel();
        self.sender.try_send((tx, reply)).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => RpcError::new(
                codes::INTERNAL_ERROR,
                format!("{QUEUE} transactions are waiting for admission; retry shortly"),
            ),
            mpsc::error::TrySendError::Closed(_) => stopped(),
        })?;
        Ok(verdict)
    }

    /// Queues `tx` and waits for its verdict (on a blocking thread).
    pub(crate) fn submit_blocking(&self, tx: Transaction) -> Result<TxId, RpcError> {
        self.submit(tx)?.blocking_recv().unwrap_or_else(|_| Err(stopped()))
    }

    /// Queues `tx` and waits for its verdict.
    pub(crate) async fn submit_async(&self, tx: Transaction) -> Result<TxId, RpcError> {
        self.submit(tx)?.await.unwrap_or_else(|_| Err(stopped()))
    }
}

impl Admitter {
    /// Admits `txs` in order (a later one may spend an earlier one); one verdict each.
    fn admit(&self, txs: Vec<Transaction>) -> Vec<Result<TxId, RpcError>> {
        let internal = |error: &dyn std::fmt::Display| RpcError::new(codes::INTERNAL_ERROR, error.to_string());
        let snapshot = match self.store.snapshot() {
            Ok(snapshot) => snapshot,
            Err(error) => return txs.iter().map(|_| Err(internal(&error))).collect(),
        };
        let mut verdicts: Vec<Option<Result<TxId, RpcError>>> = Vec::with_capacity(txs.len());
        let mut fresh = Vec::with_capacity(txs.len());
        for tx in txs {
            match self.store.tx_location(&tx.txid()) {
                Ok(None) => {
                    verdicts.push(None);
                    fresh.push(tx);
                }
                Ok(Some(_)) => verdicts.push(Some(Err(RpcError::new(
                    codes::VERIFY_ALREADY_IN_CHAIN,
                    "Transaction already in block chain",
                )))),
                Err(error) => verdicts.push(Some(Err(internal(&error)))),
            }
        }
        // Verified before the mempool's lock is taken, in parallel batches.
        crate::host::preverify(&self.signatures, &self.genesis, &snapshot, &fresh);
        let Ok(mut mempool) = self.mempool.lock() else {
            return verdicts
                .into_iter()
                .map(|v| v.unwrap_or_else(|| Err(internal(&"mempool lock poisoned"))))
                .collect();
        };
        let results = mempool.add_batch(fresh, &snapshot, crate::host::now_ms());
        drop(mempool);
        let admitted: Vec<TxId> = results.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
        if !admitted.is_empty() {
            // If the host's queue is full, peers still get these in a block.
            let _ = self.relay.try_send(admitted);
        }
        let mut judged = results.into_iter();
        verdicts
            .into_iter()
            .map(|verdict| {
                verdict.unwrap_or_else(|| match judged.next() {
                    Some(Ok(txid) | Err(MempoolError::AlreadyInPool(txid))) => Ok(txid),
                    Some(Err(error)) => Err(RpcError::new(
                        codes::VERIFY_REJECTED,
                        format!("{}: {error}", error.code()),
                    )),
                    None => Err(internal(&"admission lost a transaction")),
                })
            })
            .collect()
    }
}
