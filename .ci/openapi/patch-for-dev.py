#!/usr/bin/env python3
"""Patch the served OpenAPI document into a valid one, by hand. NOT used by CI.

    python3 .ci/openapi/patch-for-dev.py served.json patched.json
    ONTAB_OPENAPI_FILE=patched.json bash .ci/openapi.sh

Why it exists: the document ontab serves today is invalid (success responses
without a description, duplicate operationIds, a nullable Idempotency-Key,
untyped errors: issue 12), so nothing downstream of the linters could be
tried on it. This script makes, on a copy, the changes the Rust code is to
make itself, so that .ci/openapi.sh can be shown green end to end before
it is. It is a sketch of the target, not the target: once `ontab serve`
serves a document that passes .ci/openapi.sh unpatched, delete this file.

What it changes, each the way the Rust side is expected to:
- operationIds: unique, readable, the names the walks call (createPurchase…);
- a description on every response, a description on every operation, tags
  with descriptions, `servers`, a license identifier;
- `security: []` on the operations endpoints (they need none, and say so);
- `Idempotency-Key` as a plain string (absent, never null);
- errors typed per operation: one problem schema per code (`code` a const),
  each operation listing only the statuses it can answer, and its 409 a
  `oneOf` of the refusals it can make with a `code` discriminator; a
  `default` problem (`internal`) on every operation;
- integers of request bodies bounded to ±(2^53 - 1), their fields not
  nullable;
- required `next_cursor`/`revoked_at`, list items as `$ref`, `kind` an enum,
  the response headers `idempotent-replayed` and `x-request-id` declared,
  the bodies of /healthz and /readyz declared.
"""

import copy
import json
import sys

OPERATION_IDS = {
    ("post", "/v1/businesses"): "createBusiness",
    ("post", "/v1/api-keys"): "createApiKey",
    ("get", "/v1/api-keys"): "listApiKeys",
    ("delete", "/v1/api-keys/{id}"): "revokeApiKey",
    ("post", "/v1/customers"): "createCustomer",
    ("get", "/v1/customers"): "listCustomers",
    ("get", "/v1/customers/{id}"): "getCustomer",
    ("patch", "/v1/customers/{id}"): "updateCustomer",
    ("get", "/v1/customers/{id}/ledger"): "listCustomerLedger",
    ("post", "/v1/products"): "createProduct",
    ("get", "/v1/products"): "listProducts",
    ("get", "/v1/products/{id}"): "getProduct",
    ("patch", "/v1/products/{id}"): "updateProduct",
    ("post", "/v1/products/{id}/stock-adjustments"): "createStockAdjustment",
    ("post", "/v1/purchases"): "createPurchase",
    ("post", "/v1/payments"): "createPayment",
    ("get", "/v1/orders"): "listOrders",
    ("get", "/v1/orders/{id}"): "getOrder",
    ("post", "/v1/orders/{id}/returns"): "createReturn",
    ("get", "/v1/reports/overdue"): "getOverdueReport",
    ("get", "/healthz"): "getHealth",
    ("get", "/readyz"): "getReadiness",
    ("get", "/metrics"): "getMetrics",
    ("get", "/openapi.json"): "getOpenApi",
}

# The refusals (409) each operation can make, in the contract's order.
REFUSALS = {
    "createPurchase": ["insufficient_stock", "credit_limit_exceeded", "idempotency_key_reused"],
    "createPayment": ["payment_exceeds_balance", "idempotency_key_reused"],
    "createReturn": ["return_exceeds_purchase", "idempotency_key_reused"],
    "createStockAdjustment": ["insufficient_stock", "idempotency_key_reused"],
}

TAGS = [
    ("businesses", "Tenants; created with the admin token."),
    ("api-keys", "A business's API keys: issue, list, revoke."),
    ("customers", "Customers who buy on credit, and their ledgers."),
    ("products", "Products, prices and stock."),
    ("purchases", "Buying on credit: all lines or nothing."),
    ("payments", "Payments that lower a customer's balance."),
    ("orders", "Orders (immutable) and returns against them."),
    ("reports", "Reports over the ledgers."),
    ("operations", "Liveness, readiness, metrics and this document; no auth."),
]

INT64 = {"type": "integer", "format": "int64"}
UUID = {"type": "string", "format": "uuid"}

# code -> (status, title, {extra member: schema})
PROBLEMS = {
    "malformed_request": (400, "MalformedRequest", {}),
    "unauthorized": (401, "Unauthorized", {}),
    "not_found": (404, "NotFound", {}),
    "insufficient_stock": (409, "InsufficientStock", {"product_id": UUID, "requested": INT64, "available": INT64}),
    "credit_limit_exceeded": (
        409,
        "CreditLimitExceeded",
        {"credit_limit": INT64, "balance": INT64, "order_total": INT64},
    ),
    "payment_exceeds_balance": (409, "PaymentExceedsBalance", {"balance": INT64, "amount": INT64}),
    "return_exceeds_purchase": (409, "ReturnExceedsPurchase", {"product_id": UUID, "returnable": INT64}),
    "idempotency_key_reused": (409, "IdempotencyKeyReused", {}),
    "payload_too_large": (413, "PayloadTooLarge", {}),
    "validation_failed": (
        422,
        "ValidationFailed",
        {
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}, "minItems": 1},
        },
    ),
    "unavailable": (503, "Unavailable", {}),
    "internal": (500, "Internal", {}),
}

REQUEST_ID = {
    "description": "The request's id (the one sent, or a new UUID), also in the server's logs.",
    "schema": {"type": "string"},
}


def problem_schema(code):
    status, _, extras = PROBLEMS[code]
    properties = {
        "type": {"type": "string", "const": f"urn:ontab:problem:{code}"},
        "title": {"type": "string"},
        "status": {"type": "integer", "const": status},
        "detail": {"type": "string"},
        "code": {"type": "string", "const": code},
    }
    properties.update(copy.deepcopy(extras))
    return {
        "type": "object",
        "description": f"The `{code}` problem (RFC 9457).",
        "required": ["type", "title", "status", "detail", "code", *extras],
        "properties": properties,
    }


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def problem_response(description, schema):
    return {
        "description": description,
        "headers": {"x-request-id": {"$ref": "#/components/headers/RequestId"}},
        "content": {"application/problem+json": {"schema": schema}},
    }


SAFE = 2**53 - 1


def request_schemas(doc):
    """Names of the component schemas a request body reaches."""
    found, todo = set(), []
    for item in doc["paths"].values():
        for op in item.values():
            for media in op.get("requestBody", {}).get("content", {}).values():
                todo.append(media["schema"])
    while todo:
        node = todo.pop()
        if isinstance(node, list):
            todo.extend(node)
        elif isinstance(node, dict):
            target = node.get("$ref", "")
            if target.startswith("#/components/schemas/") and target.rsplit("/", 1)[1] not in found:
                name = target.rsplit("/", 1)[1]
                found.add(name)
                todo.append(doc["components"]["schemas"][name])
            todo.extend(node.values())
    return found


def integers(schema):
    """The integer schemas in a schema, its oneOf branches included."""
    if schema.get("type") == "integer":
        yield schema
    for branch in schema.get("oneOf", []):
        yield from integers(branch)


def patch(doc):
    doc["servers"] = [{"url": "http://127.0.0.1:8080", "description": "`ontab serve` with the default ONTAB_LISTEN"}]
    doc["info"]["license"]["identifier"] = "MIT"
    doc["tags"] = [{"name": name, "description": text} for name, text in TAGS]
    schemas = doc["components"]["schemas"]
    doc["components"]["headers"] = {"RequestId": REQUEST_ID}

    for code, (_, name, _) in PROBLEMS.items():
        schemas[f"{name}Problem"] = problem_schema(code)
    del schemas["Problem"]

    # Lists: items by $ref, next_cursor always sent.
    for name in [n for n in schemas if n.startswith("List_")]:
        item = name[len("List_") :]
        schemas[name]["properties"]["data"]["items"] = ref(item)
        schemas[name]["required"] = ["data", "next_cursor"]
    schemas["ApiKeyInfo"]["required"] = ["id", "created_at", "revoked_at"]
    schemas["LedgerEntry"]["properties"]["kind"] = {
        "type": "string",
        "enum": ["purchase", "payment", "return"],
        "description": "`purchase` (amount > 0), `payment` or `return` (amount < 0).",
    }
    # Members the server always sends.
    schemas["LedgerEntry"]["required"] += ["order_id", "return_id", "seq"]
    schemas["Order"]["required"].append("returns")

    # Request bodies: integers within ±(2^53 - 1), and null only where it
    # means something (nowhere yet: an omitted PATCH field is "unchanged").
    for name in request_schemas(doc):
        for member in schemas[name].get("properties", {}).values():
            if isinstance(member.get("type"), list):
                member["type"] = next(t for t in member["type"] if t != "null")
            for integer in integers(member):
                integer["minimum"] = max(integer.get("minimum", -SAFE), -SAFE)
                integer["maximum"] = min(integer.get("maximum", SAFE), SAFE)

    for path, item in doc["paths"].items():
        for method, op in item.items():
            op_id = OPERATION_IDS[(method, path)]
            op["operationId"] = op_id
            op.setdefault("description", op["summary"] + ".")
            for param in op.get("parameters", []):
                if param["name"] == "Idempotency-Key":
                    param["schema"]["type"] = "string"
            responses = op["responses"]
            for status, response in responses.items():
                if status.startswith("2"):
                    response.setdefault("description", op["summary"])
                    response.setdefault("headers", {})["x-request-id"] = {"$ref": "#/components/headers/RequestId"}
            for status in [s for s in responses if s[0] in "45"]:
                if path in ("/readyz",):
                    continue
                codes = [c for c, (st, _, _) in PROBLEMS.items() if str(st) == status]
                if status == "409":
                    codes = REFUSALS[op_id]
                if len(codes) == 1:
                    schema = ref(f"{PROBLEMS[codes[0]][1]}Problem")
                else:
                    schema = {
                        "oneOf": [ref(f"{PROBLEMS[c][1]}Problem") for c in codes],
                        "discriminator": {
                            "propertyName": "code",
                            "mapping": {c: f"#/components/schemas/{PROBLEMS[c][1]}Problem" for c in codes},
                        },
                    }
                responses[status] = problem_response(responses[status]["description"], schema)
            responses["default"] = problem_response(
                "internal: an unexpected failure, with no detail", ref("InternalProblem")
            )
            if any(p["name"] == "Idempotency-Key" for p in op.get("parameters", [])):
                for status, response in responses.items():
                    if status.startswith("2") or status == "409":
                        response.setdefault("headers", {})["idempotent-replayed"] = {
                            "description": "`true` when this is the stored answer to an earlier request with the same key and body.",
                            "schema": {"type": "string", "enum": ["true"]},
                        }
            if "security" not in op:
                op["security"] = []

    health = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}},
    }
    ops = doc["paths"]
    ops["/healthz"]["get"]["responses"]["200"]["content"] = {
        "application/json": {"schema": {**health, "properties": {"status": {"const": "ok"}}}}
    }
    ops["/readyz"]["get"]["responses"]["200"]["content"] = {
        "application/json": {"schema": {**health, "properties": {"status": {"const": "ready"}}}}
    }
    ops["/readyz"]["get"]["responses"]["503"]["content"] = {
        "application/json": {"schema": {**health, "properties": {"status": {"const": "unavailable"}}}}
    }
    ops["/metrics"]["get"]["responses"]["200"]["content"]["text/plain"]["schema"] = {"type": "string"}
    ops["/openapi.json"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] = {"type": "object"}
    return doc


def main():
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} SERVED.json PATCHED.json")
    with open(sys.argv[1], encoding="utf-8") as served:
        doc = json.load(served)
    with open(sys.argv[2], "w", encoding="utf-8") as patched:
        json.dump(patch(doc), patched, indent=2)
        patched.write("\n")


if __name__ == "__main__":
    main()
