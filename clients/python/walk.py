"""The whole credit flow through the Python client generated from ontab's
OpenAPI document, against a running `ontab serve`; every request and every
response is also checked against that document with openapi-core.

    python walk.py --base-url http://127.0.0.1:8080 --spec openapi.json
    (ONTAB_ADMIN_TOKEN in the environment)

The client is the package `ontab_client` that
    openapi-python-client generate --path openapi.json --meta setup \
        --config clients/python/generator.yaml
writes (.ci/openapi.sh generates and installs it). Calls go only through
its API: one module per operationId, `sync_detailed` for status, headers
and the parsed body. No raw HTTP is needed: the Idempotency-Key is a
parameter, the `idempotent-replayed` header is in `Response.headers`.

A request body is built with `from_dict` on the model class the operation's
signature names, so this walk depends on the operationIds and the JSON
field names (both fixed by the contract), not on the names the Rust types
give their schemas. Exits non-zero, naming the step, on the first failure.
"""

import argparse
import importlib
import json
import os
import pkgutil
import re
import sys
import typing
import uuid
from http import HTTPStatus
from urllib.parse import parse_qs

import attrs
import httpx
import ontab_client
from ontab_client.types import Response, Unset
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict


class WalkFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise WalkFailed(message)


def value(field):
    """A const or enum member as its JSON string, whichever the generator made."""
    return getattr(field, "value", field)


# --- every exchange checked against the document --------------------------


class _Request:
    """An httpx request as openapi-core's Request protocol."""

    def __init__(self, request: httpx.Request):
        self.method = request.method.lower()
        self.host_url = f"{request.url.scheme}://{request.url.netloc.decode()}"
        self.path = request.url.path
        self.body = request.content or None
        self.content_type = request.headers.get("content-type", "")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(request.url.query.decode())),
            header=Headers(list(request.headers.items())),
            cookie=ImmutableMultiDict(),
        )


class _Response:
    """An httpx response as openapi-core's Response protocol."""

    def __init__(self, response: httpx.Response):
        self.status_code = response.status_code
        self.content_type = response.headers.get("content-type", "")
        self.headers = Headers(list(response.headers.items()))
        self.data = response.content


def describe(error: BaseException) -> str:
    """openapi-core's error and the schema errors behind it."""
    parts = []
    while error is not None:
        parts.append(repr(error))
        parts.extend(f"  {e.message} at {list(e.absolute_path)}" for e in getattr(error, "schema_errors", []))
        error = error.__cause__
    return "\n".join(parts)


class SpecCheck:
    """Validates, after each step, every exchange the client made in it."""

    def __init__(self, spec_path: str, base_url: str):
        with open(spec_path, encoding="utf-8") as spec:
            document = json.load(spec)
        # `servers` says where ontab is deployed; this one listens on a port
        # of the moment. Requests are matched by their path below it.
        document["servers"] = [{"url": base_url}]
        config = Config(
            # openapi-core reads only application/json (and vnd.api+json)
            # as JSON; errors are RFC 9457 problem+json.
            extra_media_type_deserializers={"application/problem+json": json.loads},
        )
        self.openapi = OpenAPI.from_dict(document, config=config)
        self.pending: list[httpx.Response] = []
        self.checked = 0

    def record(self, response: httpx.Response) -> None:
        response.read()
        self.pending.append(response)

    def validate(self, step: str) -> None:
        pending, self.pending = self.pending, []
        check(pending, f"{step}: the client sent no request")
        for response in pending:
            request = _Request(response.request)
            where = f"{step}: {request.method.upper()} {request.path} -> {response.status_code}"
            kind = "request"
            try:
                self.openapi.validate_request(request)
                kind = "response"
                self.openapi.validate_response(request, _Response(response))
            except Exception as error:  # openapi-core raises one type per failure kind
                raise WalkFailed(
                    f"{where}: the {kind} does not match the spec: {describe(error)}\nbody: {response.text[:2000]}"
                ) from error
            self.checked += 1


# --- the generated client ---------------------------------------------------


def _operations() -> dict[str, str]:
    """Generated module of each operation, by module name (the snake_case
    operationId), whatever tag (subpackage) it is filed under."""
    api = importlib.import_module("ontab_client.api")
    found = {}
    for module in pkgutil.walk_packages(api.__path__, "ontab_client.api."):
        if not module.ispkg:
            found[module.name.rsplit(".", 1)[1]] = module.name
    return found


OPERATIONS = _operations()


def operation(operation_id: str):
    """The generated module of an operation (`listApiKeys` -> `list_api_keys`)."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", operation_id).lower()
    check(snake in OPERATIONS, f"the generated client has no operation {operation_id} (module {snake})")
    return importlib.import_module(OPERATIONS[snake])


def body(endpoint, data: dict):
    """The operation's request body model, built from its JSON."""
    model = typing.get_type_hints(endpoint.sync_detailed)["body"]
    return model.from_dict(data)


def loose_members(parsed, where="") -> list[str]:
    """Where a body is looser than its schema should be. The spec must say
    everything the server sends (the generated models keep undeclared
    members aside in `additional_properties`), and a member the server
    sends is one it always sends, so it must be `required` (the models
    type optional members `X | Unset`)."""
    if isinstance(parsed, list):
        return [u for i, item in enumerate(parsed) for u in loose_members(item, f"{where}[{i}]")]
    if not attrs.has(type(parsed)):
        return []
    found = [f"{where}.{key}: not declared" for key in getattr(parsed, "additional_properties", {})]
    for field in attrs.fields(type(parsed)):
        if field.name == "additional_properties":
            continue
        member = getattr(parsed, field.name)
        if "Unset" in str(field.type) and not isinstance(member, Unset):
            found.append(f"{where}.{field.name}: sent, but optional in the spec")
        found += loose_members(member, f"{where}.{field.name}")
    return found


def expect(response: Response, status: HTTPStatus, step: str):
    check(
        response.status_code == status,
        f"{step}: expected {status.value}, got {response.status_code.value}: "
        f"{response.content.decode(errors='replace')[:2000]}",
    )
    check(response.parsed is not None, f"{step}: the client could not parse the {status.value} body")
    loose = loose_members(response.parsed)
    check(not loose, f"{step}: the {status.value} body is looser than its schema: {loose}")
    return response.parsed


class Walk:
    def __init__(self, base_url: str, spec_path: str, admin_token: str):
        self.spec = SpecCheck(spec_path, base_url)
        hooks = {"event_hooks": {"response": [self.spec.record]}}
        self.base_url = base_url
        self.httpx_args = hooks
        self.public = ontab_client.Client(base_url=base_url, httpx_args=hooks)
        self.admin = ontab_client.AuthenticatedClient(base_url=base_url, token=admin_token, httpx_args=hooks)
        self.tenant: ontab_client.AuthenticatedClient | None = None

    def step(self, name, call):
        try:
            result = call()
        except Exception as error:
            # The client failing on a body (a KeyError in `from_dict`...) is
            # best explained by what the spec says of that body.
            if self.spec.pending:
                self.spec.validate(name)
            if isinstance(error, WalkFailed):
                raise
            raise WalkFailed(f"{name}: {error!r}") from error
        self.spec.validate(name)
        return result

    def customer_balance(self, customer_id, balance, step):
        get_customer = operation("getCustomer")
        customer = expect(get_customer.sync_detailed(customer_id, client=self.tenant), HTTPStatus.OK, step)
        check(customer.balance == balance, f"{step}: balance {customer.balance}, expected {balance}")
        available = max(customer.credit_limit - balance, 0)
        check(
            customer.available_credit == available,
            f"{step}: available_credit {customer.available_credit}, expected {available}",
        )

    def product_stock(self, product_id, stock, step):
        get_product = operation("getProduct")
        product = expect(get_product.sync_detailed(product_id, client=self.tenant), HTTPStatus.OK, step)
        check(product.stock == stock, f"{step}: stock {product.stock}, expected {stock}")

    def facts(self, name, customer_id, balance, product_id, stock):
        def call():
            self.customer_balance(customer_id, balance, name)
            self.product_stock(product_id, stock, name)

        self.step(f"{name}: balance {balance}, stock {stock}", call)

    def run(self):
        get_readiness = operation("getReadiness")
        self.step(
            "getReadiness",
            lambda: expect(get_readiness.sync_detailed(client=self.public), HTTPStatus.OK, "getReadiness"),
        )

        create_business = operation("createBusiness")
        business = self.step(
            "createBusiness",
            lambda: expect(
                create_business.sync_detailed(
                    client=self.admin,
                    body=body(create_business, {"name": "Walk (Python client)", "currency": "USD"}),
                ),
                HTTPStatus.CREATED,
                "createBusiness",
            ),
        )
        check(business.currency == "USD", f"createBusiness: currency {business.currency}")
        self.tenant = ontab_client.AuthenticatedClient(
            base_url=self.base_url, token=business.api_key.key, httpx_args=self.httpx_args
        )

        create_customer = operation("createCustomer")
        customer = self.step(
            "createCustomer",
            lambda: expect(
                create_customer.sync_detailed(
                    client=self.tenant, body=body(create_customer, {"name": "Ada", "credit_limit": 10000})
                ),
                HTTPStatus.CREATED,
                "createCustomer",
            ),
        )
        check(
            (customer.credit_limit, customer.balance, customer.available_credit) == (10000, 0, 10000),
            f"createCustomer: {customer.to_dict()}",
        )

        create_product = operation("createProduct")
        product = self.step(
            "createProduct",
            lambda: expect(
                create_product.sync_detailed(
                    client=self.tenant, body=body(create_product, {"name": "Tea", "price": 1250, "stock": 10})
                ),
                HTTPStatus.CREATED,
                "createProduct",
            ),
        )
        check((product.price, product.stock) == (1250, 10), f"createProduct: {product.to_dict()}")

        # 4 × 1250 = 5000 of a 10000 limit.
        create_purchase = operation("createPurchase")
        # An absent key is left out; a None would reach httpx as a header
        # value and crash there, so the signature must not offer it.
        key_type = typing.get_type_hints(create_purchase.sync_detailed).get("idempotency_key")
        check(key_type is not None, "createPurchase: no idempotency_key parameter (the Idempotency-Key header)")
        check(
            type(None) not in typing.get_args(key_type),
            f"createPurchase: idempotency_key is typed {key_type}: the header is declared nullable",
        )
        key = f"walk-{uuid.uuid4()}"
        purchase = {"customer_id": str(customer.id), "items": [{"product_id": str(product.id), "quantity": 4}]}
        first = self.step(
            "createPurchase with Idempotency-Key",
            lambda: create_purchase.sync_detailed(
                client=self.tenant, body=body(create_purchase, purchase), idempotency_key=key
            ),
        )
        order = expect(first, HTTPStatus.CREATED, "createPurchase")
        check(order.total == 5000, f"createPurchase: total {order.total}, expected 5000")
        check(
            [(line.quantity, line.unit_price, line.line_total) for line in order.items] == [(4, 1250, 5000)],
            f"createPurchase: items {[line.to_dict() for line in order.items]}",
        )
        check("idempotent-replayed" not in first.headers, "createPurchase: a first answer marked as replayed")
        self.facts("after the purchase", customer.id, 5000, product.id, 6)

        replay = self.step(
            "createPurchase replayed (same key, same body)",
            lambda: create_purchase.sync_detailed(
                client=self.tenant, body=body(create_purchase, purchase), idempotency_key=key
            ),
        )
        expect(replay, HTTPStatus.CREATED, "createPurchase replay")
        check(
            replay.headers.get("idempotent-replayed") == "true",
            f"createPurchase replay: idempotent-replayed is {replay.headers.get('idempotent-replayed')!r}",
        )
        check(
            json.loads(replay.content) == json.loads(first.content),
            "createPurchase replay: the body differs from the first answer's",
        )
        self.facts("after the replay (nothing again)", customer.id, 5000, product.id, 6)

        # 5 × 1250 = 6250 on top of 5000 passes the limit; stock (6) suffices,
        # so the credit limit is what refuses it.
        too_much = {"customer_id": str(customer.id), "items": [{"product_id": str(product.id), "quantity": 5}]}
        refused = self.step(
            "createPurchase over the credit limit",
            lambda: expect(
                create_purchase.sync_detailed(client=self.tenant, body=body(create_purchase, too_much)),
                HTTPStatus.CONFLICT,
                "createPurchase over the limit",
            ),
        )
        check(
            value(refused.code) == "credit_limit_exceeded",
            f"refused purchase: code {value(refused.code)!r}, expected 'credit_limit_exceeded'",
        )
        # The generated model types this refusal: its members are plain
        # ints (required, not nullable) and `code` is not a free string.
        # A single Problem with every refusal's members optional fails here.
        declared = {field.name: str(field.type) for field in attrs.fields(type(refused))}
        for member in ("credit_limit", "balance", "order_total"):
            check(
                declared.get(member) == "int",
                f"refused purchase: {type(refused).__name__}.{member} is typed {declared.get(member)!r}, not 'int'",
            )
        check(
            "code" in declared and not re.search(r"\bstr\b", declared["code"]),
            f"refused purchase: {type(refused).__name__}.code is typed {declared.get('code')!r}: a free string",
        )
        facts = (refused.credit_limit, refused.balance, refused.order_total)
        check(facts == (10000, 5000, 6250), f"refused purchase: credit_limit, balance, order_total = {facts}")
        self.facts("after the refusal (nothing written)", customer.id, 5000, product.id, 6)

        create_payment = operation("createPayment")
        payment = self.step(
            "createPayment",
            lambda: expect(
                create_payment.sync_detailed(
                    client=self.tenant,
                    body=body(create_payment, {"customer_id": str(customer.id), "amount": 2000}),
                    idempotency_key=f"walk-{uuid.uuid4()}",
                ),
                HTTPStatus.CREATED,
                "createPayment",
            ),
        )
        check(
            (value(payment.kind), payment.amount, payment.balance_after) == ("payment", -2000, 3000),
            f"createPayment: {payment.to_dict()}",
        )
        self.facts("after the payment", customer.id, 3000, product.id, 6)

        create_return = operation("createReturn")
        returned = self.step(
            "createReturn of one unit",
            lambda: expect(
                create_return.sync_detailed(
                    order.id,
                    client=self.tenant,
                    body=body(create_return, {"items": [{"product_id": str(product.id), "quantity": 1}]}),
                    idempotency_key=f"walk-{uuid.uuid4()}",
                ),
                HTTPStatus.CREATED,
                "createReturn",
            ),
        )
        check(returned.amount == 1250 and returned.order_id == order.id, f"createReturn: {returned.to_dict()}")
        self.facts("after the return", customer.id, 1750, product.id, 7)

        get_order = operation("getOrder")
        with_returns = self.step(
            "getOrder",
            lambda: expect(get_order.sync_detailed(order.id, client=self.tenant), HTTPStatus.OK, "getOrder"),
        )
        check(
            [r.id for r in with_returns.returns] == [returned.id] and with_returns.total == 5000,
            f"getOrder: {with_returns.to_dict()}",
        )

        list_ledger = operation("listCustomerLedger")
        ledger = self.step(
            "listCustomerLedger",
            lambda: expect(
                list_ledger.sync_detailed(customer.id, client=self.tenant), HTTPStatus.OK, "listCustomerLedger"
            ),
        )
        entries = [(value(e.kind), e.amount, e.balance_after) for e in ledger.data]
        expected = [("purchase", 5000, 5000), ("payment", -2000, 3000), ("return", -1250, 1750)]
        check(entries == expected, f"listCustomerLedger: {entries}, expected {expected}")
        check(ledger.next_cursor is None, f"listCustomerLedger: next_cursor {ledger.next_cursor!r} on the only page")

        # days=0: every purchase not yet settled is overdue, whatever its age.
        get_overdue = operation("getOverdueReport")
        report = self.step(
            "getOverdueReport",
            lambda: expect(get_overdue.sync_detailed(client=self.tenant, days=0), HTTPStatus.OK, "getOverdueReport"),
        )
        rows = [(row.customer_id, row.balance, row.overdue_amount) for row in report.customers]
        check(rows == [(customer.id, 1750, 1750)], f"getOverdueReport(days=0): {rows}")

        list_keys = operation("listApiKeys")
        keys = self.step(
            "listApiKeys",
            lambda: expect(list_keys.sync_detailed(client=self.tenant), HTTPStatus.OK, "listApiKeys"),
        )
        check(
            [(k.id, k.revoked_at) for k in keys.data] == [(business.api_key.id, None)],
            f"listApiKeys: {[k.to_dict() for k in keys.data]}",
        )
        return self.spec.checked


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--spec", required=True, help="the OpenAPI document the client was generated from")
    args = parser.parse_args()
    admin_token = os.environ.get("ONTAB_ADMIN_TOKEN")
    if not admin_token:
        sys.exit("walk (python): set ONTAB_ADMIN_TOKEN")
    try:
        checked = Walk(args.base_url, args.spec, admin_token).run()
    except WalkFailed as failure:
        sys.exit(f"walk (python) FAILED at {failure}")
    print(f"walk (python): every step held; {checked} requests and responses matched the spec")


if __name__ == "__main__":
    main()
