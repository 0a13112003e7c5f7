//! One HTTP/1.1 keep-alive connection per simulated client, to a loopback
//! address only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where ontab listens: a resolved loopback socket plus the path prefix.
#[derive(Debug)]
pub struct Endpoint {
    addr: SocketAddr,
    authority: String,
    prefix: String,
}

impl Endpoint {
    /// Parses `http://host:port[/prefix]` and refuses anything that does not
    /// resolve to a loopback address: this tool generates real load and must
    /// never be pointed at another machine.
    pub async fn resolve(base_url: &str) -> anyhow::Result<Self> {
        let Some(rest) = base_url.strip_prefix("http://") else {
            bail!("--base-url must start with http:// (got `{base_url}`)");
        };
        let (authority, prefix) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&with_port)
            .await
            .with_context(|| format!("cannot resolve `{authority}`"))?
            .collect();
        let Some(addr) = addrs.iter().copied().find(|a| a.ip().is_loopback()) else {
            bail!(
                "`{authority}` is not a loopback address; ontab-load only targets 127.0.0.0/8 or ::1"
            );
        };
        if addrs.iter().any(|a| !a.ip().is_loopback()) {
            bail!(
                "`{authority}` also resolves to non-loopback addresses; use 127.0.0.1 explicitly"
            );
        }
        Ok(Endpoint {
            addr,
            authority: authority.to_owned(),
            prefix: prefix.trim_end_matches('/').to_owned(),
        })
    }
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The problem+json `code`, when the body carries one.
    pub fn code(&self) -> Option<String> {
        self.json()?.get("code")?.as_str().map(str::to_owned)
    }

    /// The body for error messages, cut short.
    pub fn snippet(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(300)
            .collect()
    }
}

/// Why no response arrived. The request may or may not have been applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TransportError {
    Connect,
    Timeout,
    Io,
}

impl TransportError {
    pub fn label(self) -> &'static str {
        match self {
            TransportError::Connect => "transport error: connect",
            TransportError::Timeout => "transport error: timeout",
            TransportError::Io => "transport error: connection",
        }
    }
}

/// A client's own connection, reopened after a failure.
pub struct Conn {
    endpoint: Arc<Endpoint>,
    sender: Option<SendRequest<Full<Bytes>>>,
    timeout: Duration,
    /// Connections opened after the first, i.e. after a failure or a close.
    pub reconnects: u64,
    opened: u64,
}

impl Conn {
    pub fn new(endpoint: Arc<Endpoint>, timeout: Duration) -> Self {
        Conn {
            endpoint,
            sender: None,
            timeout,
            reconnects: 0,
            opened: 0,
        }
    }

    /// Sends one request and reads the whole response within the timeout.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        token: &str,
        body: Bytes,
    ) -> Result<Reply, TransportError> {
        match tokio::time::timeout(self.timeout, self.send_inner(method, path, token, body)).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(error)) => {
                self.sender = None;
                Err(error)
            }
            Err(_) => {
                // The connection may still carry the late response; a fresh
                // one keeps the next request's timing clean.
                self.sender = None;
                Err(TransportError::Timeout)
            }
        }
    }

    async fn send_inner(
        &mut self,
        method: Method,
        path: &str,
        token: &str,
        body: Bytes,
    ) -> Result<Reply, TransportError> {
        let endpoint = self.endpoint.clone();
        let sender = self.connected().await?;
        sender.ready().await.map_err(|_| TransportError::Io)?;
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", endpoint.prefix))
            .header(HOST, endpoint.authority.as_str());
        if !token.is_empty() {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        if !body.is_empty() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        // Only a malformed path or token could fail here: both come from this
        // tool or from ids the server returned, so treat it like a bad reply.
        let request = request
            .body(Full::new(body))
            .map_err(|_| TransportError::Io)?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|_| TransportError::Io)?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|_| TransportError::Io)?
            .to_bytes();
        Ok(Reply { status, body })
    }

    /// Opens the connection ahead of the first request.
    pub async fn open(&mut self) -> Result<(), TransportError> {
        self.connected().await.map(|_| ())
    }

    async fn connected(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, TransportError> {
        if self.sender.as_ref().is_some_and(|s| s.is_closed()) {
            self.sender = None;
        }
        if self.sender.is_none() {
            let stream = TcpStream::connect(self.endpoint.addr)
                .await
                .map_err(|_| TransportError::Connect)?;
            // Small requests and responses: Nagle would add latency, not save packets.
            stream
                .set_nodelay(true)
                .map_err(|_| TransportError::Connect)?;
            let (sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|_| TransportError::Connect)?;
            tokio::spawn(async move {
                // The connection ends when the server closes it or the
                // sender is dropped; either way the next send reconnects.
                let _ = connection.await;
            });
            if self.opened > 0 {
                self.reconnects += 1;
            }
            self.opened += 1;
            self.sender = Some(sender);
        }
        self.sender.as_mut().ok_or(TransportError::Connect)
    }
}
