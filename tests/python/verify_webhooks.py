"""Verifies webhooks that Linkkit delivered, with the official Standard Webhooks library.

Usage: verify_webhooks.py SECRET FILE
FILE holds a JSON list of {"headers": {...}, "body": "..."} as a receiver got them. Prints one
line per webhook, "ok <webhook-id>" or "FAIL <webhook-id> <reason>", and exits 1 if any failed.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook


def main() -> int:
    secret, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as handle:
        requests = json.load(handle)
    verifier = Webhook(secret)
    failures = 0
    for request in requests:
        webhook_id = request["headers"].get("webhook-id", "?")
        try:
            payload = verifier.verify(request["body"], request["headers"])
        except Exception as error:  # the library raises WebhookVerificationError
            failures += 1
            print(f"FAIL {webhook_id} {error}")
            continue
        if payload.get("id") != webhook_id:
            failures += 1
            print(f"FAIL {webhook_id} body id {payload.get('id')} differs")
            continue
        print(f"ok {webhook_id}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
