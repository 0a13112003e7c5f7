"""Verifies one captured ontab delivery with the `standardwebhooks` package
(the spec's reference implementation), apart from ontab's signing code.

Usage: python standardwebhooks_verify.py SECRET; reads a JSON object
{"headers": {...}, "body": "..."} on stdin. Exits 0 when the signature
verifies and the payload comes back equal, 1 otherwise.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook

secret = sys.argv[1]
captured = json.load(sys.stdin)
payload = Webhook(secret).verify(captured["body"], captured["headers"])
assert payload == json.loads(captured["body"]), payload
print("verified", captured["headers"]["webhook-id"])
