"""The one ASGI application of the benchmark: every contender on its own path, same middleware.

Each path follows its project's documented set-up; all four sit behind the same
AllowedHostsOriginValidator and AuthMiddlewareStack, so per-connection middleware costs the same.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
django_asgi_app = get_asgi_application()  # before importing anything that imports models

if os.environ.get("BENCH_COUNT_SQL") == "1":  # the collections scenario: SQL per delivery
    from benchapp import sqlcount

    sqlcount.install()

from benchapp.routing import websocket_urlpatterns
from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
