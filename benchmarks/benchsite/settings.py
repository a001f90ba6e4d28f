"""Settings of the benchmark project: one database, one Redis channel layer, four contenders.

Every process of a run (the uvicorn server, the writer, the set-up commands) reads the same
environment variables, set by run.py:

* ``BENCH_DB``: ``postgres`` (default; the PostgreSQL at 127.0.0.1:5432, database
  ``BENCH_PG_NAME``) or ``sqlite`` (a file in benchmarks/results/, WAL mode).
* ``BENCH_REDIS_PREFIX``: a prefix per run, so that runs never see each other's groups.
"""

import os
from pathlib import Path

from notify_kit.conf import redis_host

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "notify-kit-benchmark-not-secret"
DEBUG = False  # DEBUG=True would keep every query in memory
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "rest_framework",
    "channels",
    "notify_kit",
    "rest_live",
    "benchapp",
]
MIDDLEWARE = []
ROOT_URLCONF = "benchsite.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ASGI_APPLICATION = "benchsite.asgi.application"

if os.environ.get("BENCH_DB", "postgres") == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("BENCH_SQLITE_PATH", str(BASE_DIR / "results" / "bench.sqlite3")),
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", "timeout": 30},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("BENCH_PG_PORT", "5432"),
            "NAME": os.environ.get("BENCH_PG_NAME", "notify_kit_bench"),
            "USER": os.environ.get("BENCH_PG_USER", "postgres"),
            "PASSWORD": os.environ.get("BENCH_PG_PASSWORD", ""),
            # Persistent connections, as a production server would keep them.
            "CONN_MAX_AGE": None,
        }
    }

# The one channel layer of every contender: channels-redis with the host options notify_kit
# documents for redis-py 6+ (socket_timeout above the 5 s blocking receive, a large pool).
# Capacity and expiry stay at channels-redis's defaults (100 messages, 60 s) for everyone.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [redis_host(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))],
            "prefix": os.environ.get("BENCH_REDIS_PREFIX", "nkbench"),
        },
    }
}

if os.environ.get("BENCH_LAYER_CAPACITY"):
    # Experiments only (run.py --layer-capacity): every contender gets the same larger capacity.
    CHANNEL_LAYERS["default"]["CONFIG"]["capacity"] = int(os.environ["BENCH_LAYER_CAPACITY"])

NOTIFY_KIT = {"CHANNEL_LAYER": "default"}
REST_FRAMEWORK = {
    # Same for every contender that uses DRF: no authentication classes to run per request.
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "UNAUTHENTICATED_USER": None,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "notify_kit": {"handlers": ["console"], "level": "INFO"},
        # channels-redis logs "N of M channels over capacity" at INFO: the silent drops.
        "channels_redis": {"handlers": ["console"], "level": "INFO"},
    },
}
