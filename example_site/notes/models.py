"""The demo's two live models: Note, and Inbox, which tells a user's pages that their list changed.

notify_kit sends ``updated``/``deleted`` for objects a page already subscribed to; it does not
announce new objects. A note created by someone else, or newly shared with me, is therefore
announced through my Inbox: its ``revision`` goes up (see signals.py) and my open pages reload
the list.
"""

from django.conf import settings
from django.db import models
from model_utils import FieldTracker

from notify_kit.models import LiveModelMixin


class NoteQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Notes ``user`` owns or that are shared with them."""
        if not user.is_authenticated:
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
    # A new owner can change who may subscribe: subscribers are checked again on such an update.
    live_access_fields = ("owner",)

    objects = NoteQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-pk"]

    def __str__(self):
        return self.title

    def can_subscribe(self, user):
        """The owner and the users it is shared with."""
        if not user.is_authenticated or not user.is_active:
            return False
        return self.owner_id == user.pk or self.shared_with.filter(pk=user.pk).exists()


class Inbox(LiveModelMixin, models.Model):
    """One per user; ``revision`` goes up whenever the set of notes the user sees changes."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="inbox")
    revision = models.PositiveIntegerField(default=0)

    tracker = FieldTracker(fields=["revision"])

    class Meta:
        verbose_name_plural = "inboxes"

    def __str__(self):
        return f"inbox of {self.user}"

    def can_subscribe(self, user):
        """Only its user."""
        return user.is_authenticated and self.user_id == user.pk

    @classmethod
    def for_user(cls, user):
        """The user's inbox, created on first use."""
        return cls.objects.get_or_create(user=user)[0]

    @classmethod
    def bump(cls, user_ids):
        """Tell the pages of these users that their list of notes changed."""
        for user_id in set(user_ids):
            inbox = cls.objects.get_or_create(user_id=user_id)[0]
            inbox.revision += 1
            inbox.save(update_fields=["revision"])
