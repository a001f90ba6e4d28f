"""The example site through Django's test client: login, the page, the API with HashIDs, sharing,
and who receives what (audiences and per-audience payloads) as the events of the writes say it.

Run with ``python example_site/manage.py test notes`` (tests/e2e/test_example_site.py does); the
browser test (tests/e2e/test_browser.py) shows the same on live pages.
"""

import json

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.test import Client, TestCase
from django.urls import reverse

from notify_kit import suppress
from notify_kit.audiences import digest
from notify_kit.testing import assert_not_notified, assert_notified, capture_notifications

from .models import Note, Profile

LIST = reverse("note-list")
PROFILE = reverse("my-profile")


def detail(note_or_id, suffix=""):
    hashid = getattr(note_or_id, "hashid", note_or_id)
    return f"{LIST}{hashid}/{suffix}"


def event_of(sent, obj):
    """The one channel-layer message of ``obj``'s event among those captured."""
    messages = [m for _, m in sent.messages if (m["model"], m["id"]) == (obj._meta.label_lower, obj.hashid)]
    assert len(messages) == 1, messages
    return messages[0]


def could_see(message, user, model):
    """Whether ``user`` was in the row's view before the write (their keys against the event's)."""
    held = {digest(key) for key in model.live_audiences_of(user)}
    return bool(held & set(message["views"]["old"] or ()))


def sees(message, user, model):
    """What ``user``'s collection gets of the row after the write: the payload of the first key they
    hold, in the row's order (notify_kit's rule), or None when they hold none."""
    held = {digest(key) for key in model.live_audiences_of(user)}
    for key_digest, index in message["views"]["new"] or ():
        if key_digest in held:
            return json.loads(message["views"]["payloads"][index])
    return None


class ExampleSiteTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        User = get_user_model()
        cls.alice, cls.bob, cls.carol = (
            User.objects.create_user(n, password="demo1234") for n in ("alice", "bob", "carol")
        )
        cls.shared = Note.objects.create(owner=cls.alice, title="Shared plan", body="agenda")
        cls.shared.shared_with.add(cls.bob)
        cls.private = Note.objects.create(owner=cls.carol, title="Private ideas")
        cls.alice_profile = Profile.objects.create(
            user=cls.alice, display_name="Alice Martin", email="alice@example.com", phone="555 0100"
        )

    def login(self, user):
        client = Client()
        client.force_login(user)
        return client

    def test_page_needs_login_and_login_works(self):
        client = Client()
        self.assertRedirects(client.get("/"), f"{reverse('login')}?next=/")
        response = client.post(reverse("login"), {"username": "alice", "password": "demo1234"})
        self.assertRedirects(response, "/")
        page = client.get("/")
        self.assertContains(page, self.alice_profile.hashid)  # which row of the people is hers
        self.assertContains(page, "notify_kit/notify-kit.js")
        # The lists come from the page's collection subscriptions, which show only what she may see.
        self.assertNotContains(page, "Private ideas")

    def test_page_creates_the_profile_of_a_new_user(self):
        dave = get_user_model().objects.create_user("dave")
        with capture_notifications() as sent:
            self.login(dave).get("/")
        profile = Profile.objects.get(user=dave)
        self.assertEqual(profile.display_name, "dave")
        created = assert_notified(sent, profile, "created")  # on everyone's people list
        self.assertEqual(
            sees(event_of(sent, profile), self.bob, Profile), {"id": profile.hashid, "display_name": "dave"}
        )
        self.assertEqual(created["data"]["display_name"], "dave")

    def test_api_speaks_hashids(self):
        client = self.login(self.alice)
        listed = client.get(LIST).json()
        self.assertEqual([n["id"] for n in listed], [self.shared.hashid])
        self.assertEqual(listed[0]["shared_with"], ["bob"])

        created = client.post(LIST, {"title": "New", "body": "b"}, content_type="application/json")
        self.assertEqual(created.status_code, 201, created.content)
        note = Note.get_by_hashid(created.json()["id"])
        self.assertEqual((note.owner, note.title), (self.alice, "New"))

        self.assertEqual(client.get(detail(note)).json()["title"], "New")
        patched = client.patch(detail(note), {"title": "Renamed"}, content_type="application/json")
        self.assertEqual(patched.json()["title"], "Renamed")
        self.assertEqual(client.get(detail(str(note.pk))).status_code, 404)  # a bare pk is not an id
        self.assertEqual(client.delete(detail(note)).status_code, 204)
        self.assertFalse(Note.objects.filter(pk=note.pk).exists())

    def test_others_notes_are_invisible(self):
        client = self.login(self.carol)
        self.assertEqual([n["id"] for n in client.get(LIST).json()], [self.private.hashid])
        self.assertEqual(client.get(detail(self.shared)).status_code, 404)
        self.assertEqual(
            client.patch(detail(self.shared), {"title": "x"}, content_type="application/json").status_code, 404
        )

    def test_collaborator_edits_but_only_owner_deletes_or_shares(self):
        client = self.login(self.bob)
        response = client.patch(detail(self.shared), {"body": "bob was here"}, content_type="application/json")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(client.delete(detail(self.shared)).status_code, 403)
        share = client.post(detail(self.shared, "share/"), {"username": "carol"}, content_type="application/json")
        self.assertEqual(share.status_code, 403)

    def test_share_and_unshare_move_the_note_in_and_out_of_the_users_view(self):
        # No code of the site does this: notify_kit follows the many-to-many, and the note's
        # audiences (owner + shares) say who sees it before and after.
        client = self.login(self.alice)
        with capture_notifications() as sent:
            shared = client.post(detail(self.shared, "share/"), {"username": "carol"}, content_type="application/json")
        self.assertEqual(shared.json()["shared_with"], ["bob", "carol"])
        event = event_of(sent, self.shared)
        self.assertFalse(could_see(event, self.carol, Note))
        self.assertEqual(sees(event, self.carol, Note)["title"], "Shared plan")  # created on carol's pages
        self.assertTrue(could_see(event, self.bob, Note) and sees(event, self.bob, Note))  # no change for bob
        self.assertIn(self.shared.hashid, [n["id"] for n in self.login(self.carol).get(LIST).json()])

        with capture_notifications() as sent:
            unshared = client.post(
                detail(self.shared, "unshare/"), {"username": "carol"}, content_type="application/json"
            )
        self.assertEqual(unshared.json()["shared_with"], ["bob"])
        event = event_of(sent, self.shared)
        self.assertTrue(could_see(event, self.carol, Note))
        self.assertIsNone(sees(event, self.carol, Note))  # deleted on carol's pages
        self.assertFalse(self.shared.can_subscribe(self.carol))

    def test_new_note_is_created_for_its_owner_only(self):
        with capture_notifications() as sent:
            response = self.login(self.bob).post(LIST, {"title": "Bob's"}, content_type="application/json")
        note = Note.get_by_hashid(response.json()["id"])
        event = event_of(sent, note)
        self.assertEqual(sees(event, self.bob, Note), response.json())
        self.assertIsNone(sees(event, self.alice, Note))
        self.assertIsNone(sees(event, self.carol, Note))

    def test_share_rejects_unknown_user_and_owner(self):
        client = self.login(self.alice)
        for username in ("nobody", "alice"):
            response = client.post(
                detail(self.shared, "share/"), {"username": username}, content_type="application/json"
            )
            self.assertEqual(response.status_code, 400, username)

    def test_api_needs_csrf_token(self):
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.alice)
        self.assertEqual(client.post(LIST, {"title": "x"}, content_type="application/json").status_code, 403)

    def test_api_writes_name_the_socket_in_x_notify_socket_id(self):
        # The page sends client.headers() with its API calls; SocketIdMiddleware notes the id, and
        # the event of the write names it as its origin: that socket does not get its own echo.
        client = self.login(self.alice)
        socket_id = "k3Jq0-Z_abcdefghijklmn"
        with capture_notifications() as sent:
            response = client.patch(
                detail(self.shared), {"title": "Mine"}, content_type="application/json",
                headers={"X-Notify-Socket-ID": socket_id},
            )  # fmt: skip
            self.assertEqual(response.status_code, 200, response.content)
        # One event (it goes to the note's group and to one group per audience, recorded once).
        self.assertEqual([(m["id"], m.get("origin")) for _, m in sent.messages], [(self.shared.hashid, socket_id)])
        assert_notified(sent, self.shared, "updated", changed=["title"])

    def test_audiences(self):
        self.assertEqual(Note.live_audiences_of(self.bob), [f"user:{self.bob.pk}"])
        self.assertEqual(self.shared.live_audiences(), [f"user:{self.alice.pk}", f"user:{self.bob.pk}"])
        self.assertTrue(self.shared.can_subscribe(self.alice))  # the default: holds one of the row's keys
        self.assertTrue(self.shared.can_subscribe(self.bob))
        self.assertFalse(self.shared.can_subscribe(self.carol))
        self.assertEqual(list(Note.live_snapshot_queryset(self.carol)), [self.private])
        self.assertEqual(list(Note.live_snapshot_queryset(self.bob)), [self.shared])
        self.assertEqual(Note.live_audiences_of(AnonymousUser()), [])
        self.bob.is_active = False
        self.assertEqual(Note.live_audiences_of(self.bob), [])
        self.assertFalse(self.shared.can_subscribe(self.bob))
        self.assertEqual(list(Note.live_snapshot_queryset(self.bob)), [])

    def test_api_edit_notifies_subscribers(self):
        # capture_notifications runs the on-commit callbacks TestCase would never run, and records
        # the frames the note's subscribers would receive, with no channel layer involved.
        client = self.login(self.bob)
        with capture_notifications() as sent:
            response = client.patch(detail(self.shared), {"title": "Bob's plan"}, content_type="application/json")
        frame = assert_notified(sent, self.shared, "updated", changed=["title"])
        self.assertEqual(frame["data"], response.json())  # the API and the live event carry the same data
        assert_not_notified(sent, self.private)

    def test_suppressed_import_notifies_nobody(self):
        with capture_notifications() as sent:
            with suppress():
                Note.objects.filter(pk=self.shared.pk).get().delete()
        assert_not_notified(sent)


class ProfileTests(TestCase):
    """Per-audience payloads: a profile's own user sees every field, other signed-in users its name."""

    @classmethod
    def setUpTestData(cls):
        User = get_user_model()
        cls.alice, cls.bob = (User.objects.create_user(n) for n in ("alice", "bob"))
        cls.profile = Profile.objects.create(
            user=cls.alice, display_name="Alice Martin", email="alice@example.com", phone="555 0100"
        )

    def test_each_audience_gets_its_payload(self):
        client = Client()
        client.force_login(self.alice)
        with capture_notifications() as sent:
            response = client.patch(PROFILE, {"display_name": "Alice M."}, content_type="application/json")
        self.assertEqual(response.status_code, 200, response.content)
        event = event_of(sent, self.profile)
        self.assertEqual(sees(event, self.alice, Profile), response.json())
        self.assertEqual(set(response.json()), {"id", "display_name", "email", "phone"})
        self.assertEqual(sees(event, self.bob, Profile), {"id": self.profile.hashid, "display_name": "Alice M."})
        self.assertEqual(Profile.live_audiences_of(AnonymousUser()), [])  # the socket of a signed-out page

    def test_a_private_field_change_tells_nobody(self):
        # Every audience receives an update's "changed" list: a change of the email alone must not
        # tell bob that alice's email changed, so only the display name is tracked.
        client = Client()
        client.force_login(self.alice)
        with capture_notifications() as sent:
            response = client.patch(PROFILE, {"email": "new@example.com"}, content_type="application/json")
        self.assertEqual(response.json()["email"], "new@example.com")
        assert_not_notified(sent)

    def test_the_api_serves_only_ones_own_profile(self):
        client = Client()
        client.force_login(self.bob)
        mine = client.get(PROFILE).json()
        self.assertEqual(mine["display_name"], "bob")  # created on first use
        self.assertNotEqual(mine["id"], self.profile.hashid)
        self.assertEqual(Client().get(PROFILE).status_code, 403)
