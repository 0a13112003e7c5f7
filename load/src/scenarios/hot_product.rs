//! `hot-product` and `sellout`: every client buys the same product, each
//! for its own customer. With `sellout` (or `--stock`) the stock runs out
//! mid-run: the audit then proves there was no oversell and no refusal
//! while stock remained.

use std::sync::Arc;

use serde_json::{Map, json};

use super::{
    AuditPlan, AuditTenant, Ctx, Plan, Priced, ProductStart, UNENDING_STOCK,
    UNREACHABLE_CREDIT_LIMIT,
};
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

pub async fn plan(ctx: &Ctx, sellout: bool) -> anyhow::Result<Plan> {
    let knobs = &ctx.knobs;
    anyhow::ensure!(knobs.quantity >= 1, "--quantity must be positive");
    let stock = knobs.stock.unwrap_or(if sellout {
        SELLOUT_STOCK
    } else {
        UNENDING_STOCK
    });
    let name = if sellout {
        "load sellout"
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
    facts.insert("quantity_per_purchase".into(), json!(knobs.quantity));
    Ok(Plan {
        workloads,
        audit: AuditPlan {
            tenants: vec![AuditTenant {
                tenant,
                customers: super::fresh_customers(customer_ids, UNREACHABLE_CREDIT_LIMIT),
                products: vec![ProductStart {
                    id: product_id,
                    stock,
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
