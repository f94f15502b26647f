//! A small blocking JSON-RPC client with HTTP Basic credentials, for `time-cli`, tests and
//! the lab. HTTP is `ureq`'s (plain HTTP only: the API is served on loopback or a LAN); it
//! needs no async runtime. A client keeps a few idle connections for its next calls, so
//! keep one client for many calls.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use thiserror::Error;
use ureq::Agent;

use crate::auth;

/// The longest answer read: what the server may send (its response limit) and some room.
const MAX_ANSWER_BYTES: u64 = 2 * crate::batch::MAX_RESPONSE_BYTES as u64;

/// How long connecting may take, whatever the call's timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server could not be reached, the connection broke, or no answer came in time.
    #[error("could not connect to the server at {address}: {source}{}", hint(.source))]
    Connect {
        /// The server.
        address: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The server refused the credentials.
    #[error("incorrect rpcuser or rpcpassword (authorization failed)")]
    Unauthorized,
    /// The server answered with an HTTP error and no JSON-RPC error in the body.
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
    /// The method failed (or the server refused the whole request with a JSON-RPC error).
    #[error("{message} (code {code})")]
    Rpc {
        /// The JSON-RPC error code.
        code: i64,
        /// The server's message.
        message: String,
    },
}

/// What to try when the server could not be reached.
fn hint(source: &io::Error) -> &'static str {
    match source.kind() {
        io::ErrorKind::ConnectionRefused => {
            " (is timed running? check the RPC address and port: -rpcconnect, -rpcport)"
        }
        _ => "",
    }
}

/// A connection target with credentials.
#[derive(Clone)]
pub struct Client {
    address: SocketAddr,
    url: String,
    authorization: String,
    timeout: Duration,
    agent: Agent,
}

impl fmt::Debug for Client {
    // Without the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("address", &self.address)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the server at `address` with `user` and `password`.
    pub fn new(address: SocketAddr, user: &str, password: &str) -> Client {
        let timeout = Duration::from_secs(900);
        Client {
            address,
            url: format!("http://{address}/"),
            authorization: auth::basic_header(user, password),
            timeout,
            agent: agent(timeout),
        }
    }

    /// A client using the cookie file at `cookie`.
    pub fn with_cookie(address: SocketAddr, cookie: &Path) -> io::Result<Client> {
        let (user, password) = auth::read_cookie(cookie)?;
        Ok(Client::new(address, &user, &password))
    }

    /// Sets how long a call may take, from connecting to the last byte of the answer.
    pub fn timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self.agent = agent(timeout);
        self
    }

    /// Calls `method` with `params` (a JSON array, or an object for named parameters).
    pub fn call(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
        let (response, answer) = self.exchange(&body)?;
        outcome(&response).ok_or_else(|| ClientError::Malformed(format!("no result in {}", excerpt(&answer))))?
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
        let (answer, text) = self.exchange(&Value::Array(requests).to_string())?;
        let malformed = |why: &str| ClientError::Malformed(format!("{why} in a batch answer of {} bytes", text.len()));
        let responses = match answer {
            Value::Array(responses) => responses,
            // The batch refused as a whole (too many calls, say): one error object.
            refusal => {
                return Err(match outcome(&refusal) {
                    Some(Err(error)) => error,
                    _ => malformed("no array"),
                });
            }
        };
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

    /// Posts a raw body and returns the raw answer of a 200 (for tests and scripts).
    pub fn post(&self, body: &str) -> Result<String, ClientError> {
        match self.send(body)? {
            (200, answer) => Ok(answer),
            (status, answer) => Err(http_error(status, answer)),
        }
    }

    /// Posts `body` and parses the answer. An error status carrying a JSON-RPC answer is an
    /// answer: Bitcoin Core sends a failed call's error with HTTP 500 (or 404 for an unknown
    /// method), and its callers read the body whatever the status.
    fn exchange(&self, body: &str) -> Result<(Value, String), ClientError> {
        let (status, answer) = self.send(body)?;
        if status == 401 {
            return Err(ClientError::Unauthorized);
        }
        match serde_json::from_str::<Value>(&answer) {
            Ok(parsed) if status == 200 || is_rpc_error(&parsed) => Ok((parsed, answer)),
            Err(error) if status == 200 => Err(ClientError::Malformed(format!("{error} in {}", excerpt(&answer)))),
            _ => Err(http_error(status, answer)),
        }
    }

    /// Posts `body`; the status and the body of whatever the server answered.
    fn send(&self, body: &str) -> Result<(u16, String), ClientError> {
        let failed = |error: ureq::Error| match error {
            ureq::Error::Protocol(_) | ureq::Error::LargeResponseHeader(..) | ureq::Error::BodyExceedsLimit(_) => {
                ClientError::Malformed(error.to_string())
            }
            error => ClientError::Connect {
                address: self.address,
                source: io_error(error, self.timeout),
            },
        };
        let mut response = self
            .agent
            .post(self.url.as_str())
            .header("Authorization", self.authorization.as_str())
            .content_type("application/json")
            .send(body)
            .map_err(failed)?;
        let status = response.status().as_u16();
        let answer = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(failed)?;
        Ok((status, answer))
    }
}

/// The HTTP agent of a client whose calls may take `timeout`.
fn agent(timeout: Duration) -> Agent {
    Agent::config_builder()
        // Statuses are read here: 401 means wrong credentials, and a 500 may carry a
        // JSON-RPC error.
        .http_status_as_error(false)
        // The server is named by its address: no proxy from the environment, no redirects.
        .proxy(None)
        .max_redirects(0)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(timeout))
        .build()
        .new_agent()
}

/// `error` as an I/O error, a timeout saying which.
fn io_error(error: ureq::Error, timeout: Duration) -> io::Error {
    match error {
        ureq::Error::Timeout(ureq::Timeout::Connect) => io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no connection within {}s", CONNECT_TIMEOUT.as_secs()),
        ),
        ureq::Error::Timeout(_) => io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer within {:.1}s", timeout.as_secs_f64()),
        ),
        error => error.into_io(),
    }
}

/// The error for an answer with `status` that is not a JSON-RPC answer.
fn http_error(status: u16, body: String) -> ClientError {
    match status {
        401 => ClientError::Unauthorized,
        _ => ClientError::Http {
            status,
            body: excerpt(&body),
        },
    }
}

/// What an error shows of a server's answer: its length and its first 200 characters, with
/// control characters escaped (a hostile server's megabytes or terminal escapes reach no
/// terminal whole).
fn excerpt(answer: &str) -> String {
    let start: String = answer.chars().take(200).collect();
    if start.len() == answer.len() {
        format!("{}", start.escape_debug())
    } else {
        format!("an answer of {} bytes starting {}…", answer.len(), start.escape_debug())
    }
}

/// Whether `answer` is a JSON-RPC response carrying an error.
fn is_rpc_error(answer: &Value) -> bool {
    answer.get("error").is_some_and(|e| e.is_object())
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
