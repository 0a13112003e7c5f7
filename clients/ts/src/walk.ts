// The whole credit flow through a typed client: types generated from
// ontab's /openapi.json by openapi-typescript (src/schema.d.ts), calls made
// with openapi-fetch. Compiled with `tsc --strict`, so the types are proved
// usable (a refusal's `code` narrows its members), then run against a live
// `ontab serve`:
//
//   node dist/walk.js http://127.0.0.1:8080     (ONTAB_ADMIN_TOKEN set)
//
// Only `paths` is imported from the generated types, never a schema by
// name: this walk depends on the paths and JSON fields the contract fixes,
// not on the names the Rust types give their schemas.

import createClient from "openapi-fetch";
import type { paths } from "./schema.js";

class WalkFailed extends Error {}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new WalkFailed(message);
}

function fail(message: string): never {
  throw new WalkFailed(message);
}

/** The body of a 2xx, or a failure that shows what came instead. */
function ok<T>(
  step: string,
  status: number,
  result: { data?: T; error?: unknown; response: Response },
): T {
  const { data, error, response } = result;
  if (response.status !== status || data === undefined) {
    fail(`${step}: expected ${status}, got ${response.status}: ${JSON.stringify(error ?? data)}`);
  }
  return data;
}

const baseUrl = process.argv[2] ?? fail("usage: node walk.js BASE_URL (ONTAB_ADMIN_TOKEN set)");
const adminToken = process.env.ONTAB_ADMIN_TOKEN ?? fail("set ONTAB_ADMIN_TOKEN");

function client(token: string) {
  return createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
}

async function walk(): Promise<number> {
  let calls = 0;
  const counted = <T>(result: T): T => {
    calls += 1;
    return result;
  };

  const admin = client(adminToken);
  const business = ok(
    "createBusiness",
    201,
    counted(await admin.POST("/v1/businesses", { body: { name: "Walk (TypeScript client)", currency: "USD" } })),
  );
  const tenant = client(business.api_key.key);

  const customer = ok(
    "createCustomer",
    201,
    counted(await tenant.POST("/v1/customers", { body: { name: "Grace", credit_limit: 10000 } })),
  );
  check(customer.balance === 0 && customer.available_credit === 10000, `createCustomer: ${JSON.stringify(customer)}`);

  const product = ok(
    "createProduct",
    201,
    counted(await tenant.POST("/v1/products", { body: { name: "Coffee", price: 1250, stock: 10 } })),
  );

  async function facts(step: string, balance: number, stock: number): Promise<void> {
    const now = ok(
      `${step}: getCustomer`,
      200,
      counted(await tenant.GET("/v1/customers/{id}", { params: { path: { id: customer.id } } })),
    );
    check(now.balance === balance, `${step}: balance ${now.balance}, expected ${balance}`);
    check(
      now.available_credit === Math.max(now.credit_limit - balance, 0),
      `${step}: available_credit ${now.available_credit}`,
    );
    const item = ok(
      `${step}: getProduct`,
      200,
      counted(await tenant.GET("/v1/products/{id}", { params: { path: { id: product.id } } })),
    );
    check(item.stock === stock, `${step}: stock ${item.stock}, expected ${stock}`);
  }

  // An absent Idempotency-Key is left out, never sent as null.
  type Key = NonNullable<paths["/v1/purchases"]["post"]["parameters"]["header"]>["Idempotency-Key"];
  const keyNotNullable: null extends Key ? "Idempotency-Key is nullable" : true = true;
  void keyNotNullable; // checked by tsc, nothing to do at run time

  // 4 × 1250 = 5000 of a 10000 limit.
  const key = `walk-ts-${crypto.randomUUID()}`;
  const purchase = { customer_id: customer.id, items: [{ product_id: product.id, quantity: 4 }] };
  const first = counted(
    await tenant.POST("/v1/purchases", { body: purchase, params: { header: { "Idempotency-Key": key } } }),
  );
  const order = ok("createPurchase", 201, first);
  check(order.total === 5000, `createPurchase: total ${order.total}`);
  check(first.response.headers.get("idempotent-replayed") === null, "createPurchase: first answer marked replayed");
  await facts("after the purchase", 5000, 6);

  const replay = counted(
    await tenant.POST("/v1/purchases", { body: purchase, params: { header: { "Idempotency-Key": key } } }),
  );
  const replayed = ok("createPurchase replay", 201, replay);
  check(replay.response.headers.get("idempotent-replayed") === "true", "replay: no idempotent-replayed: true");
  check(JSON.stringify(replayed) === JSON.stringify(order), "replay: a body other than the first answer's");
  await facts("after the replay (nothing again)", 5000, 6);

  // 5 × 1250 = 6250 on top of 5000 passes the limit; the stock (6) suffices.
  const refused = counted(
    await tenant.POST("/v1/purchases", {
      body: { customer_id: customer.id, items: [{ product_id: product.id, quantity: 5 }] },
    }),
  );
  check(refused.response.status === 409, `refused purchase: status ${refused.response.status}`);
  const problem = refused.error ?? fail("refused purchase: no error body");
  if (problem.code !== "credit_limit_exceeded") {
    fail(`refused purchase: code ${problem.code}, expected credit_limit_exceeded`);
  }
  // Compile-time proof that the errors are typed. The narrowing above gives
  // these members as plain numbers only if the spec types this refusal
  // (required, not nullable); a bag of optional members fails here.
  const { credit_limit, balance, order_total }: { credit_limit: number; balance: number; order_total: number } =
    problem;
  // `code` is an enum on every error of createPurchase: were it a free
  // string anywhere, `string` would fit in the union.
  type PurchaseErrorCode = NonNullable<typeof refused.error>["code"];
  const codeIsAnEnum: string extends PurchaseErrorCode ? "code is a free string" : true = true;
  // And a purchase lists only refusals it can make.
  type Impossible = Extract<PurchaseErrorCode, "payment_exceeds_balance" | "return_exceeds_purchase">;
  const onlyItsOwnRefusals: [Impossible] extends [never] ? true : "lists refusals of other operations" = true;
  void [codeIsAnEnum, onlyItsOwnRefusals]; // checked by tsc, nothing to do at run time
  check(
    credit_limit === 10000 && balance === 5000 && order_total === 6250,
    `refused purchase: ${JSON.stringify(problem)}`,
  );
  await facts("after the refusal (nothing written)", 5000, 6);

  const payment = ok(
    "createPayment",
    201,
    counted(
      await tenant.POST("/v1/payments", {
        body: { customer_id: customer.id, amount: 2000 },
        params: { header: { "Idempotency-Key": `walk-ts-${crypto.randomUUID()}` } },
      }),
    ),
  );
  check(
    payment.kind === "payment" && payment.amount === -2000 && payment.balance_after === 3000,
    `createPayment: ${JSON.stringify(payment)}`,
  );
  await facts("after the payment", 3000, 6);

  const returned = ok(
    "createReturn",
    201,
    counted(
      await tenant.POST("/v1/orders/{id}/returns", {
        params: { path: { id: order.id }, header: { "Idempotency-Key": `walk-ts-${crypto.randomUUID()}` } },
        body: { items: [{ product_id: product.id, quantity: 1 }] },
      }),
    ),
  );
  check(returned.amount === 1250 && returned.order_id === order.id, `createReturn: ${JSON.stringify(returned)}`);
  await facts("after the return", 1750, 7);

  const ledger = ok(
    "listCustomerLedger",
    200,
    counted(await tenant.GET("/v1/customers/{id}/ledger", { params: { path: { id: customer.id } } })),
  );
  const entries = ledger.data.map((entry) => `${entry.kind} ${entry.amount} ${entry.balance_after}`);
  const expected = ["purchase 5000 5000", "payment -2000 3000", "return -1250 1750"];
  check(JSON.stringify(entries) === JSON.stringify(expected), `listCustomerLedger: ${JSON.stringify(entries)}`);
  check(ledger.next_cursor === null, `listCustomerLedger: next_cursor ${ledger.next_cursor} on the only page`);

  // days=0: every purchase not yet settled is overdue, whatever its age.
  const report = ok(
    "getOverdueReport",
    200,
    counted(await tenant.GET("/v1/reports/overdue", { params: { query: { days: 0 } } })),
  );
  const rows = report.customers.map((row) => [row.customer_id, row.balance, row.overdue_amount]);
  check(
    JSON.stringify(rows) === JSON.stringify([[customer.id, 1750, 1750]]),
    `getOverdueReport: ${JSON.stringify(rows)}`,
  );

  const keys = ok("listApiKeys", 200, counted(await tenant.GET("/v1/api-keys")));
  check(
    keys.data.length === 1 && keys.data[0]?.id === business.api_key.id && keys.data[0]?.revoked_at === null,
    `listApiKeys: ${JSON.stringify(keys.data)}`,
  );
  return calls;
}

try {
  const calls = await walk();
  console.log(`walk (typescript): every step held (${calls} calls)`);
} catch (error) {
  const message = error instanceof WalkFailed ? error.message : String(error);
  console.error(`walk (typescript) FAILED at ${message}`);
  process.exitCode = 1;
}
