//! `hot-product` and `sellout`: every client buys the same product, each
//! for its own customer. With `sellout` (or `--stock`) the stock runs out
//! mid-run: the audit then proves there was no oversell and no refusal
//! while stock remained. `hot-product-held` first makes `--pending-holds`
//! long-lived holds on the product (one unit each, spread over the
//! clients' customers), so every purchase decides against stock and credit
//! that pending holds keep: they must cost the purchases nothing much.

use std::sync::Arc;

use anyhow::Context;
use serde_json::{Map, json};

use super::{
    AuditPlan, AuditTenant, Ctx, CustomerStart, Plan, Priced, ProductStart, UNENDING_STOCK,
    UNREACHABLE_CREDIT_LIMIT,
};
use crate::api::{Call, expect};
use crate::driver::{Step, Workload};

/// Small enough to sell out within the first second even of a smoke run.
const SELLOUT_STOCK: i64 = 500;
const PRICE: i64 = 1_999;

struct HotProduct {
    token: Arc<str>,
    customer: Arc<str>,
    product: Arc<Priced>,
    quantity: i64,
}

impl Workload for HotProduct {
    fn next_step(&mut self) -> Step {
        super::purchase_step(
            "purchase",
            &self.token,
            &self.customer,
            &[(&self.product, self.quantity)],
        )
    }
}

pub async fn plan(ctx: &Ctx, sellout: bool, pending_holds: usize) -> anyhow::Result<Plan> {
    let knobs = &ctx.knobs;
    anyhow::ensure!(knobs.quantity >= 1, "--quantity must be positive");
    let stock = knobs.stock.unwrap_or(if sellout {
        SELLOUT_STOCK
    } else {
        UNENDING_STOCK
    });
    let name = if sellout {
        "load sellout"
    } else if pending_holds > 0 {
        "load hot-product-held"
    } else {
        "load hot-product"
    };
    let tenant = ctx.api.create_business(&ctx.admin_token, name).await?;
    let customer_ids = ctx
        .api
        .create_customers(&tenant, &vec![UNREACHABLE_CREDIT_LIMIT; knobs.clients])
        .await?;
    let product_id = ctx
        .api
        .create_products(&tenant, &[(PRICE, stock)])
        .await?
        .remove(0);
    let product = Arc::new(Priced {
        id: product_id.clone(),
        price: PRICE,
    });
    let mut held = vec![0i64; customer_ids.len()];
    if pending_holds > 0 {
        anyhow::ensure!(
            i64::try_from(pending_holds).unwrap_or(i64::MAX) <= stock,
            "--pending-holds {pending_holds} is more than the stock {stock}"
        );
        let calls = (0..pending_holds)
            .map(|n| {
                let customer = n % customer_ids.len();
                held[customer] += PRICE;
                super::hold_step(&tenant.key, &customer_ids[customer], &[(&product, 1)]).call
            })
            .collect::<Vec<Call>>();
        for reply in ctx.api.send_all(calls).await? {
            expect(&reply, 201, "create a pending hold").context("hot-product-held setup")?;
        }
    }

    let workloads = customer_ids
        .iter()
        .map(|customer| {
            Box::new(HotProduct {
                token: tenant.key.clone(),
                customer: customer.clone(),
                product: product.clone(),
                quantity: knobs.quantity,
            }) as Box<dyn Workload>
        })
        .collect();
    let mut facts = Map::new();
    facts.insert("initial_stock".into(), json!(stock));
    if pending_holds > 0 {
        facts.insert("pending_holds".into(), json!(pending_holds));
    }
    facts.insert("quantity_per_purchase".into(), json!(knobs.quantity));
    Ok(Plan {
        workloads,
        audit: AuditPlan {
            tenants: vec![AuditTenant {
                tenant,
                customers: super::fresh_customers(customer_ids, UNREACHABLE_CREDIT_LIMIT)
                    .into_iter()
                    .zip(held)
                    .map(|(customer, held)| CustomerStart { held, ..customer })
                    .collect(),
                products: vec![ProductStart {
                    id: product_id,
                    stock,
                    reserved: i64::try_from(pending_holds).unwrap_or(i64::MAX),
                }],
            }],
            balances_only_grow: true,
            stock_only_falls: true,
            allowed_refusals: if sellout || knobs.stock.is_some() {
                vec!["insufficient_stock"]
            } else {
                vec![]
            },
        },
        facts,
    })
}
