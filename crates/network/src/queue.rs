//! A peer's send queue, bounded in bytes: a peer that stops reading is dropped once what
//! waits for it passes the budget, so it can pin at most that much memory however large the
//! frames (Bitcoin Core's per-peer send buffer limit). A frame counts from when it is queued
//! until the writer has written it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

/// A frame as it is sent: shared by every peer a broadcast goes to.
pub(crate) type Frame = Arc<Vec<u8>>;

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueError {
    /// The frame would take the queue past its byte budget.
    Full,
    /// The writer is gone.
    Closed,
}

/// The sending side, held by the peer manager and the peer's reading task (for pongs).
#[derive(Debug, Clone)]
pub(crate) struct SendQueue {
    frames: mpsc::UnboundedSender<Frame>,
    queued: Arc<AtomicUsize>,
    budget: usize,
}

/// The writer's side.
#[derive(Debug)]
pub(crate) struct QueueReceiver {
    frames: mpsc::UnboundedReceiver<Frame>,
    queued: Arc<AtomicUsize>,
}

/// A queue that holds at most `budget` bytes; one frame is always accepted into an empty
/// queue, so a frame larger than the budget is sent alone rather than never.
pub(crate) fn send_queue(budget: usize) -> (SendQueue, QueueReceiver) {
    let (frames, receiver) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        SendQueue {
            frames,
            queued: Arc::clone(&queued),
            budget,
        },
        QueueReceiver {
            frames: receiver,
            queued,
        },
    )
}

impl SendQueue {
    /// Queues `frame` unless that would pass the budget.
    pub(crate) fn try_send(&self, frame: Frame) -> Result<(), QueueError> {
        let len = frame.len();
        let budget = self.budget;
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                (queued == 0 || queued.saturating_add(len) <= budget).then(|| queued.saturating_add(len))
            })
            .map_err(|_| QueueError::Full)?;
        self.frames.send(frame).map_err(|_| {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            QueueError::Closed
        })
    }

    /// Bytes waiting to be written.
    #[cfg(test)]
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

impl QueueReceiver {
    /// The next frame; `None` once every sender is gone.
    pub(crate) async fn recv(&mut self) -> Option<Frame> {
        self.frames.recv().await
    }

    /// The next frame if one waits, without waiting.
    pub(crate) fn try_recv(&mut self) -> Option<Frame> {
        self.frames.try_recv().ok()
    }

    /// `frame` was written (or dropped): its bytes leave the budget.
    pub(crate) fn done(&self, frame: &Frame) {
        self.queued.fetch_sub(frame.len(), Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_queue_holds_bytes_not_frames() {
        let (queue, mut receiver) = send_queue(10);
        assert_eq!(queue.try_send(Arc::new(vec![0; 6])), Ok(()));
        assert_eq!(queue.try_send(Arc::new(vec![0; 4])), Ok(()));
        assert_eq!(queue.try_send(Arc::new(vec![0; 1])), Err(QueueError::Full));
        let frame = receiver.recv().await.unwrap();
        assert_eq!(
            queue.try_send(Arc::new(vec![0; 1])),
            Err(QueueError::Full),
            "counted until written"
        );
        receiver.done(&frame);
        assert_eq!(queue.queued_bytes(), 4);
        assert_eq!(queue.try_send(Arc::new(vec![0; 6])), Ok(()));
    }

    #[tokio::test]
    async fn one_large_frame_goes_alone() {
        let (queue, mut receiver) = send_queue(10);
        assert_eq!(queue.try_send(Arc::new(vec![0; 100])), Ok(()));
        assert_eq!(queue.try_send(Arc::new(vec![0; 1])), Err(QueueError::Full));
        let frame = receiver.recv().await.unwrap();
        receiver.done(&frame);
        assert_eq!(queue.queued_bytes(), 0);
        drop(receiver);
        assert_eq!(queue.try_send(Arc::new(vec![0; 1])), Err(QueueError::Closed));
    }
}
