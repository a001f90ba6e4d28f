from django.contrib import admin

from .models import Note, Profile


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ["title", "owner", "created"]
    list_filter = ["owner"]
    search_fields = ["title", "body"]
    filter_horizontal = ["shared_with"]


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["display_name", "user", "email"]
    search_fields = ["display_name", "user__username"]
