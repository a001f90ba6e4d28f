"""The same DRF ModelSerializer (id, title, value) for every contender's payload."""

from rest_framework import serializers

from notify_kit.serializers import LiveSerializerMixin

from .models import BareItem, DCRFItem, NotifyItem, RestLiveItem

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
