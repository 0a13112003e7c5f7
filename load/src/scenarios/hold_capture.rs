//! `hold-capture` and `hold-capture-hot`: every sale in two requests, a
//! hold (`POST /v1/holds`) and then its full capture
//! (`POST /v1/holds/{id}/capture`), each client one sale after another.
//! `hold-capture` is shaped as `uncontended` (2-line holds for a random
//! customer of many, from many products), `hold-capture-hot` as
//! `hot-product` (every client holds the same product for its own
//! customer), so each compares with its purchase scenario of the same run.
//! The audit proves the captures charged and sold exactly what the holds
//! held, and that nothing stays reserved or held but holds the run left
//! pending at its end.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{
    AuditPlan, AuditTenant, Ctx, Plan, Priced, ProductStart, UNENDING_STOCK,
    UNREACHABLE_CREDIT_LIMIT,
};
use crate::book::Intent;
use crate::driver::{Step, Workload};
use crate::http::{Reply, TransportError};
use crate::util::Rng;

/// Price of the hot product, as `hot-product`'s.
const HOT_PRICE: i64 = 1_999;

struct Catalog {
    token: Arc<str>,
    customers: Vec<Arc<str>>,
    products: Vec<Priced>,
    /// Hot: the client's own customer, one line of the only product.
    hot: bool,
    quantity: i64,
}

struct HoldCapture {
    catalog: Arc<Catalog>,
    /// The hot shape's customer of this client.
    own_customer: usize,
    rng: Rng,
    /// The hold to capture next: its id and what it held.
    pending: Option<(String, Intent)>,
}

impl Workload for HoldCapture {
    fn next_step(&mut self) -> Step {
        let c = &self.catalog;
        if let Some((id, hold)) = self.pending.take()
            && let Some(step) = super::capture_step(&c.token, &id, &hold)
        {
            return step;
        }
        if c.hot {
            super::hold_step(
                &c.token,
                &c.customers[self.own_customer],
                &[(&c.products[0], c.quantity)],
            )
        } else {
            let customer = &c.customers[self.rng.below(c.customers.len())];
            let (a, b) = self.rng.two_distinct(c.products.len());
            super::hold_step(
                &c.token,
                customer,
                &[(&c.products[a], 1), (&c.products[b], 1)],
            )
        }
    }

    fn observe(
        &mut self,
        step: &Step,
        _outcome: &Result<Reply, TransportError>,
        accepted: Option<&Value>,
    ) {
        // A hold that was not answered 201 is not captured (the book keeps
        // it as possibly pending); after a capture, whatever its answer,
        // the next sale starts.
        if step.op == "hold"
            && let (Some(body), Some(intent)) = (accepted, &step.intent)
            && let Some(id) = body.get("id").and_then(Value::as_str)
        {
            self.pending = Some((id.to_owned(), intent.clone()));
        }
    }
}

pub async fn plan(ctx: &Ctx, hot: bool) -> anyhow::Result<Plan> {
    let knobs = &ctx.knobs;
    anyhow::ensure!(knobs.quantity >= 1, "--quantity must be positive");
    let (customers, products) = if hot {
        (knobs.clients, 1)
    } else {
        anyhow::ensure!(
            knobs.products >= 2,
            "hold-capture needs at least 2 products"
        );
        anyhow::ensure!(
            knobs.customers >= 1,
            "hold-capture needs at least 1 customer"
        );
        (knobs.customers, knobs.products)
    };
    let name = if hot {
        "load hold-capture-hot"
    } else {
        "load hold-capture"
    };
    let tenant = ctx.api.create_business(&ctx.admin_token, name).await?;
    let customer_ids = ctx
        .api
        .create_customers(&tenant, &vec![UNREACHABLE_CREDIT_LIMIT; customers])
        .await?;
    let mut rng = Rng::new(knobs.seed);
    let prices: Vec<(i64, i64)> = (0..products)
        .map(|_| {
            let price = if hot {
                HOT_PRICE
            } else {
                rng.between(100, 10_000)
            };
            (price, UNENDING_STOCK)
        })
        .collect();
    let product_ids = ctx.api.create_products(&tenant, &prices).await?;
    let catalog = Arc::new(Catalog {
        token: tenant.key.clone(),
        customers: customer_ids.clone(),
        products: product_ids
            .iter()
            .zip(&prices)
            .map(|(id, (price, _))| Priced {
                id: id.clone(),
                price: *price,
            })
            .collect(),
        hot,
        quantity: knobs.quantity,
    });
    let workloads = (0..knobs.clients)
        .map(|n| {
            Box::new(HoldCapture {
                catalog: catalog.clone(),
                own_customer: n % customers,
                rng: Rng::new(knobs.seed ^ (n as u64 + 1)),
                pending: None,
            }) as Box<dyn Workload>
        })
        .collect();
    let products = product_ids
        .into_iter()
        .map(|id| ProductStart {
            id,
            stock: UNENDING_STOCK,
            reserved: 0,
        })
        .collect();
    let mut facts = Map::new();
    facts.insert("customers".into(), json!(customers));
    facts.insert("products".into(), json!(prices.len()));
    facts.insert("lines_per_hold".into(), json!(if hot { 1 } else { 2 }));
    Ok(Plan {
        workloads,
        audit: AuditPlan {
            tenants: vec![AuditTenant {
                tenant,
                customers: super::fresh_customers(customer_ids, UNREACHABLE_CREDIT_LIMIT),
                products,
            }],
            balances_only_grow: true,
            stock_only_falls: true,
            allowed_refusals: vec![],
        },
        facts,
    })
}
