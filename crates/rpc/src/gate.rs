//! The HTTP layer in front of the JSON-RPC handler: authentication (HTTP Basic against the
//! cookie and `rpcauth` users; 401 and a log line otherwise, after a pause that slows
//! password guessing), the request body limit, and Bitcoin Core's envelope (see
//! `envelope`: 1.0-style requests, as `bitcoin-cli` and python-bitcoinrpc send them, are
//! answered in the 1.0 style with Bitcoin Core's HTTP statuses). Answers carry
//! `Content-Type: application/json` exactly, as Bitcoin Core's do.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::StatusCode;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use http_body_util::{BodyExt, Limited};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use tower::{Layer, Service};

use crate::auth::Credentials;
use crate::envelope::{self, Prepared};

/// Pause before answering a request with wrong credentials.
const REJECTION_DELAY: Duration = Duration::from_millis(250);

#[derive(Debug)]
struct GateConfig {
    credentials: Credentials,
    max_body: usize,
}

/// Wraps the JSON-RPC service with [`Gate`].
#[derive(Debug, Clone)]
pub(crate) struct GateLayer(Arc<GateConfig>);

impl GateLayer {
    pub(crate) fn new(credentials: Credentials, max_body: usize) -> GateLayer {
        GateLayer(Arc::new(GateConfig { credentials, max_body }))
    }
}

impl<S> Layer<S> for GateLayer {
    type Service = Gate<S>;

    fn layer(&self, inner: S) -> Gate<S> {
        Gate {
            inner,
            config: Arc::clone(&self.0),
        }
    }
}

/// Authenticates, bounds and normalizes each HTTP request before the JSON-RPC handler.
#[derive(Debug, Clone)]
pub(crate) struct Gate<S> {
    inner: S,
    config: Arc<GateConfig>,
}

/// A JSON answer: `Content-Type: application/json` exactly, as Bitcoin Core's (clients such
/// as python-bitcoinrpc compare the header to that string); none on an empty 204.
fn json_response(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    let empty = body.is_empty();
    let mut response = HttpResponse::new(HttpBody::from(body));
    *response.status_mut() = status;
    if !empty {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    response
}

fn response(status: StatusCode, body: &str) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(body.to_owned()));
    *response.status_mut() = status;
    response
}

impl<S, B> Service<HttpRequest<B>> for Gate<S>
where
    S: Service<HttpRequest<HttpBody>, Response = HttpResponse> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        // The clone that was polled ready serves this call; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = Arc::clone(&self.config);
        Box::pin(async move {
            let header = request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
            if header.and_then(|h| config.credentials.check(h)).is_none() {
                tracing::warn!(
                    credentials = if header.is_some() { "wrong" } else { "missing" },
                    "refused a JSON-RPC request"
                );
                tokio::time::sleep(REJECTION_DELAY).await;
                let mut refused = response(StatusCode::UNAUTHORIZED, "");
                refused
                    .headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"jsonrpc\""));
                return Ok(refused);
            }
            let (mut parts, body) = request.into_parts();
            if parts.method != http::Method::POST {
                // jsonrpsee refuses it (405), as Bitcoin Core does.
                let empty = HttpRequest::from_parts(parts, HttpBody::from(Vec::new()));
                return inner.call(empty).await.map_err(Into::into);
            }
            let bytes = match Limited::new(body, config.max_body).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => {
                    return Ok(response(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        &format!("request body over {} bytes", config.max_body),
                    ));
                }
            };
            let (body, envelope) = match envelope::prepare(&bytes) {
                Prepared::Forward { body, envelope } => (body, envelope),
                Prepared::Answer { status, body } => return Ok(json_response(status, body.into_bytes())),
            };
            parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
            // Bitcoin Core clients do not always say it is JSON.
            parts
                .headers
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            let answer = inner
                .call(HttpRequest::from_parts(parts, HttpBody::from(body)))
                .await
                .map_err(Into::into)?;
            let json = answer
                .headers()
                .get(CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
            if !json {
                return Ok(answer);
            }
            let status = answer.status();
            let answered = answer.into_body().collect().await?.to_bytes();
            let (status, body) = envelope.finish(status, &answered);
            Ok(json_response(status, body))
        })
    }
}
