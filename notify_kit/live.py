"""Which classes are live models: decided by a marker attribute, so that no module needs to import
notify_kit.models (and the app registry, and DRF) to ask."""

from __future__ import annotations


def is_live(model: type | None) -> bool:
    """Whether ``model`` inherits LiveModelMixin (its ``is_live_model`` marker)."""
    return isinstance(model, type) and getattr(model, "is_live_model", False) is True
