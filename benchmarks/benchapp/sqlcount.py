"""Count the SQL statements the server process runs (the collections scenario's "SQL per delivery").

Installed by benchsite/asgi.py when ``BENCH_COUNT_SQL=1`` (run.py sets it only for the collections
scenario's servers, so the other scenarios measure the server as it always was). Every database
connection of the process gets an execute wrapper when it is opened (``connection_created``), on
whichever thread opens it: the counter sees the event loop's thread pool and Channels' database
threads alike. ``GET /bench/sql/`` answers ``{"queries": N}``; that view itself runs no SQL (no
middleware, no session), so reading the counter does not move it.
"""

from __future__ import annotations

import threading

from django.db.backends.signals import connection_created
from django.http import JsonResponse

_lock = threading.Lock()
_count = 0


def _counting(execute, sql, params, many, context):
    global _count
    with _lock:  # connections live on several threads
        _count += 1
    return execute(sql, params, many, context)


def _on_connection_created(sender, connection, **kwargs):
    if _counting not in connection.execute_wrappers:  # a wrapper object may reconnect
        connection.execute_wrappers.append(_counting)


def install() -> None:
    connection_created.connect(_on_connection_created, dispatch_uid="benchapp.sqlcount")


def view(request):
    return JsonResponse({"queries": _count})
