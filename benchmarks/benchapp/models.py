"""One model per contender, with identical fields and tracker, so that saving contender X's model
runs only X's machinery (a model can have only one set of signal receivers that matter here).

* ``PlainItem``: no tracker, no receivers: "the same save with no notifications at all".
* ``TrackedItem``: the same plus the FieldTracker every contender model carries (its own cost).
* ``NotifyItem``: notify_kit's LiveModelMixin.
* ``DCRFItem``: observed by DCRF's ObserverModelInstanceMixin (consumers.py connects it).
* ``RestLiveItem``: registered with django-rest-live's RealtimeRouter (routing.py connects it).
* ``BareItem``: nothing attached; the bare writer sends by hand (``group_send`` awaited in a loop).

The collections scenario (issue 10) has its own models, rows that belong to one user each, with
the same fields for the three systems that can follow "the rows this user may see":

* ``NotifyOwnedItem``: declares audiences (``user:<owner_id>``), so notify_kit decides from the
  event alone who sees a row; its snapshot reads only the subscriber's rows.
* ``DCRFOwnedItem``: observed by a DCRF ``model_observer`` with one group per owner (consumers.py).
* ``RestLiveOwnedItem``: a django-rest-live ``list`` subscription to a per-user ``get_queryset``
  (routing.py).
"""

from django.conf import settings
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


# -- the collections scenario (issue 10) ---------------------------------------------------------

OWNED_TRACKED = ["title", "value", "owner"]


class OwnedFields(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=100)
    value = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class NotifyOwnedItem(LiveModelMixin, OwnedFields):
    tracker = FieldTracker(fields=OWNED_TRACKED)
    live_serializer = "benchapp.serializers.NotifyOwnedItemSerializer"

    def live_audiences(self):
        # Computed from the row's own field: no query in the writer, none at delivery.
        return [f"user:{self.owner_id}"]

    @classmethod
    def live_audiences_of(cls, user):
        return [f"user:{user.pk}"] if user.is_authenticated else []

    @classmethod
    def live_snapshot_queryset(cls, user):
        # The user's 10 rows by index, not a scan of all 10,000 and a filter in Python.
        return cls.objects.filter(owner_id=user.pk)


class DCRFOwnedItem(OwnedFields):
    tracker = FieldTracker(fields=OWNED_TRACKED)


class RestLiveOwnedItem(OwnedFields):
    tracker = FieldTracker(fields=OWNED_TRACKED)


COLLECTION_MODELS = {
    "notify_kit": NotifyOwnedItem,
    "dcrf": DCRFOwnedItem,
    "rest_live": RestLiveOwnedItem,
}
