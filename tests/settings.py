"""Minimal settings for the test suite.

NOTIFY_KIT_TEST_DB=postgres runs it on the PostgreSQL at NOTIFY_KIT_PG_* (default 127.0.0.1:5432,
database ``test``); anything else on SQLite. The three channel layers (in-memory, channels-redis
core, channels-redis pub/sub) are configured; tests pick one through NOTIFY_KIT["CHANNEL_LAYER"]
(see conftest.py).
"""

import os

from notify_kit.conf import redis_host

SECRET_KEY = "notify-kit-tests-not-secret"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "rest_framework",
    "channels",
    "notify_kit",
    "tests.testapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if os.environ.get("NOTIFY_KIT_TEST_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("NOTIFY_KIT_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("NOTIFY_KIT_PG_PORT", "5432"),
            # Server processes started by the e2e tests get the test database's name here.
            "NAME": os.environ.get("NOTIFY_KIT_PG_NAME", "test"),
            "USER": os.environ.get("NOTIFY_KIT_PG_USER", "postgres"),
            "PASSWORD": os.environ.get("NOTIFY_KIT_PG_PASSWORD", ""),
            # One test database per process, so parallel tox envs do not collide.
            "TEST": {"NAME": f"test_notify_kit_{os.getpid()}"},
        }
    }
else:
    # A file, not :memory:, so that the server and writer processes of the e2e tests share it.
    _sqlite = os.environ.get("NOTIFY_KIT_SQLITE_PATH") or os.path.join(
        os.path.dirname(__file__), f".test-{os.getpid()}.sqlite3"
    )
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _sqlite, "TEST": {"NAME": _sqlite}}}

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
_REDIS_PREFIX = os.environ.get("NOTIFY_KIT_REDIS_PREFIX", f"nkt{os.getpid()}")
CHANNEL_LAYERS = {
    "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"},
    "redis": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # A prefix per process keeps parallel runs (tox envs, e2e servers) apart in one Redis.
        "CONFIG": {
            # NOTIFY_KIT_TEST_PLAIN_REDIS: a bare URL, redis-py's defaults (the fault tests' idle timeout).
            "hosts": [REDIS_URL if os.environ.get("NOTIFY_KIT_TEST_PLAIN_REDIS") else redis_host(REDIS_URL)],
            "prefix": _REDIS_PREFIX,
            # channels-redis drops messages beyond a channel's capacity (default 100) silently;
            # the load tests push hundreds of updates per socket, as docs/deployment.md advises.
            "capacity": 1000,
        },
    },
    # Redis pub/sub: no queue, no capacity; a prefix of its own keeps its channels apart from the above.
    "redis_pubsub": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [redis_host(REDIS_URL)], "prefix": f"{_REDIS_PREFIX}ps"},
    },
}
# The same two layers with a group_discard that always fails (tests of forwarding after a failed leave).
CHANNEL_LAYERS["memory_nodiscard"] = {"BACKEND": "tests.testapp.layers.DiscardFailsInMemoryChannelLayer"}
CHANNEL_LAYERS["redis_nodiscard"] = {
    **CHANNEL_LAYERS["redis"],
    "BACKEND": "tests.testapp.layers.DiscardFailsRedisChannelLayer",
}
NOTIFY_KIT = {
    "NOT_FOUND_MIN_SECONDS": 0,
    # Server and writer processes of the e2e tests use Redis; the test process picks per test.
    "CHANNEL_LAYER": os.environ.get("NOTIFY_KIT_TEST_LAYER", "default"),
}
ASGI_APPLICATION = "tests.asgi.application"
# Note and Comment decide access with queries on purpose (shares, the parent note), and Note,
# Comment and Memo keep object-only policies without audiences: the suite covers those paths.
# tests/test_checks.py calls these checks directly.
SILENCED_SYSTEM_CHECKS = ["notify_kit.W003", "notify_kit.W005"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"notify_kit": {"handlers": ["console"], "level": "INFO"}},
}
