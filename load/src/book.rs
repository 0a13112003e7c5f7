//! The client's own record of what the server accepted, kept so the final
//! state can be checked against it: every 201 must show up in balances,
//! stock and ledgers, and nothing else may.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::http::{Reply, TransportError};

/// What a request tried to do, with the amounts the client expects.
#[derive(Debug, Clone)]
pub enum Intent {
    Purchase {
        customer: Arc<str>,
        lines: Vec<(Arc<str>, i64)>,
        total: i64,
    },
    Payment {
        customer: Arc<str>,
        amount: i64,
    },
    Return {
        customer: Arc<str>,
        lines: Vec<(Arc<str>, i64)>,
        amount: i64,
    },
    /// POST /v1/holds: reserves the lines' units and the total's credit.
    Hold {
        customer: Arc<str>,
        lines: Vec<(Arc<str>, i64)>,
        total: i64,
    },
    /// POST /v1/holds/{id}/capture of a whole hold: a purchase at the
    /// hold's prices that releases what the hold reserved.
    Capture {
        customer: Arc<str>,
        lines: Vec<(Arc<str>, i64)>,
        total: i64,
    },
}

/// Movements of one customer's balance seen by the client.
#[derive(Debug, Default, Clone)]
pub struct CustomerBook {
    pub charged: i64,
    pub credited: i64,
    pub entries: u64,
    /// Requests with no definitive answer (transport error, 5xx): they may
    /// or may not have been applied, so exact checks become ranges.
    pub maybe_charged: i64,
    pub maybe_credited: i64,
    pub maybe_entries: u64,
    /// Smallest order refused for the credit limit: once the balance only
    /// grows, the final balance plus it must exceed the limit.
    pub smallest_refused_total: Option<i64>,
    /// Credit held by holds the client saw created and not yet captured
    /// (net of captures), and the unknowns either way.
    pub held: i64,
    pub maybe_held: i64,
    pub maybe_released: i64,
}

/// Movements of one product's stock seen by the client.
#[derive(Debug, Default, Clone)]
pub struct ProductBook {
    pub sold: i64,
    pub returned: i64,
    pub maybe_sold: i64,
    pub maybe_returned: i64,
    pub purchases_ok: u64,
    /// Smallest quantity refused as insufficient_stock: once stock only
    /// falls, the final stock must be below it (no false refusals).
    pub smallest_refused_request: Option<i64>,
    /// Units reserved by holds the client saw created and not yet captured,
    /// and the unknowns either way.
    pub reserved: i64,
    pub maybe_reserved: i64,
    pub maybe_unreserved: i64,
}

/// Violations noticed while the run was going, plus the books.
#[derive(Debug, Default)]
pub struct Book {
    pub customers: HashMap<Arc<str>, CustomerBook>,
    pub products: HashMap<Arc<str>, ProductBook>,
    pub violations: Vec<String>,
    pub purchase_total_ok: i64,
}

const MAX_VIOLATIONS_KEPT: usize = 50;

impl Book {
    /// Books one outcome; returns the JSON body of an accepted request so the
    /// caller need not parse it again.
    pub fn record(
        &mut self,
        intent: &Intent,
        outcome: &Result<Reply, TransportError>,
    ) -> Option<Value> {
        match outcome {
            Ok(reply) if reply.status == 201 => self.accepted(intent, reply),
            Ok(reply) if reply.status == 409 => {
                self.refused(intent, reply);
                None
            }
            Ok(reply) if reply.status < 500 && !(200..300).contains(&reply.status) => None,
            Ok(reply) => {
                if reply.status < 300 {
                    self.violation(format!(
                        "a movement answered {} instead of 201: {}",
                        reply.status,
                        reply.snippet()
                    ));
                }
                self.maybe(intent);
                None
            }
            Err(_) => {
                self.maybe(intent);
                None
            }
        }
    }

    fn accepted(&mut self, intent: &Intent, reply: &Reply) -> Option<Value> {
        let Some(body) = reply.json() else {
            self.violation(format!("201 without a JSON body: {}", reply.snippet()));
            self.maybe(intent);
            return None;
        };
        match intent {
            Intent::Purchase {
                customer,
                lines,
                total,
            }
            | Intent::Capture {
                customer,
                lines,
                total,
            } => {
                let answered = body.get("total").and_then(Value::as_i64);
                if answered != Some(*total) {
                    self.violation(format!(
                        "purchase 201 total {answered:?}, expected {total} from the prices"
                    ));
                }
                let capture = matches!(intent, Intent::Capture { .. });
                if capture && body.get("hold_id").is_none_or(Value::is_null) {
                    self.violation(format!("capture 201 without hold_id: {body}"));
                }
                self.purchase_total_ok += total;
                let book = self.customers.entry(customer.clone()).or_default();
                book.charged += total;
                book.entries += 1;
                if capture {
                    book.held -= total;
                }
                for (product, quantity) in lines {
                    let book = self.products.entry(product.clone()).or_default();
                    book.sold += quantity;
                    book.purchases_ok += 1;
                    if capture {
                        book.reserved -= quantity;
                    }
                }
            }
            Intent::Hold {
                customer,
                lines,
                total,
            } => {
                let answered = body.get("total").and_then(Value::as_i64);
                let status = body.get("status").and_then(Value::as_str);
                if answered != Some(*total) || status != Some("pending") {
                    self.violation(format!(
                        "hold 201 total {answered:?}, status {status:?}, expected {total} and pending"
                    ));
                }
                self.customers.entry(customer.clone()).or_default().held += total;
                for (product, quantity) in lines {
                    self.products.entry(product.clone()).or_default().reserved += quantity;
                }
            }
            Intent::Payment { customer, amount } => {
                let answered = body.get("amount").and_then(Value::as_i64);
                if answered != Some(-amount) {
                    self.violation(format!(
                        "payment 201 amount {answered:?}, expected {}",
                        -amount
                    ));
                }
                let book = self.customers.entry(customer.clone()).or_default();
                book.credited += amount;
                book.entries += 1;
            }
            Intent::Return {
                customer,
                lines,
                amount,
            } => {
                let answered = body.get("amount").and_then(Value::as_i64);
                if answered != Some(*amount) {
                    self.violation(format!("return 201 amount {answered:?}, expected {amount}"));
                }
                let book = self.customers.entry(customer.clone()).or_default();
                book.credited += amount;
                book.entries += 1;
                for (product, quantity) in lines {
                    self.products.entry(product.clone()).or_default().returned += quantity;
                }
            }
        }
        Some(body)
    }

    /// A 409 must state facts that justify it.
    fn refused(&mut self, intent: &Intent, reply: &Reply) {
        let Some(body) = reply.json() else { return };
        let int = |key: &str| body.get(key).and_then(Value::as_i64);
        match body.get("code").and_then(Value::as_str) {
            Some("insufficient_stock") => {
                let (Some(requested), Some(available)) = (int("requested"), int("available"))
                else {
                    self.violation(format!(
                        "insufficient_stock without requested/available: {body}"
                    ));
                    return;
                };
                if available >= requested || available < 0 {
                    self.violation(format!(
                        "insufficient_stock with requested {requested}, available {available}"
                    ));
                }
                if let Some(product) = body.get("product_id").and_then(Value::as_str) {
                    let book = self.products.entry(Arc::from(product)).or_default();
                    book.smallest_refused_request = Some(
                        book.smallest_refused_request
                            .map_or(requested, |s| s.min(requested)),
                    );
                }
            }
            Some("credit_limit_exceeded") => {
                let (Some(limit), Some(balance), Some(total)) =
                    (int("credit_limit"), int("balance"), int("order_total"))
                else {
                    self.violation(format!("credit_limit_exceeded without its facts: {body}"));
                    return;
                };
                // Pending holds count against the limit (the refusal says how much).
                let held = int("held").unwrap_or(0);
                if balance.saturating_add(held).saturating_add(total) <= limit {
                    self.violation(format!(
                        "credit_limit_exceeded although {balance} + held {held} + {total} <= {limit}"
                    ));
                }
                if let Intent::Purchase { customer, .. } | Intent::Hold { customer, .. } = intent {
                    let book = self.customers.entry(customer.clone()).or_default();
                    book.smallest_refused_total =
                        Some(book.smallest_refused_total.map_or(total, |s| s.min(total)));
                }
            }
            _ => {}
        }
    }

    fn maybe(&mut self, intent: &Intent) {
        match intent {
            Intent::Purchase {
                customer,
                lines,
                total,
            }
            | Intent::Capture {
                customer,
                lines,
                total,
            } => {
                let capture = matches!(intent, Intent::Capture { .. });
                let book = self.customers.entry(customer.clone()).or_default();
                book.maybe_charged += total;
                book.maybe_entries += 1;
                if capture {
                    book.maybe_released += total;
                }
                for (product, quantity) in lines {
                    let book = self.products.entry(product.clone()).or_default();
                    book.maybe_sold += quantity;
                    if capture {
                        book.maybe_unreserved += quantity;
                    }
                }
            }
            Intent::Hold {
                customer,
                lines,
                total,
            } => {
                self.customers
                    .entry(customer.clone())
                    .or_default()
                    .maybe_held += total;
                for (product, quantity) in lines {
                    self.products
                        .entry(product.clone())
                        .or_default()
                        .maybe_reserved += quantity;
                }
            }
            Intent::Payment { customer, amount } => {
                let book = self.customers.entry(customer.clone()).or_default();
                book.maybe_credited += amount;
                book.maybe_entries += 1;
            }
            Intent::Return {
                customer,
                lines,
                amount,
            } => {
                let book = self.customers.entry(customer.clone()).or_default();
                book.maybe_credited += amount;
                book.maybe_entries += 1;
                for (product, quantity) in lines {
                    self.products
                        .entry(product.clone())
                        .or_default()
                        .maybe_returned += quantity;
                }
            }
        }
    }

    pub fn violation(&mut self, message: String) {
        if self.violations.len() < MAX_VIOLATIONS_KEPT {
            self.violations.push(message);
        }
    }

    /// Adds another client's book to this one.
    pub fn merge(&mut self, other: Book) {
        for (id, theirs) in other.customers {
            let ours = self.customers.entry(id).or_default();
            ours.charged += theirs.charged;
            ours.credited += theirs.credited;
            ours.entries += theirs.entries;
            ours.maybe_charged += theirs.maybe_charged;
            ours.maybe_credited += theirs.maybe_credited;
            ours.maybe_entries += theirs.maybe_entries;
            ours.smallest_refused_total =
                min_of(ours.smallest_refused_total, theirs.smallest_refused_total);
            ours.held += theirs.held;
            ours.maybe_held += theirs.maybe_held;
            ours.maybe_released += theirs.maybe_released;
        }
        for (id, theirs) in other.products {
            let ours = self.products.entry(id).or_default();
            ours.sold += theirs.sold;
            ours.returned += theirs.returned;
            ours.maybe_sold += theirs.maybe_sold;
            ours.maybe_returned += theirs.maybe_returned;
            ours.purchases_ok += theirs.purchases_ok;
            ours.smallest_refused_request = min_of(
                ours.smallest_refused_request,
                theirs.smallest_refused_request,
            );
            ours.reserved += theirs.reserved;
            ours.maybe_reserved += theirs.maybe_reserved;
            ours.maybe_unreserved += theirs.maybe_unreserved;
        }
        for message in other.violations {
            self.violation(message);
        }
        self.purchase_total_ok += other.purchase_total_ok;
    }
}

fn min_of(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn reply(status: u16, body: &str) -> Result<Reply, TransportError> {
        Ok(Reply {
            status,
            body: Bytes::from(body.to_owned()),
        })
    }

    fn purchase(total: i64) -> Intent {
        Intent::Purchase {
            customer: "c".into(),
            lines: vec![("p".into(), 2)],
            total,
        }
    }

    #[test]
    fn accepted_purchase_moves_balance_and_stock() {
        let mut book = Book::default();
        book.record(&purchase(500), &reply(201, r#"{"total":500}"#));
        assert_eq!(book.customers["c"].charged, 500);
        assert_eq!(book.products["p"].sold, 2);
        assert!(book.violations.is_empty());
    }

    #[test]
    fn unanswered_purchase_is_only_possible() {
        let mut book = Book::default();
        book.record(&purchase(500), &Err(TransportError::Timeout));
        book.record(&purchase(500), &reply(503, r#"{"code":"unavailable"}"#));
        assert_eq!(book.customers["c"].charged, 0);
        assert_eq!(book.customers["c"].maybe_charged, 1000);
        assert_eq!(book.products["p"].maybe_sold, 4);
    }

    #[test]
    fn refusal_without_a_reason_is_a_violation() {
        let mut book = Book::default();
        book.record(
            &purchase(5),
            &reply(
                409,
                r#"{"code":"insufficient_stock","product_id":"p","requested":2,"available":7}"#,
            ),
        );
        assert_eq!(book.violations.len(), 1);
        assert_eq!(book.products["p"].smallest_refused_request, Some(2));
    }

    #[test]
    fn hold_then_capture_moves_held_into_the_balance() {
        let mut book = Book::default();
        let lines = vec![(Arc::from("p"), 2)];
        let hold = Intent::Hold {
            customer: "c".into(),
            lines: lines.clone(),
            total: 500,
        };
        book.record(&hold, &reply(201, r#"{"total":500,"status":"pending"}"#));
        assert_eq!(book.customers["c"].held, 500);
        assert_eq!(book.products["p"].reserved, 2);
        let capture = Intent::Capture {
            customer: "c".into(),
            lines,
            total: 500,
        };
        book.record(&capture, &reply(201, r#"{"total":500,"hold_id":"h"}"#));
        assert_eq!(book.customers["c"].held, 0);
        assert_eq!(book.customers["c"].charged, 500);
        assert_eq!(book.products["p"].reserved, 0);
        assert_eq!(book.products["p"].sold, 2);
        assert!(book.violations.is_empty());
        book.record(&capture, &Err(TransportError::Timeout));
        assert_eq!(book.customers["c"].maybe_released, 500);
        assert_eq!(book.products["p"].maybe_unreserved, 2);
    }

    #[test]
    fn wrong_total_is_a_violation() {
        let mut book = Book::default();
        book.record(&purchase(500), &reply(201, r#"{"total":499}"#));
        assert_eq!(book.violations.len(), 1);
    }
}
