//! A small blocking JSON-RPC client over HTTP/1.1 with Basic credentials, for `time-cli`,
//! tests and scripts. It needs no async runtime: one request per connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use thiserror::Error;

use crate::auth;

/// Why a call failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server could not be reached or the connection broke.
    #[error("could not connect to the server at {address}: {source}")]
    Connect {
        /// The server.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server refused the credentials.
    #[error("incorrect rpcuser or rpcpassword (authorization failed)")]
    Unauthorized,
    /// The server answered with an HTTP error.
    #[error("server answered HTTP {status}: {body}")]
    Http {
        /// The status code.
        status: u16,
        /// The body.
        body: String,
    },
    /// The answer is not a JSON-RPC response.
    #[error("malformed answer from the server: {0}")]
    Malformed(String),
    /// The method failed.
    #[error("{message} (code {code})")]
    Rpc {
        /// The JSON-RPC error code.
        code: i64,
        /// The server's message.
        message: String,
    },
}

/// A connection target with credentials.
#[derive(Debug, Clone)]
pub struct Client {
    address: SocketAddr,
    authorization: String,
    timeout: Duration,
}

impl Client {
    /// A client of the server at `address` with `user` and `password`.
    pub fn new(address: SocketAddr, user: &str, password: &str) -> Client {
        Client {
            address,
            authorization: auth::basic_header(user, password),
            timeout: Duration::from_secs(900),
        }
    }

    /// A client using the cookie file at `cookie`.
    pub fn with_cookie(address: SocketAddr, cookie: &Path) -> std::io::Result<Client> {
        let (user, password) = auth::read_cookie(cookie)?;
        Ok(Client::new(address, &user, &password))
    }

    /// Sets how long a call may take.
    pub fn timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// Calls `method` with `params` (a JSON array, or an object for named parameters).
    pub fn call(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
        let answer = self.post(&body)?;
        let response: Value =
            serde_json::from_str(&answer).map_err(|e| ClientError::Malformed(format!("{e}: {answer}")))?;
        outcome(&response).ok_or_else(|| ClientError::Malformed(format!("no result in {answer}")))?
    }

    /// Calls each `(method, params)` in one JSON-RPC batch (one HTTP request) and returns
    /// each call's outcome in the order given. The batch as a whole fails only when the
    /// server refuses it or answers something else than one response per call.
    pub fn call_batch(&self, calls: &[(&str, Value)]) -> Result<Vec<Result<Value, ClientError>>, ClientError> {
        let requests: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(id, (method, params))| json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .collect();
        let answer = self.post(&Value::Array(requests).to_string())?;
        let malformed =
            |why: &str| ClientError::Malformed(format!("{why} in a batch answer of {} bytes", answer.len()));
        let responses: Vec<Value> = serde_json::from_str(&answer).map_err(|e| malformed(&e.to_string()))?;
        let mut outcomes: Vec<Option<Result<Value, ClientError>>> = calls.iter().map(|_| None).collect();
        for response in &responses {
            let slot = response
                .get("id")
                .and_then(Value::as_u64)
                .and_then(|id| usize::try_from(id).ok())
                .and_then(|id| outcomes.get_mut(id))
                .ok_or_else(|| malformed("a response with an unknown id"))?;
            *slot = Some(outcome(response).ok_or_else(|| malformed("a response without a result"))?);
        }
        outcomes
            .into_iter()
            .map(|o| o.ok_or_else(|| malformed("a call without a response")))
            .collect()
    }

    /// Posts a raw body and returns the raw answer (for batches and tests).
    pub fn post(&self, body: &str) -> Result<String, ClientError> {
        let connect = |source| ClientError::Connect {
            address: self.address,
            source,
        };
        let mut stream = TcpStream::connect_timeout(&self.address, Duration::from_secs(10)).map_err(connect)?;
        stream.set_read_timeout(Some(self.timeout)).map_err(connect)?;
        let written = write!(
            stream,
            "POST / HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.address,
            self.authorization,
            body.len()
        );
        // A server may answer before reading the whole body (413 for one too large) and close:
        // the answer, if it arrived, says more than the failed write.
        let mut raw = Vec::new();
        let read = stream.read_to_end(&mut raw);
        if raw.is_empty() {
            written.map_err(connect)?;
            read.map_err(connect)?;
        }
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| ClientError::Malformed("no HTTP header".to_owned()))?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ClientError::Malformed(format!("bad status line in {head:?}")))?;
        match status {
            200 => Ok(body.to_owned()),
            401 => Err(ClientError::Unauthorized),
            _ => Err(ClientError::Http {
                status,
                body: body.to_owned(),
            }),
        }
    }
}

/// A JSON-RPC response's outcome: its result or its error, `None` when it has neither.
fn outcome(response: &Value) -> Option<Result<Value, ClientError>> {
    if let Some(error) = response.get("error").filter(|e| !e.is_null()) {
        return Some(Err(ClientError::Rpc {
            code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("unknown error")
                .to_owned(),
        }));
    }
    response.get("result").cloned().map(Ok)
}
