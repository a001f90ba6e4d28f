"""Which classes are live models: decided by a marker attribute, so that no module needs to import
notify_kit.models (and the app registry, and DRF) to ask."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeGuard

if TYPE_CHECKING:  # for the type only: importing models here would be a cycle
    from .models import LiveModelMixin


def is_live(model: type | None) -> TypeGuard[type[LiveModelMixin]]:
    """Whether ``model`` inherits LiveModelMixin (its ``is_live_model`` marker)."""
    return isinstance(model, type) and getattr(model, "is_live_model", False) is True


def default_group_name(model: type) -> bool:
    """Whether ``model`` keeps the mixin's ``get_live_group_name`` (its group follows from its HashID)."""
    return bool(model.get_live_group_name.__qualname__ == "LiveModelMixin.get_live_group_name")  # type: ignore[attr-defined]
