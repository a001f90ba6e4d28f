"""URL routing for the one WebSocket endpoint, ``ws/notifications/``.

Wire it in your project's ``asgi.py``; the Origin check and the session authentication are part
of the documented setup, not optional::

    import os
    from django.core.asgi import get_asgi_application

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    django_asgi_app = get_asgi_application()  # before importing anything that imports models

    from channels.auth import AuthMiddlewareStack
    from channels.routing import ProtocolTypeRouter, URLRouter
    from channels.security.websocket import AllowedHostsOriginValidator
    from notify_kit.routing import websocket_urlpatterns

    application = ProtocolTypeRouter({
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    })
"""

from __future__ import annotations

from django.urls import path

from .consumers import NotificationConsumer

websocket_urlpatterns = [
    # django-stubs types path() for HTTP views only; channels' URLRouter routes ASGI apps with it.
    path("ws/notifications/", NotificationConsumer.as_asgi(), name="notify_kit"),  # type: ignore[arg-type]
]
