"""The same DRF ModelSerializer (id, title, value) for every contender's payload."""

from rest_framework import serializers

from notify_kit.serializers import LiveSerializerMixin

from .models import BareItem, DCRFItem, DCRFOwnedItem, NotifyItem, NotifyOwnedItem, RestLiveItem, RestLiveOwnedItem

FIELDS = ["id", "title", "value"]


class NotifyItemSerializer(LiveSerializerMixin, serializers.ModelSerializer):
    class Meta:
        model = NotifyItem
        fields = FIELDS


class DCRFItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = DCRFItem
        fields = FIELDS


class RestLiveItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = RestLiveItem
        fields = FIELDS


class BareItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = BareItem
        fields = FIELDS


# The collections scenario: the same three fields; the owner is not in the payload (who may see a
# row is the server's business, and notify_kit keeps audience keys off the wire).


class NotifyOwnedItemSerializer(LiveSerializerMixin, serializers.ModelSerializer):
    class Meta:
        model = NotifyOwnedItem
        fields = FIELDS


class DCRFOwnedItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = DCRFOwnedItem
        fields = FIELDS


class RestLiveOwnedItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = RestLiveOwnedItem
        fields = FIELDS
