"""The channel-layer messages notify_kit sends: their types and the prefix of its groups.

Constants only, importing nothing, so that every module on the send path (the channels-redis fast
path included, which ``notifications`` imports) can name them without an import cycle. The public
names are re-exported by ``notify_kit.notifications``.
"""

#: Channel-layer message type of a notification; the consumer's handler is ``notify_event``.
EVENT_TYPE = "notify.event"
#: Message type asking every subscriber of a group to check its access again (``notify_recheck``).
RECHECK_TYPE = "notify.recheck"
#: Several events for one server process in one channel-layer message (``notify_batch``): the
#: channels-redis fast path bundles what one batch holds for one receiver, so that the receiving
#: process pays its per-message costs (a Redis pop, a decode, a dispatch) once, not per event.
BATCH_TYPE = "notify.batch"
#: Every group notify_kit names starts with this; their members are NotificationConsumers.
GROUP_PREFIX = "notify_kit."
