//! Every SQL statement of the crate (`ontab::db::sql::statements()`) against the
//! migrated schema: it prepares, PostgreSQL infers for its parameters exactly
//! the types the code binds, and every column the code decodes is there with
//! a type its Rust decoding accepts. A statement that would fail at run time
//! on a renamed column or a changed type fails here, without a request.

use ontab::db::sql::{At, Statement};
use tokio_postgres::types::Type;

use crate::helpers::TestApp;

fn names(types: &[Type]) -> String {
    let names: Vec<&str> = types.iter().map(Type::name).collect();
    names.join(", ")
}

/// What is wrong with `statement` as PostgreSQL prepared it, if anything.
fn mismatches(statement: &Statement, prepared: &tokio_postgres::Statement) -> Vec<String> {
    let mut found = Vec::new();
    if prepared.params() != statement.params {
        found.push(format!(
            "parameters: PostgreSQL infers ({}), the code binds ({})",
            names(prepared.params()),
            names(statement.params)
        ));
    }
    for expected in statement.columns {
        let column = match expected.at {
            At::Name(name) => prepared.columns().iter().find(|c| c.name() == name),
            At::Index(index) => prepared.columns().get(index),
        };
        match column {
            None => found.push(format!("no column {:?}", expected.at)),
            Some(column) if !(expected.accepts)(column.type_()) => found.push(format!(
                "column {:?} is {}, which {} does not decode",
                expected.at,
                column.type_(),
                (expected.rust_type)()
            )),
            Some(_) => {}
        }
    }
    found
}

#[tokio::test]
async fn every_statement_prepares_with_the_declared_parameter_and_column_types() {
    let app = TestApp::spawn().await;
    let client = app.sql().await;
    let statements = ontab::db::sql::statements();
    let mut failures = Vec::new();
    for statement in &statements {
        // Unnamed and untyped: PostgreSQL infers every parameter's type.
        match client.prepare(statement.sql).await {
            Ok(prepared) => {
                for problem in mismatches(statement, &prepared) {
                    failures.push(format!("{}: {problem}", statement.full_name()));
                }
            }
            Err(error) => failures.push(format!(
                "{}: does not prepare: {}",
                statement.full_name(),
                ontab::db::describe_pg(&error)
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} statements disagree with the schema:\n{}",
        failures.len(),
        statements.len(),
        failures.join("\n")
    );
}
