//! The blocking client against servers that misbehave or answer as Bitcoin Core does: no
//! server, no answer, errors with HTTP error statuses.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use serde_json::json;
use timecoin_rpc::{Client, ClientError};

/// A server on loopback that reads one request per connection and answers each with
/// `status` and `body` (or never, for `None`), for `connections` connections.
fn canned(status: Option<&'static str>, body: &'static str, connections: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let mut reader = BufReader::new(stream.unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            reader.read_exact(&mut vec![0; length]).unwrap();
            let Some(status) = status else {
                std::thread::sleep(Duration::from_secs(5));
                continue;
            };
            let mut stream = reader.into_inner();
            write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
    });
    address
}

#[test]
fn no_server_is_reported_with_what_to_check() {
    let address = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let error = Client::new(address, "u", "p")
        .call("getblockcount", json!([]))
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::Connect { source, .. } if source.kind() == std::io::ErrorKind::ConnectionRefused),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&address.to_string()) && message.contains("is timed running"),
        "{message}"
    );
}

#[test]
fn a_call_without_an_answer_times_out() {
    let address = canned(None, "", 1);
    let client = Client::new(address, "u", "p").timeout(Duration::from_millis(300));
    let start = Instant::now();
    let error = client.call("getblockcount", json!([])).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
    assert!(
        matches!(&error, ClientError::Connect { source, .. } if source.kind() == std::io::ErrorKind::TimedOut),
        "{error:?}"
    );
}

#[test]
fn json_rpc_errors_sent_with_an_error_status_are_read() {
    // Bitcoin Core answers a failed call with HTTP 500 (404 for an unknown method) and the
    // JSON-RPC error in the body.
    let body = r#"{"result":null,"error":{"code":-8,"message":"Block height out of range"},"id":1}"#;
    let address = canned(Some("500 Internal Server Error"), body, 2);
    let client = Client::new(address, "u", "p");
    let error = client.call("getblockhash", json!([99])).unwrap_err();
    assert!(
        matches!(&error, ClientError::Rpc { code: -8, message } if message == "Block height out of range"),
        "{error:?}"
    );
    // The raw exchange keeps the status.
    assert!(matches!(client.post("{}"), Err(ClientError::Http { status: 500, .. })));
}

#[test]
fn an_error_status_without_json_rpc_is_an_http_error() {
    let address = canned(Some("503 Service Unavailable"), "warming up", 1);
    let error = Client::new(address, "u", "p")
        .call("getblockcount", json!([]))
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::Http { status: 503, body } if body == "warming up"),
        "{error:?}"
    );
}

/// A hostile server's huge answer, with terminal escapes, reaches an error (and so
/// `time-cli`'s terminal) as its length and an escaped start only.
#[test]
fn an_error_shows_only_an_escaped_excerpt_of_a_huge_answer() {
    let body: &'static str = Box::leak(format!("\u{1b}[2J{}", "x".repeat(100_000)).into_boxed_str());
    let address = canned(Some("503 Service Unavailable"), body, 1);
    let error = Client::new(address, "u", "p")
        .call("getblockcount", json!([]))
        .unwrap_err();
    let shown = error.to_string();
    assert!(shown.len() < 400, "{} bytes shown", shown.len());
    assert!(!shown.contains('\u{1b}') && shown.contains("100004 bytes"), "{shown}");
}

#[test]
fn a_client_does_not_show_its_credentials() {
    let client = Client::new("127.0.0.1:1".parse().unwrap(), "alice", "wonderland");
    let shown = format!("{client:?}");
    assert!(!shown.contains("wonderland") && !shown.contains("Basic"), "{shown}");
}
