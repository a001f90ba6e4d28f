"""notify_kit.hashids: per-model ids that round-trip, decode only for their own model, and nothing else."""

from __future__ import annotations

import random
import string

import pytest

from notify_kit import hashids
from tests.testapp.models import Comment, Document, Note


@pytest.fixture
def nk(settings):
    """Set NOTIFY_KIT keys for one test: ``nk(HASHIDS_MIN_LENGTH=12)``."""

    def set_(**values):
        settings.NOTIFY_KIT = {**settings.NOTIFY_KIT, **values}

    return set_


@pytest.mark.parametrize("pk", [1, 2, 42, 10**6, 2**31 - 1, 2**53])
def test_round_trip(pk):
    hashid = hashids.encode(Note, pk)
    assert isinstance(hashid, str)
    assert hashid != str(pk)
    assert hashids.decode(Note, hashid) == pk


def test_distinct_pks_give_distinct_ids():
    ids = {hashids.encode(Note, pk) for pk in range(1, 501)}
    assert len(ids) == 500


def test_min_length_defaults_to_8(settings):
    settings.NOTIFY_KIT = {}
    assert len(hashids.encode(Note, 1)) == 8


def test_min_length_is_read_from_settings(nk):
    nk(HASHIDS_MIN_LENGTH=20)
    hashid = hashids.encode(Note, 1)
    assert len(hashid) == 20
    assert hashids.decode(Note, hashid) == 1


def test_same_pk_differs_between_models():
    assert hashids.encode(Note, 1) != hashids.encode(Document, 1)


@pytest.mark.parametrize(("model", "other"), [(Note, Document), (Document, Note), (Note, Comment), (Comment, Note)])
def test_id_decodes_only_for_its_own_model(model, other):
    # Without the check number about one id in a hundred of one model decodes (to some huge pk)
    # for another: Document's id of pk 7 was Note's id of pk 287255975805.
    for pk in range(1, 2001):
        assert hashids.decode(other, hashids.encode(model, pk)) is None


@pytest.mark.parametrize("length", [44, 80, 200])
def test_long_secret_key_still_separates_models(settings, length):
    # hashids reads only ~43 characters of its salt: SECRET_KEY + label would make every model alike.
    settings.SECRET_KEY = "k" * length
    # The hashids codecs themselves differ, not only the check numbers they carry.
    assert hashids._codec(Note).encode(7) != hashids._codec(Document).encode(7)
    assert hashids.encode(Note, 7) != hashids.encode(Document, 7)
    assert hashids.decode(Document, hashids.encode(Note, 7)) is None


def test_secret_key_changes_the_ids(settings):
    before = hashids.encode(Note, 7)
    settings.SECRET_KEY = "another-secret-key"
    assert hashids.encode(Note, 7) != before


def test_hashids_salt_overrides_secret_key(settings, nk):
    default = hashids.encode(Note, 7)
    nk(HASHIDS_SALT="shared-between-services")
    salted = hashids.encode(Note, 7)
    assert salted != default
    settings.SECRET_KEY = "a-different-secret-key"
    assert hashids.encode(Note, 7) == salted
    assert hashids.decode(Note, salted) == 7


def test_salt_still_separates_models(nk):
    nk(HASHIDS_SALT="x" * 80)
    assert hashids.encode(Note, 3) != hashids.encode(Document, 3)
    assert hashids.decode(Document, hashids.encode(Note, 3)) is None


@pytest.mark.parametrize(
    "value",
    ["", "!!!!!!!!", "abc def1", "abcdefgh\n", "ünïcødé1", "0" * 64, "a" * 1000, "Note:1", "1"],
)
def test_garbage_decodes_to_none(value):
    assert hashids.decode(Note, value) is None


@pytest.mark.parametrize("value", [None, 1, 1.0, b"abcdefgh", ["abcdefgh"], {"id": 1}, True])
def test_non_str_decodes_to_none(value):
    assert hashids.decode(Note, value) is None


def test_bytes_of_a_valid_id_do_not_decode():
    assert hashids.decode(Note, hashids.encode(Note, 5).encode()) is None


def test_case_changed_id_does_not_decode():
    hashid = hashids.encode(Note, 5)
    assert hashids.decode(Note, hashid.swapcase()) is None


def test_id_with_surrounding_whitespace_does_not_decode():
    hashid = hashids.encode(Note, 5)
    assert hashids.decode(Note, f" {hashid}") is None
    assert hashids.decode(Note, f"{hashid}\n") is None


def test_unpadded_form_is_not_canonical(nk):
    # The same number encoded with a shorter min length: hashids can read it, but one object must
    # have exactly one id on the wire.
    nk(HASHIDS_MIN_LENGTH=0)
    short = hashids.encode(Note, 5)
    nk(HASHIDS_MIN_LENGTH=8)
    assert len(short) < 8
    assert hashids.decode(Note, short) is None
    assert hashids.decode(Note, hashids.encode(Note, 5)) == 5


def test_random_strings_do_not_decode():
    # About 15 in 10,000 random 8-character strings are canonical hashids of one number.
    rng = random.Random(2)
    alphabet = string.ascii_letters + string.digits
    candidates = ["".join(rng.choices(alphabet, k=8)) for _ in range(10_000)]
    assert [c for c in candidates if hashids.decode(Note, c) is not None] == []


def test_id_with_a_wrong_check_does_not_decode():
    codec = hashids._codec(Note)
    good = hashids._check(Note, 5)
    assert codec.encode(5, good) == hashids.encode(Note, 5)
    forged = codec.encode(5, (good + 1) % hashids._CHECK_MODULUS)
    assert codec.decode(forged) != ()
    assert hashids.decode(Note, forged) is None


@pytest.mark.parametrize("numbers", [(5,), (5, 6, 7)])
def test_id_of_other_arity_does_not_decode(numbers):
    codec = hashids._codec(Note)
    assert codec.decode(codec.encode(*numbers)) == numbers
    assert hashids.decode(Note, codec.encode(*numbers)) is None


def test_encode_accepts_a_numeric_string_pk():
    # Primary keys read from a URL or a form arrive as strings.
    assert hashids.encode(Note, "12") == hashids.encode(Note, 12)
