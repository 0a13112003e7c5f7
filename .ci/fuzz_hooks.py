"""Schemathesis hooks for .ci/fuzz.sh.

JSON Schema counts 3.0 as an "integer", so Schemathesis sends integer-valued
floats (e.g. {"price": 0.0}) as *valid* data. The contract says money and
quantities are JSON integers, "never floats", and refuses wrong types with
400 malformed_request; the server keeps doing that. Here such floats are
sent as the integers they stand for. Non-integral floats (0.5), which the
schema itself calls invalid, are left alone and still probed.

`GET /v1/events?wait=` long-polls: a valid request with nothing newer is
answered after `wait` seconds (up to 30), exactly as the contract says.
Schemathesis reads that as a hung server, so valid waits are cut to at most
one second here; the server still sees every `wait` the schema allows from
0 to 1 and every invalid one (negative, > 30, not a number) unchanged.
"""

import schemathesis


def _integral(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(item) for item in value]
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    return value


@schemathesis.hook
def map_body(ctx, body):
    return _integral(body)


@schemathesis.hook
def before_call(ctx, case, kwargs):
    # Every phase (coverage too) passes here just before sending.
    query = case.query
    if not isinstance(query, dict):
        return
    wait = query.get("wait")
    if isinstance(wait, bool):
        return
    if isinstance(wait, str) and wait.isdigit():
        number = int(wait)
    elif isinstance(wait, int):
        number = wait
    else:
        return
    if 1 < number <= 30:
        query["wait"] = 1 if isinstance(wait, int) else "1"
