"""notify_kit.conf: the NOTIFY_KIT dict over documented defaults, read on every access."""

from __future__ import annotations

import pytest
from django.test import override_settings

from notify_kit.conf import DEFAULTS, redis_host
from notify_kit.conf import settings as conf


def test_defaults_apply_without_a_notify_kit_setting(settings):
    del settings.NOTIFY_KIT
    assert conf.CHANNEL_LAYER == "default"
    assert conf.HASHIDS_SALT is None
    assert conf.HASHIDS_MIN_LENGTH == 8
    assert conf.MAX_SUBSCRIPTIONS == 100


def test_every_default_is_readable(settings):
    settings.NOTIFY_KIT = {}
    assert {name: getattr(conf, name) for name in DEFAULTS} == DEFAULTS


def test_notify_kit_none_means_defaults(settings):
    settings.NOTIFY_KIT = None
    assert conf.MAX_SUBSCRIPTIONS == 100


def test_override_is_read_on_access():
    before = conf.MAX_SUBSCRIPTIONS
    with override_settings(NOTIFY_KIT={"MAX_SUBSCRIPTIONS": 3}):
        assert conf.MAX_SUBSCRIPTIONS == 3
        # Keys the project does not set keep their defaults.
        assert conf.HASHIDS_MIN_LENGTH == 8
    assert conf.MAX_SUBSCRIPTIONS == before


def test_falsy_values_are_not_replaced_by_defaults(settings):
    settings.NOTIFY_KIT = {"MAX_SUBSCRIPTIONS": 0, "HASHIDS_MIN_LENGTH": 0}
    assert conf.MAX_SUBSCRIPTIONS == 0
    assert conf.HASHIDS_MIN_LENGTH == 0


def test_unknown_setting_raises_attribute_error():
    with pytest.raises(AttributeError, match=r"'MAX_SUBSCRIPTION'.*known: CHANNEL_LAYER"):
        conf.MAX_SUBSCRIPTION  # noqa: B018 - the attribute access is the test


def test_unknown_setting_is_not_found_by_getattr_default():
    assert getattr(conf, "NO_SUCH_SETTING", "fallback") == "fallback"


def test_redis_host_defaults_outlast_the_blocking_receive():
    host = redis_host("redis://127.0.0.1:6379/0")
    assert host["address"] == "redis://127.0.0.1:6379/0"
    # channels-redis blocks 5 s in BZPOPMIN: the read timeout must be longer.
    assert host["socket_timeout"] > 5
    assert host["max_connections"] >= 1000


def test_redis_host_options_override_and_extend():
    host = redis_host("redis://example:6379/1", socket_timeout=60, max_connections=50, ssl_cert_reqs=None)
    assert host == {
        "address": "redis://example:6379/1",
        "socket_timeout": 60,
        "max_connections": 50,
        "ssl_cert_reqs": None,
    }


def test_redis_host_returns_a_new_dict_each_time():
    first = redis_host("redis://a")
    first["socket_timeout"] = 1
    assert redis_host("redis://a")["socket_timeout"] == 30
