//! The manager: the one task that owns the peer table, the bans and the address book, and
//! carries out the node's commands (sends, broadcasts, disconnections, bans and reports of
//! misbehaviour). Admitting peers lives in [`admission`], finding them in [`discovery`].

mod admission;
mod discovery;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use timecoin_primitives::PublicKey;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{BanTarget, ManagerInput, NetworkEvent, PeerInfo, Shared};
use crate::addrbook::AddressBook;
use crate::limits::{BanList, Misbehaviour};
use crate::overlay::Overlay;
use crate::queue::SendQueue;

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
pub(super) struct Manager {
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
    /// Which masternodes link to which (the links a masternode dials).
    overlay: Overlay,
    next_connection: u64,
    /// When peers were last asked where masternodes are.
    masternode_query: Option<Instant>,
}

impl Manager {
    pub(super) fn new(shared: Arc<Shared>, book: AddressBook) -> Manager {
        Manager {
            shared,
            peers: HashMap::new(),
            bans: BanList::new(10_000),
            book,
            dialing: HashSet::new(),
            banned_addresses: BanList::new(10_000),
            own: HashSet::new(),
            masternodes: HashSet::new(),
            overlay: Overlay::default(),
            next_connection: 0,
            masternode_query: None,
        }
    }

    pub(super) async fn run(mut self, mut inputs: mpsc::Receiver<ManagerInput>) {
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
                self.overlay = Overlay::new(set.iter().copied(), self.shared.config.masternode_peers);
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

    fn is_masternode(&self) -> bool {
        self.shared.hello.borrow().masternode
    }

    /// Whether `peer` is a masternode this node (a masternode too) links to in the overlay:
    /// such links have a budget of their own (`masternode_peers`), apart from the ordinary
    /// connection limits.
    fn is_masternode_link(&self, peer: &PublicKey) -> bool {
        self.is_masternode() && self.overlay.linked(&self.shared.identity.public_key(), peer)
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
}

const SLOW: &str = "too slow: its send queue is full";

/// How often the address book is written to disk (and once more at shutdown).
const BOOK_SAVE_INTERVAL: Duration = Duration::from_secs(60);
