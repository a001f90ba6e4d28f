"""The hand-written consumers: DCRF's documented instance observer, and bare Channels.

Importing this module connects DCRF's model observer to DCRFItem (DCRF binds its signal
receivers when the consumer class is created), so the writer imports it too.
"""

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from djangochannelsrestframework.generics import GenericAsyncAPIConsumer
from djangochannelsrestframework.observer.generics import ObserverModelInstanceMixin

from .models import DCRFItem
from .serializers import DCRFItemSerializer


class DCRFItemConsumer(ObserverModelInstanceMixin, GenericAsyncAPIConsumer):
    """DCRF's documented usage: ``{"action": "subscribe_instance", "pk": 1, "request_id": 7}``."""

    queryset = DCRFItem.objects.all()
    serializer_class = DCRFItemSerializer


def bare_group(pk: int) -> str:
    return f"bare.item.{pk}"


class BareConsumer(AsyncJsonWebsocketConsumer):
    """The floor: join a group on request, forward the writer's pre-encoded frame as it is.

    A plain Channels consumer: it keeps Channels' ``aclose_old_connections()`` hop before every
    handler (the default behaviour), and does no permission check or database lookup on subscribe.
    Client frames: ``{"id": <pk>, "request_id": 7}``; answer ``{"type": "subscribed", ...}``.
    """

    async def connect(self):
        self.joined = set()
        await self.accept()

    async def receive_json(self, content, **kwargs):
        group = bare_group(int(content["id"]))
        if group not in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.add(group)
        await self.send_json({"type": "subscribed", "id": content["id"], "request_id": content.get("request_id")})

    async def bare_event(self, event):
        await self.send(text_data=event["text"])

    async def disconnect(self, code):
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)
