from rest_framework import permissions


class IsOwnerOrCollaborator(permissions.BasePermission):
    """Everyone a note is visible to may edit it; only its owner may delete or share it."""

    owner_actions = ("destroy", "share", "unshare")

    def has_object_permission(self, request, view, obj):
        return view.action not in self.owner_actions or obj.owner_id == request.user.pk
