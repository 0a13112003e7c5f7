//! The migrator's rules: a database migrated by another ontab is refused
//! before anything is applied.

use ontab::db::migrate;
use tokio_postgres::{Client, Config};

use crate::helpers::TestApp;

/// This test's database, reached as the superuser that migrated it.
fn config_of(app: &TestApp) -> Config {
    app.database_url()
        .parse()
        .expect("the harness's connection string parses")
}

async fn versions(client: &Client) -> Vec<i32> {
    client
        .query("SELECT version FROM ontab_migrations ORDER BY version", &[])
        .await
        .expect("ontab_migrations readable")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// The message of a refused migration run, checked to be one line.
async fn refusal(config: &Config) -> String {
    match migrate::run_on(config).await {
        Ok(applied) => panic!("migrated ({applied:?}) where it should have refused"),
        Err(error) => {
            let message = error.to_string();
            assert!(!message.contains('\n'), "not one line: {message}");
            message
        }
    }
}

#[tokio::test]
async fn an_up_to_date_database_migrates_to_nothing() {
    let app = TestApp::spawn().await;
    let applied = migrate::run_on(&config_of(&app))
        .await
        .expect("the template's migrations are this binary's");
    assert_eq!(applied, Vec::<i32>::new());
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_ontab_is_refused_at_start() {
    let app = TestApp::spawn().await;
    let sql = app.sql().await;
    let before = versions(&sql).await;
    sql.batch_execute(
        "INSERT INTO ontab_migrations (version, name, sha256)
         VALUES (9001, 'from_the_future', sha256('whatever'::bytea))",
    )
    .await
    .expect("record a migration this binary does not have");

    let message = refusal(&config_of(&app)).await;
    assert!(message.contains("9001_from_the_future"), "{message}");
    assert!(message.contains("does not know"), "{message}");
    let mut expected = before;
    expected.push(9001);
    assert_eq!(versions(&sql).await, expected, "nothing was applied");
}

#[tokio::test]
async fn a_database_whose_applied_migration_differs_is_refused_at_start() {
    let app = TestApp::spawn().await;
    let sql = app.sql().await;
    sql.batch_execute(
        "UPDATE ontab_migrations SET sha256 = sha256('another file'::bytea) WHERE version = 2",
    )
    .await
    .expect("pretend migration 2 was applied from another file");

    let message = refusal(&config_of(&app)).await;
    assert!(message.contains("migration 0002_guards"), "{message}");
    assert!(message.contains("differs"), "{message}");
}
