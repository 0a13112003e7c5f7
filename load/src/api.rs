//! The parts of the ontab API that set scenarios up and read results back.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use hyper::Method;
use serde_json::{Value, json};

use crate::http::{Conn, Endpoint, Reply};

/// Attempts per setup call answered `503` before giving up.
const SETUP_TRIES: u64 = 20;

/// One request to send, without timing or accounting.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub token: Arc<str>,
    pub body: Bytes,
}

impl Call {
    pub fn post(path: impl Into<String>, token: &Arc<str>, body: &Value) -> Self {
        Call {
            method: Method::POST,
            path: path.into(),
            token: token.clone(),
            body: Bytes::from(body.to_string()),
        }
    }
}

/// A business created for a run, with the API key that acts for it.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: Arc<str>,
    pub key: Arc<str>,
}

/// Access to one ontab for setup and verification.
#[derive(Clone)]
pub struct Api {
    pub endpoint: Arc<Endpoint>,
    pub timeout: Duration,
    /// Connections used to create or read many records at once.
    pub parallelism: usize,
}

impl Api {
    pub fn conn(&self) -> Conn {
        Conn::new(self.endpoint.clone(), self.timeout)
    }

    /// Sends `calls` over `parallelism` connections; replies come back in
    /// call order. Any transport failure aborts: setup must be exact.
    pub async fn send_all(&self, calls: Vec<Call>) -> anyhow::Result<Vec<Reply>> {
        let calls = Arc::new(calls);
        let lanes = self.parallelism.clamp(1, calls.len().max(1));
        let mut tasks = Vec::with_capacity(lanes);
        for lane in 0..lanes {
            let calls = calls.clone();
            let mut conn = self.conn();
            tasks.push(tokio::spawn(async move {
                let mut replies = Vec::new();
                for index in (lane..calls.len()).step_by(lanes) {
                    let call = &calls[index];
                    let mut tries = 0u64;
                    let reply = loop {
                        let reply = conn
                            .send(
                                call.method.clone(),
                                &call.path,
                                &call.token,
                                call.body.clone(),
                            )
                            .await
                            .map_err(|e| anyhow!("{} {}: {}", call.method, call.path, e.label()))?;
                        // `503 unavailable` says nothing was written and it
                        // is safe to retry: an overloaded machine must not
                        // fail a benchmark's setup.
                        tries += 1;
                        if reply.status == 503 && tries < SETUP_TRIES {
                            tokio::time::sleep(Duration::from_millis(50 * tries)).await;
                            continue;
                        }
                        break reply;
                    };
                    replies.push((index, reply));
                }
                anyhow::Ok(replies)
            }));
        }
        let mut ordered: Vec<Option<Reply>> = vec![None; calls.len()];
        for task in tasks {
            for (index, reply) in task.await.context("setup task panicked")?? {
                ordered[index] = Some(reply);
            }
        }
        ordered
            .into_iter()
            .map(|r| r.ok_or_else(|| anyhow!("a setup reply went missing")))
            .collect()
    }

    /// POST /v1/businesses with the admin token.
    pub async fn create_business(&self, admin_token: &str, name: &str) -> anyhow::Result<Tenant> {
        let admin: Arc<str> = admin_token.into();
        let call = Call::post(
            "/v1/businesses",
            &admin,
            &json!({ "name": name, "currency": "USD" }),
        );
        let reply = self.send_all(vec![call]).await?.remove(0);
        let body = expect(&reply, 201, "create business")?;
        Ok(Tenant {
            id: string_at(&body, &["id"])?,
            key: string_at(&body, &["api_key", "key"])?,
        })
    }

    /// Creates customers with the given credit limits; returns their ids.
    pub async fn create_customers(
        &self,
        tenant: &Tenant,
        credit_limits: &[i64],
    ) -> anyhow::Result<Vec<Arc<str>>> {
        let calls = credit_limits
            .iter()
            .enumerate()
            .map(|(n, limit)| {
                Call::post(
                    "/v1/customers",
                    &tenant.key,
                    &json!({ "name": format!("load customer {n}"), "credit_limit": limit }),
                )
            })
            .collect();
        self.created_ids(calls, "create customer").await
    }

    /// Creates products from `(price, stock)` pairs; returns their ids.
    pub async fn create_products(
        &self,
        tenant: &Tenant,
        price_and_stock: &[(i64, i64)],
    ) -> anyhow::Result<Vec<Arc<str>>> {
        let calls = price_and_stock
            .iter()
            .enumerate()
            .map(|(n, (price, stock))| {
                Call::post(
                    "/v1/products",
                    &tenant.key,
                    &json!({ "name": format!("load product {n}"), "price": price, "stock": stock }),
                )
            })
            .collect();
        self.created_ids(calls, "create product").await
    }

    async fn created_ids(&self, calls: Vec<Call>, what: &str) -> anyhow::Result<Vec<Arc<str>>> {
        let replies = self.send_all(calls).await?;
        replies
            .iter()
            .map(|reply| string_at(&expect(reply, 201, what)?, &["id"]))
            .collect()
    }

    /// GET expecting 200 and a JSON body.
    pub async fn get_json(
        &self,
        conn: &mut Conn,
        token: &str,
        path: &str,
    ) -> anyhow::Result<Value> {
        let reply = conn
            .send(Method::GET, path, token, Bytes::new())
            .await
            .map_err(|e| anyhow!("GET {path}: {}", e.label()))?;
        expect(&reply, 200, &format!("GET {path}"))
    }

    /// Every item of a list endpoint, following `next_cursor`.
    pub async fn list_all(
        &self,
        conn: &mut Conn,
        token: &str,
        path: &str,
    ) -> anyhow::Result<Vec<Value>> {
        let joiner = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page_path = match &cursor {
                Some(c) => format!("{path}{joiner}limit=200&cursor={}", percent_encode(c)),
                None => format!("{path}{joiner}limit=200"),
            };
            let page = self.get_json(conn, token, &page_path).await?;
            let Some(data) = page.get("data").and_then(Value::as_array) else {
                bail!("GET {page_path}: no `data` array in {page}");
            };
            items.extend(data.iter().cloned());
            match page.get("next_cursor") {
                Some(Value::String(next)) => cursor = Some(next.clone()),
                Some(Value::Null) | None => return Ok(items),
                Some(other) => {
                    bail!("GET {page_path}: next_cursor is {other}, not a string or null")
                }
            }
        }
    }
}

/// The JSON body of a reply with the expected status, or an error naming both.
pub fn expect(reply: &Reply, status: u16, what: &str) -> anyhow::Result<Value> {
    if reply.status != status {
        bail!(
            "{what}: expected {status}, got {}: {}",
            reply.status,
            reply.snippet()
        );
    }
    reply
        .json()
        .ok_or_else(|| anyhow!("{what}: {status} without a JSON body: {}", reply.snippet()))
}

/// The string at a path of object keys.
pub fn string_at(value: &Value, path: &[&str]) -> anyhow::Result<Arc<str>> {
    let mut at = value;
    for key in path {
        at = at
            .get(key)
            .ok_or_else(|| anyhow!("no `{}` in {value}", path.join(".")))?;
    }
    at.as_str()
        .map(Arc::from)
        .ok_or_else(|| anyhow!("`{}` is not a string in {value}", path.join(".")))
}

/// The integer at `key`, for money and quantities.
pub fn int_at(value: &Value, key: &str) -> anyhow::Result<i64> {
    value
        .get(key)
        .and_then(Value::as_i64)
        .ok_or_else(|| anyhow!("`{key}` is not an integer in {value}"))
}

/// Cursors are opaque: encode everything but unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_percent_encoded() {
        assert_eq!(percent_encode("a+b/c=="), "a%2Bb%2Fc%3D%3D");
        assert_eq!(percent_encode("plain-1_2.3~"), "plain-1_2.3~");
    }
}
