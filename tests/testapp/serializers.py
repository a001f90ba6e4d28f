from rest_framework import serializers

from notify_kit.serializers import LiveSerializerMixin

from .models import Classroom, Comment, Memo, Note, Profile, SharedNote


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


class SharedNoteSerializer(LiveSerializerMixin, serializers.ModelSerializer):
    class Meta:
        model = SharedNote
        fields = ["id", "title", "archived"]


class ProfileSerializer(LiveSerializerMixin, serializers.ModelSerializer):
    class Meta:
        model = Profile
        fields = ["id", "display_name", "email"]


class PublicProfileSerializer(LiveSerializerMixin, serializers.ModelSerializer):
    class Meta:
        model = Profile
        fields = ["id", "display_name"]


class ClassroomSerializer(LiveSerializerMixin, serializers.ModelSerializer):
    class Meta:
        model = Classroom
        fields = ["id", "name", "school"]
