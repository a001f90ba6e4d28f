"""The example site through Django's test client: login, the page, the API with HashIDs, sharing.

Run with ``python example_site/manage.py test notes`` (tests/e2e/test_example_site.py does).
"""

from unittest import mock

from django.contrib.auth import get_user_model
from django.test import Client, TestCase
from django.urls import reverse

from notify_kit import suppress
from notify_kit.testing import assert_not_notified, assert_notified, capture_notifications

from .models import Inbox, Note

LIST = reverse("note-list")


def detail(note_or_id, suffix=""):
    hashid = getattr(note_or_id, "hashid", note_or_id)
    return f"{LIST}{hashid}/{suffix}"


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
        self.assertContains(page, self.shared.hashid)
        self.assertContains(page, Inbox.for_user(self.alice).hashid)
        self.assertContains(page, "notify_kit/notify-kit.js")
        self.assertNotContains(page, "Private ideas")

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

    def test_share_and_unshare(self):
        client = self.login(self.alice)
        revision = Inbox.for_user(self.carol).revision
        shared = client.post(detail(self.shared, "share/"), {"username": "carol"}, content_type="application/json")
        self.assertEqual(shared.json()["shared_with"], ["bob", "carol"])
        self.assertGreater(Inbox.for_user(self.carol).revision, revision)  # carol's pages reload their list
        self.assertIn(self.shared.hashid, [n["id"] for n in self.login(self.carol).get(LIST).json()])

        with mock.patch.object(Note, "notify_access_changed", autospec=True) as notify:
            unshared = client.post(
                detail(self.shared, "unshare/"), {"username": "carol"}, content_type="application/json"
            )
        self.assertEqual(unshared.json()["shared_with"], ["bob"])
        notify.assert_called_once_with(self.shared)  # carol's open pages get "revoked"
        self.assertFalse(self.shared.can_subscribe(self.carol))

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
        sent = []
        client = self.login(self.alice)
        with (
            mock.patch("notify_kit.notifications.send", lambda group, event: sent.append(event)),
            self.captureOnCommitCallbacks(execute=True),
        ):
            socket_id = "k3Jq0-Z_abcdefghijklmn"
            response = client.patch(
                detail(self.shared), {"title": "Mine"}, content_type="application/json",
                headers={"X-Notify-Socket-ID": socket_id},
            )  # fmt: skip
            self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual([(event.data["title"], event.origin) for event in sent], [("Mine", socket_id)])

    def test_can_subscribe(self):
        self.assertTrue(self.shared.can_subscribe(self.alice))
        self.assertTrue(self.shared.can_subscribe(self.bob))
        self.assertFalse(self.shared.can_subscribe(self.carol))
        self.assertTrue(Inbox.for_user(self.bob).can_subscribe(self.bob))
        self.assertFalse(Inbox.for_user(self.bob).can_subscribe(self.alice))

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
