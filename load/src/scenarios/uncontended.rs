//! `uncontended`: 2-line purchases for random customers of many, from many
//! products, so few requests ever wait on the same row.

use std::sync::Arc;

use serde_json::{Map, json};

use super::{
    AuditPlan, AuditTenant, Ctx, Plan, Priced, ProductStart, UNENDING_STOCK,
    UNREACHABLE_CREDIT_LIMIT,
};
use crate::driver::{Step, Workload};
use crate::util::Rng;

struct Catalog {
    token: Arc<str>,
    customers: Vec<Arc<str>>,
    products: Vec<Priced>,
}

struct Uncontended {
    catalog: Arc<Catalog>,
    rng: Rng,
}

impl Workload for Uncontended {
    fn next_step(&mut self) -> Step {
        let c = &self.catalog;
        let customer = &c.customers[self.rng.below(c.customers.len())];
        let (a, b) = self.rng.two_distinct(c.products.len());
        super::purchase_step(
            "purchase",
            &c.token,
            customer,
            &[(&c.products[a], 1), (&c.products[b], 1)],
        )
    }
}

pub async fn plan(ctx: &Ctx) -> anyhow::Result<Plan> {
    let knobs = &ctx.knobs;
    anyhow::ensure!(knobs.products >= 2, "uncontended needs at least 2 products");
    anyhow::ensure!(
        knobs.customers >= 1,
        "uncontended needs at least 1 customer"
    );
    let tenant = ctx
        .api
        .create_business(&ctx.admin_token, "load uncontended")
        .await?;
    let customer_ids = ctx
        .api
        .create_customers(&tenant, &vec![UNREACHABLE_CREDIT_LIMIT; knobs.customers])
        .await?;
    let mut rng = Rng::new(knobs.seed);
    let prices: Vec<(i64, i64)> = (0..knobs.products)
        .map(|_| (rng.between(100, 10_000), UNENDING_STOCK))
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
    });
    let workloads = (0..knobs.clients)
        .map(|n| {
            Box::new(Uncontended {
                catalog: catalog.clone(),
                rng: Rng::new(knobs.seed ^ (n as u64 + 1)),
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
    facts.insert("customers".into(), json!(knobs.customers));
    facts.insert("products".into(), json!(knobs.products));
    facts.insert("lines_per_purchase".into(), json!(2));
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
