"""Bulk writes: queries and time of update()/bulk_update() on 10,000 live rows, against save() one by one.

    python benchmarks/bulk.py                      # SQLite and PostgreSQL, 10,000 rows, 3 rounds
    python benchmarks/bulk.py --db sqlite --rows 1000 --no-docs

Not a test: it measures, and writes the table into docs/performance.md (section "Bulk writes",
between markers, and benchmarks/bulk.md, which a full benchmarks/run.py keeps in the page). It
needs notify_kit's test dependencies (Django, DRF, Channels, psycopg) and, for PostgreSQL, the
server at 127.0.0.1:5432 (trust auth, user postgres): it creates and drops its own database
``test_notify_kit_bench_bulk_<pid>``. No server or socket is involved: the events go to the
in-memory channel layer, whose groups have no members, so the time is the writer's: the
statement, the commit, reading the rows, serializing each event and handing it to the sender
(until ``notifications.flush()`` returns).

Each scenario runs in one transaction, on the same rows, writing a new title to every row:

* ``save()`` one by one: the rows loaded first (not timed), then ``obj.save()`` for each;
* ``update()``: ``NotifyItem.objects.update(title=...)``;
* ``bulk_update()``: the loaded rows with a new title, ``bulk_update(objs, ["title"])``;
* the same two statements through Django's plain QuerySet, which notifies nothing: the cost of
  the statement alone.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO), str(BENCH)]
START, END = "<!-- bulk-writes:start -->", "<!-- bulk-writes:end -->"


def configure(db: str, sqlite_path: str) -> None:
    import django
    from django.conf import settings

    if db == "sqlite":
        database = {"ENGINE": "django.db.backends.sqlite3", "NAME": sqlite_path, "TEST": {"NAME": sqlite_path}}
    else:
        database = {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("BENCH_PG_PORT", "5432"),
            "USER": os.environ.get("BENCH_PG_USER", "postgres"),
            "NAME": "postgres",
            "TEST": {"NAME": f"test_notify_kit_bench_bulk_{os.getpid()}"},
        }
    settings.configure(
        DEBUG=False,
        SECRET_KEY="notify-kit-bulk-benchmark",
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "rest_framework",
            "channels",
            "notify_kit",
            "benchapp",
        ],
        DATABASES={"default": database},
        CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
    )
    django.setup()


def scenarios(tag: str) -> list[tuple]:
    from benchapp.models import NotifyItem
    from django.db.models import QuerySet

    def loaded():
        return list(NotifyItem.objects.order_by("pk"))

    def retitled():
        rows = loaded()
        for row in rows:
            row.title = tag
        return rows

    def save_each(rows):
        for row in rows:
            row.title = tag
            row.save()

    return [
        ("save() one by one", True, loaded, save_each),
        ("update()", True, lambda: None, lambda _: NotifyItem.objects.update(title=tag)),
        ("bulk_update()", True, retitled, lambda rows: NotifyItem.objects.bulk_update(rows, ["title"])),
        ("update(), plain QuerySet", False, lambda: None, lambda _: QuerySet(NotifyItem).update(title=tag)),
        (
            "bulk_update(), plain QuerySet",
            False,
            retitled,
            lambda rows: QuerySet(NotifyItem).bulk_update(rows, ["title"]),
        ),
    ]


def measure(rows: int, rounds: int) -> list[dict]:
    from benchapp.models import NotifyItem
    from django.db import connection, transaction
    from django.db.models import QuerySet

    from notify_kit import notifications

    QuerySet(NotifyItem).bulk_create([NotifyItem(title="start") for _ in range(rows)], batch_size=500)
    counted = {"events": 0}
    send = notifications.send

    def counting_send(group, item):
        counted["events"] += 1
        send(group, item)

    notifications.send = counting_send

    def counting_execute(execute, sql, params, many, context):
        # Not CaptureQueriesContext: Django's query log keeps only the last 9000 statements.
        counted["queries"] += 1
        return execute(sql, params, many, context)

    results = []
    for index, (name, notifies, _, _) in enumerate(scenarios("")):
        times, queries, events, dropped = [], 0, 0, 0
        for round_ in range(rounds):
            _, _, prepare, write = scenarios(f"r{index}-{round_}")[index]
            state = prepare()
            notifications.flush(30)
            counted["events"], counted["queries"], before = 0, 0, notifications.stats()["dropped"]
            with connection.execute_wrapper(counting_execute):
                start = time.perf_counter()
                with transaction.atomic():
                    write(state)
                assert notifications.flush(60), "the sender did not drain in 60 s"
                times.append(time.perf_counter() - start)
            queries, events = counted["queries"], counted["events"]
            dropped = notifications.stats()["dropped"] - before
        results.append(
            {
                "scenario": name,
                "notifies": notifies,
                "seconds": statistics.median(times),
                "queries": queries,
                "events": events,
                "dropped": dropped,
            }
        )
        print(f"  {name:32} {statistics.median(times):7.3f} s  {queries:6} queries  {events:6} events", flush=True)
    return results


def run_one(db: str, rows: int, rounds: int) -> list[dict]:
    """Measure on one database in a child process (Django is configured once per process)."""
    import json

    out = subprocess.run(
        [sys.executable, __file__, "--child", db, "--rows", str(rows), "--rounds", str(rounds)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    sys.stderr.write(out.stderr)
    if out.returncode:
        raise SystemExit(f"the {db} measurement failed (exit status {out.returncode})")
    lines = out.stdout.splitlines()
    print("\n".join(line for line in lines if not line.startswith("{")), flush=True)
    return json.loads(next(line for line in lines if line.startswith("{")))["results"]


def child(db: str, rows: int, rounds: int) -> None:
    import json

    with tempfile.TemporaryDirectory() as tmp:
        configure(db, str(Path(tmp) / "bulk.sqlite3"))
        from django.db import connection

        name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        try:
            version = connection.pg_version if db == "postgres" else None
            print(f"{db}: {rows} rows, {rounds} rounds", flush=True)
            results = measure(rows, rounds)
        finally:
            connection.creation.destroy_test_db(name, verbosity=0)
    print(json.dumps({"results": results, "server": version}))


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, Python {platform.python_version()}"


def render(by_db: dict[str, list[dict]], rows: int, rounds: int) -> str:
    import sqlite3

    import django

    today = datetime.date.today().isoformat()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
    lines = [
        START,
        "## Bulk writes",
        "",
        f"Measured on {today} by `python benchmarks/bulk.py` on {machine()}, a machine shared with other work; "
        f"Django {django.get_version()}, SQLite {sqlite3.sqlite_version} (a file), PostgreSQL on the same host; "
        f"notify_kit commit {commit.stdout.strip() or 'unknown'}. {rows:,} rows written in one transaction, "
        f"each row's title changed (a tracked field); the median of {rounds} rounds. Time runs from the start "
        "of the transaction until every event has been handed to the channel layer (`notifications.flush()`); "
        "queries are the statements sent through Django's cursor (SQLite's BEGIN included, COMMIT not).",
        "",
        "| database | write | events | queries | time | per row |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for db, results in by_db.items():
        for r in results:
            per_row = r["seconds"] / rows * 1e6
            dropped = f" ({r['dropped']} dropped)" if r["dropped"] else ""
            lines.append(
                f"| {db} | {r['scenario']} | {r['events']:,}{dropped} | {r['queries']:,} | "
                f"{r['seconds']:.2f} s | {per_row:.0f} µs |"
            )
    lines += [
        "",
        "`update()` and `bulk_update()` on a live model cost their statement plus one read of the rows "
        "after commit (chunked by 999 ids on SQLite, whose parameter limit Django assumes), whatever the "
        "number of rows; `save()` one by one costs a statement per row. notify_kit's share of a bulk "
        "write is the difference to the plain QuerySet row of the same statement: about the same for "
        "`update()` and `bulk_update()`, since it is one event per row. A cProfile of `update()` on "
        "10,000 SQLite rows puts most of it in work every event does, saves included: three HashID "
        "encodings per event (the event's id, its group name, the serializer's `id`) and the serializer, "
        "then the one read (model instances and their trackers). Django's own `bulk_update()` on "
        "PostgreSQL (one `CASE WHEN` over 10,000 rows) is slower than saving the rows one by one. The "
        "machine is shared: two runs 20 minutes apart differed by up to 1.8x in time, never in queries or "
        "events.",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_docs(section: str) -> None:
    (BENCH / "bulk.md").write_text(section)
    page = REPO / "docs" / "performance.md"
    text = page.read_text()
    if START in text and END in text:
        head, _, rest = text.partition(START)
        _, _, tail = rest.partition(END)
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    page.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--child", choices=["sqlite", "postgres"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rows, args.rounds)
        return
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    by_db = {db: run_one(db, args.rows, args.rounds) for db in dbs}
    section = render(
        {"SQLite" if db == "sqlite" else "PostgreSQL": r for db, r in by_db.items()}, args.rows, args.rounds
    )
    print(section)
    if not args.no_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
