"""The demo in a real headless Chromium: live edits between users, sharing, per-user profiles, a server restart.

The example site runs as ``manage.py demo`` in a subprocess on a free loopback port, on a
temporary SQLite file and the in-memory channel layer, exactly as a user starts it. Chromium is
Debian's (``apt-get install chromium``), driven by Playwright's Python API; without it the test
skips, except under CI, where it fails. Screenshots go to ``artifacts/`` (git-ignored).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.test_example_site import MANAGE, ROOT, example_env, manage

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
ARTIFACTS = ROOT / "artifacts"
PASSWORD = "demo1234"  # set by the demo command
TIMEOUT_MS = 10_000  # any single step in the browser
RECONNECT_TIMEOUT_MS = 40_000  # server start-up plus the client's backoff


def require_browser():
    """Skip (fail under CI) when Chromium or Playwright is missing."""
    problem = None
    if not os.access(CHROMIUM, os.X_OK):
        problem = f"{CHROMIUM} not found; install it with `apt-get install -y chromium`"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "Playwright is not installed; `pip install -e .[e2e]`"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"{problem}; CI must run the browser test.")
        pytest.skip(problem)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DemoServer:
    """``manage.py demo --noreload`` on a loopback port; started, killed and stopped by its own PID."""

    def __init__(self, db_path: Path, port: int, log_dir: Path):
        self.db_path, self.port, self.log_dir = db_path, port, log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        self.starts += 1
        log = self.log_dir / f"server-{self.starts}.log"
        cmd = [sys.executable, str(MANAGE), "demo", "--port", str(self.port), "--noreload"]
        with log.open("wb") as out:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                cmd, cwd=ROOT, env=example_env(self.db_path), stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the demo server exited with {self.process.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/accounts/login/", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        pytest.fail(f"the demo server did not answer within {timeout}s:\n{log.read_text()}")

    def kill(self) -> None:
        """Die at once, as a crashed server does: no goodbye to the WebSockets."""
        self.stop(signal.SIGKILL)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture
def demo_server(tmp_path):
    require_browser()
    db = tmp_path / "demo.sqlite3"
    manage("demo", "--no-serve", db_path=db)
    server = DemoServer(db, free_port(), tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_live_edits_access_and_reconnect(demo_server):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            run_scenario(browser, demo_server, expect)
        finally:
            browser.close()


def run_scenario(browser, server: DemoServer, expect) -> None:
    alice, bob, carol = (log_in(browser, server, name, expect) for name in ("alice", "bob", "carol"))
    note_id = alice.evaluate(
        """title => [...document.querySelectorAll("article.note")]
                      .find(card => card.querySelector(".title").value === title)?.dataset.id""",
        "Shared plan",
    )
    assert note_id, "alice's page does not list the seeded 'Shared plan'"
    alice_title = alice.locator(f'article[data-id="{note_id}"] .title')
    bob_title = bob.locator(f'article[data-id="{note_id}"] .title')
    expect(bob_title).to_have_value("Shared plan")
    bob.evaluate("() => { window.notReloaded = true; }")  # a reload would drop this
    settled(bob)

    # Alice edits through the page; Bob's page follows without a reload.
    alice_title.fill("Agenda, edited by alice")
    alice_title.press("Enter")
    expect(bob_title).to_have_value("Agenda, edited by alice")
    assert bob.evaluate("() => window.notReloaded") is True
    own_echo_skipped(alice, bob, note_id)

    # Carol neither sees the note nor may subscribe to it.
    expect(carol.locator("article.note")).to_have_count(1)  # her own note
    expect(carol.locator(f'article[data-id="{note_id}"]')).to_have_count(0)
    denied = carol.evaluate(
        """id => window.notesDemo.client.subscribe("notes.note", id, () => {}).ack
                   .then(() => "subscribed", (error) => error.code)""",
        note_id,
    )
    assert denied == "not_found"

    sharing_moves_the_note_in_and_out(alice, bob, carol, expect)
    each_sees_their_share_of_a_profile(alice, bob, expect)

    alice.screenshot(path=ARTIFACTS / "browser-alice.png")
    bob.screenshot(path=ARTIFACTS / "browser-bob.png")

    # The server dies and comes back on the same port: the pages reconnect and resubscribe.
    server.kill()
    for page in (alice, bob):
        expect(page.locator("#status")).to_have_attribute("data-status", "reconnecting")
    bob.screenshot(path=ARTIFACTS / "browser-bob-reconnecting.png")
    server.start()
    for page in (alice, bob):
        expect(page.locator("#status")).to_have_attribute("data-status", "connected", timeout=RECONNECT_TIMEOUT_MS)
    settled(bob)

    bob.evaluate("id => document.querySelector(`article[data-id='${id}']`).classList.remove('flash')", note_id)
    alice_title.fill("Agenda, after the restart")
    alice_title.press("Enter")
    expect(bob_title).to_have_value("Agenda, after the restart")
    assert bob.evaluate("() => window.notReloaded") is True
    own_echo_skipped(alice, bob, note_id)  # with the new socket's id
    bob.screenshot(path=ARTIFACTS / "browser-bob-after-restart.png")


def sharing_moves_the_note_in_and_out(alice, bob, carol, expect) -> None:
    """A note appears on Bob's page as Alice shares it and leaves it when she stops; Carol sees nothing of it."""
    # Everything Carol's notes collection is told from now on (each snapshot's ids, each event's id).
    carol.evaluate(
        """() => { window.carolSaw = [];
                   window.notesDemo.noteRows.onChange(e => window.carolSaw.push(
                       ...(e.type === "snapshot" ? [...e.rows.keys()] : [e.id]))); }"""
    )
    alice.fill("#new-note input[name=title]", "For Bob's eyes")
    alice.click("#new-note button[type=submit]")
    expect(alice.locator("#mine article.note")).to_have_count(3)
    note_id = alice.evaluate(
        """title => [...document.querySelectorAll("#mine article.note")]
                      .find(card => card.querySelector(".title").value === title)?.dataset.id""",
        "For Bob's eyes",
    )
    assert note_id, "alice's new note is not on her page"
    card = alice.locator(f'article[data-id="{note_id}"]')
    on_bob = bob.locator(f'#shared article[data-id="{note_id}"]')
    bob.wait_for_timeout(300)
    expect(bob.locator(f'article[data-id="{note_id}"]')).to_have_count(0)  # not shared yet

    card.locator(".share input[name=username]").fill("bob")
    card.locator(".share button[type=submit]").click()
    expect(on_bob).to_have_count(1)  # created in Bob's collection: no reload, no refetch
    expect(on_bob.locator(".title")).to_have_value("For Bob's eyes")
    expect(on_bob.locator(".owner")).to_have_text("from alice")
    assert bob.evaluate("() => window.notReloaded") is True

    card.locator(".title").fill("For Bob, edited")
    card.locator(".title").press("Enter")
    expect(on_bob.locator(".title")).to_have_value("For Bob, edited")  # and its updates
    bob.screenshot(path=ARTIFACTS / "browser-bob-shared.png")

    card.locator('.unshare[title="Stop sharing with bob"]').click()
    expect(bob.locator(f'article[data-id="{note_id}"]')).to_have_count(0)  # deleted from Bob's view
    expect(card.locator(".shares")).to_have_text("Private")
    assert bob.evaluate("id => window.notesDemo.noteRows.rows.has(id)", note_id) is False
    assert bob.evaluate("() => window.notReloaded") is True

    # Bob has seen every event of the note; one that went to Carol too would have arrived by now.
    carol.wait_for_timeout(500)
    expect(carol.locator(f'article[data-id="{note_id}"]')).to_have_count(0)
    assert note_id not in carol.evaluate("() => window.carolSaw")
    assert carol.evaluate("id => window.notesDemo.noteRows.rows.has(id)", note_id) is False


def each_sees_their_share_of_a_profile(alice, bob, expect) -> None:
    """Per-audience payloads: Alice's own row has every field, Bob's copy of it her display name only."""
    alice_profile = alice.evaluate("() => JSON.parse(document.getElementById('notes-config').textContent).profile")
    assert alice.evaluate("id => Object.keys(window.notesDemo.people.rows.get(id)).sort()", alice_profile) == [
        "display_name", "email", "id", "phone",
    ]  # fmt: skip
    expect(alice.locator("#my-profile input[name=email]")).to_have_value("alice@example.com")
    on_bob = bob.locator(f'#people li[data-id="{alice_profile}"]')
    expect(on_bob).to_have_text("Alice Martin")
    assert bob.evaluate("id => window.notesDemo.people.rows.get(id)", alice_profile) == {
        "id": alice_profile, "display_name": "Alice Martin",
    }  # fmt: skip
    expect(bob.locator("#my-profile input[name=email]")).to_have_value("bob@example.com")  # his own, in full
    assert "alice@example.com" not in bob.content()

    # Alice renames herself: Bob's list follows, still with the name only.
    alice.fill("#my-profile input[name=display_name]", "Alice M.")
    alice.click("#my-profile button[type=submit]")
    expect(alice.locator("#my-profile .state")).to_have_text("Saved")
    expect(on_bob).to_have_text("Alice M.")
    assert bob.evaluate("id => Object.keys(window.notesDemo.people.rows.get(id)).sort()", alice_profile) == [
        "display_name", "id",
    ]  # fmt: skip


def own_echo_skipped(writer, reader, note_id: str) -> None:
    """The reader's card flashed (an event from someone else); the writer's never got its own echo.

    app.js flashes a card on every `updated` it receives, and its API calls send
    ``client.headers()``: had the writer's socket received its own change, its card would flash.
    """
    card = f"article[data-id='{note_id}']"
    assert writer.evaluate("() => window.notesDemo.client.socketId") is not None
    reader.wait_for_selector(f"{card}.flash", timeout=TIMEOUT_MS)
    writer.wait_for_timeout(500)  # the echo, were it sent, travels with the reader's copy
    assert writer.evaluate("s => document.querySelector(s).classList.contains('flash')", card) is False


def log_in(browser, server: DemoServer, username: str, expect):
    """A new browser context (its own cookies) logged in through the login form, on the live page."""
    context = browser.new_context(base_url=server.url, viewport={"width": 1100, "height": 720})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto("/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#status")).to_have_attribute("data-status", "connected")
    return page


def settled(page) -> None:
    """Wait until the server has handled every subscribe the page sent so far.

    A consumer answers one socket's frames in order, so once a probe sent now is answered, the
    (re)subscriptions sent before it are in place and no later notification can miss them.
    """
    code = page.evaluate(
        """() => window.notesDemo.client.subscribe("notes.note", "probe", () => {}).ack
                   .then(() => "subscribed", (error) => error.code)"""
    )
    assert code == "not_found"
