"""Client frames: what a socket checks before any subscription logic runs.

Every frame a client sends gets exactly one answer, and nothing it sends closes the socket: a
frame is decoded here (binary, oversized, malformed or too deeply nested JSON all become an
``invalid`` error), taxed by a per-connection token bucket (``rate_limited``), and its
``request_id`` is recovered even from a frame that is otherwise rejected, so that the client can
match the error to its request.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from .conf import settings
from .serializers import SubscriptionRequestSerializer

if TYPE_CHECKING:
    from rest_framework.serializers import Serializer

#: The one answer for a missing, foreign, malformed or forbidden object (docs/protocol.md).
NOT_FOUND_DETAIL = "No such object, or you may not subscribe to it."


class RequestError(Exception):
    """A client frame answered with an ``error`` frame of ``code`` (see docs/protocol.md)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


class TokenBucket:
    """Per-connection rate limit: ``burst`` frames at once, refilled at ``rate`` per second."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def decode(text_data: str | None, bytes_data: bytes | None) -> dict[str, Any]:
    """The JSON object a text frame holds; RequestError("invalid") for anything else."""
    if text_data is None:
        raise RequestError("invalid", "Binary frames are not supported; send JSON text.")
    limit = int(settings.MAX_MESSAGE_BYTES)
    if len(text_data) > limit or len(text_data.encode("utf-8", "surrogatepass")) > limit:
        raise RequestError("invalid", f"Message too large; the limit is {limit} bytes.")
    try:
        content = json.loads(text_data)
    except (ValueError, RecursionError):  # deep nesting raises RecursionError, not ValueError
        raise RequestError("invalid", "Not valid JSON.") from None
    if not isinstance(content, dict):
        raise RequestError("invalid", "Expected a JSON object.")
    return content


def query_param(scope: Any, name: str) -> str | None:
    """The last value of ``name`` in the connect URL's query string, or None."""
    raw = scope.get("query_string", b"")
    values = parse_qs(raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)).get(name)
    return values[-1] if values else None


def request_id_of(content: Any) -> Any:
    """The frame's request_id when it is a valid one, so even a rejected frame can be matched."""
    if not isinstance(content, dict) or "request_id" not in content:
        return None
    # As the base class: its `fields` are the bound fields, which the frame field named "fields"
    # shadows only for the type checker (see SubscriptionRequestSerializer).
    serializer: Serializer[Any] = SubscriptionRequestSerializer()
    field = serializer.fields["request_id"]
    try:
        return field.run_validation(content["request_id"])
    except Exception:  # noqa: BLE001 - an invalid request_id is simply not echoed
        return None


def describe(errors: dict[str, Any]) -> str:
    """Flatten DRF errors into one line: ``model: This field is required. id: ...``."""
    parts = []
    for field, messages in sorted(errors.items()):
        text = " ".join(str(m) for m in (messages if isinstance(messages, list) else [messages]))
        parts.append(f"{field}: {text}")
    return " ".join(parts)
