//! Scenarios: each creates its own business(es), customers and products
//! through the API, then hands one workload per client to the driver and
//! says what the audit should check afterwards.

pub mod history;
mod hold_capture;
mod hot_customer;
mod hot_product;
mod mixed;
mod uncontended;

use std::sync::Arc;

use clap::ValueEnum;
use serde_json::{Map, Value, json};

use crate::api::{Api, Call, Tenant};
use crate::book::Intent;
use crate::driver::{Step, Workload};

/// Large enough never to be reached in a run, small enough to keep every
/// sum far inside i64.
pub const UNREACHABLE_CREDIT_LIMIT: i64 = 1_000_000_000_000;
pub const UNENDING_STOCK: i64 = 1_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// 2-line purchases spread over many customers and products.
    Uncontended,
    /// Every client buys the same product (distinct customers), stock lasts.
    HotProduct,
    /// hot-product with little stock: it runs out mid-run.
    Sellout,
    /// Every client buys for the same customer until the credit limit.
    HotCustomer,
    /// Purchases, payments and returns across several tenants.
    Mixed,
    /// Purchase latency for a customer with an empty ledger vs a long one.
    History,
    /// Hold then capture (a sale in two requests), shaped as `uncontended`.
    HoldCapture,
    /// Hold then capture, every client on the same product (as `hot-product`).
    HoldCaptureHot,
    /// hot-product with `--pending-holds` long-lived holds on the product.
    HotProductHeld,
}

impl Scenario {
    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }
}

/// Scenario knobs from the command line.
#[derive(Debug, Clone)]
pub struct Knobs {
    pub clients: usize,
    pub seed: u64,
    pub customers: usize,
    pub products: usize,
    pub tenants: usize,
    pub stock: Option<i64>,
    pub quantity: i64,
    pub credit_limit: Option<i64>,
    pub history_entries: u64,
    pub database_url: Option<String>,
    pub pending_holds: usize,
}

/// What setup needs.
pub struct Ctx {
    pub api: Api,
    pub admin_token: String,
    pub knobs: Knobs,
}

/// A customer as it stood before the run.
#[derive(Debug, Clone)]
pub struct CustomerStart {
    pub id: Arc<str>,
    pub credit_limit: i64,
    pub balance: i64,
    pub entries: u64,
    /// Credit held by pending holds made during setup.
    pub held: i64,
}

/// A product as it stood before the run.
#[derive(Debug, Clone)]
pub struct ProductStart {
    pub id: Arc<str>,
    pub stock: i64,
    /// Units reserved by pending holds made during setup.
    pub reserved: i64,
}

/// One tenant's records the audit reads back.
pub struct AuditTenant {
    pub tenant: Tenant,
    pub customers: Vec<CustomerStart>,
    pub products: Vec<ProductStart>,
}

/// What the audit checks after the run.
pub struct AuditPlan {
    pub tenants: Vec<AuditTenant>,
    /// No payments or returns: balances only grow, so every credit refusal
    /// must still be justified by the final balance.
    pub balances_only_grow: bool,
    /// No returns or adjustments: stock only falls, so every stock refusal
    /// must still be justified by the final stock.
    pub stock_only_falls: bool,
    /// 409 codes the scenario provokes on purpose; any other 4xx fails it.
    pub allowed_refusals: Vec<&'static str>,
}

/// A scenario ready to run.
pub struct Plan {
    pub workloads: Vec<Box<dyn Workload>>,
    pub audit: AuditPlan,
    /// Scenario facts for the report (sizes, initial stock, ...).
    pub facts: Map<String, Value>,
}

/// Sets the scenario up through the API (and SQL for `history`).
pub async fn plan(scenario: Scenario, ctx: &Ctx) -> anyhow::Result<Plan> {
    match scenario {
        Scenario::Uncontended => uncontended::plan(ctx).await,
        Scenario::HotProduct => hot_product::plan(ctx, false, 0).await,
        Scenario::Sellout => hot_product::plan(ctx, true, 0).await,
        Scenario::HotProductHeld => hot_product::plan(ctx, false, ctx.knobs.pending_holds).await,
        Scenario::HoldCapture => hold_capture::plan(ctx, false).await,
        Scenario::HoldCaptureHot => hold_capture::plan(ctx, true).await,
        Scenario::HotCustomer => hot_customer::plan(ctx).await,
        Scenario::Mixed => mixed::plan(ctx).await,
        Scenario::History => history::plan(ctx).await,
    }
}

/// A product a workload may buy, with the price it was created at (prices
/// never change during a run, so the client can predict every total).
#[derive(Debug, Clone)]
pub struct Priced {
    pub id: Arc<str>,
    pub price: i64,
}

/// POST /v1/purchases for `(product, quantity)` lines.
pub fn purchase_step(
    op: &'static str,
    token: &Arc<str>,
    customer: &Arc<str>,
    lines: &[(&Priced, i64)],
) -> Step {
    let items: Vec<Value> = lines
        .iter()
        .map(|(p, q)| json!({ "product_id": &*p.id, "quantity": q }))
        .collect();
    let body = json!({ "customer_id": &**customer, "items": items });
    Step {
        op,
        call: Call::post("/v1/purchases", token, &body),
        intent: Some(Intent::Purchase {
            customer: customer.clone(),
            lines: lines.iter().map(|(p, q)| (p.id.clone(), *q)).collect(),
            total: lines.iter().map(|(p, q)| p.price * q).sum(),
        }),
    }
}

/// Holds made by the load tool outlive any run: 30 days, the contract's
/// maximum, so no hold expires while it is measured or audited.
pub const HOLD_EXPIRES_IN: i64 = 2_592_000;

/// POST /v1/holds for `(product, quantity)` lines.
pub fn hold_step(token: &Arc<str>, customer: &Arc<str>, lines: &[(&Priced, i64)]) -> Step {
    let items: Vec<Value> = lines
        .iter()
        .map(|(p, q)| json!({ "product_id": &*p.id, "quantity": q }))
        .collect();
    let body = json!({ "customer_id": &**customer, "items": items, "expires_in": HOLD_EXPIRES_IN });
    Step {
        op: "hold",
        call: Call::post("/v1/holds", token, &body),
        intent: Some(Intent::Hold {
            customer: customer.clone(),
            lines: lines.iter().map(|(p, q)| (p.id.clone(), *q)).collect(),
            total: lines.iter().map(|(p, q)| p.price * q).sum(),
        }),
    }
}

/// POST /v1/holds/{id}/capture of all of a hold whose request was `hold`
/// (the intent of a `hold_step`).
pub fn capture_step(token: &Arc<str>, hold_id: &str, hold: &Intent) -> Option<Step> {
    let Intent::Hold {
        customer,
        lines,
        total,
    } = hold
    else {
        return None;
    };
    Some(Step {
        op: "capture",
        call: Call::post(format!("/v1/holds/{hold_id}/capture"), token, &json!({})),
        intent: Some(Intent::Capture {
            customer: customer.clone(),
            lines: lines.clone(),
            total: *total,
        }),
    })
}

/// POST /v1/payments.
pub fn payment_step(token: &Arc<str>, customer: &Arc<str>, amount: i64) -> Step {
    Step {
        op: "payment",
        call: Call::post(
            "/v1/payments",
            token,
            &json!({ "customer_id": &**customer, "amount": amount }),
        ),
        intent: Some(Intent::Payment {
            customer: customer.clone(),
            amount,
        }),
    }
}

/// POST /v1/orders/{id}/returns for `(product, quantity)` at the order's prices.
pub fn return_step(
    token: &Arc<str>,
    customer: &Arc<str>,
    order: &str,
    lines: &[(&Priced, i64)],
) -> Step {
    let items: Vec<Value> = lines
        .iter()
        .map(|(p, q)| json!({ "product_id": &*p.id, "quantity": q }))
        .collect();
    Step {
        op: "return",
        call: Call::post(
            format!("/v1/orders/{order}/returns"),
            token,
            &json!({ "items": items }),
        ),
        intent: Some(Intent::Return {
            customer: customer.clone(),
            lines: lines.iter().map(|(p, q)| (p.id.clone(), *q)).collect(),
            amount: lines.iter().map(|(p, q)| p.price * q).sum(),
        }),
    }
}

/// Fresh customers: zero balance, empty ledger.
pub fn fresh_customers(ids: Vec<Arc<str>>, credit_limit: i64) -> Vec<CustomerStart> {
    ids.into_iter()
        .map(|id| CustomerStart {
            id,
            credit_limit,
            balance: 0,
            entries: 0,
            held: 0,
        })
        .collect()
}
