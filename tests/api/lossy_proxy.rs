//! A proxy between a server under test and PostgreSQL that can lose the
//! answer to one COMMIT after PostgreSQL has carried it out: the fault that
//! leaves a transaction's outcome truly unknown to the server (a network
//! cut, a pooler or a host that dies at that instant), made deterministic.
//!
//! It speaks just enough of the wire protocol to find message boundaries:
//! it declines TLS itself (the server under test connects with
//! `sslmode=disable`), passes the startup message on, then relays typed
//! messages (a type byte and a length) both ways. Armed, the next simple
//! query `COMMIT` on any connection goes through; everything PostgreSQL
//! answers after it, up to ReadyForQuery, is dropped, and the connection is
//! closed both ways.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ontab::db::tls::ConnectOptions;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio_postgres::config::Host;

/// The startup-phase requests that ask for an encrypted channel.
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;

#[derive(Clone)]
enum Upstream {
    Tcp(String, u16),
    Unix(PathBuf),
}

#[derive(Default)]
struct Faults {
    /// Lose the answer to the next COMMIT.
    armed: AtomicBool,
    /// COMMITs whose answer was lost so far.
    lost: AtomicUsize,
}

pub struct LossyProxy {
    pub port: u16,
    faults: Arc<Faults>,
    accept: tokio::task::JoinHandle<()>,
}

impl LossyProxy {
    /// A proxy on a loopback port in front of where `target` connects.
    pub async fn start(target: &ConnectOptions) -> Self {
        let port = target.config.get_ports().first().copied().unwrap_or(5432);
        let upstream = match target.config.get_hosts().first() {
            Some(Host::Tcp(host)) => Upstream::Tcp(host.clone(), port),
            Some(Host::Unix(dir)) => Upstream::Unix(dir.join(format!(".s.PGSQL.{port}"))),
            None => Upstream::Tcp("localhost".into(), port),
        };
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let port = listener.local_addr().expect("bound").port();
        let faults = Arc::new(Faults::default());
        let accept = tokio::spawn({
            let faults = faults.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let faults = faults.clone();
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        // A connection that fails midway is simply closed.
                        let _ = relay(client, upstream, faults).await;
                    });
                }
            }
        });
        Self {
            port,
            faults,
            accept,
        }
    }

    /// `target`'s login and database, through this proxy, in the clear.
    pub fn options_for(&self, target: &ConnectOptions) -> ConnectOptions {
        let config = &target.config;
        let password = config
            .get_password()
            .map(|password| format!(" password='{}'", String::from_utf8_lossy(password)))
            .unwrap_or_default();
        ontab::db::parse_url(&format!(
            "host=127.0.0.1 port={} user={} dbname={}{password} sslmode=disable",
            self.port,
            config.get_user().unwrap_or("postgres"),
            config.get_dbname().unwrap_or("postgres"),
        ))
        .expect("the proxy's connection string parses")
    }

    /// The next COMMIT, on whichever connection, reaches PostgreSQL and is
    /// carried out; its answer never reaches the server.
    pub fn lose_the_next_commit_answer(&self) {
        self.faults.armed.store(true, Ordering::SeqCst);
    }

    /// How many COMMIT answers were lost.
    pub fn lost(&self) -> usize {
        self.faults.lost.load(Ordering::SeqCst)
    }
}

impl Drop for LossyProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn relay(
    mut client: TcpStream,
    upstream: Upstream,
    faults: Arc<Faults>,
) -> std::io::Result<()> {
    // The startup phase: decline encryption, pass the startup message on.
    let startup = loop {
        let message = read_untyped(&mut client).await?;
        let code = message
            .get(4..8)
            .map(|code| u32::from_be_bytes([code[0], code[1], code[2], code[3]]));
        if matches!(code, Some(SSL_REQUEST | GSSENC_REQUEST)) {
            client.write_all(b"N").await?;
            continue;
        }
        break message;
    };
    match upstream {
        Upstream::Tcp(host, port) => {
            let server = TcpStream::connect((host.as_str(), port)).await?;
            pump(client, server, startup, faults).await
        }
        Upstream::Unix(path) => {
            let server = UnixStream::connect(path).await?;
            pump(client, server, startup, faults).await
        }
    }
}

async fn pump<S>(
    client: TcpStream,
    server: S,
    startup: Vec<u8>,
    faults: Arc<Faults>,
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = tokio::io::split(server);
    to_server.write_all(&startup).await?;
    let losing = AtomicBool::new(false);
    // Whichever side ends first ends the connection: both sockets close
    // when this returns.
    tokio::select! {
        result = upstream(&mut from_client, &mut to_server, &faults, &losing) => result,
        result = downstream(&mut from_server, &mut to_client, &faults, &losing) => result,
    }
}

/// The server under test to PostgreSQL; marks the connection losing when
/// it sends the armed COMMIT.
async fn upstream(
    from_client: &mut (impl AsyncRead + Unpin),
    to_server: &mut (impl AsyncWrite + Unpin),
    faults: &Faults,
    losing: &AtomicBool,
) -> std::io::Result<()> {
    loop {
        let message = read_typed(from_client).await?;
        if message.first() == Some(&b'Q')
            && message.get(5..) == Some(&b"COMMIT\0"[..])
            && faults.armed.swap(false, Ordering::SeqCst)
        {
            losing.store(true, Ordering::SeqCst);
        }
        to_server.write_all(&message).await?;
    }
}

/// PostgreSQL to the server under test; on a losing connection, drops the
/// answer to COMMIT and ends once PostgreSQL is done with it.
async fn downstream(
    from_server: &mut (impl AsyncRead + Unpin),
    to_client: &mut (impl AsyncWrite + Unpin),
    faults: &Faults,
    losing: &AtomicBool,
) -> std::io::Result<()> {
    loop {
        let message = read_typed(from_server).await?;
        if losing.load(Ordering::SeqCst) {
            // ReadyForQuery follows COMMIT's answer: it was carried out,
            // and the server under test never learns how.
            if message.first() == Some(&b'Z') {
                faults.lost.fetch_add(1, Ordering::SeqCst);
                return Ok(());
            }
            continue;
        }
        to_client.write_all(&message).await?;
    }
}

/// A startup-phase message: a length that counts itself, then the body.
async fn read_untyped(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).await?;
    let total = message_length(length)?;
    let mut message = length.to_vec();
    message.resize(total, 0);
    stream.read_exact(&mut message[4..]).await?;
    Ok(message)
}

/// A message after startup: its type byte, a length that counts itself,
/// then the body.
async fn read_typed(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).await?;
    let total = message_length([head[1], head[2], head[3], head[4]])?;
    let mut message = head.to_vec();
    message.resize(1 + total, 0);
    stream.read_exact(&mut message[5..]).await?;
    Ok(message)
}

fn message_length(bytes: [u8; 4]) -> std::io::Result<usize> {
    let length = usize::try_from(u32::from_be_bytes(bytes)).unwrap_or(usize::MAX);
    if !(4..=64 << 20).contains(&length) {
        return Err(std::io::Error::other(format!(
            "implausible message length {length}"
        )));
    }
    Ok(length)
}
