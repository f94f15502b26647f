//! The peer service: listens, dials, admits peers through the handshake, and runs one
//! reading and one writing task per peer, all owned by a [`TaskTracker`] and stopped by a
//! [`CancellationToken`].
//!
//! One manager task owns the peer table, so no lock is shared between tasks. Limits are
//! enforced where they bite: a semaphore bounds inbound and outbound connections (handshakes
//! in flight included), each peer's outgoing queue is bounded (a peer that cannot keep up is
//! dropped), every frame is size-checked before it is read, every message is rate-limited
//! by class, and misbehaviour leads to a timed ban of the peer's identity.
//!
//! Its parts: `handle` (the commands the node sends), `accept` (incoming connections and the
//! handshake every connection passes), `connection` (each peer's reading and writing tasks)
//! and `manager` (the task that owns the peer table: admission and eviction, bans, dialling
//! and peer exchange).

mod accept;
mod connection;
mod handle;
mod manager;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use timecoin_primitives::{PublicKey, SecretKey};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use handle::NetworkHandle;

use crate::addrbook::AddressBook;
use crate::handshake::{HandshakeError, Hello};
use crate::limits::{Offense, RateConfig};
use crate::transport::{SecureReader, SecureWriter};
use crate::wire::Message;

use accept::accept_loop;
use manager::Manager;

/// The service's settings.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Where to accept connections.
    pub listen: SocketAddr,
    /// Peers to keep dialling until connected.
    pub bootstrap: Vec<SocketAddr>,
    /// Most inbound connections (handshakes included).
    pub max_inbound: usize,
    /// Most outbound connections (handshakes included).
    pub max_outbound: usize,
    /// Largest frame accepted or sent.
    pub max_frame: usize,
    /// Time allowed for the whole handshake.
    pub handshake_timeout: Duration,
    /// How often unconnected bootstrap peers are dialled again.
    pub dial_interval: Duration,
    /// How often a ping is sent; a peer silent for three intervals is dropped.
    pub ping_interval: Duration,
    /// Per-peer message rates.
    pub rates: RateConfig,
    /// How long a misbehaving peer stays banned.
    pub ban_duration: Duration,
    /// Bytes queued for one peer (written or not yet) before it counts as too slow and is
    /// dropped; at least one frame always fits.
    pub peer_queue_bytes: usize,
    /// Where the address book is kept between runs (`None`: only in memory).
    pub address_book: Option<PathBuf>,
    /// Most addresses the book holds.
    pub max_addresses: usize,
    /// A masternode keeps links to at most this many other masternodes, apart from the
    /// ordinary connection limits: to all of them when the set has at most this many others,
    /// otherwise to its row and column of the [`crate::overlay::Overlay`] grid.
    pub masternode_peers: usize,
    /// Most inbound connections from one IP address, and most handshakes in flight from one
    /// (a quarter of this, at least one): one address cannot take every inbound slot.
    pub max_inbound_per_ip: usize,
}

impl NetworkConfig {
    /// Defaults around a listening address: 40 inbound and 10 outbound connections (50 in
    /// all), frames up to 2.1 MB.
    pub fn new(listen: SocketAddr) -> NetworkConfig {
        NetworkConfig {
            listen,
            bootstrap: Vec::new(),
            max_inbound: 40,
            max_outbound: 10,
            max_frame: 2_100_000,
            handshake_timeout: Duration::from_secs(10),
            dial_interval: Duration::from_secs(2),
            ping_interval: Duration::from_secs(15),
            rates: RateConfig::default(),
            ban_duration: Duration::from_secs(3_600),
            peer_queue_bytes: DEFAULT_PEER_QUEUE_BYTES,
            address_book: None,
            max_addresses: 2_000,
            masternode_peers: 32,
            max_inbound_per_ip: 8,
        }
    }
}

/// What the service reports to the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkEvent {
    /// A peer passed the handshake.
    Connected {
        /// Its identity.
        peer: PublicKey,
        /// Its hello.
        hello: Hello,
        /// Its socket address.
        address: SocketAddr,
        /// Whether we dialled it.
        outbound: bool,
    },
    /// A peer's connection ended.
    Disconnected {
        /// Its identity.
        peer: PublicKey,
        /// Why.
        reason: String,
    },
    /// A connection failed the handshake (another network or genesis, garbage, a bad
    /// identity, a time-out). A dialled address refused for a reason that deserves a ban is
    /// not dialled again for the ban duration.
    Refused {
        /// The address.
        address: SocketAddr,
        /// Why.
        reason: String,
        /// Whether the peer was banned for it (another network or genesis, garbage, a bad
        /// identity proof), as opposed to a network failure.
        banned: bool,
    },
    /// A message from a peer (pings are answered by the service itself).
    Message {
        /// The sender.
        peer: PublicKey,
        /// The message.
        message: Message,
    },
}

/// A connected peer, as [`NetworkHandle::peers`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its identity.
    pub peer: PublicKey,
    /// Its address.
    pub address: SocketAddr,
    /// Whether we dialled it.
    pub outbound: bool,
    /// Its hello.
    pub hello: Hello,
}

type Reader = SecureReader<ReadHalf<TcpStream>>;
type Writer = SecureWriter<WriteHalf<TcpStream>>;

/// A connection that passed the handshake.
struct Admission {
    peer: PublicKey,
    hello: Hello,
    address: SocketAddr,
    outbound: bool,
    reader: Reader,
    writer: Writer,
    permit: OwnedSemaphorePermit,
}

enum ManagerInput {
    Admitted(Box<Admission>),
    Closed {
        peer: PublicKey,
        connection: u64,
        reason: String,
        ban: bool,
    },
    Refused {
        address: SocketAddr,
        outbound: bool,
        error: RefusalCause,
    },
    /// A peer-exchange message, answered by the service itself.
    Control(PublicKey, Message),
    Broadcast(Arc<Vec<u8>>),
    Send(PublicKey, Arc<Vec<u8>>),
    Disconnect {
        peer: PublicKey,
        ban: Option<Duration>,
    },
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    SetMasternodes(HashSet<PublicKey>),
    AddAddress(SocketAddr),
    Report(PublicKey, Offense),
    Ban(BanTarget, Duration),
    Unban(BanTarget, oneshot::Sender<bool>),
    Bans(oneshot::Sender<Vec<(BanTarget, Duration)>>),
}

/// What an operator's ban applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanTarget {
    /// A node identity, wherever it connects from.
    Identity(PublicKey),
    /// An address: not dialled, and a peer connected from or listening at it is dropped.
    Address(SocketAddr),
}

impl std::fmt::Display for BanTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BanTarget::Identity(key) => write!(f, "{key}"),
            BanTarget::Address(address) => write!(f, "{address}"),
        }
    }
}

/// Why a connection did not get through.
enum RefusalCause {
    Handshake(HandshakeError),
    Dial(std::io::Error),
}

struct Shared {
    config: NetworkConfig,
    identity: SecretKey,
    hello: watch::Receiver<Hello>,
    manager: mpsc::Sender<ManagerInput>,
    events: mpsc::Sender<NetworkEvent>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    inbound: Arc<Semaphore>,
    outbound: Arc<Semaphore>,
    /// Dials to masternodes this node links to (a budget apart from `outbound`).
    masternode_dials: Arc<Semaphore>,
    /// Inbound handshakes in flight, by address.
    handshakes: Mutex<HashMap<IpAddr, usize>>,
}

/// Bytes queued for one peer by default: a few of the largest frames (a block with its
/// certificate, a proposal), so a peer that stops reading pins at most this much.
pub const DEFAULT_PEER_QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// Handshakes allowed in flight beyond the connection limits, so that a full node can still
/// admit a masternode (or a better peer) by evicting another.
const HANDSHAKE_SLACK: usize = 8;

/// Starts the service: binds the listener and spawns its tasks on `tracker`; cancelling
/// `cancel` stops them all (the address book is saved first). `hello` is the introduction
/// sent to each new peer (keep it up to date with the best block). Events arrive on the
/// returned receiver.
pub async fn start(
    config: NetworkConfig,
    identity: SecretKey,
    hello: watch::Receiver<Hello>,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> std::io::Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>)> {
    let listener = TcpListener::bind(config.listen).await?;
    let local_address = listener.local_addr()?;
    let book = match config.address_book.clone() {
        Some(path) => {
            let capacity = config.max_addresses;
            let (book, _skipped) = tokio::task::spawn_blocking(move || AddressBook::load(&path, capacity))
                .await
                .map_err(std::io::Error::other)??;
            book
        }
        None => AddressBook::new(config.max_addresses),
    };
    let (manager_tx, manager_rx) = mpsc::channel(1_024);
    let (events_tx, events_rx) = mpsc::channel(16_384);
    let shared = Arc::new(Shared {
        // Inbound overlay links hold a permit too, apart from the ordinary inbound share.
        inbound: Arc::new(Semaphore::new(
            config.max_inbound + config.masternode_peers + HANDSHAKE_SLACK,
        )),
        outbound: Arc::new(Semaphore::new(config.max_outbound + HANDSHAKE_SLACK)),
        masternode_dials: Arc::new(Semaphore::new(config.masternode_peers + HANDSHAKE_SLACK)),
        handshakes: Mutex::new(HashMap::new()),
        config,
        identity,
        hello,
        manager: manager_tx.clone(),
        events: events_tx,
        cancel,
        tracker: tracker.clone(),
    });
    tracker.spawn(accept_loop(Arc::clone(&shared), listener));
    let manager = Manager::new(Arc::clone(&shared), book);
    tracker.spawn(manager.run(manager_rx));
    Ok((
        NetworkHandle {
            manager: manager_tx,
            local_address,
        },
        events_rx,
    ))
}
