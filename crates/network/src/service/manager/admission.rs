//! Admission of connections that passed the handshake: bans, duplicate connections to one
//! peer, each address's share of the inbound slots, eviction of a worse peer to make room,
//! and what a refused connection costs its address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use timecoin_primitives::{Encode, PublicKey};

use super::{ASKED_MASTERNODES, ASKED_PEERS, Manager, Slot};
use crate::handshake::{HandshakeError, keeps_outbound};
use crate::limits::Misbehaviour;
use crate::queue::send_queue;
use crate::service::connection::{ReadContext, read_loop, write_loop};
use crate::service::{Admission, NetworkEvent, PeerInfo, RefusalCause};
use crate::wire::Message;

impl Manager {
    pub(super) async fn admitted(&mut self, admission: Admission) {
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
        } else if self.is_masternode_link(&peer) {
            // A link of the overlay: within its own budget, whatever the ordinary slots hold.
            let links = self.peers.keys().filter(|p| self.is_masternode_link(p)).count();
            if links >= self.shared.config.masternode_peers {
                return;
            }
        } else if !outbound
            && !self.masternodes.contains(&peer)
            && self.inbound_from(address.ip()) >= self.shared.config.max_inbound_per_ip
        {
            // One address's share is full; a masternode (known by the key it proved) is never
            // refused for where it connects from.
            return;
        } else if self.ordinary_count(outbound) >= self.limit(outbound) {
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

    pub(super) async fn refused(&mut self, address: SocketAddr, outbound: bool, cause: RefusalCause) {
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

    /// Connections in one direction that count against the ordinary limits (all but the
    /// overlay's masternode links).
    pub(super) fn ordinary_count(&self, outbound: bool) -> usize {
        self.peers
            .iter()
            .filter(|(peer, slot)| slot.info.outbound == outbound && !self.is_masternode_link(peer))
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
}
