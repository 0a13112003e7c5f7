//! `mixed`: purchases, payments and returns across several tenants. Each
//! client works for one tenant and returns only from orders it placed, so
//! it always knows what is still returnable.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{
    AuditPlan, AuditTenant, Ctx, Plan, Priced, ProductStart, UNENDING_STOCK,
    UNREACHABLE_CREDIT_LIMIT,
};
use crate::driver::{Step, Workload};
use crate::http::{Reply, TransportError};
use crate::util::Rng;

/// Out of 100 steps: returns below RETURN_SHARE, payments below
/// PAYMENT_SHARE, purchases for the rest (a return with nothing to return
/// becomes a purchase).
const RETURN_SHARE: usize = 15;
const PAYMENT_SHARE: usize = 40;
const ORDERS_REMEMBERED: usize = 32;

struct Shop {
    token: Arc<str>,
    customers: Vec<Arc<str>>,
    products: Vec<Priced>,
}

/// An order this client placed, with what can still be returned per line.
struct Placed {
    id: String,
    customer: Arc<str>,
    returnable: Vec<(usize, i64)>,
}

enum Pending {
    Purchase {
        customer: Arc<str>,
        lines: Vec<(usize, i64)>,
    },
    Return {
        order: usize,
        line: usize,
    },
    Other,
}

struct Mixed {
    shop: Arc<Shop>,
    rng: Rng,
    placed: VecDeque<Placed>,
    pending: Pending,
}

impl Mixed {
    fn purchase(&mut self) -> Step {
        let shop = self.shop.clone();
        let customer = shop.customers[self.rng.below(shop.customers.len())].clone();
        let line_count = 1 + self.rng.below(3.min(shop.products.len()));
        let mut lines: Vec<(usize, i64)> = Vec::with_capacity(line_count);
        while lines.len() < line_count {
            let product = self.rng.below(shop.products.len());
            if lines.iter().all(|(p, _)| *p != product) {
                lines.push((product, self.rng.between(1, 3)));
            }
        }
        let priced: Vec<(&Priced, i64)> = lines
            .iter()
            .map(|(p, q)| (&shop.products[*p], *q))
            .collect();
        let step = super::purchase_step("purchase", &shop.token, &customer, &priced);
        self.pending = Pending::Purchase { customer, lines };
        step
    }

    fn give_back(&mut self) -> Option<Step> {
        let order = self
            .placed
            .iter()
            .position(|o| o.returnable.iter().any(|(_, q)| *q > 0))?;
        let placed = &self.placed[order];
        let line = placed.returnable.iter().position(|(_, q)| *q > 0)?;
        let product = &self.shop.products[placed.returnable[line].0];
        let step = super::return_step(
            &self.shop.token,
            &placed.customer,
            &placed.id,
            &[(product, 1)],
        );
        self.pending = Pending::Return { order, line };
        Some(step)
    }
}

impl Workload for Mixed {
    fn next_step(&mut self) -> Step {
        let roll = self.rng.below(100);
        if roll < RETURN_SHARE {
            if let Some(step) = self.give_back() {
                return step;
            }
        } else if roll < PAYMENT_SHARE {
            let customer = self.shop.customers[self.rng.below(self.shop.customers.len())].clone();
            self.pending = Pending::Other;
            return super::payment_step(&self.shop.token, &customer, self.rng.between(1, 2_000));
        }
        self.purchase()
    }

    fn observe(
        &mut self,
        _step: &Step,
        outcome: &Result<Reply, TransportError>,
        accepted: Option<&Value>,
    ) {
        let definitive = matches!(outcome, Ok(reply) if reply.status < 500);
        match std::mem::replace(&mut self.pending, Pending::Other) {
            Pending::Purchase { customer, lines } => {
                if let Some(id) = accepted
                    .and_then(|body| body.get("id"))
                    .and_then(Value::as_str)
                {
                    if self.placed.len() == ORDERS_REMEMBERED {
                        self.placed.pop_front();
                    }
                    self.placed.push_back(Placed {
                        id: id.to_owned(),
                        customer,
                        returnable: lines,
                    });
                }
            }
            Pending::Return { order, line } => {
                if accepted.is_some() {
                    if let Some(placed) = self.placed.get_mut(order) {
                        placed.returnable[line].1 -= 1;
                    }
                } else if !definitive {
                    // It may have been applied: what is returnable is no
                    // longer known, so this order is not touched again.
                    self.placed.remove(order);
                }
            }
            Pending::Other => {}
        }
    }
}

pub async fn plan(ctx: &Ctx) -> anyhow::Result<Plan> {
    let knobs = &ctx.knobs;
    let tenants = knobs.tenants.max(1);
    let customers_each = (knobs.customers / tenants).max(1);
    let products_each = (knobs.products / tenants).max(1);
    let mut rng = Rng::new(knobs.seed);
    let mut shops = Vec::with_capacity(tenants);
    let mut audit_tenants = Vec::with_capacity(tenants);
    for n in 0..tenants {
        let tenant = ctx
            .api
            .create_business(&ctx.admin_token, &format!("load mixed {n}"))
            .await?;
        let customer_ids = ctx
            .api
            .create_customers(&tenant, &vec![UNREACHABLE_CREDIT_LIMIT; customers_each])
            .await?;
        let prices: Vec<(i64, i64)> = (0..products_each)
            .map(|_| (rng.between(100, 5_000), UNENDING_STOCK))
            .collect();
        let product_ids = ctx.api.create_products(&tenant, &prices).await?;
        shops.push(Arc::new(Shop {
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
        }));
        audit_tenants.push(AuditTenant {
            tenant,
            customers: super::fresh_customers(customer_ids, UNREACHABLE_CREDIT_LIMIT),
            products: product_ids
                .into_iter()
                .map(|id| ProductStart {
                    id,
                    stock: UNENDING_STOCK,
                    reserved: 0,
                })
                .collect(),
        });
    }
    let workloads = (0..knobs.clients)
        .map(|n| {
            Box::new(Mixed {
                shop: shops[n % tenants].clone(),
                rng: Rng::new(knobs.seed ^ (n as u64 + 1)),
                placed: VecDeque::new(),
                pending: Pending::Other,
            }) as Box<dyn Workload>
        })
        .collect();
    let mut facts = Map::new();
    facts.insert("tenants".into(), json!(tenants));
    facts.insert("customers_per_tenant".into(), json!(customers_each));
    facts.insert("products_per_tenant".into(), json!(products_each));
    facts.insert("mix_percent".into(), json!({ "return": RETURN_SHARE, "payment": PAYMENT_SHARE - RETURN_SHARE, "purchase": 100 - PAYMENT_SHARE }));
    Ok(Plan {
        workloads,
        audit: AuditPlan {
            tenants: audit_tenants,
            balances_only_grow: false,
            stock_only_falls: false,
            allowed_refusals: vec!["payment_exceeds_balance"],
        },
        facts,
    })
}
