"""Channel layers whose group_discard always fails, as channels-redis does when its pool runs out."""

from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer


class _DiscardFails:
    async def group_discard(self, group, channel):
        raise ConnectionError("MaxConnectionsError: Too many connections (a test layer)")


class DiscardFailsInMemoryChannelLayer(_DiscardFails, InMemoryChannelLayer):
    pass


class DiscardFailsRedisChannelLayer(_DiscardFails, RedisChannelLayer):
    pass
