"""Events between services: in-process by default, Redis pub/sub when several processes run."""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any]], None]


class EventBus:
    """Publish/subscribe by topic; a failing handler is logged and never breaks the publisher."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._lock = threading.Lock()

    def subscribe(self, topic: str, handler: Handler) -> None:
        with self._lock:
            self._handlers[topic].append(handler)

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        self._deliver(topic, payload)

    def close(self) -> None:
        """Release connections (nothing to release in process)."""

    def _deliver(self, topic: str, payload: dict[str, Any]) -> None:
        with self._lock:
            handlers = list(self._handlers.get(topic, ())) + list(self._handlers.get("*", ()))
        for handler in handlers:
            try:
                handler(topic, payload)
            except Exception:
                log.exception("event handler failed", extra={"topic": topic})


class RedisEventBus(EventBus):
    """Fan events out to every Concilium process through Redis pub/sub."""

    CHANNEL_PREFIX = "concilium:"

    def __init__(self, url: str) -> None:
        super().__init__()
        import redis

        self._redis = redis.Redis.from_url(url)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        self._pubsub.psubscribe(**{f"{self.CHANNEL_PREFIX}*": self._on_message})
        self._thread = self._pubsub.run_in_thread(sleep_time=0.1, daemon=True)

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        self._redis.publish(self.CHANNEL_PREFIX + topic, json.dumps(payload))

    def _on_message(self, message: dict[str, Any]) -> None:
        channel = message["channel"]
        topic = (channel.decode() if isinstance(channel, bytes) else channel).removeprefix(
            self.CHANNEL_PREFIX
        )
        self._deliver(topic, json.loads(message["data"]))

    def close(self) -> None:
        # Let the listener leave its read before its connection is closed under it.
        self._thread.stop()
        self._thread.join(timeout=5)
        self._pubsub.close()
        self._redis.close()


def make_bus(redis_url: str) -> EventBus:
    return RedisEventBus(redis_url) if redis_url else EventBus()
