//! Bitcoin Core's JSON-RPC envelope, byte for byte in its fields and HTTP statuses (Bitcoin
//! Core 28, PR 27101), over real HTTP: what stock Bitcoin RPC libraries parse.

use serde_json::{Value, json};

use crate::server::{Served, fixed};

/// The block hash the fixed chain has at height 3.
fn hash3() -> Value {
    json!(hex::encode([3u8; 32]))
}

/// Posts `body`: the status and the parsed answer (`Value::Null` for an empty body).
fn post(served: &Served, body: &str) -> (u16, Value) {
    let (status, answer) = served.exchange(body);
    let parsed = if answer.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"))
    };
    (status, parsed)
}

/// The names of an answer object's fields, sorted.
fn fields(answer: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = answer.as_object().unwrap().keys().map(String::as_str).collect();
    names.sort_unstable();
    names
}

fn error_code(answer: &Value) -> i64 {
    answer["error"]["code"].as_i64().unwrap()
}

#[test]
fn a_request_without_jsonrpc_2_gets_result_error_and_id_and_an_http_status() {
    let served = Served::serving(fixed(), |_| {});
    // python-bitcoinrpc's request: "version": "1.1", no "jsonrpc".
    let (status, answer) = post(
        &served,
        r#"{"version":"1.1","method":"getblockhash","params":[3],"id":"x"}"#,
    );
    assert_eq!(status, 200);
    assert_eq!(answer, json!({"result": hash3(), "error": null, "id": "x"}));
    // "jsonrpc": "1.0", as some documentation wrote requests, is the same style.
    let (status, answer) = post(
        &served,
        r#"{"jsonrpc":"1.0","method":"getblockcount","params":[],"id":5}"#,
    );
    assert_eq!((status, answer), (200, json!({"result": 7, "error": null, "id": 5})));
    // A method that returns nothing: both fields present and null.
    let (status, answer) = post(
        &served,
        r#"{"method":"addnode","params":["127.0.0.1:1","onetry"],"id":1}"#,
    );
    assert_eq!((status, answer), (200, json!({"result": null, "error": null, "id": 1})));
    // A failed call: HTTP 500 and the error.
    let (status, answer) = post(&served, r#"{"method":"getblockhash","params":[99],"id":1}"#);
    assert_eq!(status, 500);
    assert_eq!(fields(&answer), ["error", "id", "result"]);
    assert_eq!((answer["result"].clone(), error_code(&answer)), (Value::Null, -8));
    // An unknown method: 404.
    let (status, answer) = post(&served, r#"{"method":"nosuchmethod","params":[],"id":2}"#);
    assert_eq!(
        (status, error_code(&answer), answer["id"].clone()),
        (404, -32601, json!(2))
    );
    // A request that is not valid (its method not a string): 400.
    let (status, answer) = post(&served, r#"{"method":7,"id":3}"#);
    assert_eq!(
        (status, error_code(&answer), answer["id"].clone()),
        (400, -32600, json!(3))
    );
    // A version Bitcoin Core does not know: refused as an invalid request, in the 1.0 style.
    let (status, answer) = post(&served, r#"{"jsonrpc":"1.1","method":"getblockcount","id":4}"#);
    assert_eq!((status, error_code(&answer)), (400, -32600));
    assert_eq!(fields(&answer), ["error", "id", "result"]);
    // No id: still answered (a 1.0 request is never a notification), with no id field.
    let (status, answer) = post(&served, r#"{"method":"getblockcount","params":null}"#);
    assert_eq!((status, answer), (200, json!({"result": 7, "error": null})));
    // Any JSON value is an id, and comes back unchanged.
    for id in [json!(-1), json!(2.5), json!({"a": [1, null]}), json!(null), json!([])] {
        let body = json!({"method": "getblockcount", "id": id}).to_string();
        let (status, answer) = post(&served, &body);
        assert_eq!((status, answer), (200, json!({"result": 7, "error": null, "id": id})));
    }
}

#[test]
fn a_json_rpc_2_request_gets_strict_2_0() {
    let served = Served::serving(fixed(), |_| {});
    let (status, answer) = post(&served, r#"{"jsonrpc":"2.0","method":"getblockcount","id":1}"#);
    assert_eq!((status, answer), (200, json!({"jsonrpc": "2.0", "result": 7, "id": 1})));
    // Errors: HTTP 200, no result field.
    for (body, code) in [
        (
            r#"{"jsonrpc":"2.0","method":"getblockhash","params":[99],"id":"a"}"#,
            -8,
        ),
        (r#"{"jsonrpc":"2.0","method":"nosuchmethod","id":"a"}"#, -32601),
    ] {
        let (status, answer) = post(&served, body);
        assert_eq!((status, error_code(&answer)), (200, code));
        assert_eq!(fields(&answer), ["error", "id", "jsonrpc"]);
        assert_eq!(answer["id"], json!("a"));
    }
    // A null result is there, and null.
    let (_, answer) = post(
        &served,
        r#"{"jsonrpc":"2.0","method":"addnode","params":["127.0.0.1:1","onetry"],"id":[7]}"#,
    );
    assert_eq!(answer, json!({"jsonrpc": "2.0", "result": null, "id": [7]}));
    // A notification is run and not answered: 204 and no body.
    let (status, body) = served.exchange(r#"{"jsonrpc":"2.0","method":"getblockcount"}"#);
    assert_eq!((status, body.as_str()), (204, ""));
}

#[test]
fn a_json_rpc_2_notification_is_run_and_a_malformed_one_refused() {
    let backend = fixed();
    let stops = std::sync::Arc::clone(&backend.stops);
    let served = Served::serving(backend, |_| {});
    let (status, body) = served.exchange(r#"{"jsonrpc":"2.0","method":"stop"}"#);
    assert_eq!((status, body.as_str()), (204, ""));
    assert_eq!(
        stops.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "the notification ran"
    );
    // In a batch too, its answer left out.
    let (status, answer) = post(
        &served,
        r#"[{"jsonrpc":"2.0","method":"stop"},{"jsonrpc":"2.0","method":"getblockcount","id":1}]"#,
    );
    assert_eq!(
        (status, answer),
        (200, json!([{"jsonrpc": "2.0", "result": 7, "id": 1}]))
    );
    assert_eq!(stops.load(std::sync::atomic::Ordering::Relaxed), 2);
    // One that is not a valid request is still refused, as Bitcoin Core does.
    let (status, answer) = post(&served, r#"{"jsonrpc":"2.0","method":7}"#);
    assert_eq!(
        (status, error_code(&answer), answer["id"].clone()),
        (200, -32600, Value::Null)
    );
}

#[test]
fn a_batch_answers_each_request_in_its_own_style_in_order() {
    let served = Served::serving(fixed(), |_| {});
    let (status, answer) = post(
        &served,
        r#"[
            {"method":"getblockhash","params":[3],"id":1},
            {"jsonrpc":"2.0","method":"getblockhash","params":[99],"id":1},
            {"jsonrpc":"2.0","method":"getblockcount"},
            {"method":"nosuchmethod","id":"z"},
            5,
            {"jsonrpc":"2.0","method":"getblockcount","id":-3}
        ]"#,
    );
    assert_eq!(status, 200, "a batch is always 200, whatever its answers");
    let answers = answer.as_array().unwrap();
    assert_eq!(answers.len(), 5, "the notification is not answered: {answer}");
    assert_eq!(answers[0], json!({"result": hash3(), "error": null, "id": 1}));
    assert_eq!(
        (fields(&answers[1]), error_code(&answers[1])),
        (vec!["error", "id", "jsonrpc"], -8)
    );
    assert_eq!(answers[1]["id"], json!(1), "ids may repeat: each answer keeps its own");
    assert_eq!(
        (error_code(&answers[2]), answers[2]["id"].clone()),
        (-32601, json!("z"))
    );
    assert_eq!(answers[2]["result"], Value::Null);
    assert_eq!(
        (error_code(&answers[3]), answers[3]["id"].clone()),
        (-32600, Value::Null)
    );
    assert_eq!(answers[4], json!({"jsonrpc": "2.0", "result": 7, "id": -3}));
    // Only notifications: 204. An empty batch: [] (Bitcoin Core keeps 1.0 clients working).
    let notifications = r#"[{"jsonrpc":"2.0","method":"getblockcount"},{"jsonrpc":"2.0","method":"uptime"}]"#;
    let (status, body) = served.exchange(notifications);
    assert_eq!((status, body.as_str()), (204, ""));
    assert_eq!(post(&served, "[]"), (200, json!([])));
}

#[test]
fn a_body_that_is_not_a_request_gets_bitcoin_cores_parse_error() {
    let served = Served::serving(fixed(), |_| {});
    for (body, message) in [
        ("{not json", "Parse error"),
        ("", "Parse error"),
        ("5", "Top-level object parse error"),
        (r#""getblockcount""#, "Top-level object parse error"),
    ] {
        let (status, answer) = post(&served, body);
        assert_eq!(status, 500, "{body}");
        assert_eq!(
            answer,
            json!({"result": null, "error": {"code": -32700, "message": message}, "id": null})
        );
    }
    // Still serving.
    let (status, answer) = post(&served, r#"{"method":"getblockcount","id":1}"#);
    assert_eq!((status, answer["result"].clone()), (200, json!(7)));
}
