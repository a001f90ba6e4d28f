"""The writer process: saves contender X's rows with a tracked change and reports when.

Modes (one JSON line per report on stdout):

* ``throughput``: ``--n`` saves of one row as fast as possible. Reports the time of the save loop
  and the time until every notification has left the process (for notify_kit, whose background
  sender may still hold some when the loop ends, that includes ``notifications.flush()``).
* ``step``: one save per ``go`` line on stdin, reporting ``time.time()`` just before the save and
  just after it returned (the latency scenario's reference point).
* ``burst``: ``--n`` updates spread round-robin over ``--pks`` as fast as possible; reports the
  final value of every row.
* ``collections`` (with ``--owned``: the collections scenario's per-user rows): one write per ``go``
  line on stdin. It loads a random row (before the clock starts), gives it a new value and, every
  ``--move-every``-th write, a new owner chosen at random among the other users; it reports
  ``{"seq", "pk", "old", "new", "t0", "t1"}``. A ``final`` line makes it report every row's
  ``[pk, owner, value]`` as read from the database afterwards (the truth the clients' views are
  checked against).

Each update sets ``value`` to a unique sequence number (``--seq-base`` + i) and ``title`` to match,
so both tracked fields change and a client can tell every update apart.

Contenders: ``plain`` and ``tracked`` notify nobody; ``notify_kit``, ``dcrf`` and ``rest_live`` notify
through their own signal receivers (a plain ``save()``); ``bare`` saves, serializes with the same DRF
serializer and awaits ``group_send`` on a long-lived event loop: the floor.
"""

import asyncio
import cProfile
import json
import os
import sys
import time

from django.core.management.base import BaseCommand

from benchapp.models import COLLECTION_MODELS, CONTENDER_MODELS


def emit(payload):
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


class Command(BaseCommand):
    help = "Save benchmark rows with tracked changes (see the module docstring)."

    def add_arguments(self, parser):
        parser.add_argument("--contender", required=True, choices=sorted(CONTENDER_MODELS))
        parser.add_argument("--mode", required=True, choices=["throughput", "step", "burst", "collections"])
        parser.add_argument("--pks", default="", help="comma-separated primary keys")
        parser.add_argument("--owned", action="store_true", help="the collections scenario's models")
        parser.add_argument("--move-every", type=int, default=4)
        parser.add_argument("--seed", type=int, default=10)
        parser.add_argument("--n", type=int, default=1000)
        parser.add_argument("--warmup", type=int, default=20)
        parser.add_argument("--seq-base", type=int, default=1)
        parser.add_argument("--profile", default="", help="write a cProfile of the measured loop here")

    def handle(self, *args, contender, mode, pks, n, warmup, seq_base, profile, owned, move_every, seed, **options):
        # django-rest-live and DCRF connect their receivers when the routing/consumer modules
        # are imported (as in a real project's asgi.py); without this their saves notify nobody.
        import benchapp.routing  # noqa: F401

        self.contender = contender
        self.model = (COLLECTION_MODELS if owned else CONTENDER_MODELS)[contender]
        self.objs = [self.model.objects.get(pk=int(pk)) for pk in pks.split(",") if pk]
        self.seq = seq_base
        self.loop = None
        if contender == "bare":
            # The bare writer saves inside its running event loop, on purpose: no thread hop,
            # only the awaited group_send. Django refuses sync ORM calls there unless told.
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
            from channels.layers import get_channel_layer

            from benchapp.consumers import bare_group
            from benchapp.serializers import BareItemSerializer

            self.layer = get_channel_layer()
            self.bare_group, self.bare_serializer = bare_group, BareItemSerializer
            self.loop = asyncio.new_event_loop()

        self.profiler = cProfile.Profile() if profile else None
        try:
            if mode == "throughput":
                self.throughput(n, warmup)
            elif mode == "step":
                self.step()
            elif mode == "collections":
                self.collections(move_every, seed)
            else:
                self.burst(n)
        finally:
            if self.profiler is not None:
                self.profiler.dump_stats(profile)

    # -- one update ---------------------------------------------------------------------------
    def _next(self, obj):
        value = self.seq
        self.seq += 1
        obj.value = value
        obj.title = f"t{value}"
        return value

    def save_one(self, obj):
        value = self._next(obj)
        obj.save()
        return value

    async def asave_one(self, obj):
        value = self._next(obj)
        obj.save()  # sync on purpose, see handle()
        text = json.dumps(
            {"type": "updated", "model": "benchapp.bareitem", "id": obj.pk, "data": self.bare_serializer(obj).data},
            separators=(",", ":"),
        )
        await self.layer.group_send(self.bare_group(obj.pk), {"type": "bare.event", "text": text})
        return value

    def drain(self):
        """Wait until every notification of this process has left it (notify_kit sends in the background)."""
        if self.contender == "notify_kit":
            from notify_kit import notifications

            if not notifications.flush(60):
                emit({"warning": "notify_kit flush timed out"})

    # -- modes ----------------------------------------------------------------------------------
    def _run_loop(self, objs, count):
        if self.loop is not None:

            async def many():
                for i in range(count):
                    await self.asave_one(objs[i % len(objs)])

            self.loop.run_until_complete(many())
        else:
            for i in range(count):
                self.save_one(objs[i % len(objs)])

    def throughput(self, n, warmup):
        obj = self.objs[0]
        self._run_loop([obj], warmup)
        self.drain()
        first = self.seq
        if self.profiler:
            self.profiler.enable()
        t0 = time.perf_counter()
        self._run_loop([obj], n)
        t1 = time.perf_counter()
        self.drain()
        t2 = time.perf_counter()
        if self.profiler:
            self.profiler.disable()
        emit(
            {
                "mode": "throughput",
                "n": n,
                "first_seq": first,
                "last_seq": self.seq - 1,
                "loop_seconds": t1 - t0,
                "total_seconds": t2 - t0,
            }
        )

    def step(self):
        obj = self.objs[0]
        emit({"ready": True})
        for line in sys.stdin:
            if line.strip() != "go":
                break
            t0 = time.time()
            if self.loop is not None:
                value = self.loop.run_until_complete(self.asave_one(obj))
            else:
                value = self.save_one(obj)
            t1 = time.time()
            emit({"seq": value, "t0": t0, "t1": t1})
        self.drain()

    def burst(self, n):
        final = {}
        t0 = time.time()
        if self.profiler:
            self.profiler.enable()
        if self.loop is not None:

            async def many():
                for i in range(n):
                    obj = self.objs[i % len(self.objs)]
                    final[obj.pk] = await self.asave_one(obj)

            self.loop.run_until_complete(many())
        else:
            for i in range(n):
                obj = self.objs[i % len(self.objs)]
                final[obj.pk] = self.save_one(obj)
        t1 = time.time()
        self.drain()
        t2 = time.time()
        if self.profiler:
            self.profiler.disable()
        emit({"mode": "burst", "n": n, "t_start": t0, "t_loop_end": t1, "t_sent": t2, "final": final})

    def collections(self, move_every, seed):
        import random

        rng = random.Random(seed)
        rows = list(self.model.objects.order_by("pk").values_list("pk", flat=True))
        users = sorted(set(self.model.objects.values_list("owner_id", flat=True)))
        emit({"ready": True, "rows": len(rows), "users": len(users)})
        count = 0
        for line in sys.stdin:
            word = line.strip()
            if word == "final":
                self.drain()
                state = [
                    [pk, owner, value] for pk, owner, value in self.model.objects.values_list("pk", "owner_id", "value")
                ]
                emit({"final": state})
                continue
            if word != "go":
                break
            count += 1
            obj = self.model.objects.get(pk=rng.choice(rows))  # as a view would load it; before the clock
            old = obj.owner_id
            if move_every and count % move_every == 0 and len(users) > 1:
                obj.owner_id = rng.choice([u for u in users if u != old])
            value = self._next(obj)
            t0 = time.time()
            obj.save()
            t1 = time.time()
            emit({"seq": value, "pk": obj.pk, "old": old, "new": obj.owner_id, "t0": t0, "t1": t1})
        self.drain()
