"""A Linkkit webhook receiver: Python's standard library and the official `standardwebhooks`.

    pip install standardwebhooks==1.1.0
    LINKKIT_WEBHOOK_SECRET=whsec_... python3 receive.py 3000

Prints one line per new event and answers 204; refuses anything unsigned, changed or older
than five minutes with 400.
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

webhook = Webhook(os.environ["LINKKIT_WEBHOOK_SECRET"])
seen = set()  # event ids already handled; keep them in your database in production


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        # The raw body, exactly as it arrived: the signature covers these bytes.
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            event = webhook.verify(body, dict(self.headers))
        except (WebhookVerificationError, ValueError) as error:  # ValueError: malformed header
            print(f"refused: {error}", flush=True)
            self.send_response(400)
            self.end_headers()
            return
        # Retries carry the same id: handle each event once.
        if event["id"] not in seen:
            seen.add(event["id"])
            print(f'{event["event"]} {event["id"]} {json.dumps(event["data"])}', flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


port = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
HTTPServer(("127.0.0.1", port), Receiver).serve_forever()
