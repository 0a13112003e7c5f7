//! Slow clients cannot exhaust the server: hundreds of connections that
//! dribble their headers do not stop others from being served, and a body
//! that never finishes is cut off by the request timeout.

use std::time::{Duration, Instant};

use ontab::db::StatementMode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_do_not_starve_other_clients() {
    let app = TestApp::spawn_tuned(
        StatementMode::Prepared,
        4,
        Duration::from_secs(2),
        Duration::from_secs(1),
    )
    .await;
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut stream = TcpStream::connect(&address).await.expect("connect");
        stream
            .write_all(b"GET /v1/customers HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .expect("partial headers");
        slow.push(stream);
    }
    // Everyone else is still served, promptly.
    for _ in 0..5 {
        let started = Instant::now();
        let reply = app
            .request(reqwest::Method::GET, "/healthz", None, &[], None)
            .await;
        assert_eq!(reply.status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "took {:?}",
            started.elapsed()
        );
        for stream in slow.iter_mut().take(50) {
            let _ = stream.write_all(b"a").await;
        }
    }
    drop(slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_finishes_is_cut_off_by_the_request_timeout() {
    let app = TestApp::spawn_tuned(
        StatementMode::Prepared,
        4,
        Duration::from_secs(2),
        Duration::from_secs(1),
    )
    .await;
    let shop = app.business("Shop").await;
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).await.expect("connect");
    let head = format!(
        "POST /v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"name\":",
        shop.key
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let started = Instant::now();
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("the server answers or closes within its request timeout")
        .expect("read");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    let text = String::from_utf8_lossy(&answer[..read]);
    // Either a 503 problem or a closed connection, never a hang.
    assert!(read == 0 || text.starts_with("HTTP/1.1 503"), "{text}");
    let customers = app.get("/v1/customers", &shop.key).await;
    assert_eq!(customers.body["data"], serde_json::json!([]));
}
