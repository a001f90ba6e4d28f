"""What notify_kit borrows from Django's SQL compiler: ``UPDATE ... RETURNING pk``.

``QuerySet.update()`` returns a row count, not the rows it wrote. To notify exactly those rows,
reading their primary keys in the same statement is the only way free of races: a ``SELECT``
before the ``UPDATE`` misses a row that starts to match in between (a concurrent commit, under
READ COMMITTED). PostgreSQL and SQLite (3.35+) have ``UPDATE ... RETURNING``; Django builds no
such statement, so this module compiles the update as ``QuerySet.update()`` does and appends the
clause. It relies on ``SQLUpdateCompiler.as_sql()`` returning one ``UPDATE`` statement, which
holds when the query has no related updates (fields of a multi-table parent). Everything else
returns None and the caller falls back to the public API (``values_list`` then ``update``).
tests/test_django_sql.py fails if Django changes what this relies on.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from django.core.exceptions import EmptyResultSet, FieldError
from django.db import connections, models, transaction
from django.db.models import sql

logger = logging.getLogger("notify_kit")

#: The backends whose UPDATE accepts a RETURNING clause in the syntax used here.
_VENDORS = ("postgresql", "sqlite")


def update_returning_pks(queryset: models.QuerySet[Any], values: dict[str, Any]) -> list[Any] | None:
    """Run ``queryset.update(**values)`` as one statement; the primary keys of the rows it wrote.

    None when this database or query cannot say (nothing was written then).
    """
    db = queryset.db
    connection = connections[db]
    if connection.vendor not in _VENDORS or not connection.features.can_return_columns_from_insert:
        return None  # SQLite before 3.35 has no RETURNING; its insert flag says so
    query = cast(sql.UpdateQuery, queryset.query.chain(sql.UpdateQuery))
    query.add_update_values(values)  # raises FieldError for a bad keyword, as QuerySet.update()
    if query.get_related_updates():
        return None  # more than one statement: a parent table's fields are written too
    # As QuerySet.update(): annotations were inlined by add_update_values(). Its ordering step only
    # matters to MySQL, whose UPDATE takes ORDER BY.
    query.clear_select_clause()
    try:
        statement, params = query.get_compiler(db).as_sql()
    except EmptyResultSet:
        return []  # the filter matches nothing (pk__in=[]): Django sends no statement either
    except (FieldError, ValueError, TypeError):
        raise  # the user's values are wrong: the same error QuerySet.update() would raise
    except Exception:  # Django's compiler changed under us: fall back to the public API
        logger.warning("notify_kit: UPDATE ... RETURNING unavailable; reading the rows first", exc_info=True)
        return None
    if not statement:
        return []
    statement = f"{statement} RETURNING {connection.ops.quote_name(queryset.model._meta.pk.column)}"
    with transaction.mark_for_rollback_on_error(using=db):
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return [row[0] for row in cursor.fetchall()]
