//! Finding peers: dialling (bootstrap peers, masternodes a masternode must reach, then the
//! address book) and peer exchange, which answers what others ask and learns addresses only
//! from answers this node asked for.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use timecoin_primitives::{Encode, PublicKey};
use tokio::net::TcpStream;

use super::{ASKED_MASTERNODES, ASKED_PEERS, Manager};
use crate::addrbook::learnable_from;
use crate::limits::Offense;
use crate::service::accept::admit;
use crate::service::{ManagerInput, RefusalCause, Shared};
use crate::wire::{MAX_ADDRESSES, Message};

impl Manager {
    /// Answers and absorbs peer exchange. An answer nobody asked for counts against the
    /// sender and is ignored.
    pub(super) async fn control(&mut self, peer: PublicKey, message: Message) {
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

    /// Dials what is missing: (for a masternode) its links in the overlay that are not
    /// connected, from a budget of their own; then bootstrap peers and addresses from the book
    /// until the ordinary outbound slots are used.
    pub(super) fn dial(&mut self, now: Instant) {
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
        let mut links: Vec<SocketAddr> = Vec::new();
        if self.is_masternode() {
            // Its links in the overlay, apart from the ordinary slots (a budget of its own).
            let connected_links = self.peers.keys().filter(|p| self.is_masternode_link(p)).count();
            let missing = self.shared.config.masternode_peers.saturating_sub(connected_links);
            links.extend(
                self.overlay
                    .links(&own)
                    .iter()
                    .filter(|id| !self.peers.contains_key(*id))
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
            .saturating_sub(self.ordinary_count(true) + self.dialing.len());
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
            if usable(&address, &self.dialing) && !links.contains(&address) && !ordinary.contains(&address) {
                ordinary.push(address);
            }
        }
        let (link_budget, ordinary_budget) = (&self.shared.masternode_dials, &self.shared.outbound);
        let wanted = links
            .into_iter()
            .map(|a| (a, link_budget))
            .chain(ordinary.into_iter().map(|a| (a, ordinary_budget)));
        let mut dials = Vec::new();
        for (address, budget) in wanted {
            let Ok(permit) = Arc::clone(budget).try_acquire_owned() else {
                continue;
            };
            dials.push((address, permit));
        }
        for (address, permit) in dials {
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
