//! A batch's consecutive `sendrawtransaction` calls run concurrently (jsonrpsee runs every
//! call one after another), answered in the order asked. They thus reach the node's admission
//! queue together and are verified as one signature batch under one mempool lock. Only they
//! do: they wait without holding a thread, where every other method runs on a blocking
//! thread, and a batch of a thousand of those at once would crowd out the node's own
//! blocking work.

use futures_util::future::join_all;
use jsonrpsee::core::middleware::{Batch, BatchEntry, BatchEntryErr, Notification, RpcServiceT};
use jsonrpsee::core::server::{BatchResponseBuilder, MethodResponse};
use jsonrpsee::types::Request;

/// The largest answer, single or batch, in bytes.
pub(crate) const MAX_RESPONSE_BYTES: u32 = 64 * 1024 * 1024;

/// The method whose calls in a batch run concurrently.
const CONCURRENT_METHOD: &str = "sendrawtransaction";

/// Wraps the method service so that a batch's `sendrawtransaction` calls run concurrently.
#[derive(Clone)]
pub(crate) struct ConcurrentBatches<S> {
    pub(crate) service: S,
}

impl<S> RpcServiceT for ConcurrentBatches<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        self.service.call(request)
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        let service = self.service.clone();
        async move {
            let mut notified = false;
            // One entry's answer; `None` for a notification.
            let answer = |entry: Result<BatchEntry<'a>, BatchEntryErr<'a>>| {
                let service = service.clone();
                async move {
                    match entry {
                        Ok(BatchEntry::Call(request)) => Some(service.call(request).await),
                        Ok(BatchEntry::Notification(notification)) => {
                            service.notification(notification).await;
                            None
                        }
                        Err(error) => {
                            let (error, id) = error.into_parts();
                            Some(MethodResponse::error(id, error))
                        }
                    }
                }
            };
            let mut answers = Vec::new();
            let mut together = Vec::new();
            for entry in batch.into_iter() {
                if matches!(&entry, Ok(BatchEntry::Call(request)) if request.method_name() == CONCURRENT_METHOD) {
                    together.push(answer(entry));
                    continue;
                }
                answers.extend(join_all(std::mem::take(&mut together)).await);
                answers.push(answer(entry).await);
            }
            answers.extend(join_all(together).await);
            let mut builder = BatchResponseBuilder::new_with_limit(MAX_RESPONSE_BYTES as usize);
            for answer in answers {
                match answer {
                    Some(answer) => {
                        if let Err(too_large) = builder.append(answer) {
                            return too_large;
                        }
                    }
                    None => notified = true,
                }
            }
            // As jsonrpsee answers: nothing for notifications only, an error for an empty batch.
            if builder.is_empty() && notified {
                MethodResponse::notification()
            } else {
                MethodResponse::from_batch(builder.finish())
            }
        }
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.service.notification(notification)
    }
}
