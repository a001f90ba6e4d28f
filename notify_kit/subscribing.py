"""Subscribing: what a ``subscribe`` or ``unsubscribe`` frame does, for an object or a collection.

The order is the design choice: validate what needs no database (model, HashID, filter, fields,
the limit), learn the audience keys the user holds (once per subscription, on the database
thread), join the groups, and only then check access and read the snapshot. Joining first means
a change committed between the check and the join cannot be missed: its event waits until the
handler returns (a consumer handles one message at a time) and the subscription table decides
it. A check that fails leaves the groups again. What the socket learnt here (keys, filter,
options) is all that delivery will use (notify_kit.subscriptions).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from django.apps import apps

from . import audiences, filters, notifications, snapshots, subscriptions
from .conf import settings
from .frames import NOT_FOUND_DETAIL, RequestError
from .live import is_live

if TYPE_CHECKING:
    from .models import LiveModelMixin


@cache
def live_models() -> dict[str, type[LiveModelMixin]]:
    # The app registry is frozen once the server runs; one lookup table, case-insensitive keys
    # because apps.get_model() is case-sensitive on the app label.
    return {model._meta.label_lower: model for model in apps.get_models() if is_live(model)}


class LayerUnavailable(Exception):
    """The channel layer failed while joining a group: the socket is closed with 1013."""


class SubscribingMixin:
    """The subscribe/unsubscribe half of NotificationConsumer (its hooks: get_object, can_subscribe)."""

    channel_name: str
    scope: Any
    _table: subscriptions.Table

    async def _close_unavailable(self) -> bool:  # provided by the consumer
        raise NotImplementedError

    def _filter(self, label: str, request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        model = live_models().get(label)
        if model is None:
            raise RequestError("not_found", NOT_FOUND_DETAIL)
        try:
            return filters.parse(model, request.get("filter") or {})
        except filters.FilterError as exc:
            raise RequestError("invalid", str(exc)) from None

    async def subscribe(self, label: str, request: dict[str, Any] | str) -> dict[str, Any]:
        """Subscribe to an object or a collection the user may see; returns what the answer adds.

        Raises RequestError (``not_found``, ``invalid``, ``limit``) otherwise.
        """
        if isinstance(request, str):  # subscribe(label, hashid), as before collections existed
            request = {"id": request}
        model = live_models().get(label)
        hashid = request.get("id")
        pk = model.pk_from_hashid(hashid) if model is not None and hashid is not None else None
        if model is None or (hashid is not None and pk is None):
            # Same time-floored answer as a missing row; the extra DB round trip of that path
            # is not worth doing for ids that cannot exist.
            raise RequestError("not_found", NOT_FOUND_DETAIL)
        compare, lookups = self._filter(label, request) if hashid is None else ({}, {})
        fields = request.get("fields")
        if fields is not None:
            known = set(model.get_live_serializer_class()().fields)
            unknown = sorted(set(fields) - known)
            if unknown:
                raise RequestError(
                    "invalid", f"fields: unknown {', '.join(unknown)} (known: {', '.join(sorted(known))})."
                )
        key = subscriptions.identity(label, hashid, compare)
        existing = self._table.get(key)
        if existing is None and len(self._table) >= int(settings.MAX_SUBSCRIPTIONS):
            raise RequestError("limit", f"At most {settings.MAX_SUBSCRIPTIONS} subscriptions per connection.")
        user = self.scope.get("user")
        keys = frozenset(await database_sync_to_async(held_keys)(model, user))
        groups = [audiences.group(label, digest) for digest in sorted(keys)] if hashid is None else []
        if hashid is not None:
            groups.insert(0, notifications.group_name(label, hashid))
        # Join first, then check and read: a change committed between the check and the join
        # would otherwise send its event before this socket could receive it, and the stale
        # answer would stand. Events that arrive meanwhile wait until this handler returns
        # (a consumer handles one message at a time), and by then the table decides.
        joined = [group for group in groups if existing is None and not self._table.joined(group)]
        for group in joined:
            try:
                await notifications.group_add(group, self.channel_name)
            except Exception as exc:  # re-raised as the one error __call__ turns into 1013
                await self._close_unavailable()  # now: see _close_unavailable
                raise LayerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        try:
            found = await self._check_and_read(model, pk, user, keys, lookups, bool(request.get("snapshot")), fields)
        except BaseException:
            await self._discard(joined)
            raise
        if found is None:  # not (or no longer) allowed
            await self._discard(joined)
            if existing is not None:
                await self._leave(key)
            raise RequestError("not_found", NOT_FOUND_DETAIL)
        if existing is None:
            self._table.add(
                subscriptions.Subscription(
                    label,
                    hashid=hashid,
                    filter=compare,
                    keys=keys,
                    by_keys=hashid is not None and decides_by_keys(model, type(self)),
                    actions=frozenset(request.get("actions") or subscriptions.ACTIONS),
                    fields=None if fields is None else tuple(fields),
                    request_id=request.get("request_id", subscriptions.NO_REQUEST_ID) if hashid is None else
                    subscriptions.NO_REQUEST_ID,
                    groups=tuple(groups),
                )
            )  # fmt: skip
        return found

    @database_sync_to_async
    def _check_and_read(
        self,
        model: Any,
        pk: int | None,
        user: Any,
        keys: frozenset[str],
        lookups: dict[str, Any],
        snapshot: bool,
        fields: list[str] | None,
    ) -> dict[str, Any] | None:
        """On the database thread: may the user subscribe, and the snapshot if asked. None: not allowed."""
        if pk is None:  # a collection: the user's keys decide, row by row
            if not snapshot:
                return {}
            rows, truncated = snapshots.collection(model, user, keys, lookups, int(settings.SNAPSHOT_LIMIT))
            rows = [snapshots.only(row, fields) for row in rows]
            return {"data": rows, "truncated": True} if truncated else {"data": rows}
        obj = self.get_object(model, pk)
        if obj is None or not self.can_subscribe(obj, user):
            return None
        return {"data": snapshots.only(snapshots.instance(obj, keys), fields)} if snapshot else {}

    async def unsubscribe(self, label: str, hashid: str) -> None:
        """Leave the group of (label, hashid); a no-op when not subscribed."""
        await self._leave(subscriptions.identity(label, hashid, None))

    async def _leave(self, key: tuple[str, str, str]) -> None:
        _, unused = self._table.remove(key)  # first: nothing more is forwarded, whatever the layer does
        await self._discard(unused)

    async def _discard(self, groups: list[str]) -> None:
        for group in groups:
            await notifications.group_discard(group, self.channel_name)

    @database_sync_to_async
    def _allowed(self, model: type, pk: int) -> bool:
        obj = self.get_object(model, pk)
        return obj is not None and bool(self.can_subscribe(obj, self.scope.get("user")))

    def get_object(self, model: type, pk: int) -> Any:
        """Load the object a client asks for (runs on the database thread); None if missing."""
        return model._default_manager.filter(pk=pk).first()  # type: ignore[attr-defined]

    def can_subscribe(self, obj: Any, user: Any) -> bool:
        """Whether ``user`` may subscribe to ``obj`` (on the event loop when it needs no query)."""
        return bool(obj.can_subscribe(user))


def held_keys(model: Any, user: Any) -> list[str]:
    """The digests of the audience keys ``user`` holds for ``model`` (database thread)."""
    return [audiences.digest(key) for key in model.live_audiences_of(user)]


def decides_by_keys(model: Any, consumer: type[SubscribingMixin]) -> bool:
    """Whether object subscriptions of ``model`` are decided by audience keys (its default policy)."""
    from .models import LiveModelMixin

    return (
        model.declares_audiences()
        and model.can_subscribe is LiveModelMixin.can_subscribe
        and consumer.can_subscribe is SubscribingMixin.can_subscribe
    )
