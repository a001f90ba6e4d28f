"""``manage.py demo``: migrate, create the demo users, profiles and notes, then serve the site on loopback.

Idempotent: users and profiles are created once (left alone afterwards) and a user's notes only
when they have none, so running it again never duplicates or undoes anything.
"""

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV

from notes.models import Note, Profile

PASSWORD = "demo1234"
# username -> (display name, email, phone): other users see the display name only.
PROFILES = {
    "alice": ("Alice Martin", "alice@example.com", "+1 555 0100"),
    "bob": ("Bob Okafor", "bob@example.com", "+1 555 0101"),
    "carol": ("Carol Ito", "carol@example.com", "+1 555 0102"),
    "admin": ("Site admin", "admin@example.com", ""),
}
# (username, notes as (title, body, shared with))
DEMO = [
    (
        "alice",
        [
            ("Shared plan", "Agenda for Friday with Bob:\n- pick a venue\n- send invites", ["bob"]),
            ("Groceries", "Coffee, oat milk, lemons", []),
        ],
    ),
    ("bob", [("Reading list", "Designing Data-Intensive Applications\nThe Pragmatic Programmer", [])]),
    ("carol", [("Private ideas", "Nobody else can see this note.", [])]),
]


class Command(BaseCommand):
    help = "Set up the demo (migrate, demo users and notes; idempotent) and run the server on 127.0.0.1."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="Port on 127.0.0.1 (default 8000).")
        parser.add_argument("--no-serve", action="store_true", help="Only migrate and create the demo data.")
        parser.add_argument("--noreload", action="store_true", help="Do not restart the server on code changes.")

    def handle(self, *args, port, no_serve, noreload, **options):
        # With the autoreloader, runserver runs this command again in a child process: the
        # set-up has been done by the parent then.
        if os.environ.get(DJANGO_AUTORELOAD_ENV) != "true":
            call_command("migrate", interactive=False, verbosity=0)
            self.seed()
            self.banner(port, no_serve)
        if not no_serve:
            call_command("runserver", f"127.0.0.1:{port}", use_reloader=not noreload)

    @transaction.atomic
    def seed(self):
        User = get_user_model()
        users = {}
        for username, _ in DEMO:
            users[username] = self.user(User, username)
        if not User.objects.filter(username="admin").exists():
            User.objects.create_superuser("admin", "admin@example.com", PASSWORD)
        users["admin"] = User.objects.get(username="admin")
        for username, (display_name, email, phone) in PROFILES.items():
            defaults = {"display_name": display_name, "email": email, "phone": phone}
            Profile.objects.get_or_create(user=users[username], defaults=defaults)
        for username, notes in DEMO:
            owner = users[username]
            if Note.objects.filter(owner=owner).exists():
                continue
            for title, body, shared_with in notes:
                note = Note.objects.create(owner=owner, title=title, body=body)
                note.shared_with.set([users[name] for name in shared_with])

    def user(self, User, username):
        user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
        if created:
            user.set_password(PASSWORD)
            user.save(update_fields=["password"])
        return user

    def banner(self, port, no_serve):
        write, style = self.stdout.write, self.style
        write(style.SUCCESS("notify_kit demo is ready."))
        write(f"Users (password {PASSWORD!r}):")
        write("  alice   owns 'Shared plan' (shared with bob) and 'Groceries'")
        write("  bob     owns 'Reading list'; sees alice's 'Shared plan'")
        write("  carol   owns 'Private ideas'; sees neither alice's nor bob's notes")
        write("  admin   superuser, for /admin/")
        write("Everyone sees the others' display names under People; only you see your own email and phone.")
        if settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("InMemoryChannelLayer"):
            write(
                "Channel layer: in-memory. Saves made by this server (pages, API, admin) show live;"
                " set REDIS_URL to also see saves made from `manage.py shell`."
            )
        else:
            write("Channel layer: Redis. Saves from any process (`manage.py shell` too) show live.")
        if not no_serve:
            write(style.SUCCESS(f"Open http://127.0.0.1:{port}/ and log in as alice in one browser, bob in another."))
