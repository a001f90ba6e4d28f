"""Who may see a row: decided when a socket subscribes, and again on delivery when access may change.

Revocation needs no opt-in. After any committed write that may change who can see a row, the
event carries the row's committed values (notify_kit.rows), and every receiving socket asks
``can_subscribe`` again on an instance built from them before it forwards anything. A socket
that fails the check is told ``revoked`` and forwards nothing more of that object.

The design choice is to run the policy on the event loop first. A policy over the row's own
fields (``self.owner_id == user.pk``) then costs a function call per subscriber and no query.
A policy that needs the database (a ManyToMany, a group membership, an object-permission
backend) cannot run there: Django raises ``SynchronousOnlyOperation`` before any I/O happens
when the ORM is used on an event loop. That exception moves the decision to the database thread
(``database_sync_to_async``), at one query per subscriber per such event; the system check
``notify_kit.W003`` points such policies out, and ``live_access_fields`` narrows which writes
pay it. The ORM never runs on the loop either way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from django.core.exceptions import SynchronousOnlyOperation

logger = logging.getLogger("notify_kit")

# Models whose policy was seen to need the database, so that it is logged once per process.
_needs_database: set[type] = set()


async def allowed(policy: Callable[[Any, Any], bool], obj: Any, user: Any) -> bool:
    """Whether ``policy(obj, user)`` holds: on the loop when it needs no query, else on the DB thread.

    Raises what the policy raises (callers fail closed).
    """
    try:
        return bool(policy(obj, user))
    except SynchronousOnlyOperation:
        # Raised before the query was sent: nothing ran on the loop that should not have.
        model = type(obj)
        if model not in _needs_database:
            _needs_database.add(model)
            logger.info(
                "notify_kit: can_subscribe of %s queries the database; access is re-checked with one "
                "query per subscriber per access-changing event (see notify_kit.W003).",
                model._meta.label,
            )
    return await database_sync_to_async(_call)(policy, obj, user)


def _call(policy: Callable[[Any, Any], bool], obj: Any, user: Any) -> bool:
    return bool(policy(obj, user))
