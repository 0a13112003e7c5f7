//! Connections cannot pin the server: a silent or slow client is cut off at
//! the header timeout, an idle keep-alive connection at the idle timeout, an
//! oversized head is refused, and with more clients than file descriptors
//! the server still answers a newcomer promptly, with bounded memory.
//!
//! These run the real `ontab serve` (so the flags and the fd limit are the
//! ones an operator gets), over the harness's database.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{ADMIN_TOKEN, TestApp};

/// A running `ontab serve` child.
struct Served {
    child: tokio::process::Child,
    address: String,
}

impl Served {
    /// Starts `ontab serve` over `app`'s database with extra environment,
    /// under `ulimit -n fd_limit` when given; returns once it is ready.
    async fn start(app: &TestApp, settings: &[(&str, &str)], fd_limit: Option<u32>) -> Self {
        let port = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0")
            .local_addr()
            .expect("bound")
            .port();
        let binary = env!("CARGO_BIN_EXE_ontab");
        let mut command = match fd_limit {
            Some(limit) => {
                // `ulimit -n` in sh lowers the soft and the hard limit, so
                // the server cannot raise itself past it.
                let mut command = tokio::process::Command::new("sh");
                command
                    .arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" serve"))
                    .arg(binary);
                command
            }
            None => {
                let mut command = tokio::process::Command::new(binary);
                command.arg("serve");
                command
            }
        };
        let address = format!("127.0.0.1:{port}");
        let child = command
            .env("DATABASE_URL", app.database_url())
            .env("ONTAB_LISTEN", &address)
            .env("ONTAB_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "error")
            .envs(settings.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("ontab serve starts");
        let mut served = Self { child, address };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = get(&served.address, "/readyz").await {
                return served;
            }
            if let Ok(Some(status)) = served.child.try_wait() {
                panic!("ontab serve exited before it was ready: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "ontab serve did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn port(&self) -> u16 {
        self.address
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .expect("address with a port")
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(&self.address).await.expect("connect")
    }

    /// (VmRSS, VmHWM) of the server process, in KiB.
    fn memory_kib(&self) -> (u64, u64) {
        let pid = self.child.id().expect("server still running");
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in {status}"))
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

/// One request on its own connection (`Connection: close`): status and
/// the whole answer.
async fn get(address: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    Ok((status_of(&answer), answer))
}

/// The status code of an HTTP/1.1 answer, 0 when there is none.
fn status_of(answer: &str) -> u16 {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// How long until the server closes `stream` (EOF or reset), reading and
/// discarding anything it sends first; `None` if still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Reads one whole response with a Content-Length from a kept-alive
/// connection: its status.
async fn read_response(stream: &mut TcpStream) -> u16 {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("an answer within 10 s")
            .expect("read");
        assert!(read > 0, "closed before the answer was complete");
        answer.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&answer);
        let Some(head_end) = text.find("\r\n\r\n") else {
            continue;
        };
        let length: usize = text[..head_end]
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        if answer.len() >= head_end + 4 + length {
            return status_of(&text);
        }
    }
}

/// Bytes sent to the server on `port` that it has not read yet (the
/// receive queues of its connections, from /proc/net/tcp).
fn unread_by_server(port: u16) -> u64 {
    const LISTEN: &str = "0A";
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(fields.get(1)?.rsplit(':').next()?, 16).ok()?;
            if local_port != port || *fields.get(3)? == LISTEN {
                return None;
            }
            u64::from_str_radix(fields.get(4)?.split(':').nth(1)?, 16).ok()
        })
        .sum()
}

/// The test process holds many sockets: its soft limit goes to its hard one.
fn raise_own_fd_limit(needed: u64) {
    let soft = rlimit::increase_nofile_limit(u64::MAX).expect("RLIMIT_NOFILE");
    assert!(
        soft >= needed,
        "this test needs {needed} file descriptors; the hard limit allows {soft}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_after_the_header_timeout() {
    let app = TestApp::spawn().await;
    let server = Served::start(&app, &[("ONTAB_HEADER_TIMEOUT", "1s")], None).await;
    let mut silent = server.connect().await;
    let closed = closed_within(&mut silent, Duration::from_secs(6)).await;
    println!("silent connection closed after {closed:?}");
    let closed = closed.expect("a silent connection is still open after 6 s");
    assert!(
        closed >= Duration::from_millis(900),
        "closed early: {closed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_dribbled_byte_by_byte_is_cut_off_at_the_header_timeout() {
    let app = TestApp::spawn().await;
    let server = Served::start(&app, &[("ONTAB_HEADER_TIMEOUT", "1s")], None).await;
    let mut stream = server.connect().await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("half a head");
    let started = Instant::now();
    // Never silent for long: a timeout that restarted on every byte would
    // never fire.
    let (mut reader, mut writer) = stream.split();
    let mut pace = tokio::time::interval(Duration::from_millis(100));
    let mut buffer = [0u8; 1024];
    let closed = loop {
        if started.elapsed() > Duration::from_secs(6) {
            break None;
        }
        tokio::select! {
            read = reader.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break Some(started.elapsed()),
                Ok(_) => {}
            },
            _ = pace.tick() => {
                if writer.write_all(b"a").await.is_err() {
                    break Some(started.elapsed());
                }
            }
        }
    };
    println!("dribbling connection closed after {closed:?}");
    let closed = closed.expect("a dribbled head is still being read after 6 s");
    assert!(
        closed >= Duration::from_millis(900),
        "closed early: {closed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = TestApp::spawn().await;
    // A long header timeout: what closes the connection is the idle timeout.
    let server = Served::start(
        &app,
        &[
            ("ONTAB_HEADER_TIMEOUT", "30s"),
            ("ONTAB_IDLE_TIMEOUT", "1s"),
        ],
        None,
    )
    .await;
    let mut stream = server.connect().await;
    for _ in 0..2 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("request");
        assert_eq!(read_response(&mut stream).await, 200);
    }
    let closed = closed_within(&mut stream, Duration::from_secs(6)).await;
    println!("idle keep-alive connection closed after {closed:?}");
    let closed = closed.expect("an idle keep-alive connection is still open after 6 s");
    assert!(
        closed >= Duration::from_millis(900),
        "closed early: {closed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn between_requests_the_idle_timeout_applies_not_the_header_timeout() {
    let app = TestApp::spawn().await;
    let server = Served::start(
        &app,
        &[
            ("ONTAB_HEADER_TIMEOUT", "1s"),
            ("ONTAB_IDLE_TIMEOUT", "30s"),
        ],
        None,
    )
    .await;
    let mut stream = server.connect().await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    assert_eq!(read_response(&mut stream).await, 200);
    let closed = closed_within(&mut stream, Duration::from_millis(2500)).await;
    assert_eq!(closed, None, "closed while idle, before the idle timeout");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("second request");
    assert_eq!(read_response(&mut stream).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_longer_than_both_timeouts_is_not_cut() {
    let app = TestApp::spawn().await;
    let shop = app.business("Slow").await;
    let customer = app.customer(&shop, 1_000).await;
    let product = app.product(&shop, 10, 5).await;
    let server = Served::start(
        &app,
        &[("ONTAB_HEADER_TIMEOUT", "1s"), ("ONTAB_IDLE_TIMEOUT", "1s")],
        None,
    )
    .await;
    let lock = app.sql().await;
    lock.batch_execute("BEGIN").await.expect("begin");
    crate::helpers::lock_for_update(&lock, "customers", customer).await;
    let body =
        json!({ "customer_id": customer, "items": [{ "product_id": product, "quantity": 1 }] })
            .to_string();
    let mut stream = server.connect().await;
    stream
        .write_all(
            format!(
                "POST /v1/purchases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                shop.key,
                body.len()
            )
            .as_bytes(),
        )
        .await
        .expect("request");
    // The purchase waits on the lock for longer than both timeouts.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    lock.batch_execute("COMMIT").await.expect("release");
    assert_eq!(read_response(&mut stream).await, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_over_the_size_cap_is_refused() {
    let app = TestApp::spawn().await;
    let server = Served::start(&app, &[], None).await;
    let mut stream = server.connect().await;
    // 100 KB of headers, over the 64 KiB default, in one complete head (in
    // few headers: more than 100 are refused anyway).
    let padding = "a".repeat(10_000);
    let mut head = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..10 {
        head.push_str(&format!("X-Pad-{i}: {padding}\r\n"));
    }
    head.push_str("\r\n");
    // The server may stop reading (and reset) before it is all written.
    let _ = stream.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    println!("oversized head answered: {:?}", answer.lines().next());
    let status = status_of(&answer);
    // 431, or a connection closed without serving it; never served.
    assert!(status == 431 || status == 0, "{answer}");
    let (alive, _) = get(&server.address, "/healthz").await.expect("request");
    assert_eq!(alive, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_1100_idle_connections_at_ulimit_1024_a_new_request_is_still_served() {
    raise_own_fd_limit(1_400);
    let app = TestApp::spawn().await;
    // Timeouts far away: what must save the newcomer is the connection limit.
    let server = Served::start(
        &app,
        &[
            ("ONTAB_HEADER_TIMEOUT", "120s"),
            ("ONTAB_IDLE_TIMEOUT", "120s"),
        ],
        Some(1024),
    )
    .await;
    let mut idle = Vec::with_capacity(1_100);
    for _ in 0..1_100 {
        idle.push(server.connect().await);
    }
    let started = Instant::now();
    let served =
        tokio::time::timeout(Duration::from_secs(10), get(&server.address, "/healthz")).await;
    let latency = started.elapsed();
    println!("with 1,100 idle connections at ulimit -n 1024: {served:?} after {latency:?}");
    let (status, _) = served
        .expect("no answer within 10 s")
        .expect("the request failed");
    assert_eq!(status, 200);
    assert!(latency < Duration::from_secs(3), "took {latency:?}");
    // The cap holds: fewer connections are open than the server has fds.
    let (_, metrics) = get(&server.address, "/metrics").await.expect("metrics");
    let open: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("ontab_http_connections_open "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no open-connections gauge in {metrics}"));
    println!("open connections reported by the server: {open}");
    assert!(open < 1024.0, "{open} connections open at ulimit -n 1024");
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_below_a_cap_set_too_high_the_server_sheds_and_goes_on() {
    raise_own_fd_limit(1_400);
    let app = TestApp::spawn().await;
    let server = Served::start(
        &app,
        &[
            ("ONTAB_MAX_CONNECTIONS", "100000"),
            ("ONTAB_HEADER_TIMEOUT", "120s"),
            ("ONTAB_IDLE_TIMEOUT", "120s"),
        ],
        Some(1024),
    )
    .await;
    let mut idle = Vec::with_capacity(1_100);
    for _ in 0..1_100 {
        idle.push(server.connect().await);
    }
    let started = Instant::now();
    let served =
        tokio::time::timeout(Duration::from_secs(10), get(&server.address, "/healthz")).await;
    let latency = started.elapsed();
    println!(
        "out of descriptors (EMFILE) with 1,100 idle connections: {served:?} after {latency:?}"
    );
    let (status, _) = served
        .expect("no answer within 10 s")
        .expect("the request failed");
    assert_eq!(status, 200);
    assert!(latency < Duration::from_secs(3), "took {latency:?}");
    let (_, metrics) = get(&server.address, "/metrics").await.expect("metrics");
    assert!(
        metrics.contains("ontab_http_connections_shed_total{reason=\"shed_idle_fd_exhausted\"}"),
        "{metrics}"
    );
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_large_heads_on_500_connections_keep_memory_bounded() {
    raise_own_fd_limit(800);
    let app = TestApp::spawn().await;
    let server = Served::start(
        &app,
        &[
            ("ONTAB_HEADER_TIMEOUT", "120s"),
            ("ONTAB_IDLE_TIMEOUT", "120s"),
        ],
        None,
    )
    .await;
    let (before, _) = server.memory_kib();
    // 360 KB of head each, never finished.
    let mut head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..360 {
        head.extend_from_slice(format!("X-Pad-{i:03}: {}\r\n", "a".repeat(988)).as_bytes());
    }
    let head = std::sync::Arc::new(head);
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..500 {
        let mut stream = server.connect().await;
        let head = head.clone();
        writers.spawn(async move {
            // Refused and reset part way is fine; the socket is kept open.
            let _ = tokio::time::timeout(Duration::from_secs(20), stream.write_all(&head)).await;
            stream
        });
    }
    let mut held = Vec::new();
    while let Some(stream) = writers.join_next().await {
        held.push(stream.expect("writer task"));
    }
    // Measured once the server has read all it is going to read.
    let deadline = Instant::now() + Duration::from_secs(30);
    while unread_by_server(server.port()) > 0 {
        assert!(Instant::now() < deadline, "the server stopped reading");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (after, peak) = server.memory_kib();
    println!(
        "RSS with 500 unfinished 360 KB heads: {} MiB before, {} MiB after, peak {} MiB",
        before / 1024,
        after / 1024,
        peak / 1024
    );
    assert!(after < 128 * 1024, "RSS {} MiB", after / 1024);
    let (alive, _) = get(&server.address, "/healthz").await.expect("request");
    assert_eq!(alive, 200);
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_limit_the_connection_idle_longest_is_shed() {
    let app = TestApp::spawn().await;
    let server = Served::start(
        &app,
        &[
            ("ONTAB_MAX_CONNECTIONS", "3"),
            ("ONTAB_HEADER_TIMEOUT", "120s"),
            ("ONTAB_IDLE_TIMEOUT", "120s"),
        ],
        None,
    )
    .await;
    let mut oldest = server.connect().await;
    // Kept alive after a request: idle, but more recently than `oldest`.
    let mut kept = server.connect().await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    assert_eq!(read_response(&mut kept).await, 200);
    let _third = server.connect().await;
    // The newcomer is over the limit: `oldest` makes room for it.
    let (status, _) = get(&server.address, "/healthz").await.expect("request");
    assert_eq!(status, 200);
    let closed = closed_within(&mut oldest, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "the oldest idle connection is still open");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request on the kept connection");
    assert_eq!(read_response(&mut kept).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_limit_with_every_connection_busy_a_newcomer_is_refused_at_once() {
    let app = TestApp::spawn().await;
    // Two businesses, so the two purchases run in two transactions (group
    // commit batches per business) and each waits on a lock of its own.
    let mut purchases = Vec::new();
    for name in ["Busy A", "Busy B"] {
        let shop = app.business(name).await;
        let customer = app.customer(&shop, 1_000).await;
        let product = app.product(&shop, 10, 5).await;
        purchases.push((shop, customer, product));
    }
    let server = Served::start(&app, &[("ONTAB_MAX_CONNECTIONS", "2")], None).await;
    let lock = app.sql().await;
    lock.batch_execute("BEGIN").await.expect("begin");
    let mut busy = Vec::new();
    for (shop, customer, product) in &purchases {
        crate::helpers::lock_for_update(&lock, "customers", *customer).await;
        let body =
            json!({ "customer_id": customer, "items": [{ "product_id": product, "quantity": 1 }] })
                .to_string();
        let mut stream = server.connect().await;
        stream
            .write_all(
                format!(
                    "POST /v1/purchases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    shop.key,
                    body.len()
                )
                .as_bytes(),
            )
            .await
            .expect("request");
        busy.push(stream);
    }
    // Both purchases are in flight once both wait on a lock (seen from a
    // connection of its own: inside the locking transaction,
    // pg_stat_activity would stay as first read).
    let watcher = app.sql().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = watcher
            .query_one(crate::helpers::lock_waiters_sql(), &[])
            .await
            .expect("lock waits")
            .get(0);
        if waiting >= 2 {
            break;
        }
        if Instant::now() > deadline {
            let mut answers = Vec::new();
            for stream in &mut busy {
                let mut answer = vec![0u8; 4096];
                let read =
                    tokio::time::timeout(Duration::from_millis(100), stream.read(&mut answer))
                        .await;
                if let Ok(Ok(read)) = read {
                    answers.push(String::from_utf8_lossy(&answer[..read]).into_owned());
                }
            }
            panic!("the purchases never waited on the locks ({waiting} waiting): {answers:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let refused =
        tokio::time::timeout(Duration::from_secs(5), get(&server.address, "/healthz")).await;
    let took = started.elapsed();
    println!("newcomer with every connection busy: {refused:?} after {took:?}");
    let refused = refused.expect("the newcomer waited instead of being refused");
    // A 503 with Connection: close, or a connection closed at once.
    if let Ok((status, answer)) = refused {
        assert!(status == 503 || status == 0, "{answer}");
    }
    assert!(took < Duration::from_secs(1), "took {took:?}");
    lock.batch_execute("COMMIT").await.expect("release");
    for stream in &mut busy {
        assert_eq!(read_response(stream).await, 201);
    }
}
