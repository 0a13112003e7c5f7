//! Typed errors in the document: one schema per error code (its `code` a
//! single value, its facts required members), and for every operation
//! exactly the codes it can answer, grouped by status, with a `code`
//! discriminator where a status has several. A generated client can then
//! branch on `code` and read, say, `available` as a number.

use std::collections::BTreeMap;

use utoipa::Modify;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{
    ArrayBuilder, Discriminator, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat,
    SchemaType, Type,
};
use utoipa::openapi::{OpenApi, RefOr};

use super::super::problem::{PROBLEM_JSON, status_of, title_of};
use super::schemas::signed_amount;
use crate::domain::ErrorCode::{self, *};

/// Codes every operation under /v1 can answer: a request that outlives its
/// deadline or finds the database down (503), and (as `default`) the
/// generic 500.
const ALWAYS: &[ErrorCode] = &[Unavailable];
/// A tenant's call: its API key.
const TENANT: &[ErrorCode] = &[Unauthorized];
/// A JSON body: unreadable, too large, invalid values.
const BODY: &[ErrorCode] = &[MalformedRequest, PayloadTooLarge, ValidationFailed];
/// A list's `?limit=&cursor=`: an unreadable query string, bad values.
const PAGED: &[ErrorCode] = &[MalformedRequest, ValidationFailed];
/// An id in the path, or in the body, that the business does not have.
const BY_ID: &[ErrorCode] = &[NotFound];
/// An Idempotency-Key: invalid (422), or used for another request.
const KEYED: &[ErrorCode] = &[ValidationFailed, IdempotencyKeyReused];

/// The error answers of each operation, by operationId: the union of the
/// groups above and the refusals of its use case. A unit test holds this
/// table to the document's operations.
pub const OPERATIONS: &[(&str, &[&[ErrorCode]])] = &[
    ("createBusiness", &[&[Unauthorized], BODY, ALWAYS]),
    ("getBusiness", &[TENANT, ALWAYS]),
    ("updateBusiness", &[TENANT, BODY, ALWAYS]),
    ("createApiKey", &[TENANT, ALWAYS]),
    ("listApiKeys", &[TENANT, PAGED, ALWAYS]),
    ("revokeApiKey", &[TENANT, BY_ID, ALWAYS]),
    ("createCustomer", &[TENANT, BODY, ALWAYS]),
    ("listCustomers", &[TENANT, PAGED, ALWAYS]),
    ("getCustomer", &[TENANT, BY_ID, ALWAYS]),
    (
        "updateCustomer",
        &[
            TENANT,
            BODY,
            BY_ID,
            &[CustomerClosed, BalanceOutstanding],
            ALWAYS,
        ],
    ),
    ("listCustomerLedger", &[TENANT, PAGED, BY_ID, ALWAYS]),
    ("listCustomerHistory", &[TENANT, PAGED, BY_ID, ALWAYS]),
    ("getCustomerStatement", &[TENANT, PAGED, BY_ID, ALWAYS]),
    (
        "createWriteOff",
        &[
            TENANT,
            BODY,
            BY_ID,
            KEYED,
            &[CustomerClosed, WriteOffExceedsBalance],
            ALWAYS,
        ],
    ),
    ("createProduct", &[TENANT, BODY, ALWAYS]),
    ("listProducts", &[TENANT, PAGED, ALWAYS]),
    ("getProduct", &[TENANT, BY_ID, ALWAYS]),
    ("updateProduct", &[TENANT, BODY, BY_ID, ALWAYS]),
    (
        "createStockAdjustment",
        &[TENANT, BODY, BY_ID, KEYED, &[InsufficientStock], ALWAYS],
    ),
    (
        "createPurchase",
        &[
            TENANT,
            BODY,
            BY_ID,
            KEYED,
            &[
                CustomerClosed,
                CustomerOnHold,
                InsufficientStock,
                CreditLimitExceeded,
            ],
            ALWAYS,
        ],
    ),
    (
        "createPayment",
        &[
            TENANT,
            BODY,
            BY_ID,
            KEYED,
            &[CustomerClosed, PaymentExceedsBalance],
            ALWAYS,
        ],
    ),
    ("listOrders", &[TENANT, PAGED, ALWAYS]),
    ("getOrder", &[TENANT, BY_ID, ALWAYS]),
    (
        "createReturn",
        &[
            TENANT,
            BODY,
            BY_ID,
            KEYED,
            &[CustomerClosed, ReturnExceedsPurchase],
            ALWAYS,
        ],
    ),
    (
        "createHold",
        &[
            TENANT,
            BODY,
            BY_ID,
            KEYED,
            &[
                CustomerClosed,
                CustomerOnHold,
                InsufficientStock,
                CreditLimitExceeded,
            ],
            ALWAYS,
        ],
    ),
    (
        "captureHold",
        &[
            TENANT,
            BODY,
            BY_ID,
            KEYED,
            &[
                CustomerClosed,
                CustomerOnHold,
                HoldNotPending,
                CaptureExceedsHold,
            ],
            ALWAYS,
        ],
    ),
    (
        "voidHold",
        &[TENANT, BODY, BY_ID, KEYED, &[HoldNotPending], ALWAYS],
    ),
    ("listHolds", &[TENANT, PAGED, ALWAYS]),
    ("getHold", &[TENANT, BY_ID, ALWAYS]),
    ("getOverdueReport", &[TENANT, PAGED, ALWAYS]),
    ("listEvents", &[TENANT, PAGED, ALWAYS]),
    ("getHealth", &[]),
    ("getReadiness", &[]),
    ("getMetrics", &[BY_ID]),
    ("getOpenApi", &[]),
    ("createWebhookEndpoint", &[TENANT, BODY, ALWAYS]),
    ("listWebhookEndpoints", &[TENANT, PAGED, ALWAYS]),
    ("getWebhookEndpoint", &[TENANT, BY_ID, ALWAYS]),
    ("updateWebhookEndpoint", &[TENANT, BODY, BY_ID, ALWAYS]),
    ("deleteWebhookEndpoint", &[TENANT, BY_ID, ALWAYS]),
    ("rotateWebhookSecret", &[TENANT, BY_ID, ALWAYS]),
    ("listWebhookDeliveries", &[TENANT, PAGED, BY_ID, ALWAYS]),
    ("replayWebhookEvents", &[TENANT, BODY, BY_ID, ALWAYS]),
];

/// Operations that take an Idempotency-Key: their answers may be replays.
pub const KEYED_OPERATIONS: &[&str] = &[
    "createWriteOff",
    "createHold",
    "captureHold",
    "voidHold",
    "createStockAdjustment",
    "createPurchase",
    "createPayment",
    "createReturn",
];

/// The codes of one operation, in the contract's order, without repeats.
pub fn codes_of(groups: &[&[ErrorCode]]) -> Vec<ErrorCode> {
    ErrorCode::ALL
        .iter()
        .copied()
        .filter(|code| *code != Internal && groups.iter().any(|group| group.contains(code)))
        .collect()
}

/// `InsufficientStockProblem`, … : the schema name of a code's problem.
pub fn schema_name(code: ErrorCode) -> String {
    let pascal: String = code
        .as_str()
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    format!("{pascal}Problem")
}

fn reference(code: ErrorCode) -> RefOr<Schema> {
    RefOr::Ref(utoipa::openapi::Ref::from_schema_name(schema_name(code)))
}

fn integer() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Integer))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
}

fn uuid() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
}

/// The facts a code adds to the common members, all always sent.
fn facts(code: ErrorCode) -> Vec<(&'static str, RefOr<Schema>)> {
    let amount = || RefOr::T(Schema::Object(signed_amount()));
    match code {
        ValidationFailed => vec![(
            "errors",
            ArrayBuilder::new()
                .items(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "FieldError",
                )))
                .min_items(Some(1))
                .into(),
        )],
        InsufficientStock => vec![
            ("product_id", uuid().into()),
            ("requested", amount()),
            ("available", amount()),
        ],
        CreditLimitExceeded => vec![
            ("credit_limit", amount()),
            ("balance", amount()),
            ("held", amount()),
            ("order_total", amount()),
        ],
        PaymentExceedsBalance => vec![("balance", amount()), ("amount", amount())],
        ReturnExceedsPurchase => vec![("product_id", uuid().into()), ("returnable", amount())],
        CustomerOnHold | CustomerClosed => vec![("customer_id", uuid().into())],
        BalanceOutstanding => vec![("balance", amount())],
        WriteOffExceedsBalance => vec![("balance", amount()), ("amount", amount())],
        HoldNotPending => vec![(
            "hold_status",
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .enum_values(Some(["captured", "voided", "expired"]))
                .into(),
        )],
        CaptureExceedsHold => vec![("product_id", uuid().into()), ("held", amount())],
        _ => Vec::new(),
    }
}

/// The problem document of one code.
fn problem_schema(code: ErrorCode) -> Schema {
    let string = || ObjectBuilder::new().schema_type(SchemaType::Type(Type::String));
    let status = status_of(code).as_u16();
    let mut schema = ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Object))
        .title(Some(title_of(code)))
        .description(Some(format!(
            "`{code}` (RFC 9457 problem+json, status {status})."
        )))
        .property(
            "type",
            string().enum_values(Some([format!("urn:ontab:problem:{code}")])),
        )
        .property(
            "title",
            string().description(Some("A short, stable summary")),
        )
        .property("status", integer().enum_values(Some([status])))
        .property(
            "detail",
            string().description(Some("What happened, for a human")),
        )
        .property("code", string().enum_values(Some([code.as_str()])));
    for member in ["type", "title", "status", "detail", "code"] {
        schema = schema.required(member);
    }
    for (name, fact) in facts(code) {
        schema = schema.property(name, fact).required(name);
    }
    if code == Internal {
        schema = schema.property(
            "outcome",
            string().enum_values(Some(["unknown"])).description(Some(
                "Present when the database stopped answering while committing: the \
                     request may or may not have taken effect. Retry it with the same \
                     Idempotency-Key to learn which.",
            )),
        );
    }
    Schema::Object(schema.build())
}

/// Adds every code's problem schema, and each operation's error answers and
/// response headers.
pub struct Errors;

impl Modify for Errors {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for code in ErrorCode::ALL {
            components
                .schemas
                .insert(schema_name(*code), RefOr::T(problem_schema(*code)));
        }
        let table: BTreeMap<&str, &[&[ErrorCode]]> = OPERATIONS.iter().copied().collect();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.put,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let id = operation.operation_id.clone().unwrap_or_default();
                let codes = codes_of(table.get(id.as_str()).copied().unwrap_or(&[]));
                let keyed = KEYED_OPERATIONS.contains(&id.as_str());
                let responses = &mut operation.responses.responses;
                for (status, group) in by_status(&codes) {
                    responses.insert(status.to_string(), RefOr::T(error_response(&group)));
                }
                responses.insert("default".to_owned(), RefOr::T(error_response(&[Internal])));
                for response in responses.values_mut() {
                    if let RefOr::T(response) = response {
                        add_headers(response, keyed);
                    }
                }
            }
        }
    }
}

/// Codes grouped by their status, in order.
fn by_status(codes: &[ErrorCode]) -> BTreeMap<u16, Vec<ErrorCode>> {
    let mut groups: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for code in codes {
        groups
            .entry(status_of(*code).as_u16())
            .or_default()
            .push(*code);
    }
    groups
}

fn error_response(codes: &[ErrorCode]) -> utoipa::openapi::Response {
    let listed: Vec<String> = codes.iter().map(|code| format!("`{code}`")).collect();
    let schema = match codes {
        [code] => reference(*code),
        _ => {
            let mut one_of = OneOfBuilder::new().discriminator(Some(Discriminator::with_mapping(
                "code",
                codes.iter().map(|code| {
                    (
                        code.as_str().to_owned(),
                        format!("#/components/schemas/{}", schema_name(*code)),
                    )
                }),
            )));
            for code in codes {
                one_of = one_of.item(reference(*code));
            }
            RefOr::T(Schema::OneOf(one_of.build()))
        }
    };
    ResponseBuilder::new()
        .description(format!("A problem: {}", listed.join(", ")))
        .content(
            PROBLEM_JSON,
            ContentBuilder::new().schema(Some(schema)).build(),
        )
        .build()
}

fn string_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)),
        ))
        .description(Some(description))
        .build()
}

/// The headers the server sets: the request id on every answer, the
/// replay mark on the answers of keyed operations, and those of 401 / 503.
fn add_headers(response: &mut utoipa::openapi::Response, keyed: bool) {
    response.headers.insert(
        "x-request-id".to_owned(),
        RefOr::T(string_header(
            "The request's id (the client's own x-request-id, or a new UUID); every log line of the request carries it.",
        )),
    );
    if keyed {
        response.headers.insert(
            "idempotent-replayed".to_owned(),
            RefOr::T(string_header(
                "`true` when this answer replays the stored answer of an earlier request with the same Idempotency-Key.",
            )),
        );
    }
    let description = response.description.clone();
    if description.contains("`unauthorized`") {
        response.headers.insert(
            "WWW-Authenticate".to_owned(),
            RefOr::T(string_header("`Bearer`")),
        );
    }
    if description.contains("`unavailable`") {
        response.headers.insert(
            "Retry-After".to_owned(),
            RefOr::T(string_header("Seconds to wait before retrying.")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_pascal_case() {
        assert_eq!(schema_name(InsufficientStock), "InsufficientStockProblem");
        assert_eq!(schema_name(Internal), "InternalProblem");
    }

    #[test]
    fn a_purchase_lists_exactly_its_codes() {
        let groups = OPERATIONS
            .iter()
            .find(|(id, _)| *id == "createPurchase")
            .map(|(_, groups)| *groups)
            .unwrap_or(&[]);
        let codes = codes_of(groups);
        assert!(codes.contains(&CreditLimitExceeded));
        assert!(!codes.contains(&PaymentExceedsBalance));
        assert!(!codes.contains(&Internal), "500 is the default response");
    }
}
