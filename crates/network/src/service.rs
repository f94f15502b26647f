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
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use timecoin_primitives::{Decode, Encode, PublicKey, SecretKey};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::handshake::{Hello, connect, keeps_outbound};
use crate::limits::{BanList, Misbehaviour, Offense, PeerLimits, RateConfig};
use crate::transport::{SecureReader, SecureWriter};
use crate::wire::Message;

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
    /// Frames queued for one peer before it counts as too slow and is dropped.
    pub peer_queue: usize,
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
            peer_queue: 4_096,
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
        reason: String,
        ban: bool,
    },
    Broadcast(Arc<Vec<u8>>),
    Send(PublicKey, Arc<Vec<u8>>),
    Disconnect {
        peer: PublicKey,
        ban: Option<Duration>,
    },
    Peers(oneshot::Sender<Vec<PeerInfo>>),
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
}

/// Starts the service: binds the listener and spawns its tasks on `tracker`; cancelling
/// `cancel` stops them all. `hello` is the introduction sent to each new peer (keep it up to
/// date with the best block). Events arrive on the returned receiver.
pub async fn start(
    config: NetworkConfig,
    identity: SecretKey,
    hello: watch::Receiver<Hello>,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> std::io::Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>)> {
    let listener = TcpListener::bind(config.listen).await?;
    let local_address = listener.local_addr()?;
    let (manager_tx, manager_rx) = mpsc::channel(1_024);
    let (events_tx, events_rx) = mpsc::channel(16_384);
    let shared = Arc::new(Shared {
        inbound: Arc::new(Semaphore::new(config.max_inbound)),
        outbound: Arc::new(Semaphore::new(config.max_outbound)),
        config,
        identity,
        hello,
        manager: manager_tx.clone(),
        events: events_tx,
        cancel,
        tracker: tracker.clone(),
    });
    tracker.spawn(accept_loop(Arc::clone(&shared), listener));
    tracker.spawn(manager(shared, manager_rx));
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
        // Over the inbound limit the connection is closed at once.
        let Ok(permit) = Arc::clone(&shared.inbound).try_acquire_owned() else {
            continue;
        };
        let task = Arc::clone(&shared);
        shared
            .tracker
            .spawn(async move { admit(task, stream, address, false, permit).await });
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
    match result {
        Ok((secure, theirs)) => {
            let peer = secure.peer();
            let (reader, writer) = secure.into_split();
            let _ = shared
                .manager
                .send(ManagerInput::Admitted(Box::new(Admission {
                    peer,
                    hello: theirs,
                    address,
                    outbound,
                    reader,
                    writer,
                    permit,
                })))
                .await;
        }
        Err(error) => {
            let _ = shared
                .manager
                .send(ManagerInput::Refused {
                    address,
                    reason: error.to_string(),
                    ban: outbound && error.deserves_ban(),
                })
                .await;
        }
    }
}

struct Slot {
    connection: u64,
    info: PeerInfo,
    queue: mpsc::Sender<Arc<Vec<u8>>>,
    cancel: CancellationToken,
}

async fn manager(shared: Arc<Shared>, mut inputs: mpsc::Receiver<ManagerInput>) {
    let mut peers: HashMap<PublicKey, Slot> = HashMap::new();
    let mut bans = BanList::new(10_000);
    let mut dialing: HashSet<SocketAddr> = HashSet::new();
    let mut banned_addresses: HashMap<SocketAddr, Instant> = HashMap::new();
    let mut next_connection = 0u64;
    let mut dial_timer = tokio::time::interval(shared.config.dial_interval);
    loop {
        let input = tokio::select! {
            () = shared.cancel.cancelled() => return,
            _ = dial_timer.tick() => {
                let now = Instant::now();
                banned_addresses.retain(|_, until| *until > now);
                dial(&shared, &peers, &mut dialing, &banned_addresses);
                continue;
            }
            input = inputs.recv() => match input {
                Some(input) => input,
                None => return,
            },
        };
        match input {
            ManagerInput::Admitted(admission) => {
                let Admission {
                    peer,
                    hello,
                    address,
                    outbound,
                    reader,
                    writer,
                    permit,
                } = *admission;
                if outbound {
                    dialing.remove(&address);
                }
                if bans.is_banned(&peer, Instant::now()) {
                    continue;
                }
                if let Some(existing) = peers.get(&peer) {
                    // Two connections to one peer: keep the one both sides agree on.
                    let keep_new = existing.info.outbound != outbound
                        && keeps_outbound(&shared.identity.public_key(), &peer) == outbound;
                    if !keep_new {
                        continue;
                    }
                    existing.cancel.cancel();
                }
                next_connection += 1;
                let connection = next_connection;
                let cancel = shared.cancel.child_token();
                let (queue, frames) = mpsc::channel(shared.config.peer_queue.max(1));
                let info = PeerInfo {
                    peer,
                    address,
                    outbound,
                    hello,
                };
                shared.tracker.spawn(read_loop(
                    Arc::clone(&shared),
                    reader,
                    peer,
                    connection,
                    queue.clone(),
                    cancel.clone(),
                    permit,
                ));
                shared.tracker.spawn(write_loop(
                    Arc::clone(&shared),
                    writer,
                    peer,
                    connection,
                    frames,
                    cancel.clone(),
                ));
                peers.insert(
                    peer,
                    Slot {
                        connection,
                        info,
                        queue,
                        cancel,
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
            ManagerInput::Closed {
                peer,
                connection,
                reason,
                ban,
            } => {
                if ban {
                    bans.ban(peer, Instant::now(), shared.config.ban_duration);
                }
                if peers.get(&peer).is_some_and(|slot| slot.connection == connection) {
                    if let Some(slot) = peers.remove(&peer) {
                        slot.cancel.cancel();
                    }
                    let _ = shared.events.send(NetworkEvent::Disconnected { peer, reason }).await;
                }
            }
            ManagerInput::Refused { address, reason, ban } => {
                dialing.remove(&address);
                if ban {
                    banned_addresses.insert(address, Instant::now() + shared.config.ban_duration);
                }
                let _ = shared.events.send(NetworkEvent::Refused { address, reason }).await;
            }
            ManagerInput::Broadcast(frame) => {
                let mut slow = Vec::new();
                for (peer, slot) in &peers {
                    if slot.queue.try_send(Arc::clone(&frame)).is_err() {
                        slow.push(*peer);
                    }
                }
                for peer in slow {
                    drop_slow(&mut peers, &shared, peer).await;
                }
            }
            ManagerInput::Send(peer, frame) => {
                if peers.get(&peer).is_some_and(|slot| slot.queue.try_send(frame).is_err()) {
                    drop_slow(&mut peers, &shared, peer).await;
                }
            }
            ManagerInput::Disconnect { peer, ban } => {
                if let Some(duration) = ban {
                    bans.ban(peer, Instant::now(), duration);
                }
                drop_peer(&mut peers, &shared, peer, "disconnected by the node").await;
            }
            ManagerInput::Peers(reply) => {
                let _ = reply.send(peers.values().map(|slot| slot.info.clone()).collect());
            }
        }
    }
}

/// Ends a peer's connection and reports it.
async fn drop_peer(peers: &mut HashMap<PublicKey, Slot>, shared: &Shared, peer: PublicKey, reason: &str) {
    if let Some(slot) = peers.remove(&peer) {
        slot.cancel.cancel();
        let _ = shared
            .events
            .send(NetworkEvent::Disconnected {
                peer,
                reason: reason.to_owned(),
            })
            .await;
    }
}

async fn drop_slow(peers: &mut HashMap<PublicKey, Slot>, shared: &Shared, peer: PublicKey) {
    drop_peer(peers, shared, peer, "too slow: its send queue is full").await;
}

fn dial(
    shared: &Arc<Shared>,
    peers: &HashMap<PublicKey, Slot>,
    dialing: &mut HashSet<SocketAddr>,
    banned: &HashMap<SocketAddr, Instant>,
) {
    let connected: HashSet<SocketAddr> = peers
        .values()
        .flat_map(|slot| {
            let listening = SocketAddr::new(slot.info.address.ip(), slot.info.hello.listen_port);
            [slot.info.address, listening]
        })
        .collect();
    for address in &shared.config.bootstrap {
        if connected.contains(address) || dialing.contains(address) || banned.contains_key(address) {
            continue;
        }
        let Ok(permit) = Arc::clone(&shared.outbound).try_acquire_owned() else {
            return;
        };
        dialing.insert(*address);
        let task = Arc::clone(shared);
        let address = *address;
        shared.tracker.spawn(async move {
            match TcpStream::connect(address).await {
                Ok(stream) => admit(task, stream, address, true, permit).await,
                Err(error) => {
                    let _ = task
                        .manager
                        .send(ManagerInput::Refused {
                            address,
                            reason: error.to_string(),
                            ban: false,
                        })
                        .await;
                }
            }
        });
    }
}

async fn read_loop(
    shared: Arc<Shared>,
    mut reader: Reader,
    peer: PublicKey,
    connection: u64,
    replies: mpsc::Sender<Arc<Vec<u8>>>,
    cancel: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    let limits = PeerLimits::new(&shared.config.rates);
    let mut misbehaviour = Misbehaviour::default();
    let idle = shared.config.ping_interval.saturating_mul(3);
    let (reason, ban) = loop {
        let frame = tokio::select! {
            () = cancel.cancelled() => return,
            frame = tokio::time::timeout(idle, reader.receive()) => frame,
        };
        let offense = match frame {
            Err(_) => break (format!("silent for {idle:?}"), false),
            Ok(Err(crate::TransportError::FrameTooLarge { size, limit })) => {
                misbehaviour.record(Offense::OversizeFrame);
                break (format!("sent a {size}-byte frame, over the {limit}-byte limit"), true);
            }
            Ok(Err(error)) => break (error.to_string(), false),
            Ok(Ok(bytes)) => match Message::from_bytes(&bytes) {
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
                Ok(message) => {
                    let _ = shared.events.send(NetworkEvent::Message { peer, message }).await;
                    None
                }
            },
        };
        if let Some((offense, reason)) = offense
            && misbehaviour.record(offense)
        {
            break (reason, true);
        }
    };
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
    mut frames: mpsc::Receiver<Arc<Vec<u8>>>,
    cancel: CancellationToken,
) {
    let mut ping = tokio::time::interval(shared.config.ping_interval);
    let mut nonce = 0u64;
    let reason = loop {
        let frame = tokio::select! {
            () = cancel.cancelled() => return,
            _ = ping.tick() => {
                nonce = nonce.wrapping_add(1);
                Arc::new(Message::Ping(nonce).to_bytes())
            }
            frame = frames.recv() => match frame {
                Some(frame) => frame,
                None => return,
            },
        };
        if let Err(error) = writer.send(&frame).await {
            break error.to_string();
        }
    };
    cancel.cancel();
    let _ = shared
        .manager
        .send(ManagerInput::Closed {
            peer,
            connection,
            reason,
            ban: false,
        })
        .await;
}
