//! Products: create, read, list, rename or reprice.

use uuid::Uuid;

use crate::db::page::{CreatedKey, Listed, Page};
use crate::db::products;
use crate::domain::records::Product;
use crate::domain::{Name, NonNegative, Refusal, Validator};

use super::customers::not_null;
use super::{App, AppError, Deadline, Tenant};

/// A product as asked for, before validation.
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub name: String,
    pub price: i128,
    pub stock: i128,
}

/// Changes to a product: absent fields stay; null is refused.
#[derive(Debug, Clone, Default)]
pub struct ProductChanges {
    pub name: Option<Option<String>>,
    pub price: Option<Option<i128>>,
}

pub async fn create(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    request: NewProduct,
) -> Result<Product, AppError> {
    let mut check = Validator::default();
    let name = check.check(Name::parse("name", &request.name));
    let price = check.check(NonNegative::parse("price", request.price));
    let stock = check.check(NonNegative::parse("stock", request.stock));
    let (name, price, stock) = check.finish(|| Some((name?, price?, stock?)))?;
    app.write(tenant, deadline, move |tx| {
        let name = name.clone();
        Box::pin(async move { Ok(products::create(tx, &name, price, stock).await?) })
    })
    .await
}

pub async fn get(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    id: Uuid,
) -> Result<Product, AppError> {
    app.read(tenant, deadline, move |tx| {
        Box::pin(async move {
            Ok(products::get(tx, id)
                .await?
                .ok_or_else(|| Refusal::not_found("product", id))?)
        })
    })
    .await
}

pub async fn list(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    page: Page<CreatedKey>,
) -> Result<Listed<Product, CreatedKey>, AppError> {
    let rows = app
        .read(tenant, deadline, move |tx| {
            Box::pin(async move { Ok(products::list(tx, &page).await?) })
        })
        .await?;
    let (rows, next) = page.finish(rows, products::key);
    Ok(Listed { rows, next })
}

/// Valid changes to a product.
#[derive(Debug, Clone)]
pub struct ProductUpdate {
    name: Option<Name>,
    price: Option<NonNegative>,
}

impl ProductUpdate {
    pub fn parse(changes: ProductChanges) -> Result<Self, AppError> {
        let mut check = Validator::default();
        let name = check.check_optional(changes.name, |raw| {
            not_null("name", raw).and_then(|raw| Name::parse("name", &raw))
        });
        let price = check.check_optional(changes.price, |raw| {
            not_null("price", raw).and_then(|raw| NonNegative::parse("price", raw))
        });
        Ok(check.finish(|| {
            Some(Self {
                name: name?,
                price: price?,
            })
        })?)
    }
}

/// Renames and/or reprices. Past orders keep the prices they were bought at.
pub async fn update(
    app: &App,
    tenant: &Tenant,
    deadline: Deadline,
    id: Uuid,
    update: ProductUpdate,
) -> Result<Product, AppError> {
    let ProductUpdate { name, price } = update;
    app.write(tenant, deadline, move |tx| {
        let name = name.clone();
        Box::pin(async move {
            Ok(products::update(tx, id, name.as_ref(), price)
                .await?
                .ok_or_else(|| Refusal::not_found("product", id))?)
        })
    })
    .await
}
