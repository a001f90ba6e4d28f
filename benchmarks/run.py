#!/usr/bin/env python3
"""Side-by-side benchmark of notify_kit, DCRF, django-rest-live and bare Channels (issue 4).

    python benchmarks/run.py            # full size: results/<date>.json, docs/performance.md, the plot
    python benchmarks/run.py --smoke    # tiny sizes: checks the harness only, exits non-zero on failure

Run it with any Python 3.11+ from a fresh clone: it builds (or refreshes) benchmarks/.venv itself
(see _bootstrap.py) and re-runs inside it. It needs the PostgreSQL at 127.0.0.1:5432 (trust auth)
and the Redis at 127.0.0.1:6379, or ``--db sqlite``.

Every contender runs in the same Django project (benchsite/, benchapp/), behind the same uvicorn
server (one worker, started afresh for every measurement and stopped by its PID), on the same
channels-redis layer and database. Scenarios (issue 4):

1. writer cost: saves/s of one row with a tracked change and one subscriber, against plain saves;
2. latency: save() returning -> frame at the client, p50/p99, with 1, 100 and 1000 subscribers;
3. fan-out: 1000 clients x 10 objects, K updates: deliveries/s, lost pairs, lost final states;
4. memory: server RSS per idle subscribed connection;
5. collections (issue 10): 1000 users on 1000 sockets, each following the 10 of 10,000 rows it may
   see (notify_kit collections, DCRF model_observer with per-owner groups, django-rest-live list
   subscriptions with a per-user get_queryset); a writer updates rows and moves some between
   users. Server SQL per delivery, latency from save to socket, leaks and missed rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bootstrap

BENCH = _bootstrap.BENCH
REPO = _bootstrap.REPO
RESULTS = BENCH / "results"
DOCS = REPO / "docs"
CONTENDERS = ["notify_kit", "dcrf", "rest_live", "bare"]
COLLECTION_CONTENDERS = ["notify_kit", "dcrf", "rest_live"]  # bare Channels has no notion of a user's rows
SCENARIOS = ["writer", "latency", "fanout", "memory", "collections"]
BASELINES = ["plain", "tracked"]
LABELS = {
    "notify_kit": "notify_kit",
    "dcrf": "DCRF",
    "rest_live": "django-rest-live",
    "bare": "bare Channels",
    "plain": "plain save",
    "tracked": "plain save + FieldTracker",
}

FULL = {
    "writer_n": 1000,
    "writer_repeats": 5,
    "latency_levels": [1, 100, 1000],
    "latency_rounds": {1: 100, 100: 50, 1000: 30},
    "latency_warmup": 3,
    "latency_gap": 0.05,
    "fanout_clients": 1000,
    "fanout_subs": 10,
    "fanout_objects": 100,
    "fanout_updates": 1000,
    "fanout_quiet": 10.0,
    "fanout_deadline": 240,
    "writer_quiet": 5.0,
    "memory_clients": 1000,
    "memory_settle": 3.0,
    "objects": 100,
    "collections_users": 1000,
    "collections_rows": 10000,
    "collections_writes": 200,
    "collections_move_every": 4,
    "collections_warmup": 3,
    "collections_deadline": 420,
}
SMOKE = {
    "writer_n": 30,
    "writer_repeats": 1,
    "latency_levels": [3],
    "latency_rounds": {3: 3},
    "latency_warmup": 1,
    "latency_gap": 0.02,
    "fanout_clients": 8,
    "fanout_subs": 3,
    "fanout_objects": 6,
    "fanout_updates": 24,
    "fanout_quiet": 3.0,
    "fanout_deadline": 40,
    "writer_quiet": 3.0,
    "memory_clients": 5,
    "memory_settle": 1.0,
    "objects": 6,
    "collections_users": 8,
    "collections_rows": 80,
    "collections_writes": 12,
    "collections_move_every": 3,
    "collections_warmup": 1,
    "collections_deadline": 60,
}


def log(*parts: object) -> None:
    print(time.strftime("%H:%M:%S"), *parts, flush=True)


# -- environment ------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.size = dict(SMOKE if args.smoke else FULL)
        for item in args.set:
            key, _, value = item.partition("=")
            if key not in self.size:
                raise SystemExit(f"--set: unknown size key {key!r}; known: {', '.join(self.size)}")
            parsed = json.loads(value)
            if key == "latency_rounds":
                parsed = {int(k): v for k, v in parsed.items()}
            self.size[key] = parsed
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.run_id = ("smoke-" if args.smoke else "") + stamp
        self.logdir = RESULTS / "logs" / self.run_id
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.py = sys.executable
        self.env = dict(os.environ)
        self.env.update(
            DJANGO_SETTINGS_MODULE="benchsite.settings",
            BENCH_DB=args.db,
            BENCH_PG_NAME="notify_kit_bench_smoke" if args.smoke else "notify_kit_bench",
            BENCH_SQLITE_PATH=str(self.logdir / "bench.sqlite3"),
            BENCH_REDIS_PREFIX=f"nkb{os.getpid()}x{int(time.time())}",
            PYTHONUNBUFFERED="1",
        )
        self.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.env.pop("BENCH_LAYER_CAPACITY", None)
        if args.layer_capacity:
            self.env["BENCH_LAYER_CAPACITY"] = str(args.layer_capacity)
        self.seq = 1_000_000  # every measurement writes its own range of values
        self.port = args.port
        self.deadline = time.monotonic() + args.max_minutes * 60
        self.objects: dict[str, list[dict]] = {}
        self.contenders = [c for c in CONTENDERS if c in args.only.split(",")]

    def next_seq_base(self) -> int:
        self.seq += 1_000_000
        return self.seq

    def manage(self, *argv: str, timeout: float = 300, capture: bool = True) -> str:
        out = subprocess.run(
            [self.py, "manage.py", *argv],
            cwd=BENCH,
            env=self.env,
            capture_output=capture,
            text=True,
            timeout=timeout,
        )
        if out.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(argv)} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout

    def prepare_database(self) -> None:
        if self.args.db == "postgres":
            import psycopg

            name = self.env["BENCH_PG_NAME"]
            with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
                # Commits without waiting for the disk flush: on this VM's disk the fsync alone
                # made identical plain-save runs vary from 250 to 740 saves/s. Same for everyone.
                conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        log("migrate")
        self.manage("migrate", "-v0")
        self.objects = json.loads(self.manage("bench_setup", "--objects", str(self.size["objects"])))

    def cleanup_redis(self) -> None:
        import redis

        client = redis.Redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
        prefix = self.env["BENCH_REDIS_PREFIX"]
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
        client.close()

    # -- the server -------------------------------------------------------------------------

    def start_server(self, name: str, env: dict | None = None) -> subprocess.Popen:
        """Start uvicorn on a free port; make sure the socket we talk to is really its own."""
        self.port = self.args.port or _free_port()
        logfile = open(self.logdir / f"server-{name}.log", "ab")
        cmd = [
            self.py,
            "-m",
            "uvicorn",
            "benchsite.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ws",
            self.args.ws,
            "--lifespan",
            "off",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        proc = subprocess.Popen(
            cmd, cwd=BENCH, env={**self.env, **(env or {})}, stdout=logfile, stderr=subprocess.STDOUT
        )
        logfile.close()
        t_end = time.monotonic() + 30
        while time.monotonic() < t_end:
            if proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited at start; see {self.logdir / f'server-{name}.log'}")
            if _listens(proc.pid, self.port):
                return proc
            time.sleep(0.2)
        self.stop_server(proc)
        raise RuntimeError(f"uvicorn (pid {proc.pid}) did not listen on port {self.port} within 30 s")

    def stop_server(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # this PID only
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def writer_cmd(self, contender: str, mode: str, pks: list[int], n: int, seq_base: int) -> list[str]:
        profile = []
        if os.environ.get("BENCH_WRITER_PROFILE_DIR"):  # cProfile of the writer's measured loop
            self.profile_count = getattr(self, "profile_count", 0) + 1
            name = f"writer-{contender}-{mode}-{self.profile_count}.prof"
            profile = ["--profile", os.path.join(os.environ["BENCH_WRITER_PROFILE_DIR"], name)]
        return [
            self.py,
            "manage.py",
            "bench_writer",
            "--contender",
            contender,
            "--mode",
            mode,
            "--pks",
            ",".join(str(pk) for pk in pks),
            "--n",
            str(n),
            "--seq-base",
            str(seq_base),
            *profile,
        ]

    def wait_for_quiet_machine(self) -> dict:
        """Wait (bounded) until other programs leave the cores mostly idle; report what was seen.

        The machine may be shared: a test suite running next to a measurement would skew it.
        Nothing of ours runs between measurements, so what is busy now is someone else.
        """
        if self.args.smoke or self.args.idle_wait <= 0:
            return {}
        t_end = time.monotonic() + self.args.idle_wait
        waited = 0.0
        busy = machine_busy()
        while busy > self.args.idle_busy and time.monotonic() < t_end:
            if waited == 0:
                log(f"  other load on the machine ({100 * busy:.0f}% busy); waiting up to {self.args.idle_wait:.0f} s")
            waited += 1
            busy = machine_busy()
        return {"busy_before": round(busy, 3), "loadavg_before": loadavg(), "waited_seconds": waited}

    def loadgen(
        self, name: str, contender: str, cfg: dict, timeout: float, path: str = "", server_env: dict | None = None
    ) -> dict:
        """Start a fresh server, run the load generator against it, stop the server."""
        conditions = self.wait_for_quiet_machine()
        usage = _UsageWindow()
        t0 = time.monotonic()
        server = self.start_server(name, server_env)
        t1 = time.monotonic()
        cfg = {
            "contender": contender,
            "url": f"ws://127.0.0.1:{self.port}{path or PATHS[contender]}",
            "objects": self.objects.get(contender, []),
            "server_pid": server.pid,
            "port": self.port,
            "deadline": timeout - 15,
            "writer_log": str(self.logdir / f"writer-{name}.log"),
            **cfg,
        }
        cfg_path = self.logdir / f"loadgen-{name}.json"
        out_path = self.logdir / f"result-{name}.json"
        cfg_path.write_text(json.dumps(cfg))
        try:
            with open(self.logdir / f"loadgen-{name}.log", "ab") as lg:
                proc = subprocess.Popen(
                    [self.py, "loadgen.py", str(cfg_path), str(out_path)],
                    cwd=BENCH,
                    env=self.env,
                    stdout=lg,
                    stderr=subprocess.STDOUT,
                )
                try:
                    code = proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()  # its PID only; its writer child dies with its stdin closed
                    proc.wait(5)
                    raise RuntimeError(f"load generator {name} exceeded {timeout:.0f} s") from None
            if code != 0:
                tail = (self.logdir / f"loadgen-{name}.log").read_text()[-3000:]
                raise RuntimeError(f"load generator {name} failed ({code}):\n{tail}")
            t2 = time.monotonic()
            result = json.loads(out_path.read_text())
        finally:
            self.stop_server(server)
        t3 = time.monotonic()
        result["harness_seconds"] = {"server_start": t1 - t0, "loadgen": t2 - t1, "server_stop": t3 - t2}
        result["machine_load"] = {**conditions, **usage.close(), "loadavg_after": loadavg()}
        result["server_log_tail"] = _tail(self.logdir / f"server-{name}.log")
        return result

    def time_left(self) -> bool:
        return time.monotonic() < self.deadline

    # -- scenarios ------------------------------------------------------------------------------

    def writer_cost(self) -> dict:
        size = self.size
        out: dict[str, list] = {c: [] for c in BASELINES + self.contenders}
        for rep in range(size["writer_repeats"]):
            for contender in BASELINES + self.contenders:
                if not self.time_left():
                    break
                pk = self.objects[contender][0]["pk"]
                base = self.next_seq_base()
                name = f"writer-{contender}-{rep}"
                log("writer cost", contender, f"rep {rep + 1}/{size['writer_repeats']}")
                if contender in BASELINES:
                    conditions = self.wait_for_quiet_machine()
                    usage = _UsageWindow()
                    text = self.manage(
                        *self.writer_cmd(contender, "throughput", [pk], size["writer_n"], base)[2:], timeout=300
                    )
                    report = json.loads(text.strip().splitlines()[-1])
                    result = {
                        "writer": report,
                        "saves_per_second": report["n"] / report["total_seconds"],
                        "machine_load": {**conditions, **usage.close(), "loadavg_after": loadavg()},
                    }
                else:
                    result = self.loadgen(
                        name,
                        contender,
                        {
                            "mode": "writer_cost",
                            "clients": 1,
                            "seq_base": base,
                            "quiet": size["writer_quiet"],
                            "writer_cmd": self.writer_cmd(contender, "throughput", [pk], size["writer_n"], base),
                        },
                        timeout=400,
                    )
                out[contender].append(result)
        return out

    def latency(self) -> dict:
        size = self.size
        out: dict[str, dict] = {c: {} for c in self.contenders}
        for level in size["latency_levels"]:
            for contender in self.contenders:
                if not self.time_left():
                    break
                pk = self.objects[contender][0]["pk"]
                base = self.next_seq_base()
                log("latency", contender, f"{level} subscribers")
                out[contender][str(level)] = self.loadgen(
                    f"latency-{contender}-{level}",
                    contender,
                    {
                        "mode": "latency",
                        "clients": level,
                        "rounds": size["latency_rounds"][level],
                        "warmup_rounds": size["latency_warmup"],
                        "gap": size["latency_gap"],
                        "round_timeout": 30,
                        "seq_base": base,
                        # step mode ignores --n; the writer saves once per "go" line
                        "writer_cmd": self.writer_cmd(contender, "step", [pk], 0, base),
                    },
                    timeout=420,
                )
        return out

    def fanout(self) -> dict:
        size = self.size
        out = {}
        for contender in self.contenders:
            if not self.time_left():
                break
            pks = [o["pk"] for o in self.objects[contender][: size["fanout_objects"]]]
            base = self.next_seq_base()
            log("fan-out", contender)
            out[contender] = self.loadgen(
                f"fanout-{contender}",
                contender,
                {
                    "mode": "fanout",
                    "objects": self.objects[contender][: size["fanout_objects"]],
                    "clients": size["fanout_clients"],
                    "subs_per_client": size["fanout_subs"],
                    "quiet": size["fanout_quiet"],
                    "drain_all": self.args.smoke,
                    "seq_base": base,
                    "writer_cmd": self.writer_cmd(contender, "burst", pks, size["fanout_updates"], base),
                },
                timeout=size["fanout_deadline"] + 240,
            )
            out[contender]["deadline_seconds"] = size["fanout_deadline"]
        return out

    def memory(self) -> dict:
        out = {}
        for contender in self.contenders:
            if not self.time_left():
                break
            log("memory", contender)
            out[contender] = self.loadgen(
                f"memory-{contender}",
                contender,
                {
                    "mode": "memory",
                    "clients": self.size["memory_clients"],
                    "settle": self.size["memory_settle"],
                    "seq_base": 0,
                    "writer_cmd": [],
                },
                timeout=300,
            )
        return out

    def collections(self) -> dict:
        size = self.size
        log("collections: set-up", size["collections_users"], "users,", size["collections_rows"], "rows per system")
        setup = json.loads(
            self.manage(
                "bench_owned_setup",
                "--users",
                str(size["collections_users"]),
                "--rows",
                str(size["collections_rows"]),
                timeout=600,
            )
        )
        out = {}
        for contender in COLLECTION_CONTENDERS:
            if contender not in self.contenders or not self.time_left():
                continue
            log("collections", contender)
            cmd = [
                self.py,
                "manage.py",
                "bench_writer",
                "--contender",
                contender,
                "--owned",
                "--mode",
                "collections",
                "--move-every",
                str(size["collections_move_every"]),
            ]
            out[contender] = self.loadgen(
                f"collections-{contender}",
                contender,
                {
                    "mode": "collections",
                    "clients": len(setup["users"]),
                    "users": setup["users"],
                    "rows": setup["rows"][contender],
                    "writes": size["collections_writes"],
                    "warmup": size["collections_warmup"],
                    "writes_deadline": size["collections_deadline"],
                    "seq_base": self.next_seq_base(),
                    "writer_cmd": [*cmd, "--seq-base", str(self.seq)],
                },
                timeout=size["collections_deadline"] + 240,
                path=COLLECTION_PATHS[contender],
                server_env={"BENCH_COUNT_SQL": "1"},
            )
            out[contender]["deadline_seconds"] = size["collections_deadline"]
        return out


COLLECTION_PATHS = {"notify_kit": "/ws/notifications/", "dcrf": "/ws/dcrf-owned/", "rest_live": "/ws/rest-live/"}
PATHS = {
    "notify_kit": "/ws/notifications/",
    "dcrf": "/ws/dcrf/",
    "rest_live": "/ws/rest-live/",
    "bare": "/ws/bare/",
}


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def machine_busy(window: float = 1.0) -> float:
    """Fraction of all cores busy over ``window`` seconds (everyone's processes, ours included)."""
    b0, t0 = _cpu_times()
    time.sleep(window)
    b1, t1 = _cpu_times()
    return (b1 - b0) / max(1, t1 - t0)


class _UsageWindow:
    """CPU used by everything else on the machine while one measurement ran.

    All cores' busy time over the window, minus what our own children (server, load generator,
    writer; reaped before close()) used. What is left is Redis and PostgreSQL, which serve the
    measurement too, plus any other program on the machine.
    """

    def __init__(self) -> None:
        self.busy0, _ = _cpu_times()
        self.ours0 = _children_cpu()
        self.t0 = time.monotonic()

    def close(self) -> dict:
        busy1, _ = _cpu_times()
        hz = os.sysconf("SC_CLK_TCK")
        seconds = time.monotonic() - self.t0
        ours = _children_cpu() - self.ours0
        others = max(0.0, (busy1 - self.busy0) / hz - ours)
        cores = os.cpu_count() or 1
        return {
            "window_seconds": round(seconds, 2),
            "our_cpu_seconds": round(ours, 2),
            "other_cpu_seconds": round(others, 2),
            "other_cpu_share": round(others / (seconds * cores), 3) if seconds else None,
        }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def loadavg() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` itself holds a socket listening on 127.0.0.1:``port``.

    Another program may already listen on a port we picked; connecting to it would benchmark
    the wrong server, so match the listening socket's inode against the process's descriptors.
    """
    inodes = set()
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.split(":")[1], 16) == port:  # 0A = LISTEN
                    inodes.add(inode)
        if not inodes:
            return False
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return True
    except OSError:
        return False
    return False


def _tail(path: Path, lines: int = 20) -> list[str]:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return text[-lines:]


# -- machine description ---------------------------------------------------------------------


def machine(bench: Bench) -> dict:
    from importlib import metadata

    info: dict = {"nproc": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["ram_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    versions = {}
    for dist in [
        "Django",
        "channels",
        "channels-redis",
        "redis",
        "asgiref",
        "djangorestframework",
        "django-model-utils",
        "djangochannelsrestframework",
        "django-rest-live",
        "uvicorn",
        "uvloop",
        "websockets",
        "psycopg",
        "msgpack",
    ]:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    info["packages"] = versions
    try:
        import redis

        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        info["redis_server"] = client.info("server")["redis_version"]
        client.close()
    except Exception as exc:  # noqa: BLE001 - a description, not a measurement
        info["redis_server"] = f"unknown ({exc})"
    if bench.args.db == "postgres":
        try:
            import psycopg

            with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres") as conn:
                info["database"] = conn.execute("SELECT version()").fetchone()[0]
        except Exception as exc:  # noqa: BLE001 - a description, not a measurement
            info["database"] = f"PostgreSQL (version unknown: {exc})"
    else:
        import sqlite3

        info["database"] = f"SQLite {sqlite3.sqlite_version} (WAL)"
    try:
        info["notify_kit_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "notify_kit"], cwd=REPO, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        info["notify_kit_dirty"] = bool(dirty)
    except (OSError, subprocess.SubprocessError):
        pass
    return info


# -- smoke checks ----------------------------------------------------------------------------


def smoke_failures(results: dict, size: dict) -> list[str]:
    """What the smoke run must show: every contender delivers, and the counting adds up.

    notify_kit and bare Channels send the state each save wrote, so every update must arrive as
    its own value (notify_kit may fold a burst of updates of one row into one frame that says how
    many it folds in: those count as reported). DCRF and django-rest-live re-read the row when
    they deliver, so a quick second save can turn an earlier frame into a copy of a later value:
    for them every update must still produce its frames (one per subscriber for DCRF; one per
    subscription of the socket, for every object of the model, for django-rest-live), and every
    client must end on the final values.

    Collections: every system makes every write, owes no frame it did not deliver, leaks nothing
    and ends every view on the database's truth; notify_kit's server runs no SQL while delivering.
    """
    bad = []
    for contender in CONTENDERS:
        exact = contender in ("notify_kit", "bare")
        for run in results["writer_cost"].get(contender, []):
            got, need = (
                (run["delivered"] + run["coalesced_reported"], run["expected"])
                if exact
                else (run["update_frames"], run["expected_frames"])
            )
            if got != need:
                bad.append(f"writer cost {contender}: {got} of {need} updates arrived")
        for level, run in results["latency"].get(contender, {}).items():
            if run["missing"] or run["from_return"]["count"] != int(level) * run["measured_rounds"]:
                bad.append(f"latency {contender} x{level}: {run['missing']} deliveries missing")
        fan = results["fanout"].get(contender)
        if fan is None:
            bad.append(f"fan-out {contender}: no result")
        else:
            want = size["fanout_updates"] * size["fanout_clients"] * size["fanout_subs"] // size["fanout_objects"]
            if fan["expected_pairs"] != want:
                bad.append(f"fan-out {contender}: expected pairs {fan['expected_pairs']} != {want}")
            if exact:
                got, need = fan["delivered_pairs"] + fan["coalesced_reported"], want
            elif contender == "dcrf":
                got, need = fan["update_frames"], want
            else:
                got, need = fan["update_frames"], want * size["fanout_subs"]
            if got != need or fan["lost_final_states"]:
                bad.append(f"fan-out {contender}: {got} of {need} frames, lost final states {fan['lost_final_states']}")
        mem = results["memory"].get(contender)
        if mem is None or mem["clients"] != size["memory_clients"]:
            bad.append(f"memory {contender}: no result")
    for contender in COLLECTION_CONTENDERS:
        run = results["collections"].get(contender)
        if run is None:
            bad.append(f"collections {contender}: no result")
            continue
        if run["measured_writes"] != size["collections_writes"]:
            bad.append(f"collections {contender}: {run['measured_writes']} of {size['collections_writes']} writes")
        if run["leaks"] or run["missed"] or run["undelivered"] or run["frames_of_unknown_state"]:
            bad.append(
                f"collections {contender}: {run['leaks']} leaks, {run['missed']} missed, "
                f"{run['undelivered']} undelivered, {run['frames_of_unknown_state']} frames of unknown state"
            )
        if not run["measured_frames"] or run.get("snapshot_mismatches"):
            wrong = run.get("snapshot_mismatches")
            bad.append(f"collections {contender}: {run['measured_frames']} frames, snapshots wrong {wrong}")
    # notify_kit's promise: delivering to a collection subscriber runs no SQL in the server.
    nk = results["collections"].get("notify_kit")
    if nk and nk.get("server_sql"):
        bad.append(f"collections notify_kit: the server ran {nk['server_sql']} SQL statements while delivering")
    for baseline in BASELINES:
        if not results["writer_cost"].get(baseline):
            bad.append(f"writer cost {baseline}: no result")
    for section in ("writer_cost", "latency", "fanout", "memory", "collections"):
        for contender, value in results[section].items():
            runs = value if isinstance(value, list) else list(value.values()) if section == "latency" else [value]
            for run in runs:
                if run.get("harness_errors"):
                    bad.append(f"{section} {contender}: harness errors {run['harness_errors'][:3]}")
    return bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; check the harness, not the timing")
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one per server)")
    parser.add_argument("--max-minutes", type=float, default=90, help="skip what is left after this long")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset (default: all)")
    parser.add_argument(
        "--idle-wait",
        type=float,
        default=120,
        help="before each measurement, wait up to this many seconds for other load to drop (0: never)",
    )
    parser.add_argument(
        "--idle-busy", type=float, default=0.25, help="the machine counts as quiet below this busy fraction"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="override one size, e.g. --set latency_levels=[1000] --set 'latency_rounds={\"1000\": 5}'",
    )
    parser.add_argument("--only", default=",".join(CONTENDERS), help="comma-separated contenders (default: all four)")
    parser.add_argument(
        "--ws", default="websockets-sansio", help="uvicorn's WebSocket implementation (same for every contender)"
    )
    parser.add_argument(
        "--layer-capacity",
        type=int,
        default=0,
        help="experiment: channels-redis capacity for every contender (default: its own default, 100)",
    )
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/performance.md and the plot")
    args = parser.parse_args()

    _bootstrap.reexec_in_venv(Path(__file__).resolve(), sys.argv[1:])

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server and load generator inherit it

    bench = Bench(args)
    started = time.time()
    log("run", bench.run_id, "logs in", bench.logdir)
    wanted = set(args.scenarios.split(","))
    results: dict = {
        "run_id": bench.run_id,
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "smoke": args.smoke,
        "size": bench.size,
        "uvicorn_ws": args.ws,
        "layer_capacity": args.layer_capacity or "channels-redis default (100)",
        "machine": machine(bench),
        "writer_cost": {},
        "latency": {},
        "fanout": {},
        "memory": {},
        "collections": {},
    }
    unknown = wanted - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"--scenarios: unknown {', '.join(sorted(unknown))}; known: {', '.join(SCENARIOS)}")
    try:
        bench.prepare_database()
        if "writer" in wanted:
            results["writer_cost"] = bench.writer_cost()
        if "latency" in wanted:
            results["latency"] = bench.latency()
        if "fanout" in wanted:
            results["fanout"] = bench.fanout()
        if "memory" in wanted:
            results["memory"] = bench.memory()
        if "collections" in wanted:
            results["collections"] = bench.collections()
    finally:
        try:
            bench.cleanup_redis()
        except Exception as exc:  # noqa: BLE001 - cleanup must not hide the results
            log("could not clean Redis keys:", exc)
    results["elapsed_seconds"] = time.time() - started
    results["complete"] = bench.time_left()

    import report

    RESULTS.mkdir(exist_ok=True)
    full_size = not args.set and not args.layer_capacity and bench.contenders == CONTENDERS
    full_run = full_size and {"writer", "latency", "fanout", "memory"} <= wanted
    # The collections scenario alone, at full size, is a record of its own (its section of the page).
    collections_run = full_size and wanted == {"collections"}
    if args.smoke:
        name = f"{dt.date.today().isoformat()}-smoke.json"
    elif full_run and results["complete"]:
        name = f"{dt.date.today().isoformat()}.json"
    elif collections_run and results["complete"]:
        name = f"{dt.date.today().isoformat()}-collections.json"
    else:
        name = f"partial-{bench.run_id}.json"  # a subset, a changed size, or cut short: not the record
    out = RESULTS / name
    out.write_text(json.dumps(results, indent=1))
    log("results written to", out)
    print(report.console_table(results))
    if args.smoke:
        failures = smoke_failures(results, bench.size)
        if failures:
            print("SMOKE FAILED:\n  " + "\n  ".join(failures))
            return 1
        print(f"smoke OK: every contender delivered, counts add up ({results['elapsed_seconds']:.0f} s)")
        return 0
    if not args.no_docs and results["complete"] and (full_run or collections_run) and results["collections"]:
        (BENCH / "collections.md").write_text(report.collections_md(results, out.relative_to(REPO)))
        log("wrote benchmarks/collections.md")
    if not args.no_docs and collections_run and results["complete"]:
        page = DOCS / "performance.md"
        page.write_text(report.splice_collections(page.read_text()))
        log("updated the Collections section of docs/performance.md")
    if not args.no_docs and full_run:
        DOCS.mkdir(exist_ok=True)
        report.plot_latency(results, DOCS / "latency-vs-subscribers.png")
        (DOCS / "performance.md").write_text(report.performance_md(results, out.relative_to(REPO)))
        log("wrote docs/performance.md and docs/latency-vs-subscribers.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
