"""Receivers that keep the pages' lists current, wherever a change is made (API, admin, shell).

- A note is created, or changes owner: the (new) owner's inbox is bumped.
- A note is shared or unshared: the inboxes of the owner and of those users are bumped, and on
  removal ``notify_access_changed()`` makes the removed users' pages receive ``revoked``.
"""

from django.db.models.signals import m2m_changed, post_save
from django.dispatch import receiver

from .models import Inbox, Note


@receiver(post_save, sender=Note, dispatch_uid="notes.note_saved")
def note_saved(sender, instance, created, raw, **kwargs):
    if raw:
        return
    # The tracker still holds the old values during post_save.
    if created or instance.tracker.has_changed("owner"):
        Inbox.bump([instance.owner_id])


@receiver(m2m_changed, sender=Note.shared_with.through, dispatch_uid="notes.shares_changed")
def shares_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if action == "pre_clear":
        # post_clear gets no pk_set: remember who is about to lose access.
        instance._notes_cleared = (
            list(instance.shared_notes.all()) if reverse else list(instance.shared_with.values_list("pk", flat=True))
        )
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    cleared = instance.__dict__.pop("_notes_cleared", []) if action == "post_clear" else []
    if reverse:  # user.shared_notes.add(note, ...): instance is the user, pk_set holds notes
        notes = cleared if action == "post_clear" else list(Note.objects.filter(pk__in=pk_set))
        users = {instance.pk}
    else:
        notes = [instance]
        users = set(cleared if action == "post_clear" else pk_set)
    if action != "post_add":
        for note in notes:
            note.notify_access_changed()
    Inbox.bump(users | {note.owner_id for note in notes})
