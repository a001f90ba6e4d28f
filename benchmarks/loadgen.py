"""The load generator: N WebSocket clients in one asyncio process, and the writer it drives.

Run by run.py inside benchmarks/.venv as ``python loadgen.py CONFIG.json RESULT.json``. It opens
the clients against one contender's path on the running uvicorn server, subscribes them the way
that contender documents, waits until every subscription is confirmed, then starts the writer (a
``manage.py bench_writer`` process) and records what every client receives, with
``time.time()`` at arrival. Everything is bounded: connects, subscriptions, each round and the
whole run have deadlines, and the writer is stopped by its own PID.

Modes: ``writer_cost``, ``latency``, ``fanout``, ``memory`` (see run.py for what each measures), and
``collections``, which lives in loadgen_collections.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import sys
import time
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

# -- the four wire protocols ------------------------------------------------------------------


class Protocol:
    """How a contender's client subscribes, knows it is subscribed, and reads an update."""

    barrier: str | None = None  # a frame whose answer proves the earlier ones were handled

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects = objects

    def subscribe_frames(self, pks: list[int]) -> list[str]:
        raise NotImplementedError

    def acks_expected(self, pks: list[int]) -> int:
        return len(pks)

    def is_ack(self, msg: dict[str, Any]) -> bool:
        raise NotImplementedError

    def update_of(self, msg: dict[str, Any]) -> tuple[int, int] | None:
        """(pk, value) of an update frame, or None for anything else."""
        raise NotImplementedError

    def coalesced_in(self, msg: dict[str, Any]) -> int:
        """How many earlier updates this frame says it folds in (notify_kit's ``coalesced``)."""
        return 0


class NotifyKitProtocol(Protocol):
    label = "benchapp.notifyitem"

    def __init__(self, objects):
        super().__init__(objects)
        self.hashid_of = {o["pk"]: o["hashid"] for o in objects}
        self.pk_of = {o["hashid"]: o["pk"] for o in objects}

    def subscribe_frames(self, pks):
        return [
            json.dumps({"type": "subscribe", "model": self.label, "id": self.hashid_of[pk], "request_id": i})
            for i, pk in enumerate(pks)
        ]

    def is_ack(self, msg):
        if msg.get("type") == "error":
            raise RuntimeError(f"notify_kit refused a subscription: {msg}")
        return msg.get("type") == "subscribed"

    def update_of(self, msg):
        if msg.get("type") != "updated":
            return None
        return self.pk_of[msg["id"]], msg["data"]["value"]

    def coalesced_in(self, msg):
        return int(msg.get("coalesced", 0))


class DCRFProtocol(Protocol):
    def subscribe_frames(self, pks):
        return [json.dumps({"action": "subscribe_instance", "pk": pk, "request_id": i}) for i, pk in enumerate(pks)]

    def is_ack(self, msg):
        if msg.get("action") == "subscribe_instance":
            if msg.get("response_status") != 201:
                raise RuntimeError(f"DCRF refused a subscription: {msg}")
            return True
        return False

    def update_of(self, msg):
        if msg.get("action") != "update":
            return None
        return msg["data"]["id"], msg["data"]["value"]


class RestLiveProtocol(Protocol):
    label = "benchapp.RestLiveItem"
    # django-rest-live answers nothing to a successful subscribe. Its consumer handles one frame
    # at a time, in order, so the error it sends for unsubscribing an unknown request id proves
    # that every earlier subscribe of this socket was handled.
    barrier = json.dumps({"type": "unsubscribe", "id": -1})

    def subscribe_frames(self, pks):
        return [
            json.dumps({"type": "subscribe", "id": i, "model": self.label, "action": "retrieve", "lookup_by": pk})
            for i, pk in enumerate(pks)
        ]

    def acks_expected(self, pks):
        return 1

    def is_ack(self, msg):
        if msg.get("type") == "error" and msg.get("id") != -1:
            raise RuntimeError(f"django-rest-live refused a subscription: {msg}")
        return msg.get("type") == "error" and msg.get("id") == -1

    def update_of(self, msg):
        if msg.get("type") != "broadcast":
            return None
        return msg["instance"]["id"], msg["instance"]["value"]


class BareProtocol(Protocol):
    def subscribe_frames(self, pks):
        return [json.dumps({"id": pk, "request_id": i}) for i, pk in enumerate(pks)]

    def is_ack(self, msg):
        return msg.get("type") == "subscribed"

    def update_of(self, msg):
        if msg.get("type") != "updated":
            return None
        return msg["id"], msg["data"]["value"]


PROTOCOLS = {"notify_kit": NotifyKitProtocol, "dcrf": DCRFProtocol, "rest_live": RestLiveProtocol, "bare": BareProtocol}

# -- clients ------------------------------------------------------------------------------------


class Run:
    """Shared state of one load-generator run: what arrived, when, and who is waiting for what."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.protocol: Protocol = PROTOCOLS[cfg["contender"]](cfg["objects"])
        self.min_seq = 0  # values below this (set-up, warm-up) are ignored
        self.last_frame = time.monotonic()
        self.frames = 0
        self.errors: list[str] = []
        # latency mode: seq -> arrival times; event set when all clients have it
        self.arrivals: dict[int, list[float]] = {}
        self.waiting: dict[int, tuple[int, asyncio.Event]] = {}
        # fanout mode: clients that hold the final value of each of their objects
        self.final: dict[int, int] | None = None
        self.complete_clients = 0
        self.all_complete = asyncio.Event()
        self.last_unique_arrival = 0.0
        self.on_arrival: Any = None  # called after each new value, while a mode waits for one

    def arrived(self, client: Client, pk: int, value: int, t: float, coalesced: int = 0) -> None:
        if value < self.min_seq:
            return
        if pk not in client.values:
            client.spurious += 1  # an update of an object this client did not subscribe to
            return
        client.update_frames += 1
        seen = client.values[pk]
        if value in seen:
            client.duplicates += 1
            return
        seen.add(value)
        if coalesced:
            client.coalesced_frames.append((pk, value, coalesced))
        client.last[pk] = value
        self.last_unique_arrival = t
        times = self.arrivals.get(value)
        if times is not None:
            times.append(t)
            wait = self.waiting.get(value)
            if wait is not None and len(times) >= wait[0]:
                wait[1].set()
        if self.final is not None:
            self.check_complete(client)
        if self.on_arrival is not None:
            self.on_arrival()

    def check_complete(self, client: Client) -> None:
        if client.complete or self.final is None:
            return
        if all(client.last[pk] == self.final.get(pk, client.last[pk]) for pk in client.values):
            client.complete = True
            self.complete_clients += 1
            if self.complete_clients >= self.cfg["clients"]:
                self.all_complete.set()


class Client:
    def __init__(self, run: Run, index: int, pks: list[int]) -> None:
        self.run, self.index, self.pks = run, index, pks
        self.values: dict[int, set[int]] = {pk: set() for pk in pks}
        self.last: dict[int, int | None] = {pk: None for pk in pks}
        self.acks = 0
        self.acked = asyncio.Event()
        self.spurious = self.duplicates = self.frames = self.update_frames = 0
        # (pk, value, n) of frames that say they fold in the n previous updates of their row
        self.coalesced_frames: list[tuple[int, int, int]] = []
        self.complete = False
        self.ws: Any = None
        self.reader: asyncio.Task[None] | None = None

    def coalesced_within(self, first: int, last: int, stride: int = 1) -> int:
        """Reported folded-in updates whose values lie in [first, last] (a row's values step by stride)."""
        return sum(
            sum(1 for i in range(1, n + 1) if first <= value - i * stride <= last)
            for _pk, value, n in self.coalesced_frames
        )

    async def open(self, url: str) -> None:
        self.ws = await connect(
            url,
            origin="http://127.0.0.1",
            compression=None,  # no permessage-deflate, for every contender alike
            ping_interval=None,
            max_queue=4096,
            max_size=2**20,
            open_timeout=60,
            close_timeout=2,
        )
        self.reader = asyncio.create_task(self.read())

    async def subscribe(self) -> None:
        protocol = self.run.protocol
        self.expected_acks = protocol.acks_expected(self.pks)
        for frame in protocol.subscribe_frames(self.pks):
            await self.ws.send(frame)
        if protocol.barrier:
            await self.ws.send(protocol.barrier)
        await self.acked.wait()

    async def read(self) -> None:
        protocol, run = self.run.protocol, self.run
        try:
            async for raw in self.ws:
                t = time.time()
                run.last_frame = time.monotonic()
                run.frames += 1
                self.frames += 1
                msg = json.loads(raw)
                update = protocol.update_of(msg)
                if update is not None:
                    run.arrived(self, update[0], update[1], t, protocol.coalesced_in(msg))
                elif protocol.is_ack(msg):
                    self.acks += 1
                    if self.acks >= self.expected_acks:
                        self.acked.set()
        except asyncio.CancelledError:
            raise
        except ConnectionClosed:
            pass  # the end of a socket, ours or the server's
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:  # a frame the harness cannot read
            run.errors.append(f"client {self.index}: {type(exc).__name__}: {exc}")
            self.acked.set()

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 2)
            except (TimeoutError, OSError, ConnectionClosed):
                pass  # closing is best effort: the process exits next


# -- helpers ------------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[11], fields[12] are utime, stime (the 14th and 15th fields of stat)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50": percentile(values, 0.5),
        "p90": percentile(values, 0.9),
        "p99": percentile(values, 0.99),
        "max": max(values) if values else None,
        "mean": statistics.fmean(values) if values else None,
    }


class Writer:
    """The writer subprocess: JSON lines on stdout, optional ``go`` lines on stdin."""

    def __init__(self, cmd: list[str], stderr_path: str) -> None:
        self.cmd, self.stderr_path = cmd, stderr_path
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.stderr = open(self.stderr_path, "ab")  # noqa: ASYNC230 - once per run, before any load
        self.proc = await asyncio.create_subprocess_exec(
            *self.cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=self.stderr
        )

    async def line(self, timeout: float) -> dict[str, Any]:
        while True:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not raw:
                raise RuntimeError(f"writer exited early (see {self.stderr_path})")
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if "warning" in msg:
                continue
            return msg

    async def send(self, text: str) -> None:
        self.proc.stdin.write(text.encode())
        await self.proc.stdin.drain()

    async def stop(self, timeout: float = 30) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.stdin and not self.proc.stdin.is_closing():
                self.proc.stdin.close()
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()  # this process's own child, by its handle (its PID)
            await self.proc.wait()
        finally:
            self.stderr.close()


# -- the run --------------------------------------------------------------------------------------


async def open_clients(run: Run, assignments: list[list[int]]) -> list[Client]:
    cfg = run.cfg
    sem = asyncio.Semaphore(cfg.get("connect_concurrency", 50))
    clients = [Client(run, i, pks) for i, pks in enumerate(assignments)]

    async def one(client: Client) -> None:
        async with sem:
            await client.open(cfg["url"])
            await client.subscribe()

    await asyncio.wait_for(asyncio.gather(*(one(c) for c in clients)), cfg.get("subscribe_timeout", 180))
    if run.errors:
        raise RuntimeError("; ".join(run.errors[:5]))
    return clients


async def close_all(clients: list[Client]) -> None:
    """Close every socket at once, bounded: a server still busy with a backlog may not answer."""
    try:
        await asyncio.wait_for(asyncio.gather(*(c.close() for c in clients), return_exceptions=True), 20)
    except TimeoutError:
        pass  # the sockets die with this process


async def wait_quiet(run: Run, done: asyncio.Event | None, quiet: float, deadline: float) -> str:
    """Wait until ``done`` is set, no frame arrived for ``quiet`` seconds, or the deadline passes."""
    while True:
        if done is not None and done.is_set():
            return "complete"
        now = time.monotonic()
        if now >= deadline:
            return "deadline"
        if now - run.last_frame >= quiet:
            return "quiet"
        try:
            if done is not None:
                await asyncio.wait_for(done.wait(), 0.2)
            else:
                await asyncio.sleep(0.2)
        except TimeoutError:
            pass


async def main(cfg: dict[str, Any]) -> dict[str, Any]:
    if cfg["mode"] == "collections":  # one user per socket, collections: its own module
        import loadgen_collections

        return await loadgen_collections.main(cfg)
    run = Run(cfg)
    mode = cfg["mode"]
    pks = [o["pk"] for o in cfg["objects"]]
    started = time.monotonic()
    deadline = started + cfg["deadline"]
    server_pid = cfg["server_pid"]
    result: dict[str, Any] = {"mode": mode, "contender": cfg["contender"]}
    cpu0 = time.process_time()

    if mode == "memory":
        warm = await open_clients(run, [[pks[0]]])
        await close_all(warm)
        await asyncio.sleep(cfg.get("settle", 2.0))
        rss0 = rss_kib(server_pid)
        clients = await open_clients(run, [[pks[i % len(pks)]] for i in range(cfg["clients"])])
        await asyncio.sleep(cfg.get("settle", 2.0))
        rss1 = rss_kib(server_pid)
        result.update(
            clients=len(clients),
            rss_before_kib=rss0,
            rss_after_kib=rss1,
            kib_per_connection=(rss1 - rss0) / len(clients),
        )
        await close_all(clients)
        return result

    if mode == "fanout":
        per = cfg["subs_per_client"]
        assignments = [[pks[(i * per + j) % len(pks)] for j in range(per)] for i in range(cfg["clients"])]
    else:
        assignments = [[pks[0]] for _ in range(cfg["clients"])]
    t_sub0 = time.monotonic()
    clients = await open_clients(run, assignments)
    result["subscribe_seconds"] = time.monotonic() - t_sub0
    run.min_seq = cfg["seq_base"]
    writer = Writer(cfg["writer_cmd"], cfg["writer_log"])
    try:
        if mode == "writer_cost":
            cpu_s0 = cpu_seconds(server_pid)
            await writer.start()
            report = await writer.line(max(1.0, deadline - time.monotonic()))
            await writer.stop()
            first, last = report["first_seq"], report["last_seq"]
            run.min_seq = first
            expected = last - first + 1
            client = clients[0]

            done = asyncio.Event()
            all_frames = last - cfg["seq_base"] + 1  # the warm-up saves notify too

            def accounted() -> None:
                # Every update arrived, or was reported folded into a later frame, or (for the
                # peers that re-read the row) produced its frame.
                seen = sum(1 for v in client.values[pks[0]] if first <= v <= last)
                if seen + client.coalesced_within(first, last) >= expected or client.update_frames >= all_frames:
                    done.set()

            run.on_arrival = accounted
            accounted()
            ended = await wait_quiet(run, done, cfg.get("quiet", 5.0), deadline)
            run.on_arrival = None
            got = sum(1 for v in client.values[pks[0]] if first <= v <= last)
            result.update(
                writer=report,
                saves_per_second=report["n"] / report["total_seconds"],
                delivered=got,
                coalesced_reported=client.coalesced_within(first, last),
                update_frames=client.update_frames,
                expected_frames=all_frames,
                expected=expected,
                ended=ended,
                server_cpu_seconds=cpu_seconds(server_pid) - cpu_s0,
            )

        elif mode == "latency":
            n_clients = len(clients)
            await writer.start()
            await writer.line(60)  # ready
            samples_ret: list[float] = []
            samples_call: list[float] = []
            completion: list[float] = []
            missing = 0
            rounds = cfg["rounds"]
            warmup = cfg.get("warmup_rounds", 3)
            cpu_s0 = None
            measured = 0
            for r in range(warmup + rounds):
                if time.monotonic() >= deadline:
                    result["cut_by_deadline_after_rounds"] = r
                    break
                if r == warmup:
                    cpu_s0 = cpu_seconds(server_pid)
                    t_meas0 = time.monotonic()
                # register the round before the save: a fast delivery may beat the writer's report
                seq = run.cfg["seq_base"] + r
                event = asyncio.Event()
                run.arrivals[seq] = []
                run.waiting[seq] = (n_clients, event)
                await writer.send("go\n")
                report = await writer.line(60)
                if report["seq"] != seq:
                    raise RuntimeError(f"writer sequence {report['seq']} != expected {seq}")
                try:
                    await asyncio.wait_for(event.wait(), cfg.get("round_timeout", 30))
                except TimeoutError:
                    pass
                times = run.arrivals.get(seq, [])
                if r >= warmup:
                    measured += 1
                    samples_ret += [t - report["t1"] for t in times]
                    samples_call += [t - report["t0"] for t in times]
                    missing += n_clients - len(times)
                    if times:
                        completion.append(max(times) - report["t1"])
                del run.waiting[seq]
                await asyncio.sleep(cfg.get("gap", 0.05))
            cpu_used = cpu_seconds(server_pid) - cpu_s0 if cpu_s0 is not None else None
            await writer.send("quit\n")
            await writer.stop()
            result.update(
                subscribers=n_clients,
                rounds=rounds,
                measured_rounds=measured,
                from_return=summary(samples_ret),
                from_call=summary(samples_call),
                last_subscriber=summary(completion),
                missing=missing,
                server_cpu_ms_per_event=(1000 * cpu_used / max(1, measured)) if cpu_used is not None else None,
                measured_seconds=time.monotonic() - t_meas0 if cpu_s0 is not None else None,
            )

        elif mode == "fanout":
            subscribers_of: dict[int, int] = {}
            for a in assignments:
                for pk in a:
                    subscribers_of[pk] = subscribers_of.get(pk, 0) + 1
            cpu_s0 = cpu_seconds(server_pid)
            await writer.start()
            report = await writer.line(max(1.0, deadline - time.monotonic()))
            await writer.stop()
            run.final = {int(pk): v for pk, v in report["final"].items()}
            for c in clients:
                run.check_complete(c)
            # Normally stop once every client holds every final value: no later frame can add a
            # distinct delivery then. drain_all (the smoke run) waits for silence instead, so that
            # every frame is counted.
            done = None if cfg.get("drain_all") else run.all_complete
            ended = await wait_quiet(run, done, cfg.get("quiet", 10.0), deadline)
            cpu_used = cpu_seconds(server_pid) - cpu_s0
            k = report["n"]
            base = cfg["seq_base"]
            expected_pairs = sum(subscribers_of[pks[j % len(pks)]] for j in range(k))
            delivered = sum(sum(1 for v in c.values[pk] if base <= v < base + k) for c in clients for pk in c.values)
            # each row's updates are len(pks) apart in value (round-robin), hence the stride
            coalesced = sum(c.coalesced_within(base, base + k - 1, len(pks)) for c in clients)
            lost_final = sum(1 for c in clients for pk in c.values if c.last[pk] != run.final[pk])
            final_seen_not_last = sum(
                1 for c in clients for pk in c.values if c.last[pk] != run.final[pk] and run.final[pk] in c.values[pk]
            )
            span = (run.last_unique_arrival - report["t_start"]) if run.last_unique_arrival else None
            result.update(
                clients=len(clients),
                subs_per_client=cfg["subs_per_client"],
                objects=len(pks),
                updates=k,
                writer=report,
                writer_updates_per_second=k / (report["t_sent"] - report["t_start"]),
                expected_pairs=expected_pairs,
                delivered_pairs=delivered,
                # updates a frame said it folded in (notify_kit's "coalesced"): reported, not silent
                coalesced_reported=coalesced,
                lost_pairs=expected_pairs - delivered,
                lost_pair_ratio=(expected_pairs - delivered) / expected_pairs if expected_pairs else None,
                silently_lost_pairs=expected_pairs - delivered - coalesced,
                final_states=sum(len(c.values) for c in clients),
                lost_final_states=lost_final,
                final_received_but_overtaken=final_seen_not_last,
                update_frames=sum(c.update_frames for c in clients),
                spurious_frames=sum(c.spurious for c in clients),
                duplicate_frames=sum(c.duplicates for c in clients),
                frames=run.frames,
                deliveries_per_second=(delivered / span) if span else 0.0,
                seconds_to_last_delivery=span,
                ended=ended,
                server_cpu_seconds=cpu_used,
            )
        else:
            raise ValueError(mode)
    finally:
        if writer.proc is not None and writer.proc.returncode is None:
            await writer.stop(5)
        await close_all(clients)
    result["loadgen_cpu_seconds"] = time.process_time() - cpu0
    result["harness_errors"] = run.errors[:20]
    return result


def entry() -> None:
    cfg_path, out_path = sys.argv[1], sys.argv[2]
    with open(cfg_path) as f:
        cfg = json.load(f)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * cfg.get("clients", 1) + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(main(cfg))
    else:
        result = uvloop.run(main(cfg))
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    entry()
