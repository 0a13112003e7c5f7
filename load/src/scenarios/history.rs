//! `history`: purchase latency for a customer with an empty ledger against
//! one with a long history (1,000,000 entries by default, bulk-loaded in
//! SQL). Each client alternates between the two, so both are measured in
//! the same moments on the same noisy machine.

use std::sync::Arc;

use anyhow::Context;
use serde_json::{Map, json};

use super::{
    AuditPlan, AuditTenant, Ctx, CustomerStart, Plan, Priced, ProductStart, UNENDING_STOCK,
    UNREACHABLE_CREDIT_LIMIT,
};
use crate::bulk;
use crate::driver::{Step, Workload};

pub const EMPTY_OP: &str = "purchase_empty_ledger";
pub const LONG_OP: &str = "purchase_long_ledger";
const PRICE: i64 = 250;

/// One customer with its own product, so the two never share a row lock.
struct Side {
    op: &'static str,
    customer: Arc<str>,
    product: Priced,
}

struct History {
    token: Arc<str>,
    sides: Arc<[Side; 2]>,
    turn: usize,
}

impl Workload for History {
    fn next_step(&mut self) -> Step {
        let side = &self.sides[self.turn % 2];
        self.turn += 1;
        super::purchase_step(side.op, &self.token, &side.customer, &[(&side.product, 1)])
    }
}

pub async fn plan(ctx: &Ctx) -> anyhow::Result<Plan> {
    let knobs = &ctx.knobs;
    let database_url = knobs.database_url.as_deref().context(
        "history needs --database-url (the server's database) to bulk-load the long ledger",
    )?;
    let tenant = ctx
        .api
        .create_business(&ctx.admin_token, "load history")
        .await?;
    let customers = ctx
        .api
        .create_customers(&tenant, &[UNREACHABLE_CREDIT_LIMIT; 2])
        .await?;
    let products = ctx
        .api
        .create_products(&tenant, &[(PRICE, UNENDING_STOCK); 2])
        .await?;
    let loaded = bulk::load_history(
        database_url,
        &tenant.id,
        &customers[1],
        &products[1],
        PRICE,
        knobs.history_entries,
    )
    .await?;

    let sides = Arc::new([
        Side {
            op: EMPTY_OP,
            customer: customers[0].clone(),
            product: Priced {
                id: products[0].clone(),
                price: PRICE,
            },
        },
        Side {
            op: LONG_OP,
            customer: customers[1].clone(),
            product: Priced {
                id: products[1].clone(),
                price: PRICE,
            },
        },
    ]);
    let workloads = (0..knobs.clients)
        .map(|n| {
            Box::new(History {
                token: tenant.key.clone(),
                sides: sides.clone(),
                turn: n,
            }) as Box<dyn Workload>
        })
        .collect();
    let mut facts = Map::new();
    facts.insert("history_entries".into(), json!(loaded.entries));
    facts.insert(
        "history_load_seconds".into(),
        json!((loaded.took.as_secs_f64() * 10.0).round() / 10.0),
    );
    Ok(Plan {
        workloads,
        audit: AuditPlan {
            tenants: vec![AuditTenant {
                tenant,
                customers: vec![
                    CustomerStart {
                        id: customers[0].clone(),
                        credit_limit: UNREACHABLE_CREDIT_LIMIT,
                        balance: 0,
                        entries: 0,
                        held: 0,
                    },
                    CustomerStart {
                        id: customers[1].clone(),
                        credit_limit: UNREACHABLE_CREDIT_LIMIT,
                        balance: loaded.balance,
                        entries: loaded.entries,
                        held: 0,
                    },
                ],
                products: vec![
                    ProductStart {
                        id: products[0].clone(),
                        stock: UNENDING_STOCK,
                        reserved: 0,
                    },
                    ProductStart {
                        id: products[1].clone(),
                        stock: UNENDING_STOCK - loaded.sold,
                        reserved: 0,
                    },
                ],
            }],
            balances_only_grow: true,
            stock_only_falls: true,
            allowed_refusals: vec![],
        },
        facts,
    })
}
