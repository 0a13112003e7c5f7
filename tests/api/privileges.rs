//! Least privilege in PostgreSQL (migrations/0003): `ontab_app`, what the
//! server runs as, cannot forge history. Money and stock move only through
//! the use-case functions, which run as `ontab_writer` under the caller's
//! tenant; limit history is written only by its trigger.

use serde_json::{Value, json};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};
use uuid::Uuid;

use crate::helpers::{Business, TestApp, assert_constraint, query_one_as_session_tenant, refused};

/// A superuser session of this test's database switched to `role`, acting
/// for `tenant` for the whole session.
async fn session_as(app: &TestApp, role: &str, tenant: Uuid) -> Client {
    let client = app.sql().await;
    client
        .batch_execute(&format!("SET ROLE {role}"))
        .await
        .unwrap_or_else(|error| panic!("the superuser may become {role}: {error}"));
    client
        .execute(
            "SELECT set_config('ontab.business_id', $1, false)",
            &[&tenant.to_string()],
        )
        .await
        .expect("set the tenant");
    client
}

/// Asserts `sql` is refused for lack of a privilege (not by a guard that
/// would fire after the write was allowed).
async fn assert_permission_denied(client: &Client, sql: &str) {
    let error = client
        .batch_execute(sql)
        .await
        .err()
        .unwrap_or_else(|| panic!("`{sql}` was allowed"));
    let db = error
        .as_db_error()
        .unwrap_or_else(|| panic!("`{sql}`: {error:?}"));
    assert_eq!(
        db.code(),
        &SqlState::INSUFFICIENT_PRIVILEGE,
        "`{sql}`: {db:?}"
    );
    assert!(
        db.message().starts_with("permission denied"),
        "`{sql}`: {db:?}"
    );
}

async fn count(client: &Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|error| panic!("`{sql}`: {error}"))
        .get(0)
}

/// A number that changes with any order, ledger entry, adjustment, return,
/// limit change or stock change, of any tenant (read as the superuser).
const MOVEMENTS: &str = "SELECT ((SELECT count(*) FROM orders) + (SELECT count(*) FROM credit_ledger) \
     + (SELECT count(*) FROM stock_adjustments) + (SELECT count(*) FROM returns) \
     + (SELECT count(*) FROM customer_changes) + (SELECT sum(stock) FROM products))::bigint";

/// A business with a customer (limit 1,000), a product (price 100, stock
/// 10) and one purchase of 2 through the API.
struct Shop {
    business: Business,
    customer: Uuid,
    product: Uuid,
    order: Uuid,
}

async fn open_shop(app: &TestApp, name: &str) -> Shop {
    let business = app.business(name).await;
    let customer = app.customer(&business, 1_000).await;
    let product = app.product(&business, 100, 10).await;
    let bought = app.purchase(&business, customer, &[(product, 2)]).await;
    assert_eq!(bought.status, 201, "{bought:?}");
    Shop {
        order: bought.id(),
        business,
        customer,
        product,
    }
}

/// Every way ontab_app could write money, stock or history directly, for
/// `shop`'s rows.
fn forbidden_writes(shop: &Shop) -> Vec<String> {
    let (tenant, customer, product, order) =
        (shop.business.id, shop.customer, shop.product, shop.order);
    vec![
        format!("UPDATE products SET stock = stock + 5 WHERE id = '{product}'"),
        format!("UPDATE products SET stock = 0 WHERE id = '{product}'"),
        format!(
            "INSERT INTO customer_changes (business_id, customer_id, credit_limit, after_seq) \
             VALUES ('{tenant}', '{customer}', 1000000, 0)"
        ),
        format!(
            "INSERT INTO orders (business_id, id, customer_id, total, due_at) \
             VALUES ('{tenant}', gen_random_uuid(), '{customer}', 0, now() + interval '30 days')"
        ),
        format!(
            "INSERT INTO order_items (business_id, order_id, line_no, product_id, quantity, unit_price, line_total) \
             VALUES ('{tenant}', '{order}', 2, '{product}', 1, 100, 100)"
        ),
        format!(
            "INSERT INTO credit_ledger (business_id, id, customer_id, seq, kind, amount, balance_after) \
             VALUES ('{tenant}', gen_random_uuid(), '{customer}', 2, 'payment', -200, 0)"
        ),
        format!(
            "INSERT INTO returns (business_id, id, order_id, amount) \
             VALUES ('{tenant}', gen_random_uuid(), '{order}', 0)"
        ),
        format!(
            "INSERT INTO stock_adjustments (business_id, id, product_id, delta, reason, stock_after) \
             VALUES ('{tenant}', gen_random_uuid(), '{product}', 5, 'found', 13)"
        ),
    ]
}

#[tokio::test]
async fn the_app_role_cannot_forge_limit_history_which_its_changes_still_record() {
    let app = TestApp::spawn().await;
    let shop = open_shop(&app, "Shop").await;
    let owner = app.sql().await;
    let history = format!(
        "SELECT count(*) FROM customer_changes WHERE customer_id = '{}'",
        shop.customer
    );
    assert_eq!(count(&owner, &history).await, 1, "the limit at creation");

    let client = session_as(&app, "ontab_app", shop.business.id).await;
    // A forged entry would make `ontab audit` report violations that never
    // happened, or hide real ones.
    assert_permission_denied(
        &client,
        &format!(
            "INSERT INTO customer_changes (business_id, customer_id, credit_limit, after_seq) \
             VALUES ('{}', '{}', 0, 0)",
            shop.business.id, shop.customer
        ),
    )
    .await;
    assert_eq!(count(&owner, &history).await, 1, "nothing forged");

    // A real change, in SQL as ontab_app and through the API, is recorded by
    // the trigger, which runs as ontab_recorder.
    crate::helpers::in_session_tenant_tx(
        &client,
        &format!(
            "UPDATE customers SET credit_limit = 700 WHERE id = '{}'",
            shop.customer
        ),
    )
    .await
    .expect("ontab_app may change a credit limit");
    let patched = app
        .patch(
            &format!("/v1/customers/{}", shop.customer),
            &shop.business.key,
            json!({ "credit_limit": 900 }),
        )
        .await;
    assert_eq!(patched.status, 200, "{patched:?}");
    let recorded: Vec<(i64, i64)> = owner
        .query(
            "SELECT credit_limit, after_seq FROM customer_changes \
              WHERE customer_id = $1 ORDER BY id",
            &[&shop.customer],
        )
        .await
        .expect("limit history")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(recorded, [(1_000, 0), (700, 1), (900, 1)]);
    app.assert_audit_clean().await;
}

#[tokio::test]
async fn the_app_role_moves_money_and_stock_only_through_the_use_cases() {
    let app = TestApp::spawn().await;
    let shop = open_shop(&app, "Shop").await;
    let owner = app.sql().await;
    let client = session_as(&app, "ontab_app", shop.business.id).await;
    let before = count(&owner, MOVEMENTS).await;

    for sql in forbidden_writes(&shop) {
        assert_permission_denied(&client, &sql).await;
    }
    assert_eq!(
        count(&owner, MOVEMENTS).await,
        before,
        "nothing was written"
    );

    // The use cases, called as ontab_app, write the same kinds of rows.
    let adjusted: Value = query_one_as_session_tenant(
        &client,
        "SELECT ontab_adjust_stock(gen_random_uuid(), $1, 5, 'found')",
        &[&shop.product],
    )
    .await
    .expect("ontab_app may call the use cases")
    .get(0);
    assert_eq!(adjusted["product"]["stock"], 13, "{adjusted}");
    let paid: Value = query_one_as_session_tenant(
        &client,
        "SELECT ontab_pay(gen_random_uuid(), $1, 50)",
        &[&shop.customer],
    )
    .await
    .expect("pay")
    .get(0);
    assert_eq!(paid["entry"]["balance_after"], 150, "{paid}");

    // They are SECURITY DEFINER functions of ontab_writer with a fixed
    // search_path (so a caller's objects cannot stand in for the tables),
    // and nobody but ontab_app (and their owner) may call them.
    let functions = owner
        .query(
            "SELECT p.proname::text, p.prosecdef, pg_get_userbyid(p.proowner)::text,
                    coalesce(p.proconfig, '{}')::text[],
                    has_function_privilege('public', p.oid, 'EXECUTE'),
                    has_function_privilege('ontab_app', p.oid, 'EXECUTE')
               FROM pg_proc p
              WHERE p.proname IN ('ontab_purchase', 'ontab_purchase_batch', 'ontab_pay',
                                  'ontab_return', 'ontab_adjust_stock')
              ORDER BY 1",
            &[],
        )
        .await
        .expect("catalog");
    assert_eq!(functions.len(), 5);
    for function in functions {
        let name: String = function.get(0);
        assert!(function.get::<_, bool>(1), "{name} is SECURITY DEFINER");
        assert_eq!(function.get::<_, String>(2), "ontab_writer", "{name}");
        let config: Vec<String> = function.get(3);
        assert!(
            config.contains(&"search_path=pg_catalog, public, pg_temp".to_owned()),
            "{name}: {config:?}"
        );
        assert!(!function.get::<_, bool>(4), "{name}: PUBLIC may execute");
        assert!(
            function.get::<_, bool>(5),
            "{name}: ontab_app may not execute"
        );
    }
}

/// A lone purchase runs its order checks inside `ontab_purchase` (migration
/// 0027), as the batch does: as ontab_writer with the function's fixed
/// search_path, not at COMMIT in the caller's setting. So a session's
/// search_path decides neither which tables they read nor (by changing
/// between the two paths) when PostgreSQL plans them again.
#[tokio::test]
async fn a_purchases_checks_read_the_real_tables_whatever_the_callers_search_path() {
    let app = TestApp::spawn().await;
    let shop = open_shop(&app, "Shop").await;
    let owner = app.sql().await;
    let config: Vec<String> = owner
        .query_one(
            "SELECT coalesce(p.proconfig, '{}')::text[] FROM pg_proc p
              WHERE p.proname = 'ontab_require_tenant'",
            &[],
        )
        .await
        .expect("catalog")
        .get(0);
    assert!(
        config.contains(&"search_path=pg_catalog, public, pg_temp".to_owned()),
        "ontab_require_tenant: {config:?}"
    );

    // Empty look-alikes of the tables the checks read, first on the
    // session's search_path: a check that resolved its tables through it
    // would find no lines and no ledger entry, and refuse the order.
    owner
        .batch_execute(
            "CREATE SCHEMA decoy;
             CREATE TABLE decoy.orders (LIKE public.orders);
             CREATE TABLE decoy.order_items (LIKE public.order_items);
             CREATE TABLE decoy.credit_ledger (LIKE public.credit_ledger);
             GRANT USAGE ON SCHEMA decoy TO ontab_app, ontab_writer;
             GRANT SELECT ON ALL TABLES IN SCHEMA decoy TO ontab_app, ontab_writer;",
        )
        .await
        .expect("the decoy tables");
    let client = session_as(&app, "ontab_app", shop.business.id).await;
    client
        .batch_execute("SET search_path = decoy, public")
        .await
        .expect("search_path");
    // Before 0027 this purchase's checks ran at COMMIT, in this session's
    // setting, read the decoys and refused it.
    let bought: Value = query_one_as_session_tenant(
        &client,
        "SELECT ontab_purchase(gen_random_uuid(), gen_random_uuid(), $1, $2, '{1}')",
        &[&shop.customer, &vec![shop.product]],
    )
    .await
    .expect("the purchase commits, its checks having read the real tables")
    .get(0);
    assert_eq!(bought["order"]["total"], 100, "{bought}");
    let orders = count(
        &owner,
        &format!(
            "SELECT count(*) FROM public.orders WHERE business_id = '{}'",
            shop.business.id
        ),
    )
    .await;
    assert_eq!(orders, 2, "the shop's first order and this one");
}

/// The one text array `sql` answers (names from the catalog).
async fn names(client: &Client, sql: &str) -> Vec<String> {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
        .get(0)
}

/// A temporary table named like one of ontab's is looked up before it,
/// unless the search_path puts pg_temp elsewhere. Before 0028 a session of
/// the server's role could copy its customers into a temporary
/// `customers` with a larger credit limit, and a purchase past the real
/// limit committed (the use case and the ledger's guard read the copy).
/// Now the role may not create temporary tables, and where it still may
/// (PUBLIC granted TEMPORARY again here) every function with a fixed
/// search_path reads the real tables, and so does every trigger that
/// ontab_app's own writes fire (0029: before it, an empty look-alike
/// ledger let a customer who owed money be closed).
#[tokio::test]
async fn a_temporary_table_hides_no_table_from_the_use_cases() {
    let app = TestApp::spawn().await;
    let shop = open_shop(&app, "Shop").await;
    let dear = app.product(&shop.business, 1_000, 5).await;
    let owner = app.sql().await;
    let unsafe_paths = names(
        &owner,
        "SELECT coalesce(array_agg(p.proname::text ORDER BY p.proname), '{}')
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = 'public'
                AND (p.prosecdef OR EXISTS (SELECT 1 FROM unnest(p.proconfig) c
                                             WHERE c LIKE 'search_path=%'))
                AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c
                                 WHERE c LIKE 'search_path=%, pg_temp')",
    )
    .await;
    assert!(
        unsafe_paths.is_empty(),
        "SECURITY DEFINER or fixed-path functions without pg_temp last: {unsafe_paths:?}"
    );
    // The triggers ontab_app's own writes fire (0029).
    let session_paths = names(
        &owner,
        "SELECT coalesce(array_agg(DISTINCT p.proname::text), '{}')
               FROM pg_trigger t
               JOIN pg_class c ON c.oid = t.tgrelid
               JOIN pg_proc p ON p.oid = t.tgfoid
              WHERE NOT t.tgisinternal
                AND (has_table_privilege('ontab_app', c.oid, 'INSERT')
                     OR has_table_privilege('ontab_app', c.oid, 'DELETE')
                     OR has_any_column_privilege('ontab_app', c.oid, 'UPDATE'))
                AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) g
                                 WHERE g = 'search_path=pg_catalog, public, pg_temp')",
    )
    .await;
    assert!(
        session_paths.is_empty(),
        "triggers of tables ontab_app writes that use the session's search_path: {session_paths:?}"
    );

    let client = session_as(&app, "ontab_app", shop.business.id).await;
    let denied = client
        .batch_execute("CREATE TEMP TABLE customers (id int)")
        .await
        .expect_err("ontab_app may not create temporary tables");
    assert_eq!(
        denied.as_db_error().map(|db| db.code().clone()),
        Some(SqlState::INSUFFICIENT_PRIVILEGE),
        "{denied:?}"
    );

    app.grant_public_temporary().await;
    let client = session_as(&app, "ontab_app", shop.business.id).await;
    client
        .batch_execute(
            "CREATE TEMP TABLE customers AS SELECT * FROM public.customers;
             UPDATE pg_temp.customers SET credit_limit = 9007199254740991;
             GRANT ALL ON pg_temp.customers TO PUBLIC;
             CREATE TEMP TABLE products AS SELECT * FROM public.products;
             UPDATE pg_temp.products SET stock = 1000000, price = 1;
             GRANT ALL ON pg_temp.products TO PUBLIC;",
        )
        .await
        .expect("the look-alikes");
    // The shop's customer owes 200 of 1,000; one at 1,000 is 1,200.
    let answer: Value = query_one_as_session_tenant(
        &client,
        "SELECT ontab_purchase(gen_random_uuid(), gen_random_uuid(), $1, $2, '{1}')",
        &[&shop.customer, &vec![dear]],
    )
    .await
    .expect("the purchase is answered")
    .get(0);
    assert_eq!(answer["error"], "credit_limit_exceeded", "{answer}");
    assert_eq!(answer["order_total"], 1_000, "the real price: {answer}");
    let balance = count(
        &owner,
        &format!(
            "SELECT coalesce(sum(amount), 0)::bigint FROM public.credit_ledger WHERE customer_id = '{}'",
            shop.customer
        ),
    )
    .await;
    assert_eq!(balance, 200, "nothing was written");

    // ontab_app's own write of a status: closing is only from zero, read
    // from the real ledger, not from an empty look-alike.
    client
        .batch_execute(
            "CREATE TEMP TABLE credit_ledger (LIKE public.credit_ledger);
             GRANT ALL ON pg_temp.credit_ledger TO PUBLIC;",
        )
        .await
        .expect("an empty ledger look-alike");
    let refusal = refused(
        &client,
        &format!(
            "UPDATE public.customers SET status = 'closed' WHERE id = '{}'",
            shop.customer
        ),
    )
    .await;
    assert_eq!(refusal.code, SqlState::CHECK_VIOLATION, "{refusal:?}");
    assert_constraint(
        &refusal,
        "customers_closed_from_zero",
        "a customer who owes 200 is not closed",
    );
}

#[tokio::test]
async fn the_use_cases_write_only_the_callers_tenant() {
    let app = TestApp::spawn().await;
    let shop = open_shop(&app, "Shop").await;
    let other = open_shop(&app, "Other").await;
    let owner = app.sql().await;
    let before = count(&owner, MOVEMENTS).await;

    // The other tenant calls every use case with the shop's ids: none of
    // them exists for it.
    let client = session_as(&app, "ontab_app", other.business.id).await;
    let answers: Vec<Value> = vec![
        client
            .query_one(
                "SELECT ontab_purchase(gen_random_uuid(), gen_random_uuid(), $1, $2, '{1}')",
                &[&shop.customer, &vec![shop.product]],
            )
            .await
            .expect("purchase")
            .get(0),
        client
            .query_one(
                "SELECT ontab_pay(gen_random_uuid(), $1, 1)",
                &[&shop.customer],
            )
            .await
            .expect("pay")
            .get(0),
        client
            .query_one(
                "SELECT ontab_return(gen_random_uuid(), gen_random_uuid(), $1, $2, '{1}')",
                &[&shop.order, &vec![shop.product]],
            )
            .await
            .expect("return")
            .get(0),
        client
            .query_one(
                "SELECT ontab_adjust_stock(gen_random_uuid(), $1, -1, 'theft')",
                &[&shop.product],
            )
            .await
            .expect("adjust")
            .get(0),
    ];
    for answer in &answers {
        assert_eq!(answer["error"], "not_found", "{answer}");
    }
    let batch: Vec<Value> = client
        .query_one(
            "SELECT ontab_purchase_batch(ARRAY[gen_random_uuid()], ARRAY[gen_random_uuid()], $1, '{1}', $2, '{1}')",
            &[&vec![shop.customer], &vec![shop.product]],
        )
        .await
        .expect("batch")
        .get(0);
    assert_eq!(batch[0]["error"], "not_found", "{batch:?}");

    // Not only their WHERE clauses: row level security binds ontab_writer,
    // the role they run as, to the caller's tenant like anyone else.
    let writer = session_as(&app, "ontab_writer", other.business.id).await;
    assert_eq!(
        count(
            &writer,
            &format!(
                "SELECT count(*) FROM orders WHERE business_id = '{}'",
                shop.business.id
            )
        )
        .await,
        0,
        "ontab_writer sees no other tenant's orders"
    );
    let refused = writer
        .batch_execute(&format!(
            "INSERT INTO stock_adjustments (business_id, id, product_id, delta, reason, stock_after) \
             VALUES ('{}', gen_random_uuid(), '{}', 5, 'found', 13)",
            shop.business.id, shop.product
        ))
        .await
        .err()
        .and_then(|error| error.as_db_error().map(|db| db.message().to_owned()))
        .unwrap_or_default();
    assert!(refused.contains("row-level security"), "{refused}");
    // (The ledger's chain trigger, which fires before the policy's check,
    // finds no predecessor it may see.)
    writer
        .batch_execute(&format!(
            "INSERT INTO credit_ledger (business_id, id, customer_id, seq, kind, amount, balance_after) \
             VALUES ('{}', gen_random_uuid(), '{}', 2, 'payment', -1, 199)",
            shop.business.id, shop.customer
        ))
        .await
        .expect_err("no ledger entry for another tenant");
    let updated = writer
        .execute(
            "UPDATE products SET stock = 0 WHERE id = $1",
            &[&shop.product],
        )
        .await
        .expect("an update of invisible rows is no error");
    assert_eq!(
        updated, 0,
        "the shop's stock is out of ontab_writer's reach"
    );

    assert_eq!(
        count(&owner, MOVEMENTS).await,
        before,
        "nothing was written"
    );
}

/// A login role that is `ontab_app` and nothing more, as an operator
/// creates one for `ontab serve` (migrations/0003); roles are cluster-wide,
/// so it is dropped when the test ends.
pub struct ServerLogin {
    admin: Config,
    pub role: String,
}

impl ServerLogin {
    pub async fn create(app: &TestApp) -> Self {
        let login = Self {
            admin: app
                .database_url()
                .parse()
                .expect("the harness's connection string parses"),
            role: format!("ontab_test_server_{}", Uuid::new_v4().simple()),
        };
        app.sql()
            .await
            .batch_execute(&format!(
                "CREATE ROLE {} LOGIN PASSWORD 'test-only' IN ROLE ontab_app",
                login.role
            ))
            .await
            .expect("create the server's login role");
        login
    }

    pub async fn connect(&self) -> Client {
        let (client, connection) = self
            .config()
            .connect(NoTls)
            .await
            .expect("the login role connects");
        tokio::spawn(connection);
        client
    }

    /// This test's database, as the login role.
    pub fn config(&self) -> Config {
        let mut config = self.admin.clone();
        config.user(&self.role);
        config
    }
}

impl Drop for ServerLogin {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let statement = format!("DROP ROLE IF EXISTS {}", self.role);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let (client, connection) = admin.connect(NoTls).await.ok()?;
                tokio::spawn(connection);
                client.batch_execute(&statement).await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: could not drop role {}", self.role);
        }
    }
}

/// What src/db/tx.rs begins every tenant transaction with, besides
/// `SET LOCAL ontab.business_id` (its LIVE_KEYS): become ontab_app, set the
/// statement timeout, and read which of the presented keys are live.
const LIVE_KEYS: &str = "\
    SELECT ARRAY(SELECT k.id FROM api_keys k
                  WHERE k.business_id = $1
                    AND k.id = ANY ($2)
                    AND k.revoked_at IS NULL) AS live_keys
      FROM (SELECT set_config('role', 'ontab_app', true) AS role,
                   set_config('statement_timeout', $3, true) AS statement_timeout
             OFFSET 0) AS acting";

#[tokio::test]
async fn a_server_login_role_purchases_but_cannot_forge_nor_leave_the_app_role() {
    let app = TestApp::spawn().await;
    let shop = open_shop(&app, "Shop").await;
    let login = ServerLogin::create(&app).await;
    let server = login.connect().await;

    // The server's path: a tenant transaction as src/db/tx.rs opens it, and
    // a purchase through the use case.
    server.batch_execute("BEGIN").await.expect("begin");
    let tenant = shop.business.id.to_string();
    server
        .batch_execute(&format!("SET LOCAL ontab.business_id = '{tenant}'"))
        .await
        .expect("the tenant");
    server
        .query_one(LIVE_KEYS, &[&shop.business.id, &Vec::<Uuid>::new(), &"10s"])
        .await
        .expect("the login role may become ontab_app for a tenant");
    let bought: Value = server
        .query_one(
            "SELECT ontab_purchase(gen_random_uuid(), gen_random_uuid(), $1, $2, '{3}')",
            &[&shop.customer, &vec![shop.product]],
        )
        .await
        .expect("the use case runs")
        .get(0);
    assert_eq!(bought["order"]["total"], 300, "{bought}");
    server.batch_execute("COMMIT").await.expect("commit");

    // Not one of the direct writes, as ontab_app ...
    server
        .batch_execute(&format!(
            "SET ROLE ontab_app; SELECT set_config('ontab.business_id', '{tenant}', false)"
        ))
        .await
        .expect("become ontab_app for the session");
    let owner = app.sql().await;
    let before = count(&owner, MOVEMENTS).await;
    for sql in forbidden_writes(&shop) {
        assert_permission_denied(&server, &sql).await;
    }

    // ... nor after RESET ROLE, which only returns to the login role: it
    // has ontab_app's privileges and nothing else, and cannot become a
    // role with more.
    server
        .batch_execute("RESET ROLE")
        .await
        .expect("reset role");
    let me = server
        .query_one(
            "SELECT current_user::text, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .expect("who am I");
    assert_eq!(me.get::<_, String>(0), login.role);
    assert!(
        !me.get::<_, bool>(1) && !me.get::<_, bool>(2),
        "no superuser, no BYPASSRLS"
    );
    for sql in forbidden_writes(&shop) {
        assert_permission_denied(&server, &sql).await;
    }
    for role in ["ontab_writer", "ontab_recorder", "ontab_system", "postgres"] {
        assert_permission_denied(&server, &format!("SET ROLE {role}")).await;
    }
    // The audit's list of every tenant is the operator's, not the server's.
    assert_permission_denied(&server, "SELECT ontab_business_ids()").await;
    assert_eq!(
        count(&owner, MOVEMENTS).await,
        before,
        "nothing was written"
    );

    drop(server);
}
