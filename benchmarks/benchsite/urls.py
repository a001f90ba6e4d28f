"""One HTTP view, for the harness: the server's SQL counter (benchapp/sqlcount.py)."""

from benchapp import sqlcount
from django.urls import path

urlpatterns: list = [path("bench/sql/", sqlcount.view)]
