//! Products: price and stock. Stock only moves through purchases, returns
//! and adjustments, never through an update of the product.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::page::{CreatedKey, Page};
use super::sql::{Column, Statement, statement};
use super::{DbError, TenantTx, column};
use crate::domain::records::Product;
use crate::domain::{Name, NonNegative};

/// The columns `product` reads.
const PRODUCT: &[Column] = &[
    Column::named::<Uuid>("id"),
    Column::named::<String>("name"),
    Column::named::<i64>("price"),
    Column::named::<i64>("stock"),
    Column::named::<i64>("reserved"),
    Column::named::<DateTime<Utc>>("created_at"),
];

fn product(row: &Row) -> Result<Product, DbError> {
    Ok(Product {
        id: column(row, "id")?,
        name: column(row, "name")?,
        price: column(row, "price")?,
        stock: column(row, "stock")?,
        reserved: column(row, "reserved")?,
        created_at: column(row, "created_at")?,
    })
}

/// The product's position in the list.
pub fn key(product: &Product) -> CreatedKey {
    CreatedKey {
        created_at: product.created_at,
        id: product.id,
    }
}

const CREATE: &str = "INSERT INTO products (business_id, id, name, price, stock, initial_stock)
                      VALUES ($1, $2, $3, $4, $5, $5)
                      RETURNING id, name, price, stock, 0::bigint AS reserved, created_at";

pub async fn create(
    tx: &TenantTx,
    name: &Name,
    price: NonNegative,
    stock: NonNegative,
) -> Result<Product, DbError> {
    let id = Uuid::now_v7();
    let (business, name, price, stock) =
        (tx.business_id(), name.as_str(), price.get(), stock.get());
    let row = tx
        .query_one(
            CREATE,
            &[
                (&business, Type::UUID),
                (&id, Type::UUID),
                (&name, Type::TEXT),
                (&price, Type::INT8),
                (&stock, Type::INT8),
            ],
        )
        .await?;
    product(&row)
}

// What pending holds reserve, less what expired holds still count there
// (released at the next decision about the product, or by the sweep): the
// sum ontab_expired_reserve makes, written out and pinned to the business
// (`$1` in every statement using this), as customers' held is (see
// customers.rs).
macro_rules! columns {
    () => {
        "id, name, price, stock,
         reserved - (SELECT coalesce(sum(i.quantity), 0)::bigint
                       FROM pending_hold_items i
                      WHERE i.business_id = $1 AND i.product_id = products.id
                        AND i.expires_at <= now()) AS reserved,
         created_at"
    };
}

const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM products WHERE business_id = $1 AND id = $2"
);

pub async fn get(tx: &TenantTx, id: Uuid) -> Result<Option<Product>, DbError> {
    let business = tx.business_id();
    let row = tx
        .query_opt(GET, &[(&business, Type::UUID), (&id, Type::UUID)])
        .await?;
    row.as_ref().map(product).transpose()
}

const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM products
     WHERE business_id = $1
       AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
     ORDER BY created_at, id
     LIMIT $4"
);

pub async fn list(tx: &TenantTx, page: &Page<CreatedKey>) -> Result<Vec<Product>, DbError> {
    let business = tx.business_id();
    let (after_at, after_id) = page.after_parts();
    let limit = page.fetch_limit();
    let rows = tx
        .query(
            LIST,
            &[
                (&business, Type::UUID),
                (&after_at, Type::TIMESTAMPTZ),
                (&after_id, Type::UUID),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    rows.iter().map(product).collect()
}

const UPDATE: &str = concat!(
    "UPDATE products SET name = coalesce($3, name), price = coalesce($4, price)
      WHERE business_id = $1 AND id = $2
     RETURNING ",
    columns!()
);

/// Changes name and/or price. Past orders are untouched: each order line
/// stores the unit price it was bought at.
pub async fn update(
    tx: &TenantTx,
    id: Uuid,
    name: Option<&Name>,
    price: Option<NonNegative>,
) -> Result<Option<Product>, DbError> {
    let business = tx.business_id();
    let name = name.map(Name::as_str);
    let price = price.map(NonNegative::get);
    let row = tx
        .query_opt(
            UPDATE,
            &[
                (&business, Type::UUID),
                (&id, Type::UUID),
                (&name, Type::TEXT),
                (&price, Type::INT8),
            ],
        )
        .await?;
    row.as_ref().map(product).transpose()
}

pub(super) const STATEMENTS: &[Statement] = &[
    statement!(
        CREATE,
        &[Type::UUID, Type::UUID, Type::TEXT, Type::INT8, Type::INT8],
        PRODUCT
    ),
    statement!(GET, &[Type::UUID, Type::UUID], PRODUCT),
    statement!(
        LIST,
        &[Type::UUID, Type::TIMESTAMPTZ, Type::UUID, Type::INT8],
        PRODUCT
    ),
    statement!(
        UPDATE,
        &[Type::UUID, Type::UUID, Type::TEXT, Type::INT8],
        PRODUCT
    ),
];
