//! Bitcoin Core's JSON-RPC envelope, exactly (Bitcoin Core 28, release notes of PR 27101),
//! around jsonrpsee, which speaks strict JSON-RPC 2.0 only.
//!
//! - A request with `"jsonrpc": "2.0"` gets strict 2.0: `jsonrpc`, one of `result` and
//!   `error`, and `id`; HTTP 200, or 204 with no body for a notification (no `id`).
//! - Any other request (no `jsonrpc`, or `"1.0"`: the 1.0 and 1.1 styles that `bitcoin-cli`,
//!   python-bitcoinrpc and most stock clients send) gets `result`, `error` and `id`, all
//!   present, one of the first two null, and is never a notification. Alone in a body, its
//!   HTTP status says how it went: 200, 404 for an unknown method, 400 for an invalid
//!   request, 500 for any other error.
//! - A batch mixes both, each answer in its request's style, with HTTP 200; 204 when every
//!   request was a notification; an empty batch gets `[]`.
//! - A body that is not JSON, or neither an object nor an array, gets a 1.0-style parse error
//!   with HTTP 500.
//!
//! How: [`prepare`] gives each request a synthetic id, its position (so that jsonrpsee runs a
//! 2.0 notification too, which it would drop unrun), and marks 1.0-style requests
//! `"jsonrpc": "2.0"` for jsonrpsee;
//! [`Envelope::finish`] puts each answer back in its request's style with its own id. So any
//! JSON value is a valid id, as in Bitcoin Core (jsonrpsee takes only numbers and strings),
//! and two requests of a batch may share one.

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::codes;

/// How a request was asked, and so how it is answered.
#[derive(Debug, Clone, PartialEq)]
enum Style {
    /// Strict JSON-RPC 2.0, with the request's id.
    V2(Value),
    /// 1.0 and 1.1 style, with the request's id if it had one.
    Legacy(Option<Value>),
    /// A 2.0 notification: run (jsonrpsee would not run one) and not answered, unless it is
    /// not a valid request.
    Notification,
}

/// A body ready for the JSON-RPC handler, and what is needed to answer it.
#[derive(Debug)]
pub(crate) enum Prepared {
    /// The body to hand on, and how to answer it.
    Forward { body: Vec<u8>, envelope: Envelope },
    /// An answer that needs no handler.
    Answer { status: StatusCode, body: String },
}

/// How the requests of a body were asked.
#[derive(Debug)]
pub(crate) struct Envelope {
    /// The style of each request given a synthetic id (its index).
    styles: Vec<Style>,
    batch: bool,
    /// Every request was a 2.0 notification.
    notifications_only: bool,
}

/// One answer as jsonrpsee writes it: only the fields the envelope needs, the result and the
/// error left as their raw text.
#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    result: Option<&'a RawValue>,
    #[serde(default, borrow)]
    error: Option<&'a RawValue>,
}

/// The 1.0-style answer to a body that is not a request (Bitcoin Core's parse errors).
fn parse_error(message: &str) -> Prepared {
    Prepared::Answer {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: json!({"result": null, "error": {"code": codes::PARSE_ERROR, "message": message}, "id": null})
            .to_string(),
    }
}

/// Readies one request object for jsonrpsee; `index` is its synthetic id. Whether it is
/// a 2.0 notification.
fn prepare_request(request: &mut Value, index: usize, styles: &mut [Style]) -> bool {
    let Value::Object(object) = request else {
        return false;
    };
    let v2 = object.get("jsonrpc").is_some_and(|v| v == "2.0");
    let id = object.remove("id");
    if object.get("params").is_some_and(Value::is_null) {
        object.remove("params");
    }
    let style = match (v2, id) {
        // A 2.0 notification is run as a call whose answer is then dropped (as Bitcoin Core
        // runs it); jsonrpsee would drop it unrun.
        (true, None) => Style::Notification,
        (true, Some(id)) => Style::V2(id),
        (false, id) => {
            // `"jsonrpc": "1.0"` is 1.0 style too (some documentation put it in requests); any
            // other value is left for jsonrpsee to refuse as an invalid request.
            match object.get("jsonrpc") {
                None => {
                    object.insert("jsonrpc".to_owned(), Value::from("2.0"));
                }
                Some(version) if version == "1.0" => {
                    object.insert("jsonrpc".to_owned(), Value::from("2.0"));
                }
                Some(_) => {}
            }
            Style::Legacy(id)
        }
    };
    object.insert("id".to_owned(), Value::from(index));
    let notification = style == Style::Notification;
    if let Some(slot) = styles.get_mut(index) {
        *slot = style;
    }
    notification
}

/// Readies a request body: see the module's doc.
pub(crate) fn prepare(bytes: &[u8]) -> Prepared {
    let Ok(mut json) = serde_json::from_slice::<Value>(bytes) else {
        return parse_error("Parse error");
    };
    match &mut json {
        Value::Array(requests) if requests.is_empty() => {
            return Prepared::Answer {
                status: StatusCode::OK,
                body: "[]".to_owned(),
            };
        }
        Value::Array(requests) => {
            // Unused slots (notifications, entries that are not objects) keep a placeholder.
            let mut styles = vec![Style::Legacy(None); requests.len()];
            let mut notifications = 0;
            for (index, request) in requests.iter_mut().enumerate() {
                notifications += usize::from(prepare_request(request, index, &mut styles));
            }
            let notifications_only = notifications == requests.len();
            return Prepared::Forward {
                body: json.to_string().into_bytes(),
                envelope: Envelope {
                    styles,
                    batch: true,
                    notifications_only,
                },
            };
        }
        Value::Object(_) => {}
        _ => return parse_error("Top-level object parse error"),
    }
    let mut styles = vec![Style::Legacy(None)];
    let notifications_only = prepare_request(&mut json, 0, &mut styles);
    Prepared::Forward {
        body: json.to_string().into_bytes(),
        envelope: Envelope {
            styles,
            batch: false,
            notifications_only,
        },
    }
}

/// The HTTP status of a lone 1.0-style request's error, as Bitcoin Core gives it.
fn legacy_status(error: &RawValue) -> StatusCode {
    #[derive(Deserialize)]
    struct Code {
        code: i32,
    }
    match serde_json::from_str::<Code>(error.get()).map(|c| c.code) {
        Ok(codes::INVALID_REQUEST) => StatusCode::BAD_REQUEST,
        Ok(codes::METHOD_NOT_FOUND) => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl Envelope {
    /// Whether the body was a batch.
    pub(crate) fn is_batch(&self) -> bool {
        self.batch
    }

    /// The answer to the body, from jsonrpsee's answer `(status, body)` to what
    /// [`prepare`] handed on.
    pub(crate) fn finish(&self, status: StatusCode, answer: &[u8]) -> (StatusCode, Vec<u8>) {
        let (styles, batch) = (&self.styles, self.batch);
        // Not what jsonrpsee answers to a request (an HTTP-level refusal): handed on as is.
        let pass = || (status, answer.to_vec());
        let nothing = || (StatusCode::NO_CONTENT, Vec::new());
        if batch {
            let Ok(replies) = serde_json::from_slice::<Vec<Reply>>(answer) else {
                return pass();
            };
            let answers: Vec<Out> = replies.iter().filter_map(|r| restyle(r, styles)).collect();
            if answers.is_empty() && self.notifications_only {
                return nothing();
            }
            (StatusCode::OK, to_vec(&answers))
        } else {
            let Ok(reply) = serde_json::from_slice::<Reply>(answer) else {
                return pass();
            };
            let Some(answer) = restyle(&reply, styles) else {
                return nothing();
            };
            let status = match (&answer, reply.error) {
                (Out::Legacy { .. }, Some(error)) => legacy_status(error),
                _ => StatusCode::OK,
            };
            (status, to_vec(&answer))
        }
    }
}

/// Whether `error` is the refusal of a request that is not valid (which even a
/// notification is answered with).
fn is_invalid_request(error: &RawValue) -> bool {
    #[derive(Deserialize)]
    struct Code {
        code: i32,
    }
    serde_json::from_str::<Code>(error.get()).is_ok_and(|c| c.code == codes::INVALID_REQUEST)
}

/// One answer as written back: jsonrpsee's result and error, unparsed, in the request's style.
#[derive(Serialize)]
#[serde(untagged)]
enum Out<'a> {
    V2Result {
        jsonrpc: &'static str,
        result: Option<&'a RawValue>,
        id: &'a Value,
    },
    V2Error {
        jsonrpc: &'static str,
        error: &'a RawValue,
        id: &'a Value,
    },
    Legacy {
        result: Option<&'a RawValue>,
        error: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
    },
}

/// An answer with no synthetic id is to an entry jsonrpsee could not read (not an object):
/// Bitcoin Core answers those in the 1.0 style with a null id.
const UNREAD: Style = Style::Legacy(Some(Value::Null));

/// One answer in its request's style; `None` for a notification's (unless it was refused as
/// an invalid request).
fn restyle<'a>(reply: &Reply<'a>, styles: &'a [Style]) -> Option<Out<'a>> {
    let style = reply
        .id
        .and_then(|id| serde_json::from_str::<usize>(id.get()).ok())
        .and_then(|index| styles.get(index))
        .unwrap_or(&UNREAD);
    Some(match (style, reply.error) {
        (Style::V2(id), None) => Out::V2Result {
            jsonrpc: "2.0",
            result: reply.result,
            id,
        },
        (Style::V2(id), Some(error)) => Out::V2Error {
            jsonrpc: "2.0",
            error,
            id,
        },
        (Style::Notification, Some(error)) if is_invalid_request(error) => Out::V2Error {
            jsonrpc: "2.0",
            error,
            id: &Value::Null,
        },
        (Style::Notification, _) => return None,
        (Style::Legacy(id), error) => Out::Legacy {
            result: reply.result,
            error,
            id: id.as_ref(),
        },
    })
}

/// `value` as JSON text (serializing these types cannot fail; an empty body if it did).
fn to_vec<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}
