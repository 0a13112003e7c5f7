//! `ontab health`, the container health check: exit 0 when the server at
//! ONTAB_LISTEN answers `GET /healthz` with 200, exit 1 otherwise, quickly.

use std::process::Output;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::TestApp;

async fn ontab_health(listen: &str) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_ontab"))
        .args(["health", "--timeout", "2s"])
        .env("ONTAB_LISTEN", listen)
        .output()
        .await
        .expect("ontab health runs")
}

#[tokio::test]
async fn health_passes_against_a_running_server_listening_on_every_address() {
    let app = TestApp::spawn().await;
    let port = app.base_url.rsplit(':').next().expect("port");
    // The Docker image sets ONTAB_LISTEN=0.0.0.0:8080.
    let output = ontab_health(&format!("0.0.0.0:{port}")).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn health_fails_fast_on_a_closed_port() {
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        listener.local_addr().expect("address")
    };
    let started = Instant::now();
    let output = ontab_health(&closed.to_string()).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no answer from"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn health_fails_when_the_server_answers_anything_but_200() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        if let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 512];
            let _ = socket.read(&mut request).await;
            let _ = socket
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let output = ontab_health(&address.to_string()).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("503"), "{stderr}");
}
