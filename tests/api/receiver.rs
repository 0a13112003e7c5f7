//! A webhook receiver inside the test process, on 127.0.0.1: it records
//! every request (headers, body, when it started and ended) and answers as
//! the test's `respond` says, after an optional hold (a gate the test opens).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::{Notify, watch};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
    pub json: Value,
    /// How many requests with this id came before (0 for the first).
    pub seen_before: usize,
    /// Requests of the same id under way when this one arrived.
    pub concurrent_same_id: usize,
}

impl Received {
    pub fn event_type(&self) -> &str {
        self.json["type"].as_str().unwrap_or_default()
    }

    pub fn subject(&self) -> &str {
        self.json["subject_id"].as_str().unwrap_or_default()
    }

    pub fn sequence(&self) -> i64 {
        self.json["sequence"].as_i64().unwrap_or_default()
    }
}

/// What the receiver answers a request with, and whether it first waits
/// for the gate to open.
pub type Respond = Arc<dyn Fn(&Received) -> (u16, bool) + Send + Sync>;

#[derive(Clone)]
struct Shared {
    got: Arc<Mutex<Vec<Received>>>,
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    arrived: Arc<Notify>,
    respond: Respond,
    gate: watch::Receiver<bool>,
    /// How long each request takes before it is answered (a slow receiver).
    delay: Duration,
}

pub struct Receiver {
    pub url: String,
    shared: Shared,
    gate: watch::Sender<bool>,
}

impl Receiver {
    /// Answers 204 to everything.
    pub async fn start() -> Self {
        Self::answering(Arc::new(|_| (204, false))).await
    }

    pub async fn answering(respond: Respond) -> Self {
        Self::answering_after(Duration::ZERO, respond).await
    }

    /// As [`Receiver::answering`], each answer `delay` after its request.
    pub async fn answering_after(delay: Duration, respond: Respond) -> Self {
        let (gate, gate_rx) = watch::channel(false);
        let shared = Shared {
            got: Arc::default(),
            in_flight: Arc::default(),
            arrived: Arc::new(Notify::new()),
            respond,
            gate: gate_rx,
            delay,
        };
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("receiver binds a loopback port");
        let address = listener.local_addr().expect("bound address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{address}/hook"),
            shared,
            gate,
        }
    }

    /// Lets held requests answer.
    pub fn open_gate(&self) {
        let _ = self.gate.send(true);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.got.lock().expect("receiver lock").clone()
    }

    /// Waits (up to a minute, then fails naming `what`) until `done` holds
    /// for what was received.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let arrived = self.shared.arrived.notified();
            let got = self.received();
            if done(&got) {
                return got;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "receiver: timed out waiting for {what}; got {:#?}",
                    summary(&self.received())
                );
            }
        }
    }
}

fn summary(got: &[Received]) -> Vec<String> {
    got.iter()
        .map(|r| {
            format!(
                "{} #{} {} {}",
                r.id,
                r.sequence(),
                r.event_type(),
                r.subject()
            )
        })
        .collect()
}

async fn receive(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let id = header("webhook-id");
    let concurrent_same_id = {
        let mut in_flight = shared.in_flight.lock().expect("in-flight lock");
        let count = in_flight.entry(id.clone()).or_default();
        *count += 1;
        *count - 1
    };
    let received = {
        let got = shared.got.lock().expect("receiver lock");
        Received {
            seen_before: got.iter().filter(|r| r.id == id).count(),
            id: id.clone(),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            json: serde_json::from_slice(&body).unwrap_or(Value::Null),
            body: body.to_vec(),
            concurrent_same_id,
        }
    };
    let (status, hold) = (shared.respond)(&received);
    shared.got.lock().expect("receiver lock").push(received);
    shared.arrived.notify_waiters();
    if hold {
        let mut gate = shared.gate.clone();
        let _ = gate.wait_for(|open| *open).await;
    }
    if !shared.delay.is_zero() {
        tokio::time::sleep(shared.delay).await;
    }
    if let Some(count) = shared
        .in_flight
        .lock()
        .expect("in-flight lock")
        .get_mut(&id)
    {
        *count -= 1;
    }
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Verifies a Standard Webhooks signature header with `secret` (`whsec_…`),
/// written from the spec, apart from ontab's signing code: true when one of
/// the space-separated `v1,` signatures matches.
pub fn verify(secret: &str, received: &Received) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .expect("base64 secret");
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{}.{}.", received.id, received.timestamp).as_bytes());
    mac.update(&received.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    received
        .signature
        .split(' ')
        .any(|signature| signature == expected)
}

/// A receiver that answers every request `200` with a body, as most real
/// receivers do (unlike [`Receiver`]'s empty `204`), over HTTP/1.1
/// keep-alive, and counts the TCP connections it accepts. Written
/// on the socket, apart from any HTTP library, so what it counts is what
/// the sender did.
pub struct CountingReceiver {
    pub url: String,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl CountingReceiver {
    /// Answers with `body_len` bytes of a JSON string.
    pub async fn start(body_len: usize) -> Self {
        let mut answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {body_len}\r\n\r\n"
        )
        .into_bytes();
        let quotes = body_len.min(2);
        answer.extend(std::iter::repeat_n(b'"', quotes / 2));
        answer.extend(std::iter::repeat_n(b'x', body_len - quotes));
        answer.extend(std::iter::repeat_n(b'"', quotes / 2));
        let answer: Arc<[u8]> = answer.into();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("receiver binds a loopback port");
        let address = listener.local_addr().expect("bound address");
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (accepted, received) = (connections.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let (received, answer) = (received.clone(), answer.clone());
                tokio::spawn(async move {
                    let _ = answer_each(stream, &answer, &received).await;
                });
            }
        });
        Self {
            url: format!("http://{address}/hook"),
            connections,
            requests,
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Waits (up to a minute) until `n` requests were received.
    pub async fn wait_for_requests(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.requests() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "counting receiver: {} of {n} requests after a minute",
                self.requests()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Reads requests off one connection (headers, then a body of its
/// Content-Length) and answers each, until the sender closes it.
async fn answer_each(
    stream: tokio::net::TcpStream,
    answer: &[u8],
    received: &AtomicUsize,
) -> std::io::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            if line == "\r\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        // Counted once read: a sender that stops reading a long answer
        // closes the connection before the answer is all written.
        received.fetch_add(1, Ordering::SeqCst);
        reader.get_mut().write_all(answer).await?;
    }
}
