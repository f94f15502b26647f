//! Getting connections through the handshake: the listener's accept loop, the per-address
//! budget of inbound handshakes in flight, and [`admit`], which runs the handshake for a
//! connection in either direction and hands the outcome to the manager.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;

use super::{Admission, ManagerInput, RefusalCause, Shared};
use crate::handshake::connect;

pub(super) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
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

pub(super) async fn admit(
    shared: Arc<Shared>,
    stream: TcpStream,
    address: SocketAddr,
    outbound: bool,
    permit: OwnedSemaphorePermit,
) {
    // Consensus messages are small and latency-bound: no waiting to fill a segment.
    let _ = stream.set_nodelay(true);
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
