"""The page and the notes API. Ids in URLs and bodies are HashIDs, never primary keys."""

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from rest_framework import generics, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from .models import Note, Profile
from .permissions import IsOwnerOrCollaborator
from .serializers import NoteSerializer, ProfileSerializer, ShareSerializer


@login_required
def index(request):
    """The one page: my notes, the notes shared with me and the people, kept live by notify-kit.js.

    The lists come from the page's collection subscriptions (their snapshots, then their events),
    not from this view: what the page shows and what it is told about are one and the same.
    """
    config = {
        "user": request.user.username,
        "api": reverse("note-list"),
        "profileApi": reverse("my-profile"),
        "profile": Profile.for_user(request.user).hashid,  # which row of the people is mine
        "websocket": "/ws/notifications/",
        "csrfToken": get_token(request),
    }
    others = get_user_model().objects.filter(is_active=True).exclude(pk=request.user.pk).order_by("username")
    context = {"config": config, "usernames": others.values_list("username", flat=True)[:100]}
    return render(request, "notes/index.html", context)


class MyProfileView(generics.RetrieveUpdateAPIView):
    """The signed-in user's own profile (GET, PATCH); other users' profiles are only seen live."""

    serializer_class = ProfileSerializer
    permission_classes = [IsAuthenticated]

    def get_object(self):
        return Profile.for_user(self.request.user)


class NoteViewSet(viewsets.ModelViewSet):
    """My notes and the notes shared with me; ``share``/``unshare`` take ``{"username": ...}``."""

    serializer_class = NoteSerializer
    permission_classes = [IsAuthenticated, IsOwnerOrCollaborator]
    lookup_value_regex = "[0-9A-Za-z]+"

    @staticmethod
    def queryset_for(user):
        return Note.objects.visible_to(user).select_related("owner").prefetch_related("shared_with")

    def get_queryset(self):
        return self.queryset_for(self.request.user)

    def get_object(self):
        try:
            note = Note.get_by_hashid(self.kwargs["pk"], queryset=self.get_queryset())
        except Note.DoesNotExist:
            raise Http404("No such note.") from None
        self.check_object_permissions(self.request, note)
        return note

    def perform_create(self, serializer):
        serializer.save(owner=self.request.user)

    @action(detail=True, methods=["post"])
    def share(self, request, pk=None):
        """Share the note with a user."""
        note = self.get_object()
        user = self._user_from(request, note)
        note.shared_with.add(user)
        return Response(self.get_serializer(note).data)

    @action(detail=True, methods=["post"])
    def unshare(self, request, pk=None):
        """Stop sharing the note with a user; it leaves their pages (``deleted`` in their collection)."""
        note = self.get_object()
        user = self._user_from(request, note)
        # notify_kit follows the many-to-many itself: a removal made in the admin or the shell
        # takes the note off that user's pages the same way.
        note.shared_with.remove(user)
        return Response(self.get_serializer(note).data)

    def _user_from(self, request, note):
        serializer = ShareSerializer(data=request.data, context={"note": note})
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data["username"]
