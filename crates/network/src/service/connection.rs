//! One connected peer's two tasks: the reading task (size and rate limits, misbehaviour
//! scoring, pings answered, peer exchange passed to the manager, everything else to the node)
//! and the writing task (its send queue and the periodic ping).

use std::sync::Arc;

use timecoin_primitives::{Decode, Encode, PublicKey};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::{ManagerInput, NetworkEvent, Reader, Shared, Writer};
use crate::limits::{Misbehaviour, Offense, PeerLimits};
use crate::queue::{QueueReceiver, SendQueue};
use crate::wire::Message;

/// Counts a received frame's bytes and decodes it.
fn received(bytes: &[u8]) -> Result<Message, timecoin_primitives::DecodeError> {
    let kind = Message::name_of(bytes);
    metrics::counter!("timecoin_network_received_bytes_total", "kind" => kind).increment(bytes.len() as u64);
    metrics::counter!("timecoin_network_received_messages_total", "kind" => kind).increment(1);
    Message::from_bytes(bytes)
}

pub(super) struct ReadContext {
    pub(super) peer: PublicKey,
    pub(super) connection: u64,
    pub(super) replies: SendQueue,
    pub(super) cancel: CancellationToken,
    pub(super) score: Arc<Misbehaviour>,
}

pub(super) async fn read_loop(
    shared: Arc<Shared>,
    mut reader: Reader,
    context: ReadContext,
    _permit: OwnedSemaphorePermit,
) {
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

/// Most frames, and bytes, written at once.
const BATCH_FRAMES: usize = 64;
const BATCH_BYTES: usize = 64 * 1024;

pub(super) async fn write_loop(
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
        let (first, queued) = tokio::select! {
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
        // Frames queued behind it go in the same write, up to a bound.
        let mut batch = vec![first];
        let mut bytes = batch.iter().map(|f| f.len()).sum::<usize>();
        while queued && batch.len() < BATCH_FRAMES && bytes < BATCH_BYTES {
            let Some(next) = frames.try_recv() else { break };
            bytes += next.len();
            batch.push(next);
        }
        let slices: Vec<&[u8]> = batch.iter().map(|f| f.as_slice()).collect();
        let sent = writer.send_all(&slices).await;
        if queued {
            batch.iter().for_each(|frame| frames.done(frame));
        }
        if let Err(error) = sent {
            break error.to_string();
        }
        for frame in &batch {
            let kind = Message::name_of(frame);
            metrics::counter!("timecoin_network_sent_bytes_total", "kind" => kind).increment(frame.len() as u64);
            metrics::counter!("timecoin_network_sent_messages_total", "kind" => kind).increment(1);
        }
    };
    close(&shared, &cancel, peer, connection, reason, false).await;
}
