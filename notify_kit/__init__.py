"""notify_kit: live Django model changes pushed to the browsers allowed to see them.

Importing the package must never touch the app registry, so it imports nothing from Django: the
one name it offers, ``suppress``, lives in a standard-library-only module.
"""

from .suppression import suppress

__all__ = ["suppress"]
