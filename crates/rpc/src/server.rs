//! The HTTP server: admission ([`ServeOptions`], the authentication and size gate, batch
//! handling) around the methods, and [`Dispatcher`], the same methods without the
//! transport, for tests and fuzzing.

use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::server::{BatchRequestConfig, PingConfig, RpcModule, Server, ServerConfig, ServerHandle};

use crate::auth::Credentials;
use crate::backend::Backend;
use crate::batch;
use crate::envelope::{self, Prepared};
use crate::gate::GateLayer;
use crate::methods::{self, Context, build};

/// Subscriptions one WebSocket connection holds at most.
const MAX_SUBSCRIPTIONS: u32 = 8;
/// Messages waiting to be sent on one WebSocket connection at most (a subscriber that
/// falls further behind has its subscription ended).
const MESSAGE_BUFFER: u32 = 256;

/// A running server.
#[derive(Debug)]
pub struct RpcServer {
    /// Where it listens.
    pub address: SocketAddr,
    handle: ServerHandle,
}

impl RpcServer {
    /// Stops the server and waits until it has stopped.
    pub async fn stop(self) {
        if self.handle.stop().is_ok() {
            self.handle.stopped().await;
        }
    }
}

/// How the server admits requests.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Who may call.
    pub credentials: Credentials,
    /// Largest request body, in bytes.
    pub max_body: u32,
    /// Most requests in one batch.
    pub max_batch: u32,
    /// Most connections at once.
    pub max_connections: u32,
}

impl ServeOptions {
    /// Defaults around `credentials`: 4 MiB bodies, batches of 1,000, 64 connections.
    pub fn new(credentials: Credentials) -> ServeOptions {
        ServeOptions {
            credentials,
            max_body: 4 * 1024 * 1024,
            max_batch: 1_000,
            max_connections: 64,
        }
    }
}

/// The API without its HTTP transport: what the server does with one authenticated request
/// body (normalization, parameter parsing, the method). For tests and fuzzing; batches and
/// HTTP-level limits belong to the server.
pub struct Dispatcher {
    module: RpcModule<Context>,
}

impl Dispatcher {
    /// The methods over `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Result<Dispatcher, RegisterMethodError> {
        Ok(Dispatcher {
            module: build(backend)?,
        })
    }

    /// The answer to one request body (a JSON-RPC object), in Bitcoin Core's envelope, or
    /// `None` when there is none (a notification, or a batch: batches belong to the server).
    /// Must run inside a tokio runtime (methods run on its blocking pool).
    pub async fn call(&self, body: &[u8]) -> Option<String> {
        let (body, envelope) = match envelope::prepare(body) {
            Prepared::Forward { envelope, .. } if envelope.is_batch() => return None,
            Prepared::Forward { body, envelope } => (body, envelope),
            Prepared::Answer { body, .. } => return Some(body),
        };
        let text = std::str::from_utf8(&body).ok()?;
        let (answer, _) = self.module.raw_json_request(text, 1).await.ok()?;
        let (_, answer) = envelope.finish(http::StatusCode::OK, answer.get().as_bytes());
        String::from_utf8(answer).ok().filter(|a| !a.is_empty())
    }
}

/// Starts serving `backend` on `listen`: JSON-RPC 2.0 and 1.0-style requests and batches
/// over HTTP POST, each authenticated with HTTP Basic, and JSON-RPC 2.0 over a WebSocket
/// (authenticated at the upgrade) for subscriptions.
pub async fn serve(listen: SocketAddr, backend: Arc<dyn Backend>, options: ServeOptions) -> std::io::Result<RpcServer> {
    let config = ServerConfig::builder()
        // WebSocket too, for subscriptions: the upgrade passes the gate (authenticated) and
        // each message is then bounded by jsonrpsee's request limit below.
        .max_subscriptions_per_connection(MAX_SUBSCRIPTIONS)
        .set_message_buffer_capacity(MESSAGE_BUFFER)
        .enable_ws_ping(PingConfig::new())
        // The gate enforces `max_body` on the body as sent; the envelope may lengthen it a
        // little (a `"jsonrpc"` field, synthetic ids) before jsonrpsee reads it.
        .max_request_body_size(options.max_body.saturating_mul(2))
        .max_connections(options.max_connections)
        .max_response_body_size(batch::MAX_RESPONSE_BYTES)
        .set_batch_request_config(BatchRequestConfig::Limit(options.max_batch))
        .build();
    let gate = tower::ServiceBuilder::new().layer(GateLayer::new(options.credentials, options.max_body as usize));
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(gate)
        .set_rpc_middleware(
            jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new()
                .layer_fn(|service| batch::ConcurrentBatches { service }),
        )
        .build(listen)
        .await?;
    let address = server.local_addr()?;
    let module = build(backend).map_err(std::io::Error::other)?;
    let mut served: Vec<&str> = module.method_names().collect();
    served.sort_unstable();
    let mut listed: Vec<&str> = methods::METHODS.iter().map(|m| m.name).collect();
    listed.sort_unstable();
    if served != listed {
        return Err(std::io::Error::other(format!(
            "the method table and the served methods differ: {listed:?} vs {served:?}"
        )));
    }
    let handle = server.start(module);
    Ok(RpcServer { address, handle })
}
