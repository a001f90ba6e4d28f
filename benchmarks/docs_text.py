"""The text of docs/performance.md around the numbers: machine, method, tables, goals, analysis.

The analysis is prose written by a person for one particular run (benchmarks/analysis.md, whose
first line names that run's JSON). When the numbers come from another run, the page says so
above the analysis instead of pretending it still applies.
"""

from __future__ import annotations

from pathlib import Path

import report

BENCH = Path(__file__).resolve().parent


def _machine(results: dict) -> str:
    m = results["machine"]
    p = m.get("packages", {})
    rows = [
        ["date", results["date"]],
        ["cores (nproc)", str(m.get("nproc"))],
        ["CPU", m.get("cpu", "unknown")],
        ["RAM", f"{m.get('ram_gib')} GiB"],
        ["kernel", m.get("kernel", "")],
        ["Python", m.get("python", "")],
        ["Django / Channels / DRF", f"{p.get('Django')} / {p.get('channels')} / {p.get('djangorestframework')}"],
        [
            "channels-redis / redis-py / Redis server",
            f"{p.get('channels-redis')} / {p.get('redis')} / {m.get('redis_server')}",
        ],
        ["database", m.get("database", "")],
        [
            "ASGI server",
            f"uvicorn {p.get('uvicorn')} (1 worker, uvloop {p.get('uvloop')}, websockets {p.get('websockets')})",
        ],
        ["DCRF / django-rest-live", f"{p.get('djangochannelsrestframework')} / {p.get('django-rest-live')}"],
        [
            "notify_kit",
            f"commit {m.get('notify_kit_commit', '?')}"
            + (" plus uncommitted changes in notify_kit/" if m.get("notify_kit_dirty") else ""),
        ],
    ]
    return report.md_table(["", ""], rows)


def _load(results: dict) -> str:
    busy, loads, shares, waited = [], [], [], 0.0
    for section in ("writer_cost", "latency", "fanout", "memory"):
        for value in results[section].values():
            runs = value if isinstance(value, list) else list(value.values()) if section == "latency" else [value]
            for run in runs:
                load = run.get("machine_load") or {}
                if "busy_before" in load:
                    busy.append(load["busy_before"])
                if "loadavg_after" in load:
                    loads.append(load["loadavg_after"])
                if load.get("other_cpu_share") is not None:
                    shares.append(load["other_cpu_share"])
                waited += load.get("waited_seconds", 0)
    if not busy:
        return "Other load on the machine was not recorded for this run."
    text = (
        f"The machine is shared with other work. Before each of the {len(busy)} measurements the harness "
        f"waited until the cores were mostly idle (it waited {waited:.0f} s in all); the cores were then "
        f"{100 * min(busy):.0f}-{100 * max(busy):.0f}% busy (median {100 * sorted(busy)[len(busy) // 2]:.0f}%)"
    )
    if shares:
        text += (
            f". During the measurements, everything but our own server, load generator and writer (that is "
            f"Redis, PostgreSQL and any other program) used {100 * min(shares):.0f}-{100 * max(shares):.0f}% of "
            f"the machine's CPU (median {100 * sorted(shares)[len(shares) // 2]:.0f}%)"
        )
    return text + f"; the 1-minute load average after a measurement ranged {min(loads):.1f}-{max(loads):.1f}."


METHOD = """\
All four contenders run in one Django project (`benchmarks/benchsite`, `benchmarks/benchapp`), on the
same versions, behind the same ASGI application
(`AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(...)))`), served by the same uvicorn (one
worker, uvloop, `--ws {uvicorn_ws}`), on the same channels-redis `RedisChannelLayer` (host options from
`notify_kit.conf.redis_host`, channels-redis's default capacity of 100 and expiry of 60 s, a fresh key
prefix per run) and the same PostgreSQL database. A fresh server process is started for every
measurement and stopped by its PID. The writer is a separate process (`manage.py bench_writer`); the
WebSocket clients live in another one (`loadgen.py`, asyncio + `websockets`, all on loopback).

{contenders_table}

Fairness choices:
- One model class per contender with identical fields (`title`, `value`, `views`) and the same
  `FieldTracker(fields=["title", "value"])`, so that saving contender X's model runs only X's receivers.
  Every update changes both tracked fields; all four send on every such save.
- The same DRF `ModelSerializer` (`id`, `title`, `value`) produces every payload. Anyone may subscribe
  (`can_subscribe` returns True for notify_kit; DRF/DCRF use `AllowAny`; no DRF authentication classes,
  which spares the peers a per-delivery session lookup).
- django-rest-live 0.7.0 (its latest release) imports `channels.http.AsgiRequest`, removed in Channels 4.0.
  `benchapp/compat.py` aliases it to Django's `ASGIRequest` (the class Channels 3 deprecated it for); nothing
  else of it is changed. Its `retrieve` subscription receives every update of the model, not only the
  subscribed row (it joins one group per model and filters nothing): the client counts those frames as
  *spurious*, and the per-subscription copies as *duplicates*.
- DCRF and django-rest-live, like the issue's blog pattern, send with `async_to_sync(group_send)` inside
  `save()`; DCRF and django-rest-live re-read the row from the database for every subscriber when they
  deliver, so a quick later save can turn an earlier frame into a copy of a later value (counted as a
  duplicate, and the earlier update as lost).
- django-rest-live and DCRF connect their signal receivers when the routing/consumer module is imported;
  the writer imports `benchapp.routing` (a real project's Celery worker or management command must too).
- PostgreSQL runs with `synchronous_commit = off` for the benchmark database: with the fsync, identical
  plain-save runs on this VM ranged from 250 to 740 saves/s, which would drown the differences measured here.
  It makes the plain save faster, so the writer-cost ratios are, if anything, harsher on every contender.
- WebSocket compression is off on the clients (no permessage-deflate), and client pings are off.

Scenarios:
1. **Writer cost.** {writer_n} saves of one row (after 20 warm-up saves) with one subscribed client, repeated
   {writer_repeats} times, contenders interleaved; the table gives the median. *saves/s (incl. send)* counts
   until every notification has left the writer process (for notify_kit, whose background thread may still
   hold some when the loop ends, that includes `notifications.flush()`); *save loop only* stops the clock when
   the last `save()` returns. *plain save* is `PlainItem` (no tracker, no receivers). *frames / saves*
   counts every save of the runs, warm-up included; notify_kit folds queued updates of one row into one
   frame when its sender falls behind (the frame carries `coalesced`), so it may send fewer frames.
2. **Latency.** {latency_levels} clients subscribed to one row. The load generator asks the writer for one save
   at a time and waits until every client has it (or 30 s) before the next, {latency_gap_ms:.0f} ms apart:
   latency is `time.time()` at the client minus `time.time()` right after `save()` returned in the writer
   (same clock, same machine). Rounds: {latency_rounds}, after {latency_warmup} warm-up rounds; p50/p99 are over
   every (round, client) sample. *from save() call* is measured from just before `save()`, which includes the
   peers' in-save `async_to_sync` send. *server CPU ms/event* is the uvicorn process's user+system CPU time
   over the measured rounds divided by their number.
3. **Fan-out.** {fanout_clients} clients each subscribe to {fanout_subs} of {fanout_objects} rows (so every row has
   {per_row} subscribers); the writer then makes {fanout_updates} updates, round-robin over the rows, as fast
   as it can. The run ends when every client holds the final value of each of its rows, or after
   {fanout_quiet:.0f} s without a frame, or at a {fanout_deadline} s deadline. A *delivered pair* is an
   (update, subscriber) pair whose value arrived; *lost final states* counts (client, row) pairs whose last
   frame was not the row's final value. *deliveries/s* = delivered pairs / (last new delivery - writer start).
4. **Memory.** After one warm-up connection, {memory_clients} clients connect and subscribe to one row each
   and stay idle; the server's VmRSS (from `/proc/<pid>/status`) before and after, divided by the connections.
"""


CONTENDERS_TABLE = [
    ["contender", "model", "how it is wired (each project's documented usage)", "client frames"],
    [
        "notify_kit",
        "`NotifyItem(LiveModelMixin)`",
        "wiring from the app; `NotificationConsumer` at `ws/notifications/`",
        '`{"type": "subscribe", "model": "benchapp.notifyitem", "id": "<hashid>"}`',
    ],
    [
        "DCRF 1.3.0",
        "`DCRFItem`",
        "`class DCRFItemConsumer(ObserverModelInstanceMixin, GenericAsyncAPIConsumer)` with `queryset` "
        "and `serializer_class`",
        '`{"action": "subscribe_instance", "pk": 1, "request_id": 1}`',
    ],
    [
        "django-rest-live 0.7.0",
        "`RestLiveItem`",
        "`class RestLiveItemViewSet(ModelViewSet, RealtimeMixin)` registered on a `RealtimeRouter`; "
        "`router.as_consumer()`",
        '`{"type": "subscribe", "id": 1, "model": "benchapp.RestLiveItem", "action": "retrieve", "lookup_by": 1}`',
    ],
    [
        "bare Channels",
        "`BareItem`",
        "a 20-line `AsyncJsonWebsocketConsumer` that joins a group and forwards the pre-encoded text (it "
        "keeps Channels' `aclose_old_connections()` hop); the writer saves, serializes and **awaits "
        "`group_send` inside its long-lived event loop** (the floor)",
        '`{"id": 1}`',
    ],
]


def render(results: dict, json_path: Path) -> str:
    size = results["size"]
    per_row = size["fanout_clients"] * size["fanout_subs"] // size["fanout_objects"]
    method = METHOD.format(
        contenders_table=report.md_table(CONTENDERS_TABLE[0], CONTENDERS_TABLE[1:]),
        uvicorn_ws=results.get("uvicorn_ws", "websockets"),
        per_row=per_row,
        latency_gap_ms=1000 * size["latency_gap"],
        latency_rounds=", ".join(
            f"{k} at {v} subscriber{'s' if int(k) > 1 else ''}" for k, v in size["latency_rounds"].items()
        ),
        **{k: v for k, v in size.items() if k not in ("latency_rounds",)},
    )
    parts = [
        "# Performance: notify_kit side by side with DCRF, django-rest-live and bare Channels",
        "",
        f"Measured on {results['date'][:10]} by `python benchmarks/run.py` (run `{results['run_id']}`; raw numbers "
        f"in `{json_path}`). Every figure below comes from that one run, except the sections kept from their own runs "
        "(per-save profile, bulk writes, collections), which say so. Goals are those of issues 4 and 12.",
        "",
        "Reproduce from a fresh clone (PostgreSQL on 127.0.0.1:5432 with trust auth and Redis on 127.0.0.1:6379):",
        "",
        "```sh",
        "python3 benchmarks/run.py          # full size, about 15 minutes; rewrites this page and the plot",
        "python3 benchmarks/run.py --smoke  # tiny sizes, checks the harness only (CI)",
        "```",
        "",
        "## Machine",
        "",
        _machine(results),
        "",
        _load(results),
        "",
        "## Goals",
        "",
        report.goals_table(results),
        "",
        "Issue 12 (the writer's cost; the SQLite writer is measured in its own run, see the per-save profile below):",
        "",
        report.writer_goals_table(results),
        "",
        "## Results",
        "",
        "### 1. Writer cost",
        "",
        report.writer_table(results),
        "",
        "### 2. Latency from save() returning to the WebSocket client",
        "",
        "![latency vs subscribers](latency-vs-subscribers.png)",
        "",
        report.latency_table(results),
        "",
        "### 3. Fan-out",
        "",
        report.fanout_table(results),
        "",
        "### 4. Memory per idle subscribed connection",
        "",
        report.memory_table(results),
        "",
        "## Method",
        "",
        method,
        "## Analysis",
        "",
        _analysis(results, json_path),
    ]
    # The bulk-write section is measured apart (benchmarks/bulk.py) and kept across full runs, and
    # so is the per-save profile (benchmarks/profile_save.py, written up in profile.md). So is the
    # collections section (run.py --scenarios collections writes collections.md); last.
    for kept in (BENCH / "profile.md", BENCH / "bulk.md", BENCH / "collections.md"):
        if kept.exists():
            parts[-1] = parts[-1].rstrip("\n")  # one blank line before each kept section
            parts += ["", kept.read_text()]
    return "\n".join(parts).rstrip() + "\n"


def _analysis(results: dict, json_path: Path) -> str:
    path = BENCH / "analysis.md"
    if not path.exists():
        return "_No analysis has been written for this run yet._\n"
    text = path.read_text()
    first, _, body = text.partition("\n")
    written_for = first.strip().removeprefix("<!-- run:").removesuffix("-->").strip()
    if written_for != results["run_id"]:
        return (
            f"_The analysis below was written for run `{written_for}`; the numbers above come from run "
            f"`{results['run_id']}`. Read it for the causes, and check each figure against the tables._\n\n" + body
        )
    return body


COLLECTIONS_METHOD = """\
{users} users, each on its own WebSocket (logged in by a session cookie through the same
`AuthMiddlewareStack`), follow "the rows I may see" of a model with {rows} rows, {per_user} per user
(row *i* belongs to user *i* mod {users}). Each system has its own model with the same fields
(`owner`, `title`, `value`) and is wired as its project documents it:

- notify_kit: `NotifyOwnedItem` declares `live_audiences()` -> `["user:<owner_id>"]`,
  `live_audiences_of(user)` -> `["user:<pk>"]` and a `live_snapshot_queryset(user)` narrowed to the
  user's rows; the client sends `{{"type": "subscribe", "model": "benchapp.notifyowneditem",
  "snapshot": true, "request_id": 1}}` and starts from the snapshot in the answer.
- DCRF 1.3.0: a `GenericAsyncAPIConsumer` with `@model_observer(DCRFOwnedItem,
  serializer_class=...)`, `groups_for_signal` -> `owner__<owner_id>`, `groups_for_consumer(user)` ->
  `owner__<user.pk>`; the client sends `{{"action": "subscribe_owned", "request_id": 1}}`. DCRF keeps
  each instance's groups from when it was loaded, so a moved row is a `delete` for the old owner's
  group and a `create` for the new one.
- django-rest-live 0.7.0: a `ModelViewSet` with `RealtimeMixin` whose `get_queryset()` is
  `filter(owner=self.request.user)` (`SessionAuthentication`, which reads the user Channels put on
  the scope); the client sends `{{"type": "subscribe", "id": 1, "model": "benchapp.RestLiveOwnedItem",
  "action": "list"}}`. For every saved row it runs that queryset once per subscribed socket, on the
  server, to decide created/updated/deleted.

The peers send no initial list (a client fetches it over REST), so their clients start from the
set-up's truth. The writer (another process) then makes {writes} measured writes after
{warmup} warm-up writes, one at a time: a random row gets a new `value` and, every
{move_every}th write, a new owner chosen at random (a *move*: `deleted` for the old owner, `created`
for the new one). Before the next write the harness waits until the frames that write owes have
arrived (30 s at most) and the server process has been idle for 100 ms, so each write is measured
alone. Latency is `time.time()` at the client minus `time.time()` right after `save()` returned, for
every frame a measured write owes (p50/p99 over those frames; *undelivered* counts owed frames that
never came). *Server SQL* is every statement the uvicorn process ran during the measured writes (an
execute wrapper on each of its database connections, `benchapp/sqlcount.py`), divided by the frames
delivered for them. A *leak* is a frame showing a client a row state written while the row
belonged to another user, or a `deleted` for a row the client never held; *missed* counts (client,
row) pairs where the client's final view (first view plus every frame, in order of arrival)
differs from the database after the last write (a row missing, extra, or with another value),
out of all rows in all views.
"""


def collections_section(results: dict, json_path: Path) -> str:
    size = results["size"]
    m = results["machine"]
    p = m.get("packages", {})
    users, rows = size["collections_users"], size["collections_rows"]
    method = COLLECTIONS_METHOD.format(
        users=users,
        rows=rows,
        per_user=rows // max(1, users),
        writes=size["collections_writes"],
        warmup=size["collections_warmup"],
        move_every=size["collections_move_every"],
    )
    machine = (
        f"{m.get('nproc')} cores ({m.get('cpu', 'unknown CPU')}), {m.get('ram_gib')} GiB, Linux {m.get('kernel', '')}, "
        f"Python {m.get('python', '')}, a machine shared with other work; {m.get('database', '')}; Redis "
        f"{m.get('redis_server')}; Django {p.get('Django')}, Channels {p.get('channels')}, channels-redis "
        f"{p.get('channels-redis')}, uvicorn {p.get('uvicorn')} (1 worker); notify_kit commit "
        f"{m.get('notify_kit_commit', '?')}" + (" plus uncommitted changes" if m.get("notify_kit_dirty") else "")
    )
    parts = [
        report.COLLECTIONS_START,
        "## Collections",
        "",
        f"Issue 10's scenario, measured on {results['date'][:10]} by `python benchmarks/run.py --scenarios "
        f"collections` (run `{results['run_id']}`; raw numbers in `{json_path}`) on {machine}.",
        "",
        report.collections_goals_table(results),
        "",
        report.collections_table(results),
        "",
        "### Method",
        "",
        method,
        "### Analysis",
        "",
        _collections_analysis(results),
    ]
    return "\n".join(parts).rstrip() + "\n"


def _collections_analysis(results: dict) -> str:
    path = BENCH / "collections-analysis.md"
    if not path.exists():
        return "_No analysis has been written for this run yet._\n"
    first, _, body = path.read_text().partition("\n")
    written_for = first.strip().removeprefix("<!-- run:").removesuffix("-->").strip()
    if written_for != results["run_id"]:
        return (
            f"_The analysis below was written for run `{written_for}`; the numbers above come from run "
            f"`{results['run_id']}`. Read it for the causes, and check each figure against the tables._\n\n" + body
        )
    return body
