"""Schemathesis hooks for .ci/fuzz.sh.

JSON Schema counts 3.0 as an "integer", so Schemathesis sends integer-valued
floats (e.g. {"price": 0.0}) as *valid* data. The contract says money and
quantities are JSON integers, "never floats", and refuses wrong types with
400 malformed_request; the server keeps doing that. Here such floats are
sent as the integers they stand for. Non-integral floats (0.5), which the
schema itself calls invalid, are left alone and still probed.
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
