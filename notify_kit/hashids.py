"""HashIDs: the only form in which a primary key leaves the server.

Each model gets its own salt, ``sha256(label + secret)``: the ``hashids`` library reads only the
first ~43 characters of a salt, so ``SECRET_KEY + label`` would give every model the same ids.
Hashing the parts together gives each model its own ids. That alone still lets about one id in
a hundred of one model read as a (huge) pk of another, because hashids decodes any string that
happens to be canonical for its salt; so each id also carries a keyed check number of its pk, and
only an id whose check matches decodes: a HashID decodes only for the model it was made for.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from django.conf import settings as django_settings
from django.db import models
from hashids import Hashids

from .conf import DEFAULTS, settings


@lru_cache(maxsize=256)
def _hashids(label: str, secret: str, min_length: int) -> Hashids:
    salt = hashlib.sha256(f"{label}\x00{secret}".encode()).hexdigest()
    return Hashids(salt=salt, min_length=min_length)


@lru_cache(maxsize=256)
def _check_key(label: str, secret: str) -> bytes:
    return hashlib.sha256(f"check\x00{label}\x00{secret}".encode()).digest()


# Two characters of the hashids alphabet (44 letters once separators and guards are taken out).
_CHECK_MODULUS = 44 * 44


def _secret() -> str:
    return settings.HASHIDS_SALT or django_settings.SECRET_KEY


def _codec(model: type[models.Model]) -> Hashids:
    # Settings are read on every call (cheap) so override_settings works; the Hashids object,
    # whose alphabet shuffle is the expensive part, is cached per (label, secret, length).
    return _hashids(model._meta.label_lower, _secret(), int(settings.HASHIDS_MIN_LENGTH))


def _check(model: type[models.Model], pk: int) -> int:
    key = _check_key(model._meta.label_lower, _secret())
    digest = hashlib.blake2b(str(pk).encode(), key=key, digest_size=8).digest()
    return int.from_bytes(digest, "big") % _CHECK_MODULUS


def encode(model: type[models.Model], pk: int) -> str:
    """Return the HashID of primary key ``pk`` of ``model``."""
    # The NOTIFY_KIT dict read once, not once per setting: this runs a few times per save.
    user = getattr(django_settings, "NOTIFY_KIT", None) or {}
    secret = user.get("HASHIDS_SALT") or django_settings.SECRET_KEY
    return _encode(model, secret, int(user.get("HASHIDS_MIN_LENGTH", DEFAULTS["HASHIDS_MIN_LENGTH"])), int(pk))


@lru_cache(maxsize=8192)
def _encode(model: type[models.Model], secret: str, min_length: int, pk: int) -> str:
    # One save encodes its object's id several times (group name, event, serializer); a
    # pure-Python hashids encode costs tens of microseconds, a cache hit a dict lookup. The
    # secret and length are part of the key, so override_settings still takes effect.
    return _codec(model).encode(pk, _check(model, pk))


def decode(model: type[models.Model], hashid: object) -> int | None:
    """Return the primary key that ``hashid`` encodes for ``model``, or None if it is not one."""
    if not isinstance(hashid, str) or not hashid.isascii() or not hashid.isalnum():
        return None
    codec = _codec(model)
    numbers = codec.decode(hashid)
    # hashids accepts some strings that are not its own output; only the canonical form counts,
    # so one object has exactly one id on the wire. The check rejects other models' ids.
    if len(numbers) != 2 or codec.encode(*numbers) != hashid or numbers[1] != _check(model, numbers[0]):
        return None
    return numbers[0]
