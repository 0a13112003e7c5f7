//! `hot-customer`: every client buys for the same customer, each its own
//! product, so the customer's row (and ledger head) is the only thing they
//! share. The credit limit is reached mid-run; from then on purchases are
//! refused with credit_limit_exceeded, and the audit checks that the final
//! balance never passed the limit and justifies every refusal.

use std::sync::Arc;

use serde_json::{Map, json};

use super::{
    AuditPlan, AuditTenant, Ctx, CustomerStart, Plan, Priced, ProductStart, UNENDING_STOCK,
};
use crate::driver::{Step, Workload};

const PRICE: i64 = 100;
/// 10,000 purchases at PRICE.
const DEFAULT_CREDIT_LIMIT: i64 = 1_000_000;

struct HotCustomer {
    token: Arc<str>,
    customer: Arc<str>,
    product: Priced,
}

impl Workload for HotCustomer {
    fn next_step(&mut self) -> Step {
        super::purchase_step(
            "purchase",
            &self.token,
            &self.customer,
            &[(&self.product, 1)],
        )
    }
}

pub async fn plan(ctx: &Ctx) -> anyhow::Result<Plan> {
    let knobs = &ctx.knobs;
    let credit_limit = knobs.credit_limit.unwrap_or(DEFAULT_CREDIT_LIMIT);
    let tenant = ctx
        .api
        .create_business(&ctx.admin_token, "load hot-customer")
        .await?;
    let customer = ctx
        .api
        .create_customers(&tenant, &[credit_limit])
        .await?
        .remove(0);
    let product_ids = ctx
        .api
        .create_products(&tenant, &vec![(PRICE, UNENDING_STOCK); knobs.clients])
        .await?;

    let workloads = product_ids
        .iter()
        .map(|id| {
            Box::new(HotCustomer {
                token: tenant.key.clone(),
                customer: customer.clone(),
                product: Priced {
                    id: id.clone(),
                    price: PRICE,
                },
            }) as Box<dyn Workload>
        })
        .collect();
    let mut facts = Map::new();
    facts.insert("credit_limit".into(), json!(credit_limit));
    facts.insert("price".into(), json!(PRICE));
    Ok(Plan {
        workloads,
        audit: AuditPlan {
            tenants: vec![AuditTenant {
                tenant,
                customers: vec![CustomerStart {
                    id: customer,
                    credit_limit,
                    balance: 0,
                    entries: 0,
                    held: 0,
                }],
                products: product_ids
                    .into_iter()
                    .map(|id| ProductStart {
                        id,
                        stock: UNENDING_STOCK,
                        reserved: 0,
                    })
                    .collect(),
            }],
            balances_only_grow: true,
            stock_only_falls: true,
            allowed_refusals: vec!["credit_limit_exceeded"],
        },
        facts,
    })
}
