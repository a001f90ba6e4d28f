"""The collections scenario's load generator (issue 10): one user per socket, each following its rows.

Run through loadgen.py (``"mode": "collections"``). Every client is a different user, logged in
by its session cookie, and subscribes to "the rows I may see" the way each system documents it:

* notify_kit: a collection subscription with a snapshot (the snapshot is the client's first view);
* DCRF: ``subscribe_owned`` on a consumer whose ``model_observer`` has one group per owner;
* django-rest-live: a ``list`` subscription of a view whose ``get_queryset`` is the user's rows.

The peers send no initial list (a client would GET it over REST), so their first view is the
set-up's truth. The writer then makes one write at a time (``bench_writer --mode collections``):
a new value for a random row, and every few writes a new owner. Before the next write the harness
waits until every frame that write owes has arrived (or a timeout) and the server is idle again,
so each write is measured alone: latency is ``time.time()`` at the client minus ``time.time()``
right after ``save()`` returned.

What is checked, per system:

* leaks: a frame that shows a client a row state written while the row belonged to another user,
  or announces the deletion of a row the client never held;
* missed: (client, row) pairs where the client's final view (first view + every frame, in order)
  differs from the database after the last write (a row missing, extra, or with another value);
* server SQL per delivery: the server process's statement counter (benchapp/sqlcount.py) over the
  measured writes, divided by the frames delivered for them.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

import loadgen
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

# -- the three wire protocols -------------------------------------------------------------------


class NotifyKit:
    barrier = None

    def __init__(self, hashids: dict[str, int]) -> None:
        self.pk_of = hashids

    def subscribe_frames(self) -> list[str]:
        return [
            json.dumps({"type": "subscribe", "model": "benchapp.notifyowneditem", "snapshot": True, "request_id": 1})
        ]

    def ack(self, msg: dict[str, Any]) -> dict[int, int] | None:
        """The first view this acknowledgement carries ({} when none), or None if it is no ack."""
        if msg.get("type") == "error":
            raise RuntimeError(f"notify_kit refused the subscription: {msg}")
        if msg.get("type") != "subscribed":
            return None
        if msg.get("truncated"):
            raise RuntimeError("notify_kit truncated the snapshot")
        return {self.pk_of[row["id"]]: row["value"] for row in msg.get("data", [])}

    def event(self, msg: dict[str, Any]) -> tuple[str, int, int | None] | None:
        kind = msg.get("type")
        if kind not in ("created", "updated", "deleted"):
            return None
        if msg.get("request_id") != 1:
            raise RuntimeError(f"notify_kit event without its subscription's request_id: {msg}")
        value = None if kind == "deleted" else msg["data"]["value"]
        return kind, self.pk_of[msg["id"]], value


class DCRF:
    barrier = None
    KINDS = {"create": "created", "update": "updated", "delete": "deleted"}

    def __init__(self, hashids: dict[str, int]) -> None:
        pass

    def subscribe_frames(self) -> list[str]:
        return [json.dumps({"action": "subscribe_owned", "request_id": 1})]

    def ack(self, msg):
        if msg.get("action") != "subscribe_owned":
            return None
        if msg.get("response_status") != 201:
            raise RuntimeError(f"DCRF refused the subscription: {msg}")
        return {}

    def event(self, msg):
        kind = self.KINDS.get(msg.get("action"))
        if kind is None:
            return None
        data = msg["data"]
        return kind, data["id"], None if kind == "deleted" else data["value"]


class RestLive:
    # django-rest-live answers nothing to a subscribe; its error for unsubscribing an unknown id
    # proves the subscribe before it was handled (one frame at a time, in order).
    barrier = json.dumps({"type": "unsubscribe", "id": -1})
    KINDS = {"CREATED": "created", "UPDATED": "updated", "DELETED": "deleted"}

    def __init__(self, hashids: dict[str, int]) -> None:
        pass

    def subscribe_frames(self):
        return [json.dumps({"type": "subscribe", "id": 1, "model": "benchapp.RestLiveOwnedItem", "action": "list"})]

    def ack(self, msg):
        if msg.get("type") == "error":
            if msg.get("id") != -1:
                raise RuntimeError(f"django-rest-live refused the subscription: {msg}")
            return {}
        return None

    def event(self, msg):
        if msg.get("type") != "broadcast":
            return None
        kind = self.KINDS[msg["action"]]
        inst = msg["instance"]
        return kind, inst["id"], None if kind == "deleted" else inst["value"]


PROTOCOLS = {"notify_kit": NotifyKit, "dcrf": DCRF, "rest_live": RestLive}


# -- clients ----------------------------------------------------------------------------------------------


class Client:
    def __init__(self, run: Run, user: int, session: str) -> None:
        self.run, self.user, self.session = run, user, session
        self.first_view: dict[int, int] | None = None
        self.frames: list[tuple[float, str, int, int | None]] = []  # (arrival, kind, pk, value)
        self.acked = asyncio.Event()
        self.ws: Any = None
        self.reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.ws = await connect(
            self.run.cfg["url"],
            origin="http://127.0.0.1",
            additional_headers={"Cookie": f"sessionid={self.session}"},
            compression=None,
            ping_interval=None,
            max_queue=4096,
            max_size=2**22,
            open_timeout=60,
            close_timeout=2,
        )
        self.reader = asyncio.create_task(self.read())
        for frame in self.run.protocol.subscribe_frames():
            await self.ws.send(frame)
        if self.run.protocol.barrier:
            await self.ws.send(self.run.protocol.barrier)
        await self.acked.wait()

    async def read(self) -> None:
        protocol, run = self.run.protocol, self.run
        try:
            async for raw in self.ws:
                t = time.time()
                run.last_frame = time.monotonic()
                msg = json.loads(raw)
                event = protocol.event(msg)
                if event is not None:
                    self.frames.append((t, *event))
                    run.on_frame(self, *event)
                    continue
                view = protocol.ack(msg)
                if view is not None and self.first_view is None:
                    self.first_view = view
                    self.acked.set()
        except asyncio.CancelledError:
            raise
        except ConnectionClosed:
            pass
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            run.errors.append(f"user {self.user}: {type(exc).__name__}: {exc}")
            self.acked.set()

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 2)
            except (TimeoutError, OSError, ConnectionClosed):
                pass


class Run:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        rows = cfg["rows"]  # [[pk, hashid, owner], ...]
        self.protocol = PROTOCOLS[cfg["contender"]]({h: pk for pk, h, _ in rows if h})
        self.initial_owner = {pk: owner for pk, _, owner in rows}
        self.errors: list[str] = []
        self.last_frame = time.monotonic()
        self.values_seen: set[tuple[int, int, int]] = set()  # (user, pk, value)
        self.deletes_seen: dict[tuple[int, int], int] = {}  # (user, pk) -> deleted frames
        self.wanted: list[tuple] = []
        self.changed = asyncio.Event()

    def on_frame(self, client: Client, kind: str, pk: int, value: int | None) -> None:
        if kind == "deleted":
            key = (client.user, pk)
            self.deletes_seen[key] = self.deletes_seen.get(key, 0) + 1
        else:
            self.values_seen.add((client.user, pk, value))
        if self.wanted:
            self.changed.set()

    def owed(self) -> bool:
        """Whether some frame the current write owes has not arrived yet."""
        for want in self.wanted:
            if want[0] == "value" and want[1:] not in self.values_seen:
                return True
            if want[0] == "deleted" and self.deletes_seen.get(want[1:3], 0) < want[3]:
                return True
        return False


class Writer(loadgen.Writer):
    """The writer, with room for its last line: every row's final state (10,000 rows: ~300 KB)."""

    async def start(self) -> None:
        self.stderr = open(self.stderr_path, "ab")  # noqa: ASYNC230 - once per run, before any load
        self.proc = await asyncio.create_subprocess_exec(
            *self.cmd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self.stderr,
            limit=2**25,
        )


def server_sql(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/sql/", timeout=10) as answer:
        return int(json.loads(answer.read())["queries"])


async def settle(pid: int, limit: float = 10.0, window: float = 0.1) -> float:
    """Wait until the server used at most one clock tick of CPU over ``window``; return the wait."""
    t0 = time.monotonic()
    before = loadgen.cpu_seconds(pid)
    while time.monotonic() - t0 < limit:
        await asyncio.sleep(window)
        now = loadgen.cpu_seconds(pid)
        if now - before <= 0.011:
            break
        before = now
    return time.monotonic() - t0


async def main(cfg: dict[str, Any]) -> dict[str, Any]:
    run = Run(cfg)
    started = time.monotonic()
    deadline = started + cfg["deadline"]
    pid, port = cfg["server_pid"], cfg["port"]
    clients = [Client(run, u["pk"], u["session"]) for u in cfg["users"]]
    sem = asyncio.Semaphore(cfg.get("connect_concurrency", 50))

    async def one(client: Client) -> None:
        async with sem:
            await client.open()

    t_sub = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(one(c) for c in clients)), cfg.get("subscribe_timeout", 300))
    if run.errors:
        raise RuntimeError("; ".join(run.errors[:5]))
    result: dict[str, Any] = {"mode": "collections", "contender": cfg["contender"], "clients": len(clients)}
    result["subscribe_seconds"] = time.monotonic() - t_sub
    truth0: dict[int, dict[int, int]] = {c.user: {} for c in clients}
    for pk, owner in run.initial_owner.items():
        truth0.setdefault(owner, {})[pk] = 0
    snapshot_wrong = 0
    for c in clients:
        if cfg["contender"] == "notify_kit":
            snapshot_wrong += c.first_view != truth0[c.user]
        else:
            c.first_view = dict(truth0[c.user])  # what the client's REST fetch would return
    result["snapshot_mismatches"] = snapshot_wrong

    writer = Writer(cfg["writer_cmd"], cfg["writer_log"])
    writes: list[dict[str, Any]] = []
    owner_now = dict(run.initial_owner)
    moved_away: dict[tuple[int, int], int] = {}
    round_waits: list[float] = []
    try:
        await writer.start()
        await writer.line(120)  # ready
        warmup, rounds = cfg.get("warmup", 3), cfg["writes"]
        writes_end = min(deadline, time.monotonic() + cfg.get("writes_deadline", cfg["deadline"]))
        sql0 = cpu0 = None
        for r in range(warmup + rounds):
            if time.monotonic() >= writes_end:
                result["cut_by_deadline_after_writes"] = r
                break
            if r == warmup:
                sql0 = await asyncio.to_thread(server_sql, port)
                cpu0 = loadgen.cpu_seconds(pid)
                frames0 = sum(len(c.frames) for c in clients)
            t_round = time.monotonic()
            await writer.send("go\n")
            w = await writer.line(60)
            w["measured"] = r >= warmup
            writes.append(w)
            pk, old, new = w["pk"], w["old"], w["new"]
            owner_now[pk] = new
            wanted: list[tuple] = [("value", new, pk, w["seq"])]
            if old != new:
                moved_away[(old, pk)] = moved_away.get((old, pk), 0) + 1
                wanted.append(("deleted", old, pk, moved_away[(old, pk)]))
            run.wanted = wanted
            end = time.monotonic() + cfg.get("round_timeout", 30)
            while run.owed() and time.monotonic() < end:
                run.changed.clear()
                try:
                    await asyncio.wait_for(run.changed.wait(), max(0.001, end - time.monotonic()))
                except TimeoutError:
                    break
            run.wanted = []
            await settle(pid)
            round_waits.append(time.monotonic() - t_round)
            await asyncio.sleep(cfg.get("gap", 0.02))
        measured_frames = sum(len(c.frames) for c in clients) - frames0 if sql0 is not None else 0
        sql1 = await asyncio.to_thread(server_sql, port) if sql0 is not None else None
        cpu1 = loadgen.cpu_seconds(pid)
        await writer.send("final\n")
        truth_rows = (await writer.line(120))["final"]
        await writer.send("quit\n")
        await writer.stop()
        await loadgen.wait_quiet(run, None, cfg.get("quiet", 2.0), deadline)  # late frames count too
    finally:
        if writer.proc is not None and writer.proc.returncode is None:
            await writer.stop(5)
        await loadgen.close_all(clients)

    result.update(check(clients, writes, run.initial_owner, truth_rows))
    measured = sum(1 for w in writes if w["measured"])
    result.update(
        writes=len(writes),
        measured_writes=measured,
        moves=sum(1 for w in writes if w["old"] != w["new"]),
        measured_frames=measured_frames,
        server_sql=(sql1 - sql0) if sql0 is not None else None,
        server_sql_per_delivery=((sql1 - sql0) / measured_frames) if sql0 is not None and measured_frames else None,
        server_sql_per_write=((sql1 - sql0) / measured) if sql0 is not None and measured else None,
        server_cpu_ms_per_write=(1000 * (cpu1 - cpu0) / measured) if cpu0 is not None and measured else None,
        round_seconds=loadgen.summary(round_waits),
        harness_errors=run.errors[:20],
    )
    return result


def check(clients: list[Client], writes: list[dict], initial_owner: dict[int, int], truth_rows: list) -> dict:
    """Leaks, misses and latencies, from every frame every client received and the writer's reports."""
    owner_of_state = {(pk, 0): owner for pk, owner in initial_owner.items()}  # (pk, value) -> owner then
    ever_owned = {(owner, pk) for pk, owner in initial_owner.items()}
    for w in writes:
        owner_of_state[(w["pk"], w["seq"])] = w["new"]
        ever_owned.add((w["new"], w["pk"]))
    truth: dict[int, dict[int, int]] = {c.user: {} for c in clients}
    for pk, owner, value in truth_rows:
        truth.setdefault(owner, {})[pk] = value

    leaks = unknown = 0
    leak_examples: list[str] = []
    value_arrival: dict[tuple[int, int, int], float] = {}
    delete_arrivals: dict[tuple[int, int], list[float]] = {}
    missed = missing_rows = extra_rows = stale_values = 0
    frames = {"created": 0, "updated": 0, "deleted": 0}
    for c in clients:
        view = dict(c.first_view or {})
        for t, kind, pk, value in c.frames:
            frames[kind] += 1
            if kind == "deleted":
                if (c.user, pk) not in ever_owned:
                    leaks += 1
                    if len(leak_examples) < 5:
                        leak_examples.append(f"user {c.user}: deleted of row {pk}, never theirs")
                delete_arrivals.setdefault((c.user, pk), []).append(t)
                view.pop(pk, None)
                continue
            owner = owner_of_state.get((pk, value))
            if owner is None:
                unknown += 1
            elif owner != c.user:
                leaks += 1
                if len(leak_examples) < 5:
                    leak_examples.append(f"user {c.user}: {kind} of row {pk} value {value}, which was user {owner}'s")
            value_arrival.setdefault((c.user, pk, value), t)
            view[pk] = value
        want = truth.get(c.user, {})
        missing_rows += len(want.keys() - view.keys())
        extra_rows += len(view.keys() - want.keys())
        stale_values += sum(1 for pk in want.keys() & view.keys() if want[pk] != view[pk])
    missed = missing_rows + extra_rows + stale_values

    latencies: list[float] = []  # from save() returning
    from_call: list[float] = []  # from just before save(): includes a send made inside save()
    undelivered = 0
    away_seen: dict[tuple[int, int], int] = {}
    for w in writes:
        pk, old, new = w["pk"], w["old"], w["new"]
        expected = [("value", new)] + ([("deleted", old)] if old != new else [])
        for kind, user in expected:
            if kind == "value":
                t = value_arrival.get((user, pk, w["seq"]))
            else:
                n = away_seen.get((user, pk), 0)
                away_seen[(user, pk)] = n + 1
                arrivals = sorted(delete_arrivals.get((user, pk), []))
                t = arrivals[n] if n < len(arrivals) else None
            if t is None:
                undelivered += w["measured"]
            elif w["measured"]:
                latencies.append(t - w["t1"])
                from_call.append(t - w["t0"])
    return {
        "frames": frames,
        "leaks": leaks,
        "leak_examples": leak_examples,
        "frames_of_unknown_state": unknown,
        "missed": missed,
        "missed_detail": {"missing_rows": missing_rows, "extra_rows": extra_rows, "stale_values": stale_values},
        "views_checked": len(clients),
        "rows_in_views": sum(len(v) for v in truth.values()),
        "latency": loadgen.summary(latencies),
        "latency_from_call": loadgen.summary(from_call),
        "undelivered": undelivered,
    }
