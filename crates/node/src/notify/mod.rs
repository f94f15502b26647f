//! Notifications, as Bitcoin Core gives them: `blocknotify` and `walletnotify` commands
//! (`[notify]`), and a ZMQ publisher (`[zmq]`) with Bitcoin Core's topics and framing; and the
//! feed of finalized blocks behind the API's WebSocket subscriptions.
//!
//! The node never waits for them. The host and the admission task hand each finalized block
//! and each batch of newly admitted transactions to [`Notifier`], which queues it for one
//! task that runs the commands and publishes: at most [`QUEUE`] events holding at most
//! [`QUEUE_BYTES`]; past that an event is dropped and counted. A command runs in `sh -c`,
//! at most [`COMMANDS`] at a time (the next waits for one to end, and the queue fills
//! behind it); a ZMQ subscriber that reads too slowly loses messages, as a ZMQ PUB socket
//! drops them, and one that is gone is forgotten.

mod command;
mod guard;
mod zmq;

use std::sync::{Arc, Mutex};

use serde::Deserialize;
use timecoin_primitives::{Block, Encode, Transaction, TxId};
use tokio::sync::{Semaphore, broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

use crate::wallet::NodeWallet;
pub(crate) use zmq::ZmqSection;

/// Events waiting for the notification task at most.
pub(crate) const QUEUE: usize = 4_096;
/// Bytes of blocks and transactions the waiting events hold at most (a full block is 2 MB).
pub(crate) const QUEUE_BYTES: usize = 64 * 1024 * 1024;
/// Commands running at once at most.
pub(crate) const COMMANDS: usize = 16;

/// `[notify]`: commands run on events, with Bitcoin Core's placeholders.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct NotifySection {
    /// Run for every finalized block; `%s` is its hash.
    pub(crate) blocknotify: Option<String>,
    /// Run for every wallet transaction when it is admitted to the mempool and again when it
    /// is finalized: `%s` its txid, `%w` the wallet's name, `%b` its block's hash
    /// (`unconfirmed` in the mempool), `%h` its block's height (`-1` in the mempool).
    pub(crate) walletnotify: Option<String>,
}

/// What happened, for the notification task.
enum Event {
    /// A block was finalized; the wallet's transactions in it.
    Block { block: Arc<Block>, wallet: Vec<TxId> },
    /// Transactions were admitted to the mempool.
    Admitted(Vec<Arc<Transaction>>),
}

impl Event {
    /// The bytes of blocks and transactions it keeps alive.
    fn bytes(&self) -> usize {
        match self {
            Event::Block { block, .. } => block.encoded_len(),
            Event::Admitted(txs) => txs.iter().map(|tx| tx.encoded_len()).sum(),
        }
    }
}

/// Finalized blocks for the API's WebSocket subscriptions: a broadcast channel that keeps the
/// last [`timecoin_rpc::FEED`] blocks while anyone subscribes (a receiver further behind is
/// told it lagged), and nothing while no one does.
#[derive(Clone)]
struct Feed(broadcast::Sender<Arc<timecoin_rpc::FeedBlock>>);

impl Default for Feed {
    fn default() -> Feed {
        Feed(broadcast::channel(timecoin_rpc::FEED).0)
    }
}

/// Where events go: cheap to clone; does nothing when no notification is configured (but
/// still feeds subscriptions).
#[derive(Clone, Default)]
pub(crate) struct Notifier {
    /// Finalized blocks for subscriptions.
    feed: Feed,
    sender: Option<mpsc::Sender<Event>>,
    /// Whether admitted transactions matter (a ZMQ transaction topic or `walletnotify`).
    wants_admitted: bool,
    /// The ZMQ notifiers, for `getzmqnotifications`: (type, address).
    published: Arc<Vec<(String, String)>>,
    /// Bytes the waiting events hold (see [`QUEUE_BYTES`]).
    queued: Arc<std::sync::atomic::AtomicUsize>,
}

/// What the notification task reads besides events.
pub(crate) struct Sources {
    pub(crate) wallet: Option<Arc<Mutex<NodeWallet>>>,
    /// The wallet's name for `%w`.
    pub(crate) wallet_name: String,
}

impl Notifier {
    /// Binds the ZMQ sockets and starts the notification task on `tracker`, stopped by
    /// `cancel`; a notifier that does nothing when nothing is configured.
    pub(crate) async fn start(
        notify: &NotifySection,
        zmq: &ZmqSection,
        sources: Sources,
        cancel: CancellationToken,
        tracker: &TaskTracker,
    ) -> anyhow::Result<Notifier> {
        let publisher = zmq::Publisher::bind(zmq, &cancel, tracker).await?;
        if notify.blocknotify.is_none() && notify.walletnotify.is_none() && publisher.is_empty() {
            return Ok(Notifier::default());
        }
        let (sender, events) = mpsc::channel(QUEUE);
        let wants_admitted = notify.walletnotify.is_some() || publisher.wants_transactions();
        let published = Arc::new(publisher.notifications());
        let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let task = Task {
            queued: Arc::clone(&queued),
            notify: notify.clone(),
            sources,
            publisher,
            commands: Arc::new(Semaphore::new(COMMANDS)),
            cancel: cancel.clone(),
            tracker: tracker.clone(),
        };
        tracker.spawn(task.run(events));
        Ok(Notifier {
            feed: Feed::default(),
            sender: Some(sender),
            wants_admitted,
            published,
            queued,
        })
    }

    /// The ZMQ notifiers: (type, address), as `getzmqnotifications` lists them.
    pub(crate) fn zmq_notifications(&self) -> Vec<(String, String)> {
        self.published.as_ref().clone()
    }

    /// A block was finalized; `wallet` are the wallet's transactions in it.
    pub(crate) fn block(&self, block: Arc<Block>, wallet: Vec<TxId>) {
        if self.feed.0.receiver_count() > 0 {
            // An error only says the last subscriber just left.
            let _ = self
                .feed
                .0
                .send(Arc::new(timecoin_rpc::FeedBlock::new(Arc::clone(&block))));
        }
        self.send(Event::Block { block, wallet });
    }

    /// Finalized blocks from now on, for a WebSocket subscription.
    pub(crate) fn blocks(&self) -> broadcast::Receiver<Arc<timecoin_rpc::FeedBlock>> {
        self.feed.0.subscribe()
    }

    /// Whether admitted transactions are notified (a ZMQ transaction topic or
    /// `walletnotify`): if not, the admission task need not gather them.
    pub(crate) fn wants_admitted(&self) -> bool {
        self.wants_admitted
    }

    /// Transactions were admitted to the mempool.
    pub(crate) fn admitted(&self, txs: Vec<Arc<Transaction>>) {
        if self.wants_admitted && !txs.is_empty() {
            self.send(Event::Admitted(txs));
        }
    }

    fn send(&self, event: Event) {
        use std::sync::atomic::Ordering;
        let Some(sender) = &self.sender else {
            return;
        };
        let bytes = event.bytes();
        let before = self.queued.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) > QUEUE_BYTES || sender.try_send(event).is_err() {
            self.queued.fetch_sub(bytes, Ordering::Relaxed);
            metrics::counter!("timecoin_notifications_dropped_total").increment(1);
            warn!(
                "a notification was dropped: {QUEUE} events or {QUEUE_BYTES} bytes are waiting (a slow blocknotify or walletnotify command?)"
            );
        }
    }
}

/// The notification task.
struct Task {
    /// Bytes the waiting events hold, taken off as each is handled.
    queued: Arc<std::sync::atomic::AtomicUsize>,
    notify: NotifySection,
    sources: Sources,
    publisher: zmq::Publisher,
    commands: Arc<Semaphore>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Task {
    async fn run(mut self, mut events: mpsc::Receiver<Event>) {
        loop {
            let event = tokio::select! {
                () = self.cancel.cancelled() => return,
                event = events.recv() => match event {
                    Some(event) => event,
                    None => return,
                },
            };
            let bytes = event.bytes();
            match event {
                Event::Block { block, wallet } => self.block(&block, &wallet).await,
                Event::Admitted(txs) => self.admitted(&txs).await,
            }
            self.queued.fetch_sub(bytes, std::sync::atomic::Ordering::Relaxed);
        }
    }

    async fn block(&mut self, block: &Block, wallet: &[TxId]) {
        let hash = block.hash();
        let height = block.header.height;
        if let Some(template) = &self.notify.blocknotify {
            self.run_command(command::block(template, &hash.to_string())).await;
        }
        // Bitcoin Core publishes each transaction of a connected block, then the block.
        for tx in &block.transactions {
            self.publisher.transaction(&tx.txid(), || tx.to_bytes()).await;
        }
        self.publisher.block(&hash, || block.to_bytes()).await;
        if let Some(template) = &self.notify.walletnotify {
            for txid in wallet {
                let line = command::wallet(
                    template,
                    &txid.to_string(),
                    &self.sources.wallet_name,
                    Some((&hash.to_string(), height)),
                );
                self.run_command(line).await;
            }
        }
    }

    async fn admitted(&mut self, txs: &[Arc<Transaction>]) {
        // Asked under the wallet's lock, published after: a slow subscriber or command never
        // holds it.
        let ours: Vec<bool> = match (&self.notify.walletnotify, &self.sources.wallet) {
            (Some(_), Some(wallet)) => match wallet.lock() {
                Ok(wallet) => txs.iter().map(|tx| wallet.touches(tx)).collect(),
                Err(_) => vec![false; txs.len()],
            },
            _ => vec![false; txs.len()],
        };
        for (tx, ours) in txs.iter().zip(ours) {
            let txid = tx.txid();
            self.publisher.transaction(&txid, || tx.to_bytes()).await;
            self.publisher.admitted(&txid).await;
            if let (true, Some(template)) = (ours, &self.notify.walletnotify) {
                let line = command::wallet(template, &txid.to_string(), &self.sources.wallet_name, None);
                self.run_command(line).await;
            }
        }
    }

    /// Runs `line` in `sh -c` once fewer than [`COMMANDS`] run, without waiting for it.
    async fn run_command(&self, line: String) {
        let permit = tokio::select! {
            () = self.cancel.cancelled() => return,
            permit = Arc::clone(&self.commands).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let cancel = self.cancel.clone();
        self.tracker.spawn(async move {
            command::run(&line, &cancel).await;
            drop(permit);
        });
    }
}
