"""Settings of the notify_kit example site: a development setup that needs no other server.

SQLite and the in-memory channel layer by default, so ``manage.py demo`` is all it takes. Set
REDIS_URL (e.g. ``redis://127.0.0.1:6379/0``) to use channels-redis instead: then saves made in
other processes (``manage.py shell``, a worker) reach the browsers too. EXAMPLE_DB_PATH moves
the SQLite file (the tests use a temporary one).
"""

import os
from pathlib import Path

from notify_kit.conf import redis_host

BASE_DIR = Path(__file__).resolve().parent.parent

# A development key for a local demo; set EXAMPLE_SECRET_KEY anywhere else.
SECRET_KEY = os.environ.get("EXAMPLE_SECRET_KEY", "django-insecure-notify-kit-example-site-only")
DEBUG = os.environ.get("EXAMPLE_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "daphne",  # first: its runserver (ASGI, WebSockets included) replaces Django's
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "channels",
    "notify_kit",
    "notes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # The page's API calls send X-Notify-Socket-ID: their changes skip the page's own socket.
    "notify_kit.middleware.SocketIdMiddleware",
]

ROOT_URLCONF = "example_site.urls"
ASGI_APPLICATION = "example_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB_PATH") or BASE_DIR / "db.sqlite3",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL")
if REDIS_URL:
    # redis_host() carries the socket options channels-redis needs with redis-py 6 and later.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # capacity: channels-redis drops messages to a socket with more waiting (notify_kit.W002).
            "CONFIG": {"hosts": [redis_host(REDIS_URL)], "capacity": 1000},
        }
    }
else:
    # One process only: saves made in the server (pages, API, admin) notify; other processes do not.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "index"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"notify_kit": {"handlers": ["console"], "level": "INFO"}},
}
