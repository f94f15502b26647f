//! [`NetworkHandle`]: the node's side of the service, which turns each call into a message
//! to the manager task (and waits for its answer when there is one).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use timecoin_primitives::{Encode, PublicKey};
use tokio::sync::{mpsc, oneshot};

use super::{BanTarget, ManagerInput, PeerInfo};
use crate::limits::Offense;
use crate::wire::Message;

/// Commands to a running service.
#[derive(Debug, Clone)]
pub struct NetworkHandle {
    pub(super) manager: mpsc::Sender<ManagerInput>,
    pub(super) local_address: SocketAddr,
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
        self.send_each([peer], message).await;
    }

    /// Sends `message` to each of `peers` (encoded once, and not at all for no peer; a peer
    /// not connected is skipped).
    pub async fn send_each(&self, peers: impl IntoIterator<Item = PublicKey>, message: &Message) {
        let mut peers = peers.into_iter().peekable();
        if peers.peek().is_none() {
            return;
        }
        let bytes = Arc::new(message.to_bytes());
        for peer in peers {
            let _ = self.manager.send(ManagerInput::Send(peer, Arc::clone(&bytes))).await;
        }
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
