"""notify_kit.checks: configuration mistakes reported by ``manage.py check``, each under its own id."""

from __future__ import annotations

from io import StringIO

import pytest
from django.apps import apps as global_apps
from django.core.management import call_command
from django.db import models
from django.test.utils import isolate_apps

from notify_kit.checks import check_access_policies, check_channel_layer, check_live_managers, check_live_models
from notify_kit.conf import redis_host
from notify_kit.models import LiveModelMixin
from notify_kit.querysets import LiveManager, LiveQuerySet
from tests.testapp.models import Comment, Document, Memo, Note

REDIS = "channels_redis.core.RedisChannelLayer"


def ids(messages):
    return [message.id for message in messages]


def redis_layers(*hosts, **config):
    """CHANNEL_LAYERS with a channels_redis default layer on ``hosts`` (capacity fine unless given)."""
    return {"default": {"BACKEND": REDIS, "CONFIG": {"hosts": list(hosts), "capacity": 1000, **config}}}


def test_check_command_passes_for_the_test_project():
    out = StringIO()
    # fail_level=WARNING: a W001 from the test settings would fail this too.
    call_command("check", fail_level="WARNING", stdout=out, stderr=StringIO())
    assert "no issues" in out.getvalue()


def test_checks_are_registered():
    from django.core import checks

    registered = checks.registry.registry.get_checks()
    assert check_live_models in registered
    assert check_channel_layer in registered


def test_no_live_model_errors_for_the_test_models():
    assert check_live_models() == []


@pytest.fixture
def isolated():
    """A throwaway app registry for models defined inside a test."""
    with isolate_apps("tests.testapp") as registry:
        yield registry


# E001: live_serializer cannot be imported


@pytest.mark.parametrize(
    "path",
    [
        "tests.testapp.serializers.MissingSerializer",  # the module exists, the class does not
        "tests.testapp.no_such_module.NoteSerializer",
        "NoteSerializer",  # not a dotted path at all
    ],
)
def test_e001_unimportable_serializer(monkeypatch, path):
    monkeypatch.setattr(Note, "live_serializer", path)
    errors = check_live_models()
    assert ids(errors) == ["notify_kit.E001"]
    assert errors[0].obj is Note
    assert path in errors[0].msg
    assert errors[0].hint


def test_e001_not_reported_for_a_serializer_class(monkeypatch):
    from tests.testapp.serializers import NoteSerializer

    monkeypatch.setattr(Note, "live_serializer", NoteSerializer)
    assert check_live_models() == []


def test_e001_fails_the_check_command(monkeypatch):
    from django.core.management.base import SystemCheckError

    monkeypatch.setattr(Note, "live_serializer", "tests.testapp.serializers.MissingSerializer")
    with pytest.raises(SystemCheckError, match=r"notify_kit\.E001"):
        call_command("check", stdout=StringIO(), stderr=StringIO())


def test_e001_on_an_isolated_model(isolated):
    class Broken(LiveModelMixin, models.Model):
        name = models.CharField(max_length=10)
        live_serializer = "tests.testapp.serializers.DoesNotExist"

        class Meta:
            app_label = "testapp"

    configs = isolated.get_app_configs()
    errors = check_live_models(app_configs=configs)
    assert ids(errors) == ["notify_kit.E001"]
    assert errors[0].obj is Broken


def test_only_the_requested_apps_are_checked(monkeypatch):
    # `manage.py check auth` must not report testapp's models.
    monkeypatch.setattr(Note, "live_serializer", "tests.testapp.serializers.MissingSerializer")
    assert check_live_models(app_configs=[global_apps.get_app_config("auth")]) == []
    assert ids(check_live_models(app_configs=[global_apps.get_app_config("testapp")])) == ["notify_kit.E001"]


# E002: no channel layer under the alias notify_kit uses


def test_e002_alias_missing_from_channel_layers(settings):
    settings.CHANNEL_LAYERS = {"other": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    errors = check_channel_layer()
    assert ids(errors) == ["notify_kit.E002"]
    assert "'default'" in errors[0].msg
    assert "CHANNEL_LAYERS" in errors[0].hint


def test_e002_no_channel_layers_at_all(settings):
    del settings.CHANNEL_LAYERS
    assert ids(check_channel_layer()) == ["notify_kit.E002"]


def test_e002_names_the_configured_alias(settings):
    settings.NOTIFY_KIT = {**settings.NOTIFY_KIT, "CHANNEL_LAYER": "live"}
    errors = check_channel_layer()
    assert ids(errors) == ["notify_kit.E002"]
    assert "'live'" in errors[0].msg
    settings.CHANNEL_LAYERS = {**settings.CHANNEL_LAYERS, "live": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert check_channel_layer() == []


# E003: a primary key HashIDs cannot encode


def test_e003_char_primary_key(isolated):
    class Slugged(LiveModelMixin, models.Model):
        slug = models.CharField(max_length=20, primary_key=True)
        name = models.CharField(max_length=10)

        class Meta:
            app_label = "testapp"

    class Numbered(LiveModelMixin, models.Model):
        name = models.CharField(max_length=10)

        class Meta:
            app_label = "testapp"

    errors = check_live_models(app_configs=isolated.get_app_configs())
    assert ids(errors) == ["notify_kit.E003"]
    assert errors[0].obj is Slugged
    assert "CharField" in errors[0].msg


def test_e003_follows_a_one_to_one_primary_key(isolated):
    class Coded(models.Model):
        code = models.CharField(max_length=20, primary_key=True)

        class Meta:
            app_label = "testapp"

    class Extension(LiveModelMixin, models.Model):
        coded = models.OneToOneField(Coded, primary_key=True, on_delete=models.CASCADE)

        class Meta:
            app_label = "testapp"

    errors = check_live_models(app_configs=isolated.get_app_configs())
    assert ids(errors) == ["notify_kit.E003"]
    assert errors[0].obj is Extension
    assert "CharField" in errors[0].msg


def test_e003_not_reported_for_a_child_of_a_live_model(isolated):
    # Multi-table inheritance: the child's primary key is the one-to-one link to its parent's
    # integer key, which HashIDs encode just as well.
    class Parent(LiveModelMixin, models.Model):
        name = models.CharField(max_length=10)

        class Meta:
            app_label = "testapp"

    class Child(Parent):
        extra = models.CharField(max_length=10)

        class Meta:
            app_label = "testapp"

    assert check_live_models(app_configs=isolated.get_app_configs()) == []


# E004: tracker settings that cannot work


def test_e004_access_field_that_is_not_a_column(monkeypatch):
    # An untracked access field is fine (notify_kit tracks it); a ManyToMany cannot be tracked.
    monkeypatch.setattr(Note, "live_access_fields", ("owner", "views", "shared_with"))
    errors = check_live_models()
    assert ids(errors) == ["notify_kit.E004"]
    assert errors[0].obj is Note
    assert "shared_with" in errors[0].msg
    assert "owner" not in errors[0].msg and "views" not in errors[0].msg
    assert "notify_access_changed" in errors[0].hint


def test_e004_live_tracker_is_not_a_field_tracker(monkeypatch):
    monkeypatch.setattr(Note, "live_tracker", "objects")
    errors = check_live_models()
    assert ids(errors) == ["notify_kit.E004"]
    assert "'objects'" in errors[0].msg


# W001: redis-py socket timeouts that kill idle consumers


def test_w001_socket_timeout_of_five_seconds(settings):
    settings.CHANNEL_LAYERS = redis_layers({"address": "redis://127.0.0.1:6379/0", "socket_timeout": 5})
    warnings = check_channel_layer()
    assert ids(warnings) == ["notify_kit.W001"]
    assert "redis_host" in warnings[0].hint


def test_w001_plain_string_host_uses_redis_py_default(settings):
    from redis._defaults import DEFAULT_SOCKET_TIMEOUT

    assert DEFAULT_SOCKET_TIMEOUT == 5  # redis-py 8; the check exists because of it
    settings.CHANNEL_LAYERS = redis_layers("redis://127.0.0.1:6379/0")
    assert ids(check_channel_layer()) == ["notify_kit.W001"]


def test_w001_one_warning_per_bad_host(settings):
    settings.CHANNEL_LAYERS = redis_layers(
        "redis://a:6379/0", redis_host("redis://b:6379/0"), {"address": "redis://c:6379/0", "socket_timeout": 2}
    )
    assert ids(check_channel_layer()) == ["notify_kit.W001", "notify_kit.W001"]


def test_w001_no_hosts_means_the_default_connection(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": REDIS, "CONFIG": {"capacity": 1000}}}
    assert ids(check_channel_layer()) == ["notify_kit.W001"]


def test_w001_pubsub_layer_is_checked_too(settings):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": ["redis://x"]}}
    }
    assert ids(check_channel_layer()) == ["notify_kit.W001"]


@pytest.mark.parametrize(
    "host",
    [
        redis_host("redis://127.0.0.1:6379/0"),
        {"address": "redis://127.0.0.1:6379/0", "socket_timeout": 30, "max_connections": 1000},
        {"address": "redis://127.0.0.1:6379/0", "socket_timeout": None, "max_connections": 1000},  # no timeout
    ],
)
def test_w001_not_reported_for_a_long_enough_timeout(settings, host):
    settings.CHANNEL_LAYERS = redis_layers(host)
    assert check_channel_layer() == []


def test_w001_redis_py_default_pool_is_100():
    from redis.asyncio import ConnectionPool

    # redis-py 6 and later; before, the pool was unbounded and W001 did not need to look at it.
    assert ConnectionPool().max_connections == 100


@pytest.mark.parametrize(
    "host",
    [
        {"address": "redis://127.0.0.1:6379/0", "socket_timeout": 30},  # redis-py's default pool: 100
        {"address": "redis://127.0.0.1:6379/0", "socket_timeout": 30, "max_connections": 200},
        {"address": "redis://127.0.0.1:6379/0?max_connections=50", "socket_timeout": 30},  # in the URL
        redis_host("redis://127.0.0.1:6379/0", max_connections=999),
    ],
)
def test_w001_pool_too_small_for_many_sockets(settings, host):
    settings.CHANNEL_LAYERS = redis_layers(host)
    warnings = check_channel_layer()
    assert ids(warnings) == ["notify_kit.W001"]
    assert "max_connections" in warnings[0].msg
    assert "timeout" not in warnings[0].msg
    assert "notify_kit.conf.redis_host(url)" in warnings[0].hint
    assert "max_connections=10000" in warnings[0].hint


def test_w001_timeout_and_pool_in_one_warning_per_host(settings):
    settings.CHANNEL_LAYERS = redis_layers({"address": "redis://127.0.0.1:6379/0"})
    warnings = check_channel_layer()
    assert ids(warnings) == ["notify_kit.W001"]
    assert "socket timeout" in warnings[0].msg and "connection pool of 100" in warnings[0].msg


def test_w001_not_reported_for_other_backends(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert check_channel_layer() == []


def test_w001_does_not_fail_the_check_command(settings):
    settings.CHANNEL_LAYERS = redis_layers("redis://127.0.0.1:6379/0")
    err = StringIO()
    call_command("check", stdout=StringIO(), stderr=err)
    assert "notify_kit.W001" in err.getvalue()


# W002: channels-redis capacity low enough to drop notifications silently


def test_w002_default_capacity(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": REDIS, "CONFIG": {"hosts": [redis_host("redis://x:6379/0")]}}}
    warnings = check_channel_layer()
    assert ids(warnings) == ["notify_kit.W002"]
    assert "capacity" in warnings[0].hint


def test_w002_not_for_a_capacity_of_1000(settings):
    settings.CHANNEL_LAYERS = redis_layers(redis_host("redis://x:6379/0"), capacity=1000)
    assert ids(check_channel_layer()) == []


# W003: a policy that can only be honoured with a query per subscriber


def w003_models():
    return {message.obj: message for message in check_access_policies() if message.id == "notify_kit.W003"}


def test_w003_points_out_policies_that_query():
    found = w003_models()
    assert "self.shared_with (a many-to-many relation)" in found[Note].msg
    assert "self.note (a related object)" in found[Comment].msg
    assert "live_access_fields" in found[Note].hint


def test_w003_quiet_for_a_policy_over_the_rows_own_columns_and_the_default_policy():
    found = w003_models()
    assert Memo not in found  # self.owner_id == user.pk
    assert Document not in found  # the mixin's default, with ModelBackend only


def test_w003_for_the_default_policy_with_an_object_permission_backend(settings):
    settings.AUTHENTICATION_BACKENDS = [
        "django.contrib.auth.backends.ModelBackend",
        "guardian.backends.ObjectPermissionBackend",
    ]
    assert "guardian.backends.ObjectPermissionBackend" in w003_models()[Document].msg


@isolate_apps("tests.testapp")
def test_w003_reverse_relation_and_loaded_foreign_key():
    class Folder(LiveModelMixin, models.Model):
        owner = models.ForeignKey("auth.User", on_delete=models.CASCADE)

        class Meta:
            app_label = "testapp"

        def can_subscribe(self, user):
            return self.owner == user or user in [m.user for m in self.members.all()]

    class Member(models.Model):
        folder = models.ForeignKey(Folder, on_delete=models.CASCADE, related_name="members")
        user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="+")

        class Meta:
            app_label = "testapp"

    from notify_kit.checks import _policy_reads

    assert _policy_reads(Folder) == [
        ".all() (a query)",
        "self.members (a reverse relation)",
        "self.owner (a related object)",
    ]


# W004: a manager whose update()/bulk_update() would not notify


def test_w004_not_reported_for_a_model_without_a_manager(isolated):
    class Bare(LiveModelMixin, models.Model):
        class Meta:
            app_label = "testapp"

    assert isinstance(Bare.objects, LiveManager)
    assert check_live_managers(app_configs=isolated.get_app_configs()) == []


def test_w004_a_plain_manager(isolated):
    class Own(LiveModelMixin, models.Model):
        objects = models.Manager()

        class Meta:
            app_label = "testapp"

    warnings = check_live_managers(app_configs=isolated.get_app_configs())
    assert ids(warnings) == ["notify_kit.W004"]
    assert warnings[0].obj is Own
    assert "Own.objects returns QuerySet querysets" in warnings[0].msg
    assert "objects = LiveManager()" in warnings[0].hint


def test_w004_a_queryset_of_ones_own(isolated):
    class PublishedQuerySet(models.QuerySet):
        pass

    class Own(LiveModelMixin, models.Model):
        objects = PublishedQuerySet.as_manager()

        class Meta:
            app_label = "testapp"

    (warning,) = check_live_managers(app_configs=isolated.get_app_configs())
    assert "class PublishedQuerySet(LiveQuerySet, ...)" in warning.hint


def test_w004_a_second_manager(isolated):
    class Own(LiveModelMixin, models.Model):
        everything = models.Manager()

        class Meta:
            app_label = "testapp"

    (warning,) = check_live_managers(app_configs=isolated.get_app_configs())
    assert "Own.everything" in warning.msg
    assert isinstance(Own.objects, LiveManager)  # the inherited one is still there


def test_w004_not_reported_when_live_queryset_is_mixed_in(isolated):
    class PublishedQuerySet(LiveQuerySet, models.QuerySet):
        pass

    class Own(LiveModelMixin, models.Model):
        objects = PublishedQuerySet.as_manager()
        published = LiveManager.from_queryset(PublishedQuerySet)()

        class Meta:
            app_label = "testapp"

    assert check_live_managers(app_configs=isolated.get_app_configs()) == []


# W005: a policy of its own that collections do not follow


def test_w005_an_own_can_subscribe_without_audiences():
    found = {m.obj: m for m in check_access_policies() if m.id == "notify_kit.W005"}
    assert Memo in found and "testapp.view_memo" in found[Memo].msg
    assert "live_audiences" in found[Memo].hint
    assert Document not in found  # the default policy: the permission is the rule either way
