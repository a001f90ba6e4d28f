"""One model per contender, with identical fields and tracker, so that saving contender X's model
runs only X's machinery (a model can have only one set of signal receivers that matter here).

* ``PlainItem``: no tracker, no receivers: "the same save with no notifications at all".
* ``TrackedItem``: the same plus the FieldTracker every contender model carries (its own cost).
* ``NotifyItem``: notify_kit's LiveModelMixin.
* ``DCRFItem``: observed by DCRF's ObserverModelInstanceMixin (consumers.py connects it).
* ``RestLiveItem``: registered with django-rest-live's RealtimeRouter (routing.py connects it).
* ``BareItem``: nothing attached; the bare writer sends by hand (``group_send`` awaited in a loop).
"""

from django.db import models
from model_utils import FieldTracker

from notify_kit.models import LiveModelMixin

TRACKED = ["title", "value"]


class ItemFields(models.Model):
    title = models.CharField(max_length=100)
    value = models.BigIntegerField(default=0)
    views = models.PositiveIntegerField(default=0)  # not tracked

    class Meta:
        abstract = True


class PlainItem(ItemFields):
    pass


class TrackedItem(ItemFields):
    tracker = FieldTracker(fields=TRACKED)


class NotifyItem(LiveModelMixin, ItemFields):
    tracker = FieldTracker(fields=TRACKED)
    live_serializer = "benchapp.serializers.NotifyItemSerializer"

    def can_subscribe(self, user):
        # Every contender lets anyone subscribe (DCRF and django-rest-live use AllowAny): the
        # benchmark measures delivery, not permission checks.
        return True


class DCRFItem(ItemFields):
    tracker = FieldTracker(fields=TRACKED)


class RestLiveItem(ItemFields):
    tracker = FieldTracker(fields=TRACKED)


class BareItem(ItemFields):
    tracker = FieldTracker(fields=TRACKED)


CONTENDER_MODELS = {
    "plain": PlainItem,
    "tracked": TrackedItem,
    "notify_kit": NotifyItem,
    "dcrf": DCRFItem,
    "rest_live": RestLiveItem,
    "bare": BareItem,
}
