//! Webhook endpoints: where a business wants its events POSTed, signed with
//! secrets only it knows. The routes' use cases are here; the delivery
//! engine that runs beside `ontab serve` is [`delivery`], the SSRF guard
//! [`guard`].

pub mod delivery;
pub mod guard;
mod recorder;
mod window;

use std::time::Duration;

use uuid::Uuid;

use crate::db::page::{CreatedKey, Listed, Page};
use crate::db::webhooks::{self as stored, EndpointChanges};
use crate::domain::webhook::{
    self, DeliveryAttempt, EndpointUrl, ROTATION_OVERLAP, WebhookEndpoint, WebhookSecret,
};
use crate::domain::{FieldError, MAX_SAFE_INTEGER, Refusal, Validator};

use super::{App, AppError, Deadline, Tenant};

/// How webhooks are delivered.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Lifts the SSRF guard (local setups, tests).
    pub allow_private: bool,
    /// Waits before each retry; the contract's [`webhook::RETRY_SCHEDULE`].
    pub retry_schedule: Vec<Duration>,
    /// A receiver's answer must come within this.
    pub timeout: Duration,
    /// How long a claimed delivery is its server's alone; longer than
    /// `timeout`, so it never runs out while the request is under way.
    pub lease: Duration,
    /// How often to look for work when no notification comes.
    pub poll: Duration,
    /// Attempts under way at once, per server.
    pub concurrency: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            retry_schedule: webhook::RETRY_SCHEDULE.to_vec(),
            timeout: webhook::DELIVERY_TIMEOUT,
            lease: webhook::DELIVERY_TIMEOUT + Duration::from_secs(15),
            poll: Duration::from_millis(500),
            concurrency: 64,
        }
    }
}

/// An endpoint as asked for, before validation.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub url: String,
    pub types: Option<Vec<String>>,
    pub description: Option<String>,
}

/// A new endpoint and its secret, shown only now.
#[derive(Debug)]
pub struct CreatedEndpoint {
    pub endpoint: WebhookEndpoint,
    pub secret: WebhookSecret,
}

fn new_secret() -> Result<WebhookSecret, AppError> {
    WebhookSecret::generate().map_err(|error| AppError::Internal(format!("random source: {error}")))
}

pub async fn create(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    request: NewEndpoint,
) -> Result<CreatedEndpoint, AppError> {
    let mut check = Validator::default();
    let url = check.check(EndpointUrl::parse("url", &request.url));
    let types = check.check(webhook::parse_types("types", request.types));
    let description = check.check(webhook::parse_description(
        "description",
        request.description.unwrap_or_default(),
    ));
    let (url, types, description) = check.finish(|| Some((url?, types?, description?)))?;
    guard::check_url("url", &url, app.webhooks.allow_private).await?;
    let secret = new_secret()?;
    let endpoint = app
        .write(tenant, deadline, {
            let secret = secret.clone();
            move |tx| {
                let (url, types, description, secret) = (
                    url.clone(),
                    types.clone(),
                    description.clone(),
                    secret.clone(),
                );
                Box::pin(async move {
                    Ok(stored::create(
                        tx,
                        url.as_str(),
                        types.as_deref(),
                        &description,
                        secret.bytes(),
                    )
                    .await?)
                })
            }
        })
        .await?;
    Ok(CreatedEndpoint { endpoint, secret })
}

pub async fn get(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    id: Uuid,
) -> Result<WebhookEndpoint, AppError> {
    app.read(tenant, deadline, move |tx| {
        Box::pin(async move {
            Ok(stored::get(tx, id)
                .await?
                .ok_or_else(|| Refusal::not_found("webhook endpoint", id))?)
        })
    })
    .await
}

/// Oldest first.
pub async fn list(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    page: Page<CreatedKey>,
) -> Result<Listed<WebhookEndpoint, CreatedKey>, AppError> {
    let rows = app
        .read(tenant, deadline, move |tx| {
            Box::pin(async move { Ok(stored::list(tx, &page).await?) })
        })
        .await?;
    let (rows, next) = page.finish(rows, stored::key);
    Ok(Listed { rows, next })
}

/// A PATCH as sent: absent fields stay; `types: null` means every type.
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub types: Option<Option<Vec<String>>>,
    pub description: Option<String>,
    pub disabled: Option<bool>,
}

pub async fn update(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    id: Uuid,
    patch: EndpointPatch,
) -> Result<WebhookEndpoint, AppError> {
    let mut check = Validator::default();
    let url = check.check_optional(patch.url, |raw| EndpointUrl::parse("url", &raw));
    let types = match patch.types {
        None => Some(None),
        Some(types) => check.check(webhook::parse_types("types", types)).map(Some),
    };
    let description = check.check_optional(patch.description, |text| {
        webhook::parse_description("description", text)
    });
    let (url, types, description) = check.finish(|| Some((url?, types?, description?)))?;
    if let Some(url) = &url {
        guard::check_url("url", url, app.webhooks.allow_private).await?;
    }
    let changes = EndpointChanges {
        url: url.map(|url| url.as_str().to_owned()),
        types,
        description,
        disabled: patch.disabled,
    };
    app.write(tenant, deadline, move |tx| {
        let changes = changes.clone();
        Box::pin(async move {
            Ok(stored::update(tx, id, &changes)
                .await?
                .ok_or_else(|| Refusal::not_found("webhook endpoint", id))?)
        })
    })
    .await
}

pub async fn delete(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    id: Uuid,
) -> Result<(), AppError> {
    app.write(tenant, deadline, move |tx| {
        Box::pin(async move {
            if stored::delete(tx, id).await? {
                Ok(())
            } else {
                Err(Refusal::not_found("webhook endpoint", id).into())
            }
        })
    })
    .await
}

/// A new signing secret; the old ones keep signing for 24 hours.
pub async fn rotate_secret(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    id: Uuid,
) -> Result<CreatedEndpoint, AppError> {
    let secret = new_secret()?;
    let overlap = ROTATION_OVERLAP.as_secs_f64();
    let endpoint = app
        .write(tenant, deadline, {
            let secret = secret.clone();
            move |tx| {
                let secret = secret.clone();
                Box::pin(async move {
                    if !stored::rotate_secret(tx, id, secret.bytes(), overlap).await? {
                        return Err(Refusal::not_found("webhook endpoint", id).into());
                    }
                    Ok(stored::get(tx, id)
                        .await?
                        .ok_or_else(|| Refusal::not_found("webhook endpoint", id))?)
                })
            }
        })
        .await?;
    Ok(CreatedEndpoint { endpoint, secret })
}

/// The endpoint's attempts, newest first.
pub async fn deliveries(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    id: Uuid,
    page: Page<CreatedKey>,
) -> Result<Listed<DeliveryAttempt, CreatedKey>, AppError> {
    let rows = app
        .read(tenant, deadline, move |tx| {
            Box::pin(async move {
                if !stored::exists(tx, id).await? {
                    return Err(Refusal::not_found("webhook endpoint", id).into());
                }
                Ok(stored::attempts(tx, id, &page).await?)
            })
        })
        .await?;
    let (rows, next) = page.finish(rows, stored::attempt_key);
    Ok(Listed { rows, next })
}

/// Sends every event after sequence `after` again (those the endpoint's
/// filter takes); answers how many.
pub async fn replay(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    id: Uuid,
    after: i128,
) -> Result<u64, AppError> {
    let after = i64::try_from(after)
        .ok()
        .filter(|after| (0..=MAX_SAFE_INTEGER).contains(after))
        .ok_or_else(|| {
            FieldError::new("after", "must be a sequence number, 0 to 9007199254740991")
        })?;
    let replayed = app
        .write(tenant, deadline, move |tx| {
            Box::pin(async move {
                Ok(stored::replay(tx, id, after)
                    .await?
                    .ok_or_else(|| Refusal::not_found("webhook endpoint", id))?)
            })
        })
        .await?;
    metrics::counter!("ontab_webhook_replayed_total").increment(replayed);
    Ok(replayed)
}
