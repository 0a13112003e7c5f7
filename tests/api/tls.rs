//! TLS to PostgreSQL against a private server whose certificate comes from
//! a throwaway CA: each sslmode connects, encrypts and verifies as libpq
//! documents it, a refused certificate says why and under which sslmode,
//! and the pool and the migrator work over verify-full.
//!
//! One server serves all the TLS cases (starting one takes a second or
//! two); each case is a function named after what it shows.

mod server;

use std::time::Duration;

use ontab::db::{Db, describe_pg, migrate, parse_url};
use ontab::db::{PoolOptions, StatementMode};

use server::{CERT_USER, Ssl, TlsServer};

/// Whether a session made from `url` is encrypted, as the server sees it;
/// or why it could not be made.
async fn encrypted(url: &str) -> Result<bool, String> {
    let options = parse_url(url).map_err(|error| error.to_string())?;
    let (client, connection) = options
        .connect()
        .await
        .map_err(|error| describe_pg(&error))?;
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|error| describe_pg(&error))?;
    Ok(row.get(0))
}

fn refusal(outcome: Result<bool, String>, case: &str) -> String {
    match outcome {
        Ok(ssl) => panic!("{case}: connected (ssl = {ssl}) but should have been refused"),
        Err(message) => message,
    }
}

/// `host=… port=… user=postgres dbname=postgres` plus `extra`.
fn url(server: &TlsServer, host: &str, extra: &str) -> String {
    format!(
        "host={host} port={} user=postgres dbname=postgres connect_timeout=10 {extra}",
        server.port
    )
}

#[tokio::test]
async fn every_sslmode_behaves_as_libpq_documents_it() {
    let server = TlsServer::start(Ssl::On);
    verify_full_with_the_right_ca_connects_encrypted(&server).await;
    verify_full_with_another_ca_is_refused_as_an_unknown_ca(&server).await;
    verify_full_without_sslrootcert_trusts_only_the_system_roots(&server).await;
    verify_full_to_an_address_the_certificate_does_not_name_is_refused_but_verify_ca_connects(
        &server,
    )
    .await;
    require_without_a_ca_connects_encrypted_unverified(&server).await;
    require_with_a_ca_checks_the_issuer(&server).await;
    prefer_uses_tls_when_offered(&server).await;
    disable_connects_in_clear(&server).await;
    a_client_certificate_logs_in_where_the_server_demands_one(&server).await;
}

async fn verify_full_with_the_right_ca_connects_encrypted(server: &TlsServer) {
    // URL form; hostaddr pins the address (localhost may also be ::1) while
    // the certificate is checked against the host name.
    let ca = server.path("ca.pem").replace('/', "%2F");
    let url = format!(
        "postgres://postgres@localhost:{}/postgres?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}",
        server.port
    );
    assert_eq!(encrypted(&url).await, Ok(true), "verify-full with its CA");
}

async fn verify_full_with_another_ca_is_refused_as_an_unknown_ca(server: &TlsServer) {
    let other_ca = server.path("other-ca.pem");
    let message = refusal(
        encrypted(&url(
            server,
            "localhost",
            &format!("hostaddr=127.0.0.1 sslmode=verify-full sslrootcert={other_ca}"),
        ))
        .await,
        "verify-full with another CA",
    );
    for words in [
        "sslmode=verify-full",
        "unknown CA",
        &format!("sslrootcert={other_ca}"),
    ] {
        assert!(message.contains(words), "`{words}` missing from: {message}");
    }
}

async fn verify_full_without_sslrootcert_trusts_only_the_system_roots(server: &TlsServer) {
    let message = refusal(
        encrypted(&url(
            server,
            "localhost",
            "hostaddr=127.0.0.1 sslmode=verify-full",
        ))
        .await,
        "verify-full against the system roots",
    );
    assert!(
        message.contains("unknown CA") && message.contains("the system's trusted roots"),
        "{message}"
    );
}

async fn verify_full_to_an_address_the_certificate_does_not_name_is_refused_but_verify_ca_connects(
    server: &TlsServer,
) {
    let ca = server.path("ca.pem");
    let message = refusal(
        encrypted(&url(
            server,
            "127.0.0.1",
            &format!("sslmode=verify-full sslrootcert={ca}"),
        ))
        .await,
        "verify-full to 127.0.0.1",
    );
    for words in [
        "sslmode=verify-full",
        "name mismatch: it names localhost, not 127.0.0.1",
    ] {
        assert!(message.contains(words), "`{words}` missing from: {message}");
    }
    let verify_ca = url(
        server,
        "127.0.0.1",
        &format!("sslmode=verify-ca sslrootcert={ca}"),
    );
    assert_eq!(
        encrypted(&verify_ca).await,
        Ok(true),
        "verify-ca to 127.0.0.1"
    );
}

async fn require_without_a_ca_connects_encrypted_unverified(server: &TlsServer) {
    let require = url(server, "127.0.0.1", "sslmode=require");
    assert_eq!(encrypted(&require).await, Ok(true), "require");
}

async fn require_with_a_ca_checks_the_issuer(server: &TlsServer) {
    let other_ca = server.path("other-ca.pem");
    let message = refusal(
        encrypted(&url(
            server,
            "127.0.0.1",
            &format!("sslmode=require sslrootcert={other_ca}"),
        ))
        .await,
        "require with another CA",
    );
    assert!(
        message.contains("sslmode=require") && message.contains("unknown CA"),
        "{message}"
    );
}

async fn prefer_uses_tls_when_offered(server: &TlsServer) {
    assert_eq!(
        encrypted(&url(server, "127.0.0.1", "")).await,
        Ok(true),
        "no sslmode (prefer)"
    );
}

async fn disable_connects_in_clear(server: &TlsServer) {
    let disable = url(server, "127.0.0.1", "sslmode=disable");
    assert_eq!(encrypted(&disable).await, Ok(false), "disable");
}

async fn a_client_certificate_logs_in_where_the_server_demands_one(server: &TlsServer) {
    let admin = parse_url(&url(server, "127.0.0.1", "sslmode=disable")).expect("admin URL");
    let (client, connection) = admin.connect().await.expect("admin connects");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE ROLE {CERT_USER} LOGIN"))
        .await
        .expect("create the certificate's role");

    let (ca, cert, key) = (
        server.path("ca.pem"),
        server.path("client.pem"),
        server.path("client.key"),
    );
    let as_cert_user = |extra: &str| {
        format!(
            "host=localhost hostaddr=127.0.0.1 port={} user={CERT_USER} dbname=postgres sslmode=verify-full sslrootcert={ca} {extra}",
            server.port
        )
    };
    let with_certificate = as_cert_user(&format!("sslcert={cert} sslkey={key}"));
    assert_eq!(
        encrypted(&with_certificate).await,
        Ok(true),
        "with a client certificate"
    );
    let message = refusal(
        encrypted(&as_cert_user("")).await,
        "without a client certificate",
    );
    assert!(message.contains("certificate"), "{message}");
}

#[tokio::test]
async fn the_pool_and_the_migrator_work_over_verify_full() {
    let server = TlsServer::start(Ssl::On);
    let admin = parse_url(&url(&server, "127.0.0.1", "sslmode=require")).expect("URL");
    let (client, connection) = admin.connect().await.expect("admin connects");
    tokio::spawn(connection);
    client
        .batch_execute("CREATE DATABASE ontab_tls")
        .await
        .expect("create database");

    let ca = server.path("ca.pem");
    let options = parse_url(&format!(
        "host=localhost hostaddr=127.0.0.1 port={} user=postgres dbname=ontab_tls sslmode=verify-full sslrootcert={ca}",
        server.port
    ))
    .expect("verify-full URL");
    let applied = migrate::run_on(&options)
        .await
        .expect("migrations over TLS");
    assert!(!applied.is_empty(), "a fresh database gets every migration");
    assert_eq!(
        migrate::run_on(&options).await.expect("second run"),
        Vec::<i32>::new(),
        "and nothing the second time"
    );

    let db = Db::connect(options, pool(2)).expect("pool");
    db.ping().await.expect("the pool connects over verify-full");
    // The pool keeps its connection: the server reports it as TLS.
    let row = client
        .query_one(
            "SELECT count(*), coalesce(bool_and(s.ssl), false)
               FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
              WHERE a.datname = 'ontab_tls'",
            &[],
        )
        .await
        .expect("pg_stat_ssl");
    let (sessions, all_encrypted): (i64, bool) = (row.get(0), row.get(1));
    assert!(sessions >= 1, "the pool holds a session");
    assert!(all_encrypted, "every pooled session is TLS");

    // A pool whose CA does not match fails with the reason, not "db error".
    let other_ca = server.path("other-ca.pem");
    let refused = Db::connect(
        parse_url(&format!(
            "host=localhost hostaddr=127.0.0.1 port={} user=postgres dbname=ontab_tls sslmode=verify-full sslrootcert={other_ca}",
            server.port
        ))
        .expect("URL"),
        pool(1),
    )
    .expect("pool")
    .ping()
    .await
    .expect_err("another CA is refused");
    let message = refused.to_string();
    assert!(
        message.contains("unknown CA") && message.contains("sslmode=verify-full"),
        "{message}"
    );
}

/// Citus's automatic TLS gives each node a self-signed X.509 version 1
/// certificate. Unverified (prefer, require) it is taken, as libpq takes
/// it; verified, it is refused (no CA vouches for it).
#[tokio::test]
async fn an_x509_v1_certificate_is_taken_unverified_and_refused_verified() {
    let server = TlsServer::start(Ssl::OnX509V1);
    assert_eq!(
        encrypted(&url(&server, "127.0.0.1", "")).await,
        Ok(true),
        "no sslmode (prefer)"
    );
    assert_eq!(
        encrypted(&url(&server, "127.0.0.1", "sslmode=require")).await,
        Ok(true),
        "require"
    );
    let ca = server.path("ca.pem");
    let message = refusal(
        encrypted(&url(
            &server,
            "127.0.0.1",
            &format!("sslmode=verify-ca sslrootcert={ca}"),
        ))
        .await,
        "verify-ca against a self-signed version 1 certificate",
    );
    assert!(message.contains("sslmode=verify-ca"), "{message}");
}

#[tokio::test]
async fn prefer_connects_in_clear_to_a_server_without_tls_and_require_refuses() {
    let server = TlsServer::start(Ssl::Off);
    assert_eq!(
        encrypted(&url(&server, "127.0.0.1", "sslmode=prefer")).await,
        Ok(false),
        "prefer"
    );
    let message = refusal(
        encrypted(&url(&server, "127.0.0.1", "sslmode=require")).await,
        "require against a server without TLS",
    );
    assert!(message.contains("does not support TLS"), "{message}");
}

fn pool(size: usize) -> PoolOptions {
    PoolOptions {
        size,
        wait: Duration::from_secs(10),
        statements: StatementMode::Prepared,
        statement_timeout: None,
    }
}
