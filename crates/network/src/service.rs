//! The peer service: listens, dials, admits peers through the handshake, and runs one
//! reading and one writing task per peer, all owned by a [`TaskTracker`] and stopped by a
//! [`CancellationToken`].
//!
//! One manager task owns the peer table, so no lock is shared between tasks. Limits are
//! enforced where they bite: a semaphore bounds inbound and outbound connections (handshakes
//! in flight included), each peer's outgoing queue is bounded (a peer that cannot keep up is
//! dropped), every frame is size-checked before it is read, every message is rate-limited
//! by class, and misbehaviour leads to a timed ban of the peer's identity.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use timecoin_primitives::{Decode, Encode, PublicKey, SecretKey};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::addrbook::{AddressBook, learnable_from};
use crate::handshake::{HandshakeError, Hello, connect, keeps_outbound};
use crate::limits::{BanList, Misbehaviour, Offense, PeerLimits, RateConfig};
use crate::queue::{QueueReceiver, SendQueue, send_queue};
use crate::transport::{SecureReader, SecureWriter};
use crate::wire::{MAX_ADDRESSES, Message};

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
    /// A masternode keeps connections to this many other masternodes (all of them when the
    /// set is smaller), evicting ordinary peers to make room.
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

/// Commands to a running service.
#[derive(Debug, Clone)]
pub struct NetworkHandle {
    manager: mpsc::Sender<ManagerInput>,
    local_address: SocketAddr,
}

impl NetworkHandle {
    /// The address the service listens on.
    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }

    /// Sends `message` to every connected peer.
    pub async fn broadcast(&self, message: &Message) {
        let _ = self
            .manager
            .send(ManagerInput::Broadcast(Arc::new(message.to_bytes())))
            .await;
    }

    /// Sends `message` to one peer (nothing happens if it is not connected).
    pub async fn send(&self, peer: PublicKey, message: &Message) {
        let _ = self
            .manager
            .send(ManagerInput::Send(peer, Arc::new(message.to_bytes())))
            .await;
    }

    /// Drops a peer, banning it for `ban` if given.
    pub async fn disconnect(&self, peer: PublicKey, ban: Option<Duration>) {
        let _ = self.manager.send(ManagerInput::Disconnect { peer, ban }).await;
    }

    /// The connected peers.
    pub async fn peers(&self) -> Vec<PeerInfo> {
        let (reply, answer) = oneshot::channel();
        if self.manager.send(ManagerInput::Peers(reply)).await.is_err() {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }

    /// Tells the service which identities are masternodes: a masternode keeps connections to
    /// them, and no masternode is evicted to make room for another peer.
    pub async fn set_masternodes(&self, masternodes: impl IntoIterator<Item = PublicKey>) {
        let set = masternodes.into_iter().collect();
        let _ = self.manager.send(ManagerInput::SetMasternodes(set)).await;
    }

    /// Counts an offense the node found in what `peer` sent (an invalid transaction, say)
    /// against its misbehaviour score; at [`crate::BAN_THRESHOLD`] it is dropped and banned.
    pub async fn report(&self, peer: PublicKey, offense: Offense) {
        let _ = self.manager.send(ManagerInput::Report(peer, offense)).await;
    }

    /// Bans `target` for `duration`, dropping matching peers.
    pub async fn ban(&self, target: BanTarget, duration: Duration) {
        let _ = self.manager.send(ManagerInput::Ban(target, duration)).await;
    }

    /// Lifts a ban; whether there was one.
    pub async fn unban(&self, target: BanTarget) -> bool {
        let (reply, answer) = oneshot::channel();
        if self.manager.send(ManagerInput::Unban(target, reply)).await.is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }

    /// The bans in force, with the time left (identities banned for misbehaviour included).
    pub async fn bans(&self) -> Vec<(BanTarget, Duration)> {
        let (reply, answer) = oneshot::channel();
        if self.manager.send(ManagerInput::Bans(reply)).await.is_err() {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }

    /// Adds an address to the address book; it is dialled when an outbound slot is free.
    pub async fn add_address(&self, address: SocketAddr) {
        let _ = self.manager.send(ManagerInput::AddAddress(address)).await;
    }
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
        inbound: Arc::new(Semaphore::new(config.max_inbound + HANDSHAKE_SLACK)),
        outbound: Arc::new(Semaphore::new(config.max_outbound + HANDSHAKE_SLACK)),
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

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            () = shared.cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, address)) = accepted else {
            continue;
        };
        // Over the inbound limit (and its handshake slack), or over one address's share of
        // the handshakes, the connection is closed at once.
        let Some(handshake) = HandshakeSlot::take(&shared, address.ip()) else {
            continue;
        };
        let Ok(permit) = Arc::clone(&shared.inbound).try_acquire_owned() else {
            continue;
        };
        let task = Arc::clone(&shared);
        shared.tracker.spawn(async move {
            let _handshake = handshake;
            admit(task, stream, address, false, permit).await
        });
    }
}

/// One inbound handshake in flight from an address, given back when dropped.
struct HandshakeSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl HandshakeSlot {
    fn take(shared: &Arc<Shared>, ip: IpAddr) -> Option<HandshakeSlot> {
        let limit = (shared.config.max_inbound_per_ip / 4).max(1);
        let mut handshakes = shared.handshakes.lock().ok()?;
        let count = handshakes.entry(ip).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(HandshakeSlot {
            shared: Arc::clone(shared),
            ip,
        })
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        if let Ok(mut handshakes) = self.shared.handshakes.lock()
            && let Some(count) = handshakes.get_mut(&self.ip)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                handshakes.remove(&self.ip);
            }
        }
    }
}

async fn admit(
    shared: Arc<Shared>,
    stream: TcpStream,
    address: SocketAddr,
    outbound: bool,
    permit: OwnedSemaphorePermit,
) {
    let hello = *shared.hello.borrow();
    let result = tokio::select! {
        () = shared.cancel.cancelled() => return,
        result = connect(
            stream,
            &shared.identity,
            outbound,
            &hello,
            shared.config.max_frame,
            shared.config.handshake_timeout,
        ) => result,
    };
    let input = match result {
        Ok((secure, theirs)) => {
            let peer = secure.peer();
            let (reader, writer) = secure.into_split();
            ManagerInput::Admitted(Box::new(Admission {
                peer,
                hello: theirs,
                address,
                outbound,
                reader,
                writer,
                permit,
            }))
        }
        Err(error) => ManagerInput::Refused {
            address,
            outbound,
            error: RefusalCause::Handshake(error),
        },
    };
    let _ = shared.manager.send(input).await;
}

struct Slot {
    connection: u64,
    info: PeerInfo,
    queue: SendQueue,
    cancel: CancellationToken,
    /// Its misbehaviour score, kept by its reading task.
    score: Arc<Misbehaviour>,
    /// Requests (`GetPeers`, `GetMasternodes`) sent to it and not yet answered.
    asked: u8,
}

const ASKED_PEERS: u8 = 1;
const ASKED_MASTERNODES: u8 = 2;

/// The one task that owns the peer table and the address book.
struct Manager {
    shared: Arc<Shared>,
    peers: HashMap<PublicKey, Slot>,
    bans: BanList,
    book: AddressBook,
    /// Addresses being dialled.
    dialing: HashSet<SocketAddr>,
    /// Addresses refused for a reason that deserves a ban, until when.
    banned_addresses: BanList<SocketAddr>,
    /// Addresses that turned out to be this node.
    own: HashSet<SocketAddr>,
    masternodes: HashSet<PublicKey>,
    next_connection: u64,
    /// When peers were last asked where masternodes are.
    masternode_query: Option<Instant>,
}

impl Manager {
    fn new(shared: Arc<Shared>, book: AddressBook) -> Manager {
        Manager {
            shared,
            peers: HashMap::new(),
            bans: BanList::new(10_000),
            book,
            dialing: HashSet::new(),
            banned_addresses: BanList::new(10_000),
            own: HashSet::new(),
            masternodes: HashSet::new(),
            next_connection: 0,
            masternode_query: None,
        }
    }

    async fn run(mut self, mut inputs: mpsc::Receiver<ManagerInput>) {
        let mut dial_timer = tokio::time::interval(self.shared.config.dial_interval);
        let mut save_timer = tokio::time::interval(BOOK_SAVE_INTERVAL);
        save_timer.tick().await;
        loop {
            let input = tokio::select! {
                () = self.shared.cancel.cancelled() => break,
                _ = dial_timer.tick() => {
                    let now = Instant::now();
                    self.banned_addresses.prune(now);
                    self.bans.prune(now);
                    self.dial(now);
                    continue;
                }
                _ = save_timer.tick() => {
                    self.save_book().await;
                    continue;
                }
                input = inputs.recv() => match input {
                    Some(input) => input,
                    None => break,
                },
            };
            self.handle(input).await;
        }
        self.save_book().await;
    }

    async fn save_book(&self) {
        let Some(path) = self.shared.config.address_book.clone() else {
            return;
        };
        let book = self.book.clone();
        let _ = tokio::task::spawn_blocking(move || book.save(&path)).await;
    }

    async fn handle(&mut self, input: ManagerInput) {
        match input {
            ManagerInput::Admitted(admission) => self.admitted(*admission).await,
            ManagerInput::Closed {
                peer,
                connection,
                reason,
                ban,
            } => {
                if ban {
                    self.bans.ban(peer, Instant::now(), self.shared.config.ban_duration);
                }
                if self.peers.get(&peer).is_some_and(|slot| slot.connection == connection) {
                    self.drop_peer(peer, reason).await;
                }
            }
            ManagerInput::Refused {
                address,
                outbound,
                error,
            } => self.refused(address, outbound, error).await,
            ManagerInput::Control(peer, message) => self.control(peer, message).await,
            ManagerInput::Broadcast(frame) => {
                let slow: Vec<PublicKey> = self
                    .peers
                    .iter()
                    .filter(|(_, slot)| slot.queue.try_send(Arc::clone(&frame)).is_err())
                    .map(|(peer, _)| *peer)
                    .collect();
                for peer in slow {
                    self.drop_peer(peer, SLOW.to_owned()).await;
                }
            }
            ManagerInput::Send(peer, frame) => {
                if self
                    .peers
                    .get(&peer)
                    .is_some_and(|slot| slot.queue.try_send(frame).is_err())
                {
                    self.drop_peer(peer, SLOW.to_owned()).await;
                }
            }
            ManagerInput::Disconnect { peer, ban } => {
                if let Some(duration) = ban {
                    self.bans.ban(peer, Instant::now(), duration);
                }
                self.drop_peer(peer, "disconnected by the node".to_owned()).await;
            }
            ManagerInput::Peers(reply) => {
                let _ = reply.send(self.peers.values().map(|slot| slot.info.clone()).collect());
            }
            ManagerInput::SetMasternodes(set) => {
                self.masternodes = set;
                self.dial(Instant::now());
            }
            ManagerInput::AddAddress(address) => {
                self.book.add(address);
                self.dial(Instant::now());
            }
            ManagerInput::Ban(target, duration) => {
                let now = Instant::now();
                let dropped: Vec<PublicKey> = match target {
                    BanTarget::Identity(peer) => {
                        self.bans.ban(peer, now, duration);
                        vec![peer]
                    }
                    BanTarget::Address(address) => {
                        self.banned_addresses.ban(address, now, duration);
                        self.book.remove(&address);
                        self.peers
                            .iter()
                            .filter(|(_, slot)| {
                                let listening = SocketAddr::new(slot.info.address.ip(), slot.info.hello.listen_port);
                                slot.info.address == address || listening == address
                            })
                            .map(|(peer, _)| *peer)
                            .collect()
                    }
                };
                for peer in dropped {
                    self.drop_peer(peer, format!("banned by the operator for {duration:?}"))
                        .await;
                }
            }
            ManagerInput::Unban(target, reply) => {
                let now = Instant::now();
                let was = match target {
                    BanTarget::Identity(peer) => self.bans.unban(&peer, now),
                    BanTarget::Address(address) => self.banned_addresses.unban(&address, now),
                };
                let _ = reply.send(was);
            }
            ManagerInput::Bans(reply) => {
                let now = Instant::now();
                let mut all: Vec<(BanTarget, Duration)> = self
                    .bans
                    .entries(now)
                    .into_iter()
                    .map(|(peer, left)| (BanTarget::Identity(peer), left))
                    .collect();
                all.extend(
                    self.banned_addresses
                        .entries(now)
                        .into_iter()
                        .map(|(address, left)| (BanTarget::Address(address), left)),
                );
                let _ = reply.send(all);
            }
            ManagerInput::Report(peer, offense) => {
                let banned = self.peers.get(&peer).is_some_and(|slot| slot.score.record(offense));
                if banned {
                    self.bans.ban(peer, Instant::now(), self.shared.config.ban_duration);
                    self.drop_peer(peer, format!("misbehaved: {offense:?}")).await;
                }
            }
        }
    }

    async fn admitted(&mut self, admission: Admission) {
        let Admission {
            peer,
            hello,
            address,
            outbound,
            reader,
            writer,
            permit,
        } = admission;
        if outbound {
            self.dialing.remove(&address);
        }
        let now = Instant::now();
        let listening = SocketAddr::new(address.ip(), hello.listen_port);
        let address_banned = [address, listening]
            .iter()
            .any(|a| self.banned_addresses.is_banned(a, now));
        if self.bans.is_banned(&peer, now) || address_banned {
            return;
        }
        if let Some(existing) = self.peers.get(&peer) {
            // Two connections to one peer: keep the one both sides agree on.
            let keep_new = existing.info.outbound != outbound
                && keeps_outbound(&self.shared.identity.public_key(), &peer) == outbound;
            if !keep_new {
                return;
            }
            existing.cancel.cancel();
            self.peers.remove(&peer);
        } else if !outbound
            && !self.masternodes.contains(&peer)
            && self.inbound_from(address.ip()) >= self.shared.config.max_inbound_per_ip
        {
            // One address's share is full; a masternode (known by the key it proved) is never
            // refused for where it connects from.
            return;
        } else if self.direction_count(outbound) >= self.limit(outbound) {
            // Full: make room by evicting the worst peer this one may replace, or refuse it.
            match self.eviction_victim(outbound, self.masternodes.contains(&peer)) {
                Some(victim) => {
                    self.drop_peer(victim, "evicted to make room for another peer".to_owned())
                        .await
                }
                None => return,
            }
        }
        // Remember where the peer listens: proven when we dialled it, said when it dialled us.
        if outbound {
            self.book.reached(address, peer);
        } else if hello.listen_port != 0 {
            let listening = SocketAddr::new(address.ip(), hello.listen_port);
            if !self.own.contains(&listening) {
                self.book.add_with_identity(listening, peer);
            }
        }
        self.next_connection += 1;
        let connection = self.next_connection;
        let cancel = self.shared.cancel.child_token();
        let (queue, frames) = send_queue(self.shared.config.peer_queue_bytes);
        let score = Arc::new(Misbehaviour::default());
        let info = PeerInfo {
            peer,
            address,
            outbound,
            hello,
        };
        let shared = &self.shared;
        shared.tracker.spawn(read_loop(
            Arc::clone(shared),
            reader,
            ReadContext {
                peer,
                connection,
                replies: queue.clone(),
                cancel: cancel.clone(),
                score: Arc::clone(&score),
            },
            permit,
        ));
        shared.tracker.spawn(write_loop(
            Arc::clone(shared),
            writer,
            peer,
            connection,
            frames,
            cancel.clone(),
        ));
        // Ask a peer we dialled whom it knows (an inbound one may be anybody).
        let mut asked = 0;
        if outbound {
            let _ = queue.try_send(Arc::new(Message::GetPeers.to_bytes()));
            asked |= ASKED_PEERS;
            if self.is_masternode() {
                let _ = queue.try_send(Arc::new(Message::GetMasternodes.to_bytes()));
                asked |= ASKED_MASTERNODES;
            }
        }
        self.peers.insert(
            peer,
            Slot {
                connection,
                info,
                queue,
                cancel,
                score,
                asked,
            },
        );
        let _ = shared
            .events
            .send(NetworkEvent::Connected {
                peer,
                hello,
                address,
                outbound,
            })
            .await;
    }

    async fn refused(&mut self, address: SocketAddr, outbound: bool, cause: RefusalCause) {
        let now = Instant::now();
        if outbound {
            self.dialing.remove(&address);
        }
        let (reason, banned) = match cause {
            RefusalCause::Dial(error) => {
                self.book.failed(address, now, self.shared.config.dial_interval);
                (error.to_string(), false)
            }
            RefusalCause::Handshake(error) => {
                let ban = error.deserves_ban();
                if let (true, Some(peer)) = (ban, error.peer()) {
                    self.bans.ban(peer, now, self.shared.config.ban_duration);
                }
                if outbound {
                    if matches!(error, HandshakeError::SelfConnection) {
                        self.own.insert(address);
                        self.book.remove(&address);
                    } else if ban {
                        self.banned_addresses.ban(address, now, self.shared.config.ban_duration);
                        self.book.remove(&address);
                    } else {
                        self.book.failed(address, now, self.shared.config.dial_interval);
                    }
                }
                (error.to_string(), ban)
            }
        };
        let _ = self
            .shared
            .events
            .send(NetworkEvent::Refused {
                address,
                reason,
                banned,
            })
            .await;
    }

    /// Answers and absorbs peer exchange. An answer nobody asked for counts against the
    /// sender and is ignored.
    async fn control(&mut self, peer: PublicKey, message: Message) {
        let Some(slot) = self.peers.get_mut(&peer) else {
            return;
        };
        let reply = match message {
            Message::GetPeers => Some(Message::Peers(self.book.share(MAX_ADDRESSES))),
            Message::GetMasternodes => {
                let masternodes = &self.masternodes;
                Some(Message::Masternodes(
                    self.book.located(|id| masternodes.contains(id), MAX_ADDRESSES),
                ))
            }
            Message::Peers(addresses) if slot.asked & ASKED_PEERS != 0 => {
                slot.asked &= !ASKED_PEERS;
                let source = slot.info.address.ip();
                for address in addresses {
                    if learnable_from(&address, source)
                        && !self.own.contains(&address)
                        && !self.banned_addresses.is_banned(&address, Instant::now())
                    {
                        self.book.add(address);
                    }
                }
                None
            }
            Message::Masternodes(entries) if slot.asked & ASKED_MASTERNODES != 0 => {
                slot.asked &= !ASKED_MASTERNODES;
                let source = slot.info.address.ip();
                for (identity, address) in entries {
                    if learnable_from(&address, source)
                        && self.masternodes.contains(&identity)
                        && !self.own.contains(&address)
                    {
                        self.book.add_with_identity(address, identity);
                    }
                }
                None
            }
            _ => {
                if slot.score.record(Offense::Unsolicited) {
                    self.bans.ban(peer, Instant::now(), self.shared.config.ban_duration);
                    self.drop_peer(peer, "sent answers nobody asked for".to_owned()).await;
                }
                return;
            }
        };
        if let (Some(reply), Some(slot)) = (reply, self.peers.get(&peer)) {
            let _ = slot.queue.try_send(Arc::new(reply.to_bytes()));
        }
    }

    /// Asks every peer where masternodes are, at most every [`MASTERNODE_QUERY_INTERVAL`].
    fn query_masternodes(&mut self, now: Instant) {
        if self
            .masternode_query
            .is_some_and(|at| now.duration_since(at) < MASTERNODE_QUERY_INTERVAL)
        {
            return;
        }
        self.masternode_query = Some(now);
        let frame = Arc::new(Message::GetMasternodes.to_bytes());
        for slot in self.peers.values_mut() {
            if slot.queue.try_send(Arc::clone(&frame)).is_ok() {
                slot.asked |= ASKED_MASTERNODES;
            }
        }
    }

    fn is_masternode(&self) -> bool {
        self.shared.hello.borrow().masternode
    }

    fn limit(&self, outbound: bool) -> usize {
        if outbound {
            self.shared.config.max_outbound
        } else {
            self.shared.config.max_inbound
        }
    }

    fn inbound_from(&self, ip: IpAddr) -> usize {
        self.peers
            .values()
            .filter(|slot| !slot.info.outbound && slot.info.address.ip() == ip)
            .count()
    }

    fn direction_count(&self, outbound: bool) -> usize {
        self.peers
            .values()
            .filter(|slot| slot.info.outbound == outbound)
            .count()
    }

    /// The peer to drop for a newcomer in the same direction: never a masternode; for a
    /// masternode newcomer any other peer, otherwise only a peer that misbehaved or, inbound,
    /// the most recent one (so that peers connected longest, which an attacker cannot fake,
    /// stay). Among candidates the highest misbehaviour score goes first, then one from the
    /// address with most inbound connections, then the newest.
    fn eviction_victim(&self, outbound: bool, newcomer_is_masternode: bool) -> Option<PublicKey> {
        // Inbound, peers from the most crowded address go before the others (Bitcoin Core
        // evicts from the largest network group): many connections from one place cannot
        // keep the slots they took.
        let mut crowd: HashMap<IpAddr, usize> = HashMap::new();
        if !outbound {
            for slot in self.peers.values().filter(|slot| !slot.info.outbound) {
                *crowd.entry(slot.info.address.ip()).or_insert(0) += 1;
            }
        }
        self.peers
            .iter()
            .filter(|(peer, slot)| slot.info.outbound == outbound && !self.masternodes.contains(*peer))
            .map(|(peer, slot)| {
                let crowding = crowd.get(&slot.info.address.ip()).copied().unwrap_or(0);
                (slot.score.score(), crowding, slot.connection, *peer)
            })
            .filter(|(score, _, _, _)| newcomer_is_masternode || !outbound || *score > 0)
            .max()
            .map(|(_, _, _, peer)| peer)
    }

    async fn drop_peer(&mut self, peer: PublicKey, reason: String) {
        if let Some(slot) = self.peers.remove(&peer) {
            slot.cancel.cancel();
            let _ = self
                .shared
                .events
                .send(NetworkEvent::Disconnected { peer, reason })
                .await;
        }
    }

    /// Dials what is missing: bootstrap peers, then (for a masternode) masternodes it is
    /// not connected to, then addresses from the book until the outbound slots are used.
    fn dial(&mut self, now: Instant) {
        let own = self.shared.identity.public_key();
        if self.is_masternode()
            && self
                .masternodes
                .iter()
                .any(|id| *id != own && !self.peers.contains_key(id) && self.book.address_of(id).is_none())
        {
            self.query_masternodes(now);
        }
        let connected: HashSet<SocketAddr> = self
            .peers
            .values()
            .flat_map(|slot| {
                let listening = SocketAddr::new(slot.info.address.ip(), slot.info.hello.listen_port);
                [slot.info.address, listening]
            })
            .collect();
        let usable = |address: &SocketAddr, dialing: &HashSet<SocketAddr>| {
            !connected.contains(address)
                && !dialing.contains(address)
                && !self.banned_addresses.is_banned(address, now)
                && !self.own.contains(address)
        };
        let mut wanted: Vec<SocketAddr> = Vec::new();
        if self.is_masternode() {
            // Masternode links come first and may evict ordinary peers when slots are full.
            let connected_masternodes = self.peers.keys().filter(|p| self.masternodes.contains(*p)).count();
            let missing = self
                .shared
                .config
                .masternode_peers
                .saturating_sub(connected_masternodes);
            let mut unconnected: Vec<&PublicKey> = self
                .masternodes
                .iter()
                .filter(|id| **id != own && !self.peers.contains_key(*id))
                .collect();
            unconnected.sort();
            wanted.extend(
                unconnected
                    .into_iter()
                    .filter_map(|id| self.book.address_of(id))
                    .filter(|a| usable(a, &self.dialing))
                    .take(missing),
            );
        }
        // Then bootstrap peers and the book, in the outbound slots still open.
        let open = self
            .shared
            .config
            .max_outbound
            .saturating_sub(self.direction_count(true) + self.dialing.len());
        let mut ordinary: Vec<SocketAddr> = Vec::new();
        for address in self
            .shared
            .config
            .bootstrap
            .iter()
            .copied()
            .chain(self.book.candidates(now))
        {
            if ordinary.len() >= open {
                break;
            }
            if usable(&address, &self.dialing) && !wanted.contains(&address) && !ordinary.contains(&address) {
                ordinary.push(address);
            }
        }
        wanted.extend(ordinary);
        for address in wanted {
            let Ok(permit) = Arc::clone(&self.shared.outbound).try_acquire_owned() else {
                return;
            };
            self.dialing.insert(address);
            let task = Arc::clone(&self.shared);
            self.shared.tracker.spawn(async move {
                let dialled = tokio::select! {
                    () = task.cancel.cancelled() => return,
                    dialled = tokio::time::timeout(task.config.handshake_timeout, TcpStream::connect(address)) => dialled,
                };
                match dialled {
                    Ok(Ok(stream)) => admit(task, stream, address, true, permit).await,
                    Ok(Err(error)) => send_refusal(&task, address, error).await,
                    Err(_) => send_refusal(&task, address, std::io::ErrorKind::TimedOut.into()).await,
                }
            });
        }
    }
}

async fn send_refusal(shared: &Shared, address: SocketAddr, error: std::io::Error) {
    let _ = shared
        .manager
        .send(ManagerInput::Refused {
            address,
            outbound: true,
            error: RefusalCause::Dial(error),
        })
        .await;
}

/// How often a masternode missing links asks its peers where the others are.
const MASTERNODE_QUERY_INTERVAL: Duration = Duration::from_secs(10);

const SLOW: &str = "too slow: its send queue is full";

/// How often the address book is written to disk (and once more at shutdown).
const BOOK_SAVE_INTERVAL: Duration = Duration::from_secs(60);

/// Counts a received frame's bytes and decodes it.
fn received(bytes: &[u8]) -> Result<Message, timecoin_primitives::DecodeError> {
    metrics::counter!("timecoin_network_received_bytes_total").increment(bytes.len() as u64);
    Message::from_bytes(bytes)
}

struct ReadContext {
    peer: PublicKey,
    connection: u64,
    replies: SendQueue,
    cancel: CancellationToken,
    score: Arc<Misbehaviour>,
}

async fn read_loop(shared: Arc<Shared>, mut reader: Reader, context: ReadContext, _permit: OwnedSemaphorePermit) {
    let ReadContext {
        peer,
        connection,
        replies,
        cancel,
        score,
    } = context;
    let limits = PeerLimits::new(&shared.config.rates);
    let idle = shared.config.ping_interval.saturating_mul(3);
    let (reason, ban) = loop {
        let frame = tokio::select! {
            () = cancel.cancelled() => return,
            frame = tokio::time::timeout(idle, reader.receive()) => frame,
        };
        let offense = match frame {
            Err(_) => break (format!("silent for {idle:?}"), false),
            Ok(Err(crate::TransportError::FrameTooLarge { size, limit })) => {
                score.record(Offense::OversizeFrame);
                break (format!("sent a {size}-byte frame, over the {limit}-byte limit"), true);
            }
            Ok(Err(error)) => break (error.to_string(), false),
            Ok(Ok(bytes)) => match received(&bytes) {
                Err(error) => Some((Offense::Undecodable, format!("sent an undecodable message: {error}"))),
                Ok(message) if !limits.allow(message.class()) => Some((
                    Offense::RateExceeded,
                    format!("exceeded the {:?} message rate", message.class()),
                )),
                Ok(Message::Ping(nonce)) => {
                    let _ = replies.try_send(Arc::new(Message::Pong(nonce).to_bytes()));
                    None
                }
                Ok(Message::Pong(_)) => None,
                Ok(
                    message @ (Message::GetPeers
                    | Message::Peers(_)
                    | Message::GetMasternodes
                    | Message::Masternodes(_)),
                ) => {
                    let _ = shared.manager.send(ManagerInput::Control(peer, message)).await;
                    None
                }
                Ok(message) => {
                    let _ = shared.events.send(NetworkEvent::Message { peer, message }).await;
                    None
                }
            },
        };
        if let Some((offense, reason)) = offense
            && score.record(offense)
        {
            break (reason, true);
        }
    };
    close(&shared, &cancel, peer, connection, reason, ban).await;
}

/// Ends a connection from one of its tasks: stops the other task and tells the manager.
async fn close(
    shared: &Shared,
    cancel: &CancellationToken,
    peer: PublicKey,
    connection: u64,
    reason: String,
    ban: bool,
) {
    cancel.cancel();
    let _ = shared
        .manager
        .send(ManagerInput::Closed {
            peer,
            connection,
            reason,
            ban,
        })
        .await;
}

async fn write_loop(
    shared: Arc<Shared>,
    mut writer: Writer,
    peer: PublicKey,
    connection: u64,
    mut frames: QueueReceiver,
    cancel: CancellationToken,
) {
    let mut ping = tokio::time::interval(shared.config.ping_interval);
    let mut nonce = 0u64;
    let reason = loop {
        // A ping is written past the queue; a queued frame leaves its budget once written.
        let (frame, queued) = tokio::select! {
            () = cancel.cancelled() => return,
            _ = ping.tick() => {
                nonce = nonce.wrapping_add(1);
                (Arc::new(Message::Ping(nonce).to_bytes()), false)
            }
            frame = frames.recv() => match frame {
                Some(frame) => (frame, true),
                None => return,
            },
        };
        let sent = writer.send(&frame).await;
        if queued {
            frames.done(&frame);
        }
        if let Err(error) = sent {
            break error.to_string();
        }
        metrics::counter!("timecoin_network_sent_bytes_total").increment(frame.len() as u64);
    };
    close(&shared, &cancel, peer, connection, reason, false).await;
}
