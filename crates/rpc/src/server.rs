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
/// Largest WebSocket message a client may send: a `subscribeaddresses` of 1,000 addresses
/// fits.
const WEBSOCKET_MAX_MESSAGE: u32 = 128 * 1024;
/// WebSocket connections at once at most.
const WEBSOCKET_MAX_CONNECTIONS: u32 = 32;

/// A running server: HTTP, and the WebSocket listener if configured.
#[derive(Debug)]
pub struct RpcServer {
    /// Where it listens for HTTP.
    pub address: SocketAddr,
    /// Where it listens for WebSocket subscriptions, if it does.
    pub websocket: Option<SocketAddr>,
    handles: Vec<ServerHandle>,
}

impl RpcServer {
    /// Stops the servers and waits until they have stopped.
    pub async fn stop(self) {
        for handle in self.handles {
            if handle.stop().is_ok() {
                handle.stopped().await;
            }
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
    /// Where to serve WebSocket subscriptions, if anywhere.
    pub websocket: Option<SocketAddr>,
}

impl ServeOptions {
    /// Defaults around `credentials`: 4 MiB bodies, batches of 1,000, 64 connections, no
    /// WebSocket.
    pub fn new(credentials: Credentials) -> ServeOptions {
        ServeOptions {
            credentials,
            max_body: 4 * 1024 * 1024,
            max_batch: 1_000,
            max_connections: 64,
            websocket: None,
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
            module: build(backend, false)?,
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
/// over HTTP POST, each authenticated with HTTP Basic; and, on `options.websocket`, JSON-RPC
/// 2.0 over a WebSocket (authenticated at the upgrade) for the subscription methods alone.
pub async fn serve(listen: SocketAddr, backend: Arc<dyn Backend>, options: ServeOptions) -> std::io::Result<RpcServer> {
    let config = ServerConfig::builder()
        .http_only()
        // The gate enforces `max_body` on the body as sent; the envelope may lengthen it a
        // little (a `"jsonrpc"` field, synthetic ids) before jsonrpsee reads it.
        .max_request_body_size(options.max_body.saturating_mul(2))
        .max_connections(options.max_connections)
        .max_response_body_size(batch::MAX_RESPONSE_BYTES)
        .set_batch_request_config(BatchRequestConfig::Limit(options.max_batch))
        .build();
    let gate =
        tower::ServiceBuilder::new().layer(GateLayer::new(options.credentials.clone(), options.max_body as usize));
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
    let module = checked(
        build(Arc::clone(&backend), false).map_err(std::io::Error::other)?,
        false,
    )?;
    let mut handles = vec![server.start(module)];
    let websocket = match options.websocket {
        Some(listen) => {
            let (address, handle) = serve_websocket(listen, backend, options.credentials).await?;
            handles.push(handle);
            Some(address)
        }
        None => None,
    };
    Ok(RpcServer {
        address,
        websocket,
        handles,
    })
}

/// The WebSocket listener: the subscription methods only, small messages, few connections,
/// no batches. (jsonrpsee runs each WebSocket message as its own task with no bound on how
/// many wait to be answered, so this listener serves nothing that costs more than a
/// subscription.)
async fn serve_websocket(
    listen: SocketAddr,
    backend: Arc<dyn Backend>,
    credentials: Credentials,
) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let config = ServerConfig::builder()
        .ws_only()
        .max_request_body_size(WEBSOCKET_MAX_MESSAGE)
        .max_response_body_size(WEBSOCKET_MAX_MESSAGE)
        .max_connections(WEBSOCKET_MAX_CONNECTIONS)
        .max_subscriptions_per_connection(MAX_SUBSCRIPTIONS)
        .set_message_buffer_capacity(MESSAGE_BUFFER)
        .set_batch_request_config(BatchRequestConfig::Disabled)
        .enable_ws_ping(PingConfig::new())
        .build();
    let gate = tower::ServiceBuilder::new().layer(GateLayer::new(credentials, WEBSOCKET_MAX_MESSAGE as usize));
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(gate)
        .build(listen)
        .await?;
    let address = server.local_addr()?;
    let module = checked(build(backend, true).map_err(std::io::Error::other)?, true)?;
    Ok((address, server.start(module)))
}

/// `module`, once it serves exactly the table's methods for its transport.
fn checked(module: RpcModule<Context>, websocket: bool) -> std::io::Result<RpcModule<Context>> {
    let mut served: Vec<&str> = module.method_names().collect();
    served.sort_unstable();
    let mut listed: Vec<&str> = methods::METHODS
        .iter()
        .filter(|m| (m.category == methods::WEBSOCKET_CATEGORY) == websocket)
        .map(|m| m.name)
        .collect();
    listed.sort_unstable();
    if served != listed {
        return Err(std::io::Error::other(format!(
            "the method table and the served methods differ: {listed:?} vs {served:?}"
        )));
    }
    Ok(module)
}
