//! Which submitted transactions are finalized, and when: a watcher follows node 0's chain
//! block by block and matches each block's transactions with their submission times.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use serde_json::{Value, json};
use timecoin_primitives::{Encode, Transaction, TxId};
use timecoin_rpc::{Client, ClientError};

use super::nodes::Nodes;

/// How often the watcher asks for the chain's height.
const POLL: Duration = Duration::from_millis(5);

/// A block as the watcher saw it.
#[derive(Debug, Clone)]
pub(crate) struct BlockSeen {
    pub(crate) height: u64,
    /// Seconds from the start of the payments (negative before).
    pub(crate) at: f64,
    pub(crate) time_ms: u64,
    /// Transactions besides the reward.
    pub(crate) transactions: u64,
}

/// What the payments came to.
pub(crate) struct Outcome {
    /// Seconds from the start at which each payment was submitted.
    pub(crate) submitted: Vec<f64>,
    /// For each finalized payment: seconds from the start, and its latency in milliseconds.
    pub(crate) finalized: Vec<(f64, f64)>,
    /// Submitted transactions not finalized.
    pub(crate) pending: usize,
    pub(crate) blocks: Vec<BlockSeen>,
}

/// What submitting the payments came to.
pub(crate) struct Submission {
    pub(crate) accepted: usize,
    pub(crate) rejected: usize,
    /// The first few distinct reasons for rejection.
    pub(crate) reasons: Vec<String>,
    pub(crate) seconds: f64,
}

struct Waiting {
    since: Instant,
    payment: bool,
}

struct Inner {
    /// When payments started.
    start: Instant,
    waiting: HashMap<TxId, Waiting>,
    submitted: Vec<Instant>,
    finalized: Vec<(Instant, Duration)>,
    blocks: Vec<(Instant, BlockSeen)>,
    height: u64,
    error: Option<String>,
}

/// Submission times and the blocks that finalized them.
pub(crate) struct Tracker {
    client: Client,
    inner: Mutex<Inner>,
}

/// How long a batch's payments refused by a full mempool are offered again.
const MAX_RETRYING: Duration = Duration::from_secs(60);

/// At most this many distinct rejection reasons are kept.
const MAX_REASONS: usize = 8;

impl Tracker {
    /// A tracker that follows the chain of the node `client` talks to.
    pub(crate) fn new(client: Client) -> Tracker {
        Tracker {
            client,
            inner: Mutex::new(Inner {
                start: Instant::now(),
                waiting: HashMap::new(),
                submitted: Vec::new(),
                finalized: Vec::new(),
                blocks: Vec::new(),
                height: 0,
                error: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Follows the chain until `stop` is set.
    pub(crate) fn watch(&self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            if let Err(error) = self.catch_up_with_chain() {
                self.lock().error = Some(error.to_string());
                std::thread::sleep(Duration::from_millis(50));
            }
            std::thread::sleep(POLL);
        }
    }

    fn catch_up_with_chain(&self) -> Result<()> {
        let tip = self
            .client
            .call("getblockcount", json!([]))?
            .as_u64()
            .ok_or_else(|| anyhow!("getblockcount answered no number"))?;
        let mut height = self.lock().height;
        while height < tip {
            height += 1;
            let hash = self.client.call("getblockhash", json!([height]))?;
            let block = self.client.call("getblock", json!([hash, 1]))?;
            let seen = Instant::now();
            self.record(height, &block, seen)?;
        }
        Ok(())
    }

    fn record(&self, height: u64, block: &Value, seen: Instant) -> Result<()> {
        let txids: Vec<TxId> = block
            .get("tx")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("block {height} has no transaction list"))?
            .iter()
            .filter_map(|t| t.as_str().and_then(|t| t.parse().ok()))
            .collect();
        let time_ms = block.get("time_ms").and_then(Value::as_u64).unwrap_or(0);
        let mut inner = self.lock();
        for txid in &txids {
            if let Some(waiting) = inner.waiting.remove(txid)
                && waiting.payment
            {
                inner
                    .finalized
                    .push((seen, seen.saturating_duration_since(waiting.since)));
            }
        }
        let at = signed_seconds(inner.start, seen);
        inner.blocks.push((
            seen,
            BlockSeen {
                height,
                at,
                time_ms,
                transactions: txids.len().saturating_sub(1) as u64,
            },
        ));
        inner.height = height;
        Ok(())
    }

    /// Notes that `txids` are about to be submitted.
    pub(crate) fn expect(&self, txids: &[TxId], payment: bool) {
        let now = Instant::now();
        let mut inner = self.lock();
        for txid in txids {
            inner.waiting.insert(*txid, Waiting { since: now, payment });
            if payment {
                inner.submitted.push(now);
            }
        }
    }

    fn forget(&self, txid: &TxId) {
        self.lock().waiting.remove(txid);
    }

    /// Waits until every expected transaction is finalized.
    pub(crate) fn wait_finalized(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let (waiting, error) = {
                let inner = self.lock();
                (inner.waiting.len(), inner.error.clone())
            };
            if waiting == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                let why = error.map(|e| format!(" (last watcher error: {e})")).unwrap_or_default();
                bail!(
                    "{waiting} transactions not finalized within {} s{why}",
                    timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The height the watcher has seen.
    pub(crate) fn height(&self) -> u64 {
        self.lock().height
    }

    /// Transactions besides rewards in blocks up to `height`.
    pub(crate) fn transactions_up_to(&self, height: u64) -> u64 {
        self.lock()
            .blocks
            .iter()
            .filter(|(_, b)| b.height <= height)
            .map(|(_, b)| b.transactions)
            .sum()
    }

    /// Submits `payments` to every node in turn, `batch` a request, paced to `rate` per
    /// second (0: each node's next batch as soon as the last is answered, and payments a full
    /// mempool refused are offered again every 20 ms, for up to a minute).
    pub(crate) fn submit_payments(
        &self,
        nodes: &Nodes,
        payments: &[Transaction],
        rate: u64,
        batch: usize,
    ) -> Result<Submission> {
        let clients = (0..nodes.len()).map(|i| nodes.client(i)).collect::<Result<Vec<_>>>()?;
        let batches: Vec<&[Transaction]> = payments.chunks(batch).collect();
        let start = Instant::now();
        self.lock().start = start;
        let interval = (rate > 0).then(|| Duration::from_secs_f64(batch as f64 / rate as f64));
        let results: Vec<Result<(usize, usize, Vec<String>)>> = std::thread::scope(|scope| {
            let workers: Vec<_> = clients
                .iter()
                .enumerate()
                .map(|(k, client)| {
                    let (batches, count) = (&batches, clients.len());
                    scope.spawn(move || {
                        let mut totals = (0, 0, Vec::new());
                        for (b, chunk) in batches.iter().enumerate().skip(k).step_by(count) {
                            if let Some(interval) = interval {
                                let due = start + interval.mul_f64(b as f64);
                                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                            }
                            let (accepted, rejected) = self.offer(client, chunk, interval.is_none(), &mut totals.2)?;
                            totals.0 += accepted;
                            totals.1 += rejected;
                        }
                        Ok(totals)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|_| Err(anyhow!("a submitting thread panicked")))
                })
                .collect()
        });
        let seconds = start.elapsed().as_secs_f64();
        let mut submission = Submission {
            accepted: 0,
            rejected: 0,
            reasons: Vec::new(),
            seconds,
        };
        for result in results {
            let (accepted, rejected, reasons) = result?;
            submission.accepted += accepted;
            submission.rejected += rejected;
            for reason in reasons {
                if submission.reasons.len() < MAX_REASONS && !submission.reasons.contains(&reason) {
                    submission.reasons.push(reason);
                }
            }
        }
        Ok(submission)
    }

    /// Submits one batch; returns how many were accepted and refused.
    fn offer(
        &self,
        client: &Client,
        chunk: &[Transaction],
        retry_when_full: bool,
        reasons: &mut Vec<String>,
    ) -> Result<(usize, usize)> {
        let txids: Vec<TxId> = chunk.iter().map(Transaction::txid).collect();
        self.expect(&txids, true);
        let mut pending: Vec<(TxId, String)> = chunk
            .iter()
            .zip(&txids)
            .map(|(tx, txid)| (*txid, hex::encode(tx.to_bytes())))
            .collect();
        let (mut accepted, mut rejected) = (0, 0);
        let mut attempts = 0;
        let give_up = Instant::now() + MAX_RETRYING;
        while !pending.is_empty() {
            attempts += 1;
            let calls: Vec<(&str, Value)> = pending
                .iter()
                .map(|(_, raw)| ("sendrawtransaction", json!([raw])))
                .collect();
            let outcomes = match client.call_batch(&calls) {
                Ok(outcomes) => outcomes,
                Err(error) if attempts < 5 => {
                    if reasons.len() < MAX_REASONS {
                        reasons.push(format!("batch failed, retried: {error}"));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            let mut again = Vec::new();
            for ((txid, raw), outcome) in pending.into_iter().zip(outcomes) {
                match outcome {
                    Ok(_) => accepted += 1,
                    // A full pool drains as blocks come. (A minimum fee a full pool raised does
                    // not pass soon: it decays over hours, so such a refusal is final here.)
                    Err(ClientError::Rpc { message, .. })
                        if retry_when_full && message.starts_with("mempool-full") && Instant::now() < give_up =>
                    {
                        again.push((txid, raw));
                    }
                    Err(error) => {
                        rejected += 1;
                        self.forget(&txid);
                        if reasons.len() < MAX_REASONS {
                            reasons.push(error.to_string());
                        }
                    }
                }
            }
            if !again.is_empty() {
                std::thread::sleep(Duration::from_millis(20));
            }
            pending = again;
        }
        Ok((accepted, rejected))
    }

    /// The payments' outcome so far.
    pub(crate) fn result(&self) -> Outcome {
        let inner = self.lock();
        let start = inner.start;
        Outcome {
            submitted: inner.submitted.iter().map(|at| signed_seconds(start, *at)).collect(),
            finalized: inner
                .finalized
                .iter()
                .map(|(at, latency)| (signed_seconds(start, *at), latency.as_secs_f64() * 1_000.0))
                .collect(),
            pending: inner.waiting.len(),
            blocks: inner
                .blocks
                .iter()
                .map(|(seen, block)| BlockSeen {
                    at: signed_seconds(start, *seen),
                    ..block.clone()
                })
                .collect(),
        }
    }
}

/// Seconds from `start` to `at`, negative when `at` is earlier.
fn signed_seconds(start: Instant, at: Instant) -> f64 {
    match at.checked_duration_since(start) {
        Some(after) => after.as_secs_f64(),
        None => -start.saturating_duration_since(at).as_secs_f64(),
    }
}
