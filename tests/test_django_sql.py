"""notify_kit.django_sql: ``UPDATE ... RETURNING pk`` built on Django's compiler.

These fail when Django changes what the module relies on: the statement must write exactly the
rows ``QuerySet.update()`` writes, with the same values, and return their primary keys.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import F, QuerySet, Value
from django.db.models.functions import Concat

from notify_kit import django_sql
from tests.testapp.models import Memo

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(alice, bob):
    make = Memo.objects.bulk_create
    return make([Memo(owner=alice, title="a1"), Memo(owner=alice, title="a2"), Memo(owner=bob, title="b1")])


def state():
    return list(Memo.objects.order_by("pk").values_list("pk", "title", "views"))


def test_postgresql_and_sqlite_return_the_rows():
    # The test databases are these two; both must take the RETURNING path, not the fallback.
    assert connection.vendor in django_sql._VENDORS
    assert connection.features.can_return_columns_from_insert


@pytest.mark.parametrize(
    ("where", "values"),
    [
        pytest.param({"owner__username": "alice"}, {"title": "x"}, id="join"),
        pytest.param({"title__startswith": "a"}, {"views": F("views") + 2}, id="expression"),
        pytest.param({}, {"title": Concat(F("title"), Value("!"))}, id="every-row"),
        pytest.param({"pk__in": []}, {"title": "none"}, id="empty-in"),
        pytest.param({"owner__username": "nobody"}, {"title": "none"}, id="no-match"),
    ],
)
def test_writes_what_queryset_update_writes_and_returns_the_pks(rows, where, values):
    expected_pks = sorted(Memo.objects.filter(**where).values_list("pk", flat=True))
    count = QuerySet(Memo).filter(**where).update(**values)
    expected = state()
    # Undo by writing the rows back, then write them again through the borrowed compiler.
    for memo in rows:
        QuerySet(Memo).filter(pk=memo.pk).update(title=memo.title, views=memo.views)
    pks = django_sql.update_returning_pks(QuerySet(Memo).filter(**where), values)
    assert pks is not None
    assert (sorted(pks), len(pks), state()) == (expected_pks, count, expected)


def test_no_returning_on_other_databases(monkeypatch, rows):
    monkeypatch.setattr(connection, "vendor", "mysql")
    assert django_sql.update_returning_pks(QuerySet(Memo).all(), {"title": "x"}) is None
    assert state()[0][1] == "a1"  # nothing written
