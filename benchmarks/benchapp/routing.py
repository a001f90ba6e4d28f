"""WebSocket routes of the four contenders, each on its own path.

Importing this module also connects django-rest-live's signal receivers to RestLiveItem
(``RealtimeRouter.register`` does that), and DCRF's to DCRFItem (through consumers.py). A process
that saves those models must import it, or they notify nobody: the writer does.

The collections scenario adds a second django-rest-live view (a ``list`` subscription to the
user's own rows, through ``get_queryset``) on the same router, and DCRF's per-owner model
observer on its own path; notify_kit serves collections on its one path.
"""

from django.urls import path
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.viewsets import ModelViewSet

from notify_kit.routing import websocket_urlpatterns as notify_kit_urlpatterns

from .compat import install_channels_http_alias

install_channels_http_alias()

from rest_live.mixins import RealtimeMixin
from rest_live.routers import RealtimeRouter

from .consumers import BareConsumer, DCRFItemConsumer, DCRFOwnedConsumer
from .models import RestLiveItem, RestLiveOwnedItem
from .serializers import RestLiveItemSerializer, RestLiveOwnedItemSerializer


class RestLiveItemViewSet(ModelViewSet, RealtimeMixin):
    """django-rest-live's documented usage: a DRF view with RealtimeMixin, registered on a router."""

    queryset = RestLiveItem.objects.all()
    serializer_class = RestLiveItemSerializer


class RestLiveOwnedItemViewSet(ModelViewSet, RealtimeMixin):
    """django-rest-live's per-user list: ``get_queryset`` narrowed to the request's user.

    django-rest-live runs this once per subscriber for every saved row (it decides visibility by
    querying), which is the cost the collections scenario measures. SessionAuthentication reads the
    user that Channels' AuthMiddlewareStack put on the scope (no query of its own).
    """

    queryset = RestLiveOwnedItem.objects.none()  # django-rest-live finds the model here
    serializer_class = RestLiveOwnedItemSerializer
    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        return RestLiveOwnedItem.objects.filter(owner=self.request.user)


rest_live_router = RealtimeRouter()
rest_live_router.register(RestLiveItemViewSet)
rest_live_router.register(RestLiveOwnedItemViewSet)

PATHS = {
    "notify_kit": "/ws/notifications/",
    "dcrf": "/ws/dcrf/",
    "rest_live": "/ws/rest-live/",
    "bare": "/ws/bare/",
    "dcrf_owned": "/ws/dcrf-owned/",
}

websocket_urlpatterns = [
    *notify_kit_urlpatterns,  # ws/notifications/ -> NotificationConsumer
    path("ws/dcrf/", DCRFItemConsumer.as_asgi()),
    path("ws/rest-live/", rest_live_router.as_consumer().as_asgi()),
    path("ws/bare/", BareConsumer.as_asgi()),
    path("ws/dcrf-owned/", DCRFOwnedConsumer.as_asgi()),
]
