"""AppConfig: registers the system checks. The model wiring lives with LiveModelMixin itself."""

from __future__ import annotations

from django.apps import AppConfig


class NotifyKitConfig(AppConfig):
    """notify_kit's app config."""

    name = "notify_kit"
    verbose_name = "notify_kit"

    def ready(self) -> None:
        """Register the checks, and pay now for imports the first save would otherwise pay for."""
        from . import checks  # noqa: F401 - registers on import

        self._warm_up()

    def _warm_up(self) -> None:
        # Importing the channel layer's backend (channels_redis, msgpack, redis) and the live
        # serializers (DRF) takes up to a second; done here, the first save() does not stall.
        # Nothing connects: creating a layer object opens no connection. Failures are left to
        # the system checks (E001, E002), which explain them.
        from channels.layers import get_channel_layer

        from .conf import settings
        from .models import LiveModelMixin

        try:
            get_channel_layer(settings.CHANNEL_LAYER)
        except Exception:  # noqa: BLE001 - reported by notify_kit.E002
            pass
        # Apps.populate() sets self.apps before it calls ready(); typed Optional for the time before.
        assert self.apps is not None, "NotifyKitConfig.ready() must be called by Apps.populate()."
        for model in self.apps.get_models():
            if issubclass(model, LiveModelMixin):
                try:
                    model.get_live_serializer_class()
                except Exception:  # noqa: BLE001 - reported by notify_kit.E001
                    pass
