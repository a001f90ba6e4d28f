"""The hand-written consumers: DCRF's documented instance observer, DCRF's model observer with
per-owner groups (the collections scenario), and bare Channels.

Importing this module connects DCRF's observers to DCRFItem and DCRFOwnedItem (DCRF binds its
signal receivers when the consumer class is created), so the writer imports it too.
"""

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from djangochannelsrestframework.decorators import action
from djangochannelsrestframework.generics import GenericAsyncAPIConsumer
from djangochannelsrestframework.observer import model_observer
from djangochannelsrestframework.observer.generics import ObserverModelInstanceMixin

from .models import DCRFItem, DCRFOwnedItem
from .serializers import DCRFItemSerializer, DCRFOwnedItemSerializer


class DCRFItemConsumer(ObserverModelInstanceMixin, GenericAsyncAPIConsumer):
    """DCRF's documented usage: ``{"action": "subscribe_instance", "pk": 1, "request_id": 7}``."""

    queryset = DCRFItem.objects.all()
    serializer_class = DCRFItemSerializer


class DCRFOwnedConsumer(GenericAsyncAPIConsumer):
    """DCRF's documented filtered observer: one group per owner, chosen from the instance at write
    time (``groups_for_signal``) and from the connection's user at subscribe time
    (``groups_for_consumer``). DCRF remembers each instance's groups from when it was loaded, so a
    row whose owner changes is sent as ``delete`` to the old owner's group and ``create`` to the
    new one. The payload is serialized once, in the writer. Client frame:
    ``{"action": "subscribe_owned", "request_id": 1}``; events ``{"action": "create"|"update"|"delete",
    "data": {...}, "request_id": 1}``.
    """

    queryset = DCRFOwnedItem.objects.all()
    serializer_class = DCRFOwnedItemSerializer

    @model_observer(DCRFOwnedItem, serializer_class=DCRFOwnedItemSerializer)
    async def owned_items(self, message, observer=None, action=None, subscribing_request_ids=(), **kwargs):
        for request_id in subscribing_request_ids:
            await self.reply(action=action, data=message, request_id=request_id)

    @owned_items.groups_for_signal
    def owned_items(self, instance, **kwargs):
        yield f"owner__{instance.owner_id}"

    @owned_items.groups_for_consumer
    def owned_items(self, user=None, **kwargs):
        if user is not None and user.is_authenticated:
            yield f"owner__{user.pk}"

    @action()
    async def subscribe_owned(self, request_id, **kwargs):
        await self.owned_items.subscribe(request_id=request_id, user=self.scope["user"])
        return None, 201


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
