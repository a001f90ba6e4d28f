"""Settings for notify_kit, read from the one ``NOTIFY_KIT`` dict.

Values are looked up on every access (as django-cors-headers does), never cached at import time,
so ``override_settings(NOTIFY_KIT=...)`` in a test takes effect at once.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings

DEFAULTS: dict[str, Any] = {
    # Alias in CHANNEL_LAYERS that notify_kit sends on and the consumer listens on.
    "CHANNEL_LAYER": "default",
    # Salt for HashIDs. None derives one from SECRET_KEY (hashed with each model's label).
    # Every process that encodes or decodes ids must share it (or SECRET_KEY).
    "HASHIDS_SALT": None,
    "HASHIDS_MIN_LENGTH": 8,
    # Per WebSocket connection (objects and collections together).
    "MAX_SUBSCRIPTIONS": 100,
    # Most rows a collection's snapshot carries (`"truncated": true` when there are more).
    "SNAPSHOT_LIMIT": 500,
    "MAX_MESSAGE_BYTES": 4096,
    # Subscribe/unsubscribe frames per connection: a burst of SUBSCRIBE_BURST, refilled at
    # SUBSCRIBE_RATE per second (token bucket).
    "SUBSCRIBE_RATE": 20.0,
    "SUBSCRIBE_BURST": 100,
    # Every `not_found` answer takes at least this long (seconds), so that the time to answer
    # does not tell an existing-but-forbidden row from a missing one.
    "NOT_FOUND_MIN_SECONDS": 0.02,
    # Seconds one group_send may take before it is abandoned and logged.
    "SEND_TIMEOUT": 2.0,
    # Notifications waiting in the background sender before new ones are dropped (and counted).
    "MAX_PENDING": 10000,
    # Updates of one object waiting to be sent before newer ones fold into the last waiting one
    # (union of `changed`, latest `data`, `coalesced` count in the frame). Below it, every
    # update is sent on its own.
    "COALESCE_AFTER": 100,
    # Seconds the process waits at exit for queued notifications to go out.
    "SHUTDOWN_TIMEOUT": 5.0,
}


class Settings:
    """Attribute access to ``settings.NOTIFY_KIT`` merged over DEFAULTS, read on every access."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown notify_kit setting {name!r}; known: {', '.join(DEFAULTS)}.")
        user = getattr(django_settings, "NOTIFY_KIT", None) or {}
        return user.get(name, DEFAULTS[name])


settings = Settings()


def redis_host(address: str, **options: Any) -> dict[str, Any]:
    """A channels-redis ``hosts`` entry with options that work with redis-py 6 and later.

    redis-py's default socket timeout (5 s) equals channels-redis's blocking receive (5 s), so
    an idle consumer's read times out and kills it; its default pool of 100 connections runs
    out at a few hundred sockets. Use as ``"hosts": [redis_host("redis://127.0.0.1:6379/0")]``.
    """
    return {"address": address, "socket_timeout": 30, "max_connections": 10_000, **options}
