"""A writer in its own process: the save that the e2e tests expect to reach browsers elsewhere.

    python -m tests.e2e.writer HASHID=TITLE ...          # set titles
    python -m tests.e2e.writer --rounds N HASHID ...      # titles "1".."N" on each note, round robin
    python -m tests.e2e.writer --memo HASHID FIELD=VALUE  # one save of a Memo (owner=USERNAME)
    python -m tests.e2e.writer --shared HASHID share=USERNAME|unshare=USERNAME|title=TEXT  # a SharedNote
    python -m tests.e2e.writer --origin SOCKET_ID HASHID=TITLE ...  # as a request with X-Notify-Socket-ID

It exits as soon as the saves return: queued notifications go out from notify_kit's exit flush.
"""

import json
import os
import sys
import time
from contextlib import nullcontext

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from django.contrib.auth import get_user_model

from notify_kit.middleware import origin_socket
from tests.testapp.models import Memo, Note, SharedNote


def save_memo(hashid: str, assignments: list[str]) -> None:
    memo = Memo.get_by_hashid(hashid)
    for assignment in assignments:
        name, value = assignment.split("=", 1)
        setattr(memo, name, get_user_model().objects.get(username=value) if name == "owner" else value)
    memo.save()


def write_shared(hashid: str, action: str) -> None:
    note = SharedNote.get_by_hashid(hashid)
    name, value = action.split("=", 1)
    if name == "title":
        note.title = value
        note.save()
    else:
        user = get_user_model().objects.get(username=value)
        (note.shared_with.add if name == "share" else note.shared_with.remove)(user)


def main(argv: list[str]) -> None:
    if argv[:1] == ["--shared"]:
        write_shared(argv[1], argv[2])
        print(json.dumps({"saves": 1}))
        return
    if argv[:1] == ["--memo"]:
        save_memo(argv[1], argv[2:])
        print(json.dumps({"saves": 1}))
        return
    origin = None
    if argv[:1] == ["--origin"]:
        origin, argv = argv[1], argv[2:]
    if argv[:1] == ["--rounds"]:
        rounds, hashids = int(argv[1]), argv[2:]
        notes = [Note.get_by_hashid(h) for h in hashids]
        saves = [(note, str(i)) for i in range(1, rounds + 1) for note in notes]
    else:
        saves = []
        for pair in argv:
            hashid, title = pair.split("=", 1)
            saves.append((Note.get_by_hashid(hashid), title))
    durations = []
    for note, title in saves:
        note.title = title
        started = time.perf_counter()
        with origin_socket(origin) if origin else nullcontext():
            note.save()
        durations.append(time.perf_counter() - started)
    # One line for the tests: how long the saves took (they must not wait for the layer).
    print(json.dumps({"saves": len(durations), "max_seconds": max(durations), "total_seconds": sum(durations)}))


if __name__ == "__main__":
    main(sys.argv[1:])
