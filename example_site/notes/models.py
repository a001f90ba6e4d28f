"""The demo's live models: Note, whose audiences are its owner and the users it is shared with,
and Profile, whose own user sees every field and other signed-in users the display name only.

Both say who may see a row with audience keys (notify_kit's ``live_audiences``): a page follows
every note it may see with one collection subscription, and a note shared with a user appears
on their pages as it is shared and disappears when the share is removed, with no code here:
notify_kit reads the keys before and after each write, ``m2m_changed`` included.
"""

from django.conf import settings
from django.db import models
from model_utils import FieldTracker

from notify_kit.models import LiveModelMixin
from notify_kit.querysets import LiveQuerySet


def _keys_of(user):
    """The audience key a signed-in, active user holds for both models: their own."""
    if not user.is_authenticated or not user.is_active:
        return []
    return [f"user:{user.pk}"]


class NoteQuerySet(LiveQuerySet):
    """LiveQuerySet first: this queryset's update() and bulk_update() notify too."""

    def visible_to(self, user):
        """Notes ``user`` owns or that are shared with them: the same rule as the audiences."""
        if not _keys_of(user):
            return self.none()
        return self.filter(models.Q(owner=user) | models.Q(shared_with=user)).distinct()


class Note(LiveModelMixin, models.Model):
    """A note owned by one user and shared with others."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notes")
    title = models.CharField(max_length=100)
    body = models.TextField(blank=True)
    shared_with = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="shared_notes")
    created = models.DateTimeField(auto_now_add=True)

    # Declared on the concrete model (a tracker on an abstract base would not be attached).
    tracker = FieldTracker(fields=["title", "body", "owner"])
    live_serializer = "notes.serializers.NoteSerializer"
    # Only a new owner changes the row's audiences (shares are the m2m, which notify_kit follows):
    # a save that changes nothing else does not read the shares before the write.
    live_access_fields = ("owner",)

    objects = NoteQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-pk"]

    def __str__(self):
        return self.title

    def live_audiences(self):
        """The owner and every user the note is shared with. Runs once per write, in the writer."""
        # values_list, not .all(): a prefetch cache (the API's queryset has one) may predate the
        # write, and the keys decide who receives the note.
        shared = self.shared_with.values_list("pk", flat=True)
        return [f"user:{self.owner_id}", *(f"user:{pk}" for pk in shared)]

    @classmethod
    def live_audiences_of(cls, user):
        """A user holds their own key. Runs once per subscription, on the database thread."""
        return _keys_of(user)

    @classmethod
    def live_snapshot_queryset(cls, user):
        """A snapshot scans the user's notes only (and loads what the serializer reads in two queries)."""
        return cls.objects.visible_to(user).select_related("owner").prefetch_related("shared_with")


class Profile(LiveModelMixin, models.Model):
    """A user's card: their own user sees every field, other signed-in users the display name only."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    display_name = models.CharField(max_length=100)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=30, blank=True)

    # Only the display name is tracked: an update frame names the fields that changed, and every
    # audience receives that list, so a tracked private field would tell other users *that* it
    # changed (not its value). Private fields reach their own user's other pages on the next snapshot.
    tracker = FieldTracker(fields=["display_name"])
    live_serializer = "notes.serializers.ProfileSerializer"
    live_access_fields = ("user",)

    class Meta:
        ordering = ["display_name", "pk"]

    def __str__(self):
        return self.display_name

    def live_audiences(self):
        """Per-audience payloads: the first key a subscriber holds, in this order, picks their data."""
        return {
            f"user:{self.user_id}": None,  # None: live_serializer, every field
            "signed-in": "notes.serializers.PublicProfileSerializer",
        }

    @classmethod
    def live_audiences_of(cls, user):
        """Their own key, and the key every signed-in user holds."""
        keys = _keys_of(user)
        return [*keys, "signed-in"] if keys else []

    @classmethod
    def for_user(cls, user):
        """The user's profile, created on first use with their username as display name."""
        return cls.objects.get_or_create(user=user, defaults={"display_name": user.get_username()})[0]
