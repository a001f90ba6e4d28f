"""Per-save profile (issue 12): where the CPU of a notifying save() goes, stage by stage.

    PYTHONPATH=$PWD python benchmarks/profile_save.py              # 3000 saves, 3 rounds
    PYTHONPATH=$PWD python benchmarks/profile_save.py --saves 500 --rounds 1

Not a test: it measures and prints Markdown tables. Their reading is written by hand in
benchmarks/profile.md, the "Per-save profile" section of docs/performance.md (between markers; a
full benchmarks/run.py keeps it in the page).
Standalone: Django is configured here with the benchmark's models (benchapp), a SQLite file in
WAL mode (as the benchmark's SQLite runs) and the channels-redis layer on 127.0.0.1:6379 under a
fresh prefix. No socket is subscribed: the sender still reads each group's members and builds
each message, but has nobody to write it to, so its share here is a lower bound.

Every measurement saves one row N times in autocommit, each save with a tracked change (title
and value, as the benchmark's writer does), and is repeated --rounds times; the median is shown.

* Totals, by the writer thread's CPU clock (``time.thread_time``, read twice per round) and by
  the wall clock: a plain model, the same model with a FieldTracker, NotifyItem with notify_kit's
  receivers disconnected (its FieldTracker and notify_kit's access tracker, nothing else), and
  NotifyItem as shipped, with the sender thread's CPU clock read on its own loop before and after
  (after ``notifications.flush()``). Then NotifyItem with each event sent to its object's group
  only, to price the second (audience) group.
* Stages: NotifyItem again, with notify_kit's functions wrapped by a timer that charges each
  call its exclusive CPU time (its own, minus the wrapped calls inside it), by the writer thread's
  ``thread_time``. The wrappers cost time themselves (two clock reads of ~0.2 µs per call): the
  instrumented total is shown beside the plain one.
* The sender: one round under cProfile, enabled on the sender's own thread.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO), str(BENCH)]


def configure(sqlite_path: str, prefix: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="notify-kit-profile-save",
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "rest_framework",
            "channels",
            "notify_kit",
            "benchapp",
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": sqlite_path,
                "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", "timeout": 30},
            }
        },
        CHANNEL_LAYERS={
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0"], "prefix": prefix},
            }
        },
        NOTIFY_KIT={"CHANNEL_LAYER": "default"},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()


# -- stage timers ---------------------------------------------------------------------------------

_stack: list[list[Any]] = []  # [stage, time spent in wrapped calls inside it]
spent: dict[str, float] = defaultdict(float)
calls: dict[str, int] = defaultdict(int)


def timed(stage: str, func: Any) -> Any:
    """``func`` charging its exclusive CPU time (and a call) to ``stage``."""
    # The writer thread's CPU clock, not the wall clock: the sender thread takes the GIL whenever
    # the writer lets go of it (SQLite calls, the self-pipe write), and a wall clock would charge
    # that wait to whichever stage happened to be running.
    clock = time.thread_time

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        frame = [stage, 0.0]
        _stack.append(frame)
        start = clock()
        try:
            return func(*args, **kwargs)
        finally:
            elapsed = clock() - start
            _stack.pop()
            spent[stage] += elapsed - frame[1]
            calls[stage] += 1
            if _stack:
                _stack[-1][1] += elapsed

    wrapper.__wrapped__ = func  # type: ignore[attr-defined]
    return wrapper


# (stage label, object, attribute): the order is the table's.
def stage_targets() -> list[tuple[str, Any, str]]:
    from benchapp.models import NotifyItem

    from notify_kit import (
        audiences,
        changes,
        events,
        hashids,
        notifications,
        receivers,
        representation,
        rows,
        sender,
        trackers,
    )
    from notify_kit.models import LiveModelMixin

    return [
        ("post_save receiver (rest of _on_save)", receivers, "_on_save"),
        ("change capture: trackers.changes (what changed, access included)", trackers, "changes"),
        ("change capture: rows.snapshot", rows, "snapshot"),
        ("change capture: record_update (rest)", changes, "record_update"),
        ("on-commit bookkeeping: _pending_for (rest)", changes, "_pending_for"),
        ("on-commit bookkeeping: _Pending.__init__ (rest)", changes._Pending, "__init__"),
        ("before-state: trackers.previous (copy of the row)", trackers, "previous"),
        ("before-state: audiences.view_of", audiences, "view_of"),
        ("commit callback: _Pending.__call__ (rest: group list)", changes._Pending, "__call__"),
        ("commit callback: _Pending.event (rest)", changes._Pending, "event"),
        ("committed-state check: rows.committed", rows, "committed"),
        ("serializer: get_live_data (rest: serializer cache, DRF's path if needed)", LiveModelMixin, "get_live_data"),
        ("serializer: representation.represent (the fast path's values)", representation, "represent"),
        ("views: _Pending._views (rest)", changes._Pending, "_views"),
        ("views: audiences.audiences_of", audiences, "audiences_of"),
        ("views: audiences.filter_values", audiences, "filter_values"),
        ("views: audiences.payloads (rest)", audiences, "payloads"),
        ("JSON: audiences.encode (payload)", audiences, "encode"),
        ("JSON: rows.encode (access row)", rows, "encode"),
        ("digests: audiences.digest", audiences, "digest"),
        ("group names: audiences.group / group_name", audiences, "group"),
        ("HashIDs: hashids.encode", hashids, "encode"),
        ("Event.__init__", events.Event, "__init__"),
        ("Event.copy (second group)", events.Event, "copy"),
        ("hand-off: notifications.send_many (rest)", notifications, "send_many"),
        ("hand-off: Sender.submit_many", sender.Sender, "submit_many"),
        ("group names: notifications.group_name", notifications, "group_name"),
        ("hashid property", NotifyItem, "hashid"),
    ]


_SAVE_UID = "notify_kit.save.benchapp.notifyitem"


def _reconnect(receiver: Any) -> None:
    # post_save holds the receiver function itself: wrapping the module attribute is not enough.
    from benchapp.models import NotifyItem
    from django.db.models.signals import post_save

    post_save.disconnect(sender=NotifyItem, dispatch_uid=_SAVE_UID)
    post_save.connect(receiver, sender=NotifyItem, weak=False, dispatch_uid=_SAVE_UID)


def instrument() -> list[tuple[Any, str, Any, bool]]:
    undo = []
    for stage, owner, name in stage_targets():
        # A class attribute inherited (NotifyItem.hashid) is shadowed, then deleted again.
        own = not isinstance(owner, type) or name in owner.__dict__
        original = owner.__dict__[name] if isinstance(owner, type) and own else getattr(owner, name)
        if isinstance(original, property):
            setattr(owner, name, property(timed(stage, original.fget)))
        else:
            setattr(owner, name, timed(stage, original))
        if name == "_on_save":
            _reconnect(getattr(owner, name))
        undo.append((owner, name, original, own))
    return undo


def uninstrument(undo: list[tuple[Any, str, Any, bool]]) -> None:
    for owner, name, original, own in reversed(undo):
        if own:
            setattr(owner, name, original)
        else:
            delattr(owner, name)
        if name == "_on_save":
            _reconnect(original)


# -- measurements -----------------------------------------------------------------------------------


def on_sender(func: Any) -> Any:
    """Run ``func`` on the sender thread's loop and return its result."""
    from notify_kit import sender_thread

    loop = sender_thread.background().loop

    async def call() -> Any:
        return func()

    return asyncio.run_coroutine_threadsafe(call(), loop).result(10)


def save_loop(obj: Any, n: int, seq: list[int]) -> tuple[float, float]:
    """n saves of ``obj``, each changing title and value; (writer CPU s, wall s)."""
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    for _ in range(n):
        seq[0] += 1
        obj.value = seq[0]
        obj.title = f"t{seq[0]}"
        obj.save()
    return time.thread_time() - cpu0, time.perf_counter() - wall0


def measure(obj: Any, n: int, seq: list[int], notifying: bool) -> dict[str, float]:
    from notify_kit import notifications

    save_loop(obj, min(200, n), seq)  # warm-up: caches, the sender thread, the connection
    spent.clear()
    calls.clear()
    if notifying:
        notifications.flush(60)
        sender0 = on_sender(time.thread_time)
    cpu, wall = save_loop(obj, n, seq)
    out = {"cpu_us": cpu / n * 1e6, "wall_us": wall / n * 1e6}
    if notifying:
        notifications.flush(60)
        out["sender_us"] = (on_sender(time.thread_time) - sender0) / n * 1e6
        out["total_cpu_us"] = out["cpu_us"] + out["sender_us"]
    return out


class _BuiltInWriter:
    """notifications as changes.py sees it, building each message in the writer and sending nothing:
    notify_kit's own work per save without a sender thread to share the GIL with."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def send_many(self, items: list[tuple[str, Any]]) -> None:
        for _group, message in items:
            message.to_message()


class _ObjectGroupOnly:
    """notifications as changes.py sees it, but sending only to an object's own group."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def send_many(self, items: list[tuple[str, Any]]) -> None:
        # Audience groups are notify_kit.<label>.a.<digest>.
        self.real.send_many([(group, message) for group, message in items if ".a." not in group])


def run(args: argparse.Namespace) -> dict[str, Any]:
    from benchapp.models import NotifyItem, PlainItem, TrackedItem
    from django.db import connection
    from django.db.models.signals import post_save

    from notify_kit import changes, notifications, receivers, sender

    with connection.schema_editor() as editor:
        for model in (PlainItem, TrackedItem, NotifyItem):
            editor.create_model(model)
    objs = {m: m.objects.create(title="t", value=0) for m in (PlainItem, TrackedItem, NotifyItem)}
    notifications.flush(10)
    seq = [0]
    n = args.saves
    totals: dict[str, list[dict[str, float]]] = defaultdict(list)
    for _ in range(args.rounds):
        totals["plain save"].append(measure(objs[PlainItem], n, seq, False))
        totals["plain save + FieldTracker"].append(measure(objs[TrackedItem], n, seq, False))
        post_save.disconnect(sender=NotifyItem, dispatch_uid=_SAVE_UID)
        try:
            totals["NotifyItem, notify_kit receivers disconnected"].append(measure(objs[NotifyItem], n, seq, False))
        finally:
            post_save.connect(receivers._on_save, sender=NotifyItem, weak=False, dispatch_uid=_SAVE_UID)
        totals["NotifyItem (notify_kit), two groups per event"].append(measure(objs[NotifyItem], n, seq, True))
        changes.notifications = _ObjectGroupOnly(notifications)  # type: ignore[assignment]
        try:
            totals["NotifyItem, object group only"].append(measure(objs[NotifyItem], n, seq, True))
        finally:
            changes.notifications = notifications
        changes.notifications = _BuiltInWriter(notifications)  # type: ignore[assignment]
        try:
            totals["NotifyItem, messages built in the writer, no sender thread"].append(
                measure(objs[NotifyItem], n, seq, False)
            )
        finally:
            changes.notifications = notifications
    # How long the sender lets the next batch fill while saves keep coming (notify_kit.sender).
    gather: dict[float, list[dict[str, float]]] = defaultdict(list)
    default_gather = sender._GATHER
    try:
        for _ in range(args.rounds):
            for wait in (0.0, 0.001, default_gather, 0.010):
                sender._GATHER = wait
                gather[wait].append(measure(objs[NotifyItem], n, seq, True))
    finally:
        sender._GATHER = default_gather
    stages: list[dict[str, Any]] = []
    for _ in range(args.rounds):
        undo = instrument()
        try:
            result = measure(objs[NotifyItem], n, seq, True)
        finally:
            uninstrument(undo)
        stages.append({"total": result, "spent": dict(spent), "calls": dict(calls)})

    profiler = cProfile.Profile()
    on_sender(profiler.enable)
    cpu0 = on_sender(time.thread_time)
    save_loop(objs[NotifyItem], n, seq)
    notifications.flush(60)
    sender_cpu = on_sender(time.thread_time) - cpu0
    on_sender(profiler.disable)
    return {
        "totals": totals,
        "gather": gather,
        "default_gather": default_gather,
        "stages": stages,
        "sender_profile": profiler,
        "sender_cpu_profiled": sender_cpu,
    }


# -- report -------------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def git_commit() -> str:
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "notify_kit"], capture_output=True)
    return out.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def report(data: dict[str, Any], args: argparse.Namespace) -> str:
    import django

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python benchmarks/profile_save.py` "
        f"({args.saves} saves per round, median of {args.rounds} rounds) on {os.cpu_count()} cores ({cpu}), "
        f"shared with other work; Linux {platform.release()}, Python {platform.python_version()}, "
        f"Django {django.get_version()}, SQLite file (WAL), channels-redis on 127.0.0.1; notify_kit commit "
        f"{git_commit()}. Load average at the end: {os.getloadavg()[0]:.2f}.",
        "",
        "### Totals per save",
        "",
        "| writer | writer CPU µs/save | wall µs/save | sender thread CPU µs/save | writer + sender CPU µs/save |",
        "|---|---|---|---|---|",
    ]
    for name, runs in data["totals"].items():
        row = [name, f"{median([r['cpu_us'] for r in runs]):.0f}", f"{median([r['wall_us'] for r in runs]):.0f}"]
        if "sender_us" in runs[0]:
            row += [f"{median([r['sender_us'] for r in runs]):.0f}", f"{median([r['total_cpu_us'] for r in runs]):.0f}"]
        else:
            row += ["-", f"{median([r['cpu_us'] for r in runs]):.0f}"]
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "### The sender's wait for company in a stream of saves (NotifyItem as shipped)",
        "",
        "| the sender lets the next batch fill for | writer CPU µs/save | wall µs/save | sender thread CPU µs/save "
        "| writer + sender CPU µs/save |",
        "|---|---|---|---|---|",
    ]
    for wait, runs in data["gather"].items():
        label = f"{wait * 1000:g} ms" + (" (the default)" if wait == data["default_gather"] else "")
        row = [label] + [
            f"{median([r[k] for r in runs]):.0f}" for k in ("cpu_us", "wall_us", "sender_us", "total_cpu_us")
        ]
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "### Stages of a notifying save (writer thread, exclusive CPU µs per save)",
        "",
        "| stage | µs/save | calls/save |",
        "|---|---|---|",
    ]
    n = args.saves
    order = [label for label, _, _ in stage_targets()]
    for label in order:
        values = [s["spent"].get(label, 0.0) / n * 1e6 for s in data["stages"]]
        counts = data["stages"][0]["calls"].get(label, 0) / n
        lines.append(f"| {label} | {median(values):.1f} | {counts:.1f} |")
    wrapped = median([sum(s["spent"].values()) / n * 1e6 for s in data["stages"]])
    total = median([s["total"]["cpu_us"] for s in data["stages"]])
    wall = median([s["total"]["wall_us"] for s in data["stages"]])
    lines += [
        f"| **all wrapped stages** | **{wrapped:.1f}** | |",
        f"| rest of the save (Django's save and SQL, signal dispatch, FieldTrackers) | {total - wrapped:.1f} | |",
        f"| **instrumented notifying save: writer CPU (wall {wall:.0f})** | **{total:.0f}** | |",
        "",
    ]
    stats = pstats.Stats(data["sender_profile"])
    lines += [
        "### Sender thread (one round under cProfile; cumulative µs per save, inflated by the profiler)",
        "",
        f"Sender thread CPU in that round: {data['sender_cpu_profiled'] / n * 1e6:.0f} µs/save (with cProfile).",
        "",
        "| function | calls/save | cumulative µs/save |",
        "|---|---|---|",
    ]
    rows = []
    for (filename, lineno, func), (_cc, nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((ct, nc, f"{Path(filename).name}:{lineno}({func})"))
    for ct, nc, name in sorted(rows, reverse=True)[:25]:
        lines.append(f"| `{name}` | {nc / n:.2f} | {ct / n * 1e6:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    prefix = f"nkprofile{os.getpid()}x{int(time.time())}"
    with tempfile.TemporaryDirectory() as tmp:
        configure(str(Path(tmp) / "profile.sqlite3"), prefix)
        try:
            data = run(args)
        finally:
            cleanup(prefix)
    print(report(data, args))


def cleanup(prefix: str) -> None:
    """Delete the run's keys from Redis (the group sets have no members, but keep nothing)."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)


if __name__ == "__main__":
    main()
