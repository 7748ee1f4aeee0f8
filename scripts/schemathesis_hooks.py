"""Schemathesis hooks for scripts/schemathesis.sh: the two things JSON Schema cannot say.

- `expires_at` must be in the future. The document says so in words, but a schema cannot
  compare with the clock, so generated dates are often past and rightly refused (422). Past
  dates are moved a year ahead of now (in every phase, just before the request is sent), keeping the check that valid input is accepted at full
  strength; everything else about the body is left as generated.
- A QR code as `image/png` is binary: it is checked to be a PNG and validated as the string the
  document promises.
"""

from datetime import datetime, timedelta, timezone

import schemathesis

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _in_the_past(value):
    if not isinstance(value, str):
        return False
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False  # not a date: leave the invalid value to be refused
    if moment.tzinfo is None:
        return False
    return moment <= datetime.now(timezone.utc) + timedelta(minutes=1)


@schemathesis.hook
def before_call(context, case, kwargs):
    body = case.body
    if isinstance(body, dict) and _in_the_past(body.get("expires_at")):
        future = datetime.now(timezone.utc) + timedelta(days=365)
        case.body = {**body, "expires_at": future.strftime("%Y-%m-%dT%H:%M:%SZ")}


@schemathesis.deserializer("image/png")
def deserialize_png(ctx, response):
    if not response.content.startswith(PNG_MAGIC):
        raise ValueError("the image/png answer is not a PNG")
    return response.content.decode("latin-1")
