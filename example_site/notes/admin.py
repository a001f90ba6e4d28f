from django.contrib import admin

from .models import Inbox, Note


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ["title", "owner", "created"]
    list_filter = ["owner"]
    search_fields = ["title", "body"]
    filter_horizontal = ["shared_with"]


@admin.register(Inbox)
class InboxAdmin(admin.ModelAdmin):
    list_display = ["user", "revision"]
