from django.conf import settings
from django.db import models
from model_utils import FieldTracker

from notify_kit.models import LiveModelMixin


class Note(LiveModelMixin, models.Model):
    """The model of the README: tracked title and body, untracked views, owner-only access."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notes")
    title = models.CharField(max_length=100)
    body = models.TextField(blank=True)
    views = models.PositiveIntegerField(default=0)
    shared_with = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="shared_notes")

    tracker = FieldTracker(fields=["title", "body", "owner"])
    live_serializer = "tests.testapp.serializers.NoteSerializer"
    live_access_fields = ("owner",)

    def can_subscribe(self, user):
        if not user.is_authenticated:
            return False
        return self.owner_id == user.pk or self.shared_with.filter(pk=user.pk).exists()


class Document(LiveModelMixin, models.Model):
    """No tracker, no serializer, no can_subscribe: the mixin's defaults throughout."""

    name = models.CharField(max_length=50)
    size = models.IntegerField(default=0)


class Comment(LiveModelMixin, models.Model):
    """A live model with a foreign key to another live model."""

    note = models.ForeignKey(Note, on_delete=models.CASCADE, related_name="comments")
    text = models.CharField(max_length=200)
    tracker = FieldTracker(fields=["text"])

    def can_subscribe(self, user):
        return self.note.can_subscribe(user)


class Plain(models.Model):
    """Not live: subscribing to it must look exactly like subscribing to nothing."""

    name = models.CharField(max_length=50)


class Memo(LiveModelMixin, models.Model):
    """The README's model, exactly: access by owner_id, a tracker that does not follow the owner."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memos")
    title = models.CharField(max_length=100)
    body = models.TextField(blank=True)
    views = models.PositiveIntegerField(default=0)
    tracker = FieldTracker(fields=["title", "body"])
    live_serializer = "tests.testapp.serializers.MemoSerializer"

    def can_subscribe(self, user):
        return user.is_authenticated and self.owner_id == user.pk
