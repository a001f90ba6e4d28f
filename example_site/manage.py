#!/usr/bin/env python
"""Django's command-line utility for the notify_kit example site."""

import os
import sys
from pathlib import Path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_site.settings")
    try:
        import notify_kit  # noqa: F401
    except ImportError:
        # Run from a clone without installing the package: use the notify_kit next to this folder.
        sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
