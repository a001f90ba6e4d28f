"""System checks: configuration mistakes reported at ``manage.py check`` time, not at connect time.

Channels only fails when the first socket connects; these report a missing layer, an
unimportable serializer or an unusable primary key when the project starts, each with a hint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django.apps import apps
from django.conf import settings as django_settings
from django.core import checks
from django.db import models
from django.utils.module_loading import import_string

from .conf import settings

if TYPE_CHECKING:
    from .models import LiveModelMixin

# channels-redis's per-channel capacity below which W002 warns (its default is 100).
_MIN_CAPACITY = 1000
# redis-py connections per pool below which W001 warns (redis-py's asyncio default is 100).
_MIN_POOL = 1000
_REDIS_BACKENDS = ("channels_redis.core.RedisChannelLayer", "channels_redis.pubsub.RedisPubSubChannelLayer")


def _live_models(app_configs: Any = None) -> list[type[LiveModelMixin]]:
    from .live import is_live

    # `manage.py check <app>` passes the app configs to check; None means all of them.
    candidates = apps.get_models() if app_configs is None else [m for c in app_configs for m in c.get_models()]
    return [m for m in candidates if is_live(m)]


@checks.register()
def check_live_models(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E001 unimportable serializer, E003 non-integer primary key, E004 bad tracker or access-field settings."""
    from .trackers import tracker_of

    errors: list[checks.CheckMessage] = []
    for model in _live_models(app_configs):
        label = model._meta.label
        serializer = getattr(model, "live_serializer", None)
        if isinstance(serializer, str):
            try:
                import_string(serializer)
            except ImportError as exc:
                errors.append(
                    checks.Error(
                        f"{label}.live_serializer {serializer!r} cannot be imported: {exc}",
                        hint="Give the dotted path of a serializer class, or the class itself.",
                        obj=model,
                        id="notify_kit.E001",
                    )
                )
        pk = model._meta.pk
        while pk.is_relation:  # multi-table inheritance or a one-to-one key: the target's key is stored
            pk = cast("models.ForeignKey[Any, Any]", pk).target_field
        if not isinstance(pk, (models.AutoField, models.BigAutoField, models.SmallAutoField, models.IntegerField)):
            errors.append(
                checks.Error(
                    f"{label} has a {type(pk).__name__} primary key; HashIDs need an integer one.",
                    hint="Use an AutoField/BigAutoField primary key on live models.",
                    obj=model,
                    id="notify_kit.E003",
                )
            )
        try:
            tracker_of(model)
        except TypeError as exc:
            errors.append(
                checks.Error(
                    str(exc), hint="Name a FieldTracker attribute in live_tracker.", obj=model, id="notify_kit.E004"
                )
            )
            continue
        concrete = {name for f in model._meta.concrete_fields for name in (f.name, f.attname)}
        unknown = sorted(set(model.live_access_fields or ()) - concrete)
        if unknown:
            errors.append(
                checks.Error(
                    f"{label}.live_access_fields names fields that are not concrete fields: {', '.join(unknown)}",
                    hint="List the model's own columns that can_subscribe reads; access that lives elsewhere "
                    "(a ManyToMany, a group) is signalled with notify_access_changed().",
                    obj=model,
                    id="notify_kit.E004",
                )
            )
    return errors


def _pool_size(host: Any) -> int | None:
    """The max_connections of the pool channels-redis builds for a hosts entry (None: unknown)."""
    try:
        from redis.asyncio import ConnectionPool
    except ImportError:
        return None
    if isinstance(host, str):
        host = {"address": host}
    if not isinstance(host, dict) or "master_name" in host:
        return None  # a (host, port) tuple or a Sentinel: the pool is not ours to guess
    options = dict(host)
    address = options.pop("address", None)
    try:
        # Built the way channels-redis builds it, so that redis-py's own default (100 since
        # redis-py 6, unbounded before) and a max_connections in the URL are both honoured.
        # Building a pool opens no connection.
        pool = ConnectionPool.from_url(address, **options) if address else ConnectionPool(**options)
    except Exception:  # noqa: BLE001 - an entry redis-py rejects fails at connect, with its own error
        return None
    return int(pool.max_connections)


@checks.register()
def check_live_managers(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W004 a manager of a live model whose update()/bulk_update() would not notify."""
    from .querysets import LiveQuerySet

    warnings: list[checks.CheckMessage] = []
    for model in _live_models(app_configs):
        for manager in model._meta.managers:
            try:
                queryset_class = type(manager.get_queryset())  # lazy: runs no query
            except Exception:  # noqa: BLE001 - a manager that needs more than the model; not ours to judge
                continue
            if issubclass(queryset_class, LiveQuerySet):
                continue
            name = queryset_class.__name__
            if queryset_class is models.QuerySet:
                hint = (
                    f"Declare {manager.name} = LiveManager(), or derive {type(manager).__name__} from LiveManager "
                    "instead of models.Manager (notify_kit.querysets)."
                )
            else:
                hint = (
                    f"Put LiveQuerySet first among the bases: class {name}(LiveQuerySet, ...), then "
                    f"{manager.name} = {name}.as_manager() or YourManager.from_queryset({name})() "
                    "(LiveQuerySet is in notify_kit.querysets)."
                )
            warnings.append(
                checks.Warning(
                    f"{model._meta.label}.{manager.name} returns {name} querysets: their update() and "
                    "bulk_update() write rows without notifying their subscribers.",
                    hint=hint,
                    obj=model,
                    id="notify_kit.W004",
                )
            )
    return warnings


@checks.register()
def check_channel_layer(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E002 no layer under notify_kit's alias; W001 redis-py timeouts or pools too small; W002 capacity."""
    alias = settings.CHANNEL_LAYER
    layers = getattr(django_settings, "CHANNEL_LAYERS", None) or {}
    if alias not in layers:
        return [
            checks.Error(
                f"CHANNEL_LAYERS has no {alias!r} layer; notify_kit cannot send or subscribe.",
                hint="Configure CHANNEL_LAYERS (channels_redis in production, InMemoryChannelLayer for "
                "development), or set NOTIFY_KIT['CHANNEL_LAYER'] to an existing alias.",
                id="notify_kit.E002",
            )
        ]
    config = layers[alias]
    if config.get("BACKEND") not in _REDIS_BACKENDS:
        return []
    default_timeout: float | None
    try:
        from redis._defaults import DEFAULT_SOCKET_TIMEOUT as default_timeout
    except ImportError:  # redis-py before 6 had no read timeout by default
        default_timeout = None
    warnings: list[checks.CheckMessage] = []
    for host in config.get("CONFIG", {}).get("hosts") or [{}]:
        timeout = host.get("socket_timeout", default_timeout) if isinstance(host, dict) else default_timeout
        problems = []
        if timeout is not None and timeout <= 5:
            problems.append(
                f"a Redis socket timeout of {timeout}s is not longer than channels-redis's 5 s blocking "
                "receive; idle consumers will die with TimeoutError"
            )
        pool = _pool_size(host)
        if pool is not None and pool < _MIN_POOL:
            problems.append(
                f"a Redis connection pool of {pool} (max_connections) runs out when a few hundred sockets "
                "join or leave groups at once; joins then fail and leaves are left to retry"
            )
        if problems:
            # One warning per hosts entry, naming everything wrong with it: one fix covers all.
            warnings.append(
                checks.Warning(
                    f"Channel layer {alias!r}: {'; and '.join(problems)}.",
                    hint="Use notify_kit.conf.redis_host(url) for each entry of CONFIG['hosts'] "
                    "(socket_timeout=30, max_connections=10000).",
                    id="notify_kit.W001",
                )
            )
    capacity = config.get("CONFIG", {}).get("capacity", 100)
    if config.get("BACKEND") == _REDIS_BACKENDS[0] and capacity < _MIN_CAPACITY:
        warnings.append(
            checks.Warning(
                f"Channel layer {alias!r}: capacity {capacity} bounds each server process's queue "
                "(all of its sockets together); under a burst notify_kit then folds an object's "
                "updates into its latest (measured: 76% of fan-out updates folded at 1000 sockets "
                "x 10 objects with the default of 100), and other senders' messages are dropped.",
                hint=f"Set CHANNEL_LAYERS[{alias!r}]['CONFIG']['capacity'] to at least {_MIN_CAPACITY}.",
                id="notify_kit.W002",
            )
        )
    return warnings


# Attribute calls that run a query when reached from a model instance's relation or manager.
_QUERY_METHODS = frozenset(
    {"all", "filter", "exclude", "get", "exists", "count", "first", "last", "values", "values_list", "aggregate",
     "annotate", "in_bulk", "iterator", "contains"}
)  # fmt: skip
_QUERY_FREE_BACKENDS = frozenset(
    {"django.contrib.auth.backends.ModelBackend", "django.contrib.auth.backends.AllowAllUsersModelBackend"}
)


def _policy_reads(model: type[models.Model]) -> list[str]:
    """What the model's can_subscribe reads that needs a query (a best-effort reading of its source)."""
    import ast
    import inspect
    import textwrap

    from .models import LiveModelMixin

    policy = model.can_subscribe  # type: ignore[attr-defined]
    if policy is LiveModelMixin.can_subscribe:
        # Object-level permissions: ModelBackend answers without a query (and caches the model-level
        # ones on the user); another backend (django-guardian, rules) may query per call.
        backends = set(getattr(django_settings, "AUTHENTICATION_BACKENDS", ())) - _QUERY_FREE_BACKENDS
        return [f"object permissions from {name}" for name in sorted(backends)]
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(policy)))
    except (OSError, TypeError, SyntaxError):  # defined dynamically: nothing to read
        return []
    relations: dict[str, str] = {}
    for f in model._meta.get_fields():
        if not f.is_relation:
            continue
        reverse = f.auto_created and not f.concrete  # a ManyToOneRel, ManyToManyRel, ...
        if f.many_to_many and not reverse:  # not `concrete`: Django 6 no longer counts it concrete
            relations[f.name] = "a many-to-many relation"
        elif not reverse:
            relations[f.name] = "a related object"  # self.owner loads it; self.owner_id does not
        elif hasattr(f, "get_accessor_name"):
            # get_fields() leaves out hidden relations, the only ones without an accessor name.
            relations[cast(str, f.get_accessor_name())] = "a reverse relation"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            if node.attr in relations:
                found.add(f"self.{node.attr} ({relations[node.attr]})")
            elif node.attr in ("objects", "_default_manager"):
                found.add(f"self.{node.attr} (a manager)")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _QUERY_METHODS:
            found.add(f".{node.func.attr}() (a query)")
    return sorted(found)


@checks.register()
def check_access_policies(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W003 a can_subscribe that needs a query; W005 a can_subscribe that collections do not follow."""
    from .models import LiveModelMixin

    warnings: list[checks.CheckMessage] = []
    for model in _live_models(app_configs):
        own_policy = model.can_subscribe is not LiveModelMixin.can_subscribe
        if own_policy and not model.declares_audiences():
            warnings.append(
                checks.Warning(
                    f"{model._meta.label} has its own can_subscribe but declares no live_audiences: collection "
                    f"subscriptions (every row a user may see) follow the {model._meta.app_label}.view_"
                    f"{model._meta.model_name} permission instead, and show every row to who holds it.",
                    hint="Declare live_audiences() and live_audiences_of() saying who sees which rows (then the "
                    "default can_subscribe follows them too); or silence notify_kit.W005 if the permission is meant.",
                    obj=model,
                    id="notify_kit.W005",
                )
            )
        reads = _policy_reads(model)
        if reads:
            warnings.append(
                checks.Warning(
                    f"{model._meta.label}.can_subscribe reads {', '.join(reads)}: after a write that may change "
                    "access, each subscriber's access is re-checked with a database query (one per subscriber "
                    "and event) instead of from the committed row the event carries.",
                    hint="Decide access from the row's own columns (e.g. owner_id) where you can; set "
                    "live_access_fields to the columns the policy reads so that other writes skip the check; "
                    "silence with SILENCED_SYSTEM_CHECKS = ['notify_kit.W003'] once the cost is acceptable.",
                    obj=model,
                    id="notify_kit.W003",
                )
            )
    return warnings
