//! The fault-injecting TCP relay. Every node dials its peers through it: the relay listens on
//! one port per node (that node's P2P port, on the relay's address) and tells the dialling
//! node by its source address. So each connection belongs to a link `from → to`, and the
//! relay can delay, jitter, slow, cut or refuse that link's traffic in both directions.
//!
//! TCP hides packet loss behind retransmission, so loss here is what a peer sees of it: a
//! lost segment holds back everything behind it for a retransmission timeout. Bytes are
//! never dropped or reordered, so the nodes' Noise sessions stay intact unless a link is cut.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What the relay does to one link's traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Faults {
    /// Added to every chunk, each way.
    pub(crate) latency_ms: u64,
    /// Up to this much more, drawn per chunk (order is kept).
    pub(crate) jitter_ms: u64,
    /// Chance in percent that a chunk waits a retransmission timeout (200 ms) more.
    pub(crate) loss_percent: u8,
    /// No connection: open ones are cut, new ones closed at once.
    pub(crate) blocked: bool,
}

/// The retransmission wait a lost segment costs (Linux's minimum RTO).
const RETRANSMIT: Duration = Duration::from_millis(200);

/// Chunks in flight per direction of a connection before reading waits.
const IN_FLIGHT: usize = 256;

struct Link {
    faults: Faults,
    /// Cancelled to cut every open connection of the link.
    cut: CancellationToken,
}

/// Links indexed `[from][to]`.
struct State {
    links: Vec<Vec<Link>>,
    rng: StdRng,
}

/// A running relay; dropping it closes every connection.
pub(crate) struct Relay {
    state: Arc<Mutex<State>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Relay {
    /// Listens on `listen[to]` for connections to node `to` (at `targets[to]`); a connection
    /// from source address `sources[from]` belongs to link `from → to`, one from any other
    /// address is closed.
    pub(crate) fn start(listen: &[SocketAddr], targets: &[SocketAddr], sources: &[IpAddr], seed: u64) -> Result<Relay> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("relay")
            .enable_all()
            .build()
            .context("starting the relay's runtime")?;
        let n = targets.len();
        let state = Arc::new(Mutex::new(State {
            links: (0..n)
                .map(|_| {
                    (0..n)
                        .map(|_| Link {
                            faults: Faults::default(),
                            cut: CancellationToken::new(),
                        })
                        .collect()
                })
                .collect(),
            rng: StdRng::seed_from_u64(seed),
        }));
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let by_source: Arc<HashMap<IpAddr, usize>> =
            Arc::new(sources.iter().enumerate().map(|(i, ip)| (*ip, i)).collect());
        for (to, (address, target)) in listen.iter().zip(targets).enumerate() {
            let listener = runtime
                .block_on(TcpListener::bind(address))
                .with_context(|| format!("relay: listening on {address}"))?;
            let (state, shutdown, by_source, target, spawner) = (
                Arc::clone(&state),
                shutdown.clone(),
                Arc::clone(&by_source),
                *target,
                tasks.clone(),
            );
            tasks.spawn_on(
                async move {
                    loop {
                        let accepted = tokio::select! {
                            () = shutdown.cancelled() => break,
                            accepted = listener.accept() => accepted,
                        };
                        let Ok((stream, peer)) = accepted else { continue };
                        let Some(&from) = by_source.get(&peer.ip()) else {
                            continue;
                        };
                        let (state, shutdown) = (Arc::clone(&state), shutdown.clone());
                        spawner.spawn(async move {
                            relay_connection(state, shutdown, stream, target, from, to).await;
                        });
                    }
                },
                runtime.handle(),
            );
        }
        Ok(Relay {
            state,
            shutdown,
            tasks,
            runtime: Some(runtime),
        })
    }

    /// Sets what happens to link `from → to` (and, for `blocked`, cuts it now).
    pub(crate) fn set(&self, from: usize, to: usize, faults: Faults) {
        let mut state = lock(&self.state);
        if let Some(link) = state.links.get_mut(from).and_then(|l| l.get_mut(to)) {
            link.faults = faults;
            if faults.blocked {
                link.cut.cancel();
                link.cut = CancellationToken::new();
            }
        }
    }

    /// Cuts every open connection of `node` (they may reconnect at once).
    pub(crate) fn cut_node(&self, node: usize) {
        let mut state = lock(&self.state);
        for (from, row) in state.links.iter_mut().enumerate() {
            for (to, link) in row.iter_mut().enumerate() {
                if from == node || to == node {
                    link.cut.cancel();
                    link.cut = CancellationToken::new();
                }
            }
        }
    }

    /// Removes every fault.
    #[cfg(test)]
    pub(crate) fn heal(&self) {
        let n = self.nodes();
        for from in 0..n {
            for to in 0..n {
                self.set(from, to, Faults::default());
            }
        }
    }

    #[cfg(test)]
    fn nodes(&self) -> usize {
        lock(&self.state).links.len()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.tasks.close();
        if let Some(runtime) = self.runtime.take() {
            let tasks = self.tasks.clone();
            runtime.block_on(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), tasks.wait()).await;
            });
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The link's current faults and the token that cuts its open connections.
fn link_of(state: &Mutex<State>, from: usize, to: usize) -> Option<(Faults, CancellationToken)> {
    let state = lock(state);
    let link = state.links.get(from)?.get(to)?;
    Some((link.faults, link.cut.clone()))
}

/// Forwards one accepted connection to `target` until either side closes, the link is cut
/// or the relay stops.
async fn relay_connection(
    state: Arc<Mutex<State>>,
    shutdown: CancellationToken,
    inbound: TcpStream,
    target: SocketAddr,
    from: usize,
    to: usize,
) {
    let Some((faults, cut)) = link_of(&state, from, to) else {
        return;
    };
    if faults.blocked {
        return;
    }
    let connect = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(target));
    let outbound = tokio::select! {
        () = cut.cancelled() => return,
        connected = connect => match connected {
            Ok(Ok(stream)) => stream,
            _ => return,
        },
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let forward = pipe(Arc::clone(&state), from, to, in_read, out_write);
    let backward = pipe(Arc::clone(&state), to, from, out_read, in_write);
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = cut.cancelled() => {}
        () = async { tokio::join!(forward, backward); } => {}
    }
}

/// Copies one direction, each chunk held until its delivery time; delivery times never go
/// backwards, so bytes stay in order. The delay reads link `from → to`'s faults per chunk.
async fn pipe(
    state: Arc<Mutex<State>>,
    from: usize,
    to: usize,
    mut reader: tokio::net::tcp::OwnedReadHalf,
    mut writer: tokio::net::tcp::OwnedWriteHalf,
) {
    let (send, mut receive) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let read = async move {
        let mut last = Instant::now();
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let count = match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(count) => count,
            };
            let delay = {
                let mut state = lock(&state);
                let faults = state.links.get(from).and_then(|l| l.get(to)).map(|l| l.faults);
                faults.map_or(Duration::ZERO, |f| delay(&mut state.rng, f))
            };
            last = last.max(Instant::now() + delay);
            let chunk = buffer.get(..count).map(<[u8]>::to_vec).unwrap_or_default();
            if send.send((last, chunk)).await.is_err() {
                break;
            }
        }
    };
    let write = async move {
        while let Some((at, chunk)) = receive.recv().await {
            tokio::time::sleep_until(at).await;
            if writer.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    };
    tokio::join!(read, write);
}

/// How long a chunk waits under `faults`.
fn delay(rng: &mut StdRng, faults: Faults) -> Duration {
    let jitter = if faults.jitter_ms > 0 {
        rng.random_range(0..=faults.jitter_ms)
    } else {
        0
    };
    let lost = faults.loss_percent > 0 && rng.random_range(0..100u8) < faults.loss_percent;
    Duration::from_millis(faults.latency_ms + jitter) + if lost { RETRANSMIT } else { Duration::ZERO }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, TcpListener as StdListener, TcpStream as StdStream};

    /// An echo server on loopback, answering each connection on its own thread.
    fn echo_server() -> SocketAddr {
        let listener = StdListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buffer) {
                        if n == 0 || stream.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        address
    }

    /// A relay for one link `0 → 0` from loopback to an echo server.
    fn relay() -> (Relay, SocketAddr) {
        let free = StdListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let listen = free.local_addr().unwrap();
        drop(free);
        let relay = Relay::start(&[listen], &[echo_server()], &[IpAddr::V4(Ipv4Addr::LOCALHOST)], 7).unwrap();
        (relay, listen)
    }

    fn round_trip(stream: &mut StdStream, message: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.write_all(message)?;
        let mut answer = vec![0u8; message.len()];
        stream.read_exact(&mut answer)?;
        Ok(answer)
    }

    #[test]
    fn bytes_arrive_intact_and_in_order_under_latency_jitter_and_loss() {
        let (relay, listen) = relay();
        relay.set(
            0,
            0,
            Faults {
                latency_ms: 5,
                jitter_ms: 20,
                loss_percent: 10,
                blocked: false,
            },
        );
        let mut stream = StdStream::connect(listen).unwrap();
        let message: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let writer = {
            let mut stream = stream.try_clone().unwrap();
            let message = message.clone();
            std::thread::spawn(move || stream.write_all(&message))
        };
        let mut echoed = vec![0u8; message.len()];
        stream.read_exact(&mut echoed).unwrap();
        writer.join().unwrap().unwrap();
        assert!(echoed == message, "the echo differs from what was sent");
    }

    #[test]
    fn a_blocked_link_cuts_open_connections_and_refuses_new_ones_until_healed() {
        let (relay, listen) = relay();
        let mut open = StdStream::connect(listen).unwrap();
        assert_eq!(round_trip(&mut open, b"ping").unwrap(), b"ping");
        relay.set(
            0,
            0,
            Faults {
                blocked: true,
                ..Faults::default()
            },
        );
        open.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut rest = Vec::new();
        assert_eq!(open.read_to_end(&mut rest).unwrap(), 0, "the cut connection was closed");

        let mut refused = StdStream::connect(listen).unwrap();
        refused.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert!(round_trip(&mut refused, b"ping").is_err());

        relay.heal();
        let mut healed = StdStream::connect(listen).unwrap();
        assert_eq!(round_trip(&mut healed, b"pong").unwrap(), b"pong");
    }

    #[test]
    fn cutting_a_node_closes_its_connections_and_lets_it_reconnect() {
        let (relay, listen) = relay();
        let mut open = StdStream::connect(listen).unwrap();
        assert_eq!(round_trip(&mut open, b"one").unwrap(), b"one");
        relay.cut_node(0);
        open.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut rest = Vec::new();
        assert_eq!(open.read_to_end(&mut rest).unwrap(), 0);
        let mut again = StdStream::connect(listen).unwrap();
        assert_eq!(round_trip(&mut again, b"two").unwrap(), b"two");
    }
}
