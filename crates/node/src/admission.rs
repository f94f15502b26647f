//! The admission queue: every transaction that reaches the node — submitted through the API
//! or the wallet, or relayed by a peer — waits here, and one task admits whatever has
//! gathered as one batch: signatures verified in parallel batches before the mempool's lock
//! is taken, then one [`Mempool::add_batch`] under it. Concurrent callers (a JSON-RPC batch,
//! many clients, many peers) so share the cost of verification and of the lock, while a lone
//! caller waits no longer than its own admission.
//!
//! Admission runs apart from the consensus host, so that a flood of transactions never
//! delays a proposal or a vote behind it (the host once admitted relayed transactions in its
//! own loop, and under overload rounds timed out while proposals waited in line).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use timecoin_chain::{Genesis, SignatureCache};
use timecoin_mempool::{Mempool, MempoolError};
use timecoin_network::{NetworkHandle, Offense};
use timecoin_primitives::{Encode, PublicKey, Transaction, TxId};
use timecoin_rpc::{RpcError, codes};
use timecoin_storage::Store;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Arrivals waiting at most (each an API submission or a peer's message).
const QUEUE: usize = 65_536;
/// Bytes of transactions waiting at most; more are refused (API) or dropped (relayed) until
/// the queue drains. Counted in bytes, since one transaction may be a megabyte.
const QUEUE_BYTES: usize = 64 * 1024 * 1024;
/// Admitting stops gathering once a batch holds this many transactions.
const MAX_BATCH: usize = 4_096;

type Reply = oneshot::Sender<Result<TxId, RpcError>>;

/// Where transactions come from, and so where their verdicts go.
enum Arrival {
    /// From the API or the wallet: the caller waits for the verdict.
    Api(Box<Transaction>, Reply),
    /// Relayed by a peer: offenses count against it.
    Peer(PublicKey, Vec<Transaction>),
}

/// Where transactions to admit go.
#[derive(Clone)]
pub(crate) struct Admission {
    sender: mpsc::Sender<Arrival>,
    /// Bytes of transactions in the queue: what bounds its memory (a peer's arrival holds
    /// many).
    queued: Arc<AtomicUsize>,
}

/// What admitting needs.
pub(crate) struct Admitter {
    pub(crate) store: Arc<Store>,
    pub(crate) genesis: Arc<Genesis>,
    pub(crate) mempool: Arc<Mutex<Mempool>>,
    pub(crate) signatures: Arc<SignatureCache>,
    /// Ids of admitted transactions, a batch a message, for the host to announce.
    pub(crate) relay: mpsc::Sender<Vec<TxId>>,
    /// To report peers that relay invalid transactions.
    pub(crate) network: NetworkHandle,
    /// Told of every admitted transaction (ZMQ, `walletnotify`).
    pub(crate) notifier: crate::notify::Notifier,
}

/// Why a transaction was not admitted.
struct Refusal {
    error: RpcError,
    /// What relaying it costs the peer that did: nothing when another chain state could
    /// make it valid.
    offense: Option<Offense>,
}

fn stopped() -> RpcError {
    RpcError::new(codes::INTERNAL_ERROR, "the node is shutting down")
}

impl Admission {
    /// Starts the admitting task, owned by `tracker` and stopped by `cancel`.
    pub(crate) fn start(admitter: Admitter, cancel: CancellationToken, tracker: &TaskTracker) -> Admission {
        let (sender, mut queue) = mpsc::channel::<Arrival>(QUEUE);
        let admitter = Arc::new(admitter);
        let queued = Arc::new(AtomicUsize::new(0));
        let taken = Arc::clone(&queued);
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
                let (mut count, mut bytes) = arrival_size(&batch[..]);
                while count < MAX_BATCH {
                    match queue.try_recv() {
                        Ok(next) => {
                            let (more, more_bytes) = arrival_size(std::slice::from_ref(&next));
                            count += more;
                            bytes += more_bytes;
                            batch.push(next);
                        }
                        Err(_) => break,
                    }
                }
                taken.fetch_sub(bytes, Ordering::Relaxed);
                admitter.admit_arrivals(batch).await;
            }
        });
        Admission { sender, queued }
    }

    /// Counts `bytes` more into the queue, unless that would pass its bound.
    fn reserve(&self, bytes: usize) -> bool {
        let before = self.queued.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) > QUEUE_BYTES {
            self.queued.fetch_sub(bytes, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn full() -> RpcError {
        RpcError::new(
            codes::INTERNAL_ERROR,
            format!(
                "{} MiB of transactions are waiting for admission; retry shortly",
                QUEUE_BYTES >> 20
            ),
        )
    }

    /// Queues `tx`; the receiver gets its verdict.
    fn submit(&self, tx: Transaction) -> Result<oneshot::Receiver<Result<TxId, RpcError>>, RpcError> {
        let bytes = tx.encoded_len();
        if !self.reserve(bytes) {
            return Err(Self::full());
        }
        let (reply, verdict) = oneshot::channel();
        self.sender
            .try_send(Arrival::Api(Box::new(tx), reply))
            .map_err(|error| {
                self.queued.fetch_sub(bytes, Ordering::Relaxed);
                match error {
                    mpsc::error::TrySendError::Full(_) => Self::full(),
                    mpsc::error::TrySendError::Closed(_) => stopped(),
                }
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

    /// Queues transactions `peer` relayed; when the queue is full they are dropped (they
    /// reach this node in a block all the same).
    pub(crate) fn relayed(&self, peer: PublicKey, txs: Vec<Transaction>) {
        let bytes = txs.iter().map(Encode::encoded_len).sum();
        if self.reserve(bytes) && self.sender.try_send(Arrival::Peer(peer, txs)).is_err() {
            self.queued.fetch_sub(bytes, Ordering::Relaxed);
        }
    }
}

/// What relaying a transaction the mempool refused with `error` costs the peer: a flaw no
/// chain state mends costs [`Offense::InvalidTransaction`]; a refusal another state could
/// lift, nothing. A bad signature does not ban at once: a payload's signature is checked
/// against the operator key the list holds now, which an update may have changed on a peer
/// that is a block ahead.
fn relay_offense(error: &MempoolError) -> Option<Offense> {
    match error {
        MempoolError::Invalid(e) if e.is_invalid_in_any_state() => Some(Offense::InvalidTransaction),
        _ => None,
    }
}

/// Transactions and their bytes in `arrivals`.
fn arrival_size(arrivals: &[Arrival]) -> (usize, usize) {
    arrivals.iter().fold((0, 0), |(count, bytes), arrival| match arrival {
        Arrival::Api(tx, _) => (count + 1, bytes + tx.encoded_len()),
        Arrival::Peer(_, txs) => (
            count + txs.len(),
            bytes + txs.iter().map(Encode::encoded_len).sum::<usize>(),
        ),
    })
}

impl Admitter {
    /// Admits one gathered batch and delivers the verdicts.
    async fn admit_arrivals(self: &Arc<Self>, arrivals: Vec<Arrival>) {
        let mut txs = Vec::new();
        let mut from_api = Vec::new();
        let mut replies = Vec::new();
        let mut peers = Vec::new();
        for arrival in arrivals {
            match arrival {
                Arrival::Api(tx, reply) => {
                    txs.push(*tx);
                    from_api.push(true);
                    replies.push(Some(reply));
                    peers.push(None);
                }
                Arrival::Peer(peer, relayed) => {
                    for tx in relayed {
                        txs.push(tx);
                        from_api.push(false);
                        replies.push(None);
                        peers.push(Some(peer));
                    }
                }
            }
        }
        let admitter = Arc::clone(self);
        let verdicts = match tokio::task::spawn_blocking(move || {
            let timer = crate::metrics::StageTimer::start("admission");
            let verdicts = admitter.admit(txs, &from_api);
            timer.finish();
            verdicts
        })
        .await
        {
            Ok(verdicts) => verdicts,
            Err(error) => {
                let error = RpcError::new(codes::INTERNAL_ERROR, format!("admission failed: {error}"));
                replies
                    .iter()
                    .map(|_| {
                        Err(Refusal {
                            error: error.clone(),
                            offense: None,
                        })
                    })
                    .collect()
            }
        };
        let admitted: Vec<TxId> = verdicts.iter().filter_map(|v| v.as_ref().ok().copied()).collect();
        if !admitted.is_empty() {
            // If the host's queue is full, peers still get these in a block.
            let _ = self.relay.try_send(admitted);
        }
        for ((verdict, reply), peer) in verdicts.into_iter().zip(replies).zip(peers) {
            if let Some(reply) = reply {
                let _ = reply.send(verdict.map_err(|refusal| refusal.error));
            } else if let (
                Some(peer),
                Err(Refusal {
                    offense: Some(offense), ..
                }),
            ) = (peer, verdict)
            {
                // Relaying a transaction no chain state makes valid is the sender's fault.
                self.network.report(peer, offense).await;
            }
        }
    }

    /// Admits `txs` in order (a later one may spend an earlier one); one verdict each. Those
    /// `from_api` are first looked up in the chain, to answer "already in block chain".
    fn admit(&self, txs: Vec<Transaction>, from_api: &[bool]) -> Vec<Result<TxId, Refusal>> {
        let internal = |error: &dyn std::fmt::Display| Refusal {
            error: RpcError::new(codes::INTERNAL_ERROR, error.to_string()),
            offense: None,
        };
        let snapshot = match self.store.snapshot() {
            Ok(snapshot) => snapshot,
            Err(error) => return txs.iter().map(|_| Err(internal(&error))).collect(),
        };
        let mut verdicts: Vec<Option<Result<TxId, Refusal>>> = Vec::with_capacity(txs.len());
        let mut fresh = Vec::with_capacity(txs.len());
        // The API's transactions are looked up in the chain in one read.
        let from_chain: Vec<TxId> = txs
            .iter()
            .zip(from_api)
            .filter(|(_, api)| **api)
            .map(|(tx, _)| tx.txid())
            .collect();
        let mut confirmed = match self.store.tx_locations(&from_chain) {
            Ok(locations) => Ok(locations.into_iter()),
            Err(error) => Err(error),
        };
        for (tx, api) in txs.into_iter().zip(from_api.iter().chain(std::iter::repeat(&false))) {
            let known = match (&mut confirmed, *api) {
                (_, false) => Ok(false),
                (Ok(locations), true) => Ok(locations.next().flatten().is_some()),
                (Err(error), true) => Err(error.to_string()),
            };
            match known {
                Ok(false) => {
                    verdicts.push(None);
                    fresh.push(tx);
                }
                Ok(true) => verdicts.push(Some(Err(Refusal {
                    error: RpcError::new(codes::VERIFY_ALREADY_IN_CHAIN, "Transaction already in block chain"),
                    offense: None,
                }))),
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
        // The bodies of those admitted now (not those already waiting), read under the lock
        // that admitted them: the block that takes them may come before the notifier reads.
        if self.notifier.wants_admitted() {
            let admitted: Vec<_> = results
                .iter()
                .filter_map(|r| r.as_ref().ok().and_then(|txid| mempool.get(txid)))
                .collect();
            self.notifier.admitted(admitted);
        }
        drop(mempool);
        let mut judged = results.into_iter();
        verdicts
            .into_iter()
            .map(|verdict| {
                verdict.unwrap_or_else(|| match judged.next() {
                    Some(Ok(txid) | Err(MempoolError::AlreadyInPool(txid))) => Ok(txid),
                    Some(Err(error)) => Err(Refusal {
                        offense: relay_offense(&error),
                        error: RpcError::new(codes::VERIFY_REJECTED, format!("{}: {error}", error.code())),
                    }),
                    None => Err(internal(&"admission lost a transaction")),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timecoin_chain::TxError;
    use timecoin_primitives::{Hash256, OutPoint};

    #[test]
    fn a_relayed_forged_signature_costs_points_and_a_missing_input_costs_nothing() {
        assert_eq!(
            relay_offense(&MempoolError::Invalid(TxError::BadSignature)),
            Some(Offense::InvalidTransaction)
        );
        assert_eq!(
            relay_offense(&MempoolError::Invalid(TxError::NoInputs)),
            Some(Offense::InvalidTransaction)
        );
        let missing = OutPoint {
            txid: TxId(Hash256([1; 32])),
            index: 0,
        };
        assert_eq!(
            relay_offense(&MempoolError::Invalid(TxError::MissingInput(missing))),
            None
        );
    }
}
