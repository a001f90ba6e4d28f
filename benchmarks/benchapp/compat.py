"""The one compatibility shim of the benchmark: django-rest-live 0.7.0 on Channels 4.

django-rest-live 0.7.0 (its latest release, February 2022) does ``from channels.http import
AsgiRequest``. Channels 4.0 removed that module; Channels 3 had already deprecated the class in
favour of Django's own ``ASGIRequest``, which takes the same ``(scope, body_file)`` arguments.
Without this alias django-rest-live cannot be imported next to notify_kit (which needs Channels
4.3), and all contenders must run on the same versions. Nothing else of django-rest-live is changed.
"""

import sys
import types


def install_channels_http_alias() -> None:
    if "channels.http" in sys.modules:
        return
    try:
        import channels.http  # noqa: F401 - Channels 3 still has it
    except ImportError:
        from django.core.handlers.asgi import ASGIRequest

        module = types.ModuleType("channels.http")
        module.AsgiRequest = ASGIRequest
        sys.modules["channels.http"] = module
