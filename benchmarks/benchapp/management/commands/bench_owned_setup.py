"""Create the collections scenario's users, their sessions and their rows (issue 10).

``--users`` users, each with a logged-in session (what a browser's ``sessionid`` cookie names),
and ``--rows`` rows per system (notify_kit, DCRF, django-rest-live), row i owned by user
i mod ``--users``, all with value 0. Prints one JSON object::

    {"users": [{"pk": 1, "session": "..."}, ...],
     "rows": {"notify_kit": [[pk, hashid, owner_pk], ...], "dcrf": [[pk, null, owner_pk], ...], ...}}
"""

import datetime as dt
import json

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management.base import BaseCommand
from django.utils import timezone
from django.utils.crypto import get_random_string

from benchapp.models import COLLECTION_MODELS

PREFIX = "bench-u"


class Command(BaseCommand):
    help = "Create users, sessions and owned rows for the collections scenario; print them as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=1000)
        parser.add_argument("--rows", type=int, default=10000)

    def handle(self, *args, users, rows, **options):
        User = get_user_model()
        for model in COLLECTION_MODELS.values():
            model.objects.all().delete()
        User.objects.filter(username__startswith=PREFIX).delete()
        # One unusable password for all: hashing 1,000 real ones would take minutes, and a session
        # only needs the password field to derive its auth hash.
        password = make_password(None)
        created = User.objects.bulk_create([User(username=f"{PREFIX}{i}", password=password) for i in range(users)])
        people = sorted(created, key=lambda u: u.pk)
        store = SessionStore()
        expires = timezone.now() + dt.timedelta(days=1)
        sessions = []
        out_users = []
        for user in people:
            key = get_random_string(32)
            data = {
                SESSION_KEY: str(user.pk),
                BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
                HASH_SESSION_KEY: user.get_session_auth_hash(),
            }
            sessions.append(Session(session_key=key, session_data=store.encode(data), expire_date=expires))
            out_users.append({"pk": user.pk, "session": key})
        Session.objects.bulk_create(sessions, batch_size=500)
        out_rows = {}
        for name, model in COLLECTION_MODELS.items():
            # The plain base manager: notify_kit's LiveManager would announce 10,000 rows nobody
            # follows yet; the set-up notifies no one, for every system alike.
            made = model._base_manager.bulk_create(
                [model(owner_id=people[i % users].pk, title="t0", value=0) for i in range(rows)], batch_size=1000
            )
            out_rows[name] = [
                [row.pk, getattr(row, "hashid", None), row.owner_id] for row in sorted(made, key=lambda r: r.pk)
            ]
        self.stdout.write(json.dumps({"users": out_users, "rows": out_rows}))
