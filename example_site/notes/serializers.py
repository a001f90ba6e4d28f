"""The API's serializers, which are also the ``data`` of the live events (one HashID for both).

Profile has two: ``ProfileSerializer`` for its own user, ``PublicProfileSerializer`` (the display
name only) for everyone else; ``Profile.live_audiences`` says who gets which.
"""

from django.contrib.auth import get_user_model
from rest_framework import serializers

from notify_kit.serializers import LiveSerializerMixin

from .models import Note, Profile


class NoteSerializer(LiveSerializerMixin, serializers.ModelSerializer):
    """A note; ``id`` is its HashID, the one a page subscribes with."""

    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    shared_with = serializers.SerializerMethodField()

    class Meta:
        model = Note
        fields = ["id", "title", "body", "owner", "shared_with", "created"]
        read_only_fields = ["created"]

    def get_shared_with(self, note) -> list[str]:
        return sorted(user.username for user in note.shared_with.all())


class ShareSerializer(serializers.Serializer):
    """``{"username": ...}``: whom to share a note with (or stop sharing it with)."""

    username = serializers.CharField(max_length=150)

    def validate_username(self, value):
        try:
            user = get_user_model().objects.get(username=value, is_active=True)
        except get_user_model().DoesNotExist:
            raise serializers.ValidationError(f"No user named {value!r}.") from None
        if user.pk == self.context["note"].owner_id:
            raise serializers.ValidationError("That is the owner of the note.")
        return user


class ProfileSerializer(LiveSerializerMixin, serializers.ModelSerializer):
    """Every field of a profile: what its own user sees (and edits through the API)."""

    class Meta:
        model = Profile
        fields = ["id", "display_name", "email", "phone"]


class PublicProfileSerializer(LiveSerializerMixin, serializers.ModelSerializer):
    """What other signed-in users see of a profile: its display name."""

    class Meta:
        model = Profile
        fields = ["id", "display_name"]
