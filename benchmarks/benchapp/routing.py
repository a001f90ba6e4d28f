"""WebSocket routes of the four contenders, each on its own path.

Importing this module also connects django-rest-live's signal receivers to RestLiveItem
(``RealtimeRouter.register`` does that), and DCRF's to DCRFItem (through consumers.py). A process
that saves those models must import it, or they notify nobody: the writer does.
"""

from django.urls import path
from rest_framework.viewsets import ModelViewSet

from notify_kit.routing import websocket_urlpatterns as notify_kit_urlpatterns

from .compat import install_channels_http_alias

install_channels_http_alias()

from rest_live.mixins import RealtimeMixin
from rest_live.routers import RealtimeRouter

from .consumers import BareConsumer, DCRFItemConsumer
from .models import RestLiveItem
from .serializers import RestLiveItemSerializer


class RestLiveItemViewSet(ModelViewSet, RealtimeMixin):
    """django-rest-live's documented usage: a DRF view with RealtimeMixin, registered on a router."""

    queryset = RestLiveItem.objects.all()
    serializer_class = RestLiveItemSerializer


rest_live_router = RealtimeRouter()
rest_live_router.register(RestLiveItemViewSet)

PATHS = {
    "notify_kit": "/ws/notifications/",
    "dcrf": "/ws/dcrf/",
    "rest_live": "/ws/rest-live/",
    "bare": "/ws/bare/",
}

websocket_urlpatterns = [
    *notify_kit_urlpatterns,  # ws/notifications/ -> NotificationConsumer
    path("ws/dcrf/", DCRFItemConsumer.as_asgi()),
    path("ws/rest-live/", rest_live_router.as_consumer().as_asgi()),
    path("ws/bare/", BareConsumer.as_asgi()),
]
