//! Schemas of the values the API reads and writes, as JSON Schema states
//! them, so that a generated request is valid exactly when the server
//! accepts it.

use utoipa::openapi::schema::{
    KnownFormat, Object, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, SchemaType, Type,
};

use crate::domain::MAX_SAFE_INTEGER;

// Text rules of `domain::Name` and `domain::Reason`, as JSON Schema
// patterns, so that a generated request is valid exactly when the server
// accepts it: surrounding Unicode white space is trimmed, then at most 200
// characters remain, none of them a control character (Cc). `\s` is not
// used because ECMA and Rust disagree on what it covers.
const SPACE: &str =
    "[ \\t\\n\\u000b\\f\\r\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const INNER: &str = "[^\\u0000-\\u001f\\u007f-\\u009f]";
const EDGE: &str = "[^\\u0000-\\u001f\\u007f-\\u009f \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";

fn text(optional_text: bool, nullable: bool, description: &str) -> Object {
    let body = format!("{EDGE}(?:{INNER}{{0,198}}{EDGE})?");
    let body = if optional_text {
        format!("(?:{body})?")
    } else {
        body
    };
    let schema_type = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(schema_type)
        .pattern(Some(format!("^{SPACE}*{body}{SPACE}*$")))
        .description(Some(description))
        .build()
}

const NAME: &str = "1..=200 characters once trimmed, no control characters.";

/// `schema_with` of a required name.
pub fn name() -> Object {
    text(false, false, NAME)
}

/// `schema_with` of a name a PATCH may leave out (null is refused).
pub fn optional_name() -> Object {
    text(false, false, NAME)
}

/// `schema_with` of a stock adjustment's reason (`domain::Reason`).
pub fn reason() -> Object {
    text(
        true,
        false,
        "Why, for the record (e.g. \"damaged\", \"recount\"); at most 200 characters once trimmed, no control characters.",
    )
}

/// An integer within the safe range of JSON clients, from `minimum`.
fn safe_integer(minimum: i64, nullable: bool, description: &str) -> Object {
    let schema_type = if nullable {
        SchemaType::from_iter([Type::Integer, Type::Null])
    } else {
        SchemaType::Type(Type::Integer)
    };
    ObjectBuilder::new()
        .schema_type(schema_type)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(minimum))
        .maximum(Some(MAX_SAFE_INTEGER))
        .description(Some(description))
        .build()
}

/// `schema_with` of an amount, price, limit or stock: 0..=2^53 − 1.
pub fn non_negative() -> Object {
    safe_integer(
        0,
        false,
        "In minor units (or units of stock); 0 to 2^53 - 1.",
    )
}

/// `schema_with` of such a field a PATCH may leave out.
pub fn optional_non_negative() -> Object {
    safe_integer(
        0,
        false,
        "In minor units; 0 to 2^53 - 1. Leave out to keep.",
    )
}

/// `schema_with` of a replay's `after`: an event sequence, 0..=2^53 − 1.
pub fn sequence_after() -> Object {
    safe_integer(
        0,
        false,
        "Every event with a greater sequence is sent again: 0 for every event still kept.",
    )
}

/// `schema_with` of a payment amount or a quantity: 1..=2^53 − 1.
pub fn positive() -> Object {
    safe_integer(1, false, "1 to 2^53 - 1.")
}

/// `schema_with` of a stock adjustment's delta: nonzero, within ±(2^53 − 1).
pub fn delta() -> Schema {
    let side = |minimum: Option<i64>, maximum: Option<i64>| {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Integer))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(minimum)
            .maximum(maximum)
            .build()
    };
    Schema::OneOf(
        OneOfBuilder::new()
            .item(side(Some(-MAX_SAFE_INTEGER), Some(-1)))
            .item(side(Some(1), Some(MAX_SAFE_INTEGER)))
            .description(Some(
                "Units to add (positive) or remove (negative); not zero.",
            ))
            .build(),
    )
}

/// An amount that may be negative (a ledger entry, a balance): within
/// ±(2^53 − 1).
pub fn signed_amount() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Integer))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(-MAX_SAFE_INTEGER))
        .maximum(Some(MAX_SAFE_INTEGER))
        .description(Some("In minor units; within ±(2^53 - 1)."))
        .build()
}

/// An amount that may be absent (null) where null means "none yet".
pub fn optional_amount() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(-MAX_SAFE_INTEGER))
        .maximum(Some(MAX_SAFE_INTEGER))
        .build()
}
