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


class SharedNote(LiveModelMixin, models.Model):
    """Issue 10's model, exactly: audiences per user, shares by ManyToMany, a filter on archived."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="owned_shared_notes")
    title = models.CharField(max_length=100)
    archived = models.BooleanField(default=False)
    shared_with = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="visible_shared_notes")
    tracker = FieldTracker(fields=["title", "archived", "owner"])
    live_serializer = "tests.testapp.serializers.SharedNoteSerializer"
    live_filter_fields = ("archived",)

    def live_audiences(self):
        """Who may see this row, as audience keys. Runs once per write, in the writer (may query)."""
        return [f"user:{self.owner_id}", *(f"user:{pk}" for pk in self.shared_with.values_list("pk", flat=True))]

    @classmethod
    def live_audiences_of(cls, user):
        """The keys a user holds. Runs once per subscription, on the database thread."""
        return [f"user:{user.pk}"] if user.is_authenticated else []


class Profile(LiveModelMixin, models.Model):
    """Per-audience payloads: its own user sees every field, other signed-in users the name only."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    display_name = models.CharField(max_length=100)
    email = models.CharField(max_length=100, blank=True)
    live_serializer = "tests.testapp.serializers.ProfileSerializer"

    def live_audiences(self):
        return {
            f"user:{self.user_id}": None,  # None: live_serializer, every field
            "signed-in": "tests.testapp.serializers.PublicProfileSerializer",
        }

    @classmethod
    def live_audiences_of(cls, user):
        return [f"user:{user.pk}", "signed-in"] if user.is_authenticated else []


class School(models.Model):
    name = models.CharField(max_length=100)


class Classroom(LiveModelMixin, models.Model):
    """DCRF's seed case: every classroom of one school, chosen at subscribe time by a filter."""

    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="classrooms")
    name = models.CharField(max_length=100)
    live_filter_fields = ("school",)
    live_serializer = "tests.testapp.serializers.ClassroomSerializer"

    def live_audiences(self):
        return [f"school:{self.school_id}"]

    @classmethod
    def live_audiences_of(cls, user):
        """Staff of a school: the schools a user teaches at (here: all of them for staff)."""
        if not user.is_authenticated:
            return []
        return [f"school:{pk}" for pk in School.objects.values_list("pk", flat=True)] if user.is_staff else []
