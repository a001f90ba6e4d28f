"""The channels-redis fast path: a batch in two round trips, full receivers owed, not skipped.

``RedisChannelLayer.group_send`` costs three round trips per message and silently drops a message
to a server process whose queue is full. This module sends a whole batch in two script calls per
Redis host (read every group's members, then write every group's messages) and reports which receiver refused what, so
the backlog can owe it the object's latest event. To do that it reads the layer the way its own
``group_send`` does, through channels-redis internals: ``_group_key()``, ``connection()``,
``consistent_hash()``, ``non_local_name()``, ``get_capacity()``, ``serialize()``, ``prefix``,
``expiry`` and ``group_expiry``, and it writes the layer's queues with a script derived from its
group_send Lua. Every such access lives here and nowhere else in the package.

The design choice: we rely on internals of a library we do not control, so we verify them before
the first use. ``usable()`` fingerprints the channels-redis source the fast path depends on and
accepts only fingerprints it knows (``KNOWN``); on anything else it logs once and the sender uses
the layer's own public ``group_send`` per message instead (correct, only slower and without the
backlog). tests/test_channels_redis_fastpath.py fails when the installed channels-redis changes.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import textwrap
import time
from importlib import metadata
from typing import Any

from .backlog import Backlog, buildable, folded, owe
from .health import counters, health
from .layer_messages import BATCH_TYPE, GROUP_PREFIX

logger = logging.getLogger("notify_kit")

# channels-redis' group_send Lua, changed in three ways: a process queue takes this batch's
# messages for it in order and stops at the first it has no room for (so nothing newer overtakes
# a refused message); it reports which one that was instead of dropping it; and one call carries
# every group of a batch for one Redis host (a receiver key may then appear more than once, each
# time with the messages of one group). Scores rise by a microsecond per message across the call.
# KEYS: receiver keys on one Redis host. ARGV: first score, expiry, then per key: capacity, n,
# its n messages. Returns per key the 1-based index of the first refused, or 0.
GROUP_SEND_LUA = """
local score, expiry = tonumber(ARGV[1]), tonumber(ARGV[2])
local at = 3
local k = 0
local refused = {}
for i = 1, #KEYS do
    local capacity, n = tonumber(ARGV[at]), tonumber(ARGV[at + 1])
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, math.floor(score) - expiry)
    local first = 0
    for j = 1, n do
        if redis.call('ZCARD', KEYS[i]) < capacity then
            k = k + 1
            redis.call('ZADD', KEYS[i], score + k * 0.000001, ARGV[at + 1 + j])
        else
            first = j
            break
        end
    end
    if first ~= 1 then
        redis.call('EXPIRE', KEYS[i], expiry)
    end
    refused[i] = first
    at = at + 2 + n
end
return refused
"""

# What channels-redis' group_send does to read one group's members (expired ones removed, then
# the rest), for every group of a batch on one host in one call. KEYS: group keys; ARGV: the
# score below which a membership has expired. Returns per key its channel names.
MEMBERS_LUA = """
local found = {}
for i = 1, #KEYS do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, tonumber(ARGV[1]))
    found[i] = redis.call('ZRANGE', KEYS[i], 0, -1)
end
return found
"""

# The methods of RedisChannelLayer whose behaviour the fast path copies or depends on: group_send
# (its Lua is what GROUP_SEND_LUA was derived from) and _map_channel_keys_to_connection (how it
# maps channels to receiver keys and hosts), the key and host helpers we call, how members are
# written (group_add) and how a receiver reads what the script writes (send, _brpop_with_clean).
RELIED_ON = (
    "group_send",
    "_map_channel_keys_to_connection",
    "_group_key",
    "consistent_hash",
    "connection",
    "serialize",
    "group_add",
    "send",
    "_brpop_with_clean",
)
# Attributes read on the layer instance.
RELIED_ON_ATTRIBUTES = ("prefix", "expiry", "group_expiry", "get_capacity", "non_local_name")
# Fingerprint of the sources of RELIED_ON -> the channels-redis release it was read from. A new
# release is added here only after reading its group_send and checking the Redis-layer tests pass.
KNOWN = {
    "732b85a13375374b": "4.3.0",
}

_verdicts: dict[type, bool] = {}


class _Bundle:
    """The items one bundled message carries (what the backlog owes if it is refused)."""

    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items


_redis_layer_class: Any = None
_last_score = 0.0


def fingerprint(cls: type) -> str:
    """A digest of the source of every method in RELIED_ON, as ``cls`` has them."""
    digest = hashlib.sha256()
    for name in RELIED_ON:
        digest.update(name.encode() + b"\0")
        digest.update(textwrap.dedent(inspect.getsource(getattr(cls, name))).encode())
    return digest.hexdigest()[:16]


def drift(layer: Any) -> str | None:
    """What differs between ``layer`` and the channels-redis the fast path knows, or None."""
    missing = [name for name in RELIED_ON_ATTRIBUTES if not hasattr(layer, name)]
    if missing:
        return f"it has no {', '.join(missing)}"
    try:
        if layer.non_local_name("specific.abc!def") != "specific.abc!":
            return "non_local_name() changed"
        found = fingerprint(type(layer))
    except (AttributeError, OSError, TypeError) as exc:  # a method gone, or no source to read
        return f"its internals cannot be read ({type(exc).__name__}: {exc})"
    if found not in KNOWN:
        return f"the source of {', '.join(RELIED_ON)} is not one we know (fingerprint {found})"
    return None


def _is_plain_channels_redis(layer: Any) -> bool:
    """The channels-redis core layer with its own group_send (not a subclass that changed it)."""
    global _redis_layer_class
    if _redis_layer_class is None:
        try:
            from channels_redis.core import RedisChannelLayer
        except ImportError:
            _redis_layer_class = False
        else:
            _redis_layer_class = RedisChannelLayer
    # getattr: the pub/sub layer has no group_send on its class (its instances forward it).
    return bool(_redis_layer_class) and getattr(type(layer), "group_send", None) is _redis_layer_class.group_send


def usable(layer: Any) -> bool:
    """Whether the fast path may send for ``layer``: plain channels-redis, internals as we know them."""
    if not _is_plain_channels_redis(layer):
        return False
    verdict = _verdicts.get(type(layer))
    if verdict is None:
        # Once per layer class and process: the fingerprint reads source files.
        reason = drift(layer)
        verdict = _verdicts[type(layer)] = reason is None
        if reason is not None:
            try:
                version = metadata.version("channels-redis")
            except metadata.PackageNotFoundError:
                version = "unknown"
            logger.warning(
                "notify_kit: channels-redis %s differs from what notify_kit's fast path was written for (%s); "
                "sending through its group_send instead (slower, and a full receiver is skipped, not owed).",
                version,
                reason,
            )
    return verdict


async def members(layer: Any, groups: list[str], now: float) -> dict[str, list[str]]:
    """Every group's channels in one call per Redis host, as group_send reads them."""
    by_host: dict[int, list[str]] = {}
    for group in groups:
        by_host.setdefault(layer.consistent_hash(group), []).append(group)
    found: dict[str, list[str]] = {}
    for index, names in by_host.items():
        keys = [layer._group_key(group) for group in names]
        # One command whatever the number of groups: redis-py's cost is per command, and a
        # batch's events go to two groups or more each (the object's and its audiences').
        results = await layer.connection(index).eval(MEMBERS_LUA, len(keys), *keys, int(now) - layer.group_expiry)
        for group, channels in zip(names, results, strict=True):
            found[group] = [channel.decode("utf8") for channel in channels]
    return found


async def deliver(layer: Any, items: list[tuple[str, Any]], backlog: Backlog) -> None:
    """Send a batch (and the backlog) through channels-redis: one call per host to read members, one to write."""
    global _last_score
    now = time.time()
    sequences: dict[str, list[Any]] = {}
    for group, item in items:
        sequences.setdefault(group, []).append(item)
    if not items:  # a retry round: every group still owed to a full receiver
        for group in list(backlog.waiting):
            sequences.setdefault(group, [])
    group_members = await members(layer, list(sequences), now)

    # Scores keep each receiver's messages in send order across batches; within a call the script
    # adds k microseconds to the k-th message it writes.
    score = max(now, _last_score + 0.000001)
    # host -> (receiver keys, script args, per key [group, owed since, starts with an owed event, *sequence])
    calls: dict[int, tuple[list[str], list[Any], list[list[Any]]]] = {}
    total = 0
    built: dict[int, dict[str, Any]] = {}  # one to_message() per item, shared by its receivers
    for group, new in sequences.items():
        new = buildable(new, built, group)
        # Only notify_kit's own groups, whose members are NotificationConsumers (which handle
        # BATCH_TYPE), and only events: a project's own message to its own group goes alone.
        bundles = group.startswith(GROUP_PREFIX) and all(hasattr(item, "absorb") for item in new)
        receivers: dict[str, list[str]] = {}
        for channel in group_members[group]:
            receivers.setdefault(layer.prefix + layer.non_local_name(channel), []).append(channel)
        owed = backlog.take(group)
        for key, channels in receivers.items():
            sequence: list[Any] = list(new)
            since, owed_first = now, False
            if key in owed:
                held, since = owed[key]
                if now - since > layer.expiry:
                    # channels-redis would expire it unread by now anyway: give up, counted.
                    health.dropped_overflow(folded(held), "a receiver stayed full")
                    since = now
                else:
                    rest: list[Any] = []
                    for item in new:  # fold in order; once one cannot fold, the rest follow it
                        if not rest and held.absorb(item):
                            counters["coalesced"] += 1
                            continue
                        rest.append(item)
                    sequence, owed_first = [held, *rest], True
                    built[id(held)] = held.to_message()
            if not sequence:
                continue
            host = layer.consistent_hash(layer.non_local_name(channels[0]))
            keys, args, sent = calls.setdefault(host, ([], [], []))
            if len(sequence) > 1 and bundles:
                # One message for the whole sequence: taken or refused as one (refused, the
                # backlog owes all of it, folded), so the receiver's order is kept either way.
                messages = [{"type": BATCH_TYPE, "messages": [built[id(item)] for item in sequence]}]
                sent.append([group, since, owed_first, _Bundle(sequence)])
            else:
                messages = [built[id(item)] for item in sequence]
                sent.append([group, since, owed_first, *sequence])
            keys.append(key)
            args += [layer.get_capacity(channels[0]), len(messages)]
            args += [layer.serialize({**message, "__asgi_channel__": channels}) for message in messages]
            total += len(sequence)
    _last_score = score + total * 0.000001

    for index, (keys, args, sent) in calls.items():
        # One script call per host for the whole batch, every group in it.
        refused = await layer.connection(index).eval(GROUP_SEND_LUA, len(keys), *keys, repr(score), layer.expiry, *args)
        for key, first, (group, since, owed_first, *sequence) in zip(keys, refused, sent, strict=True):
            if owed_first and first != 1:
                backlog.progress_at = time.monotonic()
            if first:
                if isinstance(sequence[0], _Bundle):
                    sequence = sequence[0].items
                owe(backlog, group, key, sequence[first - 1 :], since)
