//! The guard in front of each ZMQ PUB socket: the `zeromq` crate trusts a peer's frame
//! lengths (it reserves a buffer of whatever size a frame announces, and an allocation
//! failure aborts the process) and keeps every subscription a peer sends. So the crate's
//! socket listens on a Unix socket in a private directory (mode 0700), and the configured
//! TCP address is served here: each connection is forwarded to it after its bytes pass a
//! ZMTP 3 reader that allows what a subscriber sends (a 64-byte greeting, then frames of at
//! most [`MAX_FRAME`] bytes, at most [`MAX_FRAMES`] of them) and closes it otherwise. At most
//! [`MAX_CONNECTIONS`] connections at once; the greeting must arrive within
//! [`GREETING_DEADLINE`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

/// The largest frame a subscriber may send (a subscription is a topic name; the READY
/// command carries two short properties).
pub(crate) const MAX_FRAME: u64 = 1_024;
/// Frames one connection may send (a subscriber sends a READY and a few subscriptions).
pub(crate) const MAX_FRAMES: usize = 256;
/// Connections served at once; more are closed at once.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// How long a connection has to send its greeting.
pub(crate) const GREETING_DEADLINE: Duration = Duration::from_secs(10);

/// ZMTP 3's greeting length.
const GREETING: usize = 64;

/// Why a subscriber's bytes were refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    FrameTooLarge(u64),
    TooManyFrames,
}

/// Reads one ZMTP frame header from `bytes` (flags, then a 1-byte or an 8-byte big-endian
/// size): `Ok(Some((header length, body length)))`, `Ok(None)` if more bytes are needed.
pub(crate) fn frame_header(bytes: &[u8]) -> Result<Option<(usize, u64)>, Refused> {
    let Some(&flags) = bytes.first() else {
        return Ok(None);
    };
    let (header, size) = if flags & 0x02 != 0 {
        let Some(size) = bytes.get(1..9) else {
            return Ok(None);
        };
        let mut raw = [0u8; 8];
        raw.copy_from_slice(size);
        (9, u64::from_be_bytes(raw))
    } else {
        let Some(&size) = bytes.get(1) else {
            return Ok(None);
        };
        (2, u64::from(size))
    };
    if size > MAX_FRAME {
        return Err(Refused::FrameTooLarge(size));
    }
    Ok(Some((header, size)))
}

/// Serves `listener`, forwarding each connection to the Unix socket at `inner`.
pub(crate) fn serve(
    listener: TcpListener,
    inner: PathBuf,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> std::io::Result<SocketAddr> {
    let address = listener.local_addr()?;
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let spawner = tracker.clone();
    tracker.spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = cancel.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, peer)) = accepted else {
                continue;
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                debug!(%peer, "ZMQ connection refused: {MAX_CONNECTIONS} are open");
                continue;
            };
            let (inner, cancel) = (inner.clone(), cancel.clone());
            spawner.spawn(async move {
                tokio::select! {
                    () = cancel.cancelled() => {}
                    result = forward(stream, &inner) => {
                        if let Err(error) = result {
                            debug!(%peer, %error, "ZMQ connection closed");
                        }
                    }
                }
                drop(slot);
            });
        }
    });
    Ok(address)
}

/// Forwards one connection: the publisher's bytes as they come, the subscriber's greeting
/// as it comes (libzmq sends its first 11 bytes and waits for the other side's before the
/// rest), then its frames once read whole within the limits.
async fn forward(outer: TcpStream, inner: &std::path::Path) -> std::io::Result<()> {
    let publisher = UnixStream::connect(inner).await?;
    let (mut from_subscriber, mut to_subscriber) = outer.into_split();
    let (mut from_publisher, mut to_publisher) = publisher.into_split();
    let down = tokio::io::copy(&mut from_publisher, &mut to_subscriber);
    let up = async {
        let greeted_by = tokio::time::Instant::now() + GREETING_DEADLINE;
        let mut greeting_left = GREETING;
        let mut pending: Vec<u8> = Vec::new();
        let mut frames = 0usize;
        let mut buffer = [0u8; 4_096];
        loop {
            let read = if greeting_left > 0 {
                tokio::time::timeout_at(greeted_by, from_subscriber.read(&mut buffer))
                    .await
                    .map_err(|_| std::io::Error::other("no greeting in time"))??
            } else {
                from_subscriber.read(&mut buffer).await?
            };
            if read == 0 {
                return Ok::<(), std::io::Error>(());
            }
            let mut bytes = buffer.get(..read).unwrap_or_default();
            if greeting_left > 0 {
                let (greeting, rest) = bytes.split_at(greeting_left.min(bytes.len()));
                to_publisher.write_all(greeting).await?;
                greeting_left -= greeting.len();
                bytes = rest;
            }
            pending.extend_from_slice(bytes);
            // Forward every whole frame; keep a partial one.
            loop {
                let (header, size) = match frame_header(&pending) {
                    Ok(Some(found)) => found,
                    Ok(None) => break,
                    Err(refused) => return Err(std::io::Error::other(format!("{refused:?}"))),
                };
                let total = header + usize::try_from(size).unwrap_or(usize::MAX);
                if pending.len() < total {
                    break;
                }
                frames += 1;
                if frames > MAX_FRAMES {
                    return Err(std::io::Error::other(format!("{:?}", Refused::TooManyFrames)));
                }
                to_publisher.write_all(pending.get(..total).unwrap_or_default()).await?;
                pending.drain(..total);
            }
        }
    };
    tokio::select! {
        result = down => result.map(|_| ()),
        result = up => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_headers_are_read_and_large_ones_refused() {
        assert_eq!(frame_header(&[]), Ok(None));
        assert_eq!(frame_header(&[0x00]), Ok(None));
        assert_eq!(frame_header(&[0x04, 25]), Ok(Some((2, 25))));
        assert_eq!(frame_header(&[0x02, 0, 0, 0]), Ok(None));
        assert_eq!(frame_header(&[0x02, 0, 0, 0, 0, 0, 0, 4, 0]), Ok(Some((9, 1_024))));
        assert_eq!(
            frame_header(&[0x02, 0, 0, 1, 0, 0, 0, 0, 0]),
            Err(Refused::FrameTooLarge(1 << 40))
        );
    }
}
