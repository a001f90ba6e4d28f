from rest_framework import serializers

from notify_kit.serializers import LiveSerializerMixin

from .models import Comment, Memo, Note


class NoteSerializer(LiveSerializerMixin, serializers.ModelSerializer):
    class Meta:
        model = Note
        fields = ["id", "title", "body"]


class CommentSerializer(LiveSerializerMixin, serializers.ModelSerializer):
    class Meta:
        model = Comment
        fields = ["id", "note", "text"]


class MemoSerializer(LiveSerializerMixin, serializers.ModelSerializer):
    class Meta:
        model = Memo
        fields = ["id", "title", "body"]
